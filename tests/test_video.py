"""The video planner: training outputs, the diffusers layout, save/load, determinism, plans that translate,
resume after kill -9, accelerate, and every bad input of `generate`."""
import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import kill_9_during_training, run_two_processes, vid2act, vid2act_process

from conftest import TINY_PLANNER as TINY


@pytest.fixture(scope="module")
def data(demos) -> Path:
    return demos


@pytest.fixture(scope="module")
def planner(tiny_planner) -> Path:
    return tiny_planner


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("video") / "scene"
    assert vid2act("scene", "--task", "pick_place", "--seed", 1_000_002, "--out", out).code == 0
    return out


def test_run_folder_is_a_diffusers_pipeline(planner):
    for part in ("model_index.json", "planner.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                 "scheduler/scheduler_config.json", "grounding/config.json", "grounding/model.safetensors",
                     "sketch/config.json", "sketch/model.safetensors",
                 "metrics.json", "checkpoint/state.json"):
        assert (planner / part).exists(), part
    index = json.loads((planner / "model_index.json").read_text())
    assert index["_class_name"] == "VideoPlannerPipeline" and index["unet"][1] == "UNet2DConditionModel"
    info = json.loads((planner / "planner.json").read_text())
    assert info["format"] == "vid2act.video/4" and info["stride"] == 4 and info["frame_interval"] == 48
    assert info["keyframes"] == 4 and info["horizon"] * info["stride"] >= info["dataset"]["longest_episode"] - 1
    grounding = json.loads((planner / "metrics.json").read_text())["grounding"]
    assert set(grounding["train"]) == {"reach", "push", "pick_place", "stack", "all"}
    for split in ("train", "validation"):  # (the tiny dataset holds out one push episode)
        assert all(np.isfinite(grounding[split]["all"][p]["cm_median"]) for p in ("object", "target"))
    assert info["training"]["steps"] == 6 and info["action_space"]["names"] == ["dx", "dy", "dz", "gripper"]
    unet = json.loads((planner / "unet" / "config.json").read_text())
    assert info["scale"] == 2 and info["image_size"] == [48, 64] and unet["sample_size"] == [24, 32]
    assert sorted(p.name for p in (planner / "snapshots").iterdir()) == ["step-000003", "step-000006"]
    assert sorted(p.name for p in (planner / "samples").iterdir()) == ["step-000003.mp4", "step-000006.mp4"]
    history = json.loads((planner / "metrics.json").read_text())["history"]
    assert [h["step"] for h in history] == [3, 6] and all(np.isfinite(h["psnr"]) for h in history)
    unet = json.loads((planner / "unet" / "config.json").read_text())
    # chunk, frame, the grounding's 2 heatmaps, the sketch's 2 marks and gripper plane per keyframe
    assert unet["in_channels"] == (4 + 1) * 4 + 2 + 3 * 4 and unet["out_channels"] == 4 * 4
    sketch = json.loads((planner / "metrics.json").read_text())["sketch"]
    assert set(sketch["train"]) == {"reach", "push", "pick_place", "stack", "all"}
    assert len(sketch["train"]["all"]["cm_median_per_keyframe"]) == 4
    assert json.loads((planner / "sketch" / "config.json").read_text())["type"] == "vid2act.sketch/1"


