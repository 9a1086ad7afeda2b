import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


class Run:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self):
        return json.loads(self.stdout)


def vid2act(*args, stdin: str | None = None) -> Run:
    """Run the command line in this process (typer's CliRunner: its parsing, exit codes and messages, without
    paying a fresh interpreter's torch and diffusers imports on every call)."""
    from typer.testing import CliRunner

    from vid2act.cli.main import app
    result = CliRunner().invoke(app, [str(a) for a in args], input=stdin)
    return Run(result.exit_code, result.stdout, result.stderr)


def vid2act_process(*args, stdin: str | None = None, env=None) -> Run:
    """Run the real command line in a fresh process, as a user would: what only a process shows (the
    environment, stdout free of library noise, the same result across interpreters)."""
    completed = subprocess.run([sys.executable, "-m", "vid2act.cli", *map(str, args)], input=stdin,
                               capture_output=True, text=True, env=env, timeout=600)
    return Run(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture(scope="session")
def scene_dir(tmp_path_factory) -> Path:
    """A push scene from the test split, made once by the CLI."""
    out = tmp_path_factory.mktemp("shared") / "scene"
    run = vid2act("scene", "--task", "push", "--seed", 1_000_001, "--out", out)
    assert run.code == 0, run.stderr
    return out


@pytest.fixture(scope="session")
def oracle_actions(scene_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shared") / "actions.json"
    run = vid2act("oracle", scene_dir, "--out", out)
    assert run.code == 0, run.stderr
    return out


TINY_PLANNER = ["--widths", "16,16,16", "--batch-size", "2", "--eval-every", "40", "--checkpoint-every", "5",
                "--lr", "1e-3", "--grounding-steps", "5", "--sketch-steps", "5"]


@pytest.fixture(scope="session")
def demos(tmp_path_factory) -> Path:
    """Six demonstrations of every family, shared by the IDM, planner and BC tests."""
    out = tmp_path_factory.mktemp("demos") / "data"
    run = vid2act("collect", "--tasks", "all", "--episodes", 6, "--out", out, "--workers", 2)
    assert run.code == 0, run.stderr
    return out


@pytest.fixture(scope="session")
def tiny_planner(demos, tmp_path_factory) -> Path:
    """A planner trained for six steps: it draws nonsense, but in every file format of a real one."""
    out = tmp_path_factory.mktemp("video") / "run"
    run = vid2act("train", "video", "--data", demos, "--out", out, "--steps", 6, *TINY_PLANNER, "--eval-every", "3")
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == str(out)
    return out


def kill_9_during_training(args: list[str], out: Path, after_step: int) -> None:
    """Start `vid2act *args --out out`, SIGKILL its process group once a checkpoint at `after_step` or later
    exists, and check that the run had not finished."""
    process = subprocess.Popen([sys.executable, "-m", "vid2act.cli", *args, "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = out / "checkpoint" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if json.loads(state.read_text())["step"] >= after_step:
                break
        except FileNotFoundError:  # not written yet, or between the two renames that replace a checkpoint
            pass
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "metrics.json").exists(), "the run finished before it was killed"


def run_two_processes(args: list[str]) -> None:
    """`vid2act *args` under `accelerate launch` with two CPU processes (torchrun's launcher; gloo)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "vid2act.cli",
               *args]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
