"""`python -m tfgap.launch.report` on synthetic run directories."""

import csv
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
from matplotlib import image as mpimg

from tests.analysis import synthetic_runs
from tests.analysis import tiny_nets
from tfgap.launch import report

REPS = 40
PNGS = ("aggregate_vs_width.png", "learning_curves.png", "dormant.png",
        "performance_profiles.png")
CSVS = ("raw_scores.csv", "game_scores.csv", "aggregates.csv", "learning_curves.csv",
        "dormant.csv", "probability_of_improvement.csv")


def _final(game, bottleneck, scale, seed):
  """A deterministic final score per run (gap improves with scale, flatten degrades)."""
  base = {"Pong": 0.0, "Breakout": 10.0, "AirRaid": 1000.0}[game]
  trend = scale if bottleneck == "gap" else 1.0 / scale
  return base + 5.0 * trend + seed


def _make_runs(root, seeds=(0, 1, 2)):
  for bottleneck in ("flatten", "gap"):
    for scale in (1.0, 2.0):
      for game in ("Pong", "Breakout", "AirRaid"):
        for seed in seeds:
          final = _final(game, bottleneck, scale, seed)
          synthetic_runs.write_run(root, game, seed, [final - 2.0, final - 1.0, final],
                                   bottleneck=bottleneck, width_scale=scale)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("runs"))
  _make_runs(root)
  broken = synthetic_runs.write_run(root, "Pong", 9, [1.0, 2.0], name="zz_broken", width_scale=4.0)
  with open(broken, "a", encoding="utf-8") as f:
    f.write('{"iteration": 2, "game": "Pong", "eval_return": \n')
  refs = os.path.join(root, "..", "refs.json")
  with open(refs, "w", encoding="utf-8") as f:
    json.dump({k: list(v) for k, v in synthetic_runs.REFERENCES.items()}, f)
  return root, broken, os.path.abspath(refs)


@pytest.fixture(scope="module")
def cli_result(runs_dir, tmp_path_factory):
  root, broken, refs = runs_dir
  out = str(tmp_path_factory.mktemp("report"))
  code = report.main([root, "--out", out, "--reps", str(REPS), "--references", refs])
  return code, out, broken


