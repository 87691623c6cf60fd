"""One process of the Python side of `ghm bench dist`: torch.distributed (gloo) all-reduce of a gradient-sized
tensor list, the same work as the Swift workers (Sources/GHMTools/DistWorker.swift).

Started by `ghm bench dist` with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT set (as torchrun does).
Fills float32 tensors with (rank + 1) * (i % 7 + 1), all-reduces them once (one flat buffer, copied back) and checks
the sums exactly, then times --iterations all-reduces after one untimed. Rank 0's last line is JSON:
{"rank", "median_ms", "exact", "tensors", "floats"}.
"""
import argparse
import datetime
import json
import statistics
import time

import torch
import torch.distributed as dist

PATTERN = [2_359_296, 512, 589_824, 256]  # 3x3x512x512, 512, 3x3x256x256, 256: as DistBenchmark.sizes


def sizes(floats):
    out, left, i = [], floats, 0
    while left > 0:
        n = min(PATTERN[i % len(PATTERN)], left)
        out.append(n)
        left -= n
        i += 1
    return out


def filled(n, factor):
    return ((torch.arange(n) % 7 + 1) * factor).to(torch.float32)


def all_reduce_sum(tensors):
    flat = torch.cat([t.reshape(-1) for t in tensors]) if len(tensors) > 1 else tensors[0].view(-1)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    if len(tensors) > 1:
        off = 0
        for t in tensors:
            t.copy_(flat[off:off + t.numel()].view_as(t))
            off += t.numel()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floats", type=int, default=38_000_000)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=60)
    a = ap.parse_args()
    dist.init_process_group("gloo", init_method="env://", timeout=datetime.timedelta(seconds=a.timeout))
    rank, world = dist.get_rank(), dist.get_world_size()
    ss = sizes(a.floats)
    ts = [filled(n, rank + 1) for n in ss]
    with torch.no_grad():
        all_reduce_sum(ts)
        for i, (t, n) in enumerate(zip(ts, ss)):
            if not torch.equal(t, filled(n, world * (world + 1) // 2)):
                raise SystemExit(f"rank {rank}: tensor {i} of the all-reduce is not exact")
        dist.barrier()
        times = []
        for r in range(a.iterations + 1):
            t0 = time.perf_counter()
            all_reduce_sum(ts)
            if r > 0:
                times.append(time.perf_counter() - t0)
    print(json.dumps({"rank": rank, "median_ms": statistics.median(times) * 1000, "exact": True,
                      "tensors": len(ts), "floats": a.floats}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
