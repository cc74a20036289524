"""Effective parameters and effective density of a network's bottleneck.

The paper's argument is about the connection between the encoder's feature map (H x W x C) and
the dense head psi. Flatten gives it H*W*C*dim(psi) weights; the alternatives shrink it:

- flatten: psi's first-layer kernel(s), H*W*C*dim(psi) (density 1);
- pruned: the same kernel(s), counting only entries their pruning mask keeps (density 1 - s);
- gap: psi's first-layer kernel(s) on the pooled channels, C*dim(psi) (density 1/(H*W));
- softmoe / tokenize: their shared per-token weights (router, experts / token MLP, patch
  embedding), counted once although every token uses them, as in tfgap.networks.accounting;
- a bottleneck added with `tfgap.networks.register_bottleneck`: what its class's
  `effective_connection` says (by default psi's first-layer kernels, as flatten and gap).

effective density = live / dense-equivalent, the dense-equivalent being the flatten connection of
the same feature map, H*W*C*dim(psi) per psi layer that reads the bottleneck ("streams"): one for
plain heads and for Dopamine's dueling layout (`dueling_layout="shared"`, the default: one 512
layer, split only in the output layer), two for `dueling_layout="separate"`. dim(psi) is the
width of psi's first layer, or for softmoe/tokenize the per-token hidden width (512 by default),
since they replace psi's penultimate layer. Noisy layers count their mean weights only (their
sigma weights parametrise the same connections).

Each bottleneck class counts its own connection (`Bottleneck.effective_connection`) with
tfgap.networks.accounting (layer_params: trainable weights and mask non-zeros; psi_input_layers /
psi_input_weights: psi's first layers and their kernels).
"""

import dataclasses
import math
from typing import Tuple

import tensorflow as tf

from tfgap.analysis import adapters

# The built-in bottlenecks whose own weights are the connection (kept for existing callers; the
# classes decide, see `Bottleneck.effective_connection`).
TOKEN_BOTTLENECKS = ("softmoe", "tokenize")


@dataclasses.dataclass
class EffectiveParameters:
  """Effective parameters of one network's bottleneck connection.

  Attributes:
    bottleneck: the network's bottleneck name.
    feature_shape: (H, W, C) of the encoder's feature map.
    psi_width: dim(psi) used for the dense-equivalent.
    streams: psi layers fed by the bottleneck (1, or 2 with `dueling_layout="separate"`).
    live: live weights of the connection (see module docstring).
    total: the same weights counting masked-out entries.
    dense_equivalent: H*W*C*psi_width*streams.
    density: live / dense_equivalent.
    psi_input_weights: psi's first-layer kernel entries (also for softmoe/tokenize, whose
      flattened tokens feed psi's output layer), masks not applied.
  """
  bottleneck: str
  feature_shape: Tuple[int, int, int]
  psi_width: int
  streams: int
  live: int
  total: int
  dense_equivalent: int
  density: float
  psi_input_weights: int

  def as_dict(self):
    return dataclasses.asdict(self)


def _networks():
  from tfgap.networks import accounting  # pylint: disable=g-import-not-at-top
  from tfgap.networks import bottlenecks  # pylint: disable=g-import-not-at-top
  return accounting, bottlenecks


def _feature_shape(network, observation_shape):
  shape = getattr(network, "_feature_shape", None)
  if shape is not None and observation_shape is None:
    return tuple(int(s) for s in shape)
  if observation_shape is None:
    spec = getattr(network, "input_tensor_spec", None)
    if isinstance(spec, (tuple, list)):  # Critic: (observation, action).
      spec = spec[0]
    if spec is None:
      raise ValueError(f"cannot tell the observation shape of {type(network).__name__}; "
                       "accepted: a network with input_tensor_spec, or observation_shape=(H, W, C)")
    observation_shape = tuple(spec.shape.as_list())
  features = network.encode(tf.zeros((1,) + tuple(observation_shape), tf.uint8))
  if features.shape.rank != 4:
    raise ValueError(f"net.encode returned shape {features.shape}; accepted: [B, H, W, C]")
  return tuple(int(s) for s in features.shape[1:])


def effective_parameters(network, observation_shape=None):
  """Live and dense-equivalent weights of the bottleneck connection.

  Args:
    network: a tfgap network (contract methods and `bottleneck_name`) or a model from
      `tfgap.networks.build_keras_model`.
    observation_shape: (H, W, C) of one observation; default from the network.

  Returns:
    `EffectiveParameters`.

  Raises:
    ValueError: when the network lacks the contract methods or its bottleneck is not registered.
  """
  network = adapters.as_network(network)
  accounting, bottlenecks = _networks()
  # The network's name, not its layer's class: contract networks may pool with plain Keras layers.
  cls = bottlenecks.bottleneck_class(getattr(network, "bottleneck_name", None))
  name = cls.bottleneck_name
  parts = network.parts()
  h, w, c = _feature_shape(network, observation_shape)
  first = accounting.psi_input_layers(network)
  psi_input = accounting.psi_input_weights(network)
  connection = cls.effective_connection(network, parts, (h, w, c), first)
  live, total = connection["live"], connection["total"]
  width, streams = connection["width"], connection["streams"]
  dense_equivalent = h * w * c * width * streams
  return EffectiveParameters(
      bottleneck=name, feature_shape=(h, w, c), psi_width=width, streams=streams, live=int(live),
      total=int(total), dense_equivalent=int(dense_equivalent),
      density=float(live) / dense_equivalent if dense_equivalent else math.nan,
      psi_input_weights=int(psi_input))


__all__ = ["EffectiveParameters", "effective_parameters", "TOKEN_BOTTLENECKS"]
