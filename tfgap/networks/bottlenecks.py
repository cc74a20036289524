"""Bottlenecks: the connection between the encoder's feature map (phi) and the dense head (psi).

Each bottleneck is a Keras layer `[B, H, W, C]` -> `[B, D]`:

- `flatten`: D = H*W*C, the baseline whose psi weights grow with every widening of phi.
- `gap`: global average pooling over H x W, D = C.
- `softmoe`: Soft Mixture of Experts (Puigcerver et al. 2023, as in Dopamine's MoE labs) on
  tokens of the feature map; the mixed tokens are flattened, D = m*d.
- `tokenize`: the same tokens through one shared per-token MLP (no experts, no routing), flattened.
- `pruned`: flatten; psi's first dense layer(s) (and optionally phi's convs) are pruned by gradual
  magnitude pruning (tfmot), configured here and applied by the network builders.

Every bottleneck is one `Bottleneck` subclass registered by name (`register_bottleneck`). The
class declares everything the rest of tfgap asks about a bottleneck: its options, psi's default
widths, its activations, FLOPs and effective-parameter accounting. Builders, `describe`, gin
configs and the analyses look bottlenecks up here, so a bottleneck defined outside tfgap works
everywhere once registered.
"""

import collections.abc
import inspect
import math

import tensorflow as tf

from tfgap import checks
from tfgap.compat import keras
from tfgap.networks import accounting
from tfgap.networks import common

TOKENIZATIONS = ("per_conv", "per_patch", "per_featuremap")
PATCH_EMBEDDINGS = ("conv", "avg_pool")
# per_patch conv embedding width: FullRainbowMoENetwork.embedding_size = 64 (the MoE lab's Rainbow
# and DER network; NatureDQNMoE too); ImpalaMoE (its DQN network) uses 32
# (dopamine/labs/moes/architectures/networks.py). It does not scale with the encoder width.
PATCH_EMBEDDING_SIZE = 64

# Gradual magnitude pruning defaults (Zhu & Gupta 2017 cubic schedule as in deep-RL pruning work:
# target 95%, begin at 20% and end at 80% of a 2.5M-update run (40M Atari frames, update period 4),
# masks updated every 1,000 updates). See `pruning.schedule_steps` for other run lengths.
PRUNING_DEFAULTS = {
    "target_sparsity": 0.95,
    "initial_sparsity": 0.0,
    "begin_step": 500_000,
    "end_step": 2_000_000,
    "frequency": 1000,
    "power": 3,
    "prune_phi": False,
    "psi_layers": 1,
    "wrap": True,
}


def _flat_size(shape):
  return int(math.prod(shape))


# Keras layer arguments that are not bottleneck options.
_LAYER_ARGUMENTS = ("self", "name", "trainable", "dtype", "dynamic")


