import Foundation
import TestSupport
import Torch
@testable import TorchCheckpoint
import XCTest

/// Python's deep comparison of two loaded objects (types, dict order, tensors bit-exact with strides and offsets).
private let pythonCompare = """
    import collections
    def same(a, b, path='root'):
        if type(a) is not type(b):
            return f'{path}: {type(a).__name__} vs {type(b).__name__}'
        if isinstance(a, torch.Tensor):
            if (a.dtype, a.shape, a.stride()) != (b.dtype, b.shape, b.stride()):
                return f'{path}: {a.dtype} {tuple(a.shape)} {a.stride()} vs {b.dtype} {tuple(b.shape)} {b.stride()}'
            if a.numel() and a.storage_offset() != b.storage_offset():
                return f'{path}: storage offset {a.storage_offset()} vs {b.storage_offset()}'
            ra = a.contiguous().reshape(-1).view(torch.uint8) if a.numel() else a
            rb = b.contiguous().reshape(-1).view(torch.uint8) if b.numel() else b
            return None if torch.equal(ra, rb) else f'{path}: values differ'
        if isinstance(a, dict):
            if list(a.keys()) != list(b.keys()):
                return f'{path}: keys {list(a.keys())[:5]} vs {list(b.keys())[:5]}'
            for k in a:
                r = same(a[k], b[k], f'{path}.{k}')
                if r: return r
            return None
        if isinstance(a, (list, tuple)):
            if len(a) != len(b): return f'{path}: length {len(a)} vs {len(b)}'
            for i, (x, y) in enumerate(zip(a, b)):
                r = same(x, y, f'{path}.{i}')
                if r: return r
            return None
        if isinstance(a, float) and a != a and b != b:
            return None
        return None if a == b else f'{path}: {a!r} vs {b!r}'
    def storage_groups(obj, prefix, out):
        if isinstance(obj, torch.Tensor):
            if obj.numel(): out.setdefault(obj.untyped_storage().data_ptr(), []).append(prefix)
        elif isinstance(obj, dict):
            for k, v in obj.items(): storage_groups(v, f'{prefix}.{k}', out)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj): storage_groups(v, f'{prefix}.{i}', out)
        return sorted(sorted(g) for g in out.values())

    """

final class WriteTests: XCTestCase {
    /// Swift re-writes each fixture; Python's default `torch.load` (weights_only=True) reads it, and it equals what
    /// Python wrote, down to strides, storage offsets and which tensors share a storage.
    func testWrittenPthLoadsInPythonWithWeightsOnly() throws {
        let dir = try Repo.temporaryDirectory("ckpt-write")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var pairs: [(src: String, out: String)] = []
        for name in ["module", "mmdet", "dtypes", "views", "misc"] {
            for suffix in [".pth", ".legacy.pth"] {
                let src = try Fixtures.path(name + suffix)
                let out = dir + "/" + name + suffix
                try CheckpointWriter.save(try Checkpoint.load(src).root, to: out)
                pairs.append((src, out))
            }
        }
        let list = pairs.map { "(\(String(reflecting: $0.src)), \(String(reflecting: $0.out)))" }.joined(separator: ", ")
        let r = try python(pythonCompare + """
            for src, dst in [\(list)]:
                a = torch.load(src, weights_only=False)
                b = torch.load(dst)
                out[dst] = [same(a, b) or '', storage_groups(a, 'root', {}) == storage_groups(b, 'root', {}),
                            isinstance(b, collections.OrderedDict) == isinstance(a, collections.OrderedDict)]
            """)
        for p in pairs {
            let v = try XCTUnwrap(r[p.out] as? [Any], p.out)
            XCTAssertEqual(v[0] as? String, "", p.out)
            XCTAssertEqual(v[1] as? Bool, true, "\(p.out): storage sharing")
            XCTAssertEqual(v[2] as? Bool, true, "\(p.out): OrderedDict")
        }
    }

