#!/usr/bin/env python3
"""Compare two training runs iteration by iteration (GHM training parity; mmdet vs mmdet, or Swift vs mmdet).

    python tools/compare_train.py A B [--rtol 1e-4] [--ckpt-a F] [--ckpt-b F] [--table] [--json OUT]

A and B are work dirs (or files). Per run the iteration series comes from ``trajectory.json`` (written by
tools/mmdet_train_reference.py train, full precision) when present, otherwise from the newest
``*.log.json`` (mmdet's format: first line = meta, then one object per log interval; entries with
``mode == "train"`` are iterations, ``mode == "val"`` evaluations). The checkpoint is ``latest.pth`` of the
dir unless --ckpt-a/--ckpt-b are given (loaded with ``torch.load(weights_only=True)``, falling back to
``weights_only=False`` with a note). B is the reference for the scale of relative differences.

One line per quantity, ``PASS``/``FAIL``/``SKIP``/``INFO`` (only PASS/FAIL count):

* ``iterations``  both series have the same number of train iterations with the same (epoch, iter) keys
* ``lr``          equal at every iteration (exactly; at 5 decimals if a series is mmdet's rounded log.json)
* ``loss_cls``, ``loss_bbox``, ``loss``, ``grad_norm``: ``|a-b| / max(|a|,|b|) <= rtol`` at every iteration;
  on failure: the first iteration above rtol and how the difference grows after it
* ``weights``     every floating tensor of the state dicts except the GHM buffers: ``max|a-b| <= rtol * max|b|``
  (integer tensors, e.g. num_batches_tracked: equal); key sets and shapes must match
* ``ghmc.acc_sum``, ``ghmr.acc_sum``: the same criterion on ``bbox_head.loss_{cls,bbox}.acc_sum``
  (GHM edges must be equal)
* INFO lines: batches (image/flip per iteration, trajectory files only), first iteration where the
  per-iteration GHM acc_sum differs, evaluation mAP, optimizer momentum buffers, bit-identity.

Exit status 0 when every PASS/FAIL line is PASS, 1 otherwise, 2 on usage/input errors.
"""

import argparse
import glob
import json
import math
import os
import sys

QUANTS = ("loss_cls", "loss_bbox", "loss", "grad_norm")


