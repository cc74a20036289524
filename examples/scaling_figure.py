"""The paper's scale figure, smallest version: a few MinAtar runs, then score against width.

    python examples/scaling_figure.py                        # widths x1, x2; flatten vs GAP
    python examples/scaling_figure.py --widths 1 2 4 --seeds 3

Use this to see the whole path from runs to the paper's main figure on one page. The paper trains
DQN and Rainbow with the encoder's channels scaled x1..x8 and plots the IQM of human-normalised
scores against the scale: with flatten the score falls as the encoder grows (the connection from
phi's H x W x C map into psi grows with it), with GAP it does not. Here the same grid runs on
MinAtar breakout (10x10 frames, a CPU suffices) with a small budget: each run is an ordinary
`tfgap.launch.train` run directory, and `tfgap.launch.report` turns the directories into the
figure. For the real grid on Atari with retries and resumption, use `tfgap-study run scale`.
"""

# Before TensorFlow is imported: oneDNN CPU kernels on, quiet C++ logs, a stack check.
from tfgap.launch import runtime

runtime.prepare_process()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from tfgap.launch import report  # noqa: E402
from tfgap.launch import train  # noqa: E402

GAME = "breakout"
BOTTLENECKS = ("flatten", "gap")
# minatar.gin (DQN with MinAtar's network) with the laptop study's shrunk schedule: learning
# after 5k steps, epsilon decayed over 25k, an update every 4 steps. The smoke budget only checks
# the plumbing: a handful of updates per run.
BUDGETS = {
    "full": dict(seeds=2, reps=2000, bindings=[
        "Runner.num_iterations = 4", "Runner.training_steps = 10000",
        "DQNAgent.min_replay_history = 5000", "DQNAgent.epsilon_decay_period = 25000",
        "DQNAgent.update_period = 4", "DQNAgent.target_update_period = 4000",
        "Runner.replay_capacity = 50000"]),
    "smoke": dict(seeds=1, reps=200, bindings=[
        "Runner.num_iterations = 2", "Runner.training_steps = 60",
        "DQNAgent.min_replay_history = 50", "Runner.replay_capacity = 500",
        "Runner.dormant_batch_size = 0"]),
}


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 2.0],
                      help="encoder width scales (the paper: 1 2 4 8)")
  parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration")
  parser.add_argument("--out", default="runs/example_scaling_figure")
  parser.add_argument("--smoke", action="store_true", help="a tiny budget that checks the plumbing")
  return parser.parse_args()


def main():
  args = parse_args()
  budget = BUDGETS["smoke" if args.smoke else "full"]
  seeds = args.seeds or budget["seeds"]
  runs_dir = os.path.join(args.out, "runs")

  # 1. The grid: one run directory per (bottleneck, width, seed). A rerun resumes each run from
  # its checkpoint (and skips finished ones), so an interrupted grid just continues.
  scores = {}
  for bottleneck in BOTTLENECKS:
    for width in args.widths:
      for seed in range(seeds):
        root_dir = os.path.join(runs_dir, f"{bottleneck}_x{width:g}_seed{seed}")
        start = time.time()
        records = train.train(root_dir, ["minatar.gin"], budget["bindings"] + [
            f"Runner.game = '{GAME}'", f"Runner.seed = {seed}",
            f"BOTTLENECK = '{bottleneck}'", f"WIDTH_SCALE = {width}",
            "Runner.progress_bar = False",
            "Runner.export_policies = False",  # Checkpoints hold the networks; no SavedModels.
        ])
        scores[root_dir] = records[-1]["score"]
        print(f"run {root_dir}: score {scores[root_dir]:.2f} after {records[-1]['env_steps']} "
              f"agent steps ({time.time() - start:.0f} s)", flush=True)

  # 2. The figure. MinAtar has no human reference scores (the Atari table would be wrong for
  # it), so scores are normalised as the laptop studies do: 0 is 0 points, 1 is the best final
  # score of any run here (at least 1 point, so that all-zero smoke runs still divide).
  best = max(max(scores.values()), 1.0)
  result = report.write_report(runs_dir, os.path.join(args.out, "report"), reps=budget["reps"],
                               references={GAME: (0.0, best)})
  figure = os.path.join(args.out, "report", "aggregate_vs_width.png")
  print(json.dumps({"runs": len(scores), "report": result.report, "figure": figure,
                    "problems": [str(p) for p in result.problems]}, indent=1), flush=True)
  print(f"figure: {figure}", flush=True)


if __name__ == "__main__":
  main()
