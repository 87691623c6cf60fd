import TestSupport
import XCTest

@testable import Torch

/// Every op family against Python torch (same libtorch, same seeds) from the project venv at test time.
final class TorchOpsTests: XCTestCase {
    /// Inputs shared by both sides: seeded normals (the same generator in libtorch and in Python torch).
    static let pythonInputs = """
        torch.manual_seed(0)
        x = torch.randn(3, 4)
        y = torch.randn(3, 4)
        v = torch.randn(2, 3, 4, 5)

        """

    func inputs() throws -> (x: Tensor, y: Tensor, v: Tensor) {
        try Torch.manualSeed(0)
        let x = try Tensor.randn([3, 4])
        let y = try Tensor.randn([3, 4])
        let v = try Tensor.randn([2, 3, 4, 5])
        return (x, y, v)
    }

    func testCreation() throws {
        let ref = try python(Self.pythonInputs + """
            out['x'] = x
            out['arange'] = torch.arange(2, 11, 3)
            out['arangef'] = torch.arange(0.5, 2.0, 0.25)
            out['linspace'] = torch.linspace(-1, 1, 7)
            out['full'] = torch.full((2, 2), 3.5)
            torch.manual_seed(7); out['rand'] = torch.rand(5)
            torch.manual_seed(7); out['randint'] = torch.randint(0, 10, (6,))
            torch.manual_seed(7); out['randperm'] = torch.randperm(8)
            torch.manual_seed(3); t = torch.empty(4); t.normal_(1.0, 2.0); out['normal_'] = t
            torch.manual_seed(3); t = torch.empty(4); t.uniform_(-2.0, 2.0); out['uniform_'] = t
            """)
        let (x, _, _) = try inputs()
        assertClose(x, ref["x"], atol: 0, rtol: 0, "randn")
        assertClose(try Tensor.arange(2, 11, step: 3), ref["arange"], atol: 0, rtol: 0)
        assertClose(try Tensor.arange(0.5, 2.0, step: 0.25, dtype: .float32), ref["arangef"], atol: 0, rtol: 0)
        assertClose(try Tensor.linspace(-1, 1, steps: 7), ref["linspace"], atol: 0, rtol: 0)
        assertClose(try Tensor.full([2, 2], 3.5), ref["full"], atol: 0, rtol: 0)
        try Torch.manualSeed(7)
        assertClose(try Tensor.rand([5]), ref["rand"], atol: 0, rtol: 0)
        try Torch.manualSeed(7)
        assertClose(try Tensor.randint(0, 10, [6]), ref["randint"], atol: 0, rtol: 0)
        try Torch.manualSeed(7)
        assertClose(try Tensor.randperm(8), ref["randperm"], atol: 0, rtol: 0)
        try Torch.manualSeed(3)
        assertClose(try Tensor.empty([4]).normal_(mean: 1, std: 2), ref["normal_"], atol: 0, rtol: 0)
        try Torch.manualSeed(3)
        assertClose(try Tensor.empty([4]).uniform_(from: -2, to: 2), ref["uniform_"], atol: 0, rtol: 0)
    }

