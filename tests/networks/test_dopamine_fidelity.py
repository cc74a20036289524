"""Network defaults as Dopamine runs them (issue 8): dueling layout, noisy layers, noisy SoftMoE
experts, ReDo's measurement points in the Impala encoder, initialisers, per_patch embedding."""

import math

import gin
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec

from tfgap import networks
from tfgap.analysis import effective
from tfgap.compat import keras
from tfgap.networks import accounting
from tfgap.networks import common

SHAPE = (36, 36, 4)  # Nature SAME: 9x9 -> 5x5 -> 5x5 x 64; Impala: 18 -> 9 -> 5.
NUM_ACTIONS = 5
OBS = tensor_spec.BoundedTensorSpec(SHAPE, tf.uint8, 0, 255)
ACT = tensor_spec.BoundedTensorSpec((), tf.int64, 0, NUM_ACTIONS - 1)
H, W, C = 5, 5, 64


def _obs(batch=3, seed=0):
  rng = np.random.RandomState(seed)
  return tf.constant(rng.randint(0, 256, (batch,) + SHAPE).astype(np.uint8))


def _build(kind, **kwargs):
  if kind == "q":
    net = networks.build_q_network(OBS, ACT, **kwargs)
  elif kind == "categorical":
    net = networks.build_categorical_q_network(OBS, ACT, num_atoms=7, **kwargs)
  else:
    return networks.build_keras_model(SHAPE, NUM_ACTIONS, **kwargs)
  net.create_variables()
  return net


def _psi(net):
  if isinstance(net, keras.Model):
    return net.get_layer("psi")
  return net._head  # pylint: disable=protected-access


# ------------------------------------------------------------------------------ 1. dueling


@pytest.mark.parametrize("kind", ["q", "categorical", "keras"])
def test_dueling_shares_one_512_layer_by_default(kind):
  net = _build(kind, bottleneck="flatten", dueling=True)
  head = _psi(net)
  assert head.dueling_layout == "shared"
  assert [l.name for l in head.dense_layers] == ["dense0", "value", "advantage"]
  # The bottleneck connection is psi's first layer: H*W*C*512 weights and 512 biases, once.
  (first,) = accounting.psi_input_layers(net if kind != "keras" else _Adapter(net))
  kernel, bias = first.trainable_weights
  assert tuple(kernel.shape) == (H * W * C, 512) and tuple(bias.shape) == (512,)
  # value and advantage both read the 512 features.
  atoms = 7 if kind == "categorical" else 1
  value, advantage = head.branches
  assert tuple(value[0].kernel.shape) == (512, atoms)
  assert tuple(advantage[0].kernel.shape) == (512, NUM_ACTIONS * atoms)
  psi = accounting.account(net)["parts"]["psi"]["params"]
  assert psi == (H * W * C * 512 + 512) + (512 * atoms + atoms) + (
      512 * NUM_ACTIONS * atoms + NUM_ACTIONS * atoms)


class _Adapter:  # psi_input_layers reads `_head`.

  def __init__(self, model):
    self._head = model.get_layer("psi")


@pytest.mark.parametrize("kind", ["q", "categorical", "keras"])
def test_separate_dueling_streams_stay_an_option(kind):
  net = _build(kind, bottleneck="flatten", dueling=True, dueling_layout="separate")
  head = _psi(net)
  assert [l.name for l in head.dense_layers] == [
      "value_dense0", "value", "advantage_dense0", "advantage"]
  firsts = head.input_layers
  assert [tuple(l.kernel.shape) for l in firsts] == [(H * W * C, 512)] * 2


