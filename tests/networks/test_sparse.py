"""Sparse training (tfgap.networks.sparse): RigL/SET/static masks against numpy references."""

import math

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from tfgap import agents
from tfgap import networks
from tfgap.analysis import effective
from tfgap.networks import accounting
from tfgap.networks import pruning
from tfgap.networks import sparse

OBS = tensor_spec.BoundedTensorSpec((36, 36, 2), tf.uint8, 0, 255)
ACT = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 3)
SMALL = dict(encoder="nature", width_scale=0.25, head_units=(32,))


def _net(**options):
  return networks.build_q_network(OBS, ACT, bottleneck="sparse", bottleneck_kwargs=options,
                                  **SMALL)


def _state(net):
  layer = sparse.sparse_bottleneck(net)
  return layer, [(w[0], m) for _, w, m, _, _ in layer._pairs]  # pylint: disable=protected-access


def _randomize(net, rng):
  """Fresh random values in the live weights (dead ones stay 0)."""
  _, pairs = _state(net)
  for w, m in pairs:
    w.assign(rng.normal(size=w.shape).astype(np.float32) * m.numpy())


def _reference(weight, mask, score, fraction):
  """numpy RigL/SET: keep the largest live |w|, grow the top scores among the rest."""
  w, m, s = weight.ravel(), mask.ravel() > 0.5, score.ravel()
  n_live = int(m.sum())
  # The count in float32, as the layer computes it (half-way cases round alike).
  n_keep = max(1, int(np.round(np.float32(n_live) * (np.float32(1) - np.float32(fraction)))))
  live_idx = np.flatnonzero(m)
  kept = live_idx[np.argsort(-np.abs(w[live_idx]), kind="stable")[:n_keep]]
  rest = np.setdiff1d(np.arange(w.size), kept)
  grown = rest[np.argsort(-s[rest], kind="stable")[:n_live - n_keep]]
  new = np.zeros(w.size, bool)
  new[kept] = True
  new[grown] = True
  return new.reshape(mask.shape), kept, grown


@pytest.mark.parametrize("method", ["rigl", "set"])
def test_drop_and_grow_matches_numpy(method):
  rng = np.random.default_rng(0)
  net = _net(method=method, scope="phi_psi", sparsity=0.8, drop_fraction=0.3, update_freq=1,
             end_step=100)
  layer, pairs = _state(net)
  _randomize(net, rng)
  step = 10
  fraction = 0.3 * 0.5 * (1 + math.cos(math.pi * step / 100))
  before = [(w.numpy(), m.numpy()) for w, m in pairs]
  grads = [rng.normal(size=w.shape).astype(np.float32) for w, _ in pairs]
  total_activated = 0
  layer.update_topology(tf.constant(step, tf.int64), grads)
  for i, ((w0, m0), (w, m)) in enumerate(zip(before, pairs)):
    if method == "rigl":
      score = np.abs(grads[i])
    else:  # SET's scores are random: regrowth is checked by count and by place (dead before).
      score = None
    new_mask = m.numpy() > 0.5
    n_live = int(m0.sum())
    assert new_mask.sum() == n_live  # Sparsity unchanged.
    ref_mask, kept, grown = _reference(w0, m0, score if score is not None else np.zeros_like(w0),
                                       fraction)
    flat = new_mask.ravel()
    assert flat[kept].all()  # The largest live weights stay ...
    dropped = np.setdiff1d(np.flatnonzero(m0.ravel()), kept)
    assert len(dropped) == n_live - max(1, int(np.round(n_live * (1 - fraction))))
    if method == "rigl":
      np.testing.assert_array_equal(new_mask, ref_mask)
    else:
      assert flat.sum() - len(kept) == len(grown)
    # Regrown weights start at 0; kept weights keep their values.
    wn = w.numpy().ravel()
    activated = flat & ~(m0.ravel() > 0.5)
    assert np.all(wn[activated] == 0) and np.all(wn[~flat] == 0)
    np.testing.assert_array_equal(wn[kept], w0.ravel()[kept])
    total_activated += int(activated.sum())
  assert total_activated > 0  # ERK leaves small layers dense: they only regrow what they drop.


