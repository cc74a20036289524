"""Grad-CAM (Selvaraju et al., 2017) for tfgap Q-networks and actors.

With A = net.encode(obs) the last encoder feature map `[B, H', W', C']` and Y the chosen output
computed by net.decode(A):

    alpha_k = mean_ij dY / dA^k_ij,     map = ReLU(sum_k alpha_k A^k),

normalised to [0, 1] per sample (divided by its maximum) and resized bilinearly to the frame.

Y is, by output shape:
- `[B, A]` (Q-values, or an actor's outputs): the chosen entry; `[B]` (a value network): V;
- `[B, A, atoms]` (categorical logits): the expected Q, sum_z softmax(logits)_z * support_z;
- a tfp distribution (actors): its mean's chosen entry.
The default choice is the greedy action (argmax of the per-action values).
"""

import os

import numpy as np
import tensorflow as tf

from tfgap.analysis import adapters

DEFAULT_VMAX = 10.0


def _support_for(network, num_atoms, support):
  if support is None:
    support = getattr(network, "support", None)
  if support is None:
    # C51 default of Dopamine / tf_agents: atoms spread evenly over [-vmax, vmax].
    support = np.linspace(-DEFAULT_VMAX, DEFAULT_VMAX, num_atoms)
  support = tf.cast(tf.reshape(tf.convert_to_tensor(support), [-1]), tf.float32)
  if support.shape[0] != num_atoms:
    raise ValueError(f"support has {support.shape[0]} atoms but the logits have {num_atoms}; "
                     "accepted: a support of the logits' last dimension")
  return support


def action_values(output, network=None, support=None):
  """Per-action scalar values `[B, A]` from a network output (see module docstring)."""
  if isinstance(output, (tuple, list)):  # tf_agents Network.call style (output, state).
    output = output[0]
  if hasattr(output, "sample") and hasattr(output, "mean"):  # A tfp distribution.
    output = output.mean()
  output = tf.convert_to_tensor(output)
  if output.shape.rank == 1:  # A value network's V [B]: one output to explain.
    return tf.cast(output, tf.float32)[:, None]
  if output.shape.rank == 2:
    return tf.cast(output, tf.float32)
  if output.shape.rank == 3:
    atoms = output.shape[-1]
    probs = tf.nn.softmax(tf.cast(output, tf.float32), axis=-1)
    return tf.reduce_sum(probs * _support_for(network, atoms, support), axis=-1)
  raise ValueError(f"network output has shape {output.shape}; accepted: [B] or [B, A] values or "
                   "[B, A, atoms] categorical logits (or a distribution over [B, A])")


def grad_cam(network, observations, actions=None, support=None, frame_size=None):
  """Grad-CAM maps of a batch.

  Args:
    network: tfgap network (`encode` / `decode`, the design contract) or a model from
      `tfgap.networks.build_keras_model`.
    observations: `[B, H, W, C]` batch (uint8 frames as the network takes them).
    actions: None for the greedy action per sample, an int for all samples, or `[B]` ints.
    support: atom values for categorical logits; default `network.support` if present, else
      linspace(-10, 10, atoms).
    frame_size: (height, width) to resize maps to; default the observations' H x W.

  Returns:
    (maps, actions): float32 numpy `[B, h, w]` in [0, 1] and the int `[B]` actions explained.
  """
  network = adapters.as_network(network)
  observations = tf.convert_to_tensor(observations)
  if observations.shape.rank != 4:
    raise ValueError(f"observations have shape {observations.shape}; accepted: [B, H, W, C]")
  if frame_size is None:
    frame_size = observations.shape[1:3]
  features = tf.convert_to_tensor(network.encode(observations, training=False))
  if features.shape.rank != 4:
    raise ValueError(f"net.encode returned shape {features.shape}; Grad-CAM needs a feature "
                     "map [B, H', W', C']")
  features = tf.cast(features, tf.float32)
  with tf.GradientTape() as tape:
    tape.watch(features)
    try:
      output = network.decode(features, training=False)
    except TypeError as err:
      raise ValueError(f"{type(network).__name__}.decode needs more than the feature map ({err}); "
                       "accepted: Q-networks, categorical Q-networks and actors (a critic needs "
                       "an action: wrap it so decode(features) returns Q for that action)") from err
    values = action_values(output, network, support)
    batch = tf.shape(values)[0]
    if actions is None:
      chosen = tf.argmax(values, axis=-1, output_type=tf.int32)
    else:
      chosen = tf.broadcast_to(tf.cast(tf.convert_to_tensor(actions), tf.int32), [batch])
      num = values.shape[-1]
      bad = [int(a) for a in chosen.numpy() if not 0 <= int(a) < num]
      if bad:
        raise ValueError(f"actions {bad} out of range; accepted: 0..{num - 1}")
    target = tf.gather(values, chosen, axis=1, batch_dims=1)
  grads = tape.gradient(target, features)
  if grads is None:
    raise ValueError("the chosen output does not depend on net.encode's feature map; check that "
                     "net.decode consumes its features argument")
  alpha = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)  # [B, 1, 1, C]
  cam = tf.nn.relu(tf.reduce_sum(alpha * features, axis=-1))  # [B, H', W']
  peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
  cam = tf.math.divide_no_nan(cam, peak)
  cam = tf.image.resize(cam[..., None], tuple(int(s) for s in frame_size), method="bilinear")
  cam = tf.clip_by_value(cam[..., 0], 0.0, 1.0)
  return cam.numpy().astype(np.float32), chosen.numpy()


