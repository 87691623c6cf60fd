#!/usr/bin/env bash
# Installs what the project needs, idempotently and quickly when everything is already there:
#   1. Debian packages: libopencv-dev, cmake, ninja-build, libgloo-dev (Gloo's headers for the
#      c10d shim) (apt-get update only when something is missing);
#   2. the project-local Python environment .venv with torch==2.13.0+cpu (fallback torch==2.13.0), numpy,
#      safetensors and the Python test dependencies.
# Usage: tools/setup.sh            (from anywhere; the repository root is found from this file's location)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf '[setup] %s\n' "$*"; }

# ---- Debian packages ----
pkgs=(libopencv-dev cmake ninja-build libgloo-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- Python environment ----
venv="$root/.venv"
stamp="$venv/.ghm-setup-v1"
py_deps=(numpy safetensors pycocotools)
if [ -f "$stamp" ] && "$venv/bin/python" -c 'import torch, numpy, safetensors, pycocotools' 2>/dev/null; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  python3 -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
if ! "$venv/bin/python" -c 'import torch,sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
  say "installing torch==2.13.0+cpu into .venv"
  if ! "${pip[@]}" 'torch==2.13.0+cpu'; then
    say "torch==2.13.0+cpu not found; falling back to torch==2.13.0"
    "${pip[@]}" 'torch==2.13.0'
  fi
fi
say "installing ${py_deps[*]} into .venv"
"${pip[@]}" "${py_deps[@]}"
"$venv/bin/python" -c 'import torch, numpy, safetensors, pycocotools; print("[setup] torch", torch.__version__)'
touch "$stamp"
