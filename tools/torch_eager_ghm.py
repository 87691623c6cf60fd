#!/usr/bin/env python3
"""Plain PyTorch-eager GHM RetinaNet (MMDetection 2.16.0 ``retinanet_ghm_r50_fpn_1x_coco``): weights, detect, train.

Needs only ``torch`` (any 2.x, CPU or CUDA) and ``numpy``: no mmdet, mmcv, torchvision, safetensors or OpenCV.
It is the "PyTorch eager" baseline of the benchmarks and the generator of deterministic weights.

    python3 tools/torch_eager_ghm.py weights --out W.pth [--seed 0] [--num-classes 80] [--check-sha256 HEX]
    python3 tools/torch_eager_ghm.py detect --weights W.pth (--input B.safetensors | --shape 1x3x800x1344)
        [--device cpu|cuda|cuda:N] [--amp none|fp16|bf16] [--channels-last] [--batch N] [--threads N]
        [--warmup 2] [--runs 7] [--tf32] [--seed 0]
    python3 tools/torch_eager_ghm.py train --weights W.pth --batch B.safetensors [--device ...]
        [--amp none|fp16|bf16] [--loss-scale dynamic|<float>] [--batch-size N] [--threads N] [--warmup 1]
        [--runs 5] [--tf32]

Model (state-dict keys and parameter order as mmdet builds them, see
shared/spec/retinanet_ghm_r50_fpn_state_dict_keys.tsv): ResNet-50 pytorch style (frozen_stages=1, norm_eval),
FPN (start_level 1, P6 from C5 'on_input', no ReLU before P7), RetinaHead (4+4 stacked 3x3 convs with ReLU,
9 anchors x num_classes sigmoid logits, 9x4 deltas), GHM-C (bins 30, momentum 0.75) and GHM-R (mu 0.02, bins 10,
momentum 0.7, loss_weight 10 as configs/retinanet_ghm_r50_fpn_1x_coco.yml) with their acc_sum EMA buffers.

``weights``: every tensor is drawn from ``numpy.random.RandomState(seed)`` (legacy MT19937) in sorted-key order in
float64 and rounded to float32, so every machine writes bit-identical values:
backbone convs N(0, sqrt(2/fan_out)) (kaiming fan_out); BN weight 1 + N(0, 0.05) (times 0.4 for the last BN of
each residual branch, bn3, in the spirit of mmdet's zero_init_residual: without it the activations grow ~50x
through the 16 blocks and the scores saturate), bias N(0, 0.05), running_mean N(0, 0.05), running_var
1 + |N(0, 0.05)|, num_batches_tracked 0; FPN convs N(0, sqrt(1/fan_in)), head stacked convs N(0, sqrt(2/fan_in)),
retina_cls N(0, 1.6 sqrt(1/fan_in)), retina_reg N(0, 0.5 sqrt(1/fan_in)), conv biases N(0, 0.01) and
retina_cls.bias = -log(99) + N(0, 0.01) (+ --cls-bias-shift); GHM edges as GHMC/GHMR build them, acc_sum 0. On an N(0,1) 800x1344
input (seed 0 weights) the logits have mean -4.6, std 0.99, max score 0.57; the deltas std ~0.3; C2..C5 std ~0.3.
Saved as ``{"meta": {...}, "state_dict": OrderedDict}`` (atomic rename). ``sha256`` = over the sorted keys of
key utf-8 bytes + the tensor's little-endian bytes (float32 / int64): independent of torch's file format.
stdout: {"out", "seed", "num_classes", "cls_bias_shift", "num_tensors", "num_params", "num_elements", "sha256"[, "sha256_ok"]}

``detect``: the network forward (backbone, FPN, head; eval, no grad; no post-processing) on the ``input`` tensor
of a safetensors file or on a seeded N(0,1) input (numpy RandomState(seed), bit-identical everywhere).
``--amp``: torch.autocast around the forward, the input cast to float16 first and the backbone features cast to
float16 before the FPN, as mmcv's auto_fp16 does on the detector's and on FPN's forward after wrap_fp16_model
(it casts to half whatever autocast's dtype; under bf16 the convs then cast back to bf16).
stdout: {"median_ms", "runs", "device", "torch", "amp", "channels_last", "batch", "input_shape",
"peak_memory_bytes" (CUDA: max_memory_allocated since before the warm-up; CPU: null), "outputs": per level
{"cls_sum", "cls_abs_sum", "bbox_sum", "bbox_abs_sum"} (float64, of the first timed run), "warmup", "threads", "tf32"}

``train``: one timed iteration is what mmdet's EpochBasedRunner + OptimizerHook do per batch: zero_grad
(set_to_none), forward in train mode, anchors, valid flags, MaxIoUAssigner, DeltaXYWH targets, GHM-C/GHM-R per
FPN level with mmdet's bin loop (acc_sum carried over iterations, starting from the checkpoint), loss =
loss_cls + loss_bbox, backward, clip_grad_norm_(35) of the parameters with a gradient, SGD(lr 0.01, momentum 0.9,
weight_decay 1e-4) step. With ``--amp``: autocast around the network forward (input and FPN inputs cast to
float16 as in detect; under bf16 the FPN-input cast also rounds the gradients flowing back through it to float16),
head outputs to float32 for the losses (force_fp32), torch.amp.GradScaler as mmcv 1.4's Fp16OptimizerHook (dynamic:
GradScaler defaults; a number: GradScaler(init_scale=x) and update(x) every step), unscale_ before clipping.
The batch file comes from ``tools/bench_mmdet_train.py --make-batch``; ``--batch-size N`` repeats its images
(with their ground truth and meta) cyclically.
stdout: {"median_ms", "images_per_s", "runs", "device", "torch", "amp", "batch_size", "input_shape",
"peak_memory_bytes" (CUDA: max_memory_allocated; CPU: VmHWM), "first_losses": {"loss_cls", "loss_bbox", "loss",
"grad_norm"}, "last_losses", "loss_scale", "warmup", "threads", "tf32"}

Checked on CPU (torch 2.13) against mmdet 2.16.0 / mmcv 1.4.0 with .build/bench/bench.pth: head outputs and the
first/fifth fp32 training iteration (losses, grad_norm) bit-identical; one bf16 (dynamic scale) and one fp16
(static 512) iteration bit-identical to mmcv's Fp16OptimizerHook on torch.autocast('cpu').

Progress goes to stderr, exactly one JSON line to stdout. Exit 1 with an "ERROR: ..." line on failure, 2 on bad
arguments.
"""

