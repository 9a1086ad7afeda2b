"""How readable a planner's chunks are: the IDM reads the grasp point and gripper off each drawn keyframe, and
those are scored against what the demonstration did from the same frame. This is the number a plan's
success rests on (grasping needs ~1-2 cm), measured without the simulator's feedback loop. The loss is split
in two: the sketch's own error (its marks, as 3-D points, against the demonstration) and the drawing's (what
the IDM reads off the drawn keyframes against the sketch the UNet was asked to draw).

For the last --episodes episodes of a dataset (a planner holds out the last 5 % of its training data), a
chunk is drawn from the episode's first frame and from one third in (the grounding read off the first frame),
and per keyframe: the IDM's grasp point vs the demonstration's commanded one (cm), its gripper command vs
the demonstration's, and, for scale, how far the demonstration moved (the error of a plan that stood still).

    python benchmarks/plan_readability.py DATA PLANNER[:STEPS] [PLANNER[:STEPS] ...] [--episodes 40]"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from vid2act.data.dataset import Dataset, window
from vid2act.idm.model import keyframe_poses, load_idm
from vid2act.camera import Camera
from vid2act.video.pipeline import load_planner
from vid2act.video.sketch import to_world


def readability(pipe, idm, dataset: Dataset, episodes: range, steps: int) -> dict:
    stride, frames = pipe.shape.stride, pipe.shape.keyframes
    grip_right, error, still, moved, sketch_error, sketch_grip, drawn_vs_sketch = [], [], [], [], [], [], []
    for i in episodes:
        e = dataset.episode(i, ("rgb", "depth", "actions", "ee_target", "scene", "instruction"))
        scene = json.loads(e["scene"])
        camera, start_grip = Camera.from_json(scene["camera"]), scene["state"]["robot"]["gripper"]
        grips = np.concatenate([[start_grip], e["actions"][:, 3]])
        depth = e["depth"].astype(np.float32)
        prompt, length = str(e["instruction"]), len(e["rgb"])
        points = pipe.ground(e["rgb"][0], depth[0], prompt)
        for start in (0, length // 3):
            index = window(start, stride * np.arange(frames + 1), length)
            plan = pipe(e["rgb"][start], prompt, depth=depth[start], num_inference_steps=steps,
                        generator=torch.Generator().manual_seed(i), points=points)
            read, read_grip = keyframe_poses(idm, plan.rgb[0], plan.depth[0] if plan.depth is not None else None)
            truth = e["ee_target"][index]
            grip_right.append((read_grip[1:] == grips[index][1:]).mean())
            error.append(np.linalg.norm(read[1:] - truth[1:], axis=1).mean())
            still.append(np.linalg.norm(truth[1:] - truth[0], axis=1).mean())
            moved.append(np.linalg.norm(read[1:] - read[0], axis=1).mean())
            sketched = to_world(plan.marks[0], camera, pipe.shape.image_size, pipe.shape.plan_size)
            sketch_error.append(np.linalg.norm(sketched - truth[1:], axis=1).mean())
            sketch_grip.append((plan.closed[0] == (grips[index][1:] > 0.5)).mean())
            drawn_vs_sketch.append(np.linalg.norm(read[1:] - sketched, axis=1).mean())
    return {"gripper_accuracy": float(np.mean(grip_right)), "pose_error_cm": 100 * float(np.mean(error)),
            "standing_still_cm": 100 * float(np.mean(still)), "plan_moves_cm": 100 * float(np.mean(moved)),
            "sketch_error_cm": 100 * float(np.mean(sketch_error)), "sketch_gripper": float(np.mean(sketch_grip)),
            "drawn_vs_sketch_cm": 100 * float(np.mean(drawn_vs_sketch)), "chunks": len(error)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("planners", nargs="+", help="planner folder or shipped name, optionally :STEPS (default 4)")
    parser.add_argument("--idm", default="default")
    parser.add_argument("--episodes", type=int, default=40)
    args = parser.parse_args()
    dataset = Dataset(args.data)
    idm, _ = load_idm(args.idm)
    episodes = range(len(dataset) - args.episodes, len(dataset))
    print(f"{args.episodes} held-out episodes of {args.data}, 2 chunks each, read by IDM {args.idm}\n")
    print("| planner | steps | gripper read right | grasp point error (cm) | a still plan's error (cm) | "
          "drawn motion (cm) | sketch: error (cm), gripper right | drawn vs sketch (cm) |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.planners:
        reference, _, steps = spec.partition(":")
        r = readability(load_planner(reference), idm, dataset, episodes, int(steps or 4))
        print(f"| {reference} | {steps or 4} | {r['gripper_accuracy']:.0%} | {r['pose_error_cm']:.1f} | "
              f"{r['standing_still_cm']:.1f} | {r['plan_moves_cm']:.1f} | {r['sketch_error_cm']:.1f}, "
              f"{r['sketch_gripper']:.0%} | {r['drawn_vs_sketch_cm']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
