#!/usr/bin/env bash
# Create (or check) the separate MMDetection 2.16.0 reference environment <repo>/.venv-mmdet.
#
# Usage: bash tools/mmdet_env.sh [--force] [--check]
#   (no option)  create/complete the venv; returns in well under 2 s when the stamp is present
#   --force      delete .venv-mmdet and build it again from scratch
#   --check      also re-run the import self-test when the stamp is present (slower, ~5-10 s)
# Environment:
#   MMDET_PYTHON  interpreter used to create the venv (default: python3.11, else python3); must be 3.8-3.11
#   MMDET_VENV    venv location (default: <repo>/.venv-mmdet)
#
# Contents: torch==2.13.0+cpu (falls back to torch==2.13.0), mmdet==2.16.0 (--no-deps), mmcv==1.4.0 (the lite
# sdist, no compiled ops, built with setuptools<70 and --no-build-isolation, MMCV_WITH_OPS=0), numpy==1.26.4,
# opencv-python-headless==4.10.0.84, yapf==0.32.0 and mmcv/mmdet's small runtime deps. No torchvision:
# tools/mmdet_shims/ provides an empty torchvision and a pure-torch mmcv._ext (nms); scripts must call
# ghm_mmdet_shims.install() before importing mmcv/mmdet (tools/mmdet_reference.py does).
# A stamp file is written only after the import self-test succeeded; its content encodes the pins below, so
# editing the pins triggers a re-install.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
VENV="${MMDET_VENV:-$REPO_ROOT/.venv-mmdet}"
SHIMS="$SCRIPT_DIR/mmdet_shims"
STAMP="$VENV/.ghm-mmdet-env-stamp"

TORCH_PIN="torch==2.13.0+cpu"
TORCH_FALLBACK="torch==2.13.0"
MMCV_PIN="mmcv==1.4.0"
MMDET_PIN="mmdet==2.16.0"
DEPS=(numpy==1.26.4 opencv-python-headless==4.10.0.84 yapf==0.32.0 addict pyyaml pillow packaging
      pycocotools terminaltables matplotlib six safetensors)
STAMP_CONTENT="ghm-mmdet-env v1 | $TORCH_PIN | $MMCV_PIN | $MMDET_PIN | ${DEPS[*]}"

FORCE=0; CHECK=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    --check) CHECK=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "mmdet_env.sh: unknown option '$a' (use --force, --check or --help)" >&2; exit 2 ;;
  esac
done

say() { echo "[mmdet_env] $*"; }
die() {
  echo "" >&2
  echo "########################################################################" >&2
  echo "[mmdet_env] ERROR: $*" >&2
  echo "[mmdet_env] The MMDetection reference environment at $VENV is NOT usable." >&2
  echo "########################################################################" >&2
  exit 1
}
trap 'die "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

PY="$VENV/bin/python"

self_test() {
  # Import check with the shims first on sys.path; prints versions.
  "$PY" - "$SHIMS" <<'PYEOF'
import sys
shims = sys.argv[1]
sys.path.insert(0, shims)
import ghm_mmdet_shims
ghm_mmdet_shims.install()
import torch, numpy, cv2, mmcv, mmdet, safetensors, pycocotools, yaml, PIL
ghm_mmdet_shims.self_test()
import os
cfg = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs', 'ghm', 'retinanet_ghm_r50_fpn_1x_coco.py')
assert os.path.isfile(cfg), 'GHM config not found inside the mmdet package: ' + cfg
bad = []
if not torch.__version__.startswith('2.13.0'): bad.append('torch ' + torch.__version__)
if mmcv.__version__ != '1.4.0': bad.append('mmcv ' + mmcv.__version__)
if mmdet.__version__ != '2.16.0': bad.append('mmdet ' + mmdet.__version__)
if bad:
    raise SystemExit('wrong versions: ' + ', '.join(bad))
print(f'[mmdet_env] import check ok: torch {torch.__version__}, numpy {numpy.__version__}, '
      f'cv2 {cv2.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}')
PYEOF
}

