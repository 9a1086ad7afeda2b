"""The Franka Panda: inverse kinematics towards a commanded end-effector point, and the gripper."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pybullet

from vid2act.spec import ARM_LOWER, ARM_UPPER, FINGER_OPEN

URDF = Path(__file__).parent / "assets" / "panda" / "panda.urdf"
ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
MOVABLE_JOINTS = ARM_JOINTS + FINGER_JOINTS
GRASP_LINK = 11  # panda_grasptarget: the point between the fingertips
ARM_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
FINGER_FORCE = 40.0
IK_REACH = 10.0  # metres: targets are clipped to the workspace and scenes checked, so none comes near
REST_POSE = (0.0, -0.35, 0.0, -2.4, 0.0, 2.05, 0.785)
LOWER, UPPER = ARM_LOWER, ARM_UPPER
# The hand always points straight down with the fingers closing along the world y axis.
GRASP_ORIENTATION = pybullet.getQuaternionFromEuler((np.pi, 0.0, 0.0))


class Panda:
    """A fixed-base Panda on the table top at the world origin."""

    def __init__(self, client):
        self.client = client
        self.body = client.loadURDF(str(URDF), basePosition=(0, 0, 0), useFixedBase=True,
                                    flags=pybullet.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT)
        for joint in FINGER_JOINTS:
            client.changeDynamics(self.body, joint, lateralFriction=1.5, spinningFriction=0.01)
        self.ee_target = np.zeros(3)
        self.gripper = 0.0

    def inverse_kinematics(self, position) -> list[float]:
        if not np.all(np.abs(position) < IK_REACH):  # PyBullet's solver never returns on a far or infinite target
            raise ValueError(f"inverse kinematics asked for {list(position)}, beyond {IK_REACH} m")
        solution = self.client.calculateInverseKinematics(
            self.body, GRASP_LINK, list(position), GRASP_ORIENTATION,
            lowerLimits=list(LOWER) + [0.0, 0.0], upperLimits=list(UPPER) + [FINGER_OPEN] * 2,
            jointRanges=[u - l for l, u in zip(LOWER, UPPER)] + [FINGER_OPEN] * 2,
            restPoses=list(REST_POSE) + [FINGER_OPEN] * 2,
            maxNumIterations=30, residualThreshold=1e-5)
        return list(solution[:7])

    def command(self, ee_target, gripper: float) -> None:
        """Drive the arm towards `ee_target` and the fingers to the opening `gripper` asks for."""
        self.ee_target = np.asarray(ee_target, dtype=float)
        self.gripper = float(gripper)
        self.client.setJointMotorControlArray(
            self.body, ARM_JOINTS, pybullet.POSITION_CONTROL,
            targetPositions=self.inverse_kinematics(self.ee_target), forces=ARM_FORCES)
        width = FINGER_OPEN * (1.0 - self.gripper)
        self.client.setJointMotorControlArray(
            self.body, FINGER_JOINTS, pybullet.POSITION_CONTROL,
            targetPositions=[width, width], forces=[FINGER_FORCE] * 2)

    def ee_position(self) -> np.ndarray:
        return np.array(self.client.getLinkState(self.body, GRASP_LINK, computeForwardKinematics=True)[4])

    def ee_pose(self) -> np.ndarray:
        """Grasp point position and orientation quaternion (x, y, z, qx, qy, qz, qw)."""
        state = self.client.getLinkState(self.body, GRASP_LINK, computeForwardKinematics=True)
        return np.array(state[4] + state[5])

    def finger_width(self) -> float:
        return sum(self.client.getJointState(self.body, j)[0] for j in FINGER_JOINTS)

    def place_at(self, ee_position, iterations: int = 60) -> None:
        """Teleport the arm (at rest, fingers open) so that the grasp point sits at `ee_position`."""
        for joint, angle in zip(ARM_JOINTS, REST_POSE):
            self.client.resetJointState(self.body, joint, angle)
        for joint in FINGER_JOINTS:
            self.client.resetJointState(self.body, joint, FINGER_OPEN)
        for _ in range(iterations):
            for joint, angle in zip(ARM_JOINTS, self.inverse_kinematics(ee_position)):
                self.client.resetJointState(self.body, joint, angle)
        self.ee_target = np.asarray(ee_position, dtype=float)
        self.gripper = 0.0

    def get_state(self) -> dict:
        states = self.client.getJointStates(self.body, MOVABLE_JOINTS)
        return {
            "joint_positions": [s[0] for s in states],
            "joint_velocities": [s[1] for s in states],
            "ee_target": [float(v) for v in self.ee_target],
            "gripper": self.gripper,
        }

    def set_state(self, state: dict) -> None:
        for joint, position, velocity in zip(MOVABLE_JOINTS, state["joint_positions"], state["joint_velocities"]):
            self.client.resetJointState(self.body, joint, position, velocity)
        self.command(state["ee_target"], state["gripper"])
