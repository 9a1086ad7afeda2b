"""Train the video planner: the grounding net first (a minute), then the sketch (a few minutes), then the chunk
UNet, one loop, top to bottom (with `--reader`, each step also reads its sampled chunks back through an IDM).
Runs unchanged under `accelerate launch` (several GPUs, processes or machines): every process draws its
own clips, gradients are averaged, the main process keeps the EMA weights and writes checkpoints, sample
plans and snapshots.

Clips, noise, timesteps and text dropout come from generators seeded by (seed, step, process), and the
learning rate is a function of the step, so a run resumed from its checkpoint continues exactly. The
grounding net is trained deterministically before the first checkpoint and saved in RUN/grounding/; a
resumed run reads it back."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from vid2act.version import __version__
from vid2act.configs import VideoTrainConfig, inputs_of
from vid2act.data.dataset import Dataset
from vid2act.errors import UsageError
from vid2act.media import write_video
from vid2act.outputs import output_dir, replace_path, write_json
from vid2act.spec import ACTION_SPACE
from vid2act.training import (CHECKPOINT, Curves, config_json, cosine_step, held_out_split, learning_rate,
                              load_checkpoint, make_accelerator, prepare_run, releases_run_lock, save_checkpoint,
                              shard, start_run)
from vid2act.video import sketch, text
from vid2act.video.clips import ClipData
from vid2act.video.grounding import (GROUNDING_TYPE, PlaceNet, PlaceNetShape, heatmaps, load_grounding, locate,
                                     place_loss, save_grounding)
from vid2act.video.pipeline import (GROUNDING_FOLDER, HEATMAP_SIGMA, PLANNER_FORMAT, PlannerShape,
                                    VideoPlannerPipeline, make_scheduler, make_unet, predict, save_planner)
from vid2act.video.readback import load_reader, read_back_loss, read_back_metrics

def draw_timesteps(rng: np.random.Generator, size, count: int, bias: float) -> np.ndarray:
    """Timesteps in [0, count) drawn as count(1 - u^bias), u uniform: biased toward high noise, where a plan's
    layout is decided and where few-step sampling spends its first step."""
    return np.minimum(count * (1 - rng.random(size) ** bias), count - 1).astype(np.int64)


MOVING = 0.05  # a pixel whose change (any channel, model units) exceeds this moves


def moving_pixels(change: torch.Tensor, weight: float) -> torch.Tensor:
    """Per-pixel loss weights [B, K, 1, h, w] of a clip's true change [B, K, C, h, w]: 1 + `weight` where it
    moves, or next to a pixel that does, 1 elsewhere. Averaged evenly over the pixels, the loss spends three
    quarters of itself on a static background the model only has to leave at zero, a quarter on the moving
    arm, which is what the IDM reads."""
    moving = (change.abs().amax(dim=2) > MOVING).float()
    near = F.max_pool2d(moving, 3, stride=1, padding=1)
    return (1 + weight * near).unsqueeze(2)


# --- grounding: trained first, on the episodes' first frames ---------------------------------------------------
def grounding_errors(net: PlaceNet, data: ClipData, depth_mean: float, depth_std: float,
                     episodes: int | None = None) -> dict:
    """Per family and point: mean and median error in grid cells and in cm on the table (the predicted cell's
    ray met with the plane at the demonstrated point's height), and the share within 1.5 cells."""
    count = len(data) if episodes is None else min(episodes, len(data))
    index = data.store.starts[:count]
    found = []
    with torch.no_grad():
        for k in range(0, count, 256):
            rows = torch.arange(k, min(count, k + 256))
            prompt = data.prompt(rows, "cpu")
            found.append(locate(net(data.frames(index[rows], depth_mean, depth_std), prompt["tokens"], prompt["mask"])))
    found = torch.cat(found).numpy()
    truth = data.pixels[:count].numpy()
    grid = net.shape.grid
    to_image = np.array([data.image_size[1] / grid[1], data.image_size[0] / grid[0]])
    world = data.camera.unproject_to_height(found * to_image, data.points[:count, :, 2], data.image_size)
    cells = np.linalg.norm(found - truth, axis=-1)
    cm = 100 * np.linalg.norm((world - data.points[:count])[..., :2], axis=-1)
    out = {}
    tasks = np.array(data.tasks[:count])
    for family in sorted(set(tasks)) + ["all"]:
        rows = tasks == family if family != "all" else np.ones(count, bool)
        out[family] = {name: {"cells_mean": round(float(cells[rows, p].mean()), 3),
                              "cells_median": round(float(np.median(cells[rows, p])), 3),
                              "within_1.5_cells": round(float((cells[rows, p] <= 1.5).mean()), 3),
                              "cm_mean": round(float(cm[rows, p].mean()), 2),
                              "cm_median": round(float(np.median(cm[rows, p])), 2)}
                       for p, name in enumerate(("object", "target"))}
        out[family]["episodes"] = int(rows.sum())
    return out


def train_grounding(config: VideoTrainConfig, data: ClipData, val_data: ClipData, shape: PlannerShape,
                    depth_mean: float, depth_std: float, on_message: Callable[[str], None]) -> tuple[PlaceNet, dict]:
    """The grounding net, trained with cross-entropy on a soft label around each demonstrated place, from the
    first frames of the training episodes (a few frames in, as well, before the arm has gone far)."""
    torch.manual_seed(config.seed)
    net = PlaceNet(PlaceNetShape(shape.plan_size, shape.channels, config.grounding_width))
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.grounding_lr)
    started = time.perf_counter()
    for step in range(config.grounding_steps):
        rng = np.random.default_rng([config.seed, step, 7])
        # A recovery episode's first frames are the expert's only in a demonstration.
        episodes = data.demonstrations[torch.from_numpy(rng.integers(0, len(data.demonstrations),
                                                                      config.grounding_batch_size))]
        first = torch.from_numpy(rng.integers(0, 3, config.grounding_batch_size))
        index = data.windows(episodes, first, 1, 1)[:, 0]
        prompt = data.prompt(episodes, "cpu")
        logits = net(data.frames(index, depth_mean, depth_std), prompt["tokens"], prompt["mask"])
        loss = place_loss(logits, data.pixels[episodes])
        cosine_step(optimizer, loss, config.grounding_lr, step, config.grounding_steps)
    net.eval()
    seconds = time.perf_counter() - started
    metrics = {"steps": config.grounding_steps, "train_seconds": round(seconds, 1), "final_loss": round(loss.item(), 4),
               "train": grounding_errors(net, data, depth_mean, depth_std, episodes=200),
               "validation": grounding_errors(net, val_data, depth_mean, depth_std)}
    v = metrics["validation"]["all"]
    on_message(f"grounding: {seconds / 60:.1f} min, validation object {v['object']['cm_median']:.1f} cm / target "
               f"{v['target']['cm_median']:.1f} cm (median), {v['object']['within_1.5_cells']:.0%} / "
               f"{v['target']['within_1.5_cells']:.0%} within 1.5 cells")
    return net, metrics