def test_pipeline_save_load_round_trip_and_from_pretrained(planner, scene, tmp_path):
    from vid2act.video.pipeline import VideoPlannerPipeline, load_planner
    image = iio.imread(scene / "start.png")
    depth = np.load(scene / "start_depth.npy")
    pipe = load_planner(str(planner))
    first = pipe(image, "pick up the red block", depth=depth, num_inference_steps=3,
                 generator=torch.Generator().manual_seed(1))
    pipe.save_pretrained(tmp_path / "copy")
    again = VideoPlannerPipeline.from_pretrained(tmp_path / "copy")  # diffusers' own loader
    second = again(image, "pick up the red block", depth=depth, num_inference_steps=3,
                   generator=torch.Generator().manual_seed(1))
    assert first.rgb.shape == (1, pipe.planner["keyframes"] + 1, 48, 64, 3)
    assert np.array_equal(first.rgb, second.rgb) and np.array_equal(first.depth, second.depth)
    assert np.array_equal(first.points, second.points) and first.points.shape == (2, 2)
    k = pipe.planner["keyframes"]  # the sketch the chunk was drawn to: two marks and the gripper per keyframe
    assert first.marks.shape == (1, k, 2, 2) and first.closed.shape == (1, k) and first.closed.dtype == bool
    assert np.array_equal(first.marks, second.marks) and np.array_equal(first.closed, second.closed)
    whole = again.rollout(image, "pick up the red block", depth=depth, num_inference_steps=1,
                          generator=torch.Generator().manual_seed(1))
    assert whole.rgb.shape == (1, pipe.planner["horizon"] + 1, 48, 64, 3)
    assert whole.marks.shape == (1, pipe.planner["horizon"], 2, 2)
    assert np.array_equal(first.rgb[0, 0], image)  # the plan starts at the real start frame


def test_generate_writes_a_plan_that_translates_and_executes(planner, scene, tmp_path):
    run = vid2act("generate", "--planner", planner, "--scene", scene, "--out", tmp_path / "plan", "--steps", 2)
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == str(tmp_path / "plan")
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    instruction = json.loads((scene / "scene.json").read_text())["instruction"]
    assert plan["format"] == "vid2act.plan/2" and plan["prompt"] == instruction
    assert plan["task"] == "pick_place" and plan["steps"] == 2 and plan["stride"] == 4
    with np.load(tmp_path / "plan" / "frames.npz") as frames:
        images = plan["keyframes"] + 1  # the start frame and its keyframes
        assert frames["rgb"].shape == (images, 48, 64, 3) and frames["depth"].shape == (images, 48, 64)
    assert (tmp_path / "plan" / "plan.mp4").stat().st_size > 0
    run = vid2act("translate", tmp_path / "plan", "--out", tmp_path / "actions.json")
    assert run.code == 0, run.stderr
    actions = json.loads((tmp_path / "actions.json").read_text())
    assert actions["source"]["stride"] == 4
    assert actions["source"]["idm"].endswith("idm-plans-rgbd")  # `default` reading a plan: the drawings' reader
    assert len(actions["actions"]) >= 4 * plan["keyframes"]  # each keyframe step split in 4, plus settle frames
    run = vid2act("execute", tmp_path / "actions.json", "--scene", scene, "--out", tmp_path / "rollout")
    assert run.code == 0, run.stderr


@pytest.mark.slow
def test_same_seed_same_plan_and_k_samples(planner, scene, tmp_path):
    outs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        cli = vid2act_process if name == "a" else vid2act  # the same plan in another interpreter, too
        run = cli("generate", "--planner", planner, "--scene", scene, "--out", tmp_path / name, "--steps", 2,
                  "--seed", seed)
        assert run.code == 0, run.stderr
        with np.load(tmp_path / name / "frames.npz") as f:
            outs.append((f["rgb"], f["depth"]))
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1])
    assert not np.array_equal(outs[0][0], outs[2][0])
    run = vid2act("generate", "--planner", planner, "--scene", scene, "--out", tmp_path / "k", "--steps", 2,
                  "--seed", 3, "-k", 3, "--sampler", "dpm++")
    assert run.code == 0, run.stderr
    assert json.loads((tmp_path / "k" / "plan.json").read_text())["sampler"] == "DPMSolverMultistepScheduler"
    for sample in ("01", "02"):
        assert (tmp_path / "k" / "samples" / sample / "frames.npz").exists()
        assert (tmp_path / "k" / "samples" / sample / "plan.mp4").exists()


def test_keyframe_translation_of_oracle_frames_succeeds():
    """A 4-frame stride plan of the oracle's own rollout, read by the shipped IDM, does the task."""
    from vid2act.idm.model import load_idm, predict_keyframe_actions
    from vid2act.sim.env import SceneWorld, make_scene
    from vid2act.spec import ACTION_SPACE
    model, _ = load_idm("default")
    scene = make_scene("pick_place", 1_000_004, "test")
    with SceneWorld(scene) as env:
        oracle = env.run_oracle()
    keys = np.minimum(np.arange(0, len(oracle.rgb) + 3, 4), len(oracle.rgb) - 1)
    actions = predict_keyframe_actions(model, oracle.rgb[keys], oracle.depth[keys], stride=4)
    with SceneWorld(scene) as env:
        assert env.run(np.clip(actions, ACTION_SPACE["low"], ACTION_SPACE["high"])).success


