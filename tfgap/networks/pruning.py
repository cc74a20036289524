"""Gradual magnitude pruning (tfmot 0.8.1) in custom training loops, reports and export.

tfmot's `PruneLowMagnitude` wrapper keeps its own `pruning_step` variable (initialised to -1),
advances it by one on every call with `training=True`, updates the masks when the PolynomialDecay
schedule says so, and multiplies the weights by their masks on every call. Keras' `fit` sets the
step to 0 through the `UpdatePruningStep` callback; custom loops over Keras models call
`initialize_pruning` instead, once before the first update (it is idempotent and safe inside
`tf.function(jit_compile=True)`). tfgap's TF-Agents networks do it at every training-mode call, so
stock TF-Agents agents (DqnAgent with a tfgap pruned network) need no call.

A network built outside the Runner keeps the default schedule (begin_step 500,000, end_step
2,000,000, frequency 1,000): pruning starts only after 500k updates. `schedule_steps` and
`reschedule` fit it to a shorter run.

The step counts training-mode calls: TF-Agents' DQN/C51 agents call the online network once with
`training=True` per update, so the step equals the number of updates. Extra training-mode forward
passes advance it more than once; `set_pruning_step(net, train_step)` before the call pins it to
the agent's counter instead.

With a mask update every `frequency` steps starting at `begin_step`, the target sparsity is set at
`end_step` only if `end_step - begin_step` is a multiple of `frequency`; `schedule_steps` returns
aligned steps.
"""

import numpy as np
import tensorflow as tf

from tfgap import checks
from tfgap.compat import keras
from tfgap.networks import bottlenecks
from tfgap.networks import common


def _layers(obj):
  """All Keras layers inside `obj` (network, model, layer or a list/dict of them)."""
  if isinstance(obj, dict):
    return [layer for v in obj.values() for layer in _layers(v)]
  if isinstance(obj, (list, tuple)):
    return [layer for v in obj for layer in _layers(v)]
  if hasattr(obj, "_flatten_layers"):
    return list(obj._flatten_layers(include_self=True, recursive=True))  # pylint: disable=protected-access
  raise ValueError(f"Expected a Keras layer/model or a TF-Agents network; got {obj!r}.")


def pruning_wrappers(obj):
  """The tfmot PruneLowMagnitude wrappers inside `obj`, in layer order."""
  seen, out = set(), []
  for layer in _layers(obj):
    if common.is_pruned(layer) and id(layer) not in seen:
      seen.add(id(layer))
      out.append(layer)
  return out


def _built_wrappers(obj):
  wrappers = pruning_wrappers(obj)
  for w in wrappers:
    if not w.built:
      raise ValueError(
          f"Pruning wrapper {w.name!r} is not built yet; call `network.create_variables()` (or the "
          "model on a batch) first.")
  return wrappers


def initialize_pruning(obj):
  """Sets every wrapper's pruning step to max(step, 0), as Keras' UpdatePruningStep does.

  Call once before the first training step (eagerly, or inside the compiled step: it is
  idempotent, so calling it at the start of every step is harmless). Restored checkpoints keep
  their step.

  Returns:
    The number of wrappers initialised.
  """
  wrappers = _built_wrappers(obj)
  for w in wrappers:
    w.pruning_step.assign(tf.maximum(w.pruning_step, tf.constant(0, tf.int64)))
  return len(wrappers)


def set_pruning_step(obj, step):
  """Pins every wrapper's pruning step to `step` (e.g. the agent's train_step_counter).

  The next training-mode call advances it to step + 1 and uses that value for the schedule, as
  Keras' `fit` does for its (step + 1)-th batch. Works inside `tf.function(jit_compile=True)`.
  """
  step = tf.cast(step, tf.int64)
  for w in _built_wrappers(obj):
    w.pruning_step.assign(step)


def pruning_step(obj):
  """The pruning step of the first wrapper (all wrappers of a network advance together)."""
  wrappers = _built_wrappers(obj)
  if not wrappers:
    raise ValueError(f"{obj!r} has no pruning wrappers (use bottleneck='pruned').")
  return int(wrappers[0].pruning_step.numpy())


def apply_masks(obj):
  """Multiplies every pruned weight by its mask (the wrappers also do this on every call)."""
  for w in _built_wrappers(obj):
    for weight, mask, _ in w.pruning_vars:
      weight.assign(weight * mask)


