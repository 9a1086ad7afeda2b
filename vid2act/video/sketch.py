"""The sketch: (the current frame, the grounding's two places, the instruction) -> where the grasp point is at
each keyframe of the chunk and whether the gripper is closed there. The UNet then draws the arm at the
sketched places, so the chunk's geometry is decided by a net that localizes (what a small conv net learns
in minutes on a CPU) and the UNet only has to draw (what it does well); `docs/design.md` says why.

A keyframe's grasp point is a 3-D point; the sketch marks it by two image points, the grasp point itself
and its shadow (the point on the table straight below it), which fix it (two rays, one vertical line).
Both are logit maps on the plan's grid, like the grounding's, and the gripper is one logit per keyframe.
The UNet reads them as Gaussian heatmaps and one plane per keyframe (+1 closed, -1 open).

Labels come from the demonstration alone: the commanded grasp point and the gripper command in force at
each frame (what the IDM reads), projected with the dataset's camera."""
from __future__ import annotations

import numpy as np
import torch

from vid2act.video.grounding import HEATMAP_SIGMA, heatmaps, locate

SKETCH_TYPE = "vid2act.sketch/1"
SKETCH_FOLDER = "sketch"  # beside grounding/ in a planner folder
MARKS = ("grasp point", "shadow")  # the two image points per keyframe


def frame_marks(ee_target: np.ndarray, gripper: np.ndarray, camera, image_size, grid) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of an episode: its grasp point and shadow on the grid [T, 2, 2] (column, row) and whether the
    gripper command in force is closed [T], from the commanded grasp points [T, 3] and the gripper command in
    force at each frame [T] (the start state's, then each action's)."""
    shadow = np.concatenate([ee_target[:, :2], np.zeros((len(ee_target), 1))], axis=1)
    pixels = camera.project(np.stack([ee_target, shadow], axis=1), image_size)
    pixels = pixels * np.array([grid[1] / image_size[1], grid[0] / image_size[0]])
    return pixels.astype(np.float32), np.asarray(gripper) > 0.5


def conditions(marks: torch.Tensor, closed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """marks [B, K, 2, 2] and closed [B, K] -> what the UNet reads [B, 3K, h, w]: the K x 2 marks as heatmaps,
    then one plane per keyframe, +1 where the gripper is closed and -1 where it is open."""
    b, k = closed.shape
    heat = heatmaps(marks.reshape(b, 2 * k, 2), grid, HEATMAP_SIGMA)
    planes = (2 * closed.float() - 1)[:, :, None, None].expand(b, k, *grid)
    return torch.cat([heat, planes], dim=1)


def read(logits: torch.Tensor, flags: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The sketch net's logits [B, 2K, h, w] and flags [B, K] -> marks [B, K, 2, 2] and closed [B, K]."""
    marks = locate(logits).view(len(logits), frames, len(MARKS), 2)
    return marks, flags > 0


def to_world(marks: np.ndarray, camera, image_size, grid) -> np.ndarray:
    """Marks [..., 2, 2] on the grid -> grasp points [..., 3] in world metres: the shadow's ray meets the table,
    and the grasp point's ray passes closest to the vertical line there."""
    scale = np.array([image_size[1] / grid[1], image_size[0] / grid[0]])
    foot = camera.unproject_to_height(marks[..., 1, :] * scale, 0.0, image_size)
    near = camera.unproject_to_height(marks[..., 0, :] * scale, 0.0, image_size)
    eye = np.asarray(camera.eye, dtype=float)
    ray = near - eye
    # the point on the ray eye + s * ray nearest the vertical line through foot, in the xy plane
    d = ray[..., :2]
    s = ((foot[..., :2] - eye[:2]) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-12)
    z = eye[2] + s * ray[..., 2]
    return np.concatenate([foot[..., :2], z[..., None]], axis=-1)
