#!/usr/bin/env python3
"""End-to-end detection latency of MMDetection 2.16.0 (run in .venv-mmdet).

    .venv-mmdet/bin/python tools/bench_mmdet_detect.py --image IMG --checkpoint CK.pth
        [--img-scale W H] [--threads N] [--warmup K] [--runs R]

One timed run = ``mmdet.apis.inference_detector(model, IMG)``: LoadImageFromFile (decode from the file),
Resize/Normalize/Pad, collate, forward (backbone, FPN, head) and post-processing (top-k, decode, NMS) with
rescale, exactly as mmdet's API does on CPU. The model comes from mmdet's own GHM config
(``retinanet_ghm_r50_fpn_1x_coco.py``, img_scale overridable, default 1333x800) and the checkpoint
(mmcv's ``load_checkpoint``; any mmdet-format .pth, e.g. one written by tools/mmdet_reference.py).
NMS runs through the pure-torch ``mmcv._ext.nms`` shim of tools/mmdet_shims (mmcv 1.4.0 lite has no
compiled ops); with a few hundred candidates it costs a few ms, negligible beside the forward.

stdout: exactly one JSON line
    {"median_ms": ..., "runs": [...], "threads": N, "torch": "2.13.0+cpu", "warmup": K, "img_scale": [W, H],
     "input_shape": [1, 3, H, W], "num_dets": n, "mean_ms": ..., "min_ms": ..., "tool": "mmdet-2.16.0"}
Progress goes to stderr. Exit status 1 with an "ERROR:" line on failure.
"""

import argparse
import json
import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))


def log(msg):
    print(f"[bench_mmdet_detect] {msg}", file=sys.stderr, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="MMDetection 2.16.0 end-to-end detect latency")
    ap.add_argument("--image", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--img-scale", type=int, nargs=2, default=(1333, 800), metavar=("W", "H"))
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's default)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs, >= 5 (default 7)")
    args = ap.parse_args(argv)
    if args.runs < 5:
        ap.error("--runs must be >= 5")
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be >= 1")
    for p in (args.image, args.checkpoint):
        if not os.path.isfile(p):
            ap.error(f"file not found: {p}")

    import mmdet_reference as R  # shims, config loading and mmcv logger setup shared with the reference tool
    R.import_mmdet()
    import torch
    from mmcv.runner import load_checkpoint
    from mmdet.apis import inference_detector
    from mmdet.models import build_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, _ = R.load_config(args.img_scale)
    cfg.model.train_cfg = None
    model = build_detector(cfg.model, test_cfg=cfg.get("test_cfg"))
    import contextlib
    with contextlib.redirect_stdout(sys.stderr):  # mmcv prints "load checkpoint from ..." on stdout
        ck = load_checkpoint(model, args.checkpoint, map_location="cpu", strict=True)
    model.CLASSES = ck.get("meta", {}).get("CLASSES", R.COCO_CLASSES)
    model.cfg = cfg
    model.eval()
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads; img_scale {tuple(args.img_scale)}; "
        f"{args.warmup} warm-up + {args.runs} timed runs")

    def once():
        t = time.perf_counter()
        res = inference_detector(model, args.image)
        return (time.perf_counter() - t) * 1000.0, res

    for i in range(args.warmup):
        ms, _ = once()
        log(f"warm-up {i + 1}: {ms:.1f} ms")
    runs, res = [], None
    for i in range(args.runs):
        ms, res = once()
        runs.append(round(ms, 3))
        log(f"run {i + 1}: {ms:.1f} ms")
    num_dets = int(sum(len(r) for r in res))
    img, _, _ = R.preprocess(cfg, [args.image])
    out = {
        "median_ms": round(statistics.median(runs), 3),
        "runs": runs,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "warmup": args.warmup,
        "img_scale": list(args.img_scale),
        "input_shape": list(img.shape),
        "num_dets": num_dets,
        "mean_ms": round(statistics.fmean(runs), 3),
        "min_ms": round(min(runs), 3),
        "tool": "mmdet-2.16.0",
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:
        import traceback
        if not (hasattr(e, "__module__") and type(e).__name__ == "RefError"):
            traceback.print_exc()
        print(f"[bench_mmdet_detect] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
