"""Grounding and the sketch: the demonstrated places, the camera's projection, reading points off logit maps,
and the sketch's marks (a grasp point and its shadow) as 3-D points and as the UNet's input."""
import numpy as np
import torch

from vid2act.sim.world import COLORS
from vid2act.camera import Camera
from vid2act.video import sketch
from vid2act.video.grounding import (LABEL_SIGMA, PlaceNet, PlaceNetShape, demo_points, heatmaps, locate,
                                     place_loss)


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
    from vid2act.sim.env import SceneWorld, make_scene
    scene = make_scene("push", 1_000_001, "test", (96, 128))
    with SceneWorld(scene) as env:
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


def test_soft_labels_teach_places_finer_than_a_cell():
    points = torch.tensor([[[5.3, 7.8], [20.6, 3.2]]])  # off the cell centres (x.5) by up to 0.3 cells
    label = heatmaps(points, (24, 32), LABEL_SIGMA)
    learnt = torch.log(label / label.sum((-1, -2), keepdim=True) + 1e-12)  # what the loss is minimal at
    assert torch.allclose(locate(learnt), points, atol=0.1)
    shifted = torch.log(heatmaps(points + 0.5, (24, 32), LABEL_SIGMA) + 1e-12)
    assert place_loss(learnt, points) < place_loss(shifted, points) < place_loss(torch.zeros_like(learnt), points)


def test_sketch_marks_fix_the_grasp_point_and_its_gripper():
    camera, size, grid = Camera(), (48, 64), (24, 32)
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(0.3, 0.7, 50), rng.uniform(-0.3, 0.3, 50), rng.uniform(0.01, 0.3, 50)]
    gripper = rng.integers(0, 2, 50).astype(float)
    marks, closed = sketch.frame_marks(points, gripper, camera, size, grid)
    assert marks.shape == (50, 2, 2) and (closed == (gripper > 0.5)).all()
    assert np.abs(sketch.to_world(marks.astype(np.float64), camera, size, grid) - points).max() < 1e-4
    # the shadow lies straight below the grasp point: lower in the image, never above it
    assert (marks[:, 1, 1] >= marks[:, 0, 1]).all()


def test_sketch_conditions_and_reading_back():
    marks = torch.tensor([[[[5.5, 7.5], [5.5, 12.5]], [[9.5, 3.5], [9.5, 9.5]]]])  # [1, K=2, 2, 2]
    closed = torch.tensor([[False, True]])
    planes = sketch.conditions(marks, closed, (24, 32))
    assert planes.shape == (1, 3 * 2, 24, 32)
    assert (planes[0, 4] == -1).all() and (planes[0, 5] == 1).all()  # open, then closed
    logits = torch.log(planes[:, :4] + 1e-9)
    back, flags = sketch.read(logits, torch.tensor([[-3.0, 2.0]]), frames=2)
    assert torch.allclose(back, marks, atol=0.35) and (flags == closed).all()


def test_the_sketch_net_reads_heatmaps_and_says_yes_or_no():
    net = PlaceNet(PlaceNetShape((24, 32), 4, 16, heat_inputs=2, maps=8, flags=4))
    logits, flags = net(torch.zeros(3, 4, 24, 32), torch.zeros(3, 5, 384), torch.ones(3, 5, dtype=torch.bool),
                        torch.zeros(3, 2, 24, 32))
    assert logits.shape == (3, 8, 24, 32) and flags.shape == (3, 4)
