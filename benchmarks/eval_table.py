"""Issue 5's success table from several `vid2act eval` folders: one column per policy (open-loop and
replanning plans apart), one row per family and split, each cell the success rate with its Wilson 95 %
interval; then the headline ratios (replanning against open loop and against BC), and per policy how many
episodes were solved at some step (eval folders written since `solved_at` was recorded).

    python benchmarks/eval_table.py runs/table/*-test runs/table/*-heldout"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def label(config: dict) -> str:
    if config["policy"] != "plan":
        return config["policy"]
    return f"plan, replan every {config['replan_every']}" if config["replan_every"] else "plan, open loop"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="eval output folders (with eval_info.json)")
    args = parser.parse_args()
    cells: dict[tuple[str, str], dict[str, dict]] = {}
    columns: list[str] = []
    for folder in args.folders:
        info = json.loads((folder / "eval_info.json").read_text())
        column = label(info["config"])
        if column not in columns:
            columns.append(column)
        for name, aggregate in info["aggregates"].items():
            family, split = name.split("/")
            cells.setdefault((family, split), {})[column] = aggregate
    order = ["oracle", "gt-video", "sketch", "plan, open loop"] + sorted(c for c in columns if c.startswith("plan, replan")) \
        + ["bc", "random"]
    columns = [c for c in order if c in columns] + [c for c in columns if c not in order]
    print("| family | split | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    from vid2act.sim.tasks import TASKS
    family_order = {name: i for i, name in enumerate([*TASKS, "all"])}
    rows = sorted(cells, key=lambda k: (k[0] == "all", k[1] != "test", family_order.get(k[0], len(TASKS))))
    for family, split in rows:
        entries = []
        for column in columns:
            a = cells[(family, split)].get(column)
            entries.append("–" if a is None else f"{a['success_rate']:.0%} [{a['wilson95'][0]:.0%}–"
                           f"{a['wilson95'][1]:.0%}] ({a['successes']}/{a['episodes']})")
        print(f"| {family} | {split} | " + " | ".join(entries) + " |")
    replanning = [c for c in columns if c.startswith("plan, replan")]
    for split in ("test", "heldout"):
        overall = cells.get(("all", split), {})
        for column in replanning:
            if column not in overall:
                continue
            rate = overall[column]["success_rate"]
            if "plan, open loop" in overall:
                print(f"\n{split}: {column} {rate:.1%} vs open loop {overall['plan, open loop']['success_rate']:.1%}: "
                      f"{100 * (rate - overall['plan, open loop']['success_rate']):+.1f} points")
            if "bc" in overall:
                bc = overall["bc"]["success_rate"]
                ratio = f"{rate / bc:.2f}x" if bc else "BC is 0"
                print(f"{split}: {column} {rate:.1%} vs bc {bc:.1%}: {ratio}")
    for split in ("test", "heldout"):
        for column, a in cells.get(("all", split), {}).items():
            if "solved_at_some_step" in a:
                print(f"{split}: {column} solved at some step {a['solved_at_some_step']}/{a['episodes']} "
                      f"({a['solved_at_some_step_rate']:.1%}), at the end {a['successes']}/{a['episodes']}")


if __name__ == "__main__":
    main()