    func testArraysAndDTypes() throws {
        let f = try Tensor([1.5, -2.25, 3, 4, 5, 6] as [Float], shape: [2, 3])
        XCTAssertEqual(f.shape, [2, 3])
        XCTAssertEqual(try f.dtype, .float32)
        XCTAssertEqual(try f.device, .cpu)
        XCTAssertEqual(try f.floats(), [1.5, -2.25, 3, 4, 5, 6])
        XCTAssertEqual(try f.to(.int64).int64s(), [1, -2, 3, 4, 5, 6])
        XCTAssertEqual(try f.to(.float64).doubles(), [1.5, -2.25, 3, 4, 5, 6])
        XCTAssertEqual(try Tensor([0, 255, 7] as [UInt8]).bytes(), [0, 255, 7])
        XCTAssertEqual(try Tensor([true, false] as [Bool]).bools(), [true, false])
        XCTAssertEqual(try Tensor([Int32(-3)]).toArray(Int32.self), [-3])
        XCTAssertEqual(try Tensor(scalar: Float(2.5)).item(), 2.5)
        XCTAssertEqual(try Tensor(scalar: Int64(42)).itemInt(), 42)
        XCTAssertEqual(f.description, "Tensor(shape: [2, 3], dtype: float32, device: cpu)")
        XCTAssertThrowsError(try Tensor([1, 2, 3] as [Float], shape: [2, 2])) { e in
            XCTAssertEqual((e as? TorchError)?.op, "Tensor.init")
        }
        // half and bfloat16 round-trip through float32
        XCTAssertEqual(try f.to(.float16).floats(), [1.5, -2.25, 3, 4, 5, 6])
        XCTAssertEqual(try f.to(.bfloat16).floats(), [1.5, -2.25, 3, 4, 5, 6])
        // integer tensor + integer scalar stays integral, + floating scalar promotes
        let i = try Tensor([1, 2] as [Int64])
        XCTAssertEqual(try (i + 2).dtype, .int64)
        XCTAssertEqual(try (i + 0.5).dtype, .float32)
        XCTAssertEqual(try (i .> 1).dtype, .bool)
        // whole-number clamp bounds keep integer tensors integral (torch would promote a float bound)
        XCTAssertEqual(try i.clamp(min: 0, max: 1).dtype, .int64)
        XCTAssertEqual(try i.clamp(min: 0, max: 1).int64s(), [1, 1])
        XCTAssertEqual(try i.clamp(max: 1.5).dtype, .float32)
    }

    func testElementwise() throws {
        let ref = try python(Self.pythonInputs + """
            a = x.abs() + 0.1
            out.update(neg=-x, exp=x.exp(), log=a.log(), sqrt=a.sqrt(), abs=x.abs(), sigmoid=x.sigmoid(),
                       relu=x.relu(), floor=x.floor(), ceil=x.ceil(), round=x.round(), sign=x.sign(),
                       log1p=a.log1p(), tanh=x.tanh(), reciprocal=a.reciprocal(), square=x.square(),
                       logsig=torch.nn.functional.logsigmoid(x), isnan=(x / 0 * 0).isnan())
            out.update(add=x + y, sub=x - y, mul=x * y, div=x / y, pow=a ** y, maximum=torch.maximum(x, y),
                       minimum=torch.minimum(x, y), eq=(x == x), ne=(x != y), lt=(x < y), le=(x <= y), gt=(x > y),
                       ge=(x >= y), land=torch.logical_and(x > 0, y > 0), lor=torch.logical_or(x > 0, y > 0))
            out.update(adds=x + 2, subs=x - 0.5, muls=x * 3, divs=x / 4, rsub=1 - x, rdiv=2 / a, pows=a ** 1.5,
                       fdiv=torch.div(x * 5, 2, rounding_mode='floor'), rem=torch.remainder(x * 5, 2),
                       alpha=torch.add(x, y, alpha=-0.3))
            out.update(clamp=x.clamp(-0.5, 0.7), clampmin=x.clamp(min=0), where=torch.where(x > y, x, y),
                       mfill=x.masked_fill(x < 0, -9.0), clampt=torch.clamp(x, min=y))
            z = x.clone(); z.add_(y); z.mul_(2); z.sub_(1); z.div_(3); z.add_(y, alpha=0.5); z.clamp_(max=1); out['inplace'] = z
            z = x.clone(); z.exp_(); z.log_(); z.sigmoid_(); out['inplace_unary'] = z
            """)
        let (x, y, _) = try inputs()
        let a = try x.abs() + 0.1
        let unary: [(String, Tensor)] = [
            ("neg", try -x), ("exp", try x.exp()), ("log", try a.log()), ("sqrt", try a.sqrt()), ("abs", try x.abs()),
            ("sigmoid", try x.sigmoid()), ("relu", try x.relu()), ("floor", try x.floor()), ("ceil", try x.ceil()),
            ("round", try x.round()), ("sign", try x.sign()), ("log1p", try a.log1p()), ("tanh", try x.tanh()),
            ("reciprocal", try a.reciprocal()), ("square", try x.square()), ("logsig", try x.logSigmoid()),
            ("isnan", try (x / 0 * 0).isnan()),
        ]
        for (name, t) in unary { assertClose(t, ref[name], atol: 0, rtol: 0, name) }
        let binary: [(String, Tensor)] = [
            ("add", try x + y), ("sub", try x - y), ("mul", try x * y), ("div", try x / y), ("pow", try a.pow(y)),
            ("maximum", try x.maximum(y)), ("minimum", try x.minimum(y)), ("eq", try x .== x), ("ne", try x .!= y),
            ("lt", try x .< y), ("le", try x .<= y), ("gt", try x .> y), ("ge", try x .>= y),
            ("land", try (x .> 0) .& (y .> 0)), ("lor", try (x .> 0) .| (y .> 0)),
            ("adds", try x + 2), ("subs", try x - 0.5), ("muls", try x * 3), ("divs", try x / 4), ("rsub", try 1 - x),
            ("rdiv", try 2 / a), ("pows", try a.pow(1.5)), ("fdiv", try (x * 5).floorDivide(2)),
            ("rem", try (x * 5).remainder(2)), ("alpha", try x.add(y, alpha: -0.3)),
            ("clamp", try x.clamp(min: -0.5, max: 0.7)), ("clampmin", try x.clamp(min: 0)),
            ("where", try Tensor.where(x .> y, x, y)), ("mfill", try x.maskedFill(x .< 0, -9.0)),
            ("clampt", try x.clamp(min: y, max: nil)),
        ]
        for (name, t) in binary { assertClose(t, ref[name], atol: 0, rtol: 0, name) }
        let z = try x.clone()
        try z.add_(y).mul_(2).sub_(1).div_(3).add_(y, alpha: 0.5).clamp_(max: 1)
        assertClose(z, ref["inplace"], atol: 0, rtol: 0, "inplace")
        let u = try x.clone()
        try u.exp_().log_().sigmoid_()
        assertClose(u, ref["inplace_unary"], atol: 0, rtol: 0, "inplace_unary")
    }