# --- the sketch: trained second, on clips from every frame -----------------------------------------------------
def sketch_inputs(data: ClipData, episodes: torch.Tensor, first: torch.Tensor, frames: int, stride: int,
                  depth_mean: float, depth_std: float, rng: np.random.Generator | None = None, context_noise: float = 0.0):
    """The sketch's inputs for clips starting at `first` of `episodes`: the frame (noised by up to
    `context_noise` with `rng`, as the UNet's), the grounding's heatmaps (the demonstrated places, off by a
    fraction of a cell with `rng`), the prompt; and the keyframes' frame indices [B, frames + 1]."""
    index = data.windows(episodes, first, frames + 1, stride)
    frame = data.frames(index[:, 0], depth_mean, depth_std)
    places = data.pixels[episodes]
    if rng is not None:
        b = len(episodes)
        places = places + torch.from_numpy(rng.normal(0, 0.3, (b, 2, 2))).float()
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        blur = torch.from_numpy(rng.random(b) * context_noise).float().view(b, 1, 1, 1)
        frame = frame + blur * torch.randn(frame.shape, generator=generator)
    heat = heatmaps(places, tuple(frame.shape[-2:]), HEATMAP_SIGMA)
    return frame, heat, data.prompt(episodes, "cpu"), index


def sketch_errors(net: PlaceNet, data: ClipData, shape: PlannerShape, depth_mean: float, depth_std: float,
                  episodes: int | None = None) -> dict:
    """Per family: the sketched grasp points' error in grid cells (the grasp point's mark) and in cm (3-D), per
    keyframe and overall, and the share of keyframes whose gripper is right; clips from each episode's first
    frame, a third in and two thirds in."""
    count = len(data) if episodes is None else min(episodes, len(data))
    cells, cm, right, tasks = [], [], [], []
    with torch.no_grad():
        for part in (0.0, 1 / 3, 2 / 3):
            for k in range(0, count, 256):
                rows = torch.arange(k, min(count, k + 256))
                first = (data.lengths[rows].float() * part).long()
                frame, heat, prompt, index = sketch_inputs(data, rows, first, shape.keyframes, shape.stride,
                                                           depth_mean, depth_std)
                logits, flags = net(frame, prompt["tokens"], prompt["mask"], heat)
                marks, closed = sketch.read(logits, flags, shape.keyframes)
                truth = data.marks[index[:, 1:]]
                cells.append(torch.linalg.norm(marks[:, :, 0] - truth[:, :, 0], dim=-1).numpy())
                world = sketch.to_world(marks.numpy(), data.camera, data.image_size, shape.plan_size)
                cm.append(100 * np.linalg.norm(world - data.grasp[index[:, 1:].numpy()], axis=-1))
                right.append((closed == data.closed[index[:, 1:]]).numpy())
                tasks += [data.tasks[r] for r in rows.tolist()]
    cells, cm, right, tasks = np.concatenate(cells), np.concatenate(cm), np.concatenate(right), np.array(tasks)
    out = {}
    for family in sorted(set(tasks)) + ["all"]:
        rows = tasks == family if family != "all" else np.ones(len(tasks), bool)
        out[family] = {"cells_median": round(float(np.median(cells[rows])), 3),
                       "cm_median": round(float(np.median(cm[rows])), 2), "cm_mean": round(float(cm[rows].mean()), 2),
                       "cm_median_per_keyframe": [round(float(np.median(cm[rows, j])), 2) for j in range(cm.shape[1])],
                       "within_2cm": round(float((cm[rows] <= 2).mean()), 3),
                       "gripper_right": round(float(right[rows].mean()), 3), "clips": int(rows.sum())}
    return out


