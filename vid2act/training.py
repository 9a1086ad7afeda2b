"""What every training loop shares: the accelerator, the learning-rate schedule, the run folder, the
held-out split. Each loop itself stays in its own file, readable top to bottom."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

from vid2act.errors import UsageError, Vid2ActError
from vid2act.files import LOCK_FILE, clear_folder, lock_folder

CHECKPOINT = "checkpoint"


def check_positive(config, names) -> None:
    """Each named field of `config` must be a finite number above 0 (NaN and infinity are refused too)."""
    for name in names:
        value = getattr(config, name)
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number (got {value})")


def check_device(device: str) -> None:
    if device not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unknown --device {device!r}; choose cpu, cuda or mps")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: no Apple GPU is available here")


def make_accelerator(device: str, mixed_precision: str = "no"):
    from accelerate import Accelerator
    check_device(device)
    if mixed_precision not in ("no", "bf16", "fp16"):
        raise UsageError(f"unknown --mixed-precision {mixed_precision!r}; choose no, bf16 or fp16")
    if mixed_precision == "fp16" and device == "cpu":
        raise UsageError("--mixed-precision fp16 needs a GPU; on a CPU use bf16")
    return Accelerator(cpu=device == "cpu", mixed_precision=mixed_precision)


def learning_rate(config, step: int) -> float:
    """Linear warm-up over `config.warmup` steps, then cosine decay to a tenth of `config.lr`."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def start_run(accelerator, run: Path, resume: bool, force: bool, on_message: Callable[[str], None]):
    """Make and lock the run folder on the main process: an existing run needs --resume (continue) or --force
    (start over), and a run another training is writing is refused. Returns the lock (None elsewhere):
    it is held until the process ends or the caller closes it."""
    lock = None
    if accelerator.is_main_process:
        if run.exists() and any(p.name != LOCK_FILE for p in run.iterdir()) and not resume and not force:
            raise UsageError(f"{run} already exists; pass --resume to continue it or --force to start over")
        lock = lock_folder(run, "train")
        if force and not resume:
            clear_folder(run)
        if resume and not (run / CHECKPOINT).exists():
            on_message(f"no checkpoint in {run} yet: starting from step 0")
    accelerator.wait_for_everyone()
    return lock


def held_out_split(dataset, fraction: float, where: str) -> tuple[list[int], list[int]]:
    """Training and validation episode indices: the last `fraction` of the episodes are held out."""
    held_out = max(1, round(len(dataset) * fraction))
    if len(dataset) - held_out < 1:
        raise Vid2ActError(f"{where} has {len(dataset)} episodes; need at least 2 (one for validation)")
    return list(range(len(dataset) - held_out)), list(range(len(dataset) - held_out, len(dataset)))
