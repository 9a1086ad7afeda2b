from __future__ import annotations

import numpy as np

from vid2act.sim.tasks.base import (Task, object_target_combinations, pick_and_place, place, random_shape,
                                    resting_on_table, spare_colors, xy_distance)
from vid2act.sim.world import OBJECT_HALF, ObjectSpec
from vid2act.spec import STEP_LIMITS

STACK_XY_TOLERANCE = 0.02


class Stack(Task):
    name = "stack"
    description = "put one object on top of another"
    success_criterion = (f"top object centred within {STACK_XY_TOLERANCE:.2f} m of the bottom one in xy, one "
                         "object height above it (±0.01 m), bottom object on the table, top object released")
    templates = ("stack the {object} on the {target}", "put the {object} on top of the {target}")
    heldout = (("red", "block", "green", "cylinder"), ("green", "cylinder", "blue", "block"),
               ("blue", "block", "yellow", "block"), ("yellow", "cylinder", "purple", "cylinder"),
               ("purple", "block", "orange", "cylinder"), ("orange", "cylinder", "red", "block"))
    max_steps = STEP_LIMITS["stack"]

    def combinations(self):
        return object_target_combinations(("block", "cylinder"))

    def layout(self, rng, combination):
        color, shape, target_color, target_shape = combination
        obj, target = ObjectSpec(shape, color), ObjectSpec(target_shape, target_color)
        others = spare_colors(rng, {color, target_color}, 2)
        specs = [obj, target, ObjectSpec(random_shape(rng), others[0]), ObjectSpec("pad", others[1])]
        return place(rng, specs), {"object": obj.name, "target": target.name}

    def is_success(self, world, goal):
        top, bottom = world.object_position(goal["object"]), world.object_position(goal["target"])
        return (xy_distance(top, bottom) < STACK_XY_TOLERANCE and abs(top[2] - bottom[2] - 2 * OBJECT_HALF) < 0.01
                and resting_on_table(bottom) and not world.in_contact(goal["object"]))

    def distances(self, world, goal):
        top, bottom = world.object_position(goal["object"]), world.object_position(goal["target"])
        return {"object_to_target_xy": xy_distance(top, bottom),
                "height_error": float(top[2] - bottom[2] - 2 * OBJECT_HALF),
                "gripper_to_object": float(np.linalg.norm(world.robot.ee_position() - top))}

    def oracle(self, world, goal):
        bottom = world.object_position(goal["target"])
        yield from pick_and_place(world, goal["object"], bottom[:2], bottom[2] + 2 * OBJECT_HALF)
