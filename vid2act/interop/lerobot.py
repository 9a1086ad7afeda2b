"""LeRobot datasets (LeRobotDataset format v3.0), both ways, with pyarrow and PyAV (lerobot itself is not a
dependency: it needs another Python and torch).

Export (`vid2act export lerobot DATA OUT`) writes what LeRobot's reader expects:

    meta/info.json                       codebase_version "v3.0", fps, features (dtype, shape, names, video info)
    meta/tasks.parquet                   one row per instruction (the index) with its task_index
    meta/episodes/chunk-000/file-000.parquet   per episode: tasks, length, data and video file, frame range
    meta/stats.json                      per feature min, max, mean, std, count
    data/chunk-000/file-000.parquet      one row per frame
    videos/observation.images.front/chunk-000/file-000.mp4   every episode's frames, one after another

Features: `observation.images.front` (the camera, a video), `observation.depth` (metric depth as LeRobot 0.6
stores depth maps: a 12-bit video feature marked `is_depth_map`, log-quantized between 0.01 and 10 m with a
3.5 m shift, `depth_unit` "m", encoded losslessly with FFV1 in gray12le, so quantization is all that is lost:
half a code, under 0.9 mm closer than 2 m and 1.07 mm at the 3 m far plane), `observation.state`
(grasp point x, y, z in metres and the gripper command in force, as the Gymnasium environments'
`agent_pos`), `action` (dx, dy, dz, gripper), and, so that an export comes back as the same vid2act dataset,
`observation.ee_target` (the commanded grasp point), `observation.ee_pose` and `observation.gripper_width`,
plus per episode its vid2act scene (`vid2act/scene`) and family (`vid2act/task`). A vid2act episode of T
frames has T - 1 actions; LeRobot wants one per frame, so the last frame gets a still action that keeps the
gripper as it is (import drops it again).

Import (`vid2act import lerobot IN DATA`) reads a v3.0 dataset whose action is (dx, dy, dz, gripper) into a
vid2act dataset, resampling images to `image_size`; depth as a LeRobot 0.6 depth-map video (in metres or
millimetres, as `depth_unit` says) or as a float32 [H, W] column (metres, as vid2act wrote it before). Every
column is checked against info.json before anything is written. A dataset from elsewhere has no vid2act scene: its
episodes get vid2act's camera (the planner's grounding labels assume it) and commanded grasp points from
`observation.state`. A v2.1 dataset is refused with LeRobot's own conversion command."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from vid2act.errors import UsageError, Vid2ActError

CODEBASE_VERSION = "v3.0"
VIDEO_KEY = "observation.images.front"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
# h264 keeps full colour resolution (yuv444p): at 48x64 a block is a few pixels wide and 4:2:0 smears its
# colour (mean error 3.4 grey levels against 0.8); SVT-AV1 encodes 4:2:0 only.
CODECS = {"h264": ("libx264", "yuv444p", {"crf": "10", "g": "2", "preset": "medium"}),
          "av1": ("libsvtav1", "yuv420p", {"crf": "20", "g": "2", "preset": "8"})}
CONVERT_V21 = "python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 --repo-id=<your dataset>"
DEPTH_KEY = "observation.depth"
# LeRobot 0.6's depth maps: 12-bit codes, log-spaced between depth_min and depth_max (metres, after a shift)
DEPTH_QMAX = 4095
DEPTH_PARAMETERS = {"video.depth_min": 0.01, "video.depth_max": 10.0, "video.shift": 3.5, "video.use_log": True}
DEPTH_CODEC, DEPTH_PIX_FMT = "ffv1", "gray12le"  # lossless: the 12-bit codes come back exactly


# --- export --------------------------------------------------------------------------------------------
def check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise UsageError(f"unknown --video-codec {codec!r}; choose {' or '.join(CODECS)}")


def encode_video(path: Path, frames: np.ndarray, fps: float, codec: str) -> None:
    """uint8 frames [N, H, W, 3] -> an mp4 of `codec`, a keyframe every 2 frames (as LeRobot encodes, for fast
    random access); uint16 depth codes [N, H, W] with codec "ffv1" -> a lossless gray12le mp4. Frame n has the
    timestamp n / fps."""
    import os

    import av
    name, pix_fmt, options = (DEPTH_CODEC, DEPTH_PIX_FMT, {"g": "2"}) if codec == DEPTH_CODEC else CODECS[codec]
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(name, rate=int(round(fps)), options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=pix_fmt if frame.ndim == 2
                                                 else "rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode_video(path: Path, pixels: str = "rgb24") -> tuple[np.ndarray, np.ndarray]:
    """Every frame of a video as `pixels` (rgb24: uint8 [N, H, W, 3]; gray12le: uint16 [N, H, W]) and its time in
    seconds [N]."""
    import av
    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format=pixels))
                times.append(float(frame.pts * frame.time_base) if frame.pts is not None else len(times))
    except (av.error.FFmpegError, OSError) as e:
        raise Vid2ActError(f"{path} is not a readable video ({e.__class__.__name__})") from None
    if not frames:
        raise Vid2ActError(f"{path} holds no video frames")
    return np.stack(frames), np.asarray(times)


def quantize_depth(depth: np.ndarray, parameters: dict = DEPTH_PARAMETERS) -> np.ndarray:
    """Metres -> LeRobot's 12-bit depth codes (uint16, 0 ... 4095), log-spaced when `use_log`."""
    low, high, shift = (parameters[k] for k in ("video.depth_min", "video.depth_max", "video.shift"))
    depth = depth.astype(np.float64)
    if parameters["video.use_log"]:
        unit = (np.log(depth + shift) - math.log(low + shift)) / (math.log(high + shift) - math.log(low + shift))
    else:
        unit = (depth - low) / (high - low)
    return np.rint(unit * DEPTH_QMAX).clip(0, DEPTH_QMAX).astype(np.uint16)


