"""MinAtar on the real `minatar` package: specs, fidelity to the package, seeds, step types,
protocol settings, names, TF-Agents' driver, and a short training run through gin."""

import inspect
import json

import gin
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.policies import random_tf_policy
from tf_agents.trajectories import time_step as ts

from tfgap import envs
from tfgap.envs import games
from tfgap.envs import minatar_env

FIRST, MID, LAST = int(ts.StepType.FIRST), int(ts.StepType.MID), int(ts.StepType.LAST)
CHANNELS = {"asterix": 4, "breakout": 4, "freeway": 7, "seaquest": 10, "space_invaders": 6}


def paddle(obs):
  """Breakout's paddle column (channel 0, bottom row)."""
  return int(np.flatnonzero(obs[9, :, 0])[0])


def play(env, steps, seed=0):
  """Random actions for `steps` batched steps; returns the stacked observations, rewards, types."""
  rng = np.random.RandomState(seed)
  spec = env.action_spec()
  first = env.reset()
  obs, rewards, types = [first.observation], [first.reward], [first.step_type]
  for _ in range(steps):
    step = env.step(rng.randint(spec.minimum, spec.maximum + 1, size=(env.num_envs,)))
    obs.append(step.observation)
    rewards.append(step.reward)
    types.append(step.step_type)
  return np.stack(obs), np.stack(rewards), np.stack(types)


@pytest.mark.parametrize("game", games.MINATAR_GAMES)
def test_specs_and_binary_frames(game):
  env = envs.make("minatar", game, num_envs=2, seed=0)
  try:
    c = CHANNELS[game]
    assert env.observation_spec().shape == (10, 10, c)
    assert env.observation_spec().dtype == np.uint8
    assert (env.action_spec().minimum, env.action_spec().maximum) == (0, 5)
    assert env.frame_shape == (10, 10, c) and env.stack_size == 1
    obs, _, _ = play(env, 50)
    assert obs.shape == (51, 2, 10, 10, c)
    assert set(np.unique(obs)) == {0, 255}  # The encoders' /255 gives MinAtar's 0/1 back.
  finally:
    env.close()


def test_list_games_and_name_spellings():
  assert games.list_games("minatar") == sorted(CHANNELS)
  assert games.list_games("minatar") == sorted(envs.MINATAR_GAMES)
  for name in ("space_invaders", "SpaceInvaders", "space-invaders", "SPACE_INVADERS"):
    assert games.resolve_minatar_game(name) == "space_invaders"
  assert games.resolve_minatar_game("Breakout") == "breakout"


@pytest.mark.parametrize("name,match", [
    ("breakot", r"game='breakot' is not accepted; accepted: one of asterix, breakout, .*"
                r"Did you mean 'breakout'"),
    ("pong", r"game='pong' is not accepted; accepted: one of asterix, breakout"),
    (3, r"game=3 is not accepted"),
])
def test_unknown_game_names_the_close_matches(name, match):
  with pytest.raises(ValueError, match=match):
    envs.make("minatar", name)


def test_protocol_defaults_are_the_package_defaults_and_overrides_are_checked():
  import minatar  # pylint: disable=g-import-not-at-top
  params = inspect.signature(minatar.Environment).parameters
  env = envs.make("minatar", "asterix")
  try:
    assert env.protocol["sticky_actions"] == params["sticky_action_prob"].default == 0.1
    assert env.protocol["difficulty_ramping"] is params["difficulty_ramping"].default is True
    assert env.protocol["minimal_action_set"] is False
    assert env.protocol["clip_rewards"] is False
    # The package's own environment carries the settings.
    inner = env.games[0]._env  # pylint: disable=protected-access
    assert inner.sticky_action_prob == 0.1 and inner.env.ramping is True
  finally:
    env.close()
  with pytest.raises(ValueError, match="Did you mean 'sticky_actions'"):
    envs.make("minatar", "breakout", sticky_action=0.2)
  with pytest.raises(ValueError, match=r"sticky_actions=1.5 is not accepted"):
    envs.make("minatar", "breakout", sticky_actions=1.5)
  with pytest.raises(ValueError, match="difficulty_ramping=1 is not accepted"):
    envs.make("minatar", "breakout", difficulty_ramping=1)


def test_frames_and_rewards_are_the_packages():
  # The same RandomState seed and actions through the bare package give the same game.
  import minatar  # pylint: disable=g-import-not-at-top
  env = envs.make("minatar", "seaquest", seed=7)
  bare = minatar.Environment("seaquest")
  bare.seed(minatar_env.entry_seed(7, 0, "train"))
  try:
    bare.reset()
    first = env.reset()
    np.testing.assert_array_equal(first.observation, bare.state() * 255)
    rng = np.random.RandomState(1)
    episodes = 0
    for _ in range(400):
      action = rng.randint(6)
      step = env.step(action)
      if step.step_type == FIRST:
        bare.reset()
        episodes += 1
      else:
        reward, terminal = bare.act(action)
        assert step.reward == reward
        assert (step.step_type == LAST) == terminal
      np.testing.assert_array_equal(step.observation, bare.state() * 255)
    assert episodes >= 1
  finally:
    env.close()


