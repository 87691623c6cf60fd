#!/usr/bin/env python3
"""One training iteration of MMDetection 2.16.0's GHM RetinaNet (run in .venv-mmdet), for `ghm bench train`.

    .venv-mmdet/bin/python tools/bench_mmdet_train.py --make-batch OUT.safetensors --image IMG --image2 IMG2
        [--img-scale W H]
    .venv-mmdet/bin/python tools/bench_mmdet_train.py --batch B.safetensors --checkpoint CK.pth
        [--threads N] [--warmup K] [--runs R]

``--make-batch`` writes the batch both sides train on: the two images through mmdet's own test pipeline
(``LoadImageFromFile``, ``Resize`` keep-ratio to img_scale (default 1333x800), ``Normalize``, ``Pad`` to a multiple
of 32; no random flip, so the batch is deterministic) and mmcv's ``collate`` (padded to the larger image):
``input`` (2, 3, H, W) float32, per image ``img_shape``, ``pad_shape``, ``ori_shape``, ``scale_factor`` (float32)
and the ground truth ``gt_bboxes`` (n, 4) float32 in pre-processed pixels and ``gt_labels`` (n) int64 (the
fixed set of ``mmdet_reference.default_gt``: large, medium, overlapping, small, border-touching, whole-image and
a 2-px-wide box); the second image's entries carry the suffix ".1". The Swift side reads the same file.

Timing: the model is built from mmdet's own config (``configs/ghm/retinanet_ghm_r50_fpn_1x_coco.py`` in the
installed package; backbone ``init_cfg`` removed), the checkpoint loaded with mmcv's ``load_checkpoint``
(strict), ``model.train()`` (ResNet keeps its BNs in eval: ``norm_eval=True``, ``frozen_stages=1``), the optimizer
built by mmcv's ``build_optimizer`` from the config's ``optimizer`` (SGD lr 0.01, momentum 0.9, weight_decay
1e-4, over ``model.parameters()``) and the gradient clipping of the config's ``optimizer_config`` (mmcv's
``OptimizerHook.clip_grads``: ``clip_grad_norm_`` of the parameters with a gradient, max_norm 35, norm 2).
One timed iteration is what mmcv's ``EpochBasedRunner`` + ``OptimizerHook`` do per batch, data loading excluded:

    optimizer.zero_grad()                              # set_to_none (torch 2 default)
    outputs = model.train_step(data, optimizer)        # forward_train + losses + _parse_losses (+ .item() logs)
    outputs["loss"].backward()
    OptimizerHook.clip_grads(model.parameters())       # clip_grad_norm_(max_norm=35)
    optimizer.step()

(mmcv's ``OptimizerHook.after_train_iter`` calls ``zero_grad`` after ``train_step``, i.e. with the previous
gradients still allocated during the forward; here, as on the Swift side, they are released before it. The
numbers are the same; the peak memory can only be lower.)

on the un-wrapped detector with plain tensors (``data`` = img, img_metas, gt_bboxes, gt_labels; no
MMDataParallel, so no scatter). The GHM-C/GHM-R ``acc_sum`` EMA state carries over from iteration to iteration,
as in training; it starts from the checkpoint's state.

Memory: ``baseline_rss_bytes`` = VmRSS after the imports and after reading the batch, just before the model is
built; then the peak is reset (``/proc/self/clear_refs`` 5); ``peak_rss_bytes`` = VmHWM at the end (the whole
process: interpreter, libraries, model, optimizer, activations) and ``peak_increase_bytes`` = peak - baseline.

stdout: exactly one JSON line
    {"median_ms", "runs": [...], "warmup", "threads", "torch", "peak_rss_bytes", "baseline_rss_bytes",
     "peak_increase_bytes", "peak_reset": bool, "ru_maxrss_bytes", "first_losses": {"loss_cls", "loss_bbox",
     "loss", "grad_norm"}, "last_losses": {...}, "input_shape", "num_gt", "mean_ms", "min_ms", "tool"}
Progress goes to stderr. Exit status 1 with an "ERROR:" line on failure.
"""

