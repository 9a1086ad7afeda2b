"""What every task family shares: combinations and held-out split, object placement, oracle motions."""
from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from vid2act.sim.world import (COLORS, OBJECT_HALF, PAD_HALF, SHAPES, WORKSPACE_HIGH, WORKSPACE_LOW, ObjectSpec,
                               World)

PLACE_LOW = np.array([0.38, -0.2])
PLACE_HIGH = np.array([0.66, 0.2])
# Minimum distance between object centres, by the pair of kinds (pads are "pad", the rest "object").
MIN_GAP = {("pad", "pad"): 2 * PAD_HALF + 0.03, ("object", "pad"): PAD_HALF + OBJECT_HALF + 0.02,
           ("object", "object"): 4 * OBJECT_HALF + 0.02}
ORACLE_STEP = 0.025  # the oracle moves at most this far per axis per action (bound: MAX_STEP)
OPEN, CLOSED = 0.0, 1.0

Action = np.ndarray
Placement = list[tuple[ObjectSpec, np.ndarray]]


def kind(spec: ObjectSpec) -> str:
    return "pad" if spec.shape == "pad" else "object"


class Task:
    """A task family. Subclasses set the class attributes and implement the four methods below."""
    name: str
    description: str
    success_criterion: str
    templates: tuple[str, ...]
    heldout: tuple[tuple[str, ...], ...]
    max_steps: int

    def combinations(self) -> list[tuple[str, ...]]:
        """Every (colour, object, target) combination the family can ask for."""
        raise NotImplementedError

    def layout(self, rng: np.random.Generator, combination: tuple[str, ...]) -> tuple[Placement, dict]:
        """Objects with their table positions (xy), and the goal: {"object": name?, "target": name}."""
        raise NotImplementedError

    def is_success(self, world: World, goal: dict) -> bool:
        raise NotImplementedError

    def distances(self, world: World, goal: dict) -> dict[str, float]:
        raise NotImplementedError

    def oracle(self, world: World, goal: dict) -> Iterator[Action]:
        """The scripted expert, closed loop: yields one action, is resumed after it ran, and so on."""
        raise NotImplementedError

    def split_combinations(self, split: str) -> list[tuple[str, ...]]:
        if split == "heldout":
            return list(self.heldout)
        return [c for c in self.combinations() if c not in self.heldout]

    def to_json(self) -> dict:
        return {"name": self.name, "description": self.description, "success": self.success_criterion,
                "templates": list(self.templates), "colors": list(COLORS), "objects": list(SHAPES),
                "combinations": len(self.combinations()), "heldout": [list(c) for c in self.heldout],
                "max_steps": self.max_steps}


class ObjectOntoPad(Task):
    """Families whose goal is one object on one pad; the scene adds a spare pad and a spare object."""

    def combinations(self):
        return object_target_combinations(("pad",))

    def placement_ok(self, placement: Placement) -> bool:
        return True

    def layout(self, rng, combination):
        color, shape, target_color = combination
        obj, target = ObjectSpec(shape, color), ObjectSpec("pad", target_color)
        others = spare_colors(rng, {color, target_color}, 2)
        specs = [obj, target, ObjectSpec("pad", others[0]), ObjectSpec(random_shape(rng), others[1])]
        return place(rng, specs, self.placement_ok), {"object": obj.name, "target": target.name}


def object_target_combinations(target_shapes: tuple[str, ...]) -> list[tuple[str, ...]]:
    """(colour, shape, target colour[, target shape]) with the two colours different."""
    combos = []
    for color, shape, target_color in itertools.product(COLORS, SHAPES, COLORS):
        if color != target_color:
            combos += [(color, shape, target_color) + ((s,) if s != "pad" else ()) for s in target_shapes]
    return combos


def spare_colors(rng: np.random.Generator, used: set[str], count: int) -> list[str]:
    free = [c for c in COLORS if c not in used]
    return [free[i] for i in rng.permutation(len(free))[:count]]


def random_shape(rng: np.random.Generator) -> str:
    return SHAPES[int(rng.integers(len(SHAPES)))]


def place(rng: np.random.Generator, specs: list[ObjectSpec], accept=lambda placement: True,
          tries: int = 2000) -> Placement:
    """Scatter `specs` over the table with room between them; `accept` can veto a whole placement."""
    for _ in range(tries):
        placement: Placement = []
        for spec in specs:
            for _ in range(100):
                xy = rng.uniform(PLACE_LOW, PLACE_HIGH)
                if all(np.linalg.norm(xy - other) >= MIN_GAP[tuple(sorted((kind(spec), kind(o))))]
                       for o, other in placement):
                    placement.append((spec, xy))
                    break
            else:
                break
        if len(placement) == len(specs) and accept(placement):
            return placement
    raise RuntimeError(f"could not place {[s.name for s in specs]} on the table")


def segment_distance(point, start, end) -> float:
    direction = end - start
    t = np.clip(np.dot(point - start, direction) / np.dot(direction, direction), 0.0, 1.0)
    return float(np.linalg.norm(point - (start + t * direction)))


# --- oracle motions -------------------------------------------------------------------------------
def move_to(world: World, point, gripper: float, step: float = ORACLE_STEP) -> Iterator[Action]:
    """Move the commanded grasp point in straight steps to `point`, holding the gripper command."""
    point = np.clip(np.asarray(point, dtype=float), WORKSPACE_LOW, WORKSPACE_HIGH)
    while True:
        delta = point - world.robot.ee_target
        largest = np.abs(delta).max()
        if largest < 1e-6:
            return
        yield np.array([*(delta * min(1.0, step / largest)), gripper])


def hold(gripper: float, frames: int) -> Iterator[Action]:
    for _ in range(frames):
        yield np.array([0.0, 0.0, 0.0, gripper])


def holding(world: World, obj: str) -> bool:
    """The closed fingers hold `obj` (they are as far apart as it is wide, around its centre)."""
    robot = world.robot
    return (robot.gripper > 0.5 and robot.finger_width() > OBJECT_HALF
            and np.linalg.norm(robot.ee_position() - world.object_position(obj)) < 0.02)


def pick_and_place(world: World, obj: str, place_xy, place_height: float) -> Iterator[Action]:
    """Grasp `obj` from above, carry it over `place_xy`, lower it until its centre is at `place_height`,
    let go and back off upwards. From a state another policy left (a recovery episode): carry on with an
    object already held; otherwise first let go and rise clear of the objects."""
    position = world.object_position(obj)
    if not holding(world, obj):
        if world.robot.gripper > 0.5 or world.robot.ee_target[2] < 0.12:
            yield from move_to(world, (*world.robot.ee_target[:2], max(0.12, world.robot.ee_target[2])), OPEN)
        yield from move_to(world, (*position[:2], 0.12), OPEN)
        yield from move_to(world, (*position[:2], position[2] - 0.005), OPEN)
        yield from hold(CLOSED, 5)
    yield from move_to(world, (*world.robot.ee_target[:2], 0.16), CLOSED)
    yield from move_to(world, (*place_xy, 0.16), CLOSED)
    yield from move_to(world, (*place_xy, place_height + 0.004), CLOSED)
    yield from hold(OPEN, 4)
    yield from move_to(world, (*place_xy, 0.14), OPEN)


def xy_distance(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a)[:2] - np.asarray(b)[:2]))


def resting_on_table(position) -> bool:
    return abs(position[2] - OBJECT_HALF) < 0.01
