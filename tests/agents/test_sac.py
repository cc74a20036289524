"""SACAgent and PixelSACNetwork: the update against an independent reference of the three losses,
critic-only encoder gradients, the Polyak target, action bounds, augmentation, save/restore,
mixed precision (bfloat16 compute, float32 variables, losses and actions).

Everything runs on small synthetic specs (12x12x6 frames, tiny heads) so the file stays fast.
"""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_saver
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from tfgap import agents
from tfgap import networks
from tfgap.agents import sac
from tfgap.compat import keras
from tfgap.networks import accounting
from tfgap.networks import common
from tfgap.networks import sac as sac_networks

OBS = tensor_spec.BoundedTensorSpec((12, 12, 6), tf.uint8, 0, 255)
ACT = tensor_spec.BoundedTensorSpec((2,), tf.float32, -1.0, 1.0)
B = 6
# Mixed precision against float32 on one batch at the same weights: each loss within this
# fraction of the largest loss's magnitude (bfloat16 keeps 8 mantissa bits, ~0.4% per rounding;
# measured: under 0.2% on the batches below, at most 1.2% over 12 other seeds and bottlenecks).
LOSS_TOLERANCE = 0.03


def make_agent(bottleneck="gap", action_spec=ACT, optimizer=None, network_precision="float32",
               actor_optimizer=None, log_std_bounds=None, log_std_transform="clip", **settings):
  net = sac_networks.build_sac_network(OBS, action_spec, bottleneck=bottleneck,
                                       head_units=(16, 16), feature_dim=8,
                                       log_std_bounds=log_std_bounds,
                                       log_std_transform=log_std_transform,
                                       precision=network_precision)
  settings.setdefault("jit_compile", False)
  return sac.SACAgent(ts.time_step_spec(OBS), action_spec, net, optimizer=optimizer,
                      actor_optimizer=actor_optimizer, batch_size=B, **settings)


def make_batch(seed=0, action_dim=2):
  rng = np.random.default_rng(seed)
  return {
      "observation": rng.integers(0, 256, (B,) + tuple(OBS.shape), dtype=np.uint8),
      "action": rng.uniform(-1, 1, (B, action_dim)).astype(np.float32),
      "reward": rng.normal(size=B).astype(np.float32),
      "discount": np.array([0.99, 0.99, 0.0, 0.99, 0.99, 0.0], np.float32),
      "next_observation": rng.integers(0, 256, (B,) + tuple(OBS.shape), dtype=np.uint8),
  }


def _np(x):
  return np.asarray(x, np.float64)


def reference_log_prob(loc, log_std, eps, magnitude):
  """Tanh-Gaussian log-density in float64 numpy, written from the definition."""
  u = loc + np.exp(log_std) * eps
  normal = -0.5 * eps ** 2 - log_std - 0.5 * np.log(2 * np.pi)
  return np.sum(normal - np.log(magnitude * (1.0 - np.tanh(u) ** 2)), axis=-1), np.tanh(u)


def reference_losses(agent, batch, eps_next, eps_pi, y=None):
  """(critic, actor, alpha) losses of SAC on `batch` at the agent's current weights, the network
  read only through its layers; the target follows `agent.target_action` (or is `y`)."""
  net, target = agent.q_network, agent.target_q_network
  alpha = float(np.exp(agent.log_alpha.numpy()))
  mag = 1.0

  def qs(network, feats, action):
    z = network.critic_feature(feats)
    x = tf.concat([z, tf.constant(action, tf.float32)], -1)
    return [_np(h(x)[:, 0]) for h in network.critic_heads]

  def actor(network, feats):
    out = _np(network.actor_head(network.actor_feature(feats)))
    loc, raw = out[:, :2], out[:, 2:]
    if network.log_std_transform == "tanh":
      low, high = network.log_std_bounds
      return loc, low + 0.5 * (high - low) * (np.tanh(raw) + 1.0)
    return loc, raw

  if y is None:
    next_t = target.features(batch["next_observation"])
    if agent.target_action == "dopamine":
      loc, log_std = actor(target, next_t)
      log_p, _ = reference_log_prob(loc, log_std, eps_next, mag)
      q1n, q2n = qs(target, next_t, np.tanh(loc).astype(np.float32))
    else:
      loc, log_std = actor(net, net.features(batch["next_observation"]))
      log_p, a_next = reference_log_prob(loc, log_std, eps_next, mag)
      q1n, q2n = qs(target, next_t, a_next.astype(np.float32))
    y = (agent.reward_scale * _np(batch["reward"]) +
         _np(batch["discount"]) * (np.minimum(q1n, q2n) - alpha * log_p))
  feats = net.features(batch["observation"])
  q1, q2 = qs(net, feats, batch["action"])
  critic = np.mean(0.5 * (q1 - y) ** 2 + 0.5 * (q2 - y) ** 2)
  loc, log_std = actor(net, feats)
  log_pi, a_pi = reference_log_prob(loc, log_std, eps_pi, mag)
  p1, p2 = qs(net, feats, a_pi.astype(np.float32))
  actor_loss = np.mean(alpha * log_pi - np.minimum(p1, p2))
  temperature = np.log(alpha) if agent.temperature_loss == "log_alpha" else alpha
  alpha_loss = np.mean(-temperature * (log_pi + agent.target_entropy_value))
  return critic, actor_loss, alpha_loss, y, log_pi


