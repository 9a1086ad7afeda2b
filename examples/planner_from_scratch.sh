#!/usr/bin/env bash
# Train the video planner from scratch, teach the shipped camera IDM to read its drawings, teach the UNet to
# draw what that reader reads back right, and evaluate:
# collect demonstrations -> train video (grounding, sketch, then the chunk UNet) -> train idm --planner ->
# train video --reader -> eval (closed loop, the default, and open loop) on test seeds.
#   MIXED=bf16 bash examples/planner_from_scratch.sh [OUT_DIR] [EPISODES] [STEPS]
# MIXED=bf16 (bf16 autocast) pays on CPUs with AMX or AVX512-BF16 and on GPUs; leave it unset elsewhere
# (emulated, it is many times slower). With the defaults (2000 episodes, 2500 steps at batch 32) this is
# the first of the six runs models/planner-rgbd was trained with (its model card has the others; that
# first run predates --moving-weight and trained with 0): about an hour on 2 CPU cores, then 10 minutes for
# the reader and 10 for reading back. Kill it any time and run it again: collection and
# training resume.
set -euo pipefail
out=${1:-runs/planner-from-scratch}
episodes=${2:-2000}
steps=${3:-2500}
mixed=${MIXED:-no}
vid2act collect --tasks all --episodes "$episodes" --workers 2 --out "$out/data"
vid2act train video --data "$out/data" --out "$out/planner" --steps "$steps" --eval-every 500 \
  --mixed-precision "$mixed" --resume
# the shipped plan reader (--idm default) learnt the shipped planner's drawings, not this one's
vid2act train idm --data "$out/data" --out "$out/reader" --init-from idm-rgbd --planner "$out/planner" \
  --steps 3000 --lr 3e-4 --eval-every 1000 --resume
# the UNet, from its own weights and with its own grounding and sketch, learns to draw what the reader reads
vid2act train video --data "$out/data" --out "$out/planner-read" --init-from "$out/planner" --reader "$out/reader" \
  --grounding-from "$out/planner" --sketch-from "$out/planner" --steps 500 --batch-size 16 --lr 2e-4 --warmup 0 --ema-decay 0.99 --eval-every 250 --mixed-precision "$mixed" \
  --resume
vid2act eval --planner "$out/planner-read" --idm "$out/reader" --episodes 10 --out "$out/eval-closed-loop" --force
vid2act eval --planner "$out/planner-read" --idm "$out/reader" --episodes 10 --replan-every 0 \
  --out "$out/eval-open-loop" --force