def dequantize_depth(codes: np.ndarray, parameters: dict) -> np.ndarray:
    """LeRobot's 12-bit depth codes -> metres (float32), whatever unit the dataset records."""
    low, high, shift = (parameters[k] for k in ("video.depth_min", "video.depth_max", "video.shift"))
    unit = codes.astype(np.float64) / DEPTH_QMAX
    if parameters["video.use_log"]:
        lo, hi = math.log(low + shift), math.log(high + shift)
        depth = np.exp(lo + unit * (hi - lo)) - shift
    else:
        depth = low + unit * (high - low)
    return np.clip(depth, low, high).astype(np.float32)


def depth_parameters(feature: dict, where) -> dict:
    """A depth-map video feature's quantization, checked (LeRobot's defaults where a key is absent)."""
    info = feature.get("info") or {}
    if not isinstance(info, dict):
        raise Vid2ActError(f"{where}: the depth feature's info must be a JSON object")
    parameters = {k: info.get(k, default) for k, default in DEPTH_PARAMETERS.items()}
    for key in ("video.depth_min", "video.depth_max", "video.shift"):
        value = parameters[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Vid2ActError(f"{where}: the depth feature's {key} must be a finite number (got {value!r})")
    if not isinstance(parameters["video.use_log"], bool):
        raise Vid2ActError(f"{where}: the depth feature's video.use_log must be true or false")
    if not parameters["video.depth_max"] > parameters["video.depth_min"] >= 0:
        raise Vid2ActError(f"{where}: the depth feature's range [{parameters['video.depth_min']}, "
                           f"{parameters['video.depth_max']}] is empty or negative")
    if parameters["video.use_log"] and parameters["video.depth_min"] + parameters["video.shift"] <= 0:
        raise Vid2ActError(f"{where}: the depth feature's depth_min + shift must be positive for log quantization")
    if info.get("depth_unit", "mm") not in ("m", "mm"):
        raise Vid2ActError(f"{where}: depth_unit {info.get('depth_unit')!r} is neither m nor mm")
    return parameters


def is_depth_map(feature: dict) -> bool:
    info = feature.get("info")
    return feature.get("dtype") == "video" and isinstance(info, dict) and bool(
        info.get("is_depth_map") or info.get("video.is_depth_map"))


def _stats(values: np.ndarray, axis) -> dict:
    values = values.astype(np.float64)
    return {"min": values.min(axis).tolist(), "max": values.max(axis).tolist(), "mean": values.mean(axis).tolist(),
            "std": values.std(axis).tolist(), "count": [int(values.shape[0])]}


def _video_info(height: int, width: int, fps: float, codec: str) -> dict:
    return {"video.height": height, "video.width": width, "video.codec": {"h264": "h264", "av1": "av1"}[codec],
            "video.pix_fmt": CODECS[codec][1], "video.is_depth_map": False, "video.fps": int(round(fps)),
            "video.channels": 3, "has_audio": False}


def export_lerobot(data: Path, out: Path, codec: str = "h264", force: bool = False,
                   on_episode=lambda done, total: None) -> dict:
    """A vid2act dataset -> a LeRobot v3.0 dataset folder `out` (written atomically). Returns its info."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vid2act.data.dataset import Dataset
    from vid2act.outputs import check_apart, check_can_write, output_dir, write_json
    check_codec(codec)
    dataset = Dataset(data)
    check_apart({"OUT": out}, {"DATA": data})
    check_can_write(out, force)
    fps = float(dataset.info["fps"])
    height, width = dataset.info["image_size"]
    columns = {k: [] for k in ("observation.state", "action", "observation.ee_target",
                               "observation.ee_pose", "observation.gripper_width", "timestamp", "frame_index",
                               "episode_index", "index", "task_index")}
    episodes, tasks, frames, depths = [], {}, [], []
    total = 0
    for e in range(len(dataset)):
        episode = dataset.episode(e)
        scene = json.loads(episode["scene"])
        n = len(episode["rgb"])
        actions = np.asarray(episode["actions"], np.float32)
        gripper = np.concatenate([[scene["state"]["robot"]["gripper"]], actions[:, 3]]).astype(np.float32)
        still = np.array([[0.0, 0.0, 0.0, gripper[-1]]], np.float32)  # the last frame's action: hold still
        instruction = str(episode["instruction"])
        task_index = tasks.setdefault(instruction, len(tasks))
        columns["observation.state"] += list(np.c_[episode["ee_pose"][:, :3], gripper].astype(np.float32))
        depths.append(np.asarray(episode["depth"], np.float32))
        columns["action"] += list(np.concatenate([actions, still]))
        columns["observation.ee_target"] += list(np.asarray(episode["ee_target"], np.float64))
        columns["observation.ee_pose"] += list(np.asarray(episode["ee_pose"], np.float32))
        columns["observation.gripper_width"] += list(np.asarray(episode["gripper_width"], np.float32))
        columns["timestamp"] += list((np.arange(n) / fps).astype(np.float32))
        columns["frame_index"] += list(range(n))
        columns["episode_index"] += [e] * n
        columns["index"] += list(range(total, total + n))
        columns["task_index"] += [task_index] * n
        frames.append(episode["rgb"])
        episodes.append({"episode_index": e, "tasks": [instruction], "length": n,
                         "data/chunk_index": 0, "data/file_index": 0,
                         "dataset_from_index": total, "dataset_to_index": total + n,
                         f"videos/{VIDEO_KEY}/chunk_index": 0, f"videos/{VIDEO_KEY}/file_index": 0,
                         f"videos/{VIDEO_KEY}/from_timestamp": total / fps,
                         f"videos/{VIDEO_KEY}/to_timestamp": (total + n) / fps,
                         f"videos/{DEPTH_KEY}/chunk_index": 0, f"videos/{DEPTH_KEY}/file_index": 0,
                         f"videos/{DEPTH_KEY}/from_timestamp": total / fps,
                         f"videos/{DEPTH_KEY}/to_timestamp": (total + n) / fps,
                         "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                         "vid2act/task": str(episode["task"]), "vid2act/scene": episode["scene"]})
        total += n
        on_episode(e + 1, len(dataset))
    rgb, depth = np.concatenate(frames), np.concatenate(depths)
    features = {
        VIDEO_KEY: {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
                    "info": _video_info(height, width, fps, codec)},
        DEPTH_KEY: {"dtype": "video", "shape": [height, width, 1], "names": ["height", "width", "channels"],
                    "info": {"video.height": height, "video.width": width, "video.codec": DEPTH_CODEC,
                             "video.pix_fmt": DEPTH_PIX_FMT, "video.is_depth_map": True, "is_depth_map": True,
                             **DEPTH_PARAMETERS, "depth_unit": "m", "video.fps": int(round(fps)),
                             "video.channels": 1, "has_audio": False}},
        "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
        "action": {"dtype": "float32", "shape": [4], "names": list(dataset.info["action_space"]["names"])},
        "observation.ee_target": {"dtype": "float64", "shape": [3], "names": ["x", "y", "z"]},
        "observation.ee_pose": {"dtype": "float32", "shape": [7], "names": ["x", "y", "z", "qx", "qy", "qz", "qw"]},
        "observation.gripper_width": {"dtype": "float32", "shape": [1], "names": ["width"]},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    arrays = {}
    for key, values in columns.items():
        feature = features[key]
        dtype = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64()}[feature["dtype"]]
        flat = pa.array(np.asarray(values).reshape(-1), type=dtype)
        # LeRobot reads a shape (1,) feature as a plain value, a longer one as a fixed-size list
        arrays[key] = flat if feature["shape"] == [1] else pa.FixedSizeListArray.from_arrays(flat, feature["shape"][0])
    stats = {VIDEO_KEY: {k: np.asarray(v).reshape(3, 1, 1).tolist() if k != "count" else v
                         for k, v in _stats(rgb.reshape(-1, 3) / 255.0, 0).items()},
             DEPTH_KEY: {k: (np.asarray(v).reshape(1, 1, 1).tolist() if k != "count" else v)
                         for k, v in _stats(depth.reshape(-1, 1), 0).items()},
             **{key: _stats(np.stack(columns[key]).reshape(total, -1), 0)
                for key in ("observation.state", "action", "observation.ee_target", "observation.ee_pose",
                            "observation.gripper_width", "timestamp", "frame_index", "episode_index", "index",
                            "task_index")}}
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": "franka_panda_pybullet", "total_episodes": len(dataset),
            "total_frames": total, "total_tasks": len(tasks), "chunks_size": 1000, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 500, "fps": int(round(fps)), "splits": {"train": f"0:{len(dataset)}"},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH, "features": features,
            "vid2act": {"source": str(Path(data).resolve()), "dataset_format": dataset.info["format"],
                        "action_space": dataset.info["action_space"], "image_size": [height, width],
                        "frame_interval": dataset.info["frame_interval"],
                        "note": "the last frame of each episode carries a still action (vid2act has none there)"}}
    with output_dir(out, force) as tmp:
        (tmp / "data" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.table(arrays), tmp / DATA_PATH.format(chunk_index=0, file_index=0))
        video = tmp / VIDEO_PATH.format(video_key=VIDEO_KEY, chunk_index=0, file_index=0)
        video.parent.mkdir(parents=True)
        encode_video(video, rgb, fps, codec)
        depth_video = tmp / VIDEO_PATH.format(video_key=DEPTH_KEY, chunk_index=0, file_index=0)
        depth_video.parent.mkdir(parents=True)
        encode_video(depth_video, quantize_depth(depth), fps, DEPTH_CODEC)
        (tmp / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(episodes), tmp / EPISODES_PATH)
        pd.DataFrame({"task_index": list(tasks.values())}, index=pd.Index(list(tasks), name="task")).to_parquet(
            tmp / "meta" / "tasks.parquet")
        write_json(tmp / "meta" / "stats.json", stats)
        write_json(tmp / "meta" / "info.json", info)
    return info


# --- import --------------------------------------------------------------------------------------------
def read_info(root: Path) -> dict:
    from vid2act.formats import load_json
    path = Path(root) / "meta" / "info.json"
    if not path.exists():
        raise Vid2ActError(f"{root} is not a LeRobot dataset (no meta/info.json)")
    info = load_json(path, "LeRobot dataset info")
    if "codebase_version" not in info:
        raise Vid2ActError(f"{root} is not a LeRobot dataset (its meta/info.json has no codebase_version)")
    version = str(info["codebase_version"])
    if version.startswith("v2") or version.startswith("v1"):
        raise Vid2ActError(f"{root} is a LeRobot {version} dataset; vid2act reads v3.0: convert it first with "
                           f"LeRobot's `{CONVERT_V21}`")
    if version != CODEBASE_VERSION:
        raise Vid2ActError(f"{path} has codebase_version {version!r}; vid2act reads LeRobot {CODEBASE_VERSION!r}")
    return info


def _column(table, name: str, rows: np.ndarray) -> np.ndarray:
    """A column's values at `rows` as a numpy array (lists of numbers become a dimension)."""
    values = table.column(name).take(rows).to_pylist()
    return np.asarray(values)


def _check_features(info: dict, where) -> tuple[dict, float]:
    """info.json's features and fps, each checked for what import reads."""
    fps = info.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or not 0 < fps <= 1000:
        raise Vid2ActError(f"{where}: fps must be a number of frames per second between 0 and 1000 (got {fps!r})")
    features = info.get("features")
    if not isinstance(features, dict) or not features:
        raise Vid2ActError(f"{where}: features must be a JSON object naming each feature")
    for key, feature in features.items():
        if not isinstance(feature, dict) or not isinstance(feature.get("dtype"), str):
            raise Vid2ActError(f"{where}: feature {key!r} must be an object with a dtype")
        shape = feature.get("shape")
        if not isinstance(shape, list) or not shape or not all(
                isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
            raise Vid2ActError(f"{where}: feature {key!r} has the shape {shape!r}; a shape is a list of positive "
                               "whole numbers")
    return features, float(fps)


def _check_column(table, key: str, feature: dict, where) -> None:
    """A data column must exist and hold numbers in the shape info.json gives it, none NaN or infinite."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if key not in table.column_names:
        raise Vid2ActError(f"{where} lacks the column {key!r} that info.json lists")
    column = table.column(key)
    width = 1
    for size in feature["shape"] if feature["shape"] != [1] else []:
        kind = column.type
        if not (pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind) or pa.types.is_large_list(kind)):
            raise Vid2ActError(f"{where}: column {key!r} holds single values; info.json says {feature['shape']}")
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths.min() != size or lengths.max() != size):
            wrong = int(lengths[lengths != size][0])
            raise Vid2ActError(f"{where}: column {key!r} holds rows of {wrong} values; info.json says {size}")
        column = pc.list_flatten(column)
        width *= size
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise Vid2ActError(f"{where}: column {key!r} holds {column.type}, not numbers")
    if pa.types.is_floating(column.type):
        values = column.to_numpy(zero_copy_only=False)
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0]) // width
            raise Vid2ActError(f"{where}: column {key!r} holds NaN or infinity (row {row})")


def _checked_plan(source: Path, info: dict) -> dict:
    """Everything import reads, checked before anything is written: the features, the episodes' metadata, every
    data column against info.json, the actions against vid2act's action space and each vid2act scene."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from vid2act.formats import check_scene, parse_json
    from vid2act.spec import ACTION_SPACE
    where = source / "meta" / "info.json"
    features, fps = _check_features(info, where)
    action = features.get("action", {})
    if list(action.get("shape", [])) != [4]:
        raise Vid2ActError(f"{source}: its action is {action.get('shape')} ({action.get('names')}); vid2act reads "
                           f"actions of 4 numbers, {', '.join(ACTION_SPACE['names'])} (metres and 0 open ... 1 closed)")
    videos = [k for k, f in features.items() if f["dtype"] == "video" and not is_depth_map(f)]
    images = VIDEO_KEY if VIDEO_KEY in videos else (videos[0] if videos else None)
    if images is None:
        raise Vid2ActError(f"{source} has no video feature (vid2act reads camera frames from its videos)")
    depth = features.get(DEPTH_KEY)
    if depth is not None and is_depth_map(depth):
        depth = {"video": depth_parameters(depth, where)}
    elif depth is not None and not (depth["dtype"] in ("float32", "float64") and len(depth["shape"]) == 2):
        raise Vid2ActError(f"{where}: feature {DEPTH_KEY!r} is neither a depth-map video nor float metres [H, W]")
    episodes_files = sorted((source / "meta" / "episodes").glob("*/*.parquet"))
    if not episodes_files:
        raise Vid2ActError(f"{source} has no episode metadata (meta/episodes/chunk-*/file-*.parquet)")
    try:
        episodes = pa.concat_tables([pq.read_table(p) for p in episodes_files]).to_pylist()
    except (pa.ArrowInvalid, OSError) as e:
        raise Vid2ActError(f"{source}: the episode metadata is unreadable ({e.__class__.__name__})") from None
    if not episodes:
        raise Vid2ActError(f"{source} holds no episodes")
    indices = [meta.get("episode_index") for meta in episodes]
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indices):
        raise Vid2ActError(f"{source}: every row of the episode metadata needs an episode_index (a whole number)")
    if len(set(indices)) != len(indices):
        raise Vid2ActError(f"{source}: the episode metadata lists an episode_index twice")
    data_template = info.get("data_path", DATA_PATH)
    checked, tables = [], {}
    for meta in sorted(episodes, key=lambda m: m["episode_index"]):
        data_file = source / data_template.format(chunk_index=meta.get("data/chunk_index", 0),
                                                  file_index=meta.get("data/file_index", 0))
        if data_file not in tables:
            try:
                table = pq.read_table(data_file)
            except (pa.ArrowInvalid, OSError) as e:
                raise Vid2ActError(f"{data_file} is missing or unreadable ({e.__class__.__name__})") from None
            for key, feature in features.items():
                read = key in ("action", "episode_index", "frame_index") or key.startswith("observation.")
                if feature["dtype"] != "video" and read:
                    _check_column(table, key, feature, data_file)
            tables[data_file] = table
        table = tables[data_file]
        rows = np.flatnonzero(pc.equal(table.column("episode_index"), meta["episode_index"]).to_numpy(
            zero_copy_only=False))
        rows = rows[np.argsort(table.column("frame_index").take(rows).to_numpy())]
        if len(rows) < 2:
            raise Vid2ActError(f"{source}: episode {meta['episode_index']} has {len(rows)} frame(s); vid2act needs 2 "
                               "or more")
        actions = _column(table, "action", rows).astype(np.float32)[:-1]
        low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])
        outside = (actions < low) | (actions > high)
        if outside.any():
            frame, dim = (int(v) for v in np.argwhere(outside)[0])
            raise Vid2ActError(f"{source}: episode {meta['episode_index']} frame {frame}: action "
                               f"{ACTION_SPACE['names'][dim]} = {actions[frame, dim]:g} lies outside [{low[dim]}, "
                               f"{high[dim]}] (vid2act does not clip actions; scale them to its action space)")
        scene = meta.get("vid2act/scene")
        if scene:
            scene = parse_json(scene, "the vid2act scene of episode", f"{meta['episode_index']} in {source}")
            check_scene(scene, f"{source}: the vid2act scene of episode {meta['episode_index']}")
        checked.append({"meta": meta, "table": table, "rows": rows, "actions": actions, "scene": scene})
    return {"features": features, "fps": fps, "images": images, "depth": depth, "episodes": checked}


