"""The IDM ceiling: scene -> oracle -> rollout frames -> IDM -> execute, per family, on test seeds and on the
held-out combinations; success beside the oracle's, for one or more IDMs (the RGB / RGB-D and head ablation).

    python benchmarks/idm_ceiling.py --idm default [--idm runs/idm-rgb ...] [--seeds 100]

The oracle rollout of each scene is computed once and read by every IDM."""
from __future__ import annotations

import argparse
import time

import numpy as np

from vid2act.idm.model import load_idm, predict_actions
from vid2act.shipped import resolve
from vid2act.sim.env import SceneWorld, make_scene
from vid2act.sim.tasks import TASKS
from vid2act.spec import SEED_RANGES
from vid2act.spec import ACTION_SPACE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idm", action="append", required=True, help="IDM folder or shipped name; repeat")
    parser.add_argument("--seeds", type=int, default=100, help="seeds per family and split")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--splits", nargs="*", default=["test", "heldout"])
    args = parser.parse_args()
    models = [(reference, *load_idm(str(resolve(reference, "idm")))) for reference in args.idm]
    low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])
    labels = [f"{m.architecture.head}/{m.architecture.modalities} ({ref})" for ref, m, _ in models]
    print("| family | split | oracle | " + " | ".join(f"{label}: success (÷ oracle)" for label in labels) + " |")
    print("|---|---|---|" + "---|" * len(models))
    totals = np.zeros(len(models) + 1)
    errors = [[] for _ in models]  # (predicted, oracle) actions per model, on every evaluated scene
    started = time.perf_counter()
    for task in args.tasks:
        for split in args.splits:
            wins = np.zeros(len(models) + 1)
            first = SEED_RANGES["test"][0]
            for seed in range(first, first + args.seeds):
                scene = make_scene(task, seed, split)
                with SceneWorld(scene) as env:
                    oracle = env.run_oracle()
                wins[0] += oracle.success
                for k, (_, model, _) in enumerate(models):
                    depth = oracle.depth if model.architecture.modalities == "rgbd" else None
                    actions = np.clip(predict_actions(model, oracle.rgb, depth), low, high)
                    errors[k].append((actions, oracle.actions))
                    with SceneWorld(scene) as env:
                        wins[k + 1] += env.run(actions).success
            totals += wins
            n = args.seeds
            cells = " | ".join(f"{w / n:.0%} ({w / max(wins[0], 1):.0%})" for w in wins[1:])
            print(f"| {task} | {split} | {wins[0] / n:.0%} | {cells} |", flush=True)
    n = args.seeds * len(args.tasks) * len(args.splits)
    cells = " | ".join(f"{w / n:.0%} ({w / max(totals[0], 1):.0%})" for w in totals[1:])
    print(f"| all | all | {totals[0] / n:.0%} | {cells} |")
    print("\nAction error on the same rollouts (normalized MSE: per-dimension MSE / variance of the oracle's moves):\n")
    print("| IDM | nMSE dx | nMSE dy | nMSE dz | gripper accuracy | RMSE dx, dy, dz (mm) |")
    print("|---|---|---|---|---|---|")
    for label, pairs in zip(labels, errors):
        predicted = np.concatenate([p for p, _ in pairs])
        true = np.concatenate([t for _, t in pairs]).astype(np.float64)
        nmse = ((predicted[:, :3] - true[:, :3]) ** 2).mean(0) / true[:, :3].var(0)
        rmse = np.sqrt(((predicted[:, :3] - true[:, :3]) ** 2).mean(0)) * 1000
        accuracy = (predicted[:, 3] == true[:, 3]).mean()
        print(f"| {label} | {nmse[0]:.3f} | {nmse[1]:.3f} | {nmse[2]:.3f} | {accuracy:.4f} | "
              f"{rmse[0]:.1f}, {rmse[1]:.1f}, {rmse[2]:.1f} |")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
