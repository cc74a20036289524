"""Replay throughput and memory: tfgap.replay vs TF-Agents' TFUniformReplayBuffer and Reverb.

    python benchmarks/replay.py                  # everything, ~1-2 min
    python benchmarks/replay.py --no-reverb --seconds 1

Atari layout throughout: 84x84x1 uint8 frames, 4-frame stacks, n=3, gamma 0.99, batch 32, 4 env
streams. Rows are timed one after the other in this process: compare ratios within one run (the
machine is shared and absolute numbers move with its load).

- add: ``ReplayBuffer.add`` of one step of every stream; reported in agent steps/s.
- sample: ``sample(32)`` -> contiguous numpy batch {observation [32,84,84,4], next_observation,
  n-step reward, discount, indices, weights}; uniform and prioritized (sum tree); the same with
  numpy's channel interleave instead of OpenCV's; the raw frame gather alone.
- learner loop: sample + an 8 ms GIL-free "update" (sleep) + update_priorities, inline vs through
  the prefetch thread (which samples during the update).
- memory: bytes per stored transition of this buffer (``nbytes / capacity``) against a
  TFUniformReplayBuffer holding the same stacked observations as TF-Agents' DQN examples do
  (Trajectory items, next observation = next item), computed from a small instance's variables.
- reverb: a Reverb table fed by a TrajectoryWriter (one frame per step, an item per step over the
  last 7 steps: 4-frame stack + 3-step window) and sampled through reverb.TrajectoryDataset in
  batches of 32. Reverb returns the raw 7-step trajectories: stacking, zero padding and the n-step
  return still have to be computed after it, so this is a lower bound on its cost.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from tfgap.replay import FIRST, LAST, MID, ReplayBuffer  # noqa: E402
from tfgap.replay import buffer as buffer_module  # noqa: E402

FRAME = (84, 84, 1)
STACK = 4
N_STEP = 3
BATCH = 32
STREAMS = 4
LEARNER_STEP_S = 0.008  # ~125 updates/s: the speed of a Nature-CNN DQN update on this CPU.


def _timed(fn, seconds):
  """Calls fn() repeatedly for about `seconds`; returns calls per second (wall clock)."""
  fn()  # Warm-up (allocations, first-touch pages).
  count = 0
  start = time.perf_counter()
  while True:
    fn()
    count += 1
    elapsed = time.perf_counter() - start
    if elapsed >= seconds:
      return count / elapsed


def _cpu_ms_per_call(fn, calls):
  """Process CPU time (all threads, e.g. Reverb's workers too) per call of fn, in ms."""
  fn()
  start = time.process_time()
  for _ in range(calls):
    fn()
  return (time.process_time() - start) / calls * 1e3


def _rss_bytes():
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Actor:
  """Feeds a buffer random frames; episodes of 400 steps, alternately terminal and truncated."""

  def __init__(self, buffer, seed=0):
    rng = np.random.default_rng(seed)
    self.buffer = buffer
    self.frames = rng.integers(0, 256, size=(32, STREAMS) + FRAME, dtype=np.uint8)
    self.actions = np.zeros(STREAMS, np.int32)
    self.rewards = np.ones(STREAMS, np.float32)
    self.phase = 100 * np.arange(STREAMS)  # Streams end their episodes at different steps.
    self.t = 0
    buffer.add_first(self.frames[0])

  def step(self):
    self.t += 1
    clock = (self.t + self.phase) % 400
    step_types = np.where(clock == 399, LAST, np.where(clock == 0, FIRST, MID))
    discounts = np.where((self.t + self.phase) // 400 % 2 == 0, 0.0, 1.0).astype(np.float32)
    self.buffer.add(self.frames[self.t % 32], self.actions, self.rewards, step_types, discounts)


def _filled(capacity, prioritized):
  buffer = ReplayBuffer(capacity, FRAME, stack_size=STACK, num_streams=STREAMS, n_step=N_STEP,
                        prioritized=prioritized, seed=0)
  actor = _Actor(buffer)
  for _ in range(capacity // STREAMS + 100):  # Wrapped: adds also overwrite and invalidate.
    actor.step()
  return buffer, actor


def bench_add(seconds, capacity):
  out = {}
  for prioritized in (False, True):
    _, actor = _filled(capacity, prioritized)
    calls = _timed(actor.step, seconds)
    out["prioritized" if prioritized else "uniform"] = calls * STREAMS
  return out


def bench_sample(seconds, capacity):
  out = {}
  buffers = {}
  for prioritized in (False, True):
    buffer, _ = _filled(capacity, prioritized)
    if prioritized:
      ids = buffer.sampleable_indices()
      buffer.update_priorities(ids, np.random.default_rng(2).random(ids.size) + 0.01)
    buffers[prioritized] = buffer
    name = "prioritized" if prioritized else "uniform"
    out[name] = _timed(lambda b=buffer: b.sample(BATCH), seconds)
    out[name + "_cpu_ms"] = _cpu_ms_per_call(lambda b=buffer: b.sample(BATCH), 200)
  prio = buffers[True]
  batch = prio.sample(BATCH)
  out["update_priorities"] = _timed(
      lambda: prio.update_priorities(batch["indices"], np.ones(BATCH)), seconds)
  # A learner loop whose update releases the GIL for `LEARNER_STEP_S` (as a TF train step does):
  # sampling inline adds the sample time to every iteration; the prefetch thread hides it.
  def learner(get_batch):
    def iteration():
      b = get_batch()
      time.sleep(LEARNER_STEP_S)
      prio.update_priorities(b["indices"], np.ones(BATCH))
    return iteration
  out["learner_loop_inline"] = _timed(learner(lambda: prio.sample(BATCH)), seconds)
  with prio.prefetch(BATCH, depth=4) as batches:
    out["learner_loop_prefetch"] = _timed(learner(lambda: next(batches)), seconds)
  # The same sample with numpy's interleave instead of OpenCV's (why the buffer uses cv2.merge).
  saved = buffer_module._cv2  # pylint: disable=protected-access
  buffer_module._cv2 = None  # pylint: disable=protected-access
  try:
    out["uniform_numpy_interleave"] = _timed(lambda: buffers[False].sample(BATCH), seconds)
  finally:
    buffer_module._cv2 = saved  # pylint: disable=protected-access
  # The raw frame gather alone (the floor of any frame-once design).
  frames = buffers[False]._frames  # pylint: disable=protected-access
  rng = np.random.default_rng(3)
  out["raw_gather_2x32x4_frames"] = _timed(
      lambda: frames[rng.integers(0, capacity, size=(2 * BATCH, STACK))], seconds)
  return out


def bench_checkpoint(capacity):
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  buffer, _ = _filled(capacity, True)
  directory = tempfile.mkdtemp(prefix="tfgap_replay_bench_")
  try:
    start = time.perf_counter()
    buffer.save(directory)
    save_s = time.perf_counter() - start
    start = time.perf_counter()
    buffer.restore(directory)
    restore_s = time.perf_counter() - start
  finally:
    shutil.rmtree(directory, ignore_errors=True)
  gigabytes = buffer.nbytes / 1e9
  return {"gigabytes": gigabytes, "save_s": save_s, "restore_s": restore_s}


def bench_memory():
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from tf_agents.replay_buffers import tf_uniform_replay_buffer
  from tf_agents.specs import tensor_spec
  from tf_agents.trajectories import time_step as ts
  from tf_agents.trajectories import trajectory
  # pylint: enable=g-import-not-at-top

  out = {}
  for prioritized in (False, True):
    buffer = ReplayBuffer(20_000, FRAME, stack_size=STACK, num_streams=STREAMS, n_step=N_STEP,
                          prioritized=prioritized)
    out["tfgap_" + ("prioritized" if prioritized else "uniform")] = buffer.bytes_per_transition
  # TF-Agents DQN layout: one Trajectory per step with the stacked observation.
  obs_spec = tensor_spec.BoundedTensorSpec((84, 84, 4), tf.uint8, 0, 255)
  action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 5)
  data_spec = trajectory.Trajectory(
      step_type=ts.time_step_spec(obs_spec).step_type, observation=obs_spec, action=action_spec,
      policy_info=(), next_step_type=ts.time_step_spec(obs_spec).step_type,
      reward=tf.TensorSpec((), tf.float32), discount=tf.TensorSpec((), tf.float32))
  length = 1000
  tfa = tf_uniform_replay_buffer.TFUniformReplayBuffer(data_spec, batch_size=1, max_length=length)
  tfa_bytes = sum(int(np.prod(v.shape)) * v.dtype.size for v in tfa.variables())
  out["tf_agents_uniform"] = tfa_bytes / length
  for name, per in list(out.items()):
    out[name + "_1M_GiB"] = per * 1_000_000 / 2 ** 30
  return out


def bench_reverb(seconds, steps):
  import reverb  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  window = STACK + N_STEP
  signature = {
      "frame": tf.TensorSpec((window,) + FRAME, tf.uint8),
      "action": tf.TensorSpec((window,), tf.int32),
      "reward": tf.TensorSpec((window,), tf.float32),
  }
  table = reverb.Table(
      name="replay", sampler=reverb.selectors.Prioritized(0.6), remover=reverb.selectors.Fifo(),
      max_size=steps, rate_limiter=reverb.rate_limiters.MinSize(1), signature=signature)
  server = reverb.Server([table])
  try:
    client = reverb.Client(f"localhost:{server.port}")
    frames = np.random.default_rng(0).integers(0, 256, size=(32,) + FRAME, dtype=np.uint8)
    rss = _rss_bytes()
    start = time.perf_counter()
    with client.trajectory_writer(num_keep_alive_refs=window) as writer:
      for t in range(steps):
        writer.append({"frame": frames[t % 32], "action": np.int32(0),
                       "reward": np.float32(1.0)})
        if t + 1 >= window:
          writer.create_item(
              "replay", priority=1.0,
              trajectory={key: writer.history[key][-window:] for key in signature})
        if t % 64 == 63:
          writer.flush(block_until_num_items=32)  # Bounded in-flight items, as Reverb asks.
      writer.flush()
    add_rate = steps / (time.perf_counter() - start)
    # Random frames do not compress: this is Reverb's uncompressed footprint (real Atari frames
    # compress well under its default zstd chunk compression, at a CPU cost per sample).
    bytes_per_step = (_rss_bytes() - rss) / steps
    dataset = reverb.TrajectoryDataset.from_table_signature(
        server_address=f"localhost:{server.port}", table="replay",
        max_in_flight_samples_per_worker=2 * BATCH).batch(BATCH, drop_remainder=True)
    iterator = iter(dataset)
    sample_rate = _timed(lambda: next(iterator), seconds)
    cpu_ms = _cpu_ms_per_call(lambda: next(iterator), 200)
    del iterator
  finally:
    server.stop()
  return {"add_steps_per_s": add_rate, "sample_trajectory_dataset": sample_rate,
          "sample_cpu_ms": cpu_ms, "rss_bytes_per_step": bytes_per_step}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, default=2.0, help="timing window per row")
  parser.add_argument("--capacity", type=int, default=100_000, help="transitions per buffer")
  parser.add_argument("--no-reverb", action="store_true", help="skip the Reverb comparison")
  parser.add_argument("--json", help="also write the figures to this file")
  args = parser.parse_args()

  results = {}
  print(f"tfgap.replay benchmark: frames {FRAME}, stack {STACK}, n={N_STEP}, batch {BATCH}, "
        f"{STREAMS} streams, capacity {args.capacity}")
  results["add_steps_per_s"] = bench_add(args.seconds, args.capacity)
  for name, value in results["add_steps_per_s"].items():
    print(f"  add ({name}): {value:,.0f} agent steps/s")
  results["sample_batches_per_s"] = bench_sample(args.seconds, args.capacity)
  for name, value in results["sample_batches_per_s"].items():
    unit = "batches/s"
    if name.endswith("_cpu_ms"):
      print(f"  sample {name[:-7]}: {value:.2f} ms of process CPU per batch")
      continue
    if name == "update_priorities":
      unit = "updates/s"
    elif name.startswith("learner_loop"):
      unit = f"iterations/s (learner step {LEARNER_STEP_S * 1e3:.0f} ms GIL-free)"
    print(f"  sample {name}: {value:,.0f} {unit}")
  results["checkpoint"] = bench_checkpoint(args.capacity)
  ckpt = results["checkpoint"]
  print(f"  checkpoint of a full {ckpt['gigabytes']:.2f} GB buffer (with CRC-32): save "
        f"{ckpt['save_s']:.1f} s ({ckpt['gigabytes'] / ckpt['save_s']:.2f} GB/s), restore "
        f"{ckpt['restore_s']:.1f} s ({ckpt['gigabytes'] / ckpt['restore_s']:.2f} GB/s)")
  results["bytes_per_transition"] = bench_memory()
  for name, value in results["bytes_per_transition"].items():
    if name.endswith("_1M_GiB"):
      print(f"  memory {name[:-7]}: {value:.2f} GiB for 1M transitions")
    else:
      print(f"  memory {name}: {value:,.0f} bytes per transition")
  if not args.no_reverb:
    results["reverb"] = bench_reverb(args.seconds, min(args.capacity, 20_000))
    reverb = results["reverb"]
    mine = results["sample_batches_per_s"]
    print(f"  reverb add: {reverb['add_steps_per_s']:,.0f} steps/s, "
          f"{reverb['rss_bytes_per_step']:,.0f} bytes of RSS per step (incompressible frames)")
    print(f"  reverb sample (TrajectoryDataset, raw 7-step items, prioritized): "
          f"{reverb['sample_trajectory_dataset']:,.0f} batches/s, "
          f"{reverb['sample_cpu_ms']:.2f} ms of process CPU per batch")
    print(f"  prioritized, tfgap vs reverb: "
          f"{mine['prioritized'] / reverb['sample_trajectory_dataset']:.2f}x the batches/s at "
          f"{mine['prioritized_cpu_ms'] / reverb['sample_cpu_ms']:.2f}x the CPU per batch")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)


if __name__ == "__main__":
  main()
