"""IDM speed on this machine: translate throughput (frame pairs/s) and training throughput (samples/s).

    python benchmarks/idm_speed.py [--idm default]"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from vid2act.idm.model import load_idm, predict_actions
from vid2act.shipped import resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idm", default="default")
    parser.add_argument("--frames", type=int, default=4000)
    args = parser.parse_args()
    model, _ = load_idm(str(resolve(args.idm, "idm")))
    height, width = model.architecture.image_size
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (args.frames, height, width, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 2.0, (args.frames, height, width)).astype(np.float32)
    depth = depth if model.architecture.modalities == "rgbd" else None
    print(f"torch threads: {torch.get_num_threads()}; model: {model.architecture}")
    predict_actions(model, rgb[:256], None if depth is None else depth[:256])
    times = []
    for _ in range(3):
        started = time.perf_counter()
        predict_actions(model, rgb, depth)
        times.append(time.perf_counter() - started)
    print(f"translate: {(args.frames - 1) / np.median(times):.0f} frame pairs/s "
          f"(median of 3 runs over {args.frames} frames)")
    # one 50-frame episode, as `vid2act translate` sees it
    started = time.perf_counter()
    for _ in range(20):
        predict_actions(model, rgb[:50], None if depth is None else depth[:50])
    print(f"translate, 50-frame episodes: {20 * 49 / (time.perf_counter() - started):.0f} frame pairs/s")

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    frames = model.architecture.window
    batch = torch.from_numpy(rgb[:128 * frames].reshape(128, frames, height, width, 3))
    batch_depth = None if depth is None else torch.from_numpy(depth[:128 * frames].reshape(128, frames, height, width))
    started = time.perf_counter()
    for _ in range(20):
        loss = F.mse_loss(model(batch, batch_depth), torch.zeros(128, 4))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"training: {20 * 128 / (time.perf_counter() - started):.0f} samples/s (batch 128)")


if __name__ == "__main__":
    main()
