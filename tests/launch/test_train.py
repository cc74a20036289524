"""tfgap.launch.train: outputs, resume, config checks, crash safety, NaN stop, export, configs.

Most cases train DQN on the pixel task of tests/agents/pixel_task.py (a real tfgap environment,
bound through gin as `Runner.env_fn = @tests.make_band_env`) with tiny budgets; one slow case runs
the packaged demo config on real Atari.
"""

import json
import pathlib
import signal
import subprocess
import sys
import time

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.agents import pixel_task  # noqa: F401  (registers @tests.make_band_env with gin)
from tests.launch import helpers
from tfgap.launch import common
from tfgap.launch import train

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = REPO / "tfgap" / "launch" / "configs"

BASE = [
    "Runner.agent = 'dqn'",
    "Runner.env_fn = @tests.make_band_env",
    "Runner.num_iterations = 2",
    "Runner.training_steps = 150",
    "Runner.evaluation_episodes = 4",
    "Runner.replay_capacity = 2000",
    "Runner.progress_bar = False",
    "Runner.export_policies = False",
    "Runner.dormant_batch_size = 32",
    "DQNAgent.min_replay_history = 100",
    "DQNAgent.update_period = 2",
    "DQNAgent.target_update_period = 40",
    "DQNAgent.epsilon_decay_period = 100",
    "DQNAgent.learning_rate = 1e-3",
    "build_q_network.bottleneck = 'gap'",
]

DESIGN_FIELDS = ("iteration", "env_steps", "train_steps", "suite", "game", "seed", "agent",
                 "encoder", "bottleneck", "width_scale", "train_return", "eval_return",
                 "eval_returns", "loss", "steps_per_sec")


def make_runner(root, extra=(), force=False):
  gin.clear_config()
  train.parse_config([], BASE + list(extra))
  return train.Runner(str(root), force=force)


def checkpoint_names(root):
  return sorted(p.name for p in (pathlib.Path(root) / "checkpoints").iterdir())


def optimizer_variables(agent):
  variables = agent.optimizer.variables
  return variables() if callable(variables) else variables


@pytest.mark.slow
def test_run_writes_metrics_summaries_checkpoints_and_a_policy_that_acts_the_same_elsewhere(
    tmp_path, capsys):
  root = tmp_path / "run"
  runner = make_runner(root, ["Runner.num_iterations = 3", "Runner.export_policies = True",
                              "Runner.summary_period = 50"])
  records = runner.run()

  metrics = helpers.read_metrics(root)
  assert [m["iteration"] for m in metrics] == [0, 1, 2]
  assert metrics == json.loads(json.dumps(records))
  for m in metrics:
    for field in DESIGN_FIELDS:
      assert field in m, field
    assert len(m["eval_returns"]) == 4
    assert m["eval_return"] == pytest.approx(np.mean(m["eval_returns"]))
  assert [m["env_steps"] for m in metrics] == [150, 300, 450]
  # Updates every 2 steps from step 100 on: (450 - 100) / 2 + 1.
  assert metrics[-1]["train_steps"] == 176
  assert metrics[-1]["agent"] == "dqn" and metrics[-1]["bottleneck"] == "gap"
  assert "dormant/phi/0" in metrics[-1]

  tags = helpers.event_tags(root / "train")
  # Per-step tags and per-iteration means under their own names (one meaning per tag).
  assert {"episode_return", "loss", "epsilon", "steps_per_sec", "iteration/train_return",
          "iteration/loss", "dormant/all/0.1"} <= tags
  assert "train_return" not in tags
  assert "eval_return" in helpers.event_tags(root / "eval")
  assert checkpoint_names(root) == ["ckpt-000001", "ckpt-000002"]  # The last 2 are kept.
  policies = sorted(p.name for p in (root / "policies").iterdir())
  assert policies == ["iter_000000", "iter_000001", "iter_000002"]
  out = capsys.readouterr().out
  assert str(root / "metrics.jsonl") in out and str(root / "policies" / "iter_000002") in out

  # The exported greedy policy acts as the agent's policy does, in a fresh process.
  observations = np.random.default_rng(0).integers(0, 256, (16, 12, 12, 2), dtype=np.uint8)
  loaded = helpers.saved_policy_actions(root / "policies" / "iter_000002", observations, tmp_path)
  n = observations.shape[0]
  from tf_agents.trajectories import time_step as ts  # pylint: disable=g-import-not-at-top
  step = ts.TimeStep(tf.ones([n], tf.int32), tf.zeros([n]), tf.ones([n]),
                     tf.constant(observations))
  expected = runner.agent.policy.action(step).action.numpy()
  np.testing.assert_array_equal(loaded, expected)