# ---------- fast path ----------
if [[ $FORCE -eq 0 && -x "$PY" && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_CONTENT" ]]; then
  if [[ $CHECK -eq 1 ]]; then
    say "stamp present; re-running the import self-test (--check)"
    self_test || die "import self-test failed although the stamp was present; re-run with --force"
  fi
  echo "[mmdet_env] OK: $VENV is complete (stamp present) - nothing to do"
  exit 0
fi

START=$(date +%s)
if [[ $FORCE -eq 1 && -d "$VENV" ]]; then
  say "--force: removing $VENV"
  rm -rf "$VENV"
fi
rm -f "$STAMP"

# ---------- interpreter ----------
if [[ -n "${MMDET_PYTHON:-}" ]]; then
  BASEPY="$MMDET_PYTHON"
elif command -v python3.11 >/dev/null 2>&1; then
  BASEPY="$(command -v python3.11)"
else
  BASEPY="$(command -v python3 || true)"
fi
[[ -n "$BASEPY" ]] || die "no python3 found (set MMDET_PYTHON)"
"$BASEPY" -c 'import sys; sys.exit(0 if (3,8) <= sys.version_info[:2] <= (3,11) else 1)' \
  || die "$BASEPY is Python $("$BASEPY" -c 'import sys;print(sys.version.split()[0])'); mmcv 1.4.0 / torch 2.13.0+cpu need Python 3.8-3.11 (set MMDET_PYTHON)"

# ---------- venv ----------
if [[ -x "$PY" ]] && "$PY" -c 'import pip' >/dev/null 2>&1; then
  say "completing existing venv $VENV (no stamp yet)"
else
  if [[ -d "$VENV" ]]; then
    say "venv $VENV is broken (no working python/pip): recreating it"
    rm -rf "$VENV"
  fi
  say "creating venv $VENV with $BASEPY"
  "$BASEPY" -m venv "$VENV"
fi
PIP=("$PY" -m pip --disable-pip-version-check)

if "$PY" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' >/dev/null 2>&1; then
  say "torch already present: $("$PY" -c 'import torch; print(torch.__version__)')"
else
  say "installing $TORCH_PIN (pip find-links, e.g. /opt/wheels)"
  if ! "${PIP[@]}" install -q "$TORCH_PIN"; then
    say "$TORCH_PIN not available; falling back to $TORCH_FALLBACK"
    "${PIP[@]}" install -q "$TORCH_FALLBACK" || die "could not install torch ($TORCH_PIN or $TORCH_FALLBACK)"
  fi
fi
TORCH_VER="$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)"

# Constraints keep the dependency installs from replacing torch or numpy.
CONSTRAINTS="$VENV/ghm-constraints.txt"
printf 'torch==%s\nnumpy==1.26.4\n' "$TORCH_VER" > "$CONSTRAINTS"

say "installing runtime deps: ${DEPS[*]}"
"${PIP[@]}" install -q -c "$CONSTRAINTS" "${DEPS[@]}" wheel

if "$PY" -c 'import importlib.metadata as m, sys; sys.exit(0 if m.version("mmcv") == "1.4.0" else 1)' >/dev/null 2>&1; then
  say "mmcv 1.4.0 already installed"
else
  # mmcv 1.4.0's setup.py imports pkg_resources, which setuptools >= 70 no longer has, but torch 2.13 requires
  # setuptools >= 77: downgrade only for the build (pip prints a harmless conflict warning), restore after.
  say "temporarily installing setuptools<70 for the mmcv build (pip may warn that torch wants setuptools>=77)"
  out="$("${PIP[@]}" install -q "setuptools<70" 2>&1)" || { echo "$out" >&2; die "could not install setuptools<70"; }
  grep -v -e "dependency resolver does not" -e "requires setuptools" <<<"$out" || true
  say "building + installing $MMCV_PIN (lite sdist, MMCV_WITH_OPS=0, --no-build-isolation; first build takes a minute)"
  MMCV_WITH_OPS=0 "${PIP[@]}" install -q --no-deps --no-build-isolation "$MMCV_PIN"
  say "restoring torch's own requirements (setuptools>=77; mmcv/mmdet do not use pkg_resources at run time)"
  "${PIP[@]}" install -q -c "$CONSTRAINTS" "torch==$TORCH_VER"
fi
say "installing $MMDET_PIN (--no-deps)"
"${PIP[@]}" install -q --no-deps "$MMDET_PIN"

if "$PY" -c 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("torchvision") else 1)' >/dev/null 2>&1; then
  die "a real torchvision is installed in $VENV; it breaks beside CPU torch. Remove it: $PY -m pip uninstall -y torchvision"
fi
if "$PY" -c 'import importlib.metadata as m; m.version("mmcv-full")' >/dev/null 2>&1; then
  die "mmcv-full is installed in $VENV next to mmcv; uninstall it"
fi

say "import self-test (shims from $SHIMS)"
self_test || die "import self-test failed (see the traceback above)"

echo "$STAMP_CONTENT" > "$STAMP"
END=$(date +%s)
echo "[mmdet_env] OK: $VENV ready (torch $TORCH_VER, mmcv 1.4.0, mmdet 2.16.0) in $((END-START)) s"
