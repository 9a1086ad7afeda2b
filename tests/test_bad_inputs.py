"""Bad input, faults and interruptions, command by command: a table of cases, each checking the promise.

Every case runs the real command line in this process (conftest's `vid2act`, typer's CliRunner, so the table
stays fast) in a workspace of its own, and asserts: the exit code (2 bad usage, 1 a runtime error), one line on
stderr that names the problem and is not the internal-bug line, nothing on stdout, and the workspace exactly as
it was (no partial output, no temporary file, no empty run folder). Interruptions and concurrent writers run as
real processes below the table."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from conftest import vid2act
from vid2act.cli.common import BUG_MARKER

LONG = "n" * 300
TINY_VIDEO = ["--steps", "2", "--grounding-steps", "2", "--sketch-steps", "2", "--widths", "16,16", "--batch-size", "2"]


@dataclass
class Case:
    id: str
    args: Callable[[dict], list]  # the workspace's named paths -> the command line
    code: int
    says: str  # a fragment the one error line must hold
    prepare: Callable[[Path], None] = lambda ws: None  # plant bad files in the workspace first


def write(relative: str, content):
    def prepare(ws: Path):
        path = ws / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return prepare


def copy_scene(name: str, edit: Callable[[dict], None] | None = None, raw: str | None = None):
    """A copy of the shared scene at ws/name, its scene.json edited, or replaced by `raw` text."""
    def prepare(ws: Path):
        shutil.copytree(ws.parent / "shared-scene", ws / name)
        if raw is not None:
            (ws / name / "scene.json").write_text(raw)
        elif edit is not None:
            document = json.loads((ws / name / "scene.json").read_text())
            edit(document)
            (ws / name / "scene.json").write_text(json.dumps(document))
    return prepare


def actions_file(edit: Callable[[dict], None] | None = None, raw: str | None = None):
    def prepare(ws: Path):
        if raw is not None:
            (ws / "a.json").write_text(raw)
            return
        document = json.loads((ws.parent / "shared-actions.json").read_text())
        edit(document)
        (ws / "a.json").write_text(json.dumps(document))
    return prepare


def frames_file(rgb=None, depth=None, raw: bytes | None = None, name: str = "f.npz"):
    def prepare(ws: Path):
        if raw is not None:
            (ws / name).write_bytes(raw)
            return
        arrays = {"rgb": np.zeros((4, 48, 64, 3), np.uint8) if rgb is None else rgb}
        if depth is not None:
            arrays["depth"] = depth
        np.savez(ws / name, **arrays)
    return prepare


def planted_pickle(ws: Path):
    """The shipped IDM's folder with its safetensors weights swapped for a pickle."""
    from vid2act.shipped import resolve
    shutil.copytree(resolve("default", "idm"), ws / "PLANTED")
    for weights in (ws / "PLANTED").glob("*.safetensors"):
        weights.unlink()
    (ws / "PLANTED" / "model.pt").write_bytes(b"\x80\x04pickle")


def bad_depth(value):
    depth = np.ones((4, 48, 64), np.float32)
    depth[2, 5, 7] = value
    return depth


def dataset_copy(edit: Callable[[Path], None]):
    def prepare(ws: Path):
        shutil.copytree(ws.parent / "shared-data", ws / "d")
        edit(ws / "d")
    return prepare


def edit_info(change: dict):
    def edit(root: Path):
        info = json.loads((root / "meta" / "info.json").read_text())
        info.update(change)
        (root / "meta" / "info.json").write_text(json.dumps(info))
    return edit


def both(*prepares):
    def prepare(ws: Path):
        for p in prepares:
            p(ws)
    return prepare


def forged_npy(real_shape=(4, 48, 64), claimed=(10_000_000, 48, 64), dtype=np.float32) -> bytes:
    """A small .npy whose header claims `claimed` (its padding shortened so the header keeps its length)."""
    import io
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(real_shape, dtype))
    data = buffer.getvalue()
    real, fake = str(real_shape).encode(), str(claimed).encode()
    grown = len(fake) - len(real)
    header_end = data.index(b"\n") + 1
    header = data[:header_end].replace(real, fake).replace(b" " * grown + b"\n", b"\n")
    assert len(header) == header_end
    return header + data[header_end:]


def forged_npz(name="rgb", **kw) -> bytes:
    import io
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.npy", forged_npy(**kw))
    return buffer.getvalue()


def scene_copy(name: str, edit: Callable[[dict], None]):
    return copy_scene(name, edit)


def nested(document: dict, path: str, value=None, delete: bool = False):
    """Set (or delete) document[a][b][c] for path "a.b.c" (numbers index lists)."""
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        document = document[key]
    if delete:
        del document[keys[-1]]
    else:
        document[keys[-1]] = value


def scene_edit(path: str, value=None, delete: bool = False):
    return copy_scene("s", lambda d: nested(d, path, value, delete))


def oracle_on(name="s"):
    return lambda p: ["oracle", p["ws"] / name, "--out", p["ws"] / "a.json"]


def lerobot_copy(edit: Callable[[Path], None]):
    def prepare(ws: Path):
        shutil.copytree(ws.parent / "shared-lerobot", ws / "le")
        edit(ws / "le")
    return prepare


def lerobot_info(change: Callable[[dict], None]):
    def edit(root: Path):
        info = json.loads((root / "meta" / "info.json").read_text())
        change(info)
        (root / "meta" / "info.json").write_text(json.dumps(info))
    return edit


def lerobot_table(relative: str, change):
    """Rewrite one parquet file of the LeRobot copy: `change(table) -> table`."""
    def edit(root: Path):
        import pyarrow.parquet as pq
        path = root / relative
        pq.write_table(change(pq.read_table(path)), path)
    return edit


