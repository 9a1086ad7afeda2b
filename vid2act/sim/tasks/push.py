from __future__ import annotations

import numpy as np

from vid2act.sim.tasks.base import (CLOSED, ORACLE_STEP, ObjectOntoPad, move_to, resting_on_table, segment_distance,
                                    xy_distance)
from vid2act.sim.world import OBJECT_HALF, PAD_HALF
from vid2act.spec import STEP_LIMITS

PUSH_HEIGHT = 0.02  # grasp point height while pushing: closed fingertips just above the table
APPROACH_OFFSET = OBJECT_HALF + 0.045  # where the pusher comes down, behind the object's centre
PUSH_STEP = 0.015  # slower than free motion, so the object does not slide on past the pusher
SETTLED = 0.01  # close enough to the pad centre


def unit(v):
    return v / max(np.linalg.norm(v), 1e-9)


class Push(ObjectOntoPad):
    name = "push"
    description = "push an object across the table onto a coloured pad (no grasp)"
    success_criterion = (f"object centre within {PAD_HALF:.2f} m of the pad centre in xy, object resting on "
                         "the table")
    templates = ("push the {object} onto the {target}", "slide the {object} to the {target}")
    heldout = (("red", "block", "blue"), ("green", "cylinder", "yellow"), ("blue", "block", "orange"),
               ("yellow", "cylinder", "purple"), ("purple", "block", "green"), ("orange", "cylinder", "red"))
    max_steps = STEP_LIMITS["push"]

    def placement_ok(self, placement):
        """The pusher has room behind the object, and the path to the pad clears the spare object."""
        start, goal = placement[0][1], placement[1][1]
        pusher = start - unit(goal - start) * APPROACH_OFFSET
        return (0.1 <= np.linalg.norm(goal - start) <= 0.3 and pusher[0] >= 0.32
                and segment_distance(placement[3][1], pusher, goal) >= 2 * OBJECT_HALF + 0.04)

    def is_success(self, world, goal):
        position = world.object_position(goal["object"])
        return xy_distance(position, world.object_position(goal["target"])) < PAD_HALF and resting_on_table(position)

    def distances(self, world, goal):
        position = world.object_position(goal["object"])
        return {"object_to_target_xy": xy_distance(position, world.object_position(goal["target"])),
                "gripper_to_object": float(np.linalg.norm(world.robot.ee_position() - position))}

    def oracle(self, world, goal):
        target = world.object_position(goal["target"])[:2]
        for _ in range(3):  # approach from behind, push; approach again if the object got away
            position = world.object_position(goal["object"])[:2]
            if np.linalg.norm(target - position) < SETTLED:
                break
            if not self._pushing(world, position, target):  # a recovery may start mid-push: go on pushing
                behind = position - unit(target - position) * APPROACH_OFFSET
                yield from move_to(world, (*world.robot.ee_target[:2], 0.1), CLOSED)
                yield from move_to(world, (*behind, 0.1), CLOSED)
                yield from move_to(world, (*behind, PUSH_HEIGHT), CLOSED)
            yield from self._push(world, goal["object"], target)
        yield from move_to(world, (*world.robot.ee_target[:2], 0.1), CLOSED)

    @staticmethod
    def _pushing(world, position, target) -> bool:
        """The closed pusher is down at the table, behind the object and on the line to `target`."""
        direction = unit(target - position)
        offset = world.robot.ee_target[:2] - position
        along = float(offset @ direction)
        return (world.robot.ee_target[2] < PUSH_HEIGHT + 0.005 and world.robot.gripper > 0.5
                and along <= -OBJECT_HALF and np.linalg.norm(offset - along * direction) <= 0.03)

    @staticmethod
    def _push(world, obj, target):
        """Push towards `target`, steering back onto the line through the object's centre; return when the
        object arrives or the pusher is no longer behind it."""
        while True:
            position = world.object_position(obj)[:2]
            distance = np.linalg.norm(target - position)
            if distance < SETTLED:
                return
            direction = (target - position) / distance
            offset = world.robot.ee_target[:2] - position
            along = float(offset @ direction)
            lateral = offset - along * direction
            if along > -OBJECT_HALF or np.linalg.norm(lateral) > 0.03:
                return
            step = direction * min(PUSH_STEP, distance) - 0.5 * lateral
            yield np.array([*np.clip(step, -ORACLE_STEP, ORACLE_STEP), 0.0, CLOSED])
