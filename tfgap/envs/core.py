"""The PyEnvironment base every tfgap environment shares.

It owns what all suites have in common: zero-padded frame stacks (oldest frame first on the
channel axis), raw episode bookkeeping for `pop_episode_stats()`, the FIRST/MID/LAST bookkeeping
per batch entry, batched vs unbatched time steps, and an idempotent `close()`. Subclasses
implement `_reset_all()` and `_step_batch(actions)` on batched numpy arrays.
"""

import sys

import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

FIRST = int(ts.StepType.FIRST)
MID = int(ts.StepType.MID)
LAST = int(ts.StepType.LAST)


class FrameStack:
  """Per-batch-entry stacks of the last `k` frames, concatenated on the channel axis.

  A stack restarted with `begin` holds zeros in place of the frames before the episode (Dopamine's
  convention, which replay reproduces from single frames). Layout: [n, H, W, k * C], frame j of
  the stack in channels [j * C, (j + 1) * C), oldest first.

  Shifting interleaved uint8 channels is a slow strided copy in numpy (~3 ms per step for 8
  Atari stacks). With 4 single-channel frames (Atari's grayscale stack) each pixel's stack
  is handled as one little-endian uint32, and a shift is `(x >> 8) | (new << 24)` (~10x faster
  with the copy out).
  """

  def __init__(self, num_envs, frame_shape, k):
    self.k = k
    self.channels = frame_shape[-1]
    self.data = np.zeros((num_envs,) + tuple(frame_shape[:-1]) + (self.channels * k,), np.uint8)
    self._packed = None
    if self.channels == 1 and k == 4 and sys.byteorder == "little":
      self._packed = self.data.view(np.uint32)[..., 0]  # [n, H, W], one word per pixel.

  def begin(self, i, frame):
    if self._packed is not None:
      np.left_shift(frame[..., 0], 24, out=self._packed[i], dtype=np.uint32)
      return
    self.data[i] = 0
    self.data[i, ..., -self.channels:] = frame

  def push(self, i, frame):
    if self._packed is not None:
      packed = self._packed[i]
      packed >>= 8
      packed |= np.left_shift(frame[..., 0], 24, dtype=np.uint32)
      return
    if self.k > 1:
      self.data[i, ..., :-self.channels] = self.data[i, ..., self.channels:]
    self.data[i, ..., -self.channels:] = frame

  def push_all(self, frames):
    if self._packed is not None:
      self._packed >>= 8
      self._packed |= np.left_shift(frames[..., 0], 24, dtype=np.uint32)
      return
    if self.k > 1:
      self.data[..., :-self.channels] = self.data[..., self.channels:]
    self.data[..., -self.channels:] = frames

  def observation(self):
    """A fresh copy of all stacks, [n, H, W, k * C]."""
    return self.data.copy()


