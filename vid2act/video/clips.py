"""The clips every planner trainer draws from: episodes' frames in memory at the plan's size, their prompts,
their demonstrated places and each frame's sketch marks."""
from __future__ import annotations

import json

import numpy as np
import torch

from vid2act.camera import Camera
from vid2act.data.dataset import Dataset
from vid2act.training import FrameStore
from vid2act.video import sketch, text
from vid2act.video.grounding import PlaceNet, demo_pixels, demo_points, locate
from vid2act.video.pipeline import shrink, to_model


class ClipData:
    """Every frame of some episodes in memory (rgb uint8, depth float16) at 1/`scale`, their prompts'
    embeddings, each episode's two demonstrated places (grid coordinates, and world metres to score), and
    each frame's sketch marks and gripper (`sketch.py`) with its commanded grasp point. With `full_size`, also
    every frame at the dataset's size (`--reader` draws chunks onto them)."""

    def __init__(self, dataset: Dataset, episodes: list[int], modalities: str, scale: int, grid: tuple[int, int],
                 recovery: tuple[Dataset, list[int]] | None = None, full_size: bool = False):
        rgb, depth, prompts, pixels, points, tasks = [], [], [], [], [], []
        full_rgb, full_depth = [], []
        marks, closed, grasp, expert_from = [], [], [], []
        sources = [(dataset, i) for i in episodes] + ([(recovery[0], i) for i in recovery[1]] if recovery else [])
        for source, i in sources:
            episode = source.episode(i, ("rgb", "depth", "instruction", "task", "scene", "ee_target", "actions"))
            expert_from.append(source.expert_from(i))
            scene = json.loads(episode["scene"])
            camera = Camera.from_json(scene["camera"])
            gripper = np.concatenate([[scene["state"]["robot"]["gripper"]], episode["actions"][:, 3]])
            frame_marks, frame_closed = sketch.frame_marks(episode["ee_target"], gripper, camera,
                                                           tuple(dataset.info["image_size"]), grid)
            marks.append(frame_marks)
            closed.append(frame_closed)
            grasp.append(episode["ee_target"])
            episode_depth = torch.from_numpy(episode["depth"]) if modalities == "rgbd" else None
            small_rgb, small_depth = shrink(torch.from_numpy(episode["rgb"]), episode_depth, scale)
            if full_size:
                full_rgb.append(episode["rgb"])
                if episode_depth is not None:
                    full_depth.append(episode_depth)
            rgb.append(small_rgb)
            if small_depth is not None:
                depth.append(small_depth)
            prompts.append(str(episode["instruction"]))
            tasks.append(str(episode["task"]))
            pixels.append(demo_pixels(episode, grid))
            points.append(demo_points(episode["ee_target"], episode["actions"][:, 3]))
        self.camera = camera
        self.marks = torch.from_numpy(np.concatenate(marks))  # [F, 2, 2]
        self.closed = torch.from_numpy(np.concatenate(closed))  # [F]
        self.grasp = np.concatenate(grasp)  # [F, 3] metres
        self.image_size = tuple(dataset.info["image_size"])
        self.store = FrameStore(rgb, depth)
        self.full = FrameStore(full_rgb, full_depth) if full_size else None
        self.lengths = self.store.lengths
        self.prompts, self.tasks = prompts, tasks
        self.pixels = torch.tensor(np.stack(pixels), dtype=torch.float32)  # [N, 2, 2]
        self.points = np.stack(points)  # [N, 2, 3]
        unique = sorted(set(prompts))
        row = {p: k for k, p in enumerate(unique)}
        self.prompt_row = torch.tensor([row[p] for p in prompts])
        self.embeddings = text.encode(unique)
        # A recovery episode's frames before its expert took over are another policy's: no clip starts there.
        self.expert_from = torch.tensor(expert_from)
        self.demonstrations = torch.nonzero(self.expert_from == 0)[:, 0]  # the expert's from the first frame

    @torch.no_grad()
    def ground_recovery(self, net: PlaceNet, depth_mean: float, depth_std: float) -> None:
        """A recovery episode's places become the grounding's reading of its first frame, as a closed-loop
        policy reads them: its own first grasp or first time down may be the policy's that went wrong (push:
        the object's place 15 cm from the object, median, against a demonstration's 7 cm behind it)."""
        rows = torch.nonzero(self.expert_from > 0)[:, 0]
        for k in range(0, len(rows), 256):
            part = rows[k:k + 256]
            prompt = self.prompt(part, "cpu")
            frames = self.frames(self.store.starts[part], depth_mean, depth_std)
            self.pixels[part] = locate(net(frames, prompt["tokens"], prompt["mask"])).float()

    def clip_starts(self, rng: np.random.Generator, episodes: torch.Tensor, at_beginning: float) -> torch.Tensor:
        """Each clip's first frame: its episode's first expert frame for a share `at_beginning` of the clips,
        any expert frame for the rest."""
        b = len(episodes)
        expert = self.expert_from[episodes].numpy()
        lengths = self.lengths[episodes].numpy() - expert
        return torch.from_numpy(expert + np.where(rng.random(b) < at_beginning, 0,
                                                  (rng.random(b) * lengths).astype(np.int64)))

    def __len__(self) -> int:
        return len(self.lengths)

    def windows(self, episodes: torch.Tensor, first: torch.Tensor, count: int, stride: int) -> torch.Tensor:
        """Global frame indices [B, count]: each clip's first frame, then every `stride`-th, held at the end."""
        return self.store.rows(episodes, first, stride * torch.arange(count))

    def frames(self, index: torch.Tensor, depth_mean: float, depth_std: float, full_size: bool = False) -> torch.Tensor:
        store = self.full if full_size else self.store
        depth = store.depth[index] if store.depth is not None else None
        return to_model(store.rgb[index], depth, depth_mean, depth_std)

    def prompt(self, episodes: torch.Tensor, device) -> dict[str, torch.Tensor]:
        rows = self.prompt_row[episodes]
        return {k: v[rows].to(device) for k, v in self.embeddings.items()}