LEROBOT_DATA = "data/chunk-000/file-000.parquet"
LEROBOT_EPISODES = "meta/episodes/chunk-000/file-000.parquet"


def set_action(row: int, values):
    def change(table):
        import pyarrow as pa
        actions = table.column("action").to_pylist()
        actions[row] = values
        kind = pa.list_(pa.float32(), len(values)) if len(values) == 4 else pa.list_(pa.float32())
        if len(values) != 4:
            actions = [a if i == row else list(a) for i, a in enumerate(actions)]
        return table.set_column(table.column_names.index("action"), "action", pa.array(actions, kind))
    return change


def widen_actions(table):
    import pyarrow as pa
    actions = [list(a) + [0.0, 0.0, 0.0] for a in table.column("action").to_pylist()]
    return table.set_column(table.column_names.index("action"), "action", pa.array(actions, pa.list_(pa.float32(), 7)))


def episodes_column(name: str, values=None):
    def change(table):
        import pyarrow as pa
        if values is None:
            return table.drop_columns([name])
        return table.set_column(table.column_names.index(name), name, pa.array(values(table.num_rows)))
    return change


def import_args():
    return lambda p: ["import", "lerobot", p["ws"] / "le", p["ws"] / "imported"]


def shipped_idm_copy(name: str):
    def prepare(ws: Path):
        from vid2act.shipped import resolve
        shutil.copytree(resolve("default", "idm"), ws / name)
    return prepare


def run_copy(name: str):
    return lambda ws: shutil.copytree(ws.parent / "shared-idm-run", ws / name)


def dangling(name: str):
    return lambda ws: os.symlink(ws / "nowhere", ws / name)


def scene_args(*extra):
    return lambda p: ["scene", "--task", "push", "--seed", "1000001", "--out", p["ws"] / "out", *extra]


def generate_args(*extra):
    return lambda p: ["generate", "--scene", p["scene"], "--out", p["ws"] / "plan", *extra]


def translate_args(source, *extra):
    return lambda p: ["translate", p["ws"] / source if isinstance(source, str) else source(p), "--out",
                      p["ws"] / "a-out.json", *extra]


def train_args(kind, *extra, data=None):
    return lambda p: ["train", kind, "--data", data(p) if data else p["data"], "--out", p["ws"] / "run",
                      "--steps", "2", *extra]


def eval_args(*extra):
    return lambda p: ["eval", "--out", p["ws"] / "ev", "--episodes", "1", *extra]