class TfgapEnv(py_environment.PyEnvironment):
  """Base class: batched bookkeeping, stacks, episode stats and TF-Agents plumbing.

  Attributes:
    suite: suite name ("atari", "atari100k", "procgen", "dmc").
    name: canonical game/task name.
    num_envs: number of parallel environments (the batch size when batched).
    seed: base seed; batch entry i uses seed + i where the backend seeds per entry.
    mode: "train" or "eval".
    protocol: the resolved protocol settings (a dict; read it, do not change it).
    frame_shape: shape of one frame, e.g. (84, 84, 1); observations stack `stack_size` of them.
    stack_size: number of frames per observation.
  """

  def __init__(self, *, suite, name, num_envs, seed, mode, protocol, frame_shape, stack_size,
               action_spec, batched):
    super().__init__(handle_auto_reset=False)
    self.suite = suite
    self.name = name
    self.num_envs = num_envs
    self.seed = seed
    self.mode = mode
    self.protocol = dict(protocol)
    self.frame_shape = tuple(frame_shape)
    self.stack_size = stack_size
    self._batched = batched
    self._action_spec = action_spec
    obs_shape = self.frame_shape[:-1] + (self.frame_shape[-1] * stack_size,)
    self._observation_spec = array_spec.BoundedArraySpec(
        obs_shape, np.uint8, minimum=0, maximum=255, name="observation")
    self._stacks = FrameStack(num_envs, self.frame_shape, stack_size)
    # Raw (unclipped) score and agent steps of each entry's current game.
    self._episode_return = np.zeros(num_envs, np.float64)
    self._episode_length = np.zeros(num_envs, np.int64)
    self._finished = []
    # True where the next step must start a new sequence (after LAST, and before the first reset).
    self._needs_first = np.ones(num_envs, bool)
    self._closed = False

  # --- TF-Agents interface -------------------------------------------------------------------

  @property
  def batched(self):
    return self._batched

  @property
  def batch_size(self):
    return self.num_envs if self._batched else None

  def observation_spec(self):
    return self._observation_spec

  def action_spec(self):
    return self._action_spec

  def _reset(self):
    self._check_open()
    frames = self._reset_all()
    self._episode_return[:] = 0.0
    self._episode_length[:] = 0
    self._needs_first[:] = False
    for i in range(self.num_envs):
      self._stacks.begin(i, frames[i])
    n = self.num_envs
    return self._time_step(np.full(n, FIRST, np.int32), np.zeros(n, np.float32),
                           np.ones(n, np.float32))

  def _step(self, action):
    self._check_open()
    if self._current_time_step is None:
      return self.reset()
    actions = np.asarray(action)
    if not self._batched:
      actions = actions[None]
    if actions.shape[0] != self.num_envs:
      raise ValueError(f"Expected a batch of {self.num_envs} actions, got shape "
                       f"{np.shape(action)}.")
    step_type, reward, discount = self._step_batch(actions)
    return self._time_step(step_type, reward, discount)

  def close(self):
    """Frees the emulators/renderers. Safe to call more than once."""
    if self._closed:
      return
    self._closed = True
    self._close()

  def __del__(self):
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass  # Interpreter shutdown may have torn down the backends already.

  # --- tfgap additions -----------------------------------------------------------------------

  def pop_episode_stats(self):
    """Returns and forgets the episodes that ended since the last call.

    Returns:
      A list of dicts `{"return": raw game score, "length": agent steps, "env_id": int,
      "truncated": bool}`, in the order they ended; `truncated` is True for an episode cut by a
      step cap (Atari's 27,000 agent steps, `max_episode_steps`) rather than ended by the game,
      whose return is then a partial score. Atari100K counts one episode per game over (not per
      life).
    """
    finished, self._finished = self._finished, []
    return finished

  @property
  def closed(self):
    return self._closed

  def render(self, mode="rgb_array"):
    """The frame a person would see of batch entry 0: uint8 RGB `[H, W, 3]`.

    Atari gives the emulator's full-colour screen (210x160), not the agent's 84x84 grayscale;
    environments without a screen of their own give the newest frame of the agent's observation
    (grayscale repeated to RGB).
    """
    if mode != "rgb_array":
      raise ValueError(f"mode={mode!r} is not accepted; accepted: 'rgb_array'")
    self._check_open()
    frame = self._rgb_frame()
    if frame is None:
      frame = self._stacks.observation()[0][..., -self.frame_shape[-1]:]
    frame = np.asarray(frame, np.uint8)
    if frame.ndim == 2:
      frame = frame[..., None]
    if frame.shape[-1] == 1:
      frame = np.repeat(frame, 3, axis=-1)
    return frame[..., :3]

  def _rgb_frame(self):
    """Entry 0's screen in colour if the backend has one, else None."""
    return None

  # --- helpers for subclasses ----------------------------------------------------------------

  def _record_episode(self, i, truncated=False):
    """Closes entry i's episode; `truncated`: cut by a step cap, not ended by the game."""
    self._finished.append({"return": float(self._episode_return[i]),
                           "length": int(self._episode_length[i]), "env_id": int(i),
                           "truncated": bool(truncated)})
    self._episode_return[i] = 0.0
    self._episode_length[i] = 0

  def _mid_step_arrays(self):
    """`(step_type, reward, discount)` for `_step_batch` to fill: all MID, reward 0, discount 1."""
    n = self.num_envs
    return np.full(n, MID, np.int32), np.zeros(n, np.float32), np.ones(n, np.float32)

  def _time_step(self, step_type, reward, discount):
    observation = self._stacks.observation()
    if self._batched:
      return ts.TimeStep(step_type, reward, discount, observation)
    return ts.TimeStep(np.asarray(step_type[0], np.int32), np.asarray(reward[0], np.float32),
                       np.asarray(discount[0], np.float32), observation[0])

  def _check_open(self):
    if self._closed:
      raise RuntimeError(f"The {self.suite} environment {self.name!r} is closed.")

  def _reset_all(self):
    """Truly resets every batch entry; returns their first frames `[num_envs, *frame_shape]`."""
    raise NotImplementedError

  def _step_batch(self, actions):
    """Steps all entries; returns (step_type, reward, discount) arrays, updating self._stacks."""
    raise NotImplementedError

  def _close(self):
    raise NotImplementedError

  def __repr__(self):
    return (f"<{type(self).__name__} suite={self.suite} name={self.name} num_envs={self.num_envs}"
            f" mode={self.mode} seed={self.seed}>")


