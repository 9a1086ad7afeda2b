"""A grid of dataset episodes with their instructions, as one video (`vid2act view`): the quickest way to see
what a dataset (collected, or imported from LeRobot) holds."""
from __future__ import annotations

import textwrap

import numpy as np

from vid2act.errors import UsageError

MAX_EPISODES = 64
CAPTION_LINES = 3


def parse_episodes(text: str, count: int) -> list[int]:
    """"0,5,9" (or "" for the first four) -> indices, each checked against the dataset's `count`."""
    if not text.strip():
        return list(range(min(4, count)))
    try:
        episodes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--episodes {text!r}: give episode numbers separated by commas, e.g. 0,5,9") from None
    if not episodes or len(episodes) > MAX_EPISODES:
        raise UsageError(f"--episodes: give between 1 and {MAX_EPISODES} episode numbers")
    bad = [e for e in episodes if not 0 <= e < count]
    if bad:
        raise UsageError(f"--episodes: episode {bad[0]} does not exist; the dataset has episodes 0 to {count - 1}")
    return episodes


def grid(dataset, episodes: list[int], scale: int = 4, columns: int = 4) -> np.ndarray:
    """uint8 frames [T, H', W', 3]: the episodes side by side (`columns` per row), each enlarged `scale` times
    under its caption (episode, family, instruction); shorter episodes hold their last frame."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default()
    cells = []
    for e in episodes:
        episode = dataset.episode(e, ("rgb", "instruction", "task"))
        rgb = np.asarray(episode["rgb"])
        w = rgb.shape[2] * scale
        caption = Image.new("RGB", (w, 12 * CAPTION_LINES + 4), "white")
        draw = ImageDraw.Draw(caption)
        text = f"#{e} {episode['task']}: {episode['instruction']}"
        for k, line in enumerate(textwrap.wrap(text, max(8, w // 6))[:CAPTION_LINES]):
            draw.text((3, 2 + 12 * k), line, fill="black", font=font)
        head = np.asarray(caption)
        frames = rgb.repeat(scale, axis=1).repeat(scale, axis=2)
        cells.append(np.concatenate([np.broadcast_to(head, (len(frames), *head.shape)), frames], axis=1))
    length = max(len(c) for c in cells)
    cells = [np.concatenate([c, np.repeat(c[-1:], length - len(c), axis=0)]) for c in cells]
    columns = min(columns, len(cells))
    blank = np.full_like(cells[0], 255)
    cells += [blank] * (-len(cells) % columns)
    pad = lambda c: np.pad(c, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=255)  # noqa: E731
    rows = [np.concatenate([pad(c) for c in cells[r:r + columns]], axis=2) for r in range(0, len(cells), columns)]
    return np.concatenate(rows, axis=1)