def import_lerobot(source: Path, out: Path, image_size=(48, 64), force: bool = False,
                   on_episode=lambda done, total: None) -> dict:
    """A LeRobot v3.0 dataset -> a vid2act dataset folder `out` (written atomically). Returns its info."""
    from vid2act.version import __version__
    from vid2act.data.dataset import DATASET_FORMAT, dataset_stats, episode_path, write_episode, write_meta
    from vid2act.formats import SCENE_FORMAT
    from vid2act.media import resize_frames
    from vid2act.outputs import check_apart, check_can_write, output_dir
    from vid2act.camera import Camera
    from vid2act.spec import ACTION_SPACE, FRAME_INTERVAL, SEED_RANGES, SPLITS, TIMESTEP, image_size_problem
    source, out = Path(source), Path(out)
    problem = image_size_problem(*image_size)
    if problem:
        raise UsageError(f"--image-size {image_size[0]}x{image_size[1]}: {problem}")
    check_apart({"DATA": out}, {"IN": source})
    check_can_write(out, force)
    info = read_info(source)
    plan = _checked_plan(source, info)
    features, fps, images = plan["features"], plan["fps"], plan["images"]
    video_template = info.get("video_path", VIDEO_PATH)
    has_state = "observation.state" in features
    decoded = {}

    def frames_of(key: str, meta: dict, n: int, pixels: str) -> np.ndarray:
        video_file = source / video_template.format(video_key=key, chunk_index=meta.get(f"videos/{key}/chunk_index", 0),
                                                    file_index=meta.get(f"videos/{key}/file_index", 0))
        if video_file not in decoded:
            if not video_file.exists():
                raise Vid2ActError(f"{video_file} is missing")
            decoded[video_file] = decode_video(video_file, pixels)
        frames, times = decoded[video_file]
        wanted = float(meta.get(f"videos/{key}/from_timestamp", 0.0)) + np.arange(n) / fps
        nearest = np.abs(times[None, :] - wanted[:, None]).argmin(1)
        if np.abs(times[nearest] - wanted).max() > 0.5 / fps:
            raise Vid2ActError(f"{video_file} lacks frames of episode {meta['episode_index']} (its timestamps "
                               f"from {wanted[0]:.3f} s)")
        return frames[nearest]

    actions_all, targets_all, per_task = [], [], {}
    with output_dir(out, force) as tmp:
        for k, episode in enumerate(plan["episodes"]):
            meta, table, rows, actions = episode["meta"], episode["table"], episode["rows"], episode["actions"]
            n = len(rows)
            rgb = frames_of(images, meta, n, "rgb24")
            if plan["depth"] is None:
                depth = None
            elif "video" in plan["depth"]:
                depth = dequantize_depth(frames_of(DEPTH_KEY, meta, n, DEPTH_PIX_FMT), plan["depth"]["video"])
            else:
                depth = _column(table, DEPTH_KEY, rows).astype(np.float32)
            if rgb.shape[1:3] != tuple(image_size) or (depth is not None and depth.shape[1:] != tuple(image_size)):
                rgb, depth = resize_frames(rgb, depth, tuple(image_size))
            if depth is None:  # an RGB dataset: vid2act's RGB models read no depth; keep the format whole
                depth = np.zeros((n, *image_size), np.float32)
            state = _column(table, "observation.state", rows).astype(np.float64) if has_state else np.zeros((n, 4))
            scene = episode["scene"]
            task = meta.get("vid2act/task") or "imported"
            instruction = (meta.get("tasks") or ["(no instruction)"])[0]
            if scene is None:
                scene = {"format": SCENE_FORMAT, "task": task, "split": "train", "seed": k,
                         "instruction": instruction, "image_size": list(image_size),
                         "camera": Camera().to_json(), "action_space": ACTION_SPACE,
                         "state": {"robot": {"gripper": float(state[0, 3]) if state.shape[1] > 3 else 0.0}},
                         "source": f"lerobot:{source.resolve()} episode {meta['episode_index']}"}
            else:
                scene["image_size"] = list(image_size)
            if "observation.ee_target" in features:
                ee_target = _column(table, "observation.ee_target", rows).astype(np.float64)
            else:
                ee_target = state[:, :3]
            ee_pose = (_column(table, "observation.ee_pose", rows).astype(np.float32)
                       if "observation.ee_pose" in features else np.c_[state[:, :3], np.zeros((n, 3)), np.ones(n)])
            width = (_column(table, "observation.gripper_width", rows).astype(np.float32).reshape(n)
                     if "observation.gripper_width" in features else np.zeros(n, np.float32))
            write_episode(episode_path(tmp, k), {
                "rgb": rgb, "depth": depth, "actions": actions, "ee_pose": ee_pose, "ee_target": ee_target,
                "gripper_width": width, "instruction": instruction, "task": task, "split": scene.get("split", "train"),
                "seed": int(scene.get("seed", k)), "scene": json.dumps(scene), "attempt": 0})
            actions_all.append(actions)
            targets_all.append(ee_target)
            per_task[task] = per_task.get(task, 0) + 1
            on_episode(k + 1, len(plan["episodes"]))
        stats = dataset_stats(actions_all, targets_all, ACTION_SPACE["names"])
        task_info = {}
        for task in per_task:
            from vid2act.sim.tasks import TASKS
            task_info[task] = TASKS[task].to_json() if task in TASKS else {"name": task, "description": "imported"}
        count = len(plan["episodes"])
        document = {"format": DATASET_FORMAT, "vid2act_version": __version__,
                    "config": {"tasks": list(per_task), "episodes": count, "split": "train", "seed": 0,
                               "image_size": list(image_size), "previews": False,
                               "imported_from": f"lerobot:{source.resolve()}"},
                    "complete": True, "image_size": list(image_size), "fps": fps,
                    "frame_interval": FRAME_INTERVAL, "timestep": TIMESTEP, "action_space": ACTION_SPACE,
                    "tasks": task_info,
                    "splits": {"names": list(SPLITS), "seeds": {k: list(v) for k, v in SEED_RANGES.items()}},
                    "counts": {"episodes": count, "frames": stats["frames"], "per_task": per_task,
                               "oracle_failures_skipped": 0}}
        if not math.isclose(fps, 1.0 / (TIMESTEP * FRAME_INTERVAL)):
            document["note"] = f"recorded at {fps} fps; vid2act's world runs at {1.0 / (TIMESTEP * FRAME_INTERVAL):g}"
        write_meta(tmp, document, stats)
    return document
