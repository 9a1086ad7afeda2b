"""Video planner speed on this machine: guided plan latency (median of --repeats) and peak memory at the
default size and steps, per sampler, step count and precision (fp32, bf16); training samples/s in fp32 and
with bf16 autocast; and the backbone comparison the shipped design was chosen from (train step and guided
denoising step of each candidate, same plan shape).

    python benchmarks/planner_speed.py [--model default] [--repeats 10] [--backbones]"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from vid2act.video.pipeline import PlannerShape, load_planner, make_scheduler, make_unet, null_prompt, predict


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def latency(pipe, image, depth, prompt, steps, guidance, repeats) -> float:
    pipe(image, prompt, depth=depth, num_inference_steps=steps, guidance_scale=guidance)  # warm-up, text cache
    times = []
    for k in range(repeats):
        started = time.perf_counter()
        pipe(image, prompt, depth=depth, num_inference_steps=steps, guidance_scale=guidance,
             generator=torch.Generator().manual_seed(k))
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backbones", action="store_true", help="also time the backbone candidates")
    args = parser.parse_args()
    from vid2act.sim.env import Env, make_scene
    scene = make_scene("stack", 1_000_000, "test")
    with Env(scene) as env:
        image, depth = env.world.render()
    prompt = scene["instruction"]
    before = peak_rss_mib()
    pipe = load_planner(args.model)
    shape = pipe.shape
    params = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
    print(f"torch threads {torch.get_num_threads()}; planner {args.model}: {params:.1f} M parameters, "
          f"{shape.frames} keyframes x {shape.channels} channels drawn at {shape.plan_size[0]}x{shape.plan_size[1]}, "
          f"returned at {shape.image_size[0]}x{shape.image_size[1]}")
    print("\n| precision | sampler | steps | guidance | latency (median of %d) |" % args.repeats)
    print("|---|---|---|---|---|")
    fp32 = {}
    for precision, sampler, steps, guidance in (
            ("fp32", "ddim", 10, 2.0), ("fp32", "ddim", 10, 1.0), ("fp32", "ddim", 5, 2.0), ("fp32", "ddim", 20, 2.0),
            ("fp32", "dpm++", 10, 2.0), ("fp32", "dpm++", 5, 2.0), ("bf16", "ddim", 10, 2.0), ("bf16", "ddim", 5, 2.0)):
        if precision == "bf16" and pipe.unet.dtype != torch.bfloat16:
            print(f"| (peak memory so far, fp32: {peak_rss_mib():.0f} MiB; {before:.0f} MiB before loading) | | | | |")
            pipe = load_planner(args.model, precision="bf16")
        pipe.scheduler = make_scheduler(sampler, pipe.scheduler.config)
        seconds = latency(pipe, image, depth, prompt, steps, guidance, args.repeats)
        ratio = ""
        if precision == "fp32":
            fp32[(sampler, steps, guidance)] = seconds
        else:
            ratio = f" ({fp32[(sampler, steps, guidance)] / seconds:.2f}x fp32)"
        print(f"| {precision} | {sampler} | {steps} | {guidance} | {seconds * 1000:.0f} ms{ratio} |", flush=True)
    print(f"\npeak memory of the process: {peak_rss_mib():.0f} MiB (it held {before:.0f} MiB before loading "
          "the planner)")
    widths = tuple(pipe.unet.config.block_out_channels)
    attention = sum("CrossAttn" in block for block in pipe.unet.config.down_block_types)
    per_clip = pipe.planner.get("training", {}).get("frames_per_clip", 2)
    rates = {mixed: train_rate(make_unet(shape, widths, attention), shape, args.batch_size, mixed, per_clip)
             for mixed in (False, True)}
    for mixed, rate in rates.items():
        print(f"training, {'bf16 autocast' if mixed else 'fp32'}: {rate:.1f} clips/s at batch {args.batch_size} "
              f"({args.batch_size / rate:.2f} s per step; {trained_keyframes(shape, per_clip)} keyframes per clip)")
    print(f"bf16 autocast / fp32 training speed: {rates[True] / rates[False]:.2f}x")
    if not args.backbones:
        return
    print("\nBackbone candidates, all diffusers UNet2DConditionModel, plans of the same shape "
          f"({shape.frames} keyframes, {shape.modalities}); a frames clip trains {per_clip} of its keyframes:\n")
    print("| backbone | levels (channels) | attention levels | fold | scale | UNet input | parameters | "
          "train clips/s (batch %d, fp32) | train clips/s (bf16 autocast) | trained keyframes/s (bf16) | "
          "guided step (fp32) |" % args.batch_size)
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for backbone, widths, attention, fold, scale in (
            ("stacked", (96, 128, 192), 1, 1, 1), ("stacked", (128, 192, 256), 1, 2, 1),
            ("stacked", (96, 128, 192), 1, 1, 2), ("stacked", (96, 128, 192), 2, 1, 2),
            ("frames", (64, 128, 192), 1, 1, 2), ("frames", (64, 128, 192), 2, 1, 2), ("frames", (48, 96, 144), 2, 1, 2)):
        candidate = PlannerShape(shape.frames, shape.stride, shape.modalities, shape.image_size, fold, scale, backbone)
        unet = make_unet(candidate, widths, attention)
        n = sum(p.numel() for p in unet.parameters()) / 1e6
        size = f"{candidate.plan_size[0] // fold}x{candidate.plan_size[1] // fold}"
        deep = unet.config.in_channels
        bf16 = train_rate(unet, candidate, args.batch_size, True, per_clip)
        print(f"| {backbone} | {widths} | {attention} | {fold} | {scale} | {size}, {deep} channels | {n:.1f} M | "
              f"{train_rate(unet, candidate, args.batch_size, False, per_clip):.1f} | {bf16:.1f} | "
              f"{bf16 * trained_keyframes(candidate, per_clip):.0f} | "
              f"{guided_step(unet, candidate) * 1000:.0f} ms |", flush=True)


def trained_keyframes(shape: PlannerShape, per_clip: int) -> int:
    return per_clip if shape.backbone == "frames" else shape.frames


def train_rate(unet, shape: PlannerShape, batch: int, mixed: bool, per_clip: int, steps: int = 3) -> float:
    """Clips per second of a full training step (forward, backward, AdamW) at batch `batch`; `mixed`: the
    forward pass under bf16 autocast, as `vid2act train video --mixed-precision bf16` runs it. A frames clip
    trains `per_clip` of its keyframes, a stacked one all of them."""
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    c, (h, w), k = shape.channels, shape.plan_size, trained_keyframes(shape, per_clip)
    clean, start, prompt = torch.randn(batch, k, c, h, w), torch.randn(batch, 1, c, h, w), null_prompt(batch)
    keyframes = torch.randint(1, shape.frames + 1, (batch, k)) if shape.backbone == "frames" else None
    levels = batch * k if keyframes is not None else batch  # a noise level per trained keyframe or per plan
    unet.train()
    times = []
    for step in range(steps + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            estimate = predict(unet, shape, clean, start, torch.randint(0, 1000, (levels,)), prompt, keyframes)
        loss = estimate.float().pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - started)
    return batch / float(np.median(times))


@torch.no_grad()
def guided_step(unet, shape: PlannerShape, repeats: int = 5) -> float:
    """Seconds of one classifier-free-guided denoising step (batch 2: one plan, with and without its prompt)."""
    c, (h, w) = shape.channels, shape.plan_size
    x, start, prompt = torch.randn(2, shape.frames, c, h, w), torch.randn(2, 1, c, h, w), null_prompt(2)
    unet.eval()
    times = []
    for k in range(repeats + 1):
        started = time.perf_counter()
        predict(unet, shape, x, start, torch.tensor([500, 500]), prompt)
        if k:
            times.append(time.perf_counter() - started)
    return float(np.median(times))


if __name__ == "__main__":
    main()
