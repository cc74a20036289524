"""A frame-once numpy replay buffer with stacking, n-step returns and prioritized sampling."""

import threading

import numpy as np

from tfgap import checks
from tfgap.replay import checkpoint as checkpoint_lib
from tfgap.replay.sum_tree import SumTree

try:  # Fast channel interleave for stacking; opencv-python-headless is in requirements.txt.
  import cv2 as _cv2  # pylint: disable=g-import-not-at-top
except ImportError:  # pragma: no cover - numpy fallback.
  _cv2 = None
_CV2_MAX_CHANNELS = 512  # OpenCV's CV_CN_MAX.
_CV2_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32,
                                          np.float32, np.float64))

# TF-Agents' StepType values (tf_agents.trajectories.time_step.StepType), kept here so the buffer
# does not need TF-Agents to run.
FIRST = 0
MID = 1
LAST = 2

# Bits of the per-slot flags byte.
_FIRST_BIT = np.uint8(1)  # The slot holds the first observation of an episode.
_LAST_BIT = np.uint8(2)  # The slot holds an episode's last observation (terminal or truncated).
_TERMINAL_BIT = np.uint8(4)  # The episode ended in a terminal state at this slot (discount 0).
_STEP_FLAGS = np.array([_FIRST_BIT, 0, _LAST_BIT], dtype=np.uint8)  # Indexed by step type.
_EMPTY = np.zeros(0, dtype=np.int64)


