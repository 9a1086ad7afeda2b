"""Behavior cloning, the baseline a video planner must beat: the current frame and the instruction -> the
next action, trained on the same demonstrations, run closed loop.

Same encoder budget as the IDM (its conv encoder, same width), plus the instruction's MiniLM sentence
embedding, projected and joined with the image features before the action head. Moves are regressed
(normalized by the dataset's statistics), the gripper classified. Saved as config.json (`type`
vid2act.bc/1) + model.safetensors, trained by one loop on the shared checkpointing and accelerate
set-up, so `--resume` after kill -9 continues exactly.

With `--grounding-from` (a planner), BC reads what the planner reads besides the frame: the two heatmaps of where
the named object is and where it goes, from that planner's grounding net (trained on the demonstrations
alone), kept in the policy's `grounding/` folder. "Plan vs BC" then compares the two at equal information."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vid2act.version import __version__
from vid2act.configs import BCTrainConfig, inputs_of
from vid2act.data.dataset import Dataset
from vid2act.errors import UsageError, Vid2ActError
from vid2act.outputs import write_json
from vid2act.nn import encoder_layers
from vid2act.shipped import resolve
from vid2act.training import (CHECKPOINT, Curves, FrameStore, held_out_split, learning_rate, load_checkpoint,
                              make_accelerator, releases_run_lock, save_checkpoint, prepare_run, shard, start_run)
from vid2act.spec import ACTION_SPACE
from vid2act.video import text
from vid2act.video.grounding import (GROUNDING_FOLDER, HEATMAP_SIGMA, PlaceNet, demo_pixels, heatmaps,
                                     load_grounding, locate, save_grounding)

BC_TYPE = "vid2act.bc/1"


class Grounder:
    """A planner's grounding net and how it reads a frame (the planner's scale and depth normalization); a
    plain object, so that its weights stay out of the BC policy's own."""

    def __init__(self, net: PlaceNet, input: dict):
        self.net, self.input = net.eval(), input

    @classmethod
    def of(cls, pipe, name: str | None = None) -> "Grounder":
        """A loaded planner's grounding; `name` (the planner's folder or shipped name) is kept in the BC run."""
        return cls(pipe.grounding, {"scale": pipe.shape.scale, "depth_mean": pipe.planner["depth_mean"],
                                    "depth_std": pipe.planner["depth_std"], **({"planner": name} if name else {})})

    @torch.no_grad()
    def locate(self, rgb: np.ndarray, depth: np.ndarray | None, prompt: str) -> torch.Tensor:
        """The two points [2, 2] (column, row on the grounding's grid) for a frame and its instruction."""
        from vid2act.video.pipeline import shrink, to_model
        small = shrink(torch.from_numpy(rgb)[None], torch.from_numpy(depth)[None] if depth is not None else None,
                       self.input["scale"])
        embedded = text.encode([prompt])
        logits = self.net(to_model(*small, self.input["depth_mean"], self.input["depth_std"]), embedded["tokens"],
                          embedded["mask"])
        return locate(logits)[0]


class BCNet(nn.Module):
    def __init__(self, modalities: str, image_size, width: int, hidden: int, normalization: dict,
                 grounded: bool = False):
        super().__init__()
        self.modalities, self.image_size, self.width, self.hidden = modalities, tuple(image_size), width, hidden
        self.normalization, self.grounded = normalization, grounded
        self.grounder: Grounder | None = None  # with `grounded`: what makes the heatmaps (not trained here)
        channels = (4 if modalities == "rgbd" else 3) + (2 if grounded else 0)
        self.image = nn.Sequential(*encoder_layers(channels, width, self.image_size, hidden))
        self.instruction = nn.Sequential(nn.Linear(text.EMBEDDING_DIM, hidden), nn.SiLU())
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, 4))
        self.register_buffer("move_mean", torch.tensor(normalization["move"]["mean"]), persistent=False)
        self.register_buffer("move_std", torch.tensor(normalization["move"]["std"]), persistent=False)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor | None, sentence: torch.Tensor,
                heat: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 rgb [B, H, W, 3], depth [B, H, W] metres, sentence embedding [B, 384] (and with grounding the
        heatmaps [B, 2, H, W]) -> [B, 4]."""
        x = rgb.float() / 127.5 - 1.0
        if self.modalities == "rgbd":
            d = (depth.float() - self.normalization["depth"]["mean"]) / self.normalization["depth"]["std"]
            x = torch.cat([x, d.unsqueeze(-1)], dim=-1)
        x = x.permute(0, 3, 1, 2)
        if self.grounded:
            x = torch.cat([x, heat.to(x.dtype)], dim=1)
        features = torch.cat([self.image(x), self.instruction(sentence)], dim=1)
        return self.head(features)

    def heat(self, points: torch.Tensor) -> torch.Tensor:
        """Grid points [B, 2, 2] of the grounding -> heatmaps [B, 2, H, W] at the frame's size."""
        scale = self.grounder.input["scale"]
        return heatmaps(points * scale, self.image_size, HEATMAP_SIGMA * scale)

    @torch.no_grad()
    def act(self, rgb: np.ndarray, depth: np.ndarray | None, sentence: torch.Tensor,
            points: torch.Tensor | None = None) -> np.ndarray:
        """One action (metres, gripper command) for one frame (and, grounded, the episode's two points)."""
        self.eval()
        heat = self.heat(points[None]) if self.grounded else None
        out = self(torch.from_numpy(rgb)[None], torch.from_numpy(depth)[None] if depth is not None else None,
                   sentence[None], heat)[0]
        move = out[:3] * self.move_std + self.move_mean
        return np.array([*move.double().numpy(), float(out[3] > 0)])