def noises(agent):
  """The two standard-normal draws the next update makes (bootstrap first, then the actor)."""
  clone = tf.random.Generator.from_state(agent.update_rng.state.numpy(),
                                         agent.update_rng.algorithm)
  return clone.normal([B, 2]).numpy(), clone.normal([B, 2]).numpy()


@pytest.mark.parametrize("target_action,temperature_loss", [
    ("dopamine", "log_alpha"), ("sample", "log_alpha"), ("sample", "alpha")])
def test_update_matches_a_reference_of_the_three_losses(target_action, temperature_loss):
  agent = make_agent(target_action=target_action, initial_temperature=0.5,
                     temperature_loss=temperature_loss)
  batch = make_batch()
  agent.update(make_batch(seed=1))  # Online and target differ from here on.
  eps_next, eps_pi = noises(agent)
  critic, actor_loss, alpha_loss, _, log_pi = reference_losses(agent, batch, eps_next, eps_pi)
  result = agent.update(batch)
  parts = {k: float(v) for k, v in result.parts.items()}
  assert parts["critic"] == pytest.approx(critic, rel=1e-4, abs=1e-5)
  assert parts["actor"] == pytest.approx(actor_loss, rel=1e-4, abs=1e-5)
  assert parts["alpha"] == pytest.approx(alpha_loss, rel=1e-4, abs=1e-6)
  assert parts["entropy"] == pytest.approx(-np.mean(log_pi), rel=1e-4, abs=1e-5)
  assert float(result.loss) == pytest.approx(critic + actor_loss + alpha_loss, rel=1e-4, abs=1e-5)
  assert result.finite and result.priorities.shape == (B,)


