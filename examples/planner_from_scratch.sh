#!/usr/bin/env bash
# Train the video planner from scratch and evaluate it with the shipped IDM:
# collect demonstrations -> train video -> eval (open loop and replanning) on test seeds.
#   bash examples/planner_from_scratch.sh [OUT_DIR] [EPISODES] [STEPS]
# With the defaults (2000 episodes, 3200 steps at batch 8) this is the command that made
# models/planner-rgbd (about 50 minutes on 2 CPU cores; use --device cuda on a GPU).
set -euo pipefail
out=${1:-runs/planner-from-scratch}
episodes=${2:-2000}
steps=${3:-3200}
vid2act collect --tasks all --episodes "$episodes" --workers 2 --out "$out/data"
vid2act train video --data "$out/data" --out "$out/planner" --steps "$steps" --batch-size 8 --eval-every 400 --resume
vid2act eval --video "$out/planner" --idm default --episodes 10 --out "$out/eval-open-loop" --force
vid2act eval --video "$out/planner" --idm default --episodes 10 --replan-every 8 --out "$out/eval-replan-8" --force
