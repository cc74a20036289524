"""Dense heads (psi): plain, dueling and categorical outputs, with optional noisy layers.

`DenseHead` is one Keras layer holding every dense layer of psi, so that networks and plain Keras
models share it; `NoisyDense` implements factorised Gaussian noise (Fortunato et al. 2018) with
Dopamine's initialisation (dopamine/jax/networks.py, NoisyNetwork).
"""

import contextlib

import tensorflow as tf

from tfgap.compat import keras
from tfgap.networks import common

# How a dueling head splits (see `DenseHead`).
DUELING_LAYOUTS = ("shared", "separate")
# Kernel initializers of a head's dense layers (name: factory): Dopamine's xavier_uniform, or
# orthogonal (the pixel-SAC line of SAC-AE and DrQ: `utils.weight_init`, gain 1, zero biases).
HEAD_INITIALIZERS = {"glorot_uniform": common.glorot_uniform, "orthogonal": common.orthogonal}


@keras.utils.register_keras_serializable(package="tfgap")
class NoisyDense(keras.layers.Layer):
  """Dense layer with factorised Gaussian parameter noise (NoisyNet, Fortunato et al. 2018).

  y = x W_mu + b_mu + enabled * (((x * f(e_in)) W_sigma) * f(e_out) + b_sigma * f(e_out)),
  f(e) = sign(e) sqrt(|e|), with e_in ~ N(0, I_p), e_out ~ N(0, I_q) drawn at every call and shared
  over the batch. Initialisation as Dopamine's NoisyNetwork (dopamine/jax/networks.py):
  mu ~ U(-1/sqrt(p), 1/sqrt(p)) and sigma = sigma0 / sqrt(p), constant, for kernel and bias, with
  sigma0 = 0.1 by default (Fortunato et al. give 0.5: pass `sigma0=0.5`). The noise is on at every
  call (acting included, as Rainbow explores through it); `set_noise(net, False)` switches it off
  (e.g. for evaluation) through a non-trainable variable, without retracing.
  """

  def __init__(self, units, activation=None, sigma0=common.NOISY_SIGMA0, **kwargs):
    super().__init__(**kwargs)
    self.units = common.check_positive("units", units, integer=True)
    self.activation = keras.activations.get(activation)
    self.sigma0 = common.check_positive("sigma0", sigma0)

  def build(self, input_shape):
    p = int(tf.TensorShape(input_shape)[-1])
    bound, sigma = common.noisy_init(p, self.sigma0)
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

  # Independent noise draws per equal block of rows (see `noise_groups`): a call on
  # concat([s, s']) then draws as two calls would. Set while tracing, not a config field.
  noise_groups = 1

  def call(self, inputs):
    p = self.kernel_mu.shape[0]
    groups = self.noise_groups
    e_in = common.factorised_noise(p, inputs.dtype, None if groups == 1 else groups)
    e_out = common.factorised_noise(self.units, inputs.dtype, None if groups == 1 else groups)
    e_out *= tf.cast(self.noise_enabled, inputs.dtype)
    if groups != 1:
      rows = tf.shape(inputs)[0]
      e_in, e_out = common.per_row_noise(e_in, rows), common.per_row_noise(e_out, rows)
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
  """Turns the noise of every noisy layer inside `obj` (network, model or layer) on or off.

  Noisy layers are those holding a `noise_enabled` switch: `NoisyDense` and a SoftMoE bottleneck
  with noisy experts.
  """
  for layer in _all_layers(obj):
    switch = getattr(layer, "noise_enabled", None)
    if switch is not None and layer.built:
      switch.assign(1.0 if enabled else 0.0)


@contextlib.contextmanager
def noise_groups(obj, groups):
  """While tracing inside it, noisy layers of `obj` draw `groups` independent noise samples, one
  per equal block of rows of their input (NoisyDense, noisy SoftMoE experts).

  For one call on `concat([x1, ..., xG])` that must draw noise as G separate calls would.
  """
  layers = [layer for layer in _all_layers(obj) if hasattr(layer, "noise_groups")]
  before = [layer.noise_groups for layer in layers]
  try:
    for layer in layers:
      layer.noise_groups = int(groups)
    yield
  finally:
    for layer, value in zip(layers, before):
      layer.noise_groups = value


