"""Time per pipeline stage per episode (generate, translate, execute) and episodes/hour of `vid2act eval`
with 1 and with 2 worker processes, on the same episodes.

    python benchmarks/eval_throughput.py [--episodes 2] [--replan-every 8] [--precision fp32|bf16]"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from vid2act.configs import EvalConfig
from vid2act.eval import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2, help="episodes per family (4 families)")
    parser.add_argument("--replan-every", type=int, default=8)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--planner", default="default")
    args = parser.parse_args()
    print(f"policy plan, replanning every {args.replan_every} actions, {args.episodes} test episodes per family, "
          f"planner UNet in {args.precision}\n")
    print("| workers | episodes | wall s | episodes/hour | generate s/episode | translate s/episode | "
          "execute s/episode | plans/episode |")
    print("|---|---|---|---|---|---|---|---|")
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            config = EvalConfig(out=str(Path(tmp) / f"w{workers}"), planner=args.planner, episodes=args.episodes,
                                replan_every=args.replan_every, workers=workers, precision=args.precision)
            info = evaluate(config)
            overall = info["aggregates"]["all/test"]
            s = overall["mean_seconds"]
            rates[workers] = info["episodes_per_hour"]
            print(f"| {workers} | {overall['episodes']} | {info['wall_seconds']:.0f} | {info['episodes_per_hour']:.0f} | "
                  f"{s['generate']:.2f} | {s['translate']:.3f} | {s['execute']:.2f} | "
                  f"{1 + overall['mean_replans']:.1f} |", flush=True)
    print(f"\n2 workers / 1 worker: {rates[2] / rates[1]:.2f}x episodes/hour")


if __name__ == "__main__":
    main()