def test_sgd_step_is_the_critic_gradient_on_the_encoder_and_the_actor_gradient_on_the_actor():
  lr = 0.1
  agent = make_agent(optimizer=keras.optimizers.legacy.SGD(lr),
                     actor_optimizer=keras.optimizers.legacy.SGD(lr), initial_temperature=0.3)
  net = agent.q_network
  batch = make_batch(seed=3)
  eps_next, eps_pi = noises(agent)
  _, _, _, y, _ = reference_losses(agent, batch, eps_next, eps_pi)
  encoder_vars = net._encoder.trainable_variables  # pylint: disable=protected-access
  critic_head_vars = [v for h in net.critic_heads for v in h.trainable_variables]
  actor_vars = net.actor_feature.trainable_variables + net.actor_head.trainable_variables
  alpha = float(np.exp(agent.log_alpha.numpy()))
  with tf.GradientTape(persistent=True) as tape:
    feats = net.features(batch["observation"])
    z = net.critic_feature(feats)
    x = tf.concat([z, batch["action"]], -1)
    q1, q2 = (h(x)[:, 0] for h in net.critic_heads)
    critic = tf.reduce_mean(0.5 * (q1 - y) ** 2 + 0.5 * (q2 - y) ** 2)
    out = net.actor_head(net.actor_feature(tf.stop_gradient(feats)))
    network_loc, _ = net.actor_params(feats)
    u = out[:, :2] + tf.exp(out[:, 2:]) * eps_pi
    log_pi = tf.reduce_sum(-0.5 * eps_pi ** 2 - out[:, 2:] - 0.5 * np.log(2 * np.pi) -
                           tf.math.log(1.0 - tf.tanh(u) ** 2), -1)
    xa = tf.concat([tf.stop_gradient(z), tf.tanh(u)], -1)
    qa = tf.minimum(*(h(xa)[:, 0] for h in net.critic_heads))
    actor_loss = tf.reduce_mean(alpha * log_pi - qa)
  expected = {}
  for variables, loss in ((encoder_vars + critic_head_vars, critic), (actor_vars, actor_loss)):
    for v, g in zip(variables, tape.gradient(loss, variables)):
      expected[v.ref()] = v.numpy() - lr * g.numpy()
  # The network's actor path gives the encoder no gradient at all (it reads detached features)...
  assert all(g is None for g in tape.gradient(network_loc, encoder_vars))
  # ... and after one SGD step the encoder moved by exactly the critic loss's gradient.
  agent.update(batch)
  for v in encoder_vars + critic_head_vars + actor_vars:
    np.testing.assert_allclose(v.numpy(), expected[v.ref()], rtol=1e-4, atol=1e-5)


def test_augment_views_average_the_targets_and_the_critic_losses_over_shifted_copies():
  """DrQ's K = M = 2 with its tanh-mapped log-std, against the reference on each shifted copy."""
  agent = make_agent(target_action="sample", augmentation="random_shift", augment_pad=2,
                     augment_views=2, initial_temperature=0.5, log_std_bounds=(-10.0, 2.0),
                     log_std_transform="tanh")
  agent.update(make_batch(seed=1))
  batch = make_batch()
  # The update's draws, in its order: K shifts of s, K of s', the bootstrap noise, the actor's.
  clone = tf.random.Generator.from_state(agent.update_rng.state.numpy(),
                                         agent.update_rng.algorithm)
  views = {key: [sac.random_shift(tf.constant(batch[key]), 2, clone).numpy() for _ in range(2)]
           for key in ("observation", "next_observation")}
  eps_next, eps_pi = clone.normal([2 * B, 2]).numpy(), clone.normal([B, 2]).numpy()
  assert not np.array_equal(views["observation"][0], views["observation"][1])
  ys = [reference_losses(agent, dict(batch, next_observation=views["next_observation"][i]),
                         eps_next[i * B:(i + 1) * B], eps_pi)[3] for i in range(2)]
  y = np.mean(ys, axis=0)
  per_view = [reference_losses(agent, dict(batch, observation=views["observation"][i]), None,
                               eps_pi, y=y) for i in range(2)]
  result = agent.update(batch)
  parts = {k: float(v) for k, v in result.parts.items()}
  assert parts["critic"] == pytest.approx(np.mean([v[0] for v in per_view]), rel=1e-4, abs=1e-5)
  assert parts["actor"] == pytest.approx(per_view[0][1], rel=1e-4, abs=1e-5)
  assert parts["alpha"] == pytest.approx(per_view[0][2], rel=1e-4, abs=1e-6)
  assert result.priorities.shape == (B,) and result.finite


def test_actor_and_target_update_periods_step_them_on_every_second_update():
  agent = make_agent(actor_update_period=2, target_update_period=2, tau=0.5)
  net, target = agent.q_network, agent.target_q_network
  actor_vars = net.actor_feature.trainable_variables + net.actor_head.trainable_variables
  critic_vars = [v for h in net.critic_heads for v in h.trainable_variables]

  def snapshot():
    return ([v.numpy() for v in actor_vars], [v.numpy() for v in critic_vars],
            [v.numpy() for v in target.variables], float(agent.log_alpha.numpy()))

  moved = []
  for seed in range(3):
    before = snapshot()
    agent.update(make_batch(seed=seed))
    after = snapshot()
    moved.append([any(not np.array_equal(a, b) for a, b in zip(x, y)) if isinstance(x, list)
                  else x != y for x, y in zip(before, after)])
  # (actor, critic, target, temperature) moved on updates 1, 2, 3: the critic every time.
  assert moved == [[True, True, True, True], [False, True, False, False],
                   [True, True, True, True]]
  assert int(agent.optimizer.iterations) == 3
  assert int(agent.actor_optimizer.iterations) == int(agent.alpha_optimizer.iterations) == 2


