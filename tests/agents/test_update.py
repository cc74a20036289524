"""The compiled update against straightforward references on fixed batches."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.agents.categorical_dqn import categorical_dqn_agent
from tf_agents.utils import common

from tests.agents import helpers
from tfgap import agents
from tfgap import networks
from tfgap.agents import losses

# DQN variants: Dopamine's (MSE, plain max: the defaults) and the Huber / double-DQN options.
DQN_KINDS = {"dqn": {}, "dqn_huber_double": dict(loss="huber", double=True)}


def make_agent(kind, jit_compile=False, **kwargs):
  tss, act = helpers.specs()
  if kind in DQN_KINDS:
    net = networks.build_q_network(tss.observation, act, bottleneck="gap")
    return agents.DQNAgent(tss, act, net, jit_compile=jit_compile, **DQN_KINDS[kind], **kwargs)
  net = networks.build_categorical_q_network(tss.observation, act, num_atoms=11, dueling=True,
                                             bottleneck="gap")
  return agents.RainbowAgent(tss, act, net, jit_compile=jit_compile, **kwargs)


def reference_dqn_loss(agent, batch):
  """The DQN loss written out in numpy from the networks' eager outputs: Dopamine's
  `(target - q)^2` on `r + discount * max_a Q_target` by default, or Huber / double DQN."""
  q = agent.q_network(batch["observation"])[0].numpy()
  q_next_online = agent.q_network(batch["next_observation"])[0].numpy()
  q_next_target = agent.target_q_network(batch["next_observation"])[0].numpy()
  rows = np.arange(helpers.BATCH)
  if agent.double:
    bootstrap = q_next_target[rows, q_next_online.argmax(axis=1)]
  else:
    bootstrap = q_next_target.max(axis=1)
  target = batch["reward"] + batch["discount"] * bootstrap
  td = q[rows, batch["action"]] - target
  if agent.loss == "mse":
    per_sample = td ** 2
  else:
    per_sample = np.where(np.abs(td) <= 1.0, 0.5 * td ** 2, np.abs(td) - 0.5)
  return np.mean(batch["weights"] * per_sample), np.abs(td)


def brute_force_projection(target_support, probabilities, support):
  """Bellemare et al.'s Algorithm 1 with explicit loops."""
  out = np.zeros((target_support.shape[0], support.size))
  v_min, v_max = float(support[0]), float(support[-1])
  dz = (v_max - v_min) / (support.size - 1)
  for b in range(target_support.shape[0]):
    for j in range(target_support.shape[1]):
      tz = min(max(target_support[b, j], v_min), v_max)
      pos = min(max((float(tz) - v_min) / dz, 0.0), support.size - 1.0)
      lo, hi = int(np.floor(pos)), int(np.ceil(pos))
      if lo == hi:
        out[b, lo] += probabilities[b, j]
      else:
        out[b, lo] += probabilities[b, j] * (hi - pos)
        out[b, hi] += probabilities[b, j] * (pos - lo)
  return out


