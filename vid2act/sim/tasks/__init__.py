"""The task suite: families, splits and seed ranges."""
from __future__ import annotations

from vid2act.errors import UsageError
from vid2act.sim.tasks.base import Task
from vid2act.sim.tasks.pick_place import PickPlace
from vid2act.sim.tasks.push import Push
from vid2act.sim.tasks.reach import Reach
from vid2act.sim.tasks.stack import Stack

TASKS: dict[str, Task] = {task.name: task for task in (Reach(), Push(), PickPlace(), Stack())}
SPLITS = ("train", "test", "heldout")
# Train and test seeds never overlap. `heldout` draws test seeds, but only the held-out combinations,
# which `train` and `test` never contain.
SEED_RANGES = {"train": (0, 999_999), "test": (1_000_000, 1_999_999)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)} (see `vid2act tasks`)")
    return TASKS[name]


def seed_range(split: str) -> tuple[int, int]:
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)}")
    return SEED_RANGES["train" if split == "train" else "test"]


def check_seed(split: str, seed: int) -> None:
    first, last = seed_range(split)
    if not first <= seed <= last:
        hint = next((f" (seed {seed} belongs to --split {name})" for name, (a, b) in SEED_RANGES.items()
                     if a <= seed <= b), "")
        raise UsageError(f"seed {seed} is outside the {split} split's seed range [{first}, {last}]{hint}")


def combination_name(combination) -> str:
    """("red", "block", "blue") -> "red block -> blue pad"; a lone colour is a pad."""
    objects = [" ".join(combination[i:i + 2]) for i in range(0, len(combination), 2)]
    if len(objects[-1].split()) == 1:
        objects[-1] += " pad"
    return " -> ".join(objects)


def suite_json() -> list[dict]:
    """The whole suite as `vid2act tasks --json` prints it."""
    seeds = {split: list(bounds) for split, bounds in SEED_RANGES.items()}
    return [{**task.to_json(), "seeds": seeds, "splits": list(SPLITS)} for task in TASKS.values()]
