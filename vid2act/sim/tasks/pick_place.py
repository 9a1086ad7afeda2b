from __future__ import annotations

import numpy as np

from vid2act.sim.tasks.base import ObjectOntoPad, pick_and_place, resting_on_table, xy_distance
from vid2act.sim.world import OBJECT_HALF, PAD_HALF
from vid2act.spec import STEP_LIMITS


class PickPlace(ObjectOntoPad):
    name = "pick_place"
    description = "pick an object up and put it down on a coloured pad"
    success_criterion = (f"object centre within {PAD_HALF:.2f} m of the pad centre in xy, resting on the table, "
                         "and released (not touching the robot)")
    templates = ("pick up the {object} and place it on the {target}", "put the {object} on the {target}",
                 "move the {object} onto the {target}")
    heldout = (("red", "cylinder", "green"), ("green", "block", "purple"), ("blue", "cylinder", "red"),
               ("yellow", "block", "blue"), ("purple", "cylinder", "orange"), ("orange", "block", "yellow"))
    max_steps = STEP_LIMITS["pick_place"]

    def is_success(self, world, goal):
        position = world.object_position(goal["object"])
        return (xy_distance(position, world.object_position(goal["target"])) < PAD_HALF
                and resting_on_table(position) and not world.in_contact(goal["object"]))

    def distances(self, world, goal):
        position = world.object_position(goal["object"])
        return {"object_to_target_xy": xy_distance(position, world.object_position(goal["target"])),
                "object_height": float(position[2]),
                "gripper_to_object": float(np.linalg.norm(world.robot.ee_position() - position))}

    def oracle(self, world, goal):
        target = world.object_position(goal["target"])
        yield from pick_and_place(world, goal["object"], target[:2], OBJECT_HALF)