class Bottleneck(common.Layer):
  """Base of every bottleneck: a Keras layer `[B, H, W, C]` -> `[B, D]` plus what tfgap asks.

  Subclass it, then `register_bottleneck` the subclass. What a subclass may set or override:

  - `OPTIONS`: the option names `make_bottleneck` accepts; None (default) takes the keyword
    arguments of `__init__` except `name` and `**kwargs`.
  - `from_options(name, **options)`: builds the layer from name-checked options (default
    `cls(name=name, **options)`).
  - `default_q_head_units`: psi's hidden widths for Q-networks when `head_units=None` ((512,),
    Dopamine's layout); `default_mlp_head_units`: the same for actor, critic and value networks
    ((512, 512)).
  - `call_with_activations(inputs, training)`: `(output, [(layer_name, tensor)])` with the
    post-activation tensor of every layer with neurons inside the bottleneck (default: none; the
    dormant-neuron analysis reads these).
  - `layer_costs(input_shape)`: `([(keras_layer, forward FLOPs per example)], (D,))` (default:
    D from `compute_output_shape` and 0 FLOPs, right for parameter-free pooling).
  - `effective_connection(network, parts, feature_shape, psi_input_layers)`: the weights of the
    connection between the feature map and psi (default: psi's first-layer kernels, counting only
    what pruning masks keep), see `tfgap.analysis.effective`.

  Attributes:
    bottleneck_name: the registered name (set by `register_bottleneck`).
  """

  bottleneck_name = None
  OPTIONS = None
  default_q_head_units = (512,)
  default_mlp_head_units = (512, 512)

  @classmethod
  def accepted_options(cls):
    """The option names `make_bottleneck` passes on, in declaration order."""
    if cls.OPTIONS is not None:
      return tuple(cls.OPTIONS)
    owner = next(c for c in cls.__mro__ if "__init__" in c.__dict__)
    if not issubclass(owner, Bottleneck):
      return ()  # Keras' own __init__: trainable, dtype, ... are not options.
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(owner.__init__).parameters.values()
    return tuple(p.name for p in params if p.kind in kinds and p.name not in _LAYER_ARGUMENTS)

  @classmethod
  def from_options(cls, name="bottleneck", **options):
    """The layer for name-checked options."""
    return cls(name=name, **options)

  def call_with_activations(self, inputs, training=False):
    return self(inputs, training=training), []

  def layer_costs(self, input_shape):
    shape = self.compute_output_shape(tf.TensorShape((None,) + tuple(input_shape)))
    return [(self, 0)], (_flat_size(shape[1:]),)

  @classmethod
  def effective_connection(cls, network, parts, feature_shape, psi_input_layers):
    """Weights of the feature map -> psi connection.

    The default reads psi's layers that the bottleneck's output feeds directly (flatten:
    H*W*C*dim(psi) weights per such layer; pooling over H x W: C*dim(psi)). That is one layer
    (psi's first hidden layer) for plain heads and Dopamine's shared dueling layout, two for
    `dueling_layout="separate"`.

    Args:
      network: the network (tfgap contract).
      parts: `network.parts()`.
      feature_shape: (H, W, C) of the encoder's feature map.
      psi_input_layers: psi's layers that read the bottleneck's output
        (`accounting.psi_input_layers`).

    Returns:
      dict with `live` (weights not masked out), `total` (all of them), `width` (the dim(psi) of
      the dense-equivalent H*W*C*width*streams) and `streams`.
    """
    del network, parts, feature_shape
    total = accounting.input_weights(psi_input_layers)
    # layer_params' params - live = the entries the layer's pruning masks removed.
    masked = sum(p - l for p, l in map(accounting.layer_params, psi_input_layers))
    return {"live": total - masked, "total": total,
            "width": int(common.unwrap(psi_input_layers[0]).units),
            "streams": len(psi_input_layers)}


class Flatten(Bottleneck):
  """`[B, H, W, C]` -> `[B, H*W*C]` (static sizes, so psi's first layer can be built)."""

  def call(self, inputs, training=False):
    return tf.reshape(inputs, [-1, _flat_size(inputs.shape[1:])])

  def call_with_activations(self, inputs, training=False):
    return self.call(inputs), []

  def layer_costs(self, input_shape):
    return [(self, 0)], (_flat_size(input_shape),)


class GlobalAveragePooling(Bottleneck):
  """`[B, H, W, C]` -> `[B, C]`: g_c = mean over (i, j) of F[i, j, c]."""

  def call(self, inputs, training=False):
    # The mean accumulates in float32 (bfloat16's 8-bit mantissa would lose small terms).
    return tf.cast(tf.reduce_mean(tf.cast(inputs, tf.float32), axis=[1, 2]), inputs.dtype)

  def call_with_activations(self, inputs, training=False):
    return self.call(inputs), []

  def layer_costs(self, input_shape):
    return [(self, 0)], (int(input_shape[-1]),)


class PrunedFlatten(Flatten):
  """Flatten whose network prunes psi's first dense layer(s) with gradual magnitude pruning.

  The layer itself only flattens; `prune_config` tells the network builders which layers to wrap
  in tfmot's `PruneLowMagnitude` and with which PolynomialDecay schedule.
  """

  OPTIONS = tuple(PRUNING_DEFAULTS)

  @classmethod
  def from_options(cls, name="bottleneck", dtype=None, **options):
    return cls(prune_config=options, name=name, dtype=dtype)

  def __init__(self, prune_config=None, **kwargs):
    super().__init__(**kwargs)
    self.prune_config = check_pruning_config(**(prune_config or {}))

  def get_config(self):
    config = super().get_config()
    config.update(prune_config=dict(self.prune_config))
    return config


