"""TF-Agents networks and plain Keras models built from plain hyperparameters.

Every network is encoder (phi) -> bottleneck -> dense head (psi) and implements the tfgap contract
(docs/DESIGN.md): `encode`, `decode`, `activations`, `parts`, `encoder_name`, `bottleneck_name`,
`width_scale`. All layers are created in `__init__` from the keyword arguments, so TF-Agents'
`Network.copy()` (which calls `type(self)(**self._saved_kwargs)`) makes fresh variables.

The builders take plain keyword arguments only, so they can be registered with gin from outside
(`gin.external_configurable`); this module never imports gin.
"""

import tensorflow as tf
from tf_agents.agents.sac import sac_agent
from tf_agents.agents.sac import tanh_normal_projection_network
from tf_agents.networks import network
from tf_agents.networks import utils as network_utils
from tf_agents.utils import nest_utils

from tfgap.compat import keras
from tfgap.networks import bottlenecks as bottlenecks_lib
from tfgap.networks import common
from tfgap.networks import encoders as encoders_lib
from tfgap.networks import heads as heads_lib

GROUPS = ("phi", "bottleneck", "psi")


def check_observation_spec(spec):
  """Raises ValueError unless `spec` is a single image spec [H, W, C] of uint8 or float dtype."""
  if not isinstance(spec, tf.TensorSpec):
    raise ValueError(
        f"observation_spec must be a single tf.TensorSpec of shape [H, W, C]; got {spec!r} "
        "(nested observations are not supported: pass the image spec).")
  shape = spec.shape
  if shape.rank != 3 or not shape.is_fully_defined():
    raise ValueError(
        f"observation_spec must be an image of shape [H, W, C] (rank 3, fully defined); got shape "
        f"{shape}.")
  if spec.dtype != tf.uint8 and not spec.dtype.is_floating:
    raise ValueError(
        f"observation_spec dtype must be uint8 (raw pixels) or a float type holding 0..255 pixels; "
        f"got {spec.dtype.name}.")


def _num_actions(action_spec):
  flat = tf.nest.flatten(action_spec)
  if len(flat) != 1:
    raise ValueError(f"action_spec must be a single spec; got {action_spec!r}.")
  spec = flat[0]
  if (not spec.dtype.is_integer or spec.shape.num_elements() != 1 or
      not hasattr(spec, "maximum")):
    raise ValueError(
        f"Q-networks need a scalar bounded integer action_spec (discrete actions); got {spec!r}.")
  num = int(spec.maximum) - int(spec.minimum) + 1
  if num < 1:
    raise ValueError(f"action_spec has {num} actions; accepted: at least 1.")
  return num


def _check_continuous(action_spec):
  flat = tf.nest.flatten(action_spec)
  if len(flat) != 1 or not flat[0].dtype.is_floating or not hasattr(flat[0], "maximum"):
    raise ValueError(
        f"actor/critic networks need a single bounded float action_spec; got {action_spec!r}.")
  return flat[0]


def resolve_head_units(head_units, bottleneck, head_scale, kind="q"):
  """Hidden widths of psi: explicit `head_units` or the per-bottleneck default, times head_scale.

  The defaults are the bottleneck class's `default_q_head_units` (kind "q": Dopamine's layout,
  (512,) for flatten/gap/pruned, () for softmoe/tokenize whose per-token MLPs replace the
  penultimate layer) or `default_mlp_head_units` (actor, critic, value: (512, 512)).
  """
  common.check_positive("head_scale", head_scale)
  if head_units is None:
    cls = bottlenecks_lib.bottleneck_class(bottleneck)
    head_units = cls.default_q_head_units if kind == "q" else cls.default_mlp_head_units
  units = common.check_units("head_units", head_units)
  return tuple(common.scaled(u, head_scale) for u in units)


