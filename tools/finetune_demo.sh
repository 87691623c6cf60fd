#!/usr/bin/env bash
# Fine-tuning on real photographs (`make demo-finetune`, also the second half of `make demo`): aerial RGB images of
# NEON sites with hand-annotated tree crowns, shipped in the MIT-licensed `deepforest` wheel on PyPI.
#   1. fetch deepforest==2.1.0 into a cache, take its Pascal VOC XML files and images
#   2. ghm dataset convert (VOC -> COCO; Alive/Dead -> Tree), stats, tile (400x400, overlap 0.25), split by source
#      image: 2019_YELL_2_541000_4977000_image_crop.png (1249x1035, 279 trees) is held out for validation
#   3. ghm train: RetinaNet-GHM, one class, from the starting weights below; COCO AP on the held-out tiles before
#      the first iteration (evaluation.start=0) and after every epoch
#   4. ghm eval of the final checkpoint, ghm infer --tile on the held-out full image (drawn), ghm plot-log
# Starting weights: GHM_DEMO_CHECKPOINT=path (e.g. MMDetection's retinanet_ghm_r50_fpn_1x_coco_20200130-a437fda3.pth)
# or, when torchvision's ResNet-50 file is in $TORCH_HOME's cache, that backbone; else a random init.
# GHM_DEMO_EPOCHS (default 5) and GHM_DEMO_LR (default 0.01) change the schedule. Outputs: demo/trees/.
# About 10 minutes on 2 CPU cores (64 training tiles, 32 iterations of 2 tiles per epoch, 16 held-out tiles).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
ghm="$root/dist/bin/ghm"
py="$root/.venv/bin/python"
out="$root/demo/trees"
cache="${GHM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ghm}/deepforest-2.1.0"
epochs="${GHM_DEMO_EPOCHS:-5}"
lr="${GHM_DEMO_LR:-0.01}"
held_out=2019_YELL_2_541000_4977000_image_crop.png
config=configs/retinanet_ghm_r50_fpn_1x_coco.yml
start_time=$SECONDS

echo "== 1. data: deepforest 2.1.0 (MIT), NEON aerial images with tree crowns in Pascal VOC XML"
if [ ! -f "$cache/data/.complete" ]; then
  mkdir -p "$cache"
  ls "$cache"/deepforest-2.1.0-*.whl >/dev/null 2>&1 \
    || "$root/.venv/bin/pip" download --no-deps --quiet deepforest==2.1.0 -d "$cache"
  rm -rf "$cache/data.tmp"
  "$py" - "$cache" <<'EOF'
import glob, os, sys, zipfile
cache = sys.argv[1]
wheel = sorted(glob.glob(os.path.join(cache, "deepforest-2.1.0-*.whl")))[0]
dest = os.path.join(cache, "data.tmp")
os.makedirs(dest)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("deepforest/data/") and base.endswith((".xml", ".png", ".tif")) or base == "LICENSE":
            with open(os.path.join(dest, base), "wb") as f:
                f.write(z.read(name))
open(os.path.join(dest, ".complete"), "w").close()
EOF
  rm -rf "$cache/data" && mv "$cache/data.tmp" "$cache/data"
fi
data="$cache/data"
echo "   $data: $(ls "$data"/*.xml | wc -l) annotation files"
mkdir -p "$out"

echo
echo "== 2. ghm dataset: convert, stats, tile, split (held out: $held_out)"
"$ghm" dataset convert --voc "$data" --class-map Alive=Tree,Dead=Tree --out "$out/all.json"
"$ghm" dataset stats --ann "$out/all.json"
rm -rf "$out/tiles"
"$ghm" dataset tile --ann "$out/all.json" --images "$data" --size 400x400 --overlap 0.25 --min-visible 0.5 --out "$out/tiles"
"$ghm" dataset split --ann "$out/tiles/annotations.json" --val "$held_out" --out-train "$out/train.json" --out-val "$out/val.json"

echo
echo "== 3. ghm train ($epochs epochs, batch 2, lr $lr, 400x400 tiles, COCO AP on the held-out tiles)"
start_args=()
torch_home="${TORCH_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/torch}"
if [ -n "${GHM_DEMO_CHECKPOINT:-}" ]; then
  start_args=(--load-from "$GHM_DEMO_CHECKPOINT")
  start_text="your checkpoint $GHM_DEMO_CHECKPOINT (load_from: every tensor of matching shape; the 1-class
   classifier starts fresh). AP before = that model with a new classifier; AP after = a real fine-tune."
