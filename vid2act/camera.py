"""The fixed pinhole camera every stage renders and reads through: its pose, its projection of world points to
pixels and back. Plain numpy, below the simulator and the models (the renderer builds the same view from it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """A fixed pinhole camera in front of the table, high enough that the gripper's height shows."""
    eye: tuple = (1.2, 0.3, 0.55)
    target: tuple = (0.45, 0.0, 0.14)
    up: tuple = (0.0, 0.0, 1.0)
    fov: float = 42.0
    near: float = 0.1
    far: float = 3.0

    def to_json(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> "Camera":
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})

    def _basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right, up and forward unit vectors, as OpenGL's lookAt (and PyBullet's computeViewMatrix) build them."""
        eye, target, up = (np.asarray(v, dtype=float) for v in (self.eye, self.target, self.up))
        forward = (target - eye) / np.linalg.norm(target - eye)
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        return right, np.cross(right, forward), forward

    def project(self, points, image_size) -> np.ndarray:
        """World points [..., 3] -> pixel coordinates [..., 2] (column, row; 0.5 is the centre of the first
        pixel) in an image of `image_size` (H, W), as the renderer draws them."""
        height, width = image_size
        right, up, forward = self._basis()
        relative = np.asarray(points, dtype=float) - np.asarray(self.eye, dtype=float)
        depth = relative @ forward
        focal = 1.0 / np.tan(np.radians(self.fov) / 2)
        x = focal * (relative @ right) / depth / (width / height)
        y = focal * (relative @ up) / depth
        return np.stack([(x + 1) / 2 * width, (1 - y) / 2 * height], axis=-1)

    def unproject_to_height(self, pixels, z, image_size) -> np.ndarray:
        """Pixel coordinates [..., 2] -> the world points [..., 3] where their rays cross the plane at height z."""
        height, width = image_size
        right, up, forward = self._basis()
        pixels = np.asarray(pixels, dtype=float)
        focal = 1.0 / np.tan(np.radians(self.fov) / 2)
        x = (2 * pixels[..., 0] / width - 1) * (width / height) / focal
        y = (1 - 2 * pixels[..., 1] / height) / focal
        rays = forward + x[..., None] * right + y[..., None] * up
        eye = np.asarray(self.eye, dtype=float)
        t = (np.asarray(z, dtype=float) - eye[2]) / rays[..., 2]
        return eye + t[..., None] * rays