def save_bc(model: BCNet, folder: Path, extra: dict) -> None:
    from safetensors.torch import save

    from vid2act.outputs import write_bytes, write_json
    config = {"type": BC_TYPE, "architecture": {"modalities": model.modalities, "image_size": list(model.image_size),
                                                "width": model.width, "hidden": model.hidden,
                                                "grounded": model.grounded},
              "action_space": ACTION_SPACE, "normalization": model.normalization,
              "text_encoder": text.ENCODER_NAME, **extra}
    write_bytes(Path(folder) / "model.safetensors",
                save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))
    if model.grounded:
        save_grounding(Path(folder) / GROUNDING_FOLDER, model.grounder.net, {"input": model.grounder.input})
    write_json(Path(folder) / "config.json", config)


def load_bc(reference: str, device: str = "cpu") -> BCNet:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vid2act.formats import check_action_space, load_json
    folder = resolve(reference, "bc")
    config_path = folder / "config.json"
    if not config_path.exists():
        raise Vid2ActError(f"{folder} has no config.json; is it a BC policy folder (from `vid2act train bc`)?")
    config = load_json(config_path, "BC config")
    if config.get("type") != BC_TYPE:
        raise Vid2ActError(f"{config_path} has type {config.get('type')!r}; this vid2act reads {BC_TYPE!r}")
    check_action_space(config.get("action_space", {}), config_path)
    try:
        a = config["architecture"]
        model = BCNet(a["modalities"], a["image_size"], a["width"], a["hidden"], config["normalization"],
                         a.get("grounded", False))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        if model.grounded:
            net, grounding_config = load_grounding(folder / GROUNDING_FOLDER)
            model.grounder = Grounder(net, grounding_config["input"])
    except (KeyError, TypeError) as e:
        raise Vid2ActError(f"{config_path} is malformed ({e.__class__.__name__}: {e})") from None
    except (RuntimeError, SafetensorError, OSError) as e:
        first_line = str(e).strip().splitlines()[0]
        raise Vid2ActError(f"{folder / 'model.safetensors'} is missing, corrupt or does not match its config "
                           f"({first_line})") from None
    return model.to(device).eval()