def train_sketch(config: VideoTrainConfig, data: ClipData, val_data: ClipData, shape: PlannerShape,
                 depth_mean: float, depth_std: float, on_message: Callable[[str], None]) -> tuple[PlaceNet, dict]:
    """The sketch net: cross-entropy on soft labels around each keyframe's two marks, and the gripper's, from
    clips that start anywhere in the training episodes (with the UNet's context noise)."""
    torch.manual_seed(config.seed)
    k = shape.keyframes
    net = PlaceNet(PlaceNetShape(shape.plan_size, shape.channels, config.sketch_width, heat_inputs=2,
                                      maps=2 * k, flags=k))
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.sketch_lr)
    started = time.perf_counter()
    for step in range(config.sketch_steps):
        rng = np.random.default_rng([config.seed, step, 11])
        b = config.sketch_batch_size
        episodes = torch.from_numpy(rng.integers(0, len(data), b))
        first = data.clip_starts(rng, episodes, config.start_at_beginning)
        frame, heat, prompt, index = sketch_inputs(data, episodes, first, k, shape.stride,
                                                   depth_mean, depth_std, rng, config.context_noise)
        logits, flags = net(frame, prompt["tokens"], prompt["mask"], heat)
        loss = (place_loss(logits, data.marks[index[:, 1:]].reshape(b, 2 * k, 2))
                + F.binary_cross_entropy_with_logits(flags, data.closed[index[:, 1:]].float()))
        cosine_step(optimizer, loss, config.sketch_lr, step, config.sketch_steps)
    net.eval()
    seconds = time.perf_counter() - started
    metrics = {"steps": config.sketch_steps, "train_seconds": round(seconds, 1), "final_loss": round(loss.item(), 4),
               "train": sketch_errors(net, data, shape, depth_mean, depth_std, episodes=200),
               "validation": sketch_errors(net, val_data, shape, depth_mean, depth_std)}
    v = metrics["validation"]["all"]
    on_message(f"sketch: {seconds / 60:.1f} min, validation grasp point {v['cm_median']:.1f} cm (median), "
               f"{v['within_2cm']:.0%} within 2 cm, gripper {v['gripper_right']:.0%} right")
    return net, metrics


