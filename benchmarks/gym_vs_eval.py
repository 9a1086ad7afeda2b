"""A policy through the Gymnasium API against `vid2act eval` on the same seeds: the eval's records give each
episode's task and seed, the episode is replayed with `gymnasium.make`, `load_policy` and `env.step`, and
the outcomes are compared episode by episode (they must agree: one world, one success test).

    python benchmarks/gym_vs_eval.py [--policies oracle,random] [--episodes 10] [--out runs/gym-vs-eval]"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from vid2act.gym import ENV_IDS, run_policy
from vid2act.policies import load_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", default="oracle,random")
    parser.add_argument("--episodes", type=int, default=10, help="per family")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, default=Path("runs/gym-vs-eval"))
    args = parser.parse_args()
    for name in args.policies.split(","):
        out = args.out / name
        subprocess.run(["vid2act", "eval", "--policy", name, "--split", args.split, "--episodes", str(args.episodes),
                        "--workers", "2", "--out", str(out), "--force"], check=True, capture_output=True)
        records = json.loads((out / "eval_info.json").read_text())["episodes"]
        policy, same, per_task = load_policy(name), 0, {}
        for record in records:
            success, _ = run_policy(ENV_IDS[record["task"]], policy, record["seed"], args.split)
            same += success == record["success"]
            counts = per_task.setdefault(record["task"], [0, 0, 0])
            counts[0] += record["success"]
            counts[1] += success
            counts[2] += 1
        print(f"{name}: the same outcome in {same}/{len(records)} episodes")
        for task, (by_eval, by_gym, n) in per_task.items():
            print(f"  {task}: vid2act eval {by_eval}/{n}, Gymnasium {by_gym}/{n}")


if __name__ == "__main__":
    main()
