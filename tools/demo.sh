#!/usr/bin/env bash
# The main job (`make demo`, after the build): the whole promise in one command.
#   1. MMDetection 2.16.0 (in .venv-mmdet) writes a checkpoint in its published legacy format, and reference
#      outputs (head outputs, detections, training losses over two iterations, GHM state, gradients) for a
#      synthetic test image at 1333x800;
#   2. `ghm parity` checks the Swift model against every reference tensor;
#   3. `ghm detect` detects objects in the image with that checkpoint, `ghm infer` draws them.
# Outputs go to demo/ (ignored by git).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
ghm="$root/dist/bin/ghm"
py="$root/.venv-mmdet/bin/python"
out="$root/demo"
mkdir -p "$out"
config=configs/retinanet_ghm_r50_fpn_1x_coco.yml

echo "== ghm info"
"$ghm" info
echo
echo "== test image and MMDetection 2.16.0 reference (tools/make_test_images.py, tools/mmdet_reference.py)"
img="$out/synthetic_640x480_s0.png"
[ -f "$img" ] || "$py" tools/make_test_images.py --out "$out" --size 640x480 >/dev/null
stamp="$out/reference.stamp"
want="$(sha256sum tools/mmdet_reference.py | cut -c1-64) $(sha256sum "$img" | cut -c1-64)"
if [ ! -f "$out/ghm_mmdet.pth" ] || [ ! -f "$out/reference.safetensors" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "   generating (about a minute or two on 2 cores) ..."
  "$py" tools/mmdet_reference.py --image "$img" --out-checkpoint "$out/ghm_mmdet.pth" \
      --out-reference "$out/reference.safetensors" > "$out/reference.log" 2>&1 \
    || { echo "mmdet_reference.py failed; see $out/reference.log" >&2; tail -20 "$out/reference.log" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
echo "   checkpoint: $out/ghm_mmdet.pth (legacy .pth, as MMDetection publishes)"
echo "   reference:  $out/reference.safetensors"
echo
echo "== ghm parity"
"$ghm" parity --config "$config" --checkpoint "$out/ghm_mmdet.pth" --reference "$out/reference.safetensors" \
    --image "$img" | tee "$out/parity.txt"
echo
echo "== ghm detect"
"$ghm" detect --config "$config" --checkpoint "$out/ghm_mmdet.pth" "$img" --score-thr 0.3 | tee "$out/detections.txt"
"$ghm" detect --config "$config" --checkpoint "$out/ghm_mmdet.pth" "$img" --json > "$out/detections.json"
echo
echo "== ghm infer (results.json and a drawn image)"
"$ghm" infer --config "$config" --checkpoint "$out/ghm_mmdet.pth" "$img" --out "$out/infer" --score-thr 0.3
echo
echo "Outputs in $out/:"
echo "  parity.txt        every checked tensor with its difference and tolerance"
echo "  detections.txt    detections with score >= 0.3; detections.json: all of them"
echo "  infer/            results.json (COCO format + file names), summary.json, vis/ (the drawn image)"
echo "  ghm_mmdet.pth, reference.safetensors, $(basename "$img")"
