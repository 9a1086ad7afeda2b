#!/usr/bin/env bash
# Translate a video that another tool made: any mp4/gif (or a folder of PNGs) of a scene goes through the
# IDM to actions, which execute in PyBullet. Here the "other tool" is imageio re-encoding an oracle rollout
# at twice the size, as a renderer or a video model of your own would hand it over: RGB only, another
# resolution, lossy compression. A video carries no depth and the shipped IDM is RGB-D, so this trains an
# RGB IDM first when IDM names no folder (about 5 minutes on 2 cores; kept for later runs).
#   bash examples/translate_other_video.sh [TASK] [SEED] [OUT_DIR]      (IDM=runs/idm-rgb by default)
set -euo pipefail
task=${1:-pick_place}
seed=${2:-1000005}
out=${3:-runs/other-video}
idm=${IDM:-runs/idm-rgb}
if [ ! -f "$idm/model.safetensors" ]; then
  vid2act collect --tasks all --episodes 800 --workers 2 --out runs/data-800 >/dev/null
  vid2act train idm --data runs/data-800 --out "$idm" --modalities rgb --steps 4000 --resume >/dev/null
fi
rm -rf "$out" && mkdir -p "$out"
scene=$(vid2act scene --task "$task" --seed "$seed" --out "$out/scene")
vid2act oracle "$scene" --out "$out/oracle.json" >/dev/null
vid2act execute "$out/oracle.json" --scene "$scene" --out "$out/oracle-rollout" >/dev/null
# the other tool: every frame at 96x128, H.264 at 10 fps
python3 - "$out/oracle-rollout/frames.npz" "$out/other.mp4" <<'PY'
import sys, numpy as np, imageio.v3 as iio
frames = np.load(sys.argv[1])["rgb"].repeat(2, axis=1).repeat(2, axis=2)
iio.imwrite(sys.argv[2], frames, fps=10)
PY
vid2act translate "$out/other.mp4" --idm "$idm" --resize --out "$out/actions.json" >/dev/null
vid2act execute "$out/actions.json" --scene "$scene" --out "$out/rollout" \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print(f"success: {r[\"success\"]} in {r[\"steps\"]} steps")' >&2
echo "$out"
