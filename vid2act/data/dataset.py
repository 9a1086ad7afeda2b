"""The dataset format: meta/info.json, meta/stats.json, episodes/NNNNNN.npz, optional previews/NNNNNN.mp4."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vid2act.errors import Vid2ActError
from vid2act.formats import check_format, load_json
from vid2act.media import load_npz
from vid2act.outputs import write_json, write_npz

DATASET_FORMAT = "vid2act.dataset/1"
EPISODE_KEYS = ("rgb", "depth", "actions", "ee_pose", "ee_target", "gripper_width", "instruction", "task",
                "split", "seed", "attempt", "scene")
# Optional: in a recovery episode (`collect --recover`), the first frame the expert acted from; the frames
# before it are the policy's that was handed over from, and no training clip starts there.
EXPERT_FROM = "expert_from"


def window(first, offsets, length):
    """Frame indices `first + offsets` in an episode of `length` frames, each held at the episode's first and
    last frame (LeRobot's `max(start, min(end - 1, i + delta))`): the one place a window is clamped. numpy
    arrays or torch tensors, broadcast."""
    index = first + offsets
    if isinstance(index, np.ndarray):
        return np.clip(index, 0, np.asarray(length) - 1)
    import torch
    return torch.minimum(index.clamp(min=0), torch.as_tensor(length) - 1)


def episode_path(root: Path, index: int) -> Path:
    return Path(root) / "episodes" / f"{index:06d}.npz"


def write_episode(path: Path, episode: dict) -> None:
    """Strings go in as 0-d unicode arrays so that the file loads with allow_pickle=False."""
    arrays = {key: np.asarray(value) for key, value in episode.items()}
    arrays["depth"] = arrays["depth"].astype(np.float16)
    write_npz(path, arrays)


def read_episode(path: Path, keys=EPISODE_KEYS) -> dict:
    data = load_npz(path, keys)
    missing = [k for k in keys if k not in data]
    if missing:
        raise Vid2ActError(f"episode {path} lacks {', '.join(missing)}")
    return {key: data[key] if data[key].ndim else data[key].item() for key in keys}


def summary(arrays: list[np.ndarray]) -> dict:
    """Per-dimension mean, std, min and max over the rows of all `arrays`."""
    stacked = np.concatenate(arrays).astype(np.float64)
    return {"mean": stacked.mean(0).tolist(), "std": stacked.std(0).tolist(), "min": stacked.min(0).tolist(),
            "max": stacked.max(0).tolist(), "count": len(stacked)}


def dataset_stats(actions: list[np.ndarray], targets: list[np.ndarray], names: list[str]) -> dict:
    lengths = [len(a) for a in actions]
    return {
        "actions": {"names": names, **summary(actions)},
        "ee_target": {"names": ["x", "y", "z"], **summary(targets)},
        "episode_length": {"mean": float(np.mean(lengths)), "min": min(lengths), "max": max(lengths)},
        "episodes": len(actions),
        "frames": int(sum(lengths) + len(lengths)),
    }


class Dataset:
    """A collected dataset on disk."""

    def __init__(self, root):
        self.root = Path(root)
        info_path = self.root / "meta" / "info.json"
        if not info_path.exists():
            raise Vid2ActError(f"{self.root} is not a vid2act dataset (no meta/info.json; make one with "
                               "`vid2act collect`)")
        self.info = load_json(info_path, "dataset info")
        check_format(self.info, DATASET_FORMAT, info_path)
        if not self.info.get("complete"):
            raise Vid2ActError(f"dataset {self.root} is incomplete; rerun the `vid2act collect` command that "
                               "made it to finish it")
        self.stats = load_json(self.root / "meta" / "stats.json", "dataset statistics")
        counts = self.info.get("counts", {}).get("episodes")
        if not isinstance(counts, int) or counts < 1:
            raise Vid2ActError(f"{info_path} gives no episode count (counts.episodes)")
        self.paths = [episode_path(self.root, i) for i in range(counts)]
        missing = [p for p in self.paths if not p.exists()]
        if missing:
            raise Vid2ActError(f"dataset {self.root} lacks {len(missing)} of its {counts} episode files (first: "
                               f"{missing[0].name}); rerun the `vid2act collect` command that made it")
        for path in self.paths:  # every array header against its file (well under 1 ms an episode): a damaged
            # or forged episode is refused now, before any command has begun its work
            lacking = [k for k in EPISODE_KEYS if k not in load_npz(path, EPISODE_KEYS, headers_only=True)]
            if lacking:
                raise Vid2ActError(f"episode {path} lacks {', '.join(lacking)}")

    def __len__(self) -> int:
        return len(self.paths)

    def episode(self, index: int, keys=EPISODE_KEYS) -> dict:
        return read_episode(self.paths[index], keys)

    def expert_from(self, index: int) -> int:
        """The first frame of episode `index` that the expert acted from (0 but in a recovery episode)."""
        data = load_npz(self.paths[index], (EXPERT_FROM,))
        return int(data[EXPERT_FROM]) if EXPERT_FROM in data else 0


def write_meta(root: Path, info: dict, stats: dict | None = None) -> None:
    if stats is not None:
        write_json(Path(root) / "meta" / "stats.json", stats)
    write_json(Path(root) / "meta" / "info.json", info)