    func testReductions() throws {
        let ref = try python(Self.pythonInputs + """
            out.update(sum=x.sum(), sum1=x.sum(1), sumk=v.sum((1, 3), keepdim=True), mean=v.mean(), mean0=x.mean(0),
                       amax=v.amax(2), amin=x.amin(), anyt=(x > 1).any(1), allt=(x > -3).all(), norm=x.norm(),
                       vnorm=torch.linalg.vector_norm(v, 2), cumsum=x.cumsum(1), argmax=x.argmax(), argmax1=x.argmax(1),
                       argmin0=x.argmin(0), prod=x[0].prod(), cnz=(x > 0).count_nonzero())
            m = x.max(1); out['maxv'] = m.values; out['maxi'] = m.indices
            m = x.min(0, keepdim=True); out['minv'] = m.values; out['mini'] = m.indices
            t = v.reshape(-1).topk(7); out['topv'] = t.values; out['topi'] = t.indices
            t = x.topk(2, dim=0, largest=False); out['botv'] = t.values; out['boti'] = t.indices
            s = x.sort(1, descending=True); out['sortv'] = s.values; out['sorti'] = s.indices
            out['argsort'] = torch.tensor([3, 1, 2, 1, 3, 0]).argsort(stable=True)
            out['sumi'] = torch.tensor([1, 2, 3]).sum(); out['sumd'] = x.sum(dtype=torch.float64)
            """)
        let (x, _, v) = try inputs()
        let cases: [(String, Tensor)] = [
            ("sum", try x.sum()), ("sum1", try x.sum(dim: 1)), ("sumk", try v.sum([1, 3], keepDim: true)),
            ("mean", try v.mean()), ("mean0", try x.mean(dim: 0)), ("amax", try v.amax([2])), ("amin", try x.amin()),
            ("anyt", try (x .> 1).any([1])), ("allt", try (x .> -3).all()), ("norm", try x.norm()),
            ("vnorm", try v.vectorNorm(ord: 2)), ("cumsum", try x.cumsum(dim: 1)), ("argmax", try x.argmax()),
            ("argmax1", try x.argmax(dim: 1)), ("argmin0", try x.argmin(dim: 0)), ("prod", try x[0].prod()),
            ("cnz", try (x .> 0).countNonzero()),
            ("maxv", try x.max(dim: 1).values), ("maxi", try x.max(dim: 1).indices),
            ("minv", try x.min(dim: 0, keepDim: true).values), ("mini", try x.min(dim: 0, keepDim: true).indices),
            ("topv", try v.reshape([-1]).topk(7).values), ("topi", try v.reshape([-1]).topk(7).indices),
            ("botv", try x.topk(2, dim: 0, largest: false).values), ("boti", try x.topk(2, dim: 0, largest: false).indices),
            ("sortv", try x.sort(dim: 1, descending: true).values), ("sorti", try x.sort(dim: 1, descending: true).indices),
            ("argsort", try Tensor([3, 1, 2, 1, 3, 0] as [Int64]).argsort(stable: true)),
            ("sumi", try Tensor([1, 2, 3] as [Int64]).sum()), ("sumd", try x.sum(dtype: .float64)),
        ]
        for (name, t) in cases { assertClose(t, ref[name], atol: 0, rtol: 0, name) }
        XCTAssertEqual(try Tensor([1, 2, 3] as [Int64]).sum().dtype, .int64)
    }

