"""MinAtar through tfgap: environment steps/s, DQN updates/s and end-to-end training steps/s.

    python benchmarks/minatar_throughput.py                       # all three parts, ~3-4 minutes
    python benchmarks/minatar_throughput.py --parts env update --scales 1 8

1. env: agent steps/s of `tfgap.envs.make("minatar", game)` (1 and 8 envs, random actions)
   against the bare `minatar.Environment` (act + state) of the same game.
2. update: compiled double-DQN updates/s (`DQNAgent.update`, batch 32) on the minatar encoder
   (VALID, as minatar.gin) with flatten and gap at each width scale; variants interleave in
   rounds so the machine's load hits them alike.
3. loop: agent steps/s of the whole training loop (`tfgap.launch.train`, minatar.gin: an update
   every step, or every `--update_period`) in a second iteration, after tracing; the number that
   says how long a MinAtar study takes.

Only ratios within one run mean much on a shared machine; the script prints the CPU model and
its vector extensions, and the load average before and after.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

GAMES = ("breakout", "space_invaders")


def cpu_summary():
  """CPU model name, core count and the vector extensions TensorFlow can use."""
  model, flags = "unknown", set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name") and model == "unknown":
          model = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and not flags:
          flags = set(line.split(":", 1)[1].split())
  except OSError:
    pass
  wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
  have = [f for f in wanted if f in flags]
  return f"{model}, {os.cpu_count()} cores, {' '.join(have) or 'no avx2'}"


def _timed(step, seconds):
  """(calls per second, calls per CPU-second of this process): the second hardly moves with load."""
  calls, start, cpu = 0, time.perf_counter(), time.process_time()
  while time.perf_counter() - start < seconds:
    step()
    calls += 1
  wall = time.perf_counter() - start
  return calls / wall, calls / max(time.process_time() - cpu, 1e-9)


def bench_env(seconds, rounds):
  """Agent steps/s per (game, variant), median over interleaved rounds."""
  import minatar  # pylint: disable=g-import-not-at-top
  from tfgap import envs  # pylint: disable=g-import-not-at-top
  rows = []
  for game in GAMES:
    rng = np.random.RandomState(0)
    bare = minatar.Environment(game)
    bare.seed(0)
    bare.reset()

    def bare_step(bare=bare):
      _, terminal = bare.act(rng.randint(6))
      bare.state()
      if terminal:
        bare.reset()

    variants = [("bare minatar.Environment", 1, bare_step)]
    for n in (1, 8):
      env = envs.make("minatar", game, num_envs=n, seed=0)
      env.reset()
      pool = [rng.randint(0, 6, size=(n,) if n > 1 else ()) for _ in range(64)]
      counter = iter(range(10**12))
      variants.append((f"tfgap, {n} env{'s' if n > 1 else ''}", n,
                       lambda env=env, pool=pool, counter=counter:
                       env.step(pool[next(counter) % 64])))
    rates = {label: [] for label, _, _ in variants}
    for _ in range(rounds):
      for label, n, step in variants:
        rates[label].append(n * np.asarray(_timed(step, seconds / rounds)))
    rows.extend((game, label) + tuple(np.median(r, axis=0)) for label, r in rates.items())
  return rows


def bench_update(scales, seconds, rounds):
  """Updates/s per (scale, bottleneck) on one fixed random batch of 10x10x4 frames."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_agents.specs import tensor_spec  # pylint: disable=g-import-not-at-top
  from tf_agents.trajectories import time_step as ts  # pylint: disable=g-import-not-at-top
  from tfgap import agents, networks  # pylint: disable=g-import-not-at-top
  obs_spec = tensor_spec.BoundedTensorSpec((10, 10, 4), tf.uint8, 0, 255)
  action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 5)
  rng = np.random.RandomState(0)
  batch = {"observation": (rng.rand(32, 10, 10, 4) < 0.1).astype(np.uint8) * 255,
           "next_observation": (rng.rand(32, 10, 10, 4) < 0.1).astype(np.uint8) * 255,
           "action": rng.randint(0, 6, 32), "reward": rng.rand(32).astype(np.float32),
           "discount": np.full(32, 0.99, np.float32)}
  variants = []
  for scale in scales:
    for bottleneck in ("flatten", "gap"):
      net = networks.build_q_network(obs_spec, action_spec, encoder="minatar", width_scale=scale,
                                     padding="VALID", bottleneck=bottleneck, head_units=(128,))
      agent = agents.DQNAgent(ts.time_step_spec(obs_spec), action_spec, net,
                              learning_rate=2.5e-4, update_period=1, target_update_period=1000,
                              min_replay_history=5000, epsilon_train=0.1,
                              epsilon_decay_period=100000, double=False)
      agent.initialize()
      for _ in range(20):  # Trace and warm up.
        agent.update(batch)
      params = sum(int(np.prod(v.shape)) for v in net.trainable_variables)
      variants.append(((scale, bottleneck, params), lambda agent=agent: agent.update(batch)))
  rates = {key: [] for key, _ in variants}
  for _ in range(rounds):
    for key, step in variants:
      rates[key].append(_timed(step, seconds / rounds))
  return [key + tuple(np.median(r, axis=0)) for key, r in rates.items()]


