#!/usr/bin/env python3
"""Reference outputs of MMDetection 2.16.0 itself for retinanet_ghm_r50_fpn_1x_coco (run in .venv-mmdet).

    .venv-mmdet/bin/python tools/mmdet_reference.py --image IMG --out-checkpoint CK.pth \
        --out-reference REF.safetensors [--img-scale W H] [--seed S] [--gt "x1,y1,x2,y2,label;..."]
        [--threads N] [--no-train] [--ghm-state warm|zero] [--batch 2 --image2 IMG2 [--gt2 ...]]

The model is built from mmdet's own config ``mmdet/.mim/configs/ghm/retinanet_ghm_r50_fpn_1x_coco.py``
(inside the installed package) with the backbone's pretrained ``init_cfg`` removed, so nothing is
downloaded. ``--img-scale`` overrides the img_scale of the test, val and train pipelines.

Weights (deterministic for a given seed, image(s) and img_scale; documented because they are synthetic)
------------------------------------------------------------------------------------------------------
mmdet's random init gives cls scores ~0.01 everywhere (massive near-ties) and, with zero_init_residual,
ResNet residual branches that contribute nothing. So after ``torch.manual_seed(seed); model.init_weights()``
(steps 1-3 run in float64 and the GHM warm-up pass single-threaded, so the checkpoint does not depend on
--threads; it is bit-identical run to run on one machine):

1. Backbone: convs keep mmdet's Kaiming init. Every BN gets weight ~ U(0.6, 1.4) and bias ~ N(0, 0.1)
   (this undoes zero_init_residual), then its running statistics are measured: all BNs in training mode
   with ``momentum=None`` (cumulative average), stats reset, one backbone forward of the pre-processed
   input batch rotated by 180 degrees (flipped in H and W), back to eval mode, ``momentum=0.1``,
   ``num_batches_tracked=0``; then running_mean += 0.25*std*N(0,1), running_var *= exp(0.25*N(0,1)).
   So every BN sees roughly normalised activations, but NOT exactly centred ones: statistics taken from
   the test input itself make every BN output exactly zero-mean over the image, and then the BN/conv
   weight gradients are sums with heavy cancellation (float32 backbone gradients then differed by ~2%
   (relative L2 norm) between 1 and 2 torch threads; with this recipe <= 0.7%, see README-reference.md).
2. FPN: mmdet's Xavier-uniform weights, biases ~ N(0, 0.1); then each output level P3..P7 is scaled (weight
   and bias of its fpn_conv) to unit std, in order (P7 is computed from P6). Level balance: small levels
   have lighter tails, so P4..P7 are rescaled (3 rounds, factor clamped to [0.25, 4]) until the mean of the
   top 0.05% raw cls logits of each level matches P3's; thus every level yields candidates.
3. Head: the 8 stacked convs get He-normal weights N(0, sqrt(2/fan_in)) (instead of N(0, 0.01), which
   makes the outputs vanish) and biases ~ N(0, 0.1). ``retina_reg``: weights N(0, 1) rescaled so that the
   raw deltas have std 0.3 on this input, bias ~ N(0, 0.05). ``retina_cls``: weights N(0, 1), each output
   channel rescaled to unit std of its raw logits on this input (no class dominates); per-channel bias base
   ~ N(0, 0.5); then one affine map logit = a * (raw + base) + d (a > 0, so top-k sets do not change) such
   that the best candidate scores ``--max-score`` (0.95, no float32 sigmoid saturation) and the 0.05 score
   threshold falls in the middle of the widest logit gap between ranks 0.6x and 1.4x ``--target-candidates``
   (default 300 per image) among the (anchor, class) logits of the top-1000-per-level anchors.
4. Decision margins are measured (top-k boundary per level, |logit(score) - logit(0.05)|, |IoU - 0.5| of
   every pair the greedy NMS actually compares (on mmcv's class-offset boxes), the gap at the
   max_per_img = 100 cut). If one is thinner than its limit, the bias base of step 3 is drawn again with the
   next sub-seed (up to 64 draws, the best is kept): topk gap >= 1e-3 (logit), threshold margin >= 2e-3
   (logit), NMS |IoU - 0.5| >= 2e-4, max_per_img gap >= 1e-3 (logit). The final margins of the exact mmdet
   outputs are printed and stored in the safetensors metadata ("diag"); a WARNING is printed if thin.
5. GHM buffers: ``bbox_head.loss_cls.edges`` / ``loss_bbox.edges`` are exactly as GHMC/GHMR construct them.
   ``acc_sum`` (``--ghm-state``): ``warm`` (default) = the state after ONE mmdet forward_train (no backward)
   starting from zeros on the horizontally flipped training sample (valid region of the input flipped, GT
   boxes mirrored x' = w - x, as RandomFlip does), so the checkpoint carries a realistic non-zero EMA state;
   ``zero`` = as freshly constructed. The checkpoint holds this state; the training entries start from it
   (stored as ``ghmc.acc_sum.iter0`` / ``ghmr.acc_sum.iter0``).

Checkpoint: legacy (non-zip) ``torch.save({'meta': {...}, 'state_dict': OrderedDict}, ...,
_use_new_zipfile_serialization=False)`` like mmdet's published files; meta has CLASSES (80 COCO names),
mmdet_version '2.16.0', mmcv_version, config (text), epoch 12, iter 87960, seed.

Reference (safetensors, all float32 unless noted; names are listed in tools/README-reference.md):
input, cls_score.{0..4}, bbox_pred.{0..4}, det_bboxes, det_labels (int64), img_shape, pad_shape, ori_shape,
scale_factor, resized_uint8_bgr (uint8), batch_input_shape; training: gt_bboxes, gt_labels (int64),
loss_cls.{0..4}, loss_bbox.{0..4}, loss_cls, loss_bbox, loss (shape [1]), ghmc/ghmr.acc_sum.iter{0,1,2},
grad.<param key>, iter2.*, and assigner intermediates anchors.{l}, targets.{labels,label_weights,bbox_targets,
bbox_weights,valid_flags}.{l}, targets.num_total_pos. With --batch 2 the second image's per-image entries
carry the suffix ".1".

Training entries: model.train() (ResNet keeps BN in eval, frozen_stages=1), zero grads,
``model.forward_train(input, img_metas, gt_bboxes, gt_labels)`` with the test-pipeline img_metas (no
random flip), ``model._parse_losses``, ``loss.backward()``; then the losses a second time (under no_grad,
no optimizer step) with the GHM state left by the first call ("iter2.*").

Exit status: 0 on success; 1 with an "ERROR:" line on any failure (nothing half-written: files are
written to a temporary name and renamed).
"""

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from collections import OrderedDict

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIM_DIR = os.path.join(REPO_ROOT, "tools", "mmdet_shims")

COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
    'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
    'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard',
    'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase',
    'scissors', 'teddy bear', 'hair drier', 'toothbrush')

SCORE_THR = 0.05
LOGIT_THR = math.log(SCORE_THR / (1.0 - SCORE_THR))
MARGIN_LIMITS = dict(topk_logit_gap=1e-3, thr_logit_margin=2e-3, nms_iou_margin=2e-4, maxdet_logit_gap=1e-3)


class RefError(RuntimeError):
    pass


def log(msg):
    print(f"[mmdet_reference] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------------------
# arguments
# ----------------------------------------------------------------------------------------------------------
def parse_gt(text):
    boxes, labels = [], []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        f = part.split(",")
        if len(f) != 5:
            raise argparse.ArgumentTypeError(f"GT entry {part!r}: expected x1,y1,x2,y2,label")
        try:
            x1, y1, x2, y2 = (float(v) for v in f[:4])
            lab = int(f[4])
        except ValueError:
            raise argparse.ArgumentTypeError(f"GT entry {part!r}: numbers expected")
        if not (x2 > x1 and y2 > y1):
            raise argparse.ArgumentTypeError(f"GT entry {part!r}: need x2 > x1 and y2 > y1")
        if not 0 <= lab < 80:
            raise argparse.ArgumentTypeError(f"GT entry {part!r}: label must be in 0..79")
        boxes.append((x1, y1, x2, y2))
        labels.append(lab)
    if not boxes:
        raise argparse.ArgumentTypeError("empty GT list")
    return boxes, labels


def q(v, step=0.25):
    """Round to a multiple of `step` (exactly representable in float32)."""
    return float(round(v / step) * step)


def default_gt(img_h, img_w):
    """Default GT (pre-processed pixels) for a resized image of img_w x img_h; see README-reference.md."""
    W, H = float(img_w), float(img_h)
    boxes = [
        (q(0.06 * W), q(0.10 * H), q(0.42 * W), q(0.72 * H)),   # large (person)
        (q(0.52 * W), q(0.18 * H), q(0.83 * W), q(0.47 * H)),   # medium (car)
        (q(0.30 * W), q(0.48 * H), q(0.64 * W), q(0.97 * H)),   # overlaps the first (chair)
        (q(0.70 * W), q(0.60 * H), q(0.78 * W), q(0.71 * H)),   # small (dog)
        (q(0.88 * W), q(0.05 * H), W, q(0.40 * H)),             # touches the right border (bottle)
        (q(0.02 * W), q(0.04 * H), q(0.97 * W), q(0.93 * H)),   # almost the whole image (P6/P7 positives)
    ]
    labels = [0, 2, 56, 16, 39, 60]
    # thin vertical box: 2 px wide, x1 = 8k + 3, tall; best IoU ~0.06-0.08 (with the stride-8 ratio-2.0
    # anchors that contain it horizontally), so it is rescued only by low-quality matching, and many
    # translated anchors tie for that max IoU.
    x1 = 8.0 * round(0.47 * W / 8.0) + 3.0
    y1 = 8.0 * round(0.20 * H / 8.0)
    y2 = y1 + 8.0 * round(0.30 * H / 8.0)
    boxes.append((x1, y1, x1 + 2.0, y2))
    labels.append(79)                                             # toothbrush: the largest class offset
    return boxes, labels


def parse_args(argv):
    ap = argparse.ArgumentParser(description="MMDetection 2.16.0 GHM reference outputs (run in .venv-mmdet)")
    ap.add_argument("--image", required=True, help="input image file (read by mmdet's LoadImageFromFile)")
    ap.add_argument("--image2", help="second image for --batch 2 (should have another size)")
    ap.add_argument("--batch", type=int, default=1, choices=(1, 2), help="1 (default) or 2 images")
    ap.add_argument("--img-scale", type=int, nargs=2, default=(1333, 800), metavar=("W", "H"),
                    help="img_scale of the test/train pipelines (default 1333 800)")
    ap.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    ap.add_argument("--out-checkpoint", required=True, help="legacy-format .pth to write")
    ap.add_argument("--out-reference", required=True, help=".safetensors to write")
    ap.add_argument("--gt", type=parse_gt, help='GT of image 0 in pre-processed pixels: "x1,y1,x2,y2,label;..." '
                    "(default: a fixed set relative to the resized size, incl. a thin box)")
    ap.add_argument("--gt2", type=parse_gt, help="GT of image 1 (--batch 2), same format")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's default)")
    ap.add_argument("--no-train", action="store_true", help="skip the training entries")
    ap.add_argument("--ghm-state", choices=("warm", "zero"),
                    help="GHM acc_sum state saved in the checkpoint (default warm, see docstring; zero with --weights)")
    ap.add_argument("--weights", help="load these weights (an mmdet-format .pth, e.g. from tools/torch_eager_ghm.py "
                    "weights, which any machine can regenerate) instead of generating and calibrating them; the "
                    "GHM state is then the file's (--ghm-state zero zeroes it)")
    ap.add_argument("--grad-keys", help="regular expression: keep only the grad.<param> entries whose parameter key "
                    "matches it (default: all), to keep the reference small")
    ap.add_argument("--max-score", type=float, default=0.95,
                    help="score of the best candidate after calibration (default 0.95)")
    ap.add_argument("--target-candidates", type=int, default=300,
                    help="approx. number of (anchor, class) scores > 0.05 after top-k (default 300)")
    ap.add_argument("--no-api-check", action="store_true",
                    help="skip the cross-check against mmdet.apis.inference_detector (saves one forward)")
    a = ap.parse_args(argv)
    if a.batch == 2 and not a.image2:
        ap.error("--batch 2 needs --image2")
    if a.batch == 1 and (a.image2 or a.gt2):
        ap.error("--image2/--gt2 need --batch 2")
    for p in [a.image] + ([a.image2] if a.image2 else []):
        if not os.path.isfile(p):
            ap.error(f"image not found: {p}")
    if a.threads is not None and a.threads < 1:
        ap.error("--threads must be >= 1")
    if min(a.img_scale) < 32:
        ap.error("--img-scale too small")
    if a.weights and not os.path.isfile(a.weights):
        ap.error(f"weights not found: {a.weights}")
    if a.weights and a.ghm_state == "warm":
        ap.error("--weights keeps the file's GHM state: --ghm-state warm would change it")
    if a.ghm_state is None:
        a.ghm_state = "file" if a.weights else "warm"
    if a.grad_keys:
        import re
        try:
            re.compile(a.grad_keys)
        except re.error as e:
            ap.error(f"--grad-keys: {e}")
    if not 0.05 < a.max_score < 0.999:
        ap.error("--max-score must be in (0.05, 0.999)")
    if a.target_candidates < 5:
        ap.error("--target-candidates must be >= 5")
    return a


# ----------------------------------------------------------------------------------------------------------
# mmdet setup
# ----------------------------------------------------------------------------------------------------------
def import_mmdet():
    import logging
    import warnings
    for cat in (UserWarning, DeprecationWarning, ImportWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=cat)  # mmcv/mmdet deprecation chatter
    if SHIM_DIR not in sys.path:
        sys.path.insert(0, SHIM_DIR)
    try:
        import ghm_mmdet_shims
        ghm_mmdet_shims.install()
        import mmdet  # noqa: F401
    except ImportError as e:
        raise RefError(f"cannot import mmdet ({e}); run this script with .venv-mmdet/bin/python "
                       "(create it with: bash tools/mmdet_env.sh)")
    import mmcv
    import mmdet as m
    if m.__version__ != "2.16.0" or mmcv.__version__ != "1.4.0":
        raise RefError(f"mmdet {m.__version__} / mmcv {mmcv.__version__} found; 2.16.0 / 1.4.0 required")
    from mmcv.utils import get_logger
    get_logger("mmcv", log_level=logging.WARNING)  # silence init_weights' per-parameter INFO log


def load_config(img_scale):
    import mmdet
    from mmcv import Config
    path = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs", "ghm", "retinanet_ghm_r50_fpn_1x_coco.py")
    if not os.path.isfile(path):
        raise RefError(f"config not found in the mmdet package: {path}")
    cfg = Config.fromfile(path)
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    scale = tuple(int(v) for v in img_scale)
    for pipe in (cfg.data.test.pipeline, cfg.data.val.pipeline, cfg.test_pipeline):
        assert pipe[1]["type"] == "MultiScaleFlipAug"
        pipe[1]["img_scale"] = scale
    for pipe in (cfg.data.train.pipeline, cfg.train_pipeline):
        assert pipe[2]["type"] == "Resize"
        pipe[2]["img_scale"] = scale
    return cfg, path


class _Capture:
    """Pipeline step that records the uint8 BGR image where it is inserted (before Normalize: resized; after
    LoadImageFromFile: decoded)."""

    def __init__(self):
        self.images = []

    def __call__(self, results):
        self.images.append(results["img"].copy())
        return results


def preprocess(cfg, image_paths):
    """mmdet's test pipeline (as inference_detector) -> (img tensor N3HW, img_metas, resized uint8 images)."""
    from mmcv.parallel import collate
    from mmdet.datasets import replace_ImageToTensor
    from mmdet.datasets.pipelines import Compose, MultiScaleFlipAug
    pipeline = replace_ImageToTensor(cfg.data.test.pipeline)
    test_pipeline = Compose(pipeline)
    cap = _Capture()
    aug = [t for t in test_pipeline.transforms if isinstance(t, MultiScaleFlipAug)]
    if len(aug) != 1:
        raise RefError("unexpected test pipeline (no MultiScaleFlipAug)")
    inner = aug[0].transforms.transforms
    idx = [i for i, t in enumerate(inner) if type(t).__name__ == "Normalize"]
    if len(idx) != 1:
        raise RefError("unexpected test pipeline (no Normalize)")
    inner.insert(idx[0], cap)
    import mmcv
    datas = []
    for p in image_paths:
        if mmcv.imread(p) is None:
            raise RefError(f"cannot decode image {p} (mmcv.imread/cv2 returned None)")
        n0 = len(cap.images)
        datas.append(test_pipeline(dict(img_info=dict(filename=p), img_prefix=None)))
        if len(cap.images) != n0 + 1:
            raise RefError("resize capture failed")
    data = collate(datas, samples_per_gpu=len(image_paths))
    img_metas = [m.data[0] for m in data["img_metas"]][0]
    img = [t.data[0] for t in data["img"]][0]
    return img.contiguous(), img_metas, cap.images


# ----------------------------------------------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------------------------------------------
def bn_modules(module):
    import torch.nn as nn
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def calibrate_weights(model, img, seed):
    """Steps 1-3 of the docstring except the cls bias/scale. Converts the model to float64 (so the result
    does not depend on the thread count) and leaves it there; returns the raw cls logits (float64)."""
    import torch
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(seed * 1000003 + 17)
    model.double()
    img = img.double()
    with torch.no_grad():
        # 1. backbone BN
        bns = bn_modules(model.backbone)
        for m in bns:
            m.weight.uniform_(0.6, 1.4, generator=g)
            m.bias.normal_(0.0, 0.1, generator=g)
            m.reset_running_stats()
            m.momentum = None
            m.train()
        model.backbone(img.flip(-1).flip(-2))   # NOT the test input itself, see the docstring (step 1)
        for m in bns:
            m.eval()
            m.momentum = 0.1
            m.num_batches_tracked.zero_()
            sd = m.running_var.sqrt()
            m.running_mean.add_(0.25 * sd * torch.randn(sd.shape, generator=g, dtype=sd.dtype))
            m.running_var.mul_(torch.exp(0.25 * torch.randn(sd.shape, generator=g, dtype=sd.dtype)))
        # 2. FPN biases, then every output level P3..P7 scaled to unit std (the head is shared, so this
        #    lets all levels produce candidates); P7 is computed from P6, hence the sequential loop.
        for name, p in model.neck.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0.0, 0.1, generator=g)
        c_feats = model.backbone(img)
        for lvl, conv_mod in enumerate(model.neck.fpn_convs):
            sd = r6(model.neck(c_feats)[lvl].std().item())
            conv_mod.conv.weight.mul_(1.0 / sd)
            conv_mod.conv.bias.mul_(1.0 / sd)
        # 3. head
        head = model.bbox_head
        for conv_mod in list(head.cls_convs) + list(head.reg_convs):
            w = conv_mod.conv.weight
            fan_in = w.shape[1] * w.shape[2] * w.shape[3]
            w.normal_(0.0, math.sqrt(2.0 / fan_in), generator=g)
            conv_mod.conv.bias.normal_(0.0, 0.1, generator=g)
        head.retina_cls.weight.normal_(0.0, 1.0, generator=g)
        head.retina_reg.weight.normal_(0.0, 1.0, generator=g)
        head.retina_reg.bias.normal_(0.0, 0.05, generator=g)

        def head_raw(with_reg):
            cls_raw, reg_raw = [], []
            for x in model.neck(c_feats):
                c, r = x, x
                for m in head.cls_convs:
                    c = m(c)
                cls_raw.append(F.conv2d(c, head.retina_cls.weight, None, padding=1))
                if with_reg:
                    for m in head.reg_convs:
                        r = m(r)
                    reg_raw.append(F.conv2d(r, head.retina_reg.weight, None, padding=1))
            return cls_raw, reg_raw

        # level balance: small levels have lighter tails, so scale FPN outputs P4..P7 until the mean of the
        # top 0.05% raw cls logits of each level is about that of P3 (factor clamped to [0.25, 4]).
        for _ in range(3):
            cls_raw, _ = head_raw(False)
            tails = []
            for c in cls_raw:
                v = c.flatten()
                tails.append(v.topk(max(5, int(5e-4 * v.numel())))[0].mean().item())
            for lvl in range(1, len(cls_raw)):
                f = r6(min(4.0, max(0.25, tails[0] / tails[lvl])))
                model.neck.fpn_convs[lvl].conv.weight.mul_(f)
                model.neck.fpn_convs[lvl].conv.bias.mul_(f)
        cls_raw, reg_raw = head_raw(True)
        # per output channel unit std for retina_cls (so that no class dominates), global 0.3 for retina_reg
        cstd = torch.cat([t.transpose(0, 1).reshape(720, -1) for t in cls_raw], 1).std(1)
        cstd = torch.tensor([r6(v) for v in cstd.tolist()], dtype=cstd.dtype)
        rstd = r6(torch.cat([t.flatten() for t in reg_raw]).std().item())
        head.retina_cls.weight.mul_((1.0 / cstd).view(-1, 1, 1, 1))
        head.retina_reg.weight.mul_(0.3 / rstd)
        cls_raw = [t * (1.0 / cstd).view(1, -1, 1, 1) for t in cls_raw]
    return cls_raw


