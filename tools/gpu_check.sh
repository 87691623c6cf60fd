#!/usr/bin/env bash
# The CUDA check of `ghm` in one prepared script, in two halves.
#
#   tools/gpu_check.sh prepare [--dir DIR] [--no-compress]
#       On the development machine (Swift, OpenCV, .venv, .venv-mmdet): builds the tool bundle and the data the check
#       needs into DIR (default: gpu-check/, git-ignored; about 35 MB compressed, small enough to carry to a GPU machine):
#         bundle.tar.xz  bin/ghm (release, static Swift runtime, stripped) + lib/: libghm_vision.so and every shared
#                        library ghm needs that is neither glibc, libstdc++/libgcc nor libtorch's (libxml2, ICU, ...)
#         data.tar.xz    reference.safetensors (MMDetection's outputs, losses, GHM state and some gradients on a
#                        448x256 input, tools/mmdet_reference.py --weights), batch.safetensors (the 2-image 800x1344
#                        training batch of `ghm bench train`; batch_small.safetensors: the same at 448x256), fixture/ (a small COCO set for a short `ghm train`),
#                        weights.json (the seed and SHA-256 of the weights; the 150 MB weights themselves are not
#                        carried: tools/torch_eager_ghm.py regenerates them bit for bit from the seed with numpy),
#                        reference.log (what tools/mmdet_reference.py printed, its decision margins included).
#
#   tools/gpu_check.sh run [--device cuda|cuda:N|cpu] [--dir DIR] [--out OUT] [--quick]
#       On the GPU machine (a Python whose torch is a CUDA build, cmake, a C++ compiler; no Swift, no OpenCV needed),
#       from the repository root, or here as a dry run with --device cpu:
#         1. rebuilds libghm_torch.so against that Python's libtorch (CShim, -DGHM_BUILD_VISION=OFF) into the bundle;
#         2. `ghm info`;
#         3. regenerates the weights and checks their SHA-256;
#         4. `ghm parity --device D` against MMDetection's reference (TF32 off), then the fast paths
#            (--fast-paths, and fuse-conv-bn + channels-last + amp fp16) on the reference's input;
#         5. `ghm bench detect --device D --input batch` fp32 and with fuse-conv-bn + channels-last + amp fp16, each
#            against PyTorch eager's forward (tools/torch_eager_ghm.py detect) in the same run;
#         6. `ghm bench train --device D` fp32 batch 2, amp fp16 batch 2 (peak memory) and amp fp16 batch 8
#            (images/s), each against PyTorch eager's training step in the same run;
#         7. a short `ghm train` with the config's fp16 (loss_scale dynamic) on the fixture, when this machine has
#            OpenCV for image decoding (otherwise skipped with a note; step 6 still trains with fp16 on the device).
#       Everything goes to OUT/gpu_check.log (default OUT: $OUT if set, else DIR/out), plus a summary of the steps.
#       --quick: 1 timed run per benchmark, batches of 1 and 2, and the benchmarks on batch_small.safetensors (the
#       same images at 448x256) instead of 800x1344 (for the CPU dry run). The mixed-precision steps use
#       fp16 on CUDA and bf16 on CPU (whose fp16 kernels are very slow); GPU_CHECK_AMP=fp16|bf16 chooses.
#       Environment: PYTHON (default: python3, or .venv/bin/python for --device cpu when present), GPU_CHECK_WORK
#       (the work folder, default .build/gpu-check-run).
#
# Exit status: 0 when every step that ran passed, 1 when one failed, 2 on bad usage.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CONFIG=configs/retinanet_ghm_r50_fpn_1x_coco.yml
REF_SCALE=(448 256)
GRAD_KEYS='^(bbox_head\.retina_(cls|reg)|neck\.fpn_convs\.4|backbone\.layer2\.0\.conv1|backbone\.layer[234]\.0\.bn[123])\.'
SEED=0
# the retina_cls bias shift of the weights: about 140 candidates above the 0.05 score threshold on the reference
# input, so that every decision of the post-processing has a wide margin (score threshold 2e-3 in logit, NMS IoU
# 5e-4) and fp32 rounding on another device cannot flip one
CLS_SHIFT=-2.5

say() { echo "[gpu_check] $*" >&2; }
die() { echo "[gpu_check] ERROR: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit "${1:-0}"; }

[ $# -ge 1 ] || usage 2
MODE=$1; shift
DIR=gpu-check
DEVICE=cuda
OUTDIR=${OUT:-}
QUICK=0
COMPRESS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=${2:?--dir needs a folder}; shift 2 ;;
    --device) DEVICE=${2:?--device needs cuda, cuda:N or cpu}; shift 2 ;;
    --out) OUTDIR=${2:?--out needs a folder}; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-compress) COMPRESS=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
