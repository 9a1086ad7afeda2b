"""The planner's learning curve: for every snapshot a training run kept (EMA weights every --eval-every
steps), the validation PSNR it logged and the open-loop plan + IDM success on a fixed small seed set,
against the wall-clock minutes of training on this machine (2 cores).

    python benchmarks/planner_learning_curve.py runs/planner-rgbd [--seeds 5] [--every 2]"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from vid2act.idm.model import load_idm, predict_keyframe_actions
from vid2act.sim.env import Env, make_scene
from vid2act.sim.tasks import SEED_RANGES, TASKS
from vid2act.sim.world import ACTION_SPACE
from vid2act.video.pipeline import load_planner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--idm", default="default")
    parser.add_argument("--seeds", type=int, default=5, help="test seeds per family")
    parser.add_argument("--every", type=int, default=1, help="score every n-th snapshot (the last always)")
    parser.add_argument("--precision", default="fp32", help="the planner's UNet: fp32 or bf16")
    args = parser.parse_args()
    finished = args.run / "metrics.json"  # a run still going (or stopped) has its history in the checkpoint
    record = finished if finished.exists() else args.run / "checkpoint" / "state.json"
    history = {h["step"]: h for h in json.loads(record.read_text())["history"]}
    snapshots = sorted((args.run / "snapshots").iterdir())
    chosen = snapshots[args.every - 1::args.every]
    if snapshots[-1] not in chosen:
        chosen.append(snapshots[-1])
    idm, _ = load_idm(args.idm)
    low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])
    scenes = []
    for task in TASKS:
        for seed in range(SEED_RANGES["test"][0], SEED_RANGES["test"][0] + args.seeds):
            scene = make_scene(task, seed, "test")
            with Env(scene) as env:
                rgb, depth = env.world.render()
            scenes.append((scene, rgb, depth))
    print(f"{len(scenes)} test scenes ({args.seeds} per family), open loop, 10 DDIM steps, guidance 2\n")
    earlier = earlier_minutes(chosen[0])
    if earlier:
        print(f"this run started from another planner's weights (--init-from); its {earlier:.0f} training "
              "minutes are counted in\n")
    print("| step | training minutes (2 cores) | validation PSNR (dB) | plan + IDM success |")
    print("|---|---|---|---|")
    for folder in chosen:
        step = int(folder.name.split("-")[1])
        pipe = load_planner(str(folder), precision=args.precision)
        wins = 0
        for scene, rgb, depth in scenes:
            plan = pipe(rgb, scene["instruction"], depth=depth, generator=torch.Generator().manual_seed(scene["seed"]))
            actions = np.clip(predict_keyframe_actions(idm, plan.rgb[0], plan.depth[0], pipe.shape.stride), low, high)
            with Env(scene) as env:
                wins += env.run(actions).success
        h = history.get(step, {})
        print(f"| {step} | {earlier + h.get('train_seconds', float('nan')) / 60:.0f} | {h.get('psnr', float('nan')):.2f} | "
              f"{wins}/{len(scenes)} ({wins / len(scenes):.0%}) |", flush=True)


def earlier_minutes(snapshot: Path) -> float:
    """Training minutes of the planner this run was initialized from (--init-from), and of its own sources."""
    from vid2act.video.pipeline import resolve_planner
    planner = json.loads((snapshot / "planner.json").read_text())
    if "initialized_from" in planner:
        return planner["initialized_from"]["train_seconds"] / 60
    source = planner["training"].get("init_from")
    if not source:
        return 0.0
    before = json.loads((resolve_planner(source) / "planner.json").read_text())
    return (before.get("train_seconds", 0.0) + before.get("initialized_from", {}).get("train_seconds", 0.0)) / 60

if __name__ == "__main__":
    main()