@releases_run_lock
def train_bc(config: BCTrainConfig, resume: bool = False, force: bool = False,
             on_step: Callable[[int, float, float], None] = lambda step, loss, rate: None,
             on_message: Callable[[str], None] = lambda text: None) -> dict:
    config.check()
    prepare_run(config, "train bc", resume, force, inputs_of(config))  # before any work
    run = Path(config.out)
    accelerator = make_accelerator(config.device, report_to=config.report_to, run=run)
    dataset = Dataset(config.data)  # checked before the run folder exists: a refusal leaves nothing
    train_episodes, val_episodes = held_out_split(dataset, config.val_fraction, config.data)
    planner = None
    if config.grounding_from:
        from vid2act.video.pipeline import load_planner
        planner = load_planner(config.grounding_from)
        if planner.shape.image_size != tuple(dataset.info["image_size"]):
            raise UsageError(f"--grounding-from {config.grounding_from} reads {planner.shape.image_size} frames; the "
                             f"dataset's are {tuple(dataset.info['image_size'])}")
    start_run(accelerator, run, config, "train bc", resume, force, on_message)  # locked until this function returns

    # Data: every (frame, action) pair of the training episodes in memory, the last episodes held out.
    grid = planner.shape.plan_size if planner is not None else (1, 1)
    grounder = None if planner is None else Grounder.of(planner, config.grounding_from)

    def load(episodes):
        """The frames that have an action (`FrameStore`), the actions, each pair's prompt, and its episode's two
        demonstrated places on the grid."""
        rgb, depth, actions, prompts, places = [], [], [], [], []
        for i in episodes:
            e = dataset.episode(i, ("rgb", "depth", "actions", "instruction", "ee_target", "scene"))
            rgb.append(e["rgb"][:-1])
            depth.append(e["depth"][:-1])
            actions.append(e["actions"])
            prompts += [str(e["instruction"])] * len(actions[-1])
            places.append(np.repeat(demo_pixels(e, grid)[None], len(actions[-1]), axis=0))
        return (FrameStore(rgb, depth), torch.from_numpy(np.concatenate(actions).astype(np.float32)), prompts,
                torch.from_numpy(np.concatenate(places)).float())

    frames, actions, prompts, places = load(shard(train_episodes, accelerator))
    val = load(val_episodes)
    unique = sorted(set(prompts) | set(val[2]))
    sentences = text.encode(unique)["pooled"]
    row = {p: k for k, p in enumerate(unique)}
    sentence_of = torch.tensor([row[p] for p in prompts])
    normalization = {"move": {"mean": actions[:, :3].mean(0).tolist(), "std": actions[:, :3].std(0).clamp_min(1e-6).tolist()},
                     "depth": frames.depth_normalization()}
    on_message(f"{len(actions)} training pairs, {len(val[1])} for validation")

    torch.manual_seed(config.seed)
    model = BCNet(config.modalities, dataset.info["image_size"], config.width, config.hidden, normalization,
                     grounded=planner is not None)
    model.grounder = grounder
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start, history, seconds_before = 0, [], 0.0
    if resume and (run / CHECKPOINT).exists():
        start, history, seconds_before = load_checkpoint(run, model, optimizer, config)
        on_message(f"resuming {run} at step {start}")
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    curves = Curves(run, accelerator, start, config.report_to, asdict(config))
    mean, std = torch.tensor(normalization["move"]["mean"]), torch.tensor(normalization["move"]["std"])
    use_depth = config.modalities == "rgbd"

    started, samples = time.perf_counter(), 0
    for step in range(start, config.steps):
        model.train()
        rng = np.random.default_rng([config.seed, step, accelerator.process_index])
        rows = torch.from_numpy(rng.integers(0, len(actions), config.batch_size))
        target = actions[rows]
        heat = None
        if planner is not None:  # the demonstrated places, off by a fraction of a cell as the grounding is
            jitter = torch.from_numpy(rng.normal(0, 0.3, (len(rows), 2, 2))).float()
            heat = unwrapped.heat(places[rows] + jitter).to(accelerator.device)
        out = model(frames.rgb[rows].to(accelerator.device), frames.depth[rows].to(accelerator.device) if use_depth else None,
                    sentences[sentence_of[rows]].to(accelerator.device), heat)
        loss = (F.mse_loss(out[:, :3], ((target[:, :3] - mean) / std).to(accelerator.device))
                + F.binary_cross_entropy_with_logits(out[:, 3], target[:, 3].to(accelerator.device)))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        samples += config.batch_size * accelerator.num_processes
        on_step(step + 1, loss.item(), samples / (time.perf_counter() - started))
        curves.step(step + 1, loss.item(), learning_rate(config, step),
                    (seconds_before + time.perf_counter() - started) / 60)
        if accelerator.is_main_process and ((step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps):
            curves.save()  # BC is validated once, at the end: its curves are drawn with each checkpoint
            save_checkpoint(run, step + 1, accelerator.unwrap_model(model), optimizer, config, history,
                            seconds_before + time.perf_counter() - started)
        accelerator.wait_for_everyone()

    if not accelerator.is_main_process:
        return {}
    policy = accelerator.unwrap_model(model).eval()
    with torch.no_grad():
        v_frames, v_actions, v_prompts, v_places = val
        predicted = []
        for k in range(0, len(v_actions), 512):
            heat = policy.heat(v_places[k:k + 512]) if policy.grounded else None
            predicted.append(policy(v_frames.rgb[k:k + 512], v_frames.depth[k:k + 512] if use_depth else None,
                                    sentences[[row[p] for p in v_prompts[k:k + 512]]], heat))
        predicted = torch.cat(predicted)
    moves = predicted[:, :3] * std + mean
    metrics = {"normalized_mse": dict(zip(("dx", "dy", "dz"), (((moves - v_actions[:, :3]) ** 2).mean(0)
                                                              / std ** 2).tolist())),
               "gripper_accuracy": float(((predicted[:, 3] > 0).float() == v_actions[:, 3]).float().mean()),
               "validation_pairs": len(v_actions)}
    seconds = seconds_before + time.perf_counter() - started
    curves.evaluation(config.steps, seconds / 60, {k: metrics[k] for k in ("normalized_mse", "gripper_accuracy")})
    curves.finish()
    write_json(run / "metrics.json", {"final": metrics, "train_seconds": seconds})
    save_bc(policy, run, {"training": {**asdict(config), "processes": accelerator.num_processes,
                                       "vid2act_version": __version__},
                          "dataset": {"path": str(Path(config.data).resolve()), "episodes": len(dataset)},
                          "metrics": metrics, "train_seconds": seconds})
    return metrics