def check_pruning_config(**kwargs):
  """Completes and validates a pruning config dict (see `PRUNING_DEFAULTS`).

  Raises:
    ValueError: on unknown keys, sparsity outside [0, 1), begin_step >= end_step, etc.
  """
  unknown = sorted(set(kwargs) - set(PRUNING_DEFAULTS))
  if unknown:
    common.check_name("pruned bottleneck option", unknown[0], PRUNING_DEFAULTS)
  config = dict(PRUNING_DEFAULTS, **kwargs)
  s = checks.check_float("target_sparsity", config["target_sparsity"], low=0.0, high=1.0,
                         high_open=True)
  s0 = checks.check_float("initial_sparsity", config["initial_sparsity"], low=0.0, high=s)
  begin = checks.check_int("begin_step", config["begin_step"], low=0)
  end = checks.check_int("end_step", config["end_step"], low=0)
  if begin >= end:
    checks.reject("begin_step", begin, f"an integer smaller than end_step ({end!r})")
  checks.check_positive("frequency", config["frequency"], integer=True)
  checks.check_positive("power", config["power"])
  psi_layers = config["psi_layers"]
  if psi_layers != "all":
    checks.check_int("psi_layers", psi_layers, low=1)  # Or "all".
  checks.check_bool("prune_phi", config["prune_phi"])
  checks.check_bool("wrap", config["wrap"])
  config.update(target_sparsity=float(s), initial_sparsity=float(s0), begin_step=int(begin),
                end_step=int(end), frequency=int(config["frequency"]))
  return config


class _Tokenizer(keras.layers.Layer):
  """Turns a feature map `[B, H, W, C]` into tokens `[B, m, d]`.

  per_conv: a token per spatial position (m = H*W, d = C). per_featuremap: a token per channel
  (m = C, d = H*W). per_patch: non-overlapping patch x patch windows (VALID) embedded by a strided
  conv of `embedding_size` filters (64 as Dopamine; None: C), or averaged
  (`patch_embedding="avg_pool"`, d = C), m = patches. The embedding conv has no activation and
  lecun_normal kernels (Flax's default: the lab's `nn.Conv(..., name='embedding')` sets none).
  """

  def __init__(self, tokenization="per_conv", patch_size=3, patch_embedding="conv",
               embedding_size=PATCH_EMBEDDING_SIZE, name="tokenizer", **kwargs):
    super().__init__(name=name, **kwargs)
    self.tokenization = common.check_name("tokenization", tokenization, TOKENIZATIONS)
    self.patch_size = common.check_positive("patch_size", patch_size, integer=True)
    self.patch_embedding = common.check_name("patch_embedding", patch_embedding, PATCH_EMBEDDINGS)
    if embedding_size is not None:
      common.check_positive("embedding_size", embedding_size, integer=True)
    self.embedding_size = embedding_size
    self.embed = None

  def build(self, input_shape):
    h, w, c = tf.TensorShape(input_shape).as_list()[-3:]
    self.token_shape((h, w, c))  # Checks the patch size.
    if self.tokenization == "per_patch":
      if self.patch_embedding == "conv" and self.embed is None:
        self.embed = keras.layers.Conv2D(
            self.embedding_size or c, self.patch_size, self.patch_size, padding="valid",
            kernel_initializer=common.lecun_normal(), name="patch_embedding",
            dtype=common.sublayer_dtype(self))
        self.embed.build(tf.TensorShape([None, h, w, c]))
    super().build(input_shape)

  def token_shape(self, input_shape):
    """(m, d) for a feature map shape (H, W, C)."""
    h, w, c = tuple(input_shape)[-3:]
    if self.tokenization == "per_conv":
      return h * w, c
    if self.tokenization == "per_featuremap":
      return c, h * w
    if h < self.patch_size or w < self.patch_size:
      checks.reject("patch_size", self.patch_size,
                    f"1..{min(h, w)} (the feature map is {h}x{w})")
    hp, wp = h // self.patch_size, w // self.patch_size
    d = (self.embedding_size or c) if self.patch_embedding == "conv" else c
    return hp * wp, d

  def embed_flops(self, input_shape):
    if self.tokenization != "per_patch" or self.patch_embedding != "conv":
      return 0
    h, w, c = tuple(input_shape)[-3:]
    m, d = self.token_shape(input_shape)
    return 2 * m * self.patch_size * self.patch_size * c * d

  def call(self, inputs):
    h, w, c = inputs.shape[1:]
    if self.tokenization == "per_conv":
      return tf.reshape(inputs, [-1, h * w, c])
    if self.tokenization == "per_featuremap":
      return tf.transpose(tf.reshape(inputs, [-1, h * w, c]), [0, 2, 1])
    if self.patch_embedding == "conv":
      x = self.embed(inputs)
    else:
      x = tf.nn.avg_pool2d(inputs, self.patch_size, self.patch_size, padding="VALID")
    return tf.reshape(x, [-1, x.shape[1] * x.shape[2], x.shape[3]])