elif [ -f "$torch_home/hub/checkpoints/resnet50-0676ba61.pth" ]; then
  start_text="torchvision's ImageNet ResNet-50 ($torch_home/hub/checkpoints/resnet50-0676ba61.pth) as the
   backbone, FPN and head freshly initialised. A few CPU minutes train far less than a fine-tune of a COCO detector."
else
  start_args=(--set model.backbone.init_cfg=null)
  start_text="a RANDOM init (no checkpoint given, no torchvision ResNet-50 in $torch_home/hub/checkpoints).
   The numbers show the pipeline working end to end, not what fine-tuning gives: a detector trained from
   scratch for a few CPU minutes finds few trees. For a real fine-tune run
     GHM_DEMO_CHECKPOINT=retinanet_ghm_r50_fpn_1x_coco_20200130-a437fda3.pth make demo-finetune
   (MMDetection's official COCO checkpoint), or put torchvision's resnet50-0676ba61.pth into that folder."
fi
echo "   starting weights: $start_text"
rm -rf "$out/work"
train_start=$SECONDS
"$ghm" train --config "$config" --work-dir "$out/work" \
  --set data.train.ann_file="$out/train.json" --set data.train.img_prefix="$out/tiles/images/" \
  --set data.val.ann_file="$out/val.json" --set data.val.img_prefix="$out/tiles/images/" \
  --set "data.train.classes=[Tree]" --set "data.val.classes=[Tree]" --set "data.test.classes=[Tree]" \
  --set model.bbox_head.num_classes=1 \
  --set "train_pipeline.2.img_scale=[400, 400]" --set "test_pipeline.1.img_scale=[400, 400]" \
  --set optimizer.lr="$lr" --set lr_config.warmup_iters=30 --set "lr_config.step=[$epochs]" \
  --set runner.max_epochs="$epochs" --set checkpoint_config.interval="$epochs" \
  --set evaluation.start=0 --set log_config.interval=5 \
  "${start_args[@]}" --seed 0 --threads 2 \
  | grep --line-buffered -E "^(Epoch|Saving|training finished|load |  size|  unexpected|  missing|note)" || true
train_seconds=$((SECONDS - train_start))
ckpt="$out/work/epoch_$epochs.pth"
[ -f "$ckpt" ] || { echo "training did not leave $ckpt; see $out/work/*.log" >&2; exit 1; }
log_json="$(ls -t "$out"/work/*.log.json | head -1)"

echo
echo "== 4. ghm eval (final checkpoint, held-out tiles), ghm infer --tile (held-out full image), ghm plot-log"
"$ghm" eval --config "$config" --checkpoint "$ckpt" --set model.bbox_head.num_classes=1 --img-scale 400x400 \
  --ann "$out/val.json" --images "$out/tiles/images" --out "$out/eval" | grep -E "Average Precision|bbox_mAP_copypaste"
"$ghm" infer --config "$config" --checkpoint "$ckpt" --set model.bbox_head.num_classes=1 --img-scale 400x400 \
  --set model.test_cfg.max_per_img=300 --tile 400x400 --overlap 0.25 --score-thr 0.3 "$data/$held_out" --out "$out/infer"
"$ghm" plot-log "$log_json" --out "$out/curves.png" --title "trees"

"$py" - "$log_json" "$out/metrics.txt" "$train_seconds" "$((SECONDS - start_time))" "$start_text" <<'EOF'
import json, sys
log, dest, train_s, total_s, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
val = [json.loads(l) for l in open(log) if '"mode": "val"' in l]
first, last = val[0], val[-1]
lines = [f"starting weights: {' '.join(start.split())}",
         f"held-out tiles: COCO AP  {first['bbox_mAP']:.3f} (epoch {first['epoch']}) -> {last['bbox_mAP']:.3f} (epoch {last['epoch']})",
         f"                AP50     {first['bbox_mAP_50']:.3f} -> {last['bbox_mAP_50']:.3f}",
         f"training: {train_s // 60} min {train_s % 60} s; whole demo: {total_s // 60} min {total_s % 60} s"]
open(dest, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo
echo "Outputs in $out/:"
echo "  all.json, tiles/ (annotations.json + images), train.json, val.json   the converted and tiled data"
echo "  work/       the training run: log, log.json, epoch_$epochs.pth (meta.CLASSES = [Tree])"
echo "  eval/       results.json, metrics.json of the final checkpoint on the held-out tiles"
echo "  infer/vis/  $held_out with the detected crowns drawn (tiled inference)"
echo "  curves.png  loss and AP curves from the log; metrics.txt  the numbers above"
