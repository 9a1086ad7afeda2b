"""Arrays, frames and videos on disk: .npy and .npz read with their headers checked before anything is
allocated, frames read from plans, rollouts, episodes, videos and PNG folders, rollouts and videos written."""
from __future__ import annotations

import math
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from vid2act.errors import Vid2ActError
from vid2act.outputs import write_bytes, write_json, write_npz
from vid2act.spec import FPS


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