def part_of(obj):
  """{id(layer): "phi" | "bottleneck" | "psi"} for every layer (and wrapper) of a network/model."""
  return _part_of(obj)


def _part_of(obj):
  """{id(layer): part} for a network/model with parts (wrappers map to their part)."""
  parts = None
  if hasattr(obj, "parts"):
    parts = obj.parts()
  elif isinstance(obj, keras.Model):
    try:
      from tfgap.networks import builders  # pylint: disable=g-import-not-at-top
      parts = builders.keras_model_parts(obj)
    except ValueError:
      parts = None
  out = {}
  for part, layers in (parts or {}).items():
    for layer in layers:
      for sub in _layers(layer):
        out[id(sub)] = part
  return out


def sparsity_report(obj):
  """Per pruned weight: its part, layer, size, masked-out entries and the scheduled sparsity.

  Returns:
    A list of dicts with keys `part` ("phi"/"psi"/... or None), `layer`, `weight`, `size`,
    `pruned` (entries whose mask is 0), `sparsity` (pruned / size), `zeros` (entries of the
    weight itself that are exactly 0), `target` (the schedule's sparsity at the current step) and
    `step`.
  """
  parts = _part_of(obj)
  rows = []
  for w in _built_wrappers(obj):
    step = w.pruning_step
    target = float(w.pruning_schedule(tf.maximum(step, 0))[1].numpy())
    for weight, mask, _ in w.pruning_vars:
      size = int(np.prod(weight.shape))
      pruned = size - int(np.count_nonzero(mask.numpy()))
      rows.append({
          "part": parts.get(id(w)),
          "layer": common.unwrap(w).name,
          "weight": weight.name.split("/")[-1].split(":")[0],
          "size": size,
          "pruned": pruned,
          "sparsity": pruned / size,
          "zeros": size - int(np.count_nonzero(weight.numpy())),
          "target": target,
          "step": int(step.numpy()),
      })
  return rows


def format_report(rows):
  """A plain-text table of `sparsity_report` rows."""
  lines = [f"{'part':<10} {'layer':<24} {'weight':<14} {'size':>12} {'sparsity':>9} "
           f"{'target':>7} {'step':>9}"]
  for r in rows:
    lines.append(f"{str(r['part']):<10} {r['layer']:<24} {r['weight']:<14} {r['size']:>12,} "
                 f"{r['sparsity']:>9.4f} {r['target']:>7.4f} {r['step']:>9,}")
  return "\n".join(lines)


def _bookkeeping(obj):
  """ids of the masks, thresholds and steps of the wrappers (not model weights)."""
  from tfgap.networks import sparse  # pylint: disable=g-import-not-at-top
  layer = sparse.sparse_bottleneck(obj)
  ids = {id(mask) for mask in layer.bookkeeping()} if layer is not None else set()
  for w in pruning_wrappers(obj):
    ids.add(id(w.pruning_step))
    for _, mask, threshold in w.pruning_vars:
      ids.add(id(mask))
      ids.add(id(threshold))
  return ids


def masked_weights(obj):
  """`obj.weights` as numpy arrays without pruning bookkeeping, pruned weights times their mask.

  The result lines up with the weights of the same architecture built without wrappers.
  """
  skip = _bookkeeping(obj)
  masks = {id(weight): mask for w in pruning_wrappers(obj) for weight, mask, _ in w.pruning_vars}
  from tfgap.networks import sparse  # pylint: disable=g-import-not-at-top
  for layer in _layers(obj):  # Static/SET/RigL kernels of a `sparse` bottleneck.
    masks.update({id(weight): mask for weight, mask in sparse.layer_masks(layer)})
  values = []
  for v in obj.weights:
    if id(v) in skip:
      continue
    value = v.numpy()
    if id(v) in masks:
      value = value * masks[id(v)].numpy()
    values.append(value)
  return values