def test_shared_dueling_q_values_and_activations():
  net = _build("q", bottleneck="gap", dueling=True, head_units=(16,))
  x = _obs()
  q, _ = net(x)
  hidden_layer, = net._head.trunk  # pylint: disable=protected-access
  (value,), (advantage,) = net._head.branches  # pylint: disable=protected-access
  h = hidden_layer(tf.reduce_mean(net.encode(x), [1, 2]))
  v, a = value(h).numpy(), advantage(h).numpy()
  np.testing.assert_allclose(q, v + a - a.mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
  psi = [(n, tuple(t.shape)) for g, n, t in net.activations(x) if g == "psi"]
  assert psi == [("dense0", (3, 16))]


def test_effective_parameters_count_the_layout():
  shared = effective.effective_parameters(_build("q", bottleneck="flatten", dueling=True))
  assert (shared.streams, shared.live, shared.dense_equivalent) == (
      1, H * W * C * 512, H * W * C * 512)
  separate = effective.effective_parameters(
      _build("q", bottleneck="gap", dueling=True, dueling_layout="separate"))
  assert (separate.streams, separate.live, separate.dense_equivalent) == (
      2, 2 * C * 512, 2 * H * W * C * 512)


def test_dueling_layout_is_checked_and_gin_configurable():
  with pytest.raises(ValueError, match="dueling_layout='split' is not accepted"):
    networks.build_q_network(OBS, ACT, dueling=True, dueling_layout="split")
  q = gin.external_configurable(networks.build_q_network, name="fidelity_q",
                                module="tests.fidelity", denylist=["observation_spec",
                                                                   "action_spec"])
  model = gin.external_configurable(networks.build_keras_model, name="fidelity_model",
                                    module="tests.fidelity")
  try:
    gin.parse_config(["tests.fidelity.fidelity_q.dueling_layout = 'separate'",
                      "tests.fidelity.fidelity_model.dueling_layout = 'separate'"])
    net = q(OBS, ACT, bottleneck="gap", dueling=True)
    assert net._head.dueling_layout == "separate"  # pylint: disable=protected-access
    assert model(SHAPE, 4, dueling=True).get_layer("psi").dueling_layout == "separate"
    # copy() (target networks) keeps the layout.
    assert net.copy()._head.dueling_layout == "separate"  # pylint: disable=protected-access
  finally:
    gin.clear_config()


# --------------------------------------------------------------------------- 6. noisy layers


def test_noisy_dense_initialisation_is_dopamines():
  layer = networks.NoisyDense(32)
  layer.build(tf.TensorShape([None, 400]))
  scale = 1.0 / math.sqrt(400)
  np.testing.assert_allclose(layer.kernel_sigma.numpy(), 0.1 * scale, rtol=1e-6)
  np.testing.assert_allclose(layer.bias_sigma.numpy(), 0.1 * scale, rtol=1e-6)
  for mu in (layer.kernel_mu.numpy(), layer.bias_mu.numpy()):
    assert np.abs(mu).max() <= scale and np.abs(mu).max() > 0.9 * scale  # U(-1/sqrt(p), ...)
  assert np.std(layer.kernel_mu.numpy()) == pytest.approx(scale / math.sqrt(3), rel=0.05)


def test_noisy_sigma0_is_configurable():
  net = _build("categorical", bottleneck="gap", noisy=True, dueling=True, noisy_sigma0=0.5,
               head_units=(16,))
  for layer in _psi(net).dense_layers:
    fan_in = layer.kernel_mu.shape[0]
    assert layer.sigma0 == 0.5
    np.testing.assert_allclose(layer.kernel_sigma.numpy(), 0.5 / math.sqrt(fan_in), rtol=1e-6)
  default = _build("categorical", bottleneck="gap", noisy=True)
  assert {l.sigma0 for l in _psi(default).dense_layers} == {0.1}


# ---------------------------------------------------------------------- 7. noisy SoftMoE


def _moe_net(noisy=True, **moe):
  kwargs = dict(num_experts=2, expert_hidden=16, **moe)
  return _build("categorical", encoder="nature", width_scale=0.25, bottleneck="softmoe",
                bottleneck_kwargs=kwargs, dueling=True, noisy=noisy)


def _expert_hidden_by_hand(layer, fmap, noise=None):
  """The experts' hidden activations from the mu weights (noise off) or given (e_in, e_out)."""
  tokens = layer.tokenizer(fmap)
  dispatch, _ = layer.routing(tokens)
  slots = tf.einsum("bmnp,bmd->bnpd", dispatch, tokens)
  pre = tf.einsum("bnpd,ndh->bnph", slots, layer.w_in) + layer.b_in[:, None, :]
  if noise is not None:
    e_in, e_out = noise
    w = layer.w_in + layer.w_in_sigma * (e_in[:, None] * e_out[None, :])
    b = layer.b_in + layer.b_in_sigma * e_out
    pre = tf.einsum("bnpd,ndh->bnph", slots, w) + b[:, None, :]
  return tf.nn.relu(pre)


def test_softmoe_experts_are_noisy_in_noisy_networks():
  net = _moe_net()
  moe = net._bottleneck  # pylint: disable=protected-access
  assert moe.noisy and moe.noisy_sigma0 == 0.1
  d, h = moe.token_dim, moe.expert_hidden
  np.testing.assert_allclose(moe.w_in_sigma.numpy(), 0.1 / math.sqrt(d), rtol=1e-6)
  np.testing.assert_allclose(moe.b_in_sigma.numpy(), 0.1 / math.sqrt(d), rtol=1e-6)
  assert np.abs(moe.w_in.numpy()).max() <= 1.0 / math.sqrt(d)
  assert tuple(moe.w_in_sigma.shape) == (2, d, h)
  # Accounting: sigma weights are parameters; the effective connection counts mu only.
  plain = _moe_net(noisy=False)
  parts = accounting.account(net)["parts"]["bottleneck"]
  plain_parts = accounting.account(plain)["parts"]["bottleneck"]
  assert parts["params"] == plain_parts["params"] + 2 * (d * h + h)
  assert parts["flops"] > plain_parts["flops"]
  assert effective.effective_parameters(net).live == effective.effective_parameters(plain).live
  # The output layer stays outside: value and advantage read the flattened mixed tokens.
  assert [l.name for l in net._head.dense_layers] == ["value", "advantage"]  # pylint: disable=protected-access


def test_softmoe_expert_noise_follows_set_noise():
  net = _moe_net()
  moe = net._bottleneck  # pylint: disable=protected-access
  x = _obs()
  fmap = net.encode(x)
  first, again = moe.call_with_activations(fmap)[1], moe.call_with_activations(fmap)[1]
  assert not np.allclose(first[0][1], again[0][1])  # A new draw at every forward pass.
  networks.set_noise(net, False)
  hidden = tf.stack([t for _, t in moe.call_with_activations(fmap)[1]], axis=1)
  np.testing.assert_allclose(hidden, _expert_hidden_by_hand(moe, fmap), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(net(x)[0], net(x)[0])
  networks.set_noise(net, True)
  assert not np.allclose(net(x)[0], net(x)[0])


def test_softmoe_expert_noise_is_one_draw_shared_by_experts_and_slots():
  net = _moe_net()
  moe = net._bottleneck  # pylint: disable=protected-access
  fmap = net.encode(_obs())
  d, h = moe.token_dim, moe.expert_hidden
  tf.random.set_seed(7)
  hidden = tf.stack([t for _, t in moe.call_with_activations(fmap)[1]], axis=1)
  # Replay the layer's two draws (e_in [d], then e_out [h]) under the same seed.
  tf.random.set_seed(7)
  e_in = common.factorised_noise(d, tf.float32)
  e_out = common.factorised_noise(h, tf.float32)
  expected = _expert_hidden_by_hand(moe, fmap, (e_in, e_out))
  np.testing.assert_allclose(hidden, expected, rtol=1e-4, atol=1e-5)


def test_softmoe_noise_can_be_turned_off_in_a_noisy_network():
  net = _build("categorical", width_scale=0.25, bottleneck="softmoe", noisy=True,
               bottleneck_kwargs=dict(num_experts=2, expert_hidden=16, noisy=False))
  assert not net._bottleneck.noisy  # pylint: disable=protected-access
  assert not _moe_net(noisy=False)._bottleneck.noisy  # pylint: disable=protected-access
  model = networks.build_keras_model(SHAPE, NUM_ACTIONS, width_scale=0.25, bottleneck="softmoe",
                                     bottleneck_kwargs=dict(num_experts=2, expert_hidden=16),
                                     noisy=True)
  assert model.get_layer("bottleneck").noisy
  networks.set_noise(model, False)
  x = _obs()
  np.testing.assert_allclose(model(x), model(x))


# ------------------------------------------------------------- 8. ReDo's measurement points


def test_impala_activations_are_read_where_redo_reads_them():
  enc = networks.make_encoder("impala", width_scale=0.5, num_stacks=2, blocks_per_stack=2)
  x = _obs()
  out, acts = enc.call_with_activations(x)
  names = [n for n, _ in acts]
  assert names == ["s0_conv", "s0_b0_conv0", "s0_b0_conv1", "s0_b1_conv0", "s0_b1_conv1",
                   "s1_conv", "s1_b0_conv0", "s1_b0_conv1", "s1_b1_conv0", "s1_b1_conv1"]
  # By hand, as dopamine/labs/redo/networks.py Stack.
  got = dict(acts)
  h = tf.cast(x, tf.float32) / 255.0
  for s in range(2):
    h = tf.nn.max_pool2d(enc.stack_convs[s](h), 3, 2, "SAME")
    np.testing.assert_allclose(got[f"s{s}_conv"], tf.nn.relu(h), rtol=1e-5, atol=1e-6)
    for b, (conv0, conv1) in enumerate(enc.block_convs[s]):
      y = tf.nn.relu(conv0(tf.nn.relu(h)))
      np.testing.assert_allclose(got[f"s{s}_b{b}_conv0"], y, rtol=1e-5, atol=1e-6)
      h = h + conv1(y)
      np.testing.assert_allclose(got[f"s{s}_b{b}_conv1"], tf.nn.relu(h), rtol=1e-5, atol=1e-6)
  # The last block's residual sum after ReLU is the encoder's output.
  np.testing.assert_allclose(acts[-1][1], out, rtol=1e-6)


# ------------------------------------------------------------------------- 9. initialisers


def _init(layer):
  return type(common.unwrap(layer).kernel_initializer).__name__


def test_initialisers_follow_dopamines_flax_modules():
  nature = networks.make_encoder("nature")
  assert [_init(c) for c in nature.convs] == ["GlorotUniform"] * 3
  impala = networks.make_encoder("impala")
  assert [_init(c) for c in impala.stack_convs] == ["GlorotUniform"] * 3
  assert {_init(c) for blocks in impala.block_convs for pair in blocks for c in pair} == {
      "LecunNormal"}
  head = networks.build_q_network(OBS, ACT, dueling=True)._head  # pylint: disable=protected-access
  assert [_init(l) for l in head.dense_layers] == ["GlorotUniform"] * 3
  moe = networks.make_bottleneck("softmoe", tokenization="per_patch")
  moe.build(tf.TensorShape([None, 11, 11, 32]))
  assert _init(moe.tokenizer.embed) == "LecunNormal"  # Flax default: the lab sets none.
  tok = networks.make_bottleneck("tokenize")
  tok.build(tf.TensorShape([None, 5, 5, 8]))
  assert {_init(tok.token_hidden), _init(tok.token_out)} == {"GlorotUniform"}


def test_initial_variances():
  tf.random.set_seed(3)
  impala = networks.make_encoder("impala", width_scale=4)
  impala.build(tf.TensorShape([None, 84, 84, 4]))
  # lecun_normal: Var = 1/fan_in for the residual convs (fan_in = 9 * C).
  kernel = impala.block_convs[2][1][1].kernel.numpy()
  assert np.var(kernel) == pytest.approx(1.0 / (9 * 128), rel=0.05)
  assert np.abs(kernel).max() <= 2.0 / 0.87962566103423978 / math.sqrt(9 * 128) + 1e-6
  # xavier_uniform: Var = 2/(fan_in + fan_out) for the stack conv.
  kernel = impala.stack_convs[2].kernel.numpy()
  assert np.var(kernel) == pytest.approx(2.0 / (9 * 128 + 9 * 128), rel=0.05)
  # SoftMoE router [d, n, p]: lecun_normal with fan_in = n * d (Flax's fans for a 3-D kernel).
  moe = networks.make_bottleneck("softmoe", num_experts=4)
  moe.build(tf.TensorShape([None, 11, 11, 128]))
  router = moe.router.numpy()
  assert router.shape == (128, 4, 31)
  assert np.var(router) == pytest.approx(1.0 / (4 * 128), rel=0.05)
  # Experts: xavier_uniform per expert, limit sqrt(6 / (d + h)).
  limit = math.sqrt(6.0 / (128 + 512))
  assert np.abs(moe.w_in.numpy()).max() <= limit * (1 + 1e-6)
  assert np.var(moe.w_in.numpy()) == pytest.approx(limit ** 2 / 3, rel=0.05)


# ------------------------------------------------------------- 15. per_patch embedding size


def test_per_patch_embedding_is_64_wide_by_default():
  for name in ("softmoe", "tokenize"):
    layer = networks.make_bottleneck(name, tokenization="per_patch")
    layer.build(tf.TensorShape([None, 11, 11, 32]))
    assert (layer.num_tokens, layer.token_dim) == (9, 64)
    assert layer.tokenizer.embed.filters == 64
  # Dopamine's ImpalaMoE (DQN) uses 32; avg_pool keeps the channels.
  layer = networks.make_bottleneck("softmoe", tokenization="per_patch", embedding_size=32)
  layer.build(tf.TensorShape([None, 11, 11, 128]))
  assert layer.token_dim == 32
  layer = networks.make_bottleneck("softmoe", tokenization="per_patch",
                                   patch_embedding="avg_pool")
  layer.build(tf.TensorShape([None, 11, 11, 128]))
  assert layer.token_dim == 128
