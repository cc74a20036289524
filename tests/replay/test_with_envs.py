"""The buffer reproduces exactly what a real tfgap environment hands the agent."""

import numpy as np
import pytest

from tfgap import envs
from tfgap.replay import FIRST, LAST, ReplayBuffer


@pytest.mark.parametrize("give_stack", [True, False])
def test_atari_stacks_and_returns_match_the_environment(give_stack):
  # Short time limits and life-loss terminals: every kind of episode end within a few hundred
  # steps, on the real ALE with the real zero-padded frame stacks.
  env = envs.make("atari100k", "Breakout", num_envs=2, seed=3, max_episode_steps=60,
                  terminal_on_life_loss=True)
  n_step, gamma, rows = 3, 0.9, 100
  buffer = ReplayBuffer(rows * 2, env.frame_shape, stack_size=env.stack_size, num_streams=2,
                        n_step=n_step, gamma=gamma, seed=0)
  rng = np.random.default_rng(0)
  time_step = env.reset()
  history = [time_step]
  buffer.add_time_step(time_step)
  for _ in range(300):
    action = rng.integers(0, 4, size=2)
    time_step = env.step(action)
    history.append(time_step)
    c = env.frame_shape[-1]
    obs = time_step.observation if give_stack else time_step.observation[..., -c:]
    buffer.add(obs, action, time_step.reward, time_step.step_type, time_step.discount)
  kinds = {(int(ts.step_type[s]), float(ts.discount[s])) for ts in history for s in range(2)}
  # Time-limit truncations, life-loss terminals and auto-resets all happened.
  assert {(LAST, 1.0), (LAST, 0.0), (FIRST, 1.0)} <= kinds

  ids = buffer.sampleable_indices()
  assert len(ids) > 100
  batch = buffer.get(ids)
  for i, item in enumerate(ids.tolist()):
    t, s = divmod(item, 2)
    np.testing.assert_array_equal(batch["observation"][i], history[t].observation[s])
    k, ret, terminal = 0, 0.0, False
    for j in range(1, n_step + 1):
      ret += gamma ** (j - 1) * float(history[t + j].reward[s])
      k = j
      if history[t + j].step_type[s] == LAST:
        terminal = float(history[t + j].discount[s]) == 0.0
        break
    np.testing.assert_array_equal(batch["next_observation"][i], history[t + k].observation[s])
    np.testing.assert_allclose(batch["reward"][i], ret, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch["discount"][i], 0.0 if terminal else gamma ** k, rtol=1e-6)
  # Zero padding really was exercised: some sampled stacks start with zero frames.
  assert np.any(np.all(batch["observation"][..., 0] == 0, axis=(1, 2)))
