"""How fast the chunk UNet trains on this machine, and whether channels-last memory or `torch.compile` buy
more steps per CPU-minute: the median time of one optimizer step (batch 32, bf16 autocast as `--mixed-precision
bf16` trains, forward, backward, AdamW) over --repeats steps after 3 warm-up steps, each layout in turn. The
inputs are random tensors of a training batch's shapes (the 48x64 RGB-D planner's: a 24x32 chunk of 4
keyframes), so the figure is the UNet's alone, without data loading or the EMA.

    python benchmarks/unet_train_speed.py [--repeats 20] [--layouts eager,channels-last,compile]"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vid2act.video.pipeline import PlannerShape, condition_channels, make_unet, predict

LAYOUTS = ("eager", "channels-last", "compile")


def step_seconds(layout: str, repeats: int, batch: int = 32) -> tuple[float, float]:
    """(seconds of the first 3 steps, median seconds of a step after them) for one layout."""
    torch.manual_seed(0)
    shape = PlannerShape()
    model = make_unet(shape)
    if layout == "channels-last":
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if layout == "compile" else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    k, c, (h, w) = shape.keyframes, shape.channels, shape.plan_size

    def step():
        noisy, current = torch.randn(batch, k, c, h, w), torch.randn(batch, c, h, w)
        heat = torch.rand(batch, condition_channels(shape), h, w)
        prompt = {"tokens": torch.randn(batch, 32, 384), "pooled": torch.randn(batch, 384),
                  "mask": torch.ones(batch, 32, dtype=torch.bool)}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            v = predict(net, noisy, current, heat, torch.randint(0, 1000, (batch,)), prompt)
        loss = (v.float() - noisy).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    started = time.perf_counter()
    for _ in range(3):
        step()
    warmup = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return warmup, float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated, from " + ", ".join(LAYOUTS))
    args = parser.parse_args()
    layouts = args.layouts.split(",")
    unknown = sorted(set(layouts) - set(LAYOUTS))
    if unknown:
        parser.error(f"unknown layouts {unknown}; choose from {', '.join(LAYOUTS)}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 32, bf16 autocast")
    base = None
    for layout in layouts:
        warmup, seconds = step_seconds(layout, args.repeats)
        base = base or seconds
        print(f"{layout:>14}: first 3 steps {warmup:6.1f} s, then {seconds * 1000:5.0f} ms a step "
              f"({32 / seconds:5.1f} clips/s, {base / seconds:.2f}x {layouts[0]})", flush=True)


if __name__ == "__main__":
    main()