class _TokenBottleneck(Bottleneck):
  """Base of SoftMoE and TokenMLP: a `_Tokenizer` in front; `_kwargs` (options) is the config.

  Their per-token MLPs (hidden width 512 by default) replace psi's penultimate layer, so a
  Q-network's psi has no hidden layer by default (Dopamine's layout).
  """

  default_q_head_units = ()

  @classmethod
  def effective_connection(cls, network, parts, feature_shape, psi_input_layers):
    """Their shared per-token weights, counted once; width = the per-token hidden width.

    Noise scales of noisy experts are not counted: they are a second parameter of the same
    connections (as psi's noisy layers count their kernel_mu only).
    """
    del network, feature_shape
    layers = parts["bottleneck"]
    counts = []
    for layer in layers:
      params, live = accounting.layer_params(layer)
      noise = sum(int(math.prod(w.shape))
                  for w in getattr(common.unwrap(layer), "noise_scale_weights", ()))
      counts.append((params - noise, live - noise))
    widths = [getattr(l, "expert_hidden", None) or getattr(l, "hidden_units", None)
              for l in layers]
    width = next((int(v) for v in widths if v),
                 int(common.unwrap(psi_input_layers[0]).units))
    return {"live": sum(l for _, l in counts), "total": sum(p for p, _ in counts),
            "width": width, "streams": 1}

  def _build_tokenizer(self, input_shape):
    """Builds the tokenizer; sets and returns `(num_tokens, token_dim)`."""
    if not self.tokenizer.built:
      self.tokenizer.build(input_shape)
    m, d = self.tokenizer.token_shape(tf.TensorShape(input_shape).as_list()[-3:])
    self.num_tokens, self.token_dim = m, d
    return m, d

  def get_config(self):
    config = super().get_config()
    config.update(self._kwargs)
    return config


