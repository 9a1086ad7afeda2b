"""Start image (or scene) + instruction -> plan folder."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from vid2act.version import __version__
from vid2act.errors import UsageError, Vid2ActError
from vid2act.formats import PLAN_FORMAT, write_plan
from vid2act.media import resize_frames
from vid2act.outputs import output_dir
from vid2act.video.pipeline import VideoPlannerPipeline


def read_start(scene: Path | None, image: Path | None, depth: Path | None, prompt: str | None):
    """(rgb uint8 [H, W, 3], depth [H, W] or None, prompt, scene document or None) from a scene folder or
    from an image (+ depth) and a prompt."""
    import imageio.v3 as iio

    from vid2act.formats import read_scene
    from vid2act.media import check_finite_depth, load_npy
    if (scene is None) == (image is None):
        raise UsageError("give either --scene DIR or --image PNG (with --prompt)")
    document = None
    if scene is not None:
        document = read_scene(scene)
        image, depth = Path(scene) / "start.png", Path(scene) / "start_depth.npy"
        prompt = prompt or document["instruction"]
    elif prompt is None:
        raise UsageError("--image needs --prompt: say what the robot should do")
    try:
        rgb = iio.imread(image)
    except Exception as e:  # imageio raises many kinds for a missing or corrupt file
        raise Vid2ActError(f"{image} is not a readable image ({e.__class__.__name__})") from None
    if rgb.ndim == 3 and rgb.shape[2] == 4:
        rgb = rgb[..., :3]
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise Vid2ActError(f"{image} must be an 8-bit RGB image; it is {rgb.dtype} {list(rgb.shape)}")
    start_depth = None
    if depth is not None and Path(depth).exists():
        start_depth = load_npy(depth).astype(np.float32)
        if start_depth.shape != rgb.shape[:2]:
            raise Vid2ActError(f"{depth} is {list(start_depth.shape)} but the image is {list(rgb.shape[:2])}")
        check_finite_depth(start_depth, depth)
    elif depth is not None and scene is None:
        raise Vid2ActError(f"{depth} does not exist")
    return rgb, start_depth, prompt, document


def generate_plan(pipe: VideoPlannerPipeline, rgb: np.ndarray, depth: np.ndarray | None, prompt: str,
                  steps: int, guidance: float, seed: int, samples: int, resize: bool = False):
    """Whole-task plans (the chunk model rolled forward on its own keyframes), as a list of (rgb [K+1, H, W, 3],
    depth [K+1, H, W] or None), and the seconds they took."""
    size = pipe.shape.image_size
    if rgb.shape[:2] != size:
        if not resize:
            raise Vid2ActError(f"the start image is {rgb.shape[0]}x{rgb.shape[1]}; this planner draws "
                               f"{size[0]}x{size[1]} (pass --resize to resize it)")
        resized, resized_depth = resize_frames(rgb[None], depth[None] if depth is not None else None, size)
        rgb, depth = resized[0], (resized_depth[0] if resized_depth is not None else None)
    started = time.perf_counter()
    out = pipe.rollout(rgb, prompt, depth=depth, num_inference_steps=steps, guidance_scale=guidance,
                       generator=torch.Generator().manual_seed(seed), num_videos_per_prompt=samples)
    seconds = time.perf_counter() - started
    return [(out.rgb[k], out.depth[k] if out.depth is not None else None) for k in range(samples)], seconds


def plan_document(pipe: VideoPlannerPipeline, planner_path: str, prompt: str, steps: int, guidance: float,
                  seed: int, samples: int, seconds: float, scene: dict | None, scene_dir, keyframes: int) -> dict:
    """plan.json for a plan of `keyframes` keyframes after its start frame."""
    planner = pipe.planner
    return {"format": PLAN_FORMAT, "prompt": prompt, "planner": planner_path,
            "sampler": type(pipe.scheduler).__name__, "steps": steps, "guidance": guidance, "seed": seed,
            "modalities": planner["modalities"], "keyframes": keyframes, "stride": planner["stride"],
            "frame_interval": planner["frame_interval"], "fps": planner["fps"],
            "image_size": planner["image_size"], "samples": samples,
            "scene": str(scene_dir) if scene_dir else None,
            "task": scene["task"] if scene else None, "seed_of_scene": scene["seed"] if scene else None,
            "seconds": round(seconds, 3), "vid2act_version": __version__}


def write_plan_folder(out: Path, force: bool, document: dict, samples) -> None:
    with output_dir(out, force) as tmp:
        write_plan(tmp, document, samples)
