"""Agent steps per second of every tfgap environment family, single and batched, in one run.

    python benchmarks/envs.py                 # all families, 1/2/8 envs, ~3 s per row
    python benchmarks/envs.py --families atari --seconds 5

Random actions; an "agent step" is one action of one batch entry (a batched call of 8 envs
counts 8). Rows are timed one after the other in this process, so compare ratios within one
run: the machine is shared and absolute numbers move with its load.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from tfgap import envs  # noqa: E402

# (family label, suite, name, overrides) per row group.
CONFIGS = {
    "atari": [
        ("atari gymnasium", "atari", "Pong", {"backend": "gymnasium"}),
        ("atari vector", "atari", "Pong", {"backend": "vector"}),
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
}


def random_actions(spec, num_envs, rng):
  shape = (num_envs,) + spec.shape if num_envs > 1 else spec.shape
  if np.issubdtype(spec.dtype, np.integer):
    return rng.randint(spec.minimum, spec.maximum + 1, size=shape).astype(spec.dtype)
  return rng.uniform(spec.minimum, spec.maximum, size=shape).astype(spec.dtype)


def measure(suite, name, num_envs, overrides, seconds, warmup_calls=5):
  """Returns (agent steps/s, seconds to build) for one configuration."""
  start = time.perf_counter()
  env = envs.make(suite, name, num_envs=num_envs, seed=0, **overrides)
  env.reset()
  build = time.perf_counter() - start
  rng = np.random.RandomState(0)
  spec = env.action_spec()
  pool = [random_actions(spec, num_envs, rng) for _ in range(64)]
  for k in range(warmup_calls):
    env.step(pool[k % len(pool)])
  calls = 0
  start = time.perf_counter()
  while True:
    env.step(pool[calls % len(pool)])
    calls += 1
    elapsed = time.perf_counter() - start
    if elapsed >= seconds:
      break
  env.close()
  return calls * num_envs / elapsed, build


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--families", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
  parser.add_argument("--num_envs", nargs="+", type=int, default=[1, 2, 8])
  parser.add_argument("--seconds", type=float, default=3.0,
                      help="timed seconds per row (after a few warm-up steps)")
  args = parser.parse_args(argv)

  rows = []
  print(f"{'family':<22} {'envs':>4} {'steps/s':>10} {'build s':>8}", flush=True)
  for family in args.families:
    for label, suite, name, overrides in CONFIGS[family]:
      for n in args.num_envs:
        # DMC renders one frame per agent step: 8 envs would only repeat the 1-env rate.
        seconds = args.seconds * (2 if suite == "dmc" else 1)
        rate, build = measure(suite, name, n, overrides, seconds)
        rows.append((label, n, rate))
        print(f"{label:<22} {n:>4} {rate:>10.0f} {build:>8.2f}", flush=True)

  rates = {(label, n): rate for label, n, rate in rows}
  base = rates.get(("atari gymnasium", 1))
  print("\n| family | envs | agent steps/s |\n|---|---|---|")
  for label, n, rate in rows:
    print(f"| {label} | {n} | {rate:,.0f} |")
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
