"""Writes a markdown report (tables, CSVs, PNG figures) from a tree of tfgap runs.

    python -m tfgap.launch.report RUNS_DIR --out OUT [--iteration N] [--reps N] [--seed S]
        [--references refs.json] [--policy RUN_DIR]

OUT receives report.md, CSV tables (raw_scores.csv, game_scores.csv, aggregates.csv,
probability_of_improvement.csv, dormant.csv, effective_parameters.csv) and figures
(aggregate_vs_width.png, learning_curves.png, dormant.png, performance_profiles.png,
gradcam.png). Parts without data are stated in report.md, never silently dropped.

`--policy RUN_DIR` (a tfgap.launch.train run directory) or, from Python,
`write_report(runs_dir, out, network=net, observations=obs)` adds a Grad-CAM grid and the
effective-parameter table of a tfgap network.
"""

if __name__ == "__main__":
  # `python -m`: before TensorFlow is imported, which reads its oneDNN and log settings once.
  from tfgap.launch import runtime  # pylint: disable=g-import-not-at-top
  runtime.prepare_process(renderer=True)

import argparse
import csv
import dataclasses
import json
import os
import sys
from typing import List

import numpy as np

from tfgap.analysis import aggregate as agg
from tfgap.analysis import dormant as dormant_lib


@dataclasses.dataclass
class ReportResult:
  """What `write_report` wrote.

  Attributes:
    report: path of report.md.
    files: every file written (report.md included).
    problems: runs skipped or left out, as `Problem`s.
    notes: human-readable lines about parts that could not be produced.
    games_without_reference: games left out of normalised aggregates.
  """
  report: str
  files: List[str]
  problems: List[agg.Problem]
  notes: List[str]
  games_without_reference: List[str]


def _fmt(value, digits=3):
  if value is None:
    return "-"
  if isinstance(value, float):
    if value.is_integer() and abs(value) < 1e15:
      return str(int(value))
    return f"{value:.{digits}f}"
  return str(value)


def _md_table(headers, rows):
  lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  for row in rows:
    lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
  return "\n".join(lines)


def _write_csv(path, headers, rows):
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(headers)
    writer.writerows(rows)
  return path


def aggregate_headers():
  """CSV headers of `aggregate_cells`: each aggregate, its CI's low and high end."""
  return [h for name in agg.AGGREGATES for h in (name, f"{name} low", f"{name} high")]


def aggregate_cells(values):
  """One configuration's {aggregate: interval} as (CSV cells, markdown cells).

  The CSV cells are point, low and high per aggregate (`aggregate_headers`); the markdown cells
  "point [low, high]" per aggregate, in `agg.AGGREGATES` order.
  """
  intervals = [values[name] for name in agg.AGGREGATES]
  return ([x for v in intervals for x in (v.point, v.low, v.high)],
          [f"{v.point:.3f} [{v.low:.3f}, {v.high:.3f}]" for v in intervals])


def _config_cells(config):
  return [config.agent, config.encoder, config.bottleneck, config.width_scale]


class Writer:
  """Collects a report's markdown sections, the files it writes and its notes.

  tfgap's report and a study's report (`tfgap.launch.studies.report`) both write through it.

  Attributes:
    out: the output folder (created).
    sections: markdown sections, joined by `finish`.
    files: every file written.
    notes: lines about parts that could not be produced (also added as sections).
  """

  def __init__(self, out):
    self.out = str(out)
    os.makedirs(self.out, exist_ok=True)
    self.sections = []
    self.files = []
    self.notes = []

  def path(self, name):
    return os.path.join(self.out, name)

  def csv(self, name, headers, rows):
    self.files.append(_write_csv(self.path(name), headers, rows))
    return name

  def figure(self, name, fn, *args, **kwargs):
    """Writes `name` with `fn(*args, path=..., **kwargs)` (a tfgap.analysis.plots function)."""
    fn(*args, path=self.path(name), **kwargs)
    self.files.append(self.path(name))
    return name

  def save_figure(self, name, fig):
    """Writes a drawn `matplotlib.figure.Figure` as `name` (PNG at 100 dpi, as plots does)."""
    fig.tight_layout()
    fig.savefig(self.path(name), dpi=100)
    self.files.append(self.path(name))
    return name

  def add(self, text):
    self.sections.append(text)

  def note(self, text):
    self.notes.append(text)
    self.add(f"*{text}*")

  def finish(self, name):
    """Writes the sections as the markdown file `name`; returns its path."""
    path = self.path(name)
    with open(path, "w", encoding="utf-8") as f:
      f.write("\n\n".join(self.sections) + "\n")
    self.files.append(path)
    return path


