import CGHMVision
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The OpenCV shim, loaded on first use with `dlopen` rather than linked: the tool then starts (and runs the model,
/// reads checkpoints, evaluates) on machines without OpenCV, and commands that never touch an image do not pay for
/// loading OpenCV and its ~140 libraries. `libghm_vision.so` is found through the executable's run-time path
/// (`$ORIGIN/../lib` of the bundle, or the build folder).
struct VisionLibrary {
    typealias Status = Int32
    typealias ImageOut = UnsafeMutablePointer<gv_image>?

    let lastError: @convention(c) () -> UnsafePointer<CChar>?
    let version: @convention(c) (UnsafeMutablePointer<CChar>?, Int) -> Status
    let setNumThreads: @convention(c) (Int32) -> Status
    let free: @convention(c) (gv_image) -> Status
    let bufferFree: @convention(c) (gv_buffer) -> Status
    let bufferData: @convention(c) (gv_buffer, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<Int>?) -> Status
    let imread: @convention(c) (UnsafePointer<CChar>?, Int32, ImageOut) -> Status
    let imdecode: @convention(c) (UnsafePointer<UInt8>?, Int, Int32, ImageOut) -> Status
    let imencode: @convention(c) (gv_image, UnsafePointer<CChar>?, Int32, UnsafeMutablePointer<gv_buffer>?) -> Status
    let fromData: @convention(c) (UnsafePointer<UInt8>?, Int32, Int32, Int32, ImageOut) -> Status
    let info: @convention(c) (gv_image, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> Status
    let read: @convention(c) (gv_image, UnsafeMutablePointer<UInt8>?, Int) -> Status
    let clone: @convention(c) (gv_image, ImageOut) -> Status
    let resize: @convention(c) (gv_image, Int32, Int32, Int32, ImageOut) -> Status
    let cvtColor: @convention(c) (gv_image, Int32, ImageOut) -> Status
    let flip: @convention(c) (gv_image, Int32, ImageOut) -> Status
    let rectangle: @convention(c) (gv_image, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32) -> Status
    let putText: @convention(c) (gv_image, UnsafePointer<CChar>?, Int32, Int32, Double, Int32, Int32, Int32, Int32) -> Status
    let textSize: @convention(c) (UnsafePointer<CChar>?, Double, Int32, UnsafeMutablePointer<Int32>?,
                                  UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> Status

    static let libraryName = "libghm_vision.so"
    private static let loaded: Result<VisionLibrary, ImageError> = load()

    /// The loaded library, or an error that says why it is not available.
    static func api() throws(ImageError) -> VisionLibrary {
        switch loaded {
        case .success(let lib): return lib
        case .failure(let e): throw e
        }
    }

    static var isAvailable: Bool { (try? api()) != nil }

    private static func load() -> Result<VisionLibrary, ImageError> {
        guard let handle = dlopen(libraryName, RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "unknown reason"
            return .failure(ImageError(op: "load", message: "image support (OpenCV) is not available: \(why)"))
        }
        var missing: [String] = []
        func sym<F>(_ name: String, _: F.Type) -> F? {
            guard let p = dlsym(handle, name) else {
                missing.append(name)
                return nil
            }
            return unsafeBitCast(p, to: F.self)
        }
        let lib = VisionLibrary(
            lastError: sym("gv_last_error", (@convention(c) () -> UnsafePointer<CChar>?).self) ?? { nil },
            version: sym("gv_version", (@convention(c) (UnsafeMutablePointer<CChar>?, Int) -> Status).self) ?? { _, _ in 1 },
            setNumThreads: sym("gv_set_num_threads", (@convention(c) (Int32) -> Status).self) ?? { _ in 1 },
            free: sym("gv_free", (@convention(c) (gv_image) -> Status).self) ?? { _ in 1 },
            bufferFree: sym("gv_buffer_free", (@convention(c) (gv_buffer) -> Status).self) ?? { _ in 1 },
            bufferData: sym("gv_buffer_data", (@convention(c) (gv_buffer, UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                                                                UnsafeMutablePointer<Int>?) -> Status).self) ?? { _, _, _ in 1 },
            imread: sym("gv_imread", (@convention(c) (UnsafePointer<CChar>?, Int32, ImageOut) -> Status).self) ?? { _, _, _ in 1 },
            imdecode: sym("gv_imdecode", (@convention(c) (UnsafePointer<UInt8>?, Int, Int32, ImageOut) -> Status).self)
                ?? { _, _, _, _ in 1 },
            imencode: sym("gv_imencode", (@convention(c) (gv_image, UnsafePointer<CChar>?, Int32,
                                                          UnsafeMutablePointer<gv_buffer>?) -> Status).self) ?? { _, _, _, _ in 1 },
            fromData: sym("gv_from_data", (@convention(c) (UnsafePointer<UInt8>?, Int32, Int32, Int32, ImageOut) -> Status).self)
                ?? { _, _, _, _, _ in 1 },
            info: sym("gv_info", (@convention(c) (gv_image, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?,
                                                  UnsafeMutablePointer<Int32>?) -> Status).self) ?? { _, _, _, _ in 1 },
            read: sym("gv_read", (@convention(c) (gv_image, UnsafeMutablePointer<UInt8>?, Int) -> Status).self) ?? { _, _, _ in 1 },
            clone: sym("gv_clone", (@convention(c) (gv_image, ImageOut) -> Status).self) ?? { _, _ in 1 },
            resize: sym("gv_resize", (@convention(c) (gv_image, Int32, Int32, Int32, ImageOut) -> Status).self)
                ?? { _, _, _, _, _ in 1 },
            cvtColor: sym("gv_cvt_color", (@convention(c) (gv_image, Int32, ImageOut) -> Status).self) ?? { _, _, _ in 1 },
            flip: sym("gv_flip", (@convention(c) (gv_image, Int32, ImageOut) -> Status).self) ?? { _, _, _ in 1 },
            rectangle: sym("gv_rectangle", (@convention(c) (gv_image, Int32, Int32, Int32, Int32, Int32, Int32, Int32,
                                                            Int32) -> Status).self) ?? { _, _, _, _, _, _, _, _, _ in 1 },
            putText: sym("gv_put_text", (@convention(c) (gv_image, UnsafePointer<CChar>?, Int32, Int32, Double, Int32, Int32,
                                                         Int32, Int32) -> Status).self) ?? { _, _, _, _, _, _, _, _, _ in 1 },
            textSize: sym("gv_text_size", (@convention(c) (UnsafePointer<CChar>?, Double, Int32, UnsafeMutablePointer<Int32>?,
                                                           UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> Status).self)
                ?? { _, _, _, _, _, _ in 1 })
        guard missing.isEmpty else {
            return .failure(ImageError(op: "load", message: "\(libraryName) lacks \(missing.joined(separator: ", ")) (a stale build?)"))
        }
        return .success(lib)
    }

    /// The message of the last failed call on this thread.
    func message() -> String { lastError().map { String(cString: $0) } ?? "unknown error" }
}
