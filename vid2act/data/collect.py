"""Scripted expert demonstrations, in parallel processes, resumable after any interruption.

Episode i is fully decided by the configuration: task `tasks[i % len(tasks)]`, and seeds
`first_seed(split) + seed + i * ATTEMPTS + attempt` tried in order until the oracle succeeds. So any number
of workers, and any number of interruptions, give the same bytes."""
from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from vid2act import __version__
from vid2act.data.dataset import (DATASET_FORMAT, dataset_stats, episode_path, read_episode, write_episode,
                                  write_meta)
from vid2act.errors import MAX_WORKERS, UsageError, Vid2ActError, check_range
from vid2act.files import LOCK_FILE, clear_folder, load_json, lock_folder, write_video
from vid2act.sim.env import Env, make_scene
from vid2act.sim.tasks import SEED_RANGES, SPLITS, TASKS, get_task, seed_range
from vid2act.spec import ACTION_SPACE, FPS, FRAME_INTERVAL, TIMESTEP, image_size_problem

ATTEMPTS = 4  # seeds reserved per episode, for the rare scene the oracle fails


@dataclass(frozen=True, kw_only=True)
class CollectConfig:
    tasks: tuple[str, ...]
    episodes: int
    split: str = "train"
    seed: int = 0
    image_size: tuple[int, int] = (48, 64)
    previews: bool = False

    def check(self) -> None:
        for task in self.tasks:
            get_task(task)
        if not self.tasks:
            raise UsageError("name at least one task")
        if self.episodes < 1:
            raise UsageError(f"--episodes must be at least 1, not {self.episodes}")
        first, last = seed_range(self.split)
        if self.seed < 0 or first + self.seed + self.episodes * ATTEMPTS - 1 > last:
            raise UsageError(f"--seed {self.seed} with {self.episodes} episodes needs seeds beyond the {self.split} "
                             f"split's range [{first}, {last}] ({ATTEMPTS} seeds per episode)")
        problem = image_size_problem(*self.image_size)
        if problem:
            raise UsageError(f"image size {self.image_size[0]}x{self.image_size[1]}: {problem}")

    def identity(self) -> dict:
        """What must match for an existing folder to be resumed (the episode count may grow)."""
        return {k: v for k, v in asdict(self).items() if k != "episodes"}

    def to_json(self) -> dict:
        return {**asdict(self), "tasks": list(self.tasks), "image_size": list(self.image_size)}


def collect_episode(config: CollectConfig, root: Path, index: int) -> dict:
    """Make, run and store episode `index`; return its record."""
    task = config.tasks[index % len(config.tasks)]
    first = seed_range(config.split)[0] + config.seed + index * ATTEMPTS
    for attempt in range(ATTEMPTS):
        seed = first + attempt
        scene = make_scene(task, seed, config.split, config.image_size)
        with Env(scene) as env:
            rollout = env.run_oracle()
        if rollout.success:
            break
    else:
        raise Vid2ActError(f"the {task} oracle failed on all {ATTEMPTS} seeds of episode {index} "
                           f"({first}..{first + ATTEMPTS - 1}); this is a bug, please report it")
    if config.previews:  # before the episode: an episode file on disk means "done", preview included
        write_video(root / "previews" / f"{index:06d}.mp4", rollout.rgb, fps=FPS)
    write_episode(episode_path(root, index), {
        "rgb": rollout.rgb, "depth": rollout.depth, "actions": rollout.actions, "ee_pose": rollout.ee_pose,
        "ee_target": rollout.ee_target, "gripper_width": rollout.gripper_width,
        "instruction": scene["instruction"], "task": task,
        "split": config.split, "seed": seed, "scene": json.dumps(scene), "attempt": attempt})
    return {"index": index, "task": task, "seed": seed, "attempt": attempt, "frames": len(rollout.rgb)}


_PARENT: list[int] = []  # in a worker: the pid of the collect that started it


def _worker_init() -> None:
    """A worker dies with its parent: a kill -9 of `vid2act collect` must not leave workers writing episodes
    (Linux: the kernel's parent-death signal; elsewhere the check before each episode)."""
    import ctypes
    import signal
    import sys
    _PARENT.append(os.getppid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
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
        if previous != config.identity():
            raise UsageError(f"{root} holds a dataset collected with other settings ({previous}); "
                             "pass --force to replace it, or choose another --out")
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
            on_episode: Callable[[dict], None] = lambda record: None, on_start=lambda todo, total: None) -> dict:
    """Collect every missing episode of `config` into `root`, then write the statistics. Returns info."""
    config.check()
    check_range("--workers", workers, 1, MAX_WORKERS)
    root = Path(root)
    todo, lock = prepare(config, root, force)
    try:
        on_start(len(todo), config.episodes)
        jobs = [(config, root, index) for index in todo]
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                on_episode(collect_episode(*job))
        else:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init)
            try:
                for record in pool.map(_collect_episode, jobs, chunksize=1):
                    on_episode(record)
            finally:  # on an error or Ctrl-C, the episodes not yet started are dropped, not run
                pool.shutdown(wait=True, cancel_futures=True)
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
              "oracle_failures_skipped": retries}
    document = info(config, complete=True, counts=counts)
    write_meta(root, document, stats)
    return document
