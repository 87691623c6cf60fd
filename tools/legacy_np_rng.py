#!/usr/bin/env python3
"""Pure-Python model of the numpy draws in an MMDetection 2.16.0 training epoch (executable documentation).

    python tools/legacy_np_rng.py --self-test                 # against numpy (needs numpy) for many cases
    python tools/legacy_np_rng.py --check-sampler-json F      # against `mmdet_train_reference.py sampler` output
    python tools/legacy_np_rng.py --flags 0,1,1,0,1 --seed 0 --epochs 2 [--samples-per-gpu 2] [--flip-ratio 0.5]

No numpy needed for the model itself: MT19937 seeded like ``np.random.seed(int)`` (legacy ``init_genrand``),
and numpy 1.26's legacy ``RandomState`` algorithms that mmdet's GroupSampler and RandomFlip reach:

* ``random_interval(max)``: 0 if max == 0; mask = max with all lower bits set; draw ``next32() & mask``
  until <= max (one 32-bit word per try).
* ``shuffle(x)`` (1-D ndarray): for i = n-1 down to 1: ``j = random_interval(i)``; swap x[i], x[j].
* ``permutation(range(k))``: shuffle of a copy of [0..k-1].
* ``choice(a, k)`` (no p, replace): ``randint(0, len(a), k)`` -> each value: rng = len(a)-1; 0 draws if rng == 0,
  else ``next32() & mask`` with rejection while > rng; returns a[value].
* ``choice(a, p=[r, 1-r])`` (size None): ``u = random_sample()`` = ((w1 >> 5) * 67108864 + (w2 >> 6)) / 2**53,
  two words; index = number of cdf entries <= u (searchsorted side='right') with cdf = cumsum(p) / cdf[-1];
  RandomFlip flips iff index == 0, i.e. u < cdf[0].

Epoch model (mmdet/datasets/samplers/group_sampler.py:23-45, RandomFlip transforms.py:449): for group
g = 0, 1 (only groups with members, ascending): shuffle the group's indices, append choice(group, pad)
(pad = ceil(size/spg)*spg - size; nothing drawn when 0); concatenate; shuffle the batch order
(permutation); then one flip draw per yielded index, in order (workers_per_gpu = 0). The next epoch's
sampler draws continue the same stream.
"""

import argparse
import json
import sys


class MT19937:
    def __init__(self, seed):
        if not 0 <= seed <= 0xFFFFFFFF:
            raise ValueError("seed must be in [0, 2**32)")
        self.mt = [0] * 624
        self.mt[0] = seed
        for i in range(1, 624):
            self.mt[i] = (1812433253 * (self.mt[i - 1] ^ (self.mt[i - 1] >> 30)) + i) & 0xFFFFFFFF
        self.idx = 624
        self.count = 0

    def next32(self):
        if self.idx >= 624:
            mt = self.mt
            for i in range(624):
                y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7FFFFFFF)
                mt[i] = mt[(i + 397) % 624] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
            self.idx = 0
        y = self.mt[self.idx]
        self.idx += 1
        self.count += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        return y


def _mask(m):
    for s in (1, 2, 4, 8, 16):
        m |= m >> s
    return m


def random_interval(rng, m):
    if m == 0:
        return 0
    mask = _mask(m)
    while True:
        v = rng.next32() & mask
        if v <= m:
            return v


def shuffle(rng, x):
    for i in range(len(x) - 1, 0, -1):
        j = random_interval(rng, i)
        x[i], x[j] = x[j], x[i]


def randint_below(rng, n, k):
    r = n - 1
    if r == 0:
        return [0] * k
    mask = _mask(r)
    out = []
    for _ in range(k):
        while True:
            v = rng.next32() & mask
            if v <= r:
                break
        out.append(v)
    return out


def random_sample(rng):
    a = rng.next32() >> 5
    b = rng.next32() >> 6
    return (a * 67108864.0 + b) / 9007199254740992.0


def flip_cdf0(flip_ratio):
    p = [float(flip_ratio), 1.0 - float(flip_ratio)]   # RandomFlip: [single_ratio, non_flip_ratio]
    c0, c1 = p[0], p[0] + p[1]
    return c0 / c1