CASES = [
    # --- scene ---
    Case("scene-unknown-task", lambda p: ["scene", "--task", "fly", "--seed", "1", "--out", p["ws"] / "o"], 2,
         "unknown task"),
    Case("scene-seed-outside-split", scene_args("--split", "train"), 2, "seed"),
    Case("scene-seed-not-a-number", lambda p: ["scene", "--task", "push", "--seed", "x", "--out", p["ws"] / "o"], 2,
         "'--seed'"),
    Case("scene-huge-image", scene_args("--image-size", "160000x160000"), 2, "at most 1024"),
    Case("scene-negative-image", scene_args("--image-size", "-48x64"), 2, "must be positive"),
    Case("scene-odd-image", scene_args("--image-size", "50x64"), 2, "multiples of 16"),
    Case("scene-garbage-image", scene_args("--image-size", "big"), 2, "is not HxW"),
    Case("scene-unknown-split", scene_args("--split", "val"), 2, "split"),
    Case("scene-unknown-option", scene_args("--colour", "red"), 2, "No such option: --colour"),
    Case("scene-missing-option", lambda p: ["scene", "--seed", "1", "--out", p["ws"] / "o"], 2, "Missing option"),
    Case("scene-out-exists", scene_args(), 2, "already exists", write("out/keep.txt", "mine")),
    Case("scene-out-dangling-symlink", scene_args(), 2, "already exists",
         lambda ws: os.symlink(ws / "nowhere", ws / "out")),
    Case("scene-out-under-a-file", lambda p: ["scene", "--task", "push", "--seed", "1000001", "--out",
                                              p["ws"] / "f" / "out"], 2, "is a file, not a folder", write("f", "x")),
    Case("scene-out-name-too-long", lambda p: ["scene", "--task", "push", "--seed", "1000001", "--out",
                                               p["ws"] / LONG], 2, "longer than this file system allows"),
    # --- oracle ---
    Case("oracle-no-scene", lambda p: ["oracle", p["ws"] / "nope", "--out", p["ws"] / "a.json"], 1, "does not exist"),
    Case("oracle-scene-not-json", lambda p: ["oracle", p["ws"] / "s", "--out", p["ws"] / "a.json"], 1,
         "not valid JSON", copy_scene("s", raw="{not json")),
    Case("oracle-scene-truncated", lambda p: ["oracle", p["ws"] / "s", "--out", p["ws"] / "a.json"], 1,
         "not valid JSON", copy_scene("s", raw='{"format": "vid2act.scene/1", "task": "pu')),
    Case("oracle-scene-empty", lambda p: ["oracle", p["ws"] / "s", "--out", p["ws"] / "a.json"], 1,
         "not valid JSON", copy_scene("s", raw="")),
    Case("oracle-scene-wrong-version", lambda p: ["oracle", p["ws"] / "s", "--out", p["ws"] / "a.json"], 1,
         "vid2act.scene/9", copy_scene("s", lambda d: d.update(format="vid2act.scene/9"))),
    Case("oracle-scene-nan-state", lambda p: ["oracle", p["ws"] / "s", "--out", p["ws"] / "a.json"], 1,
         "finite numbers", copy_scene("s", lambda d: d["state"]["robot"]["ee_target"].__setitem__(0, float("nan")))),
    Case("oracle-scene-wrong-type", lambda p: ["oracle", p["ws"] / "s", "--out", p["ws"] / "a.json"], 1,
         "wrong type", copy_scene("s", lambda d: d.update(seed="one"))),
    Case("oracle-scene-huge-image", lambda p: ["oracle", p["ws"] / "s", "--out", p["ws"] / "a.json"], 1,
         "at most 1024", copy_scene("s", lambda d: d.update(image_size=[160000, 160000]))),
    Case("oracle-scene-negative-image", lambda p: ["oracle", p["ws"] / "s", "--out", p["ws"] / "a.json"], 1,
         "must be positive", copy_scene("s", lambda d: d.update(image_size=[-48, 64]))),
    Case("oracle-out-exists", lambda p: ["oracle", p["scene"], "--out", p["ws"] / "a.json"], 2, "already exists",
         write("a.json", "{}")),
    Case("oracle-out-under-a-file", lambda p: ["oracle", p["scene"], "--out", p["ws"] / "f" / "a.json"], 2,
         "is a file, not a folder", write("f", "x")),
    # --- execute ---
    Case("execute-no-actions", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out", p["ws"] / "r"],
         1, "does not exist"),
    Case("execute-actions-not-json", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out",
                                                p["ws"] / "r"], 1, "not valid JSON", actions_file(raw="[1, 2")),
    Case("execute-actions-wrong-format", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out",
                                                    p["ws"] / "r"], 1, "has format",
         actions_file(lambda d: d.update(format="lerobot"))),
    Case("execute-action-out-of-bounds", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out",
                                                    p["ws"] / "r"], 1, "outside its bounds",
         actions_file(lambda d: d["actions"][3].__setitem__(0, 0.5))),
    Case("execute-action-nan", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out",
                                          p["ws"] / "r"], 1, "must be finite",
         actions_file(raw=json.dumps({"format": "vid2act.actions/1"})[:-1] + ', "actions": [[NaN, 0, 0, 0]], '
                      '"action_space": ' + json.dumps(__import__("vid2act.spec", fromlist=["x"]).ACTION_SPACE)
                      + "}")),
    Case("execute-action-too-short", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out",
                                                p["ws"] / "r"], 1, "has 3 values",
         actions_file(lambda d: d["actions"].__setitem__(0, [0, 0, 0]))),
    Case("execute-action-a-string", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out",
                                               p["ws"] / "r"], 1, "not a number",
         actions_file(lambda d: d["actions"][0].__setitem__(1, "up"))),
    Case("execute-no-actions-in-file", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out",
                                                  p["ws"] / "r"], 1, "holds no actions",
         actions_file(lambda d: d.update(actions=[]))),
    Case("execute-foreign-action-space", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out",
                                                    p["ws"] / "r"], 1, "does not match the simulator",
         actions_file(lambda d: d["action_space"].update(frame_interval=1))),
    Case("execute-negative-max-steps", lambda p: ["execute", p["actions"], "--scene", p["scene"], "--out",
                                                  p["ws"] / "r", "--max-steps", "-1"], 2, "--max-steps"),
    Case("execute-out-is-next-scene", lambda p: ["execute", p["actions"], "--scene", p["scene"], "--out",
                                                 p["ws"] / "X", "--next-scene", p["ws"] / "X"], 2, "same path"),
    Case("execute-next-scene-inside-out", lambda p: ["execute", p["actions"], "--scene", p["scene"], "--out",
                                                     p["ws"] / "X", "--next-scene", p["ws"] / "X" / "n"], 2,
         "one inside the other"),
    Case("execute-out-exists", lambda p: ["execute", p["actions"], "--scene", p["scene"], "--out", p["ws"] / "r"], 2,
         "already exists", write("r/x", "mine")),
    # --- translate ---
    Case("translate-no-source", translate_args("nope.npz"), 1, "does not exist"),
    Case("translate-corrupt-npz", translate_args("f.npz"), 1, "not a readable npz", frames_file(raw=b"PK\x03\x04junk")),
    Case("translate-empty-npz", translate_args("f.npz"), 1, "not a readable npz", frames_file(raw=b"")),
    Case("translate-nan-depth", translate_args("f.npz"), 1, "NaN or infinite values (first at frame 2, row 5",
         frames_file(depth=bad_depth(np.nan))),
    Case("translate-inf-depth", translate_args("f.npz"), 1, "NaN or infinite",
         frames_file(depth=bad_depth(np.inf))),
    Case("translate-float-frames", translate_args("f.npz"), 1, "expected uint8",
         frames_file(rgb=np.zeros((4, 48, 64, 3), np.float32))),
    Case("translate-one-frame", translate_args("f.npz"), 1, "at least 2",
         frames_file(rgb=np.zeros((1, 48, 64, 3), np.uint8))),
    Case("translate-wrong-size", translate_args("f.npz"), 1, "--resize",
         frames_file(rgb=np.zeros((4, 32, 32, 3), np.uint8), depth=np.ones((4, 32, 32), np.float32))),
    Case("translate-unknown-suffix", translate_args("f.txt"), 1, "unknown input", write("f.txt", "frames")),
    Case("translate-stride-zero", translate_args("f.npz", "--stride", "0"), 2, "--stride must lie between",
         frames_file(depth=np.ones((4, 48, 64), np.float32))),
    Case("translate-stride-huge", translate_args("f.npz", "--stride", "99999999"), 2, "--stride must lie between",
         frames_file(depth=np.ones((4, 48, 64), np.float32))),
    Case("translate-no-model", translate_args("f.npz", "--idm", "no/such/idm"), 1, "no model at",
         frames_file(depth=np.ones((4, 48, 64), np.float32))),
    Case("translate-unknown-device", translate_args("f.npz", "--device", "tpu"), 2, "unknown --device",
         frames_file(depth=np.ones((4, 48, 64), np.float32))),
    Case("translate-out-under-a-file", lambda p: ["translate", p["ws"] / "f.npz", "--out", p["ws"] / "a1.json" / "x.json"],
         2, "is a file, not a folder", both(frames_file(depth=np.ones((4, 48, 64), np.float32)), write("a1.json", "{}"))),
    Case("translate-pickled-idm", lambda p: ["translate", p["ws"] / "f.npz", "--idm", p["ws"] / "PLANTED", "--out",
                                             p["ws"] / "a-out.json"], 1, "never pickles",
         both(frames_file(depth=np.ones((4, 48, 64), np.float32)), planted_pickle)),
    # --- generate ---
    Case("generate-guidance-nan", generate_args("--guidance", "nan"), 2, "--guidance must be a number"),
    Case("generate-guidance-inf", generate_args("--guidance", "inf"), 2, "--guidance must be a number"),
    Case("generate-guidance-negative", generate_args("--guidance", "-1"), 2, "--guidance must be a number"),
    Case("generate-steps-zero", generate_args("--steps", "0"), 2, "--steps must lie between"),
    Case("generate-steps-huge", generate_args("--steps", "5000"), 2, "--steps must lie between"),
    Case("generate-samples-huge", generate_args("--num-samples", "100000"), 2, "--num-samples must lie between"),
    Case("generate-no-model", generate_args("--planner", "no/such/planner"), 1, "no model at"),
    Case("generate-scene-and-image", lambda p: ["generate", "--scene", p["scene"], "--image", p["scene"] / "start.png",
                                                "--out", p["ws"] / "plan"], 2, "either --scene"),
    Case("generate-image-without-prompt", lambda p: ["generate", "--image", p["scene"] / "start.png",
                                                     "--out", p["ws"] / "plan"], 2, "--image needs --prompt"),
    Case("generate-corrupt-image", lambda p: ["generate", "--image", p["ws"] / "x.png", "--prompt", "push it",
                                              "--out", p["ws"] / "plan"], 1, "not a readable image",
         write("x.png", b"\x89PNG\r\n\x1a\nbroken")),
    Case("generate-nan-depth", lambda p: ["generate", "--image", p["scene"] / "start.png", "--depth", p["ws"] / "d.npy",
                                          "--prompt", "push it", "--out", p["ws"] / "plan"], 1, "NaN or infinite",
         lambda ws: np.save(ws / "d.npy", np.full((48, 64), np.nan, np.float32))),
    Case("generate-pickled-depth", lambda p: ["generate", "--image", p["scene"] / "start.png", "--depth",
                                              p["ws"] / "d.npy", "--prompt", "push it", "--out", p["ws"] / "plan"], 1,
         "never unpickles", lambda ws: np.save(ws / "d.npy", np.array([{"a": 1}], dtype=object))),
    Case("generate-unknown-precision", generate_args("--precision", "int8"), 2, "unknown --precision"),
    Case("generate-unknown-sampler", generate_args("--sampler", "euler"), 2, "unknown sampler"),
    Case("generate-unknown-device", generate_args("--device", "tpu"), 2, "unknown --device"),
    Case("generate-out-exists", generate_args(), 2, "already exists", write("plan/x", "mine")),
    # --- collect ---
    Case("collect-zero-episodes", lambda p: ["collect", "--tasks", "push", "--episodes", "0", "--out", p["ws"] / "d"], 2,
         "at least 1"),
    Case("collect-zero-workers", lambda p: ["collect", "--tasks", "push", "--episodes", "2", "--workers", "0",
                                            "--out", p["ws"] / "d"], 2, "--workers must lie between"),
    Case("collect-huge-workers", lambda p: ["collect", "--tasks", "push", "--episodes", "2", "--workers", "100000",
                                            "--out", p["ws"] / "d"], 2, "--workers must lie between"),
    Case("collect-unknown-task", lambda p: ["collect", "--tasks", "fly", "--episodes", "2", "--out", p["ws"] / "d"], 2,
         "unknown task"),
    Case("collect-huge-image", lambda p: ["collect", "--tasks", "push", "--episodes", "2", "--image-size", "4096x4096",
                                          "--out", p["ws"] / "d"], 2, "at most 1024"),
    Case("collect-out-is-a-file", lambda p: ["collect", "--tasks", "push", "--episodes", "2", "--out", p["ws"] / "f"], 2,
         "already exists", write("f", "x")),
    Case("collect-out-is-foreign", lambda p: ["collect", "--tasks", "push", "--episodes", "2", "--out", p["ws"] / "f"], 2,
         "not a vid2act dataset", write("f/notes.txt", "x")),
    Case("collect-seeds-beyond-split", lambda p: ["collect", "--tasks", "push", "--episodes", "2", "--seed",
                                                  "999999999", "--out", p["ws"] / "d"], 2, "beyond"),
    # --- train ---
    Case("train-idm-no-data", train_args("idm", data=lambda p: p["ws"] / "none"), 1, "not a vid2act dataset"),
    Case("train-idm-unknown-head", train_args("idm", "--head", "lstm"), 2, "unknown --head"),
    Case("train-idm-unknown-modalities", train_args("idm", "--modalities", "thermal"), 2, "unknown --modalities"),
    Case("train-idm-lr-nan", train_args("idm", "--lr", "nan"), 2, "--lr must be a positive number"),
    Case("train-idm-lr-negative", train_args("idm", "--lr", "-1"), 2, "--lr must be a positive number"),
    Case("train-idm-unknown-device", train_args("idm", "--device", "tpu"), 2, "unknown --device"),
    Case("train-idm-foreign-format", train_args("idm", data=lambda p: p["ws"] / "d"), 1, "has format",
         dataset_copy(edit_info({"format": "lerobot/v3.0"}))),
    Case("train-idm-incomplete-data", train_args("idm", data=lambda p: p["ws"] / "d"), 1, "incomplete",
         dataset_copy(edit_info({"complete": False}))),
    Case("train-idm-missing-episode", train_args("idm", data=lambda p: p["ws"] / "d"), 1, "lacks 1 of its",
         dataset_copy(lambda root: (root / "episodes" / "000003.npz").unlink())),
    Case("train-idm-corrupt-info", train_args("idm", data=lambda p: p["ws"] / "d"), 1, "not valid JSON",
         dataset_copy(lambda root: (root / "meta" / "info.json").write_text("{"))),
    Case("train-video-scale-zero", train_args("video", "--scale", "0"), 2, "--scale"),
    Case("train-video-lr-nan", train_args("video", "--lr", "nan"), 2, "--lr must be a positive number"),
    Case("train-video-sketch-steps-zero", train_args("video", "--sketch-steps", "0"), 2,
         "--sketch-steps must be a positive number"),
    Case("train-video-negative-moving-weight", train_args("video", "--moving-weight", "-1"), 2,
         "--moving-weight must be 0 or more"),
    Case("train-video-bad-widths", train_args("video", "--widths", "32,abc"), 2, "comma-separated"),
    Case("train-video-unknown-modalities", train_args("video", "--modalities", "thermal"), 2, "unknown modalities"),
    Case("train-video-corrupt-init", lambda p: ["train", "video", "--data", p["data"], "--out", p["ws"] / "run",
                                                "--init-from", p["ws"] / "PLANTED"], 1, "is incomplete",
         write("PLANTED/model_index.json", "{broken")),
    Case("train-video-no-reader", train_args("video", "--reader", "no/such/idm"), 1, "no model at 'no/such/idm'"),
    Case("train-video-reader-not-an-idm", train_args("video", "--reader", "planner-rgbd"), 1,
         "is it an IDM folder"),
    Case("train-video-unknown-precision", train_args("video", "--mixed-precision", "fp8"), 2, "--mixed-precision"),
    Case("train-bc-unknown-modalities", train_args("bc", "--modalities", "thermal"), 2, "unknown --modalities"),
    Case("train-bc-lr-inf", train_args("bc", "--lr", "inf"), 2, "--lr must be a positive number"),
    Case("train-bc-steps-zero", lambda p: ["train", "bc", "--data", p["data"], "--out", p["ws"] / "run", "--steps", "0"],
         2, "--steps must be a positive number"),
    # --- eval ---
    Case("eval-unknown-policy", eval_args("--policy", "magic"), 2, "unknown policy"),
    Case("eval-train-split", eval_args("--split", "train"), 2, "--split must be test or heldout"),
    Case("eval-first-seed-beyond", eval_args("--first-seed", "999999999"), 2, "--first-seed"),
    Case("eval-zero-workers", eval_args("--workers", "0"), 2, "--workers must lie between"),
    Case("eval-negative-replan", eval_args("--replan-every", "-1"), 2, "--replan-every"),
    Case("eval-guidance-inf", eval_args("--guidance", "inf"), 2, "--guidance must be a number"),
    Case("eval-no-planner", eval_args("--planner", "no/such/planner"), 1, "no model at"),
    Case("eval-unknown-precision", eval_args("--precision", "int4"), 2, "unknown --precision"),
    Case("eval-out-exists", eval_args("--policy", "random"), 2, "already exists", write("ev/x", "mine")),
    # --- an output that is, holds or lies inside an input: refused, the input untouched ---
    Case("train-idm-out-is-its-data", lambda p: ["train", "idm", "--data", p["ws"] / "d", "--out", p["ws"] / "d",
                                                 "--force", "--steps", "2"], 2, "--out",
         dataset_copy(lambda root: None)),
    Case("train-video-out-holds-its-data", lambda p: ["train", "video", "--data", p["ws"] / "d" / "inner", "--out",
                                                      p["ws"] / "d", "--force", "--steps", "2"], 2,
         "holds the input --data",
         lambda ws: shutil.copytree(ws.parent / "shared-data", ws / "d" / "inner")),
    Case("train-bc-out-inside-its-data", lambda p: ["train", "bc", "--data", p["ws"] / "d", "--out",
                                                    p["ws"] / "d" / "run", "--steps", "2"], 2,
         "lies inside the input --data",
         dataset_copy(lambda root: None)),
    Case("train-video-out-is-init-from", lambda p: ["train", "video", "--data", p["data"], "--init-from",
                                                    p["ws"] / "P", "--out", p["ws"] / "P", "--force", "--steps", "2"],
         2,
         "is the input --init-from", write("P/model_index.json", "{}")),
    Case("eval-out-is-the-planner", lambda p: ["eval", "--planner", p["ws"] / "P", "--out", p["ws"] / "P", "--force",
                                               "--episodes", "1"], 2, "is the input --planner",
         write("P/model_index.json", "{}")),
    Case("oracle-out-inside-its-scene", lambda p: ["oracle", p["ws"] / "s", "--out", p["ws"] / "s" / "a.json"], 2,
         "lies inside the input SCENE", copy_scene("s")),
    Case("execute-next-scene-is-its-scene", lambda p: ["execute", p["actions"], "--scene", p["ws"] / "s", "--out",
                                                       p["ws"] / "r", "--next-scene", p["ws"] / "s", "--force"], 2,
         "--next-scene", copy_scene("s")),
    Case("translate-out-is-its-source", lambda p: ["translate", p["ws"] / "f.npz", "--out", p["ws"] / "f.npz",
                                                   "--force"], 2, "is the input SOURCE",
         frames_file(depth=np.ones((4, 48, 64), np.float32))),
    Case("generate-out-holds-its-image", lambda p: ["generate", "--image", p["ws"] / "x" / "start.png", "--prompt",
                                                    "push it", "--out", p["ws"] / "x", "--force"], 2,
         "holds the input --image", copy_scene("x")),
    Case("view-out-inside-its-data", lambda p: ["view", p["ws"] / "d", "--out", p["ws"] / "d" / "v.gif"], 2,
         "lies inside the input DATA", dataset_copy(lambda root: None)),
    # --- --resume continues a run of its own kind, or nothing ---
    Case("train-idm-resume-over-a-model", lambda p: ["train", "idm", "--data", p["data"], "--out", p["ws"] / "X",
                                                     "--resume", "--steps", "2"], 2,
         "holds no `vid2act train idm` run to resume", shipped_idm_copy("X")),
    Case("train-video-resume-into-an-idm-run", lambda p: ["train", "video", "--data", p["data"], "--out",
                                                          p["ws"] / "run", "--resume", *TINY_VIDEO], 2,
         "is a `vid2act train idm` run, not a `vid2act train video` one", run_copy("run")),
    Case("train-idm-resume-other-settings", lambda p: ["train", "idm", "--data", p["data"], "--out", p["ws"] / "run",
                                                       "--resume", "--steps", "4", "--batch-size", "8", "--width", "8",
                                                       "--checkpoint-every", "1", "--eval-every", "2", "--lr", "0.5"],
         2, "was started with other settings (--lr 0.002 then, 0.5 now", run_copy("run")),
    # --- scene files: one schema, every number finite and inside the world's envelope ---
    Case("oracle-scene-ee-target-1e308", oracle_on(), 1, "state.robot.ee_target[0] = 1e+308 lies outside",
         scene_edit("state.robot.ee_target", [1e308, 0, 0.2])),
    Case("execute-scene-joint-1e308", lambda p: ["execute", p["actions"], "--scene", p["ws"] / "s", "--out",
                                                 p["ws"] / "r"], 1, "state.robot.joint_positions[0] = 1e+308",
         scene_edit("state.robot.joint_positions.0", 1e308)),
    Case("oracle-scene-object-1e308", oracle_on(), 1, "state.objects[0].position[0] = 1e+308 lies outside",
         scene_edit("state.objects.0.position", [1e308, 0, 0.025])),
    Case("oracle-scene-zero-quaternion", oracle_on(), 1, "orientation must be a unit quaternion",
         scene_edit("state.objects.0.orientation", [0, 0, 0, 0])),
    Case("oracle-scene-no-gripper", oracle_on(), 1, "state.robot lacks the field 'gripper'",
         scene_edit("state.robot.gripper", delete=True)),
    Case("oracle-scene-unknown-shape", oracle_on(), 1, "shape 'sphere' is not one of",
         scene_edit("state.objects.0.shape", "sphere")),
    Case("oracle-scene-unknown-colour", oracle_on(), 1, "color 'pink' is not one of",
         scene_edit("state.objects.0.color", "pink")),
    Case("oracle-scene-name-not-its-object", oracle_on(), 1, "does not match its colour and shape",
         scene_edit("state.objects.0.name", "red block")),
    Case("oracle-scene-goal-without-object", oracle_on(), 1, "goal lacks the field 'object'",
         scene_edit("goal.object", delete=True)),
    Case("oracle-scene-camera-fov-0", oracle_on(), 1, "camera.fov = 0 lies outside", scene_edit("camera.fov", 0)),
    Case("oracle-scene-camera-near-beyond-far", oracle_on(), 1, "far (0.05) must lie beyond near (0.1)",
         scene_edit("camera.far", 0.05)),
    Case("oracle-scene-unknown-field", oracle_on(), 1, "unknown field 'colour'", scene_edit("colour", "red")),
    Case("oracle-scene-ee-target-string", oracle_on(), 1, "state.robot.ee_target must be 3 finite numbers",
         scene_edit("state.robot.ee_target", ["0.4", 0, 0.2])),
    # --- parsers: refused as bad files before anything is allocated ---
    Case("oracle-scene-400-digit-seed", oracle_on(), 1, "holds a whole number of 401 digits",
         copy_scene("s", raw='{"format": "vid2act.scene/1", "seed": 1' + "0" * 400 + "}")),
    Case("execute-actions-nested-100000-deep", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"],
                                                          "--out", p["ws"] / "r"], 1, "nested too deeply",
         actions_file(raw="[" * 100_000 + "]" * 100_000)),
    Case("translate-npz-claiming-10-million-frames", translate_args("f.npz"), 1, "header claims a 10000000x48x64",
         frames_file(raw=forged_npz(real_shape=(4, 48, 64, 3), claimed=(10_000_000, 48, 64, 3), dtype=np.uint8))),
    Case("generate-npy-claiming-10-million-frames", lambda p: ["generate", "--image", p["scene"] / "start.png",
                                                               "--depth", p["ws"] / "d.npy", "--prompt", "push it",
                                                               "--out", p["ws"] / "plan"], 1, "header claims",
         write("d.npy", forged_npy())),
    Case("train-idm-episode-claiming-10-million-frames", train_args("idm", data=lambda p: p["ws"] / "d"), 1,
         "header claims", dataset_copy(lambda root: (root / "episodes" / "000002.npz").write_bytes(
             forged_npz(real_shape=(4, 48, 64, 3), claimed=(10_000_000, 48, 64, 3), dtype=np.uint8)))),
    # --- a bound on the work of one run ---
    Case("execute-1001-actions", lambda p: ["execute", p["ws"] / "a.json", "--scene", p["scene"], "--out",
                                                 p["ws"] / "r"], 1, "one run executes at most 1,000",
         actions_file(lambda d: d.update(actions=[[0.0, 0.0, 0.0, 0.0]] * 1_001))),
    # --- import lerobot: every column checked against info.json before anything is written ---
    Case("import-fps-a-string", import_args(), 1, "fps must be a number of frames per second",
         lerobot_copy(lerobot_info(lambda info: info.update(fps="20fps")))),
    Case("import-fps-infinite", import_args(), 1, "fps must be a number of frames per second",
         lerobot_copy(lambda root: (root / "meta" / "info.json").write_text(
             (root / "meta" / "info.json").read_text().replace('"fps": 20', '"fps": 1e400', 1)))),
    Case("import-nan-action", import_args(), 1, "column 'action' holds NaN or infinity (row 3)",
         lerobot_copy(lerobot_table(LEROBOT_DATA, set_action(3, [float("nan"), 0.0, 0.0, 0.0])))),
    Case("import-action-out-of-bounds", import_args(), 1, "action dx = 0.5 lies outside",
         lerobot_copy(lerobot_table(LEROBOT_DATA, set_action(3, [0.5, 0.0, 0.0, 0.0])))),
    Case("import-unparseable-scene", import_args(), 1, "is not valid JSON",
         lerobot_copy(lerobot_table(LEROBOT_EPISODES, episodes_column("vid2act/scene", lambda n: ["{bad"] * n)))),
    Case("import-features-a-list", import_args(), 1, "features must be a JSON object",
         lerobot_copy(lerobot_info(lambda info: info.update(features=[])))),
    Case("import-episodes-without-index", import_args(), 1, "needs an episode_index",
         lerobot_copy(lerobot_table(LEROBOT_EPISODES, episodes_column("episode_index")))),
    Case("import-action-7-wide-under-4", import_args(), 1, "column 'action' holds rows of 7 values; info.json says 4",
         lerobot_copy(lerobot_table(LEROBOT_DATA, widen_actions))),
    # --- paths ---
    Case("collect-out-under-a-dangling-symlink", lambda p: ["collect", "--tasks", "push", "--episodes", "2", "--out",
                                                            p["ws"] / "lnk" / "D"], 2, "which does not exist",
         dangling("lnk")),
    Case("train-idm-out-under-a-dangling-symlink", lambda p: ["train", "idm", "--data", p["data"], "--out",
                                                              p["ws"] / "lnk" / "D", "--steps", "2"], 2,
         "which does not exist", dangling("lnk")),
    Case("collect-out-under-a-file", lambda p: ["collect", "--tasks", "push", "--episodes", "2", "--out",
                                                p["ws"] / "f" / "x"], 2, "is a file, not a folder", write("f", "x")),
    Case("scene-out-stdout", lambda p: ["scene", "--task", "push", "--seed", "1000001", "--out", "-"], 2,
         "not standard output"),
    Case("scene-out-not-writable", lambda p: ["scene", "--task", "push", "--seed", "1000001", "--out",
                                              "/proc/vid2act-out"], 1, "is not writable here"),
    Case("train-idm-out-not-writable", lambda p: ["train", "idm", "--data", p["data"], "--out", "/proc/vid2act-run",
                                                  "--steps", "2"], 1, "is not writable here"),
    Case("eval-out-stdout", lambda p: ["eval", "--out", "-", "--episodes", "1", "--policy", "random"], 2,
         "not standard output"),
]


