"""A plain TF-Agents DQN script in which tfgap contributes the network and the environment.

    python examples/tf_agents_driver.py                           # MinAtar breakout, GAP
    python examples/tf_agents_driver.py --bottleneck flatten --width_scale 4
    python examples/tf_agents_driver.py --agent tfgap             # tfgap's DQNAgent, same driver
    python examples/tf_agents_driver.py --suite atari --game Pong --num_steps 5000

Use this when you already have a TF-Agents training script and want the paper's encoders and
bottlenecks in it. The loop below has the shape of TF-Agents' own DQN example (TFPyEnvironment,
agent, TFUniformReplayBuffer, DynamicStepDriver, a train loop, PolicySaver): nothing in it is
tfgap's except `tfgap.envs.make_tf` (the environment protocol) and
`tfgap.networks.build_q_network` (encoder + bottleneck + head as a TF-Agents Network).

`--agent tfgap` swaps TF-Agents' DqnAgent for `tfgap.agents.DQNAgent` and changes nothing else:
its `collect_policy` explores on Dopamine's schedule, counted in environment steps (warm-up
included), with no code in the loop; the printed epsilon shows it falling.
"""

# Before TensorFlow is imported: oneDNN CPU kernels on (about 2x faster on AVX2 CPUs), quiet C++
# logs, and a check of the installed TF/Keras stack. Importing tfgap alone changes nothing.
from tfgap.launch import runtime

runtime.prepare_process()

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import tensorflow as tf  # noqa: E402
from tf_agents.agents.dqn import dqn_agent  # noqa: E402
from tf_agents.drivers import dynamic_step_driver  # noqa: E402
from tf_agents.policies import policy_saver  # noqa: E402
from tf_agents.policies import random_tf_policy  # noqa: E402
from tf_agents.replay_buffers import tf_uniform_replay_buffer  # noqa: E402
from tf_agents.utils import common  # noqa: E402

import tfgap.agents  # noqa: E402
import tfgap.envs  # noqa: E402
import tfgap.networks  # noqa: E402

