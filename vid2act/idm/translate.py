"""Frames from any source -> actions, with the provenance that goes into the actions file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vid2act.errors import Vid2ActError, check_range
from vid2act.formats import read_plan
from vid2act.media import read_frames, resize_frames
from vid2act.idm.model import holds_still, load_idm, predict_actions, predict_keyframe_actions
from vid2act.shipped import resolve
from vid2act.spec import ACTION_SPACE
from vid2act.devices import check_device

MAX_STRIDE = 1000  # dataset frames between two frames of a source


def translate_frames(source: Path, idm: str, resize: bool = False, device: str = "cpu",
                     stride: int | None = None) -> tuple[np.ndarray, dict]:
    """Actions and their provenance. `stride`: dataset frames between the source's frames; None reads it
    from a plan folder's plan.json (1 for anything else)."""
    plan = read_plan(source) if Path(source).is_dir() else None
    if stride is None:
        if plan is not None and plan["frame_interval"] % ACTION_SPACE["frame_interval"]:
            raise Vid2ActError(f"{source}: the plan's frame interval {plan['frame_interval']} is not a multiple "
                               f"of the action interval {ACTION_SPACE['frame_interval']}")
        stride = plan["frame_interval"] // ACTION_SPACE["frame_interval"] if plan is not None else 1
    check_range("--stride", stride, 1, MAX_STRIDE)
    check_device(device)
    folder = resolve(idm, "plan-idm" if plan is not None else "idm")  # `default`: the IDM for what it reads
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
    depth = depth if architecture.modalities == "rgbd" else None
    if stride == 1:
        raw = predict_actions(model, rgb, depth, device=device)
    else:
        raw = predict_keyframe_actions(model, rgb, depth, stride, device=device)
    low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])
    actions = np.clip(raw, low, high)
    source_info = {"policy": "idm", "input": str(source), "idm": str(folder),
                   "idm_head": architecture.head, "modalities": architecture.modalities, "frames": len(rgb),
                   "stride": stride, "resized": resized, "clipped": int((actions != raw).sum()),
                   "holds_still": holds_still(actions)}
    return actions, source_info
