#!/usr/bin/env bash
# Stages chain through stdin and stdout: the expert's actions go straight into execute, and the result
# JSON comes out for jq or python. Any program that writes the actions format can take the oracle's place.
#   bash examples/pipe.sh [TASK] [SEED]
set -euo pipefail
task=${1:-stack}
seed=${2:-1000042}
work=$(mktemp -d)
scene=$(vid2act scene --task "$task" --seed "$seed" --out "$work/scene")
vid2act oracle "$scene" --out - \
  | vid2act execute - --scene "$scene" --out "$work/rollout" \
  | python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["success"], r["metrics"])'
echo "files in $work"