def test_restore_is_identical_and_a_changed_config_needs_force(tmp_path):
  root = tmp_path / "run"
  first = make_runner(root, ["Runner.num_iterations = 1"])
  first.run()

  second = make_runner(root, ["Runner.num_iterations = 1"])
  assert second.restore()[0] == 1
  for a, b in [(first.agent.q_network, second.agent.q_network),
               (first.agent.target_q_network, second.agent.target_q_network)]:
    for va, vb in zip(a.variables, b.variables):
      np.testing.assert_array_equal(va.numpy(), vb.numpy())
  opt_a, opt_b = optimizer_variables(first.agent), optimizer_variables(second.agent)
  assert len(opt_a) == len(opt_b) > 1
  for va, vb in zip(opt_a, opt_b):
    np.testing.assert_array_equal(va.numpy(), vb.numpy())
  assert int(second.agent.train_step_counter) == int(first.agent.train_step_counter) == 26
  assert second.env_steps == first.env_steps == 150
  np.testing.assert_array_equal(second.agent.act_rng.state.numpy(),
                                first.agent.act_rng.state.numpy())
  assert second._np_rng.bit_generator.state == first._np_rng.bit_generator.state  # pylint: disable=protected-access
  ids = first.replay.sampleable_indices()
  np.testing.assert_array_equal(second.replay.sampleable_indices(), ids)
  assert second.replay.num_added == first.replay.num_added
  got, want = second.replay.get(ids), first.replay.get(ids)
  for key in ("observation", "action", "reward", "discount", "next_observation"):
    np.testing.assert_array_equal(got[key], want[key])

  # Another setting in the same root_dir is another run: refused, then accepted with force.
  with pytest.raises(train.ConfigMismatchError, match="learning_rate"):
    make_runner(root, ["Runner.num_iterations = 1", "DQNAgent.learning_rate = 0.01"]).run()
  records = make_runner(root, ["Runner.num_iterations = 1", "DQNAgent.learning_rate = 0.01"],
                        force=True).run()
  assert records == []  # Already finished: nothing to redo.
  # More iterations extend the run's budget without --force; fewer are another run.
  records = make_runner(root, ["Runner.num_iterations = 2",
                               "DQNAgent.learning_rate = 0.01"]).run()
  assert [r["iteration"] for r in records] == [1]
  assert [m["env_steps"] for m in helpers.read_metrics(root)] == [150, 300]
  with pytest.raises(train.ConfigMismatchError, match="num_iterations"):
    make_runner(root, ["Runner.num_iterations = 1", "DQNAgent.learning_rate = 0.01"]).run()