@pytest.mark.parametrize("ties", [False, True])
def test_drop_and_grow_function_matches_numpy_on_small_kernels(ties):
  """Both selections (drop by |w|, grow by score) against the stable-sort reference, ties too."""
  rng = np.random.default_rng(5)
  fn = tf.function(sparse.drop_and_grow, jit_compile=True)
  for _ in range(25):
    size = int(rng.choice([7, 64]))  # Two shapes: two XLA compilations.
    mask = np.zeros(size, np.float32)
    mask[rng.permutation(size)[:rng.integers(1, size + 1)]] = 1.0
    if ties:  # Few distinct magnitudes and scores; dead entries hold 0 and score like live ones.
      weight = rng.integers(-2, 3, size).astype(np.float32) * mask
      score = rng.integers(0, 3, size).astype(np.float32)
    else:
      weight = rng.normal(size=size).astype(np.float32) * mask
      score = rng.random(size).astype(np.float32)
    fraction = float(rng.choice([0.0, 0.1, 0.3, 0.5, 1.0]))
    new, activated = fn(tf.constant(weight), tf.constant(mask), tf.constant(score),
                        tf.constant(fraction))
    ref, kept, grown = _reference(weight, mask, score, fraction)
    np.testing.assert_array_equal(new.numpy() > 0.5, ref)
    np.testing.assert_array_equal(activated.numpy(), ref & (mask == 0))
    assert new.numpy().sum() == mask.sum() == len(kept) + len(grown)  # Sparsity kept exactly.


def test_select_top_is_the_stable_descending_sort_prefix():
  rng = np.random.default_rng(7)
  for trial in range(60):
    size = int(rng.integers(1, 200))
    values = [rng.random(size), rng.integers(0, 3, size), np.full(size, np.inf),
              np.abs(rng.normal(size=size)) * 1e-42][trial % 4]  # Last: subnormals.
    scores = values.astype(np.float32)
    candidates = rng.random(size) < 0.6
    k = int(rng.integers(0, candidates.sum() + 1))
    got = sparse.select_top(tf.constant(scores), k, tf.constant(candidates)).numpy()
    idx = np.flatnonzero(candidates)
    expected = np.zeros(size, bool)
    expected[idx[np.argsort(-scores[idx], kind="stable")[:k]]] = True
    np.testing.assert_array_equal(got, expected)


def test_sparsity_equals_target_after_each_update_and_static_never_changes():
  rng = np.random.default_rng(1)
  net = _net(method="set", scope="phi_psi", sparsity=0.9, distribution="erk", update_freq=1)
  layer, pairs = _state(net)
  targets = [t for _, _, _, t, _ in layer._pairs]  # pylint: disable=protected-access
  for step in range(1, 4):
    _randomize(net, rng)
    layer.update_topology(tf.constant(step, tf.int64))
    for (w, m), t in zip(pairs, targets):
      assert int(m.numpy().sum()) == sparse.live_count(int(np.prod(m.shape)), t)
      assert np.all(w.numpy()[m.numpy() == 0] == 0)
  with pytest.raises(ValueError, match="'set' or 'rigl'"):
    _state(_net(method="static"))[0].update_topology(1)


def _agent(net, **kw):
  tss = ts.time_step_spec(OBS)
  return agents.DQNAgent(tss, ACT, net, jit_compile=True, min_replay_history=0, **kw)


def _batch(rng, n=8):
  obs = rng.integers(0, 256, (n, 36, 36, 2)).astype(np.uint8)
  return {"observation": obs, "action": rng.integers(0, 4, n), "reward": rng.normal(size=n),
          "discount": np.full(n, 0.99), "next_observation": obs[::-1].copy()}


@pytest.mark.parametrize("method", ["static", "rigl"])
def test_compiled_update_keeps_masks(method):
  rng = np.random.default_rng(2)
  net = _net(method=method, update_freq=2, end_step=100)
  agent = _agent(net, target_update_period=4)  # Target refresh every update.
  sparse.bind_optimizer(net, agent.optimizer)
  layer, pairs = _state(net)
  masks0 = [m.numpy().copy() for _, m in pairs]
  for _ in range(3):
    assert agent.update(_batch(rng)).finite
  masks3 = [m.numpy().copy() for _, m in pairs]
  assert agent.update(_batch(rng)).finite  # Update 4: a topology step for RigL.
  masks = [m.numpy() for _, m in pairs]
  for (w, m) in pairs:
    assert np.all(w.numpy()[m.numpy() == 0] == 0)
    assert int(m.numpy().sum()) == int(masks0[pairs.index((w, m))].sum())
  changed = any(not np.array_equal(a, b) for a, b in zip(masks0, masks))
  assert changed == (method == "rigl")
  # The target network has masks of its own, refreshed with the weights.
  target_masks = sparse.sparse_bottleneck(agent.target_q_network).bookkeeping()
  assert {id(v) for v in target_masks}.isdisjoint({id(m) for _, m in pairs})
  for a, (_, b) in zip(target_masks, pairs):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # Regrown connections restart their Adam moments at 0 (jaxpruner restart_inner_state).
  if method == "rigl":
    w, m = pairs[0]
    grown = (m.numpy() > 0) & (masks3[0] == 0)
    slot = agent.optimizer.get_slot(w, "m").numpy()
    assert grown.any() and np.all(slot[grown] == 0)