def last_frame(observation, frame_channels=None):
  """The most recent frame of a channel-stacked observation, as float in [0, 1].

  Args:
    observation: `[H, W, C]` (oldest frame first on the channel axis, as tfgap.envs stacks).
    frame_channels: 1 (grayscale) or 3 (RGB) channels per frame; default 3 when C is a multiple
      of 3, else 1.

  Returns:
    `[H, W]` (grayscale) or `[H, W, 3]` (RGB) float32 array.
  """
  observation = np.asarray(observation)
  if observation.ndim != 3:
    raise ValueError(f"observation has shape {observation.shape}; accepted: [H, W, C]")
  channels = observation.shape[-1]
  if frame_channels is None:
    frame_channels = 3 if channels % 3 == 0 else 1
  if frame_channels not in (1, 3) or channels % frame_channels:
    raise ValueError(f"frame_channels {frame_channels} does not divide {channels} channels; "
                     "accepted: 1 or 3 dividing the channel count")
  frame = observation[..., channels - frame_channels:].astype(np.float32)
  if observation.dtype == np.uint8 or frame.max() > 1.0:
    frame = frame / 255.0
  return frame[..., 0] if frame_channels == 1 else frame


def overlay(frame, cam, alpha=0.5, cmap="jet"):
  """Blends a colormapped Grad-CAM map over a frame.

  Args:
    frame: `[H, W]` grayscale or `[H, W, 3]` RGB in [0, 1] (see `last_frame`).
    cam: `[h, w]` map in [0, 1]; resized bilinearly when its size differs from the frame.
    alpha: weight of the heat map.
    cmap: matplotlib colormap name.

  Returns:
    uint8 `[H, W, 3]` image.
  """
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  frame = np.asarray(frame, dtype=np.float32)
  if frame.ndim == 2:
    frame = np.repeat(frame[..., None], 3, axis=-1)
  cam = np.asarray(cam, dtype=np.float32)
  if cam.shape != frame.shape[:2]:
    cam = tf.image.resize(cam[..., None], frame.shape[:2], method="bilinear").numpy()[..., 0]
  heat = colormaps[cmap](np.clip(cam, 0.0, 1.0))[..., :3]
  blended = (1.0 - alpha) * frame + alpha * heat
  return (np.clip(blended, 0.0, 1.0) * 255).round().astype(np.uint8)


def is_uniform(cam, tol=1e-6):
  """Whether a map is (numerically) constant: it singles out no region of the frame."""
  cam = np.asarray(cam, dtype=np.float32)
  return bool(cam.size) and float(cam.max() - cam.min()) <= tol


def action_label(action, action_names=None):
  """"NAME (a)" with the env's action meanings when given, else "action a"."""
  action = int(action)
  if action_names is not None and 0 <= action < len(action_names):
    return f"{action_names[action]} ({action})"
  return f"action {action}"


def _titles(n, titles, actions, action_names):
  if titles is not None:
    if len(titles) != n:
      raise ValueError(f"got {len(titles)} titles for {n} maps; accepted: one per map")
    return [str(t) for t in titles]
  if actions is not None:
    actions = np.broadcast_to(np.asarray(actions), (n,))
    return [action_label(a, action_names) for a in actions]
  return [""] * n