def _read_csv(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def test_report_writes_markdown_csvs_and_pngs(cli_result):
  code, out, _ = cli_result
  assert code == 0
  for name in PNGS:
    image = mpimg.imread(os.path.join(out, name))
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
  for name in CSVS:
    assert len(_read_csv(os.path.join(out, name))) > 0, name
  text = open(os.path.join(out, "report.md"), encoding="utf-8").read()
  for name in PNGS:
    assert f"]({name})" in text


def test_malformed_run_is_named_with_its_line(cli_result, capsys):
  _, out, broken = cli_result
  text = open(os.path.join(out, "report.md"), encoding="utf-8").read()
  assert f"{broken}:3: not valid JSON" in text
  raw = _read_csv(os.path.join(out, "raw_scores.csv"))
  assert all(r["path"] != broken for r in raw)
  assert {float(r["width_scale"]) for r in raw} == {1.0, 2.0}  # The broken x4 run is left out.


def test_games_without_reference_only_in_raw_tables(cli_result):
  _, out, _ = cli_result
  text = open(os.path.join(out, "report.md"), encoding="utf-8").read()
  assert "Games without reference scores" in text and "AirRaid" in text
  raw = _read_csv(os.path.join(out, "raw_scores.csv"))
  airraid = [r for r in raw if r["game"] == "AirRaid"]
  assert len(airraid) == 12 and all(r["normalized"] == "" for r in airraid)
  aggregates = _read_csv(os.path.join(out, "aggregates.csv"))
  assert len(aggregates) == 4 and all(r["games"] == "2" for r in aggregates)


@pytest.mark.parametrize("bottleneck, scale", [("flatten", 1.0), ("gap", 2.0)])
def test_aggregate_csv_iqm_matches_trim_mean_of_normalised_scores(cli_result, bottleneck, scale):
  _, out, _ = cli_result
  refs = synthetic_runs.REFERENCES
  scores = [(_final(g, bottleneck, scale, s) - refs[g][0]) / (refs[g][1] - refs[g][0])
            for g in ("Pong", "Breakout") for s in (0, 1, 2)]
  (row,) = [r for r in _read_csv(os.path.join(out, "aggregates.csv"))
            if r["bottleneck"] == bottleneck and float(r["width_scale"]) == scale]
  assert float(row["IQM"]) == pytest.approx(scipy.stats.trim_mean(scores, 0.25))
  assert float(row["Mean"]) == pytest.approx(np.mean(scores))
  assert float(row["IQM low"]) <= float(row["IQM"]) <= float(row["IQM high"])


def test_probability_of_improvement_compares_with_flatten(cli_result):
  _, out, _ = cli_result
  rows = {(r["X"], r["Y"]): float(r["P(X>Y)"])
          for r in _read_csv(os.path.join(out, "probability_of_improvement.csv"))}
  # At x2 gap scores 10 + seed vs flatten's 2.5 + seed on both games: every gap run wins.
  assert rows[("dqn/nature/gap/x2", "dqn/nature/flatten/x2")] == pytest.approx(1.0)
  assert set(rows) == {("dqn/nature/gap/x1", "dqn/nature/flatten/x1"),
                       ("dqn/nature/gap/x2", "dqn/nature/flatten/x2")}


def test_dormant_table_from_metrics_fields(cli_result):
  _, out, _ = cli_result
  rows = _read_csv(os.path.join(out, "dormant.csv"))
  phi = [r for r in rows if r["group"] == "phi" and r["tau"] == "0.1"]
  assert len(phi) == 4
  # synthetic_runs logs 0.05 * iteration; the last iteration is 2.
  assert all(float(r["dormant_fraction"]) == pytest.approx(0.1) for r in phi)
  assert {r["group"] for r in rows} == {"phi", "psi", "all"}


def test_chosen_iteration(runs_dir, tmp_path):
  root, _, refs = runs_dir
  assert report.main([root, "--out", str(tmp_path), "--reps", "5", "--references", refs,
                      "--iteration", "0"]) == 0
  raw = _read_csv(str(tmp_path / "raw_scores.csv"))
  assert {r["iteration"] for r in raw} == {"0"}
  pong = [r for r in raw if r["game"] == "Pong" and r["bottleneck"] == "gap" and
          float(r["width_scale"]) == 1.0 and r["seed"] == "0"]
  assert float(pong[0]["score"]) == _final("Pong", "gap", 1.0, 0) - 2.0
  assert pong[0]["score_source"] == "eval"  # Synthetic lines without `score`: eval_return.


@pytest.mark.parametrize("make", ["empty", "missing"])
def test_empty_or_missing_dir_is_a_clear_error(tmp_path, capsys, make):
  root = tmp_path / "runs"
  if make == "empty":
    root.mkdir()
  code = report.main([str(root), "--out", str(tmp_path / "out")])
  err = capsys.readouterr().err
  assert code == 1
  assert "error" in err and str(root) in err and "Traceback" not in err


def test_only_broken_runs_is_an_error_naming_them(tmp_path, capsys):
  path = synthetic_runs.write_run(str(tmp_path / "runs"), "Pong", 0, [1.0])
  with open(path, "a", encoding="utf-8") as f:
    f.write("oops\n")
  code = report.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
  err = capsys.readouterr().err
  assert code == 1 and f"{path}:2" in err
  assert f"{path}:2" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("argv, needle", [
    (["--reps", "0"], "--reps"), (["--references", "/nonexistent.json"], "references")])
def test_bad_arguments(runs_dir, tmp_path, capsys, argv, needle):
  root, _, _ = runs_dir
  assert report.main([root, "--out", str(tmp_path)] + argv) == 1
  assert needle in capsys.readouterr().err


def test_python_api_with_network_and_default_references(runs_dir, tmp_path):
  root, _, _ = runs_dir
  net = tiny_nets.TinyQNet(input_shape=(16, 16, 4), bottleneck="gap")
  obs = np.random.RandomState(0).randint(0, 256, (3, 16, 16, 4)).astype(np.uint8)
  # No references: human/random scores come from tfgap.envs.games.
  result = report.write_report(root, str(tmp_path), reps=5, network=net, observations=obs)
  assert result.games_without_reference == ["AirRaid"]
  raw = _read_csv(str(tmp_path / "raw_scores.csv"))
  row = next(r for r in raw if r["game"] == "Pong")
  expected = (float(row["score"]) + 20.7) / (14.6 + 20.7)
  assert float(row["normalized"]) == pytest.approx(expected, rel=1e-3)
  assert row["normalization"] == "human-normalised" and row["suite"] == "atari"
  assert mpimg.imread(str(tmp_path / "gradcam.png")).shape[0] > 50
  (row,) = _read_csv(str(tmp_path / "effective_parameters.csv"))
  # TinyQNet: 8x8x12 feature map, GAP into a 10-unit layer.
  assert int(row["live_weights"]) == 12 * 10
  assert int(row["dense_equivalent"]) == 8 * 8 * 12 * 10
  text = open(result.report, encoding="utf-8").read()
  assert "](gradcam.png)" in text


def test_policy_that_is_not_a_run_dir_is_a_clear_error(runs_dir, tmp_path, capsys):
  root, _, refs = runs_dir
  code = report.main([root, "--out", str(tmp_path), "--reps", "5", "--references", refs,
                      "--policy", root])
  assert code == 1
  err = capsys.readouterr().err
  assert "has no config.gin" in err and "Traceback" not in err


@pytest.mark.slow  # A fresh interpreter importing TensorFlow: 12-23 s on 2 shared cores.
def test_module_entry_point(runs_dir, tmp_path):
  root, _, refs = runs_dir
  proc = subprocess.run(
      [sys.executable, "-m", "tfgap.launch.report", root, "--out", str(tmp_path), "--reps", "5",
       "--references", refs], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert "wrote" in proc.stdout and (tmp_path / "report.md").exists()
  assert "zz_broken" in proc.stderr


@pytest.mark.slow  # A real (tiny) training run on Pong, then the report with its network: ~40 s.
def test_policy_run_dir_restores_the_trained_network(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  run_dir = str(tmp_path / "runs" / "pong_gap")
  train.train(run_dir, gin_bindings=[
      "Runner.suite='atari'", "Runner.game='Pong'", "Runner.num_iterations=1",
      "Runner.training_steps=160", "Runner.evaluation_steps=10",
      "Runner.eval_env_kwargs={'max_episode_steps': 20}", "Runner.replay_capacity=500",
      "Runner.dormant_batch_size=16", "Runner.progress_bar=False", "Runner.export_policies=False",
      # No Pong episode ends in 160 steps, so score by the (step-capped) evaluation episodes.
      "Runner.score='eval'", "tfgap.agents.DQNAgent.min_replay_history=64", "tfgap.agents.DQNAgent.batch_size=8",
      "tfgap.networks.build_q_network.bottleneck='gap'",
      "tfgap.networks.build_q_network.head_units=(32,)"])
  net, obs, description, names = report.load_run_network(run_dir, num_observations=3)
  assert names[:2] == ["NOOP", "FIRE"]  # ALE's meanings of Pong's minimal action set.
  assert obs.shape == (3, 84, 84, 4) and obs.dtype == np.uint8
  assert "Pong" in description and "ckpt-000000" in description
  state = os.path.join(run_dir, "checkpoints", "ckpt-000000", "tf", "state")
  saved = tf.train.load_checkpoint(state).get_tensor(
      "q_network/_encoder/convs/0/kernel/.ATTRIBUTES/VARIABLE_VALUE")
  np.testing.assert_array_equal(net.parts()["phi"][0].kernel.numpy(), saved)

  # A newer checkpoint whose network state is truncated is skipped, as the Runner does.
  good = os.path.join(run_dir, "checkpoints", "ckpt-000000")
  bad = os.path.join(run_dir, "checkpoints", "ckpt-000001")
  shutil.copytree(good, bad)
  data = sorted(glob.glob(os.path.join(bad, "tf", "state.data-*")))[0]
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 2)
  _, _, description, _ = report.load_run_network(run_dir, num_observations=1)
  assert "ckpt-000000" in description
  shutil.rmtree(bad)

  out = tmp_path / "out"
  assert report.main([str(tmp_path / "runs"), "--out", str(out), "--reps", "5",
                      "--policy", run_dir]) == 0
  assert mpimg.imread(str(out / "gradcam.png")).shape[0] > 50
  (row,) = _read_csv(str(out / "effective_parameters.csv"))
  assert int(row["live_weights"]) == 64 * 32  # GAP: C x dim(psi).
  text = (out / "report.md").read_text()
  assert "Network restored from" in text and "dormant" in text


def _suite_run(root, name, game, suite, score, seed=0, **fields):
  run_dir = os.path.join(root, name)
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, "metrics.jsonl"), "w", encoding="utf-8") as f:
    for i, value in enumerate([score - 1.0, score]):
      line = synthetic_runs.record(i, game, seed, value)
      line.update(suite=suite, **fields)
      f.write(json.dumps(line) + "\n")
  return os.path.join(run_dir, "metrics.jsonl")


