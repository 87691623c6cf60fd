#!/usr/bin/env bash
# Fuzzes the checkpoint readers (TorchCheckpoint): ITERATIONS seeded mutations of real checkpoints that Python torch
# writes at test time (zip and legacy .pth, safetensors, and files written by the Swift writer), each of which must
# load or be refused with a CheckpointError — never trap, hang or run code. `make fuzz` runs it with the defaults.
#
#   tools/fuzz_checkpoint.sh [ITERATIONS=100000] [SEED=1]
#
# It runs GHMToolsTests.FuzzTests (the normal suite runs the same test with 10,000 inputs). The input being
# tried is always on disk; after a crash it is kept as .build/fuzz-crash-SEED.bin, and the same SEED reproduces the
# run. SWIFT_BUILD_FLAGS is passed to swift (e.g. --scratch-path DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-100000}
seed=${2:-1}
mkdir -p .build
current=.build/fuzz-current-$seed.bin
log=.build/fuzz-$seed.log
echo "[fuzz] building the tests"
# shellcheck disable=SC2086
if ! swift build ${SWIFT_BUILD_FLAGS:-} --build-tests >"$log" 2>&1; then
  grep -E 'error' "$log" | head -20 || true
  echo "[fuzz] the build failed (see $log); nothing was fuzzed"
  exit 2
fi
echo "[fuzz] $iterations mutated checkpoints, seed $seed (log: $log)"
set +e
# shellcheck disable=SC2086
GHM_FUZZ_ITERATIONS=$iterations GHM_FUZZ_SEED=$seed GHM_FUZZ_CRASH_FILE=$PWD/$current \
  swift test ${SWIFT_BUILD_FLAGS:-} --skip-build --filter 'GHMToolsTests.FuzzTests' >>"$log" 2>&1
status=$?
set -e
grep -E '^fuzz' "$log" || true
if [ $status -ne 0 ] || ! grep -q "Executed 1 test, with 0 failures" "$log"; then
  cp -f "$current" ".build/fuzz-crash-$seed.bin" 2>/dev/null || true
  grep -E 'error|Fatal|signal|crash' "$log" | head -20 || true
  echo "[fuzz] FAILED (exit status $status); the last input tried is .build/fuzz-crash-$seed.bin"
  exit 1
fi
rm -f "$current"
echo "[fuzz] ok: no crash, no hang"
