"""Run loading, human normalisation and rliable aggregates on known inputs."""

import json
import os

import numpy as np
import pytest
import scipy.stats

from tests.analysis import synthetic_runs
from tfgap.analysis import aggregate as agg
from tfgap.analysis import rliable_compat

REPS = 300


@pytest.fixture(scope="module")
def rly():
  return rliable_compat.modules()


def _matrix(seed=0, runs=5, games=4):
  return np.random.RandomState(seed).gamma(2.0, 0.5, size=(runs, games))


# -- aggregates -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 7])
def test_point_estimates_match_scipy_and_numpy(seed):
  scores = _matrix(seed)
  out = agg.aggregate_scores({"a": scores}, reps=REPS, seed=seed)["a"]
  assert out["IQM"].point == pytest.approx(scipy.stats.trim_mean(scores.ravel(), 0.25))
  assert out["Median"].point == pytest.approx(np.median(scores.mean(axis=0)))
  assert out["Mean"].point == pytest.approx(scores.mean())
  assert out["Optimality Gap"].point == pytest.approx(1.0 - np.minimum(scores, 1.0).mean())
  for interval in out.values():
    assert interval.low <= interval.point <= interval.high
    assert interval.low < interval.high  # 5 runs of random scores: a real interval.


@pytest.mark.parametrize("seed", [0, 3])
def test_intervals_match_rliable_called_directly(rly, seed):
  library, metrics = rly
  scores = {"x": _matrix(1), "y": _matrix(2, runs=3, games=6)}
  ours = agg.aggregate_scores(scores, reps=REPS, seed=seed)
  fn = lambda s: np.array([metrics.aggregate_iqm(s), metrics.aggregate_median(s),
                           metrics.aggregate_mean(s), metrics.aggregate_optimality_gap(s)])
  for label, matrix in scores.items():
    np.random.seed(seed)
    points, cis = library.get_interval_estimates({label: matrix}, fn, reps=REPS)
    for i, name in enumerate(agg.AGGREGATES):
      assert ours[label][name].point == pytest.approx(points[label][i])
      assert ours[label][name].low == pytest.approx(cis[label][0, i])
      assert ours[label][name].high == pytest.approx(cis[label][1, i])


def test_seeded_bootstrap_restores_the_global_rng():
  np.random.seed(123)
  expected = np.random.rand(3)
  np.random.seed(123)
  agg.aggregate_scores({"a": _matrix()}, reps=20, seed=5)
  np.testing.assert_array_equal(np.random.rand(3), expected)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(reps=0), "reps"), (dict(confidence=1.5), "confidence")])
def test_bad_aggregate_arguments_raise(kwargs, needle):
  with pytest.raises(ValueError, match=needle):
    agg.aggregate_scores({"a": _matrix()}, **kwargs)


def test_probability_of_improvement_on_common_games(rly):
  _, metrics = rly
  scores = agg.ScoreMatrices(
      matrices={"hi": _matrix(0) + 10.0, "lo": _matrix(1)[:, :3], "mid": _matrix(2)},
      games={"hi": ["a", "b", "c", "d"], "lo": ["b", "c", "d"], "mid": ["a", "b", "c", "d"]},
      configs={}, problems=[])
  out = agg.probability_of_improvement(scores, [("hi", "lo"), ("lo", "hi"), ("mid", "lo")],
                                       reps=50, seed=0)
  interval, games = out[("hi", "lo")]
  assert games == ["b", "c", "d"]
  assert interval.point == pytest.approx(1.0)
  assert out[("lo", "hi")][0].point == pytest.approx(0.0)
  expected = metrics.probability_of_improvement(_matrix(2)[:, 1:], _matrix(1)[:, :3])
  assert out[("mid", "lo")][0].point == pytest.approx(expected)
  with pytest.raises(ValueError, match="'nope'"):
    agg.probability_of_improvement(scores, [("nope", "hi")])


def test_performance_profile_is_fraction_of_runs_above_tau():
  scores = _matrix(4)
  taus = np.array([0.0, 0.5, 1.0, 2.0])
  got_taus, profiles, cis = agg.performance_profiles({"a": scores}, taus=taus, reps=50)
  np.testing.assert_allclose(got_taus, taus)
  np.testing.assert_allclose(profiles["a"], [(scores > t).mean() for t in taus])
  assert cis["a"].shape == (2, 4)
  assert np.all(cis["a"][0] <= profiles["a"] + 1e-12)


# -- normalisation --------------------------------------------------------------------------------