def softmax(x):
  e = np.exp(x - x.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def reference_c51_loss(agent, batch):
  support = agent.support.numpy()
  logits = agent.q_network(batch["observation"])[0].numpy()
  next_online = agent.q_network(batch["next_observation"])[0].numpy()
  next_target = agent.target_q_network(batch["next_observation"])[0].numpy()
  rows = np.arange(helpers.BATCH)
  best = (softmax(next_online) * support).sum(-1).argmax(axis=1)
  next_p = softmax(next_target[rows, best])
  target_support = batch["reward"][:, None] + batch["discount"][:, None] * support[None, :]
  m = brute_force_projection(target_support, next_p, support)
  log_p = np.log(softmax(logits[rows, batch["action"]]))
  ce = -(m * log_p).sum(-1)
  return np.mean(batch["weights"] * ce), ce


@pytest.mark.parametrize("seed", [0, 1])
def test_projection_matches_brute_force_and_tf_agents(seed):
  rng = np.random.default_rng(seed)
  support = np.linspace(-10.0, 10.0, 51).astype(np.float32)
  probabilities = softmax(rng.normal(size=(16, 51))).astype(np.float32)
  # Rewards large enough that some atoms fall outside the support and get clipped.
  target_support = (rng.normal(scale=6.0, size=(16, 1)) +
                    rng.uniform(0, 1, (16, 1)) * support[None, :]).astype(np.float32)
  ours = losses.project_distribution(tf.constant(target_support), tf.constant(probabilities),
                                     tf.constant(support)).numpy()
  np.testing.assert_allclose(ours, brute_force_projection(target_support, probabilities, support),
                             atol=1e-5)
  stock = categorical_dqn_agent.project_distribution(
      tf.constant(target_support), tf.constant(probabilities), tf.constant(support)).numpy()
  np.testing.assert_allclose(ours, stock, atol=1e-5)
  np.testing.assert_allclose(ours.sum(-1), 1.0, atol=1e-5)


def independent_loss(kind, online, target, batch, support=None):
  """The update's loss rebuilt from TF-Agents' own pieces, never from tfgap.agents.losses.

  DQN: TF-Agents' element-wise squared loss on max-over-target targets (Dopamine's DQN), or its
  Huber loss on double-DQN targets. C51: TF-Agents' `project_distribution` of the target
  distribution (next action chosen by the online network) and TensorFlow's softmax
  cross-entropy. Both weighted by the importance weights and averaged.
  """
  rows = tf.range(helpers.BATCH)
  taken = tf.stack([rows, tf.constant(batch["action"], tf.int32)], axis=1)
  reward, discount = tf.constant(batch["reward"]), tf.constant(batch["discount"])
  out = online(batch["observation"], training=True)[0]
  next_online = online(batch["next_observation"])[0]
  next_target = target(batch["next_observation"])[0]
  if kind == "dqn":
    bootstrap = tf.reduce_max(next_target, axis=1)
    targets = tf.stop_gradient(reward + discount * bootstrap)
    per_sample = common.element_wise_squared_loss(targets, tf.gather_nd(out, taken))
  elif kind == "dqn_huber_double":
    best = tf.argmax(next_online, axis=1, output_type=tf.int32)
    bootstrap = tf.gather_nd(next_target, tf.stack([rows, best], axis=1))
    targets = tf.stop_gradient(reward + discount * bootstrap)
    per_sample = common.element_wise_huber_loss(targets, tf.gather_nd(out, taken))
  else:
    q_next = tf.reduce_sum(tf.nn.softmax(next_online) * support, axis=-1)
    best = tf.argmax(q_next, axis=1, output_type=tf.int32)
    next_p = tf.nn.softmax(tf.gather_nd(next_target, tf.stack([rows, best], axis=1)))
    target_support = reward[:, None] + discount[:, None] * support[None, :]
    projected = categorical_dqn_agent.project_distribution(target_support, next_p, support)
    per_sample = tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.stop_gradient(projected), logits=tf.gather_nd(out, taken))
  return tf.reduce_mean(batch["weights"] * per_sample)


def first_adam_step(value, grad, lr, epsilon, beta_1=0.9, beta_2=0.999):
  """Kingma & Ba's Adam, first step from zero moments, in numpy."""
  m = (1 - beta_1) * grad
  v = (1 - beta_2) * grad ** 2
  step_size = lr * np.sqrt(1 - beta_2) / (1 - beta_1)
  return value - step_size * m / (np.sqrt(v) + epsilon)


