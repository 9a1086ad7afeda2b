#!/usr/bin/env bash
# Train the video planner from scratch and evaluate it with the shipped IDM:
# collect demonstrations -> train video -> eval (open loop and replanning) on test seeds.
#   MIXED=bf16 bash examples/planner_from_scratch.sh [OUT_DIR] [EPISODES] [STEPS]
# MIXED=bf16 (bf16 autocast) pays on CPUs with AMX or AVX512-BF16 and on GPUs; leave it unset elsewhere.
# With the defaults (2000 episodes, 8000 steps at batch 16, plans drawn at half resolution) and MIXED=bf16
# this takes about an hour on 2 CPU cores with AMX; models/planner-rgbd was trained in two stages, see its
# model card. Kill it any time and run it again: collection and training resume.
set -euo pipefail
out=${1:-runs/planner-from-scratch}
episodes=${2:-2000}
steps=${3:-8000}
mixed=${MIXED:-no}
vid2act collect --tasks all --episodes "$episodes" --workers 2 --out "$out/data"
vid2act train video --data "$out/data" --out "$out/planner" --steps "$steps" --batch-size 16 --eval-every 1000 \
  --mixed-precision "$mixed" --resume
vid2act eval --video "$out/planner" --idm default --episodes 10 --out "$out/eval-open-loop" --force
vid2act eval --video "$out/planner" --idm default --episodes 10 --replan-every 8 --out "$out/eval-replan-8" --force
