"""Training throughput of tfgap's compiled update and loop against stock TF-Agents, in one run.

    python benchmarks/train_throughput.py                  # all three parts, a few minutes
    python benchmarks/train_throughput.py --parts update --rounds 6

1. update: double-DQN updates/s on the Nature network (VALID padding, 3136 -> 512 -> 6), batch
   32, uint8 84x84x4: `tfgap.agents.DQNAgent.update` (plain tf.function and XLA) against stock
   `DqnAgent.train` and `DdqnAgent.train` under `tf_agents.utils.common.function`, on the same
   network architecture and the same fixed batch. Variants run in interleaved rounds so that the
   machine's load hits them alike.
2. loop: end-to-end DER agent steps/s on real Atari (atari100k Pong, one update per step, batch
   32): `tfgap.launch.train.Runner` (tfgap replay, compiled acting and update) against the stock
   TF-Agents loop (TFUniformReplayBuffer + DynamicStepDriver + CategoricalDqnAgent.train on
   11-step trajectories for DER's 10-step returns), same network (Nature, dueling, noisy, C51).
3. replay: bytes per stored transition, tfgap ReplayBuffer vs TFUniformReplayBuffer, for
   84x84x4 uint8 observations.

Only ratios measured in this one process mean something on a shared machine. TensorFlow reads
TF_ENABLE_ONEDNN_OPTS at import: run once with TF_ENABLE_ONEDNN_OPTS=1 (what `tfgap-train`
uses) and once with 0 (TensorFlow's default on AVX2-only CPUs); both sides of every comparison
share the process's setting.
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging as absl_logging  # noqa: E402

absl_logging.set_verbosity(absl_logging.ERROR)
tf.get_logger().setLevel("ERROR")

from tf_agents.agents.categorical_dqn import categorical_dqn_agent  # noqa: E402
from tf_agents.agents.dqn import dqn_agent  # noqa: E402
from tf_agents.drivers import dynamic_step_driver  # noqa: E402
from tf_agents.replay_buffers import tf_uniform_replay_buffer  # noqa: E402
from tf_agents.specs import tensor_spec  # noqa: E402
from tf_agents.trajectories import time_step as ts  # noqa: E402
from tf_agents.trajectories import trajectory  # noqa: E402
from tf_agents.utils import common as tfa_common  # noqa: E402

from tfgap import agents  # noqa: E402
from tfgap import networks  # noqa: E402
from tfgap import replay as replay_lib  # noqa: E402
from tfgap.compat import keras  # noqa: E402

BATCH = 32
OBS_SHAPE = (84, 84, 4)
NUM_ACTIONS = 6


def nature_q_network(obs_spec, action_spec):
  """The benchmark network: Nature CNN, VALID padding (3,136 features), Flatten, 512, 6."""
  return networks.build_q_network(obs_spec, action_spec, encoder="nature", padding="VALID",
                                  bottleneck="flatten")


def fixed_batch(seed=0):
  rng = np.random.default_rng(seed)
  return {
      "observation": rng.integers(0, 256, (BATCH,) + OBS_SHAPE, dtype=np.uint8),
      "next_observation": rng.integers(0, 256, (BATCH,) + OBS_SHAPE, dtype=np.uint8),
      "action": rng.integers(0, NUM_ACTIONS, BATCH).astype(np.int32),
      "reward": rng.normal(size=BATCH).astype(np.float32),
      "discount": np.full(BATCH, 0.99, np.float32),
      "weights": np.ones(BATCH, np.float32),
  }


def as_trajectory(batch):
  """The same transitions as TF-Agents' [B, 2] trajectories for DqnAgent.train."""
  pair = lambda a, b: tf.constant(np.stack([a, b], axis=1))
  mid = np.ones(BATCH, np.int32)
  action = batch["action"].astype(np.int64)
  return trajectory.Trajectory(
      step_type=pair(mid, mid), observation=pair(batch["observation"],
                                                 batch["next_observation"]),
      action=pair(action, action), policy_info=(), next_step_type=pair(mid, mid),
      reward=pair(batch["reward"], batch["reward"]),
      discount=pair(np.ones(BATCH, np.float32), np.ones(BATCH, np.float32)))