@pytest.mark.parametrize("kind", ["dqn", "dqn_huber_double", "rainbow"])
def test_compiled_update_equals_reference_loss_and_adam_step(kind):
  agent = make_agent(kind, learning_rate=1e-3, target_update_period=1000, update_period=1)
  batch = helpers.make_batch()
  # Make the target network differ from the online one so double selection matters.
  for v in agent.target_q_network.trainable_variables:
    v.assign(v * 0.9 + 0.01)
  reference = reference_dqn_loss if kind in DQN_KINDS else reference_c51_loss
  expected_loss, expected_priorities = reference(agent, batch)

  # Reference parameter step: gradients of the independently built loss on a copy of the online
  # network, then Adam's first step written out in numpy.
  reference_net = agent.q_network.copy(name="reference")
  reference_net.create_variables()
  for src, dst in zip(agent.q_network.variables, reference_net.variables):
    dst.assign(src)
  support = None if kind in DQN_KINDS else tf.constant(agent.support.numpy())
  with tf.GradientTape() as tape:
    reference_loss = independent_loss(kind, reference_net, agent.target_q_network, batch,
                                      support)
  np.testing.assert_allclose(float(reference_loss), expected_loss, rtol=1e-4, atol=1e-6)
  grads = tape.gradient(reference_loss, reference_net.trainable_variables)
  expected_variables = [first_adam_step(v.numpy(), g.numpy(), 1e-3, 1.5e-4)
                        for v, g in zip(reference_net.trainable_variables, grads)]
  moved = [not np.allclose(e, v.numpy()) for e, v in
           zip(expected_variables, agent.q_network.trainable_variables)]
  assert all(moved)  # Every variable gets a gradient, so a missing step would be caught.

  loss, priorities = agent.update(batch)
  np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(priorities.numpy(), expected_priorities, rtol=1e-4, atol=1e-5)
  assert int(agent.train_step_counter.numpy()) == 1
  for ours, expected in zip(agent.q_network.trainable_variables, expected_variables):
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["dqn", "rainbow"])
def test_xla_update_matches_plain(kind):
  plain = make_agent(kind, jit_compile=False)
  xla = make_agent(kind, jit_compile=True)
  for src, dst in zip(plain.q_network.variables, xla.q_network.variables):
    dst.assign(src)
  for src, dst in zip(plain.target_q_network.variables, xla.target_q_network.variables):
    dst.assign(src)
  for seed in range(3):
    batch = helpers.make_batch(seed)
    loss_plain, prio_plain = plain.update(batch)
    loss_xla, prio_xla = xla.update(batch)
    np.testing.assert_allclose(float(loss_xla), float(loss_plain), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(prio_xla.numpy(), prio_plain.numpy(), rtol=1e-3, atol=1e-4)
  for a, b in zip(plain.q_network.trainable_variables, xla.q_network.trainable_variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5)


def test_target_network_refreshed_every_period_in_agent_steps():
  # 12 agent steps at one update per 4 steps: a refresh every 3 updates.
  agent = make_agent("dqn", learning_rate=1e-2, target_update_period=12, update_period=4)
  updates_per_refresh = 3
  batch = helpers.make_batch()

  def same():
    return all(np.array_equal(a.numpy(), b.numpy()) for a, b in
               zip(agent.q_network.trainable_variables, agent.target_q_network.trainable_variables))

  assert same()  # Initialised equal.
  for i in range(1, 2 * updates_per_refresh + 1):
    agent.update(batch)
    assert same() == (i % updates_per_refresh == 0), i


def test_importance_weights_scale_the_loss_and_terminals_do_not_bootstrap():
  agent = make_agent("dqn", learning_rate=1e-12)
  batch = helpers.make_batch()
  loss_one, _ = agent.update(dict(batch, weights=np.ones(helpers.BATCH, np.float32)))
  loss_half, _ = agent.update(dict(batch, weights=np.full(helpers.BATCH, 0.5, np.float32)))
  np.testing.assert_allclose(float(loss_half), 0.5 * float(loss_one), rtol=1e-4)

  batch = helpers.make_batch(terminal_every=1)  # every discount is 0: the target is the reward
  q = agent.q_network(batch["observation"])[0].numpy()
  td = q[np.arange(helpers.BATCH), batch["action"]] - batch["reward"]
  _, priorities = agent.update(batch)
  np.testing.assert_allclose(priorities.numpy(), np.abs(td), rtol=1e-4, atol=1e-5)


def test_update_rejects_incomplete_batch():
  agent = make_agent("dqn")
  batch = helpers.make_batch()
  del batch["next_observation"]
  with pytest.raises(ValueError, match="next_observation"):
    agent.update(batch)


def test_pruned_network_masks_follow_update_count():
  tss, act = helpers.specs()
  net = networks.build_q_network(
      tss.observation, act, bottleneck="pruned",
      bottleneck_kwargs={"target_sparsity": 0.9, "begin_step": 0, "end_step": 4, "frequency": 2})
  agent = agents.DQNAgent(tss, act, net, learning_rate=1e-3)
  assert agent.pruned
  from tfgap.networks import pruning  # pylint: disable=g-import-not-at-top
  batch = helpers.make_batch()
  for _ in range(6):
    agent.update(batch)
  # One training-mode call per update: the pruning step equals the update count.
  assert pruning.pruning_step(agent.q_network) == 6
  rows = pruning.sparsity_report(agent.q_network)
  assert rows and all(abs(r["sparsity"] - 0.9) < 0.01 for r in rows)


def test_dqn_defaults_are_dopamines_mse_on_the_target_max():
  agent = make_agent("dqn")
  assert (agent.loss, agent.double) == ("mse", False)
  # Make the online argmax and the target argmax disagree, so double and plain targets differ.
  for v in agent.target_q_network.trainable_variables:
    v.assign(-v)
  batch = helpers.make_batch(terminal_every=1000)
  q_next_target = agent.target_q_network(batch["next_observation"])[0].numpy()
  q = agent.q_network(batch["observation"])[0].numpy()
  rows = np.arange(helpers.BATCH)
  td = q[rows, batch["action"]] - (batch["reward"] + batch["discount"] * q_next_target.max(1))
  loss, priorities = agent.update(dict(batch, weights=np.ones(helpers.BATCH, np.float32)))
  np.testing.assert_allclose(float(loss), np.mean(td ** 2), rtol=1e-4)  # No 0.5 factor.
  np.testing.assert_allclose(priorities.numpy(), np.abs(td), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("kind", ["dqn", "rainbow"])
def test_update_reports_whether_loss_priorities_and_weights_are_finite(kind, jit_compile):
  agent = make_agent(kind, jit_compile=jit_compile)
  result = agent.update(helpers.make_batch())
  assert result.finite and result.nonfinite() == ()
  loss, priorities = result  # Still unpacks as (loss, priorities).
  assert loss is result.loss and priorities is result.priorities
  # A NaN importance weight poisons the loss and, through the gradient, the weights; the
  # per-sample priorities do not depend on it.
  weights = np.ones(helpers.BATCH, np.float32)
  weights[3] = np.nan
  result = agent.update(dict(helpers.make_batch(), weights=weights))
  assert not result.finite and result.nonfinite() == ("loss", "weights")
  # A diverged network (a NaN weight) makes all three non-finite.
  agent = make_agent(kind, jit_compile=jit_compile)
  bias = agent.q_network.trainable_variables[-1]
  bias.assign(tf.fill(bias.shape, np.nan))
  result = agent.update(helpers.make_batch())
  assert not result.finite and result.nonfinite() == ("loss", "priorities", "weights")


@pytest.mark.parametrize("jit_compile", [False, True])
def test_weights_that_overflow_in_the_step_are_caught_although_the_loss_was_finite(jit_compile):
  from tfgap.compat import keras  # pylint: disable=g-import-not-at-top
  # SGD with a step far past float32's range: the loss (computed before the step) is finite,
  # the weights after it are not. Only the weight check can tell.
  agent = make_agent("dqn", jit_compile=jit_compile,
                     optimizer=keras.optimizers.legacy.SGD(learning_rate=1e38))
  batch = dict(helpers.make_batch(), reward=np.full(helpers.BATCH, 100.0, np.float32))
  result = agent.update(batch)
  assert np.isfinite(float(result.loss)) and np.all(np.isfinite(result.priorities.numpy()))
  assert not all(np.all(np.isfinite(v.numpy())) for v in agent.q_network.trainable_variables)
  assert not result.finite and result.nonfinite() == ("weights",)


@pytest.mark.parametrize("poison, finite", [
    (None, True),
    ("nan", False),
    ("inf", False),
    ("+inf-inf", False),  # Their sum is NaN: still caught.
    ("huge", False),  # Finite weights whose sum leaves float32's range count as diverged.
])
def test_finite_parts_checks_every_weight_through_its_sum(poison, finite):
  from tfgap.agents import base  # pylint: disable=g-import-not-at-top
  weights = np.ones((40, 30), np.float32)
  if poison == "nan":
    weights[7, 3] = np.nan
  elif poison == "inf":
    weights[0, 0] = np.inf
  elif poison == "+inf-inf":
    weights[1, 1], weights[2, 2] = np.inf, -np.inf
  elif poison == "huge":
    weights[:] = 1e37
  variables = [tf.Variable(np.zeros(5, np.float32)), tf.Variable(weights)]
  parts = base.finite_parts(tf.constant(1.0), tf.ones(4), variables).numpy()
  np.testing.assert_array_equal(parts, [True, True, finite])
  # The loss and the priorities are told apart from the weights.
  parts = base.finite_parts(tf.constant(np.nan), tf.constant([1.0, np.inf]), variables[:1])
  np.testing.assert_array_equal(parts.numpy(), [False, False, True])


def test_nan_priorities_of_a_diverged_learner_get_a_clear_message():
  from tfgap import replay as replay_lib  # pylint: disable=g-import-not-at-top
  agent = make_agent("rainbow")
  bias = agent.q_network.trainable_variables[-1]
  bias.assign(tf.fill(bias.shape, np.nan))
  result = agent.update(helpers.make_batch())
  buffer = replay_lib.ReplayBuffer(capacity=64, frame_shape=(12, 12, 1), stack_size=2,
                                   prioritized=True)
  with pytest.raises(ValueError, match=r"priorities=\[nan, .*the learner diverged"):
    buffer.update_priorities(np.arange(helpers.BATCH), result.priorities.numpy())
  # Long batches are summarised, not listed.
  many = np.ones(32)
  many[[3, 9]] = np.nan
  with pytest.raises(ValueError, match=r"<2 of 32 NaN or infinite, e\.g\. nan>.*diverged"):
    buffer.update_priorities(np.arange(32), many)
