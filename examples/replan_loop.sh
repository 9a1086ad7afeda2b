#!/usr/bin/env bash
# Closed-loop replanning in plain bash: plan from what the camera sees, execute K actions, write the state
# reached as a new scene, plan again from its real frame, until the planner's plan holds still or a
# step budget runs out. `vid2act eval --replan-every K` does the same inside one process, with chunks
# (here each round draws a whole-task plan and runs its first K actions, the instruction is grounded anew in
# each round's frame, and translate reads the grasp point the plan starts from off its first frame; eval
# grounds once, in the first frame, and starts each chunk from the commanded grasp point the robot reports).
#   bash examples/replan_loop.sh [TASK] [SEED] [K] [OUT_DIR]
set -euo pipefail
task=${1:-pick_place}
seed=${2:-1000011}
k=${3:-8}
out=${4:-runs/replan-loop}
budget=120
rm -rf "$out"
scene=$(vid2act scene --task "$task" --seed "$seed" --out "$out/scene-00")
for round in $(seq 0 20); do
  n=$(printf '%02d' "$round"); next=$(printf '%02d' $((round + 1)))
  vid2act generate --planner default --scene "$scene" --seed "$round" --out "$out/plan-$n" >/dev/null
  vid2act translate "$out/plan-$n" --idm default --out "$out/actions-$n.json" 2>/dev/null >/dev/null
  # a plan that holds still (eval's rule: the grasp point stays within 1 cm, the gripper unchanged) says
  # the task is done; translate records the verdict
  still=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["source"]["holds_still"])' "$out/actions-$n.json")
  result=$(vid2act execute "$out/actions-$n.json" --scene "$scene" --max-steps "$k" \
             --out "$out/rollout-$n" --next-scene "$out/scene-$next")
  steps=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["steps_since_start"])' <<<"$result")
  success=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["success"])' <<<"$result")
  echo "round $n: plan holds still: $still; $steps actions so far; success now: $success" >&2
  scene="$out/scene-$next"
  if [ "$round" -gt 0 ] && [ "$still" = True ]; then break; fi
  if [ "$steps" -ge "$budget" ]; then break; fi
done
echo "$out"
