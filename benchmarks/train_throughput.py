"""Training throughput of tfgap's compiled update and loop against stock TF-Agents, in one run.

    python benchmarks/train_throughput.py                  # every part, ~25 minutes on 2 cores
    python benchmarks/train_throughput.py --parts precision,fused --seconds 4

1. precision: double-DQN updates/s of `tfgap.agents.DQNAgent.update` in float32 and
   mixed_bfloat16 on Nature x1, Impala x1 and Impala x4, each with flatten and GAP (batch 32,
   uint8 84x84x4, 6 actions), variants interleaved in timed windows.
2. fused: the same update with the online network called once on concat([s, s']) (2B rows)
   against two calls (B rows each), Nature+flatten and Impala x1+GAP, both precisions.
3. update: tfgap's update against stock `DqnAgent.train` / `DdqnAgent.train` under
   `tf_agents.utils.common.function`, with Keras' Adam and with the legacy Adam tfgap uses.
4. loop: end-to-end agent steps/s on real Atari of `tfgap.launch.train.Runner` (DER on
   atari100k Pong, one update per step; DQN on atari Pong, one update per 4 steps) against the
   stock TF-Agents loop (TFUniformReplayBuffer + DynamicStepDriver + agent.train) with the SAME
   optimizer (legacy Adam), same network; tfgap in float32 and mixed_bfloat16 at the default
   acting, and with the actor thread against the inline loop (`Runner.acting`) at the default
   precision, DQN also with 4 environments; runs alternated.
5. replay: bytes per stored transition, tfgap ReplayBuffer vs TFUniformReplayBuffer.

Only ratios measured in this one process mean something on a shared machine: every variant is
timed in several windows, interleaved with the others, and its median window reported with the
spread of its windows. The first line names the CPU, its bfloat16 flags and the load. The last
two lines are the ratios the issue asks for (`n/a` where a part was not run).
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# oneDNN as `tfgap-train` runs (bfloat16 convolutions and matmuls are oneDNN kernels).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (benchmarks/machine.py)

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


def windows(fns, rounds, seconds):
  """Median calls/s of each fn and the spread of its windows ((max - min) / median).

  After two warm-up calls each, every round times each fn in turn for at least `seconds` (and at
  least one call), so that the machine's load falls on all of them alike.
  """
  for fn in fns.values():
    for _ in range(2):
      fn()
  rates = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      calls, start = 0, time.perf_counter()
      while True:
        fn()
        calls += 1
        spent = time.perf_counter() - start
        if spent >= seconds:
          break
      rates[name].append(calls / spent)
  return {name: (float(np.median(r)), float((max(r) - min(r)) / np.median(r)))
          for name, r in rates.items()}


def specs():
  obs_spec = tensor_spec.BoundedTensorSpec(OBS_SHAPE, tf.uint8, 0, 255)
  action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, NUM_ACTIONS - 1)
  return ts.time_step_spec(obs_spec), obs_spec, action_spec


# (label, build_q_network arguments) of the precision part.
NETWORKS = (
    ("nature x1 flatten", dict(encoder="nature", bottleneck="flatten")),
    ("nature x1 gap", dict(encoder="nature", bottleneck="gap")),
    ("impala x1 flatten", dict(encoder="impala", bottleneck="flatten")),
    ("impala x1 gap", dict(encoder="impala", bottleneck="gap")),
    ("impala x4 flatten", dict(encoder="impala", width_scale=4, bottleneck="flatten")),
    ("impala x4 gap", dict(encoder="impala", width_scale=4, bottleneck="gap")),
)
PRECISIONS = ("float32", "mixed_bfloat16")


def tfgap_update(net_kwargs, precision, fused=False):
  tss, obs_spec, action_spec = specs()
  net = networks.build_q_network(obs_spec, action_spec, precision=precision, **net_kwargs)
  agent = agents.DQNAgent(tss, action_spec, net, double=True, fused_forward=fused,
                          jit_compile=False, target_update_period=8000)
  batch = fixed_batch()
  return lambda: agent.update(batch)[0].numpy()


def bench_precision(rounds, seconds, only=None):
  fns = {}
  for label, kwargs in NETWORKS:
    if only and label not in only:
      continue
    for precision in PRECISIONS:
      fns[(label, precision)] = tfgap_update(kwargs, precision)
  rates = windows(fns, rounds, seconds)
  print(f"\n== 1. double-DQN updates/s by precision, batch {BATCH}, 84x84x4 uint8 -> "
        f"{NUM_ACTIONS} actions ({rounds} interleaved windows of >= {seconds:g} s; median, "
        "spread of the windows) ==")
  print(f"  {'network':<20} {'float32':>16} {'mixed_bfloat16':>16} {'bf16/fp32':>10}")
  ratios = {}
  for label, _ in NETWORKS:
    if (label, "float32") not in rates:
      continue
    (f32, s32), (b16, s16) = rates[(label, "float32")], rates[(label, "mixed_bfloat16")]
    ratios[label] = b16 / f32
    print(f"  {label:<20} {f32:8.2f} (+-{s32 / 2:4.0%}) {b16:8.2f} (+-{s16 / 2:4.0%}) "
          f"{b16 / f32:9.2f}x")
  return ratios


def bench_fused(rounds, seconds):
  fns = {}
  for label, kwargs in (NETWORKS[0], NETWORKS[3]):
    for precision in PRECISIONS:
      for fused in (False, True):
        fns[(label, precision, fused)] = tfgap_update(kwargs, precision, fused)
  rates = windows(fns, rounds, seconds)
  print(f"\n== 2. fused double forward: online network once on concat([s, s']) vs twice, "
        f"double-DQN updates/s ({rounds} interleaved windows of >= {seconds:g} s) ==")
  print(f"  {'network':<20} {'precision':<15} {'two calls':>10} {'one call':>10} {'fused/two':>10}")
  ratios = {}
  for (label, precision, fused), (rate, _) in rates.items():
    if fused:
      two = rates[(label, precision, False)][0]
      ratios[(label, precision)] = rate / two
      print(f"  {label:<20} {precision:<15} {two:10.2f} {rate:10.2f} {rate / two:9.2f}x")
  return ratios


def bench_update(rounds, seconds, with_xla):
  tss, obs_spec, action_spec = specs()
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
  variants = [("tfgap DQNAgent.update (tf.function)", False, "float32")]
  if with_xla:
    variants.append(("tfgap DQNAgent.update (XLA)", True, "float32"))
  variants.append(("tfgap DQNAgent.update, mixed_bfloat16", False, "mixed_bfloat16"))
  for name, jit, precision in variants:
    net = networks.build_q_network(obs_spec, action_spec, encoder="nature", padding="VALID",
                                   bottleneck="flatten", precision=precision)
    agent = agents.DQNAgent(tss, action_spec, net, jit_compile=jit, double=True,
                            target_update_period=8000)
    fns[name] = lambda agent=agent: agent.update(batch)[0].numpy()
  rates = windows(fns, rounds, seconds)
  print(f"\n== 3. double-DQN updates/s against stock TF-Agents, Nature VALID 3136->512->6, batch "
        f"{BATCH} ({rounds} interleaved windows of >= {seconds:g} s) ==")
  base = rates["stock DdqnAgent.train, legacy Adam"][0]
  for name, (rate, spread) in rates.items():
    print(f"  {name:<40} {rate:7.2f} updates/s (+-{spread / 2:4.0%})   x{rate / base:.2f} vs "
          "stock DdqnAgent, same (legacy) Adam")
  return rates


LOOP_KINDS = {
    # kind: (gin file, agent's gin name, suite, updates per agent step)
    "der": ("der.gin", "DERAgent", "atari100k", 1),
    "dqn": ("dqn.gin", "DQNAgent", "atari", 4),
}


def bench_tfgap_loop(kind, warmup, steps, precision, acting="auto", num_envs=1):
  """Agent steps/s of the Runner's last iteration: the ones before it hold the whole warm-up and
  the first updates (compilation), so every one of its steps acts, stores and learns."""
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  import gin  # pylint: disable=g-import-not-at-top
  gin_file, agent_name, _, _ = LOOP_KINDS[kind]
  root = tempfile.mkdtemp(prefix="tfgap_bench_")
  gin.clear_config()
  train.parse_config([gin_file], [
      "Runner.game = 'Pong'", f"Runner.num_iterations = {warmup // steps + 2}",
      f"Runner.training_steps = {steps}", f"Runner.num_envs = {num_envs}",
      f"Runner.acting = '{acting}'",
      f"{agent_name}.min_replay_history = {warmup}", "Runner.evaluation_episodes = None",
      "Runner.evaluation_steps = 0", "Runner.export_policies = False",
      "Runner.dormant_batch_size = 0", "Runner.progress_bar = False",
      f"Runner.replay_capacity = {max(10 * steps, 10000)}", f"PRECISION = '{precision}'"])
  runner = train.Runner(root)
  records = runner.run()
  return records[-1]["steps_per_sec"], runner


def loop_variants(kind, auto_precision):
  """The tfgap runs of one loop kind, as (precision, acting, num_envs): both precisions at the
  default acting, then both acting modes at the default precision (DQN also with 4 envs)."""
  from tfgap.launch import acting as acting_lib  # pylint: disable=g-import-not-at-top
  from tfgap.launch import experiment  # pylint: disable=g-import-not-at-top
  default = acting_lib.resolve("auto", experiment.network_kind(kind))
  variants = [(precision, default, 1) for precision in PRECISIONS]
  for num_envs in (1, 4) if kind == "dqn" else (1,):
    for mode in ("inline", "thread"):
      if (auto_precision, mode, num_envs) not in variants:
        variants.append((auto_precision, mode, num_envs))
  return default, variants


def bench_stock_loop(kind, warmup, steps):
  """The stock TF-Agents loop with the legacy Adam tfgap uses; DER: C51 on 11-step
  trajectories, one update per step; DQN: DqnAgent (plain max, squared loss as tfgap's
  default) on 2-step trajectories, one update every 4 steps."""
  from tfgap import envs  # pylint: disable=g-import-not-at-top
  _, _, suite, period = LOOP_KINDS[kind]
  tf_env = envs.make_tf(suite, "Pong", num_envs=1, seed=0)
  obs_spec, action_spec = tf_env.observation_spec(), tf_env.action_spec()
  if kind == "der":
    net = networks.build_categorical_q_network(obs_spec, action_spec, num_atoms=51,
                                               dueling=True, noisy=True)
    agent = categorical_dqn_agent.CategoricalDqnAgent(
        tf_env.time_step_spec(), action_spec, categorical_q_network=net,
        optimizer=keras.optimizers.legacy.Adam(1e-4, epsilon=1.5e-4), min_q_value=-10.0,
        max_q_value=10.0, n_step_update=10, gamma=0.99, target_update_period=2000,
        epsilon_greedy=0.01)
    num_steps = 11
  else:
    net = networks.build_q_network(obs_spec, action_spec)
    agent = dqn_agent.DqnAgent(
        tf_env.time_step_spec(), action_spec, q_network=net,
        optimizer=keras.optimizers.legacy.Adam(6.25e-5, epsilon=1.5e-4), gamma=0.99,
        td_errors_loss_fn=tfa_common.element_wise_squared_loss, target_update_period=2000,
        epsilon_greedy=0.01)
    num_steps = 2
  agent.initialize()
  buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=tf_env.batch_size, max_length=max(10 * steps, 10000))
  driver = dynamic_step_driver.DynamicStepDriver(
      tf_env, agent.collect_policy, observers=[buffer.add_batch], num_steps=1)
  driver_run = tfa_common.function(driver.run)
  train_step = tfa_common.function(agent.train)
  dataset = buffer.as_dataset(num_parallel_calls=3, sample_batch_size=BATCH,
                              num_steps=num_steps).prefetch(3)
  time_step, policy_state = None, None
  for _ in range(warmup):
    time_step, policy_state = driver_run(time_step, policy_state)
  iterator = iter(dataset)
  for _ in range(5):  # compile
    time_step, policy_state = driver_run(time_step, policy_state)
    train_step(next(iterator)[0])
  start = time.perf_counter()
  for i in range(steps):
    time_step, policy_state = driver_run(time_step, policy_state)
    if i % period == 0:
      train_step(next(iterator)[0])
  rate = steps / (time.perf_counter() - start)
  bytes_per = sum(np.prod(s.shape) * s.dtype.size for s in tf.nest.flatten(buffer.data_spec))
  return rate, float(bytes_per)


def bench_loops(rounds, warmup, steps, auto_precision):
  """Runner variants (`loop_variants`) and the stock loop, alternated `rounds` times; medians."""
  rates, runners, stock_bytes, defaults = {}, {}, None, {}
  for _ in range(rounds):
    for kind in LOOP_KINDS:
      kind_steps = steps * LOOP_KINDS[kind][3]  # As many updates for DQN as for DER.
      defaults[kind], variants = loop_variants(kind, auto_precision)
      for variant in variants:
        rate, runner = bench_tfgap_loop(kind, warmup, kind_steps, *variant)
        runners.setdefault(kind, runner)
        rates.setdefault((kind,) + variant, []).append(rate)
      rate, stock_bytes = bench_stock_loop(kind, warmup, kind_steps)
      rates.setdefault((kind, "stock"), []).append(rate)
  print(f"\n== 4. end-to-end agent steps/s on Pong, batch {BATCH}, against the stock TF-Agents "
        f"loop with the SAME optimizer (legacy Adam); {rounds} alternated runs each, median "
        "(range) ==")
  ratios = {}
  median = lambda key: float(np.median(rates[key]))
  for kind in LOOP_KINDS:
    _, _, suite, period = LOOP_KINDS[kind]
    stock = median((kind, "stock"))
    print(f"  {kind.upper()} ({suite}, one update per {period} step{'s' * (period > 1)}, "
          f"{steps * period} timed steps after {warmup} warm-up steps):")
    print(f"    stock TFUniformReplayBuffer + DynamicStepDriver + train   {stock:7.2f} "
          f"({min(rates[(kind, 'stock')]):.2f}-{max(rates[(kind, 'stock')]):.2f})")
    for variant in loop_variants(kind, auto_precision)[1]:
      precision, mode, num_envs = variant
      r = rates[(kind,) + variant]
      ours = median((kind,) + variant)
      ratios[(kind,) + variant] = ours / stock
      label = f"{precision}, acting {mode}" + (f", {num_envs} envs" if num_envs > 1 else "")
      print(f"    tfgap Runner, {label:<42} {ours:7.2f} ({min(r):.2f}-{max(r):.2f})  "
            f"x{ours / stock:.2f} vs stock")
    for num_envs in (1, 4) if kind == "dqn" else (1,):
      thread = median((kind, auto_precision, "thread", num_envs))
      inline = median((kind, auto_precision, "inline", num_envs))
      print(f"    acting thread/inline, {auto_precision}, {num_envs} env{'s' * (num_envs > 1)}: "
            f"x{thread / inline:.2f}")
  print(f"  precision 'auto' picks {auto_precision} on this machine and acting 'auto' "
        f"{defaults['der']} for DER; the DER ratio below is tfgap with both defaults.")
  ratios["der", "auto"] = ratios[("der", auto_precision, defaults["der"], 1)]
  return ratios, runners, stock_bytes


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--parts", default="precision,fused,update,loop,replay")
  parser.add_argument("--rounds", type=int, default=4, help="timed windows per variant")
  parser.add_argument("--seconds", type=float, default=6.0, help="length of a window")
  parser.add_argument("--networks", default="", help="comma-separated labels of part 1")
  parser.add_argument("--no_xla", action="store_true")
  parser.add_argument("--loop_rounds", type=int, default=2)
  parser.add_argument("--loop_warmup", type=int, default=200)
  parser.add_argument("--loop_steps", type=int, default=150)
  args = parser.parse_args()
  parts = set(args.parts.split(","))
  from tfgap.networks import common as net_common  # pylint: disable=g-import-not-at-top
  print(machine.describe_machine())
  native, why = net_common.bfloat16_support()
  auto = net_common.resolve_precision("auto")
  print(f"bfloat16: {'native' if native else 'NOT native'} on this machine ({why}); precision "
        f"'auto' -> {auto}. TensorFlow {tf.__version__}.")
  if not native:
    print("  This CPU lacks amx_bf16 and avx512_bf16: bfloat16 runs emulated here, so the "
          "mixed_bfloat16 figures below do not show what a bfloat16 CPU or GPU gains.")
  impala4 = der = None
  if "precision" in parts:
    only = set(args.networks.split(",")) if args.networks else None
    ratios = bench_precision(args.rounds, args.seconds, only)
    impala4 = ratios.get("impala x4 gap")
  if "fused" in parts:
    bench_fused(args.rounds, args.seconds)
  if "update" in parts:
    bench_update(args.rounds, args.seconds, not args.no_xla)
  stock_bytes = runners = None
  if "loop" in parts:
    ratios, runners, stock_bytes = bench_loops(args.loop_rounds, args.loop_warmup,
                                               args.loop_steps, auto)
    der = ratios[("der", "auto")]
    print(f"  tfgap replay bytes per transition: "
          f"{runners['der'].replay.bytes_per_transition:,.0f}")
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
    print("\n== 5. replay bytes per stored transition, 84x84x4 uint8 observations ==")
    print(f"  tfgap ReplayBuffer (frame once, prioritized)  {ours:10,.0f} B")
    print(f"  TFUniformReplayBuffer (Trajectory spec)       {stock_bytes:10,.0f} B")
    print(f"  ratio stock/tfgap: {stock_bytes / ours:.2f}  (100k transitions: "
          f"{ours * 1e5 / 2**30:.2f} GiB vs {stock_bytes * 1e5 / 2**30:.2f} GiB)")
  print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
  fmt = lambda r: "n/a" if r is None else f"{r:.2f}"
  print(f"ratio end-to-end DER tfgap/stock, same optimizer: {fmt(der)}")
  print(f"ratio update impala x4 mixed_bfloat16/float32: {fmt(impala4)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