def test_tanh_log_std_maps_into_the_bounds_and_needs_them():
  agent = make_agent(log_std_bounds=(-10.0, 2.0), log_std_transform="tanh")
  net = agent.q_network
  feats = net.features(make_batch()["observation"]) * 1e3  # Saturates tanh on some units.
  _, log_std = net.actor_params(feats)
  raw = net.actor_head(net.actor_feature(feats))[:, 2:].numpy()
  np.testing.assert_allclose(log_std.numpy(), -10.0 + 6.0 * (np.tanh(raw) + 1.0), rtol=1e-5,
                             atol=1e-5)
  assert np.all(log_std.numpy() >= -10.0) and np.all(log_std.numpy() <= 2.0)
  with pytest.raises(ValueError, match="log_std_bounds=None is not accepted"):
    sac_networks.build_sac_network(OBS, ACT, log_std_transform="tanh")
  with pytest.raises(ValueError, match="log_std_transform"):
    sac_networks.build_sac_network(OBS, ACT, log_std_bounds=(-1.0, 1.0),
                                   log_std_transform="softplus")


@pytest.mark.parametrize("initializer,orthogonal", [("glorot_uniform", False),
                                                      ("orthogonal", True)])
def test_head_initializer_sets_the_critic_and_actor_kernels(initializer, orthogonal):
  net = sac_networks.build_sac_network(OBS, ACT, head_units=(16, 16), feature_dim=8,
                                       head_initializer=initializer)
  net.create_variables()
  heads = net.critic_heads + [net.actor_head]
  for layer in [layer for head in heads for layer in head.dense_layers]:
    kernel = layer.kernel.numpy().astype(np.float64)
    # An orthogonal kernel has orthonormal rows or columns (whichever are fewer).
    gram = kernel.T @ kernel if kernel.shape[0] >= kernel.shape[1] else kernel @ kernel.T
    assert np.allclose(gram, np.eye(len(gram)), atol=1e-4) == orthogonal, layer.name
    assert not np.any(layer.bias.numpy())
  copy = net.copy(name="copy")
  copy.create_variables()
  assert copy.head_initializer == initializer
  with pytest.raises(ValueError, match="head_initializer"):
    sac_networks.build_sac_network(OBS, ACT, head_initializer="he_normal")


