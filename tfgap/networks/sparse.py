"""Sparse training of psi (or phi and psi): gradual magnitude pruning, static, SET and RigL.

The bottleneck `sparse` flattens the feature map (as `flatten`) and makes the network sparse with
one of four methods, the baselines of the paper's sparse-training comparison (its Figure 5):

- `gmp`: gradual magnitude pruning with tfmot's `PruneLowMagnitude` (cubic schedule), as the
  `pruned` bottleneck, on every layer of the scope (uniform per-layer sparsity).
- `static`: a random mask drawn once at the layer's target sparsity; never changes.
- `set`: every `update_freq` updates between `start_step` and `end_step`, drop the live weights of
  smallest magnitude and regrow as many connections at random (Mocanu et al. 2018).
- `rigl`: the same drop; regrow the dead connections of largest dense-gradient magnitude (Evci
  et al. 2020).

The fraction dropped decays from `drop_fraction` to 0 at `end_step` on a cosine
(`jaxpruner/api.py`: `optax.cosine_decay_schedule(drop_fraction, update_end_step)`). Regrown
weights start at 0 and, when the network knows its optimizer (`bind_optimizer`), their Adam
moments restart at 0 (`jaxpruner/algorithms/sparse_trainers.py` `restart_inner_state`).

Scopes (which kernels are sparse; biases never are):

- `psi`: every dense kernel of psi: hidden layers and the output layer(s) (dueling streams and
  NoisyDense's mean and noise kernels included; a noisy layer's two kernels share one mask).
- `phi_psi`: the same, plus every convolution kernel of phi (the first conv included), as
  jaxpruner's `NOT_DIM_ONE_FILTER_FN` sparsifies every kernel.

Layer distribution: `uniform` (every sparse layer at `sparsity`) or `erk` (Erdos-Renyi-Kernel:
layer density proportional to sum(shape) / prod(shape), scaled so the scope's live weights equal
(1 - sparsity) x its size; layers whose density would exceed 1 stay dense and the rest is
rescaled, as `jaxpruner/sparsity_distributions.py` `get_sparsities_erdos_renyi`). A layer of
`n` weights at sparsity `s` keeps `max(1, round(n * (1 - s)))` weights (jaxpruner's top-k count).

Masks are non-trainable variables of the bottleneck layer, so they belong to the network: a
checkpoint of the network saves them, and a target network (`network.copy()`) has its own, which
the agents' target refresh copies with the weights. The agents' compiled update calls the
network's `after_gradient_step` after every optimizer step (`tfgap.agents.base`; TF-Agents'
`train` too, without gradients): the kernels are multiplied by their masks, the one masking pass
of an update, and, on topology steps, masks are updated inside the compiled step (`tf.cond`;
`select_top`: k-th-value selection by bisection, no sort, static shapes, so it runs under XLA).
The forward pass reads the kernels as they are (dead entries hold exact zeros), so the gradients
of dead weights are the dense gradients RigL grows from, and they never reach the outputs.
"""

import math
import numbers
import weakref

import numpy as np
import tensorflow as tf

from tfgap import checks
from tfgap.networks import bottlenecks
from tfgap.networks import common

METHODS = ("gmp", "static", "set", "rigl")
SCOPES = ("psi", "phi_psi")
DISTRIBUTIONS = ("uniform", "erk")
DYNAMIC = ("set", "rigl")

# Per-method defaults (sources in docs/fidelity.md, "Sparse training"). DST: Graesser et al.
# 2022 (google-research/rigl rigl/rl/dqn_atari_rigl.gin): sparsity 0.9 ERK, drop fraction 0.3
# cosine, topology update every 5,000 updates from 0 to 2,000,000 (80% of 2.5M updates). GMP:
# tfgap's `pruned` schedule (target 0.95, 20% -> 80%, every 1,000 updates, cubic), uniform.
METHOD_DEFAULTS = {
    "gmp": {"sparsity": 0.95, "distribution": "uniform", "update_freq": 1000,
            "start_step": 500_000, "end_step": 2_000_000, "drop_fraction": 0.0},
    "static": {"sparsity": 0.9, "distribution": "erk", "update_freq": 5000,
               "start_step": 0, "end_step": 2_000_000, "drop_fraction": 0.0},
    "set": {"sparsity": 0.9, "distribution": "erk", "update_freq": 5000,
            "start_step": 0, "end_step": 2_000_000, "drop_fraction": 0.3},
    "rigl": {"sparsity": 0.9, "distribution": "erk", "update_freq": 5000,
             "start_step": 0, "end_step": 2_000_000, "drop_fraction": 0.3},
}
OPTIONS = ("method", "scope", "sparsity", "distribution", "update_freq", "drop_fraction",
           "start_step", "end_step", "seed", "wrap")
