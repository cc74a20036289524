"""Losses of the compiled updates: DQN (MSE or Huber, plain or double targets) and C51
(categorical) cross-entropy.

Pure TensorFlow functions of tensors, usable inside `tf.function` with or without XLA. The replay
batch already holds the n-step return and its discount (`gamma^k`, or 0 after a terminal step),
so every target here is `reward + discount * bootstrap`.
"""

import tensorflow as tf


def huber(x, delta=1.0):
  """Element-wise Huber loss of `x` (quadratic within `delta`, linear outside), as Dopamine's DQN."""
  abs_x = tf.abs(x)
  quadratic = tf.minimum(abs_x, delta)
  return 0.5 * tf.square(quadratic) + delta * (abs_x - quadratic)


def squared(x):
  """Element-wise `x^2`: Dopamine's `mse_loss` (dopamine/jax/losses.py), without a 0.5 factor."""
  return tf.square(x)


# DQN loss name -> element-wise function of the TD error.
DQN_LOSSES = {"mse": squared, "huber": huber}


def select(values, actions):
  """`values[b, actions[b]]` for `values` `[B, A, ...]` and integer `actions` `[B]`."""
  return tf.gather(values, tf.cast(actions, tf.int32), axis=1, batch_dims=1)


def double_dqn_target(reward, discount, next_online_q, next_target_q, double=True):
  """`r + discount * Q_target(s', argmax_a Q_online(s', a))` (plain DQN: max_a Q_target).

  Args:
    reward: `[B]` n-step returns.
    discount: `[B]` discount of the bootstrap (`gamma^k`, 0 after a terminal).
    next_online_q: `[B, A]` online-network Q-values at the next observation (ignored when
      `double` is False).
    next_target_q: `[B, A]` target-network Q-values at the next observation.
    double: double DQN (van Hasselt et al. 2016) when True.

  Returns:
    `[B]` float32 targets, gradient stopped.
  """
  if double:
    best = tf.argmax(next_online_q, axis=-1, output_type=tf.int32)
    bootstrap = select(next_target_q, best)
  else:
    bootstrap = tf.reduce_max(next_target_q, axis=-1)
  return tf.stop_gradient(reward + discount * bootstrap)


def dqn_loss(q_values, actions, targets, weights, loss="huber"):
  """Importance-weighted DQN loss and per-sample |TD error|.

  Args:
    q_values: `[B, A]` online Q-values at the observation.
    actions: `[B]` integer actions taken.
    targets: `[B]` TD targets (see `double_dqn_target`).
    weights: `[B]` importance weights (ones for uniform replay).
    loss: "mse" (`td^2`, Dopamine's JAX DQN default) or "huber" (delta 1).

  Returns:
    `(loss, td_abs)`: the scalar mean of `weights * loss(td)` and `|td|` `[B]` (priorities).
  """
  td = select(q_values, actions) - targets
  loss = tf.reduce_mean(weights * DQN_LOSSES[loss](td))
  return loss, tf.abs(td)


def categorical_q_values(logits, support):
  """Expected Q-values `[B, A]` of C51 logits `[B, A, N]` over `support` `[N]`."""
  return tf.reduce_sum(tf.nn.softmax(logits, axis=-1) * support, axis=-1)


def project_distribution(target_support, probabilities, support):
  """Projects distributions on `target_support` onto the fixed `support` (Bellemare et al. 2017).

  Each target atom's mass goes to the two nearest atoms of `support` in proportion to proximity,
  after clipping the target atoms to `[support[0], support[-1]]`.

  Args:
    target_support: `[B, N]` atom locations of the distributions to project (e.g. `r + d z`).
    probabilities: `[B, N]` their probabilities.
    support: `[M]` evenly spaced atoms of the result.

  Returns:
    `[B, M]` projected probabilities (rows sum to the rows of `probabilities`).
  """
  v_min, v_max = support[0], support[-1]
  delta = support[1] - support[0]
  clipped = tf.clip_by_value(target_support, v_min, v_max)
  # weight[b, i, j] = max(0, 1 - |Tz_j - z_i| / delta): a hat function around each atom z_i.
  distance = tf.abs(clipped[:, None, :] - support[None, :, None])
  weight = tf.clip_by_value(1.0 - distance / delta, 0.0, 1.0)
  return tf.reduce_sum(weight * probabilities[:, None, :], axis=-1)


def categorical_target(reward, discount, next_online_logits, next_target_logits, support,
                       double=True):
  """The projected C51 target distribution `[B, N]` (gradient stopped).

  Args:
    reward: `[B]` n-step returns.
    discount: `[B]` bootstrap discounts.
    next_online_logits: `[B, A, N]` online logits at the next observation (action selection when
      `double`; ignored otherwise).
    next_target_logits: `[B, A, N]` target-network logits at the next observation.
    support: `[N]` atoms.
    double: select the next action with the online network (Rainbow as Dopamine runs it) instead
      of the target network (C51).

  Returns:
    `[B, N]` target probabilities on `support`.
  """
  chooser = next_online_logits if double else next_target_logits
  best = tf.argmax(categorical_q_values(chooser, support), axis=-1, output_type=tf.int32)
  next_probabilities = tf.nn.softmax(select(next_target_logits, best), axis=-1)
  target_support = reward[:, None] + discount[:, None] * support[None, :]
  return tf.stop_gradient(project_distribution(target_support, next_probabilities, support))


def categorical_loss(logits, actions, target_probabilities, weights):
  """Importance-weighted C51 cross-entropy and per-sample priorities.

  Args:
    logits: `[B, A, N]` online logits at the observation.
    actions: `[B]` integer actions taken.
    target_probabilities: `[B, N]` projected targets (see `categorical_target`).
    weights: `[B]` importance weights.

  Returns:
    `(loss, per_sample)`: the scalar mean of `weights * CE` and the per-sample cross-entropy `[B]`
    (Dopamine's priority signal; it equals the KL divergence to the target plus the target's
    entropy, so it has the same gradient as the KL).
  """
  log_probabilities = tf.nn.log_softmax(select(logits, actions), axis=-1)
  cross_entropy = -tf.reduce_sum(target_probabilities * log_probabilities, axis=-1)
  return tf.reduce_mean(weights * cross_entropy), cross_entropy