@pytest.fixture(scope="module")
def shared(scene_dir, oracle_actions, demos, tmp_path_factory) -> Path:
    """The fixtures every workspace may copy from, one folder above the workspaces."""
    root = tmp_path_factory.mktemp("bad-inputs")
    shutil.copytree(scene_dir, root / "shared-scene")
    shutil.copy(oracle_actions, root / "shared-actions.json")
    shutil.copytree(demos, root / "shared-data")
    assert vid2act("export", "lerobot", demos, root / "shared-lerobot").code == 0
    run = vid2act("train", "idm", "--data", root / "shared-data", "--out", root / "shared-idm-run", "--steps", 2,
                  "--batch-size", 8,
                  "--width", 8, "--checkpoint-every", 1, "--eval-every", 2)
    assert run.code == 0, run.stderr
    return root


def listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clean_line_and_leaves_nothing(case, shared):
    ws = shared / case.id
    ws.mkdir()
    case.prepare(ws)
    before = listing(ws)
    paths = {"ws": ws, "scene": shared / "shared-scene", "actions": shared / "shared-actions.json",
             "data": shared / "shared-data"}
    run = vid2act(*case.args(paths))
    stderr = run.stderr
    assert run.code == case.code, (run.code, stderr)
    assert case.says in stderr, stderr
    assert BUG_MARKER not in stderr and run.stdout == "", stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert listing(ws) == before, "the command left something behind"
    assert not os.path.lexists("-"), "a folder named - was made"


