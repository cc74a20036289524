"""Dense heads (psi): plain, dueling and categorical outputs, with optional noisy layers.

`DenseHead` is one Keras layer holding every dense layer of psi, so that networks and plain Keras
models share it; `NoisyDense` implements factorised Gaussian noise (Fortunato et al. 2018).
"""

import math

import tensorflow as tf

from tfgap.compat import keras
from tfgap.networks import common


class NoisyDense(keras.layers.Layer):
  """Dense layer with factorised Gaussian parameter noise (NoisyNet, Fortunato et al. 2018).

  y = x W_mu + b_mu + enabled * (((x * f(e_in)) W_sigma) * f(e_out) + b_sigma * f(e_out)),
  f(e) = sign(e) sqrt(|e|), with e_in ~ N(0, I_p), e_out ~ N(0, I_q) drawn at every call and shared
  over the batch. mu ~ U(-1/sqrt(p), 1/sqrt(p)); sigma = sigma0 / sqrt(p). The noise is on at every
  call (acting included, as Rainbow explores through it); `set_noise(net, False)` switches it off
  (e.g. for evaluation) through a non-trainable variable, without retracing.
  """

  def __init__(self, units, activation=None, sigma0=0.5, **kwargs):
    super().__init__(**kwargs)
    self.units = common.check_positive("units", units, integer=True)
    self.activation = keras.activations.get(activation)
    self.sigma0 = common.check_positive("sigma0", sigma0)

  def build(self, input_shape):
    p = int(tf.TensorShape(input_shape)[-1])
    bound = 1.0 / math.sqrt(p)
    sigma = self.sigma0 / math.sqrt(p)
    # A fresh initializer per weight: Keras warns that a reused unseeded one repeats its values.
    self.kernel_mu = self.add_weight("kernel_mu", shape=[p, self.units],
                                     initializer=keras.initializers.RandomUniform(-bound, bound))
    self.kernel_sigma = self.add_weight("kernel_sigma", shape=[p, self.units],
                                        initializer=keras.initializers.Constant(sigma))
    self.bias_mu = self.add_weight("bias_mu", shape=[self.units],
                                   initializer=keras.initializers.RandomUniform(-bound, bound))
    self.bias_sigma = self.add_weight("bias_sigma", shape=[self.units],
                                      initializer=keras.initializers.Constant(sigma))
    self.noise_enabled = self.add_weight(
        "noise_enabled", shape=[], initializer="ones", trainable=False)
    super().build(input_shape)

  def call(self, inputs):
    p = self.kernel_mu.shape[0]

    def f(e):
      return tf.sign(e) * tf.sqrt(tf.abs(e))

    e_in = f(tf.random.normal([p], dtype=inputs.dtype))
    e_out = f(tf.random.normal([self.units], dtype=inputs.dtype)) * self.noise_enabled
    y = tf.matmul(inputs, self.kernel_mu) + self.bias_mu
    y += tf.matmul(inputs * e_in, self.kernel_sigma) * e_out + self.bias_sigma * e_out
    return self.activation(y)

  def get_prunable_weights(self):
    # Both kernels get a magnitude mask: a pruned connection has neither mean nor noise.
    return [self.kernel_mu, self.kernel_sigma]

  def get_config(self):
    config = super().get_config()
    config.update(units=self.units, activation=keras.activations.serialize(self.activation),
                  sigma0=self.sigma0)
    return config


def set_noise(obj, enabled):
  """Turns the noise of every NoisyDense inside `obj` (network, model or layer) on or off."""
  for layer in _all_layers(obj):
    if isinstance(layer, NoisyDense) and layer.built:
      layer.noise_enabled.assign(1.0 if enabled else 0.0)


def _all_layers(obj):
  if hasattr(obj, "_flatten_layers"):
    return list(obj._flatten_layers(include_self=True, recursive=True))  # pylint: disable=protected-access
  return []


