"""Sparse training through tfgap.launch.train: gin switch, schedule, metrics and TensorBoard."""

import json
import pathlib

import gin
import numpy as np
import tensorflow as tf

from tests.agents import pixel_task  # noqa: F401  (registers @tests.make_band_env with gin)
from tfgap.launch import train
from tfgap.networks import sparse

BASE = [
    "Runner.agent = 'dqn'",
    "Runner.env_fn = @tests.make_band_env",
    "Runner.num_iterations = 2",
    "Runner.training_steps = 150",
    "Runner.evaluation_episodes = 0",
    "Runner.replay_capacity = 2000",
    "Runner.progress_bar = False",
    "Runner.export_policies = True",
    "DQNAgent.min_replay_history = 100",
    "DQNAgent.update_period = 2",
    "DQNAgent.target_update_period = 40",
    "DQNAgent.epsilon_decay_period = 100",
    "build_q_network.head_units = (32,)",
    "build_q_network.width_scale = 0.25",
]


def test_rigl_run_logs_parts_and_follows_the_run_length(tmp_path):
  gin.clear_config()
  train.parse_config(["sparse_rigl.gin"], BASE + [
      "build_q_network.bottleneck = %BOTTLENECK",
      "build_q_network.bottleneck_kwargs = %BOTTLENECK_KWARGS"])
  runner = train.Runner(str(tmp_path), force=False)
  layer = sparse.sparse_bottleneck(runner.agent.q_network)
  assert layer.method == "rigl" and layer.sparse_config["distribution"] == "erk"
  # 300 agent steps, 100 of warm-up, one update every 2 steps: 100 updates; end at 80%.
  assert layer.sparse_config["start_step"] == 0 and layer.sparse_config["end_step"] == 80
  assert layer.sparse_config["update_freq"] == 10
  masks0 = [m.numpy().copy() for m in layer.bookkeeping()]
  runner.run()
  masks = [m.numpy() for m in layer.bookkeeping()]
  assert any(not np.array_equal(a, b) for a, b in zip(masks0, masks))
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  for record in records:
    assert record["sparsity/phi"] == 0.0 and record["sparsity/bottleneck"] == 0.0
    assert 0.85 < record["sparsity/psi"] < 0.95
    assert abs(record["sparsity"] - 0.9) < 1e-3 and abs(record["sparsity_target"] - 0.9) < 1e-3
    assert record["live_params/psi"] > 0
  tags = set()
  for path in pathlib.Path(tmp_path).rglob("events.out.tfevents.*"):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      tags.update(v.tag for v in event.summary.value)
  assert {"sparsity/psi", "live_params/phi"} <= tags


def test_exported_policy_holds_zeros_not_masks_and_acts_as_the_trained_network(tmp_path):
  gin.clear_config()
  train.parse_config(["sparse_static.gin"], BASE + [
      "Runner.num_iterations = 1",
      "build_q_network.bottleneck = %BOTTLENECK",
      "build_q_network.bottleneck_kwargs = %BOTTLENECK_KWARGS"])
  runner = train.Runner(str(tmp_path))
  runner.run()
  import tensorflow_probability  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from tf_agents.trajectories import time_step as ts  # pylint: disable=g-import-not-at-top
  loaded = tf.saved_model.load(str(tmp_path / "policies" / "iter_000000"))
  names = [v.name for v in loaded.model_variables]
  assert names and not any("mask" in n for n in names)
  kernels = [v.numpy() for v in loaded.model_variables if v.shape.rank == 2]
  assert any((k == 0).mean() > 0.8 for k in kernels)  # psi's sparse kernels: zeros.
  obs = np.random.default_rng(0).integers(0, 256, (5, 12, 12, 2), dtype=np.uint8)
  step = ts.restart(tf.constant(obs), batch_size=5)
  expected = runner.agent.policy.action(step).action.numpy()
  np.testing.assert_array_equal(loaded.action(step).action.numpy(), expected)
