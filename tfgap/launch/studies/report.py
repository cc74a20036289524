"""A study's figures, tables and markdown, from its trials' metrics.jsonl.

    python -m tfgap.launch.study report ROOT --out OUT

OUT receives study.md and, each figure with the CSV of its numbers beside it:

- aggregates.csv: IQM, median, mean and optimality gap with 95% stratified-bootstrap CIs per
  variant (rliable through `tfgap.analysis.aggregate`);
- <metric>_vs_<axis>.png/.csv: each aggregate against the study's x axis (width, depth, ...), one
  line per combination of the other axes;
- learning_curves.png/.csv: IQM over games and seeds per iteration, with its 95% CI band;
- dormant.png/.csv: the dormant-neuron fraction per part (phi, bottleneck, psi, all) at the last
  measured iteration, against the x axis;
- compute.csv (and a table in study.md): parameters and FLOPs per part of each variant's network,
  measured agent steps/s and updates/s;
- tfgap_report/: tfgap's own report (`tfgap.launch.report.write_report`: per-run tables,
  probability of improvement, performance profiles) when the variants are distinct
  configurations (agent, encoder, bottleneck, width).

Scores are normalised per the study: "references" (Atari human-normalised, the spec's
`references` for other games) or "max" (each game divided by the best score a trial of the study
reached in it). Games without a reference are named and left out of the aggregates.
"""

import dataclasses
import math
import os
from typing import List

import numpy as np

from tfgap.analysis import aggregate as agg
from tfgap.launch import report as report_lib

_CURVE_POINTS = 25  # Iterations per learning curve (evenly spread) that get a bootstrap CI.
_CURVE_REPS = 500


@dataclasses.dataclass
class StudyReport:
  """What `write_study_report` wrote: study.md, every file, and notes on what is missing."""
  report: str
  files: List[str]
  notes: List[str]
  aggregates: dict


def _slug(text):
  return "".join(c.lower() if c.isalnum() else "_" for c in text).strip("_")


def _fmt(value, digits=3):
  if value is None:
    return "-"
  if isinstance(value, float):
    if math.isnan(value):
      return "-"
    return f"{value:.{digits}f}"
  return str(value)


def _md_table(headers, rows):
  lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
  return "\n".join(lines)


class _Variants:
  """The plan's variants with their axis labels, x values and series names."""

  def __init__(self, plan):
    self.axes = plan["axes"]
    self.x_axis = plan.get("x_axis")
    self.labels = {}
    for trial in plan["trials"]:
      self.labels.setdefault(trial["variant"], [tuple(l) for l in trial["labels"]])
    self.names = list(self.labels)

  def x(self, variant):
    if self.x_axis:
      axis, values = self.x_axis
      return float(values[dict(self.labels[variant])[axis]])
    return float(self.names.index(variant) + 1)

  @property
  def x_name(self):
    return self.x_axis[0] if self.x_axis else "variant"

  def series(self, variant):
    skip = self.x_axis[0] if self.x_axis else None
    parts = [label for axis, label in self.labels[variant] if axis != skip]
    return "/".join(parts) if parts else "all"

  def label(self, variant, axis):
    return dict(self.labels[variant]).get(axis, "")


def _references(plan, raw_rows):
  """{game: (low, high)} for the study's normalisation."""
  from tfgap.envs import games as games_lib  # pylint: disable=g-import-not-at-top
  refs = {g: tuple(v) for g, v in (plan.get("references") or {}).items()}
  if plan.get("normalization", "references") == "max":
    best = {}
    for row in raw_rows:
      best[row.game] = max(best.get(row.game, -math.inf), row.score)
    out = {}
    for game, top in best.items():
      low = refs.get(game, (0.0, None))[0]
      out[game] = (low, top if top != low else low + 1.0)
    return out
  for game in {r.game for r in raw_rows}:
    if game not in refs and games_lib.has_reference_scores(game):
      refs[game] = tuple(games_lib.reference_scores(game))
  return refs


