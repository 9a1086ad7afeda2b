"""Frames from any source -> actions, with the provenance that goes into the actions file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vid2act.errors import Vid2ActError
from vid2act.files import read_frames, resize_frames
from vid2act.idm.model import load_idm, predict_actions, resolve
from vid2act.sim.world import ACTION_SPACE


def translate_frames(source: Path, idm: str, resize: bool = False, device: str = "cpu") -> tuple[np.ndarray, dict]:
    folder = resolve(idm)
    model, _ = load_idm(str(folder), device)
    architecture = model.architecture
    rgb, depth = read_frames(source)
    if architecture.modalities == "rgbd" and depth is None:
        raise Vid2ActError(f"the IDM {idm!r} reads RGB-D but {source} carries no depth (videos and PNGs do not; "
                           "give a plan or rollout folder or its frames.npz, or use an RGB model)")
    size = tuple(architecture.image_size)
    resized = rgb.shape[1:3] != size
    if resized:
        if not resize:
            raise Vid2ActError(f"{source} has {rgb.shape[1]}x{rgb.shape[2]} frames; the IDM reads "
                               f"{size[0]}x{size[1]} (pass --resize to resize them)")
        rgb, depth = resize_frames(rgb, depth, size)
    raw = predict_actions(model, rgb, depth if architecture.modalities == "rgbd" else None, device=device)
    low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])
    actions = np.clip(raw, low, high)
    source_info = {"policy": "idm", "input": str(source), "idm": str(folder),
                   "idm_head": architecture.head, "modalities": architecture.modalities, "frames": len(rgb),
                   "resized": resized, "clipped": int((actions != raw).sum())}
    return actions, source_info
