"""Reading many runs' metrics.jsonl and aggregating them with rliable (Agarwal et al., 2021).

A run is a directory holding `metrics.jsonl` (one JSON object per iteration, fields in
docs/DESIGN.md). Runs are grouped into configurations (agent, encoder, bottleneck, width_scale);
each configuration becomes a score matrix `[runs, games]` of normalised scores on which IQM,
median, mean and optimality gap get 95% stratified-bootstrap intervals, plus probability of
improvement and performance profiles.

Normalisation follows each run's `suite` field: Atari and Atari100K scores (and runs without a
suite, written before the field existed) are human-normalised, Procgen scores min-max normalised
with Cobbe et al. 2020's constants; MinAtar, DMC and custom suites have no default reference
(their game names overlap Atari's, so an Atari table must not apply to them) unless the caller
passes `references`.

Nothing is averaged silently: a run with a malformed or missing line is skipped and reported as
`path:line: reason`; games without human reference scores are named and kept out of normalised
aggregates; seeds dropped to make a matrix rectangular are named too.
"""

import contextlib
import dataclasses
import json
import math
import os
from typing import Dict, List, Optional

import numpy as np

from tfgap.analysis import rliable_compat

METRICS_FILE = "metrics.jsonl"
CONFIG_FIELDS = ("agent", "encoder", "bottleneck", "width_scale")
REQUIRED_FIELDS = ("iteration", "env_steps", "game", "seed") + CONFIG_FIELDS
AGGREGATES = ("IQM", "Median", "Mean", "Optimality Gap")
SCORE_SOURCES = ("train", "eval")
# Suites normalised by default, and how (keys of NORMALIZATION_LABELS).
HUMAN_SUITES = ("atari", "atari100k")
MINMAX_SUITES = ("procgen",)
NORMALIZATION_LABELS = {
    "human": "human-normalised",
    "minmax": "min-max normalised (Cobbe et al. 2020)",
    "given": "normalised by the given references",
}


def score_of(record):
  """The score an iteration's record is aggregated by (raw game score), or None.

  Records carry `score` and `score_source` (the training driver writes them: the mean return of
  the training episodes that ended in the iteration for Atari and Procgen, as Dopamine's
  `continuous_train` schedule reports; the evaluation mean for Atari100K). Records written before
  those fields existed are scored by `eval_return`.
  """
  if "score" in record:
    return record["score"]
  return record.get("eval_return")


def score_source_of(record):
  """"train" or "eval": where `score_of(record)` comes from."""
  return record.get("score_source", "eval")


@dataclasses.dataclass(frozen=True, order=True)
class Config:
  """One configuration: runs of it differ only in game and seed.

  `variant` is the run's `Runner.variant` label (e.g. a study's axis value such as "psi_x4"),
  empty when unset; it separates configurations the four network fields do not tell apart.
  """
  agent: str
  encoder: str
  bottleneck: str
  width_scale: float
  variant: str = ""

  @property
  def label(self):
    base = f"{self.agent}/{self.encoder}/{self.bottleneck}/x{self.width_scale:g}"
    return f"{base} [{self.variant}]" if self.variant else base


@dataclasses.dataclass(frozen=True)
class Problem:
  """Something skipped or left out, with where it comes from."""
  path: str
  line: Optional[int]
  message: str

  def __str__(self):
    where = self.path if self.line is None else f"{self.path}:{self.line}"
    return f"{where}: {self.message}"


@dataclasses.dataclass
class Run:
  """One valid run: its records sorted by iteration."""
  path: str
  config: Config
  game: str
  seed: int
  records: List[dict]

  @property
  def run_dir(self):
    return os.path.dirname(self.path)

  @property
  def suite(self):
    """The records' `suite` (None for runs written before the field existed)."""
    suite = self.records[0].get("suite") if self.records else None
    return str(suite).lower() if suite else None

  def record_at(self, iteration=None):
    """The record of `iteration`, or None when the run lacks it or it has no score.

    With iteration None: the last record that has a score (see `score_of`).
    """
    if iteration is None:
      scored = [r for r in self.records if score_of(r) is not None]
      return scored[-1] if scored else None
    for record in self.records:
      if record["iteration"] == iteration:
        return record if score_of(record) is not None else None
    return None


