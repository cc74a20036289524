r"""Evidence that DER learns: Atari100K with Dopamine's defaults, scored as the paper scores it.

    python benchmarks/atari100k.py KungFuMaster --bottleneck gap
    python benchmarks/atari100k.py Hero --bottleneck flatten --seed 1 --root_dir runs/bench

Runs DER (tfgap/launch/configs/der.gin: Dopamine's DER.gin and full Rainbow defaults) for `--steps`
agent steps (100k: 400k frames) on the Atari100K protocol, evaluating over 100 episodes after every
10k-step iteration as Dopamine's DataEfficientAtariRunner does, and prints the final score, its
human-normalised value, the published DER score of the game (van Hasselt et al. 2019) and the wall
time. A run is an ordinary tfgap run directory: interrupted, the same command resumes it from its
last checkpoint (one per iteration). This is a benchmark, not a test: on 2 CPU cores a 100k run
takes hours.
"""

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe_machine  # noqa: E402  pylint: disable=g-import-not-at-top

from tfgap.launch import runtime  # noqa: E402  pylint: disable=g-import-not-at-top

# Published DER scores (van Hasselt et al. 2019, "When to use parametric models in reinforcement
# learning?", Atari100K table) for the games this benchmark is documented with.
PUBLISHED_DER = {"KungFuMaster": 14346.1, "Hero": 6857.0}


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("game", help="an Atari100K game, e.g. KungFuMaster")
  parser.add_argument("--bottleneck", default="flatten", help="flatten, gap, softmoe, ...")
  parser.add_argument("--steps", type=int, default=100_000, help="agent steps (multiple of 10k)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--root_dir", default="runs/atari100k",
                      help="runs go to ROOT/<game>_<bottleneck>_s<seed>")
  parser.add_argument("--eval_episodes", type=int, default=100)
  parser.add_argument("--max_eval_episode_steps", type=int, default=None,
                      help="cap evaluation episodes (smoke runs only; published scores use none)")
  parser.add_argument("--progress_bar", action="store_true")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  runtime.prepare_process()  # oneDNN on, as the training CLI runs.
  from tfgap.envs import games  # pylint: disable=g-import-not-at-top
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  # Iterations of 10k agent steps as DER.gin; a shorter --steps (smoke runs) is one iteration.
  iterations, per_iteration = (args.steps // 10_000, 10_000) if args.steps >= 10_000 else (
      1, args.steps)
  root = pathlib.Path(args.root_dir) / f"{args.game}_{args.bottleneck}_s{args.seed}"
  print(describe_machine())
  print(f"DER on Atari100K {args.game}, bottleneck {args.bottleneck}, seed {args.seed}: "
        f"{iterations} x {per_iteration:,} agent steps, {args.eval_episodes} evaluation episodes per "
        f"iteration; run directory {root}", flush=True)
  train.quiet_logs()
  start = time.time()
  train.train(str(root), ["der.gin"], [
      f"Runner.game = '{args.game}'", f"Runner.seed = {args.seed}",
      f"Runner.num_iterations = {iterations}", f"Runner.training_steps = {per_iteration}",
      f"Runner.evaluation_episodes = {args.eval_episodes}",
      f"BOTTLENECK = '{args.bottleneck}'",
      f"Runner.progress_bar = {args.progress_bar}"] + (
          [f"Runner.eval_env_kwargs = {{'max_episode_steps': {args.max_eval_episode_steps}}}"]
          if args.max_eval_episode_steps else []))
  wall = time.time() - start
  records = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]
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
  print("  per iteration: " + ", ".join(
      f"{r['iteration']}: {r['score']:.0f}" for r in records if r.get("score") is not None))


if __name__ == "__main__":
  main()