# jaxpruner/baselines/dopamine/sparse_util.py: rng_seed=8.
DEFAULT_SEED = 8


def check_sparse_config(**kwargs):
  """Completes and validates the options of the `sparse` bottleneck.

  Returns:
    The full config dict (method defaults filled in).

  Raises:
    ValueError: unknown options, an unknown method/scope/distribution, sparsity outside [0, 1),
      `erk` with `gmp` (tfmot schedules are per network), start_step >= end_step, etc.
  """
  checks.check_options("bottleneck 'sparse'", kwargs, OPTIONS)
  method = checks.check_choice("sparse method", kwargs.get("method", "rigl"), METHODS)
  config = dict(METHOD_DEFAULTS[method], method=method, scope="psi", seed=DEFAULT_SEED,
                wrap=True)
  config.update({k: v for k, v in kwargs.items() if v is not None and k != "method"})
  config["scope"] = checks.check_choice("sparse scope", config["scope"], SCOPES)
  config["distribution"] = checks.check_choice("sparse distribution", config["distribution"],
                                               DISTRIBUTIONS)
  s = config["sparsity"]
  if not isinstance(s, numbers.Real) or isinstance(s, bool) or not 0.0 <= s < 1.0:
    checks.reject("sparsity", s, "a number in [0, 1)")
  config["sparsity"] = float(s)
  config["drop_fraction"] = checks.check_float("drop_fraction", config["drop_fraction"],
                                               low=0.0, high=1.0)
  config["update_freq"] = checks.check_int("update_freq", config["update_freq"], low=1)
  config["start_step"] = checks.check_int("start_step", config["start_step"], low=0)
  config["end_step"] = checks.check_int("end_step", config["end_step"], low=1)
  config["seed"] = checks.check_int("seed", config["seed"], low=0)
  config["wrap"] = checks.check_bool("wrap", config["wrap"])
  if config["start_step"] >= config["end_step"]:
    checks.reject("start_step", config["start_step"],
                  f"an integer smaller than end_step ({config['end_step']})")
  if method == "gmp" and config["distribution"] != "uniform":
    checks.reject("sparse distribution", config["distribution"], "'uniform' with method 'gmp'",
                  " tfmot prunes every wrapped layer on one schedule; use static, set or rigl "
                  "for 'erk'.")
  return config


def live_count(size, sparsity):
  """Weights a layer of `size` keeps at `sparsity`: max(1, round(size * (1 - sparsity)))."""
  return max(1, int(np.round(size * (1.0 - sparsity))))


def erk_sparsities(shapes, sparsity):
  """Per-layer sparsities of the Erdos-Renyi-Kernel distribution.

  Layer i's density is eps * sum(shape_i) / prod(shape_i); eps makes the live weights equal
  sum_i (n_i - floor(sparsity * n_i)). A layer whose density would exceed 1 is made dense and eps
  is solved again over the others (jaxpruner/sparsity_distributions.py
  `get_sparsities_erdos_renyi`, include_kernel=True, power 1).

  Args:
    shapes: list of kernel shapes.
    sparsity: the overall target in [0, 1).

  Returns:
    A list of floats, one per shape.
  """
  sizes = [float(np.prod(s)) for s in shapes]
  raw = [float(np.sum(s)) / n for s, n in zip(shapes, sizes)]
  dense = set()
  while True:
    rhs, divisor = 0.0, 0.0
    for i, n in enumerate(sizes):
      zeros = math.floor(sparsity * n)
      if i in dense:
        rhs -= zeros
      else:
        rhs += n - zeros
        divisor += raw[i] * n
    if divisor == 0.0:  # Every layer dense.
      return [0.0] * len(shapes)
    eps = rhs / divisor
    free = [i for i in range(len(sizes)) if i not in dense]
    top = max(raw[i] for i in free)
    if top * eps > 1.0:
      dense.update(i for i in free if raw[i] == top)
      continue
    return [0.0 if i in dense else 1.0 - eps * raw[i] for i in range(len(sizes))]


