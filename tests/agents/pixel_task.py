"""A small, fast pixel task for learning tests: the rewarded action is visible in the frame.

Each frame is `size x size` grayscale with one lit vertical band out of `num_actions`; choosing
the lit band's index pays +1, anything else 0; a new band is drawn after every step, and an
episode ends (terminal) after `episode_length` steps. A random policy earns
`episode_length / num_actions` per episode, the optimal one `episode_length`.

It is a real tfgap environment: `tfgap.envs.core.SerialEnv` supplies the TF-Agents time steps,
zero-padded frame stacks and `pop_episode_stats()`, exactly as for Atari.
"""

import gin
import numpy as np
from tf_agents.specs import array_spec

from tfgap.envs import core


class BandGame:
  """One game: reset() -> frame, step(a) -> (frame, reward, terminated, truncated, life_lost)."""

  def __init__(self, seed, size=12, num_actions=3, episode_length=10):
    self._rng = np.random.default_rng(seed)
    self.size, self.num_actions, self.episode_length = size, num_actions, episode_length
    self._band = 0
    self._t = 0

  def _frame(self):
    frame = np.zeros((self.size, self.size, 1), np.uint8)
    width = self.size // self.num_actions
    frame[:, self._band * width:(self._band + 1) * width] = 255
    return frame

  def reset(self):
    self._t = 0
    self._band = int(self._rng.integers(self.num_actions))
    return self._frame()

  def step(self, action):
    reward = 1.0 if int(action) == self._band else 0.0
    self._t += 1
    self._band = int(self._rng.integers(self.num_actions))
    return self._frame(), reward, self._t >= self.episode_length, False, False

  def close(self):
    pass


def make_band_env(mode="train", num_envs=1, seed=0, size=12, num_actions=3, episode_length=10,
                  stack_size=2):
  """A batched/unbatched `SerialEnv` of BandGames with the tfgap env contract."""
  games = [BandGame(seed + i, size, num_actions, episode_length) for i in range(num_envs)]
  action_spec = array_spec.BoundedArraySpec((), np.int64, 0, num_actions - 1, name="action")
  return core.SerialEnv(
      games, suite="test", name="band", seed=seed, mode=mode, protocol={},
      frame_shape=(size, size, 1), stack_size=stack_size, action_spec=action_spec,
      batched=num_envs > 1)


gin.external_configurable(make_band_env, module="tests")
