"""Grounding: (a frame, the instruction) -> where the named object is and where it has to go, as two points
on the plan's grid, which the planner then reads as two heatmaps beside the frame.

Why a model of its own: binding "the red block" and "the blue pad" to places in the image is a small
localization problem that a dedicated net learns in a minute on a CPU, where the diffusion UNet had not
learned it after two CPU-hours (`docs/history.md`). The net is a small conv net at the plan's resolution
(24x32 for 48x64 scenes) over the frame (RGB-D, plus two coordinate channels); the instruction's MiniLM
token embeddings are read by plain cross-attention at full and half resolution, and its output is one
logit map per point, trained with cross-entropy on a soft label around the demonstrated point.

The labels come from the demonstration alone, never from the simulator's object state (a real dataset
has none): `demo_points` reads them off the commanded grasp point and the gripper commands, and the
dataset's camera projects them. The scene's object positions are only used to check it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vid2act.errors import Vid2ActError
from vid2act.video import text

GROUNDING_TYPE = "vid2act.grounding/1"
GROUNDING_FOLDER = "grounding"  # where a planner (or a grounded BC policy) keeps its grounding net
HEATMAP_SIGMA = 1.0  # grid cells: the width of the Gaussians that mark the two places for a model that reads them
LABEL_SIGMA = 0.5  # grid cells: the width of the soft labels the localizing nets are trained on
POINTS = ("object", "target")
LOW_Z = 0.01  # metres above the lowest grasp point that still count as "down at the table" (push)


def demo_points(ee_target: np.ndarray, gripper: np.ndarray) -> np.ndarray:
    """The demonstration's two places [2, 3] (world metres) from its commanded grasp points [T, 3] and gripper
    commands [T-1] (0 open, 1 closed):
    - with a grasp (the gripper closes after being open): where it closes, and where it opens again;
    - with the gripper closed throughout (a push): where the grasp point first comes down to the table, and
      where it last is down there;
    - with the gripper open throughout (a reach): where the grasp point ends, twice."""
    closed = np.asarray(gripper) > 0.5
    closes = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    if len(closes):
        grasp = int(closes[0])
        opens = np.flatnonzero(~closed[grasp:])
        release = grasp + int(opens[0]) if len(opens) else len(closed)
        return np.stack([ee_target[grasp], ee_target[release]])
    if closed.all():
        down = np.flatnonzero(ee_target[:, 2] < ee_target[:, 2].min() + LOW_Z)
        return np.stack([ee_target[down[0]], ee_target[down[-1]]])
    return np.stack([ee_target[-1], ee_target[-1]])


def demo_pixels(episode: dict, grid: tuple[int, int]) -> np.ndarray:
    """An episode's two places as grid coordinates [2, 2] (column, row; cell centres at .5)."""
    from vid2act.camera import Camera
    scene = json.loads(episode["scene"]) if isinstance(episode["scene"], str) else episode["scene"]
    image_size = tuple(scene["image_size"])
    points = demo_points(np.asarray(episode["ee_target"]), np.asarray(episode["actions"])[:, 3])
    pixels = Camera.from_json(scene["camera"]).project(points, image_size)
    return pixels * np.array([grid[1] / image_size[1], grid[0] / image_size[0]])