@dataclasses.dataclass
class RunCollection:
  """Valid runs under a root directory, and the problems met reading it."""
  root: str
  runs: List[Run]
  problems: List[Problem]

  @property
  def configs(self):
    return sorted({r.config for r in self.runs})

  @property
  def games(self):
    return sorted({r.game for r in self.runs})


@dataclasses.dataclass(frozen=True)
class Interval:
  """A point estimate with its confidence interval."""
  point: float
  low: float
  high: float


def _is_number(value):
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_line(text):
  """Returns (record, None) or (None, reason)."""
  try:
    record = json.loads(text)
  except json.JSONDecodeError as err:
    return None, f"not valid JSON ({err.msg} at column {err.colno})"
  if not isinstance(record, dict):
    return None, f"a JSON {type(record).__name__}, not an object"
  missing = [f for f in REQUIRED_FIELDS if f not in record]
  if missing:
    return None, f"missing field(s) {', '.join(missing)}"
  for field in ("iteration", "env_steps"):
    value = record[field]
    if (not _is_number(value) or not math.isfinite(value) or value != int(value) or
        value < 0):
      return None, f"{field} {value!r} is not an integer >= 0"
    record[field] = int(value)
  if "score" not in record and "eval_return" not in record:
    return None, "missing field(s) score (or eval_return)"
  for field in ("score", "eval_return", "train_return", "width_scale"):
    if field not in record:
      continue
    value = record[field]
    if field != "width_scale" and value is None:
      continue  # An iteration without that score (the training driver writes null).
    if not _is_number(value) or not math.isfinite(value):
      return None, f"{field} {value!r} is not a finite number"
  if record.get("score_source", "eval") not in SCORE_SOURCES:
    return None, (f"score_source {record['score_source']!r} is not one of "
                  f"{', '.join(SCORE_SOURCES)}")
  if not isinstance(record["game"], str) or not record["game"]:
    return None, f"game {record['game']!r} is not a name"
  if not isinstance(record["seed"], (int, str)) or isinstance(record["seed"], bool):
    return None, f"seed {record['seed']!r} is not an integer or a string"
  return record, None


def _identity(record):
  config = Config(str(record["agent"]), str(record["encoder"]), str(record["bottleneck"]),
                  float(record["width_scale"]), str(record.get("variant") or ""))
  return config, record["game"], record["seed"]


def read_run(path):
  """Reads one metrics.jsonl.

  Args:
    path: the file.

  Returns:
    (Run or None, [Problem]); the run is None whenever there is a problem.
  """
  problems = []
  records = []
  first_identity = None
  seen_iterations = {}
  try:
    with open(path, "r", encoding="utf-8") as f:
      lines = f.read().splitlines()
  except (OSError, UnicodeDecodeError) as err:
    return None, [Problem(path, None, f"cannot be read ({err})")]
  for number, text in enumerate(lines, start=1):
    if not text.strip():
      continue
    record, reason = _parse_line(text)
    if reason:
      problems.append(Problem(path, number, reason))
      continue
    identity = _identity(record)
    if first_identity is None:
      first_identity = identity
    elif identity != first_identity:
      problems.append(Problem(
          path, number, f"configuration/game/seed {identity} differs from the run's first line "
          f"{first_identity}"))
      continue
    if record["iteration"] in seen_iterations:
      problems.append(Problem(path, number, f"iteration {record['iteration']} repeats line "
                              f"{seen_iterations[record['iteration']]}"))
      continue
    seen_iterations[record["iteration"]] = number
    records.append(record)
  if not records and not problems:
    problems.append(Problem(path, None, "has no metrics records"))
  if problems:
    return None, problems
  config, game, seed = first_identity
  records.sort(key=lambda r: r["iteration"])
  return Run(path=path, config=config, game=game, seed=seed, records=records), []


