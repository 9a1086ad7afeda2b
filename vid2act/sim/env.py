"""A task in its world, built from a scene: make scenes, step actions, record rollouts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from vid2act.camera import Camera
from vid2act.formats import SCENE_FORMAT
from vid2act.sim.tasks import TASKS, get_task
from vid2act.sim.world import ObjectSpec, World
from vid2act.spec import ACTION_SPACE, FRAME_INTERVAL, SPLITS, TIMESTEP, check_seed

SPLIT_IDS = {split: i for i, split in enumerate(SPLITS)}
EE_START_LOW = np.array([0.40, -0.12, 0.18])
EE_START_HIGH = np.array([0.55, 0.12, 0.28])


def make_scene(task_name: str, seed: int, split: str = "test", image_size=(48, 64)) -> dict:
    """The start state for (task, split, seed) as the scene.json document. Same inputs, same document."""
    task = get_task(task_name)
    check_seed(split, seed)
    rng = np.random.default_rng([list(TASKS).index(task_name), SPLIT_IDS[split], seed])
    combinations = task.split_combinations(split)
    combination = combinations[int(rng.integers(len(combinations)))]
    placement, goal = task.layout(rng, combination)
    template = task.templates[int(rng.integers(len(task.templates)))]
    ee_start = rng.uniform(EE_START_LOW, EE_START_HIGH)

    world = World(image_size)
    try:
        for spec, xy in placement:
            body = world.add_object(spec)
            yaw = rng.uniform(-0.3, 0.3) if spec.shape == "block" else 0.0
            world.client.resetBasePositionAndOrientation(body, (*xy, spec.rest_height),
                                                         world.client.getQuaternionFromEuler((0, 0, yaw)))
        world.robot.place_at(ee_start)
        state = world.get_state()
    finally:
        world.close()
    return {
        "format": SCENE_FORMAT,
        "task": task_name,
        "split": split,
        "seed": seed,
        "instruction": template.format(**goal),
        "goal": goal,
        "combination": list(combination),
        "image_size": list(image_size),
        "camera": world.camera.to_json(),
        "physics": {"timestep": TIMESTEP, "frame_interval": FRAME_INTERVAL},
        "action_space": ACTION_SPACE,
        "state": state,
    }


@dataclass
class Observation:
    rgb: np.ndarray  # uint8 [H, W, 3], the camera's current frame
    depth: np.ndarray  # float32 [H, W], metres
    steps: int  # actions executed so far in this episode
    # [3] metres: the commanded grasp point, the controller's set point that every action moves. The robot
    # knows it (it is the start's plus every move since); None where it is unknown, and the policies read it
    # off the frame instead.
    ee_target: np.ndarray | None = None


@dataclass
class Rollout:
    """What a run of actions produced: T+1 frames for T actions."""
    rgb: np.ndarray  # uint8 [T+1, H, W, 3]
    depth: np.ndarray  # float32 [T+1, H, W], metres
    actions: np.ndarray  # float32 [T, A]
    ee_pose: np.ndarray  # float32 [T+1, 7], grasp point position and quaternion
    ee_target: np.ndarray  # float64 [T+1, 3], the commanded grasp point the arm is driven towards
    gripper_width: np.ndarray  # float32 [T+1], metres between the fingers
    solved: np.ndarray  # bool [T], the task's success test after each action (a task solved, then undone, shows)
    success: bool
    distances: dict

    @property
    def solved_at(self) -> int | None:
        """After how many actions the task's success test first held, or None: `success` is the test after the
        last one, which a policy that solves the task and then undoes it fails."""
        return int(np.argmax(self.solved)) + 1 if self.solved.any() else None


class SceneWorld:
    """The world of one scene, restored exactly from its scene document, that runs actions and records the
    rollout (no reset or step: the Gymnasium environment over it is `vid2act.gym.TaskEnv`)."""

    def __init__(self, scene: dict):
        self.scene = scene
        self.task = get_task(scene["task"])
        self.goal = scene["goal"]
        self.world = World(tuple(scene["image_size"]), Camera.from_json(scene["camera"]))
        for obj in scene["state"]["objects"]:
            self.world.add_object(ObjectSpec(obj["shape"], obj["color"]))
        self.world.set_state(scene["state"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.world.close()

    def is_success(self) -> bool:
        return bool(self.task.is_success(self.world, self.goal))

    def run(self, actions: Iterable[np.ndarray], max_steps: int | None = None) -> Rollout:
        """Execute `actions` one frame interval each, rendering after every one. `actions` may be a
        generator that reads the world between actions (the oracle is one)."""
        frames = [self.world.render()]
        poses = [self.world.robot.ee_pose()]
        targets = [self.world.robot.ee_target.copy()]
        widths = [self.world.robot.finger_width()]
        solved = []
        done = []
        for action in actions:
            if max_steps is not None and len(done) >= max_steps:
                break
            # Step with the float32 value that gets stored, so a replay of the stored actions is exact.
            action = np.asarray(action, dtype=np.float32)
            self.world.step(action)
            done.append(action)
            frames.append(self.world.render())
            poses.append(self.world.robot.ee_pose())
            targets.append(self.world.robot.ee_target.copy())
            widths.append(self.world.robot.finger_width())
            solved.append(self.is_success())
        return Rollout(
            rgb=np.stack([f[0] for f in frames]), depth=np.stack([f[1] for f in frames]),
            actions=np.stack(done) if done else np.zeros((0, len(ACTION_SPACE["names"])), np.float32),
            ee_pose=np.asarray(poses, np.float32), ee_target=np.asarray(targets),
            gripper_width=np.asarray(widths, np.float32), solved=np.asarray(solved, bool),
            success=self.is_success(), distances=self.task.distances(self.world, self.goal))

    def reached_scene(self, actions_taken: int) -> dict:
        """The state the world is in now as a scene document: a start for the next plan. `steps_taken`
        counts the actions since the original scene, across every continuation."""
        scene = {**self.scene, "state": self.world.get_state()}
        scene["steps_taken"] = self.scene.get("steps_taken", 0) + actions_taken
        return scene

    def run_oracle(self) -> Rollout:
        return self.run(self.task.oracle(self.world, self.goal), max_steps=self.task.max_steps)
