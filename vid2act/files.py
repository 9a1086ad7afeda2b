"""The files that chain the stages: scene, actions, result, frames. One place reads, validates and writes
each format; every write is atomic (a temporary file or folder, then a rename)."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import io
import json
import math
import os
import shutil
import sys
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from vid2act.errors import UsageError, Vid2ActError
from vid2act.spec import ACTION_SPACE, FPS, MAX_ACTIONS, TASK_FAMILIES, image_size_problem

SCENE_FORMAT = "vid2act.scene/1"

ACTIONS_FORMAT = "vid2act.actions/1"
RESULT_FORMAT = "vid2act.result/1"
STDIO = "-"
NAME_MAX = 255  # bytes in one path component, on every common file system
_UMASK = os.umask(0)
os.umask(_UMASK)


# --- outputs: checked before any work ----------------------------------------------------------------
def check_can_write(path: Path, force: bool) -> None:
    """Refuse, before any work, an output that exists (a dangling symlink included) without `force`, that is
    standard output where a command writes a file or folder, or whose folder cannot be made (a file or a
    dangling symlink in the way) or written (read-only)."""
    path = Path(path)
    if str(path) == STDIO:
        raise UsageError("--out -: this command writes a file or folder, not standard output; give a path")
    if os.path.lexists(path) and not force:
        raise UsageError(f"{path} already exists; pass --force to replace it, or choose another --out")
    check_writable_place(path)


def check_writable_place(path: Path) -> None:
    """The place of an output, `path` itself aside: a name short enough for its temporary twin, and a nearest
    existing folder above it that is a folder (not a file, not a dangling symlink) and writable."""
    path = Path(path)
    if len(os.fsencode(path.name)) > NAME_MAX - len(".XXXXXXXX.tmp.old") - 1:  # its temporary twin must fit too
        raise UsageError(f"cannot write {path}: its name is {len(os.fsencode(path.name))} bytes, longer than this "
                         f"file system allows ({NAME_MAX}, less the temporary suffix); choose a shorter --out")
    for parent in path.absolute().parents:
        if not os.path.lexists(parent):
            continue
        if not parent.exists():
            raise UsageError(f"cannot write {path}: {parent} is a symbolic link to {os.readlink(parent)}, which "
                             "does not exist; make its target or choose another --out")
        if not parent.is_dir():
            raise UsageError(f"cannot write {path}: {parent} is a file, not a folder")
        try:  # a real file made and removed: permissions, read-only mounts and odd file systems all show
            fd, probe = tempfile.mkstemp(prefix=".vid2act-probe.", dir=parent)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise Vid2ActError(f"cannot write {path}: {parent} is not writable here ({e.strerror}); check its "
                               "permissions, or choose another --out") from None
        break


def check_apart(outputs: dict, inputs: dict) -> None:
    """Refuse, before any work, an output that is, holds or lies inside one of the command's inputs (writing it,
    or replacing it with --force, would destroy that input), and outputs that overlap one another. Both map an
    option's name to its path (None, "" and "-" are skipped); symbolic links are followed."""
    def named(paths: dict):
        return [(name, Path(p), Path(os.path.realpath(p))) for name, p in paths.items()
                if p is not None and str(p) not in ("", STDIO)]

    outs = named(outputs)
    for name, out, full_out in outs:
        for input_name, source, full_in in named(inputs):
            relation = ("is" if full_out == full_in else "holds" if full_out in full_in.parents
                        else "lies inside" if full_in in full_out.parents else None)
            if relation:
                raise UsageError(f"{name} {out} {relation} the input {input_name} {source}: writing there would "
                                 f"destroy it; choose another {name}")
    for i, (name_a, a, full_a) in enumerate(outs):
        for name_b, b, full_b in outs[i + 1:]:
            if full_a == full_b or full_a in full_b.parents or full_b in full_a.parents:
                relation = "are the same path" if full_a == full_b else "lie one inside the other"
                raise UsageError(f"the outputs {a} and {b} {relation}; give each its own place")