def init_source(config: VideoTrainConfig, shape: PlannerShape) -> VideoPlannerPipeline:
    """The planner `--init-from` names, checked to draw chunks of this run's shape with the same UNet."""
    from vid2act.video.pipeline import load_planner
    source = load_planner(config.init_from)
    mine = {"keyframes": shape.keyframes, "stride": shape.stride, "modalities": shape.modalities, "scale": shape.scale,
            "image_size": list(shape.image_size)}
    differs = {k: (source.planner.get(k), v) for k, v in mine.items() if source.planner.get(k) != v}
    if differs:
        raise UsageError(f"--init-from {config.init_from}: its plans differ from this run's {differs}")
    trained = source.planner.get("training", {})
    unet = (tuple(trained.get("widths", ())), trained.get("attention_levels"))
    if unet != (tuple(config.widths), config.attention_levels):
        raise UsageError(f"--init-from {config.init_from}: its UNet has other --widths or --attention-levels "
                         f"({','.join(map(str, unet[0]))}, {unet[1]})")
    return source


def initialize_from(model, planner: dict, source: VideoPlannerPipeline, reference: str) -> None:
    """Start from `source`'s UNet weights; records the source and its training time (its own sources'
    included) in `planner`."""
    from vid2act.shipped import resolve
    model.load_state_dict(source.unet.state_dict())
    earlier = source.planner.get("initialized_from", {}).get("train_seconds", 0.0)
    planner["initialized_from"] = {"model": str(resolve(reference, "planner").resolve()),
                                   "train_seconds": source.planner.get("train_seconds", 0.0) + earlier}


def given_parts(config: VideoTrainConfig, shape: PlannerShape) -> dict[str, tuple[PlaceNet, dict]]:
    """The grounding and sketch nets `--grounding-from` / `--sketch-from` name, by their folder's name in a run,
    each refused unless it reads frames of this run's size and modalities (and draws its keyframes)."""
    k = config.keyframes
    wanted = {GROUNDING_FOLDER: ("grounding_from", GROUNDING_TYPE, "grounding model", {}),
              sketch.SKETCH_FOLDER: ("sketch_from", sketch.SKETCH_TYPE, "sketch model", {"maps": 2 * k, "flags": k})}
    from vid2act.shipped import resolve
    given = {}
    for folder, (option, kind, what, counts) in wanted.items():
        reference = getattr(config, option)
        if not reference:
            continue
        net, saved = load_grounding(resolve(reference, "planner") / folder, kind=kind, what=what)
        expected = {"grid": tuple(shape.plan_size), "channels": shape.channels, **counts}
        found = {key: getattr(net.shape, key) for key in expected}
        if found != expected:
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"{flag} {reference}: its {what} reads {found}, this run needs {expected}; give a planner "
                             "trained at the same image size, --scale, --modalities and --keyframes")
        given[folder] = (net, saved["metrics"])
    return given


