"""Atari and Atari100K on real ALE: protocol settings, step types, rewards, stacks."""

import inspect

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from tfgap import envs
from tfgap.envs import atari

FIRST, MID, LAST = int(ts.StepType.FIRST), int(ts.StepType.MID), int(ts.StepType.LAST)
BACKENDS = ("gymnasium", "vector")


def _vector_ok(backend):
  """Overrides letting Atari100K run on the vector backend: no no-op starts (gymnasium only)."""
  return {"noop_max": 0} if backend == "vector" else {}


def _run(env, actions):
  """Steps a batched env through `actions` [T, n]; returns the list of time steps."""
  return [env.step(np.asarray(a, np.int64)) for a in actions]


@pytest.mark.parametrize("suite", ["atari", "atari100k"])
@pytest.mark.parametrize("num_envs,backend", [(1, "auto"), (2, "auto"), (2, "gymnasium"),
                                              (2, "vector"), (1, "vector")])
def test_shapes_dtypes_and_zero_padded_first_observation(suite, num_envs, backend):
  env = envs.make(suite, "Breakout", num_envs=num_envs, backend=backend, **_vector_ok(backend))
  try:
    assert env.observation_spec().shape == (84, 84, 4)
    assert env.observation_spec().dtype == np.uint8
    assert env.action_spec().dtype == np.int64 and env.action_spec().maximum == 3
    assert env.frame_shape == (84, 84, 1) and env.stack_size == 4
    assert env.batched == (num_envs > 1)
    first = env.reset()
    obs = first.observation if num_envs > 1 else first.observation[None]
    assert obs.shape == (num_envs, 84, 84, 4) and obs.dtype == np.uint8
    assert np.all(first.step_type == FIRST)
    # Oldest three frames are zero padding, the newest is the real screen.
    assert not obs[..., :3].any()
    assert obs[..., 3].reshape(num_envs, -1).max(axis=1).min() > 0
    kept = obs.copy()
    nxt = env.step(np.zeros(num_envs, np.int64) if num_envs > 1 else np.int64(0))
    # A returned observation is the caller's: later steps must not write into it.
    np.testing.assert_array_equal(obs, kept)
    obs2 = nxt.observation if num_envs > 1 else nxt.observation[None]
    # The stack shifts: the reset frame moves one slot to the left.
    np.testing.assert_array_equal(obs2[..., 2], obs[..., 3])
    assert not obs2[..., :2].any()
  finally:
    env.close()


@pytest.mark.parametrize("suite,expected", [("atari", 0.25), ("atari100k", 0.0)])
def test_sticky_actions_really_applied_in_ale(suite, expected):
  env = envs.make(suite, "Pong", num_envs=2, backend="gymnasium")
  try:
    for game in env.games:
      assert game.ale.getFloat("repeat_action_probability") == pytest.approx(expected)
      assert game.ale.getInt("frame_skip") == 1  # Skipping happens in the wrapper, once.
  finally:
    env.close()
  vec = envs.make(suite, "Pong", num_envs=2, backend="vector", **_vector_ok("vector"))
  try:
    assert vec.vector_kwargs["repeat_action_probability"] == pytest.approx(expected)
  finally:
    vec.close()


def test_vector_env_gets_every_argument_explicitly():
  from ale_py.vector_env import AtariVectorEnv
  params = [p for p in inspect.signature(AtariVectorEnv.__init__).parameters if p != "self"]
  protocol = envs.protocols.resolve("atari", "train", {})
  kwargs = atari.vector_env_kwargs("pong", 2, protocol)
  assert sorted(kwargs) == sorted(params)
  # The AtariVectorEnv defaults that contradict the protocol are all overridden.
  assert kwargs["repeat_action_probability"] == 0.25
  assert kwargs["noop_max"] == 0
  assert kwargs["use_fire_reset"] is False
  assert kwargs["reward_clipping"] is False
  assert kwargs["episodic_life"] is False
  assert kwargs["max_num_frames_per_episode"] == 27_000 * 4
  assert kwargs["frameskip"] == 4 and kwargs["maxpool"] and kwargs["grayscale"]