def test_same_seed_same_episodes_other_seed_or_mode_differs():
  def run(**kwargs):
    env = envs.make("minatar", "asterix", num_envs=2, **kwargs)
    try:
      return play(env, 150)
    finally:
      env.close()

  a, b = run(seed=3), run(seed=3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(a[0][:, 0], a[0][:, 1])  # Entries play seed + 0 and seed + 1.
  assert not np.array_equal(a[0], run(seed=4)[0])
  assert not np.array_equal(a[0], run(seed=3, mode="eval")[0])


def test_step_types_raw_returns_and_time_limit():
  env = envs.make("minatar", "breakout", num_envs=3, seed=1)
  try:
    _, rewards, types = play(env, 600)
    # FIRST exactly after LAST, with reward 0; MinAtar terminals have discount 0.
    np.testing.assert_array_equal(types[1:] == FIRST, types[:-1] == LAST)
    assert np.all(rewards[types == FIRST] == 0)
    stats = env.pop_episode_stats()
    assert len(stats) == int((types == LAST).sum()) > 3
    for i in range(3):
      mine = [s for s in stats if s["env_id"] == i]
      lasts = np.flatnonzero(types[:, i] == LAST)
      starts = np.concatenate([[0], lasts[:-1] + 1])
      for s, begin, end in zip(mine, starts, lasts):
        assert s["return"] == pytest.approx(rewards[begin + 1:end + 1, i].sum())
        assert s["length"] == end - begin
  finally:
    env.close()
  env = envs.make("minatar", "freeway", max_episode_steps=20)  # Freeway alone lasts 2,500.
  try:
    env.reset()
    for _ in range(20):
      step = env.step(0)
    assert step.step_type == LAST and step.discount == 1.0  # A time limit, not a terminal.
    # Cut by the time limit: flagged truncated (the report flags such scores).
    assert env.pop_episode_stats() == [{"return": 0.0, "length": 20, "env_id": 0,
                                        "truncated": True}]
    assert env.step(0).step_type == FIRST
  finally:
    env.close()


def test_minimal_action_set_and_sticky_actions():
  env = envs.make("minatar", "breakout", minimal_action_set=True, sticky_actions=0.0)
  try:
    assert (env.action_spec().minimum, env.action_spec().maximum) == (0, 2)
    np.testing.assert_array_equal(env.action_set, [0, 1, 3])  # noop, left, right
    start = paddle(env.reset().observation)
    for _ in range(3):
      step = env.step(2)  # "right" in the minimal set.
    assert paddle(step.observation) == min(start + 3, 9)
  finally:
    env.close()
  # With sticky_actions=1 the package repeats its first "last action" (noop) forever.
  env = envs.make("minatar", "breakout", sticky_actions=1.0)
  try:
    first = env.reset().observation
    for _ in range(3):
      step = env.step(1)
    assert paddle(step.observation) == paddle(first)
  finally:
    env.close()


def test_stack_size_override_and_close():
  env = envs.make("minatar", "breakout", stack_size=2)
  first = env.reset().observation
  assert first.shape == (10, 10, 8) and not first[..., :4].any()  # Zero-padded at FIRST.
  step = env.step(0)
  np.testing.assert_array_equal(step.observation[..., :4], first[..., 4:])
  env.close()
  env.close()
  with pytest.raises(RuntimeError, match="closed"):
    env.step(0)


def test_driver_collects_with_a_random_policy():
  tf_env = envs.make_tf("minatar", "space_invaders", num_envs=3)
  try:
    policy = random_tf_policy.RandomTFPolicy(tf_env.time_step_spec(), tf_env.action_spec())
    seen = []
    driver = dynamic_step_driver.DynamicStepDriver(
        tf_env, policy, observers=[seen.append], num_steps=3 * 40)
    time_step, _ = driver.run()
    # The driver does not count LAST -> FIRST boundaries, and breakout episodes are short.
    assert len(seen) >= 40
    assert seen[-1].observation.dtype == tf.uint8
    assert seen[-1].observation.shape == (3, 10, 10, 6)
    assert time_step.step_type.shape == (3,)
  finally:
    tf_env.pyenv.close()


def test_short_training_run_through_minatar_gin(tmp_path):
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  root = tmp_path / "run"
  gin.clear_config()
  try:
    train.train(str(root), ["minatar.gin"], [
        "Runner.num_iterations = 1", "Runner.training_steps = 300",
        "Runner.replay_capacity = 1000", "Runner.progress_bar = False",
        "Runner.export_policies = False", "Runner.dormant_batch_size = 32",
        "DQNAgent.min_replay_history = 100", "DQNAgent.target_update_period = 50",
        "DQNAgent.epsilon_decay_period = 100", "BOTTLENECK = 'gap'", "WIDTH_SCALE = 2.0"])
  finally:
    gin.clear_config()
  (record,) = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]
  assert record["suite"] == "minatar" and record["game"] == "breakout"
  assert record["encoder"] == "minatar" and record["bottleneck"] == "gap"
  assert record["width_scale"] == 2.0
  assert record["env_steps"] == 300 and record["train_steps"] == 201
  assert np.isfinite(record["loss"])