class SoftMoE(_TokenBottleneck):
  """Soft Mixture of Experts on feature-map tokens, batched with einsum (XLA-compilable).

  Tokens X `[B, m, d]`; router Phi `[d, n, p]` (n experts, p slots each). Logits L = X.Phi
  `[B, m, n, p]`; dispatch D = softmax of L over the tokens m; combine C = softmax of L over the
  joint (n, p) slots. Slots S = D^T X `[B, n, p, d]`; expert i is its own MLP d -> hidden (ReLU)
  -> d on its p slots; output tokens Y = C.S_out `[B, m, d]`, flattened to `[B, m*d]`. With
  `normalize=True` (V-MoE style) the logits use L2-normalised X and Phi (over d) times a learned
  scalar; the slots still mix the raw tokens, as in Dopamine.

  Initialisation as dopamine/labs/moes/architectures: router lecun_normal (softmoe.py
  `SoftMoE.kernel_init`), expert layers xavier_uniform per expert (networks.py `ExpertModel`),
  zero biases. `noisy=True` makes every expert's first layer a factorised noisy layer, as the
  lab's `ExpertModel(noisy=True)` (a `NoisyNetwork`, which the Rainbow/DER network asks for when
  it is noisy): mu ~ U(+-1/sqrt(d)), sigma = noisy_sigma0/sqrt(d). One noise draw per forward
  pass, shared by every expert and slot (the lab hands every vmapped expert the same rng key)
  and over the batch; `set_noise(net, False)` switches it off with psi's noisy layers.
  """

  def __init__(self, num_experts=4, slots_per_expert=None, capacity_factor=1.0, expert_hidden=512,
               tokenization="per_conv", patch_size=3, patch_embedding="conv",
               embedding_size=PATCH_EMBEDDING_SIZE, normalize=False, noisy=False,
               noisy_sigma0=common.NOISY_SIGMA0, name="softmoe", **kwargs):
    """Creates the layer.

    Args:
      num_experts: n >= 1 (SoftMoE-1 is a single expert).
      slots_per_expert: p; by default ceil(m * capacity_factor / n).
      capacity_factor: positive; sets p when slots_per_expert is None.
      expert_hidden: hidden width of every expert MLP (512 in Dopamine).
      tokenization: "per_conv", "per_patch" or "per_featuremap".
      patch_size: per_patch window (and stride).
      patch_embedding: per_patch embedding, "conv" (learned) or "avg_pool".
      embedding_size: per_patch conv filters (64 as Dopamine's FullRainbowMoENetwork; its
        ImpalaMoE uses 32; None: the feature map's channels).
      normalize: L2-normalise tokens and router weights for the logits (learned scale).
      noisy: factorised noisy expert first layers (set by the builders for noisy networks).
      noisy_sigma0: their initial noise scale (sigma0 / sqrt(d)), 0.1 as Dopamine.
      name: Keras layer name.
      **kwargs: passed to `keras.layers.Layer`.
    """
    super().__init__(name=name, **kwargs)
    self.num_experts = common.check_positive("num_experts", num_experts, integer=True)
    if slots_per_expert is not None:
      common.check_positive("slots_per_expert", slots_per_expert, integer=True)
    self.slots_per_expert = slots_per_expert
    self.capacity_factor = common.check_positive("capacity_factor", capacity_factor)
    self.expert_hidden = common.check_positive("expert_hidden", expert_hidden, integer=True)
    for key, value in (("normalize", normalize), ("noisy", noisy)):
      if not isinstance(value, bool):
        checks.reject(key, value, "True, False")
    self.normalize = normalize
    self.noisy = noisy
    self.noisy_sigma0 = common.check_positive("noisy_sigma0", noisy_sigma0)
    self.noise_scale_weights = []
    self.tokenizer = _Tokenizer(tokenization, patch_size, patch_embedding, embedding_size,
                                dtype=common.sublayer_dtype(self))
    self._kwargs = dict(num_experts=num_experts, slots_per_expert=slots_per_expert,
                        capacity_factor=capacity_factor, expert_hidden=expert_hidden,
                        tokenization=tokenization, patch_size=patch_size,
                        patch_embedding=patch_embedding, embedding_size=embedding_size,
                        normalize=normalize, noisy=noisy, noisy_sigma0=noisy_sigma0)

  noise_groups = 1  # Independent noise per block of rows: see heads.noise_groups.

  def num_slots(self, num_tokens):
    """p for m tokens."""
    if self.slots_per_expert is not None:
      return int(self.slots_per_expert)
    return int(math.ceil(num_tokens * self.capacity_factor / self.num_experts))

  def build(self, input_shape):
    m, d = self._build_tokenizer(input_shape)
    n, p, h = self.num_experts, self.num_slots(m), self.expert_hidden
    self.router = self.add_weight(
        "router", shape=[d, n, p], initializer=keras.initializers.LecunNormal())
    if self.normalize:
      self.router_scale = self.add_weight("router_scale", shape=[], initializer="ones")
    if self.noisy:
      # NoisyNetwork per expert (fan_in d): mu ~ U(+-1/sqrt(d)) for kernel and bias.
      bound, sigma = common.noisy_init(d, self.noisy_sigma0)
      self.w_in = self.add_weight("expert_kernel_in", shape=[n, d, h],
                                  initializer=keras.initializers.RandomUniform(-bound, bound))
      self.b_in = self.add_weight("expert_bias_in", shape=[n, h],
                                  initializer=keras.initializers.RandomUniform(-bound, bound))
      self.w_in_sigma = self.add_weight("expert_kernel_in_sigma", shape=[n, d, h],
                                        initializer=keras.initializers.Constant(sigma))
      self.b_in_sigma = self.add_weight("expert_bias_in_sigma", shape=[n, h],
                                        initializer=keras.initializers.Constant(sigma))
      self.noise_enabled = self.add_weight("noise_enabled", shape=[], initializer="ones",
                                           trainable=False)
      self.noise_scale_weights = [self.w_in_sigma, self.b_in_sigma]
    else:
      # Per-expert Glorot limits: Keras' initializers would count n into the fans of a 3-D
      # kernel.
      self.w_in = self.add_weight(
          "expert_kernel_in", shape=[n, d, h],
          initializer=keras.initializers.RandomUniform(*_sym(common.glorot_limit(d, h))))
      self.b_in = self.add_weight("expert_bias_in", shape=[n, h], initializer="zeros")
    self.w_out = self.add_weight(
        "expert_kernel_out", shape=[n, h, d],
        initializer=keras.initializers.RandomUniform(*_sym(common.glorot_limit(h, d))))
    self.b_out = self.add_weight("expert_bias_out", shape=[n, d], initializer="zeros")
    super().build(input_shape)

  def routing(self, tokens):
    """Returns (dispatch, combine) weights `[B, m, n, p]` for tokens `[B, m, d]`."""
    # Explicit casts: `call_with_activations` runs outside Keras' __call__ and its autocast, so
    # a mixed_bfloat16 layer would otherwise read its float32 variables as they are.
    x, router = tokens, tf.cast(self.router, tokens.dtype)
    if self.normalize:
      x = tf.math.l2_normalize(x, axis=-1, epsilon=1e-12)
      router = tf.cast(self.router_scale, tokens.dtype) * tf.math.l2_normalize(
          router, axis=0, epsilon=1e-12)
    # Softmaxes in float32 (no-ops in a float32 network), weights back in the tokens' dtype.
    logits = tf.cast(tf.einsum("bmd,dnp->bmnp", x, router), tf.float32)
    dispatch = tf.nn.softmax(logits, axis=1)
    m, n, p = logits.shape[1:]
    combine = tf.reshape(tf.nn.softmax(tf.reshape(logits, [-1, m, n * p]), axis=-1),
                         [-1, m, n, p])
    return tf.cast(dispatch, tokens.dtype), tf.cast(combine, tokens.dtype)

  def mix_tokens(self, tokens, return_hidden=False):
    """The mixture on tokens `[B, m, d]` -> output tokens `[B, m, d]` (and expert activations)."""
    dispatch, combine = self.routing(tokens)
    dtype = tokens.dtype
    w_in, b_in, w_out, b_out = (tf.cast(v, dtype) for v in (self.w_in, self.b_in, self.w_out,
                                                            self.b_out))
    slots = tf.einsum("bmnp,bmd->bnpd", dispatch, tokens)
    pre = tf.einsum("bnpd,ndh->bnph", slots, w_in) + b_in[:, None, :]
    if self.noisy:
      # Factorised noise as NoisyDense: (x * f(e_in)) W_sigma * f(e_out) + b_sigma * f(e_out).
      groups = None if self.noise_groups == 1 else self.noise_groups
      e_in = common.factorised_noise(self.token_dim, slots.dtype, groups)
      e_out = common.factorised_noise(self.expert_hidden, slots.dtype, groups)
      e_out *= tf.cast(self.noise_enabled, slots.dtype)
      if groups:  # One draw per block of rows (heads.noise_groups), broadcast over slots.
        rows = tf.shape(slots)[0]
        e_in = common.per_row_noise(e_in, rows)[:, None, None, :]
        e_out = common.per_row_noise(e_out, rows)[:, None, None, :]
      pre += (tf.einsum("bnpd,ndh->bnph", slots * e_in, tf.cast(self.w_in_sigma, dtype))
              + tf.cast(self.b_in_sigma, dtype)[:, None, :]) * e_out
    hidden = tf.nn.relu(pre)
    out = tf.einsum("bnph,nhd->bnpd", hidden, w_out) + b_out[:, None, :]
    mixed = tf.einsum("bnpd,bmnp->bmd", out, combine)
    return (mixed, hidden) if return_hidden else mixed

  def call(self, inputs, training=False):
    mixed = self.mix_tokens(self.tokenizer(inputs))
    return tf.reshape(mixed, [-1, self.num_tokens * self.token_dim])

  def call_with_activations(self, inputs, training=False):
    mixed, hidden = self.mix_tokens(self.tokenizer(inputs), return_hidden=True)
    acts = [(f"{self.name}_expert{i}_hidden", hidden[:, i]) for i in range(self.num_experts)]
    return tf.reshape(mixed, [-1, self.num_tokens * self.token_dim]), acts

  def layer_costs(self, input_shape):
    m, d = self.tokenizer.token_shape(input_shape)
    n, p, h = self.num_experts, self.num_slots(m), self.expert_hidden
    flops = (self.tokenizer.embed_flops(input_shape)
             + 2 * m * d * n * p      # router logits
             + 2 * m * n * p * d      # dispatch: slots = D^T X
             + 2 * n * p * d * h * 2  # expert MLPs (in and out)
             + 2 * m * n * p * d)     # combine: Y = C S_out
    if self.noisy:
      flops += 2 * n * p * d * h      # the noise matmul of the experts' first layers
    return [(self, flops)], (m * d,)


