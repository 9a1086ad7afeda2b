"""What every file format and stage agrees on about the world, without the simulator: control timing, the
action space, image sizes and the task families' names. The simulator (`vid2act.sim`) builds on these; the
formats (`vid2act.formats`) and the configs check against them without importing PyBullet."""
from __future__ import annotations

from vid2act.errors import UsageError, Vid2ActError

TIMESTEP = 1.0 / 240.0
FRAME_INTERVAL = 12  # physics steps per action and per frame
FPS = 1.0 / (TIMESTEP * FRAME_INTERVAL)  # 20 frames per simulated second
MAX_STEP = 0.03  # metres the end-effector target may move along each axis per action

ACTION_SPACE = {
    "names": ["dx", "dy", "dz", "gripper"],
    "low": [-MAX_STEP, -MAX_STEP, -MAX_STEP, 0.0],
    "high": [MAX_STEP, MAX_STEP, MAX_STEP, 1.0],
    "units": ["m", "m", "m", "fraction closed (0 open, 1 closed)"],
    "frame": "world; x away from the robot base, z up; moves the commanded grasp point",
    "frame_interval": FRAME_INTERVAL,
    "timestep": TIMESTEP,
}

TASK_FAMILIES = ("reach", "push", "pick_place", "stack")  # each a class in vid2act/sim/tasks/
SPLITS = ("train", "test", "heldout")
# Train and test seeds never overlap. `heldout` draws test seeds, but only the held-out combinations,
# which `train` and `test` never contain.
SEED_RANGES = {"train": (0, 999_999), "test": (1_000_000, 1_999_999)}
STEP_LIMITS = {"reach": 40, "push": 100, "pick_place": 80, "stack": 80}  # actions the expert may take
TIME_LIMIT_FACTOR = 1.5  # every policy gets this many times its task's step limit


def check_in_space(actions, who: str):
    """Actions [N, 4] from `who` as float64, refused (never clipped) unless every value is finite and inside its
    bounds: what every loop that drives a policy checks, as the Gymnasium environments and `execute` do."""
    import numpy as np  # here, so that importing spec stays free of numpy
    low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])
    actions = np.asarray(actions, dtype=np.float64).reshape(-1, len(low))
    outside = ~np.isfinite(actions) | (actions < low) | (actions > high)
    if outside.any():
        row, dim = (int(v) for v in np.argwhere(outside)[0])
        raise Vid2ActError(f"{who} returned action {row} with {ACTION_SPACE['names'][dim]} = {actions[row, dim]:g}, "
                           f"outside its bounds [{low[dim]}, {high[dim]}]; a policy's actions must lie in the action "
                           "space (vid2act never clips them silently)")
    return actions


def seed_range(split: str) -> tuple[int, int]:
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)}")
    return SEED_RANGES["train" if split == "train" else "test"]


def check_seed(split: str, seed: int) -> None:
    first, last = seed_range(split)
    if not first <= seed <= last:
        hint = next((f" (seed {seed} belongs to --split {name})" for name, (a, b) in SEED_RANGES.items()
                     if a <= seed <= b), "")
        raise UsageError(f"seed {seed} is outside the {split} split's seed range [{first}, {last}]{hint}")


def time_limit(task: str) -> int:
    """Actions an episode of `task` may take (eval, the Gymnasium environments)."""
    return int(TIME_LIMIT_FACTOR * STEP_LIMITS[task])


# The world's extent, as the scene format checks it without the simulator (`vid2act.sim` builds on these).
WORKSPACE_LOW = (0.25, -0.35, 0.005)  # metres: where the commanded grasp point may go
WORKSPACE_HIGH = (0.80, 0.35, 0.35)  # z capped so the gripper stays in view
TABLE_CENTRE, TABLE_HALF = (0.35, 0.0), (0.65, 0.6)  # the table top's centre and half extents (x, y), top at z 0
COLOR_NAMES = ("red", "green", "blue", "yellow", "purple", "orange")
SHAPES = ("block", "cylinder")  # objects to move; targets are flat pads
ARM_LOWER = (-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671)  # Panda joint limits, radians
ARM_UPPER = (2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671)
FINGER_OPEN = 0.04  # per finger, metres

# Actions one run executes at most (50 s of simulated time, 10x the longest task's limit): every frame of a run
# is kept in memory, so a run must be bounded; longer ones go in parts (`execute --max-steps --next-scene`).
MAX_ACTIONS = 1000

DEFAULT_IMAGE_SIZE = (48, 64)  # (height, width)
MAX_IMAGE_SIDE = 1024  # pixels; the renderer allocates H x W x 4 buffers, and its C++ aborts on a huge one


def image_size_problem(height, width) -> str | None:
    """What is wrong with an image size, or None: sides must be positive multiples of 16, at most 1024."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (height, width)):
        return "height and width must be whole numbers"
    if height <= 0 or width <= 0:
        return "height and width must be positive"
    if height > MAX_IMAGE_SIDE or width > MAX_IMAGE_SIDE:
        return f"height and width must be at most {MAX_IMAGE_SIDE}"
    if height % 16 or width % 16:
        return "height and width must be multiples of 16"
    return None
