"""The inverse-dynamics model: a small conv net that reads robot actions off consecutive frames.

Two heads share one trunk (conv stem, residual blocks, strided downsampling, MLP):
- `delta` (UniPi's recipe): frames (t, t+1) -> action t.
- `pose`: a window of frames around t -> the commanded grasp point and gripper command at frame t; action t
  is then the difference of consecutive estimates. Errors of a per-frame estimate do not add up over an
  episode (the sum of the moves telescopes to last minus first), where per-pair errors do.
Saved as config.json (with `type`) + model.safetensors; loaded only from safetensors."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vid2act.configs import IDM_HEADS
from vid2act.data.dataset import window
from vid2act.errors import Vid2ActError
from vid2act.nn import encoder_layers
from vid2act.shipped import resolve

IDM_TYPE = "vid2act.idm/1"
HEADS = IDM_HEADS
MODALITIES = ("rgb", "rgbd")


@dataclass(frozen=True)
class IDMArchitecture:
    head: str = "pose"
    modalities: str = "rgbd"
    image_size: tuple[int, int] = (48, 64)
    context: int = 1  # pose head: frames on each side of the centre frame
    width: int = 16
    hidden: int = 256

    @property
    def window(self) -> int:
        return 2 if self.head == "delta" else 2 * self.context + 1

    @property
    def channels(self) -> int:
        return 4 if self.modalities == "rgbd" else 3

    def check(self) -> None:
        if self.head not in HEADS:
            raise Vid2ActError(f"unknown IDM head {self.head!r}; choose {' or '.join(HEADS)}")
        if self.modalities not in MODALITIES:
            raise Vid2ActError(f"unknown modalities {self.modalities!r}; choose {' or '.join(MODALITIES)}")
        if self.image_size[0] % 16 or self.image_size[1] % 16:
            raise Vid2ActError(f"image size {self.image_size} must be multiples of 16")


class InverseDynamicsModel(nn.Module):
    """Maps a stack of frames [B, F, H, W, C] (uint8 RGB, float depth as the 4th channel) to 4 numbers:
    the normalized target (3) and a gripper logit."""

    def __init__(self, architecture: IDMArchitecture, normalization: dict):
        super().__init__()
        architecture.check()
        self.architecture = architecture
        self.normalization = normalization
        self.trunk = nn.Sequential(
            *encoder_layers(architecture.window * architecture.channels, architecture.width,
                            architecture.image_size, architecture.hidden),
            nn.Linear(architecture.hidden, 4))
        for stat in ("mean", "std"):
            self.register_buffer(f"target_{stat}", torch.tensor(normalization["target"][stat], dtype=torch.float32),
                                 persistent=False)
        self.depth_mean, self.depth_std = normalization["depth"]["mean"], normalization["depth"]["std"]

    def inputs(self, rgb: torch.Tensor, depth: torch.Tensor | None) -> torch.Tensor:
        """uint8 rgb [B, F, H, W, 3] and depth [B, F, H, W] -> float [B, F*C, H, W], roughly unit scale."""
        x = rgb.float() / 127.5 - 1.0
        if self.architecture.modalities == "rgbd":
            d = (depth.float() - self.depth_mean) / self.depth_std
            x = torch.cat([x, d.unsqueeze(-1)], dim=-1)
        b, f, h, w, c = x.shape
        return x.permute(0, 1, 4, 2, 3).reshape(b, f * c, h, w)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor | None = None) -> torch.Tensor:
        return self.trunk(self.inputs(rgb, depth))

    def denormalize(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Metres (grasp point for `pose`, move for `delta`) and the gripper command (0 or 1)."""
        return output[:, :3] * self.target_std + self.target_mean, (output[:, 3] > 0).float()


def window_offsets(architecture: IDMArchitecture) -> np.ndarray:
    """The frames a sample reads, relative to its own: (t, t+1) for the delta head, t +- context otherwise."""
    if architecture.head == "delta":
        return np.array([0, 1])
    return np.arange(-architecture.context, architecture.context + 1)