def test_polyak_moves_every_target_variable_by_tau_encoder_included():
  agent = make_agent(tau=0.2, encoder_tau=0.5)
  before = [v.numpy() for v in agent.q_network.variables]
  targets_before = [v.numpy() for v in agent.target_q_network.variables]
  for a, b in zip(before, targets_before):
    np.testing.assert_array_equal(a, b)  # The target starts equal to the online network.
  agent.update(make_batch())
  encoder = {id(v) for v in agent.q_network._encoder.variables}  # pylint: disable=protected-access
  for online, target, old in zip(agent.q_network.variables, agent.target_q_network.variables,
                                 targets_before):
    tau = 0.5 if id(online) in encoder else 0.2
    np.testing.assert_allclose(target.numpy(), (1 - tau) * old + tau * online.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_actions_stay_inside_asymmetric_bounds_and_log_probs_stay_finite():
  spec = tensor_spec.BoundedTensorSpec((2,), tf.float32, [-2.0, 0.0], [1.0, 3.0])
  agent = make_agent(action_spec=spec)
  obs = make_batch()["observation"]
  for greedy in (False, True):
    actions = agent.act(obs, greedy=greedy)
    assert actions.shape == (B, 2) and actions.dtype == np.float32
    assert np.all(actions >= [-2.0, 0.0]) and np.all(actions <= [1.0, 3.0])
  step = ts.restart(tf.constant(obs), batch_size=B)
  for policy in (agent.policy, agent.collect_policy):
    actions = policy.action(step).action.numpy()
    assert np.all(actions >= [-2.0, 0.0]) and np.all(actions <= [1.0, 3.0])
  np.testing.assert_allclose(agent.policy.action(step).action.numpy(),
                             agent.act(obs, greedy=True), rtol=1e-5, atol=1e-6)
  net = agent.q_network
  big = tf.constant([[30.0, -30.0]])
  action, log_prob = net.sample_and_log_prob(big, tf.zeros([1, 2]), tf.zeros([1, 2]))
  assert np.all(np.isfinite(log_prob.numpy()))
  assert np.all(action.numpy() >= [-2.0, 0.0]) and np.all(action.numpy() <= [1.0, 3.0])


def test_random_shift_is_an_edge_replicating_shift_of_at_most_pad_pixels():
  rows, cols = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
  image = np.stack([rows, cols], -1).astype(np.uint8)[None].repeat(32, 0)
  out = sac.random_shift(tf.constant(image), 4, tf.random.Generator.from_seed(1)).numpy()
  assert out.shape == image.shape and out.dtype == np.uint8
  shifts = set()
  for i in range(32):
    dy = int(out[i, 6, 6, 0]) - 6
    dx = int(out[i, 6, 6, 1]) - 6
    assert -4 <= dy <= 4 and -4 <= dx <= 4
    np.testing.assert_array_equal(out[i, :, :, 0], np.clip(rows + dy, 0, 11))
    np.testing.assert_array_equal(out[i, :, :, 1], np.clip(cols + dx, 0, 11))
    shifts.add((dy, dx))
  assert len(shifts) > 5
  agent = make_agent(augmentation="random_shift")
  assert agent.update(make_batch()).finite


def test_checkpoint_restores_an_agent_that_acts_and_updates_identically(tmp_path):
  agent = make_agent(seed=3)
  agent.update(make_batch(seed=1))
  path = tf.train.Checkpoint(**agent.checkpoint_items()).save(str(tmp_path / "ckpt"))
  other = make_agent(seed=9)
  tf.train.Checkpoint(**other.checkpoint_items()).restore(path).assert_existing_objects_matched()
  obs = make_batch()["observation"]
  np.testing.assert_array_equal(agent.act(obs), other.act(obs))
  np.testing.assert_array_equal(agent.act(obs, greedy=True), other.act(obs, greedy=True))
  a, b = agent.update(make_batch(seed=2)), other.update(make_batch(seed=2))
  assert float(a.loss) == float(b.loss)
  for x, y in zip(agent.target_q_network.variables, other.target_q_network.variables):
    np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_stock_train_runs_on_the_same_network_and_compiled_update_under_xla():
  # DrQ's settings too: the views, and the periodic actor and target steps (conditionals in XLA).
  agent = make_agent(jit_compile=True, augmentation="random_shift", augment_views=2,
                     actor_update_period=2, target_update_period=2)
  assert all(agent.update(make_batch(seed=s)).finite for s in range(2))
  assert int(agent.actor_optimizer.iterations) == 1
  from tf_agents.trajectories import trajectory  # pylint: disable=g-import-not-at-top
  batch = make_batch()
  obs = np.stack([batch["observation"], batch["next_observation"]], 1)
  experience = trajectory.Trajectory(
      step_type=tf.zeros([B, 2], tf.int32), observation=tf.constant(obs),
      action=tf.constant(np.stack([batch["action"]] * 2, 1)), policy_info=(),
      next_step_type=tf.ones([B, 2], tf.int32), reward=tf.constant(np.stack([batch["reward"]] * 2,
                                                                             1)),
      discount=tf.ones([B, 2]))
  assert np.isfinite(float(agent.train(experience).loss))


def test_network_contract_parts_and_per_network_accounting():
  for bottleneck in ("flatten", "gap", "softmoe"):
    net = sac_networks.build_sac_network(OBS, ACT, bottleneck=bottleneck, head_units=(16, 16))
    net.create_variables()
    obs = make_batch()["observation"]
    groups = {g for g, _, _ in net.activations(obs)}
    assert {"phi", "psi"} <= groups
    names = [n for _, n, _ in net.activations(obs)]
    assert len(names) == len(set(names))
    assert net.decode(net.encode(obs)).shape == (B,)
    total = accounting.account(net)
    views = {k: accounting.account(v) for k, v in net.part_networks().items()}
    assert (views["critic"]["parts"]["psi"]["params"] + views["actor"]["parts"]["psi"]["params"]
            == total["parts"]["psi"]["params"])
    assert views["critic"]["parts"]["phi"] == total["parts"]["phi"]
    trainable = sum(int(np.prod(v.shape)) for v in net.trainable_variables)
    assert total["total"]["params"] == trainable
  # 12x12 SAME -> 6x6x32; flatten feeds 1152 features to each 50-wide feature layer.
  flat = sac_networks.build_sac_network(OBS, ACT, bottleneck="flatten")
  flat.create_variables()
  assert accounting.psi_input_weights(flat) == 2 * 6 * 6 * 32 * 50


@pytest.mark.parametrize("kwargs,message", [
    ({"tau": 0.0}, "tau"),
    ({"target_action": "mean"}, "target_action"),
    ({"augmentation": "crop"}, "augmentation"),
    ({"augment_views": 2}, "augment_views=2 is not accepted; accepted: 1 with augmentation"),
    ({"augment_views": 0, "augmentation": "random_shift"}, "augment_views"),
    ({"actor_update_period": 0}, "actor_update_period"),
    ({"target_update_period": 1.5}, "target_update_period"),
    ({"temperature_loss": "alpha_log"}, "temperature_loss='alpha_log' is not accepted"),
    ({"learning_rat": 1.0}, "learning_rat"),
])
def test_bad_settings_are_rejected(kwargs, message):
  with pytest.raises(ValueError, match=message):
    make_agent(**kwargs)


def test_discrete_actions_and_pruned_bottleneck_are_rejected():
  discrete = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 3)
  with pytest.raises(ValueError, match="continuous"):
    sac_networks.build_sac_network(OBS, discrete)
  with pytest.raises(ValueError, match="pruned"):
    sac_networks.build_sac_network(OBS, ACT, bottleneck="pruned")
  with pytest.raises(ValueError, match="bottleneck='sparse' is not accepted"):
    sac_networks.build_sac_network(OBS, ACT, bottleneck="sparse")
  net = sac_networks.build_sac_network(OBS, ACT, head_units=(8,))
  with pytest.raises(ValueError, match="continuous"):
    sac.SACAgent(ts.time_step_spec(OBS), discrete, net)