def layer_sparsities(shapes, sparsity, distribution):
  """Target sparsity per layer: `uniform` or `erk`."""
  if distribution == "erk":
    return erk_sparsities(shapes, sparsity)
  return [float(sparsity)] * len(shapes)


def random_masks(shapes, sparsities, seed):
  """Random 0/1 float32 masks keeping `live_count` entries each (the static/SET/RigL start)."""
  rng = np.random.default_rng(seed)
  masks = []
  for shape, s in zip(shapes, sparsities):
    size = int(np.prod(shape))
    keep = rng.permutation(size)[:live_count(size, s)]
    mask = np.zeros(size, np.float32)
    mask[keep] = 1.0
    masks.append(mask.reshape(shape))
  return masks


def cosine_drop_fraction(drop_fraction, step, end_step):
  """drop_fraction * 0.5 * (1 + cos(pi * min(step, end) / end)) (optax cosine_decay_schedule)."""
  step = tf.minimum(tf.cast(step, tf.float32), float(end_step))
  return drop_fraction * 0.5 * (1.0 + tf.cos(math.pi * step / float(end_step)))


def _order_keys(scores):
  """int32 keys ordered as the non-negative float32 `scores` (IEEE bits of x >= 0 are monotone)."""
  return tf.bitcast(tf.cast(scores, tf.float32), tf.int32)


def _count(flags):
  """Number of True entries (int32 scalar)."""
  return tf.reduce_sum(tf.cast(flags, tf.int32))


def _first_true(flags, count):
  """The first `count` True entries of the 1-D bool `flags` (by index), as a bool mask.

  The bound is built bit by bit: the largest J with at most `count` True entries below index J.
  A cumulative count would do it in one pass, but XLA lowers cumsum to a reduce-window as long
  as the tensor, quadratic on CPU (minutes for a 1.6M-entry kernel).
  """
  n = flags.shape[0]
  bits = n.bit_length() if n is not None else 31
  index = tf.range(tf.size(flags))
  bound = tf.constant(0, tf.int32)
  for bit in range(bits - 1, -1, -1):
    trial = tf.bitwise.bitwise_or(bound, 1 << bit)
    bound = tf.where(_count(tf.logical_and(flags, index < trial)) <= count, trial, bound)
  return tf.logical_and(flags, index < bound)


def select_top(scores, k, candidates):
  """The `k` candidates of largest score as a bool mask; ties: the lower flat index first.

  The same set as the first `k` candidates of a stable descending sort, without sorting: the k-th
  largest score is found by bisection on its bit pattern (31 counting passes over the entries,
  built greedily from the high bit: the largest key T with at least k candidates >= T); the
  entries above T are taken and the rest of the k filled with the entries equal to T in index
  order (`_first_true`, only when more entries than needed equal T). Element-wise passes, a
  dynamic `k` and static shapes, so it runs under XLA; the full sorts it replaces took seconds
  on the Nature bottleneck's 1.6M-entry kernel on CPU.

  Args:
    scores: 1-D non-negative float scores (|w|, |gradient|, uniform draws; NaN counts as the
      largest, as its bits do after `tf.abs`).
    k: int32 scalar, 0 <= k <= number of candidates.
    candidates: 1-D bool, the entries that may be selected.

  Returns:
    1-D bool, exactly k True entries (all candidates).
  """
  keys = tf.where(candidates, _order_keys(scores), -1)  # Non-candidates below every score.
  k = tf.cast(k, tf.int32)
  threshold = tf.constant(0, tf.int32)
  for bit in range(30, -1, -1):  # Keys of non-negative floats have the sign bit clear.
    trial = tf.bitwise.bitwise_or(threshold, 1 << bit)
    threshold = tf.where(_count(keys >= trial) >= k, trial, threshold)
  above = keys > threshold
  ties = tf.equal(keys, threshold)
  need = k - _count(above)
  chosen = tf.cond(need >= _count(ties), lambda: ties, lambda: _first_true(ties, need))
  return tf.logical_or(above, chosen)