class _Body:
  """The pieces every tfgap network shares: encoder, bottleneck and pruning settings."""

  def __init__(self, observation_spec, encoder, width_scale, padding, num_stacks,
               blocks_per_stack, bottleneck, bottleneck_kwargs, noisy=False,
               noisy_sigma0=common.NOISY_SIGMA0, masks_allowed=False, precision="float32"):
    check_observation_spec(observation_spec)
    # Resolved once ("auto" -> this machine's choice); every layer gets the policy explicitly.
    self.precision = common.resolve_precision(precision)
    self.dtype = common.dtype_policy(self.precision)
    cls = bottlenecks_lib.bottleneck_class(bottleneck)
    self.bottleneck_name = cls.bottleneck_name
    options = dict(bottleneck_kwargs or {})
    # A noisy network makes the bottleneck's own dense layers noisy when it has that option
    # (SoftMoE's expert first layers, as the MoE lab's `_maybe_create_moe_module(noisy=...)`);
    # `bottleneck_kwargs` may still set it explicitly.
    accepted = cls.accepted_options()
    if noisy and "noisy" in accepted:
      options.setdefault("noisy", True)
    if "noisy_sigma0" in accepted:
      options.setdefault("noisy_sigma0", noisy_sigma0)
    self.bottleneck = bottlenecks_lib.make_bottleneck(self.bottleneck_name, dtype=self.dtype,
                                                      **options)
    config = getattr(self.bottleneck, "prune_config", None)
    self.prune = config if config and config["wrap"] else None
    claim = getattr(self.bottleneck, "claim", None)
    if claim is not None:  # Sparse bottlenecks: only Q-networks and Keras models own masks.
      claim(masks_allowed)
    self.encoder_name = common.check_name("encoder", encoder, encoders_lib.ENCODERS)
    self.encoder = encoders_lib.make_encoder(
        self.encoder_name, width_scale=width_scale, padding=padding, num_stacks=num_stacks,
        blocks_per_stack=blocks_per_stack,
        prune=self.prune if self.prune and self.prune["prune_phi"] else None, dtype=self.dtype)
    # Fails at build time (not at the first call) on frames too small for the encoder or patch.
    self.feature_shape = self.encoder.output_shape_for(observation_spec.shape.as_list())
    _, (self.feature_dim,) = self.bottleneck.layer_costs(self.feature_shape)

  def head_prune(self):
    return (self.prune, self.prune["psi_layers"]) if self.prune else (None, 1)