def write_study_report(root_dir, out, reps=2000, seed=0):
  """Writes study.md, CSVs and PNGs of the study in root_dir (see the module docstring).

  Raises:
    ValueError: root_dir holds no study or no trial has written a metrics line yet.
  """
  from tfgap.launch import study as study_lib  # pylint: disable=g-import-not-at-top
  study_dir = study_lib.StudyDir(root_dir)
  plan, _ = study_dir.trials()
  variants = _Variants(plan)
  w = report_lib.Writer(out)
  rows = study_lib.status_rows(study_dir.root)
  counts = {}
  for r in rows:
    counts[r.state] = counts.get(r.state, 0) + 1
  w.add(f"# Study {plan['study']} (budget {plan.get('budget') or '-'})\n\n"
        f"{plan.get('description', '')}\n\nFolder: `{study_dir.root}`. Trials: {len(rows)} ("
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"); suite {plan['suite']}, "
        f"{len(plan['games'])} games, seeds {plan['seeds']}; axes: " +
        "; ".join(f"{a} ({', '.join(v)})" for a, v in plan["axes"].items()) + ".")

  collections = {}
  for variant in variants.names:
    folder = study_dir.trials_root / variant
    try:
      collections[variant] = agg.load_runs(str(folder))
    except ValueError:
      w.note(f"Variant {variant} has no metrics.jsonl yet: left out.")
  if not collections:
    w.finish("study.md")
    raise ValueError(f"no trial of the study in {study_dir.root} has written metrics yet; run "
                     "`study run` first (study status shows where it stands)")

  raw = {v: agg.select_scores(c, None, references={})[0] for v, c in collections.items()}
  refs = _references(plan, [r for rs in raw.values() for r in rs])
  w.add(_normalisation_text(plan, refs))
  matrices, missing = {}, set()
  for variant, collection in collections.items():
    selected, problems, no_reference = agg.select_scores(collection, None, refs)
    missing.update(no_reference)
    built = agg.score_matrices(selected, normalized=True)
    for problem in problems + built.problems + collection.problems:
      w.note(f"{variant}: {problem}")
    if len(built.matrices) == 1:
      (label, matrix), = built.matrices.items()
      matrices[variant] = (matrix, built.games[label])
  if missing:
    w.note(f"Games without a normalisation reference, left out of the aggregates: "
           f"{', '.join(sorted(missing))}.")

  aggregates = {}
  if matrices:
    aggregates = agg.aggregate_scores({v: m for v, (m, _) in matrices.items()}, reps=reps,
                                      seed=seed)
    _aggregate_sections(w, variants, matrices, aggregates, reps)
  else:
    w.note("No variant has scores with references: no aggregates.")
  _learning_curves(w, variants, collections, refs, seed)
  _dormant(w, variants, collections)
  _compute(w, variants, collections)
  _tfgap_report(w, collections, refs, reps, seed)
  return StudyReport(report=w.finish("study.md"), files=w.files, notes=w.notes,
                     aggregates=aggregates)


def _normalisation_text(plan, refs):
  if plan.get("normalization") == "max":
    how = ("each game's score divided by the best score a trial of this study reached in it "
           "(after subtracting the spec's low reference, default 0)")
  else:
    how = ("(score - random) / (human - random) with tfgap's Atari references, and the spec's "
           "`references` for other games")
  table = _md_table(["game", "low", "high"], [[g, lo, hi] for g, (lo, hi) in sorted(refs.items())])
  return f"## Normalisation\n\nScores are normalised as {how}.\n\n{table}"


