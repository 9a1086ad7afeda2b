"""A planner's drawings read back by an IDM, the job two trainers share: `vid2act train video --reader` draws
chunks and adds the reading's error to its loss, `vid2act train idm --planner` learns to read keyframes a
planner draws, and both score how well drawn keyframes are read."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vid2act.configs import VideoTrainConfig
from vid2act.data.dataset import Dataset
from vid2act.errors import UsageError
from vid2act.video import sketch
from vid2act.video.clips import ClipData
from vid2act.video.grounding import heatmaps
from vid2act.video.pipeline import (HEATMAP_SIGMA, PlannerShape, VideoPlannerPipeline, enlarge, predict,
                                    to_pixels)

DRAWN_VAL_CLIPS = 256  # clips of the validation episodes a planner draws, to score the reading of drawings
READ_BACK_GRIPPER_WEIGHT = 0.5  # the gripper's cross-entropy beside the grasp point's normalized squared error


def load_reader(config: VideoTrainConfig, shape: PlannerShape):
    """The IDM `--reader` names, frozen, checked to read the keyframes this run draws."""
    from vid2act.idm.model import load_idm
    reader, _ = load_idm(config.reader, config.device, kind="plan-idm")
    architecture = reader.architecture
    if architecture.head == "delta":
        raise UsageError(f"--reader {config.reader} reads pairs of frames (head delta); a drawn keyframe is read "
                         f"alone: give an IDM with head pose")
    if tuple(architecture.image_size) != tuple(shape.image_size):
        raise UsageError(f"--reader {config.reader} reads {architecture.image_size[0]}x{architecture.image_size[1]} "
                         f"frames; the data's are {shape.image_size[0]}x{shape.image_size[1]}")
    if architecture.modalities == "rgbd" and shape.modalities != "rgbd":
        raise UsageError(f"--reader {config.reader} reads depth, which this run does not draw (give --modalities rgbd)")
    return reader.requires_grad_(False).eval()


def read_back_loss(model, sampler, reader, full: torch.Tensor, current: torch.Tensor, heat: torch.Tensor,
                   prompt: dict, grasp: torch.Tensor, closed: torch.Tensor, steps: int, depth_mean: float,
                   depth_std: float, generator: torch.Generator) -> torch.Tensor:
    """How far the frozen `reader` reads a sampled chunk from what the demonstration did: DRaFT (Clark et al.
    2023) with the IDM as the reward. The chunk is sampled as the planner samples it (`steps` DDIM steps from
    noise; gradients through the last one only, DRaFT-1, the cheapest), drawn onto the full-size frame
    `full` [B, C, H, W], and each keyframe read alone; the error is the grasp point's squared error in the
    reader's normalized units against `grasp` [B, K, 3] metres plus the gripper's cross-entropy against
    `closed` [B, K]. The diffusion loss beside it keeps the drawing a video (`docs/results.md`)."""
    b, k = closed.shape
    sampler.set_timesteps(steps, device=current.device)
    latents = torch.randn((b, k, current.shape[1], *current.shape[-2:]), generator=generator).to(current.device)
    latents = latents * sampler.init_noise_sigma
    last = sampler.timesteps[-1]
    for t in sampler.timesteps:
        with torch.set_grad_enabled(bool(t == last)):
            v = predict(model, sampler.scale_model_input(latents, t), current, heat, t, prompt).float()
            latents = sampler.step(v.flatten(1, 2), t, latents.flatten(1, 2)).prev_sample.view_as(latents)
    keyframes = (full[:, None] + enlarge(latents, tuple(full.shape[-2:]))).flatten(0, 1)  # [B*K, C, H, W]
    window = reader.architecture.window
    rgb, depth = to_pixels(keyframes, depth_std=depth_std, depth_mean=depth_mean, quantize=False)
    if reader.architecture.modalities != "rgbd":
        depth = None
    output = reader(rgb[:, None].expand(-1, window, -1, -1, -1),
                    depth[:, None].expand(-1, window, -1, -1) if depth is not None else None).float()
    truth = (grasp.flatten(0, 1).to(output.device) - reader.target_mean) / reader.target_std
    point = F.mse_loss(output[:, :3], truth)
    gripper = F.binary_cross_entropy_with_logits(output[:, 3], closed.flatten(0, 1).float().to(output.device))
    return point + READ_BACK_GRIPPER_WEIGHT * gripper


@torch.no_grad()
def read_back_metrics(pipe: VideoPlannerPipeline, reader, dataset: Dataset, episodes: list[int], seed: int) -> dict:
    """The reader's reading of keyframes drawn for clips of the validation episodes (as `vid2act train idm
    --planner` scores it)."""
    drawn = drawn_keyframes(pipe, dataset, episodes, DRAWN_VAL_CLIPS, seed)
    return read_drawn(reader, drawn, next(reader.parameters()).device)


@torch.no_grad()
def drawn_keyframes(pipe: VideoPlannerPipeline, dataset: Dataset, episodes: list[int], clips: int, seed: int,
                    steps: int = 4, batch: int = 64) -> dict[str, torch.Tensor]:
    """Keyframes `pipe` draws for `clips` random clips of `episodes` (from any frame, as its UNet was trained),
    each drawn to the demonstration's own sketch and grounding, so that each drawn keyframe's truth is known:
    the demonstrated grasp point and gripper at its frame. Returns rgb uint8 [N, H, W, 3], depth float16 [N, H,
    W] (or None), target [N, 3] metres and gripper [N] (1 closed), N = clips x keyframes."""
    shape = pipe.shape
    grid = shape.plan_size
    data = ClipData(dataset, episodes, shape.modalities, 1, grid)
    mean, std = pipe.planner["depth_mean"], pipe.planner["depth_std"]
    beginning = pipe.planner.get("training", {}).get("start_at_beginning", 0.1)
    rng = np.random.default_rng([seed, 13])
    out = {"rgb": [], "depth": [], "target": [], "gripper": []}
    for k in range(0, clips, batch):
        b = min(batch, clips - k)
        rows = torch.from_numpy(rng.integers(0, len(data), b))
        first = data.clip_starts(rng, rows, beginning)
        index = data.windows(rows, first, shape.keyframes + 1, shape.stride)
        depth = data.store.depth[index[:, 0]] if data.store.depth is not None else None
        full, small = pipe.frame_input(data.store.rgb[index[:, 0]], depth)
        heat = torch.cat([heatmaps(data.pixels[rows], grid, HEATMAP_SIGMA),
                          sketch.conditions(data.marks[index[:, 1:]], data.closed[index[:, 1:]], grid)], dim=1)
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        latents = pipe.prepare_latents(b, generator)
        change = pipe.denoise(latents, small, heat, data.prompt(rows, pipe.unet.device), steps, 1.0, generator)
        rgb, drawn_depth = to_pixels(pipe.draw(change, full).flatten(0, 1), mean, std)
        out["rgb"].append(rgb)
        if drawn_depth is not None:
            out["depth"].append(drawn_depth.half())
        out["target"].append(torch.from_numpy(data.grasp[index[:, 1:].numpy()]).float().flatten(0, 1))
        out["gripper"].append(data.closed[index[:, 1:]].float().flatten(0, 1))
    return {k: torch.cat(v) if v else None for k, v in out.items()}


def drawn_batch(drawn: dict, rows: torch.Tensor, window: int, device):
    """Drawn keyframes as the IDM reads a plan's keyframe: each alone, repeated over the window."""
    rgb = drawn["rgb"][rows][:, None].expand(-1, window, -1, -1, -1).to(device)
    depth = drawn["depth"][rows][:, None].expand(-1, window, -1, -1).to(device) if drawn["depth"] is not None else None
    return rgb, depth, drawn["target"][rows].to(device), drawn["gripper"][rows].to(device)


@torch.no_grad()
def read_drawn(model, drawn: dict, device) -> dict:
    """How well the model reads drawn keyframes: the grasp point's error (cm) and the gripper's accuracy."""
    model.eval()
    errors, right = [], []
    for k in range(0, len(drawn["rgb"]), 256):
        rows = torch.arange(k, min(k + 256, len(drawn["rgb"])))
        rgb, depth, target, gripper = drawn_batch(drawn, rows, model.architecture.window, device)
        point, closed = model.denormalize(model(rgb, depth))
        errors.append(100 * (point - target).norm(dim=1).cpu())
        right.append((closed == gripper).cpu())
    errors, right = torch.cat(errors), torch.cat(right)
    return {"grasp_point_cm_median": round(float(errors.median()), 2), "grasp_point_cm_mean": round(float(errors.mean()), 2),
            "gripper_accuracy": round(float(right.float().mean()), 3), "keyframes": len(errors)}