def _raw_tables(w, rows):
  w.add("## Raw scores\n\nScore of every run at the selected iteration (raw game score; all games, "
        "with or without reference scores).")
  headers = ["agent", "encoder", "bottleneck", "width_scale", "suite", "game", "seed",
             "iteration", "env_steps", "score", "score_source", "truncated_episodes",
             "normalized", "normalization", "path"]
  w.csv("raw_scores.csv", headers, [
      _config_cells(r.config) + [r.suite, r.game, r.seed, r.iteration, r.env_steps, r.score,
                                 r.source, r.truncated, r.normalized,
                                 agg.NORMALIZATION_LABELS.get(r.normalization), r.path]
      for r in rows])
  grouped = {}
  for r in rows:
    grouped.setdefault((r.config, r.game), []).append(r)
  table = []
  for (config, game), runs in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1])):
    scores = np.array([r.score for r in runs])
    normalized = [r.normalized for r in runs if r.normalized is not None]
    table.append(_config_cells(config) + [
        game, len(runs), float(scores.mean()), float(scores.std()),
        float(np.mean(normalized)) if normalized else None])
  headers = ["agent", "encoder", "bottleneck", "width_scale", "game", "runs", "mean_return",
             "std_return", "mean_normalized"]
  w.csv("game_scores.csv", headers, table)
  w.add(_md_table(headers, table) + "\n\nCSV: `raw_scores.csv` (per run), `game_scores.csv`.")


def _counts(matrices):
  """"N runs on G games (C configurations)": what a normalised figure aggregates."""
  runs = sum(int(m.size) for m in matrices.matrices.values())
  games = sorted({g for names in matrices.games.values() for g in names})
  configs = len(matrices.matrices)
  return (f"{runs} run{'s' if runs != 1 else ''} on {len(games)} game"
          f"{'s' if len(games) != 1 else ''} ({configs} configuration"
          f"{'s' if configs != 1 else ''})")


def _aggregate_tables(w, matrices, reps, seed, normalization="human-normalised"):
  """IQM/median/mean/optimality gap, probability of improvement, profiles; returns aggregates."""
  w.add(f"## Aggregates ({normalization}, 95% stratified bootstrap CIs, {reps} reps)")
  if not matrices.matrices:
    w.note("No configuration has a game with reference scores: no normalised aggregates.")
    return None
  counts = _counts(matrices)
  aggregates = agg.aggregate_scores(matrices.matrices, reps=reps, seed=seed)
  headers = ["agent", "encoder", "bottleneck", "width_scale", "runs_per_game",
             "games"] + aggregate_headers()
  rows, md_rows = [], []
  for label, values in aggregates.items():
    n_runs, n_games = matrices.matrices[label].shape
    csv_cells, md_cells = aggregate_cells(values)
    rows.append(_config_cells(matrices.configs[label]) + [n_runs, n_games] + csv_cells)
    md_rows.append([label, n_runs, n_games] + md_cells)
  w.csv("aggregates.csv", headers, rows)
  w.add(_md_table(["configuration", "runs/game", "games"] + list(agg.AGGREGATES), md_rows) +
        "\n\nCSV: `aggregates.csv`. Games per configuration: " + "; ".join(
            f"{label}: {', '.join(games)}" for label, games in matrices.games.items()))
  from tfgap.analysis import plots  # pylint: disable=g-import-not-at-top
  name = w.figure("aggregate_vs_width.png", plots.plot_aggregate_vs_width, aggregates,
                  matrices.configs, normalization=normalization,
                  title=f"IQM, 95% CIs: {counts}")
  w.add(f"### IQM against width scale\n\n![IQM vs width]({name})\n\n*IQM of {counts}, "
        f"{normalization}; error bars: 95% stratified bootstrap CIs; the y axis includes 0.*")

  pairs = agg.baseline_pairs(matrices.configs)
  w.add("### Probability of improvement over the flatten baseline (same agent, encoder, width)")
  if pairs:
    poi = agg.probability_of_improvement(matrices, pairs, reps=reps, seed=seed)
    rows = [[x, y, v.point, v.low, v.high, " ".join(games)] for (x, y), (v, games) in poi.items()]
    headers = ["X", "Y", "P(X>Y)", "low", "high", "games"]
    w.csv("probability_of_improvement.csv", headers, rows)
    w.add(_md_table(headers[:5], [r[:5] for r in rows]) +
          "\n\nCSV: `probability_of_improvement.csv`.")
  else:
    w.note("No configuration has a flatten baseline with the same agent, encoder and width "
           "scale: no probability of improvement.")

  taus, profiles, cis = agg.performance_profiles(matrices.matrices, reps=reps, seed=seed)
  name = w.figure("performance_profiles.png", plots.plot_performance_profiles, taus, profiles,
                  cis, normalization=normalization, title=f"Performance profiles: {counts}")
  w.add(f"### Performance profiles\n\n![performance profiles]({name})\n\n*Fraction of runs "
        f"with a {normalization} score above tau: {counts}.*")
  return aggregates