@pytest.mark.parametrize("game, score, expected", [
    ("Pong", 14.6, 1.0), ("Pong", -20.7, 0.0), ("Breakout", 16.1, 0.5),
    ("Asterix", 210.0 + 2 * (8503.3 - 210.0), 2.0)])
def test_human_normalized_formula(game, score, expected):
  refs = synthetic_runs.REFERENCES
  assert agg.human_normalize(game, score, refs) == pytest.approx(expected)


def test_game_without_reference_is_named():
  with pytest.raises(ValueError, match="'AirRaid'"):
    agg.human_normalize("AirRaid", 1.0, synthetic_runs.REFERENCES)


# -- loading --------------------------------------------------------------------------------------

def _good_runs(root, seeds=(0, 1, 2), games=("Pong", "Breakout")):
  for bottleneck in ("flatten", "gap"):
    for game in games:
      for seed in seeds:
        synthetic_runs.write_run(root, game, seed, [0.0, 5.0, 10.0 + seed],
                                 bottleneck=bottleneck)


def test_load_runs_groups_configs_and_games(tmp_path):
  _good_runs(str(tmp_path))
  runs = agg.load_runs(str(tmp_path))
  assert runs.problems == []
  assert len(runs.runs) == 12
  assert [c.label for c in runs.configs] == ["dqn/nature/flatten/x1", "dqn/nature/gap/x1"]
  assert runs.games == ["Breakout", "Pong"]


BAD_LINES = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not an object"),
    (json.dumps({"iteration": 3, "game": "Pong"}), "missing field"),
    (json.dumps(synthetic_runs.record(3, "Pong", 0, float("nan"))), "eval_return"),
    (json.dumps(synthetic_runs.record(3, "Pong", 0, "high")), "eval_return"),
    (json.dumps(synthetic_runs.record(-1, "Pong", 0, 1.0)), "iteration"),
    (json.dumps(synthetic_runs.record(3, "Breakout", 0, 1.0)), "differs"),
    (json.dumps(synthetic_runs.record(1, "Pong", 0, 1.0)), "repeats line 2"),
]


@pytest.mark.parametrize("line, reason", BAD_LINES)
def test_malformed_line_skips_the_run_and_names_path_and_line(tmp_path, line, reason):
  _good_runs(str(tmp_path))
  path = synthetic_runs.write_run(str(tmp_path), "Pong", 0, [1.0, 2.0, 3.0], name="broken")
  with open(path, "a", encoding="utf-8") as f:
    f.write(line + "\n")
  runs = agg.load_runs(str(tmp_path))
  assert len(runs.runs) == 12  # The broken run (a 4th Pong flatten seed-0 copy) is skipped.
  (problem,) = runs.problems
  assert problem.path == path and problem.line == 4
  assert reason in problem.message
  assert f"{path}:4:" in str(problem)


def test_empty_and_duplicate_runs_are_reported(tmp_path):
  _good_runs(str(tmp_path), seeds=(0,), games=("Pong",))
  empty = os.path.join(str(tmp_path), "empty", "metrics.jsonl")
  os.makedirs(os.path.dirname(empty))
  open(empty, "w").close()
  dup = synthetic_runs.write_run(str(tmp_path), "Pong", 0, [1.0], name="zz_dup")
  runs = agg.load_runs(str(tmp_path))
  messages = {p.path: p.message for p in runs.problems}
  assert "no metrics records" in messages[empty]
  assert "duplicates" in messages[dup]
  assert len(runs.runs) == 2


@pytest.mark.parametrize("make", ["missing", "empty_dir", "no_metrics"])
def test_no_runs_raise_a_clear_error(tmp_path, make):
  root = str(tmp_path / "runs")
  if make != "missing":
    os.makedirs(os.path.join(root, "a"))
  if make == "no_metrics":
    open(os.path.join(root, "a", "other.txt"), "w").close()
  with pytest.raises(ValueError, match="metrics.jsonl|does not exist"):
    agg.load_runs(root)


# -- scores ---------------------------------------------------------------------------------------

def test_select_scores_final_or_chosen_iteration(tmp_path):
  _good_runs(str(tmp_path), seeds=(0, 1))
  synthetic_runs.write_run(str(tmp_path), "AirRaid", 0, [100.0, 200.0])
  runs = agg.load_runs(str(tmp_path))
  rows, problems, missing = agg.select_scores(runs, None, synthetic_runs.REFERENCES)
  assert missing == ["AirRaid"] and problems == []
  by_key = {(r.config.bottleneck, r.game, r.seed): r for r in rows}
  assert by_key[("flatten", "Pong", 1)].score == 11.0
  assert by_key[("flatten", "Pong", 1)].normalized == pytest.approx((11.0 + 20.7) / 35.3)
  assert by_key[("flatten", "AirRaid", 0)].normalized is None
  rows, problems, _ = agg.select_scores(runs, 2, synthetic_runs.REFERENCES)
  assert {r.iteration for r in rows} == {2}
  (problem,) = problems  # AirRaid stopped at iteration 1.
  assert "AirRaid" in problem.path and "no iteration 2" in problem.message


