"""Dormant-neuron fractions against networks whose dead and weak units are known by construction."""

import glob

import numpy as np
import pytest
import tensorflow as tf

from tests.analysis import tiny_nets
from tfgap.analysis import dormant

TAUS = (0.0, 0.025, 0.1)


def _net_with_known_dormancy():
  net = tiny_nets.TinyQNet(input_shape=(12, 12, 4), filters=(8, 12), units=10)
  # conv0: 2 dead; channel 2 has 0.05x the activity of the 5 live ones:
  #   s = 0.05 * 8 / 5.05 = 0.079 -> dormant at tau 0.1 only.
  tiny_nets.kill_units(net.convs[0], dead=[1, 5], weak=[2], weak_scale=0.05)
  # conv1: 3 dead, the rest identical.
  tiny_nets.kill_units(net.convs[1], dead=[0, 3, 7])
  # dense0: 1 dead; unit 9 at 0.01x: s = 0.01 * 10 / 8.01 = 0.0125 -> dormant at 0.025 and 0.1.
  tiny_nets.kill_units(net.hidden, dead=[4], weak=[9], weak_scale=0.01)
  return net


# (layer, {tau: dormant count}, neurons)
EXPECTED = [
    ("conv0", {0.0: 2, 0.025: 2, 0.1: 3}, 8),
    ("conv1", {0.0: 3, 0.025: 3, 0.1: 3}, 12),
    ("dense0", {0.0: 1, 0.025: 2, 0.1: 2}, 10),
]


@pytest.fixture(scope="module")
def known():
  net = _net_with_known_dormancy()
  # Random non-negative frames: live units stay active everywhere (positive weights and bias).
  obs = np.random.RandomState(1).randint(0, 256, size=(6, 12, 12, 4)).astype(np.uint8)
  return net, obs, dormant.dormant_fractions(net, obs, TAUS)


@pytest.mark.parametrize("layer, counts, neurons", EXPECTED)
def test_layer_counts_match_construction(known, layer, counts, neurons):
  _, _, report = known
  (entry,) = [l for l in report.layers if l.name == layer]
  assert entry.num_neurons == neurons
  assert entry.dormant == counts
  for tau, count in counts.items():
    assert report.layer_fraction(layer, tau) == pytest.approx(count / neurons)


@pytest.mark.parametrize("tau", TAUS)
def test_group_fraction_is_dormant_over_neurons_of_group(known, tau):
  _, _, report = known
  phi = [e for e in EXPECTED if e[0].startswith("conv")]
  expected_phi = sum(c[tau] for _, c, _ in phi) / sum(n for _, _, n in phi)
  assert report.group_fraction("phi", tau) == pytest.approx(expected_phi)
  assert report.group_fraction("psi", tau) == pytest.approx(EXPECTED[2][1][tau] / 10)
  # The tiny net's flatten bottleneck has no neurons: no fraction rather than a made-up 0.
  assert report.group_fraction("bottleneck", tau) is None
  expected_all = sum(c[tau] for _, c, _ in EXPECTED) / 30
  assert report.group_fraction("all", tau) == pytest.approx(expected_all)


def test_metrics_dict_keys_and_values(known):
  net, obs, report = known
  metrics = dormant.dormant_metrics(net, obs, TAUS)
  assert metrics == report.as_metrics()
  assert metrics["dormant/phi/0.1"] == pytest.approx(6 / 20)
  assert metrics["dormant/conv1/0"] == pytest.approx(3 / 12)
  assert metrics["dormant/dense0/0.025"] == pytest.approx(2 / 10)
  assert "dormant/bottleneck/0" not in metrics
  groups, layers = dormant.group_fractions_from_metrics(metrics)
  assert groups[("psi", "0.025")] == pytest.approx(0.2)
  assert set(l for l, _ in layers) == {"conv0", "conv1", "dense0"}


def test_conv_channels_average_over_batch_and_space():
  # Channel 0 fires at one position of one sample only; channel 1 everywhere at 1.
  act = np.zeros((2, 4, 4, 2), np.float32)
  act[1, 3, 2, 0] = 32.0  # mean over 2*4*4 positions = 1.0
  act[..., 1] = 1.0
  np.testing.assert_allclose(dormant.neuron_scores(act), [1.0, 1.0])
  act[1, 3, 2, 0] = -3.2  # |.| is averaged: 0.1 of channel 1's mean
  np.testing.assert_allclose(dormant.neuron_scores(act), [0.2 / 1.1, 2.0 / 1.1])


def test_all_silent_layer_is_all_dormant():
  report = dormant.measure_activations([("psi", "d", np.zeros((3, 5)))], taus=(0.0,))
  assert report.layers[0].dormant == {0.0: 5}


@pytest.mark.parametrize("taus", [(), (-0.1,), (float("nan"),)])
def test_bad_taus_raise(taus):
  with pytest.raises(ValueError, match="tau"):
    dormant.measure_activations([("psi", "d", np.ones((2, 3)))], taus=taus)


def test_unknown_group_raises():
  with pytest.raises(ValueError, match="'head'"):
    dormant.measure_activations([("head", "d", np.ones((2, 3)))])


def test_duplicate_and_reserved_layer_names_stay_distinct():
  entries = [("phi", "relu", np.ones((2, 3))), ("phi", "relu", np.ones((2, 3))),
             ("psi", "psi", np.ones((2, 3)))]
  names = [l.name for l in dormant.measure_activations(entries).layers]
  assert names == ["relu", "relu_1", "psi_psi"]


def test_tracker_measures_on_period_and_writes_summaries(tmp_path, known):
  net, obs, _ = known
  tracker = dormant.DormantTracker(period=3, taus=(0.0, 0.1))
  with pytest.raises(ValueError, match="period"):
    dormant.DormantTracker(period=0)
  writer = tf.summary.create_file_writer(str(tmp_path))
  measured = []
  with writer.as_default():
    for step in range(7):
      out = tracker.maybe_measure(step, net, obs)
      if out is not None:
        measured.append(step)
        assert out["dormant/phi/0.1"] == pytest.approx(6 / 20)
  writer.flush()
  assert measured == [0, 3, 6]
  tags = {}
  for path in glob.glob(str(tmp_path / "events.*")):
    for raw in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(raw.numpy())
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(event.step)
  assert tags["dormant/phi/0.1"] == [0, 3, 6]
  assert "dormant/conv0/0" in tags
  # Without a default writer it still returns metrics (summaries are a no-op).
  assert tracker.maybe_measure(9, net, obs)["dormant/all/0"] == pytest.approx(6 / 30)