def _png(path: Path, shape):
    iio.imwrite(path, np.zeros(shape, np.uint8))
    return path


@pytest.mark.parametrize("args, code, fragment", [
    (["--steps", "0"], 2, "--steps must lie between 1 and 1000"),
    (["--guidance", "-1"], 2, "--guidance must be a number between 0 and 100"),
    (["--guidance", "nan"], 2, "--guidance must be a number between 0 and 100"),
    (["--num-samples", "0"], 2, "--num-samples must lie between 1 and 64"),
    (["--prompt", "   "], 2, "the prompt is empty"),
    (["--prompt", "push " * 40], 2, "tokens long"),
    (["--planner", "nowhere"], 1, "no model at 'nowhere'"),
    (["--planner", "default-idm-rgbd-typo"], 1, "no model at"),
    (["--precision", "fp8"], 2, "unknown --precision 'fp8'"),
])
def test_bad_generate_options(planner, scene, tmp_path, args, code, fragment):
    args = ["--planner", planner, *args] if "--planner" not in args else args
    run = vid2act("generate", "--scene", scene, "--out", tmp_path / "plan", *args)
    assert run.code == code, run.stderr
    assert fragment in run.stderr and "please report it" not in run.stderr
    assert not (tmp_path / "plan").exists()


def test_bad_start_images(planner, scene, tmp_path):
    big = _png(tmp_path / "big.png", (96, 128, 3))
    np.save(tmp_path / "big_depth.npy", np.ones((96, 128), np.float32))
    run = vid2act("generate", "--planner", planner, "--image", big, "--prompt", "reach the red pad",
                  "--depth", tmp_path / "big_depth.npy", "--out", tmp_path / "plan")
    assert run.code == 1 and "96x128" in run.stderr and "--resize" in run.stderr, run.stderr
    assert not (tmp_path / "plan").exists()
    run = vid2act("generate", "--planner", planner, "--image", big, "--prompt", "reach the red pad",
                  "--depth", scene / "start_depth.npy", "--out", tmp_path / "plan")
    assert run.code == 1 and "is [48, 64] but the image is [96, 128]" in run.stderr, run.stderr
    run = vid2act("generate", "--planner", planner, "--image", big, "--prompt", "reach the red pad",
                  "--depth", tmp_path / "big_depth.npy", "--out", tmp_path / "plan", "--resize")
    assert run.code == 0, run.stderr
    run = vid2act("generate", "--planner", planner, "--image", scene / "start.png", "--prompt", "reach the red pad",
                  "--out", tmp_path / "nodepth")
    assert run.code == 1 and "needs the start depth" in run.stderr, run.stderr
    run = vid2act("generate", "--planner", planner, "--image", scene / "start.png", "--out", tmp_path / "noprompt")
    assert run.code == 2 and "--prompt" in run.stderr
    run = vid2act("generate", "--planner", planner, "--out", tmp_path / "nothing")
    assert run.code == 2 and "--scene" in run.stderr
    assert not any((tmp_path / name).exists() for name in ("nodepth", "noprompt", "nothing"))