class ReplayBuffer:
  """Replay that stores each frame once and rebuilds stacked observations on sampling.

  One slot per environment step and stream holds the newest frame of the observation, the action
  that led to it, the reward received on arriving and three flags (episode first, episode last,
  terminal). A stacked observation is the last ``stack_size`` frames of the same episode
  concatenated on the channel axis, oldest first, with zeros for frames before the episode's first
  frame: exactly what the environments of ``tfgap.envs`` hand the agent. Memory per stored step is
  one frame plus the action, a float32 reward and two flag bytes (and 8 bytes of sum tree when
  prioritized): 7,066-7,074 bytes for 84x84x1 frames, so the paper's 1M Atari steps take 6.6 GiB
  instead of 26 GiB of stacked observations (twice that with next observations).

  Storage is split evenly between ``num_streams`` parallel environment streams (the ``num_envs`` of
  a batched env); each ``add`` writes one step of every stream. Calling convention (TF-Agents time
  step semantics): call ``add`` with every time step the environment returns, together with the
  action that produced it::

    env = tfgap.envs.make("atari", "Pong", num_envs=4)           # batched, auto-reset
    buffer = ReplayBuffer(capacity=1_000_000, frame_shape=env.frame_shape,
                          stack_size=env.stack_size, num_streams=4, n_step=3, gamma=0.99,
                          prioritized=True)
    time_step = env.reset()
    buffer.add_time_step(time_step)                 # all FIRST: the action is ignored
    batches = buffer.prefetch(batch_size=32, min_sampleable=min_replay)
    while training:
      action = policy.action(time_step).action
      time_step = env.step(action)                  # o_{t+1}, r_{t+1}, step type, discount
      buffer.add_time_step(time_step, action)       # == buffer.add(time_step.observation, action,
                                                    #      time_step.reward, time_step.step_type,
                                                    #      time_step.discount)
      if len(buffer) >= min_replay:
        batch = next(batches)
        td_errors = train(batch)                    # weights: batch["weights"]
        buffer.update_priorities(batch["indices"], np.abs(td_errors))
    batches.close()

  Per stream, a step whose ``step_type`` is FIRST starts an episode (its action and reward are
  ignored; its stack is zeros plus the first frame); MID and LAST steps continue it, recording
  ``a_t`` (the action passed) and ``r_{t+1}``. A LAST step ends the episode: terminal if its
  discount is 0, a truncation (time limit: bootstrap from it, but never across it) otherwise. A
  FIRST step in a stream whose episode did not end (a manual reset) closes that episode as a
  truncation at its last stored step. A batched TF-Agents env returns FIRST right after LAST, with
  the action ignored, which is exactly this convention.

  Sampling returns transitions from step t of a stream: ``observation`` the stack at t, ``action``
  a_t, ``reward`` the n-step return ``sum_{i<k} gamma^i r_{t+i+1}``, ``discount`` ``gamma^k`` or 0
  if the episode terminated within the window, and ``next_observation`` the stack at t+k, where
  k = n unless the episode ended (terminal or truncated) at t+k < t+n. A step is sampleable only
  once its window is complete, while all the frames it needs are still stored, and never from an
  episode's last observation.

  Prioritized mode (proportional, Schaul et al. 2016): new items get the largest priority seen so
  far, item i is drawn with probability ``p_i^alpha / sum_j p_j^alpha`` (stratified over the batch),
  and ``weights = (N P(i))^-beta / max over the batch``, with beta annealed linearly from ``beta``
  to ``beta_final`` over ``beta_steps`` learner steps: the learner reports its step with
  ``set_learner_step`` (sampling itself never moves beta). Uniform mode returns weights of 1.

  Diagnostic samples (a probe of the network, statistics) pass their own generator,
  ``sample(n, rng=...)``, and leave the buffer's sampling RNG where it was.

  All public methods are thread-safe (one re-entrant lock), so a ``prefetch`` thread can sample
  while the actor adds and the learner updates priorities.
  """

  def __init__(self, capacity, frame_shape, stack_size=4, num_streams=1, n_step=1, gamma=0.99,
               prioritized=False, alpha=0.6, beta=0.4, beta_final=1.0, beta_steps=0,
               min_priority=1e-6, action_shape=(), action_dtype=np.int32,
               frame_dtype=np.uint8, seed=None):
    """Allocates the buffer (numpy zeros: pages are only committed as steps are written).

    Args:
      capacity: total number of stored steps over all streams (> 0); rounded down to a multiple of
        ``num_streams``. Each stream keeps ``capacity // num_streams`` steps, which must be at least
        ``n_step + stack_size``.
      frame_shape: ``(H, W, C)`` of one frame, e.g. ``(84, 84, 1)`` (``env.frame_shape``).
      stack_size: frames per observation, k >= 1 (``env.stack_size``).
      num_streams: parallel environment streams (``num_envs``), >= 1.
      n_step: length of the return window, >= 1.
      gamma: discount in [0, 1].
      prioritized: proportional prioritized sampling if True, uniform otherwise.
      alpha: priority exponent, >= 0 (0 gives uniform sampling through the sum tree).
      beta: initial importance-sampling exponent, in [0, 1].
      beta_final: exponent reached after ``beta_steps`` learner steps, in [0, 1].
      beta_steps: learner steps (``set_learner_step``) over which beta is annealed linearly; 0
        keeps it at ``beta``.
      min_priority: priorities are clipped below at this positive value before ``** alpha`` so that
        no sampleable item becomes impossible to draw.
      action_shape: shape of one action (``()`` for discrete, ``(d,)`` for continuous).
      action_dtype: numpy dtype of actions.
      frame_dtype: numpy dtype of frames (uint8 for pixels).
      seed: seed of the sampling ``numpy.random.Generator`` (saved and restored with the buffer).

    Raises:
      ValueError: naming any argument outside its accepted range.
    """
    frame_shape = tuple(int(d) for d in np.atleast_1d(frame_shape))
    if len(frame_shape) != 3 or min(frame_shape) <= 0:
      checks.reject("frame_shape", frame_shape, "(H, W, C) with positive sizes")
    stack_size = checks.check_int("stack_size", stack_size, low=1)
    num_streams = checks.check_int("num_streams", num_streams, low=1)
    n_step = checks.check_int("n_step", n_step, low=1)
    capacity = checks.check_int("capacity", capacity, low=1)
    beta_steps = checks.check_int("beta_steps", beta_steps, low=0)
    gamma = checks.check_float("gamma", gamma, low=0.0, high=1.0)
    alpha = checks.check_float("alpha", alpha, low=0.0)
    beta = checks.check_float("beta", beta, low=0.0, high=1.0)
    beta_final = checks.check_float("beta_final", beta_final, low=0.0, high=1.0)
    min_priority = checks.check_float("min_priority", min_priority, low=0.0, low_open=True)
    rows = int(capacity) // int(num_streams)
    if rows < n_step + stack_size:
      checks.reject("capacity", capacity,
                    f"at least (n_step + stack_size) * num_streams = "
                    f"{(n_step + stack_size) * num_streams} steps ({num_streams} streams, each "
                    f"needing n_step + stack_size = {n_step + stack_size})")

    self._frame_shape = frame_shape
    self._stack_size = int(stack_size)
    self._num_streams = int(num_streams)
    self._rows = rows
    self._capacity = rows * self._num_streams
    self._n_step = int(n_step)
    self._gamma = float(gamma)
    self._prioritized = bool(prioritized)
    self._alpha = float(alpha)
    self._beta = float(beta)
    self._beta_final = float(beta_final)
    self._beta_steps = int(beta_steps)
    self._min_priority = float(min_priority)
    self._action_shape = tuple(int(d) for d in action_shape)
    self._action_dtype = np.dtype(action_dtype)
    self._frame_dtype = np.dtype(frame_dtype)
    self._seed = seed

    # Slot of stream s at row r is r * num_streams + s. One extra all-zero frame at index
    # `capacity` is what zero-padded stack positions gather.
    self._frames = np.zeros((self._capacity + 1,) + frame_shape, dtype=self._frame_dtype)
    self._actions = np.zeros((self._capacity,) + self._action_shape, dtype=self._action_dtype)
    self._rewards = np.zeros(self._capacity, dtype=np.float32)
    self._flags = np.zeros(self._capacity, dtype=np.uint8)
    self._valid = np.zeros(self._capacity, dtype=bool)
    self._tree = SumTree(self._capacity) if self._prioritized else None

    self._written = False  # Whether any array may hold non-zero data (see restore).
    self._lock = threading.RLock()
    self._added = threading.Condition(self._lock)
    self._stream_ids = np.arange(self._num_streams, dtype=np.int64)
    self._reset_state()
    self._rng = np.random.default_rng(seed)

  def _reset_state(self):
    self._num_steps = 0  # Rows written so far (every add writes one row: one step per stream).
    self._num_valid = 0
    self._learner_step = 0  # The learner's step (set_learner_step): the clock of beta.
    self._max_priority = 1.0
    self._in_episode = np.zeros(self._num_streams, dtype=bool)
    self._episode_length = np.zeros(self._num_streams, dtype=np.int64)

  # ---------------------------------------------------------------- properties

  @property
  def capacity(self):
    """Total stored steps over all streams (a multiple of ``num_streams``)."""
    return self._capacity

  @property
  def frame_shape(self):
    return self._frame_shape

  @property
  def stack_size(self):
    return self._stack_size

  @property
  def observation_shape(self):
    """Shape of a sampled (stacked) observation: ``(H, W, C * stack_size)``."""
    h, w, c = self._frame_shape
    return (h, w, c * self._stack_size)

  @property
  def num_streams(self):
    return self._num_streams

  @property
  def n_step(self):
    return self._n_step

  @property
  def gamma(self):
    return self._gamma

  @property
  def prioritized(self):
    return self._prioritized

  @property
  def alpha(self):
    return self._alpha

  @property
  def beta(self):
    """The importance-sampling exponent the next ``sample`` call uses (at ``learner_step``)."""
    if self._beta_steps == 0:
      return self._beta
    fraction = min(1.0, self._learner_step / self._beta_steps)
    return self._beta + fraction * (self._beta_final - self._beta)

  @property
  def learner_step(self):
    """The learner step last given to ``set_learner_step`` (0 at first)."""
    return self._learner_step

  def set_learner_step(self, step):
    """Sets the learner's step (e.g. its update count), which beta's annealing follows.

    beta goes linearly from ``beta`` to ``beta_final`` over ``beta_steps`` learner steps. Only
    the learner moves this clock, so diagnostic samples and batches a prefetcher drew and
    dropped do not. The step is saved with the buffer.

    Args:
      step: an integer >= 0.
    """
    step = checks.check_int("step", step, low=0)
    with self._lock:
      self._learner_step = step

  @property
  def num_added(self):
    """Steps added so far over all streams (including overwritten ones)."""
    return self._num_steps * self._num_streams

  @property
  def num_sampleable(self):
    """Transitions that ``sample`` can currently return."""
    return self._num_valid

  def __len__(self):
    return self._num_valid

  @property
  def nbytes(self):
    """Bytes of every array the buffer allocated (frames, scalars, flags, sum tree)."""
    total = (self._frames.nbytes + self._actions.nbytes + self._rewards.nbytes +
             self._flags.nbytes + self._valid.nbytes)
    if self._tree is not None:
      total += self._tree.nbytes
    return total

  @property
  def bytes_per_transition(self):
    """``nbytes / capacity``: about one frame plus a few scalars."""
    return self.nbytes / self._capacity

  # ---------------------------------------------------------------- adding

  def add(self, observations, actions, rewards, step_types, discounts=None):
    """Adds one time step of every stream.

    Args:
      observations: ``[S, H, W, C]`` newest frame of each stream's observation, or the whole stacked
        observation ``[S, H, W, C * stack_size]`` (its last ``C`` channels are stored). With one
        stream the leading axis may be omitted.
      actions: ``[S] + action_shape``: the action that produced this time step (ignored where the
        step type is FIRST; may be None when every step type is FIRST).
      rewards: ``[S]`` reward received with this time step (ignored where FIRST).
      step_types: ``[S]`` TF-Agents step types: 0 FIRST, 1 MID, 2 LAST.
      discounts: ``[S]`` environment discounts; a LAST step with discount 0 is terminal, any other
        LAST step a truncation. None means all ones (LAST steps are then truncations).

    Raises:
      ValueError: for a shape or dtype that does not match the buffer, a step type outside
        {0, 1, 2}, or a MID/LAST step in a stream that has no episode in progress.
    """
    frames, actions, rewards, step_types, discounts = self._check_step(
        observations, actions, rewards, step_types, discounts)
    first = step_types == FIRST
    last = step_types == LAST
    any_first = first.any()
    any_last = last.any()
    with self._lock:
      if any_first or any_last or not self._in_episode.all():
        self._reject_orphan_steps(first, step_types)
      self._written = True
      row = self._num_steps % self._rows
      slots = row * self._num_streams + self._stream_ids
      invalid = self._overwritten_slots(row) if self._num_steps >= self._rows else []
      valid = []
      if any_first:
        valid.extend(self._close_interrupted_episodes(first, row))
        actions = np.where(first.reshape((-1,) + (1,) * len(self._action_shape)), 0, actions)
        rewards = np.where(first, np.float32(0.0), rewards)
      flags = _STEP_FLAGS[step_types]
      if any_last:
        flags |= (last & (discounts == 0)) * _TERMINAL_BIT
      self._frames[slots] = frames
      self._actions[slots] = actions
      self._rewards[slots] = rewards
      self._flags[slots] = flags
      self._episode_length += 1
      if any_first:
        self._episode_length[first] = 1
      self._in_episode = ~last
      valid.extend(self._completed_slots(row, first if any_first else None,
                                         last if any_last else None))
      self._set_valid(invalid, valid)
      self._num_steps += 1
      self._added.notify_all()

  def _reject_orphan_steps(self, first, step_types):
    """A MID/LAST step in a stream without an episode in progress is a caller's error."""
    orphan = ~first & ~self._in_episode
    if orphan.any():
      checks.reject(
          "step_types", step_types.tolist(),
          f"FIRST (0) in streams {np.flatnonzero(orphan).tolist()}, which have no episode in "
          "progress: a MID/LAST step needs one; start each episode with a FIRST step "
          "(add_first or step_type 0)")

  def _overwritten_slots(self, row):
    """Slots that stop being sampleable when `row` (the oldest) is overwritten: its own, and
    those of the next rows whose stacks reach back into it (no episode start in between)."""
    streams, stream_ids = self._num_streams, self._stream_ids
    invalid = [row * streams + stream_ids]
    reaches = None
    for j in range(1, self._stack_size):
      ahead = ((row + j) % self._rows) * streams + stream_ids
      starts = (self._flags[ahead] & _FIRST_BIT) != 0
      reaches = ~starts if reaches is None else reaches & ~starts
      invalid.append(ahead[reaches])
    return invalid

  def _close_interrupted_episodes(self, first, row):
    """A FIRST step in a stream with an episode in progress closes that episode as a truncation
    at its last stored step (the previous row); returns the slots of its last n-1 steps, which
    become sampleable."""
    closed = first & self._in_episode
    if not closed.any():
      return []
    previous_row = (row - 1) % self._rows
    self._flags[previous_row * self._num_streams + self._stream_ids[closed]] |= _LAST_BIT
    return self._window_closed_slots(previous_row, closed, self._n_step - 1)

  def _completed_slots(self, row, first, last):
    """Slots whose n-step window the step just stored at `row` completes.

    Args:
      row: the row just written.
      first: [S] bool of FIRST steps, or None when there are none.
      last: [S] bool of LAST steps, or None when there are none.
    """
    # The step n rows back now has its whole window (same episode, n later steps stored).
    complete = self._episode_length > self._n_step
    if first is not None:
      complete &= ~first
    back = (row - self._n_step) % self._rows
    slots = [back * self._num_streams + self._stream_ids[complete]]
    # An episode end completes the windows of its last n-1 steps too (they stop at the end).
    if last is not None:
      slots.extend(self._window_closed_slots(row, last, self._n_step - 1))
    return slots

  def add_first(self, observations):
    """Starts an episode in every stream: ``add`` with all step types FIRST."""
    count = self._num_streams
    self.add(observations, None, np.zeros(count, np.float32), np.full(count, FIRST, np.int32))

  def add_time_step(self, time_step, action=None):
    """Adds a TF-Agents ``TimeStep`` (numpy or eager tensors) and the action that produced it.

    Args:
      time_step: ``TimeStep(step_type, reward, discount, observation)`` of a batched environment
        (or an unbatched one when ``num_streams == 1``).
      action: the action passed to ``env.step`` that returned ``time_step``; may be None when every
        step type is FIRST (e.g. right after ``env.reset()``).
    """
    self.add(np.asarray(time_step.observation),
             None if action is None else np.asarray(action),
             np.asarray(time_step.reward), np.asarray(time_step.step_type),
             np.asarray(time_step.discount))

  def _window_closed_slots(self, end_row, streams_mask, max_back):
    """Slots 1..max_back rows before ``end_row`` in the same episode, for the masked streams
    (whose episodes are ``self._episode_length`` steps long at ``end_row``)."""
    out = []
    streams = self._stream_ids[streams_mask]
    lengths = self._episode_length[streams_mask]
    for j in range(1, max_back + 1):
      inside = lengths > j  # The episode has a step j rows before its end.
      if not inside.any():
        break
      out.append(((end_row - j) % self._rows) * self._num_streams + streams[inside])
    return out

  def _set_valid(self, invalid, valid):
    """Marks slot lists ``invalid`` unsampleable and ``valid`` sampleable (disjoint sets)."""
    invalid = np.concatenate(invalid) if invalid else _EMPTY
    valid = np.concatenate(valid) if valid else _EMPTY
    self._num_valid += (int(np.count_nonzero(~self._valid[valid])) -
                        int(np.count_nonzero(self._valid[invalid])))
    self._valid[invalid] = False
    self._valid[valid] = True
    if self._tree is not None and (invalid.size or valid.size):
      values = np.zeros(invalid.size + valid.size)
      values[invalid.size:] = self._max_priority ** self._alpha
      self._tree.set_unchecked(np.concatenate([invalid, valid]), values)

  def _check_step(self, observations, actions, rewards, step_types, discounts):
    streams = self._num_streams
    observations = np.asarray(observations)
    if observations.dtype != self._frame_dtype:
      checks.reject("observations dtype", str(observations.dtype),
                    f"the buffer's frame dtype {str(self._frame_dtype)!r}")
    h, w, c = self._frame_shape
    if streams == 1 and observations.ndim == 3:
      observations = observations[None]
    if observations.ndim == 4 and observations.shape[:3] == (streams, h, w):
      channels = observations.shape[3]
      if channels == c * self._stack_size or channels == c:
        frames = observations[..., channels - c:]
      else:
        frames = None
    else:
      frames = None
    if frames is None:
      checks.reject("observations shape", observations.shape,
                    f"frames {(streams, h, w, c)} or stacked observations "
                    f"{(streams, h, w, c * self._stack_size)}")

    step_types = _as_stream_array("step_types", step_types, streams, np.int64)
    if step_types.min() < FIRST or step_types.max() > LAST:
      checks.reject("step_types", step_types.tolist(), "0 (FIRST), 1 (MID) or 2 (LAST) each")
    rewards = _as_stream_array("rewards", rewards, streams, np.float32)
    if discounts is None:
      discounts = np.ones(streams, np.float32)
    discounts = _as_stream_array("discounts", discounts, streams, np.float32)
    action_shape = (streams,) + self._action_shape
    if actions is None:
      if np.any(step_types != FIRST):
        checks.reject("actions", None, "the actions that produced the steps (None only when "
                      "every step type is FIRST)")
      actions = np.zeros(action_shape, self._action_dtype)
    else:
      actions = np.asarray(actions)
      if streams == 1 and actions.shape == self._action_shape:
        actions = actions.reshape(action_shape)
      if actions.shape != action_shape:
        checks.reject("actions shape", actions.shape,
                      f"{action_shape} (num_streams + action_shape)")
      actions = actions.astype(self._action_dtype, copy=False)
    return frames, actions, rewards, step_types, discounts

  # ---------------------------------------------------------------- sampling

  def sample(self, batch_size, *, beta=None, rng=None):
    """Samples a batch of n-step transitions.

    Sampling changes no state but the sampling RNG: beta follows ``set_learner_step``, never the
    number of batches drawn.

    Args:
      batch_size: positive int, at most ``num_sampleable``.
      beta: importance-sampling exponent in [0, 1] overriding the schedule (prioritized mode).
      rng: a ``numpy.random.Generator`` (or an int seed for a fresh one) to draw this batch with
        instead of the buffer's own generator, which then does not advance. For diagnostic
        samples (a dormant-neuron probe, statistics) that must not change the training batches.

    Returns:
      Dict of numpy arrays: ``observation`` and ``next_observation`` ``[B, H, W, C * k]`` (frame
      dtype), ``action`` ``[B] + action_shape``, ``reward`` float32 ``[B]`` (n-step return),
      ``discount`` float32 ``[B]`` (gamma^k, or 0 after a terminal), ``indices`` int64 ``[B]``
      (item ids for ``update_priorities``) and ``weights`` float32 ``[B]`` (importance weights,
      ones in uniform mode).

    Raises:
      ValueError: if ``batch_size`` is not a positive int or exceeds ``num_sampleable``, or for a
        ``beta`` outside [0, 1] or an ``rng`` that is neither a Generator nor an int.
    """
    checks.check_int("batch_size", batch_size, low=1)
    beta = checks.check_float("beta", beta, low=0.0, high=1.0, allow_none=True)
    if rng is not None and not isinstance(rng, np.random.Generator):
      try:
        rng = np.random.default_rng(checks.check_int("rng", rng, low=0))
      except ValueError:
        checks.reject("rng", rng, "None (the buffer's generator), a numpy.random.Generator or an "
                      "int seed >= 0")
    with self._lock:
      if batch_size > self._num_valid:
        checks.reject("batch_size", batch_size,
                      f"at most the {self._num_valid} sampleable transitions; add more steps "
                      "first (see num_sampleable)")
      rng = self._rng if rng is None else rng
      if self._prioritized:
        slots = self._tree.sample_stratified(batch_size, rng)
        beta = self.beta if beta is None else beta
        probabilities = self._tree.get(slots) / self._tree.total
        weights = (self._num_valid * probabilities) ** (-beta)
        weights = (weights / weights.max()).astype(np.float32)
      else:
        slots = self._sample_uniform(batch_size, rng)
        weights = np.ones(batch_size, np.float32)
      batch = self._gather(slots)
    batch["weights"] = weights
    return batch

  def _rng_state(self):
    """The sampling RNG's state (for a prefetcher that may have to give back its draws)."""
    with self._lock:
      return self._rng.bit_generator.state

  def _rewind_rng(self, state, expected):
    """Sets the RNG back to ``state`` if it is still at ``expected``; returns whether it did.

    A prefetcher that drops batches it drew calls this on close, so dropped batches consume no
    randomness. If anything else drew since (the RNG is not at ``expected``), nothing changes.
    """
    with self._lock:
      if self._rng.bit_generator.state != expected:
        return False
      self._rng.bit_generator.state = state
      return True

  def _sample_uniform(self, batch_size, rng):
    used = min(self._num_steps, self._rows) * self._num_streams
    if self._num_valid * 4 < used:
      # Mostly unsampleable (e.g. very short episodes early on): draw from the explicit list.
      return rng.choice(np.flatnonzero(self._valid[:used]), size=batch_size)
    slots = rng.integers(0, used, size=batch_size)
    bad = ~self._valid[slots]
    while bad.any():  # Rejection: at least 1/4 of draws are accepted, usually almost all.
      slots[bad] = rng.integers(0, used, size=int(bad.sum()))
      bad = ~self._valid[slots]
    return slots

  def get(self, indices):
    """Returns the transitions of item ids ``indices`` (as ``sample`` returns them, weights 1).

    Raises:
      ValueError: if an id is not currently sampleable.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    with self._lock:
      slots, fresh = self._slots_of(indices)
      if not np.all(fresh):
        checks.reject("indices", indices[~fresh].tolist(),
                      "ids of sampleable items of this buffer (see sampleable_indices())")
      batch = self._gather(slots)
    batch["weights"] = np.ones(indices.size, np.float32)
    return batch

  def sampleable_indices(self):
    """Item ids of every transition ``sample`` can currently return, in slot order."""
    with self._lock:
      slots = np.flatnonzero(self._valid)
      return self._ids_of(slots)

  def priorities(self, indices):
    """Raw stored sum-tree values ``p^alpha`` of item ids (prioritized mode; 0 if stale)."""
    if not self._prioritized:
      checks.reject("prioritized", False, "True for priorities()")
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    with self._lock:
      slots, fresh = self._slots_of(indices)
      return np.where(fresh, self._tree.get(slots), 0.0)

  def _ids_of(self, slots):
    # An item id is (absolute step of its row) * num_streams + stream: unique for ever, so an id
    # whose slot has been overwritten since it was sampled is recognised as stale.
    streams = self._num_streams
    row = slots // streams
    newest_row = (self._num_steps - 1) % self._rows
    # Absolute step of each row: the latest write at or before newest_row's step.
    step = self._num_steps - 1 - ((newest_row - row) % self._rows)
    return step * streams + slots % streams

  def _slots_of(self, indices):
    streams = self._num_streams
    step, stream = np.divmod(indices, streams)
    slots = (step % self._rows) * streams + stream
    fresh = (indices >= 0) & (step < self._num_steps) & (step >= self._num_steps - self._rows)
    slots = np.where(fresh, slots, 0)
    fresh &= self._valid[slots]
    return slots, fresh

  def _gather(self, slots):
    """Builds transitions for sampleable ``slots`` (call with the lock held)."""
    streams = self._num_streams
    rows = self._rows
    row = slots // streams
    stream = slots % streams
    gamma = np.float32(self._gamma)

    # n-step window: walk forward until n steps or the episode's last observation.
    returns = np.zeros(slots.size, np.float32)
    steps = np.zeros(slots.size, np.int64)
    active = np.ones(slots.size, dtype=bool)
    terminal = np.zeros(slots.size, dtype=bool)
    scale = np.float32(1.0)
    for j in range(1, self._n_step + 1):
      ahead = ((row + j) % rows) * streams + stream
      returns += np.where(active, scale * self._rewards[ahead], np.float32(0.0))
      steps += active
      flags = self._flags[ahead]
      ended = active & ((flags & _LAST_BIT) != 0)
      terminal |= ended & ((flags & _TERMINAL_BIT) != 0)
      active &= ~ended
      scale *= gamma
      if not active.any():
        break
    discounts = np.where(terminal, np.float32(0.0),
                         np.power(gamma, steps.astype(np.float32))).astype(np.float32)
    next_row = (row + steps) % rows
    action_slots = ((row + 1) % rows) * streams + stream

    # Stacks of both ends at once: walk back k-1 rows, switching to the zero frame after an
    # episode start.
    end_rows = np.concatenate([row, next_row])
    end_streams = np.concatenate([stream, stream])
    k = self._stack_size
    sources = np.empty((end_rows.size, k), dtype=np.int64)
    alive = np.ones(end_rows.size, dtype=bool)
    for d in range(k):
      back = ((end_rows - d) % rows) * streams + end_streams
      sources[:, k - 1 - d] = np.where(alive, back, self._capacity)
      alive &= (self._flags[back] & _FIRST_BIT) == 0
    stacks = self._stack_frames(sources)
    count = slots.size
    return {
        "observation": stacks[:count],
        "action": self._actions[action_slots],
        "reward": returns,
        "discount": discounts,
        "next_observation": stacks[count:],
        "indices": self._ids_of(slots),
    }

  def _stack_frames(self, sources):
    """Gathers frames ``sources`` ``[N, k]`` into stacks ``[N, H, W, C * k]`` (oldest first)."""
    count, k = sources.shape
    h, w, c = self._frame_shape
    if k == 1:
      return self._frames[sources[:, 0]]
    if _cv2 is not None and k * c <= _CV2_MAX_CHANNELS and self._frame_dtype in _CV2_DTYPES:
      # numpy's copy into a channel-interleaved layout goes element by element (~8 ms for 64
      # stacks of 84x84x4); OpenCV's merge does the same interleave with SIMD in ~0.1 ms.
      planes = [self._frames[sources[:, d]].reshape(count * h, w, c) for d in range(k)]
      if c == 1:
        planes = [plane.reshape(count * h, w) for plane in planes]
      return _cv2.merge(planes).reshape(count, h, w, k * c)
    frames = self._frames[sources]  # [N, k, H, W, C]
    return np.ascontiguousarray(frames.transpose(0, 2, 3, 1, 4).reshape(count, h, w, k * c))

  # ---------------------------------------------------------------- priorities

  def update_priorities(self, indices, priorities):
    """Sets the priorities of sampled items.

    Ids whose items were overwritten, or stopped being sampleable, since they were sampled are
    skipped silently (with prefetching this is expected). Priorities are clipped below at
    ``min_priority`` and stored as ``p ** alpha``; the largest priority seen becomes the priority of
    new items.

    Args:
      indices: int array of item ids from ``sample()["indices"]``.
      priorities: array of the same shape, finite and >= 0 (e.g. ``|td_error|``).

    Raises:
      ValueError: in uniform mode, or for mismatched shapes or negative / non-finite priorities.
    """
    if not self._prioritized:
      checks.reject("prioritized", False, "True for update_priorities (build the buffer with "
                    "prioritized=True)")
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    priorities = np.asarray(priorities, dtype=np.float64).reshape(-1)
    if priorities.shape != indices.shape:
      checks.reject("priorities shape", priorities.shape,
                    f"the indices shape {indices.shape}")
    finite = np.isfinite(priorities)
    if not finite.all():
      # NaN/inf priorities come from a learner whose loss diverged: say so, without listing
      # every value of the batch.
      shown = priorities.tolist() if priorities.size <= 8 else (
          f"<{int((~finite).sum())} of {priorities.size} NaN or infinite, e.g. "
          f"{priorities[~finite][0]}>")
      checks.reject("priorities", shown, "finite numbers >= 0",
                    hint=" Non-finite priorities mean the learner diverged (its loss or weights "
                    "are NaN/inf); stop training and resume from a checkpoint saved before it.")
    if np.any(priorities < 0):
      checks.reject("priorities", priorities.tolist(), "finite numbers >= 0")
    priorities = np.maximum(priorities, self._min_priority)
    with self._lock:
      slots, fresh = self._slots_of(indices)
      if priorities.size:
        self._max_priority = max(self._max_priority, float(priorities.max()))
      self._tree.set_unchecked(slots[fresh], priorities[fresh] ** self._alpha)

  # ---------------------------------------------------------------- input pipelines

  def prefetch(self, batch_size, depth=4, min_sampleable=None):
    """Returns a ``Prefetcher``: a daemon thread sampling ``batch_size`` batches ahead.

    Args:
      batch_size: batch size of every batch.
      depth: batches kept ready (bounded queue), >= 1.
      min_sampleable: the thread waits until ``num_sampleable`` reaches this (default
        ``batch_size``) before sampling.
    """
    from tfgap.replay.prefetch import Prefetcher  # pylint: disable=g-import-not-at-top
    return Prefetcher(self, batch_size, depth=depth, min_sampleable=min_sampleable)

  def as_dataset(self, batch_size, prefetch=2):
    """A ``tf.data.Dataset`` of endless sampled batches (``from_generator`` + ``prefetch``).

    The generator samples inside tf.data's runtime threads, so batches are drawn ahead of the
    learner; element structure is the dict ``sample`` returns, as tensors.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    checks.check_int("batch_size", batch_size, low=1)
    checks.check_int("prefetch", prefetch, low=0)
    obs_spec = tf.TensorSpec((batch_size,) + self.observation_shape,
                             tf.as_dtype(self._frame_dtype))
    signature = {
        "observation": obs_spec,
        "action": tf.TensorSpec((batch_size,) + self._action_shape,
                                tf.as_dtype(self._action_dtype)),
        "reward": tf.TensorSpec((batch_size,), tf.float32),
        "discount": tf.TensorSpec((batch_size,), tf.float32),
        "next_observation": obs_spec,
        "indices": tf.TensorSpec((batch_size,), tf.int64),
        "weights": tf.TensorSpec((batch_size,), tf.float32),
    }

    def generate():
      while True:
        with self._added:
          while self._num_valid < batch_size:
            self._added.wait(0.1)
          batch = self.sample(batch_size)
        yield batch

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.prefetch(prefetch) if prefetch else dataset

  # ---------------------------------------------------------------- checkpoints

  def config(self):
    """Constructor arguments that rebuild an empty buffer of the same layout."""
    return {
        "capacity": self._capacity,
        "frame_shape": list(self._frame_shape),
        "stack_size": self._stack_size,
        "num_streams": self._num_streams,
        "n_step": self._n_step,
        "gamma": self._gamma,
        "prioritized": self._prioritized,
        "alpha": self._alpha,
        "beta": self._beta,
        "beta_final": self._beta_final,
        "beta_steps": self._beta_steps,
        "min_priority": self._min_priority,
        "action_shape": list(self._action_shape),
        "action_dtype": self._action_dtype.str,
        "frame_dtype": self._frame_dtype.str,
        "seed": self._seed,
    }

  def save(self, directory, checksum=True):
    """Writes the whole buffer to ``directory`` atomically; returns the data folder written.

    Only the used rows are written (``np.save`` per array), then a JSON manifest with sizes and
    CRC-32s; the data folder is renamed into place and ``directory/LATEST`` is replaced atomically,
    so an interrupted save leaves the previous checkpoint intact. Adds and samples wait meanwhile.

    Args:
      directory: folder (created if needed) that holds the buffer's checkpoints.
      checksum: compute CRC-32s (about 1 GB/s) as well as sizes, to detect corrupted files.
    """
    with self._lock:
      used = min(self._num_steps, self._rows) * self._num_streams
      arrays = {
          "frames": self._frames[:used],
          "actions": self._actions[:used],
          "rewards": self._rewards[:used],
          "flags": self._flags[:used],
          "valid": self._valid[:used],
      }
      if self._tree is not None:
        arrays["priorities"] = self._tree.leaves(used)
      state = {
          "num_steps": self._num_steps,
          "num_valid": self._num_valid,
          "learner_step": self._learner_step,
          "max_priority": self._max_priority,
          "in_episode": self._in_episode.tolist(),
          "episode_length": self._episode_length.tolist(),
          "rng": self._rng.bit_generator.state,
      }
      return checkpoint_lib.write(directory, self.config(), state, arrays, checksum=checksum)

  def restore(self, directory):
    """Loads the latest checkpoint of ``directory`` into this buffer (same layout required).

    Raises:
      ReplayCheckpointError: if the checkpoint is missing, truncated or corrupted.
      ValueError: if it was written by a buffer of another layout.
    """
    config, state, arrays = checkpoint_lib.read(directory)
    mine = self.config()
    layout = ("capacity", "frame_shape", "stack_size", "num_streams", "n_step", "prioritized",
              "action_shape", "action_dtype", "frame_dtype")
    diff = {key: (config[key], mine[key]) for key in layout if config[key] != mine[key]}
    if diff:
      raise ValueError(
          f"checkpoint in {directory} has another layout (saved, this buffer): {diff}.")
    with self._lock:
      used = min(state["num_steps"], self._rows) * self._num_streams
      expected = {"frames": self._frames, "actions": self._actions, "rewards": self._rewards,
                  "flags": self._flags, "valid": self._valid}
      if self._tree is not None:
        expected["priorities"] = self._tree.leaves()
      for name, target in expected.items():
        source = arrays.get(name)
        if source is None:
          raise checkpoint_lib.ReplayCheckpointError(
              f"checkpoint in {directory} has no array {name!r}.")
        if source.shape != (used,) + target.shape[1:] or source.dtype != target.dtype:
          raise checkpoint_lib.ReplayCheckpointError(
              f"checkpoint array {name} has shape {source.shape} dtype {source.dtype}, expected "
              f"{(used,) + target.shape[1:]} {target.dtype}.")
      valid_count = int(np.count_nonzero(arrays["valid"]))
      if valid_count != int(state["num_valid"]):
        raise checkpoint_lib.ReplayCheckpointError(
            f"checkpoint in {directory} is inconsistent: {valid_count} valid flags but num_valid "
            f"{state['num_valid']}.")
      expected.pop("priorities", None)
      for name, target in expected.items():
        if self._written:
          # Never-written arrays are still zero (and their pages uncommitted): skip the fill.
          target[used:] = 0
        target[:used] = arrays[name]
      self._frames[self._capacity] = 0
      if self._tree is not None:
        self._tree.rebuild(arrays["priorities"])
      self._num_steps = int(state["num_steps"])
      self._num_valid = valid_count
      # Checkpoints from before set_learner_step counted sampled batches as beta's clock.
      self._learner_step = int(state.get("learner_step", state.get("num_batches", 0)))
      self._max_priority = float(state["max_priority"])
      self._in_episode = np.array(state["in_episode"], dtype=bool)
      self._episode_length = np.array(state["episode_length"], dtype=np.int64)
      self._rng.bit_generator.state = state["rng"]
      self._written = True

  @classmethod
  def from_checkpoint(cls, directory):
    """Builds a buffer with the saved layout and restores the latest checkpoint of ``directory``."""
    config = dict(checkpoint_lib.read_config(directory))
    config["frame_shape"] = tuple(config["frame_shape"])
    config["action_shape"] = tuple(config["action_shape"])
    config["action_dtype"] = np.dtype(config["action_dtype"])
    config["frame_dtype"] = np.dtype(config["frame_dtype"])
    buffer = cls(**config)
    buffer.restore(directory)
    return buffer


def _as_stream_array(name, value, streams, dtype):
  array = np.asarray(value)
  if streams == 1 and array.ndim == 0:
    array = array.reshape(1)
  if array.shape != (streams,):
    checks.reject(f"{name} shape", array.shape, f"({streams},) (num_streams)")
  return array.astype(dtype, copy=False)
