r"""Learning parity of the two precisions: the same DER run in float32 and in mixed_bfloat16.

    python benchmarks/precision_learning.py                       # MinAtar breakout, 30k steps each
    python benchmarks/precision_learning.py --game space_invaders --steps 50000 --seed 1

Trains DER (tfgap/launch/configs/der.gin: Dopamine's DER settings) on a MinAtar game with the
MinAtar encoder (one VALID 3x3 conv, flatten) twice, once per precision, from the same seed, and
prints each run's training score per 10k-step iteration, its final greedy evaluation (20 episodes
over 4 envs), its updates and its wall time. bfloat16 keeps 8 mantissa bits, so the two runs do not
follow the same trajectory step for step; what this checks is that both learn alike (the
per-update numerical parity is a test: tests/agents/test_precision.py). Each run is an ordinary
tfgap run directory: interrupted, the same command resumes it.

Wall times are comparable only on a quiet machine; the machine line says what ran it.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  pylint: disable=g-import-not-at-top

PRECISIONS = ("float32", "mixed_bfloat16")


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--game", default="breakout", help="a MinAtar game")
  harness.add_run_flags(parser, 30_000, "agent steps per run (iterations of 10k)", 20,
                        "runs/precision_learning",
                        "runs go to ROOT/<game>_<precision>_s<seed>")
  parser.add_argument("--precisions", default=",".join(PRECISIONS))
  return parser.parse_args(argv)


def main(argv=None):
  args = harness.start(parse_args, argv)
  iterations, per_iteration = max(1, args.steps // 10_000), min(args.steps, 10_000)
  bindings = [
      "Runner.suite = 'minatar'", "ENCODER = 'minatar'", "PADDING = 'VALID'",
      f"Runner.eval_period = {iterations}", "Runner.eval_num_envs = 4",
      f"Runner.replay_capacity = {max(args.steps, 1000)}",
  ]
  rows = []
  for precision in [p.strip() for p in args.precisions.split(",") if p.strip()]:
    root = harness.run_dir(args, args.game, precision)
    print(f"DER on MinAtar {args.game}, {precision}, seed {args.seed}: {iterations} x "
          f"{per_iteration:,} agent steps; run directory {root}", flush=True)
    records, wall = harness.train(root, "der.gin", args, args.game, "flatten", iterations,
                                  per_iteration, bindings + [f"PRECISION = '{precision}'"])
    last = records[-1]
    print(harness.per_iteration(records, "train_return").replace("per iteration",
                                                                 "training score per iteration"))
    rows.append((precision, last, wall))
  print()
  print("| precision | agent steps | updates | last training score | greedy evaluation | "
        "wall time (this invocation) |")
  print("|---|---:|---:|---:|---:|---:|")
  for precision, last, wall in rows:
    evaluation = last.get("eval_return")
    print(f"| {precision} | {last['env_steps']:,} | {last['train_steps']:,} | "
          f"{last['train_return']:.2f} | "
          f"{'n/a' if evaluation is None else f'{evaluation:.2f}'} "
          f"({len(last.get('eval_returns') or [])} episodes) | {wall / 60:.1f} min |")


if __name__ == "__main__":
  main()
