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
///
/// Every entry point is typed by its function-pointer typedef in ghm_vision.h (`gv_imread_fn`, …), so a signature
/// change in the header is a compile error here rather than a silent ABI mismatch.
struct VisionLibrary {
    let lastError: gv_last_error_fn
    let version: gv_version_fn
    let setNumThreads: gv_set_num_threads_fn
    let free: gv_free_fn
    let bufferFree: gv_buffer_free_fn
    let bufferData: gv_buffer_data_fn
    let imread: gv_imread_fn
    let imdecode: gv_imdecode_fn
    let imencode: gv_imencode_fn
    let fromData: gv_from_data_fn
    let info: gv_info_fn
    let read: gv_read_fn
    let clone: gv_clone_fn
    let resize: gv_resize_fn
    let cvtColor: gv_cvt_color_fn
    let flip: gv_flip_fn
    let rectangle: gv_rectangle_fn
    let putText: gv_put_text_fn
    let textSize: gv_text_size_fn

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
        func sym<F>(_ name: String) -> F? {
            guard let p = dlsym(handle, name) else {
                missing.append(name)
                return nil
            }
            return unsafeBitCast(p, to: F.self)
        }
        let lastError: gv_last_error_fn? = sym("gv_last_error")
        let version: gv_version_fn? = sym("gv_version")
        let setNumThreads: gv_set_num_threads_fn? = sym("gv_set_num_threads")
        let free: gv_free_fn? = sym("gv_free")
        let bufferFree: gv_buffer_free_fn? = sym("gv_buffer_free")
        let bufferData: gv_buffer_data_fn? = sym("gv_buffer_data")
        let imread: gv_imread_fn? = sym("gv_imread")
        let imdecode: gv_imdecode_fn? = sym("gv_imdecode")
        let imencode: gv_imencode_fn? = sym("gv_imencode")
        let fromData: gv_from_data_fn? = sym("gv_from_data")
        let info: gv_info_fn? = sym("gv_info")
        let read: gv_read_fn? = sym("gv_read")
        let clone: gv_clone_fn? = sym("gv_clone")
        let resize: gv_resize_fn? = sym("gv_resize")
        let cvtColor: gv_cvt_color_fn? = sym("gv_cvt_color")
        let flip: gv_flip_fn? = sym("gv_flip")
        let rectangle: gv_rectangle_fn? = sym("gv_rectangle")
        let putText: gv_put_text_fn? = sym("gv_put_text")
        let textSize: gv_text_size_fn? = sym("gv_text_size")
        guard let lastError, let version, let setNumThreads, let free, let bufferFree, let bufferData, let imread,
              let imdecode, let imencode, let fromData, let info, let read, let clone, let resize, let cvtColor,
              let flip, let rectangle, let putText, let textSize
        else {
            let names = missing.joined(separator: ", ")
            return .failure(ImageError(op: "load", message: "\(libraryName) lacks \(names) (a stale build?)"))
        }
        return .success(VisionLibrary(
            lastError: lastError, version: version, setNumThreads: setNumThreads, free: free, bufferFree: bufferFree,
            bufferData: bufferData, imread: imread, imdecode: imdecode, imencode: imencode, fromData: fromData,
            info: info, read: read, clone: clone, resize: resize, cvtColor: cvtColor, flip: flip, rectangle: rectangle,
            putText: putText, textSize: textSize))
    }

    /// The message of the last failed call on this thread.
    func message() -> String { lastError().map { String(cString: $0) } ?? "unknown error" }
}