    /// An mmcv training checkpoint assembled in Swift: meta, state_dict and SGD state with momentum buffers, which
    /// `torch.optim.SGD.load_state_dict` accepts.
    func testMMDetTrainingCheckpointWithOptimizer() throws {
        let src = try Checkpoint.load(try Fixtures.path("mmdet.legacy.pth"))
        let sd = try src.stateDict()
        var sgd = try SGDState(from: try XCTUnwrap(src.optimizer))
        XCTAssertEqual(sgd.momentumBuffers.count, 7)
        sgd.lr = 0.02
        var meta = try XCTUnwrap(src.meta)
        meta["epoch"] = .int(13)
        let value = CheckpointWriter.mmdetCheckpoint(meta: meta, stateDict: sd, optimizer: sgd)
        let path = try Repo.temporaryDirectory("ckpt-mmdet") + "/epoch_13.pth"
        try CheckpointWriter.save(value, to: path)
        let r = try python("""
            import collections
            ref = torch.load(\(String(reflecting: try Fixtures.path("mmdet.legacy.pth"))))
            c = torch.load(\(String(reflecting: path)))
            out['keys'] = list(c.keys())
            out['epoch'] = c['meta']['epoch']
            out['classes'] = list(c['meta']['CLASSES'])
            out['sd_type'] = type(c['state_dict']).__name__
            out['sd_equal'] = all(torch.equal(c['state_dict'][k], v) for k, v in ref['state_dict'].items()) and \\
                list(c['state_dict']) == list(ref['state_dict'])
            params = [torch.nn.Parameter(v.clone().float()) for k, v in ref['state_dict'].items() if 'num_batches' not in k
                      and 'running' not in k]
            opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
            opt.load_state_dict(c['optimizer'])
            g = opt.param_groups[0]
            out['lr'] = g['lr']
            out['group'] = sorted(k for k in g if k != 'params')
            out['buffers'] = all(torch.equal(opt.state[p]['momentum_buffer'], ref['optimizer']['state'][i]['momentum_buffer'])
                                 for i, p in enumerate(params))
            """)
        XCTAssertEqual(r["keys"] as? [String], ["meta", "state_dict", "optimizer"])
        XCTAssertEqual(r["epoch"] as? Int, 13)
        XCTAssertEqual((r["classes"] as? [String])?.first, "person")
        XCTAssertEqual(r["sd_type"] as? String, "OrderedDict")
        XCTAssertEqual(r["sd_equal"] as? Bool, true)
        XCTAssertEqual(r["lr"] as? Double, 0.02)
        XCTAssertEqual(r["group"] as? [String], ["dampening", "differentiable", "foreach", "fused", "initial_lr", "lr",
                                                  "maximize", "momentum", "nesterov", "weight_decay"])
        XCTAssertEqual(r["buffers"] as? Bool, true)
    }

    /// Tensors created in Swift (views of one storage included) survive Swift → file → Swift and Swift → Python.
    func testSwiftTensorsRoundTrip() throws {
        let base = try Tensor((0..<30).map { Float($0) }, shape: [30])
        let view = try base.asStrided(shape: [3, 4], strides: [1, 5], offset: 7)
        let scalar = try Tensor(scalar: Int64(-3))
        let half = try Tensor([Float(1.5), -2], shape: [2]).to(.float16)
        var d = CheckpointDict(ordered: true)
        d["base"] = .tensor(base)
        d["view"] = .tensor(view)
        d["scalar"] = .tensor(scalar)
        d["half"] = .tensor(half)
        d["empty"] = .tensor(try Tensor.zeros([0, 3]))
        d["param"] = .tensor(try Tensor([Float(0.25), 4], shape: [2]).requiresGrad_())
        let bytes = try CheckpointWriter.encode(.dict(d))
        let back = try Checkpoint.load(bytes: bytes).stateDict()
        XCTAssertEqual(back.keys, ["base", "view", "scalar", "half", "empty", "param"])
        XCTAssertEqual(try back["param"]!.floats(), [0.25, 4])
        XCTAssertTrue(back["view"]!.sharesStorage(with: back["base"]!))
        XCTAssertEqual(back["view"]!.strides, [1, 5])
        XCTAssertEqual(back["view"]!.storageOffset, 7)
        XCTAssertEqual(try back["view"]!.floats(), try view.floats())
        XCTAssertEqual(try back["scalar"]!.itemInt(), -3)
        XCTAssertEqual(try back["half"]!.floats(), [1.5, -2])
        XCTAssertEqual(back["empty"]!.shape, [0, 3])
        let path = try Repo.temporaryDirectory("ckpt-rt") + "/t.pth"
        try CheckpointWriter.save(.dict(d), to: path)
        let r = try python("""
            sd = torch.load(\(String(reflecting: path)))
            out['view'] = sd['view']
            out['stride'] = list(sd['view'].stride())
            out['shares'] = sd['view'].untyped_storage().data_ptr() == sd['base'].untyped_storage().data_ptr()
            """)
        assertClose(view, r["view"], atol: 0, rtol: 0)
        XCTAssertEqual(r["stride"] as? [Int], [1, 5])
        XCTAssertEqual(r["shares"] as? Bool, true)
    }