    func testShapeAndIndexing() throws {
        let ref = try python(Self.pythonInputs + """
            out.update(reshape=v.reshape(6, -1), permute=v.permute(0, 2, 3, 1), transpose=x.t(), flatten=v.flatten(1),
                       unsq=x.unsqueeze(1), squeeze=x.unsqueeze(0).squeeze(0), expand=x[:, :1].expand(3, 5),
                       repeat=x.repeat(2, 1), flip=x.flip(1), narrow=v.narrow(2, 1, 2), slice=v[:, :, 1::2],
                       select=v[1], isel=x.index_select(1, torch.tensor([3, 0])),
                       gather=x.gather(1, torch.tensor([[0, 1], [2, 3], [1, 1]])),
                       scatter=torch.zeros(3, 4).scatter(1, torch.tensor([[0], [2], [3]]), x[:, :1]),
                       scatterv=torch.zeros(3, 4).scatter(1, torch.tensor([[1], [0], [2]]), 5.0),
                       scatteradd=torch.zeros(5).scatter_add(0, torch.tensor([0, 1, 1, 4]), torch.tensor([1., 2., 3., 4.])),
                       mselect=x.masked_select(x > 0), nonzero=(x > 0).nonzero(), cat=torch.cat([x, y], 1),
                       stack=torch.stack([x, y], 0), boolidx=x[x[:, 0] > -10], intidx=x[torch.tensor([2, 0, 2])],
                       unique=torch.tensor([3, 1, 3, 2, 1]).unique(sorted=True), pad=torch.nn.functional.pad(x, (1, 2, 0, 1), value=-1.0))
            s = v.split([2, 3], dim=3); out['split0'] = s[0]; out['split1'] = s[1]
            z = x.clone(); z[x > 0] = torch.tensor(7.0); out['iput'] = z
            z = torch.zeros(5); z.index_put_((torch.tensor([0, 2, 2]),), torch.tensor([1., 2., 3.]), accumulate=True); out['iputacc'] = z
            z = torch.zeros(5); z.index_add_(0, torch.tensor([1, 1, 3]), torch.tensor([1., 2., 3.])); out['iadd'] = z
            z = x.clone(); z[torch.tensor([True, False, True])] = 0.5; out['ifill'] = z
            """)
        let (x, y, v) = try inputs()
        let cases: [(String, Tensor)] = [
            ("reshape", try v.reshape([6, -1])), ("permute", try v.permute([0, 2, 3, 1])), ("transpose", try x.transpose(0, 1)),
            ("flatten", try v.flatten(start: 1)), ("unsq", try x.unsqueeze(1)), ("squeeze", try x.unsqueeze(0).squeeze(0)),
            ("expand", try x.slice(dim: 1, end: 1).expand([3, 5])), ("repeat", try x.repeated([2, 1])), ("flip", try x.flip([1])),
            ("narrow", try v.narrow(dim: 2, start: 1, length: 2)), ("slice", try v.slice(dim: 2, start: 1, step: 2)),
            ("select", try v[1]), ("isel", try x.indexSelect(dim: 1, index: Tensor([3, 0] as [Int64]))),
            ("gather", try x.gather(dim: 1, index: Tensor([0, 1, 2, 3, 1, 1] as [Int64], shape: [3, 2]))),
            ("scatter", try Tensor.zeros([3, 4]).scatter(dim: 1, index: Tensor([0, 2, 3] as [Int64], shape: [3, 1]),
                                                         src: x.slice(dim: 1, end: 1))),
            ("scatterv", try Tensor.zeros([3, 4]).scatter(dim: 1, index: Tensor([1, 0, 2] as [Int64], shape: [3, 1]), value: 5.0)),
            ("scatteradd", try Tensor.zeros([5]).scatterAdd(dim: 0, index: Tensor([0, 1, 1, 4] as [Int64]),
                                                           src: Tensor([1, 2, 3, 4] as [Float]))),
            ("mselect", try x.maskedSelect(x .> 0)), ("nonzero", try (x .> 0).nonzero()), ("cat", try Tensor.cat([x, y], dim: 1)),
            ("stack", try Tensor.stack([x, y], dim: 0)), ("boolidx", try x[x.select(dim: 1, index: 0) .> -10]),
            ("intidx", try x[Tensor([2, 0, 2] as [Int64])]), ("unique", try Tensor([3, 1, 3, 2, 1] as [Int64]).uniqueSorted()),
            ("pad", try x.pad([1, 2, 0, 1], value: -1)),
        ]
        for (name, t) in cases { assertClose(t, ref[name], atol: 0, rtol: 0, name) }
        let parts = try v.split([2, 3], dim: 3)
        assertClose(parts[0], ref["split0"], atol: 0, rtol: 0)
        assertClose(parts[1], ref["split1"], atol: 0, rtol: 0)
        let z = try x.clone()
        try z.indexPut_(x .> 0, Tensor(scalar: Float(7)))
        assertClose(z, ref["iput"], atol: 0, rtol: 0, "iput")
        let acc = try Tensor.zeros([5])
        try acc.indexPut_(Tensor([0, 2, 2] as [Int64]), Tensor([1, 2, 3] as [Float]), accumulate: true)
        assertClose(acc, ref["iputacc"], atol: 0, rtol: 0, "iputacc")
        let ia = try Tensor.zeros([5])
        try ia.indexAdd_(dim: 0, index: Tensor([1, 1, 3] as [Int64]), src: Tensor([1, 2, 3] as [Float]))
        assertClose(ia, ref["iadd"], atol: 0, rtol: 0, "iadd")
        let f = try x.clone()
        try f.indexFill_(Tensor([true, false, true] as [Bool]), 0.5)
        assertClose(f, ref["ifill"], atol: 0, rtol: 0, "ifill")
        // Views share storage; strides and offsets are reported.
        let t = try v.permute([0, 2, 3, 1])
        XCTAssertTrue(t.sharesStorage(with: v))
        XCTAssertFalse(t.isContiguous)
        XCTAssertEqual(t.strides, [60, 5, 1, 20])
        XCTAssertEqual(try v.narrow(dim: 0, start: 1, length: 1).storageOffset, 60)
        XCTAssertFalse(try t.contiguous().sharesStorage(with: v))
    }