def r6(x):
    """Round a calibration factor to 6 significant digits, so that float64 noise of the order of 1e-16
    (which depends on the thread count) cannot flip the float32 rounding of the weights."""
    return float(f"{x:.6g}")


def logit(p):
    return math.log(p / (1.0 - p))


def candidate_logits(cls_levels, nms_pre=1000):
    """Per image: logits (all 80 classes) of the top-nms_pre anchors per level, by max class logit."""
    import torch
    n = cls_levels[0].shape[0]
    out = []
    for i in range(n):
        parts = []
        for c in cls_levels:
            lg = c[i].permute(1, 2, 0).reshape(-1, 80)
            if lg.shape[0] > nms_pre:
                _, idx = lg.max(-1)[0].topk(nms_pre)
                lg = lg[idx]
            parts.append(lg)
        out.append(torch.cat(parts).flatten())
    return out


def choose_cls_affine(cls_raw, g, target, max_score):
    """Per-channel bias base ~ N(0, 0.5) (in units of the raw logit std), then one affine map
    logit = a * (raw + base) + d with a > 0 (keeps the top-k sets) such that the best candidate gets
    `max_score` and the 0.05 threshold falls in the middle of the widest gap between ranks
    0.6*target .. 1.4*target of the candidate logits (all images pooled). Returns (a, bias)."""
    import torch
    base = 0.5 * torch.randn(720, generator=g)
    levels = [c + base.view(1, -1, 1, 1) for c in cls_raw]
    s = torch.cat(candidate_logits(levels)).sort(descending=True)[0]
    n_img = cls_raw[0].shape[0]
    lo, hi = max(2, int(0.6 * target * n_img)), min(s.numel() - 1, int(1.4 * target * n_img))
    gaps = s[lo - 1:hi - 1] - s[lo:hi]            # gap between 0-based ranks k-1 and k, k in [lo, hi)
    k = int(gaps.argmax()) + lo
    mid = 0.5 * float(s[k - 1] + s[k])
    a = r6((logit(max_score) - LOGIT_THR) / (float(s[0]) - mid))
    d = r6(LOGIT_THR - a * mid)
    return a, a * base.double() + d