def drop_and_grow(weight, mask, grow_score, drop_fraction):
  """One topology update of one layer (flattened 1-D tensors).

  Drops the `n_live - round(n_live * (1 - drop_fraction))` live weights of smallest magnitude
  (at least one weight is kept) and regrows as many connections, those of largest `grow_score`
  (>= 0) among the ones not kept (a connection just dropped may come back, as in jaxpruner's
  SET/RigL). Both selections are `select_top`: ties go to the lower flat index (kept, or grown),
  the set a stable descending sort gives.

  Returns:
    (new mask (float32), activated: bool, connections dead before and live now).
  """
  live = mask > 0.5
  n_live = tf.reduce_sum(tf.cast(live, tf.int32))
  n_keep = tf.maximum(1, tf.cast(tf.round(tf.cast(n_live, tf.float32) * (1.0 - drop_fraction)),
                                 tf.int32))
  kept = select_top(tf.abs(weight), n_keep, live)
  grown = select_top(grow_score, n_live - n_keep, tf.logical_not(kept))
  new_live = tf.logical_or(kept, grown)
  return tf.cast(new_live, tf.float32), tf.logical_and(new_live, tf.logical_not(live))


def _prunable_weights(layer):
  """The kernels of one layer that get a mask (NoisyDense: mean and noise kernels)."""
  layer = common.unwrap(layer)
  getter = getattr(layer, "get_prunable_weights", None)
  if getter is not None:
    return list(getter())
  kernel = getattr(layer, "kernel", None)
  return [kernel] if kernel is not None else []


# layer -> [(weight, mask)], so accounting counts masked weights as dead without a network.
_LAYER_MASKS = weakref.WeakKeyDictionary()


def layer_masks(layer):
  """[(weight variable, mask variable)] of a layer made sparse by a `sparse` bottleneck."""
  return _LAYER_MASKS.get(common.unwrap(layer), [])


