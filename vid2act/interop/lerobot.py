"""LeRobot datasets (LeRobotDataset format v3.0), both ways, with pyarrow and PyAV (lerobot itself is not a
dependency: it needs another Python and torch).

Export (`vid2act export lerobot DATA OUT`) writes what LeRobot's reader expects:

    meta/info.json                       codebase_version "v3.0", fps, features (dtype, shape, names, video info)
    meta/tasks.parquet                   one row per instruction (the index) with its task_index
    meta/episodes/chunk-000/file-000.parquet   per episode: tasks, length, data and video file, frame range
    meta/stats.json                      per feature min, max, mean, std, count
    data/chunk-000/file-000.parquet      one row per frame
    videos/observation.images.front/chunk-000/file-000.mp4   every episode's frames, one after another

Features: `observation.images.front` (the camera, a video), `observation.depth` (float32 metres [H, W],
lossless in the parquet file, not a video: the IDM reads depth to the millimetre), `observation.state`
(grasp point x, y, z in metres and the gripper command in force, as the Gymnasium environments'
`agent_pos`), `action` (dx, dy, dz, gripper), and, so that an export comes back as the same vid2act dataset,
`observation.ee_target` (the commanded grasp point), `observation.ee_pose` and `observation.gripper_width`,
plus per episode its vid2act scene (`vid2act/scene`) and family (`vid2act/task`). A vid2act episode of T
frames has T - 1 actions; LeRobot wants one per frame, so the last frame gets a still action that keeps the
gripper as it is (import drops it again).

Import (`vid2act import lerobot IN DATA`) reads a v3.0 dataset whose action is (dx, dy, dz, gripper) into a
vid2act dataset, resampling images to `image_size`. A dataset from elsewhere has no vid2act scene: its
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


# --- export --------------------------------------------------------------------------------------------
def check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise UsageError(f"unknown --video-codec {codec!r}; choose {' or '.join(CODECS)}")


def encode_video(path: Path, frames: np.ndarray, fps: float, codec: str) -> None:
    """uint8 frames [N, H, W, 3] -> an mp4 of `codec`, a keyframe every 2 frames (as LeRobot encodes, for fast
    random access); frame n has the timestamp n / fps."""
    import os

    import av
    name, pix_fmt, options = CODECS[codec]
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(name, rate=int(round(fps)), options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode_video(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of a video as uint8 [N, H, W, 3] and its time in seconds [N]."""
    import av
    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.pts * frame.time_base) if frame.pts is not None else len(times))
    except (av.error.FFmpegError, OSError) as e:
        raise Vid2ActError(f"{path} is not a readable video ({e.__class__.__name__})") from None
    if not frames:
        raise Vid2ActError(f"{path} holds no video frames")
    return np.stack(frames), np.asarray(times)


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
    from vid2act.files import check_apart, check_can_write, output_dir, write_json
    check_codec(codec)
    dataset = Dataset(data)
    check_apart({"OUT": out}, {"DATA": data})
    check_can_write(out, force)
    fps = float(dataset.info["fps"])
    height, width = dataset.info["image_size"]
    columns = {k: [] for k in ("observation.state", "observation.depth", "action", "observation.ee_target",
                               "observation.ee_pose", "observation.gripper_width", "timestamp", "frame_index",
                               "episode_index", "index", "task_index")}
    episodes, tasks, frames = [], {}, []
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
        columns["observation.depth"] += list(np.asarray(episode["depth"], np.float32))
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
                         "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                         "vid2act/task": str(episode["task"]), "vid2act/scene": episode["scene"]})
        total += n
        on_episode(e + 1, len(dataset))
    rgb = np.concatenate(frames)
    features = {
        VIDEO_KEY: {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
                    "info": _video_info(height, width, fps, codec)},
        "observation.depth": {"dtype": "float32", "shape": [height, width], "names": ["height", "width"]},
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
        if feature["shape"] == [1]:  # LeRobot reads a shape (1,) feature as a plain value
            arrays[key] = pa.array(np.asarray(values).reshape(-1), type=dtype)
        elif len(feature["shape"]) == 1:
            flat = pa.array(np.asarray(values).reshape(-1), type=dtype)
            arrays[key] = pa.FixedSizeListArray.from_arrays(flat, feature["shape"][0])
        else:  # [H, W]: a list of H rows of W values
            h, w = feature["shape"]
            flat = pa.array(np.asarray(values).reshape(-1), type=dtype)
            rows = pa.FixedSizeListArray.from_arrays(flat, w)
            arrays[key] = pa.FixedSizeListArray.from_arrays(rows, h)
    stats = {VIDEO_KEY: {k: np.asarray(v).reshape(3, 1, 1).tolist() if k != "count" else v
                         for k, v in _stats(rgb.reshape(-1, 3) / 255.0, 0).items()},
             "observation.depth": {k: (np.asarray(v).reshape(1, 1).tolist() if k != "count" else v)
                                   for k, v in _stats(np.stack(columns["observation.depth"]).reshape(-1, 1), 0).items()},
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
        (tmp / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(episodes), tmp / EPISODES_PATH)
        pd.DataFrame({"task_index": list(tasks.values())}, index=pd.Index(list(tasks), name="task")).to_parquet(
            tmp / "meta" / "tasks.parquet")
        write_json(tmp / "meta" / "stats.json", stats)
        write_json(tmp / "meta" / "info.json", info)
    return info


# --- import --------------------------------------------------------------------------------------------
def read_info(root: Path) -> dict:
    from vid2act.files import load_json
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


def import_lerobot(source: Path, out: Path, image_size=(48, 64), force: bool = False,
                   on_episode=lambda done, total: None) -> dict:
    """A LeRobot v3.0 dataset -> a vid2act dataset folder `out` (written atomically). Returns its info."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from vid2act import __version__
    from vid2act.data.dataset import DATASET_FORMAT, dataset_stats, episode_path, write_episode, write_meta
    from vid2act.files import check_apart, check_can_write, output_dir, resize_frames
    from vid2act.sim.env import SCENE_FORMAT
    from vid2act.sim.tasks import SEED_RANGES, SPLITS
    from vid2act.sim.world import Camera
    from vid2act.spec import ACTION_SPACE, FRAME_INTERVAL, TIMESTEP, image_size_problem
    source, out = Path(source), Path(out)
    problem = image_size_problem(*image_size)
    if problem:
        raise UsageError(f"--image-size {image_size[0]}x{image_size[1]}: {problem}")
    info = read_info(source)
    check_apart({"DATA": out}, {"IN": source})
    check_can_write(out, force)
    features = info.get("features", {})
    action = features.get("action", {})
    if list(action.get("shape", [])) != [4]:
        raise Vid2ActError(f"{source}: its action is {action.get('shape')} ({action.get('names')}); vid2act reads "
                           f"actions of 4 numbers, {', '.join(ACTION_SPACE['names'])} (metres and 0 open ... 1 closed)")
    videos = [k for k, f in features.items() if f.get("dtype") == "video"]
    images = VIDEO_KEY if VIDEO_KEY in videos else (videos[0] if videos else None)
    if images is None:
        raise Vid2ActError(f"{source} has no video feature (vid2act reads camera frames from its videos)")
    fps = float(info.get("fps", 0))
    if not fps > 0:
        raise Vid2ActError(f"{source / 'meta' / 'info.json'} gives no fps")
    episodes_files = sorted((source / "meta" / "episodes").glob("*/*.parquet"))
    if not episodes_files:
        raise Vid2ActError(f"{source} has no episode metadata (meta/episodes/chunk-*/file-*.parquet)")
    import pyarrow as pa
    try:
        episodes = pa.concat_tables([pq.read_table(p) for p in episodes_files]).to_pylist()
    except (pa.ArrowInvalid, OSError) as e:
        raise Vid2ActError(f"{source}: the episode metadata is unreadable ({e.__class__.__name__})") from None
    if not episodes:
        raise Vid2ActError(f"{source} holds no episodes")
    data_template = info.get("data_path", DATA_PATH)
    video_template = info.get("video_path", VIDEO_PATH)
    has_depth = "observation.depth" in features
    has_state = "observation.state" in features
    tables, decoded = {}, {}
    actions_all, targets_all, per_task = [], [], {}
    with output_dir(out, force) as tmp:
        for k, meta in enumerate(sorted(episodes, key=lambda m: m["episode_index"])):
            data_file = source / data_template.format(chunk_index=meta.get("data/chunk_index", 0),
                                                      file_index=meta.get("data/file_index", 0))
            if data_file not in tables:
                try:
                    tables[data_file] = pq.read_table(data_file)
                except (pa.ArrowInvalid, OSError) as e:
                    raise Vid2ActError(f"{data_file} is missing or unreadable ({e.__class__.__name__})") from None
            table = tables[data_file]
            rows = np.flatnonzero(pc.equal(table.column("episode_index"), meta["episode_index"]).to_numpy(
                zero_copy_only=False))
            rows = rows[np.argsort(table.column("frame_index").take(rows).to_numpy())]
            n = len(rows)
            if n < 2:
                raise Vid2ActError(f"{source}: episode {meta['episode_index']} has {n} frame(s); vid2act needs 2 or more")
            video_file = source / video_template.format(video_key=images,
                                                        chunk_index=meta.get(f"videos/{images}/chunk_index", 0),
                                                        file_index=meta.get(f"videos/{images}/file_index", 0))
            if video_file not in decoded:
                if not video_file.exists():
                    raise Vid2ActError(f"{video_file} is missing")
                decoded[video_file] = decode_video(video_file)
            frames, times = decoded[video_file]
            wanted = float(meta.get(f"videos/{images}/from_timestamp", 0.0)) + np.arange(n) / fps
            nearest = np.abs(times[None, :] - wanted[:, None]).argmin(1)
            if np.abs(times[nearest] - wanted).max() > 0.5 / fps:
                raise Vid2ActError(f"{video_file} lacks frames of episode {meta['episode_index']} (its timestamps "
                                   f"from {wanted[0]:.3f} s)")
            depth = _column(table, "observation.depth", rows).astype(np.float32) if has_depth else None
            rgb, depth = frames[nearest], depth
            if rgb.shape[1:3] != tuple(image_size) or (depth is not None and depth.shape[1:] != tuple(image_size)):
                rgb, depth = resize_frames(rgb, depth, tuple(image_size))
            if depth is None:  # an RGB dataset: vid2act's RGB models read no depth; keep the format whole
                depth = np.zeros((n, *image_size), np.float32)
            actions = _column(table, "action", rows).astype(np.float32)[:-1]
            state = _column(table, "observation.state", rows).astype(np.float64) if has_state else np.zeros((n, 4))
            scene = json.loads(meta["vid2act/scene"]) if meta.get("vid2act/scene") else None
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
            on_episode(k + 1, len(episodes))
        stats = dataset_stats(actions_all, targets_all, ACTION_SPACE["names"])
        task_info = {}
        for task in per_task:
            from vid2act.sim.tasks import TASKS
            task_info[task] = TASKS[task].to_json() if task in TASKS else {"name": task, "description": "imported"}
        document = {"format": DATASET_FORMAT, "vid2act_version": __version__,
                    "config": {"tasks": list(per_task), "episodes": len(episodes), "split": "train", "seed": 0,
                               "image_size": list(image_size), "previews": False,
                               "imported_from": f"lerobot:{source.resolve()}"},
                    "complete": True, "image_size": list(image_size), "fps": fps,
                    "frame_interval": FRAME_INTERVAL, "timestep": TIMESTEP, "action_space": ACTION_SPACE,
                    "tasks": task_info,
                    "splits": {"names": list(SPLITS), "seeds": {k: list(v) for k, v in SEED_RANGES.items()}},
                    "counts": {"episodes": len(episodes), "frames": stats["frames"], "per_task": per_task,
                               "oracle_failures_skipped": 0}}
        if not math.isclose(fps, 1.0 / (TIMESTEP * FRAME_INTERVAL)):
            document["note"] = f"recorded at {fps} fps; vid2act's world runs at {1.0 / (TIMESTEP * FRAME_INTERVAL):g}"
        write_meta(tmp, document, stats)
    return document