def interleaved(fns, rounds, calls):
  """calls/s of each fn, timed in `rounds` interleaved rounds after one warm-up round."""
  for fn in fns.values():
    for _ in range(2):
      fn()
  spent = {name: 0.0 for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      start = time.perf_counter()
      for _ in range(calls):
        fn()
      spent[name] += time.perf_counter() - start
  return {name: rounds * calls / spent[name] for name in fns}


def bench_update(rounds, calls, with_xla):
  obs_spec = tensor_spec.BoundedTensorSpec(OBS_SHAPE, tf.uint8, 0, 255)
  action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, NUM_ACTIONS - 1)
  tss = ts.time_step_spec(obs_spec)
  batch = fixed_batch()
  experience = as_trajectory(batch)
  fns = {}
  # Stock agents with Keras' default Adam (what TF-Agents' tutorials use), and once with the
  # legacy Adam tfgap uses, to separate the optimizer's share from the update's.
  for name, cls, optimizer in (
      ("stock DqnAgent.train", dqn_agent.DqnAgent, keras.optimizers.Adam),
      ("stock DdqnAgent.train", dqn_agent.DdqnAgent, keras.optimizers.Adam),
      ("stock DdqnAgent.train, legacy Adam", dqn_agent.DdqnAgent, keras.optimizers.legacy.Adam)):
    agent = cls(tss, action_spec, q_network=nature_q_network(obs_spec, action_spec),
                optimizer=optimizer(6.25e-5, epsilon=1.5e-4), gamma=0.99,
                target_update_period=2000)
    agent.initialize()
    step = tfa_common.function(agent.train)
    fns[name] = lambda step=step: step(experience)
  variants = [("tfgap DQNAgent.update (tf.function)", False)]
  if with_xla:
    variants.append(("tfgap DQNAgent.update (XLA)", True))
  for name, jit in variants:
    agent = agents.DQNAgent(tss, action_spec, nature_q_network(obs_spec, action_spec),
                            jit_compile=jit, target_update_period=8000)
    fns[name] = lambda agent=agent: agent.update(batch)[0].numpy()
  rates = interleaved(fns, rounds, calls)
  print(f"\n== 1. double-DQN updates/s, Nature VALID 3136->512->6, batch {BATCH} "
        f"({rounds} interleaved rounds x {calls}) ==")
  base = rates["stock DdqnAgent.train"]
  for name, rate in rates.items():
    print(f"  {name:<40} {rate:7.1f} updates/s   x{rate / base:.2f} vs stock DdqnAgent")
  print(f"  ratio tfgap/stock DqnAgent: "
        f"{rates['tfgap DQNAgent.update (tf.function)'] / rates['stock DqnAgent.train']:.2f}")
  return rates


def bench_tfgap_loop(warmup, steps):
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  import gin  # pylint: disable=g-import-not-at-top
  root = tempfile.mkdtemp(prefix="tfgap_bench_")
  gin.clear_config()
  train.parse_config(["der.gin"], [
      "Runner.game = 'Pong'", "Runner.num_iterations = 2", f"Runner.training_steps = {steps}",
      f"DERAgent.min_replay_history = {warmup}", "Runner.evaluation_episodes = None",
      "Runner.evaluation_steps = 0", "Runner.export_policies = False",
      "Runner.dormant_batch_size = 0", "Runner.progress_bar = False",
      f"Runner.replay_capacity = {max(10 * steps, 10000)}"])
  runner = train.Runner(root)
  # Iteration 0 fills the replay (warm-up) and compiles; iteration 1 is the steady state.
  records = runner.run()
  return records[-1]["steps_per_sec"], runner


