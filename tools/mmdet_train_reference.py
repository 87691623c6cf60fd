#!/usr/bin/env python3
"""MMDetection 2.16.0's own TRAINING loop as the reference for the Swift `ghm train` (run in .venv-mmdet).

    .venv-mmdet/bin/python tools/mmdet_train_reference.py train    --data DIR --checkpoint CK --work-dir W [...]
    .venv-mmdet/bin/python tools/mmdet_train_reference.py sampler  (--flags 0,1,.. | --sizes-json F | --data DIR) [...]
    .venv-mmdet/bin/python tools/mmdet_train_reference.py lr       --iters-per-epoch N --epochs E [--resume-iter K] [...]
    .venv-mmdet/bin/python tools/mmdet_train_reference.py pipeline --data DIR --index I[,J] --flip 0|1[,..] --out PREFIX
    .venv-mmdet/bin/python tools/mmdet_train_reference.py dataset  --data DIR [--out F]

Every subcommand's output format, the RNG draw sequence and the shims are documented in
tools/README-train-reference.md. Summary:

* ``train`` runs mmdet's ``tools/train.py`` (the copy installed as ``mmdet/.mim/tools/train.py``) in this
  process with ``runpy``, on a config built from mmdet's ``configs/ghm/retinanet_ghm_r50_fpn_1x_coco.py``
  (``mmcv.Config.fromfile``, so its 5 bases are resolved by mmcv) with the small-set overrides, so it
  is mmdet's ``set_random_seed``, ``build_detector``, ``build_dataset``, ``train_detector``
  (``build_dataloader``/GroupSampler, ``build_optimizer``, ``EpochBasedRunner`` and the config's hooks,
  EvalHook, ``runner.load_checkpoint(load_from)``). Three run-time shims, none of which changes a number:
  ``nn.Module.cuda`` is a no-op when CUDA is unavailable (``mmdet/apis/train.py:86`` calls
  ``model.cuda(0)``); mmcv 1.4.0's CPU ``scatter`` gets the fix of mmcv PR #1621 (mmcv >= 1.4.5: no
  extra leading dimension for DataContainer data, which makes 1.4.0's CPU ``train_step`` feed a 5-D
  image); ``mmdet.apis.train.build_runner`` is wrapped to register three recording hooks (priorities
  60, 80, LOWEST) and to wrap the detector's ``train_step``/``_parse_losses`` for read-only capture.
  numpy's legacy global-RNG functions are wrapped to log every draw (same call, same stream).
* ``trajectory.json`` in the work dir has per-iteration lr, losses, grad_norm at full precision
  (mmcv's TextLoggerHook rounds log.json floats to 5 decimals, ``text.py:196-202``), the GHM acc_sum
  after every iteration, the batches (image ids, flips, shapes) and the complete RNG draw log.

Exit status 0 on success; 1 with an ``ERROR:`` line otherwise.
"""

import argparse
import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time

# OpenMP idle threads sleep instead of spinning (set before torch loads libgomp; an explicit value wins). It does not
# change any result (same work split, verified bit-identical), but on a shared 2-core machine spinning threads made
# the default run 3-5x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIM_DIR = os.path.join(REPO_ROOT, "tools", "mmdet_shims")

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
from mmdet_reference import RefError, _Capture as _ImageCapture, import_mmdet  # noqa: E402  (shared with the inference reference)
FORMAT = "ghm-mmdet-train-reference v1"
_STDOUT = sys.stdout   # JSON results go here; everything mmdet/pycocotools prints is redirected to stderr

# defaults of the parity run (see README-train-reference.md, "Default schedule")
DEF_IMG_SCALE = (256, 192)
DEF_EPOCHS = 2
DEF_WARMUP_ITERS = 10
DEF_STEP = [1]
DEF_SAMPLES_PER_GPU = 2
DEF_FLIP_RATIO = 0.5




def log(msg):
    print(f"[mmdet_train_reference] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------
# environment
# ----------------------------------------------------------------------------------------------------------
def mmdet_dir():
    import mmdet
    return os.path.dirname(mmdet.__file__)


def ghm_config_path():
    p = os.path.join(mmdet_dir(), ".mim", "configs", "ghm", "retinanet_ghm_r50_fpn_1x_coco.py")
    if not os.path.isfile(p):
        raise RefError(f"config not found in the mmdet package: {p}")
    return p


def site_rel(path):
    """Path relative to site-packages (mmdet/..., mmcv/..., torch/...) for citations."""
    path = os.path.abspath(path)
    k = path.find("site-packages" + os.sep)
    return path[k + len("site-packages" + os.sep):] if k >= 0 else os.path.relpath(path, REPO_ROOT)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_sha256(t):
    import numpy as np
    a = np.ascontiguousarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t)
    return hashlib.sha256(a.tobytes()).hexdigest()


def jsonable(v):
    """numpy / torch / tuples -> plain JSON values (floats at full precision)."""
    import numpy as np
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()] if v.ndim else jsonable(v.item())
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    return repr(v)


def write_json(obj, path):
    text = json.dumps(obj, indent=1) + "\n"
    if path in (None, "-"):
        _STDOUT.write(text)
        _STDOUT.flush()
        return
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path, data):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _publish(tmp, path):
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def parse_wxh(text):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 320x224, got {text!r}")
    if min(w, h) < 32:
        raise argparse.ArgumentTypeError("img scale sides must be >= 32")
    return (w, h)