# --- the net ------------------------------------------------------------------------------------------
class CrossAttention(nn.Module):
    """Image features attend to the instruction's tokens (pre-norm, residual)."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.keys = nn.Linear(text.EMBEDDING_DIM, channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x, tokens, mask):
        b, c, h, w = x.shape
        query = self.norm(x).flatten(2).transpose(1, 2)
        memory = self.keys(tokens)
        out, _ = self.attention(query, memory, memory, key_padding_mask=~mask, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU())


@dataclass(frozen=True)
class PlaceNetShape:
    grid: tuple[int, int] = (24, 32)  # the plan's resolution: where the planner reads the heatmaps
    channels: int = 4  # the frame's: RGB-D (3 for RGB)
    width: int = 32
    heat_inputs: int = 0  # heatmaps read beside the frame (the sketch reads the grounding's two)
    maps: int = len(POINTS)  # logit maps out, one per point
    flags: int = 0  # yes/no logits out, from the pooled features (the sketch's gripper per keyframe)


class PlaceNet(nn.Module):
    """frame [B, C, h, w] (model space, as the planner's) + tokens -> logits [B, maps, h, w], one map per point
    (and, with `flags`, logits [B, flags] as well; `heat_inputs` heatmaps [B, n, h, w] are read beside the
    frame). The grounding is the plain one: two maps, object and target; `sketch.py` uses it with more."""

    def __init__(self, shape: PlaceNetShape):
        super().__init__()
        self.shape = shape
        w = shape.width
        self.stem = block(shape.channels + shape.heat_inputs + 2, w)
        self.attend_full = CrossAttention(w)
        self.down = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), block(2 * w, 2 * w))
        self.attend_half = CrossAttention(2 * w)
        self.up = block(3 * w, w)
        self.attend_out = CrossAttention(w)
        self.head = nn.Conv2d(w, shape.maps, 1)
        self.flag_head = nn.Linear(3 * w, shape.flags) if shape.flags else None
        h, wd = shape.grid
        rows, cols = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, wd), indexing="ij")
        self.register_buffer("coordinates", torch.stack([cols, rows])[None], persistent=False)

    def forward(self, frame, tokens, mask, heat=None):
        inputs = [frame] + ([heat.to(frame.dtype)] if self.shape.heat_inputs else [])
        x = torch.cat(inputs + [self.coordinates.expand(len(frame), -1, -1, -1).to(frame.dtype)], dim=1)
        full = self.attend_full(self.stem(x), tokens, mask)
        half = self.attend_half(self.down(full), tokens, mask)
        up = F.interpolate(half, size=full.shape[-2:], mode="nearest")
        out = self.attend_out(self.up(torch.cat([full, up], dim=1)), tokens, mask)
        logits = self.head(out)
        if self.flag_head is None:
            return logits
        pooled = torch.cat([out.mean((2, 3)), half.mean((2, 3))], dim=1)
        return logits, self.flag_head(pooled)


def locate(logits: torch.Tensor) -> torch.Tensor:
    """logits [B, P, h, w] -> points [B, P, 2] (column, row; cell centres at .5): the most likely cell,
    refined by the probability-weighted mean of its 3x3 neighbourhood."""
    b, p, h, w = logits.shape
    flat = logits.float().flatten(2)
    best = flat.argmax(-1)
    row, col = best // w, best % w
    probability = flat.softmax(-1).view(b, p, h, w)
    padded = F.pad(probability, (1, 1, 1, 1))
    offsets = torch.arange(-1, 2, device=logits.device)
    rr = (row[..., None, None] + offsets[:, None]).clamp(-1, h)
    cc = (col[..., None, None] + offsets[None, :]).clamp(-1, w)
    weights = padded[torch.arange(b)[:, None, None, None], torch.arange(p)[None, :, None, None], rr + 1, cc + 1]
    weights = weights / weights.sum((-1, -2), keepdim=True).clamp_min(1e-12)
    mean_row = (weights * rr.float()).sum((-1, -2))
    mean_col = (weights * cc.float()).sum((-1, -2))
    return torch.stack([mean_col, mean_row], dim=-1) + 0.5


def heatmaps(points: torch.Tensor, grid: tuple[int, int], sigma: float = 1.0) -> torch.Tensor:
    """points [B, P, 2] (column, row) -> Gaussian bumps [B, P, h, w] with peak 1: what the planner reads."""
    h, w = grid
    rows = torch.arange(h, device=points.device, dtype=torch.float32) + 0.5
    cols = torch.arange(w, device=points.device, dtype=torch.float32) + 0.5
    dr = rows[None, None, :, None] - points[..., 1, None, None].float()
    dc = cols[None, None, None, :] - points[..., 0, None, None].float()
    return torch.exp(-(dr ** 2 + dc ** 2) / (2 * sigma ** 2))


def place_loss(logits: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logit maps [B, P, h, w] against soft labels: a Gaussian of `LABEL_SIGMA` cells around
    each point [B, P, 2], normalized. A one-hot label (the cell the point lies in) teaches the cell and nothing
    finer, which left the sketch's marks a third of a cell off, i.e. about 1.5 cm of grasp-point height; the
    soft label makes `locate`'s 3x3 mean a sub-cell estimate."""
    target = heatmaps(points, tuple(logits.shape[-2:]), LABEL_SIGMA).flatten(2)
    target = target / target.sum(-1, keepdim=True).clamp_min(1e-12)
    return -(target * logits.float().flatten(2).log_softmax(-1)).sum(-1).mean()


# --- files --------------------------------------------------------------------------------------------
def save_grounding(folder: Path, net: PlaceNet, extra: dict, kind: str = GROUNDING_TYPE) -> None:
    """The net as config.json (`type` `kind`) + model.safetensors; the sketch is saved the same way."""
    from safetensors.torch import save

    from vid2act.outputs import write_bytes, write_json
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"type": kind, **({"points": list(POINTS)} if kind == GROUNDING_TYPE else {}), "shape": {**asdict(net.shape), "grid": list(net.shape.grid)},
              "text_encoder": text.ENCODER_NAME, **extra}
    write_bytes(folder / "model.safetensors",
                save({k: v.detach().cpu().float().contiguous() for k, v in net.state_dict().items()}))
    write_json(folder / "config.json", config)


def load_grounding(folder: Path, kind: str = GROUNDING_TYPE, what: str = "grounding model") -> tuple[PlaceNet, dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vid2act.formats import load_json
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise Vid2ActError(f"{folder} is incomplete: the {what}'s config.json is missing")
    config = load_json(config_path, f"{what} config")
    if config.get("type") != kind:
        raise Vid2ActError(f"{config_path} has type {config.get('type')!r}; this vid2act reads {kind!r}")
    try:
        shape = config["shape"]
        net = PlaceNet(PlaceNetShape(tuple(shape["grid"]), shape["channels"], shape["width"],
                                          shape.get("heat_inputs", 0), shape.get("maps", len(POINTS)),
                                          shape.get("flags", 0)))
        net.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (KeyError, TypeError) as e:
        raise Vid2ActError(f"{config_path} is malformed ({e.__class__.__name__}: {e})") from None
    except (RuntimeError, SafetensorError, OSError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise Vid2ActError(f"{folder / 'model.safetensors'} is missing, corrupt or does not match its config "
                           f"({first_line})") from None
    return net.eval(), config