@pytest.mark.parametrize("game", ["Pong", "SpaceInvaders"])
def test_backends_are_pixel_identical_without_sticky_actions(game):
  # Same seeds, same actions, no sticky-action randomness: both paths must show the same game.
  g = envs.make("atari", game, num_envs=2, backend="gymnasium", sticky_actions=0.0)
  v = envs.make("atari", game, num_envs=2, backend="vector", sticky_actions=0.0)
  try:
    assert g.observation_spec() == v.observation_spec()
    assert g.action_spec() == v.action_spec()
    np.testing.assert_array_equal(g.reset().observation, v.reset().observation)
    rng = np.random.RandomState(1)
    for _ in range(120):
      action = rng.randint(0, g.action_spec().maximum + 1, size=2)
      a, b = g.step(action), v.step(action)
      np.testing.assert_array_equal(a.observation, b.observation)
      np.testing.assert_array_equal(a.reward, b.reward)
      np.testing.assert_array_equal(a.step_type, b.step_type)
  finally:
    g.close()
    v.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_reward_clipping_in_train_only_and_raw_scores_in_stats(backend):
  steps = 150
  rewards, stats = {}, {}
  for mode in ("train", "eval"):
    env = envs.make("atari", "SpaceInvaders", num_envs=2, seed=3, mode=mode, backend=backend,
                    max_episode_steps=steps)
    env.reset()
    rng = np.random.RandomState(0)
    out = _run(env, rng.randint(0, 6, size=(steps, 2)))
    rewards[mode] = np.stack([t.reward for t in out])
    stats[mode] = env.pop_episode_stats()
    env.close()
  assert rewards["eval"].max() > 1.0  # SpaceInvaders scores 5-30 per invader.
  np.testing.assert_array_equal(rewards["train"], np.clip(rewards["eval"], -1.0, 1.0))
  # The truncated episodes report the raw score whatever the mode.
  for mode in ("train", "eval"):
    assert sorted(s["env_id"] for s in stats[mode]) == [0, 1]
    for s in stats[mode]:
      assert s["length"] == steps
      assert s["return"] == pytest.approx(rewards["eval"][:, s["env_id"]].sum())


@pytest.mark.parametrize("backend", BACKENDS)
def test_episode_cap_truncates_with_discount_one(backend):
  env = envs.make("atari", "Pong", num_envs=2, backend=backend, max_episode_steps=30)
  try:
    env.reset()
    out = _run(env, np.zeros((62, 2)))
    types = np.stack([t.step_type for t in out])
    assert np.all(types[29] == LAST) and np.all(types[30] == FIRST) and np.all(types[60] == LAST)
    assert np.all(types[:29] == MID)
    assert np.all(out[29].discount == 1.0)
    assert [s["length"] for s in env.pop_episode_stats()] == [30, 30, 30, 30]
  finally:
    env.close()


def _breakout_actions(t):
  # FIRE now and then to launch the ball, NOOP otherwise: the paddle misses and a life is lost
  # within a few dozen steps.
  return 1 if t % 10 == 0 else 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_life_loss_is_terminal_only_in_atari100k(backend):
  results = {}
  for suite in ("atari", "atari100k"):
    env = envs.make(suite, "Breakout", num_envs=2, backend=backend, sticky_actions=0.0,
                    **_vector_ok(backend))
    prev = env.reset()
    events = []
    for t in range(120):
      step = env.step(np.full(2, _breakout_actions(t), np.int64))
      if step.step_type[0] == LAST:
        events.append(("LAST", float(step.discount[0]), len(env.pop_episode_stats())))
      elif step.step_type[0] == FIRST:
        padded = not step.observation[0, ..., :3].any()
        events.append(("FIRST", padded, prev.step_type[0] == LAST))
      prev = step
    results[suite] = events
    lives = env.games[0].ale.lives() if backend == "gymnasium" else env._lives[0]  # pylint: disable=protected-access
    assert lives <= 2  # Lives were lost in both protocols.
    env.close()
  # 120 steps: three lives or more lost, no game over yet (5 lives of ~25-30 steps each).
  assert results["atari"] == []
  lasts = [e for e in results["atari100k"] if e[0] == "LAST"]
  firsts = [e for e in results["atari100k"] if e[0] == "FIRST"]
  assert len(lasts) >= 3
  # Discount 0, and no finished episode reported: the game goes on.
  assert all(discount == 0.0 and popped == 0 for _, discount, popped in lasts)
  # Each LAST is followed by a zero-padded FIRST.
  assert len(firsts) >= len(lasts) - 1 and all(padded and after for _, padded, after in firsts)


def test_atari100k_restart_after_life_loss_keeps_the_game():
  env = envs.make("atari100k", "Breakout", backend="gymnasium", sticky_actions=0.0)
  try:
    env.reset()
    ale = env.games[0].ale
    lives_at_start = ale.lives()
    t = 0
    step = None
    while step is None or step.step_type != LAST:
      step = env.step(np.int64(_breakout_actions(t)))
      t += 1
    assert ale.lives() == lives_at_start - 1
    restart = env.step(np.int64(1))
    assert restart.step_type == FIRST
    # No reset: the same screen continues, with a fresh zero-padded stack.
    np.testing.assert_array_equal(restart.observation[..., 3], step.observation[..., 3])
    assert not restart.observation[..., :3].any()
    assert ale.lives() == lives_at_start - 1
  finally:
    env.close()


