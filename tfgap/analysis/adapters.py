"""Gives plain Keras models from `tfgap.networks.build_keras_model` the tfgap network contract.

The analysis functions take anything with `encode` / `decode` / `activations` / `parts`
(docs/DESIGN.md). tfgap's TF-Agents networks have them; a functional Keras model built by
`build_keras_model` has the same parts as top-level layers named "phi", "bottleneck" and "psi",
and `as_network` wraps it so the same analyses apply.
"""

import tensorflow as tf

CONTRACT = ("encode", "decode", "activations", "parts")


def _bottleneck_name(layer):
  """The registered name of a bottleneck layer (None for layers not registered)."""
  from tfgap.networks import bottlenecks  # pylint: disable=g-import-not-at-top
  return bottlenecks.name_of(layer)


class KerasModelNetwork:
  """The tfgap contract over a model from `build_keras_model` (layers phi, bottleneck, psi)."""

  def __init__(self, model):
    self.model = model
    try:
      self._encoder = model.get_layer("phi")
      self._bottleneck = model.get_layer("bottleneck")
      self._head = model.get_layer("psi")
    except ValueError as err:
      raise ValueError(
          f"Keras model {model.name!r} has no top-level layers 'phi', 'bottleneck' and 'psi' "
          f"({err}); accepted: tfgap networks or models from "
          "tfgap.networks.build_keras_model") from err
    self.encoder_name = type(self._encoder).__name__.replace("Encoder", "").lower()
    self.bottleneck_name = _bottleneck_name(self._bottleneck)
    self.width_scale = getattr(self._encoder, "width_scale", None)
    self.input_tensor_spec = tf.TensorSpec(tuple(model.input_shape[1:]), model.inputs[0].dtype)

  def encode(self, observation, training=False):
    return self._encoder(observation, training=training)

  def decode(self, features, training=False):
    return self._head(self._bottleneck(features, training=training), training=training)

  def __call__(self, observation, training=False):
    return self.model(observation, training=training)

  def activations(self, observation, training=False):
    acts = []
    features, enc = self._encoder.call_with_activations(observation, training=training)
    acts.extend(("phi", name, t) for name, t in enc)
    feats, bott = self._bottleneck.call_with_activations(features, training=training)
    acts.extend(("bottleneck", name, t) for name, t in bott)
    _, head = self._head.call_with_activations(feats, training=training)
    acts.extend(("psi", name, t) for name, t in head)
    return acts

  def parts(self):
    from tfgap.networks import builders  # pylint: disable=g-import-not-at-top
    return builders.keras_model_parts(self.model)


def as_network(obj):
  """Returns `obj` if it has the tfgap contract, a `KerasModelNetwork` for a tfgap Keras model.

  Raises:
    ValueError: for anything else, naming what is accepted.
  """
  if all(hasattr(obj, attr) for attr in CONTRACT):
    return obj
  from tfgap.compat import keras  # pylint: disable=g-import-not-at-top
  if isinstance(obj, keras.Model):
    return KerasModelNetwork(obj)
  raise ValueError(f"{type(obj).__name__} has no {'/'.join(CONTRACT)}; accepted: tfgap networks "
                   "(tfgap.networks builders) or models from tfgap.networks.build_keras_model")


__all__ = ["KerasModelNetwork", "as_network"]
