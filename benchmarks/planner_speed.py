"""Video planner speed on this machine: the latency of one chunk (median of --repeats) at 1, 2, 4 and 10
DDIM steps, guided (2) and unguided, fp32 and bf16; the replanning rate of closed-loop control (chunk +
IDM translation); the plan policy's step with K chunks drawn at once and the one closest to its sketch kept
(`--best-of K`, default 4); and the time of a whole open-loop plan.

    python benchmarks/planner_speed.py [--planner default] [--repeats 20]"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from vid2act.video.pipeline import load_planner


def median_seconds(call, repeats: int) -> float:
    call(0)  # warm-up: text-encoder cache, allocator
    times = []
    for k in range(repeats):
        started = time.perf_counter()
        call(k)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def bf16_is_native() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX512-BF16 or AMX); without it bf16 is emulated, far slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planner", default="default")
    parser.add_argument("--idm", default="default")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    from vid2act.idm.model import keyframe_poses, load_idm
    from vid2act.sim.env import SceneWorld, make_scene
    scene = make_scene("stack", 1_000_000, "test")
    with SceneWorld(scene) as env:
        image, depth = env.world.render()
        start = env.world.robot.ee_target.copy()
    prompt = scene["instruction"]
    idm, _ = load_idm(args.idm)
    native = bf16_is_native()
    print(f"torch threads {torch.get_num_threads()}; bf16 {'native' if native else 'emulated (no AVX512-BF16/AMX)'}")
    pipes = {"fp32": load_planner(args.planner)}
    pipes["bf16"] = load_planner(args.planner, precision="bf16")
    shape = pipes["fp32"].shape
    params = sum(p.numel() for p in pipes["fp32"].unet.parameters()) / 1e6
    points = pipes["fp32"].ground(image, depth, prompt)
    print(f"planner {args.planner}: {params:.1f} M parameters; chunks of {shape.keyframes} keyframes drawn at "
          f"{shape.plan_size[0]}x{shape.plan_size[1]}; open-loop plans of {shape.horizon} keyframes")
    grounding = median_seconds(lambda k: pipes["fp32"].ground(image, depth, prompt), args.repeats)
    print(f"grounding (once per episode): {grounding * 1000:.1f} ms")

    print(f"\n| precision | steps | guidance | one chunk (median of {args.repeats}) | chunk + IDM: replanning rate |")
    print("|---|---|---|---|---|")
    for precision in ("fp32", "bf16"):
        for steps in (1, 2, 4, 10):
            for guidance in (2.0, 1.0):
                if precision == "bf16" and not native and steps > 1:
                    continue  # emulated bf16: one row shows the cost
                pipe = pipes[precision]

                def chunk(k):
                    plan = pipe(image, prompt, depth=depth, num_inference_steps=steps, guidance_scale=guidance,
                                generator=torch.Generator().manual_seed(k), points=points)
                    keyframe_poses(idm, plan.rgb[0], plan.depth[0])
                seconds = median_seconds(chunk, args.repeats)
                print(f"| {precision} | {steps} | {guidance:g} | {seconds * 1000:.0f} ms | {1 / seconds:.1f} Hz |",
                      flush=True)
    from vid2act.policies import PlanPolicy
    from vid2act.sim.env import Observation
    print(f"\n| best of K (fp32, 4 steps, unguided) | one replan: K chunks + K IDM readings + the choice (median of "
          f"{args.repeats}) | replanning rate |")
    print("|---|---|---|")
    for best_of in (1, 2, 4, 8):
        policy = PlanPolicy(pipes["fp32"], idm, steps=4, guidance=1.0, replan_every=8, best_of=best_of)

        def replan(k):
            policy.reset(scene)
            policy.act(Observation(image, depth, 0, start))
        seconds = median_seconds(replan, args.repeats)
        print(f"| {best_of} | {seconds * 1000:.0f} ms | {1 / seconds:.1f} Hz |", flush=True)
    whole = median_seconds(lambda k: pipes["fp32"].rollout(image, prompt, depth=depth, points=points,
                                                            generator=torch.Generator().manual_seed(k)),
                           max(3, args.repeats // 4))
    print(f"\nwhole open-loop plan (fp32, the defaults: 4 steps, unguided, {shape.horizon} keyframes): {whole:.2f} s")


if __name__ == "__main__":
    main()