def test_score_matrices_are_rectangular_and_report_dropped_seeds(tmp_path):
  root = str(tmp_path)
  _good_runs(root, seeds=(0, 1))
  synthetic_runs.write_run(root, "Pong", 5, [0.0, 1.0, 2.0], bottleneck="gap")
  synthetic_runs.write_run(root, "AirRaid", 0, [0.0, 1.0, 2.0], bottleneck="gap")
  runs = agg.load_runs(root)
  rows, _, _ = agg.select_scores(runs, None, synthetic_runs.REFERENCES)
  mats = agg.score_matrices(rows, normalized=True)
  assert mats.games["dqn/nature/gap/x1"] == ["Breakout", "Pong"]  # AirRaid: no reference.
  assert mats.matrices["dqn/nature/gap/x1"].shape == (2, 2)
  (dropped,) = mats.problems
  assert "seed 5" in dropped.message and dropped.path.endswith("metrics.jsonl")
  pong = [(r.seed, r.normalized) for r in rows
          if r.game == "Pong" and r.config.bottleneck == "gap" and r.seed != 5]
  np.testing.assert_allclose(mats.restricted("dqn/nature/gap/x1", ["Pong"])[:, 0],
                             [v for _, v in sorted(pong)])
  raw = agg.score_matrices(rows, normalized=False)
  assert raw.games["dqn/nature/gap/x1"] == ["AirRaid", "Breakout", "Pong"]
  assert raw.matrices["dqn/nature/gap/x1"].shape == (1, 3)


def test_learning_curves_average_seeds(tmp_path):
  _good_runs(str(tmp_path), seeds=(0, 1), games=("Pong",))
  curves = agg.learning_curves(agg.load_runs(str(tmp_path)))
  ((config, game), points), = [kv for kv in curves.items() if kv[0][0].bottleneck == "gap"]
  assert game == "Pong"
  assert [p[0] for p in points] == [0, 1, 2]
  assert points[2][2] == pytest.approx(10.5) and points[2][3:] == (10.0, 11.0, 2)
  assert points[2][1] == 3000.0


def test_iterations_without_evaluation(tmp_path):
  """The training driver writes eval_return null when an iteration has no evaluation."""
  root = str(tmp_path)
  path = synthetic_runs.write_run(root, "Pong", 0, [1.0, 2.0, 3.0], name="partial")
  lines = open(path, encoding="utf-8").read().splitlines()
  last = json.loads(lines[-1])
  last["eval_return"] = None
  lines[-1] = json.dumps(last)
  open(path, "w", encoding="utf-8").write("\n".join(lines) + "\n")
  never = synthetic_runs.write_run(root, "Breakout", 0, [1.0], name="never")
  record = json.loads(open(never, encoding="utf-8").read())
  record["eval_return"] = None
  open(never, "w", encoding="utf-8").write(json.dumps(record) + "\n")
  runs = agg.load_runs(root)
  assert runs.problems == [] and len(runs.runs) == 2
  rows, problems, _ = agg.select_scores(runs, None, synthetic_runs.REFERENCES)
  (row,) = rows
  assert (row.game, row.iteration, row.score) == ("Pong", 1, 2.0)  # Last evaluated iteration.
  (problem,) = problems
  assert problem.path == never and "no scored iteration" in problem.message
  _, problems, _ = agg.select_scores(runs, 2, synthetic_runs.REFERENCES)
  messages = {p.path: p.message for p in problems}
  assert "no score at iteration 2" in messages[path]
  assert "no iteration 2" in messages[never]
  curves = agg.learning_curves(runs)
  assert [p[0] for p in curves[(row.config, "Pong")]] == [0, 1]
  assert (row.config, "Breakout") not in curves


@pytest.mark.parametrize("field, value", [("iteration", float("inf")), ("env_steps", 1.5)])
def test_non_integer_counters_are_malformed(tmp_path, field, value):
  path = synthetic_runs.write_run(str(tmp_path), "Pong", 0, [1.0])
  record = synthetic_runs.record(1, "Pong", 0, 2.0)
  record[field] = value
  with open(path, "a", encoding="utf-8") as f:
    f.write(json.dumps(record) + "\n")
  runs = agg.load_runs(str(tmp_path))
  (problem,) = runs.problems
  assert problem.line == 2 and field in problem.message and runs.runs == []


