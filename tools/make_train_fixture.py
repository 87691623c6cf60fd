#!/usr/bin/env python3
"""Small deterministic COCO-format training/validation set for the GHM training-parity tests.

    .venv-mmdet/bin/python tools/make_train_fixture.py --out DIR [--seed N] [--formats png,jpg]

Writes ``DIR/train.json``, ``DIR/val.json`` and ``DIR/images/<name>.{png,jpg}`` (numpy + cv2 only), and prints
one JSON summary line on stdout (files, sizes, sha256). Same arguments -> identical bytes on every run (the
drawing and the encoders are deterministic; cv2's PNG/JPEG writers of opencv-python-headless 4.10).

Layout (independent of --seed; the seed only changes pixel content and the exact box coordinates of the
regular objects, never which special case an annotation is):

* 3 categories with COCO names and ids, listed in the file in the NON-sorted order
  ``[{id 9, boat}, {id 1, person}, {id 5, airplane}]``. mmdet's ``CocoDataset`` assigns labels in the
  category order of the annotation file (``get_cat_ids`` iterates ``dataset['categories']``), so label
  0 = boat (9), 1 = person (1), 2 = airplane (5), whatever order ``classes`` lists the names in.
* train.json: 25 images in the file (image ids deliberately unsorted), 22 kept by ``_filter_imgs``:
  13 with w > h (group flag 1) and 9 with w <= h (flag 0, one of them square) - both groups have an odd
  size, so GroupSampler pads both with ``np.random.choice``; 24 samples = 12 iterations per epoch at
  samples_per_gpu 2. Filtered: ``t_tiny`` (28 px wide, min side < 32), ``t_empty`` (no annotation),
  ``t_unknowncat`` (its only annotation has category 77, which is not in the category list).
* special annotations (train): a crowd box (``iscrowd: 1`` -> ``bboxes_ignore``) in ``t00``; a box with
  ``ignore: 1`` (dropped entirely) in ``t01``; in ``t02`` a zero-width box (inter area 0 -> dropped), a
  0.6 px wide box (w < 1 -> dropped), a box whose ``area`` field is 0 (dropped although w, h >= 1), a box
  completely outside the image (dropped), a box partly outside (kept as is, clipped by Resize), and an
  annotation of the unknown category 77 (dropped); ``t03`` (square) has only a crowd annotation (kept by
  the filter, trains with zero gt boxes); ``t04`` has boxes touching the right and bottom borders and a
  1.0 x 1.5 px box (kept: w < 1 is false); ``t05`` has an object of every class.
* val.json: 3 images (2 wide, 1 tall) with a crowd box in ``v00``; same category list and order.
* about one image in three is JPEG (quality 90, 4:2:0), the rest PNG (--formats png makes all PNG: use
  that when a decoder other than libjpeg-turbo's must reproduce the pixels exactly).

Boxes are COCO ``[x, y, w, h]`` floats with two decimals; ``area`` = w*h rounded to 2 decimals (except the
deliberate area-0 case). Objects are drawn inside their boxes: boat = filled rectangle + trapezoid hull,
person = ellipse, airplane = cross-shaped polygon.

Exit status 0 on success; 1 with an ``ERROR:`` line otherwise.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile

CATEGORIES = [  # file order, deliberately not sorted by id
    {"id": 9, "name": "boat", "supercategory": "vehicle"},
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 5, "name": "airplane", "supercategory": "vehicle"},
]
CAT_IDS = [9, 1, 5]
UNKNOWN_CAT = 77

# (name, width, height, image id, number of regular objects, special-case tag)
TRAIN_SPECS = [
    ("t00", 400, 300, 117, 2, "crowd"),
    ("t01", 240, 320, 23, 2, "ignore"),
    ("t02", 320, 240, 305, 2, "dropped"),
    ("t03", 200, 200, 48, 0, "crowd_only"),
    ("t04", 360, 200, 9, 2, "border"),
    ("t_tiny", 28, 180, 77, 1, None),          # filtered: min side < 32
    ("t05", 180, 260, 212, 3, "all_classes"),
    ("t06", 264, 176, 61, 2, None),
    ("t_empty", 300, 220, 150, 0, None),       # filtered: no annotation (filter_empty_gt)
    ("t07", 160, 240, 8, 1, None),
    ("t08", 380, 260, 133, 3, None),
    ("t09", 256, 256, 99, 2, None),            # square -> flag 0
    ("t10", 300, 220, 402, 1, None),
    ("t11", 208, 304, 3, 2, None),
    ("t12", 344, 216, 250, 2, None),
    ("t_unknowncat", 220, 300, 171, 0, "unknown_only"),  # filtered: only annotation has category 77
    ("t13", 176, 400, 36, 2, None),
    ("t14", 224, 160, 88, 1, None),
    ("t15", 288, 192, 190, 3, None),
    ("t16", 232, 296, 14, 1, None),
    ("t17", 336, 256, 277, 2, None),
    ("t18", 400, 224, 5, 2, None),
    ("t19", 192, 288, 160, 2, None),
    ("t20", 248, 184, 321, 1, None),
    ("t21", 368, 240, 66, 3, None),
]
VAL_SPECS = [
    ("v00", 320, 240, 1001, 2, "crowd"),
    ("v01", 240, 320, 1000, 2, None),
    ("v02", 280, 200, 1002, 1, None),
]
COLORS = {9: (40, 90, 200), 1: (60, 200, 240), 5: (200, 60, 60)}   # BGR


class FixtureError(RuntimeError):
    pass


def parse_args(argv):
    ap = argparse.ArgumentParser(description="deterministic small COCO training set for GHM training parity")
    ap.add_argument("--out", required=True, help="output directory (created; existing files are replaced)")
    ap.add_argument("--seed", type=int, default=0, help="pixel/box seed (default 0)")
    ap.add_argument("--formats", default="png,jpg",
                    help="'png,jpg' (default: every third image JPEG) or 'png' (all PNG)")
    ap.add_argument("--jpeg-quality", type=int, default=90)
    a = ap.parse_args(argv)
    fm = [f.strip() for f in a.formats.split(",") if f.strip()]
    if not fm or any(f not in ("png", "jpg") for f in fm) or "png" not in fm:
        ap.error("--formats must be 'png' or 'png,jpg'")
    a.formats = fm
    if a.seed < 0:
        ap.error("--seed must be >= 0")
    return a


def r2(v):
    return float(round(float(v), 2))


def background(rng, w, h):
    import numpy as np
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = rng.uniform(60, 190, size=3)
    gx, gy = rng.uniform(-60, 60, size=3), rng.uniform(-60, 60, size=3)
    fx, fy, ph = rng.uniform(0.01, 0.05), rng.uniform(0.01, 0.05), rng.uniform(0, 6.28)
    wave = 18.0 * np.sin(fx * xx + fy * yy + ph)
    img = np.empty((h, w, 3), np.float64)
    for c in range(3):
        img[..., c] = base[c] + gx[c] * xx / max(w, 1) + gy[c] * yy / max(h, 1) + wave
    img += rng.normal(0.0, 6.0, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def random_box(rng, w, h, min_frac=0.18, max_frac=0.55):
    bw = rng.uniform(min_frac, max_frac) * w
    bh = rng.uniform(min_frac, max_frac) * h
    x = rng.uniform(0.02 * w, w - bw - 0.02 * w)
    y = rng.uniform(0.02 * h, h - bh - 0.02 * h)
    return [r2(x), r2(y), r2(bw), r2(bh)]


def draw_object(img, cat, box):
    import cv2
    import numpy as np
    x, y, bw, bh = box
    x1, y1 = int(round(x)), int(round(y))
    x2, y2 = int(round(x + bw)) - 1, int(round(y + bh)) - 1
    h, w = img.shape[:2]
    x1, y1 = max(x1, 0), max(y1, 0)
    x2, y2 = min(x2, w - 1), min(y2, h - 1)
    if x2 < x1 or y2 < y1:
        return
    color = COLORS[cat]
    dark = tuple(int(c * 0.5) for c in color)
    if cat == 9:      # boat: hull + cabin
        ym = (y1 + y2) // 2
        cv2.rectangle(img, (x1 + (x2 - x1) // 3, y1), (x1 + 2 * (x2 - x1) // 3, ym), dark, -1)
        pts = np.array([[x1, ym], [x2, ym], [x2 - (x2 - x1) // 5, y2], [x1 + (x2 - x1) // 5, y2]], np.int32)
        cv2.fillPoly(img, [pts], color)
    elif cat == 1:    # person: ellipse body + head
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        cv2.ellipse(img, (cx, cy + (y2 - y1) // 8), (max((x2 - x1) // 2, 1), max(3 * (y2 - y1) // 8, 1)),
                    0, 0, 360, color, -1)
        cv2.circle(img, (cx, y1 + max((y2 - y1) // 8, 1)), max(min(x2 - x1, y2 - y1) // 8, 1), dark, -1)
    else:             # airplane: cross-shaped polygon
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        qx, qy = max((x2 - x1) // 8, 1), max((y2 - y1) // 8, 1)
        pts = np.array([[cx - qx, y1], [cx + qx, y1], [cx + qx, cy - qy], [x2, cy - qy], [x2, cy + qy],
                        [cx + qx, cy + qy], [cx + qx, y2], [cx - qx, y2], [cx - qx, cy + qy], [x1, cy + qy],
                        [x1, cy - qy], [cx - qx, cy - qy]], np.int32)
        cv2.fillPoly(img, [pts], color)
        cv2.line(img, (x1, cy), (x2, cy), dark, 1)


def polygon(box):
    x, y, w, h = box
    return [[r2(x), r2(y), r2(x + w), r2(y), r2(x + w), r2(y + h), r2(x), r2(y + h)]]


def build_split(specs, rng, formats, split):
    """Returns (coco dict, list of (file name, BGR image), notes)."""
    images, anns, files, notes = [], [], [], {}
    ann_id = [7000 if split == "val" else 500]

    def add(img_id, cat, box, area=None, **extra):
        a = {"id": ann_id[0], "image_id": img_id, "category_id": cat, "bbox": [r2(v) for v in box],
             "area": r2(box[2] * box[3]) if area is None else area, "iscrowd": 0,
             "segmentation": polygon(box)}
        a.update(extra)
        anns.append(a)
        ann_id[0] += 3   # non-contiguous annotation ids
        return a["id"]

    for k, (name, w, h, img_id, n_obj, tag) in enumerate(specs):
        ext = "jpg" if ("jpg" in formats and k % 3 == 1) else "png"
        fname = f"{name}.{ext}"
        img = background(rng, w, h)
        images.append({"id": img_id, "file_name": fname, "width": w, "height": h})
        special = []
        if tag == "crowd":
            box = [r2(0.05 * w), r2(0.55 * h), r2(0.5 * w), r2(0.4 * h)]
            for j in range(3):   # a crowd of small persons
                sub = [box[0] + j * box[2] / 3 + 2, box[1] + 2, box[2] / 3 - 4, box[3] - 4]
                draw_object(img, 1, sub)
            special.append(("crowd", add(img_id, 1, box, iscrowd=1)))
        elif tag == "ignore":
            box = [r2(0.1 * w), r2(0.65 * h), r2(0.35 * w), r2(0.25 * h)]
            draw_object(img, 9, box)
            special.append(("ignore_flag", add(img_id, 9, box, ignore=1)))
        elif tag == "dropped":
            special.append(("zero_width", add(img_id, 1, [r2(0.6 * w), r2(0.1 * h), 0.0, 20.0], area=0.0)))
            special.append(("subpixel_width", add(img_id, 5, [r2(0.7 * w), r2(0.2 * h), 0.6, 12.0])))
            box = [r2(0.75 * w), r2(0.6 * h), 14.0, 10.0]
            draw_object(img, 9, box)
            special.append(("area_field_zero", add(img_id, 9, box, area=0.0)))
            special.append(("outside_image", add(img_id, 1, [float(w + 10), 5.0, 20.0, 20.0])))
            box = [-10.25, r2(0.55 * h), r2(0.3 * w), r2(0.3 * h)]
            draw_object(img, 5, box)
            special.append(("partly_outside", add(img_id, 5, box)))
            special.append(("unknown_category", add(img_id, UNKNOWN_CAT, [10.0, 10.0, 30.0, 30.0])))
        elif tag == "crowd_only":
            box = [20.5, 30.25, 150.0, 120.5]
            for j in range(4):
                draw_object(img, 1, [box[0] + j * 37.5 + 2, box[1] + 4, 33.0, box[3] - 8])
            special.append(("crowd", add(img_id, 1, box, iscrowd=1)))
        elif tag == "border":
            box = [r2(w - 0.3 * w), r2(0.1 * h), r2(0.3 * w), r2(0.35 * h)]   # x + w == W
            draw_object(img, 5, box)
            special.append(("touches_right", add(img_id, 5, box)))
            box = [r2(0.05 * w), r2(h - 0.25 * h), r2(0.2 * w), r2(0.25 * h)]  # y + h == H
            draw_object(img, 9, box)
            special.append(("touches_bottom", add(img_id, 9, box)))
            box = [r2(0.5 * w), r2(0.5 * h), 1.0, 1.5]
            special.append(("one_pixel", add(img_id, 1, box)))
        elif tag == "unknown_only":
            box = [30.0, 40.0, 60.0, 80.0]
            draw_object(img, 1, box)
            special.append(("unknown_category", add(img_id, UNKNOWN_CAT, box)))
        for j in range(n_obj):
            cat = CAT_IDS[j % 3] if tag == "all_classes" else CAT_IDS[int(rng.randint(0, 3))]
            box = random_box(rng, w, h)
            draw_object(img, cat, box)
            add(img_id, cat, box)
        if special:
            notes[name] = {tag_: aid for tag_, aid in special}
        files.append((fname, img))
    coco = {
        "info": {"description": f"GHM training-parity fixture ({split})", "version": "1.0", "year": 2026},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [dict(c) for c in CATEGORIES],
    }
    return coco, files, notes


def _atomic_write(path, data, mode="wb"):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None):
    a = parse_args(argv)
    try:
        import cv2
        import numpy as np
    except ImportError as e:
        raise FixtureError(f"needs numpy and cv2 ({e}); run with .venv-mmdet/bin/python")
    out = os.path.abspath(a.out)
    img_dir = os.path.join(out, "images")
    os.makedirs(img_dir, exist_ok=True)
    rng = np.random.RandomState(a.seed)
    summary = {"out": out, "seed": a.seed, "formats": a.formats, "files": {}}
    for split, specs in (("train", TRAIN_SPECS), ("val", VAL_SPECS)):
        coco, files, notes = build_split(specs, rng, a.formats, split)
        for fname, img in files:
            if fname.endswith(".png"):
                ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 6])
            else:
                ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, a.jpeg_quality])
            if not ok:
                raise FixtureError(f"cv2 could not encode {fname}")
            data = buf.tobytes()
            _atomic_write(os.path.join(img_dir, fname), data)
            summary["files"][f"images/{fname}"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                                   "width": int(img.shape[1]), "height": int(img.shape[0])}
        text = json.dumps(coco, indent=1)
        _atomic_write(os.path.join(out, f"{split}.json"), text.encode())
        summary["files"][f"{split}.json"] = {"sha256": hashlib.sha256(text.encode()).hexdigest()}
        summary[split] = {"images": len(coco["images"]), "annotations": len(coco["annotations"]),
                          "special_annotation_ids": notes}
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FixtureError as e:
        print(f"[make_train_fixture] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
