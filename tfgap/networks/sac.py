"""Pixel SAC networks: one encoder and bottleneck shared by twin critics and a tanh-Gaussian actor.

The layout of Dopamine's SAC from pixels (dopamine/labs/sac_from_pixels/continuous_networks.py
`SACEncoderNetwork`, `SACConvNetwork`; dopamine/jax/continuous_networks.py `SACNetwork`), which
is SAC-AE's and DrQ's:

    frames -> phi (encoder) -> bottleneck -> critic_z = tanh(LayerNorm(Dense(50)))  -> Q1, Q2 MLPs
                                          -> actor_z  = tanh(LayerNorm(Dense(50)))(stop_gradient)
                                                                                  -> actor MLP

The encoder and bottleneck are trained by the critic loss only: the actor's own feature layer
reads them through `stop_gradient`. The critics read `[critic_z, action]`; the actor outputs
`(loc, log_std)` of a diagonal Gaussian squashed by tanh into the action bounds.

`PixelSACNetwork` holds every layer and follows the tfgap network contract (`encode`, `decode`,
`activations`, `parts`, `layer_costs`, `encoder_name`, `bottleneck_name`, `width_scale`), so
dormant neurons, Grad-CAM and accounting read it like a Q-network; psi is every layer after the
bottleneck (both feature layers, both critics, the actor). `actor_network()` and
`critic_network(i)` are TF-Agents views on the same layers (no variables of their own) for
TF-Agents' SacAgent, ActorPolicy and PolicySaver; `part_networks()` gives per-network views for
accounting (phi / bottleneck / psi of the critic and of the actor).

Precision (`precision=`, as the Q-networks'): under "mixed_bfloat16" the convolutions and every
hidden dense layer (bottleneck, feature layers, critics, actor) compute in bfloat16 while the
variables stay float32; the critics' and the actor's output layers compute in float32 (a Q-value
of 100 in bfloat16 would be a multiple of 0.5). The network hands float32 across its boundaries:
the encoder's feature map, the shared features, Q1/Q2 and the actor's (loc, log_std), so the
Gaussian log-probs, the tanh squashing and everything the agent computes from them (targets,
temperature, Polyak averaging) run in float32. LayerNorm normalises in float32 (Keras casts its bfloat16 input).
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.distributions import utils as distribution_utils
from tf_agents.networks import network
from tf_agents.networks import utils as network_utils
from tf_agents.specs import distribution_spec
from tf_agents.specs import tensor_spec
from tf_agents.utils import nest_utils

from tfgap import checks
from tfgap.compat import keras
from tfgap.networks import bottlenecks as bottlenecks_lib
from tfgap.networks import builders
from tfgap.networks import common
from tfgap.networks import encoders as encoders_lib
from tfgap.networks import heads as heads_lib

# Dopamine's SACEncoderNetwork: (channels, kernel, stride) of its four convs (SAC-AE's encoder).
SAC_CONVS = ((32, 3, 2), (32, 3, 1), (32, 3, 1), (32, 3, 1))
# Encoders a SAC network takes: Dopamine's SAC conv stack and tfgap's others.
SAC_ENCODERS = ("sac",) + tuple(e for e in encoders_lib.ENCODERS if e != "sac")
# Width of the critic's and the actor's feature layer (SACEncoderNetwork: Dense(features=50)).
FEATURE_DIM = 50
# Hidden layers of each critic and of the actor: sac_pixels.gin `SACAgent.num_layers = 2`,
# `SACAgent.hidden_units = 1024`.
SAC_HEAD_UNITS = (1024, 1024)
# How `log_std_bounds` bound the actor's log-std: clipped (TF-Agents' actor) or tanh-mapped (DrQ's).
LOG_STD_TRANSFORMS = ("clip", "tanh")
# Flax's LayerNorm epsilon (Keras' default is 1e-3).
LAYER_NORM_EPSILON = 1e-6


@keras.utils.register_keras_serializable(package="tfgap")
class SACEncoder(encoders_lib.ConvStackEncoder):
  """Dopamine's SAC-from-pixels conv stack: 4 convs of 32 (times width_scale) channels, 3x3,
  strides 2, 1, 1, 1, ReLU, orthogonal kernels, zero biases.

  Padding SAME (Flax's default, what Dopamine's code runs) maps 84x84 to 42x42x32; VALID (SAC-AE
  and DrQ's PyTorch encoder) maps it to 35x35x32.
  """

  CONVS = SAC_CONVS
  ENCODER_NAME = "sac"

  def kernel_initializer(self):
    return common.orthogonal()


def make_sac_encoder(name, width_scale=1.0, padding="SAME", num_stacks=3, blocks_per_stack=2,
                     dtype=None):
  """"sac" (Dopamine's SAC conv stack) or any `tfgap.networks.make_encoder` name; `dtype` is the
  Keras dtype policy of its layers (None: float32)."""
  name = common.check_name("encoder", name, SAC_ENCODERS)
  if name == "sac":
    if num_stacks != 3 or blocks_per_stack != 2:
      raise ValueError(
          f"num_stacks={num_stacks!r} / blocks_per_stack={blocks_per_stack!r} apply to the impala "
          "encoder only; the sac encoder has a fixed depth (accepted: the defaults 3 and 2).")
    return SACEncoder(width_scale=width_scale, padding=padding, dtype=dtype)
  return encoders_lib.make_encoder(name, width_scale=width_scale, padding=padding,
                                   num_stacks=num_stacks, blocks_per_stack=blocks_per_stack,
                                   dtype=dtype)


class FeatureLayer(common.Layer):
  """Dense(dim, orthogonal) -> LayerNorm -> tanh: SACEncoderNetwork's critic_z / actor_z."""

  def __init__(self, dim=FEATURE_DIM, name="feature", **kwargs):
    super().__init__(name=name, **kwargs)
    self.dim = common.check_positive("feature_dim", dim, integer=True)
    # Its own dtype policy: the Dense computes in bfloat16 under mixed_bfloat16; LayerNorm
    # computes its statistics in float32 either way and returns its input's dtype.
    self.dense = keras.layers.Dense(self.dim, kernel_initializer=common.orthogonal(), name="dense",
                                    dtype=common.sublayer_dtype(self))
    self.norm = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm",
                                                dtype=common.sublayer_dtype(self))

  def build(self, input_shape):
    d = int(tf.TensorShape(input_shape)[-1])
    if not self.dense.built:
      self.dense.build(tf.TensorShape([None, d]))
    if not self.norm.built:
      self.norm.build(tf.TensorShape([None, self.dim]))
    super().build(input_shape)

  def call(self, inputs, training=False):
    return tf.tanh(self.norm(self.dense(inputs), training=training))

  def call_with_activations(self, inputs, training=False):
    out = self.call(inputs, training=training)
    return out, [(self.name, out)]

  def layer_costs(self, input_shape):
    # The Dense layer's multiply-accumulates (normalisation is not counted, as elsewhere).
    return [(self, 2 * int(tuple(input_shape)[-1]) * self.dim)], (self.dim,)

  def get_config(self):
    config = super().get_config()
    config.update(dim=self.dim)
    return config


def _float32(tensor):
  return tf.cast(tensor, tf.float32)


def _check_action_spec(action_spec):
  flat = tf.nest.flatten(action_spec)
  if (len(flat) != 1 or not flat[0].dtype.is_floating or not hasattr(flat[0], "maximum") or
      flat[0].shape.rank != 1):
    checks.reject("action_spec", action_spec,
                  "one bounded float spec of shape (action_dim,) (continuous actions, e.g. the "
                  "'dmc' suite); discrete actions take a Q-network")
  return flat[0]


def _distribution_spec(action_spec, name):
  """TF-Agents' tanh-squashed diagonal Gaussian spec (TanhNormalProjectionNetwork's output)."""
  params = {key: tensor_spec.TensorSpec(action_spec.shape, action_spec.dtype, name=f"{name}_{key}")
            for key in ("loc", "scale_diag")}

  def builder(*args, **kwargs):
    dist = tfp.distributions.MultivariateNormalDiag(*args, **kwargs)
    return distribution_utils.scale_distribution_to_spec(dist, action_spec)

  return distribution_spec.DistributionSpec(builder, params, sample_spec=action_spec)


class PixelSACNetwork(network.Network):
  """Encoder + bottleneck shared by twin critics and a tanh-Gaussian actor (see module doc).

  Its `call(observation)` returns min(Q1, Q2) at the actor's mean action `[B]` (what Grad-CAM
  explains and what builds every layer). The agent uses the finer methods: `features`,
  `critic_values`, `actor_params`, `squash`.
  """

  def __init__(self, input_tensor_spec, action_spec, encoder="sac", width_scale=1.0,
               padding="SAME", num_stacks=3, blocks_per_stack=2, bottleneck="flatten",
               bottleneck_kwargs=None, feature_dim=FEATURE_DIM, head_units=SAC_HEAD_UNITS,
               head_scale=1.0, log_std_bounds=None, log_std_transform="clip",
               head_initializer="glorot_uniform", precision="float32",
               name="PixelSACNetwork"):
    """Creates the network (see `build_sac_network`)."""
    builders.check_observation_spec(input_tensor_spec)
    action = _check_action_spec(action_spec)
    cls = bottlenecks_lib.bottleneck_class(bottleneck)
    if getattr(cls, "bottleneck_name", None) in ("pruned", "sparse"):
      checks.reject("bottleneck", bottleneck,
                    "flatten, gap, softmoe or tokenize for SAC networks (pruning and sparse "
                    "training are wired into the DQN-family updates only)")
    if log_std_bounds is not None:
      low, high = (checks.check_float("log_std_bounds entry", b) for b in log_std_bounds)
      if not low < high:
        checks.reject("log_std_bounds", log_std_bounds, "(low, high) with low < high, or None")
      log_std_bounds = (low, high)
    self.log_std_transform = common.check_name("log_std_transform", log_std_transform,
                                               LOG_STD_TRANSFORMS)
    if self.log_std_transform == "tanh" and log_std_bounds is None:
      checks.reject("log_std_bounds", log_std_bounds,
                    "(low, high) with log_std_transform='tanh' (the range tanh is mapped onto)")
    units = builders.resolve_head_units(head_units, bottleneck, head_scale, kind="mlp")
    if not units:
      checks.reject("head_units", head_units, "at least one hidden layer")
    # Resolved once ("auto" -> this machine's choice); every layer gets the policy explicitly.
    self.precision = common.resolve_precision(precision)
    dtype = common.dtype_policy(self.precision)
    super().__init__(input_tensor_spec=input_tensor_spec, state_spec=(), name=name)
    self.encoder_name = common.check_name("encoder", encoder, SAC_ENCODERS)
    self.bottleneck_name = cls.bottleneck_name
    self.width_scale = width_scale
    self.action_spec = action
    self.action_dim = int(action.shape.num_elements())
    self.log_std_bounds = log_std_bounds
    low = np.broadcast_to(np.asarray(action.minimum, np.float32), action.shape)
    high = np.broadcast_to(np.asarray(action.maximum, np.float32), action.shape)
    self.action_low, self.action_high = low.copy(), high.copy()
    self._action_mean = (low + high) / 2.0
    self._action_magnitude = (high - low) / 2.0
    self._encoder = make_sac_encoder(self.encoder_name, width_scale=width_scale, padding=padding,
                                     num_stacks=num_stacks, blocks_per_stack=blocks_per_stack,
                                     dtype=dtype)
    self._bottleneck = bottlenecks_lib.make_bottleneck(self.bottleneck_name, dtype=dtype,
                                                       **dict(bottleneck_kwargs or {}))
    obs_shape = input_tensor_spec.shape.as_list()
    self._feature_shape = tuple(self._encoder.output_shape_for(obs_shape))
    _, (self.bottleneck_dim,) = self._bottleneck.layer_costs(self._feature_shape)
    self.critic_feature = FeatureLayer(feature_dim, name="critic_feature", dtype=dtype)
    self.actor_feature = FeatureLayer(feature_dim, name="actor_feature", dtype=dtype)
    self.head_initializer = common.check_name("head_initializer", head_initializer,
                                              heads_lib.HEAD_INITIALIZERS)
    self.critic_heads = [heads_lib.DenseHead(units, num_actions=1, name=f"critic{i + 1}",
                                             kernel_initializer=self.head_initializer,
                                             dtype=dtype) for i in range(2)]
    self.actor_head = heads_lib.DenseHead(units, num_actions=2 * self.action_dim, name="actor",
                                          kernel_initializer=self.head_initializer,
                                          dtype=dtype)
    self.head_units = units
    self.feature_dim = self.critic_feature.dim

  # ---------------------------------------------------------------- the pieces the agent uses

  def encode(self, observation, training=False):
    """The last encoder feature map A `[B, H', W', C']` (float32, after the final ReLU)."""
    return tf.cast(self._encoder(observation, training=training), tf.float32)

  def features(self, observation, training=False):
    """The shared representation: the bottleneck's output `[B, D]` (critic-trained, float32)."""
    # The feature map goes to the bottleneck in its compute dtype (no float32 round trip).
    a = self._encoder(observation, training=training)
    return tf.cast(self._bottleneck(a, training=training), tf.float32)

  def critic_values(self, features, action, training=False):
    """(Q1, Q2), each `[B]`, from shared features and actions `[B, action_dim]`."""
    z = self.critic_feature(features, training=training)
    return self.critic_values_from_z(z, action, training=training)

  def critic_values_from_z(self, critic_z, action, training=False):
    """(Q1, Q2) from the critic's feature layer output (lets the actor loss reuse it)."""
    action = tf.reshape(tf.cast(action, critic_z.dtype), [-1, self.action_dim])
    x = tf.concat([critic_z, action], axis=-1)
    # float32 Q-values in every precision: the targets and losses are computed in float32.
    return tuple(tf.cast(head(x, training=training)[:, 0], tf.float32)
                 for head in self.critic_heads)

  def actor_params(self, features, training=False):
    """(loc, log_std), each `[B, action_dim]`, of the pre-tanh Gaussian. The actor reads the
    shared features through stop_gradient: only the critic trains the encoder (Dopamine's
    SACEncoderNetwork `actor_z`)."""
    z = self.actor_feature(tf.stop_gradient(features), training=training)
    # float32 in every precision: log-probs, squashing and the temperature read these.
    out = tf.cast(self.actor_head(z, training=training), tf.float32)
    loc, log_std = tf.split(out, 2, axis=-1)
    if self.log_std_transform == "tanh":
      # DrQ's actor: tanh(raw) mapped affinely onto [low, high] (smooth, gradients everywhere).
      low, high = self.log_std_bounds
      log_std = low + 0.5 * (high - low) * (tf.tanh(log_std) + 1.0)
    elif self.log_std_bounds is not None:
      log_std = tf.clip_by_value(log_std, *self.log_std_bounds)
    return loc, log_std

  def squash(self, pre_tanh):
    """Maps pre-tanh values into the action bounds: mean + magnitude * tanh(u)."""
    return self._action_mean + self._action_magnitude * tf.tanh(pre_tanh)

  def sample_and_log_prob(self, loc, log_std, noise):
    """A reparameterised squashed sample and its log-density, from standard normal `noise`.

    log pi(a) = log N(u; loc, std) - sum log(magnitude * (1 - tanh(u)^2)), with
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) (stable for large |u|).
    """
    u = loc + tf.exp(log_std) * noise
    log_normal = -0.5 * tf.square(noise) - log_std - 0.5 * np.log(2.0 * np.pi)
    log_det = 2.0 * (np.log(2.0) - u - tf.nn.softplus(-2.0 * u)) + np.log(self._action_magnitude)
    return self.squash(u), tf.reduce_sum(log_normal - log_det, axis=-1)

  def mean_action(self, features, training=False):
    loc, _ = self.actor_params(features, training=training)
    return self.squash(loc)

  # ---------------------------------------------------------------- the tfgap contract

  def call(self, observation, step_type=None, network_state=(), training=False):
    del step_type
    outer_rank = nest_utils.get_outer_rank(observation, self.input_tensor_spec)
    squash = network_utils.BatchSquash(outer_rank)
    value = self.decode(self.encode(squash.flatten(observation), training=training),
                        training=training)
    return squash.unflatten(value), network_state

  def decode(self, feature_map, training=False):
    """min(Q1, Q2) `[B]` at the actor's mean action, from the encoder feature map A."""
    feats = self._bottleneck(feature_map, training=training)
    q1, q2 = self.critic_values(feats, self.mean_action(feats, training=training),
                                training=training)
    return tf.minimum(q1, q2)

  def activations(self, observation, training=False):
    """[(group, layer_name, post-activation tensor)] for every layer with neurons (float32).

    phi: every conv; bottleneck: its own neurons (SoftMoE experts, tokenize MLP); psi: both
    feature layers (after tanh) and the hidden layers of both critics (at the actor's mean
    action) and of the actor. Layer names carry their network (critic1_dense0, actor_dense1).
    """
    self.create_variables()
    acts = []
    a, enc = self._encoder.call_with_activations(observation, training=training)
    acts.extend(("phi", name, _float32(t)) for name, t in enc)
    feats, bott = self._bottleneck.call_with_activations(a, training=training)
    acts.extend(("bottleneck", name, _float32(t)) for name, t in bott)
    actor_z = self.actor_feature(feats, training=training)
    acts.append(("psi", "actor_feature", _float32(actor_z)))
    out, hidden = self.actor_head.call_with_activations(actor_z, training=training)
    acts.extend(("psi", f"actor_{name}", _float32(t)) for name, t in hidden)
    loc, _ = tf.split(_float32(out), 2, axis=-1)
    critic_z = self.critic_feature(feats, training=training)
    acts.append(("psi", "critic_feature", _float32(critic_z)))
    action = tf.cast(self.squash(loc), critic_z.dtype)
    x = tf.concat([critic_z, action], axis=-1)
    for head in self.critic_heads:
      _, hidden = head.call_with_activations(x, training=training)
      acts.extend(("psi", f"{head.name}_{name}", _float32(t)) for name, t in hidden)
    return acts

  def parts(self):
    """{"phi", "bottleneck", "psi"}: psi holds both feature layers, both critics and the actor."""
    return {"phi": list(self._encoder.layers_with_neurons),
            "bottleneck": [self._bottleneck],
            "psi": self._critic_psi_layers() + self._actor_psi_layers()}

  def _critic_psi_layers(self):
    return [self.critic_feature] + [l for h in self.critic_heads for l in h.dense_layers]

  def _actor_psi_layers(self):
    return [self.actor_feature] + list(self.actor_head.dense_layers)

  def layer_costs(self, which="all"):
    """{part: [(layer, forward FLOPs per example)]} of the whole network, or of the "critic"
    (encoder, bottleneck, critic feature layer, both Q MLPs) or the "actor" alone."""
    which = common.check_name("network", which, ("all", "critic", "actor"))
    phi, fmap = self._encoder.layer_costs(tuple(self.input_tensor_spec.shape.as_list()))
    bott, (dim,) = self._bottleneck.layer_costs(fmap)
    psi = []
    if which in ("all", "critic"):
      costs, (z,) = self.critic_feature.layer_costs((dim,))
      psi += costs
      for head in self.critic_heads:
        psi += head.layer_costs((z + self.action_dim,))[0]
    if which in ("all", "actor"):
      costs, (z,) = self.actor_feature.layer_costs((dim,))
      psi += costs + self.actor_head.layer_costs((z,))[0]
    return {"phi": phi, "bottleneck": bott, "psi": psi}

  @property
  def psi_input_layers(self):
    """The layers reading the bottleneck's output: the two feature layers (the paper's
    bottleneck connection, H*W*C*50 weights each under flatten)."""
    return [self.critic_feature, self.actor_feature]

  def part_networks(self):
    """{"critic": view, "actor": view}: accounting views of each network (phi / bottleneck /
    psi, the shared encoder listed in both)."""
    return {"critic": _AccountingView(self, "critic"), "actor": _AccountingView(self, "actor")}

  # ---------------------------------------------------------------- TF-Agents views

  def actor_network(self):
    """A TF-Agents DistributionNetwork (observation -> tanh-squashed Gaussian) on these layers."""
    views = self._view_cache()
    if "actor" not in views:
      views["actor"] = SACActorNetwork(self)
    return views["actor"]

  def critic_network(self, index):
    """A TF-Agents critic ((observation, action) -> Q_index `[B]`) on these layers."""
    if index not in (1, 2):
      checks.reject("critic index", index, "1 or 2")
    views = self._view_cache()
    if index not in views:
      views[index] = SACCriticNetwork(self, index=index)
    return views[index]

  def _view_cache(self):
    # A plain holder Keras does not track: the views track this network, not the reverse
    # (a cycle would make Keras' variable gathering recurse forever).
    holder = self.__dict__.get("_views")
    if holder is None:
      holder = _Views()
      object.__setattr__(self, "_views", holder)
    return holder.views


class _Views:

  def __init__(self):
    self.views = {}


class _AccountingView:
  """One network of a PixelSACNetwork (critic or actor) for `tfgap.networks.accounting`."""

  def __init__(self, net, which):
    self._net, self._which = net, which
    self.encoder_name, self.bottleneck_name = net.encoder_name, net.bottleneck_name
    self.width_scale = net.width_scale

  def create_variables(self):
    self._net.create_variables()

  def layer_costs(self):
    return self._net.layer_costs(self._which)

  def parts(self):
    parts = self._net.parts()
    psi = (self._net._critic_psi_layers() if self._which == "critic"  # pylint: disable=protected-access
           else self._net._actor_psi_layers())  # pylint: disable=protected-access
    return dict(parts, psi=psi)


class SACActorNetwork(network.DistributionNetwork):
  """TF-Agents actor view of a PixelSACNetwork: observation -> tanh-squashed Gaussian.

  It owns no variables (it reads the SAC network's), so TF-Agents' ActorPolicy and PolicySaver
  see exactly what the agent trains.
  """

  def __init__(self, sac_network, name="SACActorNetwork"):
    super().__init__(input_tensor_spec=sac_network.input_tensor_spec, state_spec=(),
                     output_spec=_distribution_spec(sac_network.action_spec, name), name=name)
    self._sac = sac_network

  def call(self, observation, step_type=None, network_state=(), training=False):
    del step_type
    outer_rank = nest_utils.get_outer_rank(observation, self.input_tensor_spec)
    squash = network_utils.BatchSquash(outer_rank)
    feats = self._sac.features(squash.flatten(observation), training=training)
    loc, log_std = self._sac.actor_params(feats, training=training)
    dist = self.output_spec.build_distribution(loc=squash.unflatten(loc),
                                               scale_diag=squash.unflatten(tf.exp(log_std)))
    return dist, network_state


class SACCriticNetwork(network.Network):
  """TF-Agents critic view of a PixelSACNetwork: (observation, action) -> Q_index `[B]`."""

  def __init__(self, sac_network, index=1, name=None):
    super().__init__(input_tensor_spec=(sac_network.input_tensor_spec, sac_network.action_spec),
                     state_spec=(), name=name or f"SACCriticNetwork{index}")
    self._sac = sac_network
    self._index = index

  def call(self, inputs, step_type=None, network_state=(), training=False):
    del step_type
    observation, action = inputs
    outer_rank = nest_utils.get_outer_rank(observation, self.input_tensor_spec[0])
    squash = network_utils.BatchSquash(outer_rank)
    feats = self._sac.features(squash.flatten(observation), training=training)
    q = self._sac.critic_values(feats, squash.flatten(action), training=training)[self._index - 1]
    return squash.unflatten(q), network_state


def build_sac_network(observation_spec, action_spec, encoder="sac", width_scale=1.0,
                      bottleneck="flatten", bottleneck_kwargs=None, feature_dim=FEATURE_DIM,
                      head_units=SAC_HEAD_UNITS, padding="SAME", num_stacks=3,
                      blocks_per_stack=2, head_scale=1.0, log_std_bounds=None,
                      log_std_transform="clip", head_initializer="glorot_uniform",
                      precision="float32", name="PixelSACNetwork"):
  """SACAgent's network: a shared encoder + bottleneck, twin critics and a tanh-Gaussian actor.

  Defaults are Dopamine's SAC from pixels (dopamine/labs/sac_from_pixels/: `SACEncoderNetwork`,
  `sac_pixels.gin`).

  Args:
    observation_spec: image spec `[H, W, C]`, uint8 (frames stacked on the channel axis).
    action_spec: bounded float spec `(action_dim,)`.
    encoder: "sac" (Dopamine's 4 x 32-channel 3x3 conv stack), "nature" or "impala".
    width_scale: positive multiplier of the encoder's channels.
    bottleneck: "flatten" (Dopamine), "gap", "softmoe", "tokenize" or a registered name.
    bottleneck_kwargs: the bottleneck's options.
    feature_dim: width of the critic's and the actor's Dense + LayerNorm + tanh layer (50).
    head_units: hidden widths of each critic and of the actor ((1024, 1024)).
    padding: "SAME" (Dopamine's Flax convs) or "VALID" (SAC-AE, DrQ).
    num_stacks: impala depth.
    blocks_per_stack: impala depth.
    head_scale: positive multiplier of head_units.
    log_std_bounds: None (Dopamine: std = exp(raw), unbounded) or (low, high) to
      bound the actor's log-std (TF-Agents clips to (-20, 2); DrQ maps onto (-10, 2)).
    log_std_transform: how `log_std_bounds` apply: "clip" (clip the raw value, TF-Agents) or
      "tanh" (DrQ's actor: low + (high - low) * (tanh(raw) + 1) / 2; needs bounds).
    head_initializer: kernels of the critic and actor MLPs: "glorot_uniform" (Dopamine's
      xavier_uniform) or "orthogonal" (SAC-AE's and DrQ's `weight_init`).
    precision: "float32", "mixed_bfloat16" (convolutions and dense layers compute in bfloat16;
      variables, Q-values, the actor's Gaussian parameters and everything computed from them
      stay float32) or "auto" (mixed_bfloat16 where the hardware runs bfloat16 natively:
      `tfgap.networks.common.bfloat16_support`). `net.precision` is the choice.
    name: network name.

  Returns:
    `PixelSACNetwork`.
  """
  return PixelSACNetwork(observation_spec, action_spec, encoder=encoder, width_scale=width_scale,
                         padding=padding, num_stacks=num_stacks,
                         blocks_per_stack=blocks_per_stack, bottleneck=bottleneck,
                         bottleneck_kwargs=bottleneck_kwargs, feature_dim=feature_dim,
                         head_units=head_units, head_scale=head_scale,
                         log_std_bounds=log_std_bounds, log_std_transform=log_std_transform,
                         head_initializer=head_initializer, precision=precision, name=name)


__all__ = ["SACEncoder", "FeatureLayer", "PixelSACNetwork", "SACActorNetwork",
           "SACCriticNetwork", "build_sac_network", "make_sac_encoder", "SAC_ENCODERS",
           "FEATURE_DIM", "SAC_HEAD_UNITS", "LOG_STD_TRANSFORMS"]
