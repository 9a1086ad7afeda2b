"""Scripted expert demonstrations, in parallel processes, resumable after any interruption.

Episode i is fully decided by the configuration: task `tasks[i % len(tasks)]`, and seeds
`first_seed(split) + seed + i * attempts + attempt` tried in order until the oracle succeeds. So any number
of workers, and any number of interruptions, give the same bytes.

Recovery episodes (`recover`, DAgger's idea): a learnt policy acts first, for a number of actions drawn per
attempt, and the expert takes over from the state it left; a seed the policy solves before the hand-over
is passed over. The expert's part teaches a learner to come back from its own mistakes, which
demonstrations that never make them cannot."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vid2act.version import __version__
from vid2act.data.dataset import (DATASET_FORMAT, EXPERT_FROM, dataset_stats, episode_path, read_episode,
                                  write_episode, write_meta)
from vid2act.errors import MAX_WORKERS, UsageError, Vid2ActError, check_range
from vid2act.formats import load_json
from vid2act.media import write_video
from vid2act.outputs import LOCK_FILE, check_apart, check_writable_place, clear_folder, lock_folder
from vid2act.processes import map_in_workers
from vid2act.shipped import path_of
from vid2act.sim.env import Observation, Rollout, SceneWorld, make_scene
from vid2act.sim.tasks import TASKS, get_task
from vid2act.spec import (ACTION_SPACE, FPS, FRAME_INTERVAL, SEED_RANGES, SPLITS, TIMESTEP, check_in_space,
                          image_size_problem, seed_range)

ATTEMPTS = 4  # seeds reserved per episode, for the rare scene the oracle fails
RECOVER_ATTEMPTS = 16  # and for a recovery episode, whose policy may solve the scene before the hand-over
RECOVER_POLICIES = ("sketch", "random")  # what recovery data was collected from (the sketch's is shipped's)
FIRST_HANDOVER = 8  # the policy takes FIRST_HANDOVER to the task's max_steps actions before the expert


@dataclass(frozen=True, kw_only=True)
class CollectConfig:
    tasks: tuple[str, ...]
    episodes: int
    split: str = "train"
    seed: int = 0
    image_size: tuple[int, int] = (48, 64)
    previews: bool = False
    recover: str = ""  # a policy that acts before the expert takes over; "" for plain demonstrations
    planner: str = "default"  # that policy's models (as `vid2act eval` names them)
    idm: str = "default"

    @property
    def attempts(self) -> int:
        return RECOVER_ATTEMPTS if self.recover else ATTEMPTS

    def check(self) -> None:
        for task in self.tasks:
            get_task(task)
        if not self.tasks:
            raise UsageError("name at least one task")
        if self.episodes < 1:
            raise UsageError(f"--episodes must be at least 1, not {self.episodes}")
        if self.recover and self.recover not in RECOVER_POLICIES:
            raise UsageError(f"--recover {self.recover!r}: the policies to recover from are "
                             f"{', '.join(RECOVER_POLICIES)}")
        first, last = seed_range(self.split)
        if self.seed < 0 or first + self.seed + self.episodes * self.attempts - 1 > last:
            raise UsageError(f"--seed {self.seed} with {self.episodes} episodes needs seeds beyond the {self.split} "
                             f"split's range [{first}, {last}] ({self.attempts} seeds per episode)")
        problem = image_size_problem(*self.image_size)
        if problem:
            raise UsageError(f"image size {self.image_size[0]}x{self.image_size[1]}: {problem}")

    def identity(self) -> dict:
        """What must match for an existing folder to be resumed (the episode count may grow)."""
        return {k: v for k, v in asdict(self).items() if k != "episodes"}

    def to_json(self) -> dict:
        return {**asdict(self), "tasks": list(self.tasks), "image_size": list(self.image_size)}


_RECOVERY: dict = {}  # in a process: "make", the recovery policy's factory, and "policy", made once from it


def _recovery_policy():
    if "policy" not in _RECOVERY:
        if _PARENT:  # a worker: one thread each, or the workers fight over the cores
            import torch
            torch.set_num_threads(1)
        _RECOVERY["policy"] = _RECOVERY["make"]()
    return _RECOVERY["policy"]


def join(parts: list[Rollout]) -> Rollout:
    """Rollouts run one after another in one world, as one (each starts at the last one's final frame)."""
    def cat(name):
        return np.concatenate([getattr(parts[0], name)] + [getattr(p, name)[1:] for p in parts[1:]])
    last = parts[-1]
    return Rollout(rgb=cat("rgb"), depth=cat("depth"), actions=np.concatenate([p.actions for p in parts]),
                   ee_pose=cat("ee_pose"), ee_target=cat("ee_target"), gripper_width=cat("gripper_width"),
                   solved=np.concatenate([p.solved for p in parts]), success=last.success, distances=last.distances)


def handed_over(env: SceneWorld, policy, count: int) -> Rollout | None:
    """The policy's first `count` actions in `env` (fewer if it stops), or None if it solves the task first."""
    policy.reset(env.scene)
    parts = [env.run([])]
    steps = 0
    while steps < count:
        observation = Observation(parts[-1].rgb[-1], parts[-1].depth[-1], steps, env.world.robot.ee_target.copy())
        actions = check_in_space(policy.act(observation), f"the {policy.name} policy")
        if len(actions) == 0:
            break
        parts.append(env.run(actions[: count - steps]))
        steps += len(parts[-1].actions)
        if env.is_success():
            return None
    return join(parts)


def run_attempt(config: CollectConfig, task: str, scene: dict, index: int, attempt: int) -> tuple[Rollout | None, int]:
    """One seed's episode (None if it is passed over) and the frame the expert took over at."""
    with SceneWorld(scene) as env:
        if not config.recover:
            rollout = env.run_oracle()
            return (rollout if rollout.success else None), 0
        rng = np.random.default_rng([config.seed, index, attempt])
        count = int(rng.integers(FIRST_HANDOVER, get_task(task).max_steps))
        before = handed_over(env, _recovery_policy(), count)
        if before is None:
            return None, 0
        expert = env.run_oracle()
        return (join([before, expert]) if expert.success else None), len(before.actions)


def collect_episode(config: CollectConfig, root: Path, index: int) -> dict:
    """Make, run and store episode `index`; return its record."""
    task = config.tasks[index % len(config.tasks)]
    first = seed_range(config.split)[0] + config.seed + index * config.attempts
    for attempt in range(config.attempts):
        seed = first + attempt
        scene = make_scene(task, seed, config.split, config.image_size)
        rollout, expert_from = run_attempt(config, task, scene, index, attempt)
        if rollout is not None:
            break
    else:
        if config.recover:
            raise Vid2ActError(f"on all {config.attempts} seeds of episode {index} ({task}, {first}.."
                               f"{first + config.attempts - 1}) the {config.recover} policy solved the task before "
                               f"the hand-over or the expert then failed: nothing to recover from; leave {task} out "
                               "of --tasks")
        raise Vid2ActError(f"the {task} oracle failed on all {ATTEMPTS} seeds of episode {index} "
                           f"({first}..{first + ATTEMPTS - 1}); this is a bug, please report it")
    if config.previews:  # before the episode: an episode file on disk means "done", preview included
        write_video(root / "previews" / f"{index:06d}.mp4", rollout.rgb, fps=FPS)
    write_episode(episode_path(root, index), {
        "rgb": rollout.rgb, "depth": rollout.depth, "actions": rollout.actions, "ee_pose": rollout.ee_pose,
        "ee_target": rollout.ee_target, "gripper_width": rollout.gripper_width,
        "instruction": scene["instruction"], "task": task,
        "split": config.split, "seed": seed, "scene": json.dumps(scene), "attempt": attempt,
        **({EXPERT_FROM: expert_from} if config.recover else {})})
    return {"index": index, "task": task, "seed": seed, "attempt": attempt, "frames": len(rollout.rgb)}


_PARENT: list[int] = []  # in a worker: the pid of the collect that started it


def _worker_init(make_recovery_policy: Callable | None) -> None:
    """A worker dies with its parent: a kill -9 of `vid2act collect` must not leave workers writing episodes
    (Linux: the kernel's parent-death signal; elsewhere the check before each episode)."""
    import ctypes
    import signal
    import sys
    _PARENT.append(os.getppid())
    _RECOVERY.clear()
    _RECOVERY["make"] = make_recovery_policy
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != _PARENT[0]:  # the parent died before the signal was armed
        os._exit(1)


def _collect_episode(args):
    if _PARENT and os.getppid() != _PARENT[0]:
        os._exit(1)
    return collect_episode(*args)


def prepare(config: CollectConfig, root: Path, force: bool):
    """Create or reopen the dataset folder and lock it for this process; return the indices of the episodes
    still to collect and the lock (closing it releases it)."""
    root = Path(root)
    info_path = root / "meta" / "info.json"
    check_writable_place(root)
    if config.recover:
        check_apart({"--out": root}, {f"--{kind}": str(path_of(getattr(config, kind), kind))
                                      for kind in ("planner", "idm")})
    if os.path.lexists(root) and (root.is_symlink() or not root.is_dir()):
        if not force:
            raise UsageError(f"{root} already exists and is not a folder; pass --force to replace it, or choose "
                             "another --out")
        root.unlink()
    elif root.exists() and any(p.name != LOCK_FILE for p in root.iterdir()) and not force:
        if not info_path.exists():
            raise UsageError(f"{root} exists and is not a vid2act dataset; pass --force to replace it")
        previous = load_json(info_path, "dataset info").get("config", {})
        previous = {k: (tuple(v) if isinstance(v, list) else v) for k, v in previous.items() if k != "episodes"}
        now = config.identity()
        changed = [k for k in sorted(now) if previous.get(k) != now[k]]  # settings since dropped do not count
        if changed:
            listed = "; ".join(f"{k} {previous.get(k)!r} then, {now.get(k)!r} now" for k in changed[:3])
            raise UsageError(f"{root} holds a dataset collected with other settings ({listed}); pass --force to "
                             "replace it, or choose another --out")
    lock = lock_folder(root, "collect")
    if force:
        clear_folder(root)
    for stale in root.glob("*/.*.tmp"):  # left by an interrupted write
        stale.unlink()
    write_meta(root, info(config, complete=False))
    return [i for i in range(config.episodes) if not episode_path(root, i).exists()], lock


def info(config: CollectConfig, complete: bool, counts: dict | None = None) -> dict:
    return {
        "format": DATASET_FORMAT, "vid2act_version": __version__, "config": config.to_json(), "complete": complete,
        "image_size": list(config.image_size), "fps": FPS,
        "frame_interval": FRAME_INTERVAL, "timestep": TIMESTEP, "action_space": ACTION_SPACE,
        "tasks": {name: TASKS[name].to_json() for name in config.tasks},
        "splits": {"names": list(SPLITS), "seeds": {k: list(v) for k, v in SEED_RANGES.items()},
                   "note": "train and test never contain a task's held-out combinations"},
        **({"counts": counts} if counts else {}),
    }


def collect(config: CollectConfig, root: Path, workers: int = 1, force: bool = False,
            on_episode: Callable[[dict], None] = lambda record: None, on_start=lambda todo, total: None,
            make_recovery_policy: Callable | None = None) -> dict:
    """Collect every missing episode of `config` into `root`, then write the statistics. Returns info. With
    `config.recover`, `make_recovery_policy()` makes the policy that acts first (in each worker process; it
    must pickle, as a module-level function or a partial of one does)."""
    config.check()
    check_range("--workers", workers, 1, MAX_WORKERS)
    if config.recover and make_recovery_policy is None:
        raise UsageError(f"--recover {config.recover}: give the policy's factory (make_recovery_policy)")
    _RECOVERY.clear()
    if config.recover:  # its models load (or are refused) before the folder exists
        _RECOVERY["make"] = make_recovery_policy
        _recovery_policy()
    root = Path(root)
    todo, lock = prepare(config, root, force)
    try:
        on_start(len(todo), config.episodes)
        jobs = [(config, root, index) for index in todo]
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                on_episode(collect_episode(*job))
        else:
            for record in map_in_workers(_collect_episode, jobs, workers, _worker_init, (make_recovery_policy,)):
                on_episode(record)
        return finish(config, root)
    finally:
        lock.close()


def finish(config: CollectConfig, root: Path) -> dict:
    """Compute statistics over every episode and mark the dataset complete."""
    actions, targets, per_task, retries = [], [], {}, 0
    for index in range(config.episodes):
        episode = read_episode(episode_path(root, index), ("actions", "ee_target", "task", "attempt"))
        actions.append(episode["actions"])
        targets.append(episode["ee_target"])
        per_task[episode["task"]] = per_task.get(episode["task"], 0) + 1
        retries += episode["attempt"]
    stats = dataset_stats(actions, targets, ACTION_SPACE["names"])
    counts = {"episodes": config.episodes, "frames": stats["frames"], "per_task": per_task,
              "seeds_passed_over" if config.recover else "oracle_failures_skipped": retries}
    document = info(config, complete=True, counts=counts)
    write_meta(root, document, stats)
    return document
