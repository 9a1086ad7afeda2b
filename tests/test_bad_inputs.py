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
]


@pytest.fixture(scope="module")
def shared(scene_dir, oracle_actions, demos, tmp_path_factory) -> Path:
    """The fixtures every workspace may copy from, one folder above the workspaces."""
    root = tmp_path_factory.mktemp("bad-inputs")
    shutil.copytree(scene_dir, root / "shared-scene")
    shutil.copy(oracle_actions, root / "shared-actions.json")
    shutil.copytree(demos, root / "shared-data")
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


def test_the_table_covers_every_command():
    commands = {c.args({"ws": Path("w"), "scene": Path("s"), "actions": Path("a"), "data": Path("d")})[0]
                for c in CASES}
    assert commands >= {"scene", "oracle", "execute", "translate", "generate", "collect", "train", "eval"}
    assert len(CASES) >= 60


# --- faults the environment causes: one line, exit 1, not a bug ----------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_read_only_destination_is_named_not_reported_as_a_bug(code, shared, monkeypatch, tmp_path):
    import vid2act.files as files
    real = files.write_bytes

    def failing(path, data, replace=True):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(files, "write_bytes", failing)
    run = vid2act("oracle", shared / "shared-scene", "--out", tmp_path / "a.json")
    monkeypatch.setattr(files, "write_bytes", real)
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
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "episodes").glob("*.npz")) if out.exists() else []) < 4:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # the parent alone, as a crash would: its workers must follow
    process.wait()
    time.sleep(1.0)
    left = [line for line in _vid2act_processes() if line not in before]
    assert left == [], left
    written = len(list((out / "episodes").glob("*.npz")))
    time.sleep(1.0)
    assert len(list((out / "episodes").glob("*.npz"))) == written, "something still writes episodes"
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
    deadline = time.time() + 300  # a loaded machine takes its time to import torch and read the data
    while time.time() < deadline and not started.exists():
        time.sleep(0.05)
    assert started.exists(), f"the first {command} did not start writing within 300 s"
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
    deadline = time.time() + 120
    ready = {"collect": lambda: len(list(out.glob("episodes/*.npz"))) >= 2,
             "train": lambda: (out / "checkpoint" / "state.json").exists(),
             "eval": lambda: any(tmp_path.glob(".out.*.tmp/episodes/*/result.json"))}[command]
    while time.time() < deadline and not ready():
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    code, stderr = process.wait(timeout=120), process.stderr.read()
    assert code == 130 and "interrupted" in stderr and BUG_MARKER not in stderr, stderr
    if command == "eval":  # an eval is one atomic output: nothing of it may remain
        assert list(tmp_path.iterdir()) == []
    else:  # what is meant to be resumed stays, without temporary files
        assert not list(out.rglob(".*.tmp"))
    rerun = [*args, "--resume"] if command == "train" else args
    assert vid2act(*rerun, "--out", out).code == 0