def _all_layers(obj):
  if hasattr(obj, "_flatten_layers"):
    return list(obj._flatten_layers(include_self=True, recursive=True))  # pylint: disable=protected-access
  return []


@keras.utils.register_keras_serializable(package="tfgap")
class DenseHead(common.Layer):
  """psi: dense hidden layers (ReLU) and an optional output layer, plain or dueling.

  Outputs: `[B, num_actions]` (Q-values or a scalar with num_actions=1), `[B, num_actions,
  num_atoms]` logits when num_atoms is set, or the last hidden layer when num_actions is None.
  Dueling combines a value and an advantage output as V + A - mean_a A (per atom for categorical
  heads). `dueling_layout="shared"` (default) is Dopamine's: the hidden layers are shared and only
  the output layer splits into value `Dense(atoms)` and advantage `Dense(A * atoms)`, both reading
  the last hidden layer (dopamine/jax/networks.py, FullRainbowNetwork; the MoE lab's
  FullRainbowMoENetwork). `"separate"` gives each stream its own hidden layers (Wang et al. 2016).

  Layers: `trunk` (hidden layers every output reads) and `branches` (per output, its own layers
  ending with its output layer); `streams` is each output's full path from the head's input.
  """

  def __init__(self, hidden_units=(512,), num_actions=None, num_atoms=None, dueling=False,
               dueling_layout="shared", noisy=False, noisy_sigma0=common.NOISY_SIGMA0,
               prune=None, prune_layers=1, kernel_initializer="glorot_uniform", name="psi",
               **kwargs):
    """Creates the head.

    Args:
      hidden_units: widths of the hidden layers (depth = its length).
      num_actions: output width (Q per action); None for no output layer.
      num_atoms: categorical: output logits `[num_actions, num_atoms]`.
      dueling: value and advantage outputs.
      dueling_layout: "shared" (Dopamine: one set of hidden layers, split in the output layer)
        or "separate" (each stream has its own hidden layers).
      noisy: NoisyDense instead of Dense everywhere in psi.
      noisy_sigma0: initial noise scale of the noisy layers (sigma = sigma0 / sqrt(fan_in));
        0.1 as Dopamine.
      prune: None or a pruning config dict; wraps the first `prune_layers` layers of every
        stream (a shared layer once).
      prune_layers: positive int or "all".
      kernel_initializer: "glorot_uniform" (Dopamine) or "orthogonal" (SAC-AE, DrQ) for the
        dense layers' kernels (noisy layers keep their own); biases start at zero either way.
      name: Keras layer name.
      **kwargs: passed to `keras.layers.Layer`; its `dtype` (policy) is every dense layer's but
        the pruned ones' (float32).
    """
    super().__init__(name=name, **kwargs)
    self.hidden_units = common.check_units("head_units", hidden_units)
    if num_actions is not None:
      common.check_positive("num_actions", num_actions, integer=True)
    if num_atoms is not None:
      common.check_positive("num_atoms", num_atoms, integer=True)
    self.dueling_layout = common.check_name("dueling_layout", dueling_layout, DUELING_LAYOUTS)
    self.noisy_sigma0 = common.check_positive("noisy_sigma0", noisy_sigma0)
    self.kernel_initializer = common.check_name("kernel_initializer", kernel_initializer,
                                                HEAD_INITIALIZERS)
    if dueling and num_actions is None:
      raise ValueError("dueling=True needs an output layer (num_actions); got num_actions=None.")
    if num_actions is None and not self.hidden_units:
      raise ValueError("A head without output layer needs hidden layers; got head_units=().")
    self.num_actions, self.num_atoms = num_actions, num_atoms
    self.dueling, self.noisy = bool(dueling), bool(noisy)
    self._prune = dict(prune) if prune else None
    self._prune_layers = prune_layers
    atoms = num_atoms or 1
    self.trunk, self.branches = [], []
    if self.dueling and self.dueling_layout == "separate":
      depth = len(self.hidden_units)
      self.branches = [
          self._hidden("value_") + [self._dense(atoms, None, "value", depth, output=True)],
          self._hidden("advantage_") + [
              self._dense(num_actions * atoms, None, "advantage", depth, output=True)]]
    else:
      self.trunk = self._hidden("")
      depth = len(self.trunk)
      if self.dueling:
        self.branches = [
            [self._dense(atoms, None, "value", depth, output=True)],
            [self._dense(num_actions * atoms, None, "advantage", depth, output=True)]]
      elif num_actions is not None:
        name = "logits" if num_atoms else "output"
        self.branches = [[self._dense(num_actions * atoms, None, name, depth, output=True)]]

  def _dense(self, units, activation, name, depth, output=False):
    """A psi layer at position `depth` of its stream (pruned when depth < prune_layers).

    Output layers compute in float32 in every precision (Keras' mixed-precision advice): in
    bfloat16 a Q-value of 100 would be rounded to a multiple of 0.5, coarser than the TD errors
    and action gaps the agent learns from. They are a small share of the network's work.
    """
    pruned = bool(self._prune) and (self._prune_layers == "all" or depth < self._prune_layers)
    dtype = "float32" if output else common.sublayer_dtype(self, pruned=pruned)
    if self.noisy:
      layer = NoisyDense(units, activation=activation, sigma0=self.noisy_sigma0, name=name,
                         dtype=dtype)
    else:
      # Dopamine's dense layers (hidden and output) take xavier_uniform kernels, zero biases.
      init = HEAD_INITIALIZERS[self.kernel_initializer]()
      layer = keras.layers.Dense(units, activation=activation, name=name,
                                 kernel_initializer=init, dtype=dtype)
    return common.maybe_prune(layer, self._prune if pruned else None)

  def _hidden(self, prefix):
    return [self._dense(u, "relu", f"{prefix}dense{i}", i)
            for i, u in enumerate(self.hidden_units)]

  @property
  def streams(self):
    """Each output's layers from the head's input to it (shared layers appear in every one)."""
    if not self.branches:
      return [list(self.trunk)]
    return [list(self.trunk) + list(branch) for branch in self.branches]

  @property
  def input_layers(self):
    """The layers that read the head's input (the bottleneck's output), each once."""
    if self.trunk:
      return [self.trunk[0]]
    return [branch[0] for branch in self.branches]

  @property
  def dense_layers(self):
    return list(self.trunk) + [layer for branch in self.branches for layer in branch]

  @property
  def layers_with_neurons(self):
    """Hidden layers (the output layer's 'neurons' are the network's outputs)."""
    return list(self.trunk) + [layer for branch in self.branches for layer in branch[:-1]]

  def _walk(self, width):
    """Yields (layer, input width) over trunk then branches, in creation order."""
    for layer in self.trunk:
      yield layer, width
      width = common.unwrap(layer).units
    for branch in self.branches:
      w = width
      for layer in branch:
        yield layer, w
        w = common.unwrap(layer).units

  def build(self, input_shape):
    d = int(tf.TensorShape(input_shape)[-1])
    for layer, width in self._walk(d):
      if not layer.built:
        layer.build(tf.TensorShape([None, width]))
    super().build(input_shape)

  def _run(self, layers, x, training, acts, hidden):
    for i, layer in enumerate(layers):
      x = layer(x, training=training)
      if acts is not None and i < hidden:
        acts.append((common.unwrap(layer).name, x))
    return x

  def _forward(self, features, training, acts):
    x = self._run(self.trunk, features, training, acts, len(self.trunk))
    outs = [self._run(branch, x, training, acts, len(branch) - 1) for branch in self.branches]
    if self.num_actions is None:
      return x
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
    d = int(tuple(input_shape)[-1])
    costs = [(layer, (4 if self.noisy else 2) * width * common.unwrap(layer).units)
             for layer, width in self._walk(d)]
    if self.num_actions is None:
      return costs, (self.hidden_units[-1],)
    if self.num_atoms:
      return costs, (self.num_actions, self.num_atoms)
    return costs, (self.num_actions,)

  def get_config(self):
    config = super().get_config()
    config.update(hidden_units=self.hidden_units, num_actions=self.num_actions,
                  num_atoms=self.num_atoms, dueling=self.dueling,
                  dueling_layout=self.dueling_layout, noisy=self.noisy,
                  noisy_sigma0=self.noisy_sigma0, prune=self._prune,
                  prune_layers=self._prune_layers,
                  kernel_initializer=self.kernel_initializer)
    return config