@pytest.mark.parametrize("damage, fragment", [
    (lambda p: shutil.rmtree(p / "unet"), "unet/config.json is missing"),
    (lambda p: (p / "planner.json").unlink(), "planner.json is missing"),
    (lambda p: (p / "planner.json").write_text(json.dumps({**json.loads((p / "planner.json").read_text()),
                                                            "format": "vid2act.video/0"})), "vid2act.video/0"),
    (lambda p: (p / "unet" / "diffusion_pytorch_model.safetensors").rename(p / "unet" / "diffusion_pytorch_model.bin"),
     "never pickles"),
    (lambda p: (p / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage"), "could not be loaded"),
    (lambda p: (p / "model_index.json").unlink(), "no model_index.json"),
    (lambda p: shutil.rmtree(p / "grounding"), "the grounding model's config.json is missing"),
    (lambda p: (p / "grounding" / "model.safetensors").write_bytes(b"garbage"), "grounding"),
    (lambda p: shutil.rmtree(p / "sketch"), "the sketch model's config.json is missing"),
    (lambda p: (p / "sketch" / "model.safetensors").write_bytes(b"garbage"), "sketch/model.safetensors is missing, corrupt"),
    (lambda p: (p / "planner.json").write_text(json.dumps({**json.loads((p / "planner.json").read_text()),
                                                            "format": "vid2act.video/1"})),
     "a whole-episode planner of vid2act 0.1, which drew no grounding; this vid2act reads 'vid2act.video/4': "
     "train a new one"),
    (lambda p: (p / "planner.json").write_text(json.dumps({**json.loads((p / "planner.json").read_text()),
                                                            "format": "vid2act.video/2"})),
     "a chunk planner that drew without a sketch of where the arm goes; this vid2act reads 'vid2act.video/4': "
     "train a new one"),
])
def test_broken_planners_are_refused(planner, scene, tmp_path, damage, fragment):
    broken = tmp_path / "broken"
    shutil.copytree(planner, broken, ignore=shutil.ignore_patterns("checkpoint", "snapshots", "samples"))
    damage(broken)
    run = vid2act("generate", "--planner", broken, "--scene", scene, "--out", tmp_path / "plan")
    assert run.code == 1, run.stderr
    assert fragment in run.stderr and "please report it" not in run.stderr
    assert not (tmp_path / "plan").exists()


def test_a_development_format_planner_is_refused_with_what_it_is(planner, tmp_path):
    from vid2act.errors import Vid2ActError
    from vid2act.video.pipeline import load_planner
    old = tmp_path / "old"
    shutil.copytree(planner, old, ignore=shutil.ignore_patterns("checkpoint", "snapshots", "samples"))
    settings = json.loads((old / "planner.json").read_text())
    settings["format"], settings["frames"] = "vid2act.video/3", settings.pop("keyframes")
    (old / "planner.json").write_text(json.dumps(settings))
    with pytest.raises(Vid2ActError, match="of format 'vid2act.video/3', a development format of today's planner"):
        load_planner(str(old))


def test_existing_plan_needs_force(planner, scene, tmp_path):
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "keep").write_text("x")
    run = vid2act("generate", "--planner", planner, "--scene", scene, "--out", tmp_path / "plan", "--steps", 1)
    assert run.code == 2 and "--force" in run.stderr
    assert (tmp_path / "plan" / "keep").exists()


def test_existing_run_needs_resume_or_force(planner, data):
    run = vid2act("train", "video", "--data", data, "--out", planner, "--steps", 6, *TINY)
    assert run.code == 2 and "--resume" in run.stderr


@pytest.mark.slow
def test_resume_after_kill_9_matches_an_uninterrupted_run(data, tmp_path):
    args = ["train", "video", "--data", str(data), "--steps", "40", *TINY]
    straight = vid2act(*args, "--out", tmp_path / "straight")
    assert straight.code == 0, straight.stderr

    out = tmp_path / "killed"
    kill_9_during_training(args, out, after_step=10)
    resumed = vid2act(*args, "--out", out, "--resume")
    assert resumed.code == 0 and "resuming" in resumed.stderr, resumed.stderr
    weights = "unet/diffusion_pytorch_model.safetensors"
    a, b = load_file(str(tmp_path / "straight" / weights)), load_file(str(out / weights))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    again = vid2act(*args, "--out", out, "--resume")  # finished: its model is written again over itself
    assert again.code == 0, again.stderr
    c = load_file(str(out / weights))
    assert all((a[k] == c[k]).all() for k in a)
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert hidden == [".lock"]  # the run's lock (documented), no staged or set-aside leftovers


@pytest.mark.slow
def test_two_process_accelerate_run(data, tmp_path):
    out = tmp_path / "ddp"
    run_two_processes(["train", "video", "--data", str(data), "--out", str(out), "--steps", "4", *TINY])
    info = json.loads((out / "planner.json").read_text())
    assert info["training"]["processes"] == 2
    from vid2act.video.pipeline import load_planner
    load_planner(str(out))


def test_default_names_the_shipped_planner(scene, tmp_path):
    run = vid2act("generate", "--planner", "default", "--scene", scene, "--out", tmp_path / "plan", "--steps", 1)
    assert run.code == 0, run.stderr
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    info = json.loads((Path(plan["planner"]) / "planner.json").read_text())
    assert plan["planner"].endswith("planner-rgbd") and plan["keyframes"] == info["horizon"]
    assert plan["modalities"] == "rgbd"


def test_bf16_plans_stay_within_a_grey_level_of_fp32(planner, scene, tmp_path):
    plans = {}
    for precision in ("fp32", "bf16"):
        run = vid2act("generate", "--planner", planner, "--scene", scene, "--out", tmp_path / precision,
                      "--steps", 2, "--precision", precision)
        assert run.code == 0, run.stderr
        with np.load(tmp_path / precision / "frames.npz") as frames:
            plans[precision] = frames["rgb"].astype(np.int16)
    assert np.abs(plans["fp32"] - plans["bf16"]).mean() < 2.0


@pytest.mark.slow
@pytest.mark.parametrize("source", ["run", "snapshot"])
def test_init_from_continues_a_planner_in_mixed_precision(planner, data, tmp_path, source):
    origin = planner if source == "run" else planner / "snapshots" / "step-000003"
    run = vid2act("train", "video", "--data", data, "--out", tmp_path / "more", "--steps", 1, *TINY,
                  "--init-from", origin, "--mixed-precision", "bf16", "--lr", "1e-12")
    assert run.code == 0, run.stderr
    before, after = (load_file(str(p / "unet" / "diffusion_pytorch_model.safetensors"))
                     for p in (origin, tmp_path / "more"))
    assert all(torch.allclose(before[k].float(), after[k].float(), atol=1e-3) for k in before)
    info = json.loads((tmp_path / "more" / "planner.json").read_text())
    assert info["training"]["init_from"] == str(origin)
    trained = json.loads((origin / "planner.json").read_text())["train_seconds"]
    assert trained > 0
    assert info["initialized_from"] == {"model": str(origin.resolve()), "train_seconds": trained}


@pytest.mark.slow
def test_a_run_with_a_reader_scores_the_reading_of_its_drawings(planner, data, tmp_path):
    out = tmp_path / "read"
    run = vid2act("train", "video", "--data", data, "--out", out, "--steps", 2, *TINY, "--init-from", planner,
                  "--reader", "default", "--eval-every", "2")
    assert run.code == 0, run.stderr
    assert "read back" in run.stderr
    read = json.loads((out / "metrics.json").read_text())["final"]["read_back"]
    assert read["keyframes"] == 256 * 4 and read["grasp_point_cm_median"] > 0
    assert json.loads((out / "planner.json").read_text())["training"]["reader"] == "default"


def test_the_read_back_loss_trains_the_unet_through_its_last_sampling_step_not_the_reader(planner):
    from vid2act.idm.model import load_idm
    from vid2act.video import text
    from vid2act.video.pipeline import condition_channels, load_planner, make_scheduler
    from vid2act.video.readback import read_back_loss
    pipe = load_planner(str(planner))
    unet, shape = pipe.unet.train(), pipe.shape
    reader, _ = load_idm("default", kind="plan-idm")
    reader.requires_grad_(False)
    b, k, (h, w) = 2, shape.keyframes, shape.plan_size
    generator = torch.Generator().manual_seed(0)
    full = torch.rand((b, shape.channels, *shape.image_size), generator=generator) * 2 - 1
    current = torch.nn.functional.avg_pool2d(full, shape.scale)
    heat = torch.rand((b, condition_channels(shape), h, w), generator=generator)
    prompt = {key: value.expand(b, *value.shape[1:]) for key, value in text.encode(["push the red block"]).items()}
    grasp, closed = torch.tensor([0.4, 0.0, 0.1]).expand(b, k, 3), torch.ones(b, k)
    loss = read_back_loss(unet, make_scheduler("ddim"), reader, full, current, heat, prompt, grasp, closed, 2,
                          pipe.planner["depth_mean"], pipe.planner["depth_std"], generator)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert sum(float(p.grad.abs().sum()) for p in unet.parameters() if p.grad is not None) > 0
    assert all(p.grad is None for p in reader.parameters())


def test_a_reader_must_read_single_keyframes(planner, data, tmp_path):
    delta = tmp_path / "delta"
    assert vid2act("train", "idm", "--data", data, "--out", delta, "--head", "delta", "--steps", 2, "--width", 8,
                   "--batch-size", 16).code == 0
    run = vid2act("train", "video", "--data", data, "--out", tmp_path / "run", "--steps", 1, *TINY,
                  "--init-from", planner, "--reader", delta)
    assert run.code == 2 and "reads pairs of frames (head delta)" in run.stderr, run.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--widths", "16,16,32"], "other --widths"),
    (["--widths", "16,16,24"], "each a multiple of 16"),
    (["--keyframes", "5"], "its plans differ"),
    (["--mixed-precision", "fp16"], "needs a GPU"),
    (["--attention-levels", "4"], "--attention-levels must lie"),
    (["--widths", "16,16,16,16,16"], "multiples of 16; give fewer levels"),
])
def test_bad_init_from_or_precision(planner, data, tmp_path, args, fragment):
    run = vid2act("train", "video", "--data", data, "--out", tmp_path / "run", "--steps", 1,
                  *TINY, "--init-from", planner, *args)
    assert run.code == 2, run.stderr
    assert fragment in run.stderr and "please report it" not in run.stderr