def _sym(limit):
  return -limit, limit


class TokenMLP(_TokenBottleneck):
  """Tokenize without experts: every token through one shared dense layer (ReLU), flattened.

  Tokens `[B, m, d]` -> Dense(hidden_units, ReLU) shared over tokens -> (by default) a linear
  projection back to d, the shape of one SoftMoE expert -> flattened `[B, m*d]`. This isolates the
  tokenization from the mixture (Sokar et al., "Don't flatten, tokenize!"). `output_units=0` drops
  the projection (output `[B, m*hidden_units]`).
  """

  def __init__(self, hidden_units=512, output_units=None, tokenization="per_conv", patch_size=3,
               patch_embedding="conv", embedding_size=PATCH_EMBEDDING_SIZE, name="tokenize",
               **kwargs):
    super().__init__(name=name, **kwargs)
    self.hidden_units = common.check_positive("hidden_units", hidden_units, integer=True)
    if output_units is not None:
      checks.check_int("output_units", output_units, low=0)  # 0: no projection.
    self.output_units = output_units
    self.tokenizer = _Tokenizer(tokenization, patch_size, patch_embedding, embedding_size,
                                dtype=common.sublayer_dtype(self))
    # xavier_uniform as one SoftMoE expert (dopamine/labs/moes/architectures/networks.py).
    self.token_hidden = keras.layers.Dense(hidden_units, activation="relu", name="token_hidden",
                                           kernel_initializer=common.glorot_uniform(),
                                           dtype=common.sublayer_dtype(self))
    self.token_out = None
    self._kwargs = dict(hidden_units=hidden_units, output_units=output_units,
                        tokenization=tokenization, patch_size=patch_size,
                        patch_embedding=patch_embedding, embedding_size=embedding_size)

  def build(self, input_shape):
    _, d = self._build_tokenizer(input_shape)
    self.token_hidden.build(tf.TensorShape([None, d]))
    if self.output_units != 0:
      self.token_out = keras.layers.Dense(self.output_units or d, name="token_out",
                                          kernel_initializer=common.glorot_uniform(),
                                          dtype=common.sublayer_dtype(self))
      self.token_out.build(tf.TensorShape([None, self.hidden_units]))
    super().build(input_shape)

  def _forward(self, inputs):
    tokens = self.tokenizer(inputs)
    hidden = self.token_hidden(tokens)
    out = self.token_out(hidden) if self.token_out is not None else hidden
    return tf.reshape(out, [-1, self.num_tokens * out.shape[-1]]), hidden

  def call(self, inputs, training=False):
    return self._forward(inputs)[0]

  def call_with_activations(self, inputs, training=False):
    out, hidden = self._forward(inputs)
    return out, [(f"{self.name}_token_hidden", hidden)]

  def layer_costs(self, input_shape):
    m, d = self.tokenizer.token_shape(input_shape)
    out = d if self.output_units is None else self.output_units
    flops = self.tokenizer.embed_flops(input_shape) + 2 * m * d * self.hidden_units
    flops += 2 * m * self.hidden_units * out
    return [(self, flops)], (m * (out or self.hidden_units),)