class SparseFlatten(bottlenecks.Flatten):
  """Flatten whose network trains psi (or phi and psi) sparse; see the module docstring.

  Options (`bottleneck_kwargs`): method ("rigl"; "gmp", "static", "set"), scope ("psi" or
  "phi_psi"), sparsity (overall target in [0, 1)), distribution ("uniform" or "erk"), update_freq
  (updates between topology/mask updates), drop_fraction (SET/RigL, cosine-decayed to 0 at
  end_step), start_step / end_step (updates), seed (masks and SET's regrowth), wrap (False builds
  the same layers dense, for export). None takes the method's default (`METHOD_DEFAULTS`).
  """

  OPTIONS = OPTIONS

  @classmethod
  def from_options(cls, name="bottleneck", dtype=None, **options):
    return cls(sparse_config=options, name=name, dtype=dtype)

  def __init__(self, sparse_config=None, **kwargs):
    super().__init__(**kwargs)
    self.sparse_config = check_sparse_config(**(sparse_config or {}))
    c = self.sparse_config
    self.method = c["method"]
    # GMP is tfmot's: the builders wrap the scope's layers from this config.
    self.prune_config = None
    if self.method == "gmp":
      self.prune_config = bottlenecks.check_pruning_config(
          target_sparsity=c["sparsity"], begin_step=c["start_step"], end_step=c["end_step"],
          frequency=c["update_freq"], prune_phi=c["scope"] == "phi_psi", psi_layers="all",
          wrap=c["wrap"])
    self._claimed = False
    # [(layer, [weights], mask, target sparsity, part)], kept out of Keras' tracking: the layers
    # belong to phi/psi, not to the bottleneck (the masks are tracked, through add_weight).
    object.__setattr__(self, "_pairs", [])
    object.__setattr__(self, "_optimizer", None)

  def get_config(self):
    config = super().get_config()
    config.update(sparse_config=dict(self.sparse_config))
    return config

  @classmethod
  def from_config(cls, config):
    layer = super().from_config(config)
    # Reloaded with its model (a `.keras` file of build_keras_model): the model's tfmot wrappers
    # (gmp) or zeroed kernels (static/set/rigl) already carry the sparsity.
    layer._claimed = True  # pylint: disable=protected-access
    return layer

  @property
  def masked(self):
    """True when this bottleneck owns masks (static/SET/RigL, wrap=True, bound to a network)."""
    return bool(self._pairs)

  def claim(self, masks_allowed):
    """Called by the builders: the network applies this bottleneck's sparsity."""
    if self.sparse_config["wrap"] and self.method != "gmp" and not masks_allowed:
      checks.reject("bottleneck 'sparse' method", self.method,
                    "'gmp' in this network (masks of static/set/rigl are trained by the DQN "
                    "family's Q-networks: build_q_network, build_categorical_q_network)")
    self._claimed = True

  def call(self, inputs, training=False):
    if not self._claimed and self.sparse_config["wrap"]:
      checks.reject("bottleneck", "sparse",
                    "a bottleneck of the networks tfgap's builders make (build_q_network, "
                    "build_categorical_q_network, build_keras_model; value/critic/actor: "
                    "method 'gmp'); this network does not apply its sparsity")
    del training  # The masks are applied after each optimizer step (`after_gradient_step`).
    return super().call(inputs)

  # ------------------------------------------------------------------ masks

  def scope_layers(self, parts):
    """[(part, layer)] of the kernels this config makes sparse, in network order."""
    names = ("phi", "psi") if self.sparse_config["scope"] == "phi_psi" else ("psi",)
    out = [(part, layer) for part in names for layer in parts.get(part, [])
           if _prunable_weights(layer)]
    if not out:
      checks.reject("sparse scope", self.sparse_config["scope"],
                    "a scope with layers that have kernels in this network (parts "
                    f"{ {k: len(v) for k, v in parts.items()} })")
    return out

  def bind(self, network):
    """Creates the masks of the scope's kernels (network built) and masks the kernels."""
    if self.method == "gmp" or not self.sparse_config["wrap"] or self._pairs:
      return
    c = self.sparse_config
    layers = self.scope_layers(network.parts())
    shapes = [tuple(_prunable_weights(layer)[0].shape.as_list()) for _, layer in layers]
    targets = layer_sparsities(shapes, c["sparsity"], c["distribution"])
    initial = random_masks(shapes, targets, c["seed"])
    for i, ((part, layer), target, value) in enumerate(zip(layers, targets, initial)):
      mask = self.add_weight(name=f"mask_{i}", shape=value.shape, dtype=tf.float32,
                             initializer="zeros", trainable=False)
      mask.assign(value)
      weights = _prunable_weights(layer)
      self._pairs.append((layer, weights, mask, float(target), part))
      _LAYER_MASKS[common.unwrap(layer)] = [(w, mask) for w in weights]
    self.apply_masks()

  def bind_optimizer(self, optimizer):
    """The optimizer whose Adam/momentum slots restart at 0 for regrown connections."""
    # A weak reference: the optimizer must not become a checkpoint dependency of the network.
    object.__setattr__(self, "_optimizer",
                       weakref.ref(optimizer) if optimizer is not None else None)

  def apply_masks(self):
    """kernel *= mask for every sparse kernel (inside or outside tf.function)."""
    for _, weights, mask, _, _ in self._pairs:
      for w in weights:
        w.assign(w * mask)

  def is_topology_step(self, step):
    """True (tensor) on SET/RigL update steps: step % update_freq == 0, start <= step <= end."""
    c = self.sparse_config
    step = tf.cast(step, tf.int64)
    return tf.logical_and(
        tf.equal(tf.math.floormod(step, c["update_freq"]), 0),
        tf.logical_and(step >= c["start_step"], step <= c["end_step"]))

  def after_gradient_step(self, grads, variables, step):
    """The agents' hook: re-mask the kernels, then update the topology on its steps.

    Args:
      grads: the gradients just applied, one per `variables` entry; None where the loop has
        none (TF-Agents' `train`; RigL then raises).
      variables: the variables they belong to (None with `grads` None).
      step: the update count after this update.
    """
    if not self._pairs:
      return
    # The only masking pass of an update. Here, after the optimizer step, it holds the zeros
    # wherever the weights are read next (target refresh, acting, checkpoints, export), whatever
    # the optimizer does to dead entries (Adam's moments move them); the forward pass then reads
    # exact zeros, so dead weights add nothing to outputs and their gradients are the dense ones
    # RigL grows from. Masking in the forward pass instead costs the same multiply-assign per
    # training-mode call and leaves revived values in the variables until the next call.
    self.apply_masks()
    if self.method not in DYNAMIC:
      return
    grad_of = {id(v): g for g, v in zip(grads or (), variables or ())}
    layer_grads = []
    for layer, weights, _, _, _ in self._pairs:
      g = grad_of.get(id(weights[0]))
      if g is None and self.method == "rigl":
        checks.reject("sparse method", "rigl",
                      "'static' or 'set' in a loop that gives no gradient for "
                      f"{weights[0].name} (RigL regrows by the dense gradients the agents' "
                      "compiled update hands to after_gradient_step)")
      layer_grads.append(g)

    def update():
      self.update_topology(step, layer_grads)
      return tf.no_op()

    tf.cond(self.is_topology_step(step), update, tf.no_op)

  def update_topology(self, step, grads=None):
    """Drops and regrows every sparse layer at `step` (SET: random growth; RigL: |gradient|).

    Args:
      step: the update count (drop fraction and SET's random seed).
      grads: RigL: one dense gradient per sparse layer (of its first kernel).
    """
    c = self.sparse_config
    if self.method not in DYNAMIC:
      checks.reject("sparse method", self.method, "'set' or 'rigl' for a topology update")
    if self.method == "rigl" and (grads is None or any(g is None for g in grads)):
      checks.reject("sparse method", "rigl", "'static' or 'set' without gradients (RigL "
                    "regrows by the dense gradients; pass one per sparse layer)")
    fraction = cosine_drop_fraction(c["drop_fraction"], step, c["end_step"])
    optimizer = self._optimizer() if self._optimizer is not None else None
    for i, (_, weights, mask, _, _) in enumerate(self._pairs):
      shape = mask.shape
      flat_w = tf.reshape(weights[0], [-1])  # Dead entries are never kept, whatever they hold.
      flat_m = tf.reshape(mask, [-1])
      if self.method == "rigl":
        score = tf.abs(tf.reshape(tf.cast(grads[i], tf.float32), [-1]))
      else:
        seed = tf.stack([tf.constant(c["seed"] * 1000 + i, tf.int64), tf.cast(step, tf.int64)])
        score = tf.random.stateless_uniform(flat_m.shape, seed=seed)
      new_mask, activated = drop_and_grow(flat_w, flat_m, score, fraction)
      new_mask = tf.reshape(new_mask, shape)
      mask.assign(new_mask)
      for w in weights:  # Regrown weights were dead, hence 0: they start at 0.
        w.assign(w * new_mask)
      if optimizer is not None:
        keep = tf.reshape(1.0 - tf.cast(activated, tf.float32), shape)
        for w in weights:
          for slot in _slots(optimizer, w):
            slot.assign(slot * tf.cast(keep, slot.dtype))

  # ------------------------------------------------------------------ reports

  def report(self):
    """Per sparse layer: part, layer, size, live entries, sparsity and target sparsity."""
    rows = []
    for layer, weights, mask, target, part in self._pairs:
      size = int(np.prod(mask.shape))
      live = int(np.count_nonzero(mask.numpy()))
      rows.append({"part": part, "layer": common.unwrap(layer).name, "size": size,
                   "live": live, "sparsity": 1.0 - live / size, "target": target,
                   "kernels": len(weights)})
    return rows

  def reschedule(self, start_step, end_step, update_freq):
    """New start/end/frequency of the topology updates (before the update is traced)."""
    config = check_sparse_config(**dict(self.sparse_config, start_step=start_step,
                                        end_step=end_step, update_freq=update_freq))
    self.sparse_config = config

  def bookkeeping(self):
    """The mask variables (not model weights)."""
    return [mask for _, _, mask, _, _ in self._pairs]


