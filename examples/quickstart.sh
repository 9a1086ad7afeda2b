#!/usr/bin/env bash
# The pipeline stage by stage with the shipped models, once per task family: a scene, a plan drawn from its
# start image and instruction, actions read off the plan, executed in PyBullet, success reported.
# Every stage leaves its files under OUT_DIR. (`vid2act demo` does the same in one process, replanning.)
#   bash examples/quickstart.sh [OUT_DIR] [SEED]
set -euo pipefail
out=${1:-runs/quickstart}
seed=${2:-1000000}
for task in reach push pick_place stack; do
  d="$out/$task"
  vid2act scene --task "$task" --seed "$seed" --out "$d/scene" --force >/dev/null
  vid2act generate --planner default --scene "$d/scene" --out "$d/plan" --force >/dev/null
  vid2act translate "$d/plan" --idm default --out "$d/actions.json" --force >/dev/null
  vid2act execute "$d/actions.json" --scene "$d/scene" --out "$d/rollout" --force \
    | python3 -c 'import json, sys; r = json.load(sys.stdin); print(f"{r[\"task\"]:<11} success={r[\"success\"]}  {r[\"instruction\"]}")'
done
echo "plans: $out/*/plan/plan.mp4    rollouts: $out/*/rollout/rollout.mp4"
