"""tfgap.launch.experiment (one place builds a run) and Runner behaviours built on it."""

import json
import pathlib

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.agents import pixel_task  # noqa: F401  (registers @tests.make_band_env with gin)
from tests.launch.test_train import BASE
from tests.launch.test_train import make_runner
from tests.launch.helpers import read_metrics
from tfgap.launch import experiment
from tfgap.launch import train


def test_run_config_reads_runner_bindings_and_rejects_bad_values():
  train.parse_config([], ["Runner.game = 'Breakout'", "Runner.num_iterations = 3"])
  config = experiment.configured(seed=4)
  assert (config.game, config.num_iterations, config.seed) == ("Breakout", 3, 4)
  with pytest.raises(ValueError, match=r"Runner.training_steps=0 is not accepted; accepted: an "
                                       r"integer >= 1"):
    experiment.configured(training_steps=0)
  with pytest.raises(ValueError, match=r"Runner.agent='rainbw'.*Did you mean 'rainbow'"):
    experiment.configured(agent="rainbw")
  with pytest.raises(ValueError, match=r"pruning_fractions"):
    experiment.configured(pruning_fractions=(0.8, 0.2))


def test_build_gives_env_network_agent_and_replay_laid_out_together():
  train.parse_config([], BASE + ["Runner.num_envs = 2"])
  parts = experiment.build(experiment.configured())
  try:
    assert parts.env.batched and parts.env.num_envs == 2
    assert parts.eval_env is not None  # BASE evaluates 4 episodes.
    assert parts.replay.num_streams == 2 and parts.replay.n_step == parts.agent.n_step
    assert parts.network is parts.agent.q_network and parts.network.bottleneck_name == "gap"
    assert (parts.suite, parts.game) == ("test", "band")  # A custom env_fn's own names.
  finally:
    parts.close()


def test_pruning_schedule_is_spread_over_the_run_with_one_agent_build(monkeypatch):
  from tfgap import agents  # pylint: disable=g-import-not-at-top
  built = []
  original = agents.DQNAgent.__init__

  def counting_init(self, *args, **kwargs):
    built.append(1)
    original(self, *args, **kwargs)

  monkeypatch.setattr(agents.DQNAgent, "__init__", counting_init)
  train.parse_config([], BASE + [
      "build_q_network.bottleneck = 'pruned'", "Runner.num_iterations = 4",
      "Runner.training_steps = 500", "DQNAgent.min_replay_history = 100",
      "DQNAgent.update_period = 2"])
  parts = experiment.build(experiment.configured())
  try:
    assert len(built) == 1
    # (4 * 500 - 100) / 2 = 950 updates; 20% .. 80% of them, frequency capped at updates // 10.
    wrapper = [l for l in parts.network._flatten_layers() if hasattr(l, "pruning_schedule")][0]  # pylint: disable=protected-access
    assert wrapper.pruning_schedule.begin_step == 190
    assert wrapper.pruning_schedule.frequency == 95
    assert wrapper.pruning_schedule.end_step == 190 + 95 * 6
    copy = parts.network.copy()
    copy.create_variables()
    copied = [l for l in copy._flatten_layers() if hasattr(l, "pruning_schedule")][0]  # pylint: disable=protected-access
    assert copied.pruning_schedule.begin_step == 190
  finally:
    parts.close()


def test_load_config_rebuilds_a_finished_runs_network(tmp_path):
  root = tmp_path / "run"
  runner = make_runner(root, ["Runner.num_iterations = 1"])
  runner.run()
  gin.clear_config()
  config = experiment.load_config(root / "config.gin")
  assert config.num_iterations == 1 and callable(config.env_fn)
  env = experiment.make_env(config, "eval")
  assert (env.suite, env.name, env.mode) == ("test", "band", "eval")
  network = experiment.make_network(config, env)
  network.create_variables()
  assert [v.shape for v in network.variables] == [v.shape for v in runner.network.variables]
  env.close()


def test_load_config_names_a_file_that_is_not_gin(tmp_path):
  path = tmp_path / "config.gin"
  path.write_bytes(b"\xff\xfe not gin")
  with pytest.raises(ValueError, match="config.gin is not a UTF-8 gin file"):
    experiment.load_config(path)