_SOURCE_LABELS = {"train": "training return", "eval": "eval return"}


def _learning_curves(w, collection):
  from tfgap.analysis import plots  # pylint: disable=g-import-not-at-top
  curves = agg.learning_curves(collection)
  sources = sorted({agg.score_source_of(r) for run in collection.runs for r in run.records
                    if agg.score_of(r) is not None})
  ylabel = " / ".join(_SOURCE_LABELS.get(s, s) for s in sources) or "score"
  runs = [run for run in collection.runs if any(agg.score_of(r) is not None
                                                 for r in run.records)]
  games = sorted({run.game for run in runs})
  counts = (f"{len(runs)} run{'s' if len(runs) != 1 else ''} on {len(games)} game"
            f"{'s' if len(games) != 1 else ''}")
  rows = [_config_cells(config) + [game] + list(p) for (config, game), points in curves.items()
          for p in points]
  w.csv("learning_curves.csv", ["agent", "encoder", "bottleneck", "width_scale", "game",
                                "iteration", "env_steps", "mean_score", "min", "max",
                                "runs"], rows)
  name = w.figure("learning_curves.png", plots.plot_learning_curves, curves, ylabel=ylabel,
                  title=f"Raw {ylabel} (mean over seeds, band: min to max): {counts}")
  w.add(f"## Learning curves\n\nMean raw score ({ylabel}) over seeds (band: min to max) "
        f"against env steps, {counts}.\n\n![learning curves]({name})\n\nCSV: "
        "`learning_curves.csv`.")


def _dormant(w, collection):
  from tfgap.analysis import plots  # pylint: disable=g-import-not-at-top
  w.add("## Dormant neurons")
  series = plots.dormant_series(collection)
  if not series:
    w.note("No dormant/<group>/<tau> fields in any metrics.jsonl: no dormant-neuron figure.")
    return
  rows = []
  for (config, group, tau), points in sorted(series.items(), key=lambda kv: kv[0]):
    env_steps, fraction, n = points[-1]
    rows.append(_config_cells(config) + [group, tau, env_steps, fraction, n])
  headers = ["agent", "encoder", "bottleneck", "width_scale", "group", "tau", "env_steps",
             "dormant_fraction", "runs"]
  w.csv("dormant.csv", headers, rows)
  name = w.figure("dormant.png", plots.plot_dormant, series)
  # Markdown: one row per configuration, one column per group and tau.
  columns = sorted({(r[4], r[5]) for r in rows},
                   key=lambda gt: (_GROUP_ORDER.index(gt[0]), float(gt[1])))
  pivot = {}
  for row in rows:
    pivot.setdefault(tuple(row[:4]), {})[(row[4], row[5])] = row[7]
  md_rows = [[agg.Config(*key).label] + [values.get(c) for c in columns]
             for key, values in sorted(pivot.items())]
  md_headers = ["configuration"] + [f"{g} (tau {t})" for g, t in columns]
  w.add("Fraction of tau-dormant neurons per layer group (mean over runs) at the last measured "
        f"iteration:\n\n{_md_table(md_headers, md_rows)}\n\n![dormant]({name})\n\n"
        "CSV: `dormant.csv` (with env steps and run counts).")


_GROUP_ORDER = dormant_lib.GROUPS + (dormant_lib.ALL,)