def _draw(fig, axes, observations, cams, titles, frame_channels, alpha, cmap):
  """Overlay cells, "uniform map" in the title of constant maps, one colorbar for all."""
  from matplotlib import cm  # pylint: disable=g-import-not-at-top
  from matplotlib import colors  # pylint: disable=g-import-not-at-top
  for i, ax in enumerate(axes):
    ax.axis("off")
    if i >= len(observations):
      continue
    ax.imshow(overlay(last_frame(observations[i], frame_channels), cams[i], alpha, cmap))
    title = titles[i]
    if is_uniform(cams[i]):  # A flat map would otherwise read as "attends everywhere".
      title = f"{title}, uniform map" if title else "uniform map"
    if title:
      ax.set_title(title, fontsize=9)
  mappable = cm.ScalarMappable(norm=colors.Normalize(0.0, 1.0), cmap=cmap)
  bar = fig.colorbar(mappable, ax=list(axes), shrink=0.85, pad=0.02)
  bar.set_label("Grad-CAM (1 = peak of the frame)", fontsize=8)
  bar.ax.tick_params(labelsize=7)


def save_overlay(path, observation, cam, frame_channels=None, alpha=0.5, cmap="jet",
                 action=None, action_names=None, title=None, annotate=True):
  """Writes one PNG: the observation's last frame with the map over it.

  Args:
    path: output PNG.
    observation: `[H, W, C]` observation.
    cam: `[h, w]` map.
    frame_channels: see `last_frame`.
    alpha: heat map weight.
    cmap: colormap name.
    action: the explained action (titled with its name from `action_names`).
    action_names: the env's action meanings, indexed by action.
    title: a title of your own (instead of the action's).
    annotate: False writes the bare overlay at the frame's pixel size (no title, no colorbar).

  Returns:
    path.
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  if not annotate:
    from matplotlib import image as mpimg  # pylint: disable=g-import-not-at-top
    mpimg.imsave(path, overlay(last_frame(observation, frame_channels), cam, alpha, cmap))
    return path
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  titles = _titles(1, None if title is None else [title],
                   None if action is None else [action], action_names)
  fig = Figure(figsize=(3.4, 2.9), layout="constrained")
  ax = fig.subplots()
  _draw(fig, [ax], np.asarray(observation)[None], np.asarray(cam)[None], titles, frame_channels,
        alpha, cmap)
  fig.savefig(path, dpi=100)
  return path


def save_grid(path, observations, cams, titles=None, frame_channels=None, alpha=0.5,
              cmap="jet", columns=4, actions=None, action_names=None):
  """Writes a PNG grid: each cell a frame with its Grad-CAM overlay, and a colorbar.

  Cells whose map is constant say "uniform map" in their title.

  Args:
    path: output PNG.
    observations: `[N, H, W, C]` observations.
    cams: `[N, h, w]` maps.
    titles: optional N strings; default from `actions` (see `action_label`).
    frame_channels: see `last_frame`.
    alpha: heat map weight.
    cmap: colormap name.
    columns: cells per row.
    actions: the N explained actions (as `grad_cam` returns them), for the titles.
    action_names: the env's action meanings, indexed by action (e.g. ALE's
      `get_action_meanings()`).

  Returns:
    path.
  """
  # A bare Figure draws on the Agg canvas without pyplot: no display, no backend change.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  observations = np.asarray(observations)
  cams = np.asarray(cams)
  n = len(observations)
  if n == 0 or len(cams) != n:
    raise ValueError(f"got {n} observations and {len(cams)} maps; accepted: the same number >= 1")
  titles = _titles(n, titles, actions, action_names)
  columns = max(1, min(columns, n))
  rows = -(-n // columns)
  fig = Figure(figsize=(2.4 * columns + 0.8, 2.5 * rows), layout="constrained")
  axes = fig.subplots(rows, columns, squeeze=False)
  _draw(fig, list(axes.flat), observations, cams, titles, frame_channels, alpha, cmap)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  return path


__all__ = ["action_values", "grad_cam", "last_frame", "overlay", "save_overlay", "save_grid",
           "is_uniform", "action_label"]