def test_mixed_precision_computes_in_bfloat16_and_keeps_variables_and_outputs_float32():
  agent = make_agent(bottleneck="gap", network_precision="mixed_bfloat16")
  net = agent.q_network
  assert net.precision == agent.precision == "mixed_bfloat16"
  layers = [l for l in net._flatten_layers(include_self=False, recursive=True)  # pylint: disable=protected-access
            if l.weights]
  kinds = {type(l).__name__ for l in layers if l.compute_dtype == "bfloat16"}
  assert {"Conv2D", "Dense"} <= kinds
  # Every convolution and dense layer, the encoder's, the bottleneck's and the heads', but the
  # heads' output layers (Q-values and the actor's mean/log-std), which compute in float32.
  outputs = {id(head.branches[0][-1]) for head in net.critic_heads + [net.actor_head]}
  assert len(outputs) == 3
  dense = [l for l in layers if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
  assert all((l.compute_dtype == "float32") == (id(l) in outputs) for l in dense), [
      (l.name, l.compute_dtype) for l in dense]
  obs = make_batch()["observation"]
  assert net._encoder(obs).dtype == tf.bfloat16  # pylint: disable=protected-access
  feats = net.features(obs)
  assert feats.dtype == tf.float32
  hidden = net.actor_feature(feats)
  for layer in net.actor_head.trunk:
    hidden = layer(hidden)
  assert hidden.dtype == tf.bfloat16
  # ... and float32 at every boundary the agent reads.
  loc, log_std = net.actor_params(feats)
  action, log_prob = net.sample_and_log_prob(loc, log_std, tf.zeros_like(loc))
  q1, q2 = net.critic_values(feats, action)
  assert {t.dtype for t in (net.encode(obs), loc, log_std, action, log_prob, q1, q2)} == {
      tf.float32}
  assert all(t.dtype == tf.float32 for _, _, t in net.activations(obs))
  result = agent.update(make_batch())
  assert result.finite and result.loss.dtype == tf.float32
  assert all(v.dtype == tf.float32 for v in result.parts.values())
  variables = (net.variables + agent.target_q_network.variables + [agent.log_alpha] +
               agent.optimizer.variables() + agent.actor_optimizer.variables() +
               agent.alpha_optimizer.variables())
  assert all(v.dtype in (tf.float32, tf.int64) for v in variables), [
      v.name for v in variables if v.dtype not in (tf.float32, tf.int64)]


@pytest.mark.parametrize("bottleneck,target_action", [("gap", "dopamine"),
                                                      ("flatten", "sample")])
def test_mixed_precision_update_matches_float32_on_a_fixed_batch(tmp_path, bottleneck,
                                                                 target_action):
  """Same weights, optimizer state and RNGs (a float32 checkpoint restored into the bfloat16
  agent): the losses of one update agree within LOSS_TOLERANCE; a second one stays finite."""
  f32 = make_agent(bottleneck, target_action=target_action, initial_temperature=0.5)
  bf16 = make_agent(bottleneck, network_precision="mixed_bfloat16",
                    target_action=target_action, initial_temperature=0.5)
  path = tf.train.Checkpoint(**f32.checkpoint_items()).save(str(tmp_path / "ckpt"))
  tf.train.Checkpoint(**bf16.checkpoint_items()).restore(path).assert_existing_objects_matched()
  batch = make_batch(seed=4)
  a, b = f32.update(batch), bf16.update(batch)
  assert a.finite and b.finite
  parts32 = {k: float(v) for k, v in a.parts.items()}
  parts16 = {k: float(v) for k, v in b.parts.items()}
  scale = max(abs(parts32[k]) for k in ("critic", "actor", "alpha"))
  assert scale > 0.05  # Nonzero losses: the comparison below means something.
  for key in ("critic", "actor", "alpha", "entropy"):
    assert abs(parts16[key] - parts32[key]) <= LOSS_TOLERANCE * scale, (key, parts32, parts16)
  assert abs(float(b.loss) - float(a.loss)) <= LOSS_TOLERANCE * scale
  np.testing.assert_allclose(b.priorities.numpy(), a.priorities.numpy(),
                             atol=LOSS_TOLERANCE * np.abs(a.priorities.numpy()).max())
  assert bf16.update(make_batch(seed=5)).finite


def test_mixed_precision_actions_stay_in_bounds_and_the_exported_policy_is_float32(tmp_path):
  spec = tensor_spec.BoundedTensorSpec((2,), tf.float32, [-2.0, 0.0], [1.0, 3.0])
  agent = make_agent(action_spec=spec, network_precision="mixed_bfloat16")
  obs = make_batch()["observation"]
  for greedy in (False, True):
    actions = agent.act(obs, greedy=greedy)
    assert actions.dtype == np.float32
    assert np.all(actions >= [-2.0, 0.0]) and np.all(actions <= [1.0, 3.0])
  step = ts.restart(tf.constant(obs), batch_size=B)
  for policy in (agent.policy, agent.collect_policy):
    actions = policy.action(step).action
    assert actions.dtype == tf.float32
    assert np.all(actions.numpy() >= [-2.0, 0.0]) and np.all(actions.numpy() <= [1.0, 3.0])
  policy_saver.PolicySaver(agent.policy, batch_size=None).save(str(tmp_path / "policy"))
  loaded = tf.saved_model.load(str(tmp_path / "policy"))
  signature = loaded.signatures["action"]
  observation_spec = [s for k, s in signature.structured_input_signature[1].items()
                      if "observation" in k]
  assert [s.dtype for s in observation_spec] == [tf.uint8]
  assert signature.structured_outputs["action"].dtype == tf.float32
  exported = loaded.action(step).action
  assert exported.dtype == tf.float32
  np.testing.assert_allclose(exported.numpy(), agent.act(obs, greedy=True), rtol=1e-5,
                             atol=1e-6)


def test_auto_precision_resolves_as_the_dqn_family_and_mismatches_are_refused():
  native, _ = common.bfloat16_support()
  expected = "mixed_bfloat16" if native else "float32"
  net = sac_networks.build_sac_network(OBS, ACT, head_units=(8,), feature_dim=4,
                                       precision="auto")
  assert net.precision == expected
  agent = sac.SACAgent(ts.time_step_spec(OBS), ACT, net, precision="auto", jit_compile=False)
  discrete = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 3)
  q_net = networks.build_q_network(OBS, discrete, precision="auto")
  dqn = agents.DQNAgent(ts.time_step_spec(OBS), discrete, q_net, precision="auto")
  assert agent.precision == dqn.precision == expected
  f32 = sac_networks.build_sac_network(OBS, ACT, head_units=(8,), feature_dim=4)
  with pytest.raises(ValueError, match="network's precision 'float32'"):
    sac.SACAgent(ts.time_step_spec(OBS), ACT, f32, precision="mixed_bfloat16")
  with pytest.raises(ValueError, match="precision='bf16' is not accepted"):
    sac.SACAgent(ts.time_step_spec(OBS), ACT, f32, precision="bf16")
  with pytest.raises(ValueError, match="precision='bf16' is not accepted"):
    sac_networks.build_sac_network(OBS, ACT, precision="bf16")