class _ContractMixin:
  """encode/decode/activations/parts shared by the tfgap networks."""

  def _setup(self, body, width_scale, head):
    self._encoder = body.encoder
    self._bottleneck = body.bottleneck
    self._head = head
    self._feature_shape = tuple(body.feature_shape)
    self.encoder_name = body.encoder_name
    self.bottleneck_name = body.bottleneck_name
    self.width_scale = width_scale
    self.precision = body.precision  # "float32" or "mixed_bfloat16" ("auto" resolved).

  def encode(self, observation, training=False):
    """The last encoder feature map A `[B, H', W', C']` (float32, after the final ReLU)."""
    if training is True:
      self._start_pruning()
    return tf.cast(self._encoder(observation, training=training), tf.float32)

  def _start_pruning(self):
    # Stock TF-Agents agents (DqnAgent, SacAgent) never call pruning.initialize_pruning, and
    # tfmot's wrappers refuse a training call at their initial step -1: set max(step, 0) before
    # every training forward pass (idempotent, so tfgap agents that call it too are unaffected).
    from tfgap.networks import pruning  # pylint: disable=g-import-not-at-top
    for wrapper in pruning.pruning_wrappers(self):
      if wrapper.built:
        wrapper.pruning_step.assign(tf.maximum(wrapper.pruning_step, tf.constant(0, tf.int64)))

  def parts(self):
    """{"phi": [...], "bottleneck": [...], "psi": [...]}: the Keras layers of each part."""
    return {"phi": list(self._encoder.layers_with_neurons),
            "bottleneck": [self._bottleneck],
            "psi": list(self._head.dense_layers) + self._extra_psi_layers()}

  def _extra_psi_layers(self):
    return []

  def _squash(self, observation):
    outer_rank = nest_utils.get_outer_rank(observation, self.input_tensor_spec)
    squash = network_utils.BatchSquash(outer_rank)
    return squash, squash.flatten(observation), outer_rank

  # call/activations for networks whose decode takes only the feature map (Q and value
  # networks; the actor's activations too). The critic and the actor's call override them.
  def call(self, observation, step_type=None, network_state=(), training=False):
    del step_type
    squash, obs, _ = self._squash(observation)
    out = self.decode(self.encode(obs, training=training), training=training)
    return squash.unflatten(out), network_state

  def activations(self, observation, training=False):
    """[(group, layer_name, post-activation tensor)] for every layer with neurons.

    Convs: ReLU of the conv's output `[B, H, W, C]` (Impala, as ReDo measures it: the stack conv
    after its max-pool, a block's second conv after the residual add); SoftMoE: every expert's
    hidden layer `[B, slots, hidden]`; tokenize: the shared hidden layer `[B, tokens, hidden]`;
    psi: hidden dense layers `[B, units]` (the output layer is the network's output and is not
    listed).
    """
    feats, acts = self._body_activations(observation, training)
    _, head = self._head.call_with_activations(feats, training=training)
    acts.extend(("psi", name, tf.cast(t, tf.float32)) for name, t in head)
    return acts

  def _body_activations(self, observation, training):
    self.create_variables()  # call_with_activations bypasses Keras' build-on-first-call.
    acts = []
    a, enc = self._encoder.call_with_activations(observation, training=training)
    acts.extend(("phi", name, tf.cast(t, tf.float32)) for name, t in enc)
    feats, bott = self._bottleneck.call_with_activations(a, training=training)
    acts.extend(("bottleneck", name, tf.cast(t, tf.float32)) for name, t in bott)
    return feats, acts

  def layer_costs(self):
    """{part: [(layer, forward FLOPs per example)]}, FLOPs = 2 x multiply-accumulates."""
    obs_shape = tuple(self.input_tensor_spec.shape.as_list()) if not isinstance(
        self.input_tensor_spec, tuple) else tuple(self.input_tensor_spec[0].shape.as_list())
    phi, fmap = self._encoder.layer_costs(obs_shape)
    bott, (dim,) = self._bottleneck.layer_costs(fmap)
    psi, _ = self._head.layer_costs((dim + self._extra_psi_inputs(),))
    psi = psi + self._extra_psi_costs()
    return {"phi": phi, "bottleneck": bott, "psi": psi}

  def _extra_psi_inputs(self):
    return 0

  def _extra_psi_costs(self):
    return []


class _QNetworkBase(_ContractMixin, network.Network):
  """Shared construction of the plain and categorical Q-networks."""

  def _init_q(self, input_tensor_spec, action_spec, num_atoms, encoder, width_scale, padding,
              num_stacks, blocks_per_stack, bottleneck, bottleneck_kwargs, head_units,
              head_scale, dueling, dueling_layout, noisy, noisy_sigma0, name,
              precision="float32"):
    num_actions = _num_actions(action_spec)
    if num_atoms is not None:
      common.check_positive("num_atoms", num_atoms, integer=True)
    body = _Body(input_tensor_spec, encoder, width_scale, padding, num_stacks, blocks_per_stack,
                 bottleneck, bottleneck_kwargs, noisy=noisy, noisy_sigma0=noisy_sigma0,
                 masks_allowed=True, precision=precision)
    units = resolve_head_units(head_units, body.bottleneck_name, head_scale)
    prune, prune_layers = body.head_prune()
    network.Network.__init__(self, input_tensor_spec=input_tensor_spec, state_spec=(), name=name)
    head = heads_lib.DenseHead(units, num_actions=num_actions, num_atoms=num_atoms,
                               dueling=dueling, dueling_layout=dueling_layout, noisy=noisy,
                               noisy_sigma0=noisy_sigma0, prune=prune,
                               prune_layers=prune_layers, dtype=body.dtype)
    self._num_actions = num_actions
    self._setup(body, width_scale, head)
    if getattr(body.bottleneck, "bind", None) is not None:
      # Masks need the kernels' shapes: build now, so online and target networks (copy())
      # have the same variables from construction on.
      self.create_variables()
      body.bottleneck.bind(self)

  def after_gradient_step(self, grads, variables, step):
    """Called by the agents' compiled update after the optimizer step (see
    `tfgap.agents.base`): a sparse bottleneck re-applies its masks and updates its topology."""
    hook = getattr(self._bottleneck, "after_gradient_step", None)
    if hook is not None:
      hook(grads, variables, step)

  @property
  def num_actions(self):
    return self._num_actions

  def decode(self, features, training=False):
    """Output (Q-values or logits, float32 in every precision) from the encoder feature map A."""
    out = self._head(self._bottleneck(features, training=training), training=training)
    return tf.cast(out, tf.float32)