    func testCopyFillAndConversion() throws {
        let (x, _, _) = try inputs()
        let d = try Tensor.zeros([3, 4])
        try d.copy_(x)
        XCTAssertEqual(try d.floats(), try x.floats())
        try d.fill_(2.5)
        XCTAssertEqual(Set(try d.floats()), [2.5])
        let row = try Tensor.zeros([4], dtype: .float64)
        let b = try Tensor.zeros([3, 4])
        try b.copy_(row + 1)  // broadcast + dtype conversion
        XCTAssertEqual(Set(try b.floats()), [1])
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let s = try values.withUnsafeBytes { raw throws(TorchError) in try Tensor.storage(bytes: raw, dtype: .float32) }
        XCTAssertEqual(try s.asStrided(shape: [2, 2], strides: [1, 2], offset: 1).floats(), [2, 4, 3, 5])
        XCTAssertThrowsError(try s.asStrided(shape: [2, 2], strides: [1, 3], offset: 2)) { e in
            XCTAssertTrue("\(e)".contains("storage of 6 elements"), "\(e)")
        }
        XCTAssertThrowsError(try s.asStrided(shape: [Int(Int64.max / 2), 3], strides: [4, 1], offset: 0)) { e in
            XCTAssertTrue("\(e)".contains("overflow"), "\(e)")
        }
    }
}
