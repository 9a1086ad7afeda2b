"""Which compute device a command may ask for: cpu, or cuda / mps where present."""
from __future__ import annotations

from vid2act.errors import UsageError

DEVICES = ("cpu", "cuda", "mps")


def check_device(device: str) -> None:
    """Refuse an unknown device, or one this machine lacks (torch is imported only to ask for a GPU)."""
    if device not in DEVICES:
        raise UsageError(f"unknown --device {device!r}; choose cpu, cuda or mps")
    if device == "cpu":
        return
    import torch
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: no Apple GPU is available here")
