"""LeRobot datasets (v3.0) both ways: the files LeRobot's reader opens, the round trip, a dataset written to
the spec by this test (not by the exporter) imported and trained on, and refusals."""
import json

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import vid2act
from vid2act.data.dataset import Dataset


@pytest.fixture(scope="module")
def exported(demos, tmp_path_factory):
    out = tmp_path_factory.mktemp("lerobot") / "export"
    run = vid2act("export", "lerobot", demos, out)
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == str(out)
    return out


def test_export_writes_the_v3_layout_lerobot_reads(demos, exported):
    info = json.loads((exported / "meta" / "info.json").read_text())
    source = Dataset(demos)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and info["total_episodes"] == len(source)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    features = info["features"]
    assert features["observation.images.front"]["dtype"] == "video"
    assert features["observation.images.front"]["shape"] == [48, 64, 3]
    assert features["observation.images.front"]["info"]["video.codec"] == "h264"
    assert features["action"]["names"] == ["dx", "dy", "dz", "gripper"]
    depth = features["observation.depth"]
    assert (depth["dtype"], depth["shape"]) == ("video", [48, 64, 1])  # LeRobot 0.6's depth maps
    assert depth["info"]["is_depth_map"] and depth["info"]["video.is_depth_map"] and depth["info"]["depth_unit"] == "m"
    assert (depth["info"]["video.codec"], depth["info"]["video.pix_fmt"]) == ("ffv1", "gray12le")
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert features[key]["shape"] == [1]
    data = pq.read_table(exported / "data" / "chunk-000" / "file-000.parquet")
    assert data.num_rows == info["total_frames"]
    assert set(data.column_names) == {k for k, f in features.items() if f["dtype"] != "video"}
    assert data.column("index").to_pylist() == list(range(info["total_frames"]))
    episodes = pq.read_table(exported / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    tasks = pd.read_parquet(exported / "meta" / "tasks.parquet")
    assert len(tasks) == info["total_tasks"] and list(tasks["task_index"]) == list(range(len(tasks)))
    frames = 0
    for e, episode in enumerate(episodes):
        length = len(source.episode(e, ("rgb",))["rgb"])
        assert (episode["episode_index"], episode["length"]) == (e, length)
        assert (episode["dataset_from_index"], episode["dataset_to_index"]) == (frames, frames + length)
        assert episode["videos/observation.images.front/from_timestamp"] == pytest.approx(frames / 20)
        assert episode["tasks"] == [source.episode(e, ("instruction",))["instruction"]]
        assert tasks.loc[episode["tasks"][0], "task_index"] == data.column("task_index")[frames].as_py()
        frames += length
    with av.open(str(exported / "videos" / "observation.images.front" / "chunk-000" / "file-000.mp4")) as video:
        assert video.streams.video[0].frames in (0, frames) and video.streams.video[0].average_rate == 20
    stats = json.loads((exported / "meta" / "stats.json").read_text())
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert len(stats["action"]["mean"]) == 4 and stats["action"]["count"] == [frames]


@pytest.mark.parametrize("codec, tolerance", [("h264", 1.5), ("av1", 4.0)])
def test_export_import_round_trip(demos, exported, tmp_path, codec, tolerance):
    lerobot = exported if codec == "h264" else tmp_path / "av1"
    if codec != "h264":
        assert vid2act("export", "lerobot", demos, lerobot, "--video-codec", codec).code == 0
    run = vid2act("import", "lerobot", lerobot, tmp_path / "back")
    assert run.code == 0, run.stderr
    before, after = Dataset(demos), Dataset(tmp_path / "back")
    assert len(before) == len(after) and after.info["image_size"] == [48, 64]
    errors = []
    for e in range(len(before)):
        a, b = before.episode(e), after.episode(e)
        for key in ("actions", "ee_target", "ee_pose", "gripper_width"):
            assert np.array_equal(a[key], b[key]), (e, key)
        # 12-bit log codes lose at most 0.8 mm over this scene's 0.5-3 m; float16 storage rounds once more
        assert np.abs(a["depth"].astype(np.float64) - b["depth"]).max() < 1.5e-3, e
        assert (a["instruction"], a["task"], a["seed"], a["scene"]) == (b["instruction"], b["task"], b["seed"], b["scene"])
        errors.append(np.abs(a["rgb"].astype(int) - b["rgb"]).mean())
    assert np.mean(errors) < tolerance, errors


def _spec_dataset(root, episodes=2, size=(96, 128), fps=20):
    """A LeRobot v3.0 dataset written from the spec alone: two episodes, a 96x128 camera, 4-d actions and
    states, no depth and none of vid2act's own columns."""
    rng = np.random.default_rng(0)
    lengths = [7, 9]
    (root / "data" / "chunk-000").mkdir(parents=True)
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    video = root / "videos" / "observation.images.top" / "chunk-000" / "file-000.mp4"
    video.parent.mkdir(parents=True)
    frames = rng.integers(0, 255, (sum(lengths), *size, 3), dtype=np.uint8)
    frames[:] = frames[:, :1, :1]  # flat colours: the codec keeps them, so the test can check the resampling
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    rows, metas, start = [], [], 0
    for e, n in enumerate(lengths):
        for t in range(n):
            rows.append({"observation.state": [0.5, 0.0, 0.2 - 0.01 * t, 0.0],
                         "action": [*rng.uniform(-0.02, 0.02, 2), -0.01, float(t > 4)],
                         "timestamp": t / fps, "frame_index": t, "episode_index": e, "index": start + t,
                         "task_index": e})
        metas.append({"episode_index": e, "tasks": [["pick up the red block", "reach the blue pad"][e]], "length": n,
                      "data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": start,
                      "dataset_to_index": start + n, "videos/observation.images.top/chunk_index": 0,
                      "videos/observation.images.top/file_index": 0,
                      "videos/observation.images.top/from_timestamp": start / fps,
                      "videos/observation.images.top/to_timestamp": (start + n) / fps,
                      "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        start += n
    table = pa.Table.from_pylist(rows)
    table = table.set_column(0, "observation.state", pa.array([r["observation.state"] for r in rows], pa.list_(pa.float32(), 4)))
    table = table.set_column(1, "action", pa.array([r["action"] for r in rows], pa.list_(pa.float32(), 4)))
    pq.write_table(table, root / "data" / "chunk-000" / "file-000.parquet")
    pq.write_table(pa.Table.from_pylist(metas), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    pd.DataFrame({"task_index": [0, 1]}, index=["pick up the red block", "reach the blue pad"]).to_parquet(
        root / "meta" / "tasks.parquet")
    info = {"codebase_version": "v3.0", "robot_type": "test", "total_episodes": episodes, "total_frames": start,
            "total_tasks": 2, "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500,
            "fps": fps, "splits": {"train": "0:2"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": {
                "observation.images.top": {"dtype": "video", "shape": [*size, 3], "names": ["height", "width", "channels"]},
                "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
                "action": {"dtype": "float32", "shape": [4], "names": ["dx", "dy", "dz", "gripper"]},
                **{k: {"dtype": d, "shape": [1], "names": None} for k, d in
                   (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                    ("index", "int64"), ("task_index", "int64"))}}}
    (root / "meta" / "info.json").write_text(json.dumps(info))
    return frames, lengths


def test_import_of_a_dataset_written_to_the_spec_trains_an_idm(tmp_path):
    frames, lengths = _spec_dataset(tmp_path / "spec")
    run = vid2act("import", "lerobot", tmp_path / "spec", tmp_path / "data")
    assert run.code == 0, run.stderr
    data = Dataset(tmp_path / "data")
    assert len(data) == 2 and data.info["image_size"] == [48, 64]
    first = data.episode(0)
    assert first["rgb"].shape == (lengths[0], 48, 64, 3) and first["actions"].shape == (lengths[0] - 1, 4)
    assert first["instruction"] == "pick up the red block" and first["task"] == "imported"
    assert np.abs(first["rgb"][3].astype(int) - frames[3, 0, 0]).max() <= 4  # the right frame, resampled
    assert np.allclose(first["ee_target"][:, 2], 0.2 - 0.01 * np.arange(lengths[0]))
    run = vid2act("train", "idm", "--data", tmp_path / "data", "--out", tmp_path / "idm", "--steps", 3,
                  "--modalities", "rgb", "--width", "8", "--batch-size", "4", "--eval-every", "3")
    assert run.code == 0, run.stderr


@pytest.mark.parametrize("damage, fragment", [
    (lambda info: {**info, "codebase_version": "v2.1"},
     "is a LeRobot v2.1 dataset; vid2act reads v3.0: convert it first with LeRobot's "
     "`python -m lerobot.datasets.v30.convert_dataset_v21_to_v30"),
    (lambda info: {**info, "features": {**info["features"], "action": {"dtype": "float32", "shape": [2],
                                                                        "names": ["x", "y"]}}},
     "vid2act reads actions of 4 numbers, dx, dy, dz, gripper"),
    (lambda info: {k: v for k, v in info.items() if k != "codebase_version"}, "is not a LeRobot dataset"),
])
def test_bad_lerobot_datasets_are_refused(tmp_path, damage, fragment):
    _spec_dataset(tmp_path / "spec")
    path = tmp_path / "spec" / "meta" / "info.json"
    path.write_text(json.dumps(damage(json.loads(path.read_text()))))
    run = vid2act("import", "lerobot", tmp_path / "spec", tmp_path / "data")
    assert run.code == 1 and fragment in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "data").exists()


def test_bad_export_options(demos, tmp_path):
    run = vid2act("export", "lerobot", demos, tmp_path / "x", "--video-codec", "vp9")
    assert run.code == 2 and "unknown --video-codec 'vp9'; choose h264 or av1" in run.stderr
    run = vid2act("export", "lerobot", tmp_path / "none", tmp_path / "x")
    assert run.code == 1 and "is not a vid2act dataset" in run.stderr
    assert not (tmp_path / "x").exists()


def test_depth_codes_are_lerobots_twelve_bit_log_quantization():
    from vid2act.interop.lerobot import DEPTH_PARAMETERS, dequantize_depth, quantize_depth
    depth = np.linspace(0.5, 3.0, 10_001)
    codes = quantize_depth(depth)
    assert codes.dtype == np.uint16 and codes.min() >= 0 and codes.max() <= 4095
    assert quantize_depth(np.array([0.01, 10.0])).tolist() == [0, 4095]  # the range's ends
    error = np.abs(dequantize_depth(codes, DEPTH_PARAMETERS) - depth)
    assert error.max() < 1.1e-3  # half a code at the far plane, 3 m: (3 + 3.5) * ln(13.5 / 3.51) / 4095 / 2
    assert np.all(np.diff(codes.astype(int)) >= 0)


def test_an_older_export_with_float_depth_still_imports(demos, exported, tmp_path):
    """vid2act wrote depth as float32 [H, W] columns before it wrote LeRobot's depth-map videos."""
    import shutil
    old = tmp_path / "old"
    shutil.copytree(exported, old)
    info = json.loads((old / "meta" / "info.json").read_text())
    info["features"]["observation.depth"] = {"dtype": "float32", "shape": [48, 64], "names": ["height", "width"]}
    (old / "meta" / "info.json").write_text(json.dumps(info))
    shutil.rmtree(old / "videos" / "observation.depth")
    path = old / "data" / "chunk-000" / "file-000.parquet"
    source = Dataset(demos)
    depth = np.concatenate([source.episode(e, ("depth",))["depth"] for e in range(len(source))]).astype(np.float32)
    rows = pa.FixedSizeListArray.from_arrays(pa.array(depth.reshape(-1)), 64)
    table = pq.read_table(path).append_column("observation.depth", pa.FixedSizeListArray.from_arrays(rows, 48))
    pq.write_table(table, path)
    run = vid2act("import", "lerobot", old, tmp_path / "back")
    assert run.code == 0, run.stderr
    back = Dataset(tmp_path / "back")
    assert all(np.array_equal(source.episode(e, ("depth",))["depth"], back.episode(e, ("depth",))["depth"])
               for e in range(len(source)))


def test_lerobot_doctor_runs_every_check_on_an_export_and_fails_none(exported):
    """An independent validator of LeRobot datasets (lerobot-doctor, from PyPI). What it still warns about is
    what the demonstrations are: a closed gripper most of the time, still actions while the gripper closes,
    and reach episodes shorter than a second."""
    import subprocess
    import sys
    completed = subprocess.run([sys.executable, "-m", "lerobot_doctor.cli", "check", str(exported), "--json"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert len(checks) >= 10 and report["overall_severity"] in ("PASS", "WARN")
    assert all(c["severity"] in ("PASS", "WARN") for c in checks.values()), checks
    for name in ("Metadata & Format Compliance", "Temporal Consistency", "Video Integrity", "Anomaly Detection",
                 "Feature Consistency", "Data Distribution", "Portability"):
        assert checks[name]["severity"] == "PASS", checks[name]
    known = ("at maximum", "consecutive identical", "shorter than", "too short", "episode(s) flagged",
             "more episodes with frozen")
    warnings = [m["message"] for c in checks.values() for m in c["messages"] if m["severity"] == "WARN"]
    assert all(any(k in w for k in known) for w in warnings), warnings
