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


def tfmot_module(name):
  """A module of tfmot's Keras sparsity package, imported keeping Keras' export names.

  Importing tfmot imports the separate tf_keras package, whose classes then take over TF's
  export table ("keras.layers.InputLayer" -> tf_keras'), which `keras.models.load_model` reads:
  a `.keras` file would rebuild a tf_keras input layer and loop forever. The table's keras
  entries are put back as they were.
  """
  import importlib  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from tensorflow.python.util import tf_export  # pylint: disable=g-import-not-at-top
  table = tf_export._NAME_TO_SYMBOL_MAPPING  # pylint: disable=protected-access
  saved = {k: v for k, v in table.items() if k.startswith("keras.")}
  # tfmot's import also sets TF_USE_LEGACY_KERAS=1, which TF 2.15 reads whenever `tf.keras` is
  # resolved (and child processes inherit): the user's later `tf.keras` would become tf_keras,
  # whose models cannot hold tfgap's Keras 2 layers. Put the variable back as it was.
  legacy = os.environ.get("TF_USE_LEGACY_KERAS")
  module = importlib.import_module(
      f"tensorflow_model_optimization.python.core.sparsity.keras.{name}")
  table.update(saved)
  if legacy is None:
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
  else:
    os.environ["TF_USE_LEGACY_KERAS"] = legacy
  return module


def prune_schedule(config):
  """The tfmot PolynomialDecay schedule described by a pruning config dict."""
  pruning_schedule = tfmot_module("pruning_schedule")
  return pruning_schedule.PolynomialDecay(
      initial_sparsity=config["initial_sparsity"],
      final_sparsity=config["target_sparsity"],
      begin_step=config["begin_step"],
      end_step=config["end_step"],
      power=config["power"],
      frequency=config["frequency"])


def maybe_prune(layer, config):
  """Wraps a single Keras layer in tfmot's PruneLowMagnitude when `config` is a pruning config.

  The wrapper computes in float32 whatever the precision: tfmot writes `weight * mask` back into
  the float32 weight, which in bfloat16 would round every weight at every step. Create the
  wrapped layer with `sublayer_dtype(parent, pruned=True)`.
  """
  if not config:
    return layer
  pruning_wrapper = tfmot_module("pruning_wrapper")
  return pruning_wrapper.PruneLowMagnitude(layer, pruning_schedule=prune_schedule(config),
                                           dtype="float32")


def unwrap(layer):
  """The layer inside a pruning wrapper (or the layer itself)."""
  return getattr(layer, "layer", layer) if is_pruned(layer) else layer


def is_pruned(layer):
  """Whether `layer` is a tfmot PruneLowMagnitude wrapper."""
  return type(layer).__name__ == "PruneLowMagnitude" and hasattr(layer, "pruning_vars")


def as_float_pixels(x):
  """uint8 (or raw 0..255 float) pixels -> float32 in [0, 1]."""
  return tf.cast(x, tf.float32) / 255.0


# ------------------------------------------------------------------------------- precision

# The `precision` setting of networks and agents.
PRECISIONS = {
    "float32": "everything in float32",
    "mixed_bfloat16": "convolutions and dense layers compute in bfloat16, variables in float32",
    "auto": "mixed_bfloat16 where the hardware runs bfloat16 natively, else float32",
}
# /proc/cpuinfo flags of CPUs with bfloat16 arithmetic (Intel AMX, AVX512_BF16 on Intel and AMD).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpu_flags():
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "flags":
          return set(value.split())
  except OSError:
    pass
  return set()


def bfloat16_support():
  """`(native, why)`: whether this machine runs bfloat16 natively, and on what.

  GPUs: compute capability 8.0 or newer (Ampere). CPUs: the `amx_bf16` or `avx512_bf16` flag of
  /proc/cpuinfo (Linux; elsewhere the CPU counts as without).
  """
  for gpu in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(gpu)
    capability = details.get("compute_capability")
    name = details.get("device_name", gpu.name)
    if capability and tuple(capability) >= (8, 0):
      return True, f"GPU {name} (compute capability {capability[0]}.{capability[1]})"
    return False, f"GPU {name} without native bfloat16 (compute capability {capability})"
  found = [flag for flag in BF16_CPU_FLAGS if flag in _cpu_flags()]
  if found:
    return True, "CPU flag " + ", ".join(found)
  return False, "CPU without " + " / ".join(BF16_CPU_FLAGS)


def check_precision(precision):
  """Returns `precision` if it names a setting of `PRECISIONS`, else raises ValueError."""
  return check_name("precision", precision, tuple(PRECISIONS))


def resolve_precision(precision):
  """"float32" or "mixed_bfloat16": "auto" resolved for this machine (`bfloat16_support`)."""
  precision = check_precision(precision)
  if precision == "auto":
    return "mixed_bfloat16" if bfloat16_support()[0] else "float32"
  return precision


def dtype_policy(precision):
  """The Keras dtype policy of a network's layers: None (the default float32) or mixed_bfloat16.

  Set per layer (`dtype=`), never globally: a global policy would leak into the user's models.
  """
  if resolve_precision(precision) == "float32":
    return None
  return keras.mixed_precision.Policy("mixed_bfloat16")


def sublayer_dtype(parent, pruned=False):
  """The `dtype` of a layer that composite layer `parent` creates: its own policy (so its
  autocast keeps bfloat16 activations bfloat16), float32 under a tfmot pruning wrapper."""
  return "float32" if pruned else parent.dtype_policy


def precision_of(layer):
  """"mixed_bfloat16" when `layer` computes in bfloat16, else "float32"."""
  return "mixed_bfloat16" if layer.compute_dtype == "bfloat16" else "float32"


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


def factorised_noise(size, dtype, groups=None):
  """f(e) = sign(e) sqrt(|e|) of a fresh e ~ N(0, I_size) (Fortunato et al. 2018, eqs. 10-11).

  Drawn in float32 (the same draws whatever the precision), returned in `dtype`. With `groups`,
  `[groups, size]`: an independent draw per group.
  """
  e = tf.random.normal([size] if groups is None else [groups, size], dtype=tf.float32)
  return tf.cast(tf.sign(e) * tf.sqrt(tf.abs(e)), dtype)


def per_row_noise(noise, batch_size):
  """`[G, size]` group noise -> `[batch_size, size]`, group g on rows g*B/G .. (g+1)*B/G - 1."""
  groups = noise.shape[0]
  return tf.repeat(noise, batch_size // groups, axis=0)


def glorot_uniform():
  """Flax `xavier_uniform` (Dopamine's explicit kernel_init) is Keras' GlorotUniform.

  A fresh instance per layer: Keras warns that a reused unseeded initializer repeats its values.
  """
  return keras.initializers.GlorotUniform()


def orthogonal():
  """Flax's `nn.initializers.orthogonal()` (scale 1) is Keras' Orthogonal (gain 1): Dopamine's SAC
  encoder; SAC-AE's and DrQ's `weight_init` for linear layers."""
  return keras.initializers.Orthogonal()


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
