"""Replay fidelity: execute the actions stored in collected episodes from their stored scenes.

    python benchmarks/replay_fidelity.py --episodes 400 [--workers 2]   # collects into a temporary folder
    python benchmarks/replay_fidelity.py --data data/demos              # an existing dataset

Prints, per family, how many replays succeed and how many reproduce every stored frame bit for bit."""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from vid2act.data.collect import CollectConfig, collect
from vid2act.data.dataset import Dataset
from vid2act.sim.env import SceneWorld
from vid2act.sim.tasks import TASKS


def replay(root: Path) -> None:
    data = Dataset(root)
    tally: dict[str, list[int]] = {}
    started = time.perf_counter()
    for i in range(len(data)):
        episode = data.episode(i)
        with SceneWorld(json.loads(episode["scene"])) as env:
            rollout = env.run(episode["actions"])
        counts = tally.setdefault(episode["task"], [0, 0, 0])
        counts[0] += 1
        counts[1] += rollout.success
        counts[2] += np.array_equal(rollout.rgb, episode["rgb"])
    print("| family | episodes | replay success | frames identical |")
    print("|---|---|---|---|")
    for task, (n, wins, same) in tally.items():
        print(f"| {task} | {n} | {wins}/{n} = {wins / n:.1%} | {same}/{n} |")
    total = [sum(c[k] for c in tally.values()) for k in range(3)]
    print(f"| all | {total[0]} | {total[1]}/{total[0]} = {total[1] / total[0]:.1%} | {total[2]}/{total[0]} |")
    print(f"\nreplayed in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="an existing dataset; otherwise one is collected")
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.data:
        replay(args.data)
        return
    with tempfile.TemporaryDirectory() as tmp:
        collect(CollectConfig(tasks=tuple(TASKS), episodes=args.episodes), Path(tmp) / "data", workers=args.workers)
        replay(Path(tmp) / "data")


if __name__ == "__main__":
    main()
