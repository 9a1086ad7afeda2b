"""One interface for every policy the evaluation loop (and any user's loop) drives:

    policy.reset(scene)                    # a new episode, from its scene document
    actions = policy.act(observation)      # [N, 4]: the next N actions; none left: the policy is done

as LeRobot's `select_action`, except that a policy may return a chunk of actions (a plan's next part) rather
than one. The loop executes them, renders, and asks again; a policy never touches the world it acts in. A
policy implements `propose`; `act` holds what it proposes to the action space (a drawing read a little
long clips to 3 cm, counted in `stats()["clipped"]`), so its actions are always valid where they go: eval,
`execute`, a Gymnasium env. The observation (`vid2act.sim.env.Observation`) lives with the environment.

- `PlanPolicy`: ground the instruction once, then draw a chunk from the real frame, read its keyframes' grasp
  points with the IDM, move from the commanded grasp point to them, return the first `replan_every` actions
  (closed loop); with `replan_every` 0 one whole-task plan, all of its actions, read from its frames alone
  as `vid2act translate` reads a plan (UniPi's open loop). With `best_of` K > 1 it draws K chunks (or plans)
  at once and executes the one whose keyframes the IDM reads closest to the planner's own sketch (the
  places the UNet was asked to draw the arm at). A chunk that holds still (the planner shows nothing more
  to do) is drawn again with new noise, up to `STILL_PATIENCE` times in a row, before the
  policy says it is done; each such chunk is counted (`stats()["still_plans"]`).
- `SketchPolicy`: the planner's sketch executed without drawing: the grasp points and gripper it marks for
  the chunk's keyframes become the actions, from the commanded grasp point (the planner's ceiling,
  were the UNet to draw exactly what it is asked to; as gt-video is the IDM's).
- `GroundTruthVideoPolicy`: the oracle's own rollout video, read by the IDM (the IDM's ceiling).
- `OraclePolicy`: the scripted expert. It reads the world, so it replays the expert's actions from a
  shadow world restored from the same scene (PyBullet is deterministic: the same actions give the same
  world).
- `BehaviorCloningPolicy`: `vid2act train bc`, one action per frame. `RandomPolicy`: uniform moves."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from vid2act.configs import BEST_OF, MAX_BEST_OF, POLICIES, check_sampling
from vid2act.errors import UsageError, check_range
from vid2act.sim.env import Observation
from vid2act.spec import ACTION_SPACE, time_limit

LOW, HIGH = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])

STILL_PATIENCE = 3
GRIPPER_DISAGREEMENT_M = 0.02  # a keyframe whose gripper the IDM reads unlike the sketch counts as 2 cm off


def sketch_disagreement(points: np.ndarray, grips: np.ndarray, sketched: np.ndarray, closed: np.ndarray) -> float:
    """How far a drawn plan is from its sketch: the mean distance (metres) between the grasp points the IDM
    reads off its keyframes [K, 3] and the sketched ones [K, 3], plus `GRIPPER_DISAGREEMENT_M` per keyframe
    whose gripper command [K] differs from the sketch's [K]."""
    distance = float(np.linalg.norm(points - sketched, axis=1).mean())
    return distance + GRIPPER_DISAGREEMENT_M * int(((grips > 0.5) != (closed > 0.5)).sum())


def executed(actions: np.ndarray, count: int) -> int:
    """How many of a chunk's actions to execute before drawing the next: `count`, or up to the end of the
    still frames that follow a gripper change at or before it (measured: replanning every 4 actions cut every
    grasp off, and the next chunk, drawn from a frame where it had not happened yet, asked for it again)."""
    from vid2act.idm.model import GRIPPER_SETTLE_FRAMES
    end = min(count, len(actions))
    last = min(end, len(actions) - 1)  # a change at `end` itself counts: the cut would fall right before it
    changes = np.flatnonzero(actions[1:last + 1, 3] != actions[:last, 3]) + 1
    if len(changes):
        end = max(end, min(int(changes[-1]) + GRIPPER_SETTLE_FRAMES, len(actions)))
    return end


@dataclass
class PlanRecord:
    rgb: np.ndarray
    depth: np.ndarray | None
    seconds: float
    after_actions: int
    seed: int
    still: bool


