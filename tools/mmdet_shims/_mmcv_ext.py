"""A pure-torch stand-in for mmcv's compiled ``mmcv._ext`` extension.

mmcv 1.4.0 built without ops (``MMCV_WITH_OPS=0``, the "lite" package) still
ships ``mmcv/ops/*.py``; each of those modules calls
``ext_loader.load_ext('_ext', [names])``, which imports ``mmcv._ext`` and
asserts that every listed name exists.  ``ghm_mmdet_shims.install()`` makes
``import mmcv._ext`` load *this* file.

Only ``nms`` (used by ``mmcv.ops.nms`` / ``batched_nms``, hence by RetinaNet
post-processing) is implemented, plus the two version helpers.  Every other
name resolves to a stub that raises ``NotImplementedError`` when called, so
importing ``mmcv.ops`` works and any accidental use of another op is loud.
"""

import torch


def nms(boxes, scores, iou_threshold, offset=0):
    """mmcv's CPU NMS kernel (``ops/csrc/pytorch/cpu/nms.cpp``) in plain torch.

    * order = ``scores.sort(0, descending=True)`` (same torch call as the C++
      kernel, so ties are broken identically);
    * areas = (x2 - x1 + offset) * (y2 - y1 + offset), float32;
    * greedy: walking the order, a still-selected box i suppresses every later
      still-selected box j with inter / (area_i + area_j - inter) STRICTLY
      greater than ``iou_threshold`` (compared in float32, as the C++ ``float``
      argument); w, h of the intersection are clamped at 0;
    * returns the kept indices (int64) in descending-score order.
    """
    if boxes.numel() == 0:
        return boxes.new_empty((0,), dtype=torch.long)
    if boxes.dtype != torch.float32 or scores.dtype != torch.float32:
        raise TypeError("mmcv._ext.nms shim: boxes and scores must be float32 "
                        f"(got {boxes.dtype}, {scores.dtype})")
    boxes = boxes.detach().cpu()
    scores = scores.detach().cpu()
    off = float(offset)
    x1 = boxes[:, 0].contiguous()
    y1 = boxes[:, 1].contiguous()
    x2 = boxes[:, 2].contiguous()
    y2 = boxes[:, 3].contiguous()
    areas = (x2 - x1 + off) * (y2 - y1 + off)
    order = scores.sort(0, descending=True)[1]
    thr = torch.tensor(float(iou_threshold), dtype=torch.float32)  # C++ float
    # work in sorted order
    sx1, sy1, sx2, sy2, sar = x1[order], y1[order], x2[order], y2[order], areas[order]
    n = order.numel()
    select = torch.ones(n, dtype=torch.bool)
    zero = torch.zeros((), dtype=torch.float32)
    for i in range(n):
        if not bool(select[i]):
            continue
        if i + 1 >= n:
            break
        xx1 = torch.maximum(sx1[i], sx1[i + 1:])
        yy1 = torch.maximum(sy1[i], sy1[i + 1:])
        xx2 = torch.minimum(sx2[i], sx2[i + 1:])
        yy2 = torch.minimum(sy2[i], sy2[i + 1:])
        w = torch.maximum(zero, xx2 - xx1 + off)
        h = torch.maximum(zero, yy2 - yy1 + off)
        inter = w * h
        ovr = inter / (sar[i] + sar[i + 1:] - inter)
        select[i + 1:] &= ~(ovr > thr)
    return order[select]


def get_compiler_version():
    return "ghm-shim (pure torch, no compiled mmcv ops)"


def get_compiling_cuda_version():
    return "not available"


def _make_stub(name):
    def stub(*args, **kwargs):
        raise NotImplementedError(
            f"mmcv._ext.{name} is not available: this environment uses the "
            "pure-torch shim tools/mmdet_shims/_mmcv_ext.py, which implements "
            "only nms")
    stub.__name__ = name
    return stub


def __getattr__(name):  # PEP 562: any other op name exists, as a loud stub
    if name.startswith("_"):
        raise AttributeError(name)
    stub = _make_stub(name)
    globals()[name] = stub
    return stub