class DenseHead(common.Layer):
  """psi: dense hidden layers (ReLU) and an optional output layer, plain or dueling.

  Outputs: `[B, num_actions]` (Q-values or a scalar with num_actions=1), `[B, num_actions,
  num_atoms]` logits when num_atoms is set, or the last hidden layer when num_actions is None.
  Dueling builds a value and an advantage stream, each with its own hidden layers, and combines
  them as V + A - mean_a A (per atom for categorical heads, as Dopamine's Rainbow).
  """

  def __init__(self, hidden_units=(512,), num_actions=None, num_atoms=None, dueling=False,
               noisy=False, prune=None, prune_layers=1, name="psi", **kwargs):
    """Creates the head.

    Args:
      hidden_units: widths of the hidden layers (depth = its length).
      num_actions: output width (Q per action); None for no output layer.
      num_atoms: categorical: output logits `[num_actions, num_atoms]`.
      dueling: value and advantage streams.
      noisy: NoisyDense instead of Dense everywhere in psi.
      prune: None or a pruning config dict; wraps the first `prune_layers` layers of every stream.
      prune_layers: positive int or "all".
      name: Keras layer name.
      **kwargs: passed to `keras.layers.Layer`.
    """
    super().__init__(name=name, **kwargs)
    self.hidden_units = common.check_units("head_units", hidden_units)
    if num_actions is not None:
      common.check_positive("num_actions", num_actions, integer=True)
    if num_atoms is not None:
      common.check_positive("num_atoms", num_atoms, integer=True)
    if dueling and num_actions is None:
      raise ValueError("dueling=True needs an output layer (num_actions); got num_actions=None.")
    if num_actions is None and not self.hidden_units:
      raise ValueError("A head without output layer needs hidden layers; got head_units=().")
    self.num_actions, self.num_atoms = num_actions, num_atoms
    self.dueling, self.noisy = bool(dueling), bool(noisy)
    self._prune = dict(prune) if prune else None
    self._prune_layers = prune_layers
    atoms = num_atoms or 1
    if dueling:
      self.streams = [self._stream("value", atoms), self._stream("advantage", num_actions * atoms)]
    else:
      self.streams = [self._stream("", None if num_actions is None else num_actions * atoms)]

  def _dense(self, units, activation, name, index):
    if self.noisy:
      layer = NoisyDense(units, activation=activation, name=name)
    else:
      layer = keras.layers.Dense(units, activation=activation, name=name)
    pruned = self._prune_layers == "all" or index < self._prune_layers
    return common.maybe_prune(layer, self._prune if pruned else None)

  def _stream(self, prefix, out_units):
    pre = f"{prefix}_" if prefix else ""
    layers = [self._dense(u, "relu", f"{pre}dense{i}", i)
              for i, u in enumerate(self.hidden_units)]
    if out_units is not None:
      out_name = prefix or ("logits" if self.num_atoms else "output")
      layers.append(self._dense(out_units, None, out_name, len(layers)))
    return layers

  @property
  def dense_layers(self):
    return [layer for stream in self.streams for layer in stream]

  @property
  def layers_with_neurons(self):
    """Hidden layers (the output layer's 'neurons' are the network's outputs)."""
    out = []
    for stream in self.streams:
      out.extend(stream[:len(self.hidden_units)])
    return out

  def build(self, input_shape):
    d = int(tf.TensorShape(input_shape)[-1])
    for stream in self.streams:
      width = d
      for layer in stream:
        if not layer.built:
          layer.build(tf.TensorShape([None, width]))
        width = common.unwrap(layer).units
    super().build(input_shape)

  def _run_stream(self, stream, x, training, acts):
    for i, layer in enumerate(stream):
      x = layer(x, training=training)
      if acts is not None and i < len(self.hidden_units):
        acts.append((common.unwrap(layer).name, x))
    return x

  def _forward(self, features, training, acts):
    outs = [self._run_stream(stream, features, training, acts) for stream in self.streams]
    if self.num_actions is None:
      return outs[0]
    atoms = self.num_atoms or 1
    if self.dueling:
      value = tf.reshape(outs[0], [-1, 1, atoms])
      advantage = tf.reshape(outs[1], [-1, self.num_actions, atoms])
      out = value + advantage - tf.reduce_mean(advantage, axis=1, keepdims=True)
    else:
      out = tf.reshape(outs[0], [-1, self.num_actions, atoms])
    return out if self.num_atoms else out[..., 0]

  def call(self, inputs, training=False):
    return self._forward(inputs, training, None)

  def call_with_activations(self, inputs, training=False):
    acts = []
    out = self._forward(inputs, training, acts)
    return out, acts

  def layer_costs(self, input_shape):
    costs = []
    d = int(tuple(input_shape)[-1])
    for stream in self.streams:
      width = d
      for layer in stream:
        units = common.unwrap(layer).units
        costs.append((layer, (4 if self.noisy else 2) * width * units))
        width = units
    if self.num_actions is None:
      return costs, (self.hidden_units[-1],)
    if self.num_atoms:
      return costs, (self.num_actions, self.num_atoms)
    return costs, (self.num_actions,)

  def get_config(self):
    config = super().get_config()
    config.update(hidden_units=self.hidden_units, num_actions=self.num_actions,
                  num_atoms=self.num_atoms, dueling=self.dueling, noisy=self.noisy,
                  prune=self._prune, prune_layers=self._prune_layers)
    return config