def strip_pruning(obj):
  """The same network/model without pruning wrappers or sparse masks, holding the masked weights.

  For export: a `pruned` network loses its tfmot wrappers, a `sparse` one (static/SET/RigL) its
  mask variables; the kernels keep the zeros.

  Args:
    obj: a tfgap TF-Agents network (its copy is rebuilt with `wrap=False`) or a Keras model made of
      tfgap layers (e.g. from `build_keras_model`; cloned with pruning disabled).

  Returns:
    A new network/model with the same architecture and outputs, plain Keras layers only.
  """
  if hasattr(obj, "_saved_kwargs") and hasattr(obj, "parts"):
    kwargs = dict(obj._saved_kwargs)  # pylint: disable=protected-access
    if isinstance(kwargs.get("bottleneck"), str) and kwargs["bottleneck"].lower() in (
        "pruned", "sparse"):  # The same layers without wrappers or masks.
      kwargs["bottleneck_kwargs"] = dict(kwargs.get("bottleneck_kwargs") or {}, wrap=False)
    stripped = type(obj)(**kwargs)
    stripped.create_variables()
  elif isinstance(obj, keras.Model):
    stripped = keras.models.clone_model(obj, clone_function=_unpruned_clone)
  else:
    raise ValueError(
        f"strip_pruning accepts a tfgap network or a Keras model of tfgap layers; got {obj!r}.")
  stripped.set_weights(masked_weights(obj))
  return stripped


def _unpruned_clone(layer):
  """clone_model's clone_function: the same layer built without pruning wrappers."""
  if common.is_pruned(layer):  # A top-level tfmot wrapper: clone the layer inside.
    inner = common.unwrap(layer)
    return type(inner).from_config(inner.get_config())
  config = layer.get_config()
  if "prune" in config:  # tfgap encoders and heads.
    config["prune"] = None
  if isinstance(layer, bottlenecks.PrunedFlatten):
    config["prune_config"] = dict(config["prune_config"], wrap=False)
  if "sparse_config" in config:  # tfgap.networks.sparse.SparseFlatten.
    config["sparse_config"] = dict(config["sparse_config"], wrap=False)
  return type(layer).from_config(config)


def schedule_steps(total_updates, begin_fraction=0.2, end_fraction=0.8, frequency=1000):
  """begin/end steps of a pruning run over `total_updates` updates (defaults: 20% .. 80%).

  `end_step` is moved to the nearest step with (end - begin) a multiple of `frequency`, so the
  last mask update happens exactly at `end_step` with the target sparsity.

  Returns:
    {"begin_step", "end_step", "frequency"} for `bottleneck_kwargs`.
  """
  common.check_positive("total_updates", total_updates, integer=True)
  common.check_positive("frequency", frequency, integer=True)
  begin_fraction = checks.check_float("begin_fraction", begin_fraction, low=0.0, high=1.0,
                                      high_open=True)
  end_fraction = checks.check_float("end_fraction", end_fraction, low=0.0, high=1.0)
  if end_fraction <= begin_fraction:
    checks.reject("end_fraction", end_fraction,
                  f"a number > begin_fraction ({begin_fraction!r}) and <= 1")
  begin = int(round(total_updates * begin_fraction))
  span = max(1, int(round((total_updates * end_fraction - begin) / frequency))) * frequency
  return {"begin_step": begin, "end_step": begin + span, "frequency": int(frequency)}


def schedule_frequency(obj):
  """The mask-update frequency of the first wrapper's schedule (1000 when none is set)."""
  for w in pruning_wrappers(obj):
    return int(getattr(w.pruning_schedule, "frequency", 1000))
  return 1000


def reschedule(obj, begin_step, end_step, frequency):
  """Moves every wrapper's schedule to new begin/end steps and frequency, in place.

  For a run whose length is known only once its agent exists (updates = steps / update_period):
  call it after building and before the first training step (the schedule's numbers are read
  when the update is traced). A TF-Agents network's saved constructor arguments are updated as
  well, so `network.copy()` builds the same schedule.

  Returns:
    The number of wrappers changed.
  """
  begin_step = checks.check_int("begin_step", begin_step, low=0)
  end_step = checks.check_int("end_step", end_step, low=0)
  frequency = checks.check_int("frequency", frequency, low=1)
  if begin_step >= end_step:
    checks.reject("begin_step", begin_step, f"an integer smaller than end_step ({end_step!r})")
  steps = {"begin_step": begin_step, "end_step": end_step, "frequency": frequency}
  wrappers = pruning_wrappers(obj)
  for w in wrappers:
    for key, value in steps.items():
      setattr(w.pruning_schedule, key, int(value))
  saved = getattr(obj, "_saved_kwargs", None)
  if wrappers and isinstance(saved, dict) and "bottleneck_kwargs" in saved:
    saved["bottleneck_kwargs"] = dict(saved["bottleneck_kwargs"] or {}, **steps)
  return len(wrappers)
