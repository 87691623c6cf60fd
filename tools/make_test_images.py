#!/usr/bin/env python3
"""Write deterministic synthetic test images (our own drawings) as PNG and JPEG.

Usage:
    python tools/make_test_images.py --out DIR [--size WxH ...] [--seed N]
                                     [--formats png,jpg] [--jpeg-quality Q] [--prefix NAME]

Each image is drawn with numpy only (so the pixels depend on nothing but the seed and the size):
a two-axis colour gradient background, filled and outlined rectangles, filled ellipses, thick
anti-aliasing-free lines, a checkerboard patch, and mild Gaussian noise. The pixel array is BGR
uint8 (OpenCV order). Encoding uses OpenCV (cv2.imwrite) when importable, else Pillow; PNG is
lossless, so PNG files decode to exactly the drawn array with any decoder, while JPEG decoding
may differ by +-1 between libjpeg builds (use the PNG for bit-exact pre-processing tests).

Files: DIR/<prefix>_<W>x<H>_s<seed>.png and .jpg (default prefix "synthetic"); the seed of each
size is derived from --seed and the size, so adding sizes never changes existing images.
Default sizes: 640x480 (mmdet resizes it to 1067x800 at img_scale 1333x800) and 300x230
(resized to 416x319, padded to 416x320, at img_scale 416x320; non-integer scale, w_scale != h_scale).
Prints one line per written file and exits non-zero on any error.
"""

import argparse
import os
import sys
import zlib

import numpy as np


def parse_size(text):
    try:
        w, h = text.lower().split("x")
        w, h = int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, got {text!r}")
    if not (8 <= w <= 8192 and 8 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"size {text!r} out of range 8..8192")
    return w, h


def draw_image(w, h, seed):
    """Return an (h, w, 3) uint8 BGR image drawn deterministically from `seed`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = xx / max(w - 1, 1), yy / max(h - 1, 1)
    c0, c1, c2 = rng.uniform(20, 235, size=(3, 3))
    img = (c0[None, None, :] * (1 - u)[..., None] + c1[None, None, :] * u[..., None]) * (1 - 0.5 * v)[..., None] \
        + c2[None, None, :] * (0.5 * v)[..., None]
    # a soft diagonal sinusoid so that the background is not flat
    img += 18.0 * np.sin((xx * rng.uniform(0.01, 0.05) + yy * rng.uniform(0.01, 0.05)))[..., None]

    scale = min(w, h)
    # filled rectangles, some with outlines
    for _ in range(7):
        rw, rh = rng.uniform(0.08, 0.45) * w, rng.uniform(0.08, 0.45) * h
        x0, y0 = rng.uniform(-0.05 * w, w - rw * 0.5), rng.uniform(-0.05 * h, h - rh * 0.5)
        m = (xx >= x0) & (xx < x0 + rw) & (yy >= y0) & (yy < y0 + rh)
        img[m] = rng.uniform(0, 255, size=3)
        if rng.random() < 0.5:
            t = max(1.0, 0.01 * scale)
            inner = (xx >= x0 + t) & (xx < x0 + rw - t) & (yy >= y0 + t) & (yy < y0 + rh - t)
            img[m & ~inner] = rng.uniform(0, 255, size=3)
    # filled ellipses
    for _ in range(5):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        ax, ay = rng.uniform(0.04, 0.25) * w, rng.uniform(0.04, 0.25) * h
        th = rng.uniform(0, np.pi)
        dx, dy = xx - cx, yy - cy
        px, py = dx * np.cos(th) + dy * np.sin(th), -dx * np.sin(th) + dy * np.cos(th)
        img[(px / ax) ** 2 + (py / ay) ** 2 <= 1.0] = rng.uniform(0, 255, size=3)
    # thick lines (distance to segment)
    for _ in range(6):
        x0, y0, x1, y1 = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0, h)
        t = max(1.0, rng.uniform(0.003, 0.015) * scale)
        ddx, ddy = x1 - x0, y1 - y0
        L2 = max(ddx * ddx + ddy * ddy, 1e-9)
        s = np.clip(((xx - x0) * ddx + (yy - y0) * ddy) / L2, 0.0, 1.0)
        d2 = (xx - (x0 + s * ddx)) ** 2 + (yy - (y0 + s * ddy)) ** 2
        img[d2 <= t * t] = rng.uniform(0, 255, size=3)
    # a checkerboard patch (high frequencies survive the resize differently per interpolation)
    cw, ch = int(0.2 * w), int(0.2 * h)
    cx0, cy0 = int(rng.uniform(0, w - cw)), int(rng.uniform(0, h - ch))
    cell = max(2, scale // 48)
    board = (((xx - cx0) // cell + (yy - cy0) // cell) % 2 == 0)
    patch = (xx >= cx0) & (xx < cx0 + cw) & (yy >= cy0) & (yy < cy0 + ch)
    img[patch & board] = (250.0, 250.0, 250.0)
    img[patch & ~board] = (5.0, 5.0, 5.0)
    # noise
    img += rng.normal(0.0, 4.0, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def encode(path, img_bgr, quality):
    ext = os.path.splitext(path)[1].lower()
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else \
            [cv2.IMWRITE_PNG_COMPRESSION, 6]
        ok, buf = cv2.imencode(ext, img_bgr, params)
        if not ok:
            raise RuntimeError(f"cv2.imencode failed for {path}")
        data, encoder = buf.tobytes(), f"opencv {cv2.__version__}"
    else:
        try:
            from PIL import Image
        except ImportError:
            raise RuntimeError("neither OpenCV (cv2) nor Pillow is importable; run this script with "
                               ".venv-mmdet/bin/python (bash tools/mmdet_env.sh creates it)")
        import io
        bio = io.BytesIO()
        im = Image.fromarray(img_bgr[:, :, ::-1].copy())
        if ext in (".jpg", ".jpeg"):
            im.save(bio, format="JPEG", quality=quality)
        else:
            im.save(bio, format="PNG")
        data, encoder = bio.getvalue(), "pillow"
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return len(data), encoder


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--size", action="append", type=parse_size, metavar="WxH",
                    help="image size, repeatable (default: 640x480 and 300x230)")
    ap.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    ap.add_argument("--formats", default="png,jpg", help="comma list of png,jpg (default png,jpg)")
    ap.add_argument("--jpeg-quality", type=int, default=95)
    ap.add_argument("--prefix", default="synthetic")
    args = ap.parse_args(argv)
    sizes = args.size or [(640, 480), (300, 230)]
    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    for f in formats:
        if f not in ("png", "jpg"):
            ap.error(f"unknown format {f!r} (png, jpg)")
    os.makedirs(args.out, exist_ok=True)
    for (w, h) in sizes:
        seed = zlib.crc32(f"{args.seed}:{w}x{h}".encode()) & 0x7FFFFFFF
        img = draw_image(w, h, seed)
        for f in formats:
            path = os.path.join(args.out, f"{args.prefix}_{w}x{h}_s{args.seed}.{f}")
            n, enc = encode(path, img, args.jpeg_quality)
            print(f"[make_test_images] wrote {path} ({w}x{h}, {n} bytes, {enc})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # loud, non-zero
        print(f"[make_test_images] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
