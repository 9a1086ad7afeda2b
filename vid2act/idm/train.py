"""Train the inverse-dynamics model: one loop, top to bottom. Runs unchanged under `accelerate launch`
(several GPUs, processes or machines): every process draws its own batches, gradients are averaged, and
the main process writes checkpoints.

Batches are drawn from a generator seeded by (seed, step, process), and the learning rate is a function of
the step, so a run resumed from a checkpoint continues exactly where it stopped."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from vid2act.version import __version__
from vid2act.configs import IDMTrainConfig, inputs_of
from vid2act.data.dataset import Dataset
from vid2act.outputs import write_json
from vid2act.errors import UsageError
from vid2act.idm.model import (IDMArchitecture, InverseDynamicsModel, load_idm, predict_actions, save_idm,
                               window_offsets)
from vid2act.video.readback import DRAWN_VAL_CLIPS, drawn_batch, drawn_keyframes, read_drawn
from vid2act.training import (CHECKPOINT, Curves, FrameStore, held_out_split, learning_rate, load_checkpoint,
                              make_accelerator, releases_run_lock, save_checkpoint, prepare_run, shard, start_run)



class FrameData:
    """Every frame of some episodes in memory (`FrameStore`) and one row per training sample: the frames it
    reads (its window) and its label."""

    def __init__(self, dataset: Dataset, episodes: list[int], architecture: IDMArchitecture):
        rgb, depth, target, gripper, samples = [], [], [], [], []
        for k, i in enumerate(episodes):
            episode = dataset.episode(i, ("rgb", "depth", "actions", "ee_target", "scene"))
            actions = episode["actions"]
            if architecture.head == "pose":  # frame t: commanded point, gripper command in force
                start_gripper = json.loads(episode["scene"])["state"]["robot"]["gripper"]
                target.append(episode["ee_target"])
                gripper.append(np.concatenate([[start_gripper], actions[:, 3]]))
            else:  # label of pair (t, t+1): action t
                target.append(actions[:, :3])
                gripper.append(actions[:, 3])
            samples.append(np.stack([np.full(len(target[-1]), k), np.arange(len(target[-1]))], axis=1))
            rgb.append(episode["rgb"])
            if architecture.modalities == "rgbd":
                depth.append(episode["depth"])
        self.frames = FrameStore(rgb, depth if architecture.modalities == "rgbd" else None)
        samples = torch.from_numpy(np.concatenate(samples))
        self.index = self.frames.rows(samples[:, 0], samples[:, 1], torch.from_numpy(window_offsets(architecture)))
        self.target = torch.from_numpy(np.concatenate(target).astype(np.float32))
        self.gripper = torch.from_numpy(np.concatenate(gripper).astype(np.float32))

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: torch.Tensor, device):
        frames = self.index[rows]
        depth = self.frames.depth[frames].to(device) if self.frames.depth is not None else None
        return self.frames.rgb[frames].to(device), depth, self.target[rows].to(device), self.gripper[rows].to(device)


# --- validation --------------------------------------------------------------------------------------------
@torch.no_grad()
def validate(model: InverseDynamicsModel, dataset: Dataset, episodes: list[int], device) -> dict:
    """Action-level errors on held-out episodes, whatever the head: per-dimension MSE of the moves divided
    by the dataset's variance of that dimension, gripper accuracy, and the drift of the commanded point
    over a whole episode."""
    predicted, true, drift = [], [], []
    for i in episodes:
        episode = dataset.episode(i, ("rgb", "depth", "actions"))
        depth = episode["depth"] if model.architecture.modalities == "rgbd" else None
        actions = predict_actions(model, episode["rgb"], depth, device=device)
        predicted.append(actions)
        true.append(episode["actions"])
        drift.append(np.linalg.norm(actions[:, :3].sum(0) - episode["actions"][:, :3].sum(0)))
    predicted, true = np.concatenate(predicted), np.concatenate(true).astype(np.float64)
    # a dimension that never moves in the data (an imported dataset can have one) scores against a tiny floor
    variance = np.maximum(np.square(dataset.stats["actions"]["std"][:3]), 1e-12)
    nmse = ((predicted[:, :3] - true[:, :3]) ** 2).mean(0) / variance
    return {"normalized_mse": dict(zip(("dx", "dy", "dz"), nmse.tolist())),
            "rmse_m": dict(zip(("dx", "dy", "dz"), np.sqrt(((predicted[:, :3] - true[:, :3]) ** 2).mean(0)).tolist())),
            "gripper_accuracy": float((predicted[:, 3] == true[:, 3]).mean()),
            "episode_drift_m": {"mean": float(np.mean(drift)), "max": float(np.max(drift))},
            "episodes": len(episodes), "actions": len(true)}


# --- keyframes a planner draws (`--planner`) ---------------------------------------------------------------
def load_reading_planner(config: IDMTrainConfig, architecture: IDMArchitecture):
    """The planner whose drawings the IDM learns to read, checked to draw what this IDM reads."""
    from vid2act.video.pipeline import load_planner
    planner = load_planner(config.planner, config.device)
    shape = planner.shape
    if tuple(shape.image_size) != tuple(architecture.image_size):
        raise UsageError(f"--planner {config.planner} draws {shape.image_size} frames; the data's are "
                         f"{architecture.image_size}")
    if architecture.modalities == "rgbd" and shape.modalities != "rgbd":
        raise UsageError(f"--planner {config.planner} draws no depth; this IDM reads rgbd (give --modalities rgb)")
    return planner


# --- the loop ---------------------------------------------------------------------------------------------
@releases_run_lock
def train(config: IDMTrainConfig, resume: bool = False, force: bool = False,
          on_step: Callable[[int, float, float], None] = lambda step, loss, rate: None,
          on_message: Callable[[str], None] = lambda text: None) -> dict:
    config.check()
    prepare_run(config, "train idm", resume, force, inputs_of(config))  # before any work
    run = Path(config.out)
    accelerator = make_accelerator(config.device, report_to=config.report_to, run=run)
    dataset = Dataset(config.data)  # everything is checked before the run folder exists: a refusal leaves nothing
    architecture = IDMArchitecture(config.head, config.modalities, tuple(dataset.info["image_size"]), config.context,
                                   config.width)
    architecture.check()
    train_episodes, val_episodes = held_out_split(dataset, config.val_fraction, config.data)
    source = load_idm(config.init_from)[0] if config.init_from else None
    if source is not None and source.architecture != architecture:
        raise UsageError(f"--init-from {config.init_from} has another architecture ({source.architecture}); "
                         f"give the same --head, --modalities, --context and --width")
    planner = load_reading_planner(config, architecture) if config.planner else None
    start_run(accelerator, run, config, "train idm", resume, force, on_message)  # locked until this function returns

    # Data: every frame in memory, the last episodes held out for validation.
    data = FrameData(dataset, shard(train_episodes, accelerator), architecture)
    normalization = {"target": {"mean": data.target.mean(0).tolist(),
                                "std": data.target.std(0).clamp_min(1e-6).tolist(),
                                "of": "commanded grasp point (m)" if config.head == "pose" else "move (m)"},
                     "depth": data.frames.depth_normalization()}
    on_message(f"{len(train_episodes)} training episodes ({len(data)} samples), {len(val_episodes)} for validation")
    drawn = drawn_val = None
    if planner is not None:
        started = time.perf_counter()
        drawn = drawn_keyframes(planner, dataset, shard(train_episodes, accelerator), config.drawn_clips,
                                config.seed)
        drawn_val = drawn_keyframes(planner, dataset, val_episodes, DRAWN_VAL_CLIPS, config.seed + 1)
        on_message(f"{len(drawn['rgb'])} keyframes drawn by {config.planner} in "
                   f"{time.perf_counter() - started:.0f} s")

    torch.manual_seed(config.seed)
    if source is not None:  # its normalization too: its outputs mean what they meant
        normalization = source.normalization
    model = InverseDynamicsModel(architecture, normalization)
    if source is not None:
        model.load_state_dict(source.state_dict())
    at_start = read_drawn(model, drawn_val, "cpu") if drawn_val is not None else None
    if at_start is not None:
        on_message(f"drawn keyframes read at the start: grasp point {at_start['grasp_point_cm_median']} cm "
                   f"(median), gripper {at_start['gripper_accuracy']:.1%} right")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start, metrics_log, seconds_before = 0, [], 0.0
    if resume and (run / CHECKPOINT).exists():
        start, metrics_log, seconds_before = load_checkpoint(run, model, optimizer, config)
    if start:
        on_message(f"resuming {run} at step {start}")
    model, optimizer = accelerator.prepare(model, optimizer)
    curves = Curves(run, accelerator, start, config.report_to, asdict(config))
    target_mean = torch.tensor(normalization["target"]["mean"], device=accelerator.device)
    target_std = torch.tensor(normalization["target"]["std"], device=accelerator.device)

    started, samples = time.perf_counter(), 0
    for step in range(start, config.steps):
        model.train()
        rng = np.random.default_rng([config.seed, step, accelerator.process_index])
        real = config.batch_size // 2 if drawn is not None else config.batch_size
        rows = torch.from_numpy(rng.integers(0, len(data), real))
        rgb, depth, target, gripper = data.batch(rows, accelerator.device)
        if drawn is not None:  # the other half: drawn keyframes, each repeated over the window as a plan is read
            pick = torch.from_numpy(rng.integers(0, len(drawn["rgb"]), config.batch_size - real))
            more = drawn_batch(drawn, pick, architecture.window, accelerator.device)
            rgb, target, gripper = torch.cat([rgb, more[0]]), torch.cat([target, more[2]]), torch.cat([gripper, more[3]])
            depth = torch.cat([depth, more[1]]) if depth is not None else None
        output = model(rgb, depth)
        loss = (F.mse_loss(output[:, :3], (target - target_mean) / target_std)
                + F.binary_cross_entropy_with_logits(output[:, 3], gripper))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        samples += config.batch_size * accelerator.num_processes
        done = step + 1
        on_step(done, loss.item(), samples / (time.perf_counter() - started))
        minutes = (seconds_before + time.perf_counter() - started) / 60
        curves.step(done, loss.item(), learning_rate(config, step), minutes)

        if accelerator.is_main_process and (done % config.eval_every == 0 or done == config.steps):
            metrics = validate(accelerator.unwrap_model(model), dataset, val_episodes, accelerator.device)
            if drawn_val is not None:
                metrics["drawn"] = read_drawn(accelerator.unwrap_model(model), drawn_val, accelerator.device)
            metrics_log.append({"step": done, "loss": loss.item(), **metrics})
            curves.evaluation(done, minutes, {k: metrics[k] for k in ("normalized_mse", "gripper_accuracy",
                                                                      "episode_drift_m")})
            on_message(f"step {done}: normalized MSE {metrics['normalized_mse']}, gripper accuracy "
                       f"{metrics['gripper_accuracy']:.3f}, drift {metrics['episode_drift_m']['mean'] * 100:.1f} cm"
                       + (f"; drawn keyframes {metrics['drawn']['grasp_point_cm_median']} cm" if "drawn" in metrics else ""))
        if accelerator.is_main_process and (done % config.checkpoint_every == 0 or done == config.steps):
            save_checkpoint(run, done, accelerator.unwrap_model(model), optimizer, config, metrics_log,
                            seconds_before + time.perf_counter() - started)
        accelerator.wait_for_everyone()

    curves.finish()
    if not accelerator.is_main_process:
        return {}
    final = metrics_log[-1]
    seconds = seconds_before + time.perf_counter() - started
    write_json(run / "metrics.json", {"final": final, "history": metrics_log, "train_seconds": seconds,
                                      **({"drawn_at_start": at_start} if at_start is not None else {})})
    provenance = {"path": str(Path(config.data).resolve()), "format": dataset.info["format"],
                  "episodes": len(dataset), "tasks": list(dataset.info["tasks"]),
                  "split": dataset.info["config"]["split"], "train_episodes": len(train_episodes),
                  "validation_episodes": len(val_episodes)}
    save_idm(accelerator.unwrap_model(model), run, {
        "training": {**asdict(config), "processes": accelerator.num_processes, "vid2act_version": __version__},
        "dataset": provenance, "metrics": final})
    return final