def find_metrics_files(root):
  """All metrics.jsonl files under root, sorted."""
  found = []
  for directory, subdirs, files in os.walk(root):
    subdirs.sort()
    if METRICS_FILE in files:
      found.append(os.path.join(directory, METRICS_FILE))
  return sorted(found)


def load_runs(root):
  """Reads every run under `root`.

  Args:
    root: directory tree containing run directories with metrics.jsonl.

  Returns:
    A `RunCollection`: the valid runs, plus a `Problem` for every skipped run (malformed or
    missing lines, duplicates of another run's configuration/game/seed).

  Raises:
    ValueError: when root is not a directory or holds no metrics.jsonl at all.
  """
  if not os.path.isdir(root):
    raise ValueError(f"runs directory {root!r} does not exist or is not a directory; accepted: "
                     f"a directory tree of run directories, each with {METRICS_FILE}")
  paths = find_metrics_files(root)
  if not paths:
    raise ValueError(f"no {METRICS_FILE} found under {root!r}; accepted: a directory tree of run "
                     f"directories, each with {METRICS_FILE} (written by tfgap.launch.train)")
  runs, problems = [], []
  owners = {}
  for path in paths:
    run, run_problems = read_run(path)
    problems.extend(run_problems)
    if run is None:
      continue
    key = (run.config, run.game, run.seed)
    if key in owners:
      problems.append(Problem(path, None, f"duplicates {owners[key]} ({run.config.label}, "
                              f"{run.game}, seed {run.seed}); skipped"))
      continue
    owners[key] = path
    runs.append(run)
  return RunCollection(root=root, runs=runs, problems=problems)


# -- scores ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class ScoreRow:
  """The score of one run at the chosen iteration."""
  config: Config
  game: str
  seed: int
  iteration: int
  env_steps: int
  score: float
  normalized: Optional[float]
  path: str
  source: str = "eval"
  suite: Optional[str] = None
  normalization: Optional[str] = None  # A key of NORMALIZATION_LABELS, None: no reference.
  truncated: Optional[int] = None  # Scored episodes cut by a step cap (None: not logged).


def _default_normalizer():
  """tfgap.envs.games.human_normalized when importable, else None."""
  try:
    from tfgap.envs import games  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return getattr(games, "human_normalized", None)


def human_normalize(game, score, references=None):
  """Human-normalised score (score - random) / (human - random).

  Args:
    game: game name.
    score: raw game score.
    references: {game: (random, human)}; default tfgap.envs.games reference scores.

  Returns:
    The normalised score.

  Raises:
    ValueError: the game has no reference scores (naming the game and the known ones).
  """
  if references is not None:
    if game not in references:
      raise ValueError(f"game {game!r} has no human reference score; accepted: "
                       f"{sorted(references)}")
    random_score, human_score = references[game]
    if human_score == random_score:
      raise ValueError(f"game {game!r} has equal human and random scores ({human_score})")
    return (float(score) - random_score) / (human_score - random_score)
  normalizer = _default_normalizer()
  if normalizer is None:
    raise ValueError(f"game {game!r}: no references given and tfgap.envs.games is not "
                     "available; pass references={game: (random, human)}")
  # tfgap.envs.games.human_normalized raises a ValueError naming games without references.
  return float(normalizer(game, score))


def normalize(game, score, suite=None, references=None):
  """The normalised score of a run of `suite`, and which normalisation gave it.

  Args:
    game: game name.
    score: raw game score.
    suite: the run's suite; None (older runs) is treated as Atari.
    references: {game: (low, high)} for every suite, or None for the defaults: human/random
      scores for "atari"/"atari100k"/None, Cobbe et al.'s (R_min, R_max) for "procgen", nothing
      for other suites (MinAtar, DMC, custom).

  Returns:
    (normalised score or None when the game has no reference, key of NORMALIZATION_LABELS or
    None).
  """
  suite = str(suite).lower() if suite else None
  try:
    if references is not None:
      return human_normalize(game, score, references), "given"
    if suite is None or suite in HUMAN_SUITES:
      return human_normalize(game, score), "human"
    if suite in MINMAX_SUITES:
      from tfgap.envs import games  # pylint: disable=g-import-not-at-top
      return human_normalize(str(game).lower(), score, games.PROCGEN_REFERENCE_SCORES), "minmax"
  except ValueError:
    pass
  return None, None