def windows(length: int, architecture: IDMArchitecture) -> np.ndarray:
    """Frame indices [N, F] of each sample of an episode of `length` frames: every frame (every pair, delta)."""
    samples = length - 1 if architecture.head == "delta" else length
    return window(np.arange(samples)[:, None], window_offsets(architecture)[None, :], length)


@torch.no_grad()
def predict_actions(model: InverseDynamicsModel, rgb: np.ndarray, depth: np.ndarray | None,
                    batch_size: int = 128, device: str = "cpu") -> np.ndarray:
    """Actions [T-1, 4] (float64, metres and gripper command) for frames rgb [T, H, W, 3]."""
    model.eval()
    index = windows(len(rgb), model.architecture)
    rgb_t = torch.from_numpy(np.ascontiguousarray(rgb))
    depth_t = torch.from_numpy(depth.astype(np.float32)) if depth is not None else None
    targets, grippers = [], []
    for start in range(0, len(index), batch_size):
        chunk = torch.from_numpy(index[start:start + batch_size])
        output = model(rgb_t[chunk].to(device), depth_t[chunk].to(device) if depth_t is not None else None).float()
        target, gripper = model.denormalize(output)
        targets.append(target.cpu().double())
        grippers.append(gripper.cpu().double())
    target, gripper = torch.cat(targets).numpy(), torch.cat(grippers).numpy()
    if model.architecture.head == "delta":
        return np.concatenate([target, gripper[:, None]], axis=1)
    # pose: move t is estimate t+1 minus estimate t; the gripper command of action t shows from frame t+1
    return np.concatenate([np.diff(target, axis=0), gripper[1:, None]], axis=1)


GRIPPER_SETTLE_FRAMES = 5  # frames to hold still after a gripper command changes (closing takes this long)


def predict_keyframe_actions(model: InverseDynamicsModel, rgb: np.ndarray, depth: np.ndarray | None,
                             stride: int, settle: int = GRIPPER_SETTLE_FRAMES, device: str = "cpu") -> np.ndarray:
    """Actions for keyframes `stride` frames apart (a plan drawn at a coarser frame rate than the IDM's):
    the grasp point and gripper command of each keyframe (`keyframe_poses`), each move between keyframes
    split into `stride` equal actions, and where the gripper command changes, `settle` still frames to let
    it act. Without the settle frames a grasp is cut short by the next move (measured: 4-frame keyframes of
    oracle rollouts, 35 % pick-and-place success without, 100 % with)."""
    points, grips = keyframe_poses(model, rgb, depth, device)
    return expand_keyframes(points, grips, stride, settle)[0]


