r"""Evidence that DER learns: Atari100K with Dopamine's defaults, scored as the paper scores it.

    python benchmarks/atari100k.py KungFuMaster --bottleneck gap
    python benchmarks/atari100k.py Hero --bottleneck flatten --seed 1 --root_dir runs/bench

Runs DER (tfgap/launch/configs/der.gin: Dopamine's DER.gin and full Rainbow defaults) for `--steps`
agent steps (100k: 400k frames) on the Atari100K protocol, evaluating over 100 episodes after the
last 10k-step iteration (`--eval_every_iteration`: after each, as Dopamine's runner does; on 2 cores
100 greedy episodes cost more than an iteration of training), and prints the final score, its
human-normalised value, the published DER score of the game (van Hasselt et al. 2019) and the wall
time. A run is an ordinary tfgap run directory: interrupted, the same command resumes it from its
last checkpoint (one per iteration). It trains in float32 as Dopamine does (`--precision
mixed_bfloat16` or `auto` to trade fidelity for speed). This is a benchmark, not a test: on 2 CPU
cores a 100k run takes 35-70 minutes (GAP / flatten, float32) on an otherwise idle machine.

One seed says little on its own: Agarwal et al. (2021) re-ran Dopamine's DER 100 times per game
and single runs spread widely (KungFuMaster from about random to about 16,000; their colab's
score-distribution plot, google-research/rliable, deep_rl_precipice_colab.ipynb).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  pylint: disable=g-import-not-at-top

# Published DER scores (van Hasselt et al. 2019, "When to use parametric models in reinforcement
# learning?", Atari100K table) for the games this benchmark is documented with.
PUBLISHED_DER = {"KungFuMaster": 14346.1, "Hero": 6857.0}


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("game", help="an Atari100K game, e.g. KungFuMaster")
  parser.add_argument("--bottleneck", default="flatten", help="flatten, gap, softmoe, ...")
  harness.add_run_flags(parser, 100_000, "agent steps (multiple of 10k)", 100,
                        "runs/atari100k", "runs go to ROOT/<game>_<bottleneck>_s<seed>")
  parser.add_argument("--max_eval_episode_steps", type=int, default=None,
                      help="cap evaluation episodes (smoke runs only; published scores use none)")
  parser.add_argument("--eval_every_iteration", action="store_true",
                      help="evaluate after every 10k-step iteration as Dopamine's runner does "
                           "(default: only after the last, whose score is the one reported)")
  parser.add_argument("--eval_num_envs", type=int, default=10,
                      help="evaluation envs stepped together (each plays its share of the "
                           "episodes from its first; the score is the same protocol)")
  parser.add_argument("--precision", default="float32",
                      help="float32 (Dopamine's, the default: the evidence run is Dopamine's "
                           "setting), mixed_bfloat16 or auto (bfloat16 where the CPU has it)")
  parser.add_argument("--acting", default="auto", help="Runner.acting: inline, thread or auto")
  return parser.parse_args(argv)


def main(argv=None):
  args = harness.start(parse_args, argv)
  from tfgap.envs import games  # pylint: disable=g-import-not-at-top
  # Iterations of 10k agent steps as DER.gin; a shorter --steps (smoke runs) is one iteration.
  iterations, per_iteration = (args.steps // 10_000, 10_000) if args.steps >= 10_000 else (
      1, args.steps)
  root = harness.run_dir(args, args.game, args.bottleneck)
  print(f"DER on Atari100K {args.game}, bottleneck {args.bottleneck}, seed {args.seed}: "
        f"{iterations} x {per_iteration:,} agent steps, {args.eval_episodes} evaluation episodes "
        f"{'per iteration' if args.eval_every_iteration else 'at the end'} over "
        f"{args.eval_num_envs} envs, precision {args.precision}, acting {args.acting}; run "
        f"directory {root}", flush=True)
  bindings = [f"Runner.eval_period = {1 if args.eval_every_iteration else iterations}",
              f"Runner.eval_num_envs = {args.eval_num_envs}",
              f"PRECISION = '{args.precision}'", f"Runner.acting = '{args.acting}'"]
  if args.max_eval_episode_steps:
    bindings.append(
        f"Runner.eval_env_kwargs = {{'max_episode_steps': {args.max_eval_episode_steps}}}")
  records, wall = harness.train(root, "der.gin", args, args.game, args.bottleneck, iterations,
                                per_iteration, bindings)
  last = records[-1]
  score = last["score"]
  normalized = games.human_normalized(args.game, score) if games.has_reference_scores(
      args.game) else None
  published = PUBLISHED_DER.get(args.game)
  print(f"game {args.game}, bottleneck {args.bottleneck}, seed {args.seed}, "
        f"{last['env_steps']:,} agent steps")
  print(f"  score (mean of {len(last['eval_returns'])} evaluation episodes): {score:.1f}")
  print(f"  human-normalised: {normalized:.3f}" if normalized is not None else
        "  human-normalised: n/a (no reference scores)")
  print(f"  published DER (van Hasselt et al. 2019): "
        f"{published:,.1f}" if published is not None else "  published DER: not tabulated here")
  print(f"  random: {games.reference_scores(args.game)[0]:,.1f}"
        if games.has_reference_scores(args.game) else "")
  print(f"  wall time of this invocation: {wall / 60:.1f} min "
        f"(resumed runs count only the part run now)")
  print(harness.per_iteration(records, "score"))


if __name__ == "__main__":
  main()
