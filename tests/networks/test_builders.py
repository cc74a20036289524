"""Builders: the encoder x bottleneck x width grid, the network contract, copies and bad input."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec

from tests.networks import _formulas as F
from tfgap import networks
from tfgap.compat import keras
from tfgap.networks import accounting

SHAPE = (36, 36, 4)
NUM_ACTIONS = 5
OBS = tensor_spec.BoundedTensorSpec(SHAPE, tf.uint8, 0, 255)
ACT = tensor_spec.BoundedTensorSpec((), tf.int64, 0, NUM_ACTIONS - 1)
CONT = tensor_spec.BoundedTensorSpec((2,), tf.float32, -1.0, 1.0)
# Small options keep the grid fast; the formulas take the same options.
BOTTLENECK_KWARGS = {
    "flatten": {}, "gap": {}, "pruned": {},
    "softmoe": dict(num_experts=2, expert_hidden=32),
    "tokenize": dict(hidden_units=32),
}
HEAD = (64,)


def _obs(batch=2, shape=SHAPE):
  return tf.constant(np.random.randint(0, 256, (batch,) + shape).astype(np.uint8))


def _count(net):
  return int(sum(np.prod(v.shape) for v in net.trainable_variables))


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("bottleneck", sorted(BOTTLENECK_KWARGS))
@pytest.mark.parametrize("encoder", ["nature", "impala"])
def test_grid(encoder, bottleneck, scale):
  kwargs = BOTTLENECK_KWARGS[bottleneck]
  net = networks.build_q_network(OBS, ACT, encoder=encoder, width_scale=scale,
                                 bottleneck=bottleneck, bottleneck_kwargs=kwargs, head_units=HEAD)
  x = _obs()
  q, state = net(x)
  assert tuple(q.shape) == (2, NUM_ACTIONS) and state == ()
  # Exact parameter count against the closed form, part by part.
  enc_params, fmap = F.encoder(encoder, SHAPE, scale)
  b_params, width = F.bottleneck(bottleneck, fmap, **kwargs)
  head_params = F.q_head(width, HEAD, NUM_ACTIONS)
  assert _count(net) == enc_params + b_params + head_params
  parts = accounting.account(net)["parts"]
  assert (parts["phi"]["params"], parts["bottleneck"]["params"], parts["psi"]["params"]) == (
      enc_params, b_params, head_params)
  # Contract: call == decode(encode(.)), feature map shape, attributes.
  a = net.encode(x)
  assert tuple(a.shape) == (2,) + fmap
  np.testing.assert_allclose(net.decode(a), q, rtol=1e-5, atol=1e-5)
  assert (net.encoder_name, net.bottleneck_name, net.width_scale) == (encoder, bottleneck, scale)
  # copy(): same architecture, no shared variables.
  twin = net.copy(name="twin")
  twin.create_variables()
  assert _count(twin) == _count(net)
  ids = {id(v) for v in net.variables}
  assert not any(id(v) in ids for v in twin.variables)
  assert not np.allclose(twin(x)[0], q)


@pytest.mark.parametrize("bottleneck", ["flatten", "softmoe", "tokenize"])
@pytest.mark.parametrize("encoder", ["nature", "impala"])
def test_activations_cover_every_layer_with_neurons(encoder, bottleneck):
  net = networks.build_q_network(OBS, ACT, encoder=encoder, bottleneck=bottleneck,
                                 bottleneck_kwargs=BOTTLENECK_KWARGS[bottleneck],
                                 head_units=(16, 8), width_scale=0.5)
  x = _obs()
  acts = net.activations(x)
  groups = [g for g, _, _ in acts]
  assert groups == sorted(groups, key=["phi", "bottleneck", "psi"].index)
  names = [n for _, n, _ in acts]
  assert len(set(names)) == len(names)
  convs = 3 if encoder == "nature" else 3 * 5
  assert groups.count("phi") == convs
  assert groups.count("bottleneck") == {"flatten": 0, "softmoe": 2, "tokenize": 1}[bottleneck]
  assert [tuple(t.shape) for g, _, t in acts if g == "psi"] == [(2, 16), (2, 8)]
  for g, _, t in acts:
    assert float(tf.reduce_min(t)) >= 0.0  # Post-ReLU.
    if g == "phi":
      assert t.shape.rank == 4
  # The last phi activation is the feature map that encode() returns (nature: ReLU conv output).
  if encoder == "nature":
    np.testing.assert_allclose(acts[convs - 1][2], net.encode(x), rtol=1e-6)
  parts = net.parts()
  assert set(parts) == {"phi", "bottleneck", "psi"}
  assert len(parts["phi"]) == convs and len(parts["psi"]) == 3


def test_default_head_units_follow_dopamine():
  gap = networks.build_q_network(OBS, ACT, bottleneck="gap")
  moe = networks.build_q_network(OBS, ACT, bottleneck="softmoe")
  assert [networks.common.unwrap(l).units for l in gap.parts()["psi"]] == [512, NUM_ACTIONS]
  assert [networks.common.unwrap(l).units for l in moe.parts()["psi"]] == [NUM_ACTIONS]
  scaled = networks.build_q_network(OBS, ACT, bottleneck="gap", head_units=(100, 30),
                                    head_scale=2)
  assert [l.units for l in scaled.parts()["psi"]] == [200, 60, NUM_ACTIONS]


@pytest.mark.parametrize("dueling", [False, True])
@pytest.mark.parametrize("noisy", [False, True])
def test_categorical_dueling_noisy(dueling, noisy):
  net = networks.build_categorical_q_network(OBS, ACT, num_atoms=7, bottleneck="gap",
                                             head_units=(16,), dueling=dueling, noisy=noisy,
                                             width_scale=0.5)
  x = _obs()
  logits, _ = net(x)
  assert tuple(logits.shape) == (2, NUM_ACTIONS, 7) and net.num_atoms == 7
  _, fmap = F.nature(SHAPE, 0.5)
  head = F.q_head(fmap[-1], (16,), NUM_ACTIONS, atoms=7, dueling=dueling, noisy=noisy)
  assert accounting.account(net)["parts"]["psi"]["params"] == head
  again, _ = net(x)
  assert np.allclose(logits, again) != noisy  # Noise is resampled at every call.
  if noisy:
    networks.set_noise(net, False)
    a, b = net(x)[0], net(x)[0]
    np.testing.assert_allclose(a, b)
    networks.set_noise(net, True)
  if dueling:
    # Dueling: mean over actions of the advantage part is removed, so mean_a logits = V.
    value_stream = net._head.streams[0]  # pylint: disable=protected-access
    networks.set_noise(net, False)
    feats = net._bottleneck(net.encode(x))  # pylint: disable=protected-access
    v = feats
    for layer in value_stream:
      v = layer(v)
    np.testing.assert_allclose(tf.reduce_mean(net(x)[0], axis=1), v, rtol=1e-4, atol=1e-5)


def test_dueling_q_values():
  net = networks.build_q_network(OBS, ACT, bottleneck="flatten", head_units=(8,), dueling=True,
                                 width_scale=0.25)
  x = _obs()
  q, _ = net(x)
  assert tuple(q.shape) == (2, NUM_ACTIONS)
  _, fmap = F.nature(SHAPE, 0.25)
  assert accounting.account(net)["parts"]["psi"]["params"] == F.q_head(
      int(np.prod(fmap)), (8,), NUM_ACTIONS, dueling=True)
  # Q = V + A - mean_a A, from the two streams run by hand on the bottleneck's features.
  value_stream, advantage_stream = net._head.streams  # pylint: disable=protected-access
  features = net._bottleneck(net.encode(x))  # pylint: disable=protected-access
  v, a = features, features
  for layer in value_stream:
    v = layer(v)
  for layer in advantage_stream:
    a = layer(a)
  v, a = v.numpy(), a.numpy()
  assert v.shape == (2, 1) and a.shape == (2, NUM_ACTIONS)
  np.testing.assert_allclose(q, v + a - a.mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
  # The mean is really subtracted (it is not ~0 here), and V really added.
  assert np.abs(a.mean(axis=1)).min() > 1e-4 and np.abs(v).min() > 1e-4
  assert not np.allclose(q, v + a, atol=1e-6) and not np.allclose(q, a - a.mean(1, keepdims=True))


def test_outer_dims_are_squashed():
  net = networks.build_q_network(OBS, ACT, bottleneck="gap", head_units=(8,), width_scale=0.25)
  x = tf.reshape(_obs(6), (2, 3) + SHAPE)
  q, _ = net(x)
  assert tuple(q.shape) == (2, 3, NUM_ACTIONS)
  np.testing.assert_allclose(tf.reshape(q, (6, -1)), net(tf.reshape(x, (6,) + SHAPE))[0],
                             rtol=1e-5)


def test_actor_critic_value_networks():
  kw = dict(bottleneck="gap", head_units=(16, 8), width_scale=0.5)
  actor = networks.build_actor_network(OBS, CONT, **kw)
  critic = networks.build_critic_network(OBS, CONT, **kw)
  value = networks.build_value_network(OBS, **kw)
  x = _obs(3)
  dist, _ = actor(x)
  sample = dist.sample()
  assert tuple(sample.shape) == (3, 2)
  assert float(tf.reduce_max(tf.abs(sample))) <= 1.0
  q, _ = critic((x, sample))
  v, _ = value(x)
  assert tuple(q.shape) == (3,) and tuple(v.shape) == (3,)
  np.testing.assert_allclose(critic.decode(critic.encode(x), sample), q, rtol=1e-5)
  np.testing.assert_allclose(value.decode(value.encode(x)), v, rtol=1e-5)
  _, fmap = F.nature(SHAPE, 0.5)
  c = fmap[-1]
  # Critic: psi sees [features, action]; actor: TanhNormal projection to 2 means + 2 stds.
  assert accounting.account(critic)["parts"]["psi"]["params"] == (
      F.dense(c + 2, 16) + F.dense(16, 8) + F.dense(8, 1))
  assert accounting.account(actor)["parts"]["psi"]["params"] == (
      F.dense(c, 16) + F.dense(16, 8) + F.dense(8, 4))
  for net in (actor, critic, value):
    twin = net.copy(name="twin")
    twin.create_variables()
    assert not {id(v) for v in twin.variables} & {id(v) for v in net.variables}
  assert [g for g, _, _ in critic.activations((x, sample))].count("psi") == 2
  assert [g for g, _, _ in actor.activations(x)].count("psi") == 2


def test_keras_model_matches_parts_and_trains():
  model = networks.build_keras_model(SHAPE, NUM_ACTIONS, encoder="nature", width_scale=0.5,
                                     bottleneck="gap", head_units=(16,))
  x = _obs(4)
  assert tuple(model(x).shape) == (4, NUM_ACTIONS)
  parts = networks.keras_model_parts(model)
  assert len(parts["phi"]) == 3 and len(parts["psi"]) == 2
  params, fmap = F.nature(SHAPE, 0.5)
  assert model.count_params() == params + F.q_head(fmap[-1], (16,), NUM_ACTIONS)
  model.compile(keras.optimizers.Adam(1e-3), "mse")
  y = np.random.randn(4, NUM_ACTIONS).astype(np.float32)
  history = model.fit(x.numpy(), y, epochs=20, batch_size=4, shuffle=False, verbose=0)
  assert history.history["loss"][-1] < 0.9 * history.history["loss"][0]


@pytest.mark.parametrize("kwargs,match", [
    (dict(encoder="natur"), "Did you mean 'nature'"),
    (dict(bottleneck="softmax"), "Did you mean 'softmoe'"),
    (dict(width_scale=0), "width_scale=0 is not accepted; accepted: a positive number"),
    (dict(head_units=(512, 0)), "head_units"),
    (dict(head_units=(-3,)), r"head_units=\(-3,\) is not accepted"),
    (dict(head_scale=0.0), "head_scale=0.0 is not accepted; accepted: a positive number"),
    (dict(bottleneck="softmoe", bottleneck_kwargs=dict(num_experts=0)), "num_experts"),
    (dict(bottleneck="softmoe", bottleneck_kwargs=dict(tokenization="pixel")),
     "tokenization='pixel' is not accepted"),
    (dict(bottleneck="pruned", bottleneck_kwargs=dict(target_sparsity=1.5)), "target_sparsity"),
    (dict(bottleneck="pruned", bottleneck_kwargs=dict(begin_step=5, end_step=2)), "begin_step"),
    (dict(padding="VALID", encoder="impala"), "accepted: 'SAME'"),
])
def test_bad_builder_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    networks.build_q_network(OBS, ACT, **kwargs)


@pytest.mark.parametrize("spec,match", [
    (tensor_spec.TensorSpec((84, 84), tf.uint8), r"rank 3.*got shape \(84, 84\)"),
    (tensor_spec.TensorSpec((4,), tf.float32), r"got shape \(4,\)"),
    (tensor_spec.TensorSpec((84, 84, 4), tf.int32), "got int32"),
    ({"pixels": OBS}, "single tf.TensorSpec"),
    (tensor_spec.TensorSpec((None, 84, 4), tf.uint8), "fully defined"),
])
def test_bad_observation_specs(spec, match):
  with pytest.raises(ValueError, match=match):
    networks.build_q_network(spec, ACT)


def test_bad_action_specs_and_atoms():
  with pytest.raises(ValueError, match="discrete actions"):
    networks.build_q_network(OBS, CONT)
  with pytest.raises(ValueError, match="bounded float action_spec"):
    networks.build_actor_network(OBS, ACT)
  with pytest.raises(ValueError, match="num_atoms=0 is not accepted; accepted: a positive integer"):
    networks.build_categorical_q_network(OBS, ACT, num_atoms=0)
  with pytest.raises(ValueError, match="too small"):
    networks.build_q_network(tensor_spec.TensorSpec((8, 8, 1), tf.uint8), ACT, padding="VALID")