class SerialEnv(TfgapEnv):
  """A batch of independent single-game environments stepped one after the other.

  Each game object has `reset() -> frame`, `step(action) -> (frame, reward, terminated,
  truncated, life_lost)` and `close()`. Because every entry resets on its own, the TF-Agents
  step-type sequence is exact: the step after an entry's LAST ignores that entry's action and
  returns FIRST. After a life-loss LAST (Atari100K) the game is not reset: the new sequence starts
  from the current screen with a zero-padded stack, as Dopamine's agent does on life loss.
  """

  def __init__(self, games, *, clip_rewards=False, terminal_on_life_loss=False,
               max_episode_steps=None, on_close=None, **kwargs):
    self._games = list(games)
    self._on_close = on_close
    super().__init__(num_envs=len(self._games), **kwargs)
    self._clip = clip_rewards
    self._life_terminal = terminal_on_life_loss
    self._max_steps = max_episode_steps
    self._pending_life_loss = np.zeros(self.num_envs, bool)
    self._last_frame = [None] * self.num_envs

  def _reset_all(self):
    self._pending_life_loss[:] = False
    frames = [game.reset() for game in self._games]
    self._last_frame = list(frames)
    return frames

  def _step_batch(self, actions):
    step_type, reward, discount = self._mid_step_arrays()
    for i, game in enumerate(self._games):
      if self._needs_first[i]:
        self._needs_first[i] = False
        step_type[i] = FIRST
        if self._pending_life_loss[i]:
          # Same game, new learner episode: restart the stack on the current screen.
          self._pending_life_loss[i] = False
          frame = self._last_frame[i]
        else:
          frame = game.reset()
          self._episode_return[i] = 0.0
          self._episode_length[i] = 0
        self._stacks.begin(i, frame)
        self._last_frame[i] = frame
        continue
      frame, raw, terminated, truncated, life_lost = game.step(actions[i])
      self._last_frame[i] = frame
      self._stacks.push(i, frame)
      self._episode_return[i] += raw
      self._episode_length[i] += 1
      reward[i] = min(max(raw, -1.0), 1.0) if self._clip else raw
      if self._max_steps is not None and self._episode_length[i] >= self._max_steps:
        truncated = True
      if terminated or truncated:
        step_type[i] = LAST
        # A time limit is no terminal state: keep bootstrapping through it.
        discount[i] = 0.0 if terminated else 1.0
        self._needs_first[i] = True
        self._record_episode(i, truncated=not terminated)
      elif life_lost and self._life_terminal:
        step_type[i] = LAST
        discount[i] = 0.0
        self._needs_first[i] = True
        self._pending_life_loss[i] = True
    return step_type, reward, discount

  def _close(self):
    errors = []
    for game in self._games:
      try:
        game.close()
      except Exception as e:  # pylint: disable=broad-except
        errors.append(e)
    self._games = []
    if self._on_close is not None:
      self._on_close()
    if errors:
      raise errors[0]

  def _rgb_frame(self):
    game = self._games[0] if self._games else None
    return game.rgb_frame() if hasattr(game, "rgb_frame") else None

  @property
  def games(self):
    """The per-entry game objects (for inspection in tests and tools)."""
    return tuple(self._games)