def parse_int_list(text):
    try:
        v = [int(x) for x in text.split(",") if x.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got {text!r}")
    return v


# ----------------------------------------------------------------------------------------------------------
# config
# ----------------------------------------------------------------------------------------------------------
def dataset_categories(ann_file):
    with open(ann_file) as f:
        d = json.load(f)
    return d.get("categories", [])


def default_classes(data_dir):
    """Names of the annotation file's categories, sorted by category id (NOT the file order, on purpose:
    mmdet's labels still follow the file order, see README)."""
    cats = dataset_categories(os.path.join(data_dir, "train.json"))
    if not cats:
        raise RefError(f"{data_dir}/train.json has no categories")
    return tuple(c["name"] for c in sorted(cats, key=lambda c: c["id"]))


def build_config(data_dir, classes, img_scale=DEF_IMG_SCALE, samples_per_gpu=DEF_SAMPLES_PER_GPU,
                 flip_ratio=DEF_FLIP_RATIO, lr=None, warmup_iters=DEF_WARMUP_ITERS, step=DEF_STEP,
                 epochs=DEF_EPOCHS, load_from=None):
    """mmdet's GHM config (mmcv Config, bases resolved by mmcv) with the small-set overrides; returns cfg.
    Every override is listed in README-train-reference.md ("Config")."""
    from mmcv import Config
    cfg = Config.fromfile(ghm_config_path())
    # no torchvision download: the weights come from load_from (init only moves torch's RNG)
    cfg.model.backbone.init_cfg = None
    cfg.model.bbox_head.num_classes = len(classes)
    scale = tuple(int(v) for v in img_scale)

    def fix_train(pipe):
        for t in pipe:
            if t["type"] == "Resize":
                t["img_scale"] = scale
            if t["type"] == "RandomFlip":
                t["flip_ratio"] = float(flip_ratio)
        return pipe

    def fix_test(pipe):
        for t in pipe:
            if t["type"] == "MultiScaleFlipAug":
                t["img_scale"] = scale
        return pipe

    fix_train(cfg.train_pipeline)
    fix_test(cfg.test_pipeline)
    data_dir = os.path.abspath(data_dir)
    img_prefix = os.path.join(data_dir, "images") + os.sep
    cfg.data_root = data_dir + os.sep
    cfg.data.samples_per_gpu = int(samples_per_gpu)
    cfg.data.workers_per_gpu = 0
    cfg.data.train.ann_file = os.path.join(data_dir, "train.json")
    cfg.data.train.img_prefix = img_prefix
    cfg.data.train.classes = tuple(classes)
    fix_train(cfg.data.train.pipeline)
    for split in ("val", "test"):
        cfg.data[split].ann_file = os.path.join(data_dir, "val.json")
        cfg.data[split].img_prefix = img_prefix
        cfg.data[split].classes = tuple(classes)
        fix_test(cfg.data[split].pipeline)
    if lr is not None:
        cfg.optimizer.lr = float(lr)
    cfg.lr_config.warmup_iters = int(warmup_iters)
    cfg.lr_config.step = list(step)
    cfg.runner.max_epochs = int(epochs)
    cfg.log_config.interval = 1
    cfg.load_from = load_from
    return cfg


# ----------------------------------------------------------------------------------------------------------
# RNG recording (numpy legacy global RandomState; python random; torch default generator)
# ----------------------------------------------------------------------------------------------------------
def _np_state_eq(a, b):
    import numpy as np
    return a[0] == b[0] and a[2] == b[2] and np.array_equal(a[1], b[1])


def np_words_between(st0, st1, limit=200000):
    """32-bit MT19937 outputs consumed between two legacy states (replayed on a private RandomState)."""
    import numpy as np
    r = np.random.RandomState()
    r.set_state(st0)
    words = []
    while not _np_state_eq(r.get_state(), st1):
        if len(words) >= limit:
            return None
        words.append(int(r.randint(0, 2 ** 32, dtype=np.uint32)))
    return words


def torch_draws_between(st0, st1, limit=1000):
    """Number of ``torch.empty((), dtype=int64).random_()`` calls that move the default generator state
    st0 -> st1 (None if it is not such a sequence)."""
    import torch
    if torch.equal(st0, st1):
        return 0
    g = torch.Generator()
    g.set_state(st0)
    for n in range(1, limit + 1):
        torch.empty((), dtype=torch.int64).random_(generator=g)
        if torch.equal(g.get_state(), st1):
            return n
    return None


class RngRecorder:
    """Wraps every legacy module-level ``np.random.*`` function (bound methods of ``np.random.mtrand._rand``)
    and python ``random.*`` function; calls go through unchanged (same function, same stream). Records
    phase, call, call site, arguments, result, and the 32-bit words consumed (by replay). The torch
    default generator and the python ``random`` state are compared at every phase change."""

    def __init__(self, record_words=True):
        self.events = []
        self.phase = "setup"
        self.phases = []          # [(phase, torch_draws, python_random_changed)]
        self.record_words = record_words
        self._installed = False
        self._torch_state = None
        self._py_state = None

    def install(self):
        import random
        import numpy as np
        if self._installed:
            return
        rs = np.random.mtrand._rand
        for name in dir(np.random):
            f = getattr(np.random, name)
            # module-level legacy functions: bound methods of the global RandomState, plus the plain
            # functions seed/sample/ranf of numpy/random/mtrand.pyx that act on it
            if callable(f) and (getattr(f, "__self__", None) is rs or name in ("seed", "sample", "ranf")) \
                    and name not in ("get_state", "set_state"):
                setattr(np.random, name, self._wrap_np(name, f, rs))
        inst = random._inst
        for name in dir(random):
            f = getattr(random, name)
            if callable(f) and getattr(f, "__self__", None) is inst and name not in ("getstate", "setstate"):
                setattr(random, name, self._wrap_py(name, f))
        self._installed = True
        self._snapshot()

    def _snapshot(self):
        import random
        import torch
        self._torch_state = torch.get_rng_state()
        self._py_state = random.getstate()

    def set_phase(self, name):
        import random
        import torch
        t1 = torch.get_rng_state()
        p1 = random.getstate()
        if self._torch_state is not None:
            n = torch_draws_between(self._torch_state, t1)
            self.phases.append({"phase": self.phase, "torch_int64_random_draws": n if n is not None else "changed",
                                "python_random_changed": p1 != self._py_state})
        self._torch_state, self._py_state = t1, p1
        self.phase = name

    @staticmethod
    def _site():
        f = sys._getframe(2)
        here = os.path.abspath(__file__)
        while f is not None and os.path.abspath(f.f_code.co_filename) == here:
            f = f.f_back
        if f is None:
            return "?"
        return f"{site_rel(f.f_code.co_filename)}:{f.f_lineno}"

    def _wrap_np(self, name, f, rs):
        rec = self

        def wrapper(*args, **kwargs):
            st0 = rs.get_state()
            arg_snapshot = [jsonable(a) if not hasattr(a, "__len__") or len(a) < 4096 else "<large>" for a in args]
            res = f(*args, **kwargs)
            st1 = rs.get_state()
            ev = {"i": len(rec.events), "phase": rec.phase, "call": f"np.random.{name}", "site": rec._site(),
                  "args": arg_snapshot, "kwargs": jsonable(kwargs)}
            if name == "seed":
                ev["result"] = None
            elif name == "shuffle":
                ev["result"] = jsonable(args[0])          # shuffled in place
            else:
                ev["result"] = jsonable(res)
            if name != "seed" and rec.record_words:
                words = np_words_between(st0, st1)
                ev["words32"] = words
                ev["n_words32"] = None if words is None else len(words)
                if name == "choice" and ("p" in kwargs or len(args) >= 4):
                    r = __import__("numpy").random.RandomState()
                    r.set_state(st0)
                    ev["uniform"] = float(r.random_sample())   # the double choice(p=...) compared to cdf
            rec.events.append(ev)
            return res
        wrapper.__wrapped__ = f
        return wrapper

    def _wrap_py(self, name, f):
        rec = self

        def wrapper(*args, **kwargs):
            res = f(*args, **kwargs)
            rec.events.append({"i": len(rec.events), "phase": rec.phase, "call": f"random.{name}",
                               "site": rec._site(), "args": jsonable(list(args)), "result": jsonable(res)})
            return res
        wrapper.__wrapped__ = f
        return wrapper

    def finish(self):
        self.set_phase("end")


# ----------------------------------------------------------------------------------------------------------
# sampler / flip simulation with mmdet's own classes
# ----------------------------------------------------------------------------------------------------------
def simulate_epochs(flags, samples_per_gpu, seed, epochs, flip_ratio):
    """mmdet's GroupSampler (and, with flip_ratio, one RandomFlip call per yielded index, in order) on the
    global numpy stream after mmdet's set_random_seed(seed): exactly the numpy draws of a train run with
    workers_per_gpu=0 (the pipeline draws nothing else, see README). Returns per-epoch dicts."""
    import numpy as np
    from mmdet.apis import set_random_seed
    from mmdet.datasets.pipelines import RandomFlip
    from mmdet.datasets.samplers import GroupSampler

    class _Flags:
        def __init__(self, f):
            self.flag = np.asarray(f, dtype=np.uint8)

        def __len__(self):
            return len(self.flag)

    sampler = GroupSampler(_Flags(flags), samples_per_gpu)
    flip = RandomFlip(flip_ratio=float(flip_ratio)) if flip_ratio is not None else None
    set_random_seed(seed)
    out = []
    for e in range(epochs):
        order = list(iter(sampler))
        flips = []
        if flip is not None:
            for _ in order:
                r = flip({"img": np.zeros((1, 2, 3), np.uint8), "img_shape": (1, 2, 3), "bbox_fields": []})
                flips.append(bool(r["flip"]))
        out.append({"epoch": e + 1, "indices": order,
                    "batches": [order[i:i + samples_per_gpu] for i in range(0, len(order), samples_per_gpu)],
                    "flips": flips if flip is not None else None})
    return out, [int(s) for s in sampler.group_sizes], int(sampler.num_samples)


# ----------------------------------------------------------------------------------------------------------
# checkpoint adaptation (80-class reference checkpoint -> the dataset's class count)
# ----------------------------------------------------------------------------------------------------------
def load_ckpt(path):
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True), True
    except Exception:
        return torch.load(path, map_location="cpu", weights_only=False), False


