#!/usr/bin/env python3
"""Times MMDetection 2.16.0's GHM-C + GHM-R and FocalLoss + L1Loss (forward + backward) over the five FPN levels of
a 2-image 1333x800 batch, like `ghm bench loss` does in Swift. Run in .venv-mmdet; prints one JSON line.

    .venv-mmdet/bin/python tools/bench_loss.py [--runs 7] [--threads N]
"""
import argparse, json, os, statistics, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "mmdet_shims"))
import ghm_mmdet_shims  # noqa: E402

ghm_mmdet_shims.install()
import torch  # noqa: E402
from mmdet.models.losses.focal_loss import FocalLoss  # noqa: E402
from mmdet.models.losses.ghm_loss import GHMC, GHMR  # noqa: E402
from mmdet.models.losses.smooth_l1_loss import L1Loss  # noqa: E402

LEVELS = [(100, 168), (50, 84), (25, 42), (13, 21), (7, 11)]


def inputs(seed=0, batch=2, anchors=9, classes=80):
    g = torch.Generator().manual_seed(seed)
    out = []
    for h, w in LEVELS:
        m = batch * h * w * anchors
        logits = torch.randn(m, classes, generator=g) * 2 - 4
        labels = torch.full((m,), classes, dtype=torch.long)
        pos = torch.rand(m, generator=g) < 0.002
        labels[pos] = torch.randint(0, classes, (int(pos.sum()),), generator=g)
        lw = (torch.rand(m, generator=g) > 0.05).float()
        deltas = torch.randn(m, 4, generator=g) * 0.3
        targets = torch.randn(m, 4, generator=g) * 0.3 * pos.float().view(-1, 1)
        bw = pos.float().view(-1, 1).expand(m, 4).contiguous()
        out.append((logits, labels, lw, deltas, targets, bw, max(int(pos.sum()), 1)))
    return out


def time_pair(cls_fn, reg_fn, data, runs, warmup=2):
    times = []
    for r in range(warmup + runs):
        t0 = time.perf_counter()
        for logits, labels, lw, deltas, targets, bw, npos in data:
            x = logits.clone().requires_grad_(True)
            d = deltas.clone().requires_grad_(True)
            loss = cls_fn(x, labels, lw, avg_factor=npos) + reg_fn(d, targets, bw, avg_factor=npos)
            loss.backward()
        if r >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    data = inputs()
    ghm = time_pair(GHMC(bins=30, momentum=0.75), GHMR(mu=0.02, bins=10, momentum=0.7, loss_weight=10.0), data, a.runs)
    focal = time_pair(FocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.25), L1Loss(), data, a.runs)
    print(json.dumps({"ghm_s": ghm, "focal_s": focal, "ratio": ghm / focal, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