def test_dead_entries_stay_zero_under_adam_with_one_masking_pass():
  rng = np.random.default_rng(6)
  net = _net(method="static", sparsity=0.8, distribution="uniform")
  agent = _agent(net)
  layer, pairs = _state(net)
  for _ in range(3):
    assert agent.update(_batch(rng)).finite
  for w, m in pairs:
    dead = m.numpy() == 0
    assert dead.any() and np.all(w.numpy()[dead] == 0)
    # Adam holds moments for the dead entries (their gradients are dense): its step moves them,
    # the hook's pass after the step puts the zeros back.
    assert np.any(agent.optimizer.get_slot(w, "m").numpy()[dead] != 0)
  # The forward pass reads the kernels as they are; the hook is the only masking pass.
  w, m = pairs[0]
  where = tuple(np.argwhere(m.numpy() == 0)[0])
  value = w.numpy()
  value[where] = 1.0
  w.assign(value)
  net(_batch(rng)["observation"], training=True)
  assert w.numpy()[where] == 1.0
  layer.after_gradient_step(None, None, tf.constant(1, tf.int64))
  assert w.numpy()[where] == 0.0


def _experience(rng, n=4):
  """A [n, 2] trajectory batch for TF-Agents' `train` (1-step DQN)."""
  from tf_agents.trajectories import trajectory  # pylint: disable=g-import-not-at-top
  mid = np.full((n, 2), int(ts.StepType.MID), np.int32)
  return trajectory.Trajectory(
      step_type=tf.constant(mid),
      observation=tf.constant(rng.integers(0, 256, (n, 2, 36, 36, 2)).astype(np.uint8)),
      action=tf.constant(rng.integers(0, 4, (n, 2)).astype(np.int64)), policy_info=(),
      next_step_type=tf.constant(mid),
      reward=tf.constant(rng.normal(size=(n, 2)).astype(np.float32)),
      discount=tf.constant(np.ones((n, 2), np.float32)))


@pytest.mark.parametrize("method", ["static", "set", "rigl"])
def test_tf_agents_train_runs_the_hook(method):
  rng = np.random.default_rng(8)
  net = _net(method=method, sparsity=0.8, distribution="uniform", update_freq=2, end_step=100)
  agent = _agent(net, target_update_period=4)  # Target refresh every update.
  layer, pairs = _state(net)
  if method == "rigl":  # Its gradients stay inside TF-Agents' step.
    with pytest.raises(ValueError, match="no gradient"):
      agent.train(_experience(rng))
    return
  masks0 = [m.numpy().copy() for _, m in pairs]
  for _ in range(2):
    agent.train(_experience(rng))
  for w, m in pairs + _state(agent.target_q_network)[1]:
    assert np.all(w.numpy()[m.numpy() == 0] == 0)
  changed = any(not np.array_equal(a, m.numpy()) for a, (_, m) in zip(masks0, pairs))
  assert changed == (method == "set")  # Step 2: SET's topology update.


def test_erk_densities_equal_formula():
  shapes = [(8, 8, 2, 8), (4, 4, 8, 16), (3, 3, 16, 16), (1024, 32), (32, 4)]
  s = 0.9
  got = sparse.erk_sparsities(shapes, s)
  sizes = np.array([np.prod(x) for x in shapes], float)
  raw = np.array([np.sum(x) for x in shapes], float) / sizes
  dense = np.array(got) == 0.0
  # Live weights: sum(n - floor(s n)); the non-dense layers' densities are eps * raw.
  target_live = np.sum(sizes - np.floor(s * sizes))
  eps = (target_live - sizes[dense].sum()) / np.sum(raw[~dense] * sizes[~dense])
  np.testing.assert_allclose(1 - np.array(got)[~dense], eps * raw[~dense], rtol=1e-12)
  assert np.all(eps * raw[dense] > 1.0 - 1e-12) or not dense.any()
  assert np.all(eps * raw[~dense] <= 1.0)
  np.testing.assert_allclose(np.sum((1 - np.array(got)) * sizes), target_live, rtol=1e-9)
  # The network's masks follow the distribution.
  net = _net(method="static", scope="phi_psi", sparsity=s, distribution="erk")
  layer, pairs = _state(net)
  shapes = [tuple(m.shape.as_list()) for _, m in pairs]
  for (_, m), t in zip(pairs, sparse.erk_sparsities(shapes, s)):
    assert int(m.numpy().sum()) == sparse.live_count(int(np.prod(m.shape)), t)