class PixelQNetwork(_QNetworkBase):
  """Q-network: uint8 frames -> Q-values `[B, num_actions]` (plain or dueling, noisy optional)."""

  def __init__(self, input_tensor_spec, action_spec, encoder="nature", width_scale=1.0,
               padding="SAME", num_stacks=3, blocks_per_stack=2, bottleneck="flatten",
               bottleneck_kwargs=None, head_units=None, head_scale=1.0, dueling=False,
               dueling_layout="shared", noisy=False, noisy_sigma0=common.NOISY_SIGMA0,
               precision="float32", name="PixelQNetwork"):
    """Creates the network (see `build_q_network` for the arguments)."""
    self._init_q(input_tensor_spec, action_spec, None, encoder, width_scale, padding, num_stacks,
                 blocks_per_stack, bottleneck, bottleneck_kwargs, head_units, head_scale, dueling,
                 dueling_layout, noisy, noisy_sigma0, name, precision=precision)


class PixelCategoricalQNetwork(_QNetworkBase):
  """Distributional (C51) Q-network: logits `[B, num_actions, num_atoms]`.

  Has the `num_atoms` property TF-Agents' CategoricalDqnAgent requires, and outputs logits as its
  CategoricalQNetwork does.
  """

  def __init__(self, input_tensor_spec, action_spec, num_atoms=51, encoder="nature",
               width_scale=1.0, padding="SAME", num_stacks=3, blocks_per_stack=2,
               bottleneck="flatten", bottleneck_kwargs=None, head_units=None, head_scale=1.0,
               dueling=False, dueling_layout="shared", noisy=False,
               noisy_sigma0=common.NOISY_SIGMA0, precision="float32",
               name="PixelCategoricalQNetwork"):
    """Creates the network (see `build_categorical_q_network`)."""
    self._init_q(input_tensor_spec, action_spec, num_atoms, encoder, width_scale, padding,
                 num_stacks, blocks_per_stack, bottleneck, bottleneck_kwargs, head_units,
                 head_scale, dueling, dueling_layout, noisy, noisy_sigma0, name,
                 precision=precision)

  @property
  def num_atoms(self):
    return self._head.num_atoms


class PixelValueNetwork(_ContractMixin, network.Network):
  """State-value network: uint8 frames -> V `[B]`."""

  def __init__(self, input_tensor_spec, encoder="nature", width_scale=1.0, padding="SAME",
               num_stacks=3, blocks_per_stack=2, bottleneck="flatten", bottleneck_kwargs=None,
               head_units=None, head_scale=1.0, name="PixelValueNetwork"):
    """Creates the network (see `build_value_network`)."""
    body = _Body(input_tensor_spec, encoder, width_scale, padding, num_stacks, blocks_per_stack,
                 bottleneck, bottleneck_kwargs)
    units = resolve_head_units(head_units, body.bottleneck_name, head_scale, kind="mlp")
    prune, prune_layers = body.head_prune()
    super().__init__(input_tensor_spec=input_tensor_spec, state_spec=(), name=name)
    head = heads_lib.DenseHead(units, num_actions=1, prune=prune, prune_layers=prune_layers)
    self._setup(body, width_scale, head)

  def decode(self, features, training=False):
    """V `[B]` from the encoder feature map A."""
    feats = self._bottleneck(features, training=training)
    return self._head(feats, training=training)[:, 0]



