"""Report figures.

Figures are `matplotlib.figure.Figure` objects drawn on the Agg canvas: no display, no pyplot
state, and the caller's matplotlib backend is left alone.
"""

import os

import matplotlib
from matplotlib.figure import Figure
import numpy as np

from tfgap.analysis import dormant as dormant_lib


def _figure(rows=1, columns=1, figsize=(6.0, 4.0)):
  fig = Figure(figsize=figsize)
  axes = fig.subplots(rows, columns, squeeze=False)
  return fig, axes


def _save(fig, path):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path


def _series_label(config):
  return f"{config.agent}/{config.encoder}/{config.bottleneck}"


def _include_zero(ax):
  """Normalised scores have a meaningful origin: keep 0 in the y range, not a zoom on noise."""
  low, high = ax.get_ylim()
  low, high = min(low, 0.0), max(high, 0.0)
  if high - low < 1e-9:
    high = low + 1.0
  ax.set_ylim(low, high)


def plot_aggregate_vs_width(aggregates, configs, path, metric="IQM",
                            normalization="human-normalised", title=None):
  """Aggregate (with CI error bars) against width scale, one line per agent/encoder/bottleneck.

  The y range always includes 0.

  Args:
    aggregates: {label: {metric: Interval}} (`aggregate.aggregate_scores`).
    configs: {label: Config}.
    path: output PNG.
    metric: which aggregate to plot.
    normalization: what the scores are, for the y label (`aggregate.normalization_label`).
    title: figure title (e.g. how many runs and games it aggregates).

  Returns:
    path.
  """
  series = {}
  for label, values in aggregates.items():
    config = configs[label]
    series.setdefault(_series_label(config), []).append((config.width_scale, values[metric]))
  fig, axes = _figure(figsize=(6.0, 4.0))
  ax = axes[0, 0]
  for name, points in sorted(series.items()):
    points.sort(key=lambda p: p[0])
    x = np.array([p[0] for p in points])
    y = np.array([p[1].point for p in points])
    err = np.array([[p[1].point - p[1].low for p in points],
                    [p[1].high - p[1].point for p in points]])
    ax.errorbar(x, y, yerr=np.maximum(err, 0.0), marker="o", capsize=4, label=name)
  ax.set_xscale("log", base=2)
  scales = sorted({c.width_scale for c in configs.values()})
  ax.set_xticks(scales)
  ax.set_xticklabels([f"x{s:g}" for s in scales])
  ax.set_xlabel("width scale")
  ax.set_ylabel(f"{metric} ({normalization})")
  _include_zero(ax)
  ax.axhline(0.0, color="0.4", linewidth=0.8)
  if title:
    ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_learning_curves(curves, path, columns=3, ylabel="score", title=None):
  """Score against env steps: one panel per game, one line per configuration.

  Args:
    curves: {(Config, game): [(iteration, env_steps, mean, min, max, n), ...]}
      (`aggregate.learning_curves`).
    path: output PNG.
    columns: panels per row.
    ylabel: what the score is (e.g. "eval return", "training return").
    title: figure title (e.g. how many runs and games it shows).

  Returns:
    path.
  """
  games = sorted({game for _, game in curves})
  columns = max(1, min(columns, len(games)))
  rows = -(-len(games) // columns)
  fig, axes = _figure(rows, columns, figsize=(4.2 * columns, 3.2 * rows))
  for ax, game in zip(axes.flat, games):
    for (config, g), points in sorted(curves.items(), key=lambda kv: kv[0][0]):
      if g != game:
        continue
      steps = [p[1] for p in points]
      line, = ax.plot(steps, [p[2] for p in points], label=config.label)
      ax.fill_between(steps, [p[3] for p in points], [p[4] for p in points],
                      color=line.get_color(), alpha=0.15)
    ax.set_title(game)
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(games):]:
    ax.axis("off")
  handles, labels = axes.flat[0].get_legend_handles_labels()
  if handles:
    axes.flat[0].legend(handles, labels, fontsize=7)
  if title:
    fig.suptitle(title, fontsize=10)
  return _save(fig, path)


def dormant_series(collection):
  """Group dormant fractions from metrics.jsonl records.

  Returns:
    {(Config, group, tau string): [(mean env_steps, mean fraction, n), ...] by iteration}, the
    mean taken over the configuration's runs (all games and seeds) that logged the field.
  """
  grouped = {}
  for run in collection.runs:
    for record in run.records:
      groups, _ = dormant_lib.group_fractions_from_metrics(record)
      for (group, tau), value in groups.items():
        if isinstance(value, (int, float)) and np.isfinite(value):
          entry = grouped.setdefault((run.config, group, tau), {})
          entry.setdefault(record["iteration"], []).append((record["env_steps"], float(value)))
  out = {}
  for key, per_iter in grouped.items():
    out[key] = [(float(np.mean([s for s, _ in v])), float(np.mean([f for _, f in v])), len(v))
                for _, v in sorted(per_iter.items())]
  return out


def plot_dormant(series, path):
  """Dormant fraction against env steps: a row per tau, a column per layer group.

  Args:
    series: output of `dormant_series` (must be non-empty).
    path: output PNG.

  Returns:
    path.
  """
  if not series:
    raise ValueError("no dormant/<group>/<tau> fields to plot")
  order = dormant_lib.GROUPS + (dormant_lib.ALL,)
  groups = [g for g in order if any(k[1] == g for k in series)]
  taus = sorted({k[2] for k in series}, key=float)
  fig, axes = _figure(len(taus), len(groups), figsize=(3.6 * len(groups), 2.9 * len(taus)))
  for row, tau in enumerate(taus):
    for col, group in enumerate(groups):
      ax = axes[row, col]
      drawn = 0
      for (config, g, t), points in sorted(series.items(), key=lambda kv: kv[0][0]):
        if g == group and t == tau:
          ax.plot([p[0] for p in points], [p[1] for p in points], marker=".",
                  label=config.label)
          drawn += 1
      if not drawn:
        ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
      ax.set_title(f"{group}, tau={tau}", fontsize=9)
      ax.set_ylim(-0.02, 1.02)
      ax.set_xlabel("env steps")
      ax.set_ylabel("dormant fraction")
      ax.grid(alpha=0.3)
  handles, labels = axes[0, 0].get_legend_handles_labels()
  if handles:
    axes[0, 0].legend(handles, labels, fontsize=7)
  return _save(fig, path)


def plot_performance_profiles(taus, profiles, cis, path, normalization="human-normalised",
                              title=None):
  """Fraction of runs with normalised score > tau, with bootstrap bands (rliable.plot_utils).

  `normalization` names the score on the x label; `title` goes above the axes.
  """
  from rliable import plot_utils  # pylint: disable=g-import-not-at-top
  fig, axes = _figure(figsize=(6.5, 4.0))
  ax = axes[0, 0]
  cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
  colors = dict(zip(sorted(profiles), cycle * (len(profiles) // len(cycle) + 1)))
  plot_utils.plot_performance_profiles(
      profiles, taus, performance_profile_cis=cis, colors=colors,
      xlabel=f"{normalization} score " + r"$(\tau)$", ylabel=r"fraction of runs with score $> \tau$",
      labelsize="medium", ticklabelsize="small", ax=ax)
  ax.set_ylim(0.0, 1.02)
  if title:
    ax.set_title(title, fontsize=9)
  ax.legend(fontsize=7, loc="upper right")
  return _save(fig, path)


__all__ = ["plot_aggregate_vs_width", "plot_learning_curves", "dormant_series", "plot_dormant",
           "plot_performance_profiles"]