def test_corrupt_latest_checkpoint_is_skipped_with_a_warning(tmp_path, capsys):
  root = tmp_path / "run"
  make_runner(root).run()
  assert checkpoint_names(root) == ["ckpt-000000", "ckpt-000001"]
  latest = root / "checkpoints" / "ckpt-000001"
  victim = max((p for p in latest.rglob("*") if p.is_file() and p.name != "MANIFEST.json"),
               key=lambda p: p.stat().st_size)
  with open(victim, "r+b") as f:
    f.truncate(victim.stat().st_size // 2)
  capsys.readouterr()

  records = make_runner(root, ["Runner.num_iterations = 3"], force=True).run()
  assert "skipping unusable checkpoint" in capsys.readouterr().err
  assert [r["iteration"] for r in records] == [1, 2]
  metrics = helpers.read_metrics(root)
  assert [m["iteration"] for m in metrics] == [0, 1, 2]  # iteration 1 redone, written once
  assert [m["env_steps"] for m in metrics] == [150, 300, 450]


def test_nan_loss_stops_the_run_naming_the_step_and_keeping_the_last_checkpoint(tmp_path):
  root = tmp_path / "run"
  # No updates in iteration 0 (learning starts at step 160), then an absurd step size.
  runner = make_runner(root, ["DQNAgent.min_replay_history = 160", "DQNAgent.learning_rate = 1e30",
                              "Runner.num_iterations = 3"])
  with pytest.raises(train.NaNLossError, match=r"at update \d+ \(env step \d+, iteration 1\)"
                     ".*ckpt-000000"):
    runner.run()
  assert checkpoint_names(root) == ["ckpt-000000"]
  assert [m["iteration"] for m in helpers.read_metrics(root)] == [0]


@pytest.mark.parametrize("binding,message", [
    ("Runner.no_such_setting = 1", "no_such_setting"),
    ("build_q_network.bottleneck = 'bottle'", "bottle"),
    ("build_q_network.head_units = (-5,)", "head_units"),
    ("Runner.training_steps = -10", "training_steps"),
    ("Runner.agent = 'ppo'", "ppo"),
])
def test_bad_settings_fail_before_training(tmp_path, binding, message):
  root = tmp_path / "run"
  with pytest.raises(ValueError, match=message):
    train.train(str(root), [], BASE + [binding])
  assert not (root / "checkpoints").exists()


def test_cli_reports_bad_config_on_stderr(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "tfgap.launch.train", "--root_dir", str(tmp_path / "run"),
       "--gin_file", "dqn.gin", "--gin_bindings", "DQNAgent.learning_rat = 1.0"],
      capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
  assert result.returncode == 1
  assert "ERROR" in result.stderr and "learning_rat" in result.stderr


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_completes(tmp_path):
  root = tmp_path / "run"
  config = tmp_path / "band.gin"
  config.write_text("import tests.agents.pixel_task\n" + "\n".join(
      BASE + ["Runner.num_iterations = 4", "Runner.training_steps = 200"]) + "\n")
  command = [sys.executable, "-m", "tfgap.launch.train", "--root_dir", str(root),
             "--gin_file", str(config)]
  proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 240
    while not (root / "checkpoints" / "ckpt-000000").exists():
      assert proc.poll() is None, "training ended before its first checkpoint"
      assert time.time() < deadline, "no checkpoint within the time limit"
      time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
  finally:
    proc.kill()
    proc.wait()
  assert proc.returncode == -signal.SIGKILL

  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Resuming from" in result.stdout
  metrics = helpers.read_metrics(root)
  assert [m["iteration"] for m in metrics] == [0, 1, 2, 3]
  assert [m["env_steps"] for m in metrics] == [200, 400, 600, 800]
  assert checkpoint_names(root) == ["ckpt-000002", "ckpt-000003"]
  assert not list((root / "checkpoints").glob(".tmp-*"))


def _config_sets():
  settings = ["nature.gin", "impala.gin"]
  bottlenecks = sorted(p.name for p in CONFIGS.glob("bottleneck_*.gin"))
  return [(agent, enc, bott) for agent in ("dqn.gin", "rainbow.gin") for enc in settings
          for bott in bottlenecks]


def test_every_packaged_config_parses_and_builds_its_network():
  from tf_agents.specs import tensor_spec  # pylint: disable=g-import-not-at-top
  registered = common.register_gin()
  obs = tensor_spec.BoundedTensorSpec((84, 84, 4), tf.uint8, 0, 255)
  act = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 5)
  for base in ("der.gin", "procgen.gin", "demo.gin"):
    gin.clear_config()
    train.parse_config([base], [])
  seen = set()
  for agent, encoder, bottleneck in _config_sets():
    gin.clear_config()
    train.parse_config([agent, encoder, bottleneck], [])
    kind = "build_q_network" if agent == "dqn.gin" else "build_categorical_q_network"
    net = registered[kind](obs, act)
    seen.add((agent, net.encoder_name, net.bottleneck_name))
  assert len(seen) == 20  # 2 agents x 2 encoders x 5 bottlenecks, each as its files say


@pytest.mark.slow
def test_demo_config_runs_on_real_atari(tmp_path):
  root = tmp_path / "demo"
  gin.clear_config()
  train.parse_config(["demo.gin"], [
      "Runner.num_iterations = 1", "Runner.training_steps = 260",
      "DERAgent.min_replay_history = 200", "Runner.evaluation_episodes = 1",
      "Runner.eval_env_kwargs = {'max_episode_steps': 200}", "Runner.progress_bar = False"])
  records = train.Runner(str(root)).run()
  assert records[0]["suite"] == "atari100k" and records[0]["game"] == "Pong"
  assert records[0]["agent"] == "der" and records[0]["bottleneck"] == "gap"
  assert records[0]["train_steps"] == 61 and np.isfinite(records[0]["loss"])
  assert len(records[0]["eval_returns"]) == 1
  assert (root / "policies" / "iter_000000" / "saved_model.pb").exists()
  assert checkpoint_names(root) == ["ckpt-000000"]


def test_rainbow_with_pruned_bottleneck_prioritized_replay_and_export(tmp_path):
  root = tmp_path / "run"
  runner = make_runner(root, [
      "Runner.agent = 'rainbow'", "Runner.export_policies = True",
      "RainbowAgent.min_replay_history = 100", "RainbowAgent.update_period = 2",
      "RainbowAgent.target_update_period = 40", "RainbowAgent.epsilon_decay_period = 100",
      "RainbowAgent.learning_rate = 1e-3",
      "build_categorical_q_network.num_atoms = 11",
      "build_categorical_q_network.bottleneck = 'pruned'",
      "build_categorical_q_network.bottleneck_kwargs = {'target_sparsity': 0.8, "
      "'frequency': 10}",
      "ReplayBuffer.prioritized = True", "ReplayBuffer.alpha = 0.5"])
  records = runner.run()
  # The schedule spans 20%..80% of this run's 101 updates: the target is reached at the end.
  assert records[0]["sparsity"] < records[1]["sparsity"]
  assert records[1]["sparsity"] == pytest.approx(0.8, abs=0.01)
  assert records[1]["sparsity_target"] == pytest.approx(0.8)
  ids = runner.replay.sampleable_indices()
  assert len(np.unique(np.round(runner.replay.priorities(ids), 6))) > 10  # fed back
  assert (root / "policies" / "iter_000001" / "saved_model.pb").exists()