def test_sac_gin_sets_the_precision_of_network_and_agent():
  import gin  # pylint: disable=g-import-not-at-top
  from tfgap.launch import experiment  # pylint: disable=g-import-not-at-top
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  small = ["build_sac_network.head_units = (8,)", "build_sac_network.feature_dim = 4",
           "SACAgent.jit_compile = False"]
  gin.clear_config()
  try:
    train.parse_config(["sac.gin"], small + ["PRECISION = 'mixed_bfloat16'"])
    registered = experiment.register()
    net = registered["build_sac_network"](OBS, ACT)
    agent = registered["agents"]["sac"](ts.time_step_spec(OBS), ACT, net)
    assert net.precision == agent.precision == "mixed_bfloat16"
    gin.clear_config()
    train.parse_config(["sac.gin"], small + ["SACAgent.precision = 'mixed_bfloat16'"])
    net = registered["build_sac_network"](OBS, ACT)  # PRECISION is 'float32' in sac.gin.
    with pytest.raises(ValueError, match="network's precision 'float32'"):
      registered["agents"]["sac"](ts.time_step_spec(OBS), ACT, net)
  finally:
    gin.clear_config()


def test_sac_drq_gin_composes_drqs_settings_on_sac_gin():
  import gin  # pylint: disable=g-import-not-at-top
  from tfgap.launch import experiment  # pylint: disable=g-import-not-at-top
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  small = ["build_sac_network.head_units = (8,)", "build_sac_network.feature_dim = 4",
           "SACAgent.jit_compile = False"]
  gin.clear_config()
  try:
    train.parse_config(["sac.gin", "sac_drq.gin", "bottleneck_gap.gin"], small)
    registered = experiment.register()
    obs = tensor_spec.BoundedTensorSpec((84, 84, 9), tf.uint8, 0, 255)
    net = registered["build_sac_network"](obs, ACT)
    agent = registered["agents"]["sac"](ts.time_step_spec(obs), ACT, net)
    net.create_variables()
    # VALID 3x3 convs, strides 2,1,1,1: 84 -> 41 -> 39 -> 37 -> 35 (DrQ's encoder).
    assert net.encode(np.zeros((1, 84, 84, 9), np.uint8)).shape == (1, 35, 35, 32)
    assert net.bottleneck_name == "gap" and net.head_initializer == "orthogonal"
    assert net.log_std_transform == "tanh" and net.log_std_bounds == (-10.0, 2.0)
    assert (agent.learning_rate, agent.batch_size, agent.augment_views) == (1e-3, 512, 2)
    assert (agent.temperature, agent.target_entropy_value) == (pytest.approx(0.1), -2.0)
    assert (agent.actor_update_period, agent.target_update_period) == (2, 2)
    assert (agent.temperature_loss, agent.target_action) == ("alpha", "sample")
    assert agent.reward_scale == 1.0 and agent.tau == agent.encoder_tau == 0.01
    assert gin.query_parameter("Runner.replay_capacity") == 100000
  finally:
    gin.clear_config()
