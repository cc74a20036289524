"""SAC through tfgap.launch.train: outputs, resume, NaN stop, export, bad action spaces, configs.

The fast cases train on a small continuous pixel task (`make_aim_env`, a real tfgap environment:
the frame shows where to aim, the reward is how close the action is); one slow case trains on
real DeepMind Control frames (MuJoCo rendering) with a tiny budget.
"""

import json
import pathlib

import gin
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import array_spec

from tests.agents import pixel_task  # noqa: F401  (registers @tests.make_band_env with gin)
from tests.launch import helpers
from tfgap.envs import core
from tfgap.launch import common
from tfgap.launch import experiment
from tfgap.launch import train

REPO = pathlib.Path(__file__).resolve().parents[2]


class AimGame:
  """A lit column at a random x; the action (in [-1, 1]) should point at it. One band per step,
  `episode_length` steps per episode (terminal). Reward 1 - |action - target| / 2."""

  def __init__(self, seed, size=12, episode_length=8):
    self._rng = np.random.default_rng(seed)
    self.size, self.episode_length = size, episode_length
    self._col = 0
    self._t = 0

  def _frame(self):
    frame = np.zeros((self.size, self.size, 3), np.uint8)
    frame[:, self._col] = 255
    return frame

  def _draw(self):
    self._col = int(self._rng.integers(self.size))

  def reset(self):
    self._t = 0
    self._draw()
    return self._frame()

  def step(self, action):
    target = 2.0 * self._col / (self.size - 1) - 1.0
    reward = 1.0 - abs(float(np.asarray(action).reshape(-1)[0]) - target) / 2.0
    self._t += 1
    self._draw()
    return self._frame(), reward, self._t >= self.episode_length, False, False

  def close(self):
    pass


def make_aim_env(mode="train", num_envs=1, seed=0, size=12, episode_length=8, stack_size=2):
  games = [AimGame(seed + i, size, episode_length) for i in range(num_envs)]
  spec = array_spec.BoundedArraySpec((2,), np.float32, -1.0, 1.0, name="action")
  return core.SerialEnv(games, suite="test", name="aim", seed=seed, mode=mode, protocol={},
                        frame_shape=(size, size, 3), stack_size=stack_size, action_spec=spec,
                        batched=num_envs > 1)


gin.external_configurable(make_aim_env, module="tests")

BASE = [
    "Runner.env_fn = @tests.make_aim_env",
    "Runner.num_iterations = 2",
    "Runner.training_steps = 60",
    "Runner.evaluation_episodes = 2",
    "Runner.replay_capacity = 1000",
    "Runner.progress_bar = False",
    "Runner.export_policies = False",
    "Runner.dormant_batch_size = 16",
    "Runner.summary_period = 20",
    "SACAgent.min_replay_history = 40",
    "SACAgent.batch_size = 8",
    "build_sac_network.head_units = (16, 16)",
    "build_sac_network.feature_dim = 8",
    "BOTTLENECK = 'gap'",
]


def make_runner(root, extra=(), force=False):
  gin.clear_config()
  train.parse_config(["sac.gin"], BASE + list(extra))
  return train.Runner(str(root), force=force)


def test_sac_run_writes_everything_and_its_policy_acts_the_same_without_tfgap(tmp_path, capsys):
  root = tmp_path / "run"
  runner = make_runner(root, ["Runner.export_policies = True"])
  assert runner.agent.settings.batch_size == 8
  records = runner.run()
  metrics = helpers.read_metrics(root)
  assert metrics == json.loads(json.dumps(records))
  assert [m["env_steps"] for m in metrics] == [60, 120]
  # One update per agent step from step 40 on.
  assert [m["train_steps"] for m in metrics] == [21, 81]
  last = metrics[-1]
  assert last["agent"] == "sac" and last["encoder"] == "sac" and last["bottleneck"] == "gap"
  assert last["epsilon"] is None and last["temperature"] > 0
  assert len(last["eval_returns"]) == 2 and last["score_source"] == "eval"
  assert "dormant/phi/0" in last and "dormant/psi/0" in last
  assert {"loss", "sac/critic", "sac/actor", "sac/alpha", "sac/temperature",
          "episode_return"} <= helpers.event_tags(root / "train")
  # The stored actions are float vectors inside the bounds (uniform warm-up, then the policy).
  stored = runner.replay.sample(64)["action"]
  assert stored.dtype == np.float32 and stored.shape == (64, 2)
  assert np.all(np.abs(stored) <= 1.0)
  out = capsys.readouterr().out
  assert str(root / "policies" / "iter_000001") in out

  observations = np.random.default_rng(0).integers(0, 256, (5, 12, 12, 6), dtype=np.uint8)
  loaded = helpers.saved_policy_actions(root / "policies" / "iter_000001", observations, tmp_path)
  expected = runner.agent.act(observations, greedy=True)
  np.testing.assert_allclose(loaded, expected, rtol=1e-5, atol=1e-5)
  assert np.all(np.abs(loaded) <= 1.0)