def test_a_half_scale_plan_comes_out_at_the_scene_size(planner, scene, tmp_path):
    """Drawn at 24x32, the plan comes out at the scene's 48x64, its first frame the start frame exactly."""
    run = vid2act("generate", "--planner", planner, "--scene", scene, "--out", tmp_path / "plan", "--steps", 2)
    assert run.code == 0, run.stderr
    start = iio.imread(scene / "start.png")
    with np.load(tmp_path / "plan" / "frames.npz") as frames:
        rgb, depth = frames["rgb"], frames["depth"]
    assert rgb.shape[1:] == (48, 64, 3) and depth.shape[1:] == (48, 64)
    assert np.array_equal(rgb[0], start)
    assert np.allclose(depth[0], np.load(scene / "start_depth.npy"), atol=1e-2)


def test_noise_bias_trains_the_noisiest_tenth_a_third_of_the_time():
    from vid2act.video.train import draw_timesteps
    uniform, biased = (draw_timesteps(np.random.default_rng(0), 100_000, 1000, bias) for bias in (1.0, 2.0))
    assert uniform.min() == 0 and uniform.max() == 999 and biased.max() == 999
    assert abs((uniform >= 900).mean() - 0.1) < 0.01
    assert abs((biased >= 900).mean() - 0.1 ** 0.5) < 0.01 and abs((biased < 100).mean() - (1 - 0.9 ** 0.5)) < 0.01