def adapt_checkpoint(src, dst, num_classes, classes):
    """If the checkpoint's retina_cls has another class count, keep the channels of classes 0..K-1 of every
    anchor (channel a*C + c -> a*K + c) and write a legacy-format copy. Returns (path, note)."""
    import torch
    ck, _ = load_ckpt(src)
    sd = ck["state_dict"] if isinstance(ck, dict) and "state_dict" in ck else ck
    w = sd.get("bbox_head.retina_cls.weight")
    if w is None:
        raise RefError(f"{src}: no bbox_head.retina_cls.weight (not a RetinaNet checkpoint)")
    c0 = w.shape[0] // 9
    if c0 * 9 != w.shape[0]:
        raise RefError(f"{src}: retina_cls has {w.shape[0]} channels, not 9 * classes")
    if c0 == num_classes:
        return os.path.abspath(src), None
    if num_classes > c0:
        raise RefError(f"{src} has {c0} classes, the dataset {num_classes}")
    idx = torch.tensor([a * c0 + c for a in range(9) for c in range(num_classes)])
    from collections import OrderedDict
    new_sd = OrderedDict()
    for k, v in sd.items():
        if k in ("bbox_head.retina_cls.weight", "bbox_head.retina_cls.bias"):
            v = v.index_select(0, idx).clone()
        new_sd[k] = v
    meta = dict(ck.get("meta", {})) if isinstance(ck, dict) else {}
    meta["CLASSES"] = tuple(classes)
    note = (f"derived from {os.path.abspath(src)} (sha256 {sha256_file(src)[:16]}): retina_cls channels "
            f"a*{c0}+c for c < {num_classes} of every anchor a, all other tensors (incl. GHM acc_sum) unchanged")
    meta["ghm_train_reference"] = note
    d = os.path.dirname(os.path.abspath(dst))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=d)
    os.close(fd)
    try:
        torch.save({"meta": meta, "state_dict": new_sd}, tmp, _use_new_zipfile_serialization=False)
        _publish(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return os.path.abspath(dst), note


# ----------------------------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------------------------
class _Capture:
    def __init__(self):
        self.reset()

    def reset(self):
        self.batch = None
        self.batch_shape = None
        self.levels = None
        self.gt_counts = None
        self.input_sha256 = None


def install_amp_shims(dtype_name):
    """mmcv 1.4's fp16 training on CPU: its auto_fp16/force_fp32 use torch.cuda.amp.autocast and its
    Fp16OptimizerHook torch.cuda.amp.GradScaler, which both switch themselves off without CUDA. Point them at the CPU
    versions (torch.autocast("cpu", dtype) and torch.amp.GradScaler("cpu")); everything else is mmcv's own code."""
    import functools
    import torch
    import mmcv.runner.fp16_utils as FU
    import mmcv.runner.hooks.optimizer as HO
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]

    # GHM_AMP_CACHE=0: autocast without its weight-cast cache (for finding where the bf16 backward parts from Swift's)
    cache = os.environ.get("GHM_AMP_CACHE", "1") != "0"

    def autocast(enabled=True):
        return torch.autocast("cpu", dtype=dtype, enabled=enabled, cache_enabled=cache)
    FU.autocast = autocast
    HO.GradScaler = functools.partial(torch.amp.GradScaler, "cpu")


def parse_loss_scale(text):
    """'dynamic', a number, or JSON of GradScaler's arguments."""
    if text == "dynamic":
        return "dynamic"
    try:
        return float(text)
    except ValueError:
        return json.loads(text)


def install_cpu_shims():
    """(1) nn.Module.cuda -> no-op without CUDA; (2) mmcv 1.4.0 CPU scatter as fixed in mmcv PR #1621."""
    import torch
    import mmcv.parallel._functions as F
    if getattr(F, "_ghm_cpu_scatter_fix", False):
        return
    orig_cuda = torch.nn.Module.cuda

    def cuda(self, device=None):
        if torch.cuda.is_available():
            return orig_cuda(self, device)
        return self
    torch.nn.Module.cuda = cuda

    orig_scatter = F.scatter
    orig_forward = F.Scatter.forward

    def scatter_cpu(input, devices, streams=None):
        if devices != [-1]:
            return orig_scatter(input, devices, streams)
        if isinstance(input, list):
            return [scatter_cpu(x, devices) for x in input]
        if isinstance(input, torch.Tensor):
            return input.contiguous()
        raise Exception(f"Unknown type {type(input)}.")

    def forward(target_gpus, input):
        if target_gpus != [-1]:
            return orig_forward(target_gpus, input)
        outputs = scatter_cpu(input, target_gpus)
        return tuple(outputs) if isinstance(outputs, list) else (outputs,)

    F.Scatter.forward = staticmethod(forward)
    F._ghm_cpu_scatter_fix = True