# ------------------------------------------------------------------------------------ registry

_REGISTRY = {}  # name -> Bottleneck subclass, in registration order.


class _Names(collections.abc.Sequence):
  """A live, read-only view of the registered bottleneck names (what `BOTTLENECKS` is)."""

  def __getitem__(self, index):
    return tuple(_REGISTRY)[index]

  def __len__(self):
    return len(_REGISTRY)

  def __eq__(self, other):
    return tuple(self) == tuple(other) if isinstance(other, collections.abc.Sequence) else False

  def __hash__(self):
    return hash(tuple(self))

  def __repr__(self):
    return repr(tuple(self))


BOTTLENECKS = _Names()


def list_bottlenecks():
  """The registered bottleneck names, built-ins first, as a tuple."""
  return tuple(_REGISTRY)


def _check_new_name(name, cls):
  if not isinstance(name, str) or not name or name != name.strip() or " " in name:
    checks.reject("bottleneck name", name, "a non-empty string without spaces")
  for known, other in _REGISTRY.items():
    if known.lower() != name.lower():
      continue
    # Re-importing the module that defines a bottleneck (e.g. importlib.reload) redefines its
    # class; that is the same bottleneck, not a clash.
    if (other.__module__, other.__qualname__) == (cls.__module__, cls.__qualname__):
      return known
    checks.reject("bottleneck name", name,
                  f"a name not registered yet ({known!r} is {other.__module__}."
                  f"{other.__qualname__})")
  return name


