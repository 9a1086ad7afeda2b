"""The evaluation harness, replanning from real frames, execute's stop-and-continue, and the demo's wiring."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import vid2act, vid2act_process
from vid2act.eval import wilson


@pytest.mark.parametrize("wins, n, low, high", [
    (5, 10, 0.2366, 0.7634),  # the textbook example (Wilson 1927; Newcombe 1998, method 3)
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),  # Newcombe 1998, table I
])
def test_wilson_interval_matches_published_values(wins, n, low, high):
    a, b = wilson(wins, n)
    assert a == pytest.approx(low, abs=1e-4) and b == pytest.approx(high, abs=1e-4)


def test_oracle_eval_writes_every_file_and_honest_statistics(tmp_path):
    run = vid2act("eval", "--policy", "oracle", "--tasks", "reach,push", "--episodes", 2, "--out", tmp_path / "ev")
    assert run.code == 0, run.stderr
    info = json.loads((tmp_path / "ev" / "eval_info.json").read_text())
    assert info["format"] == "vid2act.eval/2" and len(info["episodes"]) == 4
    assert list(info["aggregates"]) == ["reach/test", "push/test", "all/test"]
    overall = info["aggregates"]["all/test"]
    wins = sum(r["success"] for r in info["episodes"])
    assert overall["successes"] == wins and overall["wilson95"] == [round(v, 4) for v in wilson(wins, 4)]
    assert overall["solved_at_some_step"] == sum(r["solved_at"] is not None for r in info["episodes"]) >= wins
    assert all(0 < r["solved_at"] <= r["steps"] for r in info["episodes"] if r["success"])
    assert run.json()["aggregates"] == info["aggregates"]
    for record in info["episodes"]:
        folder = tmp_path / "ev" / record["folder"]
        for part in ("scene/scene.json", "scene/start.png", "actions.json", "rollout/frames.npz",
                     "rollout/rollout.mp4", "result.json"):
            assert (folder / part).exists(), part
        with np.load(folder / "rollout" / "frames.npz") as frames:
            assert len(frames["rgb"]) == record["steps"] + 1
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "| reach | test |" in report and "solved at some step" in report and "plan_vs_reality.mp4" in report
    assert "vid2act eval --policy oracle" in report  # the command that reproduces it
    page = (tmp_path / "ev" / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count('src="data:image/png;base64,') == 1  # the chart
    assert page.count('src="data:image/gif;base64,') == 2  # one plan-beside-reality GIF per family
    assert "<td>reach</td><td>test</td>" in page and "--episodes 2" in page and "execute s" in page


def test_replanning_replans_from_the_real_frame(tiny_planner, tmp_path):
    run = vid2act("eval", "--policy", "plan", "--planner", tiny_planner, "--tasks", "reach", "--episodes", 1,
                  "--replan-every", 4, "--steps", 1, "--out", tmp_path / "ev")
    assert run.code == 0, run.stderr
    record = json.loads((tmp_path / "ev" / "eval_info.json").read_text())["episodes"][0]
    folder = tmp_path / "ev" / record["folder"]
    plans = sorted((folder / "plans").iterdir())
    assert record["plans"] == len(plans) >= 2 and record["replans"] == record["plans"] - 1
    with np.load(folder / "rollout" / "frames.npz") as rollout:
        real = rollout["rgb"]
    from vid2act.idm.model import GRIPPER_SETTLE_FRAMES
    executed, previous = 0, None
    for plan in plans:
        document = json.loads((plan / "plan.json").read_text())
        if previous is not None:  # 4 actions, or up to the end of a gripper change's still frames; none if still
            ran = document["after_actions"] - previous["after_actions"]
            assert ran == 0 if previous["still"] else 4 <= ran <= 4 + GRIPPER_SETTLE_FRAMES
        executed, previous = document["after_actions"], document
        with np.load(plan / "frames.npz") as frames:
            # each chunk starts from the frame the camera saw when it was drawn, not from the previous plan
            assert np.array_equal(frames["rgb"][0], real[executed])
            assert len(frames["rgb"]) == 4 + 1  # the tiny planner's chunk: 4 keyframes after the frame
    assert json.loads((plans[0] / "plan.json").read_text())["after_actions"] == 0
    assert executed <= record["steps"] <= record["time_limit"]
    assert record["still_plans"] == sum(json.loads((p / "plan.json").read_text())["still"] for p in plans)
    assert record["ended_by"] in ("time_limit", "policy_done")


@pytest.mark.slow
def test_closed_loop_episodes_are_deterministic(tiny_planner, tmp_path):
    for name in ("a", "b"):
        cli = vid2act_process if name == "a" else vid2act  # the same episode in another interpreter, too
        run = cli("eval", "--policy", "plan", "--planner", tiny_planner, "--tasks", "push", "--episodes", 1,
                  "--replan-every", 4, "--steps", 1, "--out", tmp_path / name)
        assert run.code == 0, run.stderr
    a, b = (json.loads((tmp_path / n / "eval_info.json").read_text())["episodes"][0] for n in ("a", "b"))
    actions = [json.loads((tmp_path / n / a["folder"] / "actions.json").read_text())["actions"] for n in ("a", "b")]
    assert actions[0] == actions[1] and a["success"] == b["success"] and a["plans"] == b["plans"]


def test_open_loop_draws_one_whole_plan(tiny_planner, tmp_path):
    run = vid2act("eval", "--planner", tiny_planner, "--tasks", "reach", "--episodes", 1, "--steps", 1,
                  "--replan-every", 0, "--out", tmp_path / "ev")
    assert run.code == 0, run.stderr
    record = json.loads((tmp_path / "ev" / "eval_info.json").read_text())["episodes"][0]
    assert record["plans"] == 1 and record["replans"] == 0 and record["ended_by"] in ("policy_done", "time_limit")
    planner = json.loads((tiny_planner / "planner.json").read_text())
    with np.load(tmp_path / "ev" / record["folder"] / "plans" / "00" / "frames.npz") as frames:
        assert len(frames["rgb"]) == planner["horizon"] + 1
    plan = json.loads((tmp_path / "ev" / record["folder"] / "plans" / "00" / "plan.json").read_text())
    assert Path(plan["scene"]) == tmp_path / "ev" / record["folder"] / "scene" and Path(plan["scene"]).is_dir()


@pytest.mark.parametrize("name, planner, solves", [
    ("oracle", None, True), ("gt-video", None, True), ("sketch", "default", True), ("random", None, False),
    ("plan", "tiny", None)])  # a planner trained six steps draws nonsense: no outcome to expect, bounds still hold
def test_the_policy_interface_drives_every_policy_to_its_known_outcome(name, planner, solves, tiny_planner):
    """reset(scene) then act(observation) until a policy has nothing more to do: every action it returns lies in
    the action space (checked, never clipped here), and on this reach scene the oracle, the oracle's video read
    by the shipped IDM and the shipped planner's sketch succeed, the random policy does not."""
    from vid2act.policies import load_models, make_policy
    from vid2act.sim.env import SceneWorld, Observation, make_scene
    from vid2act.spec import check_in_space, time_limit
    scene = make_scene("reach", 1_000_003, "test")
    models = load_models(name, planner=str(tiny_planner) if planner == "tiny" else "default")
    policy = make_policy(name, models, steps=1 if planner == "tiny" else 4, replan_every=4)
    with SceneWorld(scene) as env:
        policy.reset(scene)
        rgb, depth = env.world.render()
        steps, calls = 0, 0
        while steps < time_limit("reach") and calls < 50:
            actions = check_in_space(policy.act(Observation(rgb, depth, steps, env.world.robot.ee_target.copy())),
                                     name)
            calls += 1
            if len(actions) == 0:
                break
            rollout = env.run(actions[: time_limit("reach") - steps])
            steps += len(rollout.actions)
            rgb, depth = rollout.rgb[-1], rollout.depth[-1]
        assert steps > 0
        if solves is not None:
            assert env.is_success() == solves
    assert policy.stats()["clipped"] >= 0 and (name != "random" or steps == time_limit("reach"))


