"""Video planner speed on this machine: guided plan latency (median of --repeats) and peak memory at the
default size and steps, per sampler and step count; training samples/s; and the backbone comparison the
shipped design was chosen from (train step and guided denoising step of each candidate, same plan shape).

    python benchmarks/planner_speed.py [--model default] [--repeats 10] [--backbones]"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from vid2act.video.pipeline import FOLD, PlannerShape, load_planner, make_scheduler, make_unet, null_prompt


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
    parser.add_argument("--batch-size", type=int, default=16)
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
          f"{shape.frames} keyframes x {shape.channels} channels at {shape.image_size[0]}x{shape.image_size[1]}")
    print("\n| sampler | steps | guidance | latency (median of %d) |" % args.repeats)
    print("|---|---|---|---|")
    for sampler, steps, guidance in (("ddim", 10, 2.0), ("ddim", 10, 1.0), ("ddim", 5, 2.0), ("ddim", 20, 2.0),
                                     ("dpm++", 10, 2.0), ("dpm++", 5, 2.0)):
        pipe.scheduler = make_scheduler(sampler, pipe.scheduler.config)
        seconds = latency(pipe, image, depth, prompt, steps, guidance, args.repeats)
        print(f"| {sampler} | {steps} | {guidance} | {seconds * 1000:.0f} ms |", flush=True)
    print(f"\npeak memory of the process: {peak_rss_mib():.0f} MiB (it held {before:.0f} MiB before loading "
          "the planner)")
    rate = train_rate(make_unet(shape, tuple(pipe.unet.config.block_out_channels)), shape, args.batch_size, True)
    print(f"training: {rate:.1f} clips/s at batch {args.batch_size} "
          f"({args.batch_size / rate:.2f} s per step)")
    if not args.backbones:
        return
    print("\nBackbone candidates, all diffusers UNet2DConditionModel over the same plan "
          f"({shape.frames} keyframes, {shape.modalities}):\n")
    print("| levels (channels) | resolution | attention | parameters | train clips/s (batch %d) | guided step |"
          % args.batch_size)
    print("|---|---|---|---|---|---|")
    for widths, folded in (((64, 128, 192), False), ((128, 192, 256), True), ((96, 192, 256), True)):
        unet = _candidate(shape, widths, folded)
        n = sum(p.numel() for p in unet.parameters()) / 1e6
        fold_factor = FOLD if folded else 1
        size = f"{shape.image_size[0] // fold_factor}x{shape.image_size[1] // fold_factor}"
        rate = train_rate(unet, shape, args.batch_size, folded)
        step = guided_step(unet, shape, folded)
        print(f"| {widths} | {size}{' (2x2 folded)' if folded else ''} | coarsest level | {n:.1f} M | "
              f"{rate:.1f} | {step * 1000:.0f} ms |", flush=True)


def _candidate(shape: PlannerShape, widths, folded: bool):
    if folded:
        return make_unet(shape, widths)
    from diffusers import UNet2DConditionModel

    from vid2act.video import text
    c = shape.channels
    return UNet2DConditionModel(
        sample_size=shape.image_size, in_channels=(shape.frames + 1) * c, out_channels=shape.frames * c,
        down_block_types=("DownBlock2D",) * (len(widths) - 1) + ("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * (len(widths) - 1),
        mid_block_type="UNetMidBlock2DCrossAttn", block_out_channels=widths, layers_per_block=1,
        norm_num_groups=16, cross_attention_dim=text.EMBEDDING_DIM, attention_head_dim=4,
        class_embed_type="projection", projection_class_embeddings_input_dim=text.EMBEDDING_DIM,
        resnet_time_scale_shift="scale_shift")


def _inputs(shape: PlannerShape, batch: int, folded: bool):
    c, (h, w) = shape.channels, shape.image_size
    x = torch.randn(batch, (shape.frames + 1) * c, h, w)
    return torch.nn.functional.pixel_unshuffle(x, FOLD) if folded else x


def train_rate(unet, shape, batch, folded, steps: int = 3) -> float:
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    prompt = null_prompt(batch)
    times = []
    for k in range(steps + 1):
        started = time.perf_counter()
        out = unet(_inputs(shape, batch, folded), torch.randint(0, 1000, (batch,)),
                   encoder_hidden_states=prompt["tokens"], class_labels=prompt["pooled"]).sample
        loss = out.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if k:
            times.append(time.perf_counter() - started)
    return batch / float(np.median(times))


@torch.no_grad()
def guided_step(unet, shape, folded, repeats: int = 5) -> float:
    prompt = null_prompt(2)
    x = _inputs(shape, 2, folded)
    times = []
    for k in range(repeats + 1):
        started = time.perf_counter()
        unet(x, torch.tensor([500, 500]), encoder_hidden_states=prompt["tokens"], class_labels=prompt["pooled"])
        if k:
            times.append(time.perf_counter() - started)
    return float(np.median(times))


if __name__ == "__main__":
    main()
