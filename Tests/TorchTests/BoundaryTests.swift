import CGHMTorch
import TestSupport
import XCTest

@testable import Torch

/// The C boundary itself: NULL out-pointers and NULL handles are errors that name the function and the argument,
/// dimensions out of range throw, and dtypes or devices the API has no code for are reported, not misread.
final class BoundaryTests: XCTestCase {
    /// The status of a shim call and the thread's last error message.
    func call(_ body: () -> Int32) -> (status: Int32, message: String) {
        let status = body()
        return (status, String(cString: gt_last_error()))
    }

    func assertFails(_ expected: String, _ body: () -> Int32, file: StaticString = #filePath, line: UInt = #line) {
        let r = call(body)
        XCTAssertNotEqual(r.status, 0, "\(expected): status", file: file, line: line)
        XCTAssertEqual(r.message, expected, file: file, line: line)
    }

    func testNullOutPointersAreErrorsThatNameFunctionAndArgument() throws {
        let t = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        let h = t.handle
        var i32: Int32 = 0, i64: Int64 = 0
        assertFails("gt_shape: buf is NULL") { gt_shape(h, nil, 2) }
        assertFails("gt_strides: buf is NULL") { gt_strides(h, nil, 2) }
        assertFails("gt_dtype: out is NULL") { gt_dtype(h, nil) }
        assertFails("gt_device: type is NULL") { gt_device(h, nil, &i32) }
        assertFails("gt_device: index is NULL") { gt_device(h, &i32, nil) }
        assertFails("gt_data_ptr: out is NULL") { gt_data_ptr(h, nil) }
        assertFails("gt_numel: out is NULL") { gt_numel(h, nil) }
        assertFails("gt_ndim: out is NULL") { gt_ndim(h, nil) }
        assertFails("gt_storage_offset: out is NULL") { gt_storage_offset(h, nil) }
        assertFails("gt_is_contiguous: out is NULL") { gt_is_contiguous(h, nil) }
        assertFails("gt_requires_grad: out is NULL") { gt_requires_grad(h, nil) }
        assertFails("gt_item: out_f and out_i are both NULL") { gt_item(h, nil, nil) }
        assertFails("gt_version: buf is NULL") { gt_version(nil, 64) }
        assertFails("gt_caching_allocator_stats: live_blocks is NULL") { gt_caching_allocator_stats(&i64, nil) }
        // tensor-producing ops
        assertFails("gt_unary: out is NULL") { gt_unary(Int32(GT_NEG), h, nil) }
        assertFails("gt_reshape: out is NULL") { gt_reshape(h, [3, 2], 2, nil) }
        assertFails("gt_empty: out is NULL") { gt_empty([2], 1, DType.float32.rawValue, 0, -1, nil) }
        assertFails("gt_reshape: shape is NULL") {
            var out = gt_tensor(ptr: nil)
            return gt_reshape(h, nil, 2, &out)
        }
        // With two results, a NULL second out-pointer is found before the first is written (nothing leaks).
        var values = gt_tensor(ptr: nil)
        assertFails("gt_max_min_dim: indices is NULL") { gt_max_min_dim(0, h, 1, 0, &values, nil) }
        XCTAssertNil(values.ptr, "values written although the call failed")
        assertFails("gt_topk: values is NULL") {
            var indices = gt_tensor(ptr: nil)
            return gt_topk(h, 1, 1, 1, 1, nil, &indices)
        }
        assertFails("gt_split: outs is NULL") { gt_split(h, [1, 1], 2, 0, nil) }
        // the tensor is unharmed and later calls succeed
        XCTAssertEqual(call { gt_numel(h, &i64) }.status, 0)
        XCTAssertEqual(i64, 6)
    }

    func testNullHandlesAreErrorsThatNameTheArgument() throws {
        let t = try Tensor([1, 2, 3] as [Float])
        let null = gt_tensor(ptr: nil)
        var buf = [Int64](repeating: 0, count: 2)
        var i32: Int32 = 0
        var out = gt_tensor(ptr: nil)
        assertFails("gt_shape: t is a NULL tensor handle") { gt_shape(null, &buf, 2) }
        assertFails("gt_dtype: t is a NULL tensor handle") { gt_dtype(null, &i32) }
        assertFails("gt_binary: b is a NULL tensor handle") { gt_binary(Int32(GT_ADD), t.handle, null, &out) }
        assertFails("gt_where: cond is a NULL tensor handle") { gt_where(null, t.handle, t.handle, &out) }
        assertFails("gt_index_select: index is a NULL tensor handle") { gt_index_select(t.handle, 0, null, &out) }
        assertFails("gt_copy_: src is a NULL tensor handle") { gt_copy_(t.handle, null) }
        assertFails("gt_conv2d: x is a NULL tensor handle") {
            gt_conv2d(null, t.handle, null, [1, 1], [0, 0], [1, 1], 1, &out)
        }
        assertFails("gt_free: t is a NULL tensor handle") { gt_free(null) }
        let hs = [t.handle, null]
        assertFails("gt_cat: ts[1] is a NULL tensor handle") { gt_cat(hs, 2, 0, &out) }
        XCTAssertNil(out.ptr, "no result is written by a failed call")
        // optional tensors stay optional: a NULL bias is "no bias", not an error
        let x = try Tensor.ones([1, 1, 2, 2]), w = try Tensor.ones([1, 1, 1, 1])
        XCTAssertEqual(call { gt_conv2d(x.handle, w.handle, null, [1, 1], [0, 0], [1, 1], 1, &out) }.status, 0)
        XCTAssertNotNil(out.ptr)
        XCTAssertEqual(try Tensor(owning: out).floats(), [1, 1, 1, 1])
    }

