"""The Gymnasium environments: Gymnasium's own checker, the same scenes as `vid2act scene`, refusals, and the
same outcomes as `vid2act eval` for policies driven through the Gymnasium API."""
import json
import warnings

import gymnasium
import imageio.v3 as iio
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import vid2act  # noqa: F401  (registers the environments)
from conftest import vid2act as run_cli
from vid2act.errors import UsageError
from vid2act.gym import ENV_IDS, run_policy
from vid2act.policies import load_policy


@pytest.mark.parametrize("task", list(ENV_IDS))
def test_check_env_passes_without_a_warning(task):
    env = gymnasium.make(ENV_IDS[task], render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)  # determinism of reset(seed) and step included
    assert env.spec.max_episode_steps == int(1.5 * vid2act.sim.tasks.get_task(task).max_steps)
    assert env.metadata["render_fps"] == 20.0
    env.close()


def test_reset_builds_the_scene_of_vid2act_scene_byte_for_byte(tmp_path):
    for split, seed in (("test", 1_000_042), ("heldout", 1_000_007), ("train", 123)):
        run = run_cli("scene", "--task", "stack", "--seed", seed, "--split", split, "--out", tmp_path / split)
        assert run.code == 0, run.stderr
        env = gymnasium.make("vid2act:vid2act/Stack-v0", render_mode="rgb_array")
        observation, info = env.reset(seed=seed, options={"split": split})
        scene = json.loads((tmp_path / split / "scene.json").read_text())
        assert np.array_equal(observation["pixels"], iio.imread(tmp_path / split / "start.png"))
        assert np.array_equal(observation["depth"], np.load(tmp_path / split / "start_depth.npy"))
        assert info["instruction"] == scene["instruction"] and info["seed"] == seed and not info["is_success"]
        assert np.array_equal(env.render(), observation["pixels"])
        assert np.allclose(observation["agent_pos"][:3], scene["state"]["robot"]["ee_target"], atol=0.01)
        assert np.array_equal(observation["ee_target"], scene["state"]["robot"]["ee_target"])
        move = np.array([0.01, -0.02, 0.005, 1.0], np.float32)
        after, *_ = env.step(move)  # each action moves the commanded grasp point by exactly its (dx, dy, dz)
        assert np.allclose(after["ee_target"], observation["ee_target"] + move[:3].astype(np.float64), atol=1e-12)
        assert env.observation_space.contains(after)
        env.close()


def test_instruction_option_and_refusals():
    env = gymnasium.make("vid2act/Reach-v0")
    _, info = env.reset(seed=5, options={"instruction": "touch the green pad"})
    assert info["instruction"] == "touch the green pad"
    with pytest.raises(UsageError, match=r"action dx = 0\.5 is outside its bounds \[-0\.03, 0\.03\]"):
        env.step(np.array([0.5, 0, 0, 0], np.float32))
    with pytest.raises(UsageError, match="an action is 4 numbers"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(UsageError, match="gripper = nan"):
        env.step(np.array([0, 0, 0, np.nan], np.float32))
    with pytest.raises(UsageError, match=r"seed 5 is outside the test split's seed range"):
        env.reset(seed=5, options={"split": "test"})
    with pytest.raises(UsageError, match="unknown reset option 'colour'"):
        env.reset(seed=5, options={"colour": "red"})
    with pytest.raises(UsageError, match="unknown task 'juggle'"):
        gymnasium.make("vid2act/Reach-v0", task="juggle")
    with pytest.raises(UsageError, match=r"reset options must be a dict, for example \{'split': 'test'\}"):
        env.reset(seed=5, options="test")
    with pytest.raises(UsageError, match=r"image_size must be \(height, width\) in pixels, for example \(48, 64\)"):
        gymnasium.make("vid2act/Reach-v0", image_size="48x64")
    with pytest.raises(UsageError, match="unknown split 'val'"):
        gymnasium.make("vid2act/Reach-v0", split="val")
    env.close()


def test_split_is_a_make_keyword_and_reset_options_still_override_it():
    env = gymnasium.make("vid2act/Push-v0", split="test")
    _, info = env.reset(seed=1_000_042)
    assert (info["split"], info["seed"]) == ("test", 1_000_042)
    _, info = env.reset(seed=42, options={"split": "train"})
    assert (info["split"], info["seed"]) == ("train", 42)
    with pytest.raises(UsageError, match=r"seed 42 is outside the test split's seed range"):
        env.reset(seed=42)
    env.close()


@pytest.mark.slow
def test_random_and_oracle_through_gymnasium_match_vid2act_eval(tmp_path):
    for policy in ("oracle", "random"):
        run = run_cli("eval", "--policy", policy, "--episodes", 1, "--out", tmp_path / policy)
        assert run.code == 0, run.stderr
        records = json.loads((tmp_path / policy / "eval_info.json").read_text())["episodes"]
        for record in records:
            success, _ = run_policy(ENV_IDS[record["task"]], load_policy(policy), record["seed"], "test")
            assert success == record["success"], (policy, record)