class PixelCriticNetwork(_ContractMixin, network.Network):
  """SAC critic: (uint8 frames, action) -> Q `[B]`; psi sees [bottleneck features, action]."""

  def __init__(self, input_tensor_spec, encoder="nature", width_scale=1.0, padding="SAME",
               num_stacks=3, blocks_per_stack=2, bottleneck="flatten", bottleneck_kwargs=None,
               head_units=None, head_scale=1.0, name="PixelCriticNetwork"):
    """Creates the network; `input_tensor_spec` is `(observation_spec, action_spec)`."""
    if not isinstance(input_tensor_spec, (tuple, list)) or len(input_tensor_spec) != 2:
      raise ValueError(
          f"The critic's input_tensor_spec must be (observation_spec, action_spec); got "
          f"{input_tensor_spec!r}.")
    observation_spec, action_spec = input_tensor_spec
    action = _check_continuous(action_spec)
    body = _Body(observation_spec, encoder, width_scale, padding, num_stacks, blocks_per_stack,
                 bottleneck, bottleneck_kwargs)
    units = resolve_head_units(head_units, body.bottleneck_name, head_scale, kind="mlp")
    prune, prune_layers = body.head_prune()
    super().__init__(input_tensor_spec=tuple(input_tensor_spec), state_spec=(), name=name)
    head = heads_lib.DenseHead(units, num_actions=1, prune=prune, prune_layers=prune_layers)
    self._action_dim = action.shape.num_elements()
    self._setup(body, width_scale, head)

  def encode(self, observation, training=False):
    """Feature map of the observation (a `(observation, action)` tuple is accepted too)."""
    if isinstance(observation, (tuple, list)):
      observation = observation[0]
    return self._encoder(observation, training=training)

  def decode(self, features, action, training=False):
    """Q `[B]` from the feature map A and the action `[B, action_dim]`."""
    feats = self._bottleneck(features, training=training)
    return self._head(self._head_input(feats, action), training=training)[:, 0]

  def _head_input(self, feats, action):
    """psi's input: [bottleneck features, action]."""
    action = tf.reshape(tf.cast(action, feats.dtype), [-1, self._action_dim])
    return tf.concat([feats, action], axis=-1)

  def call(self, inputs, step_type=None, network_state=(), training=False):
    del step_type
    observation, action = inputs
    outer_rank = nest_utils.get_outer_rank(observation, self.input_tensor_spec[0])
    squash = network_utils.BatchSquash(outer_rank)
    obs = squash.flatten(observation)
    act = squash.flatten(action)
    out = self.decode(self.encode(obs, training=training), act, training=training)
    return squash.unflatten(out), network_state

  def activations(self, inputs, training=False):
    """As the Q-network's; `inputs` is `(observation, action)`."""
    observation, action = inputs
    feats, acts = self._body_activations(observation, training)
    _, head = self._head.call_with_activations(self._head_input(feats, action), training=training)
    acts.extend(("psi", name, t) for name, t in head)
    return acts

  def _extra_psi_inputs(self):
    return self._action_dim