def make_hooks(rec, cap, store):
    from mmcv.runner import Hook
    import torch

    def ghm_state(det):
        h = det.bbox_head
        return ([float(v) for v in h.loss_cls.acc_sum.tolist()], [float(v) for v in h.loss_bbox.acc_sum.tolist()])

    def param_norms(det):
        out = {}
        with torch.no_grad():
            for prefix in ("backbone", "neck", "bbox_head"):
                s = 0.0
                for p in getattr(det, prefix).parameters():
                    s += float(p.detach().double().pow(2).sum())
                out[prefix] = math.sqrt(s)
        return out

    class MainHook(Hook):   # LOWEST
        def before_run(self, runner):
            det = store["detector"]
            c, r = ghm_state(det)
            store["initial"] = {"ghmc_acc_sum": c, "ghmr_acc_sum": r, "param_norm": param_norms(det),
                                "lr": runner.optimizer.param_groups[0]["lr"],
                                "iters_per_epoch": None}
            rec.set_phase("before_run -> first before_train_epoch")

        def before_train_epoch(self, runner):
            store["initial"]["iters_per_epoch"] = len(runner.data_loader)
            rec.set_phase(f"epoch {runner.epoch + 1}: DataLoader.__iter__ + batch 1 "
                          "(GroupSampler.__iter__ runs at the first next())")

        def before_train_iter(self, runner):
            rec.set_phase(f"epoch {runner.epoch + 1} iter {runner.inner_iter + 1}: train_step + hooks")

        def after_train_iter(self, runner):
            det = store["detector"]
            lv = runner.outputs["log_vars"]
            c, r = ghm_state(det)
            gn = runner.log_buffer.val_history.get("grad_norm", [None])[-1]
            it = {"iter": runner.iter, "epoch": runner.epoch + 1, "inner_iter": runner.inner_iter + 1,
                  "lr": runner.optimizer.param_groups[0]["lr"],
                  "loss_cls": float(lv["loss_cls"]), "loss_bbox": float(lv["loss_bbox"]), "loss": float(lv["loss"]),
                  "grad_norm": None if gn is None else float(gn),
                  "loss_cls_levels": cap.levels.get("loss_cls") if cap.levels else None,
                  "loss_bbox_levels": cap.levels.get("loss_bbox") if cap.levels else None,
                  "images": cap.batch, "batch_input_shape": cap.batch_shape, "gt_counts": cap.gt_counts,
                  "input_sha256": cap.input_sha256,
                  "ghmc_acc_sum": c, "ghmr_acc_sum": r}
            store["iterations"].append(it)
            dump = os.environ.get("GHM_REF_DUMP_GRADS")  # debugging: every gradient after clipping, first K iterations
            if dump and runner.iter < int(os.environ.get("GHM_REF_DUMP_GRADS_ITERS", "1")):
                from safetensors.torch import save_file
                os.makedirs(dump, exist_ok=True)
                save_file({k: p.grad.detach().contiguous() for k, p in det.named_parameters() if p.grad is not None},
                          os.path.join(dump, f"grads_{runner.iter:04d}.safetensors"))
            cap.reset()
            log(f"iter {runner.iter + 1}: lr {it['lr']:.6g} loss_cls {it['loss_cls']:.6f} loss_bbox "
                f"{it['loss_bbox']:.6f} grad_norm {it['grad_norm']:.4f}")
            rec.set_phase(f"epoch {runner.epoch + 1}: fetch batch {runner.inner_iter + 2}")

        def after_train_epoch(self, runner):
            store["epoch_end"].append({"epoch": runner.epoch + 1, "iter": runner.iter,
                                       "param_norm": param_norms(store["detector"])})
            rec.set_phase(f"after epoch {runner.epoch + 1} (hooks done)")

    class PreEvalHook(Hook):   # 60: after CheckpointHook (50), before EvalHook (70)
        def after_train_epoch(self, runner):
            rec.set_phase(f"epoch {runner.epoch + 1}: EvalHook (val DataLoader, single_gpu_test, COCOeval)")

    class PostEvalHook(Hook):  # 80: after EvalHook (70), before TextLoggerHook (90) clears the buffer
        def after_train_epoch(self, runner):
            out = {k: jsonable(v) for k, v in runner.log_buffer.output.items() if k.startswith("bbox_")}
            store["evals"].append({"epoch": runner.epoch + 1, **out})
            rec.set_phase(f"epoch {runner.epoch + 1}: logger/after eval")

    return MainHook(), PreEvalHook(), PostEvalHook()


def patch_build_runner(rec, cap, store):
    import mmdet.apis.train as T
    orig = T.build_runner

    def build_runner(cfg, default_args=None):
        runner = orig(cfg, default_args=default_args)
        det = runner.model.module if hasattr(runner.model, "module") else runner.model
        store["detector"] = det
        store["runner"] = runner
        orig_train_step = det.train_step
        orig_parse = det._parse_losses

        def train_step(data, optimizer):
            metas = data["img_metas"]
            cap.batch = [{"filename": os.path.basename(m["filename"]), "flip": bool(m["flip"]),
                          "flip_direction": m["flip_direction"], "ori_shape": jsonable(m["ori_shape"]),
                          "img_shape": jsonable(m["img_shape"]), "pad_shape": jsonable(m["pad_shape"]),
                          "scale_factor": jsonable(m["scale_factor"])} for m in metas]
            cap.batch_shape = list(data["img"].shape)
            cap.gt_counts = [int(b.shape[0]) for b in data["gt_bboxes"]]
            for m, b, lab in zip(cap.batch, data["gt_bboxes"], data["gt_labels"]):
                m["gt_bboxes"] = jsonable(b)
                m["gt_labels"] = jsonable(lab)
            cap.input_sha256 = tensor_sha256(data["img"].contiguous())
            k = len(store["iterations"])
            if k < store.get("dump_batches", 0):
                from safetensors.torch import save_file
                t = {"img": data["img"].contiguous()}
                for j, (b, lab) in enumerate(zip(data["gt_bboxes"], data["gt_labels"])):
                    t[f"gt_bboxes.{j}"] = b.contiguous()
                    t[f"gt_labels.{j}"] = lab.contiguous()
                d = os.path.join(store["work_dir"], "batches")
                os.makedirs(d, exist_ok=True)
                save_file(t, os.path.join(d, f"iter_{k:04d}.safetensors"),
                          metadata={"img_metas": json.dumps(cap.batch)})
            return orig_train_step(data, optimizer)

        def parse_losses(losses):
            cap.levels = {k: [float(x) for x in v] if isinstance(v, (list, tuple)) else float(v)
                          for k, v in losses.items()}
            return orig_parse(losses)

        det.train_step = train_step
        det._parse_losses = parse_losses
        main_hook, pre_eval, post_eval = make_hooks(rec, cap, store)
        runner.register_hook(main_hook, priority="LOWEST")
        runner.register_hook(pre_eval, priority="BELOW_NORMAL")
        runner.register_hook(post_eval, priority=80)
        return runner

    T.build_runner = build_runner


def prepare_work_dir(w, overwrite):
    w = os.path.abspath(w)
    if os.path.isdir(w) and os.listdir(w):
        if not overwrite:
            raise RefError(f"work dir {w} is not empty (use --overwrite to clear it)")
        if not os.path.isfile(os.path.join(w, "trajectory.json")) and not any(
                f.endswith(".log.json") for f in os.listdir(w)):
            raise RefError(f"refusing to clear {w}: it does not look like a train-reference work dir")
        shutil.rmtree(w)
    os.makedirs(w, exist_ok=True)
    probe = os.path.join(w, ".write-probe")
    try:
        with open(probe, "w") as f:
            f.write("x")
        os.unlink(probe)
    except OSError as e:
        raise RefError(f"work dir {w} is not writable: {e}")
    return w


