"""ReplayBuffer contents against a brute-force reference that keeps full stacked observations."""

import numpy as np
import pytest

from tests.replay import reference
from tfgap.replay import FIRST, LAST, MID, ReplayBuffer


def _check_against_reference(buffer, streams, gamma):
  expected = reference.expected_transitions(
      streams.history, buffer.num_streams, buffer.capacity // buffer.num_streams,
      buffer.stack_size, buffer.n_step, gamma)
  ids = buffer.sampleable_indices()
  assert sorted(ids.tolist()) == sorted(expected)
  assert len(buffer) == len(expected)
  if not expected:
    return 0
  got = buffer.get(ids)
  for i, item_id in enumerate(ids.tolist()):
    want = expected[item_id]
    np.testing.assert_array_equal(got["observation"][i], want["observation"])
    np.testing.assert_array_equal(got["next_observation"][i], want["next_observation"])
    assert got["action"][i] == want["action"]
    np.testing.assert_allclose(got["reward"][i], want["reward"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["discount"][i], want["discount"], rtol=1e-6)
  np.testing.assert_array_equal(got["indices"], ids)
  return len(expected)


@pytest.mark.parametrize(
    "num_streams, n_step, stack_size, rows, channels, give_stack",
    [
        (1, 1, 1, 5, 1, True),  # DQN-like, smallest legal buffer.
        (3, 3, 4, 12, 1, True),  # Rainbow-like, frequent wrap-around.
        (2, 10, 4, 20, 1, False),  # DER-like n=10, newest frames only.
        (2, 3, 3, 9, 3, True),  # RGB frames (DMC-like), 3-frame stacks.
        (4, 2, 2, 25, 2, False),  # Several streams, long buffer.
    ])
def test_contents_match_bruteforce_reference(num_streams, n_step, stack_size, rows, channels,
                                             give_stack):
  gamma = 0.9
  streams = reference.EpisodeStreams(num_streams, (3, 2, channels), stack_size, seed=rows)
  buffer = ReplayBuffer(rows * num_streams, (3, 2, channels), stack_size=stack_size,
                        num_streams=num_streams, n_step=n_step, gamma=gamma, seed=0)
  checked = 0
  for t in range(6 * rows + 7):
    step = streams.step()
    obs = step["stack"] if give_stack else step["frame"]
    buffer.add(obs, step["action"], step["reward"], step["step_type"], step["discount"])
    if t % 3 == 0 or t > 6 * rows:
      checked += _check_against_reference(buffer, streams, gamma)
  # The run wrapped the buffer several times and met every kind of episode end.
  assert buffer.num_added == (6 * rows + 7) * num_streams
  kinds = {(r["step_type"], r["discount"]) for h in streams.history for r in h}
  assert {(LAST, 0.0), (LAST, 1.0), (MID, 1.0), (FIRST, 1.0)} <= kinds
  assert checked > 50


def test_zero_padding_at_episode_start():
  buffer = ReplayBuffer(64, (2, 2, 1), stack_size=4, num_streams=1, n_step=1, gamma=1.0)
  frames = [np.full((2, 2, 1), v, np.uint8) for v in range(1, 20)]
  buffer.add_first(frames[0])
  buffer.add(frames[1], 0, 1.0, MID)
  buffer.add(frames[2], 1, 1.0, LAST, 0.0)  # Terminal: frames[2] is the final observation.
  buffer.add(frames[3], 9, 0.0, FIRST)  # Auto-reset: action ignored.
  buffer.add(frames[4], 2, 1.0, MID)
  buffer.add(frames[5], 3, 1.0, MID)
  batch = buffer.get(buffer.sampleable_indices())
  stacks = batch["observation"][:, 0, 0, :].tolist()
  assert stacks == [[0, 0, 0, 1], [0, 0, 1, 2], [0, 0, 0, 4], [0, 0, 4, 5]]
  nexts = batch["next_observation"][:, 0, 0, :].tolist()
  assert nexts == [[0, 0, 1, 2], [0, 1, 2, 3], [0, 0, 4, 5], [0, 4, 5, 6]]
  assert batch["discount"].tolist() == [1.0, 0.0, 1.0, 1.0]
  assert batch["action"].tolist() == [0, 1, 2, 3]


def test_truncation_bootstraps_and_manual_reset_closes_episode():
  gamma = 0.5
  buffer = ReplayBuffer(64, (1, 1, 1), stack_size=2, num_streams=1, n_step=3, gamma=gamma)
  f = lambda v: np.full((1, 1, 1), v, np.uint8)
  buffer.add_first(f(1))
  buffer.add(f(2), 0, 1.0, MID)
  buffer.add(f(3), 0, 2.0, LAST, 1.0)  # Time limit: not terminal.
  buffer.add(f(4), 0, 0.0, FIRST)
  buffer.add(f(5), 0, 4.0, MID)
  buffer.add(f(6), 0, 8.0, FIRST)  # Manual reset: closes the episode at f(5), truncated.
  batch = buffer.get(buffer.sampleable_indices())
  np.testing.assert_allclose(batch["reward"], [1.0 + gamma * 2.0, 2.0, 4.0])
  np.testing.assert_allclose(batch["discount"], [gamma ** 2, gamma, gamma])
  assert batch["next_observation"][:, 0, 0, :].tolist() == [[2, 3], [2, 3], [4, 5]]


def test_window_incomplete_items_are_not_sampleable():
  buffer = ReplayBuffer(100, (1, 1, 1), stack_size=1, num_streams=2, n_step=3, gamma=0.9)
  buffer.add_first(np.zeros((2, 1, 1, 1), np.uint8))
  for _ in range(3):
    assert len(buffer) == 0
    buffer.add(np.ones((2, 1, 1, 1), np.uint8), [0, 0], [1.0, 1.0], [MID, MID])
  assert len(buffer) == 2  # Only step 0 of each stream has its 3 following steps.
  with pytest.raises(ValueError,
                     match="batch_size=3 is not accepted; accepted: at most the 2 sampleable"):
    buffer.sample(3)


def test_add_time_step_accepts_tf_agents_time_steps():
  from tf_agents.trajectories import time_step as ts
  assert (FIRST, MID, LAST) == (int(ts.StepType.FIRST), int(ts.StepType.MID),
                                int(ts.StepType.LAST))
  buffer = ReplayBuffer(40, (2, 2, 1), stack_size=2, num_streams=2, n_step=1, gamma=0.9)
  obs = np.arange(16, dtype=np.uint8).reshape(2, 2, 2, 2)
  buffer.add_time_step(ts.restart(obs, batch_size=2))
  buffer.add_time_step(ts.transition(obs + 1, reward=np.ones(2, np.float32),
                                     discount=np.ones(2, np.float32)), np.array([3, 4]))
  batch = buffer.get(buffer.sampleable_indices())
  assert batch["action"].tolist() == [3, 4]
  # Stored the newest channel only; the first stack is zero-padded.
  np.testing.assert_array_equal(batch["observation"][..., 0], 0)
  np.testing.assert_array_equal(batch["observation"][..., 1], obs[..., 1])
  np.testing.assert_array_equal(batch["next_observation"][..., 0], obs[..., 1])
  np.testing.assert_array_equal(batch["next_observation"][..., 1], obs[..., 1] + 1)


def test_sample_returns_the_documented_batch():
  buffer = ReplayBuffer(200, (4, 3, 1), stack_size=4, num_streams=2, n_step=3, gamma=0.99,
                        seed=1)
  streams = reference.EpisodeStreams(2, (4, 3, 1), 4, seed=3)
  for _ in range(60):
    step = streams.step()
    buffer.add(step["stack"], step["action"], step["reward"], step["step_type"],
               step["discount"])
  batch = buffer.sample(16)
  assert set(batch) == {"observation", "action", "reward", "discount", "next_observation",
                        "indices", "weights"}
  assert batch["observation"].shape == (16, 4, 3, 4)
  assert batch["observation"].dtype == np.uint8
  assert batch["next_observation"].shape == (16, 4, 3, 4)
  assert batch["action"].shape == (16,) and batch["action"].dtype == np.int32
  for key in ("reward", "discount", "weights"):
    assert batch[key].shape == (16,) and batch[key].dtype == np.float32
  assert batch["indices"].dtype == np.int64
  np.testing.assert_array_equal(batch["weights"], 1.0)
  assert set(batch["indices"].tolist()) <= set(buffer.sampleable_indices().tolist())
  again = buffer.get(batch["indices"])
  for key in ("observation", "next_observation", "reward", "discount", "action"):
    np.testing.assert_array_equal(batch[key], again[key])


def test_uniform_sampling_is_uniform_over_sampleable_items():
  buffer = ReplayBuffer(64, (1, 1, 1), stack_size=2, num_streams=1, n_step=1, gamma=0.9, seed=5)
  buffer.add_first(np.zeros((1, 1, 1), np.uint8))
  for t in range(20):
    buffer.add(np.zeros((1, 1, 1), np.uint8), 0, 0.0, LAST if t % 4 == 3 else MID)
    if t % 4 == 3:
      buffer.add_first(np.zeros((1, 1, 1), np.uint8))
  ids = buffer.sampleable_indices()
  counts = dict.fromkeys(ids.tolist(), 0)
  for _ in range(2000):
    for i in buffer.sample(10)["indices"].tolist():
      counts[i] += 1  # KeyError if an unsampleable item came out.
  observed = np.array(list(counts.values()), float)
  expected = observed.sum() / len(observed)
  chi2 = ((observed - expected) ** 2 / expected).sum()
  assert chi2 < 2.0 * len(observed)  # ~dof on average; 2x dof is far in the tail.


def test_memory_per_transition_fits_a_million_atari_frames():
  # 20k steps prioritized (the heavier mode); 1M would be the same arrays, 50x longer.
  buffer = ReplayBuffer(20_000, (84, 84, 1), stack_size=4, num_streams=4, n_step=3,
                        prioritized=True)
  assert buffer.bytes_per_transition < 7200
  assert buffer.bytes_per_transition >= 84 * 84
  per_million = buffer.bytes_per_transition * 1_000_000
  assert per_million < 8 * 2 ** 30
  uniform = ReplayBuffer(20_000, (84, 84, 1), stack_size=4, num_streams=4, n_step=3)
  assert uniform.nbytes < buffer.nbytes


def _bad(**overrides):
  kwargs = dict(capacity=100, frame_shape=(2, 2, 1), stack_size=4, num_streams=1, n_step=3,
                gamma=0.9, prioritized=True, alpha=0.6)
  kwargs.update(overrides)
  return ReplayBuffer(**kwargs)


@pytest.mark.parametrize("overrides, needle", [
    (dict(capacity=0), "capacity"),
    (dict(capacity=-5), "capacity"),
    (dict(capacity=6), r"capacity=6 is not accepted; accepted: at least .* = 7 steps"),
    (dict(n_step=0), "n_step"),
    (dict(gamma=1.5),
     r"gamma=1.5 is not accepted; accepted: a finite number >= 0.0 and <= 1.0\."),
    (dict(gamma=-0.1), "gamma"),
    (dict(alpha=-1.0), "alpha"),
    (dict(beta=2.0), "beta"),
    (dict(stack_size=0), "stack_size"),
    (dict(num_streams=0), "num_streams"),
    (dict(frame_shape=(84, 84)), "frame_shape"),
])
def test_bad_constructor_arguments(overrides, needle):
  with pytest.raises(ValueError, match=needle):
    _bad(**overrides)


@pytest.mark.parametrize("obs, actions, step_types, needle", [
    (np.zeros((2, 2, 2, 1), np.uint8), [0, 0], [FIRST, FIRST],
     r"observations shape=\(2, 2, 2, 1\) is not accepted"),
    (np.zeros((1, 2, 2, 3), np.uint8), [0], [FIRST],
     r"observations shape=\(1, 2, 2, 3\) is not accepted"),
    (np.zeros((1, 2, 2, 1), np.float32), [0], [FIRST], "dtype=.float32. is not accepted"),
    (np.zeros((1, 2, 2, 1), np.uint8), [0], [MID], "no episode in progress"),
    (np.zeros((1, 2, 2, 1), np.uint8), [0], [3], r"step_types=\[3\] is not accepted"),
    (np.zeros((1, 2, 2, 1), np.uint8), [0, 1], [FIRST],
     r"actions shape=\(2,\) is not accepted"),
])
def test_bad_add_arguments(obs, actions, step_types, needle):
  buffer = _bad()
  with pytest.raises(ValueError, match=needle):
    buffer.add(obs, actions, np.zeros(len(step_types)), step_types)
  assert buffer.num_added == 0


def test_bad_sample_arguments():
  buffer = _bad(prioritized=False)
  with pytest.raises(ValueError, match="batch_size=0 is not accepted; accepted: an integer >= 1"):
    buffer.sample(0)
  with pytest.raises(ValueError, match="at most the 0 sampleable"):
    buffer.sample(1)
  with pytest.raises(ValueError, match="prioritized=True"):
    buffer.update_priorities([0], [1.0])


@pytest.mark.parametrize("channels, stack_size", [(1, 4), (3, 3), (2, 1)])
def test_opencv_and_numpy_stacking_agree(monkeypatch, channels, stack_size):
  from tfgap.replay import buffer as buffer_module
  assert buffer_module._cv2 is not None  # pylint: disable=protected-access
  buffer = ReplayBuffer(120, (6, 5, channels), stack_size=stack_size, num_streams=2, n_step=2,
                        gamma=0.9)
  streams = reference.EpisodeStreams(2, (6, 5, channels), stack_size, seed=11)
  for _ in range(40):
    step = streams.step()
    buffer.add(step["frame"], step["action"], step["reward"], step["step_type"],
               step["discount"])
  ids = buffer.sampleable_indices()
  fast = buffer.get(ids)
  monkeypatch.setattr(buffer_module, "_cv2", None)
  slow = buffer.get(ids)
  for key in ("observation", "next_observation"):
    assert fast[key].flags["C_CONTIGUOUS"] and slow[key].flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(fast[key], slow[key])