# ----------------------------------------------------------------------------------------------------------
# decision margins (how far mmdet's discrete decisions are from flipping)
# ----------------------------------------------------------------------------------------------------------
def nms_compare_margin(boxes, scores, thr):
    """Replicates mmcv's CPU nms loop; min |IoU - thr| over the pairs it actually compares."""
    import torch
    if boxes.shape[0] == 0:
        return float("inf"), torch.zeros(0, dtype=torch.long)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.sort(0, descending=True)[1]
    sx1, sy1, sx2, sy2, sa = x1[order], y1[order], x2[order], y2[order], areas[order]
    n = order.numel()
    sel = torch.ones(n, dtype=torch.bool)
    best = float("inf")
    zero = torch.zeros(())
    t = torch.tensor(thr, dtype=torch.float32)
    for i in range(n - 1):
        if not bool(sel[i]):
            continue
        w = torch.maximum(zero, torch.minimum(sx2[i], sx2[i + 1:]) - torch.maximum(sx1[i], sx1[i + 1:]))
        h = torch.maximum(zero, torch.minimum(sy2[i], sy2[i + 1:]) - torch.maximum(sy1[i], sy1[i + 1:]))
        inter = w * h
        ovr = inter / (sa[i] + sa[i + 1:] - inter)
        live = sel[i + 1:] & (inter > 0)
        if bool(live.any()):
            best = min(best, float((ovr[live] - t).abs().min()))
        sel[i + 1:] &= ~(ovr > t)
    return best, order[sel]