def test_batched_envs_and_evaluation_by_steps_finish_running_episodes(tmp_path):
  # Two training streams; evaluation by a 30-step budget over 2 environments whose episodes last
  # 10 steps (+1 reset step): one episode each ends before the budget, the episodes running at
  # the budget are played to their end, none is started after it.
  runner = make_runner(tmp_path / "run", [
      "Runner.num_envs = 2", "Runner.num_iterations = 1", "Runner.evaluation_episodes = None",
      "Runner.evaluation_steps = 30", "Runner.eval_num_envs = 2"])
  record = runner.run()[0]
  assert record["env_steps"] == 150 and runner.replay.num_streams == 2
  assert record["train_steps"] == (150 - 100) // 2 + 1
  assert len(record["eval_returns"]) == 4
  assert all(0.0 <= r <= 10.0 for r in record["eval_returns"])


class _UnevenEvalEnv:
  """Three evaluation envs: env 0 ends an episode (return 1) every step, envs 1 and 2 every
  fifth step (return 10). Observations are the real env's, so the agent can act on them."""

  batched, num_envs = True, 3

  def __init__(self, observation):
    self._observation = observation
    self._t = 0
    self._ended = []

  def reset(self):
    return self._observation

  def step(self, action):
    assert len(action) == 3
    self._t += 1
    self._ended.append({"env_id": 0, "return": 1.0, "length": 1})
    if self._t % 5 == 0:
      self._ended += [{"env_id": i, "return": 10.0, "length": 5} for i in (1, 2)]
    return self._observation

  def pop_episode_stats(self):
    ended, self._ended = self._ended, []
    return ended


def test_evaluation_episodes_are_split_over_envs_not_first_to_finish(tmp_path):
  from tfgap.launch import runner as runner_lib  # pylint: disable=g-import-not-at-top
  assert runner_lib._episode_quotas(4, 3).tolist() == [2, 1, 1]  # pylint: disable=protected-access
  assert runner_lib._episode_quotas(100, 1).tolist() == [100]  # pylint: disable=protected-access
  assert runner_lib._episode_quotas(None, 3) is None  # pylint: disable=protected-access
  runner = make_runner(tmp_path / "run", ["Runner.num_iterations = 1"])
  real = runner.eval_env.reset()
  frames = np.asarray(real.observation)
  frames = frames if runner.eval_env.batched else frames[None]
  observation = real._replace(observation=np.repeat(frames[:1], 3, axis=0))
  runner.eval_env = _UnevenEvalEnv(observation)
  runner.config = runner.config.replace(evaluation_episodes=4)
  stats = runner._eval_phase()  # pylint: disable=protected-access
  # Env 0's first two episodes and the first of envs 1 and 2; the first four episodes to end
  # would all be env 0's short ones (mean 1.0).
  assert sorted(stats.returns) == [1.0, 1.0, 10.0, 10.0]
  assert stats.steps == 5 * 3


@pytest.mark.parametrize("depth", [0, 2])
def test_updates_draw_prefetched_batches_and_the_thread_stops_before_checkpoints(tmp_path, depth):
  runner = make_runner(tmp_path / "run", [f"Runner.prefetch_depth = {depth}"])
  started, saves_while_sampling = [], []
  prefetch, save = runner.replay.prefetch, runner.replay.save

  def counting_prefetch(*args, **kwargs):
    started.append(prefetch(*args, **kwargs))
    return started[-1]

  def checked_save(*args, **kwargs):
    saves_while_sampling.append(any(p.thread.is_alive() for p in started))
    return save(*args, **kwargs)

  runner.replay.prefetch, runner.replay.save = counting_prefetch, checked_save
  records = runner.run()
  assert int(runner.agent.train_step_counter) > 0 and records[-1]["loss"] is not None
  # One prefetcher per training phase that updates (both iterations here), none when disabled.
  assert len(started) == (2 if depth else 0)
  assert saves_while_sampling == [False, False]
  assert not any(p.thread.is_alive() for p in started)