def epochs(flags, seed, n_epochs, samples_per_gpu=2, flip_ratio=0.5):
    rng = MT19937(seed)
    out = []
    for e in range(n_epochs):
        indices = []
        for g in (0, 1):
            ind = [i for i, f in enumerate(flags) if f == g]
            if not ind:
                continue
            shuffle(rng, ind)
            extra = -(-len(ind) // samples_per_gpu) * samples_per_gpu - len(ind)
            ind = ind + [ind[j] for j in randint_below(rng, len(ind), extra)]
            indices += ind
        perm = list(range(len(indices) // samples_per_gpu))
        shuffle(rng, perm)
        order = [x for b in perm for x in indices[b * samples_per_gpu:(b + 1) * samples_per_gpu]]
        flips, us = None, None
        if flip_ratio is not None:
            c0 = flip_cdf0(flip_ratio)
            us = [random_sample(rng) for _ in order]
            flips = [u < c0 for u in us]
        out.append({"epoch": e + 1, "indices": order, "flips": flips, "uniforms": us, "words_used": rng.count})
    return out


def self_test():
    import random
    import numpy as np
    r = random.Random(1234)
    n_cases = 0
    for _ in range(300):
        seed = r.randrange(0, 2 ** 32)
        n = r.randrange(1, 40)
        ours = MT19937(seed)
        ref = np.random.RandomState(seed)
        x = list(range(n))
        a = np.arange(n)
        shuffle(ours, x)
        ref.shuffle(a)
        assert x == a.tolist(), ("shuffle", seed, n)
        k = r.randrange(0, 5)
        assert randint_below(ours, n, k) == ref.randint(0, n, size=k).tolist(), ("randint", seed, n)
        assert random_sample(ours) == ref.random_sample(), ("random_sample", seed)
        p = list(range(r.randrange(1, 30)))
        pa = np.random.RandomState()
        pa.set_state(ref.get_state())
        shuffle(ours, p)
        assert p == ref.permutation(range(len(p))).tolist(), ("permutation", seed)
        fr = r.choice([0.5, 0.3, 0.0, 1.0, 0.25])
        flip = ref.choice(["horizontal", None], p=[fr, 1 - fr]) is not None
        u = random_sample(ours)
        assert flip == (u < flip_cdf0(fr)), ("flip", seed, fr)
        n_cases += 1
    # the 624-word regeneration boundary
    ours, ref = MT19937(5), np.random.RandomState(5)
    for _ in range(2000):
        assert ours.next32() == int(ref.randint(0, 2 ** 32, dtype=np.uint32))
    return n_cases


def main(argv=None):
    ap = argparse.ArgumentParser(description="pure-Python model of mmdet's GroupSampler/RandomFlip numpy draws")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--check-sampler-json")
    ap.add_argument("--flags")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--samples-per-gpu", type=int, default=2)
    ap.add_argument("--flip-ratio", default="0.5")
    a = ap.parse_args(argv)
    if a.self_test:
        n = self_test()
        print(f"legacy_np_rng self-test: OK ({n} random cases against numpy {__import__('numpy').__version__})")
        return 0
    if a.check_sampler_json:
        with open(a.check_sampler_json) as f:
            d = json.load(f)
        got = epochs(d["flags"], d["seed"], d["epochs"], d["samples_per_gpu"], d["flip_ratio"])
        ok = all(g["indices"] == e["indices"] and (e["flips"] is None or g["flips"] == e["flips"])
                 for g, e in zip(got, d["epoch_orders"]))
        used = 0
        for g, e in zip(got, d["epoch_orders"]):
            used += e.get("words32_used", 0)
            ok = ok and ("words32_used" not in e or g["words_used"] == used)
            us = [dr["uniform"] for dr in e.get("numpy_draws", []) if "uniform" in dr]
            ok = ok and (not us or us == g["uniforms"])
        print(f"check {a.check_sampler_json}: {'OK' if ok else 'MISMATCH'} ({len(got)} epochs)")
        return 0 if ok else 1
    if a.flags is None:
        ap.error("give --self-test, --check-sampler-json or --flags")
    flags = [int(v) for v in a.flags.split(",")]
    fr = None if a.flip_ratio.lower() == "none" else float(a.flip_ratio)
    print(json.dumps(epochs(flags, a.seed, a.epochs, a.samples_per_gpu, fr)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
