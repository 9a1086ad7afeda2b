"""Plans -> shipped IDM -> execute, per family, on test seeds and on the held-out combinations, beside the
ceiling of the same translation on the oracle's own rollout (keyframes of the true video -> IDM -> execute),
and the plan's fidelity to that rollout from the same scene: per-frame PSNR and SSIM, the grasp point the
IDM reads off each plan frame against the commanded one, and where the goal object ends up (by colour).

    python benchmarks/planner_success.py --model default --seeds 50 [--idm default] [--steps 10] [--guidance 2]

Every plan is open loop: one plan from the start frame, all of its actions executed."""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from vid2act.idm.model import keyframe_poses, load_idm, predict_keyframe_actions
from vid2act.sim.env import Env, make_scene
from vid2act.sim.tasks import SEED_RANGES, TASKS
from vid2act.sim.world import ACTION_SPACE, COLORS
from vid2act.video.pipeline import load_planner


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over frames and channels, 7x7 uniform window (as scikit-image's default), 8-bit range."""
    x = torch.from_numpy(a).double().permute(0, 3, 1, 2)
    y = torch.from_numpy(b).double().permute(0, 3, 1, 2)
    pool = lambda t: F.avg_pool2d(t, 7, stride=1)
    mx, my = pool(x), pool(y)
    vx, vy, cxy = pool(x * x) - mx ** 2, pool(y * y) - my ** 2, pool(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


PALETTE = np.array(list(COLORS.values()))
CHROMA = PALETTE / PALETTE.sum(1, keepdims=True)


def color_centroid(frame: np.ndarray, color: str) -> np.ndarray | None:
    """Pixel centroid (row, col) of the saturated pixels whose hue is nearest to `color`; None if none."""
    rgb = frame.reshape(-1, 3).astype(np.float64)
    saturated = rgb.max(1) - rgb.min(1) > 60
    chroma = rgb / np.maximum(rgb.sum(1, keepdims=True), 1)
    nearest = np.argmin(((chroma[:, None, :] - CHROMA[None]) ** 2).sum(-1), axis=1)
    mask = saturated & (nearest == list(COLORS).index(color))
    if mask.sum() < 3:
        return None
    rows, cols = np.divmod(np.flatnonzero(mask), frame.shape[1])
    return np.array([rows.mean(), cols.mean()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--idm", default="default")
    parser.add_argument("--seeds", type=int, default=50, help="seeds per family and split")
    parser.add_argument("--first-seed", type=int, default=SEED_RANGES["test"][0])
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--splits", nargs="*", default=["test", "heldout"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--sampler", default=None)
    parser.add_argument("--precision", default="fp32", help="the planner's UNet: fp32 or bf16")
    parser.add_argument("--json", help="also write every episode's numbers to this file")
    args = parser.parse_args()
    pipe = load_planner(args.model, sampler=args.sampler, precision=args.precision)
    idm, _ = load_idm(args.idm)
    stride, frames = pipe.shape.stride, pipe.shape.frames
    low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])
    print(f"planner {args.model} ({frames} keyframes every {stride} frames), IDM {args.idm}, "
          f"{type(pipe.scheduler).__name__} {args.steps} steps, guidance {args.guidance}, {args.seeds} seeds per cell\n")
    print("| family | split | oracle | true video + IDM | plan + IDM | plan PSNR (dB) | plan SSIM | "
          "grasp point error (mm) | goal object end error (px) | object lost |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    records, started = [], time.perf_counter()
    for task in args.tasks:
        for split in args.splits:
            cell = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                scene = make_scene(task, seed, split)
                with Env(scene) as env:
                    oracle = env.run_oracle()
                keys = np.minimum(np.arange(frames + 1) * stride, len(oracle.rgb) - 1)
                truth_rgb, truth_depth = oracle.rgb[keys], oracle.depth[keys]
                plan = pipe(truth_rgb[0], scene["instruction"], depth=truth_depth[0], num_inference_steps=args.steps,
                            guidance_scale=args.guidance, generator=torch.Generator().manual_seed(seed))
                plan_rgb, plan_depth = plan.rgb[0], plan.depth[0]
                outcome = {}
                for name, (rgb, depth) in (("truth", (truth_rgb, truth_depth)), ("plan", (plan_rgb, plan_depth))):
                    actions = np.clip(predict_keyframe_actions(idm, rgb, depth, stride), low, high)
                    with Env(scene) as env:
                        outcome[name] = env.run(actions).success
                points = keyframe_poses(idm, plan_rgb, plan_depth)[0]
                color = scene["goal"]["object"].split()[0] if task != "reach" else None
                end_error = None
                if color:
                    a, b = color_centroid(plan_rgb[-1], color), color_centroid(truth_rgb[-1], color)
                    end_error = float(np.linalg.norm(a - b)) if a is not None and b is not None else None
                cell.append({"task": task, "split": split, "seed": seed, "oracle": bool(oracle.success),
                             "truth": bool(outcome["truth"]), "plan": bool(outcome["plan"]),
                             "psnr": psnr(plan_rgb[1:], truth_rgb[1:]), "ssim": ssim(plan_rgb[1:], truth_rgb[1:]),
                             "grasp_error_mm": float(np.linalg.norm(points[1:] - oracle.ee_target[keys][1:],
                                                                    axis=1).mean() * 1000),
                             "object_end_error_px": end_error, "object_lost": bool(color) and end_error is None})
            records += cell
            rate = lambda key: f"{np.mean([r[key] for r in cell]):.0%}"
            errors = [r["object_end_error_px"] for r in cell if r["object_end_error_px"] is not None]
            print(f"| {task} | {split} | {rate('oracle')} | {rate('truth')} | **{rate('plan')}** | "
                  f"{np.mean([r['psnr'] for r in cell]):.1f} | {np.mean([r['ssim'] for r in cell]):.3f} | "
                  f"{np.mean([r['grasp_error_mm'] for r in cell]):.0f} | "
                  f"{np.mean(errors) if errors else float('nan'):.1f} | "
                  f"{sum(r['object_lost'] for r in cell)} |", flush=True)
    for split in args.splits:
        chosen = [r for r in records if r["split"] == split]
        print(f"| all | {split} | {np.mean([r['oracle'] for r in chosen]):.0%} | "
              f"{np.mean([r['truth'] for r in chosen]):.0%} | **{np.mean([r['plan'] for r in chosen]):.0%}** | "
              f"{np.mean([r['psnr'] for r in chosen]):.1f} | {np.mean([r['ssim'] for r in chosen]):.3f} | "
              f"{np.mean([r['grasp_error_mm'] for r in chosen]):.0f} | | |")
    print(f"\n{len(records)} episodes in {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