def bench_stock_loop(warmup, steps, optimizer_cls):
  from tfgap import envs  # pylint: disable=g-import-not-at-top
  tf_env = envs.make_tf("atari100k", "Pong", num_envs=1, seed=0)
  obs_spec, action_spec = tf_env.observation_spec(), tf_env.action_spec()
  net = networks.build_categorical_q_network(obs_spec, action_spec, num_atoms=51, dueling=True,
                                             noisy=True)
  agent = categorical_dqn_agent.CategoricalDqnAgent(
      tf_env.time_step_spec(), action_spec, categorical_q_network=net,
      optimizer=optimizer_cls(1e-4, epsilon=1.5e-4), min_q_value=-10.0,
      max_q_value=10.0, n_step_update=10, gamma=0.99, target_update_period=2000,
      epsilon_greedy=0.01)
  agent.initialize()
  buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=tf_env.batch_size, max_length=max(10 * steps, 10000))
  driver = dynamic_step_driver.DynamicStepDriver(
      tf_env, agent.collect_policy, observers=[buffer.add_batch], num_steps=1)
  driver_run = tfa_common.function(driver.run)
  train_step = tfa_common.function(agent.train)
  dataset = buffer.as_dataset(num_parallel_calls=3, sample_batch_size=BATCH,
                              num_steps=11).prefetch(3)
  time_step, policy_state = None, None
  for _ in range(warmup):
    time_step, policy_state = driver_run(time_step, policy_state)
  iterator = iter(dataset)
  for _ in range(5):  # compile
    time_step, policy_state = driver_run(time_step, policy_state)
    train_step(next(iterator)[0])
  start = time.perf_counter()
  for _ in range(steps):
    time_step, policy_state = driver_run(time_step, policy_state)
    train_step(next(iterator)[0])
  rate = steps / (time.perf_counter() - start)
  bytes_per = sum(np.prod(s.shape) * s.dtype.size for s in tf.nest.flatten(buffer.data_spec))
  return rate, float(bytes_per)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--parts", default="update,loop,replay")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--calls", type=int, default=10)
  parser.add_argument("--no_xla", action="store_true")
  parser.add_argument("--loop_warmup", type=int, default=200)
  parser.add_argument("--loop_steps", type=int, default=150)
  args = parser.parse_args()
  parts = set(args.parts.split(","))
  print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at start, TF_ENABLE_ONEDNN_OPTS="
        f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset (TF default)')}")
  if "update" in parts:
    bench_update(args.rounds, args.calls, not args.no_xla)
  stock_bytes = None
  if "loop" in parts:
    ours, runner = bench_tfgap_loop(args.loop_warmup, args.loop_steps)
    stock, stock_bytes = bench_stock_loop(args.loop_warmup, args.loop_steps,
                                          keras.optimizers.Adam)
    stock_legacy, _ = bench_stock_loop(args.loop_warmup, args.loop_steps,
                                       keras.optimizers.legacy.Adam)
    print(f"\n== 2. end-to-end DER on atari100k Pong, 1 update per agent step, batch {BATCH} "
          f"({args.loop_steps} steps after {args.loop_warmup} warm-up steps) ==")
    print(f"  tfgap Runner (numpy replay, compiled act/update)        {ours:7.1f} agent steps/s")
    print(f"  stock TFUniformReplayBuffer + DynamicStepDriver + train {stock:7.1f} agent steps/s")
    print(f"  same stock loop with legacy (fused) Adam                {stock_legacy:7.1f} agent "
          "steps/s")
    print(f"  ratio tfgap/stock: {ours / stock:.2f}  (vs stock with legacy Adam: "
          f"{ours / stock_legacy:.2f})")
    print(f"  tfgap replay bytes per transition: {runner.replay.bytes_per_transition:,.0f}")
  if "replay" in parts:
    buffer = replay_lib.ReplayBuffer(capacity=100_000, frame_shape=(84, 84, 1), stack_size=4,
                                     n_step=10, prioritized=True)
    if stock_bytes is None:
      obs = tensor_spec.TensorSpec(OBS_SHAPE, tf.uint8)
      spec = trajectory.Trajectory(
          step_type=tf.TensorSpec((), tf.int32), observation=obs,
          action=tf.TensorSpec((), tf.int64), policy_info=(),
          next_step_type=tf.TensorSpec((), tf.int32), reward=tf.TensorSpec((), tf.float32),
          discount=tf.TensorSpec((), tf.float32))
      stock_bytes = float(sum(np.prod(s.shape) * s.dtype.size for s in tf.nest.flatten(spec)))
    ours = buffer.bytes_per_transition
    print("\n== 3. replay bytes per stored transition, 84x84x4 uint8 observations ==")
    print(f"  tfgap ReplayBuffer (frame once, prioritized)  {ours:10,.0f} B")
    print(f"  TFUniformReplayBuffer (Trajectory spec)       {stock_bytes:10,.0f} B")
    print(f"  ratio stock/tfgap: {stock_bytes / ours:.2f}  (100k transitions: "
          f"{ours * 1e5 / 2**30:.2f} GiB vs {stock_bytes * 1e5 / 2**30:.2f} GiB)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