def normalization_label(rows):
  """What the normalised scores of `rows` are, e.g. "human-normalised" (joined when mixed)."""
  kinds = sorted({r.normalization for r in rows if r.normalization is not None},
                 key=list(NORMALIZATION_LABELS).index)
  return " / ".join(NORMALIZATION_LABELS[k] for k in kinds) or "normalised"


def truncated_of(record, source):
  """Episodes of the scored phase cut by a step cap (`train_truncated`/`eval_truncated`)."""
  value = record.get(f"{source}_truncated")
  return int(value) if _is_number(value) else None


def select_scores(collection, iteration=None, references=None):
  """One `ScoreRow` per run at `iteration` (None: each run's last).

  Args:
    collection: `RunCollection`.
    iteration: the iteration to score; runs without it are reported and left out.
    references: {game: (low, high)} for every run, or None for the suite defaults (see
      `normalize`).

  Returns:
    (rows, problems, games_without_reference); a game of a suite without a default reference is
    named "game (suite)".
  """
  rows, problems = [], []
  missing_reference = set()
  for run in collection.runs:
    record = run.record_at(iteration)
    if record is None:
      iterations = [r["iteration"] for r in run.records]
      if iteration is None:
        reason = "has no scored iteration (score is null on every line)"
      elif iteration in iterations:
        reason = f"has no score at iteration {iteration} (score is null)"
      else:
        reason = f"has no iteration {iteration} (last: {iterations[-1]})"
      problems.append(Problem(run.path, None, reason + "; left out of scores"))
      continue
    score = float(score_of(record))
    normalized, kind = normalize(run.game, score, run.suite, references)
    if normalized is None:
      default_suite = run.suite is None or run.suite in HUMAN_SUITES + MINMAX_SUITES
      missing_reference.add(run.game if default_suite or references is not None else
                            f"{run.game} ({run.suite})")
    source = score_source_of(record)
    rows.append(ScoreRow(config=run.config, game=run.game, seed=run.seed,
                         iteration=record["iteration"], env_steps=record["env_steps"],
                         score=score, normalized=normalized, path=run.path, source=source,
                         suite=run.suite, normalization=kind,
                         truncated=truncated_of(record, source)))
  return rows, problems, sorted(missing_reference)


@dataclasses.dataclass
class ScoreMatrices:
  """Per-configuration score matrices `[runs, games]`.

  Attributes:
    matrices: {config label: array [runs, games]}.
    games: {config label: the games (columns)}.
    configs: {config label: Config}.
    problems: runs dropped to make matrices rectangular, configurations left out.
  """
  matrices: Dict[str, np.ndarray]
  games: Dict[str, List[str]]
  configs: Dict[str, Config]
  problems: List[Problem]

  def restricted(self, label, games):
    """The columns of `games` (in that order) of one configuration's matrix."""
    columns = [self.games[label].index(g) for g in games]
    return self.matrices[label][:, columns]


def _seed_key(seed):
  return (0, seed, "") if isinstance(seed, int) else (1, 0, str(seed))