def register_bottleneck(cls=None, *, name=None):
  """Registers a `Bottleneck` subclass under `name`; usable as a decorator.

      @networks.register_bottleneck               # name: the class attribute, else the class name
      class MaxPool(networks.Bottleneck):
        bottleneck_name = "maxpool"
        ...

      networks.register_bottleneck(MaxPool, name="maxpool")

  Args:
    cls: the class (omit it to get a decorator).
    name: the registry name; default the class's own `bottleneck_name` if it sets one, else its
      lower-cased class name. Names are matched case-insensitively.

  Returns:
    `cls` (or a decorator returning it), with `cls.bottleneck_name` set to the name.

  Raises:
    ValueError: when `cls` is not a `Bottleneck` subclass, or the name is taken by another class.
  """
  if cls is None:
    return lambda c: register_bottleneck(c, name=name)
  if not (inspect.isclass(cls) and issubclass(cls, Bottleneck)) or cls is Bottleneck:
    checks.reject("bottleneck class", cls,
                  "a subclass of tfgap.networks.Bottleneck (a Keras layer [B, H, W, C] -> "
                  "[B, D])")
  if name is None:
    name = cls.__dict__.get("bottleneck_name") or cls.__name__.lower()
  name = _check_new_name(name, cls)
  registered = {v: k for k, v in _REGISTRY.items()}
  if cls in registered and registered[cls] != name:
    checks.reject("bottleneck class", cls,
                  f"a class registered once (it is registered as {registered[cls]!r})")
  _REGISTRY.pop(name, None)
  _REGISTRY[name] = cls
  cls.bottleneck_name = name
  _register_serializable(cls, name)
  return cls


# Keras package of registered bottlenecks: `model.save("m.keras")` records a bottleneck as
# "tfgap.bottleneck>{registry name}" and `keras.models.load_model` finds it once the module that
# registers it is imported (registry names are unique, class names need not be).
KERAS_PACKAGE = "tfgap.bottleneck"


def _register_serializable(cls, name):
  """Makes `cls` Keras-serializable under its registry name (idempotent across reloads)."""
  if keras.utils.get_registered_name(cls) != cls.__name__:
    return  # Registered with Keras already (by its author or an earlier call).
  key = f"{KERAS_PACKAGE}>{name}"
  objects = keras.utils.get_custom_objects()
  old = objects.pop(key, None)  # A reloaded module's class: same bottleneck, new class object.
  try:
    keras.utils.register_keras_serializable(package=KERAS_PACKAGE, name=name)(cls)
  except ValueError:
    if old is not None:
      objects[key] = old
    raise


def bottleneck_class(name):
  """The registered class of the bottleneck called `name` (case-insensitive).

  Raises:
    ValueError: naming the value, the registered names and the closest ones.
  """
  return _REGISTRY[checks.check_choice("bottleneck", name, tuple(_REGISTRY))]


def name_of(layer):
  """The registered name of a bottleneck layer (its most derived registered class), else None."""
  for cls in type(common.unwrap(layer)).__mro__:
    name = cls.__dict__.get("bottleneck_name")
    if name is not None and _REGISTRY.get(name) is cls:
      return name
  return None


def make_bottleneck(name, dtype=None, **kwargs):
  """Builds a registered bottleneck layer by name.

  Args:
    name: a registered name: "flatten", "gap", "softmoe", "tokenize", "pruned" or one added with
      `register_bottleneck`.
    **kwargs: the bottleneck's options: softmoe: num_experts (4), slots_per_expert (None: from
      capacity_factor 1.0), expert_hidden (512), tokenization ("per_conv", "per_patch",
      "per_featuremap"), patch_size (3), patch_embedding ("conv" or "avg_pool"), embedding_size
      (64; None: the feature map's channels), normalize (False), noisy (False; the builders set
      it for noisy networks), noisy_sigma0 (0.1). tokenize: hidden_units (512), output_units (None: token width),
      tokenization and patch options as softmoe. pruned: target_sparsity (0.95), begin_step,
      end_step, frequency (mask update every that many steps), power (3, cubic), initial_sparsity
      (0), prune_phi (False), psi_layers (1 or "all"), wrap (True; False builds the same layers
      unpruned, e.g. for export). Registered classes: their `accepted_options()`.
    dtype: the Keras dtype policy of the layer (None: the default float32); handed to
      `from_options` only when given (mixed precision networks).

  Returns:
    A Keras layer `[B, H, W, C]` -> `[B, D]` named "bottleneck".

  Raises:
    ValueError: on unknown names/options or invalid values.
  """
  cls = bottleneck_class(name)
  options = checks.check_options(f"bottleneck {cls.bottleneck_name!r}", kwargs,
                                 cls.accepted_options())
  if dtype is not None:
    options["dtype"] = dtype
  return cls.from_options(name="bottleneck", **options)


for _cls, _name in ((Flatten, "flatten"), (GlobalAveragePooling, "gap"), (SoftMoE, "softmoe"),
                    (TokenMLP, "tokenize"), (PrunedFlatten, "pruned")):
  register_bottleneck(_cls, name=_name)
del _cls, _name