# -- suites, training-only runs -------------------------------------------------------------------

def _write_lines(root, name, game, suite, scores, seed=0, **fields):
  """A run whose records carry `suite`; `fields` override every line (None drops suite)."""
  run_dir = os.path.join(root, name)
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, "metrics.jsonl"), "w", encoding="utf-8") as f:
    for i, score in enumerate(scores):
      line = synthetic_runs.record(i, game, seed, score)
      line.update(fields)
      if suite is None:
        del line["suite"]
      else:
        line["suite"] = suite
      f.write(json.dumps(line) + "\n")


def test_normalisation_follows_the_suite(tmp_path):
  root = str(tmp_path)
  _write_lines(root, "minatar_breakout", "breakout", "minatar", [3.0, 12.0])
  _write_lines(root, "atari_breakout", "Breakout", "atari", [16.1])
  _write_lines(root, "old_breakout", "Breakout", None, [16.1], seed=1)  # No suite: Atari.
  _write_lines(root, "coinrun", "coinrun", "procgen", [7.5])
  _write_lines(root, "dmc", "cheetah-run", "dmc", [300.0])
  runs = agg.load_runs(root)
  rows, problems, missing = agg.select_scores(runs)
  assert not problems
  by_game = {(r.game, r.suite): r for r in rows}
  minatar = by_game[("breakout", "minatar")]
  # MinAtar breakout is no Atari Breakout: no human normalisation by the game's name.
  assert minatar.normalized is None and minatar.normalization is None
  assert missing == ["breakout (minatar)", "cheetah-run (dmc)"]
  atari = by_game[("Breakout", "atari")]
  assert atari.normalized == pytest.approx((16.1 - 1.7) / (30.5 - 1.7))
  assert atari.normalization == "human"
  assert by_game[("Breakout", None)].normalized == pytest.approx(atari.normalized)
  coinrun = by_game[("coinrun", "procgen")]  # Cobbe et al. easy: (5, 10).
  assert coinrun.normalized == pytest.approx(0.5) and coinrun.normalization == "minmax"
  assert agg.normalization_label(rows) == (
      "human-normalised / min-max normalised (Cobbe et al. 2020)")
  mats = agg.score_matrices(rows)
  assert mats.games == {"dqn/nature/flatten/x1": ["Breakout", "coinrun"]}
  # References given by the user apply to every suite.
  rows, _, missing = agg.select_scores(runs, references={"breakout": (0.0, 24.0)})
  minatar = next(r for r in rows if r.suite == "minatar")
  assert minatar.normalized == pytest.approx(0.5) and minatar.normalization == "given"
  assert agg.normalization_label([minatar]) == "normalised by the given references"
  assert "coinrun" in missing


def test_procgen_references_moved_to_games_and_used_by_studies():
  from tfgap.envs import games  # pylint: disable=g-import-not-at-top
  from tfgap.launch import studies  # pylint: disable=g-import-not-at-top
  assert sorted(games.PROCGEN_REFERENCE_SCORES) == sorted(games.PROCGEN_GAMES)
  assert all(low < high for low, high in games.PROCGEN_REFERENCE_SCORES.values())
  assert studies.PROCGEN_REFERENCES == {k: list(v)
                                        for k, v in games.PROCGEN_REFERENCE_SCORES.items()}


def test_runs_without_evaluation_are_scored_by_training_returns(tmp_path):
  root = str(tmp_path)
  # Lines as the training driver writes them without evaluation: eval_return null, score =
  # training return.
  for seed in (0, 1):
    run_dir = os.path.join(root, f"pong_{seed}")
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "metrics.jsonl"), "w", encoding="utf-8") as f:
      for i, score in enumerate([-21.0 + seed, -15.0 + seed, None]):
        line = synthetic_runs.record(i, "Pong", seed, None)
        line.update(eval_returns=[], train_return=score, score=score, score_source="train",
                    train_truncated=0, eval_truncated=None)
        f.write(json.dumps(line) + "\n")
  runs = agg.load_runs(root)
  assert not runs.problems and len(runs.runs) == 2
  rows, problems, _ = agg.select_scores(runs)
  assert not problems
  assert [(r.iteration, r.score, r.source, r.truncated) for r in rows] == [
      (1, -15.0, "train", 0), (1, -14.0, "train", 0)]
  (points,) = agg.learning_curves(runs).values()
  assert [(p[0], p[2], p[5]) for p in points] == [(0, -20.5, 2), (1, -14.5, 2)]