class InputError(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------------------
def load_series(path):
    """-> dict(source, kind, rounded, iters=[{epoch, inner_iter, lr, loss_cls, ...}], evals, traj)"""
    src = None
    if os.path.isdir(path):
        t = os.path.join(path, "trajectory.json")
        if os.path.isfile(t):
            src = t
        else:
            logs = sorted(glob.glob(os.path.join(path, "*.log.json")))
            if not logs:
                raise InputError(f"{path}: neither trajectory.json nor *.log.json")
            src = logs[-1]
    elif os.path.isfile(path):
        src = path
    else:
        raise InputError(f"{path}: not found")
    with open(src) as f:
        text = f.read()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "iterations" in doc:
        iters = [{"epoch": it["epoch"], "inner_iter": it["inner_iter"], "lr": it["lr"],
                  **{q: it.get(q) for q in QUANTS}} for it in doc["iterations"]]
        return {"source": src, "kind": "trajectory", "rounded": False, "iters": iters,
                "evals": doc.get("evals", []), "traj": doc}
    iters, evals = [], []
    for n, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError as ex:
            raise InputError(f"{src}:{n + 1}: not JSON ({ex})")
        mode = e.get("mode")
        if mode == "train":
            iters.append({"epoch": e.get("epoch"), "inner_iter": e.get("iter"), "lr": e.get("lr"),
                          **{q: e.get(q) for q in QUANTS}})
        elif mode == "val":
            evals.append({k: v for k, v in e.items() if k.startswith("bbox_") or k == "epoch"})
    if not iters:
        raise InputError(f"{src}: no train entries")
    vals = [v for it in iters for v in (it["lr"],) + tuple(it[q] for q in QUANTS) if isinstance(v, float)]
    rounded = bool(vals) and all(v == round(v, 5) for v in vals)
    return {"source": src, "kind": "log.json", "rounded": rounded, "iters": iters, "evals": evals, "traj": None}


def load_state(path):
    import torch
    note = None
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        note = f"weights_only=True failed ({type(e).__name__}); loaded with weights_only=False"
        ck = torch.load(path, map_location="cpu", weights_only=False)
    sd = ck["state_dict"] if isinstance(ck, dict) and "state_dict" in ck else ck
    opt = ck.get("optimizer") if isinstance(ck, dict) else None
    return sd, opt, note


# ----------------------------------------------------------------------------------------------------------
def rel(a, b):
    if a is None or b is None:
        return float("inf")
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return float("inf")
    return abs(a - b) / max(abs(a), abs(b))


def growth(rs, first, limit=8):
    """Short description of rs[first:] : a few iterations after the first failure, the max and the last."""
    n = len(rs)
    picks = sorted(set([first] + [min(n - 1, first + 2 ** k) for k in range(10)] + [n - 1]))[:limit]
    if n - 1 not in picks:
        picks[-1] = n - 1
    parts = [f"it{i}:{rs[i]:.2e}" for i in picks]
    mx = max(range(first, n), key=lambda i: rs[i])
    return ", ".join(parts) + f"; max {rs[mx]:.2e} at it{mx}"


class Report:
    def __init__(self):
        self.lines = []
        self.fails = 0
        self.checked = 0
        self.data = {}

    def add(self, status, name, msg, **data):
        if status in ("PASS", "FAIL"):
            self.checked += 1
            self.fails += status == "FAIL"
        self.lines.append(f"{status:4s} {name:14s} {msg}")
        self.data[name] = {"status": status, "message": msg, **data}
        print(self.lines[-1], flush=True)


def compare_series(A, B, rtol, rep, table):
    ia, ib = A["iters"], B["iters"]
    n = min(len(ia), len(ib))
    keys_a = [(x["epoch"], x["inner_iter"]) for x in ia[:n]]
    keys_b = [(x["epoch"], x["inner_iter"]) for x in ib[:n]]
    if len(ia) != len(ib) or keys_a != keys_b:
        bad = next((i for i in range(n) if keys_a[i] != keys_b[i]), n)
        rep.add("FAIL", "iterations", f"A has {len(ia)}, B has {len(ib)} train iterations; (epoch, iter) keys "
                f"first differ at iteration {bad}" if bad < n else
                f"A has {len(ia)}, B has {len(ib)} train iterations (common prefix {n} compared)")
    else:
        rep.add("PASS", "iterations", f"{n} iterations, (epoch, iter) keys equal")
    # lr
    rounded = A["rounded"] or B["rounded"]
    la = [x["lr"] for x in ia[:n]]
    lb = [x["lr"] for x in ib[:n]]
    eq = [(round(a, 5) == round(b, 5)) if rounded else (a == b) for a, b in zip(la, lb)]
    if all(eq):
        rep.add("PASS", "lr", f"equal at all {n} iterations" + (" (compared at 5 decimals: a log.json is rounded)"
                                                                  if rounded else " (exactly)"))
    else:
        i = eq.index(False)
        rep.add("FAIL", "lr", f"{eq.count(False)} iterations differ; first at it{i} (epoch {ia[i]['epoch']}, "
                f"iter {ia[i]['inner_iter']}): A {la[i]!r} vs B {lb[i]!r}", first=i)
    tol = max(rtol, 1e-5 / 1.0) if rounded else rtol
    rows = {}
    for q in QUANTS:
        va = [x[q] for x in ia[:n]]
        vb = [x[q] for x in ib[:n]]
        if all(v is None for v in va) and all(v is None for v in vb):
            rep.add("SKIP", q, "absent in both")
            continue
        rs = [rel(a, b) for a, b in zip(va, vb)]
        rows[q] = rs
        if rounded:   # 5-decimal rounding: allow half a unit in the 5th decimal on top of rtol
            rs_eff = [0.0 if (a is not None and b is not None and abs(a - b) <= 0.5e-5 + rtol * max(abs(a), abs(b)))
                      else r for r, a, b in zip(rs, va, vb)]
        else:
            rs_eff = rs
        bad = [i for i, r in enumerate(rs_eff) if r > tol]
        mx = max(range(n), key=lambda i: rs[i]) if n else 0
        if not bad:
            same = sum(1 for a, b in zip(va, vb) if a == b)
            rep.add("PASS", q, f"max rel diff {rs[mx]:.3e} (it{mx}); {same}/{n} bit-identical", max_rel=rs[mx])
        else:
            f = bad[0]
            rep.add("FAIL", q, f"first > {rtol:g} at it{f} (epoch {ia[f]['epoch']}, iter {ia[f]['inner_iter']}): "
                    f"A {va[f]!r} B {vb[f]!r} rel {rs[f]:.3e}; {len(bad)}/{n} iterations above; growth: "
                    f"{growth(rs, f)}", first=f, max_rel=rs[mx], per_iter=rs)
    if table and rows:
        print("  it  ep:in  " + "  ".join(f"{q:>10s}" for q in rows))
        for i in range(n):
            print(f"  {i:2d}  {ia[i]['epoch']}:{ia[i]['inner_iter']:<3}  " +
                  "  ".join(f"{rows[q][i]:10.2e}" for q in rows))
    return n


def compare_traj_extras(A, B, n, rep):
    ta, tb = A["traj"], B["traj"]
    if not (ta and tb):
        rep.add("SKIP", "batches", "needs trajectory.json on both sides")
        return
    ia, ib = ta["iterations"][:n], tb["iterations"][:n]
    diff = [i for i in range(n) if [(m["filename"], m["flip"]) for m in (ia[i].get("images") or [])] !=
            [(m["filename"], m["flip"]) for m in (ib[i].get("images") or [])]]
    rep.add("INFO", "batches", "images and flips equal at every iteration" if not diff else
            f"differ at {len(diff)} iterations, first it{diff[0]}")
    acc = [i for i in range(n) if ia[i].get("ghmc_acc_sum") != ib[i].get("ghmc_acc_sum")
           or ia[i].get("ghmr_acc_sum") != ib[i].get("ghmr_acc_sum")]
    rep.add("INFO", "acc_sum/iter", "GHM acc_sum bit-identical after every iteration" if not acc else
            f"GHM acc_sum first differs after it{acc[0]} ({len(acc)}/{n} iterations differ)")
    lv = []
    for key in ("loss_cls_levels", "loss_bbox_levels"):
        for i in range(n):
            a, b = ia[i].get(key), ib[i].get(key)
            if a and b and a != b:
                lv.append((i, key, max(range(len(a)), key=lambda k: rel(a[k], b[k]))))
                break
    if lv:
        first = min(lv)
        rep.add("INFO", "levels", f"per-level losses first differ at it{first[0]} ({first[1]}, level P{first[2] + 3} "
                "has the largest relative difference there)")


def compare_evals(A, B, rep):
    ea, eb = A["evals"], B["evals"]
    if not ea and not eb:
        return
    msg = []
    for x, y in zip(ea, eb):
        a, b = x.get("bbox_mAP"), y.get("bbox_mAP")
        msg.append(f"epoch {x.get('epoch')}: {a} vs {b}")
    rep.add("INFO", "eval", "; ".join(msg) if msg else f"A {len(ea)} evals, B {len(eb)} evals")


def compare_ckpts(pa, pb, rtol, rep):
    import torch
    sa, oa, na = load_state(pa)
    sb, ob, nb = load_state(pb)
    for nt, p in ((na, pa), (nb, pb)):
        if nt:
            rep.add("INFO", "load", f"{p}: {nt}")
    ghm = {"bbox_head.loss_cls.acc_sum": "ghmc.acc_sum", "bbox_head.loss_bbox.acc_sum": "ghmr.acc_sum"}
    edges = ("bbox_head.loss_cls.edges", "bbox_head.loss_bbox.edges")
    ka, kb = set(sa), set(sb)
    worst, worst_key, n_t, n_bits, bad = 0.0, None, 0, 0, []
    shape_bad = [k for k in ka & kb if tuple(sa[k].shape) != tuple(sb[k].shape)]
    for k in sorted(ka & kb):
        if k in ghm or k in shape_bad:
            continue
        a, b = sa[k], sb[k]
        n_t += 1
        if torch.equal(a, b):
            n_bits += 1
            continue
        if not a.is_floating_point():
            bad.append((k, "integer tensor differs"))
            worst, worst_key = float("inf"), k
            continue
        d = float((a.double() - b.double()).abs().max())
        scale = float(b.double().abs().max())
        r = d / scale if scale > 0 else float("inf")
        if r > worst:
            worst, worst_key = r, k
        if r > rtol:
            bad.append((k, f"{r:.3e}"))
    extra = ""
    if ka != kb:
        extra = f"; keys only in A: {sorted(ka - kb)[:5]}, only in B: {sorted(kb - ka)[:5]}"
    if shape_bad:
        extra += f"; shape differs: {shape_bad[:5]}"
    msg = (f"{n_t} tensors, {n_bits} bit-identical; max max|a-b|/max|b| = {worst:.3e}"
           + (f" ({worst_key})" if worst_key else "") + extra)
    if bad or ka != kb or shape_bad:
        rep.add("FAIL", "weights", msg + (f"; {len(bad)} tensors above rtol, e.g. {bad[:3]}" if bad else ""),
                max_rel=worst)
    else:
        rep.add("PASS", "weights", msg, max_rel=worst)
    for k, name in ghm.items():
        if k not in sa or k not in sb:
            rep.add("FAIL" if (k in sa) != (k in sb) else "SKIP", name, "missing in " +
                    ("A" if k not in sa else "B") if (k in sa) != (k in sb) else "absent in both")
            continue
        a, b = sa[k].double(), sb[k].double()
        d = float((a - b).abs().max())
        scale = float(b.abs().max())
        r = d / scale if scale > 0 else (0.0 if d == 0 else float("inf"))
        st = "PASS" if r <= rtol else "FAIL"
        rep.add(st, name, f"max|a-b|/max|b| = {r:.3e}" + (" (bit-identical)" if torch.equal(sa[k], sb[k]) else "")
                + f"; A {[round(float(v), 4) for v in sa[k]][:6]}...", max_rel=r)
    for k in edges:
        if k in sa and k in sb and not torch.equal(sa[k], sb[k]):
            rep.add("FAIL", "ghm edges", f"{k} differs")
    if oa is not None and ob is not None:
        try:
            st_a, st_b = oa["state"], ob["state"]
            common = sorted(set(st_a) & set(st_b), key=str)
            w = 0.0
            for i in common:
                ma, mb = st_a[i].get("momentum_buffer"), st_b[i].get("momentum_buffer")
                if ma is None or mb is None or ma.shape != mb.shape:
                    continue
                sc = float(mb.double().abs().max())
                d = float((ma.double() - mb.double()).abs().max())
                w = max(w, d / sc if sc > 0 else (0.0 if d == 0 else float("inf")))
            rep.add("INFO", "momentum", f"{len(common)} SGD momentum buffers; max max|a-b|/max|b| = {w:.3e}")
        except Exception as e:  # noqa: BLE001
            rep.add("INFO", "momentum", f"not comparable ({type(e).__name__})")


def main(argv=None):
    ap = argparse.ArgumentParser(description="compare two GHM training runs (log.json/trajectory.json + checkpoints)")
    ap.add_argument("a", help="run A: work dir, trajectory.json or *.log.json")
    ap.add_argument("b", help="run B (the reference for scales)")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--ckpt-a", help="checkpoint of A (default <A>/latest.pth)")
    ap.add_argument("--ckpt-b", help="checkpoint of B (default <B>/latest.pth)")
    ap.add_argument("--no-ckpt", action="store_true", help="compare the series only")
    ap.add_argument("--table", action="store_true", help="print the per-iteration relative differences")
    ap.add_argument("--json", help="also write the results as JSON")
    a = ap.parse_args(argv)
    try:
        A, B = load_series(a.a), load_series(a.b)
    except InputError as e:
        print(f"[compare_train] ERROR: {e}", file=sys.stderr)
        return 2
    print(f"A: {A['source']} ({A['kind']}{', rounded to 5 decimals' if A['rounded'] else ''})")
    print(f"B: {B['source']} ({B['kind']}{', rounded to 5 decimals' if B['rounded'] else ''})")
    rep = Report()
    n = compare_series(A, B, a.rtol, rep, a.table)
    compare_traj_extras(A, B, n, rep)
    compare_evals(A, B, rep)
    if not a.no_ckpt:
        ca = a.ckpt_a or (os.path.join(a.a, "latest.pth") if os.path.isdir(a.a) else None)
        cb = a.ckpt_b or (os.path.join(a.b, "latest.pth") if os.path.isdir(a.b) else None)
        if not ca or not cb or not os.path.exists(ca) or not os.path.exists(cb):
            rep.add("FAIL", "weights", f"checkpoint missing (A: {ca}, B: {cb}); use --ckpt-a/--ckpt-b or --no-ckpt")
        else:
            compare_ckpts(ca, cb, a.rtol, rep)
    ok = rep.fails == 0
    print(f"RESULT: {'PASS' if ok else 'FAIL'} ({rep.checked - rep.fails}/{rep.checked} checks passed, rtol {a.rtol:g})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"pass": ok, "rtol": a.rtol, "a": A["source"], "b": B["source"], "checks": rep.data}, f,
                      indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