def cmd_train(a):
    t_start = time.time()
    import torch
    torch.set_num_threads(a.threads)
    import_mmdet()
    import numpy as np
    import mmcv
    import mmdet
    data = os.path.abspath(a.data)
    for f in ("train.json", "val.json"):
        if not os.path.isfile(os.path.join(data, f)):
            raise RefError(f"{data}/{f} not found (make it with tools/make_train_fixture.py)")
    if not os.path.isfile(a.checkpoint):
        raise RefError(f"checkpoint not found: {a.checkpoint}")
    w = prepare_work_dir(a.work_dir, a.overwrite)
    classes = tuple(a.classes.split(",")) if a.classes else default_classes(data)
    load_from, note = adapt_checkpoint(a.checkpoint, os.path.join(w, "load_from.pth"), len(classes), classes)
    if note:
        log(f"load_from: {note}")
    cfg = build_config(data, classes, a.img_scale, a.samples_per_gpu, a.flip_ratio, a.lr, a.warmup_iters,
                       a.step, a.epochs, load_from)

    if a.amp:
        cfg.fp16 = dict(loss_scale=parse_loss_scale(a.loss_scale))
        install_amp_shims(a.amp)
        log(f"mixed precision: fp16 = {cfg.fp16}, CPU autocast {a.amp}")
    rec = RngRecorder()
    cap = _Capture()
    store = {"iterations": [], "evals": [], "epoch_end": [], "dump_batches": a.dump_batches, "work_dir": w}
    install_cpu_shims()
    patch_build_runner(rec, cap, store)
    train_py = os.path.join(mmdet_dir(), ".mim", "tools", "train.py")
    if not os.path.isfile(train_py):
        raise RefError(f"mmdet's tools/train.py not found in the package: {train_py}")
    import runpy
    with tempfile.TemporaryDirectory(prefix="ghm-train-cfg-") as td:
        cfg_file = os.path.join(td, os.path.basename(ghm_config_path()))
        cfg.dump(cfg_file)
        argv = [train_py, cfg_file, "--work-dir", w, "--seed", str(a.seed)]
        if a.no_validate:
            argv.append("--no-validate")
        log(f"running mmdet tools/train.py {' '.join(argv[1:])} (torch threads {torch.get_num_threads()})")
        rec.install()
        old_argv = sys.argv
        sys.argv = argv
        t_run = time.time()
        try:
            runpy.run_path(train_py, run_name="__main__")
        finally:
            sys.argv = old_argv
        t_run = time.time() - t_run
    rec.finish()

    # ---- collect
    det = store["detector"]
    its = store["iterations"]
    logs = sorted(f for f in os.listdir(w) if f.endswith(".log.json"))
    if not logs:
        raise RefError("mmdet wrote no .log.json")
    ckpts = sorted((f for f in os.listdir(w) if f.startswith("epoch_") and f.endswith(".pth")),
                   key=lambda s: int(s[6:-4]))
    # the observed epoch orders/flips vs the simulation with mmdet's GroupSampler + RandomFlip
    ds = store["runner"].data_loader.dataset if store.get("runner") is not None else None
    name_to_index = {os.path.basename(info["filename"]): i for i, info in enumerate(ds.data_infos)}
    ipe = store["initial"]["iters_per_epoch"]
    observed = []
    for e in range(a.epochs):
        chunk = its[e * ipe:(e + 1) * ipe]
        observed.append({"epoch": e + 1,
                         "indices": [name_to_index[m["filename"]] for it in chunk for m in it["images"]],
                         "flips": [m["flip"] for it in chunk for m in it["images"]]})
    n_train_events = len(rec.events)
    rec.phase = "simulation (not part of the run)"
    sim, group_sizes, num_samples = simulate_epochs(ds.flag.tolist(), a.samples_per_gpu, a.seed, a.epochs,
                                                    a.flip_ratio)
    sim_events = rec.events[n_train_events:]
    del rec.events[n_train_events:]
    run_np = [ev for ev in rec.events if ev["call"].startswith("np.random.") and ev["call"] != "np.random.seed"]
    sim_np = [ev for ev in sim_events if ev["call"].startswith("np.random.") and ev["call"] != "np.random.seed"]
    same_draws = [(x["call"], x["args"], x["result"]) for x in run_np] == \
                 [(x["call"], x["args"], x["result"]) for x in sim_np]
    same_order = all(o["indices"] == s["indices"] and o["flips"] == s["flips"] for o, s in zip(observed, sim))
    if not (same_draws and same_order):
        raise RefError("the numpy draws of the train run differ from mmdet's GroupSampler+RandomFlip simulation "
                       f"(draws equal: {same_draws}, orders/flips equal: {same_order})")
    py_events = [ev for ev in rec.events if ev["call"].startswith("random.")]
    final_c, final_r = (store["iterations"][-1]["ghmc_acc_sum"], store["iterations"][-1]["ghmr_acc_sum"]) \
        if its else (None, None)
    latest = os.path.join(w, "latest.pth")
    ck, wo = load_ckpt(latest)
    sd = ck["state_dict"]
    if its and ([float(v) for v in sd["bbox_head.loss_cls.acc_sum"].tolist()] != final_c
                or [float(v) for v in sd["bbox_head.loss_bbox.acc_sum"].tolist()] != final_r):
        raise RefError("latest.pth GHM acc_sum differs from the model's final state")
    traj = {
        "format": FORMAT,
        "tool": "mmdet-2.16.0 tools/train.py (runpy) + tools/mmdet_train_reference.py recording hooks",
        "meta": {
            "mmdet_version": mmdet.__version__, "mmcv_version": mmcv.__version__, "torch_version": torch.__version__,
            "numpy_version": np.__version__, "python": sys.version.split()[0],
            "seed": a.seed, "threads": torch.get_num_threads(), "data": data,
            "classes": list(classes), "cat_ids": [int(c) for c in ds.cat_ids],
            "img_scale": list(a.img_scale), "samples_per_gpu": a.samples_per_gpu, "workers_per_gpu": 0,
            "flip_ratio": a.flip_ratio, "epochs": a.epochs, "iters_per_epoch": ipe,
            "total_iters": len(its), "optimizer": jsonable(dict(cfg.optimizer)),
            "optimizer_config": jsonable(dict(cfg.optimizer_config)),
            "lr_config": jsonable(dict(cfg.lr_config)), "checkpoint": os.path.abspath(a.checkpoint),
            "checkpoint_sha256": sha256_file(a.checkpoint), "load_from": load_from,
            "load_from_sha256": sha256_file(load_from), "load_from_note": note,
            "validate": not a.no_validate, "work_dir": w, "log_json": logs[-1],
            "config_dump": os.path.basename(ghm_config_path()), "checkpoints": ckpts + ["latest.pth"],
            "latest_loaded_weights_only": wo,
            "runtime_s": {"train_py": round(t_run, 3), "total": None},
            "argv": sys.argv,
        },
        "initial": store["initial"],
        "iterations": its,
        "evals": store["evals"],
        "epoch_end": store["epoch_end"],
        "epochs": [{"epoch": o["epoch"], "indices": o["indices"], "flips": o["flips"],
                    "batches": [o["indices"][i:i + a.samples_per_gpu]
                                for i in range(0, len(o["indices"]), a.samples_per_gpu)]} for o in observed],
        "sampler": {"group_flags": [int(f) for f in ds.flag.tolist()], "group_sizes": group_sizes,
                    "num_samples": num_samples, "matches_simulation": True},
        "final": {"ghmc_acc_sum": final_c, "ghmr_acc_sum": final_r, "checkpoint": "latest.pth",
                  "latest_sha256": sha256_file(latest)},
        "rng": {
            "numpy_events": rec.events if not py_events else [e for e in rec.events if e["call"].startswith("np.")],
            "python_random_events": py_events,
            "phases": rec.phases,
        },
    }
    traj["meta"]["runtime_s"]["total"] = round(time.time() - t_start, 3)
    write_json(traj, os.path.join(w, "trajectory.json"))
    summary = {"ok": True, "work_dir": w, "iterations": len(its), "iters_per_epoch": ipe,
               "runtime_s": traj["meta"]["runtime_s"], "threads": traj["meta"]["threads"],
               "final_loss": its[-1]["loss"] if its else None, "log_json": logs[-1],
               "numpy_draws": len(run_np), "torch_draws_by_phase": {p["phase"]: p["torch_int64_random_draws"]
                                                                    for p in rec.phases
                                                                    if p["torch_int64_random_draws"]}}
    print(json.dumps(summary), file=_STDOUT, flush=True)
    return 0


