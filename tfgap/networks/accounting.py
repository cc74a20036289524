"""Parameter and FLOP accounting per part (phi, bottleneck, psi).

Conventions:
- params: trainable parameters (masks, thresholds, pruning steps and noise switches excluded).
- live: trainable parameters that are not masked out. Under gradual magnitude pruning a pruned
  kernel counts its mask's non-zeros, and so does a kernel of a `sparse` bottleneck's static,
  SET or RigL network (`tfgap.networks.sparse`); every other weight is live. For softmoe/tokenize the live
  parameters are their shared per-token weights (router, experts, token MLP), counted once
  although they are applied to every token; GAP and flatten have none.
- flops: forward FLOPs per example = 2 x multiply-accumulates of convolutions, dense layers and
  einsums (router logits, dispatch, experts, combine; noisy layers count both matmuls). Bias adds,
  activations, pooling, softmax and normalisation are not counted. Pruned layers are counted dense
  (that is what TensorFlow executes).
"""

import numpy as np

from tfgap.networks import common

PARTS = ("phi", "bottleneck", "psi")


def _trainable(layer):
  return list(common.unwrap(layer).trainable_weights)


def layer_params(layer):
  """(params, live) of one layer (pruning wrappers count their masks' non-zeros)."""
  weights = _trainable(layer)
  params = int(sum(np.prod(w.shape) for w in weights))
  live = params
  if common.is_pruned(layer) and layer.built:
    for weight, mask, _ in layer.pruning_vars:
      live -= int(np.prod(weight.shape)) - int(np.count_nonzero(mask.numpy()))
  from tfgap.networks import sparse  # pylint: disable=g-import-not-at-top
  for weight, mask in sparse.layer_masks(layer):  # Static/SET/RigL masks: dead entries.
    live -= int(np.prod(weight.shape)) - int(np.count_nonzero(mask.numpy()))
  return params, live


def _costs(obj):
  if hasattr(obj, "layer_costs"):
    if hasattr(obj, "create_variables"):
      obj.create_variables()
    return obj.layer_costs()
  from tfgap.compat import keras  # pylint: disable=g-import-not-at-top
  if isinstance(obj, keras.Model):
    phi, bottleneck, psi = (obj.get_layer(n) for n in PARTS)
    costs_phi, fmap = phi.layer_costs(tuple(obj.input_shape[1:]))
    costs_b, (dim,) = bottleneck.layer_costs(fmap)
    costs_psi, _ = psi.layer_costs((dim,))
    return {"phi": costs_phi, "bottleneck": costs_b, "psi": costs_psi}
  raise ValueError(
      f"account() needs a tfgap network or a model from build_keras_model; got {obj!r}.")


def account(obj):
  """Per-part and per-layer accounting of a tfgap network or Keras model.

  Args:
    obj: a network from the tfgap builders (variables are created if needed) or a model from
      `build_keras_model`.

  Returns:
    {"parts": {part: {"params", "live", "flops"}}, "total": {...}, "layers": [{"part", "layer",
    "params", "live", "flops"}]}.
  """
  costs = _costs(obj)
  rows, parts = [], {}
  for part in PARTS:
    totals = {"params": 0, "live": 0, "flops": 0}
    for layer, flops in costs[part]:
      params, live = layer_params(layer)
      rows.append({"part": part, "layer": common.unwrap(layer).name, "params": params,
                   "live": live, "flops": int(flops)})
      totals["params"] += params
      totals["live"] += live
      totals["flops"] += int(flops)
    parts[part] = totals
  total = {k: sum(p[k] for p in parts.values()) for k in ("params", "live", "flops")}
  return {"parts": parts, "total": total, "layers": rows}


def live_at_final_sparsity(obj):
  """{part: live parameters once gradual magnitude pruning reaches its final sparsity}, or None.

  `account` counts the mask entries that are non-zero now; a `pruned` network's tfmot masks
  start all ones and reach the schedule's `final_sparsity` only at its end step, so this answers
  "how many weights will the trained network keep". None for networks without tfmot wrappers
  (static/SET/RigL masks hold their sparsity from the start, so `account` already shows it).
  """
  from tfgap.networks import pruning  # pylint: disable=g-import-not-at-top
  wrappers = pruning.pruning_wrappers(obj)
  if not wrappers:
    return None
  result = account(obj)
  removed = {part: 0 for part in PARTS}
  owner = pruning.part_of(obj)
  for wrapper in wrappers:
    final = float(getattr(wrapper.pruning_schedule, "final_sparsity", 0.0))
    part = owner.get(id(wrapper), "psi")
    for weight, _, _ in wrapper.pruning_vars:
      removed[part] += int(round(int(np.prod(weight.shape)) * final))
  live = {part: result["parts"][part]["params"] - removed[part] for part in PARTS}
  live["total"] = sum(live[part] for part in PARTS)
  return live


def psi_input_layers(obj):
  """The layers of psi that read the bottleneck's output, each once.

  One (the first hidden layer) for plain heads and for Dopamine's shared dueling layout; two
  (each stream's first layer) for `dueling_layout="separate"` or a dueling head without hidden
  layers.
  """
  own = getattr(obj, "psi_input_layers", None)
  if own:  # Networks with several psi inputs name them (SAC: the critic's and actor's features).
    return list(own)
  head = getattr(obj, "_head", None)
  layers = getattr(head, "input_layers", None)
  if layers:
    return list(layers)
  streams = getattr(head, "streams", None)
  if streams:
    firsts = []
    for stream in streams:
      if stream and all(stream[0] is not f for f in firsts):
        firsts.append(stream[0])
    return firsts
  psi = obj.parts().get("psi", [])
  if not psi:
    raise ValueError("network.parts()['psi'] is empty; accepted: a network with a dense head")
  return psi[:1]


def input_weights(layers):
  """Entries of the kernels (first trainable weight) of `layers`, masks not applied."""
  return sum(int(np.prod(common.unwrap(l).trainable_weights[0].shape)) for l in layers)


def psi_input_weights(obj):
  """Weights of psi's first layer(s): the connection the paper's bottleneck argument is about."""
  return input_weights(psi_input_layers(obj))


def format_table(result, per_layer=False):
  """Markdown table of `account()`'s result."""
  lines = ["| part | params | live | FLOPs (fwd/example) |", "|---|---:|---:|---:|"]
  if per_layer:
    for r in result["layers"]:
      lines.append(f"| {r['part']}/{r['layer']} | {r['params']:,} | {r['live']:,} | "
                   f"{r['flops']:,} |")
  for part in PARTS:
    p = result["parts"][part]
    lines.append(f"| {part} | {p['params']:,} | {p['live']:,} | {p['flops']:,} |")
  t = result["total"]
  lines.append(f"| **total** | {t['params']:,} | {t['live']:,} | {t['flops']:,} |")
  return "\n".join(lines)