def _network_sections(w, network, observations, actions, action_names=None):
  from tfgap.analysis import effective  # pylint: disable=g-import-not-at-top
  from tfgap.analysis import gradcam  # pylint: disable=g-import-not-at-top
  try:
    info = effective.effective_parameters(network)
  except ValueError as err:
    w.note(f"Effective parameters not computed: {err}")
  else:
    headers = ["bottleneck", "live_weights", "dense_equivalent", "effective_density"]
    rows = [[info.bottleneck, info.live, info.dense_equivalent, info.density]]
    w.csv("effective_parameters.csv", headers, rows)
    w.add("Effective bottleneck parameters (live weights / flatten-equivalent weights):\n\n" +
          _md_table(headers, rows))
  if observations is None:
    w.note("No observations given: no Grad-CAM.")
    return
  maps, chosen = gradcam.grad_cam(network, observations, actions=actions)
  name = w.figure("gradcam.png", lambda path: gradcam.save_grid(
      path, observations, maps, actions=chosen, action_names=action_names))
  uniform = sum(gradcam.is_uniform(m) for m in maps)
  w.add(f"### Grad-CAM\n\nLast frame of each of {len(maps)} observations with the Grad-CAM map "
        "of the explained action (" + ("titled with the env's action meanings" if action_names
                                       else "no action meanings known: action indices") +
        f"; colour scale 0 to the frame's peak).\n\n![Grad-CAM]({name})")
  if uniform:
    w.note(f"{uniform} of {len(maps)} Grad-CAM maps are uniform (constant over the frame: the "
           "explained Q-value has no positive evidence in any region); their panels say "
           "\"uniform map\".")


def write_report(runs_dir, out, iteration=None, reps=2000, seed=0, references=None,
                 network=None, observations=None, actions=None, network_note=None,
                 action_names=None):
  """Writes report.md, CSVs and PNGs for the runs under `runs_dir`.

  Args:
    runs_dir: directory tree of run directories with metrics.jsonl.
    out: output directory (created).
    iteration: iteration to score (None: each run's last).
    reps: bootstrap replications.
    seed: bootstrap seed.
    references: {game: (low, high)} applied to every run; None for the suite defaults
      (human-normalised Atari/Atari100K and runs without a suite, min-max normalised Procgen,
      no reference for other suites; see `tfgap.analysis.aggregate.normalize`).
    network: optional tfgap network (encode/decode/activations/parts) or model from
      `tfgap.networks.build_keras_model`, for Grad-CAM and effective parameters.
    observations: `[N, H, W, C]` observations for Grad-CAM.
    actions: actions to explain (None: greedy).
    network_note: a line about where the network comes from, stated in its section.
    action_names: the env's action meanings (indexed by action) for the Grad-CAM titles.

  Returns:
    `ReportResult`.

  Raises:
    ValueError: runs_dir missing or without any metrics.jsonl, or no valid run at all (report.md
      is still written, listing the problems).
  """
  collection = agg.load_runs(runs_dir)
  if os.path.exists(out) and not os.path.isdir(out):
    raise ValueError(f"--out {out} is a file; accepted: a folder (new or existing) for report.md "
                     "and its figures")
  w = Writer(out)
  rows, problems, no_reference = agg.select_scores(collection, iteration, references)
  problems = collection.problems + problems
  w.add(f"# tfgap report\n\nRuns directory: `{os.path.abspath(runs_dir)}`. "
        f"Valid runs: {len(collection.runs)}; skipped or left out: {len(problems)}. "
        f"Configurations: {len(collection.configs)}; games: {', '.join(collection.games) or '-'}. "
        f"Scores at iteration: {'last of each run' if iteration is None else iteration}.")
  if rows:
    w.add(_score_sources_line(rows))
  if not rows:
    w.add("## Problems\n\n" + "\n".join(f"- `{p}`" for p in problems))
    w.finish("report.md")
    raise ValueError(f"no valid runs under {runs_dir!r}: " + "; ".join(str(p) for p in problems))

  matrices = agg.score_matrices(rows, normalized=True)
  problems += matrices.problems
  normalization = agg.normalization_label(rows)
  _raw_tables(w, rows)
  _truncation_note(w, rows)
  if no_reference:
    w.note(f"Games without reference scores, left out of normalised aggregates (raw tables "
           f"include them): {', '.join(no_reference)}. Atari games without a human score and "
           "suites without a default reference (MinAtar, DMC, custom; \"game (suite)\") are "
           "normalised only with --references.")
  _aggregate_tables(w, matrices, reps, seed, normalization)
  _learning_curves(w, collection)
  _dormant(w, collection)
  if network is not None:
    from tfgap.analysis import adapters  # pylint: disable=g-import-not-at-top
    network = adapters.as_network(network)
  if network is not None or network_note:
    w.add("## Network")
    if network_note:
      w.add(network_note)
    if network is not None:
      _network_sections(w, network, observations, actions, action_names)
  w.add("## Skipped or left out\n\n" + (
      "\n".join(f"- `{p}`" for p in problems) if problems else "Nothing."))
  report = w.finish("report.md")
  return ReportResult(report=report, files=w.files, problems=problems, notes=w.notes,
                      games_without_reference=no_reference)


