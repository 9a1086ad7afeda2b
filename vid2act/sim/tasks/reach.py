from __future__ import annotations

from vid2act.sim.tasks.base import OPEN, Task, hold, move_to, place, random_shape, spare_colors, xy_distance
from vid2act.sim.world import COLORS, PAD_HALF, ObjectSpec
from vid2act.spec import STEP_LIMITS

REACH_HEIGHT = 0.08  # the grasp point must come this low over the pad


class Reach(Task):
    name = "reach"
    description = "move the gripper to a coloured pad"
    success_criterion = (f"grasp point within {PAD_HALF - 0.01:.2f} m of the pad centre in xy and below "
                         f"{REACH_HEIGHT:.2f} m above the table")
    templates = ("move the gripper to the {target}", "reach the {target}", "go to the {target}")
    heldout = (("purple",),)
    max_steps = STEP_LIMITS["reach"]

    def combinations(self):
        return [(color,) for color in COLORS]

    def layout(self, rng, combination):
        (color,) = combination
        pads = [color] + spare_colors(rng, {color}, 2)
        blocks = spare_colors(rng, set(pads), 2)
        specs = [ObjectSpec("pad", c) for c in pads] + [ObjectSpec(random_shape(rng), c) for c in blocks]
        return place(rng, specs), {"target": f"{color} pad"}

    def is_success(self, world, goal):
        ee = world.robot.ee_position()
        return xy_distance(ee, world.object_position(goal["target"])) < PAD_HALF - 0.01 and ee[2] < REACH_HEIGHT

    def distances(self, world, goal):
        ee = world.robot.ee_position()
        return {"gripper_to_target_xy": xy_distance(ee, world.object_position(goal["target"])),
                "gripper_height": float(ee[2])}

    def oracle(self, world, goal):
        target = world.object_position(goal["target"])
        yield from move_to(world, (*target[:2], 0.04), OPEN)
        yield from hold(OPEN, 2)
