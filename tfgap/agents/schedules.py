"""Exploration schedules, in agent (environment) steps as Dopamine counts them.

Each schedule maps the number of agent steps taken so far to the training epsilon, in Python
(`schedule(step)`, for drivers) and in TensorFlow (`schedule.tensor(step)`, read by the agents'
collect policy and `act()` inside their graphs).
"""

import tensorflow as tf

from tfgap import checks


def _check_settings(decay_period, warmup_steps, epsilon):
  return (checks.check_int("decay_period", decay_period, low=1),
          checks.check_int("warmup_steps", warmup_steps, low=0),
          checks.check_float("epsilon", epsilon, low=0.0, high=1.0))


def linearly_decaying_epsilon(step, decay_period, warmup_steps, epsilon):
  """Dopamine's epsilon schedule: 1 during warm-up, then linear decay to `epsilon`.

  epsilon(t) = epsilon + clip((1 - epsilon) * (decay_period + warmup_steps - t) / decay_period,
  0, 1 - epsilon). With Dopamine's DQN settings (warm-up 20k steps = min replay history, decay over
  250k steps, final 0.01) exploration is uniform until learning starts, then decays.

  Args:
    step: agent steps taken so far (env steps, summed over parallel envs).
    decay_period: steps over which epsilon decays (> 0).
    warmup_steps: steps at epsilon 1 before the decay starts (>= 0).
    epsilon: final value in [0, 1].

  Returns:
    float epsilon.
  """
  return _decay(step, *_check_settings(decay_period, warmup_steps, epsilon))


def _decay(step, decay_period, warmup_steps, epsilon):
  steps_left = decay_period + warmup_steps - step
  bonus = (1.0 - epsilon) * steps_left / decay_period
  return float(epsilon + min(max(bonus, 0.0), 1.0 - epsilon))


class LinearEpsilon:
  """`linearly_decaying_epsilon` with its settings bound: `schedule(step)` -> epsilon."""

  def __init__(self, decay_period, warmup_steps, epsilon):
    self.decay_period, self.warmup_steps, self.epsilon = _check_settings(
        decay_period, warmup_steps, epsilon)

  def __call__(self, step):
    # Settings were checked once here; the training loop calls this every env step.
    return _decay(step, self.decay_period, self.warmup_steps, self.epsilon)

  def tensor(self, step):
    """The same epsilon as a float32 scalar tensor of an integer step tensor."""
    # float64: exact for any step count a run reaches; cast once at the end.
    t = tf.cast(step, tf.float64)
    bonus = (1.0 - self.epsilon) * (self.decay_period + self.warmup_steps - t) / self.decay_period
    return tf.cast(self.epsilon + tf.clip_by_value(bonus, 0.0, 1.0 - self.epsilon), tf.float32)

  def __repr__(self):
    return (f"LinearEpsilon(decay_period={self.decay_period}, warmup_steps={self.warmup_steps}, "
            f"epsilon={self.epsilon})")


class ZeroEpsilon:
  """Epsilon 0 at every step, warm-up included: Dopamine's `zero_epsilon`, which its full Rainbow
  uses whenever the network is noisy (dopamine/jax/agents/full_rainbow/full_rainbow_agent.py), so
  every action, from the first step, comes from the noisy network."""

  def __call__(self, step):
    del step
    return 0.0

  def tensor(self, step):
    del step
    return tf.constant(0.0, tf.float32)

  def __repr__(self):
    return "ZeroEpsilon()"
