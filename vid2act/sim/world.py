"""The simulated world: one PyBullet client in DIRECT mode with a table, the Panda, coloured objects and
a fixed camera. Everything that decides what a frame looks like lives here, so every stage renders alike."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import pybullet
from pybullet_utils import bullet_client

from vid2act.sim import silenced
from vid2act.camera import Camera
from vid2act.sim.robot import Panda
from vid2act import spec
from vid2act.spec import DEFAULT_IMAGE_SIZE, FRAME_INTERVAL, TIMESTEP

WORKSPACE_LOW = np.array(spec.WORKSPACE_LOW)
WORKSPACE_HIGH = np.array(spec.WORKSPACE_HIGH)

COLORS = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.70, 0.15),
    "blue": (0.10, 0.25, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "purple": (0.60, 0.15, 0.80),
    "orange": (1.00, 0.50, 0.00),
}
SHAPES = spec.SHAPES
OBJECT_HALF = 0.025  # blocks are 5 cm cubes, cylinders 5 cm across and 5 cm tall
PAD_HALF = 0.05  # pads are flat 10 cm squares drawn on the table
PAD_THICKNESS = 0.001
TABLE_RGB = (0.62, 0.56, 0.50)

@dataclass(frozen=True)
class ObjectSpec:
    """What an object is (its state is separate): shape is block, cylinder or pad."""
    shape: str
    color: str

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def rest_height(self) -> float:
        return PAD_THICKNESS / 2 if self.shape == "pad" else OBJECT_HALF


class World:
    """One physics client. Build it, add objects, then `set_state` / `step` / `render`."""

    def __init__(self, image_size=DEFAULT_IMAGE_SIZE, camera: Camera = Camera()):
        self.height, self.width = image_size
        self.camera = camera
        with silenced(1):
            self.client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self.client.setPhysicsEngineParameter(fixedTimeStep=TIMESTEP, numSolverIterations=50,
                                              deterministicOverlappingPairs=1)
        self.client.setGravity(0, 0, -9.81)
        table_half = (*spec.TABLE_HALF, 0.02)
        table_shape = self.client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=table_half)
        table_visual = self.client.createVisualShape(pybullet.GEOM_BOX, halfExtents=table_half,
                                                     rgbaColor=TABLE_RGB + (1.0,))
        self.table = self.client.createMultiBody(0, table_shape, table_visual, basePosition=(*spec.TABLE_CENTRE, -0.02))
        self.client.changeDynamics(self.table, -1, lateralFriction=0.5)
        self.robot = Panda(self.client)
        self.objects: dict[str, int] = {}
        self.specs: dict[str, ObjectSpec] = {}
        self._view = self.client.computeViewMatrix(camera.eye, camera.target, camera.up)
        self._projection = self.client.computeProjectionMatrixFOV(camera.fov, self.width / self.height,
                                                                  camera.near, camera.far)

    def add_object(self, spec: ObjectSpec) -> int:
        rgba = COLORS[spec.color] + (1.0,)
        c = self.client
        if spec.shape == "pad":  # drawn only: blocks slide over pads without catching an edge
            visual = c.createVisualShape(pybullet.GEOM_BOX, halfExtents=(PAD_HALF, PAD_HALF, PAD_THICKNESS / 2),
                                         rgbaColor=rgba)
            body = c.createMultiBody(0, -1, visual)
        elif spec.shape == "block":
            half = (OBJECT_HALF,) * 3
            body = c.createMultiBody(0.1, c.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half),
                                     c.createVisualShape(pybullet.GEOM_BOX, halfExtents=half, rgbaColor=rgba))
        elif spec.shape == "cylinder":
            size = dict(radius=OBJECT_HALF, height=2 * OBJECT_HALF)
            body = c.createMultiBody(0.1, c.createCollisionShape(pybullet.GEOM_CYLINDER, **size),
                                     c.createVisualShape(pybullet.GEOM_CYLINDER, length=size["height"],
                                                         radius=OBJECT_HALF, rgbaColor=rgba))
        else:
            raise ValueError(f"unknown shape {spec.shape!r}")
        if spec.shape != "pad":
            c.changeDynamics(body, -1, lateralFriction=0.8, spinningFriction=0.002, rollingFriction=0.0001)
        self.objects[spec.name] = body
        self.specs[spec.name] = spec
        return body

    # --- state -------------------------------------------------------------------------------------
    def object_position(self, name: str) -> np.ndarray:
        return np.array(self.client.getBasePositionAndOrientation(self.objects[name])[0])

    def get_state(self) -> dict:
        objects = []
        for name, body in self.objects.items():
            position, orientation = self.client.getBasePositionAndOrientation(body)
            linear, angular = self.client.getBaseVelocity(body)
            spec = self.specs[name]
            objects.append({"name": name, "shape": spec.shape, "color": spec.color,
                            "position": list(position), "orientation": list(orientation),
                            "linear_velocity": list(linear), "angular_velocity": list(angular)})
        return {"robot": self.robot.get_state(), "objects": objects}

    def set_state(self, state: dict) -> None:
        for obj in state["objects"]:
            body = self.objects[obj["name"]]
            self.client.resetBasePositionAndOrientation(body, obj["position"], obj["orientation"])
            self.client.resetBaseVelocity(body, obj["linear_velocity"], obj["angular_velocity"])
        self.robot.set_state(state["robot"])

    def in_contact(self, name_a: str, name_b: str | None = None) -> bool:
        """Whether object `name_a` touches object `name_b`, or the robot when `name_b` is None."""
        other = self.robot.body if name_b is None else self.objects[name_b]
        return bool(self.client.getContactPoints(self.objects[name_a], other))

    # --- dynamics and rendering --------------------------------------------------------------------
    def step(self, action) -> None:
        """Apply one action: move the commanded grasp point by (dx, dy, dz), set the gripper, simulate one
        frame interval."""
        target = np.clip(self.robot.ee_target + np.asarray(action[:3], dtype=float), WORKSPACE_LOW, WORKSPACE_HIGH)
        self.robot.command(target, float(action[3]))
        for _ in range(FRAME_INTERVAL):
            self.client.stepSimulation()

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 [H, W, 3] and metric depth float32 [H, W] (metres along the optical axis)."""
        _, _, rgba, depth_buffer, _ = self.client.getCameraImage(
            self.width, self.height, self._view, self._projection, renderer=pybullet.ER_TINY_RENDERER,
            flags=pybullet.ER_NO_SEGMENTATION_MASK, shadow=0, lightDirection=(0.4, -0.3, 1.0))
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(self.height, self.width, 4)[..., :3].copy()
        z = np.asarray(depth_buffer, dtype=np.float32).reshape(self.height, self.width)
        near, far = self.camera.near, self.camera.far
        depth = far * near / (far - (far - near) * z)
        return rgb, depth.astype(np.float32)

    def close(self) -> None:
        self.client.disconnect()