def score_matrices(rows, normalized=True):
  """Builds one rectangular score matrix per configuration.

  Games are columns (sorted); runs are rows, ordered by seed within each game. When games have
  different numbers of runs, every game keeps its lowest seeds up to the smallest count, and the
  dropped runs are reported.

  Args:
    rows: `ScoreRow`s.
    normalized: use human-normalised scores (rows without one are left out: their games lack
      references) or raw scores.

  Returns:
    `ScoreMatrices`.
  """
  by_config = {}
  for row in rows:
    value = row.normalized if normalized else row.score
    if value is None:
      continue
    by_config.setdefault(row.config, {}).setdefault(row.game, []).append((row, value))
  matrices, games, configs, problems = {}, {}, {}, []
  for config in sorted(by_config):
    per_game = by_config[config]
    names = sorted(per_game)
    count = min(len(v) for v in per_game.values())
    columns = []
    for game in names:
      entries = sorted(per_game[game], key=lambda e: _seed_key(e[0].seed))
      for row, _ in entries[count:]:
        problems.append(Problem(row.path, None, f"{config.label}: {game} has {len(entries)} runs "
                                f"but another game has {count}; seed {row.seed} left out of "
                                "the aggregate"))
      columns.append([v for _, v in entries[:count]])
    matrices[config.label] = np.asarray(columns, dtype=np.float64).T
    games[config.label] = names
    configs[config.label] = config
  return ScoreMatrices(matrices, games, configs, problems)


# -- rliable --------------------------------------------------------------------------------------

@contextlib.contextmanager
def _seeded(seed):
  """rliable's bootstrap draws from numpy's global RNG: seed it, then restore the caller's."""
  state = np.random.get_state()
  if seed is not None:
    np.random.seed(seed)
  try:
    yield
  finally:
    if seed is not None:
      np.random.set_state(state)


def aggregate_function():
  """f(scores [runs, games]) -> array [IQM, median, mean, optimality gap] (rliable.metrics)."""
  _, metrics = rliable_compat.modules()

  def fn(scores):
    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_median(scores),
                     metrics.aggregate_mean(scores), metrics.aggregate_optimality_gap(scores)])
  return fn


def _check_reps(reps):
  if int(reps) != reps or reps < 1:
    raise ValueError(f"reps {reps} is invalid; accepted: an integer >= 1")
  return int(reps)


def aggregate_scores(matrices, reps=50000, seed=0, confidence=0.95):
  """IQM, median, mean and optimality gap with stratified-bootstrap intervals.

  Args:
    matrices: {label: array [runs, games]} (e.g. `ScoreMatrices.matrices`).
    reps: bootstrap replications.
    seed: seed of numpy's global RNG for the bootstrap (restored afterwards); None: unseeded.
    confidence: interval coverage.

  Returns:
    {label: {aggregate name: Interval}} with names from `AGGREGATES`.
  """
  reps = _check_reps(reps)
  if not 0 < confidence < 1:
    raise ValueError(f"confidence {confidence} is invalid; accepted: 0 < confidence < 1")
  library, _ = rliable_compat.modules()
  fn = aggregate_function()
  out = {}
  for label, scores in matrices.items():
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.size == 0:
      raise ValueError(f"scores of {label!r} have shape {scores.shape}; accepted: [runs, games] "
                       "with at least one run and one game")
    with _seeded(seed):
      points, intervals = library.get_interval_estimates(
          {label: scores}, fn, reps=reps, confidence_interval_size=confidence)
    point, ci = points[label], intervals[label]
    out[label] = {name: Interval(float(point[i]), float(ci[0, i]), float(ci[1, i]))
                  for i, name in enumerate(AGGREGATES)}
  return out


def probability_of_improvement(score_matrices_, pairs, reps=2000, seed=0, confidence=0.95):
  """P(X > Y) averaged over the games both configurations have, with bootstrap intervals.

  Args:
    score_matrices_: `ScoreMatrices`.
    pairs: (label_x, label_y) pairs.
    reps: bootstrap replications.
    seed: seed of numpy's global RNG for the bootstrap; None: unseeded.
    confidence: interval coverage.

  Returns:
    {(label_x, label_y): (Interval, common games)}; pairs without common games are left out.
  """
  reps = _check_reps(reps)
  library, metrics = rliable_compat.modules()
  out = {}
  for x, y in pairs:
    for label in (x, y):
      if label not in score_matrices_.matrices:
        raise ValueError(f"configuration {label!r} is unknown; accepted: "
                         f"{sorted(score_matrices_.matrices)}")
    common = sorted(set(score_matrices_.games[x]) & set(score_matrices_.games[y]))
    if not common:
      continue
    sx, sy = score_matrices_.restricted(x, common), score_matrices_.restricted(y, common)
    fn = lambda a, b: np.array([metrics.probability_of_improvement(a, b)])
    with _seeded(seed):
      points, intervals = library.get_interval_estimates(
          {"pair": [sx, sy]}, fn, reps=reps, confidence_interval_size=confidence)
    out[(x, y)] = (Interval(float(points["pair"][0]), float(intervals["pair"][0, 0]),
                            float(intervals["pair"][1, 0])), common)
  return out