# The full budget learns visibly on MinAtar breakout in tens of minutes on a laptop CPU; the
# smoke budget only checks that every piece runs.
BUDGETS = {
    "full": dict(num_steps=50_000, warmup_steps=5_000, epsilon_decay_steps=25_000,
                 target_update_steps=4_000, eval_interval=10_000, eval_episodes=10,
                 log_interval=2_500, replay_capacity=50_000, max_eval_episode_steps=None),
    "smoke": dict(num_steps=240, warmup_steps=120, epsilon_decay_steps=80,
                  target_update_steps=80, eval_interval=240, eval_episodes=1,
                  log_interval=40, replay_capacity=1_000, max_eval_episode_steps=200),
}
COLLECT_STEPS_PER_UPDATE = 4  # Dopamine's update_period: one gradient step every 4 agent steps.
BATCH_SIZE = 32


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--suite", default="minatar", help="tfgap.envs suite (minatar, atari, ...)")
  parser.add_argument("--game", default="breakout")
  parser.add_argument("--bottleneck", default="gap",
                      help=f"one of {', '.join(tfgap.networks.list_bottlenecks())}")
  parser.add_argument("--width_scale", type=float, default=1.0)
  parser.add_argument("--agent", choices=("stock", "tfgap"), default="stock",
                      help="stock: TF-Agents' DqnAgent; tfgap: tfgap.agents.DQNAgent")
  parser.add_argument("--num_steps", type=int, default=None, help="agent steps (budget's default)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default="runs/example_tf_agents_driver")
  parser.add_argument("--smoke", action="store_true", help="a tiny budget that checks the plumbing")
  return parser.parse_args()


def average_return(env, policy, episodes):
  """Mean undiscounted return of `episodes` episodes (TF-Agents' tutorial metric)."""
  total = 0.0
  for _ in range(episodes):
    time_step = env.reset()
    while not time_step.is_last():
      time_step = env.step(policy.action(time_step).action)
      total += float(time_step.reward[0])
  return total / episodes


def main():
  args = parse_args()
  budget = dict(BUDGETS["smoke" if args.smoke else "full"])
  if args.num_steps is not None:
    budget["num_steps"] = args.num_steps
  tf.random.set_seed(args.seed)

  # Environments: tfgap's protocol (MinAtar's sticky actions, or Atari's frame skip, max-pooling,
  # 84x84 grayscale and zero-padded frame stack) as a TFPyEnvironment. The evaluation
  # environment has its own seed and mode (Atari: unclipped rewards).
  train_env = tfgap.envs.make_tf(args.suite, args.game, seed=args.seed)
  eval_overrides = {}
  if budget["max_eval_episode_steps"]:
    eval_overrides["max_episode_steps"] = budget["max_eval_episode_steps"]
  eval_env = tfgap.envs.make_tf(args.suite, args.game, seed=args.seed + 10_000, mode="eval",
                                **eval_overrides)
  observation_spec = train_env.observation_spec()
  action_spec = train_env.action_spec()

  # The network: phi (encoder, width-scaled), the bottleneck under study, psi (dense head).
  # MinAtar's own DQN uses a 3x3/16 VALID conv and one 128-unit hidden layer.
  if args.suite == "minatar":
    net_kwargs = dict(encoder="minatar", padding="VALID", head_units=(128,))
  else:
    net_kwargs = dict(encoder="nature")
  q_net = tfgap.networks.build_q_network(
      observation_spec, action_spec, width_scale=args.width_scale, bottleneck=args.bottleneck,
      **net_kwargs)

  # The agent. Both count target updates in gradient steps here and learn with TF-Agents' own
  # loss on [B, 2] trajectories (agent.train), so the loop below is the same for both.
  updates_per_target = budget["target_update_steps"] // COLLECT_STEPS_PER_UPDATE
  if args.agent == "stock":
    train_step = tf.Variable(0, dtype=tf.int64, trainable=False)
    decay_updates = budget["epsilon_decay_steps"] // COLLECT_STEPS_PER_UPDATE

    def epsilon():
      # TF-Agents' examples decay epsilon over gradient steps, which start after the warm-up.
      done = tf.minimum(1.0, tf.cast(train_step, tf.float32) / decay_updates)
      return 1.0 - 0.9 * done

    agent = dqn_agent.DqnAgent(
        train_env.time_step_spec(), action_spec, q_network=q_net,
        optimizer=tf.keras.optimizers.legacy.Adam(learning_rate=2.5e-4, epsilon=1.5e-4),
        epsilon_greedy=epsilon, target_update_period=updates_per_target,
        td_errors_loss_fn=common.element_wise_huber_loss, gamma=0.99,
        train_step_counter=train_step)
    agent.initialize()
    epsilon_now = lambda: float(epsilon())  # noqa: E731
    # The warm-up fills the replay with uniform actions, as TF-Agents' examples do.
    warmup_policy = random_tf_policy.RandomTFPolicy(train_env.time_step_spec(), action_spec)
  else:
    # Dopamine's schedule on the agent's own clock of environment steps: epsilon 1 for
    # `min_replay_history` steps, then linearly to `epsilon_train`.
    agent = tfgap.agents.DQNAgent(
        train_env.time_step_spec(), action_spec, q_net,
        learning_rate=2.5e-4, gamma=0.99, update_period=COLLECT_STEPS_PER_UPDATE,
        target_update_period=budget["target_update_steps"],
        min_replay_history=budget["warmup_steps"],
        epsilon_decay_period=budget["epsilon_decay_steps"], epsilon_train=0.1,
        batch_size=BATCH_SIZE, loss="huber", seed=args.seed)
    epsilon_now = lambda: float(agent.epsilon)  # noqa: E731  The value its last action used.
    # Its collect policy is already uniform during the warm-up (epsilon 1), so it collects the
    # warm-up too and its clock starts at the first step, as in Dopamine.
    warmup_policy = agent.collect_policy

  # Replay: TF-Agents' uniform buffer of trajectories; pairs of steps feed a 1-step DQN loss.
  replay = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=train_env.batch_size,
      max_length=budget["replay_capacity"])
  dataset = replay.as_dataset(num_parallel_calls=2, sample_batch_size=BATCH_SIZE,
                              num_steps=2).prefetch(2)
  experience_iterator = iter(dataset)

  # Drivers: the stock DynamicStepDriver, compiled with common.function as TF-Agents does.
  warmup_driver = dynamic_step_driver.DynamicStepDriver(
      train_env, warmup_policy, observers=[replay.add_batch], num_steps=budget["warmup_steps"])
  collect_driver = dynamic_step_driver.DynamicStepDriver(
      train_env, agent.collect_policy, observers=[replay.add_batch],
      num_steps=COLLECT_STEPS_PER_UPDATE)
  collect = common.function(collect_driver.run)
  train = common.function(agent.train)

  print(f"{args.agent} DQN on {args.suite}/{args.game}: {q_net.encoder_name} x{args.width_scale} "
        f"+ {q_net.bottleneck_name}, {budget['num_steps']} agent steps", flush=True)
  time_step, _ = common.function(warmup_driver.run)()  # Eager, 5k steps would take minutes.
  env_steps = budget["warmup_steps"]
  start = time.time()
  while env_steps < budget["num_steps"]:
    time_step, _ = collect(time_step=time_step)
    env_steps += COLLECT_STEPS_PER_UPDATE
    experience, _ = next(experience_iterator)
    loss = train(experience).loss

    if env_steps % budget["log_interval"] == 0:
      speed = (env_steps - budget["warmup_steps"]) / (time.time() - start)
      print(f"step {env_steps}: epsilon {epsilon_now():.3f}, loss {float(loss):.4f}, "
            f"{speed:.0f} steps/s", flush=True)
    if env_steps % budget["eval_interval"] == 0:
      score = average_return(eval_env, agent.policy, budget["eval_episodes"])
      print(f"step {env_steps}: average return {score:.2f} over {budget['eval_episodes']} "
            f"episodes (greedy policy)", flush=True)

  # The greedy policy as a SavedModel: loadable with tf.saved_model.load anywhere (after
  # `import tensorflow_probability`), no tfgap needed.
  policy_dir = os.path.join(args.out, "policy")
  policy_saver.PolicySaver(agent.policy, batch_size=None).save(policy_dir)
  print(f"policy: {policy_dir}", flush=True)


if __name__ == "__main__":
  main()