class PixelActorNetwork(_ContractMixin, network.DistributionNetwork):
  """SAC actor: uint8 frames -> tanh-squashed diagonal Gaussian over the action spec.

  psi is the dense head followed by TF-Agents' TanhNormalProjectionNetwork (with SAC's clipped
  log-std transform), so the output is the distribution SacAgent's ActorPolicy expects.
  """

  def __init__(self, input_tensor_spec, output_tensor_spec, encoder="nature", width_scale=1.0,
               padding="SAME", num_stacks=3, blocks_per_stack=2, bottleneck="flatten",
               bottleneck_kwargs=None, head_units=None, head_scale=1.0,
               name="PixelActorNetwork"):
    """Creates the network; `output_tensor_spec` is the (bounded float) action spec."""
    action = _check_continuous(output_tensor_spec)
    body = _Body(input_tensor_spec, encoder, width_scale, padding, num_stacks, blocks_per_stack,
                 bottleneck, bottleneck_kwargs)
    units = resolve_head_units(head_units, body.bottleneck_name, head_scale, kind="mlp")
    if not units:
      raise ValueError("The actor needs at least one hidden layer; got head_units=().")
    prune, prune_layers = body.head_prune()
    projection = tanh_normal_projection_network.TanhNormalProjectionNetwork(
        action, std_transform=sac_agent.std_clip_transform)
    super().__init__(input_tensor_spec=input_tensor_spec, state_spec=(),
                     output_spec=projection.output_spec, name=name)
    head = heads_lib.DenseHead(units, num_actions=None, prune=prune, prune_layers=prune_layers)
    self._projection = projection
    self._action_dim = action.shape.num_elements()
    self._setup(body, width_scale, head)

  def decode(self, features, training=False, outer_rank=1):
    """The action distribution from the encoder feature map A."""
    hidden = self._head(self._bottleneck(features, training=training), training=training)
    dist, _ = self._projection(hidden, outer_rank=outer_rank, training=training)
    return dist

  def call(self, observation, step_type=None, network_state=(), training=False):
    del step_type
    squash, obs, outer_rank = self._squash(observation)
    hidden = self._head(self._bottleneck(self.encode(obs, training=training), training=training),
                        training=training)
    dist, _ = self._projection(squash.unflatten(hidden), outer_rank=outer_rank, training=training)
    return dist, network_state

  def _extra_psi_layers(self):
    return list(self._projection.layers)

  def _extra_psi_costs(self):
    units = self._head.hidden_units[-1]
    return [(layer, 2 * units * 2 * self._action_dim) for layer in self._projection.layers]


def build_q_network(observation_spec, action_spec, encoder="nature", width_scale=1.0,
                    bottleneck="flatten", bottleneck_kwargs=None, head_units=None, dueling=False,
                    noisy=False, padding="SAME", num_stacks=3, blocks_per_stack=2,
                    head_scale=1.0, dueling_layout="shared", noisy_sigma0=common.NOISY_SIGMA0,
                    precision="float32", name="PixelQNetwork"):
  """A TF-Agents Q-network (DqnAgent's `q_network`).

  Args:
    observation_spec: image spec `[H, W, C]`, uint8 (or float 0..255).
    action_spec: scalar bounded integer spec.
    encoder: "nature" or "impala".
    width_scale: positive multiplier of the encoder's channels.
    bottleneck: "flatten", "gap", "softmoe", "tokenize", "pruned" or a name added with
      `register_bottleneck`.
    bottleneck_kwargs: dict of the bottleneck's options (see `make_bottleneck`).
    head_units: psi's hidden widths (depth = length). None: the bottleneck's default, (512,) for
      flatten/gap/pruned, () for softmoe/tokenize (their per-token MLPs replace the penultimate
      layer, as in Dopamine).
    dueling: value and advantage outputs combined as V + A - mean_a A.
    noisy: NoisyDense layers in psi (Rainbow); a SoftMoE bottleneck's expert first layers are
      noisy too (Dopamine's MoE lab), unless `bottleneck_kwargs` sets its `noisy` option.
    padding: "SAME" or "VALID" (nature only).
    num_stacks: impala depth (stacks).
    blocks_per_stack: impala depth (residual blocks per stack).
    head_scale: positive multiplier of psi's widths (its own scale, independent of width_scale).
    dueling_layout: "shared" (Dopamine's FullRainbowNetwork: one set of hidden layers, value and
      advantage split in the output layer) or "separate" (each stream has its own hidden layers).
    noisy_sigma0: initial noise scale of noisy layers, sigma = noisy_sigma0 / sqrt(fan_in) (0.1
      as Dopamine's NoisyNetwork; 0.5 in Fortunato et al.).
    precision: "float32", "mixed_bfloat16" (convolutions and dense layers compute in bfloat16;
      variables, the output and everything the agent computes from it stay float32; pruned
      layers stay float32) or "auto" (mixed_bfloat16 where the hardware runs bfloat16
      natively: `tfgap.networks.common.bfloat16_support`). `net.precision` is the choice.
    name: network name.

  Returns:
    `PixelQNetwork`.
  """
  return PixelQNetwork(observation_spec, action_spec, encoder=encoder, width_scale=width_scale,
                       padding=padding, num_stacks=num_stacks, blocks_per_stack=blocks_per_stack,
                       bottleneck=bottleneck, bottleneck_kwargs=bottleneck_kwargs,
                       head_units=head_units, head_scale=head_scale, dueling=dueling,
                       dueling_layout=dueling_layout, noisy=noisy, noisy_sigma0=noisy_sigma0,
                       precision=precision, name=name)


