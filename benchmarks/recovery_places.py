"""How far a recovery episode's own two places (its first grasp and release, or first time down) and the
grounding's reading of its first frame are from an oracle demonstration's places in the same start scene,
per family, in cells of the planner's grid (median, and the share over 1.5 cells).

    vid2act collect --tasks push,pick_place,stack --episodes 900 --recover sketch --seed 700000 --out data/recover-900
    python benchmarks/recovery_places.py data/recover-900 --episodes 90"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from vid2act.bc import Grounder
from vid2act.data.dataset import Dataset
from vid2act.sim.env import SceneWorld
from vid2act.video.grounding import demo_pixels
from vid2act.video.pipeline import load_planner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recovery", help="a dataset collected with --recover")
    parser.add_argument("--planner", default="default")
    parser.add_argument("--episodes", type=int, default=90)
    args = parser.parse_args()
    pipe = load_planner(args.planner)
    grid = pipe.shape.plan_size
    grounder = Grounder.of(pipe)
    data = Dataset(args.recovery)
    errors = defaultdict(lambda: defaultdict(list))  # family -> "own"/"grounded" -> [object, target] cells
    for i in range(min(args.episodes, len(data))):
        e = data.episode(i, ("rgb", "depth", "instruction", "scene", "ee_target", "actions", "task"))
        with SceneWorld(json.loads(str(e["scene"]))) as env:
            oracle = env.run_oracle()
        truth = demo_pixels({"scene": e["scene"], "ee_target": oracle.ee_target, "actions": oracle.actions}, grid)
        read = grounder.locate(e["rgb"][0], e["depth"][0], str(e["instruction"])).numpy()
        for name, places in (("own", demo_pixels(e, grid)), ("grounded", read)):
            errors[str(e["task"])][name].append(np.linalg.norm(places - truth, axis=1))
    print("| family | episodes | own: object, target (median cells, share > 1.5) | grounded: object, target |")
    print("|---|---|---|---|")
    for family, by in sorted(errors.items()):
        cells = []
        for name in ("own", "grounded"):
            d = np.array(by[name])
            cells.append(", ".join(f"{np.median(d[:, k]):.2f} ({(d[:, k] > 1.5).mean():.0%})" for k in (0, 1)))
        print(f"| {family} | {len(by['own'])} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
