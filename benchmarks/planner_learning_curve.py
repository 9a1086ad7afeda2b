"""The planner's learning curve: for every snapshot a training run kept (EMA weights every --eval-every
steps), the validation PSNR it logged and the closed-loop success (`vid2act eval --policy plan`, its
defaults) on a fixed set of test episodes, against the minutes of training on this machine (2 cores).

    python benchmarks/planner_learning_curve.py runs/planner-rgbd [--episodes 10] [--every 2] [--workers 2]"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from vid2act.configs import EvalConfig
from vid2act.eval import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--idm", default="default")
    parser.add_argument("--episodes", type=int, default=10, help="test episodes per family (the same for every snapshot)")
    parser.add_argument("--every", type=int, default=1, help="score every n-th snapshot (the last always)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    finished = args.run / "metrics.json"  # a run still going (or stopped) has its history in the checkpoint
    record = finished if finished.exists() else args.run / "checkpoint" / "state.json"
    history = {h["step"]: h for h in json.loads(record.read_text())["history"]}
    snapshots = sorted((args.run / "snapshots").iterdir())
    chosen = snapshots[args.every - 1::args.every]
    if snapshots[-1] not in chosen:
        chosen.append(snapshots[-1])
    print(f"{4 * args.episodes} test episodes ({args.episodes} per family), closed loop (eval's defaults)\n")
    print("| step | training minutes (2 cores, grounding included) | validation PSNR (dB) | closed-loop success |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for folder in chosen:
            step = int(folder.name.split("-")[1])
            planner = json.loads((folder / "planner.json").read_text())
            config = EvalConfig(out=str(Path(scratch) / folder.name), planner=str(folder), idm=args.idm,
                                episodes=args.episodes, workers=args.workers)
            a = evaluate(config)["aggregates"]["all/test"]
            print(f"| {step} | {planner['train_seconds'] / 60:.0f} | {history.get(step, {}).get('psnr', float('nan')):.2f} | "
                  f"{a['successes']}/{a['episodes']} ({a['success_rate']:.0%}) |", flush=True)


if __name__ == "__main__":
    main()
