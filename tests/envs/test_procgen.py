"""Procgen on the real procgen2 library: shapes, level sets, step types, episode stats."""

import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

from tfgap import envs

FIRST, MID, LAST = int(ts.StepType.FIRST), int(ts.StepType.MID), int(ts.StepType.LAST)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_shapes_and_dtypes(num_envs):
  env = envs.make("procgen", "coinrun", num_envs=num_envs)
  try:
    assert env.observation_spec().shape == (64, 64, 3)
    assert env.observation_spec().dtype == np.uint8
    assert env.action_spec().minimum == 0 and env.action_spec().maximum == 14
    assert env.frame_shape == (64, 64, 3) and env.stack_size == 1
    first = env.reset()
    obs = first.observation if num_envs > 1 else first.observation[None]
    assert obs.shape == (num_envs, 64, 64, 3) and obs.dtype == np.uint8
    assert obs.reshape(num_envs, -1).std(axis=1).min() > 0
    assert np.all(first.step_type == FIRST)
  finally:
    env.close()


def test_train_and_eval_use_different_level_sets():
  seeds = {}
  for mode in ("train", "eval"):
    env = envs.make("procgen", "coinrun", num_envs=8, mode=mode, seed=0)
    env.reset()
    seen = set(env.level_seeds())
    rng = np.random.RandomState(0)
    for _ in range(300):
      env.step(rng.randint(0, 15, size=8))
      seen.update(env.level_seeds())
    seeds[mode] = seen
    env.close()
  assert all(0 <= s < 200 for s in seeds["train"])
  assert len(seeds["train"]) >= 4 and len(seeds["eval"]) >= 4
  assert not any(0 <= s < 200 for s in seeds["eval"])
  assert not seeds["train"] & seeds["eval"]


def test_step_types_and_raw_episode_stats():
  env = envs.make("procgen", "coinrun", num_envs=4, seed=1)
  try:
    env.reset()
    rng = np.random.RandomState(0)
    returns = np.zeros(4)
    lengths = np.zeros(4, int)
    prev = None
    checked = 0
    for _ in range(600):
      step = env.step(rng.randint(0, 15, size=4))
      if prev is not None:
        # Every LAST is followed by FIRST, and FIRST only follows LAST.
        np.testing.assert_array_equal(step.step_type == FIRST, prev.step_type == LAST)
      is_first = step.step_type == FIRST
      returns = np.where(is_first, 0.0, returns + step.reward)
      lengths = np.where(is_first, 0, lengths + 1)
      for s in env.pop_episode_stats():
        i = s["env_id"]
        assert step.step_type[i] == LAST
        # Coinrun pays 10 on completion only, so the learner saw the whole raw return; the
        # length may include the one hidden step taken while the batch produced FIRST.
        assert s["return"] == pytest.approx(returns[i]) and s["return"] in (0.0, 10.0)
        assert s["length"] in (lengths[i], lengths[i] + 1)
        checked += 1
      assert np.all(step.discount[step.step_type == LAST] == 0.0)
      prev = step
    assert checked > 0
  finally:
    env.close()


def test_reset_draws_new_levels_and_double_close():
  env = envs.make("procgen", "coinrun", num_envs=4, seed=0)
  first = env.reset()
  rng = np.random.RandomState(0)
  for _ in range(5):
    env.step(rng.randint(0, 15, size=4))
  again = env.reset()
  assert np.all(again.step_type == FIRST)
  assert not np.array_equal(first.observation, again.observation)
  env.close()
  env.close()
  assert env.closed
