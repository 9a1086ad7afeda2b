#!/usr/bin/env bash
# Train an inverse-dynamics model from scratch and check it on a scene it never saw:
# collect demonstrations -> train idm -> oracle rollout -> translate its frames -> execute -> success?
#   bash examples/idm_from_scratch.sh [OUT_DIR] [EPISODES] [STEPS]
# With the defaults (2000 episodes, 20000 steps) this is the command that made models/idm-rgbd.
set -euo pipefail
out=${1:-runs/idm-from-scratch}
episodes=${2:-2000}
steps=${3:-20000}
vid2act collect --tasks all --episodes "$episodes" --workers 2 --out "$out/data"
vid2act train idm --data "$out/data" --out "$out/idm" --modalities rgbd --head pose --steps "$steps" --resume
scene=$(vid2act scene --task stack --seed 1000007 --out "$out/scene" --force)
vid2act oracle "$scene" --out - | vid2act execute - --scene "$scene" --out "$out/oracle" --force >/dev/null
vid2act translate "$out/oracle" --idm "$out/idm" --out "$out/idm-actions.json" --force
vid2act execute "$out/idm-actions.json" --scene "$scene" --out "$out/idm-rollout" --force \
  | python3 -c 'import json, sys; print("IDM success:", json.load(sys.stdin)["success"])'
