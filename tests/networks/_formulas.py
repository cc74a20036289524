"""Closed-form parameter counts and shapes, written from the architecture definitions only.

Kept independent of tfgap's code so the tests compare two derivations.
"""

import math


def ch(base, scale):
  """Scaled channels: round half up, at least 1."""
  return max(1, int(math.floor(base * scale + 0.5)))


def conv(k, cin, cout):
  return k * k * cin * cout + cout


def dense(n_in, n_out):
  return n_in * n_out + n_out


def same(size, stride):
  return -(-size // stride)


def valid(size, k, stride):
  return (size - k) // stride + 1


def nature(shape, scale, padding="SAME"):
  """(params, feature map (h, w, c)) of the Nature CNN."""
  h, w, c = shape
  c0, c1, c2 = ch(32, scale), ch(64, scale), ch(64, scale)
  params = conv(8, c, c0) + conv(4, c0, c1) + conv(3, c1, c2)
  for k, s in ((8, 4), (4, 2), (3, 1)):
    h, w = (same(h, s), same(w, s)) if padding == "SAME" else (valid(h, k, s), valid(w, k, s))
  return params, (h, w, c2)


def impala(shape, scale, stacks=3, blocks=2):
  """(params, feature map) of the Impala CNN (channels 16, 32, 32, ... times scale)."""
  h, w, cin = shape
  params = 0
  for s in range(stacks):
    cout = ch(16 if s == 0 else 32, scale)
    params += conv(3, cin, cout) + blocks * 2 * conv(3, cout, cout)
    h, w, cin = same(h, 2), same(w, 2), cout
  return params, (h, w, cin)


def encoder(name, shape, scale):
  return nature(shape, scale) if name == "nature" else impala(shape, scale)


def bottleneck(name, fmap, **kw):
  """(params, output width D) of a bottleneck on feature map (h, w, c)."""
  h, w, c = fmap
  if name in ("flatten", "pruned"):
    return 0, h * w * c
  if name == "gap":
    return 0, c
  m, d = h * w, c  # per_conv tokens
  if name == "softmoe":
    n, hid = kw.get("num_experts", 4), kw.get("expert_hidden", 512)
    p = math.ceil(m * kw.get("capacity_factor", 1.0) / n)
    params = d * n * p + n * (d * hid + hid + hid * d + d)
    return params, m * d
  if name == "tokenize":
    hid = kw.get("hidden_units", 512)
    return dense(d, hid) + dense(hid, d), m * d
  raise ValueError(name)


def q_head(n_in, units, num_actions, atoms=1, dueling=False, noisy=False, layout="shared"):
  """Parameters of psi: hidden layers then the output layer.

  Dueling: "shared" hidden layers with a value (atoms) and an advantage (actions x atoms) output
  layer on top (Dopamine's FullRainbowNetwork), or "separate" streams with their own hidden layers.
  """
  per = 2 if noisy else 1  # Noisy layers hold mu and sigma for every kernel and bias entry.

  def hidden():
    total, width = 0, n_in
    for u in units:
      total += per * dense(width, u)
      width = u
    return total, width

  h, width = hidden()
  if not dueling:
    return h + per * dense(width, num_actions * atoms)
  outputs = per * (dense(width, atoms) + dense(width, num_actions * atoms))
  return (h if layout == "shared" else 2 * h) + outputs
