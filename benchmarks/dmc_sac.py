r"""SAC from pixels on DeepMind Control: does it learn (GAP vs flatten), and how fast is its update.

    python benchmarks/dmc_sac.py learn                       # SAC + GAP and SAC + flatten
    python benchmarks/dmc_sac.py learn --recipe drq --precision mixed_bfloat16   # DrQ's values
    python benchmarks/dmc_sac.py learn --variants gap --seed 1 --steps 2000   # a smoke run
    python benchmarks/dmc_sac.py speed --batch_size 256      # tfgap update vs stock train

`learn` trains SAC (tfgap/launch/configs/sac.gin: Dopamine's SAC-from-pixels defaults) on
cartpole-swingup from pixels for `--steps` agent steps (12,500 = 100k environment steps at the
task's action repeat of 8), evaluating 10 episodes of the actor's mean action after every
iteration, and prints each variant's final evaluation return and wall time. At this budget two
settings follow DrQ (Kostrikov et al. 2020) instead of Dopamine's 3.2M-step runs: 1,000 random
warm-up steps (Dopamine: 10,000, most of a 12.5k-step budget) and the random-shift augmentation
(pad 4); both are flags. DrQ reports ~750 on cartpole-swingup at 100k environment steps.
`--recipe drq` adds tfgap/launch/configs/sac_drq.gin (DrQ's optimizer, temperature, entropy
target, reward scale, soft-update rates and periods, bootstrap action, two shifted views, actor
log-std mapping, MLP initialisation, temperature loss and VALID padding; the flags above still
set the warm-up, augmentation and batch): Dopamine's values are tuned for 3.2M steps, and with
them (seed 0, GAP) the evaluation return was still 81 after 60k environment steps; with DrQ's
flatten passed 750 (docs/results.md). Each run is an ordinary tfgap run directory: interrupted,
the same command resumes it.

`speed` measures, in one process on one batch of 84x84x9 frames, updates per second of tfgap's
compiled `SACAgent.update` against stock TF-Agents `SacAgent.train` (under `common.function`) on
the same agent: the same networks, optimizers and batch, rounds interleaved, median reported.
Stock `train` recomputes the shared encoder in each of its three losses (critic, actor, alpha);
tfgap's update runs it once per loss family.

This is a benchmark, not a test: on 2 CPU cores a 12.5k-step run takes about an hour in
mixed_bfloat16 on an AVX512_BF16 CPU, several in float32.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  pylint: disable=g-import-not-at-top

DRQ_CARTPOLE_100K = 759  # DrQ, Table 1 (PlaNet benchmark, 100k environment steps), cartpole.


# The gin files each recipe adds after sac.gin (Dopamine's SAC from pixels).
RECIPES = {"dopamine": [], "drq": ["sac_drq.gin"]}


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  sub = parser.add_subparsers(dest="part", required=True)
  learn = sub.add_parser("learn", help="train SAC variants and print their evaluation return")
  learn.add_argument("--variants", default="gap,flatten", help="bottlenecks, comma-separated")
  learn.add_argument("--task", default="cartpole-swingup")
  harness.add_run_flags(learn, 12_500, "agent steps", 10, "runs/dmc_sac",
                        "runs go to ROOT/<task>_<variant>[_<recipe>]_s<seed>")
  learn.add_argument("--iterations", type=int, default=5)
  learn.add_argument("--min_replay_history", type=int, default=1000)
  learn.add_argument("--augmentation", default="random_shift", help="random_shift or none")
  learn.add_argument("--batch_size", type=int, default=256)
  learn.add_argument("--recipe", default="dopamine", choices=sorted(RECIPES),
                     help="dopamine: sac.gin's values; drq: sac.gin + sac_drq.gin (DrQ's)")
  learn.add_argument("--gin_bindings", nargs="*", default=[],
                     help="further bindings, after the recipe's (e.g. \"PADDING = 'VALID'\")")
  learn.add_argument("--precision", default="float32",
                     help="float32 (Dopamine's), mixed_bfloat16 or auto (bfloat16 where the CPU "
                          "has it: about twice the update speed on an AVX512_BF16 CPU)")
  speed = sub.add_parser("speed", help="tfgap SAC update vs stock SacAgent.train")
  speed.add_argument("--bottleneck", default="flatten")
  speed.add_argument("--batch_size", type=int, default=256)
  speed.add_argument("--updates", type=int, default=3, help="updates per timed round")
  speed.add_argument("--rounds", type=int, default=3)
  return parser.parse_args(argv)


def learn(args):
  per_iteration = max(1, args.steps // args.iterations)
  results = []
  for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
    label = variant if args.recipe == "dopamine" else f"{variant}_{args.recipe}"
    root = harness.run_dir(args, args.task, label)
    extra = "; bindings " + "; ".join(args.gin_bindings) if args.gin_bindings else ""
    print(f"SAC + {variant} on {args.task}, seed {args.seed}: {args.iterations} x "
          f"{per_iteration:,} agent steps, warm-up {args.min_replay_history}, augmentation "
          f"{args.augmentation}, batch {args.batch_size}, precision {args.precision}, recipe "
          f"{args.recipe}{extra}; run directory {root}", flush=True)
    bindings = [
        # The replay holds the whole run (frames once: ~21 KB per step).
        f"Runner.replay_capacity = {max(args.steps + 1000, args.batch_size)}",
        f"SACAgent.min_replay_history = {args.min_replay_history}",
        f"SACAgent.augmentation = '{args.augmentation}'",
        f"SACAgent.batch_size = {args.batch_size}",
        f"PRECISION = '{args.precision}'"] + list(args.gin_bindings)
    records, wall = harness.train(root, ["sac.gin"] + RECIPES[args.recipe], args, args.task,
                                  variant, args.iterations, per_iteration, bindings)
    last = records[-1]
    results.append((variant, last, wall))
    print(f"  {variant}: evaluation return {last['eval_return']:.1f} (mean of "
          f"{len(last['eval_returns'])} episodes) after {last['env_steps']:,} agent steps, "
          f"{last['train_steps']:,} updates; wall time of this invocation {wall / 60:.1f} min "
          "(a resumed run counts only the part run now)", flush=True)
    print(harness.per_iteration(records, "eval_return"), flush=True)
  print(f"\nDrQ at 100k environment steps on cartpole-swingup: ~{DRQ_CARTPOLE_100K}")
  for variant, last, wall in results:
    print(f"| SAC + {variant} | {args.seed} | {last['env_steps']:,} | {last['eval_return']:.1f} | "
          f"{wall / 3600:.2f} h |")


def speed(args):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_agents.specs import tensor_spec  # pylint: disable=g-import-not-at-top
  from tf_agents.trajectories import time_step as ts  # pylint: disable=g-import-not-at-top
  from tf_agents.trajectories import trajectory  # pylint: disable=g-import-not-at-top
  from tf_agents.utils import common as tfa_common  # pylint: disable=g-import-not-at-top
  from tfgap import agents  # pylint: disable=g-import-not-at-top
  from tfgap import networks  # pylint: disable=g-import-not-at-top
  obs_spec = tensor_spec.BoundedTensorSpec((84, 84, 9), tf.uint8, 0, 255)
  act_spec = tensor_spec.BoundedTensorSpec((1,), tf.float32, -1.0, 1.0)  # cartpole
  net = networks.build_sac_network(obs_spec, act_spec, bottleneck=args.bottleneck)
  agent = agents.SACAgent(ts.time_step_spec(obs_spec), act_spec, net,
                          batch_size=args.batch_size)
  b = args.batch_size
  rng = np.random.default_rng(0)
  batch = {"observation": rng.integers(0, 256, (b, 84, 84, 9), dtype=np.uint8),
           "action": rng.uniform(-1, 1, (b, 1)).astype(np.float32),
           "reward": rng.uniform(0, 1, b).astype(np.float32),
           "discount": np.full(b, 0.99, np.float32),
           "next_observation": rng.integers(0, 256, (b, 84, 84, 9), dtype=np.uint8)}
  # The same transitions as TF-Agents trajectories [B, 2] (its train() converts them).
  experience = trajectory.Trajectory(
      step_type=tf.zeros([b, 2], tf.int32),
      observation=tf.constant(np.stack([batch["observation"], batch["next_observation"]], 1)),
      action=tf.constant(np.repeat(batch["action"][:, None], 2, 1)), policy_info=(),
      next_step_type=tf.ones([b, 2], tf.int32),
      reward=tf.constant(np.repeat(batch["reward"][:, None], 2, 1)),
      discount=tf.fill([b, 2], 0.99))
  stock_train = tfa_common.function(agent.train)
  runs = {"tfgap SACAgent.update": lambda: float(agent.update(batch).loss),
          "stock SacAgent.train": lambda: float(stock_train(experience).loss)}
  seconds = harness.interleaved(runs, args.rounds, calls=args.updates)
  rates = {name: [1.0 / s for s in values] for name, values in seconds.items()}
  print(f"SAC update speed, bottleneck {args.bottleneck}, batch {b}, 84x84x9 frames, encoder "
        f"sac, heads (1024, 1024), jit_compile={agent.jit_compile}; {args.rounds} interleaved "
        f"rounds of {args.updates} updates, median updates/s:")
  medians = harness.medians(rates)
  for name, value in medians.items():
    print(f"  {name}: {value:.3f} updates/s  (rounds: {', '.join(f'{x:.3f}' for x in rates[name])})")
  print(f"  ratio tfgap / stock: {medians['tfgap SACAgent.update'] / medians['stock SacAgent.train']:.2f}")


def main(argv=None):
  args = harness.start(parse_args, argv)
  if args.part == "learn":
    learn(args)
  else:
    speed(args)


if __name__ == "__main__":
  main()