import argparse
import json
import os
import statistics
import sys
import time

# OpenMP idle threads sleep instead of spinning (set before torch loads libgomp; an explicit value wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))


def log(msg):
    print(f"[bench_mmdet_train] {msg}", file=sys.stderr, flush=True)


def status_bytes(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def make_batch(args, R):
    import torch
    cfg, _ = R.load_config(args.img_scale)
    img, img_metas, _ = R.preprocess(cfg, [args.image, args.image2])
    tensors = {"input": img.float().contiguous(),
               "batch_input_shape": torch.tensor(list(img.shape[-2:]), dtype=torch.float32)}
    num_gt = []
    for i, meta in enumerate(img_metas):
        s = "" if i == 0 else f".{i}"
        tensors.update(R.meta_tensors(meta, s))
        h, w = meta["img_shape"][:2]
        boxes, labels = R.default_gt(h, w)
        tensors["gt_bboxes" + s] = torch.tensor(boxes, dtype=torch.float32)
        tensors["gt_labels" + s] = torch.tensor(labels, dtype=torch.int64)
        num_gt.append(len(labels))
    meta = {"format": "ghm-bench-train-batch v1", "images": json.dumps([args.image, args.image2]),
            "img_scale": json.dumps(list(args.img_scale)), "tool": "mmdet-2.16.0"}
    R.atomic_safetensors(tensors, meta, args.make_batch)
    log(f"wrote {args.make_batch}: input {tuple(img.shape)}, img_shape "
        f"{[tuple(m['img_shape']) for m in img_metas]}, {num_gt} GT boxes")
    print(json.dumps({"batch": args.make_batch, "input_shape": list(img.shape), "num_gt": num_gt}), flush=True)
    return 0


def read_batch(path):
    """(img, img_metas, gt_bboxes, gt_labels) from a --make-batch file."""
    import numpy as np
    from safetensors.torch import load_file
    t = load_file(path)
    img = t["input"]
    metas, boxes, labels = [], [], []
    for i in range(img.shape[0]):
        s = "" if i == 0 else f".{i}"
        shape = lambda k: tuple(int(v) for v in t[k + s].tolist())  # noqa: E731
        metas.append(dict(filename=f"batch[{i}]", ori_filename=f"batch[{i}]", ori_shape=shape("ori_shape"),
                          img_shape=shape("img_shape"), pad_shape=shape("pad_shape"),
                          scale_factor=t["scale_factor" + s].numpy().astype(np.float32), flip=False,
                          flip_direction=None,
                          img_norm_cfg=dict(mean=np.array([123.675, 116.28, 103.53], dtype=np.float32),
                                            std=np.array([58.395, 57.12, 57.375], dtype=np.float32), to_rgb=True)))
        boxes.append(t["gt_bboxes" + s])
        labels.append(t["gt_labels" + s])
    return img, metas, boxes, labels


def bench(args, R):
    import torch
    from mmcv.runner import OptimizerHook, build_optimizer, load_checkpoint
    from mmdet.models import build_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    img, img_metas, gt_bboxes, gt_labels = read_batch(args.batch)
    cfg, _ = R.load_config((int(img.shape[-1]), int(img.shape[-2])))  # the pipelines are not used here

    baseline = status_bytes("VmRSS:")
    reset = reset_peak()
    model = build_detector(cfg.model)  # train_cfg and test_cfg are in cfg.model (mmdet 2.x configs)
    import contextlib
    with contextlib.redirect_stdout(sys.stderr):  # mmcv prints "load checkpoint from ..." on stdout
        load_checkpoint(model, args.checkpoint, map_location="cpu", strict=True)
    model.train()
    optimizer = build_optimizer(model, cfg.optimizer)
    hook = OptimizerHook(**cfg.optimizer_config)
    if not hook.grad_clip:
        raise RuntimeError(f"the config has no grad_clip: {cfg.optimizer_config}")
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads; input {tuple(img.shape)}; "
        f"optimizer {cfg.optimizer}, grad_clip {hook.grad_clip}; {args.warmup} warm-up + {args.runs} timed runs")

    data = dict(img=img, img_metas=img_metas, gt_bboxes=gt_bboxes, gt_labels=gt_labels)

    def once():
        t = time.perf_counter()
        optimizer.zero_grad()
        outputs = model.train_step(data, optimizer)
        outputs["loss"].backward()
        norm = hook.clip_grads(model.parameters())
        optimizer.step()
        ms = (time.perf_counter() - t) * 1000.0
        lv = outputs["log_vars"]
        return ms, dict(loss_cls=lv["loss_cls"], loss_bbox=lv["loss_bbox"], loss=lv["loss"],
                        grad_norm=float(norm) if norm is not None else None)

    first = last = None
    runs = []
    for i in range(args.warmup + args.runs):
        ms, losses = once()
        first = first or losses
        last = losses
        kind = "warm-up" if i < args.warmup else "run"
        if i >= args.warmup:
            runs.append(round(ms, 3))
        log(f"{kind} {i + 1 if i < args.warmup else i - args.warmup + 1}: {ms:.1f} ms, loss {losses['loss']:.6f}")
    import resource
    peak = status_bytes("VmHWM:")
    out = {
        "median_ms": round(statistics.median(runs), 3),
        "runs": runs,
        "warmup": args.warmup,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "peak_rss_bytes": peak,
        "baseline_rss_bytes": baseline,
        "peak_increase_bytes": (peak - baseline) if (reset and peak is not None and baseline is not None) else None,
        "peak_reset": reset,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "first_losses": first,
        "last_losses": last,
        "input_shape": list(img.shape),
        "num_gt": [int(b.shape[0]) for b in gt_bboxes],
        "mean_ms": round(statistics.fmean(runs), 3),
        "min_ms": round(min(runs), 3),
        "tool": "mmdet-2.16.0",
    }
    print(json.dumps(out), flush=True)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="MMDetection 2.16.0 training-iteration benchmark (see the docstring)")
    ap.add_argument("--make-batch", metavar="OUT", help="write the batch file and exit")
    ap.add_argument("--image", help="first image (--make-batch)")
    ap.add_argument("--image2", help="second image (--make-batch)")
    ap.add_argument("--img-scale", type=int, nargs=2, default=(1333, 800), metavar=("W", "H"),
                    help="img_scale of the pipeline (--make-batch; default 1333 800)")
    ap.add_argument("--batch", help="the batch file written by --make-batch")
    ap.add_argument("--checkpoint", help="an MMDetection checkpoint (e.g. written by tools/mmdet_reference.py)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's default)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations first (default 1)")
    ap.add_argument("--runs", type=int, default=5, help="timed iterations, >= 5 (default 5)")
    args = ap.parse_args(argv)
    if args.make_batch:
        if not (args.image and args.image2):
            ap.error("--make-batch needs --image and --image2")
        for p in (args.image, args.image2):
            if not os.path.isfile(p):
                ap.error(f"file not found: {p}")
    else:
        if not (args.batch and args.checkpoint):
            ap.error("--batch and --checkpoint are required (or --make-batch)")
        for p in (args.batch, args.checkpoint):
            if not os.path.isfile(p):
                ap.error(f"file not found: {p}")
        if args.runs < 5:
            ap.error("--runs must be >= 5")
        if args.warmup < 0:
            ap.error("--warmup must be >= 0")
        if args.threads is not None and args.threads < 1:
            ap.error("--threads must be >= 1")

    import mmdet_reference as R  # shims, config loading and mmcv logger setup shared with the reference tool
    with __import__("contextlib").redirect_stdout(sys.stderr):
        R.import_mmdet()
    return make_batch(args, R) if args.make_batch else bench(args, R)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:
        import traceback
        if not (hasattr(e, "__module__") and type(e).__name__ == "RefError"):
            traceback.print_exc()
        print(f"[bench_mmdet_train] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
