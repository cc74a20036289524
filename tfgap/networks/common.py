"""Shared helpers of tfgap.networks: argument checks, shape arithmetic, pruning wrappers.

Every check raises ValueError naming the offending value and the accepted ones, with difflib
suggestions for misspelled names.
"""

import difflib
import math
import numbers

import tensorflow as tf

from tfgap.compat import keras


def check_name(kind, value, accepted):
  """Returns the accepted name equal to `value` ignoring case, else raises ValueError.

  Args:
    kind: what the name names, e.g. "encoder" (used in the message).
    value: the name given by the user.
    accepted: iterable of accepted names (returned in this spelling).

  Raises:
    ValueError: naming the value, the accepted names and the closest matches.
  """
  accepted = list(accepted)
  by_lower = {a.lower(): a for a in accepted}
  if isinstance(value, str) and value.lower() in by_lower:
    return by_lower[value.lower()]
  hint = ""
  if isinstance(value, str):
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=3, cutoff=0.5)
    if close:
      hint = f" Did you mean {' or '.join(repr(by_lower[c]) for c in close)}?"
  raise ValueError(f"Unknown {kind} {value!r}; accepted: {', '.join(map(repr, accepted))}.{hint}")


def check_positive(kind, value, integer=False):
  """Returns `value` if it is a positive number (an integer when `integer`), else raises."""
  ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0
  if integer:
    ok = ok and float(value) == int(value)
  if not ok or (isinstance(value, float) and not math.isfinite(value)):
    accepted = "a positive integer" if integer else "a positive number"
    raise ValueError(f"{kind} must be {accepted}; got {value!r}.")
  return int(value) if integer else value


def check_units(kind, units, allow_empty=True):
  """Returns `units` as a tuple of positive ints (a width per layer), else raises."""
  if isinstance(units, numbers.Integral) and not isinstance(units, bool):
    units = (units,)
  try:
    units = tuple(units)
  except TypeError:
    raise ValueError(f"{kind} must be a sequence of positive integers; got {units!r}.") from None
  for u in units:
    check_positive(f"each entry of {kind} (got {units!r})", u, integer=True)
  if not units and not allow_empty:
    raise ValueError(f"{kind} must name at least one layer width; got {units!r}.")
  return tuple(int(u) for u in units)


def scaled(width, scale):
  """Channels of a layer of base width `width` at multiplier `scale`: round half up, at least 1."""
  return max(1, int(math.floor(width * scale + 0.5)))


def conv_output_size(size, kernel, stride, padding):
  """Spatial size after a convolution or pooling (Keras/TF arithmetic)."""
  if padding == "same":
    return -(-size // stride)
  return (size - kernel) // stride + 1


def prune_schedule(config):
  """The tfmot PolynomialDecay schedule described by a pruning config dict."""
  from tensorflow_model_optimization.python.core.sparsity.keras import pruning_schedule  # pylint: disable=g-import-not-at-top
  return pruning_schedule.PolynomialDecay(
      initial_sparsity=config["initial_sparsity"],
      final_sparsity=config["target_sparsity"],
      begin_step=config["begin_step"],
      end_step=config["end_step"],
      power=config["power"],
      frequency=config["frequency"])


def maybe_prune(layer, config):
  """Wraps a single Keras layer in tfmot's PruneLowMagnitude when `config` is a pruning config."""
  if not config:
    return layer
  from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper  # pylint: disable=g-import-not-at-top
  return pruning_wrapper.PruneLowMagnitude(layer, pruning_schedule=prune_schedule(config))


def unwrap(layer):
  """The layer inside a pruning wrapper (or the layer itself)."""
  return getattr(layer, "layer", layer) if is_pruned(layer) else layer


def is_pruned(layer):
  """Whether `layer` is a tfmot PruneLowMagnitude wrapper."""
  return type(layer).__name__ == "PruneLowMagnitude" and hasattr(layer, "pruning_vars")


def as_float_pixels(x):
  """uint8 (or raw 0..255 float) pixels -> float32 in [0, 1]."""
  return tf.cast(x, tf.float32) / 255.0


def glorot_limit(fan_in, fan_out):
  """Glorot-uniform limit for a [fan_in, fan_out] matrix (per expert, not over the batch axis)."""
  return math.sqrt(6.0 / (fan_in + fan_out))


class Layer(keras.layers.Layer):
  """Base of tfgap's composite layers: a list of (name, tensor) activations next to the output."""

  def call_with_activations(self, inputs, training=False):
    """Returns (output, [(layer_name, post-activation tensor), ...])."""
    raise NotImplementedError

  def layer_costs(self, input_shape):
    """Returns ([(keras_layer, forward FLOPs per example)], output_shape without batch)."""
    raise NotImplementedError
