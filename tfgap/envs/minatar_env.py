"""MinAtar (Young & Tian 2019; the `minatar` package, 1.0.15) as a tfgap PyEnvironment.

Five games on a 10x10 grid: asterix, breakout, freeway, seaquest, space_invaders. The package
gives a boolean `[10, 10, C]` state, one object type per channel (C = 4, 4, 7, 10, 6); tfgap
hands it over as uint8 0/255, so the encoders' division by 255 maps it back to 0/1. One frame per
observation (no stack; the games draw motion trails in their own channels), 6 actions (or the
game's minimal set), raw rewards.

Each batch entry is one `minatar.Environment` with its own `numpy.random.RandomState`, which the
package uses for both the game's randomness and its sticky actions. The seed of entry i is drawn
from `(seed + i, mode)`, so the same seed replays the same episodes, and the evaluation
environment of a seed never shares its stream with the training one.
"""

import numpy as np
from tf_agents.specs import array_spec

from tfgap.envs import core

_MODE_STREAMS = {"train": 0, "eval": 1}


def entry_seed(seed, index, mode):
  """The RandomState seed of batch entry `index` (32 bits from `seed + index` and the mode)."""
  sequence = np.random.SeedSequence(seed + index, spawn_key=(_MODE_STREAMS[mode],))
  return int(sequence.generate_state(1)[0])


class MinAtarGame:
  """One MinAtar game behind the `SerialEnv` game interface (frames are uint8 0/255).

  The package's `Environment.act` applies sticky actions: with probability
  `sticky_action_prob` it repeats the previous action (kept across episodes, as in the package).
  """

  def __init__(self, game, *, seed, sticky_actions, difficulty_ramping, minimal_action_set):
    try:
      import minatar  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("MinAtar needs minatar==1.0.15: `pip install -r requirements.txt`.") from e
    self._env = minatar.Environment(game, sticky_action_prob=sticky_actions,
                                    difficulty_ramping=difficulty_ramping)
    self._env.seed(seed)
    self.frame_shape = tuple(self._env.state_shape())
    if minimal_action_set:
      self.action_set = np.asarray(self._env.minimal_action_set(), np.int64)
    else:
      self.action_set = np.arange(self._env.num_actions(), dtype=np.int64)

  def _frame(self):
    # bool -> 0/1 bytes -> 0/255, no overflow since every byte is 0 or 1.
    return self._env.state().view(np.uint8) * np.uint8(255)

  def reset(self):
    self._env.reset()
    return self._frame()

  def step(self, action):
    reward, terminal = self._env.act(int(self.action_set[int(action)]))
    return self._frame(), float(reward), bool(terminal), False, False

  def close(self):
    self._env = None


class MinAtarEnvironment(core.SerialEnv):
  """A batch of MinAtar games stepped in turn (exact FIRST/MID/LAST per entry)."""

  @property
  def action_set(self):
    """The package's action index behind each agent action."""
    return self.games[0].action_set if self.games else None


def make_minatar(game, num_envs, seed, mode, protocol, batched):
  """Builds `num_envs` MinAtar games of `game` (a name of `games.MINATAR_GAMES`)."""
  p = protocol
  entries = [MinAtarGame(game, seed=entry_seed(seed, i, mode), sticky_actions=p["sticky_actions"],
                         difficulty_ramping=p["difficulty_ramping"],
                         minimal_action_set=p["minimal_action_set"]) for i in range(num_envs)]
  num_actions = len(entries[0].action_set)
  return MinAtarEnvironment(
      entries, clip_rewards=p["clip_rewards"], max_episode_steps=p["max_episode_steps"],
      suite="minatar", name=game, seed=seed, mode=mode, protocol=protocol,
      frame_shape=entries[0].frame_shape, stack_size=p["stack_size"],
      action_spec=array_spec.BoundedArraySpec((), np.int64, 0, num_actions - 1, name="action"),
      batched=batched)