def test_moving_pixels_and_their_neighbours_weigh_more():
    from vid2act.video.train import moving_pixels
    change = torch.zeros(2, 3, 4, 8, 8)
    change[0, 1, 3, 4, 5] = 0.5  # depth moves at one pixel of the second keyframe
    change[1, :, 0] = 0.01  # a faint change everywhere: below the threshold
    weights = moving_pixels(change, 4.0)
    assert weights.shape == (2, 3, 1, 8, 8)
    expected = torch.ones(8, 8)
    expected[3:6, 4:7] = 5.0
    assert torch.equal(weights[0, 1, 0], expected)
    assert (weights[0, [0, 2]] == 1).all() and (weights[1] == 1).all()
    assert (moving_pixels(change, 0.0) == 1).all()


@pytest.fixture(scope="module")
def recovery(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("video") / "recovery"
    run = vid2act("collect", "--tasks", "push,stack", "--episodes", 2, "--recover", "random", "--out", out)
    assert run.code == 0, run.stderr
    return out


@pytest.mark.slow
def test_recovery_episodes_train_from_where_the_expert_took_over(planner, data, recovery, tmp_path):
    """`--recovery`: the sketch and the UNet see its episodes, but no clip starts before the expert's first
    frame, the grounding never reads them, and the open-loop horizon still comes from the demonstrations."""
    from vid2act.data.dataset import Dataset
    from vid2act.video.clips import ClipData
    clips = ClipData(Dataset(data), [0, 1], "rgbd", 2, (24, 32), (Dataset(recovery), [0, 1]))
    assert clips.expert_from.tolist()[:2] == [0, 0] and min(clips.expert_from.tolist()[2:]) >= 8
    assert clips.demonstrations.tolist() == [0, 1]
    episodes = torch.arange(4).repeat(500)
    first = clips.clip_starts(np.random.default_rng(0), episodes, 0.1)
    assert (first >= clips.expert_from[episodes]).all() and (first < clips.lengths[episodes]).all()
    assert (first == clips.expert_from[episodes]).any() and (first > clips.expert_from[episodes]).any()
    # A recovery episode's places are the grounding's reading of its first frame, as a policy reads them.
    from vid2act.bc import Grounder
    from vid2act.video.pipeline import load_planner
    pipe = load_planner(planner)
    depth = {"depth_mean": pipe.planner["depth_mean"], "depth_std": pipe.planner["depth_std"]}
    demonstrated = clips.pixels.clone()
    clips.ground_recovery(pipe.grounding, **depth)
    assert torch.equal(clips.pixels[:2], demonstrated[:2]) and not torch.equal(clips.pixels[2:], demonstrated[2:])
    grounder = Grounder.of(pipe)
    for row, i in ((2, 0), (3, 1)):
        e = Dataset(recovery).episode(i, ("rgb", "depth", "instruction"))
        read = grounder.locate(e["rgb"][0], e["depth"][0], str(e["instruction"]))
        assert torch.allclose(clips.pixels[row], read, atol=1e-3)

    run = vid2act("train", "video", "--data", data, "--recovery", recovery, "--out", tmp_path / "run", "--steps", 1,
                  *TINY)
    assert run.code == 0, run.stderr
    info = json.loads((tmp_path / "run" / "planner.json").read_text())
    assert info["dataset"]["recovery"] == {"path": str(recovery.resolve()), "episodes": 2}
    assert info["horizon"] == json.loads((planner / "planner.json").read_text())["horizon"]
    run = vid2act("train", "video", "--data", data, "--recovery", tmp_path / "none", "--out", tmp_path / "r2",
                  "--steps", 1, *TINY)
    assert run.code == 1 and "is not a vid2act dataset" in run.stderr and not (tmp_path / "r2").exists()


def test_grounding_and_sketch_taken_from_another_planner_are_its_own(planner, data, tmp_path):
    """`--grounding-from` / `--sketch-from`: a run starts its stages from another run's parts (no copying folders
    and misusing --resume): its planner holds exactly those nets, and only the UNet trains."""
    out = tmp_path / "run"
    run = vid2act("train", "video", "--data", data, "--out", out, "--steps", 2, *TINY, "--grounding-from", planner,
                  "--sketch-from", planner)
    assert run.code == 0, run.stderr
    for part in ("grounding", "sketch"):
        assert (out / part / "model.safetensors").read_bytes() == (planner / part / "model.safetensors").read_bytes()
    metrics = json.loads((out / "planner.json").read_text())
    source = json.loads((planner / "planner.json").read_text())
    assert metrics["grounding"] == source["grounding"] and metrics["sketch"] == source["sketch"]


def test_a_sketch_of_another_keyframe_count_is_refused_before_any_work(planner, data, tmp_path):
    run = vid2act("train", "video", "--data", data, "--out", tmp_path / "run", "--steps", 2, *TINY,
                  "--keyframes", 3, "--sketch-from", planner)
    assert run.code == 2 and "--sketch-from" in run.stderr and "--keyframes" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
