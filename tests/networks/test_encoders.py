"""Encoders: shapes and exact parameter counts (the Impala x1..x8 counts at 84x84 included)."""

import numpy as np
import pytest
import tensorflow as tf

from tests.networks import _formulas as F
from tfgap import networks

# Impala with 4 input channels at 84x84 (the paper's scales).
IMPALA_TABLE = {
    1: (97_744, (11, 11, 32), 3_872, 1_982_464, 16_384),
    2: (389_024, (11, 11, 64), 7_744, 3_964_928, 32_768),
    4: (1_552_192, (11, 11, 128), 15_488, 7_929_856, 65_536),
    8: (6_200_960, (11, 11, 256), 30_976, 15_859_712, 131_072),
}


def _count(layer):
  return int(sum(np.prod(w.shape) for w in layer.trainable_weights))


@pytest.mark.parametrize("scale", sorted(IMPALA_TABLE))
def test_impala_matches_reference_table_at_84x84(scale):
  params, fmap, flat, flat_w, gap_w = IMPALA_TABLE[scale]
  enc = networks.make_encoder("impala", width_scale=scale)
  enc.build((None, 84, 84, 4))  # Builds every conv from shapes alone: no convolution runs.
  assert _count(enc) == params
  assert enc.output_shape_for((84, 84, 4)) == fmap
  flatten = networks.make_bottleneck("flatten")
  gap = networks.make_bottleneck("gap")
  (_, (d_flat,)), (_, (d_gap,)) = flatten.layer_costs(fmap), gap.layer_costs(fmap)
  assert d_flat == flat
  assert d_flat * 512 == flat_w and d_gap * 512 == gap_w


@pytest.mark.parametrize("padding,fmap", [("SAME", (11, 11, 64)), ("VALID", (7, 7, 64))])
def test_nature_84x84_feature_maps(padding, fmap):
  enc = networks.make_encoder("nature", padding=padding)
  x = tf.zeros((1, 84, 84, 4), tf.uint8)
  assert tuple(enc(x).shape[1:]) == fmap
  assert _count(enc) == F.nature((84, 84, 4), 1)[0] == 77_984


@pytest.mark.parametrize("name", ["nature", "impala"])
@pytest.mark.parametrize("scale", [0.5, 1, 2, 3, 4])
def test_shapes_and_params_match_formulas(name, scale):
  shape = (36, 44, 3)
  enc = networks.make_encoder(name, width_scale=scale)
  out = enc(tf.zeros((2,) + shape, tf.uint8))
  params, fmap = F.encoder(name, shape, scale)
  assert tuple(out.shape) == (2,) + fmap
  assert _count(enc) == params


@pytest.mark.parametrize("stacks,blocks", [(1, 0), (2, 1), (3, 2), (4, 3)])
def test_impala_depth_scaling(stacks, blocks):
  enc = networks.make_encoder("impala", num_stacks=stacks, blocks_per_stack=blocks)
  out = enc(tf.zeros((1, 40, 40, 4), tf.uint8))
  params, fmap = F.impala((40, 40, 4), 1, stacks, blocks)
  assert tuple(out.shape[1:]) == fmap
  assert _count(enc) == params
  assert len(enc.layers_with_neurons) == stacks * (1 + 2 * blocks)


def test_pixels_are_divided_by_255_inside():
  enc = networks.make_encoder("nature", width_scale=0.25)
  x = np.random.randint(0, 256, (2, 36, 36, 4)).astype(np.uint8)
  from_uint8 = enc(tf.constant(x))
  from_float = enc(tf.constant(x, tf.float32))
  np.testing.assert_allclose(from_uint8, from_float, rtol=1e-6)
  # Raw 0..255 input and its /255 version would differ if the layer did not rescale.
  conv0 = enc.convs[0]
  expected = tf.nn.relu(tf.nn.conv2d(x.astype(np.float32) / 255.0, conv0.kernel, 4, "SAME")
                        + conv0.bias)
  _, acts = enc.call_with_activations(tf.constant(x))
  np.testing.assert_allclose(acts[0][1], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="impal"), "Did you mean 'impala'"),
    (dict(name="resnet"), "accepted: 'nature', 'impala'"),
    (dict(name="nature", width_scale=0), "width_scale=0 is not accepted.*a positive number"),
    (dict(name="impala", width_scale=-2), "width_scale=-2 is not accepted"),
    (dict(name="impala", width_scale=float("nan")), "width_scale=nan is not accepted"),
    (dict(name="nature", padding="FULL"), "padding='FULL' is not accepted"),
    (dict(name="impala", padding="VALID"), "accepted: 'SAME'"),
    (dict(name="nature", num_stacks=4), "impala encoder only"),
    (dict(name="impala", num_stacks=0), "num_stacks=0 is not accepted.*a positive integer"),
    (dict(name="impala", blocks_per_stack=-1), "blocks_per_stack=-1 is not accepted; accepted: an integer >= 0"),
])
def test_bad_encoder_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    networks.make_encoder(**kwargs)


def test_frame_too_small_for_valid_nature():
  enc = networks.make_encoder("nature", padding="VALID")
  with pytest.raises(ValueError, match="too small"):
    enc.output_shape_for((20, 20, 4))
