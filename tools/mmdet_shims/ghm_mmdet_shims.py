"""Make MMDetection 2.16.0 importable on CPU-only torch without compiled mmcv ops.

Usage (before the first ``import mmcv`` / ``import mmdet``)::

    sys.path.insert(0, "<repo>/tools/mmdet_shims")
    import ghm_mmdet_shims
    ghm_mmdet_shims.install()

What it does, and nothing more:

* checks that ``torchvision`` resolves to the empty package in this folder
  (mmcv 1.4.0 imports torchvision at module level in ``mmcv/runner/checkpoint.py``);
* adds a meta-path finder so that ``import mmcv._ext`` (what
  ``mmcv.utils.ext_loader.load_ext`` does) loads ``_mmcv_ext.py`` from this
  folder: a plain-torch ``nms`` with mmcv's CPU semantics, stubs for the rest.

No installed file is modified.
"""

import importlib.abc
import importlib.util
import os
import sys

SHIM_DIR = os.path.dirname(os.path.abspath(__file__))
_EXT_NAME = "mmcv._ext"


class _MmcvExtFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != _EXT_NAME:
            return None
        return importlib.util.spec_from_file_location(
            _EXT_NAME, os.path.join(SHIM_DIR, "_mmcv_ext.py"))


def install():
    """Idempotently install the shims; raise RuntimeError if they cannot work."""
    if not sys.path or os.path.abspath(sys.path[0]) != SHIM_DIR:
        if SHIM_DIR in sys.path:
            sys.path.remove(SHIM_DIR)
        sys.path.insert(0, SHIM_DIR)
    tv = sys.modules.get("torchvision")
    if tv is not None and not getattr(tv, "IS_GHM_SHIM", False):
        raise RuntimeError("a real torchvision was imported before the GHM shims "
                           f"({getattr(tv, '__file__', '?')}); install() must run first")
    if _EXT_NAME in sys.modules and not getattr(sys.modules[_EXT_NAME], "__file__", "").startswith(SHIM_DIR):
        raise RuntimeError(f"{_EXT_NAME} already imported from elsewhere")
    if not any(isinstance(f, _MmcvExtFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MmcvExtFinder())
    import torchvision  # noqa: F401  (must be the shim)
    if not getattr(torchvision, "IS_GHM_SHIM", False):
        raise RuntimeError(f"torchvision resolved to {torchvision.__file__}, not the shim")


def self_test():
    """Import what the reference needs and check the NMS shim on a tiny case."""
    import torch
    from mmdet.models import build_detector  # noqa: F401
    from mmcv.ops import batched_nms, nms
    import mmcv._ext as ext
    if not ext.__file__.startswith(SHIM_DIR):
        raise RuntimeError(f"mmcv._ext is {ext.__file__}, not the shim")
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10.5], [1, 0, 11, 10],
                          [20, 20, 30, 30], [0, 0, 10, 10]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.95], dtype=torch.float32)
    # box0 vs box2: IoU = 90/110 = 0.818 > 0.5 -> suppressed; box1 vs box4: 100/105
    _, keep = nms(boxes, scores, 0.5)
    if keep.tolist() != [4, 3]:
        raise RuntimeError(f"nms shim self-test failed: keep={keep.tolist()}")
    # IoU exactly 0.5 must NOT suppress (strictly greater): [0,0,2,1] vs [0,0,1,1]... 1/2
    b2 = torch.tensor([[0, 0, 2, 1], [0, 0, 1, 1]], dtype=torch.float32)
    _, keep = nms(b2, torch.tensor([0.9, 0.8]), 0.5)
    if keep.tolist() != [0, 1]:
        raise RuntimeError(f"nms shim tie self-test failed: keep={keep.tolist()}")
    labels = torch.tensor([0, 0, 1, 0, 0])
    dets, keep = batched_nms(boxes, scores, labels, dict(type="nms", iou_threshold=0.5))
    if keep.tolist() != [4, 2, 3]:
        raise RuntimeError(f"batched_nms self-test failed: keep={keep.tolist()}")
    return True
