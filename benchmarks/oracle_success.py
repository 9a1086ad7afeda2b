"""Oracle success per task family on test seeds and on the held-out combinations.

    python benchmarks/oracle_success.py [--seeds 200]

Prints a markdown table: success rate with its Wilson 95 % interval, and the mean episode length."""
from __future__ import annotations

import argparse
import time

from vid2act.eval import wilson
from vid2act.sim.env import SceneWorld, make_scene
from vid2act.sim.tasks import TASKS
from vid2act.spec import SEED_RANGES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200, help="seeds per family and split")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    args = parser.parse_args()
    print("| family | split | success | 95 % interval | mean steps | failed seeds |")
    print("|---|---|---|---|---|---|")
    started = time.perf_counter()
    for task in args.tasks:
        for split in ("test", "heldout"):
            first = SEED_RANGES["test"][0]
            wins, steps, failed = 0, 0, []
            for seed in range(first, first + args.seeds):
                with SceneWorld(make_scene(task, seed, split)) as env:
                    rollout = env.run_oracle()
                wins += rollout.success
                steps += len(rollout.actions)
                if not rollout.success:
                    failed.append(seed)
            low, high = wilson(wins, args.seeds)
            print(f"| {task} | {split} | {wins}/{args.seeds} = {wins / args.seeds:.1%} | [{low:.1%}, {high:.1%}] | "
                  f"{steps / args.seeds:.1f} | {' '.join(map(str, failed[:8])) or '-'} |", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
