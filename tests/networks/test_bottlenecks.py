"""Bottlenecks: output widths, parameter formulas, SoftMoE invariants and a numpy reference."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tests.networks import _formulas as F
from tfgap import networks
from tfgap.networks import bottlenecks


def _count(layer):
  return int(sum(np.prod(w.shape) for w in layer.trainable_weights))


def _fmap(b=2, h=5, w=6, c=8):
  return tf.random.normal((b, h, w, c))


@pytest.mark.parametrize("name,kwargs", [
    ("flatten", {}), ("gap", {}), ("pruned", {}),
    ("softmoe", dict(num_experts=3, expert_hidden=16)),
    ("softmoe", dict(num_experts=1, expert_hidden=8, capacity_factor=0.5)),
    ("tokenize", dict(hidden_units=16)),
])
def test_output_width_and_params(name, kwargs):
  layer = networks.make_bottleneck(name, **kwargs)
  x = _fmap()
  y = layer(x)
  params, width = F.bottleneck(name, (5, 6, 8), **kwargs)
  assert tuple(y.shape) == (2, width)
  assert _count(layer) == params
  (_, flops), = layer.layer_costs((5, 6, 8))[0]
  assert (flops == 0) == (name in ("flatten", "gap", "pruned"))


def test_gap_is_the_spatial_mean():
  x = _fmap()
  np.testing.assert_allclose(networks.make_bottleneck("gap")(x), tf.reduce_mean(x, [1, 2]),
                             rtol=1e-6)
  np.testing.assert_allclose(networks.make_bottleneck("flatten")(x), tf.reshape(x, [2, -1]))


@pytest.mark.parametrize("tokenization,kwargs,tokens", [
    ("per_conv", {}, (30, 8)),
    ("per_featuremap", {}, (8, 30)),
    ("per_patch", dict(patch_size=2), (6, 64)),  # Dopamine's embedding_size 64 by default.
    ("per_patch", dict(patch_size=2, embedding_size=5), (6, 5)),
    ("per_patch", dict(patch_size=2, embedding_size=None), (6, 8)),  # None: the channels.
    ("per_patch", dict(patch_size=3, patch_embedding="avg_pool"), (2, 8)),
])
@pytest.mark.parametrize("name", ["softmoe", "tokenize"])
def test_tokenizations(name, tokenization, kwargs, tokens):
  extra = dict(num_experts=2, expert_hidden=4) if name == "softmoe" else dict(hidden_units=4)
  layer = networks.make_bottleneck(name, tokenization=tokenization, **kwargs, **extra)
  y = layer(_fmap())
  m, d = tokens
  assert (layer.num_tokens, layer.token_dim) == (m, d)
  assert tuple(y.shape) == (2, m * d)


def test_per_featuremap_tokens_are_channels():
  tok = bottlenecks._Tokenizer("per_featuremap")  # pylint: disable=protected-access
  x = _fmap()
  t = tok(x)
  np.testing.assert_allclose(t[:, 3], tf.reshape(x[..., 3], [2, -1]))


def _routing_layer(normalize=False, n=3, p=None):
  layer = bottlenecks.SoftMoE(num_experts=n, slots_per_expert=p, expert_hidden=16,
                              normalize=normalize)
  layer(_fmap())
  return layer


@pytest.mark.parametrize("normalize", [False, True])
def test_softmoe_dispatch_and_combine_are_distributions(normalize):
  layer = _routing_layer(normalize)
  tokens = layer.tokenizer(_fmap() * 3.0)
  dispatch, combine = layer.routing(tokens)
  m = layer.num_tokens
  n, p = layer.num_experts, layer.num_slots(m)
  assert tuple(dispatch.shape) == (2, m, n, p) == tuple(combine.shape)
  # Dispatch: for every slot, weights over the tokens sum to 1.
  np.testing.assert_allclose(tf.reduce_sum(dispatch, axis=1), np.ones((2, n, p)), rtol=1e-5)
  # Combine: for every token, weights over all (expert, slot) pairs sum to 1.
  np.testing.assert_allclose(tf.reduce_sum(combine, axis=[2, 3]), np.ones((2, m)), rtol=1e-5)
  assert float(tf.reduce_min(dispatch)) > 0.0 and float(tf.reduce_min(combine)) > 0.0


@pytest.mark.parametrize("normalize", [False, True])
def test_softmoe_per_conv_output_permutes_with_its_tokens(normalize):
  layer = _routing_layer(normalize)
  x = _fmap()
  perm = np.random.permutation(30)
  # Permute the spatial positions of the feature map (per_conv: one token per position).
  flat = tf.reshape(x, [2, 30, 8])
  x_perm = tf.reshape(tf.gather(flat, perm, axis=1), [2, 5, 6, 8])
  out = tf.reshape(layer(x), [2, 30, 8])
  out_perm = tf.reshape(layer(x_perm), [2, 30, 8])
  np.testing.assert_allclose(out_perm, tf.gather(out, perm, axis=1), rtol=1e-4, atol=1e-5)
  # The output depends on the input: not a constant map.
  assert not np.allclose(out, tf.reshape(layer(x * 2.0), [2, 30, 8]))


def _softmax(z, axis):
  z = z - z.max(axis=axis, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("normalize", [False, True])
def test_softmoe_matches_a_numpy_reference(normalize):
  layer = _routing_layer(normalize, n=2, p=4)
  if normalize:
    layer.router_scale.assign(1.7)
  x = _fmap().numpy()
  got = layer(x).numpy()
  router = layer.router.numpy()
  w_in, b_in = layer.w_in.numpy(), layer.b_in.numpy()
  w_out, b_out = layer.w_out.numpy(), layer.b_out.numpy()
  for b in range(2):
    tokens = x[b].reshape(30, 8)
    xl, rl = tokens, router
    if normalize:
      xl = tokens / np.linalg.norm(tokens, axis=1, keepdims=True)
      rl = 1.7 * router / np.linalg.norm(router, axis=0, keepdims=True)
    logits = np.einsum("md,dnp->mnp", xl, rl)
    dispatch = _softmax(logits, axis=0)
    combine = _softmax(logits.reshape(30, -1), axis=1).reshape(logits.shape)
    out = np.zeros((30, 8))
    for i in range(2):
      for j in range(4):
        slot = (dispatch[:, i, j:j + 1] * tokens).sum(0)
        hidden = np.maximum(slot @ w_in[i] + b_in[i], 0)
        y = hidden @ w_out[i] + b_out[i]
        out += combine[:, i, j:j + 1] * y[None, :]
    np.testing.assert_allclose(got[b], out.reshape(-1), rtol=1e-4, atol=1e-5)


def test_softmoe_slots_follow_capacity_factor():
  for n, cf, expected in [(4, 1.0, 8), (8, 1.0, 4), (1, 1.0, 30), (4, 2.0, 15), (7, 1.0, 5)]:
    layer = networks.make_bottleneck("softmoe", num_experts=n, capacity_factor=cf)
    assert layer.num_slots(30) == expected == math.ceil(30 * cf / n)


def test_softmoe_activations_are_per_expert_hidden_layers():
  layer = _routing_layer(n=3, p=2)
  _, acts = layer.call_with_activations(_fmap())
  assert len(acts) == 3
  for _, t in acts:
    assert tuple(t.shape) == (2, 2, 16)
    assert float(tf.reduce_min(t)) >= 0.0  # Post-ReLU.


def test_tokenize_shares_one_mlp_over_tokens():
  layer = networks.make_bottleneck("tokenize", hidden_units=16)
  x = _fmap()
  out = tf.reshape(layer(x), [2, 30, 8])
  tokens = tf.reshape(x, [2, 30, 8])
  # The same MLP applied to one token on its own gives that token's output.
  single = layer.token_out(layer.token_hidden(tokens[:, 7]))
  np.testing.assert_allclose(out[:, 7], single, rtol=1e-5, atol=1e-6)
  no_proj = networks.make_bottleneck("tokenize", hidden_units=16, output_units=0)
  assert tuple(no_proj(x).shape) == (2, 30 * 16)


@pytest.mark.parametrize("name,kwargs,match", [
    ("gapp", {}, "Did you mean 'gap'"),
    ("moe", {}, "accepted: 'flatten', 'gap', 'softmoe', 'tokenize', 'pruned'"),
    ("softmoe", dict(num_experts=0), "num_experts=0 is not accepted; accepted: a positive integer"),
    ("softmoe", dict(num_experts=2.5), "num_experts=2.5 is not accepted"),
    ("softmoe", dict(capacity_factor=0), "capacity_factor=0 is not accepted.*a positive number"),
    ("softmoe", dict(expert_hidden=-1), "expert_hidden"),
    ("softmoe", dict(tokenization="per_pixel"), "tokenization='per_pixel' is not accepted"),
    ("softmoe", dict(num_expert=4), "Did you mean 'num_experts'"),
    ("softmoe", dict(normalize="yes"), "normalize='yes' is not accepted; accepted: True, False"),
    ("softmoe", dict(noisy=1), "noisy=1 is not accepted; accepted: True, False"),
    ("softmoe", dict(noisy_sigma0=0), "noisy_sigma0=0 is not accepted"),
    ("tokenize", dict(patch_embedding="max"), "patch_embedding='max' is not accepted"),
    ("tokenize", dict(hidden_units=0), "hidden_units"),
    ("gap", dict(num_experts=2), "accepted: none"),
    ("pruned", dict(target_sparsity=1.0),
     r"target_sparsity=1.0 is not accepted; accepted: a finite number >= 0.0 and < 1.0"),
    ("pruned", dict(target_sparsity=-0.1), "target_sparsity=-0.1 is not accepted"),
    ("pruned", dict(begin_step=10, end_step=10),
     r"begin_step=10 is not accepted; accepted: an integer smaller than end_step \(10\)"),
    ("pruned", dict(begin_step=-1), "begin_step=-1 is not accepted; accepted: an integer >= 0"),
    ("pruned", dict(frequency=0), "frequency=0 is not accepted; accepted: a positive integer"),
    ("pruned", dict(initial_sparsity=0.99, target_sparsity=0.5), "initial_sparsity"),
    ("pruned", dict(psi_layers=0), "psi_layers"),
    ("pruned", dict(target_sparsty=0.9), "Did you mean 'target_sparsity'"),
])
def test_bad_bottleneck_arguments(name, kwargs, match):
  with pytest.raises(ValueError, match=match):
    networks.make_bottleneck(name, **kwargs)


def test_patch_larger_than_feature_map():
  layer = networks.make_bottleneck("softmoe", tokenization="per_patch", patch_size=7)
  with pytest.raises(ValueError, match=r"patch_size=7 is not accepted; accepted: 1..5 \(the feature map is 5x6\)"):
    layer(_fmap())
