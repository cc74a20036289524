"""FrameStack against a plain list-of-frames reference."""

import numpy as np
import pytest

from tfgap.envs.core import FrameStack


@pytest.mark.parametrize("frame_shape,k", [((84, 84, 1), 4), ((84, 84, 1), 3), ((10, 10, 3), 3),
                                           ((6, 6, 1), 4), ((5, 7, 2), 2), ((8, 8, 3), 1)])
def test_frame_stack_matches_reference(frame_shape, k):
  rng = np.random.RandomState(0)
  n = 3
  stack = FrameStack(n, frame_shape, k)
  zeros = np.zeros(frame_shape, np.uint8)
  ref = [[zeros] * k for _ in range(n)]
  for t in range(15):
    frames = rng.randint(0, 256, size=(n,) + frame_shape).astype(np.uint8)
    if t % 5 == 0:
      stack.begin(1, frames[1])
      ref[1] = [zeros] * (k - 1) + [frames[1]]
    elif t % 3 == 0:
      stack.push_all(frames)
      ref = [r[1:] + [frames[i]] for i, r in enumerate(ref)]
    else:
      stack.push(2, frames[2])
      ref[2] = ref[2][1:] + [frames[2]]
    want = np.stack([np.concatenate(r, axis=-1) for r in ref])
    got = stack.observation()
    np.testing.assert_array_equal(got, want)
    # Observations are copies: the next push must not change them.
    kept = got.copy()
    stack.push_all(frames)
    ref = [r[1:] + [frames[i]] for i, r in enumerate(ref)]
    np.testing.assert_array_equal(got, kept)


def test_capped_episode_is_flagged_truncated_and_counted():
  import types  # pylint: disable=g-import-not-at-top
  from tf_agents.specs import array_spec  # pylint: disable=g-import-not-at-top
  from tests.agents import pixel_task  # pylint: disable=g-import-not-at-top
  from tfgap.envs import core  # pylint: disable=g-import-not-at-top
  from tfgap.launch import runner  # pylint: disable=g-import-not-at-top
  # Entry 0's game lasts 10 steps but the cap is 3; entry 1's game ends by itself after 2.
  games = [pixel_task.BandGame(0, episode_length=10), pixel_task.BandGame(1, episode_length=2)]
  env = core.SerialEnv(
      games, suite="test", name="band", seed=0, mode="eval", protocol={},
      frame_shape=(12, 12, 1), stack_size=2,
      action_spec=array_spec.BoundedArraySpec((), np.int64, 0, 2, name="action"),
      batched=True, max_episode_steps=3)
  env.reset()
  for _ in range(3):
    env.step(np.zeros(2, np.int64))
  episodes = sorted(env.pop_episode_stats(), key=lambda e: e["env_id"])
  assert [(e["env_id"], e["length"], e["truncated"]) for e in episodes] == [
      (0, 3, True), (1, 2, False)]
  # The Runner counts them into the record's train_truncated: in 4 more steps entry 0 is capped
  # again (FIRST, then 3 steps) and entry 1 ends one game by itself.
  for _ in range(4):
    env.step(np.zeros(2, np.int64))
  fake = types.SimpleNamespace(env=env, env_steps=0,
                               summaries=types.SimpleNamespace(scalars=lambda *a: None))
  stats = runner.PhaseStats([], [], 0, 0.0)
  collect = runner.Runner._collect_episodes  # pylint: disable=protected-access
  collect(fake, stats, env.pop_episode_stats(), 7)
  assert stats.truncated == 1 and len(stats.returns) == 2
  env.close()