def _aggregate_sections(w, variants, matrices, aggregates, reps):
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  axes = list(variants.axes)
  headers = (["variant"] + axes + [variants.x_name + "_value", "runs_per_game", "games"] +
             report_lib.aggregate_headers())
  rows, md_rows = [], []
  for variant, values in aggregates.items():
    matrix, games = matrices[variant]
    csv_cells, md_cells = report_lib.aggregate_cells(values)
    rows.append([variant] + [variants.label(variant, a) for a in axes] + [
        variants.x(variant), matrix.shape[0], " ".join(games)] + csv_cells)
    md_rows.append([variant, matrix.shape[0], len(games)] + md_cells)
  w.csv("aggregates.csv", headers, rows)
  w.add(f"## Aggregates (normalised, 95% stratified-bootstrap CIs, {reps} reps)\n\n" +
        _md_table(["variant", "runs/game", "games"] + list(agg.AGGREGATES), md_rows) +
        "\n\nCSV: `aggregates.csv`.")
  for name in agg.AGGREGATES:
    stem = f"{_slug(name)}_vs_{_slug(variants.x_name)}"
    series = {}
    for variant, values in aggregates.items():
      series.setdefault(variants.series(variant), []).append((variants.x(variant), values[name],
                                                              variant))
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    csv_rows = []
    for label, points in sorted(series.items()):
      points.sort(key=lambda p: p[0])
      x = [p[0] for p in points]
      y = np.array([p[1].point for p in points])
      err = np.array([[p[1].point - p[1].low for p in points],
                      [p[1].high - p[1].point for p in points]])
      ax.errorbar(x, y, yerr=np.maximum(err, 0.0), marker="o", capsize=4, label=label)
      csv_rows += [[label, p[2], p[0], p[1].point, p[1].low, p[1].high] for p in points]
    _x_ticks(ax, variants)
    ax.set_ylabel(f"{name} (normalised)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    x_header = variants.x_name if variants.x_axis else "x"
    w.csv(f"{stem}.csv", ["series", "variant", x_header, name, "low", "high"], csv_rows)
    png = w.save_figure(f"{stem}.png", fig)
    w.add(f"### {name} against {variants.x_name}\n\n![{name}]({png})\n\nCSV: `{stem}.csv`.")


def _x_ticks(ax, variants):
  if variants.x_axis:
    axis, values = variants.x_axis
    ticks = sorted(set(values.values()))
    if len(ticks) > 1 and min(ticks) > 0 and max(ticks) / min(ticks) >= 4:
      ax.set_xscale("log", base=2)
    ax.set_xticks(ticks)
    names = {v: k for k, v in values.items()}
    ax.set_xticklabels([names[t] for t in ticks])
    ax.set_xlabel(axis)
  else:
    ax.set_xticks([variants.x(v) for v in variants.names])
    ax.set_xticklabels(variants.names, rotation=30, fontsize=7)
    ax.set_xlabel("variant")


def _learning_curves(w, variants, collections, refs, seed):
  """IQM over games and seeds per iteration with a 95% stratified-bootstrap band."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  rows = []
  curves = {}
  for variant, collection in collections.items():
    iterations = sorted({r["iteration"] for run in collection.runs for r in run.records
                         if agg.score_of(r) is not None})
    if len(iterations) > _CURVE_POINTS:
      picks = np.unique(np.linspace(0, len(iterations) - 1, _CURVE_POINTS).round().astype(int))
      iterations = [iterations[i] for i in picks]
    for iteration in iterations:
      selected, _, _ = agg.select_scores(collection, iteration, refs)
      built = agg.score_matrices(selected, normalized=True)
      if len(built.matrices) != 1:
        continue
      (label, matrix), = built.matrices.items()
      value = agg.aggregate_scores({label: matrix}, reps=_CURVE_REPS, seed=seed)[label]["IQM"]
      steps = float(np.mean([r.env_steps for r in selected]))
      curves.setdefault(variant, []).append((steps, value))
      rows.append([variant, iteration, steps, value.point, value.low, value.high,
                   matrix.size])
  w.add("## Learning curves")
  if not rows:
    w.note("No normalised scores per iteration: no learning curves.")
    return
  w.csv("learning_curves.csv", ["variant", "iteration", "env_steps", "IQM", "low", "high",
                                "runs"], rows)
  fig = Figure(figsize=(7.0, 4.5))
  ax = fig.subplots()
  for variant, points in curves.items():
    x = [p[0] for p in points]
    line, = ax.plot(x, [p[1].point for p in points], marker=".", label=variant)
    ax.fill_between(x, [p[1].low for p in points], [p[1].high for p in points],
                    color=line.get_color(), alpha=0.15)
  ax.set_xlabel("env steps")
  ax.set_ylabel("IQM (normalised)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  png = w.save_figure("learning_curves.png", fig)
  w.add(f"IQM over games and seeds at each scored iteration (up to {_CURVE_POINTS} per curve), "
        f"band: 95% stratified-bootstrap CI ({_CURVE_REPS} reps).\n\n![learning curves]({png})"
        "\n\nCSV: `learning_curves.csv`.")


def _dormant(w, variants, collections):
  """Dormant fraction per part at each variant's last measured iteration, against the x axis."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from tfgap.analysis import dormant as dormant_lib  # pylint: disable=g-import-not-at-top
  from tfgap.analysis import plots  # pylint: disable=g-import-not-at-top
  w.add("## Dormant neurons")
  rows = []
  for variant, collection in collections.items():
    for (_, group, tau), points in plots.dormant_series(collection).items():
      steps, fraction, n = points[-1]
      rows.append([variant, group, tau, steps, fraction, n])
  if not rows:
    w.note("No dormant/<part>/<tau> fields in the trials' metrics: no dormant-neuron figure.")
    return
  w.csv("dormant.csv", ["variant", "part", "tau", "env_steps", "dormant_fraction", "runs"], rows)
  order = dormant_lib.GROUPS + (dormant_lib.ALL,)
  parts = [g for g in order if any(r[1] == g for r in rows)]
  taus = sorted({r[2] for r in rows}, key=float)
  fig = Figure(figsize=(3.4 * len(parts), 2.8 * len(taus)))
  grid = fig.subplots(len(taus), len(parts), squeeze=False)
  for i, tau in enumerate(taus):
    for j, part in enumerate(parts):
      ax = grid[i, j]
      series = {}
      for variant, group, t, _, fraction, _ in rows:
        if group == part and t == tau:
          series.setdefault(variants.series(variant), []).append((variants.x(variant), fraction))
      for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
      _x_ticks(ax, variants)
      ax.set_ylim(-0.02, 1.02)
      ax.set_title(f"{part}, tau={tau}", fontsize=9)
      ax.set_ylabel("dormant fraction")
      ax.grid(alpha=0.3)
  grid[0, 0].legend(fontsize=7)
  png = w.save_figure("dormant.png", fig)
  w.add(f"Fraction of tau-dormant neurons per part at the last measured iteration (mean over "
        f"runs).\n\n![dormant]({png})\n\nCSV: `dormant.csv`.")


def _compute(w, variants, collections):
  """Parameters and FLOPs per part (rebuilt networks) and measured rates per variant."""
  w.add("## Compute")
  headers = ["variant", "phi_params", "bottleneck_params", "psi_params", "total_params",
             "live_params", "gflops_forward", "agent_steps_per_sec", "updates_per_sec"]
  rows, failures = [], []
  for variant, collection in collections.items():
    if not collection.runs:
      continue
    try:
      costs = _network_costs(collection.runs[0].run_dir)
    except Exception as err:  # pylint: disable=broad-except
      failures.append(f"{variant}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
      costs = None
    steps_rates, update_rates = [], []
    for run in collection.runs:
      steps, updates = _rates(run.records)
      if steps is not None:
        steps_rates.append(steps)
      if updates is not None:
        update_rates.append(updates)
    parts = costs["parts"] if costs else {}
    rows.append([variant] + [parts.get(p, {}).get("params") for p in ("phi", "bottleneck", "psi")]
                + ([costs["total"]["params"], costs["total"]["live"],
                    costs["total"]["flops"] / 1e9] if costs else [None, None, None])
                + [float(np.mean(steps_rates)) if steps_rates else None,
                   float(np.mean(update_rates)) if update_rates else None])
  w.csv("compute.csv", headers, rows)
  w.add("Parameters and forward FLOPs per example of each variant's network (rebuilt from a "
        "trial's config.gin; tfgap.networks.accounting), and the training rates its trials "
        "measured (last iteration; updates/s counts only updates made in that iteration).\n\n" +
        _md_table(headers, rows) + "\n\nCSV: `compute.csv`.")
  for failure in failures:
    w.note(f"Network not rebuilt for {failure}")


def _rates(records):
  """(agent steps/s, updates/s) of a run's last iteration, from its metrics record(s)."""
  if not records:
    return None, None
  last = records[-1]
  steps_per_sec = last.get("steps_per_sec")
  if not steps_per_sec:
    return None, None
  before = records[-2] if len(records) > 1 else {"env_steps": 0, "train_steps": 0}
  env_steps = last.get("env_steps", 0) - before.get("env_steps", 0)
  updates = (last.get("train_steps") or 0) - (before.get("train_steps") or 0)
  seconds = env_steps / steps_per_sec if env_steps > 0 else None
  return float(steps_per_sec), (updates / seconds if seconds else None)


def _network_costs(run_dir):
  import gin  # pylint: disable=g-import-not-at-top
  from tfgap.launch import experiment  # pylint: disable=g-import-not-at-top
  from tfgap.networks import accounting  # pylint: disable=g-import-not-at-top
  try:
    config = experiment.load_config(os.path.join(run_dir, "config.gin"))
    env = experiment.make_env(config, "eval", num_envs=1)
    try:
      network = experiment.make_network(config, env)
    finally:
      env.close()
    return accounting.account(network)
  finally:
    gin.clear_config()


def _tfgap_report(w, collections, refs, reps, seed):
  """tfgap's own report over every trial, when the variants are distinct configurations."""
  configs = {}
  for variant, collection in collections.items():
    for config in collection.configs:
      configs.setdefault(config, set()).add(variant)
  shared = {c.label: v for c, v in configs.items() if len(v) > 1}
  w.add("## tfgap report")
  if shared:
    w.note("Variants share a configuration (agent, encoder, bottleneck, width) that tfgap's "
           "report groups runs by (" + "; ".join(f"{c}: {', '.join(sorted(v))}"
                                                 for c, v in shared.items()) +
           "): its per-configuration report is left out; the sections above are per variant.")
    return
  root = os.path.commonpath([c.root for c in collections.values()])
  out = w.path("tfgap_report")
  try:
    result = report_lib.write_report(root, out, reps=reps, seed=seed, references=refs or None)
  except ValueError as err:
    w.note(f"tfgap report not written: {err}")
    return
  w.files.extend(result.files)
  w.add("Per-run tables, probability of improvement over flatten and performance profiles: "
        "[tfgap_report/report.md](tfgap_report/report.md).")


__all__ = ["write_study_report", "StudyReport"]