def test_dormant_period_and_eval_period_are_honoured(tmp_path):
  root = tmp_path / "run"
  runner = make_runner(root, ["Runner.num_iterations = 3", "Runner.eval_period = 2",
                              "Runner.dormant_period = 10", "Runner.dormant_batch_size = 0"])
  records = runner.run()
  # Evaluation after iteration 2 (period) and after the last one, not after the first.
  assert [len(r["eval_returns"]) for r in records] == [0, 4, 4]
  assert [r["eval_return"] is None for r in records] == [True, False, False]
  # No per-iteration probe (batch size 0), but every 10th update measures dormant neurons.
  assert not any(k.startswith("dormant/") for r in records for k in r)
  steps = []
  for path in (root / "train").glob("events.out.tfevents.*"):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      if any(v.tag == "dormant/all/0" for v in event.summary.value):
        steps.append(event.step)
  updates = records[-1]["train_steps"]
  assert len(steps) == updates // 10 > 0


def test_resume_reseeds_the_training_environment(tmp_path, monkeypatch):
  root = tmp_path / "run"
  make_runner(root, ["Runner.num_iterations = 1"]).run()
  seeds = []
  original = experiment.make_env

  def recording_make_env(config, mode, **kwargs):
    env = original(config, mode, **kwargs)
    seeds.append((mode, env.seed if hasattr(env, "seed") else kwargs.get("seed")))
    return env

  monkeypatch.setattr(experiment, "make_env", recording_make_env)
  make_runner(root, ["Runner.num_iterations = 2"]).run()
  # Built with the run's seed, then rebuilt for iteration 1 with seed + 1,000 * 1.
  assert seeds[0] == ("train", 0) and ("train", 1000) in seeds
  assert [m["iteration"] for m in read_metrics(root)] == [0, 1]


def test_damaged_metrics_line_is_rebuilt_from_its_checkpoint(tmp_path, capsys):
  root = tmp_path / "run"
  make_runner(root, ["Runner.num_iterations = 2"]).run()
  lines = (root / "metrics.jsonl").read_text().splitlines()
  lines[1] = lines[1][:20]  # Iteration 1's line cut short; checkpoint 1 holds its record.
  (root / "metrics.jsonl").write_text("\n".join(lines) + "\n")
  make_runner(root, ["Runner.num_iterations = 3"]).run()
  err = capsys.readouterr().err
  assert "damaged lines [2]" in err and "iterations [1] rebuilt" in err
  metrics = read_metrics(root)
  assert [m["iteration"] for m in metrics] == [0, 1, 2]
  assert metrics[1]["env_steps"] == 300


@pytest.mark.slow
def test_procgen_trains_through_the_runner(tmp_path):
  root = tmp_path / "procgen"
  train.parse_config(["procgen.gin"], [
      "Runner.game = 'coinrun'", "Runner.num_iterations = 1", "Runner.training_steps = 120",
      "Runner.evaluation_steps = 0", "Runner.replay_capacity = 1000",
      "Runner.progress_bar = False", "Runner.export_policies = False",
      "Runner.dormant_batch_size = 16", "DQNAgent.min_replay_history = 80",
      "DQNAgent.update_period = 4",
      # The Nature encoder: procgen.gin's Impala is ~10x the compute per update on a CPU.
      "ENCODER = 'nature'"])
  records = train.Runner(str(root)).run()
  record = records[0]
  assert (record["suite"], record["game"]) == ("procgen", "coinrun")
  assert record["train_steps"] == (120 - 80) // 4 + 1 and np.isfinite(record["loss"])
  assert "dormant/phi/0" in record
  state = json.loads((root / "checkpoints" / "ckpt-000000" / "state.json").read_text())
  assert state["record"]["iteration"] == 0
  assert pathlib.Path(root / "config.gin").read_text().count("coinrun") == 1


def test_score_source_follows_dopamine_per_suite():
  assert experiment.RunConfig(suite="atari").score_source == "train"  # continuous_train
  assert experiment.RunConfig(suite="procgen", evaluation_episodes=5).score_source == "train"
  assert experiment.RunConfig(suite="atari100k", evaluation_episodes=100).score_source == "eval"
  assert experiment.RunConfig(suite="atari100k").score_source == "train"  # Nothing else to use.
  assert experiment.RunConfig().evaluation_steps == 0  # No evaluation phase by default.
  with pytest.raises(ValueError, match=r"Runner.score='eval' is not accepted"):
    experiment.RunConfig(score="eval")


@pytest.mark.parametrize("score", ["auto", "train"])
def test_records_carry_the_score_and_its_source(tmp_path, score):
  records = make_runner(tmp_path / "run", ["Runner.num_iterations = 1",
                                           f"Runner.score = '{score}'"]).run()
  record = records[0]
  source = "eval" if score == "auto" else "train"  # The band env evaluates; its suite is 'test'.
  assert record["score_source"] == source
  assert record["score"] == record[f"{source}_return"] is not None