def test_a_policy_holds_its_own_actions_in_the_action_space_and_counts_what_it_clipped():
    from vid2act.policies import Policy
    from vid2act.sim.env import Observation

    class Overeager(Policy):
        def propose(self, observation):
            return np.array([[0.0325, 0.0, -0.05, 1.2], [0.01, 0.0, 0.0, 1.0]])

    policy = Overeager()
    policy.reset({})
    actions = policy.act(Observation(np.zeros((48, 64, 3), np.uint8), np.ones((48, 64), np.float32), 0))
    assert actions.tolist() == [[0.03, 0.0, -0.03, 1.0], [0.01, 0.0, 0.0, 1.0]]
    assert policy.stats() == {"clipped": 3}


def test_eval_refuses_a_policy_that_returns_an_action_outside_the_space():
    from vid2act.errors import Vid2ActError
    from vid2act.spec import check_in_space
    with pytest.raises(Vid2ActError, match=r"policy mine returned action 1 with dy = 0.0325, outside its bounds "
                                           r"\[-0.03, 0.03\]"):
        check_in_space(np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0325, 0.0, 0.0]]), "policy mine")


def test_replanning_never_cuts_the_still_frames_after_a_gripper_change():
    """A cut at or inside the still frames after a gripper change moves to their end; elsewhere it stays."""
    from vid2act.idm.model import GRIPPER_SETTLE_FRAMES as SETTLE
    from vid2act.idm.model import expand_keyframes
    from vid2act.policies import executed
    points = np.array([[0.5, 0.0, 0.10], [0.5, 0.0, 0.02], [0.5, 0.0, 0.10], [0.5, 0.1, 0.10], [0.6, 0.1, 0.10]])
    actions, _ = expand_keyframes(points, np.array([0.0, 1.0, 1.0, 1.0, 1.0]), stride=4)  # close after 4 moves
    assert [executed(actions, n) for n in (3, 4, 6, 4 + SETTLE, 4 + SETTLE + 2)] == [3, 4 + SETTLE, 4 + SETTLE,
                                                                                   4 + SETTLE, 4 + SETTLE + 2]
    assert executed(actions, 100) == len(actions)
    still = np.zeros((16, 4))
    assert executed(still, 8) == 8


