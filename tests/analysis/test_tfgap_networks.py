"""The analysis toolkit on real tfgap networks (tfgap.networks builders)."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec

from tests.analysis import tiny_nets
from tfgap import networks
from tfgap.analysis import dormant
from tfgap.analysis import effective
from tfgap.analysis import gradcam
from tfgap.networks import pruning

OBS = tf.TensorSpec((36, 36, 4), tf.uint8)  # Nature SAME: 9x9 -> 5x5 -> 5x5 x 64.
ACTIONS = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 5)
H, W, C = 5, 5, 64


def _obs(n=3, shape=(36, 36, 4), seed=0):
  return np.random.RandomState(seed).randint(0, 256, (n,) + shape).astype(np.uint8)


def _q_net(bottleneck, **kwargs):
  net = networks.build_q_network(OBS, ACTIONS, encoder="nature", bottleneck=bottleneck, **kwargs)
  net.create_variables()
  return net


def _softmoe_weights(d, n, p, h):
  return d * n * p + n * d * h + n * h + n * h * d + n * d  # router, experts in/out with biases


def _tokenize_weights(d, h):
  return d * h + h + h * d + d  # shared token MLP d -> h -> d with biases


@pytest.mark.parametrize("bottleneck, kwargs, live, psi_width, streams", [
    ("flatten", {}, H * W * C * 512, 512, 1),
    # Dopamine's dueling layout shares psi's 512 layer: one connection, as without dueling.
    ("flatten", {"dueling": True}, H * W * C * 512, 512, 1),
    ("flatten", {"dueling": True, "dueling_layout": "separate"}, 2 * H * W * C * 512, 512, 2),
    ("gap", {"dueling": True, "dueling_layout": "separate"}, 2 * C * 512, 512, 2),
    ("gap", {}, C * 512, 512, 1),
    ("softmoe", {"bottleneck_kwargs": {"num_experts": 2, "expert_hidden": 32}},
     _softmoe_weights(C, 2, 13, 32), 32, 1),  # p = ceil(25 tokens / 2 experts)
    ("tokenize", {"bottleneck_kwargs": {"hidden_units": 48}}, _tokenize_weights(C, 48), 48, 1),
    ("pruned", {}, H * W * C * 512, 512, 1),  # Before pruning starts every weight is live.
])
def test_effective_parameters_per_bottleneck(bottleneck, kwargs, live, psi_width, streams):
  net = _q_net(bottleneck, **kwargs)
  info = effective.effective_parameters(net)
  assert info.feature_shape == (H, W, C)
  assert info.psi_width == psi_width and info.streams == streams
  assert info.live == live
  assert info.dense_equivalent == H * W * C * psi_width * streams
  assert info.density == pytest.approx(live / info.dense_equivalent)


def test_gap_density_is_one_over_positions():
  info = effective.effective_parameters(_q_net("gap"))
  assert info.density == pytest.approx(1.0 / (H * W))


def test_pruned_density_follows_the_masks():
  net = _q_net("pruned", bottleneck_kwargs=dict(target_sparsity=0.9, begin_step=0, end_step=3,
                                                frequency=1))
  pruning.initialize_pruning(net)
  x = _obs(2)
  for _ in range(6):
    net(x, training=True)
  masked = sum(r["pruned"] for r in pruning.sparsity_report(net) if r["part"] == "psi")
  info = effective.effective_parameters(net)
  assert masked > 0
  assert info.total == H * W * C * 512
  assert info.live == info.total - masked
  assert info.density == pytest.approx(0.1, abs=0.01)


def test_effective_parameters_need_the_contract():
  with pytest.raises(ValueError, match="parts"):
    effective.effective_parameters(object())


def test_dormant_on_a_tfgap_network_counts_killed_channels():
  net = _q_net("flatten")
  conv0 = net.parts()["phi"][0]
  tiny_nets.kill_units(conv0, dead=[3, 7, 11])
  report = dormant.dormant_fractions(net, _obs(4), taus=(0.0, 0.1))
  groups = {l.group for l in report.layers}
  assert groups == {"phi", "psi"}
  first = report.layers[0]
  assert first.group == "phi" and first.num_neurons == 32
  assert first.dormant[0.0] == 3  # Live channels are identical and active: exactly the killed.
  counts, total = report.group_counts("phi")
  assert total == 32 + 64 + 64
  assert counts[0.0] == sum(l.dormant[0.0] for l in report.layers if l.group == "phi")


def test_dormant_lists_softmoe_experts_in_the_bottleneck_group():
  net = _q_net("softmoe", bottleneck_kwargs={"num_experts": 2, "expert_hidden": 16})
  report = dormant.dormant_fractions(net, _obs(2))
  bottleneck = [l for l in report.layers if l.group == "bottleneck"]
  assert len(bottleneck) == 2 and all(l.num_neurons == 16 for l in bottleneck)
  assert report.group_fraction("bottleneck", 0.1) is not None


@pytest.mark.parametrize("kind", ["q", "categorical", "actor"])
def test_grad_cam_on_tfgap_networks(kind):
  x = _obs(2)
  if kind == "q":
    net = _q_net("gap")
    values = net(x)[0].numpy()
  elif kind == "categorical":
    net = networks.build_categorical_q_network(OBS, ACTIONS, num_atoms=11, bottleneck="gap")
    net.create_variables()
    probs = tf.nn.softmax(net(x)[0], axis=-1)
    values = tf.reduce_sum(probs * np.linspace(-10, 10, 11).astype(np.float32), -1).numpy()
  else:
    action_spec = tensor_spec.BoundedTensorSpec((3,), tf.float32, -1.0, 1.0)
    net = networks.build_actor_network(OBS, action_spec, bottleneck="gap")
    net.create_variables()
    values = net(x)[0].mean().numpy()
  maps, chosen = gradcam.grad_cam(net, x)
  tiny_nets.assert_greedy(chosen, values)
  assert maps.shape == (2, 36, 36)
  assert np.all((maps >= 0) & (maps <= 1))
  # At the feature map's own size (no resampling) each map peaks at exactly 1, or is all zero
  # when nothing speaks for the action.
  small, _ = gradcam.grad_cam(net, x, frame_size=(H, W))
  assert small.shape == (2, H, W)
  for cam in small:
    assert cam.max() == pytest.approx(1.0, abs=1e-6) or cam.max() == 0.0
  assert np.abs(maps.max(axis=(1, 2)) - small.max(axis=(1, 2))).max() < 0.1


def _critic():
  action_spec = tensor_spec.BoundedTensorSpec((2,), tf.float32, -1.0, 1.0)
  net = networks.build_critic_network(OBS, action_spec, bottleneck="gap")
  net.create_variables()
  return net


def test_dormant_on_a_critic_takes_observation_and_action():
  net = _critic()
  report = dormant.dormant_fractions(net, (_obs(2), np.zeros((2, 2), np.float32)))
  assert report.group_counts("psi")[1] == 512 + 512
  assert report.group_counts("phi")[1] == 32 + 64 + 64


def test_grad_cam_on_a_critic_explains_what_it_needs():
  with pytest.raises(ValueError, match="critic needs an action"):
    gradcam.grad_cam(_critic(), _obs(1))


@pytest.mark.parametrize("bottleneck, kwargs", [
    ("flatten", {}), ("gap", {}),
    ("softmoe", {"bottleneck_kwargs": {"num_experts": 2, "expert_hidden": 16}})])
def test_keras_models_from_build_keras_model_get_the_same_analyses(bottleneck, kwargs):
  model = networks.build_keras_model(observation_shape=(36, 36, 4), num_actions=6,
                                     bottleneck=bottleneck, **kwargs)
  net = _q_net(bottleneck, **kwargs)
  mine, theirs = (effective.effective_parameters(model), effective.effective_parameters(net))
  assert mine.bottleneck == bottleneck and mine.as_dict() == theirs.as_dict()
  x = _obs(2)
  report = dormant.dormant_fractions(model, x)
  expected = dormant.dormant_fractions(net, x)
  assert [(l.group, l.num_neurons) for l in report.layers] == [
      (l.group, l.num_neurons) for l in expected.layers]
  maps, chosen = gradcam.grad_cam(model, x)
  tiny_nets.assert_greedy(chosen, model(x).numpy())
  assert maps.shape == (2, 36, 36)


def test_grad_cam_on_a_value_network():
  net = networks.build_value_network(OBS, bottleneck="gap")
  net.create_variables()
  maps, chosen = gradcam.grad_cam(net, _obs(2))
  assert chosen.tolist() == [0, 0] and maps.shape == (2, 36, 36)


def test_other_keras_models_are_refused():
  from tfgap.compat import keras  # pylint: disable=g-import-not-at-top
  model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
  for fn in (effective.effective_parameters, lambda m: gradcam.grad_cam(m, _obs(1)),
             lambda m: dormant.dormant_fractions(m, _obs(1))):
    with pytest.raises(ValueError, match="build_keras_model"):
      fn(model)