def baseline_pairs(configs, baseline="flatten"):
  """(config, baseline config) pairs: every bottleneck against `baseline` of the same agent,
  encoder and width scale."""
  configs = dict(configs)
  pairs = []
  for label, config in sorted(configs.items()):
    if config.bottleneck == baseline:
      continue
    base = dataclasses.replace(config, bottleneck=baseline)
    if base.label in configs:
      pairs.append((label, base.label))
  return pairs


def performance_profiles(matrices, taus=None, reps=2000, seed=0, confidence=0.95):
  """Score distributions (fraction of runs above tau) with bootstrap bands.

  Args:
    matrices: {label: [runs, games]}.
    taus: thresholds; default 101 points from 0 to max(2, largest score), capped at 8.
    reps: bootstrap replications.
    seed: seed of numpy's global RNG for the bootstrap; None: unseeded.
    confidence: band coverage.

  Returns:
    (taus, {label: profile [len(taus)]}, {label: [2, len(taus)]}).
  """
  reps = _check_reps(reps)
  library, _ = rliable_compat.modules()
  if not matrices:
    raise ValueError("no score matrices to profile")
  if taus is None:
    top = max(float(np.max(m)) for m in matrices.values())
    taus = np.linspace(0.0, min(max(2.0, top), 8.0), 101)
  taus = np.asarray(taus, dtype=np.float64)
  with _seeded(seed):
    profiles, cis = library.create_performance_profile(
        {k: np.asarray(v, dtype=np.float64) for k, v in matrices.items()}, taus, reps=reps,
        confidence_interval_size=confidence)
  return taus, profiles, cis


def learning_curves(collection):
  """Mean score over seeds per (config, game) and iteration (scored iterations only).

  The score is `score_of(record)`: training returns for Atari/Procgen runs (Dopamine's
  continuous_train), evaluation returns where the run evaluates (Atari100K).

  Returns:
    {(config, game): list of (iteration, mean env_steps, mean score, min, max, n)}.
  """
  grouped = {}
  for run in collection.runs:
    per_iter = grouped.setdefault((run.config, run.game), {})
    for record in run.records:
      if score_of(record) is not None:
        per_iter.setdefault(record["iteration"], []).append(record)
  out = {}
  for key, per_iter in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1])):
    if not per_iter:
      continue
    points = []
    for iteration in sorted(per_iter):
      records = per_iter[iteration]
      returns = [score_of(r) for r in records]
      points.append((iteration, float(np.mean([r["env_steps"] for r in records])),
                     float(np.mean(returns)), float(np.min(returns)), float(np.max(returns)),
                     len(returns)))
    out[key] = points
  return out


__all__ = [
    "METRICS_FILE", "CONFIG_FIELDS", "REQUIRED_FIELDS", "AGGREGATES", "SCORE_SOURCES",
    "score_of", "score_source_of", "Config", "Problem", "Run",
    "RunCollection", "Interval", "read_run", "find_metrics_files", "load_runs", "ScoreRow",
    "human_normalize", "normalize", "normalization_label", "truncated_of", "HUMAN_SUITES",
    "MINMAX_SUITES", "NORMALIZATION_LABELS", "select_scores", "ScoreMatrices", "score_matrices", "aggregate_function",
    "aggregate_scores", "probability_of_improvement", "baseline_pairs", "performance_profiles",
    "learning_curves",
]