    func testSizeOutOfRangeThrowsWithPyTorchsMessage() throws {
        let ref = try python("""
            for name, t, d in [('d5', torch.empty(2, 3), 5), ('dm3', torch.empty(2, 3), -3),
                               ('s0', torch.tensor(1.0), 0)]:
                try:
                    t.size(d)
                except IndexError as e:
                    out[name] = str(e)
            """)
        let t = try Tensor.zeros([2, 3])
        XCTAssertEqual(try t.size(0), 2)
        XCTAssertEqual(try t.size(1), 3)
        XCTAssertEqual(try t.size(-1), 3)
        XCTAssertEqual(try t.size(-2), 2)
        let scalar = try Tensor(scalar: Float(1))
        for (name, tensor, dim) in [("d5", t, 5), ("dm3", t, -3), ("s0", scalar, 0)] {
            let expected = try XCTUnwrap(ref[name] as? String, name)
            XCTAssertThrowsError(try tensor.size(dim), name) { e in
                XCTAssertEqual(e as? TorchError, TorchError(op: "size", message: expected))
            }
        }
        XCTAssertThrowsError(try t.size(2))
    }

    /// A tensor of raw libtorch codes (test-only entry point), owned by Swift.
    func rawTensor(scalarType: Int32, deviceType: Int32) throws -> Tensor {
        var out = gt_tensor(ptr: nil)
        let r = call { gt_testing_empty(scalarType, deviceType, 4, &out) }
        guard r.status == 0, out.ptr != nil else { throw TorchError(op: "gt_testing_empty", message: r.message) }
        return Tensor(owning: out)
    }

    func testUnsupportedDTypeIsAnErrorNotFloat32() throws {
        // c10::ScalarType codes: 9 ComplexFloat, 27 UInt16; neither has a DType
        for (code, name) in [(Int32(9), "ComplexFloat"), (Int32(27), "UInt16")] {
            let t = try rawTensor(scalarType: code, deviceType: 0)
            var v: Int32 = -1
            assertFails("unsupported dtype \(name)") { gt_dtype(t.handle, &v) }
            XCTAssertEqual(v, -1, "no code is written for an unsupported dtype")
            XCTAssertThrowsError(try t.dtype) { e in
                XCTAssertEqual(e as? TorchError, TorchError(op: "dtype", message: "unsupported dtype \(name)"))
            }
            XCTAssertEqual(try t.device, .cpu)
            XCTAssertEqual(t.shape, [4])
            XCTAssertEqual(t.description, "Tensor(shape: [4], dtype: <unsupported dtype \(name)>, device: cpu)")
            XCTAssertThrowsError(try t.withUnsafeBytes { _ in 0 }, "the byte size of an unknown dtype is unknown")
        }
        // and the supported codes come back as they are
        for dtype in DType.allCases {
            XCTAssertEqual(try rawTensor(scalarType: dtype.rawValue, deviceType: 0).dtype, dtype)
        }
    }

    func testUnsupportedDeviceIsAnErrorNotCUDA() throws {
        // c10::DeviceType 14 is meta (tensors without storage, available in every libtorch build)
        let t = try rawTensor(scalarType: DType.float32.rawValue, deviceType: 14)
        var type: Int32 = -1, index: Int32 = -1
        assertFails("unsupported device type meta") { gt_device(t.handle, &type, &index) }
        XCTAssertEqual(type, -1, "no code is written for an unsupported device")
        XCTAssertThrowsError(try t.device) { e in
            XCTAssertEqual(e as? TorchError, TorchError(op: "device", message: "unsupported device type meta"))
        }
        XCTAssertEqual(try t.dtype, .float32)
        XCTAssertEqual(t.description, "Tensor(shape: [4], dtype: float32, device: <unsupported device type meta>)")
        XCTAssertThrowsError(try t.to(.float64), "to(dtype) keeps the device, which it cannot name")
    }

    func testTestingEntryPointRefusesCodesLibtorchDoesNotHave() {
        var out = gt_tensor(ptr: nil)
        assertFails("no c10::ScalarType 1000") { gt_testing_empty(1000, 0, 1, &out) }
        assertFails("no c10::DeviceType -1") { gt_testing_empty(6, -1, 1, &out) }
        assertFails("gt_testing_empty: out is NULL") { gt_testing_empty(6, 0, 1, nil) }
        XCTAssertNil(out.ptr)
    }
}