case "$MODE" in prepare|run) ;; -h|--help) usage 0 ;; *) echo "gpu_check.sh: the first argument is prepare or run, not '$MODE'" >&2; usage 2 ;; esac
case "$DEVICE" in cpu|cuda|cuda:[0-9]*) ;; *) echo "gpu_check.sh: --device takes cpu, cuda or cuda:N, not '$DEVICE'" >&2; exit 2 ;; esac
DIR=$(mkdir -p "$DIR" && cd "$DIR" && pwd)

# ------------------------------------------------------------------------------------------------ prepare
if [ "$MODE" = prepare ]; then
  # the tool bundle from `make build` (GPU_CHECK_NO_BUILD=1: dist/ as it is, e.g. inside `swift test`, which holds
  # SwiftPM's lock on .build)
  if [ -z "${GPU_CHECK_NO_BUILD:-}" ]; then make -s build >&2 || die "make build failed"; fi
  [ -x dist/bin/ghm ] && [ -f dist/lib/libghm_vision.so ] || die "dist/bin/ghm is missing: run make build"
  make -s mmdet-env >&2 || die "make mmdet-env failed"
  PY=$ROOT/.venv/bin/python
  MMPY=$ROOT/.venv-mmdet/bin/python
  STAGE=$(mktemp -d "$ROOT/.build/gpu-check-stage.XXXXXX")
  trap 'rm -rf "$STAGE"' EXIT
  mkdir -p "$STAGE/bundle/bin" "$STAGE/bundle/lib" "$STAGE/data"

  say "bundle: dist/bin/ghm (stripped) and the libraries it needs beyond glibc, libstdc++ and libtorch"
  cp dist/bin/ghm "$STAGE/bundle/bin/ghm" && strip "$STAGE/bundle/bin/ghm" || die "cannot copy and strip dist/bin/ghm"
  cp dist/lib/libghm_vision.so "$STAGE/bundle/lib/"
  ldd dist/bin/ghm | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    case "$name" in
      libghm_*|libtorch*|libc10*|libgomp*|libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libstdc++*|libgcc_s*) ;;
      *) cp -L "$path" "$STAGE/bundle/lib/$name" ;;
    esac
  done
  say "  $(ls "$STAGE/bundle/lib" | tr '\n' ' ')"

  say "weights: tools/torch_eager_ghm.py weights --seed $SEED"
  W=$ROOT/.build/gpu-check-weights.pth
  "$PY" tools/torch_eager_ghm.py weights --out "$W" --seed "$SEED" --cls-bias-shift "$CLS_SHIFT" > "$STAGE/data/weights.json" \
    || die "weights failed"

  say "images and the training batch"
  IMGS=$ROOT/.build/bench
  mkdir -p "$IMGS"
  # (make_test_images.py needs OpenCV or Pillow: .venv-mmdet has them)
  [ -f "$IMGS/synthetic_640x480_s0.png" ] || "$MMPY" tools/make_test_images.py --out "$IMGS" --size 640x480 \
    --formats png,jpg >&2 || die "tools/make_test_images.py failed"
  [ -f "$IMGS/synthetic_1000x600_s0.png" ] || "$MMPY" tools/make_test_images.py --out "$IMGS" --size 1000x600 \
    --formats png >&2 || die "tools/make_test_images.py failed"
  "$MMPY" tools/bench_mmdet_train.py --make-batch "$STAGE/data/batch.safetensors" --image "$IMGS/synthetic_640x480_s0.png" \
    --image2 "$IMGS/synthetic_1000x600_s0.png" > /dev/null || die "the training batch failed"
  "$MMPY" tools/bench_mmdet_train.py --make-batch "$STAGE/data/batch_small.safetensors" --img-scale "${REF_SCALE[@]}" \
    --image "$IMGS/synthetic_640x480_s0.png" --image2 "$IMGS/synthetic_1000x600_s0.png" > /dev/null \
    || die "the small training batch failed"

  say "MMDetection's reference at ${REF_SCALE[0]}x${REF_SCALE[1]} on these weights"
  "$MMPY" tools/mmdet_reference.py --image "$IMGS/synthetic_640x480_s0.png" --img-scale "${REF_SCALE[@]}" --weights "$W" \
    --grad-keys "$GRAD_KEYS" --no-api-check --out-checkpoint "$STAGE/ref-weights.pth" \
    --out-reference "$STAGE/data/reference.safetensors" > "$STAGE/data/reference.log" 2>&1 \
    || { tail -20 "$STAGE/data/reference.log" >&2; die "tools/mmdet_reference.py failed"; }
  rm -f "$STAGE/ref-weights.pth"
  grep -E "decision margins|WARNING|SUMMARY" "$STAGE/data/reference.log" >&2

  say "the training fixture (tools/make_train_fixture.py)"
  "$MMPY" tools/make_train_fixture.py --out "$STAGE/data/fixture" > /dev/null || die "the fixture failed"

  if [ "$COMPRESS" = 1 ]; then
    say "compressing (xz)"
    (cd "$STAGE" && XZ_OPT="-T0 -6" tar -cJf bundle.tar.xz bundle && XZ_OPT="-T0 -6" tar -cJf data.tar.xz data) || die "tar failed"
    rm -rf "$DIR/bundle" "$DIR/data" "$DIR/bundle.tar.xz" "$DIR/data.tar.xz"
    mv "$STAGE/bundle.tar.xz" "$STAGE/data.tar.xz" "$DIR/"
  else
    rm -rf "$DIR/bundle" "$DIR/data" "$DIR/bundle.tar.xz" "$DIR/data.tar.xz"
    mv "$STAGE/bundle" "$STAGE/data" "$DIR/"
  fi
  say "ready: $DIR ($(du -sh "$DIR" | cut -f1)); on the GPU machine: bash tools/gpu_check.sh run --device cuda"
  exit 0