def test_sac_checkpoint_restores_identical_state(tmp_path):
  root = tmp_path / "run"
  first = make_runner(root, ["Runner.num_iterations = 1"])
  first.run()
  second = make_runner(root, ["Runner.num_iterations = 1"])
  start, _ = second.restore()
  assert start == 1
  for key, item in first.agent.checkpoint_items().items():
    if isinstance(item, tf.Variable):
      np.testing.assert_array_equal(item.numpy(), second.agent.checkpoint_items()[key].numpy())
  for key in ("q_network", "target_q_network"):
    for x, y in zip(first.agent.checkpoint_items()[key].variables,
                    second.agent.checkpoint_items()[key].variables):
      np.testing.assert_array_equal(x.numpy(), y.numpy())
  opt_a = first.agent.optimizer.variables()
  opt_b = second.agent.optimizer.variables()
  for x, y in zip(opt_a, opt_b):
    np.testing.assert_array_equal(x.numpy(), y.numpy())
  np.testing.assert_array_equal(first.agent.update_rng.state.numpy(),
                                second.agent.update_rng.state.numpy())
  assert second.replay.num_sampleable == first.replay.num_sampleable
  # Rerunning with a longer budget resumes after the checkpoint.
  records = make_runner(root, ["Runner.num_iterations = 2"]).run()
  assert [r["iteration"] for r in records] == [1]
  assert [m["train_steps"] for m in helpers.read_metrics(root)] == [21, 81]


def test_sac_nan_loss_stops_the_run_keeping_the_last_checkpoint(tmp_path):
  root = tmp_path / "run"
  runner = make_runner(root, ["SACAgent.min_replay_history = 65", "SACAgent.learning_rate = 1e30",
                              "Runner.num_iterations = 3"])
  with pytest.raises(train.NaNLossError, match=r"iteration 1\).*ckpt-000000"):
    runner.run()
  assert sorted(p.name for p in (root / "checkpoints").iterdir()) == ["ckpt-000000"]


def test_discrete_suite_for_sac_and_continuous_for_dqn_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match=r"Runner.agent='sac'.*discrete actions.*'test'"):
    make_runner(tmp_path / "a", ["Runner.env_fn = @tests.make_band_env"])
  gin.clear_config()
  train.parse_config(["dqn.gin"], ["Runner.env_fn = @tests.make_aim_env",
                                   "Runner.progress_bar = False"])
  with pytest.raises(ValueError, match=r"Runner.agent='dqn'.*continuous actions.*'sac'"):
    train.Runner(str(tmp_path / "b"))


def test_sac_config_composes_with_bottleneck_and_width_files():
  from tf_agents.specs import tensor_spec  # pylint: disable=g-import-not-at-top
  registered = experiment.register()
  obs = tensor_spec.BoundedTensorSpec((84, 84, 9), tf.uint8, 0, 255)
  act = tensor_spec.BoundedTensorSpec((6,), tf.float32, -1.0, 1.0)
  seen = {}
  for bottleneck in ("bottleneck_flatten.gin", "bottleneck_gap.gin", "bottleneck_softmoe.gin"):
    gin.clear_config()
    train.parse_config(["sac.gin", bottleneck], ["WIDTH_SCALE = 2.0"])
    config = experiment.configured()
    assert (config.suite, config.agent) == ("dmc", "sac")
    net = registered["build_sac_network"](obs, act)
    seen[net.bottleneck_name] = net
    assert net.encoder_name == "sac" and net.width_scale == 2.0
    assert net.head_units == (1024, 1024)
  # 84x84 SAME: 42x42x64 features; flatten feeds them all to each 50-unit feature layer.
  assert seen["flatten"].bottleneck_dim == 42 * 42 * 64
  assert seen["gap"].bottleneck_dim == 64
  common.register_gin()


@pytest.mark.slow
def test_sac_trains_on_real_dmc_frames(tmp_path):
  gin.clear_config()
  train.parse_config(["sac.gin", "bottleneck_gap.gin"], [
      "Runner.game = 'cartpole-swingup'", "Runner.num_iterations = 1",
      "Runner.training_steps = 40", "Runner.evaluation_episodes = 1",
      "Runner.replay_capacity = 500", "Runner.progress_bar = False",
      "Runner.dormant_batch_size = 8", "SACAgent.min_replay_history = 30",
      "SACAgent.batch_size = 4", "build_sac_network.head_units = (32, 32)",
      "Runner.env_kwargs = {'shadow_size': 512}", "Runner.eval_env_kwargs = {'shadow_size': 512}"])
  runner = train.Runner(str(tmp_path / "run"))
  assert runner.env.observation_spec().shape == (84, 84, 9)
  records = runner.run()
  assert records[-1]["train_steps"] == 11 and records[-1]["eval_return"] is not None
  assert (tmp_path / "run" / "policies" / "iter_000000").exists()
