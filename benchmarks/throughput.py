"""Simulation, rendering, collection and execution speed on this machine.

    python benchmarks/throughput.py [--episodes 40]

Prints each figure and the ratios that matter: low-poly vs stock Panda rendering, and 2 vs 1 collect
workers. Numbers vary with the machine's load: run it on an idle machine and compare ratios."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pybullet_data

from vid2act.data.collect import CollectConfig, collect
from vid2act.sim.env import SceneWorld, make_scene
from vid2act.sim.robot import MOVABLE_JOINTS
from vid2act.sim.tasks import TASKS


def rate(function, repeats: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return repeats / (time.perf_counter() - started)


def render_rates(size) -> tuple[float, float]:
    """Frames/s of the low-poly Panda the world uses, and of pybullet_data's stock Panda in the same pose."""
    with SceneWorld(make_scene("pick_place", 1_000_000, "test", size)) as env:
        low_poly = rate(env.world.render, 300)
        world = env.world
        joints = [world.client.getJointState(world.robot.body, j)[0] for j in MOVABLE_JOINTS]
        world.client.removeBody(world.robot.body)
        stock = world.client.loadURDF(pybullet_data.getDataPath() + "/franka_panda/panda.urdf", useFixedBase=True)
        for joint, angle in zip(MOVABLE_JOINTS, joints):
            world.client.resetJointState(stock, joint, angle)
        stock_rate = rate(world.render, 60)
    return low_poly, stock_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40, help="episodes per collect run")
    args = parser.parse_args()

    print("## rendering (Tiny renderer, frames/s)")
    for size in ((48, 64), (64, 64), (96, 128)):
        low, stock = render_rates(size)
        print(f"{size[0]}x{size[1]}: low-poly Panda {low:.0f}, stock Panda {stock:.0f}, ratio {low / stock:.1f}x")

    with SceneWorld(make_scene("push", 1_000_000, "test")) as env:
        physics = rate(env.world.client.stepSimulation, 3000)
    print(f"\n## physics: {physics:.0f} steps/s (240 Hz, 12 steps per frame)")

    print("\n## execute (library: step 12 physics steps + render, per frame; world build excluded)")
    total_frames, total_time, total_with_setup = 0, 0.0, 0.0
    for task in TASKS:
        for seed in range(1_000_000, 1_000_010):
            scene = make_scene(task, seed, "test")
            with SceneWorld(scene) as env:
                actions = env.run_oracle().actions
            started = time.perf_counter()
            with SceneWorld(scene) as env:
                built = time.perf_counter()
                env.run(actions)
            total_frames += len(actions)
            total_time += time.perf_counter() - built
            total_with_setup += time.perf_counter() - started
    print(f"simulated+rendered frames/s: {total_frames / total_time:.0f} "
          f"({total_frames / total_with_setup:.0f} with the world build)")

    with tempfile.TemporaryDirectory() as tmp:
        scene_dir, actions_path = Path(tmp) / "scene", Path(tmp) / "actions.json"
        cli = [sys.executable, "-m", "vid2act.cli"]
        subprocess.run([*cli, "scene", "--task", "pick_place", "--seed", "1000000", "--out", scene_dir], check=True,
                       capture_output=True)
        subprocess.run([*cli, "oracle", scene_dir, "--out", actions_path], check=True, capture_output=True)
        steps = len(json.loads(actions_path.read_text())["actions"])
        times = []
        for i in range(5):
            started = time.perf_counter()
            subprocess.run([*cli, "execute", actions_path, "--scene", scene_dir, "--out", Path(tmp) / f"r{i}"],
                           check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        print(f"`vid2act execute` ({steps} actions, files and mp4 included, process start included): "
              f"median {np.median(times):.2f} s")

        print(f"\n## collect ({args.episodes} episodes, all families)")
        results = {}
        for workers in (1, 2):
            config = CollectConfig(tasks=tuple(TASKS), episodes=args.episodes)
            started = time.perf_counter()
            info = collect(config, Path(tmp) / f"data{workers}", workers=workers)
            elapsed = time.perf_counter() - started
            results[workers] = elapsed
            frames = info["counts"]["frames"]
            print(f"{workers} worker(s): {args.episodes / elapsed * 60:.0f} episodes/min, {frames / elapsed:.0f} "
                  f"simulated+rendered frames/s ({frames / elapsed / workers:.0f} per worker)")
        print(f"speed-up with 2 workers: {results[1] / results[2]:.2f}x")


if __name__ == "__main__":
    main()
