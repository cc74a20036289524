"""Define a new bottleneck outside tfgap, register it, train a short run with it, describe it.

    python examples/custom_bottleneck.py
    python examples/custom_bottleneck.py --num_heads 4 --width_scale 2

Use this when you want to try your own phi -> psi connection against the paper's. A bottleneck is
one Keras layer `[B, H, W, C] -> [B, D]` subclassing `tfgap.networks.Bottleneck`; registering it
gives it a name that every part of tfgap looks up: the network builders, gin configs (so
`tfgap.launch.train`), parameter and FLOP accounting (`describe`), dormant neurons and effective
parameters. No file of tfgap changes.

The bottleneck here is attention pooling: each of `num_heads` heads scores the H x W positions
with a learned linear map, and averages the feature vectors with the softmax of those scores.
Like GAP it keeps psi's input at `heads * C` (not `H * W * C`), but it can choose where to look.
"""

# Before TensorFlow is imported: oneDNN CPU kernels on, quiet C++ logs, a stack check.
from tfgap.launch import runtime

runtime.prepare_process()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

import tensorflow as tf  # noqa: E402

import tfgap.networks  # noqa: E402
from tfgap.launch import describe  # noqa: E402
from tfgap.launch import train  # noqa: E402


# ------------------------------------------------------------------ the bottleneck


@tfgap.networks.register_bottleneck
class AttentionPooling(tfgap.networks.Bottleneck):
  """`[B, H, W, C]` -> `[B, num_heads * C]`: softmax-weighted averages over the H x W positions.

  Its options are the keyword arguments of `__init__` (here `num_heads`), so gin's
  `BOTTLENECK_KWARGS = {'num_heads': 2}` and `make_bottleneck("attnpool", num_heads=2)` work.
  """

  bottleneck_name = "attnpool"  # Default: the lower-cased class name.

  def __init__(self, num_heads=1, name=None, **kwargs):
    super().__init__(name=name, **kwargs)
    if not isinstance(num_heads, int) or num_heads < 1:
      raise ValueError(f"num_heads={num_heads!r} is not accepted; accepted: an int >= 1.")
    self.num_heads = num_heads
    # One score per head and position: C weights (+1 bias) per head, shared over positions.
    self.score = tf.keras.layers.Dense(num_heads, name="score", dtype=self.dtype_policy)

  def call(self, inputs, training=False):
    del training  # Same in training and inference.
    height, width, channels = inputs.shape[1:]
    positions = tf.reshape(inputs, [-1, height * width, channels])
    weights = tf.nn.softmax(self.score(positions), axis=1)  # [B, H*W, heads], sums to 1 over H*W.
    pooled = tf.einsum("bph,bpc->bhc", weights, positions)
    return tf.reshape(pooled, [-1, self.num_heads * channels])

  def layer_costs(self, input_shape):
    # Accounting asks every bottleneck for its forward FLOPs per example and output width:
    # scoring (a C -> heads matmul at each position) and the weighted sums (the same size).
    height, width, channels = input_shape
    flops = 2 * height * width * channels * self.num_heads * 2
    return [(self, flops)], (self.num_heads * channels,)

  def get_config(self):
    return dict(super().get_config(), num_heads=self.num_heads)


# ------------------------------------------------------------------ a run with it

# MinAtar breakout (minatar.gin: DQN, MinAtar's 3x3 conv, one 128-unit hidden layer), shrunk.
BUDGETS = {
    "full": ["Runner.num_iterations = 5", "Runner.training_steps = 10000",
             "DQNAgent.min_replay_history = 5000", "DQNAgent.epsilon_decay_period = 25000",
             "DQNAgent.update_period = 4", "DQNAgent.target_update_period = 4000",
             "Runner.replay_capacity = 50000"],
    "smoke": ["Runner.num_iterations = 1", "Runner.training_steps = 150",
              "DQNAgent.min_replay_history = 100", "Runner.replay_capacity = 1000",
              "Runner.dormant_batch_size = 32", "Runner.export_policies = False"],
}


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--num_heads", type=int, default=2)
  parser.add_argument("--width_scale", type=float, default=1.0)
  parser.add_argument("--out", default="runs/example_custom_bottleneck")
  parser.add_argument("--smoke", action="store_true", help="a tiny budget that checks the plumbing")
  return parser.parse_args()


def main():
  args = parse_args()
  print(f"registered bottlenecks: {', '.join(tfgap.networks.list_bottlenecks())}", flush=True)

  # The run. The class is registered in this process, so a gin binding can name it; a gin file
  # used from the command line would add `import my_project.bottlenecks` to register it there.
  bindings = BUDGETS["smoke" if args.smoke else "full"] + [
      "BOTTLENECK = 'attnpool'",
      f"BOTTLENECK_KWARGS = {{'num_heads': {args.num_heads}}}",
      f"WIDTH_SCALE = {args.width_scale}",
      "Runner.progress_bar = False",
  ]
  root_dir = os.path.join(args.out, "run")
  records = train.train(root_dir, ["minatar.gin"], bindings)
  last = records[-1]
  print(f"trained: {root_dir}, bottleneck {last['bottleneck']}, {last['env_steps']} agent steps, "
        f"score {last['score']:.2f} ({last['train_episodes']} training episodes in the last "
        f"iteration)", flush=True)
  dormant = {k: round(v, 3) for k, v in last.items() if k.startswith("dormant/")}
  if dormant:
    print(f"dormant fractions (its heads' scores are not neurons, so no bottleneck group): "
          f"{json.dumps(dormant)}", flush=True)

  # Its parameters and FLOPs next to the paper's two extremes, for the same run config: the
  # bottleneck's own parameters are the score weights, and psi's input stays heads * C wide.
  for name, kwargs in (("flatten", {}), ("gap", {}), ("attnpool", {"num_heads": args.num_heads})):
    table = describe.describe_config(
        ["minatar.gin"], bindings + [f"BOTTLENECK = '{name}'", f"BOTTLENECK_KWARGS = {kwargs}"])
    print(f"\n{table}", flush=True)


if __name__ == "__main__":
  main()
