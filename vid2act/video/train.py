"""Train the video planner: one loop, top to bottom. Runs unchanged under `accelerate launch` (several GPUs,
processes or machines): every process draws its own clips, gradients are averaged, the main process keeps
the EMA weights and writes checkpoints, sample plans and snapshots.

Clips, noise, timesteps and text dropout come from generators seeded by (seed, step, process), and the
learning rate is a function of the step, so a run resumed from its checkpoint continues exactly."""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vid2act import __version__
from vid2act.data.dataset import Dataset
from vid2act.errors import UsageError
from vid2act.files import output_dir, replace_path, write_bytes, write_json, write_video
from vid2act.training import CHECKPOINT, held_out_split, learning_rate, make_accelerator, start_run
from vid2act.sim.world import ACTION_SPACE, FPS
from vid2act.video import text
from vid2act.video.pipeline import (PLANNER_FORMAT, PlannerShape, VideoPlannerPipeline, make_scheduler,
                                    make_unet, predict, save_planner, shrink, to_model)



@dataclass(frozen=True)
class VideoTrainConfig:
    data: str
    out: str
    modalities: str = "rgbd"
    stride: int = 4
    frames: int = 0  # 0: enough keyframes to cover the dataset's longest episode
    backbone: str = "stacked"  # or "frames" (see pipeline.py)
    tile_start: bool = True  # stacked: the start frame beside every keyframe (see pipeline.py)
    widths: tuple[int, ...] = (96, 128, 192)
    attention_levels: int = 1  # the coarsest levels cross-attend to the prompt's tokens
    frames_per_clip: int = 2  # frames backbone: keyframes trained per clip (each with its own noise level)
    fold: int = 1
    scale: int = 2  # plans drawn at half the scenes' resolution, their change upsampled (see pipeline.py)
    steps: int = 6000
    batch_size: int = 16
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.0
    text_dropout: float = 0.1  # share of clips trained without their prompt, for classifier-free guidance
    start_at_beginning: float = 0.5  # share of clips that start at an episode's first frame; the rest anywhere
    prediction_type: str = "v_prediction"  # or "epsilon", "sample" (the clean change)
    snr_cap: float = 5.0  # the error of the clean change weighs min(SNR, cap) + 1 (see the loss below)
    noise_bias: float = 2.0  # timesteps drawn as T(1 - u^bias), u uniform: 1 uniform, 2 a third in the noisiest tenth
    ema_decay: float = 0.999
    val_fraction: float = 0.05
    val_clips: int = 16
    eval_every: int = 500
    checkpoint_every: int = 250
    sample_steps: int = 10
    sample_guidance: float = 2.0
    seed: int = 0
    device: str = "cpu"
    mixed_precision: str = "no"  # "bf16": autocast with fp32 master weights (2.8x faster on a CPU with AMX)
    init_from: str = ""  # a planner (folder or shipped name) whose weights start the run, to fine-tune or continue

    def check(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise UsageError("--steps, --batch-size and --lr must be positive")
        if self.stride < 1 or self.frames < 0:
            raise UsageError("--stride must be at least 1 and --frames at least 0 (0: cover the longest episode)")
        if not 0 < self.val_fraction < 1:
            raise UsageError("the validation fraction must lie between 0 and 1")
        if len(self.widths) < 2 or any(w < 16 or w % 16 for w in self.widths):
            raise UsageError(f"--widths {','.join(map(str, self.widths))}: give two or more levels, each a "
                             f"multiple of 16 (the UNet normalizes channels in 16 groups)")
        if not 1 <= self.attention_levels <= len(self.widths):
            raise UsageError(f"--attention-levels must lie between 1 and the number of --widths ({len(self.widths)})")
        if self.frames_per_clip < 1:
            raise UsageError("--frames-per-clip must be at least 1")
        if self.noise_bias < 1:
            raise UsageError(f"--noise-bias must be at least 1 (1: timesteps drawn uniformly; got {self.noise_bias})")
        if self.prediction_type not in ("v_prediction", "epsilon", "sample"):
            raise UsageError(f"unknown prediction type {self.prediction_type!r}; choose v_prediction, epsilon or sample")


class ClipData:
    """Every frame of some episodes in memory (rgb uint8, depth float16), shrunk by `scale`, and their
    prompts' embeddings."""

    def __init__(self, dataset: Dataset, episodes: list[int], modalities: str, scale: int = 1):
        rgb, depth, starts, lengths, prompts = [], [], [], [], []
        offset = 0
        for i in episodes:
            episode = dataset.episode(i, ("rgb", "depth", "instruction"))
            small_rgb, small_depth = shrink(torch.from_numpy(episode["rgb"]),
                                            torch.from_numpy(episode["depth"]) if modalities == "rgbd" else None, scale)
            rgb.append(small_rgb)
            if small_depth is not None:
                depth.append(small_depth)
            starts.append(offset)
            lengths.append(len(episode["rgb"]))
            prompts.append(str(episode["instruction"]))
            offset += len(episode["rgb"])
        self.rgb = torch.cat(rgb)
        self.depth = torch.cat(depth) if depth else None
        self.starts, self.lengths = torch.tensor(starts), torch.tensor(lengths)
        self.prompts = prompts
        unique = sorted(set(prompts))
        embedded = text.encode(unique)
        row = {p: k for k, p in enumerate(unique)}
        self.prompt_row = torch.tensor([row[p] for p in prompts])
        self.embeddings = embedded

    def __len__(self) -> int:
        return len(self.lengths)

    def clip_frames(self, episodes: torch.Tensor, first: torch.Tensor, shape: PlannerShape) -> torch.Tensor:
        """Global frame indices [B, K+1]: each clip's first frame, then every `stride`-th, held at the end."""
        offsets = first[:, None] + shape.stride * torch.arange(shape.frames + 1)[None, :]
        offsets = torch.minimum(offsets, self.lengths[episodes][:, None] - 1)
        return self.starts[episodes][:, None] + offsets

    def clips(self, episodes, first, shape: PlannerShape, depth_mean: float, depth_std: float, device):
        index = self.clip_frames(episodes, first, shape)
        depth = self.depth[index] if self.depth is not None else None
        video = to_model(self.rgb[index], depth, depth_mean, depth_std).to(device)
        rows = self.prompt_row[episodes]
        prompt = {k: v[rows].to(device) for k, v in self.embeddings.items()}
        return video, prompt


def draw_timesteps(rng: np.random.Generator, size, count: int, bias: float) -> np.ndarray:
    """Timesteps in [0, count) drawn as count(1 - u^bias), u uniform: biased toward high noise, where a plan's
    layout (where the arm goes, to which object) is decided from the start frame and the prompt alone, a
    regression that uniform timesteps (bias 1) train a tenth of the time. Measured: the UNet trained only for
    that regression (a still input at t = 999) followed the prompt after 5 minutes (7.6 grey levels between
    prompts); trained with uniform timesteps, not after 141 (0.36)."""
    return np.minimum(count * (1 - rng.random(size) ** bias), count - 1).astype(np.int64)


# --- checkpoints: model, EMA and optimizer state as safetensors, the rest as JSON -------------------------
def save_checkpoint(run: Path, step: int, model, ema: dict, optimizer, config: VideoTrainConfig,
                    history: list[dict], seconds: float) -> None:
    from safetensors.torch import save
    state = optimizer.state_dict()
    tensors = {f"{param}.{name}": value.contiguous() for param, values in state["state"].items()
               for name, value in values.items()}
    with output_dir(run / CHECKPOINT, force=True) as tmp:
        write_bytes(tmp / "model.safetensors",
                    save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))
        write_bytes(tmp / "ema.safetensors", save({k: v.cpu().contiguous() for k, v in ema.items()}))
        write_bytes(tmp / "optimizer.safetensors", save(tensors))
        write_json(tmp / "state.json", {"step": step, "config": _config_json(config), "history": history,
                                        "train_seconds": seconds, "param_groups": state["param_groups"]})