@torch.no_grad()
def keyframe_poses(model: InverseDynamicsModel, rgb: np.ndarray, depth: np.ndarray | None,
                   device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Grasp point [K, 3] and gripper command [K] of each frame, read from that frame alone: keyframes are
    too far apart to be the neighbouring-frame context the IDM was trained on."""
    if model.architecture.head == "delta":
        raise Vid2ActError("keyframe plans need an IDM that reads poses (head pose), not a delta head")
    model.eval()
    stack = model.architecture.window  # each frame repeated over the window: no neighbours to read
    rgb_t = torch.from_numpy(np.ascontiguousarray(rgb))[:, None].expand(-1, stack, -1, -1, -1)
    depth_t = (torch.from_numpy(depth.astype(np.float32))[:, None].expand(-1, stack, -1, -1)
               if depth is not None else None)
    target, gripper = model.denormalize(model(rgb_t.to(device), depth_t.to(device) if depth_t is not None else None))
    return target.cpu().double().numpy(), gripper.cpu().double().numpy()


def expand_keyframes(points: np.ndarray, grips: np.ndarray, stride: int,
                     settle: int = GRIPPER_SETTLE_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Actions [N, 4] from keyframe grasp points [K, 3] and gripper commands [K], and for each action the
    keyframe it heads for (to show a plan beside the rollout it caused). Where the gripper command changes
    between two keyframes, it changes at the lower of the two: grasps and releases happen at the bottom of a
    move, and keyframes `stride` frames apart often show the arm already rising with the new command (moving
    up first and releasing after would carry the object away again)."""
    actions, heading = [], []
    for k in range(len(points) - 1):
        move = (points[k + 1] - points[k]) / stride
        changes = grips[k + 1] != grips[k]
        if changes and points[k + 1][2] > points[k][2]:  # rising: act here, then move
            actions += [[0.0, 0.0, 0.0, grips[k + 1]]] * settle + [[*move, grips[k + 1]]] * stride
            heading += [k] * settle + [k + 1] * stride
            continue
        actions += [[*move, grips[k]]] * stride
        heading += [k + 1] * stride
        if changes:
            actions += [[0.0, 0.0, 0.0, grips[k + 1]]] * settle
            heading += [k + 1] * settle
    return np.asarray(actions, dtype=np.float64).reshape(-1, 4), np.asarray(heading, dtype=np.int64)


STILL_PLAN_M = 0.01  # a plan whose grasp point stays this close to where it starts, gripper unchanged, holds still


def holds_still(actions: np.ndarray) -> bool:
    """Whether a plan's actions [N, 4] show nothing more to do: the grasp point never gets `STILL_PLAN_M`
    from where it starts and the gripper command never changes. The one rule for eval's replanning loop,
    `vid2act translate` (`source.holds_still`) and examples/replan_loop.sh."""
    if len(actions) == 0:
        return True
    path = np.cumsum(actions[:, :3], axis=0)
    return bool(np.linalg.norm(path, axis=1).max() < STILL_PLAN_M and (actions[:, 3] == actions[0, 3]).all())


# --- files -------------------------------------------------------------------------------------------
def save_idm(model: InverseDynamicsModel, folder: Path, extra: dict) -> None:
    """config.json + model.safetensors into `folder` (which the caller creates atomically)."""
    from safetensors.torch import save

    from vid2act.outputs import write_bytes, write_json
    from vid2act.spec import ACTION_SPACE
    config = {"type": IDM_TYPE, "architecture": {**asdict(model.architecture),
                                                  "image_size": list(model.architecture.image_size)},
              "action_space": ACTION_SPACE, "normalization": model.normalization, **extra}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_bytes(Path(folder) / "model.safetensors", save(state))
    write_json(Path(folder) / "config.json", config)


def load_idm(reference: str, device: str = "cpu", kind: str = "idm") -> tuple[InverseDynamicsModel, dict]:
    """An IDM folder or shipped name; `default` names the shipped model of `kind` (`shipped.DEFAULTS`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vid2act.formats import check_action_space, load_json
    folder = resolve(reference, kind)
    config_path, weights = folder / "config.json", folder / "model.safetensors"
    if not config_path.exists():
        raise Vid2ActError(f"{folder} has no config.json; is it an IDM folder (from `vid2act train idm`)?")
    config = load_json(config_path, "IDM config")
    if config.get("type") != IDM_TYPE:
        raise Vid2ActError(f"{config_path} has type {config.get('type')!r}; this vid2act reads {IDM_TYPE!r}")
    check_action_space(config.get("action_space", {}), config_path)
    if not weights.exists():
        others = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
        hint = f" ({', '.join(others)} found: vid2act loads only safetensors, never pickles)" if others else ""
        raise Vid2ActError(f"{folder} has no model.safetensors{hint}")
    try:
        arch = config["architecture"]
        architecture = IDMArchitecture(**{**arch, "image_size": tuple(arch["image_size"])})
        model = InverseDynamicsModel(architecture, config["normalization"])
        model.load_state_dict(load_file(str(weights)))
    except (KeyError, TypeError) as e:
        raise Vid2ActError(f"{config_path} is malformed ({e.__class__.__name__}: {e})") from None
    except (RuntimeError, SafetensorError, OSError) as e:
        first_line = str(e).strip().splitlines()[0]
        raise Vid2ActError(f"{weights} does not match its config.json or is corrupt ({first_line})") from None
    return model.to(device).eval(), config
