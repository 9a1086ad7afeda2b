"""What every file format and stage agrees on about the world, without the simulator: control timing, the
action space, image sizes and the task families' names. The simulator (`vid2act.sim`) builds on these; the
formats (`vid2act.files`) and the configs check against them without importing PyBullet."""
from __future__ import annotations

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