def _truncation_note(w, rows):
  """Names the runs whose scored episodes were cut by a step cap (partial game scores)."""
  cut = [r for r in rows if r.truncated]
  if not cut:
    return
  total = sum(r.truncated for r in cut)
  w.note(f"Truncated scores: {len(cut)} run{'s' if len(cut) != 1 else ''} scored "
         f"{total} episode{'s' if total != 1 else ''} cut by a step cap (max_episode_steps, "
         "Atari's 27,000 agent steps), whose returns are partial game scores: " + "; ".join(
             f"{r.path} ({r.truncated} {r.source} episode{'s' if r.truncated != 1 else ''}, "
             f"iteration {r.iteration})" for r in cut) + ".")


def _score_sources_line(rows):
  """Which score the report aggregated: training or evaluation returns, with run counts."""
  counts = {}
  for r in rows:
    counts[r.source] = counts.get(r.source, 0) + 1
  names = {"train": "training returns (the mean raw score of the training episodes that ended "
                    "in the iteration: Dopamine's continuous_train schedule)",
           "eval": "evaluation returns (mean raw score of the evaluation episodes)"}
  parts = [f"{names.get(k, k)} for {n} run{'s' if n != 1 else ''}" for k, n in
           sorted(counts.items())]
  return "Score aggregated: " + "; ".join(parts) + "."


def _load_references(path):
  try:
    with open(path, "r", encoding="utf-8") as f:
      data = json.load(f)
    return {str(k): (float(v[0]), float(v[1])) for k, v in data.items()}
  except (OSError, ValueError, TypeError, IndexError, AttributeError) as err:
    raise ValueError(f"references file {path!r} is invalid ({err}); accepted: a JSON object "
                     '{"Game": [random_score, human_score], ...}') from err


def _latest_checkpoint(run_dir):
  """The newest checkpoint whose network state passes its MANIFEST check (as the Runner resumes)."""
  from tfgap.launch import checkpoints  # pylint: disable=g-import-not-at-top
  checkpointer = checkpoints.Checkpointer(os.path.join(run_dir, "checkpoints"))
  names = [p.name for p in checkpointer.list()]
  if not names:
    raise ValueError(f"run directory {run_dir!r} has no checkpoints/ckpt-* folder; accepted: a "
                     "run directory written by tfgap.launch.train")
  for path, _ in checkpointer.candidates(under="tf"):  # The replay is not needed.
    return os.path.join(path, "tf", "state"), path.name
  raise ValueError(f"run directory {run_dir!r}: every checkpoint ({', '.join(names)}) fails its "
                   "MANIFEST check")


# MinAtar's six actions (minatar.Environment's action map: no-op, left, up, right, down, fire).
_MINATAR_ACTIONS = ("NOOP", "LEFT", "UP", "RIGHT", "DOWN", "FIRE")


def env_action_names(env):
  """The meaning of each agent action of a tfgap env, or None when the env has none to give.

  Atari: ALE's `get_action_meanings()` of the first game; MinAtar: the names of its action set.
  """
  games = getattr(env, "games", None) or ()
  game = games[0] if games else None
  try:
    emulator = getattr(game, "env", None)
    if emulator is not None and hasattr(emulator, "unwrapped"):
      meanings = getattr(emulator.unwrapped, "get_action_meanings", None)
      if meanings is not None:
        return [str(m) for m in meanings()]
    action_set = getattr(game, "action_set", None)
    if action_set is not None and type(game).__name__ == "MinAtarGame":
      return [_MINATAR_ACTIONS[int(a)] for a in action_set]
  except (AttributeError, IndexError, TypeError, ValueError):
    pass  # Names are a nicety of the figure: fall back to action indices.
  return None