# --- validation: chunks from held-out episodes' frames against what the oracle did ----------------------------
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


@torch.no_grad()
def validate(pipe: VideoPlannerPipeline, data: ClipData, config: VideoTrainConfig, sample_path: Path | None) -> dict:
    """PSNR of chunks (EMA weights, the grounding's own points) against the true keyframes of the first
    `val_clips` held-out episodes, from their first frame and from their middle one; the first four side by
    side (truth above, plan below) as an mp4."""
    shape = pipe.shape
    scores, strips = {"first": [], "middle": []}, []
    for k in range(min(config.val_clips, len(data))):
        points = None
        for where in ("first", "middle"):
            first = 0 if where == "first" else int(data.lengths[k]) // 2
            index = data.windows(torch.tensor([k]), torch.tensor([first]), shape.keyframes + 1, shape.stride)[0]
            truth = data.store.rgb[index].numpy()
            depth = data.store.depth[index[0]].float().numpy() if data.store.depth is not None else None
            if points is None:
                points = pipe.ground(truth[0], depth, data.prompts[k])
            plan = pipe(truth[0], data.prompts[k], depth=depth, num_inference_steps=config.sample_steps,
                        guidance_scale=config.sample_guidance, generator=torch.Generator().manual_seed(k),
                        points=points)
            scores[where].append(psnr(plan.rgb[0, 1:], truth[1:]))
            if k < 4 and where == "first":
                strips.append(np.concatenate([truth, plan.rgb[0]], axis=1))
    if sample_path is not None and strips:
        write_video(sample_path, np.concatenate(strips, axis=2), fps=4)
    return {"psnr": float(np.mean(scores["first"] + scores["middle"])),
            "psnr_first": float(np.mean(scores["first"])), "psnr_middle": float(np.mean(scores["middle"]))}