def test_plan_and_sketch_move_from_the_commanded_grasp_point(tiny_planner):
    """Given the commanded grasp point, a chunk's first move heads from there to its first keyframe: moving the
    known start by d changes the first keyframe's moves by -d / stride and nothing after; without it the
    policy reads the start off the frame."""
    from vid2act.policies import load_models, make_policy
    from vid2act.sim.env import Observation
    from vid2act.sim.env import SceneWorld, make_scene
    scene = make_scene("push", 1_000_001, "test")
    with SceneWorld(scene) as env:
        rgb, depth = env.world.render()
        start = env.world.robot.ee_target.copy()
    d = np.array([0.01, -0.02, 0.004])
    for name in ("plan", "sketch"):
        policy = make_policy(name, load_models(name, planner=str(tiny_planner)), steps=1, replan_every=8)
        stride = policy.pipe.shape.stride
        chunks = []
        for known in (start, start + d, None):
            policy.reset(scene)
            chunks.append(policy.propose(Observation(rgb, depth, 0, known)))  # before act holds it to the bounds
        first, moved, read = chunks
        assert np.allclose(moved[:stride, :3] - first[:stride, :3], -d / stride, atol=1e-9), name
        assert np.allclose(moved[stride:], first[stride:]) and np.allclose(moved[:, 3], first[:, 3]), name
        assert not np.allclose(read[:stride, :3], first[:stride, :3]), name  # read off the frame: another start