class Policy:
    name = "policy"

    def __init__(self):
        self.preview: np.ndarray | None = None  # per returned action, the frame the policy expects after it
        self.seconds = {"generate": 0.0, "translate": 0.0}

    def reset(self, scene: dict) -> None:
        self.scene = scene
        self.preview = None
        self.seconds = {"generate": 0.0, "translate": 0.0}
        self.clipped = 0

    def act(self, observation: Observation) -> np.ndarray:
        """The next actions [N, 4] (none: the policy is done), always inside the action space: what the policy
        proposes, each value clipped to its bounds and the clipped ones counted (`stats()["clipped"]`), as
        `vid2act translate` counts them."""
        proposed = np.asarray(self.propose(observation), dtype=np.float64).reshape(-1, len(LOW))
        actions = np.clip(proposed, LOW, HIGH)
        self.clipped += int((actions != proposed).sum())
        return actions

    def propose(self, observation: Observation) -> np.ndarray:
        """The policy's own next actions [N, 4], which may stray outside the bounds (a drawing read a little
        long); `act` holds them to the action space."""
        raise NotImplementedError

    def stats(self) -> dict:
        return {"clipped": self.clipped}


class _OneShot(Policy):
    """A policy that knows its whole episode at reset: all of it on the first call, nothing after."""

    def reset(self, scene: dict) -> None:
        super().reset(scene)
        self._actions = self.episode_actions(scene)
        self._given = False

    def episode_actions(self, scene: dict) -> np.ndarray:
        raise NotImplementedError

    def propose(self, observation: Observation) -> np.ndarray:
        if self._given:
            return np.zeros((0, 4))
        self._given = True
        return self._actions


class OraclePolicy(_OneShot):
    name = "oracle"

    def episode_actions(self, scene):
        from vid2act.sim.env import SceneWorld
        with SceneWorld(scene) as shadow:
            return shadow.run(shadow.task.oracle(shadow.world, shadow.goal), max_steps=time_limit(scene["task"])).actions


class RandomPolicy(_OneShot):
    name = "random"

    def episode_actions(self, scene):
        low, high = np.array(ACTION_SPACE["low"]), np.array(ACTION_SPACE["high"])
        rng, limit = np.random.default_rng(scene["seed"]), time_limit(scene["task"])
        return np.c_[rng.uniform(low[:3], high[:3], (limit, 3)), rng.integers(0, 2, limit)]


class GroundTruthVideoPolicy(_OneShot):
    name = "gt-video"

    def __init__(self, idm, device: str = "cpu"):
        super().__init__()
        self.idm, self.device = idm, device

    def episode_actions(self, scene):
        from vid2act.idm.model import predict_actions
        from vid2act.sim.env import SceneWorld
        with SceneWorld(scene) as shadow:  # the oracle's rollout, in a world of its own
            truth = shadow.run_oracle()
        started = time.perf_counter()
        depth = truth.depth if self.idm.architecture.modalities == "rgbd" else None
        actions = predict_actions(self.idm, truth.rgb, depth, device=self.device)
        self.seconds["translate"] += time.perf_counter() - started
        return actions


class BehaviorCloningPolicy(Policy):
    name = "bc"

    def __init__(self, model):
        super().__init__()
        self.model = model

    def reset(self, scene):
        from vid2act.video import text
        super().reset(scene)
        self.sentence = text.encode([scene["instruction"]])["pooled"][0]
        self.points = None

    def propose(self, observation):
        started = time.perf_counter()
        depth = observation.depth if self.model.modalities == "rgbd" else None
        if self.model.grounded and self.points is None:  # read once, off the first frame, as the planner does
            self.points = self.model.grounder.locate(observation.rgb, observation.depth, self.scene["instruction"])
        action = self.model.act(observation.rgb, depth, self.sentence, self.points)
        self.seconds["translate"] += time.perf_counter() - started
        return action[None]