def _config_json(config: VideoTrainConfig) -> dict:
    return json.loads(json.dumps(asdict(config)))  # tuples as lists, as they come back from disk


def load_checkpoint(run: Path, model, ema: dict, optimizer, config: VideoTrainConfig):
    from safetensors.torch import load_file
    folder = run / CHECKPOINT
    state = json.loads((folder / "state.json").read_text())
    if state["config"] != _config_json(config):
        now = _config_json(config)
        changed = {k: (v, now.get(k)) for k, v in state["config"].items() if now.get(k) != v}
        raise UsageError(f"{run} was started with other settings {changed}; resume with the same options")
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    ema.update(load_file(str(folder / "ema.safetensors")))
    per_param: dict[int, dict] = {}
    for key, value in load_file(str(folder / "optimizer.safetensors")).items():
        param, name = key.split(".", 1)
        per_param.setdefault(int(param), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    return state["step"], state["history"], state["train_seconds"]


def initialize_from(model, planner: dict, reference: str) -> None:
    """Start from another planner's weights; it must draw plans of the same shape with the same backbone (its
    --scale may differ: the UNet's convolutions do not depend on the resolution). Records the source and its training time (its own sources' included) in `planner`."""
    from vid2act.video.pipeline import load_planner, resolve_planner
    source = load_planner(reference)
    keys = ("backbone", "tile_start", "frames", "stride", "modalities", "fold", "image_size")
    theirs = {**source.planner, "backbone": source.shape.backbone,  # older planners name neither
              "tile_start": source.shape.tile_start}
    differs = {k: (theirs.get(k), planner[k]) for k in keys if theirs.get(k) != planner[k]}
    if differs:
        raise UsageError(f"--init-from {reference}: its plans differ from this run's {differs}")
    try:
        model.load_state_dict(source.unet.state_dict())
    except RuntimeError:
        trained = source.planner["training"]
        raise UsageError(f"--init-from {reference}: its UNet has other --widths or --attention-levels "
                         f"({trained['widths']}, {trained.get('attention_levels', 1)})") from None
    earlier = source.planner.get("initialized_from", {}).get("train_seconds", 0.0)
    planner["initialized_from"] = {"model": str(resolve_planner(reference).resolve()),
                                   "train_seconds": source.planner.get("train_seconds", 0.0) + earlier}


# --- validation: plans from held-out episodes' first frames against what the oracle did ----------------------
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


@torch.no_grad()
def validate(pipe: VideoPlannerPipeline, data: ClipData, shape: PlannerShape, config: VideoTrainConfig,
             sample_path: Path | None) -> dict:
    """PSNR of guided plans (EMA weights) against the true keyframes of the first `val_clips` held-out
    episodes, all from their first frame; the first four side by side (truth above, plan below) as an mp4."""
    scores, strips = [], []
    for k in range(min(config.val_clips, len(data))):
        index = data.clip_frames(torch.tensor([k]), torch.tensor([0]), shape)[0]
        truth = data.rgb[index].numpy()
        depth = data.depth[index[0]].float().numpy() if data.depth is not None else None
        plan = pipe(truth[0], data.prompts[k], depth=depth, num_inference_steps=config.sample_steps,
                    guidance_scale=config.sample_guidance, generator=torch.Generator().manual_seed(k))
        scores.append(psnr(plan.rgb[0, 1:], truth[1:]))
        if k < 4:
            strips.append(np.concatenate([truth, plan.rgb[0]], axis=1))
    if sample_path is not None and strips:
        write_video(sample_path, np.concatenate(strips, axis=2), fps=FPS / shape.stride)
    return {"psnr": float(np.mean(scores)), "psnr_per_clip": [round(s, 2) for s in scores]}


# --- the loop ---------------------------------------------------------------------------------------------
def train(config: VideoTrainConfig, resume: bool = False, force: bool = False,
          on_step: Callable[[int, float, float], None] = lambda step, loss, rate: None,
          on_message: Callable[[str], None] = lambda text: None) -> dict:
    config.check()
    accelerator = make_accelerator(config.device, config.mixed_precision)
    run = Path(config.out)
    start_run(accelerator, run, resume, force, on_message)

    # Data: every frame in memory, the last episodes held out for validation.
    dataset = Dataset(config.data)
    train_episodes, val_episodes = held_out_split(dataset, config.val_fraction, config.data)
    tiled = config.tile_start and config.backbone == "stacked"  # the frames backbone pairs each with it anyway
    early = PlannerShape(1, config.stride, config.modalities, tuple(dataset.info["image_size"]), config.fold,
                         config.scale, config.backbone, tiled)
    early.check()  # before the frames are shrunk
    early.check_levels(len(config.widths))
    data = ClipData(dataset, train_episodes, config.modalities, config.scale)
    val_data = ClipData(dataset, val_episodes, config.modalities)  # full size: plans are scored as drawn
    longest = int(data.lengths.max())
    frames = config.frames or math.ceil((longest - 1) / config.stride)
    shape = PlannerShape(frames, config.stride, config.modalities, tuple(dataset.info["image_size"]), config.fold,
                         config.scale, config.backbone, tiled)
    shape.check()
    if data.depth is not None:
        sample = data.depth[:: max(1, len(data.depth) // 2000)].float()
        depth_mean, depth_std = float(sample.mean()), float(sample.std())
    else:
        depth_mean, depth_std = 0.0, 1.0  # an RGB planner reads no depth
    planner = {"format": PLANNER_FORMAT, "backbone": config.backbone, "tile_start": shape.tile_start, "frames": frames, "stride": config.stride,
               "frame_interval": config.stride * dataset.info["frame_interval"],
               "fps": dataset.info["fps"] / config.stride, "modalities": config.modalities, "fold": config.fold,
               "scale": config.scale,
               "image_size": list(shape.image_size), "depth_mean": depth_mean, "depth_std": depth_std,
               "text_encoder": text.ENCODER_NAME, "max_tokens": text.MAX_TOKENS, "action_space": ACTION_SPACE,
               "dataset": {"path": str(Path(config.data).resolve()), "format": dataset.info["format"],
                           "episodes": len(dataset), "tasks": list(dataset.info["tasks"]),
                           "split": dataset.info["config"]["split"], "train_episodes": len(train_episodes),
                           "validation_episodes": len(val_episodes), "longest_episode": longest}}
    on_message(f"{len(train_episodes)} training episodes, {len(val_episodes)} for validation; plans of "
               f"{frames} keyframes every {config.stride} frames ({frames * config.stride} of {longest} frames)")

    torch.manual_seed(config.seed)
    model = make_unet(shape, config.widths, config.attention_levels)
    if config.init_from:
        initialize_from(model, planner, config.init_from)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    noise_schedule = make_scheduler("ddim", prediction_type=config.prediction_type)
    alphas = noise_schedule.alphas_cumprod.to(accelerator.device)
    start, history, seconds_before = 0, [], 0.0
    if resume and (run / CHECKPOINT).exists():
        start, history, seconds_before = load_checkpoint(run, model, ema, optimizer, config)
    if start:
        on_message(f"resuming {run} at step {start}")
    model, optimizer = accelerator.prepare(model, optimizer)
    parameters = accelerator.unwrap_model(model).state_dict(keep_vars=True)

    def snapshot(step: int, seconds: float) -> VideoPlannerPipeline:
        """A pipeline with the EMA weights, for sampling; its training time goes with it, so that a run started
        `--init-from` a snapshot counts it."""
        unet = make_unet(shape, config.widths, config.attention_levels)
        unet.load_state_dict(ema)
        info = {**planner, "train_seconds": seconds,
                "training": {**_config_json(config), "step": step,
                             "processes": accelerator.num_processes, "vid2act_version": __version__}}
        pipe = VideoPlannerPipeline(unet=unet.eval(), scheduler=make_scheduler("ddim", prediction_type=config.prediction_type),
                                    planner=info)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    started, samples = time.perf_counter(), 0
    for step in range(start, config.steps):
        model.train()
        rng = np.random.default_rng([config.seed, step, accelerator.process_index])
        episodes = torch.from_numpy(rng.integers(0, len(data), config.batch_size))
        lengths = data.lengths[episodes].numpy()
        first = np.where(rng.random(config.batch_size) < config.start_at_beginning, 0,
                         (rng.random(config.batch_size) * (lengths - 1)).astype(np.int64))
        video, prompt = data.clips(episodes, torch.from_numpy(first), shape, depth_mean, depth_std,
                                   accelerator.device)
        drop = torch.from_numpy(rng.random(config.batch_size) < config.text_dropout).to(accelerator.device)
        prompt["tokens"] = torch.where(drop[:, None, None], 0.0, prompt["tokens"])
        prompt["pooled"] = torch.where(drop[:, None], 0.0, prompt["pooled"])
        prompt["mask"] = torch.where(drop[:, None], True, prompt["mask"])
        begin, change = video[:, :1], video[:, 1:] - video[:, :1]
        if shape.backbone == "frames":  # a few keyframes of each clip, each at its own noise level
            keyframes = torch.from_numpy(rng.integers(1, frames + 1, (config.batch_size, config.frames_per_clip)))
            change = torch.gather(change, 1, (keyframes - 1).to(change.device).view(*keyframes.shape, 1, 1, 1)
                                  .expand(-1, -1, *change.shape[2:]))
            keyframes = keyframes.to(accelerator.device)
        else:  # the whole plan at one noise level
            keyframes = None
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        noise = torch.randn(change.shape, generator=generator).to(accelerator.device)
        levels = config.frames_per_clip if keyframes is not None else 1
        timesteps = torch.from_numpy(draw_timesteps(rng, (config.batch_size, levels), len(alphas),
                                                    config.noise_bias)).to(accelerator.device)
        a = alphas[timesteps].view(config.batch_size, levels, 1, 1, 1)
        noisy = a.sqrt() * change + (1 - a).sqrt() * noise
        estimate = predict(model, shape, noisy, begin, timesteps.flatten(), prompt, keyframes)
        snr = (a / (1 - a)).view(config.batch_size, levels)
        # The clean change's error weighs min(SNR, cap) + 1, written for each target. Plain min-SNR (Hang et
        # al. 2023) weighs it min(SNR, cap), which vanishes at high noise, where a plan's layout (where the arm
        # goes, to which object) is decided and where sampling starts: measured, the planner trained that way
        # ignored the prompt at t = 999 (0.18 grey levels between prompts, 32 between noise seeds).
        clean_weight = snr.clamp(max=config.snr_cap) + 1
        if config.prediction_type == "v_prediction":
            target, weight = a.sqrt() * noise - (1 - a).sqrt() * change, clean_weight / (snr + 1)
        elif config.prediction_type == "epsilon":  # plain min-SNR: at high noise its target is the input itself
            target, weight = noise, snr.clamp(max=config.snr_cap) / snr
        else:
            target, weight = change, clean_weight
        loss = (weight * (estimate - target).pow(2).mean(dim=(2, 3, 4))).mean()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        decay = min(config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, average in ema.items():
                average.lerp_(parameters[name].detach().float().cpu(), 1 - decay)
        samples += config.batch_size * accelerator.num_processes
        done = step + 1
        on_step(done, loss.item(), samples / (time.perf_counter() - started))

        if accelerator.is_main_process and (done % config.eval_every == 0 or done == config.steps):
            seconds = seconds_before + time.perf_counter() - started
            pipe = snapshot(done, seconds)
            metrics = validate(pipe, val_data, shape, config, run / "samples" / f"step-{done:06d}.mp4")
            history.append({"step": done, "loss": loss.item(), "train_seconds": round(seconds, 1), **metrics})
            with output_dir(run / "snapshots" / f"step-{done:06d}", force=True) as tmp:
                save_planner(tmp, pipe.unet, pipe.planner, pipe.scheduler, half=True)
            on_message(f"step {done}: validation PSNR {metrics['psnr']:.2f} dB ({seconds / 60:.1f} min)")
        if accelerator.is_main_process and (done % config.checkpoint_every == 0 or done == config.steps):
            save_checkpoint(run, done, accelerator.unwrap_model(model), ema, optimizer, config, history,
                            seconds_before + time.perf_counter() - started)
        accelerator.wait_for_everyone()

    if not accelerator.is_main_process:
        return {}
    seconds = seconds_before + time.perf_counter() - started
    final = history[-1]
    write_json(run / "metrics.json", {"final": final, "history": history, "train_seconds": seconds})
    pipe = snapshot(config.steps, seconds)
    pipe.planner["metrics"] = final
    # The model's files sit at the run's top level beside its checkpoint and snapshots, so they cannot be
    # swapped in one rename: all are written first, then each replaces its old self.
    staged = run / ".model.new"
    with output_dir(staged, force=True) as tmp:
        save_planner(tmp, pipe.unet, pipe.planner, pipe.scheduler)
    for item in staged.iterdir():
        replace_path(item, run / item.name)
    staged.rmdir()
    return final