def test_best_of_executes_the_drawing_closest_to_its_sketch(tiny_planner):
    """With best_of K the plan policy draws K chunks at once and executes the one whose keyframes the IDM reads
    closest to the sketch; best_of 1 executes the one drawn."""
    import torch

    from vid2act.idm.model import expand_keyframes, keyframe_poses
    from vid2act.policies import load_models, make_policy, sketch_disagreement
    from vid2act.sim.env import Observation
    from vid2act.sim.env import SceneWorld, make_scene
    from vid2act.camera import Camera
    from vid2act.video.sketch import to_world
    scene = make_scene("push", 1_000_002, "test")
    with SceneWorld(scene) as env:
        rgb, depth = env.world.render()
        start = env.world.robot.ee_target.copy()
    models = load_models("plan", planner=str(tiny_planner))
    pipe, idm = models.planner, models.idm
    points = pipe.ground(rgb, depth, scene["instruction"])
    plan = pipe(rgb, scene["instruction"], depth=depth, num_inference_steps=1, num_videos_per_prompt=3,
                generator=torch.Generator().manual_seed(scene["seed"] * 1000), points=points)
    camera, shape = Camera.from_json(scene["camera"]), pipe.shape
    candidates, scores = [], []
    for i in range(3):
        read, grips = keyframe_poses(idm, plan.rgb[i], plan.depth[i])
        sketched = to_world(plan.marks[i].astype(np.float64), camera, shape.image_size, shape.plan_size)
        scores.append(sketch_disagreement(read[1:], grips[1:], sketched, plan.closed[i]))
        read[0] = start
        candidates.append(expand_keyframes(read, grips, shape.stride)[0])
    assert len({round(x, 9) for x in scores}) == 3  # the noise made three different drawings
    for best_of, chosen in ((3, int(np.argmin(scores))), (1, 0)):
        policy = make_policy("plan", models, steps=1, replan_every=64, best_of=best_of)
        policy.reset(scene)
        actions = policy.propose(Observation(rgb, depth, 0, start))
        # best_of 1 draws the first of the same noises alone: batched arithmetic differs in the last digits
        assert np.allclose(actions, candidates[chosen][: len(actions)], atol=1e-5), best_of
        assert not np.allclose(actions, candidates[(chosen + 1) % 3][: len(actions)], atol=1e-5), best_of


def test_sketch_disagreement_adds_distance_and_gripper():
    from vid2act.policies import GRIPPER_DISAGREEMENT_M, sketch_disagreement
    sketched = np.zeros((4, 3))
    read = sketched + np.array([0.03, 0.0, 0.04])  # 5 cm off at every keyframe
    closed = np.array([False, False, True, True])
    assert sketch_disagreement(read, closed.astype(float), sketched, closed) == pytest.approx(0.05)
    assert sketch_disagreement(read, np.zeros(4), sketched, closed) == pytest.approx(0.05 + 2 * GRIPPER_DISAGREEMENT_M)


@pytest.mark.parametrize("args, code, fragment", [
    (["--policy", "telepathy"], 2, "unknown policy 'telepathy'"),
    (["--best-of", "0"], 2, "--best-of must lie between 1 and 64 (got 0)"),
    (["--replan-every", "-1"], 2, "--replan-every must be 0"),
    (["--guidance", "nan"], 2, "--guidance must be a number between 0 and 100"),
    (["--steps", "0"], 2, "--steps must lie between 1 and 1000"),
    (["--planner", "no/such/planner"], 1, "no model at 'no/such/planner'"),
    (["--idm", "no-such-idm", "--policy", "gt-video"], 1, "no model at 'no-such-idm'"),
    (["--planner", "no/such/planner", "--policy", "sketch"], 1, "no model at 'no/such/planner'"),
    (["--tasks", "juggle"], 2, "unknown task 'juggle'"),
    (["--split", "train"], 2, "--split must be test or heldout"),
    (["--episodes", "0"], 2, "--episodes must be at least 1"),
])
def test_bad_eval_options(tmp_path, args, code, fragment):
    run = vid2act("eval", *args, "--out", tmp_path / "ev")
    assert run.code == code, run.stderr
    assert fragment in run.stderr and "please report it" not in run.stderr
    assert not (tmp_path / "ev").exists()


