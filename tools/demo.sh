#!/usr/bin/env bash
# The main job on an embedded default (run by `make demo` after the build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ghm="$root/dist/bin/ghm"
echo "== ghm info --forward"
"$ghm" info --forward