fi

# ------------------------------------------------------------------------------------------------ run
if [ -z "${PYTHON:-}" ]; then
  if [ "$DEVICE" = cpu ] && [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
OUTDIR=${OUTDIR:-$DIR/out}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG=$OUTDIR/gpu_check.log
: > "$LOG"
WORK=${GPU_CHECK_WORK:-$ROOT/.build/gpu-check-run}
rm -rf "$WORK" && mkdir -p "$WORK"
declare -a SUMMARY=()
FAILED=0

log() { echo "$*" | tee -a "$LOG" >&2; }
# step NAME command...: runs it with its output in the log, records PASS/FAIL
step() {
  local name=$1; shift
  log ""
  log "==== $name"
  log "\$ $*"
  local t0=$SECONDS
  "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" = 0 ]; then SUMMARY+=("PASS  $name ($((SECONDS - t0)) s)"); else SUMMARY+=("FAIL  $name (exit $rc)"); FAILED=1; fi
  return "$rc"
}
skip() { log ""; log "==== $1: SKIPPED ($2)"; SUMMARY+=("SKIP  $1 ($2)"); }
finish() {
  log ""
  log "==== summary ($DEVICE)"
  for s in "${SUMMARY[@]}"; do log "  $s"; done
  exit "$FAILED"
}

log "gpu_check run --device $DEVICE on $(hostname) at $(date -u +%FT%TZ); python $PYTHON"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG" >&2

# unpack
for part in bundle data; do
  if [ -f "$DIR/$part.tar.xz" ]; then tar -xJf "$DIR/$part.tar.xz" -C "$WORK" || die "cannot unpack $DIR/$part.tar.xz"
  elif [ -d "$DIR/$part" ]; then cp -r "$DIR/$part" "$WORK/"
  else die "$DIR has no $part.tar.xz: run 'tools/gpu_check.sh prepare' on the development machine first"; fi
done
GHM=$WORK/bundle/bin/ghm
DATA=$WORK/data

# 1. the torch shim against this machine's libtorch
TORCH_PREFIX=$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>>"$LOG") || die "$PYTHON cannot import torch"
TORCH_LIB=$("$PYTHON" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
log "torch $("$PYTHON" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())')"
GEN=(); command -v ninja > /dev/null && GEN=(-G Ninja)
build_shim() {
  cmake -S CShim -B "$WORK/shim" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DGHM_BUILD_VISION=OFF \
      -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" > "$WORK/cmake.log" 2>&1 || { cat "$WORK/cmake.log"; return 1; }
  grep -E "ghm_torch:" "$WORK/cmake.log"
  cmake --build "$WORK/shim" --parallel "$(nproc)" 2>&1 | tail -3 || return 1
  cp "$WORK/shim/lib/libghm_torch.so" "$WORK/bundle/lib/"
}
step "rebuild libghm_torch.so against $TORCH_PREFIX" build_shim || finish
export LD_LIBRARY_PATH=$WORK/bundle/lib:$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# 2. info
step "ghm info" "$GHM" info || finish
HAVE_OPENCV=0
"$GHM" info 2>/dev/null | grep -Eq '^OpenCV: +[0-9]' && HAVE_OPENCV=1

# 3. weights
SHA=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$DATA/weights.json")
CLS_SHIFT=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("cls_bias_shift", 0.0))' "$DATA/weights.json")
W=$WORK/weights.pth
step "weights from seed $SEED (SHA-256 $SHA)" "$PYTHON" tools/torch_eager_ghm.py weights --out "$W" --seed "$SEED" \
  --cls-bias-shift "$CLS_SHIFT" --check-sha256 "$SHA" || finish

