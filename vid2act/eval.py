"""The evaluation harness: scene -> policy -> execute over many seeds, with honest statistics.

One loop drives every policy through `vid2act.policies` (`reset(scene)`, `act(observation)`): plan (closed
loop by default: a chunk from the real frame every `replan_every` actions, the best of `best_of` drawings; 0 is
one whole-task plan, open loop), sketch (the planner's sketch executed without drawing), gt-video, oracle, bc
and random. Every policy gets the same time limit (`TIME_LIMIT_FACTOR` x the task's step limit) and success
is judged once, when the episode ends: at the time limit, or when the policy has nothing more to do
(`ended_by` in the record says which). Each record also keeps `solved_at`, the first step after which the
success test held: papers that end an episode at its first success (Meta-World's and LIBERO's evaluations,
panda-gym's and `vid2act.gym`'s termination) count those, and an episode solved and then undone shows the
gap."""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vid2act.configs import EvalConfig, inputs_of
from vid2act.formats import actions_document, write_plan, write_scene
from vid2act.media import write_gif, write_rollout, write_video
from vid2act.outputs import check_apart, check_can_write, output_dir, write_json
from vid2act.processes import map_in_workers
from vid2act.report import GIF_NAME, write_reports
from vid2act.spec import check_in_space, seed_range

EVAL_FORMAT = "vid2act.eval/2"  # /1 named the planner `video` in its config
VIDEO_EPISODES = 1  # per family: episodes whose plan-vs-reality video goes into the report


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# --- one episode -------------------------------------------------------------------------------------------
_loaded: dict[tuple, object] = {}  # per process: models load once, not once per episode


def _load_models(config: EvalConfig):
    from vid2act.policies import load_models
    key = (config.policy, config.planner, config.idm, config.bc, config.device, config.precision)
    if key not in _loaded:
        _loaded[key] = load_models(config.policy, config.planner, config.idm, config.bc, config.device, config.precision)
    return _loaded[key]


@dataclass
class Episode:
    frames: list = field(default_factory=list)  # real rgb frames, one per executed action and the start
    depths: list = field(default_factory=list)
    beside: list = field(default_factory=list)  # the frame the policy expected each real frame to be
    actions: list = field(default_factory=list)
    execute_seconds: float = 0.0


def run_episode(config: EvalConfig, task_name: str, seed: int, root: Path, relative: Path, keep_video: bool) -> dict:
    """One episode into root/relative: scene/, plans/NN/, actions.json, rollout/, result.json."""
    from vid2act.policies import make_policy
    from vid2act.sim.env import Observation
    from vid2act.spec import time_limit
    from vid2act.sim.env import SceneWorld, make_scene
    from vid2act.spec import FPS
    from vid2act.video.generate import plan_document
    models = _load_models(config)
    policy = make_policy(config.policy, models, config.steps, config.guidance, config.replan_every, config.device,
                         config.best_of)
    folder = root / relative
    limit = time_limit(task_name)
    scene = make_scene(task_name, seed, config.split)
    episode = Episode()
    ended_by, solved_at = "time_limit", None
    with SceneWorld(scene) as env:
        rgb, depth = env.world.render()
        write_scene(folder / "scene", scene, rgb, depth)
        episode.frames.append(rgb)
        episode.depths.append(depth)
        episode.beside.append(rgb)
        policy.reset(scene)
        while len(episode.actions) < limit:
            observation = Observation(rgb, depth, len(episode.actions), env.world.robot.ee_target.copy())
            actions = check_in_space(policy.act(observation), f"policy {config.policy}")
            if len(actions) == 0:
                ended_by = "policy_done"
                break
            preview = policy.preview
            actions = actions[: limit - len(episode.actions)]
            started = time.perf_counter()
            rollout = env.run(actions)
            episode.execute_seconds += time.perf_counter() - started
            if solved_at is None and rollout.solved_at is not None:
                solved_at = len(episode.actions) + rollout.solved_at
            episode.actions += list(rollout.actions)
            episode.frames += list(rollout.rgb[1:])
            episode.depths += list(rollout.depth[1:])
            episode.beside += list(preview[: len(actions)]) if preview is not None else list(rollout.rgb[1:])
            rgb, depth = episode.frames[-1], episode.depths[-1]
        success = env.is_success()
        distances = env.task.distances(env.world, env.goal)
    frames = np.stack(episode.frames)
    with output_dir(folder / "rollout", force=True) as tmp:
        write_rollout(tmp, frames, np.stack(episode.depths))
        if keep_video:
            beside = np.concatenate([np.stack(episode.beside), frames], axis=2)
            write_video(tmp / "plan_vs_reality.mp4", beside, FPS)
            write_gif(tmp / GIF_NAME, beside, FPS)
    stats = policy.stats()
    source = {"policy": config.policy, "replan_every": config.replan_every, **stats}
    actions = np.asarray(episode.actions, dtype=np.float32).reshape(-1, 4)
    write_json(folder / "actions.json", actions_document(actions, source))
    for k, plan in enumerate(getattr(policy, "plans", [])):
        document = plan_document(models.planner, config.planner, scene["instruction"], config.steps, config.guidance,
                                 plan.seed, 1, plan.seconds, scene, Path(config.out) / relative / "scene",
                                 len(plan.rgb) - 1)  # where the scene is once the output folder is in place
        with output_dir(folder / "plans" / f"{k:02d}", force=True) as tmp:
            write_plan(tmp, {**document, "after_actions": plan.after_actions, "still": plan.still},
                       [(plan.rgb, plan.depth)])
    plans = stats.get("plans", 0)
    seconds = {**policy.seconds, "execute": episode.execute_seconds}
    record = {"task": task_name, "split": config.split, "seed": seed, "instruction": scene["instruction"],
              "success": bool(success), "steps": len(actions), "time_limit": limit, "ended_by": ended_by,
              "solved_at": solved_at,
              "plans": plans, "replans": max(0, plans - 1), "still_plans": stats.get("still_plans", 0),
              "seconds": {k: round(v, 4) for k, v in seconds.items()}, "distances": distances,
              "folder": str(relative)}
    write_json(folder / "result.json", {"format": "vid2act.result/1", **record})
    return record


