/// numpy's legacy global random stream (`np.random.seed(int)` → MT19937 `init_genrand`) and the exact algorithms of
/// numpy 1.26's legacy `RandomState` that MMDetection's `GroupSampler` and `RandomFlip` reach, so that the same seed
/// gives the same sample order and flip draws as mmdet (`tools/legacy_np_rng.py` is the executable documentation).
///
/// The state is plain values (624 words + position), saved in training checkpoints for an exact resume.
public struct LegacyRandom: Equatable, Sendable {
    public private(set) var key: [UInt32]
    public private(set) var position: Int

    /// `np.random.seed(seed)` for 0 ≤ seed < 2³² (Knuth's `init_genrand`).
    public init(seed: UInt32) {
        var mt = [UInt32](repeating: 0, count: 624)
        mt[0] = seed
        for i in 1..<624 {
            mt[i] = 1_812_433_253 &* (mt[i - 1] ^ (mt[i - 1] >> 30)) &+ UInt32(i)
        }
        key = mt
        position = 624
    }

    /// A saved state (`key` of 624 words, `position` in 0...624), as `np.random.get_state()` gives it.
    public init(key: [UInt32], position: Int) throws(TrainingError) {
        guard key.count == 624, (0...624).contains(position) else {
            throw TrainingError("random state: expected 624 words and a position in 0...624, got \(key.count) and \(position)")
        }
        self.key = key
        self.position = position
    }

    /// The next tempered 32-bit word.
    public mutating func next32() -> UInt32 {
        if position >= 624 { regenerate() }
        var y = key[position]
        position += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func regenerate() {
        for i in 0..<624 {
            let y = (key[i] & 0x8000_0000) | (key[(i + 1) % 624] & 0x7FFF_FFFF)
            key[i] = key[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_B0DF : 0)
        }
        position = 0
    }

    /// The smallest all-ones mask ≥ `m`.
    private static func mask(_ m: UInt32) -> UInt32 {
        var x = m
        x |= x >> 1; x |= x >> 2; x |= x >> 4; x |= x >> 8; x |= x >> 16
        return x
    }

    /// numpy's `random_interval(max)`: uniform in 0...max by masked rejection, one word per try.
    public mutating func interval(_ max: Int) -> Int {
        guard max > 0 else { return 0 }
        let m = UInt32(max), mask = Self.mask(m)
        while true {
            let v = next32() & mask
            if v <= m { return Int(v) }
        }
    }

    /// `RandomState.shuffle` of a 1-D sequence (Fisher–Yates from the end).
    public mutating func shuffle<T>(_ x: inout [T]) {
        guard x.count > 1 else { return }
        for i in stride(from: x.count - 1, through: 1, by: -1) {
            let j = interval(i)
            x.swapAt(i, j)
        }
    }

    /// `RandomState.permutation(n)`.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }

    /// `RandomState.randint(0, n, size=k)` (int64, n ≤ 2³²): masked rejection on 32-bit words; no draw when n = 1.
    public mutating func randint(below n: Int, count k: Int) -> [Int] {
        precondition(n >= 1)
        let r = UInt32(n - 1)
        guard r > 0 else { return Array(repeating: 0, count: k) }
        let mask = Self.mask(r)
        return (0..<k).map { _ in
            while true {
                let v = next32() & mask
                if v <= r { return Int(v) }
            }
        }
    }

    /// `RandomState.choice(a, k)` (with replacement, no `p`).
    public mutating func choice<T>(_ a: [T], count k: Int) -> [T] {
        randint(below: a.count, count: k).map { a[$0] }
    }

    /// `random_sample()`: 53 bits from two words.
    public mutating func randomSample() -> Double {
        let a = Double(next32() >> 5), b = Double(next32() >> 6)
        return (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `RandomFlip`'s draw `np.random.choice(['horizontal', None], p=[r, 1 − r])`: one `random_sample`, flipped
    /// when it falls below the normalised first cdf entry.
    public mutating func flipDraw(ratio: Double) -> Bool {
        let c0 = ratio, c1 = ratio + (1 - ratio)
        return randomSample() < c0 / c1
    }
}