def bench_loop(scales, steps, update_period):
  """Agent steps/s of the training loop's second iteration (an update every `update_period`)."""
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  rows = []
  for scale in scales:
    for bottleneck in ("flatten", "gap"):
      with tempfile.TemporaryDirectory() as root:
        train.train(os.path.join(root, "run"), ["minatar.gin"], [
            "Runner.num_iterations = 2", f"Runner.training_steps = {steps}",
            "Runner.progress_bar = False", "Runner.export_policies = False",
            "Runner.dormant_batch_size = 0", f"Runner.replay_capacity = {2 * steps}",
            "DQNAgent.min_replay_history = 500", f"WIDTH_SCALE = {float(scale)}",
            f"DQNAgent.update_period = {update_period}",
            f"BOTTLENECK = '{bottleneck}'"])
        lines = pathlib.Path(root, "run", "metrics.jsonl").read_text().splitlines()
        rows.append((scale, bottleneck, json.loads(lines[-1])["steps_per_sec"]))
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--parts", nargs="+", default=["env", "update", "loop"],
                      choices=["env", "update", "loop"])
  parser.add_argument("--scales", nargs="+", type=float, default=[1, 8])
  parser.add_argument("--seconds", type=float, default=6.0,
                      help="timed seconds per variant, split into --rounds interleaved runs")
  parser.add_argument("--rounds", type=int, default=6)
  parser.add_argument("--loop_steps", type=int, default=3000,
                      help="agent steps per training iteration in the loop part")
  parser.add_argument("--update_period", type=int, default=1,
                      help="agent steps per update in the loop part (minatar.gin: 1)")
  args = parser.parse_args(argv)
  from tfgap.launch import runtime  # pylint: disable=g-import-not-at-top
  runtime.prepare_process()
  print(f"# {cpu_summary()}; load average {os.getloadavg()[0]:.1f}", flush=True)
  if "env" in args.parts:
    print("\n| game | variant | agent steps/s | per CPU-second |\n|---|---|---:|---:|")
    for game, label, rate, cpu in bench_env(args.seconds, args.rounds):
      print(f"| {game} | {label} | {rate:,.0f} | {cpu:,.0f} |", flush=True)
  if "update" in args.parts:
    print("\n| scale | bottleneck | params | updates/s | per CPU-second |\n"
          "|---|---|---:|---:|---:|")
    for scale, bottleneck, params, rate, cpu in bench_update(args.scales, args.seconds,
                                                             args.rounds):
      print(f"| x{scale:g} | {bottleneck} | {params:,} | {rate:,.0f} | {cpu:,.0f} |",
            flush=True)
  if "loop" in args.parts:
    print(f"\n| scale | bottleneck | agent steps/s (update period {args.update_period}) | "
          "hours per 1M steps |\n|---|---|---:|---:|")
    for scale, bottleneck, rate in bench_loop(args.scales, args.loop_steps, args.update_period):
      print(f"| x{scale:g} | {bottleneck} | {rate:,.0f} | {1e6 / rate / 3600:.1f} |",
            flush=True)
  print(f"\n# load average {os.getloadavg()[0]:.1f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