# the autocast dtype of the mixed-precision steps: fp16 on CUDA; bf16 for a CPU dry run (CPU fp16 kernels are slow)
AMP=${GPU_CHECK_AMP:-fp16}
[ "$DEVICE" = cpu ] && AMP=${GPU_CHECK_AMP:-bf16}

# 4. parity
SCALE="${REF_SCALE[0]}x${REF_SCALE[1]}"
step "parity on $DEVICE against MMDetection (fp32, TF32 off)" "$GHM" parity --config "$CONFIG" --checkpoint "$W" \
  --reference "$DATA/reference.safetensors" --img-scale "$SCALE" --device "$DEVICE" --fast-paths
step "fast path fuse-conv-bn + channels-last + amp $AMP on $DEVICE" "$GHM" parity --config "$CONFIG" --checkpoint "$W" \
  --reference "$DATA/reference.safetensors" --img-scale "$SCALE" --device "$DEVICE" --fuse-conv-bn --channels-last --amp "$AMP"

# 5. detect latency (batch 1, 800x1344 pre-processed input; --quick: the 256x352 one) against PyTorch eager
BATCH=$DATA/batch.safetensors
if [ "$QUICK" = 1 ]; then RUNS=(--runs 1 --warmup 0); BATCH=$DATA/batch_small.safetensors; else RUNS=(--runs 20 --warmup 5); fi
step "bench detect fp32" "$GHM" bench detect --device "$DEVICE" --input "$BATCH" --checkpoint "$W" \
  --python "$PYTHON" "${RUNS[@]}"
step "bench detect fuse-conv-bn + channels-last + amp $AMP" "$GHM" bench detect --device "$DEVICE" \
  --input "$BATCH" --checkpoint "$W" --python "$PYTHON" --fuse-conv-bn --channels-last --amp "$AMP" "${RUNS[@]}"

# 6. training step against PyTorch eager
if [ "$QUICK" = 1 ]; then TRUNS=(--runs 1 --warmup 0 --min-runs 1); SMALL=1; BIG=2; else TRUNS=(--runs 10 --warmup 3); SMALL=2; BIG=8; fi
train_bench() { "$GHM" bench train --device "$DEVICE" --checkpoint "$W" --batch "$BATCH" \
  --baseline eager --python "$PYTHON" "${TRUNS[@]}" "$@"; }
step "bench train fp32, batch $SMALL" train_bench --batch-size "$SMALL"
step "bench train amp $AMP, batch $SMALL (memory)" train_bench --amp "$AMP" --batch-size "$SMALL"
step "bench train amp $AMP, batch $BIG (images/s)" train_bench --amp "$AMP" --batch-size "$BIG"

# 7. a short ghm train with fp16
if [ "$HAVE_OPENCV" = 1 ]; then
  FX=$DATA/fixture
  step "ghm train, fp16 loss_scale dynamic (autocast $AMP), 4 iterations on $DEVICE" "$GHM" train --config "$CONFIG" \
    --work-dir "$WORK/train" --load-from "$W" --seed 0 --device "$DEVICE" --stop-after 4 --no-validate --amp-dtype "$AMP" \
    --set "fp16={loss_scale: dynamic}" \
    --set "data.train.ann_file=$FX/train.json" --set "data.train.img_prefix=$FX/images/" \
    --set "data.train.classes=[person, airplane, boat]" \
    --set "data.val.ann_file=$FX/val.json" --set "data.val.img_prefix=$FX/images/" \
    --set model.bbox_head.num_classes=3 --set model.backbone.init_cfg=null \
    --set "train_pipeline.2.img_scale=[256, 192]" --set "test_pipeline.1.img_scale=[256, 192]" \
    --set data.samples_per_gpu=2 --set data.workers_per_gpu=1 --set log_config.interval=1
else
  skip "ghm train with fp16" "no OpenCV on this machine for image decoding; bench train above trained with fp16 on $DEVICE"
fi
finish
