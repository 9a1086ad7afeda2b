"""A planner's grounding and sketch errors per family on demonstrations of any split: train (seen
combinations, seen seeds' distribution), test (unseen seeds) and heldout (combinations no training data
contains). Scored exactly as `vid2act train video` scores them on its validation episodes (`RUN/metrics.json`),
with the demonstrations' own places as the truth.

    vid2act collect --tasks all --episodes 100 --split test --out data/test-100
    vid2act collect --tasks all --episodes 100 --split heldout --out data/heldout-100
    python benchmarks/grounding_error.py default data/test-100 data/heldout-100"""
from __future__ import annotations

import argparse

from vid2act.data.dataset import Dataset
from vid2act.video.pipeline import load_planner
from vid2act.video.clips import ClipData
from vid2act.video.train import grounding_errors, sketch_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("planner")
    parser.add_argument("datasets", nargs="+")
    args = parser.parse_args()
    pipe = load_planner(args.planner)
    shape, planner = pipe.shape, pipe.planner
    print("| dataset (split) | family | grounding: object, target (median cm, within 1.5 cells) | "
          "sketch: grasp point (median cm, within 2 cm), gripper right |")
    print("|---|---|---|---|")
    for path in args.datasets:
        dataset = Dataset(path)
        data = ClipData(dataset, list(range(len(dataset))), shape.modalities, shape.scale, shape.plan_size)
        ground = grounding_errors(pipe.grounding, data, planner["depth_mean"], planner["depth_std"])
        sketched = sketch_errors(pipe.sketcher, data, shape, planner["depth_mean"], planner["depth_std"])
        split = dataset.info["config"]["split"]
        for family in ground:
            g, s = ground[family], sketched[family]
            print(f"| {path} ({split}) | {family} | {g['object']['cm_median']:.1f} cm, "
                  f"{g['object']['within_1.5_cells']:.0%}; {g['target']['cm_median']:.1f} cm, "
                  f"{g['target']['within_1.5_cells']:.0%} | {s['cm_median']:.1f} cm, {s['within_2cm']:.0%}; "
                  f"{s['gripper_right']:.0%} |", flush=True)


if __name__ == "__main__":
    main()