    /// safetensors: Swift writes (views become contiguous), Python's safetensors package reads it; and Swift reads
    /// what Python wrote (ReadTests).
    func testSafetensorsRoundTripThroughPython() throws {
        let src = try Checkpoint.load(try Fixtures.path("dtypes.legacy.pth")).stateDict()
        let views = try Checkpoint.load(try Fixtures.path("views.pth")).stateDict()
        let dir = try Repo.temporaryDirectory("ckpt-st")
        let path = dir + "/out.safetensors"
        try Safetensors.write(src.ordered + [("matrix_t", views["matrix_t"]!), ("grid_cols", views["grid_cols"]!)],
                              metadata: ["format": "pt", "by": "swift \"quoted\"\n"], to: path)
        let r = try python(pythonCompare + """
            from safetensors import safe_open
            from safetensors.torch import load_file
            got = load_file(\(String(reflecting: path)))
            ref = dict(torch.load(\(String(reflecting: try Fixtures.path("dtypes.pth")))))
            views = torch.load(\(String(reflecting: try Fixtures.path("views.pth"))))
            ref['matrix_t'] = views['matrix_t'].contiguous()
            ref['grid_cols'] = views['grid_cols'].contiguous()
            out['diff'] = [k for k in ref if same(ref[k].contiguous(), got[k])] + sorted(set(got) ^ set(ref))
            with safe_open(\(String(reflecting: path)), 'pt') as f:
                out['meta'] = f.metadata()
            """)
        XCTAssertEqual(r["diff"] as? [String], [])
        XCTAssertEqual(r["meta"] as? [String: String], ["format": "pt", "by": "swift \"quoted\"\n"])
        let back = try Checkpoint.load(path)
        XCTAssertEqual(back.format, .safetensors)
        XCTAssertEqual(try back.stateDict().keys, src.keys + ["matrix_t", "grid_cols"])
        XCTAssertEqual(back.safetensorsMetadata["by"], "swift \"quoted\"\n")
    }

    /// zip64 records (what torch writes for files over 4 GB), forced on a small file: both readers accept them.
    func testZip64RecordsReadInSwiftAndPython() throws {
        let src = try Checkpoint.load(try Fixtures.path("views.legacy.pth"))
        let sink = MemorySink()
        try CheckpointWriter.write(src.root, to: sink, forceZip64: true)
        let path = try Repo.temporaryDirectory("ckpt-zip64") + "/z64.pth"
        try Data(sink.bytes).write(to: URL(fileURLWithPath: path))
        let back = try Checkpoint.load(path)
        XCTAssertEqual(back.format, .zip)
        XCTAssertEqual(try back.stateDict().keys, try src.stateDict().keys)
        XCTAssertEqual(try Fixtures.rawBytes(try back.stateDict()["matrix_t"]!), try Fixtures.rawBytes(try src.stateDict()["matrix_t"]!))
        let r = try python(pythonCompare + """
            import zipfile
            a = torch.load(\(String(reflecting: try Fixtures.path("views.pth"))))
            b = torch.load(\(String(reflecting: path)))
            out['diff'] = same(a, b) or ''
            out['zip64'] = all(i.extract_version >= 45 for i in zipfile.ZipFile(\(String(reflecting: path))).infolist())
            """)
        XCTAssertEqual(r["diff"] as? String, "")
        XCTAssertEqual(r["zip64"] as? Bool, true)
    }

    /// A write that fails leaves neither the target nor a temporary file; an existing file stays as it was.
    func testFailedWritesLeaveNothingHalfWritten() throws {
        let dir = try Repo.temporaryDirectory("ckpt-atomic")
        let target = dir + "/model.pth"
        var deep = CheckpointValue.list([])
        for _ in 0..<1100 { deep = .list([deep]) }
        var d = CheckpointDict()
        d["state_dict"] = .dict(CheckpointDict([("w", .tensor(try Tensor.ones([1000])))], ordered: true))
        d["deep"] = deep
        assertCheckpointError(.limitExceeded, ["deeper than 1000", target]) { try CheckpointWriter.save(.dict(d), to: target) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])

        try Data("previous".utf8).write(to: URL(fileURLWithPath: target))
        assertCheckpointError(.limitExceeded, ["deeper than 1000"]) { try CheckpointWriter.save(.dict(d), to: target) }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "previous")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.pth"])

        assertCheckpointError(.io, ["no/such/dir", "cannot create"]) {
            try CheckpointWriter.save(.dict(CheckpointDict()), to: dir + "/no/such/dir/x.pth")
        }
        assertCheckpointError(.invalidArgument, ["duplicate or reserved key", "'a'"]) {
            let t = try Tensor.ones([2])
            try Safetensors.write([("a", t), ("a", t)], to: dir + "/x.safetensors")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.pth"])
    }
}
