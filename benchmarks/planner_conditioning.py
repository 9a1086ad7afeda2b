"""Does the planner listen? Its one-step estimate of the clean plan at a few noise levels, for reach scenes
of the test split, under six instructions naming different pads, without a prompt, and from two noise seeds:
mean absolute differences in grey levels (RGB, 0-255). A planner that follows the instruction changes its
estimate between prompts by about as much as the arm moves; one that ignores it changes it by almost
nothing, and at t = 999 (where sampling starts) anything that depends on the noise seed is made up.

    python benchmarks/planner_conditioning.py --model default [--scenes 4]"""
from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from vid2act.sim.env import Env, make_scene
from vid2act.sim.tasks import SEED_RANGES
from vid2act.video import text
from vid2act.video.pipeline import load_planner, null_prompt, predict, shrink, to_model

PROMPTS = [f"go to the {color} pad" for color in ("red", "blue", "green", "yellow", "orange", "purple")]
GREY = 127.5  # model units -> grey levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--scenes", type=int, default=4)
    args = parser.parse_args()
    pipe = load_planner(args.model)
    shape, planner, alphas = pipe.shape, pipe.planner, pipe.scheduler.alphas_cumprod
    c, (h, w) = shape.channels, shape.plan_size
    kind = pipe.scheduler.config.prediction_type
    embeddings = {p: text.encode([p]) for p in PROMPTS} | {None: null_prompt(1)}
    rows = {t: [] for t in (999, 700, 400)}
    for start in reach_starts(args.scenes, shape.scale, planner["depth_mean"], planner["depth_std"]):
        for t in rows:
            estimate = {}
            for noise_seed, prompt in itertools.product((0, 1), embeddings):
                generator = torch.Generator().manual_seed(noise_seed)
                frames = 1 if shape.backbone == "frames" else shape.frames  # the pipeline's noise: shared by frames
                noise = torch.randn(1, frames, c, h, w, generator=generator).expand(1, shape.frames, c, h, w)
                a = alphas[t]
                noisy = (1 - a).sqrt() * noise  # a still plan (no change), noised to level t
                with torch.no_grad():
                    out = predict(pipe.unet, shape, noisy.contiguous(), start, torch.tensor([t]), embeddings[prompt]).float()
                estimate[noise_seed, prompt] = clean_change(out, noisy, a, kind)[0, :, :3]
            differ = lambda x, y: float((x - y).abs().mean()) * GREY
            rows[t].append((float(estimate[0, PROMPTS[0]].abs().mean()) * GREY,
                            np.mean([differ(estimate[0, p], estimate[0, q]) for p, q in itertools.combinations(PROMPTS, 2)]),
                            np.mean([differ(estimate[0, p], estimate[0, None]) for p in PROMPTS]),
                            np.mean([differ(estimate[0, p], estimate[1, p]) for p in PROMPTS])))
    print(f"planner {args.model} ({shape.backbone}), {args.scenes} reach scenes (test), six pad instructions; "
          "mean absolute differences of the clean-plan estimate, grey levels\n")
    print("| t | size of the estimated change | between instructions | instruction vs none | between noise seeds |")
    print("|---|---|---|---|---|")
    for t, values in rows.items():
        size, prompts, none, seeds = np.mean(values, axis=0)
        print(f"| {t} | {size:.2f} | {prompts:.2f} | {none:.2f} | {seeds:.2f} |")


def reach_starts(scenes: int, scale: int, depth_mean: float, depth_std: float) -> list[torch.Tensor]:
    """The start frames [1, 1, 4, H/scale, W/scale] of the first `scenes` reach test scenes, in model units."""
    starts = []
    for seed in range(SEED_RANGES["test"][0], SEED_RANGES["test"][0] + scenes):
        with Env(make_scene("reach", seed, "test")) as env:
            rgb, depth = env.world.render()
        starts.append(to_model(*shrink(torch.from_numpy(rgb)[None, None], torch.from_numpy(depth)[None, None], scale),
                               depth_mean, depth_std))
    return starts


def clean_change(out: torch.Tensor, noisy: torch.Tensor, a: torch.Tensor, kind: str) -> torch.Tensor:
    """The UNet's output at noise level with alpha-bar `a` -> its estimate of the clean change."""
    if kind == "v_prediction":
        return a.sqrt() * noisy - (1 - a).sqrt() * out
    if kind == "epsilon":
        return (noisy - (1 - a).sqrt() * out) / a.sqrt()
    return out


if __name__ == "__main__":
    main()