class PlanPolicy(Policy):
    name = "plan"

    def __init__(self, pipe, idm, steps: int = 4, guidance: float = 1.0, replan_every: int = 8,
                 device: str = "cpu", best_of: int = BEST_OF):
        super().__init__()
        self.pipe, self.idm, self.steps, self.guidance = pipe, idm, steps, guidance
        self.replan_every, self.device, self.best_of = replan_every, device, best_of

    def reset(self, scene):
        from vid2act.camera import Camera
        super().reset(scene)
        self.camera = Camera.from_json(scene["camera"])
        self.points = None
        self.plans: list[PlanRecord] = []
        self.still_run = 0

    def _draw(self, observation: Observation, whole: bool):
        import torch
        seed = self.scene["seed"] * 1000 + len(self.plans)
        started = time.perf_counter()
        if self.points is None:  # where the instruction points, read once, off the episode's first frame
            self.points = self.pipe.ground(observation.rgb, observation.depth, self.scene["instruction"])
        draw = self.pipe.rollout if whole else self.pipe
        plan = draw(observation.rgb, self.scene["instruction"], depth=observation.depth,
                    num_inference_steps=self.steps, guidance_scale=self.guidance,
                    generator=torch.Generator().manual_seed(seed), num_videos_per_prompt=self.best_of,
                    points=self.points)
        seconds = time.perf_counter() - started
        self.seconds["generate"] += seconds
        return plan, seconds, seed

    def _translate(self, plan, ee_target):
        """Of the `best_of` drawings, the one whose keyframes the IDM reads closest to its sketch, and its actions.
        Each drawing is read on its own, as with one: read in one batch, grasp points differ by ~1e-8 m."""
        from vid2act.idm.model import expand_keyframes, holds_still, keyframe_poses
        from vid2act.video.sketch import to_world
        started = time.perf_counter()
        shape, rgbd = self.pipe.shape, self.idm.architecture.modalities == "rgbd"
        readings = [keyframe_poses(self.idm, plan.rgb[i], plan.depth[i] if rgbd else None, self.device)
                    for i in range(len(plan.rgb))]
        i = 0
        if len(readings) > 1:
            sketched = to_world(plan.marks.astype(np.float64), self.camera, shape.image_size, shape.plan_size)
            i = int(np.argmin([sketch_disagreement(points[1:], grips[1:], sketched[j], plan.closed[j])
                               for j, (points, grips) in enumerate(readings)]))
        points, grips = readings[i]
        if ee_target is not None:  # where the arm is commanded to be is known; reading it off the frame adds error
            points[0] = ee_target
        actions, heading = expand_keyframes(points, grips, shape.stride)
        self.seconds["translate"] += time.perf_counter() - started
        depth = plan.depth[i] if plan.depth is not None else None
        return plan.rgb[i], depth, actions, heading, holds_still(actions)

    def propose(self, observation):
        whole = self.replan_every == 0
        if whole and self.plans:
            return np.zeros((0, 4))
        while self.still_run < STILL_PATIENCE:
            plan, seconds, seed = self._draw(observation, whole)
            rgb, depth, actions, heading, still = self._translate(plan, None if whole else observation.ee_target)
            self.plans.append(PlanRecord(rgb, depth, seconds, observation.steps, seed, still and not whole))
            if whole or not still:
                self.still_run = 0
                count = len(actions) if whole else executed(actions, self.replan_every)
                self.preview = rgb[heading[:count]]
                return actions[:count]
            self.still_run += 1
        return np.zeros((0, 4))

    def stats(self):
        return {**super().stats(), "plans": len(self.plans), "still_plans": sum(p.still for p in self.plans)}