def test_checkpoint_restores_masks_and_weights(tmp_path):
  rng = np.random.default_rng(3)
  net = _net(method="rigl", update_freq=1)
  layer, pairs = _state(net)
  _randomize(net, rng)
  layer.update_topology(tf.constant(1, tf.int64), [rng.normal(size=w.shape) for w, _ in pairs])
  saved = [(w.numpy().copy(), m.numpy().copy()) for w, m in pairs]
  path = tf.train.Checkpoint(net=net).save(str(tmp_path / "ckpt"))
  other = _net(method="rigl", update_freq=1, seed=99)
  tf.train.Checkpoint(net=other).restore(path).assert_existing_objects_matched()
  for (w, m), (w0, m0) in zip(_state(other)[1], saved):
    np.testing.assert_array_equal(m.numpy(), m0)
    np.testing.assert_array_equal(w.numpy(), w0)


def test_accounting_effective_and_export_count_dead_weights():
  net = _net(method="static", scope="psi", sparsity=0.9, distribution="uniform")
  first = net.parts()["psi"][0]
  params, live = accounting.layer_params(first)
  kernel = first.kernel.numpy()
  assert live == params - int(np.sum(kernel == 0))
  result = effective.effective_parameters(net)
  assert result.live == int(np.count_nonzero(kernel))
  metrics = sparse.part_metrics(net)
  assert metrics["sparsity/phi"] == 0.0 and metrics["live_params/phi"] == \
      accounting.account(net)["parts"]["phi"]["params"]
  assert abs(metrics["sparsity"] - 0.9) < 1e-3
  # Export: the stripped network has no masks, the same zeros and the same outputs.
  stripped = pruning.strip_pruning(net)
  assert sparse.sparse_bottleneck(stripped).bookkeeping() == []
  assert len(stripped.variables) == len(net.variables) - len(_state(net)[1])
  obs = np.random.default_rng(4).integers(0, 256, (2, 36, 36, 2)).astype(np.uint8)
  np.testing.assert_allclose(stripped(obs)[0].numpy(), net(obs)[0].numpy(), rtol=1e-5)
  # build_keras_model: zeros at the target sparsity, no mask variables.
  model = networks.build_keras_model((36, 36, 2), 4, bottleneck="sparse",
                                     bottleneck_kwargs=dict(method="rigl", sparsity=0.8,
                                                            distribution="uniform"), **SMALL)
  assert len(model.weights) == len(stripped.variables)
  k = model.get_layer("psi").dense_layers[0].kernel.numpy()
  assert abs(np.mean(k == 0) - 0.8) < 1e-3


def test_gmp_scopes_use_tfmot():
  for scope, n_phi in (("psi", 0), ("phi_psi", 3)):
    net = _net(method="gmp", scope=scope)
    wrappers = pruning.pruning_wrappers(net)
    assert len(wrappers) == n_phi + 2  # psi: hidden + output layers.
    assert not sparse.is_masked(net)


@pytest.mark.parametrize("options, match", [
    (dict(sparsity=1.0), "sparsity=1.0"),
    (dict(sparsity=-0.1), "sparsity=-0.1"),
    (dict(method="gmp", distribution="erk"), "with method 'gmp'"),
    (dict(method="dense"), "sparse method='dense'"),
    (dict(scope="phi"), "sparse scope='phi'"),
    (dict(start_step=10, end_step=10), "start_step=10"),
])
def test_bad_options(options, match):
  with pytest.raises(ValueError, match=match):
    _net(**options)


def test_rigl_without_gradients_and_empty_scope_and_other_networks():
  net = _net(method="rigl")
  layer, pairs = _state(net)
  with pytest.raises(ValueError, match="no gradient"):
    layer.after_gradient_step([None], [pairs[0][0]], tf.constant(1, tf.int64))
  with pytest.raises(ValueError, match="without gradients"):
    layer.update_topology(1)
  with pytest.raises(ValueError, match="sparse scope='psi'"):
    layer.scope_layers({"phi": [], "bottleneck": [layer], "psi": []})
  with pytest.raises(ValueError, match="sparse' method='rigl'"):
    networks.build_value_network(OBS, bottleneck="sparse", bottleneck_kwargs={"method": "rigl"},
                                 **SMALL)
