"""Agent steps per second of every tfgap environment family, single and batched, in one run.

    python benchmarks/envs.py                 # all families, 1/2/8 envs, ~3 s per row
    python benchmarks/envs.py --families atari --seconds 5

Random actions; an "agent step" is one action of one batch entry (a batched call of 8 envs
counts 8). All rows of a family stay alive and are timed in interleaved short rounds (median
reported), so load from other processes hits them alike; still, compare ratios within one run:
absolute numbers move with the machine's load.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from absl import logging as absl_logging  # noqa: E402

from tfgap import envs  # noqa: E402

# dm_control's cheetah model warns about a deprecated attribute on every load.
absl_logging.set_verbosity(absl_logging.ERROR)

class RawAleVector:
  """ale_py's AtariVectorEnv alone (no tfgap wrapper, no stacking), to show the wrapper's cost."""

  def __init__(self, name, num_envs):
    from ale_py.vector_env import AtariVectorEnv
    from tfgap.envs import atari, games, protocols
    _, rom = games.resolve_atari_game(name)
    protocol = protocols.resolve("atari", "train", {})
    self._vec = AtariVectorEnv(**atari.vector_env_kwargs(rom, num_envs, protocol))
    self._n = int(self._vec.single_action_space.n)

  def reset(self):
    self._vec.reset(seed=0)

  def action_spec(self):
    from tf_agents.specs import array_spec
    return array_spec.BoundedArraySpec((), np.int64, 0, self._n - 1)

  def step(self, action):
    self._vec.step(np.atleast_1d(action).astype(np.int64))

  def close(self):
    self._vec.close()


# (family label, suite, name, overrides) per row group.
CONFIGS = {
    "atari": [
        ("atari gymnasium", "atari", "Pong", {"backend": "gymnasium"}),
        ("atari vector", "atari", "Pong", {"backend": "vector"}),
        ("ale vector, no tfgap", "raw", "Pong", {}),
    ],
    "atari100k": [
        ("atari100k gymnasium", "atari100k", "Breakout", {"backend": "gymnasium"}),
    ],
    "procgen": [
        ("procgen", "procgen", "coinrun", {}),
    ],
    "dmc": [
        ("dmc shadow default", "dmc", "cheetah-run", {}),
        ("dmc shadow_size=512", "dmc", "cheetah-run", {"shadow_size": 512}),
    ],
    "minatar": [
        ("minatar breakout", "minatar", "breakout", {}),
    ],
}


def random_actions(spec, num_envs, rng):
  shape = (num_envs,) + spec.shape if num_envs > 1 else spec.shape
  if np.issubdtype(spec.dtype, np.integer):
    return rng.randint(spec.minimum, spec.maximum + 1, size=shape).astype(spec.dtype)
  return rng.uniform(spec.minimum, spec.maximum, size=shape).astype(spec.dtype)


class _Row:
  """One configuration kept alive for the whole family, so its rounds interleave with the others."""

  def __init__(self, label, suite, name, num_envs, overrides):
    self.label, self.num_envs = label, num_envs
    start = time.perf_counter()
    if suite == "raw":
      self.env = RawAleVector(name, num_envs)
    else:
      self.env = envs.make(suite, name, num_envs=num_envs, seed=0, **overrides)
    self.env.reset()
    self.build_s = time.perf_counter() - start
    rng = np.random.RandomState(0)
    spec = self.env.action_spec()
    self.pool = [random_actions(spec, num_envs, rng) for _ in range(64)]
    self.calls = 0
    self.rates = []
    self.cpu_rates = []
    for _ in range(5):  # Warm-up (first renders, caches).
      self.step()

  def step(self):
    self.env.step(self.pool[self.calls % len(self.pool)])
    self.calls += 1

  def run(self, seconds):
    calls = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    while True:
      self.step()
      calls += 1
      elapsed = time.perf_counter() - start
      if elapsed >= seconds:
        break
    self.rates.append(calls * self.num_envs / elapsed)
    # Steps per CPU-second of this process (all its threads): the cost per step, which the
    # machine's load hardly changes.
    self.cpu_rates.append(calls * self.num_envs / max(time.process_time() - cpu_start, 1e-9))


def measure_family(family, num_envs, seconds, rounds):
  """Agent steps/s (median over interleaved rounds) of every row of `family`."""
  rows = [_Row(label, suite, name, n, overrides)
          for label, suite, name, overrides in CONFIGS[family] for n in num_envs]
  # Round-robin short runs: load from other processes on a shared machine then hits every row
  # alike, and the median drops the rounds it hit hardest.
  for _ in range(rounds):
    for row in rows:
      row.run(seconds / rounds)
  for row in rows:
    row.env.close()
  return [(row.label, row.num_envs, float(np.median(row.rates)), float(np.median(row.cpu_rates)),
           row.build_s) for row in rows]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--families", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
  parser.add_argument("--num_envs", nargs="+", type=int, default=[1, 2, 8])
  parser.add_argument("--seconds", type=float, default=4.0,
                      help="timed seconds per row, split into --rounds interleaved runs")
  parser.add_argument("--rounds", type=int, default=8)
  args = parser.parse_args(argv)

  rows = []
  print(f"{'family':<22} {'envs':>4} {'steps/s':>10} {'per cpu-s':>10} {'build s':>8}",
        flush=True)
  for family in args.families:
    # DMC renders one frame per agent step: give it longer rounds.
    seconds = args.seconds * (2 if family == "dmc" else 1)
    for label, n, rate, cpu, build in measure_family(family, args.num_envs, seconds,
                                                     args.rounds):
      rows.append((label, n, rate, cpu))
      print(f"{label:<22} {n:>4} {rate:>10.0f} {cpu:>10.0f} {build:>8.2f}", flush=True)

  rates = {(label, n): rate for label, n, rate, _ in rows}
  base = rates.get(("atari gymnasium", 1))
  print(f"\n| family | envs | agent steps/s | steps per CPU-second |\n|---|---|---|---|")
  for label, n, rate, cpu in rows:
    print(f"| {label} | {n} | {rate:,.0f} | {cpu:,.0f} |")
  if base:
    print()
    for n in args.num_envs:
      if ("atari vector", n) in rates:
        print(f"atari vector x{n} / one wrapped gymnasium env: "
              f"{rates[('atari vector', n)] / base:.2f}x")
  shadow = [(rates.get(("dmc shadow_size=512", n)), rates.get(("dmc shadow default", n)))
            for n in args.num_envs]
  for n, (fast, slow) in zip(args.num_envs, shadow):
    if fast and slow:
      print(f"dmc shadow_size=512 / default, {n} env(s): {fast / slow:.2f}x")
  return 0


if __name__ == "__main__":
  sys.exit(main())
