"""Shared helpers of tfgap.networks: argument checks, shape arithmetic, pruning wrappers.

Every check raises ValueError naming the offending value and the accepted ones, with difflib
suggestions for misspelled names, in the one format of `tfgap.checks`
("{name}={value!r} is not accepted; accepted: ...").
"""

import math
import numbers

import tensorflow as tf

from tfgap import checks
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
  if not isinstance(value, str):
    checks.reject(kind, value, ", ".join(map(repr, accepted)))
  return checks.check_choice(kind, value, accepted)


def check_positive(kind, value, integer=False):
  """Returns `value` if it is a positive number (an integer when `integer`), else raises."""
  return checks.check_positive(kind, value, integer=integer)


def check_units(kind, units, allow_empty=True):
  """Returns `units` as a tuple of positive ints (a width per layer), else raises."""
  original = units
  if isinstance(units, numbers.Integral) and not isinstance(units, bool):
    units = (units,)
  try:
    units = tuple(units)
  except TypeError:
    units = None
  ok = units is not None and all(
      isinstance(u, numbers.Real) and not isinstance(u, bool) and math.isfinite(u) and u > 0
      and float(u) == int(u) for u in units)
  if not ok or (not units and not allow_empty):
    what = "a sequence of positive integers (one width per layer)"
    checks.reject(kind, original, what + ("" if allow_empty else ", at least one"))
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


# Initial noise scale of noisy layers: sigma = NOISY_SIGMA0 / sqrt(fan_in) for kernel and bias.
# Dopamine's NoisyNetwork uses 0.1 (dopamine/jax/networks.py, NoisyNetwork.sigma_init); Fortunato
# et al. (2018) give 0.5 for factorised noise.
NOISY_SIGMA0 = 0.1


def noisy_init(fan_in, sigma0):
  """(mu bound, sigma) of a noisy layer with `fan_in` inputs: mu ~ U(-bound, bound), sigma const.

  As Dopamine's NoisyNetwork: mu_init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for kernel and bias,
  sigma_init = sigma0 / sqrt(fan_in) (dopamine/jax/networks.py).
  """
  scale = 1.0 / math.sqrt(fan_in)
  return scale, sigma0 * scale


def factorised_noise(size, dtype):
  """f(e) = sign(e) sqrt(|e|) of a fresh e ~ N(0, I_size) (Fortunato et al. 2018, eqs. 10-11)."""
  e = tf.random.normal([size], dtype=dtype)
  return tf.sign(e) * tf.sqrt(tf.abs(e))


def glorot_uniform():
  """Flax `xavier_uniform` (Dopamine's explicit kernel_init) is Keras' GlorotUniform.

  A fresh instance per layer: Keras warns that a reused unseeded initializer repeats its values.
  """
  return keras.initializers.GlorotUniform()


def lecun_normal():
  """Flax's default kernel_init `lecun_normal` (truncated normal, fan_in) is Keras' LecunNormal."""
  return keras.initializers.LecunNormal()


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
