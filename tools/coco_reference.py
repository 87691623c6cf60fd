#!/usr/bin/env python3
"""Reference COCO box evaluation with pycocotools, for checking the Swift COCO module.

Prints one JSON object on stdout:
  {"stats": [12 numbers], "per_category": [{"id": ..., "ap": ... or null}, ...],
   "table": "<the 12 lines pycocotools prints>",
   "precision": [...], "recall": [...], "shape": [T, R, K, A, M]   (with --full)
   "times": [seconds, ...], "time_median": seconds                  (with --time N)}

per_category is AP at IoU .50:.95, area all, maxDets 100, as mmdet's classwise table, for the
categories in ascending id order (pycocotools' K axis). --time N runs evaluate + accumulate +
summarize N times (after loading both files once) and reports the wall times. pycocotools' own
progress output goes to stderr.
"""
import argparse
import contextlib
import io
import json
import statistics
import sys
import time


def fail(message):
    print(f"coco_reference.py: {message}", file=sys.stderr)
    sys.exit(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ann", required=True, help="ground-truth COCO instances JSON")
    parser.add_argument("--results", required=True, help="detections JSON (mmdet/COCO result format)")
    parser.add_argument("--full", action="store_true", help="also print the precision and recall arrays")
    parser.add_argument("--time", type=int, default=0, metavar="N", help="time N evaluations")
    parser.add_argument("--out", help="write the JSON here instead of stdout")
    args = parser.parse_args()

    try:
        import numpy as np
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:  # the Swift tests turn this into a clear failure
        fail(f"pycocotools is not installed ({e}); run: .venv/bin/pip install pycocotools")

    with contextlib.redirect_stdout(sys.stderr):
        gt = COCO(args.ann)
        with open(args.results) as f:
            dets = json.load(f)
        if len(dets) == 0:
            # loadRes cannot take an empty list; an empty result set is still meaningful.
            dt = COCO()
            dt.dataset = {"images": list(gt.dataset["images"]), "categories": list(gt.dataset["categories"]),
                          "annotations": []}
            dt.createIndex()
        else:
            dt = gt.loadRes(dets)

        def run_once():
            ev = COCOeval(gt, dt, iouType="bbox")
            ev.evaluate()
            ev.accumulate()
            table = io.StringIO()
            with contextlib.redirect_stdout(table):
                ev.summarize()
            return ev, table.getvalue()

        times = []
        if args.time > 0:
            for _ in range(args.time):
                start = time.perf_counter()
                ev, table = run_once()
                times.append(time.perf_counter() - start)
        else:
            ev, table = run_once()

    precision = ev.eval["precision"]
    per_category = []
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_category.append({"id": int(cat_id), "ap": float(np.mean(p)) if p.size else None})

    out = {"stats": [float(s) for s in ev.stats], "per_category": per_category, "table": table.rstrip("\n")}
    if args.full:
        out["shape"] = list(precision.shape)
        out["precision"] = [float(v) for v in precision.ravel()]
        out["recall"] = [float(v) for v in ev.eval["recall"].ravel()]
    if times:
        out["times"] = times
        out["time_median"] = statistics.median(times)
    text = json.dumps(out)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
