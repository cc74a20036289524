"""Sparse training: update-time overhead of GMP, static, SET and RigL over dense, and live
parameters per part for each scope.

    python benchmarks/sparse.py                 # nature x1, 20 timed updates per method, ~3 min
    python benchmarks/sparse.py --updates 5 --output table.md

The DQN agent's compiled update (`agent.update`: forward, backward, Adam, the sparsity hook) on a
Nature Q-network over 84x84x4 uint8 frames, 18 actions, batch 32, the agents' default compilation
(plain tf.function on CPU). Same network for every row: `flatten` (dense) or `sparse` with each
method at its default settings (psi scope; static/SET/RigL sparsity 0.9 ERK, GMP 0.95 uniform).
"update" is an update without a topology/mask change, "topology" an update that also drops and
regrows (SET/RigL with update_freq=1; GMP: tfmot's mask update with frequency 1 inside its
schedule). Rows are timed round-robin and reported as the median, so load changes on the shared
machine hit every method alike; compare ratios to dense, not absolute times across runs.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tf_agents.specs import tensor_spec  # noqa: E402
from tf_agents.trajectories import time_step as ts  # noqa: E402

from tfgap import agents  # noqa: E402
from tfgap import networks  # noqa: E402
from tfgap.networks import sparse  # noqa: E402

import harness  # noqa: E402  (benchmarks/harness.py)

tf.get_logger().setLevel("ERROR")

OBS = tensor_spec.BoundedTensorSpec((84, 84, 4), tf.uint8, 0, 255)
ACT = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 17)
METHODS = ("dense", "gmp", "static", "set", "rigl")


def _options(method, scope, topology):
  if method == "dense":
    return "flatten", {}
  options = {"method": method, "scope": scope}
  if topology and method in ("set", "rigl"):
    options.update(update_freq=1, start_step=0, end_step=1_000_000)
  if method == "gmp":  # Inside the schedule from the start; masks every update when topology.
    options.update(start_step=0, end_step=1_000_000, update_freq=1 if topology else 1000)
  return "sparse", options


def _agent(method, scope, topology):
  bottleneck, options = _options(method, scope, topology)
  net = networks.build_q_network(OBS, ACT, bottleneck=bottleneck, bottleneck_kwargs=options)
  agent = agents.DQNAgent(ts.time_step_spec(OBS), ACT, net, min_replay_history=0)
  sparse.bind_optimizer(net, agent.optimizer)
  return agent


def _batch(rng, n=32):
  obs = rng.integers(0, 256, (n, 84, 84, 4)).astype(np.uint8)
  return {"observation": obs, "action": rng.integers(0, 18, n), "reward": rng.normal(size=n),
          "discount": np.full(n, 0.99), "next_observation": obs[::-1].copy()}


def time_updates(updates, scope="psi"):
  """{(method, kind): median seconds per update}, kind "update" or "topology"."""
  rng = np.random.default_rng(0)
  batch = _batch(rng)
  rows = {}
  for method in METHODS:
    rows[(method, "update")] = _agent(method, scope, False)
    if method not in ("dense", "static"):
      rows[(method, "topology")] = _agent(method, scope, True)
  updates_of = {key: (lambda agent=agent: agent.update(batch)[0].numpy())
                for key, agent in rows.items()}
  return harness.medians(harness.interleaved(updates_of, updates, warmup=2))


def part_table():
  """Markdown: live parameters per part, per method and scope (at the target sparsity)."""
  lines = ["| method | scope | phi live | bottleneck live | psi live | total live | "
           "sparse kernels' sparsity |", "|---|---|---:|---:|---:|---:|---:|"]
  for method in METHODS:
    for scope in (("-",) if method == "dense" else ("psi", "phi_psi")):
      bottleneck, options = _options(method, scope if scope != "-" else "psi", False)
      if method == "gmp":  # Report GMP at its target: start its schedule and step past the end.
        options.update(start_step=0, end_step=1, update_freq=1)
      net = networks.build_q_network(OBS, ACT, bottleneck=bottleneck, bottleneck_kwargs=options)
      net.create_variables()
      if method == "gmp":
        from tfgap.networks import pruning  # pylint: disable=g-import-not-at-top
        pruning.set_pruning_step(net, 0)  # The training call advances it to end_step = 1.
        net(np.zeros((1, 84, 84, 4), np.uint8), training=True)
      m = sparse.part_metrics(net)
      total = sum(m[f"live_params/{p}"] for p in ("phi", "bottleneck", "psi"))
      lines.append(f"| {method} | {scope} | {m['live_params/phi']:,} | "
                   f"{m['live_params/bottleneck']:,} | {m['live_params/psi']:,} | {total:,} | "
                   f"{m.get('sparsity', 0.0):.3f} |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--updates", type=int, default=20, help="timed updates per row")
  parser.add_argument("--output", default=None, help="also write the tables to this file")
  args = parser.parse_args(argv)
  times = time_updates(args.updates)
  dense = times[("dense", "update")]
  lines = ["| method | update (ms) | vs dense | topology update (ms) | vs dense |",
           "|---|---:|---:|---:|---:|"]
  for method in METHODS:
    update = times[(method, "update")]
    topo = times.get((method, "topology"))
    topo_text = f"{topo * 1e3:.1f} | {topo / dense:.2f}x" if topo else "- | -"
    lines.append(f"| {method} | {update * 1e3:.1f} | {update / dense:.2f}x | {topo_text} |")
  text = "\n".join(lines) + "\n\n" + part_table()
  harness.emit(text, args.output)
  return 0


if __name__ == "__main__":
  sys.exit(main())