def test_minatar_is_not_normalised_with_atari_scores_and_truncation_is_flagged(tmp_path):
  root = str(tmp_path / "runs")
  for seed in (0, 1):
    _suite_run(root, f"minatar_{seed}", "breakout", "minatar", 10.0 + seed, seed=seed)
    _suite_run(root, f"coinrun_{seed}", "coinrun", "procgen", 6.0 + seed, seed=seed)
  capped = _suite_run(root, "coinrun_capped", "coinrun", "procgen", 9.0, seed=2,
                      eval_truncated=3, train_truncated=0)
  result = report.write_report(root, str(tmp_path / "out"), reps=5)
  assert result.games_without_reference == ["breakout (minatar)"]
  raw = _read_csv(str(tmp_path / "out" / "raw_scores.csv"))
  assert all(r["normalized"] == "" for r in raw if r["suite"] == "minatar")
  procgen = {r["seed"]: r for r in raw if r["suite"] == "procgen"}
  assert float(procgen["0"]["normalized"]) == pytest.approx(0.2)  # (6 - 5) / (10 - 5).
  assert procgen["0"]["normalization"] == "min-max normalised (Cobbe et al. 2020)"
  assert procgen["2"]["truncated_episodes"] == "3"
  text = open(result.report, encoding="utf-8").read()
  assert "## Aggregates (min-max normalised (Cobbe et al. 2020)" in text
  assert "breakout (minatar)" in text
  # Every aggregate figure says what it aggregates: 3 procgen runs on 1 game.
  assert "IQM of 3 runs on 1 game (1 configuration)" in text
  assert "5 runs on 2 games" in text  # Learning curves: every scored run.
  (note,) = [n for n in result.notes if n.startswith("Truncated scores")]
  assert capped in note and "3 eval episodes" in note and "1 run scored 3 episodes" in note


