"""The task suite: families, splits and seed ranges."""
from __future__ import annotations

from vid2act.errors import UsageError
from vid2act.sim.tasks.base import Task
from vid2act.sim.tasks.pick_place import PickPlace
from vid2act.sim.tasks.push import Push
from vid2act.sim.tasks.reach import Reach
from vid2act.sim.tasks.stack import Stack
from vid2act.spec import SEED_RANGES, SPLITS

TASKS: dict[str, Task] = {task.name: task for task in (Reach(), Push(), PickPlace(), Stack())}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)} (see `vid2act tasks`)")
    return TASKS[name]


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