def _rename_noreplace_call():
    """The kernel's rename that fails when the destination exists (Linux renameat2, macOS renamex_np), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None
    if hasattr(libc, "renameat2"):  # glibc >= 2.28, musl
        at_fdcwd, noreplace = -100, 1
        return lambda src, dst: libc.renameat2(at_fdcwd, src, at_fdcwd, dst, noreplace)
    if hasattr(libc, "renamex_np"):
        return lambda src, dst: libc.renamex_np(src, dst, 0x4)  # RENAME_EXCL
    return None


_RENAME_NOREPLACE = _rename_noreplace_call()


def rename_noreplace(src: Path, dst: Path) -> None:
    """Move `src` to `dst` only if nothing is at `dst`, in one step: of two commands writing the same output,
    exactly one wins and the other gets FileExistsError."""
    if _RENAME_NOREPLACE is not None:
        if _RENAME_NOREPLACE(os.fsencode(src), os.fsencode(dst)) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(dst))
    # no such call (or the file system lacks it): a hard link for files, a check for folders
    if Path(src).is_dir():
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
        os.rename(src, dst)
    else:
        os.link(src, dst)
        os.unlink(src)


LOCK_FILE = ".lock"  # inside a folder a command keeps writing (a dataset, a training run): held with flock


def lock_folder(folder: Path, command: str):
    """Create `folder` if needed and lock it for this process (an open file; closing it, or the process
    ending in any way, releases the lock). Another process holding it: refused, exit 2."""
    import fcntl
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / LOCK_FILE, "a+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise UsageError(f"another vid2act {command} is writing {folder}; wait for it to finish or stop it") from None
    return lock


def clear_folder(folder: Path) -> None:
    """Delete what `folder` holds except its lock (which this process holds): --force under a lock."""
    for item in Path(folder).iterdir():
        if item.name != LOCK_FILE:
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()


def _appeared(path: Path) -> UsageError:
    return UsageError(f"{path} already exists (it appeared while this command ran: is another one writing it?); "
                      "pass --force to replace it, or choose another --out")


def write_bytes(path: Path, data: bytes, replace: bool = True) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename; with `replace` False
    the rename fails if `path` appeared meanwhile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; outputs get the usual permissions
        if replace:
            os.replace(tmp, path)
        else:
            try:
                rename_noreplace(Path(tmp), path)
            except FileExistsError:
                raise _appeared(path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def write_json(path: Path, document: dict) -> None:
    write_bytes(path, dumps(document).encode())


def write_npz(path: Path, arrays: dict) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


@contextmanager
def output_dir(path: Path, force: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it takes `path`'s name in one rename, on
    failure it disappears, so a reader never sees a half-written output. Without `force` the rename never
    replaces what appeared at `path` meanwhile."""
    path = Path(path)
    check_can_write(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        if force:
            replace_path(tmp, path)
        else:
            try:
                rename_noreplace(tmp, path)
            except FileExistsError:
                raise _appeared(path) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_path(new: Path, path: Path) -> None:
    """Move the file or folder `new` to `path`, replacing what is there. A folder in the way is renamed aside
    and deleted only after `new` has its name: a kill -9 in between (a checkpoint being replaced) leaves the
    old folder on disk instead of neither."""
    if path.is_dir() and not path.is_symlink():
        old = new.with_name(new.name + ".old")
        os.replace(path, old)
        os.replace(new, path)
        shutil.rmtree(old)
        return
    if new.is_dir() and (path.exists() or path.is_symlink()):
        path.unlink()  # a folder cannot be renamed onto a file
    os.replace(new, path)


def recover_leftovers(folder: Path) -> list[str]:
    """What a writer killed mid-way left in `folder` (which the caller has locked, so no writer is alive):
    an output being staged (`.NAME.xxxxxxxx.tmp`) is deleted; an old output set aside while its
    replacement took its name (`.NAME.xxxxxxxx.tmp.old`) is put back if NAME is missing (killed between
    the two renames), else deleted. Returns the names it dealt with."""
    import re
    staged = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp(?P<old>\.old)?$")
    dealt = []
    for entry in sorted(Path(folder).iterdir()):
        match = staged.match(entry.name)
        if match is None:
            continue
        target = entry.with_name(match["name"])
        if match["old"] and not (target.exists() or target.is_symlink()):
            os.replace(entry, target)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        dealt.append(entry.name)
    return dealt


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


# --- arrays: a header is checked against the bytes that hold it before anything is allocated -----------------
DEFLATE_MAX_RATIO = 1032  # zlib never expands data more than this on decompression


def _read_npy(stream, stored: int, where, header_only: bool = False) -> np.ndarray | None:
    """An array from an open .npy stream whose data can be at most `stored` bytes: the shape its header claims
    must fit in them, so a forged header is refused instead of allocating what it claims. `header_only`: check
    the header, read nothing more."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran_order, dtype = read_header(stream)
    except (ValueError, EOFError, OSError) as e:
        raise Vid2ActError(f"{where} is not a readable array ({e.__class__.__name__}: {e})") from None
    if dtype.hasobject:
        raise Vid2ActError(f"{where} holds Python objects; vid2act reads plain numeric arrays (it never unpickles)")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > stored:
        raise Vid2ActError(f"{where}: its header claims a {'x'.join(map(str, shape))} {dtype} array "
                           f"({claimed:,} bytes) but the file holds at most {stored:,}; the file is damaged or forged")
    if header_only:
        return None
    data, got = bytearray(claimed), 0
    try:
        while got < claimed:
            count = stream.readinto(memoryview(data)[got:])
            if not count:
                break
            got += count
    except (EOFError, OSError, zipfile.BadZipFile, zlib.error) as e:
        raise Vid2ActError(f"{where} is not a readable array ({e.__class__.__name__}: {e})") from None
    if got != claimed:
        raise Vid2ActError(f"{where} is truncated: {got:,} of the {claimed:,} bytes its header claims")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")


def load_npy(path: Path) -> np.ndarray:
    """A .npy file's array, its header checked first."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            return _read_npy(stream, os.fstat(stream.fileno()).st_size, path)
    except IsADirectoryError:
        raise Vid2ActError(f"{path} is a folder, not a .npy file") from None


def load_npz(path: Path, names=None, headers_only: bool = False) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (only `names`, when given), each header checked against what its zip entry
    can hold: the bytes stored, times deflate's largest ratio. `headers_only`: check them, read no data (the
    values are then None)."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as e:
        raise Vid2ActError(f"{path} is not a readable npz ({e.__class__.__name__}: {e})") from None
    arrays = {}
    with archive:
        for entry in archive.infolist():
            name = entry.filename[:-4] if entry.filename.endswith(".npy") else entry.filename
            if names is not None and name not in names:
                continue
            stored = entry.compress_size * (DEFLATE_MAX_RATIO if entry.compress_type else 1)
            try:
                with archive.open(entry) as stream:
                    arrays[name] = _read_npy(stream, min(stored, entry.file_size), f"{path} ({name})", headers_only)
            except (OSError, zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as e:
                raise Vid2ActError(f"{path} is not a readable npz ({e.__class__.__name__}: {e})") from None
    return arrays


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
SPLIT_NAMES = ("train", "test", "heldout")
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
    from vid2act.spec import (ARM_LOWER, ARM_UPPER, COLOR_NAMES, FINGER_OPEN, FRAME_INTERVAL, SHAPES, TIMESTEP,
                              WORKSPACE_HIGH, WORKSPACE_LOW)
    if not isinstance(scene, dict):
        raise Vid2ActError(f"{where} must hold a JSON object")
    _keys(scene, SCENE_KEYS, where, SCENE_OPTIONAL_KEYS)
    task = require(scene, "task", str, where)
    if task not in TASK_FAMILIES:
        raise Vid2ActError(f"{where} names the unknown task {task!r}")
    if scene["split"] not in SPLIT_NAMES:
        raise Vid2ActError(f"{where}: split {scene['split']!r} is not one of {', '.join(SPLIT_NAMES)}")
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


def write_rollout(folder: Path, rgb: np.ndarray, depth: np.ndarray, result: dict | None = None) -> None:
    """A rollout folder's files: frames.npz (a plan's layout, so a rollout translates like one), rollout.mp4,
    and result.json where the rollout is scored on its own (`vid2act execute`; an eval episode keeps its
    record beside the folder). `folder` is the temporary folder of an `output_dir`."""
    write_frames(folder, rgb, depth)
    write_video(folder / "rollout.mp4", rgb, FPS)
    if result is not None:
        write_json(folder / "result.json", result)


def write_frames(folder: Path, rgb: np.ndarray, depth: np.ndarray | None) -> None:
    """frames.npz: rgb uint8 [T, H, W, 3] and, when known, depth float16 [T, H, W] in metres. Plans and
    rollouts share this layout."""
    arrays = {"rgb": rgb.astype(np.uint8)}
    if depth is not None:
        arrays["depth"] = depth.astype(np.float16)
    write_npz(folder / "frames.npz", arrays)


def write_video(path: Path, rgb: np.ndarray, fps: float) -> None:
    """An H.264 mp4 for eyes (lossy); the exact frames live in the npz beside it."""
    import imageio.v2 as imageio
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / path.name
        with imageio.get_writer(staging, fps=fps, codec="libx264", quality=8, macro_block_size=16,
                                ffmpeg_log_level="error", pixelformat="yuv420p") as writer:
            for frame in rgb:
                writer.append_data(frame)
        write_bytes(path, staging.read_bytes())


def write_gif(path: Path, rgb: np.ndarray, fps: float, scale: int = 1) -> None:
    """A looping GIF (for a web page or a README), each frame enlarged `scale` times without smoothing."""
    import io

    from PIL import Image
    frames = [Image.fromarray(np.asarray(f)).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
              for f in rgb]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    write_bytes(path, buffer.getvalue())


# --- frames from anywhere: plans, rollouts, dataset episodes, videos, PNG folders -----------------------------
VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".avi", ".mov", ".mkv")


