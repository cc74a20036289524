"""Pixel encoders (phi): the Nature CNN and the Impala CNN, both width- and depth-scalable, and
MinAtar's one-conv network (width-scalable).

Both take uint8 frames `[B, H, W, C]` (or raw 0..255 floats), divide by 255 inside and return the
last feature map `[B, H', W', C']` after its final ReLU.
"""

import tensorflow as tf

from tfgap import checks
from tfgap.compat import keras
from tfgap.networks import common

ENCODERS = ("nature", "impala", "minatar")
PADDINGS = ("SAME", "VALID")

# Nature CNN (Mnih et al. 2015): (channels, kernel, stride) per conv.
NATURE_CONVS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
# Impala CNN (Espeholt et al. 2018): channels of the first stack, then of every later stack.
IMPALA_FIRST_CHANNELS = 16
IMPALA_CHANNELS = 32


def _check_common(width_scale, padding):
  """Checks the scale and returns the padding in Keras' spelling ("same"/"valid")."""
  common.check_positive("width_scale", width_scale)
  return common.check_name("padding", padding, PADDINGS).lower()


class ConvStackEncoder(common.Layer):
  """A plain stack of ReLU convs, one spec `(channels, kernel, stride)` per conv in `CONVS`.

  Subclasses set `CONVS`, `ENCODER_NAME` and `kernel_initializer()`; channels are scaled by
  `width_scale`. The Nature, MinAtar and SAC encoders are such stacks.
  """

  CONVS = ()
  ENCODER_NAME = "conv stack"

  def __init__(self, width_scale=1.0, padding="SAME", prune=None, name="phi", **kwargs):
    """Creates the encoder.

    Args:
      width_scale: positive multiplier of every conv's channels (rounded, at least 1).
      padding: "SAME" or "VALID".
      prune: None, or a pruning config dict (see `bottlenecks.make_bottleneck("pruned")`) to
        wrap every conv in tfmot's gradual magnitude pruning.
      name: Keras layer name.
      **kwargs: passed to `keras.layers.Layer`.
    """
    super().__init__(name=name, **kwargs)
    self._padding = _check_common(width_scale, padding)
    self.width_scale = width_scale
    self._prune = dict(prune) if prune else None
    self.convs = []
    for i, (channels, kernel, stride) in enumerate(self.CONVS):
      conv = keras.layers.Conv2D(
          common.scaled(channels, width_scale), kernel, stride, padding=self._padding,
          activation="relu", kernel_initializer=self.kernel_initializer(), name=f"conv{i}",
          dtype=common.sublayer_dtype(self, pruned=bool(self._prune)))
      self.convs.append(common.maybe_prune(conv, self._prune))

  def kernel_initializer(self):
    return common.glorot_uniform()

  def build(self, input_shape):
    h, w, cin = tf.TensorShape(input_shape).as_list()[-3:]
    self.layer_costs((h, w, cin))  # Fails early on frames too small for the strides.
    for (_, kernel, stride), conv in zip(self.CONVS, self.convs):
      if not conv.built:
        conv.build(tf.TensorShape([None, h, w, cin]))
      h = common.conv_output_size(h, kernel, stride, self._padding)
      w = common.conv_output_size(w, kernel, stride, self._padding)
      cin = common.unwrap(conv).filters
    super().build(input_shape)

  def call(self, inputs, training=False):
    x = common.as_float_pixels(inputs)
    for conv in self.convs:
      x = conv(x, training=training)
    return x

  def call_with_activations(self, inputs, training=False):
    x = common.as_float_pixels(inputs)
    acts = []
    for conv in self.convs:
      x = conv(x, training=training)
      acts.append((common.unwrap(conv).name, x))
    return x, acts

  def output_shape_for(self, input_shape):
    """Feature map shape (without batch) for an observation shape (without batch)."""
    return self.layer_costs(input_shape)[1]

  def layer_costs(self, input_shape):
    costs = []
    h, w, cin = tuple(input_shape)[-3:]
    for (_, kernel, stride), conv in zip(self.CONVS, self.convs):
      h = common.conv_output_size(h, kernel, stride, self._padding)
      w = common.conv_output_size(w, kernel, stride, self._padding)
      cout = common.unwrap(conv).filters
      costs.append((conv, 2 * h * w * kernel * kernel * cin * cout))
      cin = cout
    if h < 1 or w < 1:
      raise ValueError(
          f"Observation {tuple(input_shape)} is too small for the {self.ENCODER_NAME} encoder "
          f"with padding {self._padding.upper()!r}; use a larger frame or padding 'SAME'.")
    return costs, (h, w, cin)

  @property
  def layers_with_neurons(self):
    return list(self.convs)

  def get_config(self):
    config = super().get_config()
    config.update(width_scale=self.width_scale, padding=self._padding.upper(), prune=self._prune)
    return config


