"""Score a policy a tfgap run exported, with plain TensorFlow and the run's environment protocol.

    python examples/evaluate_saved_policy.py runs/my_run --episodes 10
    python examples/evaluate_saved_policy.py              # trains a short MinAtar run first

Use this when you want a trained agent's scores (or to ship it) outside tfgap's training code. A
run of `python -m tfgap.launch.train` exports its greedy policy after every iteration as a
TF-Agents PolicySaver SavedModel (`RUN/policies/iter_NNNNNN`). Loading it needs TensorFlow and
tensorflow_probability only: the network, the bottleneck and the agent are baked into the graph.
What the policy does not carry is the environment protocol it was trained under (frame skip,
sticky actions, 84x84 grayscale, frame stack...): `tfgap.envs` builds that, with the suite, game
and overrides the run's `config.gin` names. (`python -m tfgap.launch.evaluate RUN` does the
same from the command line, and records a video.)
"""

# Before TensorFlow is imported: oneDNN CPU kernels on, quiet C++ logs, a stack check.
from tfgap.launch import runtime

runtime.prepare_process()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
# PolicySaver's signatures refer to tensorflow_probability's distribution specs; importing it
# registers them, so tf.saved_model.load can rebuild the policy's outputs.
import tensorflow_probability  # noqa: E402,F401  pylint: disable=unused-import

BUDGETS = {
    # When no run is given: a short MinAtar breakout run (minatar.gin, shrunk), then 10 episodes.
    "full": dict(bindings=["Runner.num_iterations = 2", "Runner.training_steps = 10000",
                           "DQNAgent.min_replay_history = 5000",
                           "DQNAgent.epsilon_decay_period = 10000",
                           "Runner.replay_capacity = 20000"],
                 episodes=10, max_episode_steps=None),
    "smoke": dict(bindings=["Runner.num_iterations = 1", "Runner.training_steps = 150",
                            "DQNAgent.min_replay_history = 100", "Runner.replay_capacity = 1000",
                            "Runner.dormant_batch_size = 0"],
                  episodes=2, max_episode_steps=200),
}


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("run", nargs="?", default=None,
                      help="a tfgap.launch.train run directory (default: train a short one)")
  parser.add_argument("--episodes", type=int, default=None)
  parser.add_argument("--max_episode_steps", type=int, default=None,
                      help="cap on an episode's agent steps (default: the protocol's)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default="runs/example_evaluate_saved_policy")
  parser.add_argument("--smoke", action="store_true", help="a tiny budget that checks the plumbing")
  return parser.parse_args()


def train_short_run(root_dir, bindings):
  """A short tfgap run of MinAtar breakout, so this page has a policy to load on its own."""
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  train.train(root_dir, ["minatar.gin"], bindings + ["Runner.progress_bar = False"])
  return root_dir


def main():
  args = parse_args()
  budget = BUDGETS["smoke" if args.smoke else "full"]
  episodes = args.episodes or budget["episodes"]
  max_episode_steps = args.max_episode_steps or budget["max_episode_steps"]
  run_dir = args.run or train_short_run(os.path.join(args.out, "run"), budget["bindings"])

  # 1. The policy: the newest export of the run, loaded by TensorFlow alone.
  exports = sorted(pathlib.Path(run_dir, "policies").glob("iter_*"))
  if not exports:
    raise SystemExit(f"{run_dir} has no policies/iter_* (was it trained with "
                     "Runner.export_policies = False?)")
  policy_dir = exports[-1]
  policy = tf.saved_model.load(str(policy_dir))
  print(f"policy: {policy_dir}", flush=True)

  # 2. The environment: the protocol the run's config names, built by tfgap.envs in evaluation
  # mode (Atari: unclipped rewards, i.e. raw game scores) with a seed the run never trained on.
  import gin  # pylint: disable=g-import-not-at-top
  import tfgap.envs  # pylint: disable=g-import-not-at-top
  from tfgap.launch import experiment  # pylint: disable=g-import-not-at-top
  config = experiment.load_config(os.path.join(run_dir, "config.gin"))
  gin.clear_config()  # load_config leaves the run's bindings parsed; nothing else needs them.
  overrides = dict(config.eval_env_kwargs or {})
  if max_episode_steps:
    overrides["max_episode_steps"] = max_episode_steps
  env = tfgap.envs.make_tf(config.suite, config.game, seed=args.seed + 20_000, mode="eval",
                           **overrides)
  print(f"environment: {config.suite}/{config.game}, evaluation mode, overrides {overrides}",
        flush=True)

  # 3. Play. The TFPyEnvironment hands out batched time steps, which is what the policy takes.
  # Scores come from the environment's own episode records (the raw game score, whatever the
  # agent was trained on).
  returns, lengths = [], []
  time_step = env.reset()
  env.pyenv.pop_episode_stats()
  while len(returns) < episodes:
    time_step = env.step(policy.action(time_step).action)
    for episode in env.pyenv.pop_episode_stats():
      returns.append(episode["return"])
      lengths.append(episode["length"])
      print(f"episode {len(returns)}: return {episode['return']:.1f}, {episode['length']} steps",
            flush=True)
  env.close()

  scores = np.asarray(returns[:episodes])
  summary = {"policy": str(policy_dir), "suite": config.suite, "game": config.game,
             "episodes": len(scores), "mean": float(scores.mean()), "std": float(scores.std()),
             "min": float(scores.min()), "max": float(scores.max()),
             "mean_length": float(np.mean(lengths[:episodes]))}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "scores.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=1)
  print(f"scores: {summary['episodes']} episodes of {config.suite}/{config.game}: mean "
        f"{summary['mean']:.2f}, std {summary['std']:.2f}, min {summary['min']:.1f}, max "
        f"{summary['max']:.1f}", flush=True)


if __name__ == "__main__":
  main()
