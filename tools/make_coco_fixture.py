#!/usr/bin/env python3
"""Writes a random but reproducible COCO ground truth + detections pair for testing COCO
evaluation code against pycocotools.

  make_coco_fixture.py --seed S --out-dir DIR [--images N] [--categories K]
                       [--dets-per-image D] [--zero-ann-id]

writes DIR/gt.json (instances format) and DIR/dets.json (result format) and prints one line of
JSON with the counts. The data exercise the corners of COCOeval: crowd regions (with several
detections inside), images without objects, images without detections, categories without
ground truth (with and without detections), equal scores (also across images and at the
100-detection cut), more than 100 detections for one image and category, tiny/medium/large
boxes and areas exactly on the 32^2 and 96^2 boundaries, `area` different from w*h, `ignore`
flags, zero-size detections, unsorted ids and shuffled file order. --zero-ann-id gives one
annotation the id 0 (pycocotools then never counts a match to it).
"""
import argparse
import json
import os
import random

WORDS = ["person", "bicycle", "traffic light", "fire hydrant", "stop sign", "dog", "horse", "sheep",
         "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie",
         "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
         "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork", "knife"]


def r2(v, rng):
    """Some coordinates as integers, some with two decimals, some at full precision."""
    u = rng.random()
    if u < 0.3:
        return float(round(v))
    if u < 0.7:
        return round(v, 2)
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--categories", type=int, default=8)
    ap.add_argument("--dets-per-image", type=float, default=12.0, help="rough mean number of detections per image")
    ap.add_argument("--zero-ann-id", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    K = args.categories
    cat_ids = rng.sample(range(1, 4 * K + 2), K)  # random ids in random file order
    categories = [{"id": c, "name": (WORDS[i % len(WORDS)] + ("" if i < len(WORDS) else f" {i}")),
                   "supercategory": "thing"} for i, c in enumerate(cat_ids)]
    no_gt = set(rng.sample(cat_ids, max(1, K // 5)))  # categories that never appear in the ground truth
    gt_cats = [c for c in cat_ids if c not in no_gt]

    img_ids = rng.sample(range(1, 20 * args.images + 2), args.images)
    images, annotations, dets = [], [], []
    ann_id = 1
    score_pool = [round(rng.random(), 3) for _ in range(20)]  # scores reused across images -> ties

    def score():
        u = rng.random()
        if u < 0.3:
            return round(rng.random(), 1)
        if u < 0.45:
            return rng.choice(score_pool)
        return rng.random()

    def jitter(box, amount, W, H):
        x, y, w, h = box
        nx = x + rng.gauss(0, amount * max(w, 1))
        ny = y + rng.gauss(0, amount * max(h, 1))
        nw = max(0.5, w * (1 + rng.gauss(0, amount)))
        nh = max(0.5, h * (1 + rng.gauss(0, amount)))
        return [r2(nx, rng), r2(ny, rng), r2(nw, rng), r2(nh, rng)]

    for n, img_id in enumerate(img_ids):
        W, H = rng.randint(64, 1000), rng.randint(64, 1000)
        images.append({"id": img_id, "file_name": f"{img_id:012d}.jpg", "width": W, "height": H})
        empty = rng.random() < 0.1
        no_dets = rng.random() < 0.12
        gts = []
        if not empty:
            for _ in range(rng.randint(1, 15)):
                kind = rng.random()
                if kind < 0.3:
                    w, h = rng.uniform(1, 31), rng.uniform(1, 31)
                elif kind < 0.7:
                    w, h = rng.uniform(20, 100), rng.uniform(20, 100)
                else:
                    w, h = rng.uniform(90, max(91, min(W, H))), rng.uniform(90, max(91, min(W, H)))
                w, h = min(w, W - 1), min(h, H - 1)
                x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
                box = [r2(x, rng), r2(y, rng), r2(w, rng), r2(h, rng)]
                u = rng.random()
                if u < 0.6:
                    area = box[2] * box[3] * rng.uniform(0.5, 1.0)
                elif u < 0.85:
                    area = box[2] * box[3]
                else:
                    area = rng.choice([1024.0, 9216.0, 1024, 9216])
                crowd = 1 if rng.random() < 0.07 else 0
                ann = {"id": ann_id, "image_id": img_id, "category_id": rng.choice(gt_cats), "bbox": box,
                       "area": area, "iscrowd": crowd, "segmentation": [[box[0], box[1], box[0] + box[2], box[1]]]}
                if rng.random() < 0.08:
                    ann["ignore"] = 1
                ann_id += 1
                gts.append(ann)
        annotations.extend(gts)
        if no_dets:
            continue
        img_dets = []
        for g in gts:
            if g["iscrowd"]:
                for _ in range(rng.randint(0, 4)):  # detections inside the crowd region
                    x, y, w, h = g["bbox"]
                    dw, dh = w * rng.uniform(0.1, 0.6), h * rng.uniform(0.1, 0.6)
                    img_dets.append((g["category_id"], [r2(x + rng.uniform(0, w - dw), rng), r2(y + rng.uniform(0, h - dh), rng),
                                                        r2(dw, rng), r2(dh, rng)]))
                continue
            if rng.random() < 0.8:
                cat = g["category_id"] if rng.random() > 0.05 else rng.choice(cat_ids)
                img_dets.append((cat, jitter(g["bbox"], rng.choice([0.02, 0.05, 0.1, 0.25]), W, H)))
                if rng.random() < 0.25:  # duplicate
                    img_dets.append((cat, jitter(g["bbox"], 0.08, W, H)))
        expected = max(0.0, args.dets_per_image - len(img_dets))
        for _ in range(int(rng.expovariate(1.0 / expected)) if expected > 0 else 0):
            w, h = rng.choice([(rng.uniform(2, 30), rng.uniform(2, 30)), (rng.uniform(20, 120), rng.uniform(20, 120)),
                               (rng.uniform(80, 400), rng.uniform(80, 400))])
            img_dets.append((rng.choice(cat_ids), [r2(rng.uniform(0, W), rng), r2(rng.uniform(0, H), rng), r2(w, rng), r2(h, rng)]))
        if rng.random() < 0.02:
            img_dets.append((rng.choice(cat_ids), [r2(rng.uniform(0, W), rng), r2(rng.uniform(0, H), rng), 0.0, r2(rng.uniform(1, 50), rng)]))
        for cat, box in img_dets:
            dets.append({"image_id": img_id, "category_id": cat, "bbox": box, "score": score()})

    # One image with more than 100 detections of one category, many with equal scores: the
    # 100-detection cut and the tie order matter there.
    if images:
        img = images[0]
        cat = gt_cats[0]
        for i in range(130):
            x, y = rng.uniform(0, img["width"] - 40), rng.uniform(0, img["height"] - 40)
            dets.append({"image_id": img["id"], "category_id": cat,
                         "bbox": [r2(x, rng), r2(y, rng), r2(rng.uniform(10, 60), rng), r2(rng.uniform(10, 60), rng)],
                         "score": round(rng.random(), 1) if i % 2 else 0.5})
        for i in range(6):
            annotations.append({"id": ann_id, "image_id": img["id"], "category_id": cat,
                                "bbox": [10.0 * i, 10.0 * i, 40.0, 40.0], "area": 1600.0, "iscrowd": 0})
            ann_id += 1

    if args.zero_ann_id and annotations:
        first_regular = next((a for a in annotations if not a["iscrowd"]), annotations[0])
        first_regular["id"] = 0

    rng.shuffle(annotations)
    # Mostly grouped by image like mmdet writes them, but with stretches shuffled.
    for start in range(0, len(dets), 50):
        if rng.random() < 0.5:
            chunk = dets[start:start + 50]
            rng.shuffle(chunk)
            dets[start:start + 50] = chunk

    gt = {"info": {"description": f"synthetic fixture seed {args.seed}"}, "licenses": [],
          "images": images, "annotations": annotations, "categories": categories}
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "gt.json"), "w") as f:
        json.dump(gt, f)
    with open(os.path.join(args.out_dir, "dets.json"), "w") as f:
        json.dump(dets, f)
    print(json.dumps({"images": len(images), "annotations": len(annotations), "detections": len(dets),
                      "categories": len(categories)}))


if __name__ == "__main__":
    main()