def load_run_network(run_dir, num_observations=8, seed=0, steps_between=8):
  """Rebuilds a training run's Q-network and restores its latest checkpoint.

  Reads `run_dir/config.gin` (the operative config tfgap.launch.train saves), builds the run's
  evaluation environment and Q-network through `tfgap.launch.experiment` (as the Runner does),
  restores the weights from the newest valid `checkpoints/ckpt-*`, and plays random actions to
  collect observations for Grad-CAM.

  Args:
    run_dir: a run directory of tfgap.launch.train.
    num_observations: observations to collect.
    seed: environment and action seed.
    steps_between: random steps between two collected observations.

  Returns:
    (network, observations `[num_observations, H, W, C]`, description string, action names or
    None: see `env_action_names`).

  Raises:
    ValueError: when run_dir is no such run directory or its checkpoint does not match.

  Note: gin's global config is cleared before and after (the run's bindings are parsed into it).
  """
  config_path = os.path.join(run_dir, "config.gin")
  if not os.path.isfile(config_path):
    raise ValueError(f"{run_dir!r} has no config.gin; accepted: a run directory written by "
                     "tfgap.launch.train (a PolicySaver SavedModel alone has no encoder "
                     "feature map for Grad-CAM)")
  state_path, checkpoint = _latest_checkpoint(run_dir)
  import gin  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfgap.launch import experiment  # pylint: disable=g-import-not-at-top
  try:
    config = experiment.load_config(config_path)
    env = experiment.make_env(config, "eval", num_envs=1, seed=seed)
    network = experiment.make_network(config, env)
    network.create_variables()
  finally:
    gin.clear_config()
  status = tf.train.Checkpoint(q_network=network).read(state_path)
  try:
    status.assert_existing_objects_matched()
  except AssertionError as err:
    raise ValueError(f"checkpoint {state_path} does not match the network rebuilt from "
                     f"{config_path}: {err}") from err
  status.expect_partial()  # Optimizer, target network and counters are not needed here.
  _, action_spec = experiment.specs(env)
  rng = np.random.default_rng(seed)
  num_actions = int(action_spec.maximum) - int(action_spec.minimum) + 1
  observations = []
  time_step = env.reset()
  while len(observations) < num_observations:
    observations.append(np.asarray(time_step.observation))
    for _ in range(steps_between):
      time_step = env.step(np.asarray(rng.integers(num_actions), action_spec.dtype.as_numpy_dtype))
  action_names = env_action_names(env)
  env.close()
  description = f"{config.suite}/{config.game}, {config.agent}, {checkpoint}"
  return network, np.stack(observations), description, action_names


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog="python -m tfgap.launch.report",
      description="Aggregate tfgap runs (metrics.jsonl) into a markdown report with CSVs and "
                  "PNG figures (rliable IQM, learning curves, dormant neurons, profiles).")
  parser.add_argument("runs_dir", help="directory tree of run directories with metrics.jsonl")
  parser.add_argument("--out", required=True, help="output directory for report.md, CSVs, PNGs")
  parser.add_argument("--iteration", type=int, default=None,
                      help="iteration to score (default: each run's last)")
  parser.add_argument("--reps", type=int, default=2000, help="bootstrap replications")
  parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
  parser.add_argument("--references", default=None,
                      help='JSON {"Game": [low, high]} for every run (default per suite: '
                           "Atari human/random, Procgen min/max, none for MinAtar/DMC)")
  parser.add_argument("--policy", default=None,
                      help="run directory of tfgap.launch.train (config.gin + checkpoints/): "
                           "adds Grad-CAM and effective parameters of its latest network")
  return parser.parse_args(argv)


def main(argv=None):
  """Runs the CLI; returns the process exit code."""
  args = parse_args(argv)
  try:
    if args.reps < 1:
      raise ValueError(f"--reps {args.reps} is invalid; accepted: an integer >= 1")
    references = _load_references(args.references) if args.references else None
    network = observations = network_note = action_names = None
    if args.policy:
      network, observations, description, action_names = load_run_network(args.policy,
                                                                          seed=args.seed)
      network_note = f"Network restored from `{args.policy}` ({description})."
    result = write_report(args.runs_dir, args.out, iteration=args.iteration, reps=args.reps,
                          seed=args.seed, references=references, network=network,
                          observations=observations, network_note=network_note,
                          action_names=action_names)
  except ValueError as err:
    print(f"tfgap report: error: {err}", file=sys.stderr)
    return 1
  except OSError as err:  # Read-only or full disk under --out: one line, no traceback.
    where = err.filename or args.out
    print(f"tfgap report: error: cannot write {where}: {err.strerror or err}; pick another --out "
          "or free/fix that folder", file=sys.stderr)
    return 1
  for problem in result.problems:
    print(f"tfgap report: skipped: {problem}", file=sys.stderr)
  for note in result.notes:
    print(f"tfgap report: note: {note}", file=sys.stderr)
  print(f"tfgap report: wrote {result.report} ({len(result.files)} files)")
  return 0


def run():
  """Console entry point (`tfgap-report`)."""
  sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
  run()