def test_a_task_solved_and_then_undone_fails_but_says_when_it_was_solved(tmp_path):
    scene, actions = tmp_path / "scene", tmp_path / "actions.json"
    assert vid2act("scene", "--task", "reach", "--seed", 1_000_003, "--out", scene).code == 0
    assert vid2act("oracle", scene, "--out", actions).code == 0
    solved = vid2act("execute", actions, "--scene", scene, "--out", tmp_path / "solved").json()
    assert solved["success"] and 0 < solved["solved_at"] <= solved["steps"]
    document = json.loads(actions.read_text())
    gripper = document["actions"][-1][3]
    document["actions"] += [[0.0, 0.0, 0.03, gripper]] * 8  # then lift the grasp point 24 cm off the goal
    actions.write_text(json.dumps(document))
    undone = vid2act("execute", actions, "--scene", scene, "--out", tmp_path / "undone").json()
    assert not undone["success"] and undone["solved_at"] == solved["solved_at"]
    assert undone["steps"] == solved["steps"] + 8


def test_execute_stops_after_k_and_continues_from_the_reached_scene(scene_dir, oracle_actions, tmp_path):
    run = vid2act("execute", oracle_actions, "--scene", scene_dir, "--out", tmp_path / "part", "--max-steps", 10,
                  "--next-scene", tmp_path / "next")
    assert run.code == 0, run.stderr
    assert run.json()["steps"] == 10
    import imageio.v3 as iio
    with np.load(tmp_path / "part" / "frames.npz") as frames:
        assert np.array_equal(iio.imread(tmp_path / "next" / "start.png"), frames["rgb"][-1])
        assert np.allclose(np.load(tmp_path / "next" / "start_depth.npy"), frames["depth"][-1], atol=1e-2)
    rest = json.loads(oracle_actions.read_text())
    rest["actions"] = rest["actions"][10:]
    (tmp_path / "rest.json").write_text(json.dumps(rest))
    run = vid2act("execute", tmp_path / "rest.json", "--scene", tmp_path / "next", "--out", tmp_path / "rest")
    assert run.code == 0, run.stderr
    result = run.json()
    assert result["success"] and result["steps_since_start"] == len(json.loads(oracle_actions.read_text())["actions"])
    bad = vid2act("execute", oracle_actions, "--scene", scene_dir, "--out", tmp_path / "x", "--max-steps", -1)
    assert bad.code == 2 and "--max-steps must be 0 or more" in bad.stderr


def test_bc_trains_and_runs_closed_loop(demos, tmp_path):
    run = vid2act("train", "bc", "--data", demos, "--out", tmp_path / "bc", "--steps", 20, "--batch-size", 16,
                  "--width", 8)
    assert run.code == 0, run.stderr
    config = json.loads((tmp_path / "bc" / "config.json").read_text())
    assert config["type"] == "vid2act.bc/1" and config["training"]["steps"] == 20
    run = vid2act("eval", "--policy", "bc", "--bc", tmp_path / "bc", "--tasks", "reach", "--episodes", 1,
                  "--out", tmp_path / "ev")
    assert run.code == 0, run.stderr
    record = json.loads((tmp_path / "ev" / "eval_info.json").read_text())["episodes"][0]
    assert record["steps"] == record["time_limit"]  # BC never says it is done: it acts until the time limit
    (tmp_path / "bc" / "model.safetensors").write_bytes(b"junk")
    run = vid2act("eval", "--policy", "bc", "--bc", tmp_path / "bc", "--out", tmp_path / "ev2")
    assert run.code == 1 and "corrupt" in run.stderr and not (tmp_path / "ev2").exists()