import argparse
import collections
import hashlib
import json
import math
import os
import statistics
import struct
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep (must precede torch's libgomp)

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    IMPORT_ERROR = None
except ImportError as _e:  # --help and argument errors still work; main() reports this after parsing
    IMPORT_ERROR = _e
    nn = type("nn", (), {"Module": object})

TOOL = "torch_eager_ghm.py"
STRIDES = (8, 16, 32, 64, 128)
RATIOS = (0.5, 1.0, 2.0)
OCTAVE_BASE_SCALE, SCALES_PER_OCTAVE = 4, 3
NUM_ANCHORS = len(RATIOS) * SCALES_PER_OCTAVE
POS_IOU_THR, NEG_IOU_THR, MIN_POS_IOU = 0.5, 0.4, 0.0
GHMC_CFG = dict(bins=30, momentum=0.75, loss_weight=1.0)
GHMR_CFG = dict(mu=0.02, bins=10, momentum=0.7, loss_weight=10.0)
SGD_CFG = dict(lr=0.01, momentum=0.9, weight_decay=1e-4)
MAX_GRAD_NORM = 35.0


def log(msg):
    print(f"[torch_eager_ghm] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------------
# Model: module names follow mmdet's state-dict keys
# ----------------------------------------------------------------------------------------------------------------

class Bottleneck(nn.Module):
    """ResNet bottleneck, pytorch style (the stride sits on the 3x3 conv)."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """Outputs C2..C5. train(): stem + layer1 frozen (frozen_stages=1), every BN in eval mode (norm_eval)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (blocks, stride) in enumerate(zip((3, 4, 6, 3), (1, 2, 2, 2))):
            planes = 64 * 2 ** i
            layer = [Bottleneck(cin if b == 0 else planes * 4, planes, stride if b == 0 else 1) for b in range(blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            cin = planes * 4

    def train(self, mode=True):
        super().train(mode)
        for m in (self.conv1, self.bn1, self.layer1):
            for p in m.parameters():
                p.requires_grad_(False)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        outs = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            outs.append(x)
        return outs


class ConvUnit(nn.Module):
    """mmcv ConvModule without norm: conv (with bias), optional ReLU; keys '<name>.conv.weight/bias'."""

    def __init__(self, cin, cout, k, stride=1, relu=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)
        self.relu = relu

    def forward(self, x):
        x = self.conv(x)
        return F.relu(x) if self.relu else x


class FPN(nn.Module):
    def __init__(self, in_channels=(512, 1024, 2048), out=256):
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvUnit(c, out, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList([ConvUnit(out, out, 3) for _ in in_channels]
                                       + [ConvUnit(in_channels[-1], out, 3, stride=2), ConvUnit(out, out, 3, stride=2)])

    def forward(self, feats):
        c3, c4, c5 = feats[1:]
        lat = [conv(c) for conv, c in zip(self.lateral_convs, (c3, c4, c5))]
        for i in (2, 1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:], mode="nearest")
        outs = [self.fpn_convs[i](lat[i]) for i in range(3)]
        outs.append(self.fpn_convs[3](c5))          # P6 from C5 ('on_input')
        outs.append(self.fpn_convs[4](outs[-1]))    # P7 from P6, no ReLU in between
        return outs


class GHMC(nn.Module):
    """Gradient-harmonized sigmoid BCE; forward ported from mmdet 2.16 GHMC (bin loop, EMA on acc_sum)."""

    def __init__(self, bins, momentum, loss_weight):
        super().__init__()
        self.bins, self.momentum, self.loss_weight = bins, momentum, loss_weight
        edges = torch.arange(bins + 1).float() / bins
        edges[-1] += 1e-6
        self.register_buffer("edges", edges)
        self.register_buffer("acc_sum", torch.zeros(bins))

    def forward(self, logits, labels, label_weights):
        m, c = logits.shape
        onehot = labels.new_zeros((m, c))
        fg = torch.nonzero((labels >= 0) & (labels < c)).flatten()
        if fg.numel() > 0:
            onehot[fg, labels[fg]] = 1
        target = onehot.float()
        weight = label_weights.view(-1, 1).expand(m, c).float()
        g = (logits.sigmoid().detach() - target).abs()
        valid = weight > 0
        tot = max(valid.float().sum().item(), 1.0)
        beta = _harmonize(g, valid, tot, self.edges, self.acc_sum, self.bins, self.momentum)
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (loss * beta).sum() / tot * self.loss_weight


class GHMR(nn.Module):
    """Gradient-harmonized authentic smooth L1; forward ported from mmdet 2.16 GHMR."""

    def __init__(self, mu, bins, momentum, loss_weight):
        super().__init__()
        self.mu, self.bins, self.momentum, self.loss_weight = mu, bins, momentum, loss_weight
        edges = torch.arange(bins + 1).float() / bins
        edges[-1] = 1e3
        self.register_buffer("edges", edges)
        self.register_buffer("acc_sum", torch.zeros(bins))

    def forward(self, pred, target, weight):
        mu = self.mu
        d = pred - target
        loss = torch.sqrt(d * d + mu * mu) - mu
        g = (d / torch.sqrt(mu * mu + d * d)).abs().detach()
        valid = weight > 0
        tot = max(weight.float().sum().item(), 1.0)
        beta = _harmonize(g, valid, tot, self.edges, self.acc_sum, self.bins, self.momentum)
        return (loss * beta).sum() / tot * self.loss_weight


def _harmonize(g, valid, tot, edges, acc_sum, bins, mmt):
    """Per-element weights tot / (EMA count of the element's g bin), divided by the number of non-empty bins.
    Same float32 operations as mmdet (one .item() per bin, acc_sum updated in place for non-empty bins only)."""
    beta = torch.zeros_like(g)
    n = 0
    for i in range(bins):
        inds = (g >= edges[i]) & (g < edges[i + 1]) & valid
        cnt = inds.sum().item()
        if cnt > 0:
            if mmt > 0:
                acc_sum[i] = mmt * acc_sum[i] + (1 - mmt) * cnt
                beta[inds] = tot / acc_sum[i]
            else:
                beta[inds] = tot / cnt
            n += 1
    return beta / n if n > 0 else beta


class RetinaGHMHead(nn.Module):
    def __init__(self, num_classes=80, ch=256):
        super().__init__()
        self.num_classes = num_classes
        self.loss_cls = GHMC(**GHMC_CFG)
        self.loss_bbox = GHMR(**GHMR_CFG)
        self.cls_convs = nn.ModuleList(ConvUnit(ch, ch, 3, relu=True) for _ in range(4))
        self.reg_convs = nn.ModuleList(ConvUnit(ch, ch, 3, relu=True) for _ in range(4))
        self.retina_cls = nn.Conv2d(ch, NUM_ANCHORS * num_classes, 3, padding=1)
        self.retina_reg = nn.Conv2d(ch, NUM_ANCHORS * 4, 3, padding=1)

    def forward(self, feats):
        cls_scores, bbox_preds = [], []
        for x in feats:
            c = r = x
            for conv in self.cls_convs:
                c = conv(c)
            for conv in self.reg_convs:
                r = conv(r)
            cls_scores.append(self.retina_cls(c))
            bbox_preds.append(self.retina_reg(r))
        return cls_scores, bbox_preds


class RetinaNetGHM(nn.Module):
    def __init__(self, num_classes=80):
        super().__init__()
        self.backbone = ResNet50()
        self.neck = FPN()
        self.bbox_head = RetinaGHMHead(num_classes)
        # mmcv's wrap_fp16_model sets fp16_enabled: FPN.forward's @auto_fp16() then casts the backbone features to
        # float16 (also under a bf16 autocast, where the cast rounds the gradients flowing back through it)
        self.fp16_enabled = False

    def forward(self, img):
        feats = self.backbone(img)
        if self.fp16_enabled:
            feats = [f.half() for f in feats]
        return self.bbox_head(self.neck(feats))


# ----------------------------------------------------------------------------------------------------------------
# Training targets (AnchorGenerator, valid flags, MaxIoUAssigner, DeltaXYWHBBoxCoder) and the head loss
# ----------------------------------------------------------------------------------------------------------------

def level_anchors(stride, feat_h, feat_w, device):
    """Anchors (feat_h*feat_w*9, 4), rows (y, x, a), a = 3*ratio_idx + scale_idx, centre offset 0."""
    scales = torch.Tensor(np.array([2 ** (i / SCALES_PER_OCTAVE) for i in range(SCALES_PER_OCTAVE)])
                          * OCTAVE_BASE_SCALE)
    h_ratios = torch.sqrt(torch.Tensor(RATIOS))
    w_ratios = 1 / h_ratios
    ws = (stride * w_ratios[:, None] * scales[None, :]).view(-1)
    hs = (stride * h_ratios[:, None] * scales[None, :]).view(-1)
    base = torch.stack([0.0 - 0.5 * ws, 0.0 - 0.5 * hs, 0.0 + 0.5 * ws, 0.0 + 0.5 * hs], dim=-1).to(device)
    sx = torch.arange(0, feat_w, device=device) * stride
    sy = torch.arange(0, feat_h, device=device) * stride
    xx = sx.repeat(feat_h)
    yy = sy.view(-1, 1).repeat(1, feat_w).view(-1)
    shifts = torch.stack([xx, yy, xx, yy], dim=-1).type_as(base)
    return (base[None, :, :] + shifts[:, None, :]).view(-1, 4)


def level_valid_flags(stride, feat_h, feat_w, pad_hw, device):
    vh = min(int(np.ceil(pad_hw[0] / stride)), feat_h)
    vw = min(int(np.ceil(pad_hw[1] / stride)), feat_w)
    vx = torch.zeros(feat_w, dtype=torch.bool, device=device)
    vy = torch.zeros(feat_h, dtype=torch.bool, device=device)
    vx[:vw] = True
    vy[:vh] = True
    cell = vx.repeat(feat_h) & vy.view(-1, 1).repeat(1, feat_w).view(-1)
    return cell[:, None].expand(cell.numel(), NUM_ANCHORS).contiguous().view(-1)


def box_iou(a, b):
    """IoU (len(a), len(b)) with x2-x1 widths (no +1) and union clamped at 1e-6."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = torch.max(area_a[:, None] + area_b[None, :] - inter, inter.new_tensor([1e-6]))
    return inter / union


def assign(anchors, gt_boxes):
    """MaxIoUAssigner(0.5, 0.4, min_pos_iou 0, gt_max_assign_all, match_low_quality): gt index + 1, 0 = negative,
    -1 = ignored."""
    num_gt = gt_boxes.shape[0]
    gt_inds = anchors.new_full((anchors.shape[0],), -1, dtype=torch.long)
    if num_gt == 0:
        gt_inds[:] = 0
        return gt_inds
    iou = box_iou(gt_boxes, anchors)
    max_iou, argmax = iou.max(dim=0)
    gt_max_iou, _ = iou.max(dim=1)
    gt_inds[(max_iou >= 0) & (max_iou < NEG_IOU_THR)] = 0
    pos = max_iou >= POS_IOU_THR
    gt_inds[pos] = argmax[pos] + 1
    for i in range(num_gt):
        if gt_max_iou[i] >= MIN_POS_IOU:
            gt_inds[iou[i, :] == gt_max_iou[i]] = i + 1
    return gt_inds


def encode_deltas(p, g):
    """DeltaXYWHBBoxCoder.encode with means 0, stds 1."""
    p, g = p.float(), g.float()
    px, py = (p[:, 0] + p[:, 2]) * 0.5, (p[:, 1] + p[:, 3]) * 0.5
    pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    gx, gy = (g[:, 0] + g[:, 2]) * 0.5, (g[:, 1] + g[:, 3]) * 0.5
    gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    return torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=-1)


def image_targets(anchors, valid, gt_boxes, gt_labels, num_classes):
    """Per-image labels, label weights, delta targets and weights over all anchors (AnchorHead._get_targets_single
    with PseudoSampler, allowed_border -1 so inside flags = valid flags)."""
    if not bool(valid.any()):
        raise RuntimeError("an image has no valid anchors")
    inside = anchors[valid]
    gt_inds = assign(inside, gt_boxes)
    pos = torch.nonzero(gt_inds > 0).flatten()
    neg = torch.nonzero(gt_inds == 0).flatten()
    n = inside.shape[0]
    labels = inside.new_full((n,), num_classes, dtype=torch.long)
    lw = inside.new_zeros(n, dtype=torch.float)
    bt = torch.zeros_like(inside)
    bw = torch.zeros_like(inside)
    if pos.numel() > 0:
        assigned = gt_inds[pos] - 1
        bt[pos, :] = encode_deltas(inside[pos], gt_boxes[assigned, :])
        bw[pos, :] = 1.0
        labels[pos] = gt_labels[assigned]
        lw[pos] = 1.0
    if neg.numel() > 0:
        lw[neg] = 1.0
    total = anchors.shape[0]

    def unmap(x, fill):
        out = x.new_full((total,) + tuple(x.shape[1:]), fill)
        out[valid] = x
        return out
    return unmap(labels, num_classes), unmap(lw, 0), unmap(bt, 0), unmap(bw, 0), pos.numel()


def head_loss(head, cls_scores, bbox_preds, gt_boxes, gt_labels, pad_shapes):
    """AnchorHead.loss: targets for the whole batch, then GHM-C/GHM-R once per FPN level (P3..P7)."""
    device = cls_scores[0].device
    sizes = [tuple(c.shape[-2:]) for c in cls_scores]
    anchors = [level_anchors(s, h, w, device) for s, (h, w) in zip(STRIDES, sizes)]
    counts = [a.shape[0] for a in anchors]
    flat_anchors = torch.cat(anchors)
    per_image = []
    for boxes, labels, pad in zip(gt_boxes, gt_labels, pad_shapes):
        valid = torch.cat([level_valid_flags(s, h, w, pad, device) for s, (h, w) in zip(STRIDES, sizes)])
        per_image.append(image_targets(flat_anchors, valid, boxes, labels, head.num_classes))
    # num_total_samples = sum(max(#pos, 1)): computed by mmdet and passed as avg_factor, which GHM ignores
    _num_total_samples = sum(max(t[4], 1) for t in per_image)
    stacked = [torch.stack([t[k] for t in per_image]).split(counts, dim=1) for k in range(4)]
    losses_cls, losses_bbox = [], []
    for lvl, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
        labels, lw, bt, bw = (s[lvl] for s in stacked)
        losses_cls.append(head.loss_cls(cls.permute(0, 2, 3, 1).reshape(-1, head.num_classes),
                                        labels.reshape(-1), lw.reshape(-1)))
        losses_bbox.append(head.loss_bbox(reg.permute(0, 2, 3, 1).reshape(-1, 4), bt.reshape(-1, 4),
                                          bw.reshape(-1, 4)))
    return losses_cls, losses_bbox


# ----------------------------------------------------------------------------------------------------------------
# Weights, checkpoints, safetensors
# ----------------------------------------------------------------------------------------------------------------

# Init tuning (see the docstring): the scale of each residual branch's last BN (bn3) and the variance gains of the
# FPN/head conv weights: the ReLU-followed head convs He (2), the output convs scaled so that on an N(0,1)
# 800x1344 input the logits have std ~1 (max score ~0.57) and the deltas std ~0.3.
RESIDUAL_GAMMA = 0.4


def variance_gain(key):
    if ".cls_convs." in key or ".reg_convs." in key:
        return 2.0
    return {"bbox_head.retina_cls.weight": 1.6 ** 2, "bbox_head.retina_reg.weight": 0.5 ** 2}.get(key, 1.0)


def make_state_dict(seed, num_classes, cls_bias_shift=0.0):
    rs = np.random.RandomState(seed)
    ref = RetinaNetGHM(num_classes).state_dict()
    out = {}
    for key in sorted(ref):
        t = ref[key]
        name = key.rsplit(".", 1)[-1]
        shape = tuple(t.shape)

        def normal(std, mean=0.0):
            return mean + std * rs.standard_normal(int(np.prod(shape, dtype=np.int64))).reshape(shape)
        if name == "num_batches_tracked":
            v = torch.zeros((), dtype=torch.int64)
        elif ".loss_" in key:
            v = t.clone()  # GHM edges as constructed, acc_sum zeros
        elif t.dim() == 4:
            fan_in, fan_out = shape[1] * shape[2] * shape[3], shape[0] * shape[2] * shape[3]
            if key.startswith("backbone."):
                std = math.sqrt(2.0 / fan_out)
            else:
                std = math.sqrt(variance_gain(key) / fan_in)
            v = normal(std)
        elif key.startswith("backbone."):  # BN
            if name == "weight":
                v = normal(0.05, 1.0) * (RESIDUAL_GAMMA if key.endswith("bn3.weight") else 1.0)
            elif name == "running_var":
                v = 1.0 + np.abs(normal(0.05))
            else:  # bias, running_mean
                v = normal(0.05)
        elif key == "bbox_head.retina_cls.bias":
            v = normal(0.01, -math.log(99.0)) + cls_bias_shift
        else:  # conv biases of FPN and head
            v = normal(0.01)
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(v.astype(np.float32))
        out[key] = v.contiguous()
    return collections.OrderedDict((k, out[k]) for k in ref)


def state_dict_sha256(sd):
    h = hashlib.sha256()
    for key in sorted(sd):
        t = sd[key].detach().cpu().contiguous()
        if t.is_floating_point():
            a = t.to(torch.float32).numpy().astype("<f4")
        else:
            a = t.to(torch.int64).numpy().astype("<i8")
        h.update(key.encode("utf-8"))
        h.update(a.tobytes())
    return h.hexdigest()


def load_model(path, device):
    try:
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # e.g. mmdet checkpoints whose meta holds other objects; local trusted files only
            ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise RuntimeError(f"{path}: cannot load as a torch checkpoint ({type(e).__name__}: {e})") from None
    sd = ck.get("state_dict", ck) if isinstance(ck, dict) else None
    if not isinstance(sd, dict) or "bbox_head.retina_cls.bias" not in sd:
        raise RuntimeError(f"{path}: not a GHM RetinaNet checkpoint (no state_dict with bbox_head.retina_cls.bias)")
    num_classes = sd["bbox_head.retina_cls.bias"].numel() // NUM_ANCHORS
    model = RetinaNetGHM(num_classes)
    optional = {k for k in model.state_dict() if k.startswith("bbox_head.loss_")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    bad = [k for k in missing if k not in optional] + list(unexpected)
    if bad:
        raise RuntimeError(f"{path}: state_dict mismatch: missing {sorted(set(missing) - optional)}, "
                           f"unexpected {sorted(unexpected)}")
    if missing:
        log(f"{path} has no {sorted(missing)}: the GHM buffers start as constructed")
    log(f"loaded {path}: {len(sd)} tensors, {num_classes} classes")
    return model.to(device)


SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
                      "U8": "uint8"}


def read_safetensors(path):
    """{name: tensor} from a safetensors file (8-byte LE header length, JSON header, raw little-endian data)."""
    if sys.byteorder != "little":
        raise RuntimeError("the safetensors reader assumes a little-endian machine")
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise RuntimeError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    try:
        if n > len(data) - 8:
            raise ValueError(f"header length {n} beyond the file's {len(data)} bytes")
        header = json.loads(data[8:8 + n])
    except ValueError as e:
        raise RuntimeError(f"{path}: not a safetensors file ({e})") from None
    base, out = 8 + n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in SAFETENSORS_DTYPES:
            raise RuntimeError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        dtype, shape = getattr(torch, SAFETENSORS_DTYPES[info["dtype"]]), list(info["shape"])
        b, e = info["data_offsets"]
        if e > b:
            t = torch.frombuffer(bytearray(data[base + b:base + e]), dtype=dtype).reshape(shape)
        else:
            t = torch.empty(shape, dtype=dtype)
        out[name] = t
    return out


# ----------------------------------------------------------------------------------------------------------------
# Subcommands
# ----------------------------------------------------------------------------------------------------------------

def setup_runtime(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {args.device}: CUDA is not available in this torch ({torch.__version__})")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        if dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"--device {args.device}: only {torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
    torch.backends.cudnn.allow_tf32 = bool(args.tf32)
    return dev


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def amp_dtype(name):
    return {"none": None, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def autocast(dev, dtype):
    if dtype is None:
        return torch.autocast(dev.type, enabled=False)
    return torch.autocast(dev.type, dtype=dtype)


def run_label(i, warmup):
    return f"warm-up {i + 1}" if i < warmup else f"run {i - warmup + 1}"


def vm_hwm():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cmd_weights(args):
    t0 = time.perf_counter()
    sd = make_state_dict(args.seed, args.num_classes, args.cls_bias_shift)
    digest = state_dict_sha256(sd)
    num_params = sum(p.numel() for p in RetinaNetGHM(args.num_classes).parameters())
    out = {"out": args.out, "seed": args.seed, "num_classes": args.num_classes, "cls_bias_shift": args.cls_bias_shift,
           "num_tensors": len(sd),
           "num_params": num_params, "num_elements": sum(t.numel() for t in sd.values()), "sha256": digest}
    log(f"drew {len(sd)} tensors with seed {args.seed} in {time.perf_counter() - t0:.1f} s, sha256 {digest}")
    if args.check_sha256 is not None:
        out["sha256_ok"] = digest == args.check_sha256.lower()
        if not out["sha256_ok"]:
            print(json.dumps(out), flush=True)
            raise RuntimeError(f"sha256 {digest} differs from --check-sha256 {args.check_sha256}")
    if args.out:
        tmp = f"{args.out}.tmp.{os.getpid()}"
        try:
            with open(tmp, "wb") as f:  # a file object: the archive's inner name does not depend on the path
                torch.save({"meta": {"seed": args.seed, "tool": TOOL, "num_classes": args.num_classes,
                                     "sha256": digest}, "state_dict": sd}, f)
            os.replace(tmp, args.out)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        log(f"wrote {args.out}")
    print(json.dumps(out), flush=True)
    return 0


def cmd_detect(args):
    dev = setup_runtime(args)
    dtype = amp_dtype(args.amp)
    if args.input:
        tensors = read_safetensors(args.input)
        if "input" not in tensors:
            raise RuntimeError(f"{args.input} has no tensor named 'input'")
        img = tensors["input"].float()
        if img.dim() == 3:
            img = img[None]
    else:
        shape = args.shape
        img = torch.from_numpy(np.random.RandomState(args.seed).standard_normal(shape).astype(np.float32))
    if img.dim() != 4 or img.shape[1] != 3:
        raise RuntimeError(f"the input must be (N, 3, H, W), got {tuple(img.shape)}")
    if args.batch:
        img = img[:1].expand(args.batch, *img.shape[1:]).contiguous()
    model = load_model(args.weights, dev).eval()
    model.fp16_enabled = dtype is not None
    mf = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=mf)
    x = img.to(dev).to(memory_format=mf)
    if dtype is not None:
        x = x.half()  # mmcv's auto_fp16 casts the image to float16 (whatever autocast's dtype) before the region
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}; input {tuple(x.shape)}, "
        f"amp {args.amp}, channels_last {args.channels_last}; {args.warmup} warm-up + {args.runs} timed runs")
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    runs, first = [], None
    with torch.no_grad():
        for i in range(args.warmup + args.runs):
            sync(dev)
            t = time.perf_counter()
            with autocast(dev, dtype):
                cls_scores, bbox_preds = model(x)
            sync(dev)
            ms = (time.perf_counter() - t) * 1000.0
            if i >= args.warmup:
                runs.append(round(ms, 3))
                if first is None:
                    first = [{"cls_sum": c.double().sum().item(), "cls_abs_sum": c.double().abs().sum().item(),
                              "bbox_sum": b.double().sum().item(), "bbox_abs_sum": b.double().abs().sum().item(),
                              "shape_cls": list(c.shape), "dtype": str(c.dtype).replace("torch.", "")}
                             for c, b in zip(cls_scores, bbox_preds)]
            log(f"{run_label(i, args.warmup)}: {ms:.1f} ms")
            del cls_scores, bbox_preds
    out = {"median_ms": round(statistics.median(runs), 3), "runs": runs, "device": str(dev),
           "torch": torch.__version__, "amp": args.amp, "channels_last": args.channels_last,
           "batch": int(x.shape[0]), "input_shape": list(x.shape),
           "peak_memory_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None,
           "outputs": first, "warmup": args.warmup, "threads": torch.get_num_threads(), "tf32": bool(args.tf32),
           "tool": TOOL}
    print(json.dumps(out), flush=True)
    return 0


def read_train_batch(path, batch_size):
    t = read_safetensors(path)
    for k in ("input", "pad_shape", "gt_bboxes", "gt_labels"):
        if k not in t:
            raise RuntimeError(f"{path}: no tensor '{k}' (write it with tools/bench_mmdet_train.py --make-batch)")
    img = t["input"].float()
    n0 = img.shape[0]
    n = batch_size or n0
    sfx = ["" if i == 0 else f".{i}" for i in range(n0)]
    idx = [i % n0 for i in range(n)]
    boxes = [t["gt_bboxes" + sfx[i]].float() for i in idx]
    labels = [t["gt_labels" + sfx[i]].long() for i in idx]
    pads = [tuple(int(v) for v in t["pad_shape" + sfx[i]].tolist()[:2]) for i in idx]
    return img[idx].contiguous(), boxes, labels, pads


def cmd_train(args):
    dev = setup_runtime(args)
    dtype = amp_dtype(args.amp)
    img, gt_boxes, gt_labels, pads = read_train_batch(args.batch, args.batch_size)
    model = load_model(args.weights, dev)
    model.fp16_enabled = dtype is not None
    model.train()
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, **SGD_CFG)
    scaler, static_scale = None, None
    if dtype is not None:
        if args.loss_scale == "dynamic":
            scaler = torch.amp.GradScaler(dev.type)
        else:
            static_scale = float(args.loss_scale)
            scaler = torch.amp.GradScaler(dev.type, init_scale=static_scale)
    x = img.to(dev)
    if dtype is not None:
        x = x.half()  # as mmcv's auto_fp16: float16 whatever autocast's dtype
    gt_boxes = [b.to(dev) for b in gt_boxes]
    gt_labels = [lb.to(dev) for lb in gt_labels]
    head = model.bbox_head
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}; input {tuple(x.shape)}, "
        f"amp {args.amp} (loss scale {args.loss_scale if dtype is not None else '-'}); "
        f"{args.warmup} warm-up + {args.runs} timed iterations")

    def iteration():
        optimizer.zero_grad(set_to_none=True)
        with autocast(dev, dtype):
            cls_scores, bbox_preds = model(x)
        if dtype is not None:
            cls_scores = [c.float() for c in cls_scores]
            bbox_preds = [b.float() for b in bbox_preds]
        losses_cls, losses_bbox = head_loss(head, cls_scores, bbox_preds, gt_boxes, gt_labels, pads)
        loss_cls = sum(v.mean() for v in losses_cls)
        loss_bbox = sum(v.mean() for v in losses_bbox)
        loss = sum([loss_cls, loss_bbox])
        values = dict(loss_cls=loss_cls.item(), loss_bbox=loss_bbox.item(), loss=loss.item())
        if scaler is None:
            loss.backward()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        with_grad = [p for p in params if p.requires_grad and p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(with_grad, max_norm=MAX_GRAD_NORM, norm_type=2)
        values["grad_norm"] = float(norm)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update(static_scale)
        return values

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    runs, first, last = [], None, None
    for i in range(args.warmup + args.runs):
        sync(dev)
        t = time.perf_counter()
        values = iteration()
        sync(dev)
        ms = (time.perf_counter() - t) * 1000.0
        first = first or values
        last = values
        if i >= args.warmup:
            runs.append(round(ms, 3))
        log(f"{run_label(i, args.warmup)}: {ms:.1f} ms, loss_cls {values['loss_cls']:.6f} "
            f"loss_bbox {values['loss_bbox']:.6f} grad_norm {values['grad_norm']:.6f}")
    median = statistics.median(runs)
    out = {"median_ms": round(median, 3), "images_per_s": round(x.shape[0] * 1000.0 / median, 4), "runs": runs,
           "device": str(dev), "torch": torch.__version__, "amp": args.amp, "batch_size": int(x.shape[0]),
           "input_shape": list(x.shape),
           "peak_memory_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else vm_hwm(),
           "first_losses": first, "last_losses": last,
           "loss_scale": (scaler.get_scale() if scaler is not None else None), "warmup": args.warmup,
           "threads": torch.get_num_threads(), "tf32": bool(args.tf32), "tool": TOOL}
    print(json.dumps(out), flush=True)
    return 0


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------

def int_at_least(lo):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}: {text}")
        return v
    return parse


positive_int, nonneg_int = int_at_least(1), int_at_least(0)


def shape_arg(text):
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 4 or dims[1] != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected Nx3xHxW, got {text!r}")
    return dims


def loss_scale_arg(text):
    if text == "dynamic":
        return text
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"'dynamic' or a positive number, got {text!r}")
    return text


def device_arg(text):
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"cpu, cuda or cuda:N, got {text!r}")


def build_parser():
    ap = argparse.ArgumentParser(prog="torch_eager_ghm.py", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description="Plain PyTorch-eager GHM RetinaNet (mmdet 2.16.0 retinanet_ghm_r50_fpn_1x_"
                                             "coco): deterministic weights, forward and training-iteration timing.",
                                 epilog="Each subcommand prints one JSON line on stdout; see --help of each and the "
                                        "module docstring.")
    sub = ap.add_subparsers(dest="cmd", metavar="{weights,detect,train}")
    sub.required = True

    w = sub.add_parser("weights", help="write deterministic weights (mmdet state-dict keys) drawn from numpy's "
                                       "legacy RandomState(seed)",
                       description="Write deterministic weights with mmdet's state-dict keys, drawn from "
                                   "numpy.random.RandomState(seed) in sorted-key order (bit-identical on every "
                                   "machine). Prints {out, seed, num_tensors, num_params, sha256}; sha256 is over "
                                   "key bytes + little-endian float32/int64 data in sorted-key order.")
    w.add_argument("--out", help="output .pth (written to a temporary file, then renamed)")
    w.add_argument("--seed", type=nonneg_int, default=0, help="RandomState seed (default 0)")
    w.add_argument("--num-classes", type=positive_int, default=80, help="number of classes (default 80)")
    w.add_argument("--check-sha256", metavar="HEX", help="exit 1 (and write nothing) if the sha256 differs")
    w.add_argument("--cls-bias-shift", type=float, default=0.0, metavar="S",
                   help="added to every retina_cls bias (default 0): fewer candidates above the 0.05 score "
                        "threshold and wider decision margins for parity references (tools/gpu_check.sh uses -2.5)")

    def common(p):
        p.add_argument("--weights", required=True, help="checkpoint (.pth from 'weights' or an mmdet checkpoint)")
        p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
        p.add_argument("--amp", choices=("none", "fp16", "bf16"), default="none",
                       help="torch.autocast dtype around the network forward (default none)")
        p.add_argument("--threads", type=positive_int, help="torch.set_num_threads (default: torch's default)")
        p.add_argument("--tf32", action="store_true", help="allow TF32 matmul/cuDNN (default off)")

    d = sub.add_parser("detect", help="time the network forward (backbone+FPN+head, eval, no grad)",
                       description="Time the network forward (backbone, FPN, head; eval mode, no grad, no "
                                   "post-processing) and print per-level sums of the head outputs of the first timed "
                                   "run.")
    common(d)
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="safetensors file with an 'input' tensor (N,3,H,W)")
    src.add_argument("--shape", type=shape_arg, help="seeded N(0,1) input of this shape, e.g. 1x3x800x1344")
    d.add_argument("--seed", type=nonneg_int, default=0, help="RandomState seed of the --shape input (default 0)")
    d.add_argument("--channels-last", action="store_true", help="model and input in channels_last memory format")
    d.add_argument("--batch", type=positive_int, help="repeat the input's first image to N images")
    d.add_argument("--warmup", type=nonneg_int, default=2, help="untimed runs first (default 2)")
    d.add_argument("--runs", type=positive_int, default=7, help="timed runs (default 7)")

    t = sub.add_parser("train", help="time mmdet's training iteration (forward, GHM losses, backward, clip, SGD)",
                       description="Time training iterations as mmdet's runner does them (zero_grad, forward, "
                                   "targets, GHM-C/GHM-R per level, backward, clip_grad_norm_ 35, SGD step) on a "
                                   "batch file of tools/bench_mmdet_train.py --make-batch.")
    common(t)
    t.add_argument("--batch", required=True, help="batch file (tools/bench_mmdet_train.py --make-batch)")
    t.add_argument("--batch-size", type=positive_int, help="repeat the file's images cyclically to N (default: all)")
    t.add_argument("--warmup", type=nonneg_int, default=1, help="untimed iterations first (default 1)")
    t.add_argument("--runs", type=positive_int, default=5, help="timed iterations (default 5)")
    t.add_argument("--loss-scale", type=loss_scale_arg, default="dynamic",
                   help="with --amp: 'dynamic' (GradScaler defaults) or a static scale (default dynamic)")
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.cmd == "weights":
        if not args.out and args.check_sha256 is None:
            ap.error("weights: --out is required (or --check-sha256 to only verify)")
        if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
            ap.error(f"weights: the folder of --out does not exist: {args.out}")
    else:
        for p in [args.weights] + ([args.input] if args.cmd == "detect" and args.input else []) \
                + ([args.batch] if args.cmd == "train" else []):
            if not os.path.isfile(p):
                ap.error(f"{args.cmd}: file not found: {p}")
    if IMPORT_ERROR is not None:
        raise RuntimeError(f"this tool needs torch and numpy ({IMPORT_ERROR}); python {sys.executable}")
    return {"weights": cmd_weights, "detect": cmd_detect, "train": cmd_train}[args.cmd](args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("[torch_eager_ghm] ERROR: interrupted", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001
        if os.environ.get("GHM_TRACEBACK"):
            import traceback
            traceback.print_exc()
        print(f"[torch_eager_ghm] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
