"""Gymnasium environments over vid2act's own world: `vid2act/Reach-v0`, `vid2act/Push-v0`,
`vid2act/PickPlace-v0` and `vid2act/Stack-v0`, registered when this module is imported: by `import gymnasium,
vid2act` (Gymnasium first), by `gymnasium.make("vid2act:vid2act/Push-v0")`, which imports vid2act itself, or
by `import vid2act.gym`. A bare `import vid2act` loads neither Gymnasium nor the simulator.

    import gymnasium, vid2act
    env = gymnasium.make("vid2act/Push-v0", render_mode="rgb_array", split="test")
    observation, info = env.reset(seed=1_000_042)   # info["instruction"]; options={"split": ...} overrides
    observation, reward, terminated, truncated, info = env.step(env.action_space.sample())

The same scenes, world, camera, actions and success test as `vid2act scene` / `execute` / `eval`: no
second implementation. `reset(seed=S)` builds `vid2act scene --seed S --split SPLIT` (SPLIT from `make`, train
unless given, or from `options={"split": ...}`)
(the same start image, byte for byte), in a fresh PyBullet world, so that a seed always gives the same
episode (Gymnasium's `check_env` determinism checks pass); `step(action)` is one action of `execute`;
`info["is_success"]` is the task's success test on the current state, and an episode terminates when it
holds (as panda-gym's do) or is truncated at eval's time limit. Out-of-bounds actions are refused with a
clear error, as `execute` refuses them: vid2act never clips an action silently.

Observations: `pixels` (uint8 H x W x 3), `depth` (float32 metres), `agent_pos` (the grasp point in
metres and the gripper command in force, 0 open ... 1 closed) and `ee_target` (float64 metres: the commanded
grasp point, where the controller drives the arm and what every action moves; the measured grasp point lags
it while the arm moves or presses on something)."""
from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

from vid2act.errors import UsageError
from vid2act.camera import Camera
from vid2act.spec import (ACTION_SPACE, FPS, SPLITS, WORKSPACE_HIGH, WORKSPACE_LOW, image_size_problem, seed_range,
                          time_limit)

ENV_IDS = {"reach": "vid2act/Reach-v0", "push": "vid2act/Push-v0", "pick_place": "vid2act/PickPlace-v0",
           "stack": "vid2act/Stack-v0"}