def build_categorical_q_network(observation_spec, action_spec, num_atoms=51, encoder="nature",
                                width_scale=1.0, bottleneck="flatten", bottleneck_kwargs=None,
                                head_units=None, dueling=False, noisy=False, padding="SAME",
                                num_stacks=3, blocks_per_stack=2, head_scale=1.0,
                                dueling_layout="shared", noisy_sigma0=common.NOISY_SIGMA0,
                                precision="float32", name="PixelCategoricalQNetwork"):
  """A C51 network for CategoricalDqnAgent: logits `[B, num_actions, num_atoms]`.

  Arguments as `build_q_network`, plus `num_atoms` (51 in Rainbow).
  """
  return PixelCategoricalQNetwork(
      observation_spec, action_spec, num_atoms=num_atoms, encoder=encoder,
      width_scale=width_scale, padding=padding, num_stacks=num_stacks,
      blocks_per_stack=blocks_per_stack, bottleneck=bottleneck,
      bottleneck_kwargs=bottleneck_kwargs, head_units=head_units, head_scale=head_scale,
      dueling=dueling, dueling_layout=dueling_layout, noisy=noisy, noisy_sigma0=noisy_sigma0,
      precision=precision, name=name)


def build_actor_network(observation_spec, action_spec, encoder="nature", width_scale=1.0,
                        bottleneck="flatten", bottleneck_kwargs=None, head_units=None,
                        padding="SAME", num_stacks=3, blocks_per_stack=2, head_scale=1.0,
                        name="PixelActorNetwork"):
  """SacAgent's `actor_network`: a tanh-Gaussian over `action_spec` (bounded float).

  Arguments as `build_q_network`; head_units default (512, 512).
  """
  return PixelActorNetwork(observation_spec, action_spec, encoder=encoder,
                           width_scale=width_scale, padding=padding, num_stacks=num_stacks,
                           blocks_per_stack=blocks_per_stack, bottleneck=bottleneck,
                           bottleneck_kwargs=bottleneck_kwargs, head_units=head_units,
                           head_scale=head_scale, name=name)


def build_critic_network(observation_spec, action_spec, encoder="nature", width_scale=1.0,
                         bottleneck="flatten", bottleneck_kwargs=None, head_units=None,
                         padding="SAME", num_stacks=3, blocks_per_stack=2, head_scale=1.0,
                         name="PixelCriticNetwork"):
  """SacAgent's `critic_network`: `(observation, action)` -> Q `[B]`.

  Arguments as `build_q_network`; head_units default (512, 512).
  """
  return PixelCriticNetwork((observation_spec, action_spec), encoder=encoder,
                            width_scale=width_scale, padding=padding, num_stacks=num_stacks,
                            blocks_per_stack=blocks_per_stack, bottleneck=bottleneck,
                            bottleneck_kwargs=bottleneck_kwargs, head_units=head_units,
                            head_scale=head_scale, name=name)