@keras.utils.register_keras_serializable(package="tfgap")
class NatureEncoder(ConvStackEncoder):
  """Nature DQN conv stack: convs 32/64/64 (times width_scale), kernels 8/4/3, strides 4/2/1.

  SAME padding (Dopamine's Flax convs) maps 84x84 to 11x11x64; VALID (Keras' default, the original
  paper) maps it to 7x7x64. Kernels xavier_uniform, as Dopamine's NatureDQNNetwork /
  FullRainbowNetwork convs.
  """

  CONVS = NATURE_CONVS
  ENCODER_NAME = "nature"


@keras.utils.register_keras_serializable(package="tfgap")
class ImpalaEncoder(common.Layer):
  """Impala CNN as in Dopamine: stacks of (conv 3x3, max-pool 3x3/2, residual blocks), final ReLU.

  Stack i has 16 (first) or 32 (later) channels times width_scale; each residual block is
  ReLU, conv 3x3, ReLU, conv 3x3, add. All convs and pools use SAME padding, so 84x84 maps to
  11x11 with three stacks. Initialisers as dopamine/jax/networks.py `Stack`: the stack conv
  xavier_uniform, the residual convs Flax's default lecun_normal (they set no kernel_init).

  `call_with_activations` reports what the ReDo lab measures (dopamine/labs/redo/networks.py
  `Stack`): for the stack conv relu(max_pool(conv)), the first block's input; for a block's
  first conv relu(conv0); for its second conv the residual sum relu(x + conv1), the next
  block's input. (ReDo does not record the last block's sum of a stack; tfgap does, so every
  conv has one entry.)
  """

  def __init__(self, width_scale=1.0, num_stacks=3, blocks_per_stack=2, padding="SAME",
               prune=None, name="phi", **kwargs):
    """Creates the encoder.

    Args:
      width_scale: positive multiplier of every conv's channels (rounded, at least 1).
      num_stacks: number of (conv, pool, residual blocks) stacks; 3 in the Impala paper.
      blocks_per_stack: residual blocks per stack; 2 in the Impala paper.
      padding: must be "SAME" (the architecture is defined with SAME padding).
      prune: None or a pruning config dict to wrap every conv in tfmot pruning.
      name: Keras layer name.
      **kwargs: passed to `keras.layers.Layer`.
    """
    super().__init__(name=name, **kwargs)
    padding = _check_common(width_scale, padding)
    if padding != "same":
      checks.reject("padding", padding.upper(),
                    "'SAME' for the impala encoder ('VALID' is an option of the nature encoder)")
    common.check_positive("num_stacks", num_stacks, integer=True)
    checks.check_int("blocks_per_stack", blocks_per_stack, low=0)
    self.width_scale = width_scale
    self.num_stacks = int(num_stacks)
    self.blocks_per_stack = int(blocks_per_stack)
    self._prune = dict(prune) if prune else None
    self.stack_convs = []
    self.block_convs = []  # [stack][block] -> (conv1, conv2)
    for s in range(self.num_stacks):
      base = IMPALA_FIRST_CHANNELS if s == 0 else IMPALA_CHANNELS
      channels = common.scaled(base, width_scale)
      self.stack_convs.append(self._conv(channels, f"s{s}_conv", common.glorot_uniform()))
      blocks = []
      for b in range(self.blocks_per_stack):
        blocks.append((self._conv(channels, f"s{s}_b{b}_conv0", common.lecun_normal()),
                       self._conv(channels, f"s{s}_b{b}_conv1", common.lecun_normal())))
      self.block_convs.append(blocks)

  def _conv(self, channels, name, initializer):
    conv = keras.layers.Conv2D(channels, 3, 1, padding="same", kernel_initializer=initializer,
                               name=name,
                               dtype=common.sublayer_dtype(self, pruned=bool(self._prune)))
    return common.maybe_prune(conv, self._prune)

  def build(self, input_shape):
    h, w, cin = tf.TensorShape(input_shape).as_list()[-3:]
    for s in range(self.num_stacks):
      conv = self.stack_convs[s]
      if not conv.built:
        conv.build(tf.TensorShape([None, h, w, cin]))
      cin = common.unwrap(conv).filters
      h, w = -(-h // 2), -(-w // 2)
      for conv0, conv1 in self.block_convs[s]:
        for c in (conv0, conv1):
          if not c.built:
            c.build(tf.TensorShape([None, h, w, cin]))
    super().build(input_shape)

  def _forward(self, inputs, training, collect):
    x = common.as_float_pixels(inputs)
    acts = []
    for s in range(self.num_stacks):
      conv = self.stack_convs[s]
      x = conv(x, training=training)
      x = tf.nn.max_pool2d(x, ksize=3, strides=2, padding="SAME")
      if collect:  # ReDo: after the pooling.
        acts.append((common.unwrap(conv).name, tf.nn.relu(x)))
      for conv0, conv1 in self.block_convs[s]:
        y = conv0(tf.nn.relu(x), training=training)
        y = tf.nn.relu(y)
        if collect:
          acts.append((common.unwrap(conv0).name, y))
        x = x + conv1(y, training=training)
        if collect:  # ReDo: after the residual add.
          acts.append((common.unwrap(conv1).name, tf.nn.relu(x)))
    return tf.nn.relu(x), acts

  def call(self, inputs, training=False):
    return self._forward(inputs, training, collect=False)[0]

  def call_with_activations(self, inputs, training=False):
    return self._forward(inputs, training, collect=True)

  def output_shape_for(self, input_shape):
    return self.layer_costs(input_shape)[1]

  def layer_costs(self, input_shape):
    h, w, cin = tuple(input_shape)[-3:]
    costs = []
    for s in range(self.num_stacks):
      cout = common.unwrap(self.stack_convs[s]).filters
      costs.append((self.stack_convs[s], 2 * h * w * 9 * cin * cout))
      h, w, cin = -(-h // 2), -(-w // 2), cout
      for conv0, conv1 in self.block_convs[s]:
        costs.append((conv0, 2 * h * w * 9 * cin * cin))
        costs.append((conv1, 2 * h * w * 9 * cin * cin))
    return costs, (h, w, cin)

  @property
  def layers_with_neurons(self):
    out = []
    for s in range(self.num_stacks):
      out.append(self.stack_convs[s])
      for pair in self.block_convs[s]:
        out.extend(pair)
    return out

  def get_config(self):
    config = super().get_config()
    config.update(width_scale=self.width_scale, num_stacks=self.num_stacks,
                  blocks_per_stack=self.blocks_per_stack, padding="SAME", prune=self._prune)
    return config


# MinAtar's network (Young & Tian 2019, examples/dqn.py of kenjyoung/MinAtar): one conv of 16
# channels, kernel 3, stride 1, on 10x10 inputs; its Q-head is one dense layer of 128 units.
MINATAR_CONV = (16, 3, 1)


@keras.utils.register_keras_serializable(package="tfgap")
class MinAtarEncoder(ConvStackEncoder):
  """MinAtar's one-conv encoder: conv 3x3, stride 1, 16 x width_scale channels, ReLU.

  VALID padding (MinAtar's PyTorch network, padding 0) maps 10x10 to 8x8x16; SAME keeps 10x10x16.
  A flatten bottleneck then feeds H*W*16*width_scale features to psi, GAP 16*width_scale.
  """

  CONVS = (MINATAR_CONV,)
  ENCODER_NAME = "minatar"


def make_encoder(name, width_scale=1.0, padding="SAME", num_stacks=3, blocks_per_stack=2,
                 prune=None, dtype=None):
  """Builds an encoder (phi) by name.

  Args:
    name: "nature", "impala" or "minatar".
    width_scale: positive multiplier of the channels of every conv (channels are rounded half up,
      at least 1).
    padding: "SAME" (default, Dopamine) or "VALID" (nature and minatar).
    num_stacks: impala only: number of stacks (depth scaling). The nature encoder has a fixed
      depth and rejects values other than the default 3.
    blocks_per_stack: impala only: residual blocks per stack (depth scaling); nature accepts only
      the default 2.
    prune: None or a pruning config dict (wraps every conv in tfmot pruning).
    dtype: the Keras dtype policy of its layers (None: float32; pruned convs stay float32).

  Returns:
    A Keras layer mapping uint8 `[B, H, W, C]` to float `[B, H', W', C']`.

  Raises:
    ValueError: on an unknown name, a non-positive scale or invalid depth.
  """
  name = common.check_name("encoder", name, ENCODERS)
  if name in ("nature", "minatar"):
    if num_stacks != 3 or blocks_per_stack != 2:
      raise ValueError(
          f"num_stacks={num_stacks!r} / blocks_per_stack={blocks_per_stack!r} apply to the impala "
          f"encoder only; the {name} encoder has a fixed depth (accepted: the defaults 3 and 2).")
    cls = NatureEncoder if name == "nature" else MinAtarEncoder
    return cls(width_scale=width_scale, padding=padding, prune=prune, dtype=dtype)
  return ImpalaEncoder(width_scale=width_scale, num_stacks=num_stacks,
                       blocks_per_stack=blocks_per_stack, padding=padding, prune=prune,
                       dtype=dtype)
