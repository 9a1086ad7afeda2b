"""Where plans fail, per family: open-loop plan + IDM success beside what would succeed if one part of the
plan were right, on test scenes and (with --data) on scenes the planner was trained on.

    python benchmarks/planner_diagnosis.py --model default --scenes 10 --samples 4 [--data data/train-2000]

Columns: `plan` is the first of --samples plans; `best of K` counts a scene if any of its K plans succeeds
(the most that choosing among samples could give); the two swaps execute the plan's grasp points with the
gripper commands read off the oracle's keyframes, and the oracle's grasp points with the plan's gripper
commands (both read by the same IDM), so they tell whether the trajectory or the gripper timing fails;
grasp point error is split into the approach (keyframes 1-5) and the rest; the last column is the first
keyframe where the gripper reads closed, plan against oracle (mean over scenes). Training scenes are the
dataset's first episodes of each family, drawn from their recorded first frame and instruction."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from vid2act.data.dataset import Dataset
from vid2act.idm.model import expand_keyframes, keyframe_poses, load_idm
from vid2act.sim.env import Env, make_scene
from vid2act.sim.tasks import SEED_RANGES, TASKS
from vid2act.sim.world import ACTION_SPACE
from vid2act.training import held_out_split
from vid2act.video.pipeline import load_planner

APPROACH = 5  # keyframes counted as the approach to the first target


def oracle_scenes(task: str, count: int, first_seed: int):
    """(seed, scene, and the oracle's rollout from it: every frame's rgb, depth and commanded grasp point)."""
    for seed in range(first_seed, first_seed + count):
        scene = make_scene(task, seed, "test")
        with Env(scene) as env:
            oracle = env.run_oracle()
        yield seed, scene, oracle.rgb, oracle.depth, oracle.ee_target


def training_scenes(data: Path, task: str, count: int, val_fraction: float):
    """The same from a dataset's recorded episodes, skipping those its training held out for validation."""
    dataset = Dataset(str(data))
    found = 0
    for i in held_out_split(dataset, val_fraction, str(data))[0]:
        if str(dataset.episode(i, ("task",))["task"]) != task:  # without decoding the other families' frames
            continue
        episode = dataset.episode(i, ("scene", "rgb", "depth", "ee_target"))
        yield i, json.loads(str(episode["scene"])), episode["rgb"], episode["depth"].astype(np.float32), \
            episode["ee_target"]
        found += 1
        if found == count:
            return


def first_closed(grips: np.ndarray) -> float:
    closed = np.flatnonzero(grips > 0.5)
    return float(closed[0]) if len(closed) else float(len(grips))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--idm", default="default")
    parser.add_argument("--scenes", type=int, default=10, help="scenes per family and source")
    parser.add_argument("--samples", type=int, default=4, help="plans per scene (K)")
    parser.add_argument("--first-seed", type=int, default=SEED_RANGES["test"][0] + 500_000,
                        help="test seeds from here (default: not the ones planner_success.py reports)")
    parser.add_argument("--data", type=Path, help="also diagnose scenes of this (training) dataset")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--precision", default="bf16", help="the planner's UNet: fp32 or bf16")
    args = parser.parse_args()
    pipe = load_planner(args.model, precision=args.precision)
    idm, _ = load_idm(args.idm)
    stride, frames = pipe.shape.stride, pipe.shape.frames
    low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])

    def succeeds(scene: dict, points: np.ndarray, grips: np.ndarray) -> bool:
        actions = np.clip(expand_keyframes(points, grips, stride)[0], low, high)
        with Env(scene) as env:
            return bool(env.run(actions).success)

    print(f"planner {args.model}, IDM {args.idm}, {args.scenes} scenes per cell, K = {args.samples}\n")
    print("| family | scenes | plan | best of K | plan points + oracle gripper | oracle points + plan gripper | "
          f"grasp point error, keyframes 1-{APPROACH} / rest (mm) | gripper closes at keyframe (plan / oracle) |")
    print("|---|---|---|---|---|---|---|---|")
    sources = [("test", lambda task: oracle_scenes(task, args.scenes, args.first_seed))]
    if args.data:
        val_fraction = pipe.planner.get("training", {}).get("val_fraction", 0.05)
        sources.append(("training", lambda task: training_scenes(args.data, task, args.scenes, val_fraction)))
    for task in args.tasks:
        for source, scenes in sources:
            counts, approach, rest, closes = np.zeros(4, int), [], [], []
            for seed, scene, rgb, depth, ee_target in scenes(task):
                keys = np.minimum(np.arange(frames + 1) * stride, len(rgb) - 1)
                plans = pipe(rgb[0], scene["instruction"], depth=depth[0], num_videos_per_prompt=args.samples,
                             generator=torch.Generator().manual_seed(seed))
                oracle_points, oracle_grips = keyframe_poses(idm, rgb[keys], depth[keys])
                read = [keyframe_poses(idm, plans.rgb[k], plans.depth[k]) for k in range(args.samples)]
                points, grips = read[0]
                counts += [succeeds(scene, points, grips),
                           any([succeeds(scene, *r) for r in read]),
                           succeeds(scene, points, oracle_grips), succeeds(scene, oracle_points, grips)]
                error = np.linalg.norm(points - ee_target[keys], axis=1) * 1000
                approach.append(error[1:APPROACH + 1].mean())
                rest.append(error[APPROACH + 1:].mean())
                closes.append((first_closed(grips), first_closed(oracle_grips)))
            n = len(approach)
            plan, best, their_gripper, their_points = (f"{c}/{n}" for c in counts)
            print(f"| {task} | {source} | **{plan}** | {best} | {their_gripper} | {their_points} | "
                  f"{np.mean(approach):.0f} / {np.mean(rest):.0f} | "
                  f"{np.mean([c[0] for c in closes]):.1f} / {np.mean([c[1] for c in closes]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
