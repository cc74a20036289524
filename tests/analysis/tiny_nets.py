"""Small real Keras networks implementing the tfgap network contract, for analysis tests.

`TinyQNet` has the interface of docs/DESIGN.md (encode / decode / activations / parts and the
encoder_name / bottleneck_name / width_scale attributes) over ordinary Keras layers, so the
analysis code can be tested independently of tfgap.networks.
"""

import numpy as np
import tensorflow as tf

from tfgap.compat import keras


class TinyQNet:
  """uint8 frames -> Rescaling -> convs (phi) -> flatten | gap (bottleneck) -> dense (psi)."""

  encoder_name = "tiny"

  def __init__(self, input_shape=(16, 16, 4), filters=(8, 12), units=10, num_actions=4,
               bottleneck="flatten", num_atoms=None, strides=(2, 1)):
    self.bottleneck_name = bottleneck
    self.width_scale = 1.0
    self.num_atoms = num_atoms
    self.input_shape = tuple(input_shape)
    self.input_tensor_spec = tf.TensorSpec(self.input_shape, tf.uint8)
    self.rescale = keras.layers.Rescaling(1.0 / 255.0, name="rescale")
    self.convs = [keras.layers.Conv2D(f, 3, strides=s, padding="same", activation="relu",
                                      name=f"conv{i}")
                  for i, (f, s) in enumerate(zip(filters, strides))]
    if bottleneck == "flatten":
      self.neck = keras.layers.Flatten(name="flatten")
    elif bottleneck == "gap":
      self.neck = keras.layers.GlobalAveragePooling2D(name="gap")
    else:
      raise ValueError(f"bottleneck {bottleneck!r}; accepted: flatten, gap")
    self.hidden = keras.layers.Dense(units, activation="relu", name="dense0")
    outputs = num_actions * (num_atoms or 1)
    self.head = keras.layers.Dense(outputs, name="q")
    self.num_actions = num_actions
    self(np.zeros((1,) + self.input_shape, np.uint8))  # Builds every layer.

  def encode(self, observation, training=False):
    x = self.rescale(tf.cast(observation, tf.float32))
    for conv in self.convs:
      x = conv(x, training=training)
    return x

  def decode(self, features, training=False):
    x = self.hidden(self.neck(features), training=training)
    out = self.head(x, training=training)
    if self.num_atoms:
      out = tf.reshape(out, [-1, self.num_actions, self.num_atoms])
    return out

  def __call__(self, observation, training=False):
    return self.decode(self.encode(observation, training), training)

  def activations(self, observation, training=False):
    out = []
    x = self.rescale(tf.cast(observation, tf.float32))
    for conv in self.convs:
      x = conv(x, training=training)
      out.append(("phi", conv.name, x))
    x = self.hidden(self.neck(x), training=training)
    out.append(("psi", self.hidden.name, x))
    return out

  def parts(self):
    return {"phi": [self.rescale] + list(self.convs), "bottleneck": [self.neck],
            "psi": [self.hidden, self.head]}


def kill_units(layer, dead, weak=(), weak_scale=0.05, live_value=0.1):
  """Sets a layer's weights so some units are dead, some weak and the rest identical.

  Dead units get zero weights and bias -1 (ReLU output exactly 0 on any input). Every other unit
  gets the same positive weights and bias, so on non-negative inputs all live units have the same
  mean activation m > 0; weak units get weights and bias scaled by `weak_scale`, so their mean is
  exactly weak_scale * m.
  """
  kernel, bias = layer.get_weights()
  kernel = np.full_like(kernel, live_value)
  bias = np.full_like(bias, live_value)
  for unit in weak:
    kernel[..., unit] *= weak_scale
    bias[unit] *= weak_scale
  for unit in dead:
    kernel[..., unit] = 0.0
    bias[unit] = -1.0
  layer.set_weights([kernel, bias])


class RegionQNet:
  """A Q-network whose values depend on which input channel lights up, hence on where.

  phi: a 2x2 stride-2 conv whose feature k is the mean of input channel k over each patch
  (features [B, H/2, W/2, 2]). psi: global average pooling then a dense layer with
  Q_0 = f_0 - f_1 and Q_1 = f_1 - f_0, optionally as categorical logits
  logits[a, z] = Q_a * support_z (expected Q grows with Q_a).

  With an object only in channel 0 (region R) and another only in channel 1 (region R2),
  Q_0's Grad-CAM must light up R and stay dark on R2; Q_1's the reverse.
  """

  encoder_name = "region"
  bottleneck_name = "gap"
  width_scale = 1.0

  def __init__(self, size=32, categorical_atoms=None):
    self.conv = keras.layers.Conv2D(2, 2, strides=2, use_bias=False, name="patch_mean")
    self.conv.build((None, size, size, 2))
    kernel = np.zeros((2, 2, 2, 2), np.float32)
    kernel[:, :, 0, 0] = 0.25
    kernel[:, :, 1, 1] = 0.25
    self.conv.set_weights([kernel])
    self.pool = keras.layers.GlobalAveragePooling2D(name="gap")
    self.dense = keras.layers.Dense(2, use_bias=False, name="q")
    self.dense.build((None, 2))
    self.dense.set_weights([np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32) * 10.0])
    self.atoms = categorical_atoms
    if categorical_atoms:
      self.support = np.linspace(-1.0, 1.0, categorical_atoms).astype(np.float32)

  def encode(self, observation, training=False):
    return self.conv(tf.cast(observation, tf.float32) / 255.0)

  def decode(self, features, training=False):
    q = self.dense(self.pool(features))
    if self.atoms:
      return q[..., None] * self.support
    return q

  def activations(self, observation, training=False):
    features = self.encode(observation)
    return [("phi", "patch_mean", features), ("psi", "q", self.decode(features))]

  def parts(self):
    return {"phi": [self.conv], "bottleneck": [self.pool], "psi": [self.dense]}


def two_object_frames(size, region, region2, big=8, small=4):
  """uint8 [1, size, size, 2]: a big square at `region` in channel 0, a small one in channel 1.

  Regions are (row, col) of the squares' top-left corners.
  """
  frame = np.zeros((1, size, size, 2), np.uint8)
  r, c = region
  frame[0, r:r + big, c:c + big, 0] = 255
  r, c = region2
  frame[0, r:r + small, c:c + small, 1] = 255
  return frame


def assert_greedy(chosen, values, atol=1e-5):
  """Each chosen index maximises its row of values (ties within atol: oneDNN sums in varying
  order across calls, and Keras' unseeded initializers make near-ties possible)."""
  values = np.asarray(values)
  picked = values[np.arange(len(chosen)), np.asarray(chosen)]
  np.testing.assert_array_less(values.max(axis=-1) - atol, picked + 1e-12)
