"""Specs and fixed replay batches that the agent tests share (a small uint8 pixel task)."""

import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

OBS_SHAPE = (12, 12, 2)
NUM_ACTIONS = 3
BATCH = 8


def specs(obs_shape=OBS_SHAPE, num_actions=NUM_ACTIONS):
  """(time-step spec, action spec): uint8 frames of `obs_shape`, `num_actions` discrete actions."""
  obs = tensor_spec.BoundedTensorSpec(obs_shape, tf.uint8, 0, 255)
  act = tensor_spec.BoundedTensorSpec((), tf.int64, 0, num_actions - 1)
  return ts.time_step_spec(obs), act


def make_batch(seed=0, terminal_every=3, obs_shape=OBS_SHAPE, num_actions=NUM_ACTIONS,
               batch=BATCH, discount=0.99 ** 3, random_weights=True):
  """A replay batch as the agents' `update` takes it, the same for the same arguments.

  Args:
    seed: numpy seed of the observations, actions, rewards and weights.
    terminal_every: every `terminal_every`-th transition has discount 0 (None: none does).
    obs_shape: one observation's shape.
    num_actions: actions are drawn from [0, num_actions).
    batch: transitions in the batch.
    discount: the discount of the non-terminal transitions (an n-step gamma ** n).
    random_weights: importance weights drawn from [0.2, 1) (False: all 1).

  Returns:
    {"observation", "next_observation", "action", "reward", "discount", "weights"} arrays.
  """
  rng = np.random.default_rng(seed)
  discounts = np.full(batch, discount, np.float32)
  if terminal_every is not None:
    discounts[::terminal_every] = 0.0
  out = {
      "observation": rng.integers(0, 256, (batch,) + tuple(obs_shape), dtype=np.uint8),
      "next_observation": rng.integers(0, 256, (batch,) + tuple(obs_shape), dtype=np.uint8),
      "action": rng.integers(0, num_actions, batch).astype(np.int32),
      "reward": rng.normal(size=batch).astype(np.float32),
      "discount": discounts,
  }
  # Drawn last, so that the other arrays do not depend on this choice.
  out["weights"] = (rng.uniform(0.2, 1.0, batch).astype(np.float32) if random_weights
                    else np.ones(batch, np.float32))
  return out
