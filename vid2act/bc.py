"""Behavior cloning, the baseline a video planner must beat: the current frame and the instruction -> the
next action, trained on the same demonstrations, run closed loop.

Same encoder budget as the IDM (its conv encoder, same width), plus the instruction's MiniLM sentence
embedding, projected and joined with the image features before the action head. Moves are regressed
(normalized by the dataset's statistics), the gripper classified. Saved as config.json (`type`
vid2act.bc/1) + model.safetensors, trained by one loop that reuses the IDM's checkpointing and accelerate
set-up, so `--resume` after kill -9 continues exactly."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vid2act import __version__
from vid2act.data.dataset import Dataset
from vid2act.errors import UsageError, Vid2ActError
from vid2act.files import write_json
from vid2act.idm.model import encoder_layers, resolve
from vid2act.idm.train import load_checkpoint, save_checkpoint
from vid2act.training import CHECKPOINT, held_out_split, learning_rate, make_accelerator, start_run
from vid2act.sim.world import ACTION_SPACE
from vid2act.video import text

BC_TYPE = "vid2act.bc/1"


@dataclass(frozen=True)
class BCTrainConfig:
    data: str
    out: str
    modalities: str = "rgbd"
    width: int = 16
    hidden: int = 256
    steps: int = 6000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    val_fraction: float = 0.1
    checkpoint_every: int = 250
    seed: int = 0
    device: str = "cpu"

    def check(self) -> None:
        if self.modalities not in ("rgb", "rgbd"):
            raise UsageError(f"unknown modalities {self.modalities!r}; choose rgb or rgbd")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise UsageError("--steps, --batch-size and --lr must be positive")


class BCPolicy(nn.Module):
    def __init__(self, modalities: str, image_size, width: int, hidden: int, normalization: dict):
        super().__init__()
        self.modalities, self.image_size, self.width, self.hidden = modalities, tuple(image_size), width, hidden
        self.normalization = normalization
        channels = 4 if modalities == "rgbd" else 3
        self.image = nn.Sequential(*encoder_layers(channels, width, self.image_size, hidden))
        self.instruction = nn.Sequential(nn.Linear(text.EMBEDDING_DIM, hidden), nn.SiLU())
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, 4))
        self.register_buffer("move_mean", torch.tensor(normalization["move"]["mean"]), persistent=False)
        self.register_buffer("move_std", torch.tensor(normalization["move"]["std"]), persistent=False)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor | None, sentence: torch.Tensor) -> torch.Tensor:
        """uint8 rgb [B, H, W, 3], depth [B, H, W] metres, sentence embedding [B, 384] -> [B, 4]."""
        x = rgb.float() / 127.5 - 1.0
        if self.modalities == "rgbd":
            d = (depth.float() - self.normalization["depth"]["mean"]) / self.normalization["depth"]["std"]
            x = torch.cat([x, d.unsqueeze(-1)], dim=-1)
        features = torch.cat([self.image(x.permute(0, 3, 1, 2)), self.instruction(sentence)], dim=1)
        return self.head(features)

    @torch.no_grad()
    def act(self, rgb: np.ndarray, depth: np.ndarray | None, sentence: torch.Tensor) -> np.ndarray:
        """One action (metres, gripper command) for one frame."""
        self.eval()
        out = self(torch.from_numpy(rgb)[None], torch.from_numpy(depth)[None] if depth is not None else None,
                   sentence[None])[0]
        move = out[:3] * self.move_std + self.move_mean
        return np.array([*move.double().numpy(), float(out[3] > 0)])


def save_bc(model: BCPolicy, folder: Path, extra: dict) -> None:
    from safetensors.torch import save

    from vid2act.files import write_bytes, write_json
    config = {"type": BC_TYPE, "architecture": {"modalities": model.modalities, "image_size": list(model.image_size),
                                                "width": model.width, "hidden": model.hidden},
              "action_space": ACTION_SPACE, "normalization": model.normalization,
              "text_encoder": text.ENCODER_NAME, **extra}
    write_bytes(Path(folder) / "model.safetensors",
                save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))
    write_json(Path(folder) / "config.json", config)


def load_bc(reference: str, device: str = "cpu") -> BCPolicy:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vid2act.files import check_action_space, load_json
    folder = resolve(reference, default="bc-rgbd")
    config_path = folder / "config.json"
    if not config_path.exists():
        raise Vid2ActError(f"{folder} has no config.json; is it a BC policy folder (from `vid2act train bc`)?")
    config = load_json(config_path, "BC config")
    if config.get("type") != BC_TYPE:
        raise Vid2ActError(f"{config_path} has type {config.get('type')!r}; this vid2act reads {BC_TYPE!r}")
    check_action_space(config.get("action_space", {}), config_path)
    try:
        a = config["architecture"]
        model = BCPolicy(a["modalities"], a["image_size"], a["width"], a["hidden"], config["normalization"])
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (KeyError, TypeError) as e:
        raise Vid2ActError(f"{config_path} is malformed ({e.__class__.__name__}: {e})") from None
    except (RuntimeError, SafetensorError, OSError) as e:
        first_line = str(e).strip().splitlines()[0]
        raise Vid2ActError(f"{folder / 'model.safetensors'} is missing, corrupt or does not match its config "
                           f"({first_line})") from None
    return model.to(device).eval()


def train_bc(config: BCTrainConfig, resume: bool = False, force: bool = False,
             on_step: Callable[[int, float, float], None] = lambda step, loss, rate: None,
             on_message: Callable[[str], None] = lambda text: None) -> dict:
    config.check()
    accelerator = make_accelerator(config.device)
    run = Path(config.out)
    start_run(accelerator, run, resume, force, on_message)

    # Data: every (frame, action) pair of the training episodes in memory, the last episodes held out.
    dataset = Dataset(config.data)
    train_episodes, val_episodes = held_out_split(dataset, config.val_fraction, config.data)

    def load(episodes):
        rgb, depth, actions, prompts = [], [], [], []
        for i in episodes:
            e = dataset.episode(i, ("rgb", "depth", "actions", "instruction"))
            rgb.append(e["rgb"][:-1])
            depth.append(e["depth"][:-1])
            actions.append(e["actions"])
            prompts += [str(e["instruction"])] * len(e["actions"])
        return (torch.from_numpy(np.concatenate(rgb)), torch.from_numpy(np.concatenate(depth)),
                torch.from_numpy(np.concatenate(actions).astype(np.float32)), prompts)

    rgb, depth, actions, prompts = load(train_episodes)
    val = load(val_episodes)
    unique = sorted(set(prompts) | set(val[3]))
    sentences = text.encode(unique)["pooled"]
    row = {p: k for k, p in enumerate(unique)}
    sentence_of = torch.tensor([row[p] for p in prompts])
    sample = depth[:: max(1, len(depth) // 2000)].float()
    normalization = {"move": {"mean": actions[:, :3].mean(0).tolist(), "std": actions[:, :3].std(0).clamp_min(1e-6).tolist()},
                     "depth": {"mean": float(sample.mean()), "std": float(sample.std())}}
    on_message(f"{len(actions)} training pairs, {len(val[2])} for validation")

    torch.manual_seed(config.seed)
    model = BCPolicy(config.modalities, dataset.info["image_size"], config.width, config.hidden, normalization)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start, history, seconds_before = 0, [], 0.0
    if resume and (run / CHECKPOINT).exists():
        start, history, seconds_before = load_checkpoint(run, model, optimizer, config)
        on_message(f"resuming {run} at step {start}")
    model, optimizer = accelerator.prepare(model, optimizer)
    mean, std = torch.tensor(normalization["move"]["mean"]), torch.tensor(normalization["move"]["std"])
    use_depth = config.modalities == "rgbd"

    started, samples = time.perf_counter(), 0
    for step in range(start, config.steps):
        model.train()
        rng = np.random.default_rng([config.seed, step, accelerator.process_index])
        rows = torch.from_numpy(rng.integers(0, len(actions), config.batch_size))
        target = actions[rows]
        out = model(rgb[rows].to(accelerator.device), depth[rows].to(accelerator.device) if use_depth else None,
                    sentences[sentence_of[rows]].to(accelerator.device))
        loss = (F.mse_loss(out[:, :3], ((target[:, :3] - mean) / std).to(accelerator.device))
                + F.binary_cross_entropy_with_logits(out[:, 3], target[:, 3].to(accelerator.device)))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        samples += config.batch_size * accelerator.num_processes
        on_step(step + 1, loss.item(), samples / (time.perf_counter() - started))
        if accelerator.is_main_process and ((step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps):
            save_checkpoint(run, step + 1, accelerator.unwrap_model(model), optimizer, config, history,
                            seconds_before + time.perf_counter() - started)
        accelerator.wait_for_everyone()

    if not accelerator.is_main_process:
        return {}
    policy = accelerator.unwrap_model(model).eval()
    with torch.no_grad():
        v_rgb, v_depth, v_actions, v_prompts = val
        predicted = []
        for k in range(0, len(v_actions), 512):
            predicted.append(policy(v_rgb[k:k + 512], v_depth[k:k + 512] if use_depth else None,
                                    sentences[[row[p] for p in v_prompts[k:k + 512]]]))
        predicted = torch.cat(predicted)
    moves = predicted[:, :3] * std + mean
    metrics = {"normalized_mse": dict(zip(("dx", "dy", "dz"), (((moves - v_actions[:, :3]) ** 2).mean(0)
                                                              / std ** 2).tolist())),
               "gripper_accuracy": float(((predicted[:, 3] > 0).float() == v_actions[:, 3]).float().mean()),
               "validation_pairs": len(v_actions)}
    seconds = seconds_before + time.perf_counter() - started
    write_json(run / "metrics.json", {"final": metrics, "train_seconds": seconds})
    save_bc(policy, run, {"training": {**asdict(config), "processes": accelerator.num_processes,
                                       "vid2act_version": __version__},
                          "dataset": {"path": str(Path(config.data).resolve()), "episodes": len(dataset)},
                          "metrics": metrics, "train_seconds": seconds})
    return metrics