def read_frames(path) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB uint8 [T, H, W, 3] and metric depth [T, H, W] when the source has it (frames.npz files do;
    videos and PNGs do not)."""
    path = Path(path)
    if not path.exists():
        raise Vid2ActError(f"{path} does not exist")
    if path.is_dir():
        if (path / "frames.npz").exists():
            return read_frames(path / "frames.npz")
        pngs = sorted(path.glob("*.png"))
        if not pngs:
            raise Vid2ActError(f"{path} holds neither frames.npz nor PNG frames")
        frames = _read_pngs(pngs)
        shapes = sorted({frame.shape for frame in frames})
        if len(shapes) > 1:
            raise Vid2ActError(f"the PNG frames in {path} differ in size ({', '.join(map(str, shapes))})")
        return _check_rgb(np.stack(frames), path), None
    if path.suffix == ".npz":
        data = load_npz(path, ("rgb", "depth"))
        if "rgb" not in data:
            raise Vid2ActError(f"{path} has no 'rgb' array")
        rgb = _check_rgb(data["rgb"], path)
        depth = data["depth"].astype(np.float32) if "depth" in data else None
        if depth is not None and depth.shape != rgb.shape[:3]:
            raise Vid2ActError(f"{path}: depth {depth.shape} does not match rgb {rgb.shape[:3]}")
        if depth is not None:
            check_finite_depth(depth, path)
        return rgb, depth
    if path.suffix.lower() in VIDEO_SUFFIXES:
        import imageio.v3 as iio
        try:
            frames = iio.imread(path, plugin="pillow" if path.suffix.lower() == ".gif" else "FFMPEG")
        except Exception as e:  # imageio raises many kinds for a truncated or foreign file
            raise Vid2ActError(f"{path} is not a readable video ({e.__class__.__name__}: "
                               f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no detail'})") from None
        if frames.ndim == 4 and frames.shape[-1] == 4:
            frames = frames[..., :3]
        return _check_rgb(np.ascontiguousarray(frames), path), None
    raise Vid2ActError(f"{path}: unknown input; give a plan or rollout folder, a frames or episode .npz, "
                       f"a video ({', '.join(VIDEO_SUFFIXES)}) or a folder of PNGs")


def check_finite_depth(depth: np.ndarray, where) -> None:
    """Depth [T, H, W] or [H, W] in metres must hold no NaN or infinity: say where the first one is."""
    bad = ~np.isfinite(depth)
    if bad.any():
        at = np.argwhere(bad)[0]
        place = (f"frame {at[0]}, row {at[1]}, column {at[2]}" if depth.ndim == 3 else f"row {at[0]}, column {at[1]}")
        raise Vid2ActError(f"{where}: the depth holds {int(bad.sum())} NaN or infinite values (first at {place}); "
                           "depth must be finite metres")


def _read_pngs(paths: list[Path]) -> list[np.ndarray]:
    import imageio.v3 as iio
    frames = []
    for p in paths:
        try:
            frame = iio.imread(p)
        except Exception as e:
            raise Vid2ActError(f"{p} is not a readable PNG ({e.__class__.__name__})") from None
        frames.append(frame[..., :3] if frame.ndim == 3 and frame.shape[-1] == 4 else frame)
    return frames


def _check_rgb(rgb, where) -> np.ndarray:
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise Vid2ActError(f"{where}: frames have shape {rgb.shape}; expected [T, H, W, 3] RGB")
    if rgb.dtype != np.uint8:
        raise Vid2ActError(f"{where}: frames are {rgb.dtype}; expected uint8 RGB")
    if len(rgb) < 2:
        raise Vid2ActError(f"{where} has {len(rgb)} frame; at least 2 are needed to read an action off")
    return rgb


def resize_frames(rgb: np.ndarray, depth: np.ndarray | None, size: tuple[int, int]):
    """Area-average RGB and nearest-neighbour depth to (height, width)."""
    from PIL import Image
    height, width = size
    rgb = np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BOX)) for f in rgb])
    if depth is not None:
        depth = np.stack([np.asarray(Image.fromarray(d.astype(np.float32)).resize((width, height), Image.NEAREST))
                          for d in depth])
    return rgb, depth


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