def _worker_init(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def _episode_job(args) -> dict:
    return run_episode(*args)


# --- many episodes -----------------------------------------------------------------------------------------
def check_output(config: EvalConfig, force: bool) -> None:
    """The eval folder: apart from the models it reads, and new (or --force)."""
    check_apart({"--out": config.out}, inputs_of(config))
    check_can_write(Path(config.out), force)


def evaluate(config: EvalConfig, force: bool = False,
             on_episode: Callable[[dict, int, int], None] = lambda record, done, total: None) -> dict:
    config.check()
    out = Path(config.out)
    check_output(config, force)
    first = seed_range(config.split)[0] + config.first_seed
    jobs, shown = [], {}
    for task in config.tasks:
        for i in range(config.episodes):
            keep = shown.get(task, 0) < VIDEO_EPISODES
            shown[task] = shown.get(task, 0) + 1
            jobs.append((config, task, first + i, None, keep))  # the folder comes with the output folder
    started = time.perf_counter()
    records = []
    with output_dir(out, force) as tmp:
        jobs = [(c, t, s, tmp, Path("episodes") / f"{t}-{s}", k) for c, t, s, _, k in jobs]
        if config.workers == 1:
            _load_models(config)
            for job in jobs:
                records.append(run_episode(*job))
                on_episode(records[-1], len(records), len(jobs))
        else:
            for record in map_in_workers(_episode_job, jobs, config.workers, _worker_init,
                                         (max(1, (os.cpu_count() or 1) // config.workers),)):
                records.append(record)
                on_episode(record, len(records), len(jobs))
        seconds = time.perf_counter() - started
        info = {"format": EVAL_FORMAT, "config": asdict(config), "aggregates": aggregate(records),
                "wall_seconds": round(seconds, 2), "episodes_per_hour": round(3600 * len(records) / seconds, 1),
                "episodes": records}
        write_json(tmp / "eval_info.json", info)
        write_reports(info, tmp, str(out))
    return info


def aggregate(records: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(f"{r['task']}/{r['split']}", []).append(r)
    for r in records:
        groups.setdefault(f"all/{r['split']}", []).append(r)
    out = {}
    for name, rows in groups.items():
        wins = sum(r["success"] for r in rows)
        low, high = wilson(wins, len(rows))
        solved = sum(r["solved_at"] is not None for r in rows)
        out[name] = {"episodes": len(rows), "successes": wins, "success_rate": wins / len(rows),
                     "wilson95": [round(low, 4), round(high, 4)],
                     "solved_at_some_step": solved, "solved_at_some_step_rate": solved / len(rows),
                     "mean_seconds": {k: round(float(np.mean([r["seconds"][k] for r in rows])), 4)
                                      for k in rows[0]["seconds"]},
                     "mean_steps": round(float(np.mean([r["steps"] for r in rows])), 1),
                     "mean_replans": round(float(np.mean([r["replans"] for r in rows])), 2),
                     "mean_still_plans": round(float(np.mean([r["still_plans"] for r in rows])), 2),
                     "ended_by": {why: sum(r["ended_by"] == why for r in rows)
                                  for why in sorted({r["ended_by"] for r in rows})}}
    return out
