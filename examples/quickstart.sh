#!/usr/bin/env bash
# The main job available today, once per task family: make a scene, let the scripted expert act in it,
# execute its actions in PyBullet, and report success. Every step leaves its files under OUT_DIR.
#   bash examples/quickstart.sh [OUT_DIR] [SEED]
set -euo pipefail
out=${1:-runs/quickstart}
seed=${2:-1000000}
for task in reach push pick_place stack; do
  vid2act scene --task "$task" --seed "$seed" --out "$out/$task/scene" --force >/dev/null
  vid2act oracle "$out/$task/scene" --out "$out/$task/actions.json" --force >/dev/null
  vid2act execute "$out/$task/actions.json" --scene "$out/$task/scene" --out "$out/$task/rollout" --force >/dev/null
done
echo "results: $out/*/rollout/result.json    videos: $out/*/rollout/rollout.mp4"
