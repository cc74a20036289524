"""Procgen (procgen2 0.10.7, imported as `procgen`) through its natively batched gym3 API.

Protocol (Cobbe et al. 2020 generalization setting): distribution mode "easy", training on the
200 levels [0, 200) (mode "train"), evaluation with num_levels=0 (mode "eval"): the full level
distribution, with start_level set outside [0, 200). Note that Procgen ignores start_level when
num_levels=0 and draws 31-bit level seeds, so an evaluation level is a training level with
probability 200 / 2**31 per level. Observations are 64x64x3 uint8 (no frame stack), 15 actions.

gym3 resets a finished entry inside `act()` and shows only the new level's first frame, so:
- the LAST step of an episode carries the final reward and, as observation, the next level's
  first frame (the terminal frame is not available; its discount is 0, so it is never
  bootstrapped from);
- the following FIRST step: when every entry starts a new episode (always the case with one env)
  nothing is stepped and FIRST shows that first frame (exact). Otherwise the native batch has to
  step every entry, so the restarting entry carries out its action and FIRST shows the frame
  after it; that one step's reward is counted in the episode's raw return but not given to the
  learner (Procgen rewards come at level completion, so it is almost always 0).
Time-outs end episodes like any other episode end (discount 0), as Procgen reports no difference.
"""

import numpy as np
from tf_agents.specs import array_spec

from tfgap.envs import core

FIRST, LAST = core.FIRST, core.LAST


class ProcgenEnvironment(core.TfgapEnv):
  """A batch of `num_envs` Procgen games in one native ProcgenGym3Env."""

  def __init__(self, game, *, protocol, seed, num_envs, **kwargs):
    try:
      from procgen import ProcgenGym3Env  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("Procgen needs procgen2==0.10.7 (imports as `procgen`): "
                        "`pip install -r requirements.txt`.") from e
    self._factory = ProcgenGym3Env
    self._game = game
    self._reset_count = 0
    self._fresh = False
    self._venv = None
    super().__init__(
        protocol=protocol, seed=seed, num_envs=num_envs, frame_shape=(64, 64, 3), stack_size=1,
        action_spec=array_spec.BoundedArraySpec((), np.int64, 0, 14, name="action"), **kwargs)
    self._build()

  def _build(self):
    if self._venv is not None:
      self._venv.close()
    p = self.protocol
    # A new level stream on each explicit reset (the first reset uses the constructed one).
    rand_seed = (self.seed + 100_003 * self._reset_count) % (2**31 - 1)
    self._venv = self._factory(
        num=self.num_envs, env_name=self._game, distribution_mode=p["distribution_mode"],
        num_levels=p["num_levels"], start_level=p["start_level"], rand_seed=rand_seed,
        use_backgrounds=p["use_backgrounds"], paint_vel_info=p["paint_vel_info"],
        center_agent=p["center_agent"])
    self._fresh = True

  def _reset_all(self):
    if not self._fresh:
      self._reset_count += 1
      self._build()
    self._fresh = False
    _, obs, _ = self._venv.observe()
    return obs["rgb"]

  def _step_batch(self, actions):
    self._fresh = False
    n = self.num_envs
    step_type, reward, discount = self._mid_step_arrays()
    acted = not self._needs_first.all()
    if acted:
      self._venv.act(actions.astype(np.int32, copy=False))
    raw, obs, first = self._venv.observe()
    frames = obs["rgb"]
    for i in range(n):
      if self._needs_first[i]:
        self._needs_first[i] = False
        step_type[i] = FIRST
        self._episode_return[i] = 0.0
        self._episode_length[i] = 0
        if acted:
          self._episode_length[i] = 1
          self._episode_return[i] = raw[i]
          if first[i]:
            # The new episode ended on that very step: close it and start another.
            self._record_episode(i)
        self._stacks.begin(i, frames[i])
        continue
      self._stacks.push(i, frames[i])
      self._episode_return[i] += raw[i]
      self._episode_length[i] += 1
      reward[i] = raw[i]
      if first[i]:
        step_type[i] = LAST
        discount[i] = 0.0
        self._needs_first[i] = True
        self._record_episode(i)
    return step_type, reward, discount

  def level_seeds(self):
    """The level seed each entry is playing now (for checking train/eval level sets)."""
    return [int(info["level_seed"]) for info in self._venv.get_info()]

  def _close(self):
    venv, self._venv = self._venv, None
    if venv is not None:
      venv.close()


def make_procgen(game, num_envs, seed, mode, protocol, batched):
  return ProcgenEnvironment(game, protocol=protocol, seed=seed, num_envs=num_envs,
                            suite="procgen", name=game, mode=mode, batched=batched)