def _slots(optimizer, weight):
  """The optimizer's per-weight slots (Adam's m and v, momentum), where it has them."""
  out = []
  names = optimizer.get_slot_names() if hasattr(optimizer, "get_slot_names") else []
  for name in names:
    try:
      out.append(optimizer.get_slot(weight, name))
    except (KeyError, ValueError):
      pass
  return out


bottlenecks.register_bottleneck(SparseFlatten, name="sparse")


# -------------------------------------------------------------------- network helpers


def sparse_bottleneck(obj):
  """The `SparseFlatten` of a network or Keras model, or None."""
  layer = getattr(obj, "_bottleneck", None)
  if layer is None and hasattr(obj, "get_layer"):
    try:
      layer = obj.get_layer("bottleneck")
    except ValueError:
      layer = None
  return layer if isinstance(layer, SparseFlatten) else None


def is_masked(obj):
  """True when `obj` trains with static/SET/RigL masks."""
  layer = sparse_bottleneck(obj)
  return bool(layer is not None and layer.masked)


def bind_optimizer(network, optimizer):
  """Lets a masked network restart the optimizer slots of regrown connections (SET/RigL)."""
  layer = sparse_bottleneck(network)
  if layer is not None and layer.masked:
    layer.bind_optimizer(optimizer)