# --- the loop ---------------------------------------------------------------------------------------------
@releases_run_lock
def train(config: VideoTrainConfig, resume: bool = False, force: bool = False,
          on_step: Callable[[int, float, float], None] = lambda step, loss, rate: None,
          on_message: Callable[[str], None] = lambda text: None) -> dict:
    config.check()
    prepare_run(config, "train video", resume, force, inputs_of(config))  # before any work
    run = Path(config.out)
    accelerator = make_accelerator(config.device, config.mixed_precision, config.report_to, run)
    dataset = Dataset(config.data)  # before the run folder exists: a bad dataset leaves nothing behind
    image_size = tuple(dataset.info["image_size"])
    recovery = Dataset(config.recovery) if config.recovery else None
    if recovery is not None and tuple(recovery.info["image_size"]) != image_size:
        raise UsageError(f"--recovery {config.recovery} holds {recovery.info['image_size'][0]}x"
                         f"{recovery.info['image_size'][1]} frames and --data {config.data} "
                         f"{image_size[0]}x{image_size[1]}; collect both at one --image-size")
    early = PlannerShape(config.keyframes, config.stride, config.modalities, image_size, config.scale, 1)
    early.check()
    early.check_levels(len(config.widths))
    train_episodes, val_episodes = held_out_split(dataset, config.val_fraction, config.data)
    source = init_source(config, early) if config.init_from else None  # checked before the run folder exists
    if config.reader and accelerator.num_processes > 1:  # measured: two CPU processes hung at the first step
        raise UsageError("--reader trains in one process only (under `accelerate launch` it does not run yet); "
                         "run it without accelerate launch")
    reader = load_reader(config, early) if config.reader else None
    given = given_parts(config, early)  # the small nets taken from other planners, checked before any work
    start_run(accelerator, run, config, "train video", resume, force, on_message)  # locked until this function returns

    # Data: every frame of this process's shard in memory at the plan's size (full size for validation), the
    # last episodes held out.
    data = ClipData(dataset, shard(train_episodes, accelerator), config.modalities, config.scale, early.plan_size,
                    (recovery, shard(list(range(len(recovery))), accelerator)) if recovery else None,
                    full_size=reader is not None)  # a chunk read back is drawn onto the full-size frame
    val_data = ClipData(dataset, val_episodes, config.modalities, 1, early.plan_size)  # chunks are scored as drawn
    longest = int(data.lengths[data.demonstrations].max())  # a recovery episode is longer than a task needs
    horizon = config.horizon or math.ceil((longest - 1) / config.stride)
    shape = PlannerShape(config.keyframes, config.stride, config.modalities, image_size, config.scale, horizon)
    depth = data.store.depth_normalization()
    depth_mean, depth_std = depth["mean"], depth["std"]
    planner = {"format": PLANNER_FORMAT, "keyframes": config.keyframes, "stride": config.stride, "horizon": horizon,
               "frame_interval": config.stride * dataset.info["frame_interval"],
               "fps": dataset.info["fps"] / config.stride, "modalities": config.modalities, "scale": config.scale,
               "image_size": list(image_size), "depth_mean": depth_mean, "depth_std": depth_std,
               "text_encoder": text.ENCODER_NAME, "max_tokens": text.MAX_TOKENS, "action_space": ACTION_SPACE,
               "dataset": {"path": str(Path(config.data).resolve()), "format": dataset.info["format"],
                           "episodes": len(dataset), "tasks": list(dataset.info["tasks"]),
                           "split": dataset.info["config"]["split"], "train_episodes": len(train_episodes),
                           "validation_episodes": len(val_episodes), "longest_episode": longest,
                           **({"recovery": {"path": str(Path(config.recovery).resolve()),
                                            "episodes": len(recovery)}} if recovery else {})}}
    on_message(f"{len(train_episodes)} training episodes, {len(val_episodes)} for validation; chunks of "
               f"{config.keyframes} keyframes every {config.stride} frames, open-loop plans of {horizon}")

    # Stages 1 and 2, the grounding and the sketch: small nets trained once, each kept in its folder of RUN
    # (a resumed run reads them back).
    val_small = val_data_small(dataset, val_episodes, config, early.plan_size)

    def small_net(folder: Path, kind: str, what: str, trainer) -> tuple[PlaceNet, dict]:
        if resume and (folder / "config.json").exists():
            net, saved = load_grounding(folder, kind=kind, what=what)
            return net, saved["metrics"]
        if folder.name in given:
            net, metrics = given[folder.name]
        else:
            net, metrics = trainer(config, data, val_small, shape, depth_mean, depth_std, on_message)
        if accelerator.is_main_process:
            with output_dir(folder, force=True) as tmp:
                save_grounding(tmp, net, {"metrics": metrics}, kind=kind)
        accelerator.wait_for_everyone()
        return net, metrics

    grounding, grounding_metrics = small_net(run / GROUNDING_FOLDER, GROUNDING_TYPE, "grounding model",
                                             train_grounding)
    data.ground_recovery(grounding, depth_mean, depth_std)
    sketcher, sketch_metrics = small_net(run / sketch.SKETCH_FOLDER, sketch.SKETCH_TYPE, "sketch model", train_sketch)
    planner["grounding"], planner["sketch"] = {"metrics": grounding_metrics}, {"metrics": sketch_metrics}

    # Stage 3, the chunk UNet, drawing to the demonstration's own sketch.
    torch.manual_seed(config.seed)
    model = make_unet(shape, config.widths, config.attention_levels)
    if source is not None:
        initialize_from(model, planner, source, config.init_from)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    noise_schedule = make_scheduler("ddim")
    sampler = make_scheduler("ddim")  # the planner's sampler, for the chunks read back
    alphas = noise_schedule.alphas_cumprod.to(accelerator.device)
    start, history, seconds_before = 0, [], 0.0
    if resume and (run / CHECKPOINT).exists():
        start, history, seconds_before = load_checkpoint(run, model, optimizer, config, ema)
    if start:
        on_message(f"resuming {run} at step {start}")
    model, optimizer = accelerator.prepare(model, optimizer)
    parameters = accelerator.unwrap_model(model).state_dict(keep_vars=True)
    curves = Curves(run, accelerator, start, config.report_to, config_json(config))

    def snapshot(step: int, seconds: float) -> VideoPlannerPipeline:
        """A pipeline with the EMA weights, for sampling; its training time goes with it, so that a run started
        `--init-from` a snapshot counts it."""
        unet = make_unet(shape, config.widths, config.attention_levels)
        unet.load_state_dict(ema)
        info = {**planner, "train_seconds": seconds + grounding_metrics["train_seconds"] + sketch_metrics["train_seconds"],
                "training": {**config_json(config), "step": step,
                             "processes": accelerator.num_processes, "vid2act_version": __version__}}
        pipe = VideoPlannerPipeline(unet=unet.eval(), scheduler=make_scheduler("ddim"), planner=info,
                                    grounding=grounding, sketcher=sketcher)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    h, w = shape.plan_size
    started, samples = time.perf_counter(), 0
    for step in range(start, config.steps):
        model.train()
        rng = np.random.default_rng([config.seed, step, accelerator.process_index])
        b = config.batch_size
        episodes = torch.from_numpy(rng.integers(0, len(data), b))
        first = data.clip_starts(rng, episodes, config.start_at_beginning)
        index = data.windows(episodes, first, shape.keyframes + 1, shape.stride)
        video = data.frames(index, depth_mean, depth_std).to(accelerator.device)
        prompt = data.prompt(episodes, accelerator.device)
        whole_prompt = dict(prompt)  # a chunk read back is drawn as the planner draws it: with its instruction
        drop = torch.from_numpy(rng.random(b) < config.text_dropout).to(accelerator.device)
        prompt["tokens"] = torch.where(drop[:, None, None], 0.0, prompt["tokens"])
        prompt["pooled"] = torch.where(drop[:, None], 0.0, prompt["pooled"])
        prompt["mask"] = torch.where(drop[:, None], True, prompt["mask"])
        # The places come from the demonstration; a grounding error of a fraction of a cell is trained for.
        jitter = torch.from_numpy(rng.normal(0, 0.3, (b, 2, 2))).float()
        heat = heatmaps(data.pixels[episodes] + jitter, (h, w), HEATMAP_SIGMA)
        # The keyframes' sketch from the demonstration, off by about the sketch net's own error.
        marks = data.marks[index[:, 1:]] + torch.from_numpy(rng.normal(0, 0.4, (b, shape.keyframes, 2, 2))).float()
        heat = torch.cat([heat, sketch.conditions(marks, data.closed[index[:, 1:]], (h, w))], dim=1)
        heat = heat.to(accelerator.device)
        current, change = video[:, 0], video[:, 1:] - video[:, :1]
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        blur = torch.from_numpy(rng.random(b) * config.context_noise).float().view(b, 1, 1, 1)
        current = current + (blur * torch.randn(current.shape, generator=generator)).to(accelerator.device)
        noise = torch.randn(change.shape, generator=generator).to(accelerator.device)
        timesteps = torch.from_numpy(draw_timesteps(rng, b, len(alphas), config.noise_bias)).to(accelerator.device)
        noisy = noise_schedule.add_noise(change, noise, timesteps)
        estimate = predict(model, noisy, current, heat, timesteps, prompt)
        a = alphas[timesteps]
        snr = a / (1 - a)
        # The clean change's error weighs min(SNR, cap) + 1. Plain min-SNR (Hang et al. 2023) weighs it
        # min(SNR, cap), which vanishes at high noise, where a plan's layout is decided and where sampling
        # starts. The squared error of v is the clean change's times (SNR + 1), hence the division.
        target = noise_schedule.get_velocity(change, noise, timesteps)
        weight = (snr.clamp(max=config.snr_cap) + 1) / (snr + 1)
        pixels = moving_pixels(change, config.moving_weight)
        error = ((estimate.float() - target).pow(2) * pixels).mean(dim=(1, 2, 3, 4)) / pixels.mean(dim=(1, 2, 3, 4))
        loss = (weight * error).mean()
        if reader is not None:
            full = data.frames(index[:, 0], depth_mean, depth_std, full_size=True).to(accelerator.device)
            loss = loss + read_back_loss(model, sampler, reader, full, video[:, 0], heat, whole_prompt,
                                         torch.from_numpy(data.grasp[index[:, 1:].numpy()]).float(),
                                         data.closed[index[:, 1:]], config.sample_steps, depth_mean, depth_std,
                                         generator)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        decay = min(config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, average in ema.items():
                average.lerp_(parameters[name].detach().float().cpu(), 1 - decay)
        samples += b * accelerator.num_processes
        done = step + 1
        on_step(done, loss.item(), samples / (time.perf_counter() - started))
        curves.step(done, loss.item(), learning_rate(config, step), (seconds_before + time.perf_counter() - started) / 60)

        if accelerator.is_main_process and (done % config.eval_every == 0 or done == config.steps):
            seconds = seconds_before + time.perf_counter() - started
            pipe = snapshot(done, seconds)
            metrics = validate(pipe, val_data, config, run / "samples" / f"step-{done:06d}.mp4")
            if reader is not None:
                metrics["read_back"] = read_back_metrics(pipe, reader, dataset, val_episodes, config.seed + 1)
            curves.evaluation(done, seconds / 60, metrics)
            history.append({"step": done, "loss": loss.item(), "train_seconds": round(seconds, 1), **metrics})
            with output_dir(run / "snapshots" / f"step-{done:06d}", force=True) as tmp:
                save_planner(tmp, pipe.unet, pipe.planner, pipe.scheduler, grounding, sketcher, half=True)
            read = metrics.get("read_back")
            read = (f", read back {read['grasp_point_cm_median']:.2f} cm, gripper {100 * read['gripper_accuracy']:.1f} %"
                    if read else "")
            on_message(f"step {done}: validation PSNR {metrics['psnr']:.2f} dB{read} ({seconds / 60:.1f} min)")
        if accelerator.is_main_process and (done % config.checkpoint_every == 0 or done == config.steps):
            save_checkpoint(run, done, accelerator.unwrap_model(model), optimizer, config, history,
                            seconds_before + time.perf_counter() - started, ema)
        accelerator.wait_for_everyone()

    curves.finish()
    if not accelerator.is_main_process:
        return {}
    seconds = seconds_before + time.perf_counter() - started
    final = history[-1]
    write_json(run / "metrics.json", {"final": final, "history": history, "train_seconds": seconds,
                                      "grounding": grounding_metrics, "sketch": sketch_metrics})
    pipe = snapshot(config.steps, seconds)
    pipe.planner["metrics"] = final
    # The model's files sit at the run's top level beside its checkpoint and snapshots, so they cannot be
    # swapped in one rename: all are written first, then each replaces its old self.
    staged = run / ".model.new"
    with output_dir(staged, force=True) as tmp:
        save_planner(tmp, pipe.unet, pipe.planner, pipe.scheduler, grounding, sketcher)
    for item in staged.iterdir():
        replace_path(item, run / item.name)
    staged.rmdir()
    return {**final, "grounding": grounding_metrics["validation"]["all"], "sketch": sketch_metrics["validation"]["all"]}


def val_data_small(dataset: Dataset, episodes: list[int], config: VideoTrainConfig, grid) -> ClipData:
    """The validation episodes at the plan's size, where the grounding net reads them."""
    return ClipData(dataset, episodes, config.modalities, config.scale, grid)