# ----------------------------------------------------------------------------------------------------------
# sampler
# ----------------------------------------------------------------------------------------------------------
def flags_from_sizes(sizes):
    out = []
    for s in sizes:
        if isinstance(s, dict):
            w, h = s["width"], s["height"]
        else:
            w, h = s
        out.append(1 if w / h > 1 else 0)   # CustomDataset._set_group_flag (custom.py:164-174)
    return out


def cmd_sampler(a):
    import_mmdet()
    import numpy as np
    if sum(x is not None for x in (a.flags, a.sizes_json, a.data)) != 1:
        raise RefError("give exactly one of --flags, --sizes-json, --data")
    if a.flags is not None:
        flags = a.flags
        if any(f not in (0, 1) for f in flags):
            raise RefError("--flags must be 0/1 values")
        source = "flags"
    elif a.sizes_json is not None:
        with open(a.sizes_json) as f:
            d = json.load(f)
        sizes = d["sizes"] if isinstance(d, dict) and "sizes" in d else d
        flags = flags_from_sizes(sizes)
        source = f"sizes {os.path.abspath(a.sizes_json)}"
    else:
        from mmdet.datasets import build_dataset
        classes = tuple(a.classes.split(",")) if a.classes else default_classes(a.data)
        cfg = build_config(a.data, classes)
        ds = build_dataset(cfg.data.train)
        flags = [int(v) for v in ds.flag.tolist()]
        source = f"dataset {os.path.abspath(a.data)}/train.json after _filter_imgs"
    if not flags:
        raise RefError("no images")
    rec = RngRecorder()
    rec.install()
    rec.phase = "simulation"
    flip_ratio = None if a.flip_ratio in ("none", "None") else float(a.flip_ratio)
    sim, group_sizes, num_samples = simulate_epochs(flags, a.samples_per_gpu, a.seed, a.epochs, flip_ratio)
    # every epoch makes the same calls: per non-empty group shuffle + choice, one permutation, then one
    # RandomFlip choice per yielded index
    events = [e for e in rec.events if e["call"].startswith("np.random.") and e["call"] != "np.random.seed"]
    per = 2 * sum(1 for g in group_sizes if g > 0) + 1 + (num_samples if flip_ratio is not None else 0)
    keys = ("call", "site", "args", "kwargs", "result", "n_words32", "words32", "uniform")
    if len(events) != per * a.epochs:
        raise RefError(f"unexpected number of numpy calls: {len(events)} != {per} x {a.epochs}")
    out = {"format": FORMAT, "subcommand": "sampler", "source": source, "seed": a.seed,
           "samples_per_gpu": a.samples_per_gpu, "epochs": a.epochs, "flip_ratio": flip_ratio,
           "flags": [int(f) for f in flags], "group_sizes": group_sizes, "num_samples": num_samples,
           "batches_per_epoch": num_samples // a.samples_per_gpu, "epoch_orders": []}
    for i, s in enumerate(sim):
        e = dict(s)
        e["numpy_draws"] = [{k: ev[k] for k in keys if k in ev} for ev in events[i * per:(i + 1) * per]]
        e["words32_used"] = sum(ev.get("n_words32") or 0 for ev in events[i * per:(i + 1) * per])
        out["epoch_orders"].append(e)
    out["final_numpy_state_pos"] = int(np.random.mtrand._rand.get_state()[2])
    write_json(out, a.out)
    return 0


# ----------------------------------------------------------------------------------------------------------
# lr
# ----------------------------------------------------------------------------------------------------------
def cmd_lr(a):
    import copy
    import logging
    import torch
    import_mmdet()
    from mmcv import Config
    from mmcv.runner import EpochBasedRunner, build_optimizer
    cfg = Config.fromfile(ghm_config_path())
    lr_config = copy.deepcopy(dict(cfg.lr_config))
    opt_cfg = copy.deepcopy(dict(cfg.optimizer))
    if a.lr is not None:
        opt_cfg["lr"] = a.lr
    if a.warmup is not None:
        lr_config["warmup"] = None if a.warmup == "none" else a.warmup
    if a.warmup_iters is not None:
        lr_config["warmup_iters"] = a.warmup_iters
    if a.warmup_ratio is not None:
        lr_config["warmup_ratio"] = a.warmup_ratio
    if a.step is not None:
        lr_config["step"] = a.step if len(a.step) != 1 or not a.step_int else a.step[0]
    if a.gamma is not None:
        lr_config["gamma"] = a.gamma
    if a.by_epoch is not None:
        lr_config["by_epoch"] = bool(a.by_epoch)
    if lr_config.get("warmup") is None:
        lr_config.pop("warmup_iters", None)
        lr_config.pop("warmup_ratio", None)
    n, epochs = a.iters_per_epoch, a.epochs
    total = n * epochs
    if a.resume_iter is not None and not 0 < a.resume_iter < total:
        raise RefError(f"--resume-iter must be in 1..{total - 1}")

    class _Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def train_step(self, *args, **kwargs):  # pragma: no cover (never called)
            raise RuntimeError

    logger = logging.getLogger("ghm-lr")
    tmp = tempfile.mkdtemp(prefix="ghm-lr-")

    def make_runner():
        model = _Model()
        opt = build_optimizer(model, copy.deepcopy(opt_cfg))
        runner = EpochBasedRunner(model, optimizer=opt, work_dir=tmp, logger=logger, max_epochs=epochs)
        runner.register_lr_hook(copy.deepcopy(lr_config))   # mmcv's own construction (base_runner.py:399-418)
        return runner

    def drive(runner, start_iter, saved=None):
        """EpochBasedRunner.run/train's hook calls (epoch_based_runner.py:40-55, 108-127) without data."""
        lrs, states = [], {}
        runner.call_hook("before_run")
        runner._epoch = start_iter // n
        runner._iter = start_iter
        first_inner = start_iter % n
        while runner.epoch < epochs:
            runner.data_loader = range(n)
            runner.call_hook("before_train_epoch")
            for i in range(first_inner, n):
                runner._inner_iter = i
                runner.call_hook("before_train_iter")
                lrs.append(runner.optimizer.param_groups[0]["lr"])
                runner.call_hook("after_train_iter")
                runner._iter += 1
                if saved is not None and runner.iter == saved:
                    states[runner.iter] = copy.deepcopy(runner.optimizer.state_dict())
            first_inner = 0
            runner.call_hook("after_train_epoch")
            runner._epoch += 1
        return lrs, states

    r0 = make_runner()
    hook = [h for h in r0.hooks if type(h).__name__.endswith("LrUpdaterHook")][0]
    lrs, states = drive(r0, 0, saved=a.resume_iter)
    out = {"format": FORMAT, "subcommand": "lr", "hook": type(hook).__name__,
           "lr_config": jsonable(lr_config), "base_lr": opt_cfg["lr"], "iters_per_epoch": n, "epochs": epochs,
           "lr": lrs, "epoch_of_iter": [i // n for i in range(total)],
           "note": "lr[i] = param_groups[0]['lr'] after the before_train_iter hooks of global iteration i "
                   "(0-based), i.e. the lr SGD uses in iteration i"}
    if a.resume_iter is not None:
        k = a.resume_iter
        r1 = make_runner()
        # what runner.resume restores (base_runner.py:345-397): epoch/iter from meta, optimizer.load_state_dict
        # (param_groups keep 'initial_lr' = base lr and 'lr' = the last lr set), before_run's setdefault
        r1.optimizer.load_state_dict(states[k])
        lrs1, _ = drive(r1, k)
        out["resume"] = {"resume_iter": k, "epoch": k // n, "inner_iter": k % n,
                         "optimizer_lr_at_resume": states[k]["param_groups"][0]["lr"],
                         "lr": lrs1, "equal_to_uninterrupted": lrs1 == lrs[k:]}
    shutil.rmtree(tmp, ignore_errors=True)
    write_json(out, a.out)
    return 0


# ----------------------------------------------------------------------------------------------------------
# pipeline
# ----------------------------------------------------------------------------------------------------------
class _PipeCapture:
    """Pipeline step inserted before Normalize: records the resized+flipped uint8 image and ignore boxes."""

    def __init__(self):
        self.items = []

    def __call__(self, results):
        self.items.append({"img": results["img"].copy(),
                           "gt_bboxes_ignore": results.get("gt_bboxes_ignore")})
        return results


def cmd_pipeline(a):
    import_mmdet()
    import numpy as np
    import torch
    from mmcv.parallel import collate
    from mmdet.datasets import build_dataset
    if len(a.flip) == 1 and len(a.index) > 1:
        a.flip = a.flip * len(a.index)
    if len(a.flip) != len(a.index):
        raise RefError("--flip needs one value per --index (or a single value)")
    if any(f not in (0, 1) for f in a.flip):
        raise RefError("--flip values must be 0 or 1")
    classes = tuple(a.classes.split(",")) if a.classes else default_classes(a.data)
    cfg = build_config(a.data, classes, img_scale=a.img_scale)
    ds = build_dataset(cfg.data.train)
    for i in a.index:
        if not 0 <= i < len(ds):
            raise RefError(f"--index {i} out of range 0..{len(ds) - 1} (indices after _filter_imgs)")
    tr = ds.pipeline.transforms
    names = [type(t).__name__ for t in tr]
    cap, load_cap = _PipeCapture(), _ImageCapture()
    tr.insert(names.index("Normalize"), cap)
    tr.insert(names.index("LoadImageFromFile") + 1, load_cap)
    tensors, metas, datas = {}, [], []
    for k, (idx, flip) in enumerate(zip(a.index, a.flip)):
        results = dict(img_info=ds.data_infos[idx], ann_info=ds.get_ann_info(idx))
        ds.pre_pipeline(results)
        # RandomFlip uses a preset 'flip' instead of drawing (transforms.py:431-453); the values equal what a
        # draw would set: flip_direction 'horizontal' when flipped, None otherwise
        results["flip"] = bool(flip)
        results["flip_direction"] = "horizontal" if flip else None
        data = ds.pipeline(results)
        datas.append(data)
        sfx = "" if k == 0 else f".{k}"
        tensors[f"img{sfx}"] = data["img"].data.contiguous().float()
        tensors[f"gt_bboxes{sfx}"] = data["gt_bboxes"].data.contiguous().float()
        tensors[f"gt_labels{sfx}"] = data["gt_labels"].data.contiguous().long()
        ign = cap.items[k]["gt_bboxes_ignore"]
        tensors[f"gt_bboxes_ignore{sfx}"] = torch.from_numpy(
            np.ascontiguousarray(ign if ign is not None else np.zeros((0, 4), np.float32))).float()
        tensors[f"resized_uint8_bgr{sfx}"] = torch.from_numpy(np.ascontiguousarray(cap.items[k]["img"]))
        tensors[f"decoded_uint8_bgr{sfx}"] = torch.from_numpy(np.ascontiguousarray(load_cap.images[k]))
        m = data["img_metas"].data
        metas.append({"index": idx, "img_id": int(ds.data_infos[idx]["id"]), "suffix": sfx,
                      **{key: jsonable(v) for key, v in m.items()},
                      "img_tensor_shape": list(tensors[f"img{sfx}"].shape),
                      "num_gt": int(tensors[f"gt_bboxes{sfx}"].shape[0])})
    if len(datas) > 1:
        batch = collate(datas, samples_per_gpu=len(datas))
        tensors["batch_img"] = batch["img"].data[0].contiguous().float()
    from safetensors.torch import save_file
    st_path, js_path = a.out + ".safetensors", a.out + ".json"
    d = os.path.dirname(os.path.abspath(st_path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=d)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": FORMAT, "subcommand": "pipeline"})
        _publish(tmp, st_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    out = {"format": FORMAT, "subcommand": "pipeline", "data": os.path.abspath(a.data),
           "img_scale": list(a.img_scale), "classes": list(classes), "items": metas,
           "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
                       for k, v in tensors.items()},
           "safetensors": os.path.abspath(st_path),
           "train_pipeline": jsonable([dict(t) for t in cfg.data.train.pipeline])}
    write_json(out, js_path)
    print(json.dumps({"ok": True, "safetensors": os.path.abspath(st_path), "json": os.path.abspath(js_path),
                      "items": len(metas)}), file=_STDOUT, flush=True)
    return 0


# ----------------------------------------------------------------------------------------------------------
# dataset
# ----------------------------------------------------------------------------------------------------------
def describe_dataset(ds, test_mode):
    import mmcv
    import numpy as np
    images = []
    for i, info in enumerate(ds.data_infos):
        path = os.path.join(ds.img_prefix, info["filename"])
        img = mmcv.imread(path)
        ann = ds.get_ann_info(i)
        e = {"index": i, "id": int(info["id"]), "file_name": info["filename"],
             "width": int(info["width"]), "height": int(info["height"]),
             "file_sha256": sha256_file(path),
             "decoded_bgr_sha256": hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest(),
             "decoded_shape": list(img.shape),
             "ann": {"bboxes": jsonable(ann["bboxes"]), "labels": jsonable(ann["labels"]),
                     "bboxes_ignore": jsonable(ann["bboxes_ignore"]), "seg_map": ann["seg_map"]}}
        if not test_mode:
            e["flag"] = int(ds.flag[i])
        images.append(e)
    out = {"ann_file": ds.ann_file, "img_prefix": ds.img_prefix, "test_mode": test_mode,
           "CLASSES": list(ds.CLASSES), "cat_ids": [int(c) for c in ds.cat_ids],
           "cat2label": [[int(k), int(v)] for k, v in ds.cat2label.items()],
           "label_to_cat_id": [int(c) for c in ds.cat_ids],
           "img_ids": [int(i) for i in ds.img_ids], "num_images": len(ds), "images": images}
    if not test_mode:
        out["flags"] = [int(f) for f in ds.flag.tolist()]
        out["group_sizes"] = [int(v) for v in np.bincount(ds.flag.astype(np.int64))]
    return out


def cmd_dataset(a):
    import_mmdet()
    from mmdet.datasets import build_dataset
    classes = tuple(a.classes.split(",")) if a.classes else default_classes(a.data)
    cfg = build_config(a.data, classes)
    train = build_dataset(cfg.data.train)
    val = build_dataset(cfg.data.val, dict(test_mode=True))
    with open(os.path.join(a.data, "train.json")) as f:
        raw = json.load(f)
    kept = set(int(i) for i in train.img_ids)
    anns_by_img = {}
    for an in raw["annotations"]:
        anns_by_img.setdefault(an["image_id"], []).append(an)
    filtered = []
    for im in raw["images"]:
        if im["id"] in kept:
            continue
        reason = []
        if min(im["width"], im["height"]) < 32:
            reason.append("min side < 32")
        if not any(an["category_id"] in train.cat_ids for an in anns_by_img.get(im["id"], [])):
            reason.append("no annotation of a dataset category (filter_empty_gt)")
        filtered.append({"id": im["id"], "file_name": im["file_name"], "reason": "; ".join(reason)})
    out = {"format": FORMAT, "subcommand": "dataset", "data": os.path.abspath(a.data),
           "classes_arg": list(classes), "train": describe_dataset(train, False),
           "train_filtered": filtered, "val": describe_dataset(val, True),
           "note": "bboxes are the float32 values mmdet stores (x1, y1, x1 + w, y1 + h computed in float64, "
                   "then cast); labels follow the annotation file's category order (cat_ids)"}
    write_json(out, a.out)
    return 0


# ----------------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description="MMDetection 2.16.0 training reference (run in .venv-mmdet)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="run mmdet's own training loop (tools/train.py) on a small COCO set")
    t.add_argument("--data", required=True, help="fixture dir (train.json, val.json, images/)")
    t.add_argument("--checkpoint", required=True, help="starting weights (load_from), e.g. from mmdet_reference.py")
    t.add_argument("--work-dir", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    t.add_argument("--epochs", type=int, default=DEF_EPOCHS)
    t.add_argument("--img-scale", type=parse_wxh, default=DEF_IMG_SCALE, help="WxH (default 256x192)")
    t.add_argument("--lr", type=float, help="optimizer lr (default: the config's 0.01)")
    t.add_argument("--warmup-iters", type=int, default=DEF_WARMUP_ITERS)
    t.add_argument("--step", type=parse_int_list, default=DEF_STEP, help="lr_config.step epochs, e.g. 1 or 1,2")
    t.add_argument("--samples-per-gpu", type=int, default=DEF_SAMPLES_PER_GPU)
    t.add_argument("--flip-ratio", type=float, default=DEF_FLIP_RATIO)
    t.add_argument("--classes", help="comma-separated data.train/val classes (default: the file's category "
                   "names sorted by id)")
    t.add_argument("--no-validate", action="store_true", help="tools/train.py --no-validate")
    t.add_argument("--amp", choices=("bf16", "fp16"), help="mixed precision: the config's fp16 with CPU autocast of "
                   "this dtype (mmcv's Fp16OptimizerHook on torch.amp.GradScaler('cpu'))")
    t.add_argument("--loss-scale", default="dynamic", help="with --amp: 'dynamic', a number, or JSON of "
                   "GradScaler's arguments, e.g. '{\"init_scale\": 1e38, \"growth_interval\": 3}'")
    t.add_argument("--overwrite", action="store_true", help="clear a non-empty work dir of an earlier run")
    t.add_argument("--dump-batches", type=int, default=0, metavar="K",
                   help="also save the collated input of the first K iterations as W/batches/iter_NNNN.safetensors")

    s = sub.add_parser("sampler", help="GroupSampler order (+ RandomFlip draws) after set_random_seed")
    s.add_argument("--flags", type=parse_int_list, help="group flag per dataset index, e.g. 0,1,1,0")
    s.add_argument("--sizes-json", help="JSON list of [w, h] (or {'sizes': [...]}) per dataset index")
    s.add_argument("--data", help="fixture dir: the flags of CocoDataset after _filter_imgs")
    s.add_argument("--classes")
    s.add_argument("--samples-per-gpu", type=int, default=DEF_SAMPLES_PER_GPU)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--epochs", type=int, default=DEF_EPOCHS)
    s.add_argument("--flip-ratio", default=str(DEF_FLIP_RATIO),
                   help="RandomFlip draws interleaved as in training (default 0.5); 'none' = sampler only")
    s.add_argument("--out", help="output JSON (default stdout)")

    lr = sub.add_parser("lr", help="mmcv StepLrUpdaterHook lr of every iteration")
    lr.add_argument("--iters-per-epoch", type=int, required=True)
    lr.add_argument("--epochs", type=int, required=True)
    lr.add_argument("--resume-iter", type=int)
    lr.add_argument("--lr", type=float)
    lr.add_argument("--warmup", choices=("linear", "constant", "exp", "none"))
    lr.add_argument("--warmup-iters", type=int)
    lr.add_argument("--warmup-ratio", type=float)
    lr.add_argument("--step", type=parse_int_list)
    lr.add_argument("--step-int", action="store_true", help="a single --step value is an int period, not [s]")
    lr.add_argument("--gamma", type=float)
    lr.add_argument("--by-epoch", type=int, choices=(0, 1))
    lr.add_argument("--out")

    p = sub.add_parser("pipeline", help="mmdet's train pipeline output for dataset item(s), flip forced")
    p.add_argument("--data", required=True)
    p.add_argument("--index", type=parse_int_list, required=True, help="dataset index(es) after _filter_imgs")
    p.add_argument("--flip", type=parse_int_list, required=True, help="0/1 per index")
    p.add_argument("--img-scale", type=parse_wxh, default=DEF_IMG_SCALE)
    p.add_argument("--classes")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.safetensors + PREFIX.json")

    d = sub.add_parser("dataset", help="CocoDataset after _filter_imgs: ids, flags, parsed annotations")
    d.add_argument("--data", required=True)
    d.add_argument("--classes")
    d.add_argument("--out")

    a = ap.parse_args(argv)
    if getattr(a, "threads", 1) < 1:
        ap.error("--threads must be >= 1")
    if a.cmd == "train":
        if a.epochs < 1 or a.samples_per_gpu < 1 or a.warmup_iters < 1:
            ap.error("--epochs, --samples-per-gpu, --warmup-iters must be >= 1")
        if not 0.0 <= a.flip_ratio <= 1.0:
            ap.error("--flip-ratio must be in [0, 1]")
    fn = {"train": cmd_train, "sampler": cmd_sampler, "lr": cmd_lr, "pipeline": cmd_pipeline,
          "dataset": cmd_dataset}[a.cmd]
    with contextlib.redirect_stdout(sys.stderr):   # pycocotools, ProgressBar, COCOeval print on stdout
        return fn(a)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RefError as e:
        print(f"[mmdet_train_reference] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
    except SystemExit:
        raise
    except Exception:
        import traceback
        traceback.print_exc()
        print("[mmdet_train_reference] ERROR: unexpected failure (traceback above)", file=sys.stderr)
        sys.exit(1)
