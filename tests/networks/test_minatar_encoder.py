"""The minatar encoder (MinAtar's conv 3x3 / 16 / stride 1, width-scaled): shapes, exact parameter
counts with flatten and GAP, FLOPs, the encoder contract and pruning."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec

from tfgap import networks
from tfgap.networks import accounting

ACTIONS = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 5)


def obs_spec(channels=4):
  return tensor_spec.BoundedTensorSpec((10, 10, channels), tf.uint8, 0, 255)


def q_net(scale, bottleneck, padding="VALID", channels=4, **kwargs):
  return networks.build_q_network(obs_spec(channels), ACTIONS, encoder="minatar",
                                  width_scale=scale, padding=padding, bottleneck=bottleneck,
                                  head_units=(128,), **kwargs)


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("padding,side", [("VALID", 8), ("SAME", 10)])
@pytest.mark.parametrize("bottleneck", ["flatten", "gap"])
def test_shapes_and_parameter_counts(scale, padding, side, bottleneck):
  channels, cin, actions = 16 * scale, 4, 6
  net = q_net(scale, bottleneck, padding)
  x = tf.zeros((3, 10, 10, cin), tf.uint8)
  q, _ = net(x)
  assert q.shape == (3, actions)
  assert net.encode(x).shape == (3, side, side, channels)
  features = side * side * channels if bottleneck == "flatten" else channels
  counts = accounting.account(net)["parts"]
  assert counts["phi"]["params"] == 3 * 3 * cin * channels + channels
  assert counts["bottleneck"]["params"] == 0
  assert counts["psi"]["params"] == features * 128 + 128 + 128 * actions + actions
  # The connection the paper is about: H*W*C*128 with flatten, C*128 with GAP.
  assert accounting.psi_input_weights(net) == features * 128
  assert counts["phi"]["flops"] == 2 * side * side * 9 * cin * channels


def test_minatar_papers_network_at_x1():
  # examples/dqn.py of MinAtar: conv 4->16 (3x3, no padding) -> 1024 -> 128 -> 6.
  counts = accounting.account(q_net(1, "flatten"))["total"]
  assert counts["params"] == (9 * 4 * 16 + 16) + (1024 * 128 + 128) + (128 * 6 + 6) == 132_566


def test_contract_activations_parts_and_decode():
  net = q_net(2, "gap", channels=10)
  x = tf.constant(np.random.RandomState(0).randint(0, 2, (2, 10, 10, 10)) * 255, tf.uint8)
  acts = net.activations(x)
  assert [(g, n, tuple(t.shape)) for g, n, t in acts] == [
      ("phi", "conv0", (2, 8, 8, 32)), ("psi", "dense0", (2, 128))]
  np.testing.assert_allclose(net.decode(net.encode(x)), net(x)[0], rtol=1e-6)
  conv = net.parts()["phi"]
  assert len(conv) == 1 and conv[0].filters == 32
  assert net.encoder_name == "minatar" and net.width_scale == 2
  # uint8 0/255 and float 0/1 * 255 give the same features: /255 happens inside.
  enc = networks.make_encoder("minatar", width_scale=1)
  np.testing.assert_allclose(enc(x), enc(tf.cast(x, tf.float32)), rtol=1e-6)
  config = enc.get_config()
  assert config["width_scale"] == 1 and config["padding"] == "SAME"
  assert net.copy().encoder_name == "minatar"


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="minatr"), "Did you mean 'minatar'"),
    (dict(name="minatar", width_scale=0), "width_scale=0 is not accepted"),
    (dict(name="minatar", padding="FULL"), "padding='FULL' is not accepted"),
    (dict(name="minatar", num_stacks=2), "impala encoder only"),
])
def test_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    networks.make_encoder(**kwargs)


def test_frame_too_small_for_valid_padding():
  with pytest.raises(ValueError, match="too small for the minatar encoder"):
    networks.make_encoder("minatar", padding="VALID").output_shape_for((2, 2, 4))


def test_pruned_bottleneck_wraps_the_conv_too():
  net = q_net(1, "pruned", bottleneck_kwargs=dict(begin_step=0, end_step=10, frequency=1,
                                                  prune_phi=True))
  net.create_variables()
  from tfgap.networks import common  # pylint: disable=g-import-not-at-top
  assert common.is_pruned(net.parts()["phi"][0])
  assert accounting.account(net)["parts"]["phi"]["params"] == 9 * 4 * 16 + 16