class SketchPolicy(Policy):
    name = "sketch"

    def __init__(self, pipe, idm, replan_every: int = 8, device: str = "cpu"):
        super().__init__()
        self.pipe, self.idm, self.replan_every, self.device = pipe, idm, replan_every or 8, device

    def reset(self, scene):
        from vid2act.camera import Camera
        super().reset(scene)
        self.points = None
        self.camera = Camera.from_json(scene["camera"])
        self.sketches = 0

    def propose(self, observation):
        from vid2act.idm.model import expand_keyframes, keyframe_poses
        from vid2act.video.sketch import to_world
        started = time.perf_counter()
        pipe, shape, prompt = self.pipe, self.pipe.shape, self.scene["instruction"]
        if self.points is None:
            self.points = pipe.ground(observation.rgb, observation.depth, prompt)
        marks, closed = pipe.sketch_frame(observation.rgb, observation.depth, prompt, self.points)
        targets = to_world(marks.astype(np.float64), self.camera, shape.image_size, shape.plan_size)
        self.seconds["generate"] += time.perf_counter() - started
        started = time.perf_counter()
        idm_depth = observation.depth[None] if self.idm.architecture.modalities == "rgbd" else None
        now, grip = keyframe_poses(self.idm, observation.rgb[None], idm_depth, self.device)
        if observation.ee_target is not None:
            now = np.asarray(observation.ee_target, dtype=np.float64)[None]
        actions, _ = expand_keyframes(np.concatenate([now, targets]), np.concatenate([grip, closed]), shape.stride)
        self.seconds["translate"] += time.perf_counter() - started
        self.sketches += 1
        return actions[: executed(actions, self.replan_every)]

    def stats(self):
        return {**super().stats(), "sketches": self.sketches}


@dataclass
class Models:
    planner: object = None
    idm: object = None
    bc: object = None


def load_models(policy: str, planner: str = "default", idm: str = "default", bc: str = "default",
                device: str = "cpu", precision: str = "fp32") -> Models:
    """The models policy `policy` needs (folders or shipped names), loaded."""
    from vid2act.idm.model import load_idm
    models = Models()
    if policy in ("plan", "sketch", "gt-video"):  # the plan policy's IDM reads drawn keyframes
        models.idm, _ = load_idm(idm, device, "plan-idm" if policy == "plan" else "idm")
    if policy in ("plan", "sketch"):
        from vid2act.video.pipeline import load_planner
        models.planner = load_planner(planner, device, precision=precision)
    if policy == "bc":
        from vid2act.bc import load_bc
        models.bc = load_bc(bc, device)
    return models


def check_policy_settings(name: str, steps: int, guidance: float, replan_every: int, best_of: int) -> None:
    """Refuse settings no policy can run with, before any model loads (as `vid2act eval` refuses the options)."""
    if name not in POLICIES:
        raise UsageError(f"unknown policy {name!r}; choose {', '.join(POLICIES)}")
    for option, value in (("steps", steps), ("replan_every", replan_every), ("best_of", best_of)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise UsageError(f"{option} must be a whole number (got {value!r})")
    check_sampling(steps, guidance, 1)
    if replan_every < 0:
        raise UsageError(f"replan_every must be 0 (open loop) or more (got {replan_every})")
    check_range("best_of", best_of, 1, MAX_BEST_OF)


def load_policy(name: str, planner: str = "default", idm: str = "default", bc: str = "default", steps: int = 4,
                guidance: float = 1.0, replan_every: int = 8, device: str = "cpu", precision: str = "fp32",
                best_of: int = BEST_OF) -> "Policy":
    """Policy `name` with its models loaded: `load_policy("plan")` is the shipped planner + IDM, closed loop."""
    check_policy_settings(name, steps, guidance, replan_every, best_of)
    return make_policy(name, load_models(name, planner, idm, bc, device, precision), steps, guidance, replan_every,
                       device, best_of)


def make_policy(name: str, models, steps: int = 4, guidance: float = 1.0, replan_every: int = 8,
                device: str = "cpu", best_of: int = BEST_OF) -> Policy:
    """The policy `name` over already loaded models (`models.planner`, `.idm`, `.bc` as the policy needs)."""
    check_policy_settings(name, steps, guidance, replan_every, best_of)
    if name == "plan":
        return PlanPolicy(models.planner, models.idm, steps, guidance, replan_every, device, best_of)
    if name == "gt-video":
        return GroundTruthVideoPolicy(models.idm, device)
    if name == "sketch":
        return SketchPolicy(models.planner, models.idm, replan_every, device)
    if name == "bc":
        return BehaviorCloningPolicy(models.bc)
    if name == "oracle":
        return OraclePolicy()
    if name == "random":
        return RandomPolicy()
    raise ValueError(f"unknown policy {name!r}")