def test_bc_with_the_planners_grounding_reads_its_heatmaps(demos, tiny_planner, tmp_path):
    run = vid2act("train", "bc", "--data", demos, "--out", tmp_path / "bc", "--steps", 5, "--batch-size", 8,
                  "--width", 8, "--grounding-from", tiny_planner)
    assert run.code == 0, run.stderr
    config = json.loads((tmp_path / "bc" / "config.json").read_text())
    assert config["architecture"]["grounded"] is True
    assert (tmp_path / "bc" / "grounding" / "model.safetensors").exists()
    from vid2act.bc import load_bc
    from vid2act.sim.env import SceneWorld, make_scene
    policy = load_bc(str(tmp_path / "bc"))
    scene = make_scene("push", 1_000_003, "test")
    with SceneWorld(scene) as env:
        rgb, depth = env.world.render()
    points = policy.grounder.locate(rgb, depth, scene["instruction"])
    assert points.shape == (2, 2)
    from vid2act.video.pipeline import load_planner
    assert np.allclose(points.numpy(), load_planner(str(tiny_planner)).ground(rgb, depth, scene["instruction"]))
    run = vid2act("eval", "--policy", "bc", "--bc", tmp_path / "bc", "--tasks", "push", "--episodes", 1,
                  "--out", tmp_path / "ev")
    assert run.code == 0, run.stderr


def test_random_policy_acts_until_the_time_limit(tmp_path):
    run = vid2act("eval", "--policy", "random", "--tasks", "reach", "--episodes", 2, "--out", tmp_path / "ev")
    assert run.code == 0, run.stderr
    records = json.loads((tmp_path / "ev" / "eval_info.json").read_text())["episodes"]
    assert all(r["steps"] == r["time_limit"] for r in records)
    actions = [json.loads((tmp_path / "ev" / r["folder"] / "actions.json").read_text())["actions"] for r in records]
    assert actions[0] != actions[1]  # each seed its own draw


@pytest.mark.slow
def test_two_workers_give_the_same_records_as_one(tmp_path):
    runs = [vid2act("eval", "--policy", "oracle", "--tasks", "reach", "--episodes", 2, "--workers", w,
                    "--out", tmp_path / f"w{w}") for w in (1, 2)]
    assert all(run.code == 0 for run in runs), runs[1].stderr
    one, two = (json.loads((tmp_path / f"w{w}" / "eval_info.json").read_text())["episodes"] for w in (1, 2))
    strip = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]
    assert strip(one) == strip(two)


@pytest.mark.parametrize("settings, fragment", [
    ({"replan_every": -3}, "replan_every must be 0 (open loop) or more (got -3)"),
    ({"steps": 0}, "--steps must lie between 1 and 1000 (got 0)"),
    ({"best_of": 0}, "best_of must lie between 1 and 64 (got 0)"),
    ({"guidance": float("nan")}, "--guidance must be a number"),
    ({"steps": 2.5}, "steps must be a whole number (got 2.5)"),
])
def test_load_policy_refuses_impossible_settings_before_loading_a_model(settings, fragment):
    from vid2act.errors import UsageError
    from vid2act.policies import load_policy
    with pytest.raises(UsageError) as refused:
        load_policy("plan", planner="no/such/planner", **settings)  # refused before the missing planner is looked up
    assert fragment in str(refused.value)


def test_a_missing_default_model_says_none_ships_and_how_to_make_one(monkeypatch, tmp_path):
    from vid2act import shipped
    from vid2act.errors import Vid2ActError
    monkeypatch.setitem(shipped.DEFAULTS, "bc", "bc-not-here")
    with pytest.raises(Vid2ActError) as refused:
        shipped.resolve("default", "bc")
    assert str(refused.value) == ("no behavior-cloning policy ships with this vid2act (the default would be "
                                  "models/bc-not-here); make one with `vid2act train bc --data DATA --out RUN` and "
                                  "give RUN instead of default")


def test_from_pretrained_of_a_file_is_one_clear_error(tmp_path):
    from vid2act.errors import Vid2ActError
    from vid2act.video.pipeline import VideoPlannerPipeline
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(Vid2ActError, match="model.safetensors is a file; a planner is the folder `vid2act train video` "
                                           "writes"):
        VideoPlannerPipeline.from_pretrained(tmp_path / "model.safetensors")
