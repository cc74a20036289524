"""Dormant neurons (Sokar et al., 2023, "The Dormant Neuron Phenomenon in Deep RL").

A neuron i of a layer is tau-dormant on a batch of inputs when its normalised score

    s_i = E_x |h_i(x)| / ((1 / H) * sum_k E_x |h_k(x)|)

is at most tau, with H the number of neurons of the layer. A conv channel is one neuron: its
|activation| is averaged over the batch and every spatial position. Any tensor shape works: the
last axis indexes neurons and every other axis is averaged (dense `[B, units]`, conv
`[B, H, W, C]`, tokens `[B, m, d]`).

Networks are read through the tfgap contract: `net.activations(observation)` returns
`(group, layer_name, tensor)` triples, group in {"phi", "bottleneck", "psi"}.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfgap.analysis import adapters

GROUPS = ("phi", "bottleneck", "psi")
# Key used for the whole network in flat metric dicts.
ALL = "all"
DEFAULT_TAUS = (0.0, 0.025, 0.1)


def tau_key(tau):
  """Formats a threshold the way it appears in metric names ("0", "0.025", "0.1")."""
  return f"{float(tau):g}"


def mean_abs_per_neuron(activation):
  """E|h_i| over every axis but the last (batch, and spatial positions or tokens).

  Tensors are reduced by TensorFlow where they live (an Impala batch's activations are GBs as
  float64 numpy); numpy arrays in float64.

  Returns:
    float64 numpy array `[num_neurons]`.
  """
  rank = len(activation.shape)
  if rank < 2:
    raise ValueError(
        f"activation must have a batch axis and a neuron axis, got shape {activation.shape}; "
        "accepted: [B, units], [B, H, W, C] or any [B, ..., neurons]")
  if tf.is_tensor(activation):
    reduced = tf.reduce_mean(tf.abs(tf.cast(activation, tf.float32)), axis=list(range(rank - 1)))
    return reduced.numpy().astype(np.float64)
  values = np.abs(np.asarray(activation, dtype=np.float64))
  return values.reshape(-1, values.shape[-1]).mean(axis=0)


def neuron_scores(activation):
  """Normalised neuron scores s_i of one layer.

  Args:
    activation: array or tensor whose last axis indexes the layer's neurons.

  Returns:
    float64 numpy array `[num_neurons]`. A layer whose every neuron is silent (mean |h| == 0)
    gives all-zero scores, so every neuron counts as dormant at any tau >= 0.
  """
  per_neuron = mean_abs_per_neuron(activation)
  layer_mean = per_neuron.mean()
  if layer_mean == 0.0:
    return np.zeros_like(per_neuron)
  return per_neuron / layer_mean


def _check_taus(taus):
  taus = tuple(float(t) for t in taus)
  if not taus:
    raise ValueError("taus is empty; pass one or more thresholds >= 0, e.g. (0.0, 0.025, 0.1)")
  for t in taus:
    if not np.isfinite(t) or t < 0:
      raise ValueError(f"tau {t} is invalid; accepted: finite thresholds >= 0")
  return taus


@dataclasses.dataclass
class LayerDormancy:
  """Dormancy of one layer.

  Attributes:
    group: "phi", "bottleneck" or "psi".
    name: the layer's (unique) name.
    num_neurons: neurons (units or channels) of the layer.
    dormant: {tau: number of tau-dormant neurons}.
  """
  group: str
  name: str
  num_neurons: int
  dormant: Dict[float, int]

  def fraction(self, tau):
    return self.dormant[float(tau)] / self.num_neurons


@dataclasses.dataclass
class DormantReport:
  """Per-layer and per-group tau-dormant counts of one measurement.

  Attributes:
    taus: the thresholds, in the order given.
    layers: one `LayerDormancy` per layer with neurons, in network order.
  """
  taus: Tuple[float, ...]
  layers: List[LayerDormancy]

  def group_counts(self, group):
    """Returns ({tau: dormant neurons}, neurons) summed over the layers of a group.

    Args:
      group: "phi", "bottleneck", "psi" or "all".
    """
    if group not in GROUPS + (ALL,):
      raise ValueError(f"group {group!r} is unknown; accepted: {GROUPS + (ALL,)}")
    layers = [l for l in self.layers if group == ALL or l.group == group]
    total = sum(l.num_neurons for l in layers)
    return {t: sum(l.dormant[t] for l in layers) for t in self.taus}, total

  def group_fraction(self, group, tau):
    """Dormant neurons / neurons of the group; None when the group has no neurons."""
    counts, total = self.group_counts(group)
    if total == 0:
      return None
    return counts[float(tau)] / total

  def layer_fraction(self, name, tau):
    for layer in self.layers:
      if layer.name == name:
        return layer.fraction(tau)
    raise ValueError(f"layer {name!r} is unknown; accepted: {[l.name for l in self.layers]}")

  def group_metrics(self, prefix="dormant"):
    """`{<prefix>/<group>/<tau>: fraction}` for phi, bottleneck, psi (those with neurons), all."""
    out = {}
    for group in GROUPS + (ALL,):
      for tau in self.taus:
        value = self.group_fraction(group, tau)
        if value is not None:
          out[f"{prefix}/{group}/{tau_key(tau)}"] = float(value)
    return out

  def as_metrics(self, prefix="dormant"):
    """Flat dict for TensorBoard / metrics.jsonl.

    Keys are `<prefix>/<group>/<tau>` for phi, bottleneck, psi (when they have neurons) and
    `all`, and `<prefix>/<layer>/<tau>` for every layer.
    """
    out = self.group_metrics(prefix)
    for layer in self.layers:
      for tau in self.taus:
        out[f"{prefix}/{layer.name}/{tau_key(tau)}"] = float(layer.fraction(tau))
    return out


def _unique_names(entries):
  """Makes layer names unique and distinct from group names (they share one key space)."""
  reserved = set(GROUPS) | {ALL}
  seen = {}
  names = []
  for group, name, _ in entries:
    name = str(name).replace("/", "_")
    if name in reserved:
      name = f"{group}_{name}"
    base = name
    count = seen.get(base, 0)
    seen[base] = count + 1
    names.append(base if count == 0 else f"{base}_{count}")
  return names


def measure_activations(entries, taus=DEFAULT_TAUS):
  """Dormancy from already computed activations.

  Args:
    entries: iterable of `(group, layer_name, activation)` as returned by `net.activations`.
    taus: thresholds.

  Returns:
    A `DormantReport`.
  """
  taus = _check_taus(taus)
  entries = list(entries)
  if not entries:
    raise ValueError("no activations to measure: net.activations returned an empty list")
  names = _unique_names(entries)
  layers = []
  for (group, _, activation), name in zip(entries, names):
    if group not in GROUPS:
      raise ValueError(f"activation group {group!r} of layer {name!r} is unknown; "
                       f"accepted: {GROUPS}")
    scores = neuron_scores(activation)
    layers.append(LayerDormancy(
        group=group, name=name, num_neurons=int(scores.size),
        dormant={t: int(np.count_nonzero(scores <= t)) for t in taus}))
  return DormantReport(taus=taus, layers=layers)


def dormant_fractions(network, observations, taus=DEFAULT_TAUS, training=False):
  """Measures tau-dormant neurons of a tfgap network on a batch of observations.

  Args:
    network: a tfgap network (the design contract; `activations` is used) or a model from
      `tfgap.networks.build_keras_model`.
    observations: a batch `[B, ...]` (numpy or tensor, e.g. uint8 frames), or the tuple a
      network's activations() takes (a critic's `(observation, action)`).
    taus: thresholds, measured together from one forward pass.
    training: forwarded to `network.activations`.

  Returns:
    A `DormantReport` (per-layer counts; per-group fractions via `group_fraction`).
  """
  network = adapters.as_network(network)
  if not isinstance(observations, tuple):  # A critic takes an (observation, action) tuple.
    observations = tf.convert_to_tensor(observations)
  entries = network.activations(observations, training=training)
  return measure_activations(entries, taus)


def dormant_metrics(network, observations, taus=DEFAULT_TAUS, prefix="dormant"):
  """`dormant_fractions(...).as_metrics()`: flat {"dormant/<group|layer>/<tau>": fraction}."""
  return dormant_fractions(network, observations, taus).as_metrics(prefix)


class DormantTracker:
  """Measures dormant fractions every `period` steps inside a training loop.

  Usage::

    tracker = DormantTracker(period=10_000, taus=(0.0, 0.025, 0.1))
    for step in ...:
      metrics = tracker.maybe_measure(step, q_net, batch["observation"])
      if metrics: log.update(metrics)

  When a default `tf.summary` writer is set, each value is also written as a scalar at `step`.
  """

  def __init__(self, period, taus=DEFAULT_TAUS, prefix="dormant"):
    if int(period) != period or period < 1:
      raise ValueError(f"period {period} is invalid; accepted: an integer >= 1")
    self.period = int(period)
    self.taus = _check_taus(taus)
    self.prefix = prefix
    self.last: Optional[Dict[str, float]] = None

  def due(self, step):
    return int(step) % self.period == 0

  def maybe_measure(self, step, network, observations):
    """Returns the flat metrics dict when `step` is a multiple of `period`, else None."""
    step = int(step)
    if not self.due(step):
      return None
    metrics = dormant_metrics(network, observations, self.taus, self.prefix)
    # tf.summary.scalar is a no-op that returns False when no default writer is set.
    for name, value in metrics.items():
      tf.summary.scalar(name, value, step=step)
    self.last = metrics
    return metrics


def group_fractions_from_metrics(record, prefix="dormant"):
  """Parses dormant fields of a metrics.jsonl record.

  Args:
    record: dict with keys like "dormant/phi/0.025".
    prefix: the key prefix.

  Returns:
    ({(group, tau_string): value}, {(layer, tau_string): value}).
  """
  groups, layers = {}, {}
  for key, value in record.items():
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != prefix:
      continue
    _, name, tau = parts
    target = groups if name in GROUPS + (ALL,) else layers
    target[(name, tau)] = value
  return groups, layers


__all__ = [
    "GROUPS", "ALL", "DEFAULT_TAUS", "tau_key", "neuron_scores", "LayerDormancy",
    "DormantReport", "measure_activations", "dormant_fractions", "dormant_metrics",
    "DormantTracker", "group_fractions_from_metrics",
]