def decision_margins(model, cls_scores, bbox_preds, img_metas, quick=False):
    """Margins of mmdet's discrete test-time decisions; with quick=True stop after a failed top-k check."""
    import torch
    head = model.bbox_head
    cfg = head.test_cfg
    out = dict(topk_logit_gap=float("inf"), thr_logit_margin=float("inf"), nms_iou_margin=float("inf"),
               maxdet_logit_gap=float("inf"), candidates=[], candidates_per_level=[], kept_before_cut=[],
               equal_score_dets=0)
    n = cls_scores[0].shape[0]
    rows = []
    for c in cls_scores:  # top-k boundary in logit space (sigmoid is monotone)
        rows.append(min(cfg.nms_pre, c.shape[1] // 80 * c.shape[2] * c.shape[3]))
        for i in range(n):
            key = c[i].permute(1, 2, 0).reshape(-1, 80).max(-1)[0]
            if key.numel() > cfg.nms_pre:
                s = key.sort(descending=True)[0]
                out["topk_logit_gap"] = min(out["topk_logit_gap"], float(s[cfg.nms_pre - 1] - s[cfg.nms_pre]))
    if quick and out["topk_logit_gap"] < MARGIN_LIMITS["topk_logit_gap"]:
        return out
    level_of_row = torch.cat([torch.full((r,), lvl) for lvl, r in enumerate(rows)])
    raw = head.get_bboxes(cls_scores, bbox_preds, img_metas, rescale=True, with_nms=False)
    for boxes, scores in raw:
        sc = scores[:, :80].reshape(-1)
        lg = torch.logit(sc.double())
        out["thr_logit_margin"] = min(out["thr_logit_margin"], float((lg - LOGIT_THR).abs().min()))
        valid = sc > SCORE_THR
        out["candidates"].append(int(valid.sum()))
        lv = level_of_row[:, None].expand(-1, 80).reshape(-1)[valid]
        out["candidates_per_level"].append([int((lv == k).sum()) for k in range(len(rows))])
        bx = boxes[:, None].expand(-1, 80, 4).reshape(-1, 4)[valid]
        labels = torch.arange(80).view(1, -1).expand(scores.shape[0], 80).reshape(-1)[valid]
        s = sc[valid]
        if bx.shape[0] == 0:
            out["kept_before_cut"].append(0)
            continue
        if bx.shape[0] >= 10000:
            raise RefError(f"{bx.shape[0]} NMS candidates (>= split_thr 10000); lower --target-candidates")
        offs = labels.to(bx) * (bx.max() + torch.tensor(1).to(bx))
        m, keep = nms_compare_margin(bx + offs[:, None], s, cfg.nms.iou_threshold)
        out["nms_iou_margin"] = min(out["nms_iou_margin"], m)
        out["kept_before_cut"].append(int(keep.numel()))
        ks = s[keep]
        if keep.numel() > cfg.max_per_img:
            klg = torch.logit(ks.double())
            out["maxdet_logit_gap"] = min(out["maxdet_logit_gap"],
                                          float(klg[cfg.max_per_img - 1] - klg[cfg.max_per_img]))
        top = ks[:cfg.max_per_img]
        out["equal_score_dets"] += int((top[1:] == top[:-1]).sum())
    return out


def margins_ok(m):
    return all(m[k] >= v for k, v in MARGIN_LIMITS.items())


def margin_score(m):
    return min(m[k] / v for k, v in MARGIN_LIMITS.items())


def fmt_margins(m):
    return ", ".join(f"{k}={m[k]:.3g}" for k in MARGIN_LIMITS) + \
        f", candidates={m['candidates']} (per level {m['candidates_per_level']}), kept_before_cut={m['kept_before_cut']}, equal_score_dets={m['equal_score_dets']}"


# ----------------------------------------------------------------------------------------------------------
# training helpers
# ----------------------------------------------------------------------------------------------------------
def flipped_sample(img, img_metas, gts):
    """RandomFlip (horizontal) of each image's valid region, padding stays bottom/right; GT mirrored."""
    x = img.clone()
    out_gt = []
    for i, meta in enumerate(img_metas):
        h, w = meta["img_shape"][:2]
        x[i, :, :h, :w] = img[i, :, :h, :w].flip(-1)
        b = gts[i].clone()
        b[:, 0], b[:, 2] = w - gts[i][:, 2], w - gts[i][:, 0]
        out_gt.append(b)
    return x, out_gt


def loss_entries(prefix, losses, total):
    """Per-level losses, their sums (as _parse_losses: 0 + l0 + ... + l4) and the total, shape [1]."""
    d = OrderedDict()
    for key in ("loss_cls", "loss_bbox"):
        for lvl, v in enumerate(losses[key]):
            d[f"{prefix}{key}.{lvl}"] = v.detach().reshape(1).float().clone()
        d[f"{prefix}{key}"] = sum(v.detach() for v in losses[key]).reshape(1).float().clone()
    d[f"{prefix}loss"] = total.detach().reshape(1).float().clone()
    return d


# ----------------------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------------------
def _publish(tmp, path):
    """Give the temporary file normal permissions (mkstemp makes it 0600) and rename it into place."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def atomic_torch_save(obj, path):
    import torch
    d = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=d)
    except OSError as e:
        raise RefError(f"cannot write {path}: {e}")
    os.close(fd)
    try:
        torch.save(obj, tmp, _use_new_zipfile_serialization=False)
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_safetensors(tensors, metadata, path):
    from safetensors.torch import save_file
    d = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=d)
    except OSError as e:
        raise RefError(f"cannot write {path}: {e}")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def meta_tensors(meta, suffix):
    import numpy as np
    import torch
    f = lambda v: torch.tensor(np.asarray(v, dtype=np.float64), dtype=torch.float32)  # noqa: E731
    return {f"img_shape{suffix}": f(meta["img_shape"]), f"pad_shape{suffix}": f(meta["pad_shape"]),
            f"ori_shape{suffix}": f(meta["ori_shape"]), f"scale_factor{suffix}": f(meta["scale_factor"])}


def check_spec_keys(state_dict):
    tsv = "/work/shared/spec/retinanet_ghm_r50_fpn_state_dict_keys.tsv"
    if not os.path.isfile(tsv):
        return "spec key list not found (skipped)"
    want = OrderedDict()
    for line in open(tsv):
        if line.startswith("#") or not line.strip():
            continue
        k, shape, _ = line.rstrip("\n").split("\t")
        want[k] = shape
    have = OrderedDict((k, "scalar" if v.dim() == 0 else "x".join(str(s) for s in v.shape))
                       for k, v in state_dict.items())
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    bad = [k for k in want if k in have and want[k] != have[k]]
    if missing or bad:
        raise RefError(f"state dict differs from the spec key list: missing {missing[:5]}, shape {bad[:5]}")
    return f"{len(want)} spec keys match" + (f"; extra (GHM buffers): {extra}" if extra else "")


# ----------------------------------------------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    t_all = time.time()
    import_mmdet()
    import numpy as np
    import torch
    import mmcv
    import mmdet
    from mmdet.models import build_detector
    from mmdet.core import bbox2result

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    log(f"torch {torch.__version__} ({torch.get_num_threads()} threads), mmcv {mmcv.__version__}, "
        f"mmdet {mmdet.__version__}; seed {args.seed}; img_scale {tuple(args.img_scale)}")

    cfg, cfg_path = load_config(args.img_scale)
    model = build_detector(cfg.model)
    model.init_weights()
    model.CLASSES = COCO_CLASSES
    model.cfg = cfg
    model.eval()

    paths = [args.image] + ([args.image2] if args.batch == 2 else [])
    t0 = time.time()
    img, img_metas, resized = preprocess(cfg, paths)
    log(f"pre-processed {len(paths)} image(s): input {tuple(img.shape)}, img_shape "
        f"{[tuple(m['img_shape']) for m in img_metas]}, pad_shape {[tuple(m['pad_shape']) for m in img_metas]} "
        f"({time.time() - t0:.2f} s)")
    # sanity: the captured resized image normalises to exactly the input
    for i, (r, m) in enumerate(zip(resized, img_metas)):
        nc = m["img_norm_cfg"]
        ref = mmcv.imnormalize(r, nc["mean"], nc["std"], nc["to_rgb"])
        h, w = m["img_shape"][:2]
        if r.shape != (h, w, 3) or not np.array_equal(ref.transpose(2, 0, 1), img[i, :, :h, :w].numpy()):
            raise RefError("captured resized image does not reproduce the normalised input")

    # ---- weights
    if args.weights:
        from mmcv.runner import load_checkpoint
        load_checkpoint(model, args.weights, map_location="cpu", strict=True, logger=None)
        log(f"weights loaded from {args.weights} (no calibration)")
    else:
        calibrate_all(model, img, img_metas, args)
    lc, lb = model.bbox_head.loss_cls, model.bbox_head.loss_bbox
    acc_file = (lc.acc_sum.clone(), lb.acc_sum.clone())
    return main_after_weights(args, model, img, img_metas, resized, paths, cfg, cfg_path, t_all, acc_file)


def calibrate_all(model, img, img_metas, args):
    """Steps 1-4 of the docstring: the synthetic weights, calibrated on the input."""
    import torch
    t0 = time.time()
    cls_raw = calibrate_weights(model, img, args.seed)  # model is float64 now
    head = model.bbox_head
    best = None
    with torch.no_grad():
        bbox_preds0 = [t.float() for t in head(model.extract_feat(img.double()))[1]]
    thin = {}
    for attempt in range(64):
        g = torch.Generator().manual_seed(args.seed * 7919 + 1000 + attempt)
        a, bias = choose_cls_affine(cls_raw, g, args.target_candidates, args.max_score)
        approx = [(a * c + bias.view(1, -1, 1, 1)).float() for c in cls_raw]
        with torch.no_grad():
            m = decision_margins(model, approx, bbox_preds0, img_metas, quick=True)
        if best is None or margin_score(m) > margin_score(best[2]):
            best = (a, bias, m, attempt)
        if margins_ok(m):
            break
        for k, v in MARGIN_LIMITS.items():
            if m[k] < v:
                thin[k] = thin.get(k, 0) + 1
    with torch.no_grad():
        head.retina_cls.weight.mul_(best[0])
        head.retina_cls.bias.copy_(best[1])
    model.float()
    log(f"weights calibrated (bias draw {best[3]}, cls logit scale {best[0]:.4f}; rejected draws by thin "
        f"margin: {thin or 'none'}) in {time.time() - t0:.2f} s")


def main_after_weights(args, model, img, img_metas, resized, paths, cfg, cfg_path, t_all, acc_file):
    """Everything after the weights: GHM state, checkpoint, inference and training entries, the file."""
    import numpy as np
    import torch
    import mmcv
    import mmdet
    from mmdet.core import bbox2result
    head = model.bbox_head

    # ---- GHM buffers
    gts_in = [args.gt] + ([args.gt2] if args.batch == 2 else [])
    gt_bboxes, gt_labels = [], []
    for i, m in enumerate(img_metas):
        boxes, labels = gts_in[i] if gts_in[i] else default_gt(*m["img_shape"][:2])
        gt_bboxes.append(torch.tensor(boxes, dtype=torch.float32))
        gt_labels.append(torch.tensor(labels, dtype=torch.long))
        h, w = m["img_shape"][:2]
        b = gt_bboxes[-1]
        if bool((b[:, 0] < 0).any() | (b[:, 1] < 0).any() | (b[:, 2] > w).any() | (b[:, 3] > h).any()):
            log(f"WARNING: GT of image {i} extends outside the resized image {w}x{h} (mmdet's pipeline would "
                "have clipped it; it is used as given)")
    lc, lb = head.loss_cls, head.loss_bbox
    with torch.no_grad():
        lc.acc_sum.zero_()
        lb.acc_sum.zero_()
        if args.ghm_state == "file":
            lc.acc_sum.copy_(acc_file[0])
            lb.acc_sum.copy_(acc_file[1])
    if args.ghm_state == "warm":
        t0 = time.time()
        xf, gf = flipped_sample(img, img_metas, gt_bboxes)
        model.train()
        n_threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the checkpoint content must not depend on --threads
        try:
            with torch.no_grad():
                model.forward_train(xf, [dict(mm) for mm in img_metas], gf, gt_labels)
        finally:
            torch.set_num_threads(n_threads)
        model.eval()
        log(f"GHM warm state from the flipped sample ({time.time() - t0:.2f} s): "
            f"GHMC acc_sum nonzero bins {int((lc.acc_sum > 0).sum())}/30, GHMR {int((lb.acc_sum > 0).sum())}/10")
    acc0_c, acc0_r = lc.acc_sum.clone(), lb.acc_sum.clone()
    ec = torch.arange(31).float() / 30
    ec[-1] += 1e-6
    er = torch.arange(11).float() / 10
    er[-1] = 1e3
    if not (torch.equal(lc.edges, ec) and torch.equal(lb.edges, er)):
        raise RefError("GHM edges differ from their construction")

    # ---- checkpoint
    t0 = time.time()
    state = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    keys_note = check_spec_keys(state)
    ckpt = {
        "meta": {
            "mmdet_version": "2.16.0",
            "mmcv_version": mmcv.__version__,
            "CLASSES": COCO_CLASSES,
            "config": cfg.pretty_text,
            "epoch": 12,
            "iter": 87960,
            "seed": args.seed,
            "exp_name": "retinanet_ghm_r50_fpn_1x_coco.py",
            "ghm_reference": ("synthetic weights from tools/mmdet_reference.py, seed %d, img_scale %s, "
                              "ghm_state %s" % (args.seed, tuple(args.img_scale), args.ghm_state)),
        },
        "state_dict": state,
    }
    atomic_torch_save(ckpt, args.out_checkpoint)
    log(f"checkpoint {args.out_checkpoint}: {len(state)} keys, {os.path.getsize(args.out_checkpoint)} bytes; "
        f"{keys_note} ({time.time() - t0:.2f} s)")

    # ---- inference entries
    t0 = time.time()
    ref = OrderedDict()
    ref["input"] = img.clone()
    with torch.no_grad():
        feats = model.extract_feat(img)
        cls_scores, bbox_preds = head(feats)
        dets = head.get_bboxes(cls_scores, bbox_preds, img_metas, rescale=True)
        margins = decision_margins(model, cls_scores, bbox_preds, img_metas)
    t_inf = time.time() - t0
    for lvl in range(5):
        ref[f"cls_score.{lvl}"] = cls_scores[lvl].clone()
    for lvl in range(5):
        ref[f"bbox_pred.{lvl}"] = bbox_preds[lvl].clone()
    for i, (db, dl) in enumerate(dets):
        sfx = "" if i == 0 else f".{i}"
        ref[f"det_bboxes{sfx}"] = db.clone().float()
        ref[f"det_labels{sfx}"] = dl.clone().long()
        ref.update(meta_tensors(img_metas[i], sfx))
        ref[f"resized_uint8_bgr{sfx}"] = torch.from_numpy(np.ascontiguousarray(resized[i]))
    ref["batch_input_shape"] = torch.tensor(list(img.shape[-2:]), dtype=torch.float32)
    log(f"inference ({t_inf:.2f} s): " + "; ".join(
        f"image {i}: {d[0].shape[0]} dets, scores {float(d[0][:, 4].min()) if d[0].shape[0] else 0:.4f}.."
        f"{float(d[0][:, 4].max()) if d[0].shape[0] else 0:.4f}" for i, d in enumerate(dets)))
    log(f"decision margins: {fmt_margins(margins)}")
    if not margins_ok(margins):
        log("WARNING: some decision margins are below the limits; parity tests near those decisions may flip")

    if not args.no_api_check:  # the same through mmdet's public API (image file -> results)
        from mmdet.apis import inference_detector
        with torch.no_grad():
            res = inference_detector(model, paths if args.batch == 2 else paths[0])
        res = res if args.batch == 2 else [res]
        for i, (db, dl) in enumerate(dets):
            mine = bbox2result(db, dl, 80)
            if not all(np.array_equal(a, b) for a, b in zip(mine, res[i])):
                raise RefError(f"inference_detector disagrees with extract_feat+bbox_head for image {i}")
        log("cross-check with mmdet.apis.inference_detector: identical")

    # ---- training entries
    losses_summary = ""
    grad_params = []  # every parameter that has a gradient (with --grad-keys, more than the grad.* entries)
    if not args.no_train:
        t0 = time.time()
        before = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
        for i in range(len(paths)):
            sfx = "" if i == 0 else f".{i}"
            ref[f"gt_bboxes{sfx}"] = gt_bboxes[i].clone()
            ref[f"gt_labels{sfx}"] = gt_labels[i].clone()
        ref["ghmc.acc_sum.iter0"] = acc0_c.clone()
        ref["ghmr.acc_sum.iter0"] = acc0_r.clone()
        model.train()
        model.zero_grad(set_to_none=True)
        losses = model.forward_train(img, [dict(m) for m in img_metas], gt_bboxes, gt_labels)
        total, log_vars = model._parse_losses(losses)
        total.backward()
        ref.update(loss_entries("", losses, total))
        for key in ("loss_cls", "loss_bbox", "loss"):
            if float(ref[key]) != log_vars[key]:
                raise RefError(f"stored {key} {float(ref[key])} != _parse_losses {log_vars[key]}")
        ref["ghmc.acc_sum.iter1"] = lc.acc_sum.clone()
        ref["ghmr.acc_sum.iter1"] = lb.acc_sum.clone()
        n_grad = 0
        grad_params[:] = [k for k, p in model.named_parameters() if p.grad is not None]
        for k, p in model.named_parameters():
            if p.grad is not None and (not args.grad_keys or re.search(args.grad_keys, k)):
                ref[f"grad.{k}"] = p.grad.detach().clone()
                n_grad += 1
        with torch.no_grad():
            losses2 = model.forward_train(img, [dict(m) for m in img_metas], gt_bboxes, gt_labels)
            total2, log_vars2 = model._parse_losses(losses2)
        ref.update(loss_entries("iter2.", losses2, total2))
        ref["ghmc.acc_sum.iter2"] = lc.acc_sum.clone()
        ref["ghmr.acc_sum.iter2"] = lb.acc_sum.clone()
        model.eval()
        after = model.state_dict()
        changed = [k for k in before if not k.endswith("acc_sum") and not torch.equal(before[k], after[k])]
        if changed:
            raise RefError(f"training pass changed state other than acc_sum: {changed[:5]}")
        # restore the checkpoint's GHM state in memory (not needed for the files, keeps the model consistent)
        with torch.no_grad():
            lc.acc_sum.copy_(acc0_c)
            lb.acc_sum.copy_(acc0_r)
        # assigner/target intermediates exactly as AnchorHead.loss computes them (diagnostics for parity work)
        featmap_sizes = [c.shape[-2:] for c in cls_scores]
        anchors, valid = head.get_anchors(featmap_sizes, img_metas, device="cpu")
        labels_l, lw_l, bt_l, bw_l, n_pos, _ = head.get_targets(
            anchors, valid, gt_bboxes, img_metas, gt_labels_list=gt_labels, label_channels=head.cls_out_channels)
        for lvl in range(len(labels_l)):
            ref[f"anchors.{lvl}"] = anchors[0][lvl].clone()
            ref[f"targets.valid_flags.{lvl}"] = torch.stack([v[lvl] for v in valid]).to(torch.uint8)
            ref[f"targets.labels.{lvl}"] = labels_l[lvl].clone().long()
            ref[f"targets.label_weights.{lvl}"] = lw_l[lvl].clone().float()
            ref[f"targets.bbox_targets.{lvl}"] = bt_l[lvl].clone().float()
            ref[f"targets.bbox_weights.{lvl}"] = bw_l[lvl].clone().float()
        ref["targets.num_total_pos"] = torch.tensor([n_pos], dtype=torch.int64)
        losses_summary = (f"loss_cls {log_vars['loss_cls']:.6f} (levels "
                          + ", ".join(f"{v.item():.6g}" for v in losses["loss_cls"])
                          + f"), loss_bbox {log_vars['loss_bbox']:.6f} (levels "
                          + ", ".join(f"{v.item():.6g}" for v in losses["loss_bbox"])
                          + f"), loss {log_vars['loss']:.6f}; iter2 loss_cls {log_vars2['loss_cls']:.6f}, "
                          f"loss_bbox {log_vars2['loss_bbox']:.6f}, loss {log_vars2['loss']:.6f}")
        log(f"training ({time.time() - t0:.2f} s): {len(gt_bboxes[0])} GT boxes on image 0, positives {n_pos}, "
            f"{n_grad} parameter gradients")
        log(losses_summary)
        tie = thin_box_ties(head, cls_scores, img_metas, gt_bboxes)
        if tie:
            log(tie)

    meta = {
        "format": "ghm-mmdet-reference v1",
        "mmdet_version": mmdet.__version__, "mmcv_version": mmcv.__version__, "torch_version": torch.__version__,
        "config": os.path.relpath(cfg_path, os.path.dirname(os.path.dirname(mmdet.__file__))),
        "images": json.dumps([os.path.abspath(p) for p in paths]),
        "img_scale": json.dumps(list(args.img_scale)), "seed": str(args.seed), "batch": str(args.batch),
        "threads": str(torch.get_num_threads()), "ghm_state": args.ghm_state,
        "train_entries": str(not args.no_train).lower(),
        "grad_keys": args.grad_keys or "", "grad_params": json.dumps(grad_params),
        "checkpoint": os.path.abspath(args.out_checkpoint),
        "diag": json.dumps({k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                            for k, v in margins.items()}),
    }
    t0 = time.time()
    atomic_safetensors(ref, meta, args.out_reference)
    log(f"reference {args.out_reference}: {len(ref)} entries, {os.path.getsize(args.out_reference)} bytes "
        f"({time.time() - t0:.2f} s)")
    for k, v in ref.items():
        if not k.startswith("grad."):
            print(f"    {k:28s} {str(v.dtype).replace('torch.', ''):8s} {list(v.shape)}")
    if not args.no_train:
        print(f"    grad.<param>                 float32  ({sum(1 for k in ref if k.startswith('grad.'))} entries)")
    nd = [int(d[0].shape[0]) for d in dets]
    log(f"SUMMARY: ok in {time.time() - t_all:.1f} s; input {list(img.shape)}; dets {nd}; "
        f"scores {', '.join(f'{float(d[0][:, 4].min()):.4f}..{float(d[0][:, 4].max()):.4f}' for d in dets if d[0].shape[0])}"
        + (f"; loss {float(ref['loss']):.6f}" if not args.no_train else "; no training entries"))
    return 0


def thin_box_ties(head, cls_scores, img_metas, gt_bboxes):
    """Diagnostics: per GT of image 0, best IoU with the (valid) anchors and how many anchors hit it exactly."""
    import torch
    from mmdet.core import bbox_overlaps
    featmap_sizes = [c.shape[-2:] for c in cls_scores]
    anchors, _ = head.get_anchors(featmap_sizes, img_metas, device="cpu")
    a = torch.cat(anchors[0])
    ov = bbox_overlaps(gt_bboxes[0], a)
    best = ov.max(1)[0]
    ties = (ov == best[:, None]).sum(1)
    return "GT best IoU / #anchors at exactly that IoU: " + ", ".join(
        f"{float(b):.4f}/{int(t)}" for b, t in zip(best, ties))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RefError as e:
        print(f"[mmdet_reference] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        import traceback
        traceback.print_exc()
        print("[mmdet_reference] ERROR: unexpected failure (traceback above); files already renamed into place are complete, no partial file is left",
              file=sys.stderr)
        sys.exit(1)
