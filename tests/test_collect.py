"""Collection: the dataset format, determinism across processes and workers, resume after kill -9, replay."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import vid2act
from vid2act.data.dataset import Dataset
from vid2act.sim.env import SceneWorld

EPISODES = 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "demos"
    run = vid2act("collect", "--tasks", "all", "--episodes", EPISODES, "--out", out, "--previews")
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == str(out)
    return out


def episodes_equal(a, b, index):
    with np.load(a / "episodes" / f"{index:06d}.npz") as x, np.load(b / "episodes" / f"{index:06d}.npz") as y:
        return x.files == y.files and all(np.array_equal(x[k], y[k]) for k in x.files)


def test_dataset_layout(dataset):
    info = json.loads((dataset / "meta" / "info.json").read_text())
    stats = json.loads((dataset / "meta" / "stats.json").read_text())
    assert info["format"] == "vid2act.dataset/1" and info["complete"] and info["counts"]["episodes"] == EPISODES
    assert info["image_size"] == [48, 64] and info["action_space"]["names"] == ["dx", "dy", "dz", "gripper"]
    assert set(info["counts"]["per_task"]) == {"reach", "push", "pick_place", "stack"}
    assert len(stats["actions"]["mean"]) == 4 and len(stats["ee_target"]["std"]) == 3
    assert stats["episodes"] == EPISODES
    data = Dataset(dataset)
    for i in range(len(data)):
        episode = data.episode(i)
        steps = len(episode["actions"])
        assert episode["rgb"].shape == (steps + 1, 48, 64, 3) and episode["rgb"].dtype == np.uint8
        assert episode["depth"].shape == (steps + 1, 48, 64) and episode["depth"].dtype == np.float16
        assert episode["actions"].dtype == np.float32 and episode["ee_pose"].shape == (steps + 1, 7)
        # The commanded grasp point is the start's plus the sum of the moves so far.
        assert np.allclose(np.diff(episode["ee_target"], axis=0), episode["actions"][:, :3], atol=1e-6)
        assert episode["instruction"] == json.loads(episode["scene"])["instruction"]
        assert 0 <= episode["seed"] <= 999_999 and episode["split"] == "train"
        assert (dataset / "previews" / f"{i:06d}.mp4").exists()


def test_stored_actions_replay_to_success(dataset):
    data = Dataset(dataset)
    for i in range(len(data)):
        episode = data.episode(i)
        with SceneWorld(json.loads(episode["scene"])) as env:
            rollout = env.run(episode["actions"])
        assert rollout.success and np.array_equal(rollout.rgb, episode["rgb"])


def test_two_workers_give_the_same_bytes(dataset, tmp_path):
    run = vid2act("collect", "--tasks", "all", "--episodes", EPISODES, "--out", tmp_path / "d", "--workers", 2,
                  "--previews")
    assert run.code == 0, run.stderr
    assert all(episodes_equal(dataset, tmp_path / "d", i) for i in range(EPISODES))
    assert (dataset / "meta" / "stats.json").read_bytes() == (tmp_path / "d" / "meta" / "stats.json").read_bytes()


@pytest.mark.slow
def test_resume_after_kill_9(dataset, tmp_path):
    out = tmp_path / "d"
    episodes = 3 * EPISODES
    command = [sys.executable, "-m", "vid2act.cli", "collect", "--tasks", "all", "--episodes", str(episodes),
               "--out", str(out), "--workers", "2", "--previews"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 120
    while len(list((out / "episodes").glob("*.npz"))) < 5 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the main process and its workers, mid-write
    process.wait()
    done_before = len(list((out / "episodes").glob("*.npz")))
    assert 5 <= done_before < episodes
    assert not json.loads((out / "meta" / "info.json").read_text())["complete"]

    run = vid2act(*command[3:])
    assert run.code == 0, run.stderr
    assert "resuming" in run.stderr
    files = sorted(p.name for p in (out / "episodes").iterdir())
    assert files == [f"{i:06d}.npz" for i in range(episodes)]  # none missing, none extra, no temporaries
    assert all(episodes_equal(dataset, out, i) for i in range(EPISODES))  # same bytes as an uninterrupted run
    data = Dataset(out)
    assert len(data) == episodes and all(len(data.episode(i, ("actions",))["actions"]) for i in range(episodes))


def test_more_episodes_extend_a_finished_dataset(dataset, tmp_path):
    import shutil
    out = tmp_path / "d"
    shutil.copytree(dataset, out)
    run = vid2act("collect", "--tasks", "all", "--episodes", EPISODES + 2, "--out", out, "--previews")
    assert run.code == 0 and Dataset(out).info["counts"]["episodes"] == EPISODES + 2


@pytest.mark.parametrize("args,code,fragment", [
    (["--tasks", "fly"], 2, "unknown task 'fly'"),
    (["--tasks", "push", "--split", "test", "--seed", 999_999], 2, "beyond the test split's range"),
    (["--tasks", "push", "--episodes", "0"], 2, "at least 1"),
    (["--tasks", "push", "--workers", "0"], 2, "--workers must lie between 1 and"),
])
def test_collect_bad_usage(tmp_path, args, code, fragment):
    if "--episodes" not in args:
        args = [*args, "--episodes", "2"]
    run = vid2act("collect", *args, "--out", tmp_path / "d")
    assert run.code == code and fragment in run.stderr and "please report it" not in run.stderr, run.stderr


def test_collect_refuses_a_folder_of_other_settings(dataset, tmp_path):
    run = vid2act("collect", "--tasks", "push", "--episodes", 2, "--out", dataset)
    assert run.code == 2 and "other settings" in run.stderr
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("x")
    run = vid2act("collect", "--tasks", "push", "--episodes", 2, "--out", tmp_path / "stuff")
    assert run.code == 2 and "not a vid2act dataset" in run.stderr


def test_recovery_episodes_hand_over_to_the_expert(tmp_path):
    """`--recover random`: the random policy acts first, the expert finishes from where it left the scene; the
    stored episode replays to success and says where the expert took over."""
    out = tmp_path / "rec"
    run = vid2act("collect", "--tasks", "push,pick_place", "--episodes", 2, "--recover", "random", "--out", out)
    assert run.code == 0, run.stderr
    data = Dataset(out)
    assert data.info["config"]["recover"] == "random" and "seeds_passed_over" in data.info["counts"]
    for i in range(len(data)):
        episode = data.episode(i)
        start = data.expert_from(i)
        assert 8 <= start < len(episode["actions"])
        with SceneWorld(json.loads(episode["scene"])) as env:
            before = env.run(episode["actions"][:start])
            assert not before.success
            assert env.run(episode["actions"][start:]).success


@pytest.mark.parametrize("task", ["push", "pick_place", "stack"])
def test_the_expert_finishes_from_any_state_of_its_own_demonstration(task):
    """A recovery episode's expert starts wherever another policy stopped: mid-push, holding the object, or
    with it dropped. From every tenth state of its own demonstration, a fresh expert finishes the task."""
    from vid2act.sim.env import make_scene
    scene = make_scene(task, 123, "train")
    with SceneWorld(scene) as env:
        actions = env.run_oracle().actions
    for stop in range(5, len(actions), 10):
        with SceneWorld(scene) as env:
            env.run(actions[:stop])
            assert env.run_oracle().success, (task, stop)


def test_recover_bad_usage(tmp_path):
    run = vid2act("collect", "--tasks", "push", "--episodes", 2, "--recover", "oracle", "--out", tmp_path / "d")
    assert run.code == 2 and "--recover 'oracle': the policies to recover from are sketch, random" in run.stderr
    assert not (tmp_path / "d").exists()


def test_recover_with_a_missing_planner_leaves_nothing(tmp_path):
    run = vid2act("collect", "--tasks", "push", "--episodes", 2, "--recover", "sketch", "--planner", tmp_path / "none",
                  "--out", tmp_path / "d")
    assert run.code != 0 and str(tmp_path / "none") in run.stderr and not (tmp_path / "d").exists(), run.stderr