def test_atari100k_counts_episodes_per_game_over():
  env = envs.make("atari100k", "Breakout", num_envs=2, sticky_actions=0.0)
  try:
    env.reset()
    lasts = 0
    stats = []
    t = 0
    while len(stats) < 2 and t < 2000:
      step = env.step(np.full(2, _breakout_actions(t), np.int64))
      lasts += int(step.step_type[0] == LAST)
      stats += [s for s in env.pop_episode_stats() if s["env_id"] == 0]
      t += 1
    # Two full games of 5 lives each on entry 0: 10 learner episodes, 2 reported episodes.
    assert len(stats) == 2 and lasts == 10
    assert all(s["length"] > 100 for s in stats)
  finally:
    env.close()


def test_double_close_is_harmless_and_step_after_close_raises():
  for backend in BACKENDS:
    env = envs.make("atari", "Pong", num_envs=2, backend=backend)
    env.reset()
    env.close()
    env.close()
    assert env.closed
    with pytest.raises(RuntimeError, match="closed"):
      env.step(np.zeros(2, np.int64))


def test_wrong_batch_of_actions_is_rejected():
  env = envs.make("atari", "Pong", num_envs=2)
  try:
    env.reset()
    with pytest.raises(ValueError, match="batch of 2 actions"):
      env.step(np.zeros(3, np.int64))
  finally:
    env.close()


@pytest.mark.parametrize("num_envs", [1, 2])
def test_make_tf_steps_in_tensorflow(num_envs):
  tf_env = envs.make_tf("atari", "Pong", num_envs=num_envs)
  try:
    assert tf_env.batch_size == num_envs
    first = tf_env.reset()
    assert first.observation.shape == (num_envs, 84, 84, 4)
    assert first.observation.dtype == tf.uint8
    step = tf.function(lambda: tf_env.step(tf.zeros([num_envs], tf.int64)))()
    assert step.step_type.numpy().tolist() == [MID] * num_envs
    assert tf_env.pyenv.frame_shape == (84, 84, 1)
    assert tf_env.pyenv.pop_episode_stats() == []
  finally:
    tf_env.pyenv.close()


def _noops_at_reset(env, resets):
  """Agent steps of NOOP each reset played before the first observation (from ALE's frame count)."""
  counts = []
  for _ in range(resets):
    env.reset()
    frames = [game.ale.getEpisodeFrameNumber() for game in env.games]
    assert all(f % 4 == 0 for f in frames)  # Whole agent steps: frame skip 4.
    counts.extend(f // 4 for f in frames)
  return counts


def test_atari100k_starts_games_with_up_to_30_noop_agent_steps():
  # Dopamine's DataEfficientAtariRunner (max_noops=30): randint(0, 30) agent steps of NOOP at
  # the start of every train and eval game; the Machado protocol ("atari") has none.
  for mode in ("train", "eval"):
    env = envs.make("atari100k", "Pong", num_envs=2, seed=4, mode=mode)
    try:
      assert env.protocol["noop_max"] == 30 and env.protocol["backend"] == "gymnasium"
      counts = _noops_at_reset(env, 10)
      assert all(0 <= c < 30 for c in counts) and len(set(counts)) > 5, counts
    finally:
      env.close()
  # The same seed gives the same no-op counts.
  again = envs.make("atari100k", "Pong", num_envs=2, seed=4, mode="eval")
  try:
    assert _noops_at_reset(again, 10) == counts
  finally:
    again.close()
  atari = envs.make("atari", "Pong", num_envs=2, backend="gymnasium")
  try:
    assert atari.protocol["noop_max"] == 0 and _noops_at_reset(atari, 3) == [0] * 6
  finally:
    atari.close()


def test_noop_steps_are_hidden_from_the_learner_and_the_episode_stats():
  env = envs.make("atari100k", "Pong", seed=1, max_episode_steps=5, sticky_actions=0.0)
  try:
    first = env.reset()
    noops = env.games[0].ale.getEpisodeFrameNumber() // 4
    assert noops > 0  # Seed 1 draws some no-ops.
    # The first observation is the screen after the no-ops, zero-padded as after any reset.
    assert first.step_type == FIRST and not first.observation[..., :3].any()
    for _ in range(5):
      step = env.step(np.int64(0))
    assert step.step_type == LAST  # Truncated after 5 agent steps: the no-ops did not count.
    stats = env.pop_episode_stats()
    assert [s["length"] for s in stats] == [5]
    assert env.games[0].ale.getEpisodeFrameNumber() == 4 * (noops + 5)
  finally:
    env.close()


def test_noop_starts_need_the_gymnasium_backend():
  with pytest.raises(ValueError, match=r"backend='vector' is not accepted with noop_max=30"):
    envs.make("atari100k", "Pong", num_envs=2, backend="vector")
  env = envs.make("atari", "Pong", num_envs=2, noop_max=10)  # "auto" picks gymnasium.
  try:
    assert env.protocol["backend"] == "gymnasium"
  finally:
    env.close()