def build_value_network(observation_spec, encoder="nature", width_scale=1.0, bottleneck="flatten",
                        bottleneck_kwargs=None, head_units=None, padding="SAME", num_stacks=3,
                        blocks_per_stack=2, head_scale=1.0, name="PixelValueNetwork"):
  """State-value network: observation -> V `[B]`. Arguments as `build_q_network`."""
  return PixelValueNetwork(observation_spec, encoder=encoder, width_scale=width_scale,
                           padding=padding, num_stacks=num_stacks,
                           blocks_per_stack=blocks_per_stack, bottleneck=bottleneck,
                           bottleneck_kwargs=bottleneck_kwargs, head_units=head_units,
                           head_scale=head_scale, name=name)


def build_keras_model(observation_shape=(84, 84, 4), num_actions=18, encoder="nature",
                      width_scale=1.0, bottleneck="flatten", bottleneck_kwargs=None,
                      head_units=None, dueling=False, noisy=False, num_atoms=None,
                      padding="SAME", num_stacks=3, blocks_per_stack=2, head_scale=1.0,
                      observation_dtype="uint8", dueling_layout="shared",
                      noisy_sigma0=common.NOISY_SIGMA0, precision="float32",
                      name="tfgap_q_model"):
  """A plain functional Keras Model: frames `[B, *observation_shape]` -> Q `[B, num_actions]`.

  With `num_atoms` the output is logits `[B, num_actions, num_atoms]`. The model's top-level layers
  are named "phi", "bottleneck" and "psi"; it trains with `fit`, saves with `tf.saved_model.save`
  and loads with `tf.saved_model.load` in processes that never import tfgap. Arguments as
  `build_q_network`; with precision "mixed_bfloat16" a last float32 `linear` layer
  ("output_float32") makes the output float32.
  """
  dtype = tf.as_dtype(observation_dtype)
  spec = tf.TensorSpec(tuple(observation_shape), dtype)
  body = _Body(spec, encoder, width_scale, padding, num_stacks, blocks_per_stack, bottleneck,
               bottleneck_kwargs, noisy=noisy, noisy_sigma0=noisy_sigma0, masks_allowed=True,
               precision=precision)
  units = resolve_head_units(head_units, body.bottleneck_name, head_scale)
  common.check_positive("num_actions", num_actions, integer=True)
  prune, prune_layers = body.head_prune()
  head = heads_lib.DenseHead(units, num_actions=num_actions, num_atoms=num_atoms, dueling=dueling,
                             dueling_layout=dueling_layout, noisy=noisy,
                             noisy_sigma0=noisy_sigma0, prune=prune, prune_layers=prune_layers,
                             dtype=body.dtype)
  inputs = keras.Input(shape=tuple(observation_shape), dtype=dtype, name="observation")
  outputs = head(body.bottleneck(body.encoder(inputs)))
  if body.dtype is not None:  # Mixed precision: the model's output in float32.
    outputs = keras.layers.Activation("linear", dtype="float32", name="output_float32")(outputs)
  model = keras.Model(inputs, outputs, name=name)
  if getattr(body.bottleneck, "bind", None) is not None:
    # Static/SET/RigL: the kernels hold the initial masks' zeros; the model has no masks.
    from tfgap.networks import sparse  # pylint: disable=g-import-not-at-top
    sparse.sparsify_keras_model(model, keras_model_parts(model), body.bottleneck)
  return model


def keras_model_parts(model):
  """`parts()` of a model from `build_keras_model`: {"phi", "bottleneck", "psi"} -> layers."""
  return {"phi": list(model.get_layer("phi").layers_with_neurons),
          "bottleneck": [model.get_layer("bottleneck")],
          "psi": list(model.get_layer("psi").dense_layers)}