class TaskEnv(gymnasium.Env):
    """One task family of the suite as a Gymnasium environment (see the module's docstring)."""
    metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}

    def __init__(self, task: str, render_mode: str | None = None, image_size: tuple[int, int] = (48, 64),
                 split: str = "train"):
        from vid2act.sim.tasks import get_task
        get_task(task)
        if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in image_size)):
            raise UsageError(f"image_size must be (height, width) in pixels, for example (48, 64); got {image_size!r}")
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; choose {', '.join(SPLITS)}")
        self.split = split
        problem = image_size_problem(*image_size)
        if problem:
            raise UsageError(f"image_size {tuple(image_size)}: {problem}")
        if render_mode not in (None, "rgb_array"):
            raise UsageError(f"unknown render_mode {render_mode!r}; vid2act renders rgb_array")
        self.task, self.image_size, self.render_mode = task, tuple(image_size), render_mode
        h, w = self.image_size
        low, high = np.array(WORKSPACE_LOW), np.array(WORKSPACE_HIGH)
        self.action_space = spaces.Box(np.array(ACTION_SPACE["low"], np.float32),
                                       np.array(ACTION_SPACE["high"], np.float32), dtype=np.float32)
        self.observation_space = spaces.Dict({
            "pixels": spaces.Box(0, 255, (h, w, 3), np.uint8),
            "depth": spaces.Box(0.0, Camera.far, (h, w), np.float32),
            "agent_pos": spaces.Box(np.r_[low - 0.1, 0.0].astype(np.float32),
                                    np.r_[high + 0.1, 1.0].astype(np.float32), dtype=np.float32),
            "ee_target": spaces.Box(low - 0.1, high + 0.1, dtype=np.float64)})
        self._env = None
        self._frame = None

    # --- Gymnasium's API --------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        from vid2act.sim.env import SceneWorld, make_scene
        super().reset(seed=seed)
        if options is not None and not isinstance(options, dict):
            raise UsageError(f"reset options must be a dict, for example {{'split': 'test'}}; got {options!r}")
        options = dict(options or {})
        split = options.pop("split", self.split)
        instruction = options.pop("instruction", None)
        if options:
            raise UsageError(f"unknown reset option {sorted(options)[0]!r}; vid2act reads split and instruction")
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; choose {', '.join(SPLITS)}")
        first, last = seed_range(split)
        scene_seed = int(self.np_random.integers(first, last + 1)) if seed is None else int(seed)
        scene = make_scene(self.task, scene_seed, split, self.image_size)  # refuses a seed outside the split
        if instruction is not None:
            scene["instruction"] = str(instruction)
        self.close()
        self._env = SceneWorld(scene)
        self.scene = scene
        self._frame = self._env.world.render()
        return self._observation(), self._info()

    def step(self, action):
        if self._env is None:
            raise UsageError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (4,):
            raise UsageError(f"an action is 4 numbers (dx, dy, dz, gripper); got shape {list(action.shape)}")
        low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])
        outside = ~np.isfinite(action) | (action < low) | (action > high)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise UsageError(f"action {ACTION_SPACE['names'][i]} = {action[i]:g} is outside its bounds "
                             f"[{low[i]}, {high[i]}]; vid2act never clips an action silently")
        self._env.world.step(action)
        self._frame = self._env.world.render()
        success = self._env.is_success()
        return self._observation(), float(success), success, False, self._info(success)

    def render(self):
        return None if self._frame is None else self._frame[0].copy()

    def close(self):
        if self._env is not None:
            self._env.world.close()
            self._env = None

    # --- parts --------------------------------------------------------------------------------------------
    def _observation(self) -> dict:
        robot = self._env.world.robot
        rgb, depth = self._frame
        return {"pixels": rgb.copy(), "depth": depth.copy(),
                "agent_pos": np.r_[robot.ee_position(), robot.gripper].astype(np.float32),
                "ee_target": robot.ee_target.astype(np.float64)}

    def _info(self, success: bool | None = None) -> dict:
        if success is None:
            success = self._env.is_success()
        return {"is_success": bool(success), "instruction": self.scene["instruction"], "task": self.task,
                "seed": self.scene["seed"], "split": self.scene["split"],
                "distances": self._env.task.distances(self._env.world, self._env.goal)}


def register() -> None:
    """Register the four environments with Gymnasium (idempotent), each with eval's time limit. Cheap: nothing of
    the simulator loads until an environment is made."""
    for task, env_id in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point="vid2act.gym:TaskEnv", kwargs={"task": task},
                               max_episode_steps=time_limit(task))


def run_policy(env_id: str, policy, seed: int, split: str = "test") -> tuple[bool, int]:
    """One episode of a vid2act policy (`reset(scene)`, `act(observation)`) through the Gymnasium API, until
    it terminates, is truncated or the policy has nothing more to do: (success, steps). The loop of
    `examples/gym_closed_loop.py`, for benchmarks and tests."""
    from vid2act.sim.env import Observation
    env = gymnasium.make(env_id)
    observation, info = env.reset(seed=seed, options={"split": split})
    policy.reset(env.unwrapped.scene)
    steps, done = 0, False
    try:
        while not done:
            actions = policy.act(Observation(observation["pixels"], observation["depth"], steps,
                                             observation["ee_target"]))
            if len(actions) == 0:
                break
            for action in actions:
                observation, _, terminated, truncated, info = env.step(np.float32(action))
                steps, done = steps + 1, terminated or truncated
                if done:
                    break
    finally:
        env.close()
    return bool(info["is_success"]), steps


register()
