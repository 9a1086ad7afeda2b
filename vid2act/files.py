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
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from vid2act.errors import UsageError, Vid2ActError
from vid2act.spec import ACTION_SPACE, FPS, TASK_FAMILIES, image_size_problem

SCENE_FORMAT = "vid2act.scene/1"

ACTIONS_FORMAT = "vid2act.actions/1"
RESULT_FORMAT = "vid2act.result/1"
STDIO = "-"
NAME_MAX = 255  # bytes in one path component, on every common file system
_UMASK = os.umask(0)
os.umask(_UMASK)


# --- atomic writes ----------------------------------------------------------------------------------
def check_can_write(path: Path, force: bool) -> None:
    """Refuse, before any work, an output that exists (a dangling symlink included) without `force`, or whose
    folder cannot be made because a file is in the way."""
    path = Path(path)
    if os.path.lexists(path) and not force:
        raise UsageError(f"{path} already exists; pass --force to replace it, or choose another --out")
    if len(os.fsencode(path.name)) > NAME_MAX - len(".XXXXXXXX.tmp.old") - 1:  # its temporary twin must fit too
        raise UsageError(f"cannot write {path}: its name is {len(os.fsencode(path.name))} bytes, longer than this "
                         f"file system allows ({NAME_MAX}, less the temporary suffix); choose a shorter --out")
    for parent in path.absolute().parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise UsageError(f"cannot write {path}: {parent} is a file, not a folder")
            break


def check_distinct(*paths) -> None:
    """Refuse outputs of one command that are the same path or lie one inside the other."""
    named = [(Path(p), Path(os.path.abspath(p))) for p in paths if p is not None and str(p) != STDIO]
    for i, (a, full_a) in enumerate(named):
        for b, full_b in named[i + 1:]:
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
def load_json(path: Path, what: str) -> dict:
    try:
        text = sys.stdin.read() if str(path) == STDIO else Path(path).read_text()
    except FileNotFoundError:
        raise Vid2ActError(f"{what} {path} does not exist") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise Vid2ActError(f"{what} {path} is not a JSON file ({e.__class__.__name__})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise Vid2ActError(f"{what} {path} is not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(document, dict):
        raise Vid2ActError(f"{what} {path} must hold a JSON object")
    return document


def check_format(document: dict, expected: str, where, also: tuple[str, ...] = ()) -> None:
    """`expected` is today's format; `also` older ones that read alike."""
    found = document.get("format")
    if found != expected and found not in also:
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
    import imageio.v3 as iio
    write_json(folder / "scene.json", scene)
    write_bytes(folder / "start.png", iio.imwrite("<bytes>", rgb, extension=".png"))
    buffer = io.BytesIO()
    np.save(buffer, depth.astype(np.float32), allow_pickle=False)
    write_bytes(folder / "start_depth.npy", buffer.getvalue())


def read_scene(folder: Path) -> dict:
    """The scene document of a scene folder, checked well enough that the world can be rebuilt from it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise Vid2ActError(f"scene folder {folder} does not exist (make one with `vid2act scene`)")
    path = folder / "scene.json"
    if not path.exists():
        raise Vid2ActError(f"{folder} has no scene.json (make a scene with `vid2act scene`)")
    scene = load_json(path, "scene file")
    check_format(scene, SCENE_FORMAT, path)
    try:
        _check_scene(scene, path)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise Vid2ActError(f"{path} is malformed ({e.__class__.__name__}: {e})") from None
    return scene


def _check_scene(scene: dict, where: Path) -> None:
    task = require(scene, "task", str, where)
    if task not in TASK_FAMILIES:
        raise Vid2ActError(f"{where} names the unknown task {task!r}")
    for key, kind in (("seed", int), ("instruction", str), ("goal", dict), ("image_size", list),
                      ("camera", dict), ("state", dict), ("action_space", dict)):
        require(scene, key, kind, where)
    height, width = scene["image_size"]
    problem = image_size_problem(height, width)
    if problem:
        raise Vid2ActError(f"{where}: image size {height}x{width}: {problem}")
    check_action_space(scene["action_space"], where)
    state = scene["state"]
    names = set()
    for obj in require(state, "objects", list, where):
        names.add(obj["name"])
        for key in ("position", "orientation", "linear_velocity", "angular_velocity"):
            _finite_vector(obj[key], 4 if key == "orientation" else 3, f"{where}: {obj['name']} {key}")
    for name in scene["goal"].values():
        if name not in names:
            raise Vid2ActError(f"{where}: the goal names {name!r}, which is not among the scene's objects")
    robot = require(state, "robot", dict, where)
    for key, size in (("joint_positions", 9), ("joint_velocities", 9), ("ee_target", 3)):
        _finite_vector(robot[key], size, f"{where}: robot {key}")


def _finite_vector(values, size: int, where: str) -> None:
    if not isinstance(values, list) or len(values) != size or not all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise Vid2ActError(f"{where} must be {size} finite numbers")


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
        try:
            with np.load(path, allow_pickle=False) as data:
                if "rgb" not in data.files:
                    raise Vid2ActError(f"{path} has no 'rgb' array (found {', '.join(data.files) or 'nothing'})")
                rgb = _check_rgb(data["rgb"], path)
                depth = data["depth"].astype(np.float32) if "depth" in data.files else None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise Vid2ActError(f"{path} is not a readable npz ({e.__class__.__name__}: {e})") from None
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
OLD_PLAN_FORMATS = ("vid2act.plan/1",)  # `frames` (keyframes + 1) and `model`: readers need neither


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
    check_format(document, PLAN_FORMAT, path, also=OLD_PLAN_FORMATS)
    for key, kind in (("stride", int), ("frame_interval", int)):
        if not isinstance(document.get(key), kind) or document[key] < 1:
            raise Vid2ActError(f"{path}: field {key!r} must be a positive integer")
    return document
