"""Grounding: the demonstrated places, the camera's projection, and reading points off logit maps."""
import numpy as np
import torch

from vid2act.sim.world import COLORS
from vid2act.video.grounding import cell_index, demo_points, heatmaps, locate


def test_demo_points_of_a_grasp_a_push_and_a_reach():
    path = np.c_[np.linspace(0, 1, 10), np.zeros(10), np.linspace(0.2, 0.02, 10)]
    grasp = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0.0])  # closes at action 3, opens at action 7
    points = demo_points(path, grasp)
    assert np.allclose(points, [path[3], path[7]])
    push = demo_points(np.c_[np.arange(6.0), np.zeros(6), [0.1, 0.02, 0.02, 0.02, 0.1, 0.1]], np.ones(5))
    assert np.allclose(push[:, 0], [1, 3])  # first and last frame down at the table
    reach = demo_points(path, np.zeros(9))
    assert np.allclose(reach, [path[-1], path[-1]])


def test_projection_round_trips_and_matches_the_renderer():
    from vid2act.sim.env import Env, make_scene
    scene = make_scene("push", 1_000_001, "test", (96, 128))
    with Env(scene) as env:
        rgb, _ = env.world.render()
        camera = env.world.camera
        for name, spec in env.world.specs.items():
            position = env.world.object_position(name)
            u, v = camera.project(position, (96, 128))
            back = camera.unproject_to_height([u, v], position[2], (96, 128))
            assert np.allclose(back, position, atol=1e-9)
            colour = rgb[int(v), int(u)].astype(int)
            assert int(np.argmax(colour)) == int(np.argmax(COLORS[spec.color])), name  # its own colour's channel


def test_locate_reads_the_peak_and_heatmaps_put_it_back():
    points = torch.tensor([[[5.3, 7.6], [20.5, 3.5]]])
    maps = heatmaps(points, (24, 32), sigma=0.7)
    assert maps.shape == (1, 2, 24, 32) and torch.isclose(maps.max(), torch.tensor(1.0), atol=0.2)
    found = locate(torch.log(maps + 1e-9))
    assert torch.allclose(found, points, atol=0.35)
    assert cell_index(points, (24, 32)).tolist() == [[7 * 32 + 5, 3 * 32 + 20]]
