"""The documents that chain the stages: scene, actions, result, plan. One place reads, validates and writes
each format; JSON goes through one parser that refuses what nothing after it could use."""
from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np

from vid2act.errors import Vid2ActError
from vid2act.media import write_frames, write_video
from vid2act.outputs import STDIO, check_can_write, dumps, write_bytes, write_json
from vid2act.spec import (ACTION_SPACE, ARM_LOWER, ARM_UPPER, COLOR_NAMES, FINGER_OPEN, FPS, FRAME_INTERVAL, MAX_ACTIONS,
                          SHAPES, SPLITS, TASK_FAMILIES, TIMESTEP, WORKSPACE_HIGH, WORKSPACE_LOW, image_size_problem)


SCENE_FORMAT = "vid2act.scene/1"


ACTIONS_FORMAT = "vid2act.actions/1"


RESULT_FORMAT = "vid2act.result/1"


# --- reading helpers ---------------------------------------------------------------------------------
MAX_INT_DIGITS = 18  # a whole number in a document: beyond int64 it is no seed, count or size vid2act reads


class _TooLong(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _TooLong(text)
    return int(text)


def parse_json(text: str, what: str, where) -> object:
    """JSON text as Python values, refusing in one line what Python's parser would take but nothing after it
    could use: whole numbers too large for a float's exact range, and nesting deep enough to exhaust the stack."""
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise Vid2ActError(f"{what} {where} is not valid JSON (line {e.lineno}: {e.msg})") from None
    except _TooLong as e:
        raise Vid2ActError(f"{what} {where} holds a whole number of {len(str(e).lstrip('-'))} digits; vid2act "
                           f"reads at most {MAX_INT_DIGITS}") from None
    except RecursionError:
        raise Vid2ActError(f"{what} {where} is nested too deeply to be a vid2act document") from None


def load_json(path: Path, what: str) -> dict:
    try:
        text = sys.stdin.read() if str(path) == STDIO else Path(path).read_text()
    except FileNotFoundError:
        raise Vid2ActError(f"{what} {path} does not exist") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise Vid2ActError(f"{what} {path} is not a JSON file ({e.__class__.__name__})") from None
    document = parse_json(text, what, path)
    if not isinstance(document, dict):
        raise Vid2ActError(f"{what} {path} must hold a JSON object")
    return document


def check_format(document: dict, expected: str, where) -> None:
    """`expected` is today's format."""
    found = document.get("format")
    if found != expected:
        raise Vid2ActError(f"{where} has format {found!r}; this vid2act reads {expected!r} "
                           "(was it written by another tool or version?)")


def require(document: dict, key: str, kind, where) -> object:
    if key not in document:
        raise Vid2ActError(f"{where} lacks the field {key!r}")
    if not isinstance(document[key], kind):
        raise Vid2ActError(f"{where}: field {key!r} has the wrong type ({type(document[key]).__name__})")
    return document[key]


# --- scene ---------------------------------------------------------------------------------------------
def write_scene(folder: Path, scene: dict, rgb: np.ndarray, depth: np.ndarray) -> None:
    """A scene folder's files; the document is held to the schema its readers check (a state reached by a
    rollout, say, whose object has fallen out of the world's envelope, is refused rather than written)."""
    import imageio.v3 as iio
    check_scene(scene, "the scene to write")
    write_json(folder / "scene.json", scene)
    write_bytes(folder / "start.png", iio.imwrite("<bytes>", rgb, extension=".png"))
    buffer = io.BytesIO()
    np.save(buffer, depth.astype(np.float32), allow_pickle=False)
    write_bytes(folder / "start_depth.npy", buffer.getvalue())


def read_scene(folder: Path) -> dict:
    """The scene document of a scene folder, checked against the scene schema (`check_scene`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise Vid2ActError(f"scene folder {folder} does not exist (make one with `vid2act scene`)")
    path = folder / "scene.json"
    if not path.exists():
        raise Vid2ActError(f"{folder} has no scene.json (make a scene with `vid2act scene`)")
    scene = load_json(path, "scene file")
    check_format(scene, SCENE_FORMAT, path)
    check_scene(scene, path)
    return scene


# The scene schema: every key known, every number finite and inside what the world can hold. Objects may have
# fallen off the table (a rollout that knocked one off continues from there), so their envelope is wide; the
# commanded grasp point and the joints are held to the workspace and the joint limits, a little margin added.
SCENE_KEYS = {"format", "task", "split", "seed", "instruction", "goal", "combination", "image_size", "camera",
              "physics", "action_space", "state"}


SCENE_OPTIONAL_KEYS = {"steps_taken"}  # a scene written by `execute --next-scene`




GOAL_KEYS = {"reach": ("target",), "push": ("object", "target"), "pick_place": ("object", "target"),
             "stack": ("object", "target")}


OBJECT_KEYS = ("name", "shape", "color", "position", "orientation", "linear_velocity", "angular_velocity")


OBJECT_REACH = 10.0  # metres from the robot's base in x and y


OBJECT_LOWEST, OBJECT_HIGHEST = -1000.0, 10.0  # metres: fallen off the table, or thrown up


MAX_LINEAR_SPEED, MAX_ANGULAR_SPEED = 200.0, 1000.0  # m/s, rad/s


MAX_JOINT_SPEED = 100.0  # rad/s (m/s for the fingers)


WORKSPACE_MARGIN, JOINT_MARGIN = 0.01, 0.05  # metres, radians


MAX_OBJECTS = 16


def _keys(document: dict, required, where, optional=()) -> None:
    missing = [k for k in required if k not in document]
    if missing:
        raise Vid2ActError(f"{where} lacks the field {missing[0]!r}")
    unknown = sorted(set(document) - set(required) - set(optional))
    if unknown:
        raise Vid2ActError(f"{where} has the unknown field {unknown[0]!r} (was it written by another tool or "
                           "version?)")


def _number(value, where: str, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise Vid2ActError(f"{where} must be a finite number (got {value!r})")
    if not low <= value <= high:
        raise Vid2ActError(f"{where} = {value:g} lies outside [{low:g}, {high:g}]")
    return float(value)


def _vector(values, size: int, where: str, low=-math.inf, high=math.inf) -> np.ndarray:
    """`size` finite numbers, each within `low` and `high` (scalars or one bound per component)."""
    if not isinstance(values, list) or len(values) != size or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise Vid2ActError(f"{where} must be {size} finite numbers")
    vector = np.asarray(values, dtype=float)
    low, high = np.broadcast_to(low, size), np.broadcast_to(high, size)
    outside = np.flatnonzero((vector < low) | (vector > high))
    if outside.size:
        i = int(outside[0])
        raise Vid2ActError(f"{where}[{i}] = {vector[i]:g} lies outside [{low[i]:g}, {high[i]:g}]")
    return vector


def check_scene(scene: dict, where) -> None:
    """Refuse, naming the field, a scene the world cannot be rebuilt from as written (`execute` restores it)."""
    if not isinstance(scene, dict):
        raise Vid2ActError(f"{where} must hold a JSON object")
    _keys(scene, SCENE_KEYS, where, SCENE_OPTIONAL_KEYS)
    task = require(scene, "task", str, where)
    if task not in TASK_FAMILIES:
        raise Vid2ActError(f"{where} names the unknown task {task!r}")
    if scene["split"] not in SPLITS:
        raise Vid2ActError(f"{where}: split {scene['split']!r} is not one of {', '.join(SPLITS)}")
    for key, kind in (("seed", int), ("instruction", str), ("goal", dict), ("combination", list),
                      ("image_size", list), ("camera", dict), ("physics", dict), ("state", dict),
                      ("action_space", dict)):
        require(scene, key, kind, where)
    if isinstance(scene["seed"], bool) or scene["seed"] < 0:
        raise Vid2ActError(f"{where}: seed must be a whole number, 0 or more")
    if not 0 < len(scene["instruction"]) <= 1000:
        raise Vid2ActError(f"{where}: the instruction must hold 1 to 1,000 characters")
    if not all(isinstance(item, str) for item in scene["combination"]):
        raise Vid2ActError(f"{where}: combination must be a list of names")
    if "steps_taken" in scene and (not isinstance(scene["steps_taken"], int) or isinstance(scene["steps_taken"], bool)
                                   or scene["steps_taken"] < 0):
        raise Vid2ActError(f"{where}: steps_taken must be a whole number, 0 or more")
    if len(scene["image_size"]) != 2:
        raise Vid2ActError(f"{where}: image_size must be [height, width]")
    height, width = scene["image_size"]
    problem = image_size_problem(height, width)
    if problem:
        raise Vid2ActError(f"{where}: image size {height}x{width}: {problem}")
    _check_camera(scene["camera"], f"{where}: camera")
    physics = scene["physics"]
    _keys(physics, ("timestep", "frame_interval"), f"{where}: physics")
    if physics["timestep"] != TIMESTEP or physics["frame_interval"] != FRAME_INTERVAL:
        raise Vid2ActError(f"{where}: physics {physics} is not the simulator's (timestep {TIMESTEP}, frame interval "
                           f"{FRAME_INTERVAL})")
    check_action_space(scene["action_space"], where)

    state = scene["state"]
    _keys(state, ("robot", "objects"), f"{where}: state")
    objects = require(state, "objects", list, f"{where}: state")
    if not 1 <= len(objects) <= MAX_OBJECTS:
        raise Vid2ActError(f"{where}: state.objects must hold 1 to {MAX_OBJECTS} objects")
    shapes = {}
    for i, obj in enumerate(objects):
        at = f"{where}: state.objects[{i}]"
        if not isinstance(obj, dict):
            raise Vid2ActError(f"{at} must be a JSON object")
        _keys(obj, OBJECT_KEYS, at)
        if obj["shape"] not in (*SHAPES, "pad"):
            raise Vid2ActError(f"{at}.shape {obj['shape']!r} is not one of {', '.join((*SHAPES, 'pad'))}")
        if obj["color"] not in COLOR_NAMES:
            raise Vid2ActError(f"{at}.color {obj['color']!r} is not one of {', '.join(COLOR_NAMES)}")
        if obj["name"] != f"{obj['color']} {obj['shape']}":
            raise Vid2ActError(f"{at}.name {obj['name']!r} does not match its colour and shape "
                               f"({obj['color']} {obj['shape']})")
        if obj["name"] in shapes:
            raise Vid2ActError(f"{at}: the scene holds two objects named {obj['name']!r}")
        shapes[obj["name"]] = obj["shape"]
        _vector(obj["position"], 3, f"{at}.position", (-OBJECT_REACH, -OBJECT_REACH, OBJECT_LOWEST),
                (OBJECT_REACH, OBJECT_REACH, OBJECT_HIGHEST))
        quaternion = _vector(obj["orientation"], 4, f"{at}.orientation")
        if abs(np.linalg.norm(quaternion) - 1) > 1e-3:
            raise Vid2ActError(f"{at}.orientation must be a unit quaternion (x, y, z, w); its norm is "
                               f"{np.linalg.norm(quaternion):g}")
        _vector(obj["linear_velocity"], 3, f"{at}.linear_velocity", -MAX_LINEAR_SPEED, MAX_LINEAR_SPEED)
        _vector(obj["angular_velocity"], 3, f"{at}.angular_velocity", -MAX_ANGULAR_SPEED, MAX_ANGULAR_SPEED)

    goal = scene["goal"]
    _keys(goal, GOAL_KEYS[task], f"{where}: goal")
    for role, name in goal.items():
        if name not in shapes:
            raise Vid2ActError(f"{where}: the goal's {role} {name!r} is not among the scene's objects")
        if role == "object" and shapes[name] == "pad":
            raise Vid2ActError(f"{where}: the goal's object {name!r} is a pad; pads do not move")
    if task != "stack" and shapes[goal["target"]] != "pad":
        raise Vid2ActError(f"{where}: the goal's target {goal['target']!r} must be a pad in a {task} scene")

    robot = state["robot"]
    at = f"{where}: state.robot"
    _keys(robot, ("joint_positions", "joint_velocities", "ee_target", "gripper"), at)
    lower = (*(v - JOINT_MARGIN for v in ARM_LOWER), -WORKSPACE_MARGIN / 2, -WORKSPACE_MARGIN / 2)
    upper = (*(v + JOINT_MARGIN for v in ARM_UPPER), FINGER_OPEN + WORKSPACE_MARGIN / 2,
             FINGER_OPEN + WORKSPACE_MARGIN / 2)
    _vector(robot["joint_positions"], 9, f"{at}.joint_positions", lower, upper)
    _vector(robot["joint_velocities"], 9, f"{at}.joint_velocities", -MAX_JOINT_SPEED, MAX_JOINT_SPEED)
    _vector(robot["ee_target"], 3, f"{at}.ee_target", np.subtract(WORKSPACE_LOW, WORKSPACE_MARGIN),
            np.add(WORKSPACE_HIGH, WORKSPACE_MARGIN))
    _number(robot["gripper"], f"{at}.gripper", 0.0, 1.0)


def _check_camera(camera: dict, where: str) -> None:
    _keys(camera, ("eye", "target", "up", "fov", "near", "far"), where)
    eye = _vector(camera["eye"], 3, f"{where}.eye", -OBJECT_REACH, OBJECT_REACH)
    target = _vector(camera["target"], 3, f"{where}.target", -OBJECT_REACH, OBJECT_REACH)
    up = _vector(camera["up"], 3, f"{where}.up", -1e3, 1e3)
    forward = target - eye
    if np.linalg.norm(forward) < 1e-3:
        raise Vid2ActError(f"{where}: eye and target must lie apart")
    if np.linalg.norm(np.cross(forward / np.linalg.norm(forward), up)) < 1e-3:
        raise Vid2ActError(f"{where}: up must not be zero or point along the line of sight")
    _number(camera["fov"], f"{where}.fov", 1.0, 170.0)
    near = _number(camera["near"], f"{where}.near", 1e-3, 100.0)
    far = _number(camera["far"], f"{where}.far", 1e-3, 1000.0)
    if not far > near:
        raise Vid2ActError(f"{where}: far ({far:g}) must lie beyond near ({near:g})")


# --- actions ---------------------------------------------------------------------------------------
def check_action_space(space: dict, where) -> None:
    """Refuse an action space that is not the one the simulator executes."""
    for key in ("names", "low", "high", "frame_interval"):
        if space.get(key) != ACTION_SPACE[key]:
            raise Vid2ActError(f"{where}: action space {key} {space.get(key)!r} does not match the simulator's "
                               f"{ACTION_SPACE[key]!r}")


def actions_document(actions: np.ndarray, source: dict) -> dict:
    return {"format": ACTIONS_FORMAT, "action_space": ACTION_SPACE, "source": source,
            "actions": [[float(v) for v in row] for row in actions]}


def write_actions(path, actions: np.ndarray, source: dict, force: bool = False) -> None:
    """Write an actions file, or the JSON to stdout when `path` is "-"."""
    document = actions_document(actions, source)
    if str(path) == STDIO:
        sys.stdout.write(dumps(document))
        sys.stdout.flush()
    else:
        check_can_write(Path(path), force)
        write_bytes(Path(path), dumps(document).encode(), replace=force)


def read_actions(path) -> tuple[np.ndarray, dict]:
    """Actions [N, A] as float32 and the whole document. Out-of-bounds values are an error: vid2act never
    clips an action silently."""
    document = load_json(path, "actions file")
    check_format(document, ACTIONS_FORMAT, path)
    check_action_space(require(document, "action_space", dict, path), path)
    rows = require(document, "actions", list, path)
    if not rows:
        raise Vid2ActError(f"{path} holds no actions")
    if len(rows) > MAX_ACTIONS:
        raise Vid2ActError(f"{path} holds {len(rows):,} actions; one run executes at most {MAX_ACTIONS:,} "
                           f"({MAX_ACTIONS / FPS:.0f} s of simulated time): run them in parts with `execute "
                           "--max-steps K --next-scene DIR`")
    names, low, high = ACTION_SPACE["names"], ACTION_SPACE["low"], ACTION_SPACE["high"]
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            size = len(row) if isinstance(row, list) else type(row).__name__
            raise Vid2ActError(f"{path}: action {i} has {size} values; expected {len(names)} ({', '.join(names)})")
        for name, value, lo, hi in zip(names, row, low, high):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise Vid2ActError(f"{path}: action {i} {name} is {value!r}, not a number")
            if not math.isfinite(value):
                raise Vid2ActError(f"{path}: action {i} {name} is {value}; actions must be finite")
            if not lo <= value <= hi:
                raise Vid2ActError(f"{path}: action {i} {name} = {value} is outside its bounds [{lo}, {hi}] "
                                   "(vid2act does not clip actions; scale or clip them yourself)")
    return np.asarray(rows, dtype=np.float32), document


# --- rollouts and frames -----------------------------------------------------------------------------
def result_document(scene: dict, rollout, actions_source, scene_dir) -> dict:
    return {"format": RESULT_FORMAT, "success": bool(rollout.success), "task": scene["task"],
            "split": scene.get("split"), "seed": scene["seed"], "instruction": scene["instruction"],
            "steps": len(rollout.actions), "steps_since_start": scene.get("steps_taken", 0) + len(rollout.actions),
            "solved_at": rollout.solved_at,
            "metrics": rollout.distances, "scene": str(scene_dir), "actions_source": actions_source}


# --- plan ------------------------------------------------------------------------------------------------
PLAN_FORMAT = "vid2act.plan/2"


def write_plan(folder: Path, document: dict, samples: list[tuple[np.ndarray, np.ndarray | None]]) -> None:
    """plan.json + frames.npz + plan.mp4 of the first sample (the plan); further samples under samples/NN/
    with the same two files. `folder` is the temporary folder of an `output_dir`."""
    fps = document["fps"]
    for k, (rgb, depth) in enumerate(samples):
        where = folder if k == 0 else folder / "samples" / f"{k:02d}"
        write_frames(where, rgb, depth)
        write_video(where / "plan.mp4", rgb, fps)
    write_json(folder / "plan.json", document)


def read_plan(folder: Path) -> dict | None:
    """The plan document of a plan folder, or None where the folder holds no plan.json (a rollout, say)."""
    path = Path(folder) / "plan.json"
    if not path.exists():
        return None
    document = load_json(path, "plan")
    check_format(document, PLAN_FORMAT, path)
    for key, kind in (("stride", int), ("frame_interval", int)):
        if not isinstance(document.get(key), kind) or document[key] < 1:
            raise Vid2ActError(f"{path}: field {key!r} must be a positive integer")
    return document