def test_aggregate_figure_keeps_zero_and_names_its_normalisation(monkeypatch, tmp_path):
  from tfgap.analysis import aggregate as agg  # pylint: disable=g-import-not-at-top
  from tfgap.analysis import plots  # pylint: disable=g-import-not-at-top
  figures = []
  monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
  configs = {f"dqn/nature/gap/x{s}": agg.Config("dqn", "nature", "gap", float(s))
             for s in (1, 2)}
  # Scores far from 0 with tiny intervals: a zoomed-in axis would magnify the noise.
  aggregates = {label: {"IQM": agg.Interval(5.0 + 0.01 * i, 4.99, 5.03)}
                for i, label in enumerate(configs)}
  plots.plot_aggregate_vs_width(aggregates, configs, str(tmp_path / "a.png"),
                                normalization="min-max normalised (Cobbe et al. 2020)",
                                title="IQM: 6 runs on 3 games")
  ax = figures[0].axes[0]
  low, high = ax.get_ylim()
  assert low <= 0.0 < 5.03 <= high
  assert ax.get_ylabel() == "IQM (min-max normalised (Cobbe et al. 2020))"
  assert ax.get_title() == "IQM: 6 runs on 3 games"


def test_gradcam_grid_names_actions_flags_uniform_maps_and_has_a_colorbar(tmp_path, monkeypatch):
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from tfgap.analysis import gradcam  # pylint: disable=g-import-not-at-top
  saved = []
  original = Figure.savefig
  monkeypatch.setattr(Figure, "savefig",
                      lambda fig, path, **kw: saved.append(fig) or original(fig, path, **kw))
  obs = np.random.RandomState(0).randint(0, 256, (3, 16, 16, 4)).astype(np.uint8)
  maps = np.zeros((3, 16, 16), np.float32)
  maps[0, 4:8, 4:8] = 1.0  # Maps 1 and 2 stay all zero: uniform.
  gradcam.save_grid(str(tmp_path / "grid.png"), obs, maps, actions=[1, 0, 2],
                    action_names=["NOOP", "FIRE", "RIGHT"])
  fig = saved[-1]
  titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
  assert titles == ["FIRE (1)", "NOOP (0), uniform map", "RIGHT (2), uniform map"]
  assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
  gradcam.save_overlay(str(tmp_path / "one.png"), obs[0], maps[0], action=3)
  assert [ax.get_title() for ax in saved[-1].axes if ax.get_title()] == ["action 3"]
  assert any(ax.get_label() == "<colorbar>" for ax in saved[-1].axes)