def test_the_table_covers_every_command():
    commands = {c.args({"ws": Path("w"), "scene": Path("s"), "actions": Path("a"), "data": Path("d")})[0]
                for c in CASES}
    assert commands >= {"scene", "oracle", "execute", "translate", "generate", "collect", "train", "eval"}
    assert len(CASES) >= 60


# --- faults the environment causes: one line, exit 1, not a bug ----------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_read_only_destination_is_named_not_reported_as_a_bug(code, shared, monkeypatch, tmp_path):
    import vid2act.formats as formats

    def failing(path, data, replace=True):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(formats, "write_bytes", failing)  # what write_actions writes the actions file with
    run = vid2act("oracle", shared / "shared-scene", "--out", tmp_path / "a.json")
    monkeypatch.undo()
    assert run.code == 1, run.stderr
    assert os.strerror(code) in run.stderr and BUG_MARKER not in run.stderr
    assert list(tmp_path.iterdir()) == []


# --- concurrent writers and interruptions: real processes ---------------------------------------------------------
def _start(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "vid2act.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


@pytest.mark.slow
def test_two_writers_of_one_output_exactly_one_wins(tmp_path):
    for trial in range(3):
        out = tmp_path / f"o{trial}"
        a = _start("scene", "--task", "push", "--seed", 1_000_001, "--out", out)
        b = _start("scene", "--task", "push", "--seed", 1_000_001, "--out", out)
        results = [(p.wait(), p.stderr.read()) for p in (a, b)]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], results
        assert "already exists" in next(err for code, err in results if code == 2)
        assert sorted(p.name for p in out.iterdir()) == ["scene.json", "start.png", "start_depth.npy"]
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll `condition` until it holds or `seconds` pass (a loaded machine is slow, never wrong): whether it held."""
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def _vid2act_processes() -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if "vid2act.cli" in line or "spawn_main" in line
            or "resource_tracker" in line]


@pytest.mark.slow
def test_kill_9_of_collect_leaves_no_process_and_the_rerun_is_byte_identical(tmp_path):
    before = _vid2act_processes()
    args = ["collect", "--tasks", "reach,push", "--episodes", 60, "--workers", 2]
    out = tmp_path / "killed"
    process = _start(*args, "--out", out)
    assert wait_for(lambda: len(list((out / "episodes").glob("*.npz"))) >= 4, 300), "collect wrote no 4 episodes"
    os.kill(process.pid, signal.SIGKILL)  # the parent alone, as a crash would: its workers must follow
    process.wait()
    assert wait_for(lambda: [line for line in _vid2act_processes() if line not in before] == [], 60), \
        [line for line in _vid2act_processes() if line not in before]
    written = len(list((out / "episodes").glob("*.npz")))  # no process is left that could write another
    assert written < 60, "collect finished before the kill"
    assert vid2act(*args, "--out", out).code == 0
    assert vid2act(*args, "--out", tmp_path / "whole").code == 0
    assert listing(out) == listing(tmp_path / "whole")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["collect", "train"])
def test_a_second_writer_of_a_folder_being_written_is_refused(command, demos, tmp_path):
    out = tmp_path / "d"
    args = {"collect": ["collect", "--tasks", "reach", "--episodes", 200],
            # long enough that the first writer is still writing when the second starts, on a loaded machine too
            "train": ["train", "idm", "--data", demos, "--steps", 200_000, "--batch-size", 8, "--width", 8,
                      "--checkpoint-every", 10]}[command]
    started = {"collect": out / "meta" / "info.json", "train": out / "checkpoint" / "state.json"}[command]
    first = _start(*args, "--out", out)
    # a loaded machine takes its time to import torch and read the data
    assert wait_for(started.exists, 300), f"the first {command} did not start writing within 300 s"
    second = vid2act(*args, "--out", out, *(["--resume"] if command == "train" else []))
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert second.code == 2 and f"another vid2act {command} is writing" in second.stderr, second.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["collect", "train", "eval"])
def test_sigint_mid_run_says_interrupted_leaves_no_partial_output_and_reruns(command, demos, tmp_path):
    out = tmp_path / "out"
    args = {"collect": ["collect", "--tasks", "reach,push", "--episodes", 40, "--workers", 2],
            "train": ["train", "idm", "--data", demos, "--steps", 400, "--batch-size", 8, "--width", 8,
                      "--checkpoint-every", 20, "--eval-every", 400],
            "eval": ["eval", "--policy", "oracle", "--tasks", "push", "--episodes", 6]}[command]
    process = _start(*args, "--out", out)
    ready = {"collect": lambda: len(list(out.glob("episodes/*.npz"))) >= 2,
             "train": lambda: (out / "checkpoint" / "state.json").exists(),
             "eval": lambda: any(tmp_path.glob(".out.*.tmp/episodes/*/result.json"))}[command]
    assert wait_for(ready, 300), f"{command} did not get going within 300 s"
    os.killpg(process.pid, signal.SIGINT)  # the whole group, as a terminal's Ctrl-C: workers included
    code, stderr = process.wait(timeout=120), process.stderr.read()
    assert code == 130 and "interrupted" in stderr and BUG_MARKER not in stderr, stderr
    if command == "eval":  # an eval is one atomic output: nothing of it may remain
        assert list(tmp_path.iterdir()) == []
    else:  # what is meant to be resumed stays, without temporary files
        assert not list(out.rglob(".*.tmp"))
    rerun = [*args, "--resume"] if command == "train" else args
    assert vid2act(*rerun, "--out", out).code == 0


def test_a_failure_after_the_run_leaves_no_next_scene(shared, monkeypatch, tmp_path):
    """`execute --next-scene` writes the reached scene only with the rollout: a full disk while the rollout is
    written leaves neither."""
    import vid2act.media as media

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "r"))

    monkeypatch.setattr(media, "write_rollout", full)
    run = vid2act("execute", shared / "shared-actions.json", "--scene", shared / "shared-scene", "--out",
                  tmp_path / "r", "--next-scene", tmp_path / "next", "--max-steps", 5)
    assert run.code == 1 and os.strerror(errno.ENOSPC) in run.stderr and BUG_MARKER not in run.stderr, run.stderr
    assert list(tmp_path.iterdir()) == []