def report(obj):
  """Per sparse layer rows (`SparseFlatten.report`); GMP networks: tfmot's sparsity report."""
  layer = sparse_bottleneck(obj)
  if layer is not None and layer.masked:
    return layer.report()
  from tfgap.networks import pruning  # pylint: disable=g-import-not-at-top
  if pruning.pruning_wrappers(obj):
    return [{"part": r["part"], "layer": r["layer"], "size": r["size"],
             "live": r["size"] - r["pruned"], "sparsity": r["sparsity"], "target": r["target"],
             "kernels": 1} for r in pruning.sparsity_report(obj)]
  return []


def part_metrics(obj):
  """Live parameters and sparsity per part (phi, bottleneck, psi) and of the sparse kernels.

  Returns:
    {"live_params/{part}": int, "sparsity/{part}": dead / params of the part (0 for dense parts),
    "sparsity": dead / size over the sparse kernels, "sparsity_target": their target}; the two
    last only for sparse networks.
  """
  from tfgap.networks import accounting  # pylint: disable=g-import-not-at-top
  result = accounting.account(obj)
  out = {}
  for part, values in result["parts"].items():
    out[f"live_params/{part}"] = int(values["live"])
    params = values["params"]
    out[f"sparsity/{part}"] = (params - values["live"]) / params if params else 0.0
  rows = report(obj)
  if rows:
    size = sum(r["size"] * r["kernels"] for r in rows)
    live = sum(r["live"] * r["kernels"] for r in rows)
    out["sparsity"] = 1.0 - live / size
    out["sparsity_target"] = sum(r["target"] * r["size"] * r["kernels"] for r in rows) / size
  return out


def apply_masks(obj):
  """Multiplies the sparse kernels of a masked network by their masks (no-op otherwise)."""
  layer = sparse_bottleneck(obj)
  if layer is not None and layer.masked:
    layer.apply_masks()


def reschedule(network, start_step, end_step, update_freq):
  """Moves a SET/RigL network's topology updates (and its saved constructor arguments)."""
  layer = sparse_bottleneck(network)
  if layer is None or layer.method not in DYNAMIC:
    return False
  layer.reschedule(start_step, end_step, update_freq)
  saved = getattr(network, "_saved_kwargs", None)
  if isinstance(saved, dict):
    saved["bottleneck_kwargs"] = dict(saved.get("bottleneck_kwargs") or {},
                                      start_step=int(start_step), end_step=int(end_step),
                                      update_freq=int(update_freq))
  return True


def sparsify_keras_model(model, parts, bottleneck):
  """Zeros a Keras model's scope kernels with the initial (static) masks; no mask variables."""
  c = bottleneck.sparse_config
  if bottleneck.method == "gmp" or not c["wrap"]:
    return model
  layers = bottleneck.scope_layers(parts)
  shapes = [tuple(_prunable_weights(layer)[0].shape.as_list()) for _, layer in layers]
  targets = layer_sparsities(shapes, c["sparsity"], c["distribution"])
  for (_, layer), mask in zip(layers, random_masks(shapes, targets, c["seed"])):
    for w in _prunable_weights(layer):
      w.assign(w * mask)
  # The model holds zeros, not masks: its bottleneck is a plain flatten from now on, and says so
  # in its config, so a `.keras` copy of the model reloads and runs as it is.
  bottleneck.sparse_config = dict(c, wrap=False)
  return model
