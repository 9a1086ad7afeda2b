"""How fast does a fresh planner UNet learn to follow the prompt where sampling starts? Trains it only at
t = 999, where the plan's layout is decided: a regression from the start frame and the prompt to the plan's
change from the start frame, with the noisy plan input all zeros (the easiest case) or all noise (what
training and sampling give it), and the start frame concatenated once or beside every keyframe
(`--tile-start`). Every two minutes it prints how much the estimated plan moves between six "go to the C
pad" instructions on the reach test scenes of benchmarks/planner_conditioning.py (grey levels; a planner that
follows the prompt moves it about as much as the arm moves, the "size" column).

    python benchmarks/planner_first_step.py --data data/train-2000 --input noise [--tile-start] [--minutes 9] [--threads 2]"""
from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from planner_conditioning import GREY, PROMPTS, reach_starts  # run as a script, beside it
from vid2act.data.dataset import Dataset
from vid2act.training import held_out_split
from vid2act.video import text
from vid2act.video.pipeline import PlannerShape, make_unet, predict
from vid2act.video.train import ClipData


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--input", choices=("zeros", "noise"), default="noise")
    parser.add_argument("--tile-start", action="store_true")
    parser.add_argument("--minutes", type=float, default=9.0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 to run two variants side by side)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dataset = Dataset(args.data)
    data = ClipData(dataset, held_out_split(dataset, 0.05, args.data)[0], "rgbd", scale=2)
    frames = int(np.ceil((int(data.lengths.max()) - 1) / 4))
    shape = PlannerShape(frames, 4, "rgbd", tuple(dataset.info["image_size"]), 1, 2, "stacked", args.tile_start)
    sample = data.depth[:: max(1, len(data.depth) // 2000)].float()
    depth_mean, depth_std = float(sample.mean()), float(sample.std())
    unet = make_unet(shape)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=3e-4, weight_decay=0.0)
    starts = reach_starts(4, shape.scale, depth_mean, depth_std)
    embeddings = {p: text.encode([p]) for p in PROMPTS}
    c, (h, w) = shape.channels, shape.plan_size
    probe_input = (torch.randn(1, frames, c, h, w, generator=torch.Generator().manual_seed(0))
                   if args.input == "noise" else torch.zeros(1, frames, c, h, w))

    @torch.no_grad()
    def probe() -> tuple[float, float]:
        unet.eval()
        between, size = [], []
        for start in starts:  # at t = 999 the v target is minus the clean change
            estimate = {p: -predict(unet, shape, probe_input, start, torch.tensor([999]), embeddings[p]).float()[0, :, :3]
                        for p in PROMPTS}
            between.append(np.mean([float((estimate[p] - estimate[q]).abs().mean()) * GREY
                                    for p, q in itertools.combinations(PROMPTS, 2)]))
            size.append(float(estimate[PROMPTS[0]].abs().mean()) * GREY)
        unet.train()
        return float(np.mean(between)), float(np.mean(size))

    print(f"input {args.input}, start frame {'tiled' if args.tile_start else 'once'}, {args.threads} threads")
    print("| minutes | steps | loss (last 50) | between instructions | size of the estimated change |")
    print("|---|---|---|---|---|")
    rng, losses, step, next_probe = np.random.default_rng(0), [], 0, 0.0
    began = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - began
        if elapsed >= next_probe or elapsed >= args.minutes * 60:
            between, size = probe()
            print(f"| {elapsed / 60:.1f} | {step} | {np.mean(losses[-50:]) if losses else float('nan'):.4f} | "
                  f"{between:.2f} | {size:.2f} |", flush=True)
            next_probe += 120
            if elapsed >= args.minutes * 60:
                break
        episodes = torch.from_numpy(rng.integers(0, len(data), args.batch_size))
        lengths = data.lengths[episodes].numpy()
        first = np.where(rng.random(args.batch_size) < 0.5, 0, (rng.random(args.batch_size) * (lengths - 1)).astype(np.int64))
        video, prompt = data.clips(episodes, torch.from_numpy(first), shape, depth_mean, depth_std, "cpu")
        begin, change = video[:, :1], video[:, 1:] - video[:, :1]
        noisy = torch.randn_like(change) if args.input == "noise" else torch.zeros_like(change)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = predict(unet, shape, noisy, begin, torch.full((args.batch_size,), 999), prompt)
        loss = (out.float() + change).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1


if __name__ == "__main__":
    main()
