"""Cost of every bottleneck at every encoder width: parameters, FLOPs and train-step time.

    python benchmarks/networks.py                      # nature + impala, x1/x2/x4/x8, ~10-20 min
    python benchmarks/networks.py --quick              # x1/x2, 2 timed steps per row
    python benchmarks/networks.py --encoders nature --scales 1,4 --output table.md

Q-networks on 84x84x4 uint8 frames, 18 actions, builders' defaults (flatten/gap/pruned: psi
512 -> 18; softmoe: 4 experts with hidden 512, per_conv tokens; tokenize: shared 512-wide token
MLP; softmoe/tokenize feed the output layer directly, as in Dopamine). Step = forward + backward +
Adam update of a batch of 32 under plain tf.function (XLA is slower on CPU, see STACK.md).

Rows of one (encoder, scale) group are timed round-robin (one step of each bottleneck per round)
and reported as the median, so load changes on the shared machine hit every bottleneck alike;
compare the ratio to flatten within a group, not absolute times across runs.
FLOPs: forward, per example, 2 x multiply-accumulates (tfgap.networks.accounting).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tf_agents.specs import tensor_spec  # noqa: E402

from tfgap import networks  # noqa: E402
from tfgap.compat import keras  # noqa: E402
from tfgap.networks import accounting  # noqa: E402
from tfgap.networks import pruning  # noqa: E402

import harness  # noqa: E402  (benchmarks/harness.py)

# One tf.function per network is intended; TF's retracing warning would only add noise.
tf.get_logger().setLevel("ERROR")

BOTTLENECKS = ("flatten", "gap", "softmoe", "tokenize", "pruned")
BOTTLENECK_KWARGS = {"softmoe": {"num_experts": 4}}


def _build(encoder, scale, bottleneck, shape, num_actions):
  obs = tensor_spec.BoundedTensorSpec(shape, tf.uint8, 0, 255)
  act = tensor_spec.BoundedTensorSpec((), tf.int64, 0, num_actions - 1)
  net = networks.build_q_network(obs, act, encoder=encoder, width_scale=scale,
                                 bottleneck=bottleneck,
                                 bottleneck_kwargs=BOTTLENECK_KWARGS.get(bottleneck))
  net.create_variables()
  pruning.initialize_pruning(net)
  return net


def _train_step(net, batch, shape, num_actions):
  opt = keras.optimizers.Adam(6.25e-5, epsilon=1.5e-4)
  x = tf.constant(np.random.randint(0, 256, (batch,) + shape).astype(np.uint8))
  y = tf.random.normal((batch, num_actions))

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      q, _ = net(x, training=True)
      loss = tf.reduce_mean(tf.square(q - y))
    grads = tape.gradient(loss, net.trainable_variables)
    opt.apply_gradients(zip(grads, net.trainable_variables))
    return loss

  return step


def run_group(encoder, scale, bottlenecks, shape, num_actions, batch, repeats, warmup):
  """Accounting and median step time of every bottleneck at one (encoder, scale)."""
  rows, steps = [], {}
  for i, b in enumerate(bottlenecks):
    net = _build(encoder, scale, b, shape, num_actions)
    acc = accounting.account(net)
    rows.append({"encoder": encoder, "scale": scale, "bottleneck": b, "acc": acc,
                 "psi_in": accounting.psi_input_weights(net)})
    step = _train_step(net, batch, shape, num_actions)
    steps[i] = lambda step=step: step().numpy()
  seconds = harness.medians(harness.interleaved(steps, repeats, warmup=warmup))
  base = None
  for i, row in enumerate(rows):
    row["ms"] = 1000 * seconds[i]
    if row["bottleneck"] == "flatten":
      base = row["ms"]
  for row in rows:
    row["ratio"] = row["ms"] / base if base else float("nan")
  return rows


def format_rows(rows):
  lines = [
      "| encoder | scale | bottleneck | phi params | bottleneck params | psi params | "
      "psi input weights | total params | GFLOPs fwd/example | step ms (b32) | vs flatten |",
      "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    p = r["acc"]["parts"]
    lines.append(
        f"| {r['encoder']} | x{r['scale']:g} | {r['bottleneck']} | {p['phi']['params']:,} | "
        f"{p['bottleneck']['params']:,} | {p['psi']['params']:,} | {r['psi_in']:,} | "
        f"{r['acc']['total']['params']:,} | {r['acc']['total']['flops'] / 1e9:.3f} | "
        f"{r['ms']:.1f} | {r['ratio']:.2f} |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="x1/x2, 2 timed steps per row.")
  parser.add_argument("--encoders", default="nature,impala")
  parser.add_argument("--scales", default=None, help="Comma-separated, default 1,2,4,8.")
  parser.add_argument("--bottlenecks", default=",".join(BOTTLENECKS))
  parser.add_argument("--repeats", type=int, default=None, help="Timed steps per row.")
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--observation_shape", default="84,84,4")
  parser.add_argument("--num_actions", type=int, default=18)
  parser.add_argument("--output", default=None, help="Also write the markdown table here.")
  args = parser.parse_args(argv)
  scales = [float(s) for s in (args.scales or ("1,2" if args.quick else "1,2,4,8")).split(",")]
  repeats = args.repeats or (2 if args.quick else 5)
  shape = tuple(int(s) for s in args.observation_shape.split(","))
  encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
  bottlenecks = [b.strip() for b in args.bottlenecks.split(",") if b.strip()]
  for e in encoders:
    networks.common.check_name("encoder", e, networks.ENCODERS)
  for b in bottlenecks:
    networks.common.check_name("bottleneck", b, networks.BOTTLENECKS)
  rows = []
  for encoder in encoders:
    for scale in scales:
      # Impala x8 runs ~2 s per step on this CPU: fewer timed steps there.
      reps = max(2, repeats // 2) if encoder == "impala" and scale >= 8 else repeats
      start = time.time()
      group = run_group(encoder, scale, bottlenecks, shape, args.num_actions, args.batch, reps,
                        args.warmup)
      rows.extend(group)
      print(f"# {encoder} x{scale:g}: {time.time() - start:.0f} s", file=sys.stderr, flush=True)
  table = format_rows(rows)
  harness.emit(table, args.output)
  return 0


if __name__ == "__main__":
  sys.exit(main())
