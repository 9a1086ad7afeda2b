"""The inverse-dynamics model: training outputs, save/load, translate from every source, resume, accelerate,
and every bad input."""
import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from safetensors.torch import load_file

from conftest import kill_9_during_training, run_two_processes, vid2act

TINY = ["--width", "8", "--batch-size", "16", "--eval-every", "40", "--checkpoint-every", "10", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def data(demos) -> Path:
    return demos


@pytest.fixture(scope="module")
def idm(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idm") / "run"
    run = vid2act("train", "idm", "--data", data, "--out", out, "--steps", 40, *TINY)
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == str(out)
    return out


def test_training_draws_its_curves_and_writes_tensorboard_events(data, tmp_path):
    run = vid2act("train", "idm", "--data", data, "--out", tmp_path / "run", "--steps", 20, *TINY,
                  "--eval-every", "10", "--report-to", "tensorboard")
    assert run.code == 0, run.stderr
    curves = json.loads((tmp_path / "run" / "curves.json").read_text())
    assert [p["step"] for p in curves["train"]] == [1, 10, 20] and all(p["lr"] > 0 for p in curves["train"])
    assert [p["step"] for p in curves["validation"]] == [10, 20] and "gripper_accuracy" in curves["validation"][0]
    assert (tmp_path / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "run" / "logs").rglob("events.out.tfevents.*")), "no TensorBoard event file"
    run = vid2act("train", "idm", "--data", data, "--out", tmp_path / "other", "--report-to", "wandb")
    assert run.code == 2 and "unknown --report-to 'wandb'; choose none or tensorboard" in run.stderr
    assert not (tmp_path / "other").exists()


@pytest.fixture(scope="module")
def idm_rgb(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idm") / "rgb"
    run = vid2act("train", "idm", "--data", data, "--out", out, "--steps", 10, "--modalities", "rgb",
                  "--head", "delta", *TINY)
    assert run.code == 0, run.stderr
    return out


@pytest.fixture(scope="module")
def rollout(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("idm")
    assert vid2act("scene", "--task", "reach", "--seed", 1_000_003, "--out", root / "scene").code == 0
    assert vid2act("oracle", root / "scene", "--out", root / "actions.json").code == 0
    assert vid2act("execute", root / "actions.json", "--scene", root / "scene", "--out", root / "rollout").code == 0
    return root


def test_run_folder_holds_a_loadable_model(idm, data):
    config = json.loads((idm / "config.json").read_text())
    assert config["type"] == "vid2act.idm/1"
    assert config["architecture"]["image_size"] == [48, 64] and config["architecture"]["modalities"] == "rgbd"
    assert config["action_space"]["names"] == ["dx", "dy", "dz", "gripper"]
    assert set(config["normalization"]) == {"target", "depth"}
    assert config["training"]["steps"] == 40 and config["dataset"]["episodes"] == 6
    assert set(load_file(str(idm / "model.safetensors")))  # plain safetensors
    metrics = json.loads((idm / "metrics.json").read_text())["final"]
    assert set(metrics["normalized_mse"]) == {"dx", "dy", "dz"}


def test_the_final_metrics_are_the_saved_models_own(idm, data):
    """metrics.json's final validation is what the saved model scores on the held-out episodes, recomputed."""
    from vid2act.data.dataset import Dataset
    from vid2act.idm.model import load_idm
    from vid2act.idm.train import validate
    from vid2act.training import held_out_split
    dataset = Dataset(data)
    model, _ = load_idm(str(idm))
    again = validate(model, dataset, held_out_split(dataset, 0.1, "")[1], "cpu")
    final = json.loads((idm / "metrics.json").read_text())["final"]
    assert {k: final[k] for k in again} == again


def test_save_load_round_trip_predicts_the_same(idm, rollout):
    from vid2act.idm.model import load_idm, predict_actions
    frames = np.load(rollout / "rollout" / "frames.npz")
    first = predict_actions(load_idm(str(idm))[0], frames["rgb"], frames["depth"].astype(np.float32))
    again = predict_actions(load_idm(str(idm))[0], frames["rgb"], frames["depth"].astype(np.float32))
    assert first.shape == (len(frames["rgb"]) - 1, 4) and np.array_equal(first, again)


def test_translate_then_execute(idm, rollout, tmp_path):
    run = vid2act("translate", rollout / "rollout", "--idm", idm, "--out", tmp_path / "a.json")
    assert run.code == 0, run.stderr
    document = json.loads((tmp_path / "a.json").read_text())
    frames = np.load(rollout / "rollout" / "frames.npz")["rgb"]
    assert document["format"] == "vid2act.actions/1" and len(document["actions"]) == len(frames) - 1
    assert document["source"]["frames"] == len(frames) and document["source"]["idm"] == str(idm)
    executed = vid2act("execute", tmp_path / "a.json", "--scene", rollout / "scene", "--out", tmp_path / "r")
    assert executed.code == 0 and "success" in executed.json()


def test_translate_reads_every_source(idm, idm_rgb, rollout, data, tmp_path):
    frames = np.load(rollout / "rollout" / "frames.npz")["rgb"]
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for i, frame in enumerate(frames):
        iio.imwrite(pngs / f"{i:04d}.png", frame)
    iio.imwrite(tmp_path / "plan.gif", frames, duration=50, loop=0)
    sources = [(idm, rollout / "rollout" / "frames.npz"), (idm, data / "episodes" / "000001.npz"),
               (idm_rgb, rollout / "rollout" / "rollout.mp4"), (idm_rgb, tmp_path / "plan.gif"), (idm_rgb, pngs)]
    for model, source in sources:
        run = vid2act("translate", source, "--idm", model, "--out", "-")
        assert run.code == 0, (source, run.stderr)
        assert len(run.json()["actions"]) >= 1


def test_resize_is_explicit(idm_rgb, rollout, tmp_path):
    frames = np.load(rollout / "rollout" / "frames.npz")["rgb"]
    big = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)
    np.savez(tmp_path / "big.npz", rgb=big)
    refused = vid2act("translate", tmp_path / "big.npz", "--idm", idm_rgb, "--out", tmp_path / "a.json")
    assert refused.code == 1 and "--resize" in refused.stderr and not (tmp_path / "a.json").exists()
    resized = vid2act("translate", tmp_path / "big.npz", "--idm", idm_rgb, "--out", "-", "--resize")
    assert resized.code == 0 and resized.json()["source"]["resized"] is True


def mixed_pngs(folder: Path) -> Path:
    folder.mkdir()
    for i, size in enumerate([(48, 64), (48, 64), (32, 64)]):
        iio.imwrite(folder / f"{i}.png", np.zeros((*size, 3), np.uint8))
    return folder


def bad_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("make,fragment", [
    (lambda d: bad_npz(d / "one.npz", rgb=np.zeros((1, 48, 64, 3), np.uint8)), "at least 2"),
    (lambda d: bad_npz(d / "rgba.npz", rgb=np.zeros((5, 48, 64, 4), np.uint8)), "expected [T, H, W, 3]"),
    (lambda d: bad_npz(d / "float.npz", rgb=np.zeros((5, 48, 64, 3), np.float32)), "expected uint8"),
    (lambda d: (d / "cut.npz").write_bytes(b"PK\x03\x04garbage") and d / "cut.npz", "not a readable npz"),
    (lambda d: (d / "cut.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42") and d / "cut.mp4", "not a readable video"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "neither frames.npz nor PNG"),
    (lambda d: (d / "bad").mkdir() or (d / "bad" / "0.png").write_bytes(b"\x89PNG nope") and d / "bad",
     "not a readable PNG"),
    (lambda d: d / "missing.npz", "does not exist"),
    (lambda d: mixed_pngs(d / "mixed"), "differ in size"),
])
def test_bad_frames_are_refused(idm_rgb, tmp_path, make, fragment):
    source = make(tmp_path)
    run = vid2act("translate", source, "--idm", idm_rgb, "--out", tmp_path / "a.json")
    assert run.code == 1 and fragment in run.stderr and "please report it" not in run.stderr, run.stderr
    assert not (tmp_path / "a.json").exists()


def test_rgbd_model_needs_depth(idm, rollout, tmp_path):
    run = vid2act("translate", rollout / "rollout" / "rollout.mp4", "--idm", idm, "--out", tmp_path / "a.json")
    assert run.code == 1 and "carries no depth" in run.stderr


@pytest.mark.parametrize("damage,fragment", [
    (lambda d: (d / "model.safetensors").unlink(), "has no model.safetensors"),
    (lambda d: (d / "model.safetensors").rename(d / "model.bin"), "never pickles"),
    (lambda d: (d / "config.json").unlink(), "has no config.json"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}"), "corrupt"),
    (lambda d: (d / "config.json").write_text((d / "config.json").read_text().replace('"width": 8', '"width": 16')),
     "does not match its config.json"),
    (lambda d: (d / "config.json").write_text((d / "config.json").read_text().replace('"vid2act.idm/1"', '"x/9"')),
     "'x/9'"),
])
def test_broken_checkpoints_are_refused(idm, rollout, tmp_path, damage, fragment):
    broken = tmp_path / "broken"
    shutil.copytree(idm, broken, ignore=shutil.ignore_patterns("checkpoint"))
    damage(broken)
    run = vid2act("translate", rollout / "rollout", "--idm", broken, "--out", tmp_path / "a.json")
    assert run.code == 1 and fragment in run.stderr and "please report it" not in run.stderr, run.stderr


def test_unknown_model_name(rollout, tmp_path):
    run = vid2act("translate", rollout / "rollout", "--idm", "no-such-model", "--out", tmp_path / "a.json")
    assert run.code == 1 and "no model at 'no-such-model'" in run.stderr


def test_existing_run_needs_resume_or_force(idm, data):
    run = vid2act("train", "idm", "--data", data, "--out", idm, "--steps", 40, *TINY)
    assert run.code == 2 and "--resume" in run.stderr
    finished = vid2act("train", "idm", "--data", data, "--out", idm, "--steps", 40, *TINY, "--resume")
    assert finished.code == 0 and finished.stdout.strip() == str(idm), finished.stderr
    other = vid2act("train", "idm", "--data", data, "--out", idm, "--steps", 41, *TINY, "--resume")
    assert other.code == 2 and "other settings" in other.stderr


@pytest.mark.slow
def test_an_idm_learns_to_read_a_planners_drawings(idm, tiny_planner, data, tmp_path):
    out = tmp_path / "reads-plans"
    run = vid2act("train", "idm", "--data", data, "--out", out, "--steps", 4, *TINY, "--planner", tiny_planner,
                  "--drawn-clips", 6, "--init-from", idm)
    assert run.code == 0, run.stderr
    assert "keyframes drawn by" in run.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    # the final reading is the saved IDM's of the keyframes the planner draws for the validation clips, recomputed
    from vid2act.data.dataset import Dataset
    from vid2act.idm.model import load_idm
    from vid2act.training import held_out_split
    from vid2act.video.pipeline import load_planner
    from vid2act.video.readback import DRAWN_VAL_CLIPS, drawn_keyframes, read_drawn
    dataset = Dataset(data)
    drawn = drawn_keyframes(load_planner(str(tiny_planner)), dataset, held_out_split(dataset, 0.1, "")[1],
                            DRAWN_VAL_CLIPS, 1)  # the trainer's --seed (0) + 1
    assert read_drawn(load_idm(str(out))[0], drawn, "cpu") == metrics["final"]["drawn"]
    assert metrics["drawn_at_start"]["keyframes"] == 256 * 4
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["planner"] == str(tiny_planner) and config["training"]["init_from"] == str(idm)
    assert config["normalization"] == json.loads((idm / "config.json").read_text())["normalization"]


@pytest.mark.parametrize("extra, fragment", [
    (["--head", "delta"], "--planner needs --head pose"),
    (["--drawn-clips", "0"], "--drawn-clips must be a positive number"),
    (["--modalities", "rgb", "--init-from", "default"], "--init-from default has another architecture"),
])
def test_bad_planner_reading_options_are_refused_before_any_work(tiny_planner, data, tmp_path, extra, fragment):
    out = tmp_path / "run"
    run = vid2act("train", "idm", "--data", data, "--out", out, "--steps", 4, *TINY, "--planner", tiny_planner, *extra)
    assert run.code == 2 and fragment in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.slow
def test_resume_after_kill_9_matches_an_uninterrupted_run(data, tmp_path):
    steps = 120
    args = ["train", "idm", "--data", str(data), "--steps", str(steps), *TINY]
    straight = vid2act(*args, "--out", tmp_path / "straight")
    assert straight.code == 0, straight.stderr

    out = tmp_path / "killed"
    kill_9_during_training(args, out, after_step=30)
    resumed = vid2act(*args, "--out", out, "--resume")
    assert resumed.code == 0 and "resuming" in resumed.stderr, resumed.stderr
    a, b = load_file(str(tmp_path / "straight" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


@pytest.mark.slow
def test_two_process_accelerate_run(data, tmp_path):
    out = tmp_path / "ddp"
    run_two_processes(["train", "idm", "--data", str(data), "--out", str(out), "--steps", "20", *TINY])
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["processes"] == 2
    from vid2act.idm.model import load_idm
    load_idm(str(out))


def test_default_names_the_shipped_idm(rollout, tmp_path):
    run = vid2act("translate", rollout / "rollout", "--out", "-")
    assert run.code == 0, run.stderr
    assert run.json()["source"]["idm"].endswith("idm-rgbd")


@pytest.mark.slow
def test_shipped_idm_reads_oracle_rollouts_well_enough_to_succeed():
    from vid2act.idm.model import load_idm, predict_actions
    from vid2act.sim.env import SceneWorld, make_scene
    from vid2act.sim.tasks import TASKS
    from vid2act.spec import ACTION_SPACE
    model, _ = load_idm("default")
    wins, total = 0, 0
    for task in TASKS:
        for seed in (1_000_101, 1_000_102, 1_000_103):
            scene = make_scene(task, seed, "test")
            with SceneWorld(scene) as env:
                oracle = env.run_oracle()
            actions = np.clip(predict_actions(model, oracle.rgb, oracle.depth), ACTION_SPACE["low"],
                              ACTION_SPACE["high"])
            with SceneWorld(scene) as env:
                wins += env.run(actions).success
            total += 1
    assert wins >= total - 2, f"{wins}/{total}"


def test_the_gripper_acts_at_the_lower_of_two_keyframes():
    """Down to a grasp: move, then close. A release drawn with the arm already rising: open where it is, then
    rise (rising first would carry the object away, and the next chunk would draw the release again)."""
    from vid2act.idm.model import GRIPPER_SETTLE_FRAMES as SETTLE
    from vid2act.idm.model import expand_keyframes
    points = np.array([[0.5, 0.0, 0.10], [0.5, 0.0, 0.02], [0.5, 0.0, 0.02], [0.5, 0.1, 0.10], [0.5, 0.1, 0.20]])
    actions, heading = expand_keyframes(points, np.array([0.0, 1.0, 1.0, 1.0, 0.0]), stride=4)
    assert len(actions) == 4 * 4 + 2 * SETTLE
    grasp = actions[:4 + SETTLE]
    assert np.allclose(grasp[:4, :3], [0.0, 0.0, -0.02]) and (grasp[:4, 3] == 0).all()  # down open, then close
    assert (grasp[4:, :3] == 0).all() and (grasp[4:, 3] == 1).all()
    release = actions[-(SETTLE + 4):]  # keyframe 4 is higher than keyframe 3: open at 3, then rise open
    assert (release[:SETTLE, :3] == 0).all() and (release[:, 3] == 0).all()
    assert np.allclose(release[SETTLE:, :3], [0.0, 0.0, 0.025])
    assert np.allclose(points[0] + actions[:, :3].sum(0), points[-1])
    assert heading.tolist() == [1] * (4 + SETTLE) + [2] * 4 + [3] * 4 + [3] * SETTLE + [4] * 4


def test_windows_are_held_at_the_episode_ends():
    """The one clamp every trainer and the IDM's reader use: numpy and torch alike, per episode."""
    import torch

    from vid2act.data.dataset import window
    from vid2act.training import FrameStore
    assert window(np.arange(4)[:, None], np.array([[-1, 0, 1]]), 4).tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3],
                                                                                  [2, 3, 3]]
    store = FrameStore([np.zeros((3, 2, 2, 3), np.uint8), np.ones((5, 2, 2, 3), np.uint8)], None)
    rows = store.rows(torch.tensor([0, 1, 1]), torch.tensor([2, 0, 3]), 2 * torch.arange(3))
    assert rows.tolist() == [[2, 2, 2], [3, 5, 7], [6, 7, 7]]  # episode 1 starts at row 3, ends at row 7
    assert store.depth_normalization() == {"mean": 0.0, "std": 1.0}


def test_leftovers_of_a_killed_checkpoint_write_are_recovered(tmp_path):
    """kill -9 between the two renames of a checkpoint replacement leaves only the set-aside old one: it is
    put back; a half-staged new one is deleted; a set-aside old one whose replacement landed is deleted."""
    from vid2act.outputs import recover_leftovers
    (tmp_path / ".checkpoint.ab12cd34.tmp.old").mkdir()
    (tmp_path / ".checkpoint.ab12cd34.tmp.old" / "state.json").write_text("{}")
    (tmp_path / ".checkpoint.zz99yy88.tmp").mkdir()
    (tmp_path / "curves.json").write_text("{}")
    (tmp_path / ".curves.json.qq11ww22.tmp.old").write_text("old")
    assert len(recover_leftovers(tmp_path)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "curves.json"]
    assert (tmp_path / "checkpoint" / "state.json").read_text() == "{}"
    assert (tmp_path / "curves.json").read_text() == "{}"
