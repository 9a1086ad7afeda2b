"""The command line as a user meets it: outputs, stdout/stderr, exit codes and the messages on bad input."""
import json

import numpy as np
import imageio.v3 as iio
import pytest

from conftest import vid2act_process


def assert_clean_error(run, code: int, *fragments: str):
    assert run.code == code, (run.code, run.stderr)
    assert "please report it" not in run.stderr and run.stdout == ""
    for fragment in fragments:
        assert fragment in run.stderr, run.stderr


def test_version_help_and_no_args():
    assert vid2act_process("--version").stdout.startswith("vid2act ")
    for command in ("scene", "oracle", "execute", "collect", "tasks"):
        run = vid2act_process(command, "-h")
        assert run.code == 0 and "Usage" in run.stdout
    assert "Usage" in vid2act_process().stdout + vid2act_process().stderr


def _commands(group, path=()):
    """Every command of the click tree: (its words, the click command)."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer may vendor its own click)
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_cli_default_is_its_config_default():
    """The options of a command built from a config dataclass are its fields, with the same defaults: the CLI
    and the Python API train and evaluate the same runs."""
    import dataclasses
    import typing

    import typer

    from vid2act.cli.common import parse_list
    from vid2act.cli.main import app
    from vid2act.configs import BCTrainConfig, EvalConfig, IDMTrainConfig, VideoTrainConfig
    from vid2act.data.collect import CollectConfig

    built = {}
    for words, command in _commands(typer.main.get_command(app)):
        config_class = getattr(command.callback, "config_class", None)
        if config_class is None:
            continue
        built[words] = config_class
        params = {p.name: p for p in command.params}
        hints = typing.get_type_hints(config_class)
        for f in dataclasses.fields(config_class):
            assert f.name in params, (words, f.name)
            option = params[f.name]
            assert option.opts[0] == "--" + f.name.replace("_", "-") and option.help, (words, f.name)
            if f.default is dataclasses.MISSING:
                assert option.required, (words, f.name)
                continue
            cli = option.default
            if typing.get_origin(hints[f.name]) is tuple:
                cli = parse_list(cli, f, typing.get_args(hints[f.name])[0])
            assert cli == f.default and type(cli) is type(f.default), (words, f.name, cli, f.default)
    assert built == {("train", "idm"): IDMTrainConfig, ("train", "video"): VideoTrainConfig,
                     ("train", "bc"): BCTrainConfig, ("eval",): EvalConfig}
    # collect takes its tasks and image size in its own forms; its other options match CollectConfig too
    collect = {p.name: p.default for p in dict(_commands(typer.main.get_command(app)))[("collect",)].params}
    defaults = {f.name: f.default for f in dataclasses.fields(CollectConfig)}
    assert collect["image_size"] == "x".join(map(str, defaults["image_size"]))
    assert all(collect[k] == defaults[k] for k in ("split", "seed", "previews"))


def test_tasks_json_lists_the_suite():
    run = vid2act_process("tasks", "--json")
    suite = run.json()
    assert {f["name"] for f in suite} >= {"reach", "push", "pick_place", "stack"}
    for family in suite:
        assert {"name", "templates", "colors", "heldout", "seeds"} <= set(family)
        assert set(family["seeds"]) >= {"train", "test"}


def test_scene_writes_the_three_files(scene_dir):
    scene = json.loads((scene_dir / "scene.json").read_text())
    assert scene["format"] == "vid2act.scene/1" and scene["task"] == "push" and scene["seed"] == 1_000_001
    assert {"instruction", "state", "camera", "image_size", "action_space"} <= set(scene)
    assert iio.imread(scene_dir / "start.png").shape == (48, 64, 3)
    assert np.load(scene_dir / "start_depth.npy").shape == (48, 64)


def test_scene_start_image_is_identical_across_processes(tmp_path, scene_dir):
    run = vid2act_process("scene", "--task", "push", "--seed", 1_000_001, "--out", tmp_path / "again")
    assert run.stdout.strip() == str(tmp_path / "again")
    assert (tmp_path / "again" / "start.png").read_bytes() == (scene_dir / "start.png").read_bytes()
    assert (tmp_path / "again" / "scene.json").read_bytes() == (scene_dir / "scene.json").read_bytes()


def test_oracle_then_execute_succeeds(scene_dir, oracle_actions, tmp_path):
    actions = json.loads(oracle_actions.read_text())
    assert actions["format"] == "vid2act.actions/1" and actions["action_space"]["frame_interval"] > 0
    assert len(actions["actions"][0]) == len(actions["action_space"]["names"])
    run = vid2act_process("execute", oracle_actions, "--scene", scene_dir, "--out", tmp_path / "rollout")
    result = run.json()
    assert run.code == 0 and result["success"] is True and result["steps"] == len(actions["actions"])
    assert json.loads((tmp_path / "rollout" / "result.json").read_text()) == result
    frames = np.load(tmp_path / "rollout" / "frames.npz")
    assert frames["rgb"].shape == (len(actions["actions"]) + 1, 48, 64, 3) and frames["rgb"].dtype == np.uint8
    assert frames["depth"].shape == frames["rgb"].shape[:3]
    video = iio.imread(tmp_path / "rollout" / "rollout.mp4", plugin="FFMPEG")
    assert video.shape == frames["rgb"].shape
    # The rollout starts from exactly the scene's start image.
    assert np.array_equal(frames["rgb"][0], iio.imread(scene_dir / "start.png"))


def test_stdin_and_stdout_pipes(scene_dir, tmp_path):
    actions = vid2act_process("oracle", scene_dir, "--out", "-")
    assert actions.code == 0 and json.loads(actions.stdout)["format"] == "vid2act.actions/1"
    run = vid2act_process("execute", "-", "--scene", scene_dir, "--out", tmp_path / "r", stdin=actions.stdout)
    assert run.code == 0 and run.json()["success"]


# --- bad input: one clear line, the right exit code, nothing written -------------------------------------
@pytest.mark.parametrize("args,fragment", [
    (["--task", "fly", "--seed", 1_000_000], "unknown task 'fly'"),
    (["--task", "push", "--seed", 1_000_000, "--split", "valid"], "unknown split 'valid'"),
    (["--task", "push", "--seed", 3], "outside the test split's seed range"),
    (["--task", "push", "--seed", 1_000_000, "--split", "train"], "outside the train split's seed range"),
])
def test_scene_bad_usage(tmp_path, args, fragment):
    assert_clean_error(vid2act_process("scene", *args, "--out", tmp_path / "s"), 2, fragment)
    assert not (tmp_path / "s").exists()


def test_existing_output_needs_force(scene_dir, oracle_actions, tmp_path):
    out = tmp_path / "rollout"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_clean_error(vid2act_process("execute", oracle_actions, "--scene", scene_dir, "--out", out), 2, "--force")
    assert (out / "keep.txt").read_text() == "mine"
    assert_clean_error(vid2act_process("oracle", scene_dir, "--out", oracle_actions), 2, "already exists")
    assert vid2act_process("execute", oracle_actions, "--scene", scene_dir, "--out", out, "--force").code == 0
    assert not (out / "keep.txt").exists() and (out / "result.json").exists()
    assert not list(tmp_path.glob(".*tmp"))


def broken_scene(tmp_path, scene_dir, edit):
    folder = tmp_path / "scene"
    folder.mkdir()
    text = (scene_dir / "scene.json").read_text()
    (folder / "scene.json").write_text(edit(text))
    return folder


@pytest.mark.parametrize("edit,fragment", [
    (lambda text: text[: len(text) // 2], "not valid JSON"),
    (lambda text: text.replace("vid2act.scene/1", "vid2act.scene/9"), "vid2act.scene/9"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "state"}), "'state'"),
    (lambda text: text.replace('"task": "push"', '"task": "juggle"'), "unknown task 'juggle'"),
])
def test_corrupt_scene_is_refused(tmp_path, scene_dir, oracle_actions, edit, fragment):
    folder = broken_scene(tmp_path, scene_dir, edit)
    assert_clean_error(vid2act_process("execute", oracle_actions, "--scene", folder, "--out", tmp_path / "r"), 1,
                       fragment)
    assert_clean_error(vid2act_process("oracle", folder, "--out", tmp_path / "a.json"), 1, fragment)
    assert not (tmp_path / "r").exists() and not (tmp_path / "a.json").exists()


def test_missing_scene_is_refused(tmp_path, oracle_actions):
    (tmp_path / "empty").mkdir()
    assert_clean_error(vid2act_process("oracle", tmp_path / "empty", "--out", tmp_path / "a.json"), 1, "no scene.json")
    assert_clean_error(vid2act_process("execute", oracle_actions, "--scene", tmp_path / "nowhere",
                                       "--out", tmp_path / "r"), 1, "does not exist")


def write_actions(tmp_path, oracle_actions, edit) -> str:
    document = json.loads(oracle_actions.read_text())
    edit(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))  # json.dumps writes NaN and Infinity as Python's json reads them
    return str(path)


@pytest.mark.parametrize("edit,fragment", [
    (lambda d: d["actions"][3].append(0.0), "action 3 has 5 values; expected 4"),
    (lambda d: d["actions"][2].__setitem__(1, float("nan")), "action 2 dy is nan"),
    (lambda d: d["actions"][0].__setitem__(0, float("inf")), "action 0 dx is inf"),
    (lambda d: d["actions"][5].__setitem__(2, 0.5), "action 5 dz = 0.5 is outside its bounds"),
    (lambda d: d["actions"][1].__setitem__(3, -1), "action 1 gripper = -1 is outside its bounds"),
    (lambda d: d.__setitem__("actions", []), "holds no actions"),
    (lambda d: d.__setitem__("format", "lerobot"), "'lerobot'"),
    (lambda d: d["action_space"].__setitem__("names", ["x", "y", "z"]), "action space names"),
])
def test_bad_actions_are_refused(tmp_path, scene_dir, oracle_actions, edit, fragment):
    path = write_actions(tmp_path, oracle_actions, edit)
    assert_clean_error(vid2act_process("execute", path, "--scene", scene_dir, "--out", tmp_path / "r"), 1, fragment)
    assert not (tmp_path / "r").exists()


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    run = vid2act_process("oracle", tmp_path / "empty", "--out", tmp_path / "a.json",
                  env={**__import__("os").environ, "VID2ACT_DEBUG": "1"})
    assert run.code == 1 and "Traceback" in run.stderr
