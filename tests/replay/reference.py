"""A brute-force replay reference for the tests: keeps every stacked observation in full.

It shares no code with tfgap.replay: stacks come from an env-style deque (zeros at each episode
start), and n-step transitions are computed from the full per-stream history.
"""

import collections

import numpy as np

FIRST, MID, LAST = 0, 1, 2


class EpisodeStreams:
  """Random episodes in ``num_streams`` streams, stepped like an auto-resetting batched env."""

  def __init__(self, num_streams, frame_shape, stack_size, seed, end_prob=0.15,
               abandon_prob=0.03):
    self.rng = np.random.default_rng(seed)
    self.num_streams = num_streams
    self.frame_shape = frame_shape
    self.stack_size = stack_size
    self.end_prob = end_prob
    self.abandon_prob = abandon_prob
    self.stacks = [None] * num_streams
    self.in_episode = np.zeros(num_streams, dtype=bool)
    # Per stream: list of dicts with step_type, frame, stack, action, reward, discount.
    self.history = [[] for _ in range(num_streams)]

  def _new_frame(self):
    return self.rng.integers(1, 256, size=self.frame_shape, dtype=np.uint8)

  def step(self):
    """Advances every stream one step; returns (stacks, newest frames, actions, rewards, types,
    discounts) as the buffer's add() takes them."""
    h, w, c = self.frame_shape
    out = {key: [] for key in ("stack", "frame", "action", "reward", "step_type", "discount")}
    for s in range(self.num_streams):
      frame = self._new_frame()
      action = int(self.rng.integers(0, 6))
      reward = float(self.rng.normal())
      discount = 1.0
      if not self.in_episode[s] or self.rng.random() < self.abandon_prob:
        step_type = FIRST
        reward = 0.0
        self.stacks[s] = collections.deque(
            [np.zeros(self.frame_shape, np.uint8)] * self.stack_size, maxlen=self.stack_size)
        self.in_episode[s] = True
      elif self.rng.random() < self.end_prob:
        step_type = LAST
        discount = 0.0 if self.rng.random() < 0.5 else 1.0
        self.in_episode[s] = False
      else:
        step_type = MID
      self.stacks[s].append(frame)
      stack = np.concatenate(list(self.stacks[s]), axis=-1)
      record = dict(step_type=step_type, frame=frame, stack=stack, action=action, reward=reward,
                    discount=discount)
      self.history[s].append(record)
      for key in out:
        out[key].append(record[key])
    return {key: np.array(value) for key, value in out.items()}


def expected_transitions(history, num_streams, rows, stack_size, n_step, gamma):
  """All transitions a replay of ``rows`` steps per stream should hold, keyed by item id.

  Item id = absolute step * num_streams + stream. Returns dict id -> dict(observation, action,
  reward, discount, next_observation).
  """
  out = {}
  for s in range(num_streams):
    steps = history[s]
    total = len(steps)
    oldest = total - rows
    is_end = [steps[t]["step_type"] == LAST or
              (t + 1 < total and steps[t + 1]["step_type"] == FIRST) for t in range(total)]
    episode_start = []
    start = 0
    for t in range(total):
      if steps[t]["step_type"] == FIRST:
        start = t
      episode_start.append(start)
    for t in range(max(oldest, 0), total):
      if is_end[t]:
        continue
      # Frames this item needs: its stack (back to the episode start) ...
      if max(episode_start[t], t - stack_size + 1) < oldest:
        continue
      reward = 0.0
      k = 0
      stopped_at_end = False
      for i in range(1, n_step + 1):
        if t + i >= total:
          break
        reward += gamma ** (i - 1) * steps[t + i]["reward"]
        k = i
        if is_end[t + i]:
          stopped_at_end = True
          break
      if not stopped_at_end and k < n_step:
        continue  # Window incomplete.
      terminal = stopped_at_end and steps[t + k]["step_type"] == LAST and (
          steps[t + k]["discount"] == 0.0)
      out[t * num_streams + s] = dict(
          observation=steps[t]["stack"], action=steps[t + 1]["action"], reward=reward,
          discount=0.0 if terminal else gamma ** k, next_observation=steps[t + k]["stack"])
  return out
