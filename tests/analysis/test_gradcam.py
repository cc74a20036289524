"""Grad-CAM peaks where the explained value comes from; overlays and grids are real PNGs."""

import numpy as np
import pytest
from matplotlib import image as mpimg

from tests.analysis import tiny_nets
from tfgap.analysis import gradcam

SIZE = 32
BIG, SMALL = 8, 4
# (region of the channel-0 object, region of the channel-1 object), top-left corners.
PLACEMENTS = [((2, 2), (24, 24)), ((22, 20), (4, 6)), ((4, 22), (20, 2))]


def _inside(cam, corner, size):
  r, c = corner
  return cam[r:r + size, c:c + size]


@pytest.mark.parametrize("categorical", [None, 11])
@pytest.mark.parametrize("region, region2", PLACEMENTS)
def test_greedy_map_peaks_on_the_region_the_value_depends_on(region, region2, categorical):
  net = tiny_nets.RegionQNet(SIZE, categorical_atoms=categorical)
  obs = tiny_nets.two_object_frames(SIZE, region, region2, BIG, SMALL)
  maps, actions = gradcam.grad_cam(net, obs)
  assert actions.tolist() == [0]  # Q_0 = f_0 - f_1 wins: the channel-0 object is bigger.
  cam = maps[0]
  assert cam.shape == (SIZE, SIZE)
  assert cam.min() >= 0.0 and cam.max() == pytest.approx(1.0)
  peak = np.unravel_index(np.argmax(cam), cam.shape)
  assert region[0] <= peak[0] < region[0] + BIG and region[1] <= peak[1] < region[1] + BIG
  # The channel-1 object lowers Q_0: ReLU keeps it dark.
  assert _inside(cam, region2, SMALL).max() < 0.05
  assert _inside(cam, region, BIG).mean() > 0.5


@pytest.mark.parametrize("region, region2", PLACEMENTS)
def test_explaining_another_action_moves_the_map(region, region2):
  net = tiny_nets.RegionQNet(SIZE)
  obs = tiny_nets.two_object_frames(SIZE, region, region2, BIG, SMALL)
  maps, actions = gradcam.grad_cam(net, obs, actions=1)
  assert actions.tolist() == [1]
  peak = np.unravel_index(np.argmax(maps[0]), maps[0].shape)
  assert region2[0] <= peak[0] < region2[0] + SMALL and region2[1] <= peak[1] < region2[1] + SMALL
  assert _inside(maps[0], region, BIG).max() < 0.05


def test_batch_and_resize_to_frame_size():
  net = tiny_nets.RegionQNet(SIZE)
  obs = np.concatenate([tiny_nets.two_object_frames(SIZE, r, r2) for r, r2 in PLACEMENTS])
  maps, actions = gradcam.grad_cam(net, obs, frame_size=(84, 84))
  assert maps.shape == (3, 84, 84) and actions.shape == (3,)
  assert np.all(maps <= 1.0) and np.all(maps >= 0.0)


def test_tiny_q_net_runs_with_its_greedy_action():
  net = tiny_nets.TinyQNet(input_shape=(16, 16, 4))
  obs = np.random.RandomState(0).randint(0, 256, (2, 16, 16, 4)).astype(np.uint8)
  maps, actions = gradcam.grad_cam(net, obs)
  tiny_nets.assert_greedy(actions, net(obs).numpy())
  assert maps.shape == (2, 16, 16)


def test_bad_action_and_shapes_raise():
  net = tiny_nets.RegionQNet(SIZE)
  obs = tiny_nets.two_object_frames(SIZE, (0, 0), (20, 20))
  with pytest.raises(ValueError, match="actions"):
    gradcam.grad_cam(net, obs, actions=5)
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    gradcam.grad_cam(net, obs[0])
  with pytest.raises(ValueError, match="support"):
    gradcam.action_values(np.zeros((1, 2, 5), np.float32), support=np.zeros(3))


@pytest.mark.parametrize("channels, frame_channels, expected_shape, source", [
    (4, None, (10, 12), 3),       # Atari: 4 grayscale frames, last one.
    (3, None, (10, 12, 3), None),  # Procgen: one RGB frame.
    (9, None, (10, 12, 3), None),  # DMC: 3 RGB frames, last three channels.
    (3, 1, (10, 12), 2),          # Explicit: three grayscale frames.
])
def test_last_frame(channels, frame_channels, expected_shape, source):
  obs = np.random.RandomState(0).randint(0, 256, (10, 12, channels)).astype(np.uint8)
  frame = gradcam.last_frame(obs, frame_channels)
  assert frame.shape == expected_shape
  expected = obs[..., source] if source is not None else obs[..., -3:]
  np.testing.assert_allclose(frame, expected / 255.0, atol=1e-6)


def test_overlay_and_grid_pngs(tmp_path):
  net = tiny_nets.RegionQNet(SIZE)
  obs = np.concatenate([tiny_nets.two_object_frames(SIZE, r, r2) for r, r2 in PLACEMENTS])
  maps, actions = gradcam.grad_cam(net, obs)
  image = gradcam.overlay(gradcam.last_frame(obs[0]), maps[0])
  assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
  # jet colours the peak red and a zero-map area blue.
  peak = np.unravel_index(np.argmax(maps[0]), maps[0].shape)
  assert image[peak][0] > image[peak][2]
  single = gradcam.save_overlay(str(tmp_path / "one.png"), obs[0], maps[0], annotate=False)
  assert mpimg.imread(single).shape[:2] == (SIZE, SIZE)
  grid = gradcam.save_grid(str(tmp_path / "grid.png"), obs, maps,
                           titles=[f"a={a}" for a in actions], columns=3)
  height, width = mpimg.imread(grid).shape[:2]
  assert width > 2 * height > 0  # One row of three cells.
  with pytest.raises(ValueError, match="titles"):
    gradcam.save_grid(str(tmp_path / "bad.png"), obs, maps, titles=["x"])
