r"""Train and evaluate a tfgap agent: `python -m tfgap.launch.train --root_dir DIR --gin_file F`.

    python -m tfgap.launch.train --root_dir runs/demo --gin_file tfgap/launch/configs/demo.gin
    python -m tfgap.launch.train --root_dir runs/pong_gap --gin_file dqn.gin \
        --gin_file impala.gin --gin_file bottleneck_gap.gin --gin_bindings "Runner.game='Pong'"

The loop (`Runner.run`) reads top to bottom: each iteration runs `training_steps` environment
steps (act epsilon-greedily, step, store the transition, update the agent every `update_period`
steps once `min_replay_history` steps are stored), then evaluates (epsilon 0.001, raw game
scores), appends a line to `metrics.jsonl`, exports the greedy policy as a SavedModel and writes
a checkpoint. Everything lives under `root_dir`:

    train/, eval/            TensorBoard events (returns, loss, steps/s, epsilon, sparsity, dormant)
    metrics.jsonl            one JSON object per iteration (fields: docs/DESIGN.md)
    checkpoints/ckpt-NNNNNN  networks, optimizer, replay, counters, RNG states (last 2 kept)
    policies/iter_NNNNNN     PolicySaver SavedModels of the greedy policy
    config.gin               the operative gin config of the run

Rerunning with the same root_dir resumes from the latest valid checkpoint; a different config is
refused unless --force.
"""

import dataclasses
import difflib
import json
import logging as std_logging
import math
import os
import pathlib
import shutil
import sys
import time
import warnings

from absl import app
from absl import flags
from absl import logging
import gin
import numpy as np
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from tfgap import agents as agents_lib
from tfgap import networks
from tfgap.launch import common
from tfgap.networks import pruning as pruning_lib

CHECKPOINT_PREFIX = "ckpt-"
POLICY_PREFIX = "iter_"


class ConfigMismatchError(ValueError):
  """The root_dir holds a run with another configuration (rerun with --force to accept)."""


class NaNLossError(RuntimeError):
  """The loss became NaN or infinite; the run stopped before writing a checkpoint."""


def _check_int(name, value, low, allow_none=False):
  if allow_none and value is None:
    return None
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
    accepted = f"an integer >= {low}" + (" or None" if allow_none else "")
    raise ValueError(f"Runner.{name}={value!r} is not accepted; accepted: {accepted}.")
  return int(value)


def _as_batched(time_step, batched):
  """Adds a batch axis to an unbatched environment's time step."""
  if batched:
    return time_step
  return tf.nest.map_structure(lambda x: np.asarray(x)[None], time_step)


def _mean(values):
  return float(np.mean(values)) if len(values) else None


@dataclasses.dataclass
class _PhaseStats:
  returns: list
  losses: list
  steps: int
  seconds: float


@gin.configurable
class Runner:
  """Builds environment, agent and replay from gin bindings and runs the training loop."""

  def __init__(self, root_dir, *, suite="atari", game="Pong", agent="dqn", seed=0, num_envs=1,
               num_iterations=200, training_steps=250_000, evaluation_steps=125_000,
               evaluation_episodes=None, eval_period=1, eval_num_envs=1, env_kwargs=None,
               eval_env_kwargs=None, replay_capacity=1_000_000, env_fn=None, summary_period=1000,
               dormant_period=None, dormant_taus=(0.0, 0.025, 0.1), dormant_batch_size=256,
               pruning_fractions=(0.2, 0.8), keep_checkpoints=2, export_policies=True,
               progress_bar=True, prefetch_depth=2, force=False):
    """Builds everything; raises ValueError on a bad setting before any training.

    Args:
      root_dir: output folder (created; an existing run there is resumed).
      suite: tfgap.envs suite ("atari", "atari100k", "procgen", "dmc").
      game: game/task name of the suite.
      agent: "dqn", "rainbow" or "der".
      seed: seeds TF, numpy, the environments (seed, eval seed + 10,000), replay and acting.
      num_envs: parallel training environments (one replay stream each).
      num_iterations: iterations of training + evaluation.
      training_steps: agent steps (summed over environments) per iteration.
      evaluation_steps: minimum evaluation agent steps per iteration (Dopamine: episodes are
        played to their end); ignored when `evaluation_episodes` is set; 0 skips evaluation.
      evaluation_episodes: evaluation episodes per iteration (Atari100K: 100), or None.
      eval_period: evaluate after every `eval_period`-th iteration and after the last one.
      eval_num_envs: parallel evaluation environments.
      env_kwargs: protocol overrides for the training environment (tfgap.envs.make).
      eval_env_kwargs: protocol overrides for the evaluation environment.
      replay_capacity: stored transitions.
      env_fn: optional `env_fn(mode=..., num_envs=..., seed=...)` returning a tfgap-style
        PyEnvironment (with `frame_shape`, `stack_size`, `pop_episode_stats()`), replacing
        `tfgap.envs.make(suite, game, ...)`.
      summary_period: agent steps between TensorBoard training summaries.
      dormant_period: updates between dormant-neuron measurements during training (None: once
        per iteration only).
      dormant_taus: dormancy thresholds.
      dormant_batch_size: replay observations per dormant measurement (0 disables it).
      pruning_fractions: (begin, end) fractions of all updates for a pruned bottleneck's
        schedule, overriding its begin/end steps; None keeps the network's own steps.
      keep_checkpoints: checkpoints kept (>= 1).
      export_policies: write a PolicySaver SavedModel per iteration.
      progress_bar: show a tqdm progress bar.
      prefetch_depth: replay batches a background thread samples ahead of the learner during a
        training phase (0: sample inline). The thread stops before evaluation and checkpoints, so
        nothing samples while the replay is saved.
      force: accept a config different from the one saved in root_dir.
    """
    registered = common.register_gin()
    self.root_dir = pathlib.Path(root_dir).expanduser().resolve()
    self.suite, self.game = suite, game
    self.agent_name = str(agent).lower()
    agent_cls, kind = agents_lib.agent_class(self.agent_name)
    del agent_cls
    self.seed = _check_int("seed", seed, 0)
    self.num_envs = _check_int("num_envs", num_envs, 1)
    self.num_iterations = _check_int("num_iterations", num_iterations, 1)
    self.training_steps = _check_int("training_steps", training_steps, 1)
    self.evaluation_steps = _check_int("evaluation_steps", evaluation_steps, 0)
    self.evaluation_episodes = _check_int("evaluation_episodes", evaluation_episodes, 0,
                                          allow_none=True)
    self.eval_period = _check_int("eval_period", eval_period, 1)
    self.eval_num_envs = _check_int("eval_num_envs", eval_num_envs, 1)
    self.replay_capacity = _check_int("replay_capacity", replay_capacity, 1)
    self.summary_period = _check_int("summary_period", summary_period, 1)
    self.dormant_period = _check_int("dormant_period", dormant_period, 1, allow_none=True)
    self.dormant_batch_size = _check_int("dormant_batch_size", dormant_batch_size, 0)
    self.prefetch_depth = _check_int("prefetch_depth", prefetch_depth, 0)
    self._batches = None  # The running replay prefetcher, if any.
    self.dormant_taus = tuple(float(t) for t in dormant_taus)
    self.keep_checkpoints = _check_int("keep_checkpoints", keep_checkpoints, 1)
    self.export_policies = bool(export_policies)
    self.progress_bar = bool(progress_bar)
    self.force = bool(force)
    if pruning_fractions is not None:
      begin, end = pruning_fractions
      if not 0.0 <= begin < end <= 1.0:
        raise ValueError(f"Runner.pruning_fractions={pruning_fractions!r} is not accepted; "
                         "accepted: (begin, end) with 0 <= begin < end <= 1, or None.")
    self.pruning_fractions = pruning_fractions

    tf.random.set_seed(self.seed)
    np.random.seed(self.seed)
    self._np_rng = np.random.default_rng(self.seed)
    if env_fn is None:
      env_fn = self._make_suite_env
    self._env_kwargs = dict(env_kwargs or {})
    self._eval_env_kwargs = dict(eval_env_kwargs or {})
    self._env_fn = env_fn
    self.env = env_fn(mode="train", num_envs=self.num_envs, seed=self.seed,
                      **self._env_kwargs)
    if env_fn is not self._make_suite_env:  # Name the run after the environment it really uses.
      self.suite = getattr(self.env, "suite", suite)
      self.game = getattr(self.env, "name", game)
    self.eval_env = None
    if self.evaluation_episodes or (self.evaluation_episodes is None and self.evaluation_steps):
      self.eval_env = env_fn(mode="eval", num_envs=self.eval_num_envs, seed=self.seed + 10_000,
                             **self._eval_env_kwargs)

    # Network and agent (gin binds their hyperparameters).
    from tf_agents.specs import tensor_spec  # pylint: disable=g-import-not-at-top
    time_step_spec = ts.time_step_spec(tensor_spec.from_spec(self.env.observation_spec()))
    action_spec = tensor_spec.from_spec(self.env.action_spec())
    builder = registered["build_q_network" if kind == "q" else "build_categorical_q_network"]
    network = builder(time_step_spec.observation, action_spec)
    agent_wrapper = registered["agents"][self.agent_name]
    # Built once to read the update period, then rebuilt when a pruning schedule must be set.
    self.agent = agent_wrapper(time_step_spec, action_spec, network, seed=self.seed)
    network = self._maybe_schedule_pruning(network)
    if network is not None:
      self.agent = agent_wrapper(time_step_spec, action_spec, network, seed=self.seed)
    self.agent.initialize()
    self.network = self.agent.q_network
    if self.agent.batch_size > self.replay_capacity:
      raise ValueError(f"batch_size {self.agent.batch_size} exceeds Runner.replay_capacity "
                       f"{self.replay_capacity}.")
    self.replay = registered["ReplayBuffer"](
        capacity=self.replay_capacity, frame_shape=self.env.frame_shape,
        stack_size=self.env.stack_size, num_streams=self.num_envs, n_step=self.agent.n_step,
        gamma=self.agent.gamma, action_dtype=np.int32, seed=self.seed)

    self._checkpoint = tf.train.Checkpoint(
        q_network=self.agent.q_network, target_q_network=self.agent.target_q_network,
        optimizer=self.agent.optimizer, train_step=self.agent.train_step_counter,
        act_rng=self.agent.act_rng, epsilon=self.agent.epsilon)
    self.env_steps = 0
    self.iteration = 0
    self.paths = {
        "root": self.root_dir,
        "train": self.root_dir / "train",
        "eval": self.root_dir / "eval",
        "metrics": self.root_dir / "metrics.jsonl",
        "checkpoints": self.root_dir / "checkpoints",
        "policies": self.root_dir / "policies",
        "config": self.root_dir / "config.gin",
    }
    self.operative_config = gin.operative_config_str()

  # ---------------------------------------------------------------- construction helpers

  def _make_suite_env(self, mode, num_envs, seed, **overrides):
    from tfgap import envs  # pylint: disable=g-import-not-at-top
    return envs.make(self.suite, self.game, num_envs=num_envs, seed=seed, mode=mode, **overrides)

  def _maybe_schedule_pruning(self, network):
    """Rebuilds a pruned network with its schedule spread over this run's updates."""
    if not pruning_lib.pruning_wrappers(network) or self.pruning_fractions is None:
      return None
    kwargs = dict(network._saved_kwargs)  # pylint: disable=protected-access
    options = dict(kwargs.get("bottleneck_kwargs") or {})
    total_steps = self.num_iterations * self.training_steps
    updates = max(1, (total_steps - self.agent.min_replay_history) // self.agent.update_period)
    frequency = int(options.get("frequency", 1000))
    frequency = max(1, min(frequency, updates // 10 or 1))
    begin, end = self.pruning_fractions
    options.update(pruning_lib.schedule_steps(updates, begin, end, frequency))
    kwargs["bottleneck_kwargs"] = options
    return type(network)(**kwargs)

  # ---------------------------------------------------------------- the loop

  def run(self):
    """Trains for the remaining iterations; returns the list of metrics records written."""
    self.root_dir.mkdir(parents=True, exist_ok=True)
    self._check_config()
    start = self._restore_latest()
    self.train_writer = tf.summary.create_file_writer(str(self.paths["train"]))
    self.eval_writer = tf.summary.create_file_writer(str(self.paths["eval"]))
    self._trim_metrics(start)
    records = []
    # Environments restart their episodes on resume (emulator state is not checkpointed); a
    # fresh seed per resumed iteration avoids replaying the same episodes.
    if start > 0:
      self._reseed_envs(start)
    self._time_step = _as_batched(self.env.reset(), self.env.batched)
    self.replay.add_time_step(self._time_step)
    bar = self._progress(start)
    try:
      for iteration in range(start, self.num_iterations):
        self.iteration = iteration
        train = self._train_phase(iteration, bar)
        self._stop_prefetch()
        evaluation = None
        if (iteration + 1) % self.eval_period == 0 or iteration + 1 == self.num_iterations:
          evaluation = self._eval_phase()
        record = self._record(iteration, train, evaluation)
        self._write_summaries(record)
        self._append_metrics(record)
        if self.export_policies:
          self._export_policy(iteration)
        self._save_checkpoint(iteration)
        records.append(record)
        if bar is not None:
          bar.write(self._describe(record))
        else:
          print(self._describe(record), flush=True)
    finally:
      self._stop_prefetch()
      if bar is not None:
        bar.close()
      self.train_writer.flush()
      self.eval_writer.flush()
    self._print_locations()
    return records

  def _train_phase(self, iteration, bar):
    """`training_steps` agent steps: act, step, store, update. Returns the phase's statistics."""
    agent, env, replay = self.agent, self.env, self.replay
    returns, losses = [], []
    steps, since_update, since_summary = 0, 0, 0
    start = time.perf_counter()
    last_bar = start
    while steps < self.training_steps:
      epsilon = agent.epsilon_at(self.env_steps)
      observation = self._time_step.observation
      if epsilon >= 1.0:  # Warm-up: uniform actions, no forward pass needed.
        action = self._np_rng.integers(0, agent.num_actions, size=self.num_envs)
      else:
        action = agent.act(observation, epsilon)
      time_step = env.step(action if env.batched else action[0])
      self._time_step = _as_batched(time_step, env.batched)
      replay.add_time_step(self._time_step, action)
      self.env_steps += self.num_envs
      steps += self.num_envs
      since_update += self.num_envs
      since_summary += self.num_envs
      for episode in env.pop_episode_stats():
        returns.append(episode["return"])
        with self.train_writer.as_default(step=self.env_steps):
          tf.summary.scalar("episode_return", episode["return"])
          tf.summary.scalar("episode_length", episode["length"])

      while since_update >= agent.update_period:
        since_update -= agent.update_period
        if (self.env_steps < agent.min_replay_history or
            replay.num_sampleable < agent.batch_size):
          continue
        batch = self._next_batch()
        loss, priorities = agent.update(batch)
        if replay.prioritized:
          replay.update_priorities(batch["indices"], priorities.numpy())
        loss = float(loss)
        if not math.isfinite(loss):
          raise NaNLossError(self._nan_message(loss))
        losses.append(loss)
        if self.dormant_period and int(agent.train_step_counter) % self.dormant_period == 0:
          self._measure_dormant(batch["observation"], self.train_writer)

      if since_summary >= self.summary_period:
        since_summary = 0
        elapsed = time.perf_counter() - start
        with self.train_writer.as_default(step=self.env_steps):
          tf.summary.scalar("epsilon", epsilon)
          tf.summary.scalar("steps_per_sec", steps / max(elapsed, 1e-9))
          if losses:
            tf.summary.scalar("loss", losses[-1])
      if bar is not None:
        bar.update(self.num_envs)
        now = time.perf_counter()
        if now - last_bar > 1.0:
          last_bar = now
          bar.set_postfix(steps_s=f"{steps / (now - start):.0f}",
                          ret=returns[-1] if returns else None,
                          loss=f"{losses[-1]:.4f}" if losses else None,
                          eps=f"{epsilon:.3f}", refresh=False)
    return _PhaseStats(returns, losses, steps, time.perf_counter() - start)

  def _next_batch(self):
    """A replay batch: sampled ahead by the prefetcher (started on first use) or inline."""
    if not self.prefetch_depth:
      return self.replay.sample(self.agent.batch_size)
    if self._batches is None:
      self._batches = self.replay.prefetch(self.agent.batch_size, depth=self.prefetch_depth)
    return next(self._batches)

  def _stop_prefetch(self):
    if self._batches is not None:
      self._batches.close()
      self._batches = None

  def _eval_phase(self):
    """Evaluation episodes at epsilon_eval (noise of noisy nets off); raw game scores."""
    if self.eval_env is None:
      return None
    env, agent = self.eval_env, self.agent
    networks.set_noise(agent.q_network, False)
    try:
      env.pop_episode_stats()
      time_step = _as_batched(env.reset(), env.batched)
      returns, steps = [], 0
      # After the step budget, only episodes already running may finish (Dopamine semantics).
      finished_after_budget = np.zeros(env.num_envs if env.batched else 1, bool)
      start = time.perf_counter()
      while True:
        action = agent.act(time_step.observation, agent.epsilon_eval)
        time_step = _as_batched(env.step(action if env.batched else action[0]), env.batched)
        steps += self.eval_num_envs
        budget_reached = (self.evaluation_episodes is None and steps >= self.evaluation_steps)
        for episode in env.pop_episode_stats():
          if not finished_after_budget[episode["env_id"]]:
            returns.append(episode["return"])
          if budget_reached:
            finished_after_budget[episode["env_id"]] = True
        if self.evaluation_episodes is not None:
          if len(returns) >= self.evaluation_episodes:
            returns = returns[:self.evaluation_episodes]
            break
        elif budget_reached and finished_after_budget.all():
          break
      return _PhaseStats(returns, [], steps, time.perf_counter() - start)
    finally:
      networks.set_noise(agent.q_network, True)

  # ---------------------------------------------------------------- metrics and summaries

  def _record(self, iteration, train, evaluation):
    net = self.network
    record = {
        "iteration": iteration,
        "env_steps": self.env_steps,
        "train_steps": int(self.agent.train_step_counter.numpy()),
        "suite": self.suite,
        "game": self.game,
        "seed": self.seed,
        "agent": self.agent_name,
        "encoder": getattr(net, "encoder_name", None),
        "bottleneck": getattr(net, "bottleneck_name", None),
        "width_scale": getattr(net, "width_scale", None),
        "train_return": _mean(train.returns),
        "train_episodes": len(train.returns),
        "eval_return": _mean(evaluation.returns) if evaluation else None,
        "eval_returns": [float(r) for r in evaluation.returns] if evaluation else [],
        "loss": _mean(train.losses),
        "steps_per_sec": train.steps / max(train.seconds, 1e-9),
        "epsilon": self.agent.epsilon_at(self.env_steps),
        "time": time.time(),
    }
    if evaluation:
      record["eval_steps_per_sec"] = evaluation.steps / max(evaluation.seconds, 1e-9)
    if self.agent.pruned:
      rows = pruning_lib.sparsity_report(net)
      size = sum(r["size"] for r in rows)
      record["sparsity"] = sum(r["pruned"] for r in rows) / size if size else 0.0
      record["sparsity_target"] = rows[0]["target"] if rows else 0.0
    if self.dormant_batch_size and self.replay.num_sampleable >= self.dormant_batch_size:
      observations = self.replay.sample(self.dormant_batch_size)["observation"]
      record.update(self._measure_dormant(observations, None))
    return record

  def _measure_dormant(self, observations, writer):
    try:
      from tfgap.analysis import dormant  # pylint: disable=g-import-not-at-top
    except ImportError:  # analysis is optional for training.
      return {}
    metrics = dormant.dormant_fractions(self.network, observations,
                                        self.dormant_taus).group_metrics()
    if writer is not None:
      with writer.as_default(step=self.env_steps):
        for name, value in metrics.items():
          tf.summary.scalar(name, value)
    return metrics

  def _write_summaries(self, record):
    with self.train_writer.as_default(step=self.env_steps):
      for key in ("train_return", "loss", "steps_per_sec", "epsilon", "sparsity",
                  "sparsity_target"):
        if record.get(key) is not None:
          tf.summary.scalar(key, record[key])
      for key, value in record.items():
        if key.startswith("dormant/"):
          tf.summary.scalar(key, value)
    if record["eval_return"] is not None:
      with self.eval_writer.as_default(step=self.env_steps):
        tf.summary.scalar("eval_return", record["eval_return"])
        tf.summary.histogram("eval_returns", record["eval_returns"])
    self.train_writer.flush()
    self.eval_writer.flush()

  def _append_metrics(self, record):
    with open(self.paths["metrics"], "a") as f:
      f.write(json.dumps(record) + "\n")
      f.flush()
      os.fsync(f.fileno())

  def _trim_metrics(self, start):
    """Drops lines of iterations >= start (written before a crash, redone now)."""
    path = self.paths["metrics"]
    if not path.exists():
      return
    kept = []
    for line in path.read_text().splitlines():
      try:
        if json.loads(line)["iteration"] < start:
          kept.append(line)
      except (ValueError, KeyError, TypeError):
        continue  # A line cut by a crash.
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)

  def _describe(self, record):
    def fmt(v):
      return "n/a" if v is None else f"{v:.2f}"
    return (f"iteration {record['iteration'] + 1}/{self.num_iterations}: env steps "
            f"{record['env_steps']}, updates {record['train_steps']}, train return "
            f"{fmt(record['train_return'])}, eval return {fmt(record['eval_return'])} "
            f"({len(record['eval_returns'])} episodes), loss {fmt(record['loss'])}, "
            f"{record['steps_per_sec']:.1f} steps/s")

  def _nan_message(self, loss):
    latest = self._checkpoints()
    where = f"the last good checkpoint is {latest[-1]}" if latest else "no checkpoint was written"
    return (f"loss became {loss} at update {int(self.agent.train_step_counter.numpy())} (env step "
            f"{self.env_steps}, iteration {self.iteration}); training stopped and {where}. Lower "
            "the learning rate or check the rewards.")

  def _progress(self, start):
    if not self.progress_bar:
      return None
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    total = self.num_iterations * self.training_steps
    return tqdm(total=total, initial=min(self.env_steps, total), unit="step", dynamic_ncols=True,
                desc=f"{self.agent_name} {self.game}", mininterval=1.0)

  def _print_locations(self):
    p = self.paths
    policies = sorted(p["policies"].glob(POLICY_PREFIX + "*")) if p["policies"].exists() else []
    checkpoints = self._checkpoints()
    lines = [
        f"Run finished: {self.num_iterations} iterations, {self.env_steps} env steps, "
        f"{int(self.agent.train_step_counter.numpy())} updates.",
        f"  root dir:     {p['root']}",
        f"  metrics:      {p['metrics']}",
        f"  TensorBoard:  tensorboard --logdir {p['root']}  ({p['train']}, {p['eval']})",
        f"  checkpoints:  {checkpoints[-1] if checkpoints else 'none'}",
        f"  policy:       {policies[-1] if policies else 'none'} (PolicySaver SavedModel; "
        "`import tensorflow_probability` before tf.saved_model.load)",
        f"  config:       {p['config']}",
    ]
    print("\n".join(lines), flush=True)

  # ---------------------------------------------------------------- config, checkpoints, export

  def _check_config(self):
    path = self.paths["config"]
    if path.exists():
      saved = path.read_text()
      if _normalise(saved) != _normalise(self.operative_config):
        diff = "\n".join(difflib.unified_diff(
            _normalise(saved), _normalise(self.operative_config), "saved config.gin",
            "this run", lineterm="", n=0))
        if not self.force:
          raise ConfigMismatchError(
              f"{self.root_dir} holds a run with another configuration; pass --force (or "
              f"Runner.force=True) to continue it with this one, or pick another --root_dir. "
              f"Differences:\n{diff}")
        logging.warning("Continuing %s with a changed configuration (--force):\n%s",
                        self.root_dir, diff)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(self.operative_config)
    os.replace(tmp, path)

  def _checkpoints(self):
    folder = self.paths["checkpoints"]
    if not folder.exists():
      return []
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX))

  def _staging(self, kind, prefix, iteration):
    """`(final, tmp)` paths of iteration's folder under paths[kind]; no stale `tmp` is left."""
    folder = self.paths[kind]
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{prefix}{iteration:06d}"
    tmp = folder / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
      shutil.rmtree(tmp)
    return final, tmp

  def _save_checkpoint(self, iteration):
    final, tmp = self._staging("checkpoints", CHECKPOINT_PREFIX, iteration)
    tmp.mkdir()
    self._checkpoint.write(str(tmp / "tf" / "state"))
    # The folder's MANIFEST (commit_folder) already records a CRC-32 of every replay file and
    # _restore_latest verifies it before restoring, so the replay's own CRC pass would be a second
    # read of gigabytes on every save and restore.
    self.replay.save(str(tmp / "replay"), checksum=False)
    state = {
        "iteration": iteration,
        "env_steps": self.env_steps,
        "train_steps": int(self.agent.train_step_counter.numpy()),
        "numpy_rng": self._np_rng.bit_generator.state,
        "numpy_global": _global_numpy_state(),
        "config": self.operative_config,
    }
    (tmp / "state.json").write_text(json.dumps(state))
    common.commit_folder(tmp, final)
    for old in self._checkpoints()[:-self.keep_checkpoints]:
      shutil.rmtree(old, ignore_errors=True)

  def _restore_latest(self):
    """Restores the newest valid checkpoint; returns the iteration to start from."""
    folder = self.paths["checkpoints"]
    if folder.exists():
      for stale in folder.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # Interrupted writes.
    for candidate in reversed(self._checkpoints()):
      try:
        common.verify_folder(candidate)
        state = json.loads((candidate / "state.json").read_text())
        status = self._checkpoint.read(str(candidate / "tf" / "state"))
        status.assert_existing_objects_matched()
        self.replay.restore(str(candidate / "replay"))
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("Skipping checkpoint %s: %s", candidate, e)
        print(f"WARNING: skipping unusable checkpoint {candidate}: {e}", file=sys.stderr)
        continue
      self.env_steps = int(state["env_steps"])
      self._np_rng.bit_generator.state = state["numpy_rng"]
      _set_global_numpy_state(state["numpy_global"])
      logging.info("Resumed from %s (iteration %d).", candidate, state["iteration"])
      print(f"Resuming from {candidate} (iteration {state['iteration'] + 1} done, "
            f"{self.env_steps} env steps).", flush=True)
      return int(state["iteration"]) + 1
    return 0

  def _reseed_envs(self, start):
    # TF-side randomness (noisy nets) also restarts from a seed that depends on the iteration.
    tf.random.set_seed(self.seed + 1_000 * start)
    self.env.close()
    self.env = self._env_fn(mode="train", num_envs=self.num_envs,
                            seed=self.seed + 1_000 * start, **self._env_kwargs)

  def _export_policy(self, iteration):
    from tf_agents.policies import policy_saver  # pylint: disable=g-import-not-at-top
    final, tmp = self._staging("policies", POLICY_PREFIX, iteration)
    networks.set_noise(self.agent.q_network, False)  # The exported policy is deterministic.
    try:
      if self.agent.pruned:
        pruning_lib.apply_masks(self.agent.q_network)
      saver = policy_saver.PolicySaver(self.agent.policy, batch_size=None,
                                       train_step=self.agent.train_step_counter)
      with warnings.catch_warnings():
        # Loading needs `import tensorflow_probability`; the locations printout says so.
        warnings.filterwarnings("ignore", message="Encoding a StructuredValue")
        saver.save(str(tmp))
    finally:
      networks.set_noise(self.agent.q_network, True)
    if final.exists():
      shutil.rmtree(final)
    os.rename(tmp, final)


def _normalise(config):
  """Config lines without comments and blank lines (gin adds comment headers)."""
  return [line.rstrip() for line in config.splitlines()
          if line.strip() and not line.lstrip().startswith("#")]


def _global_numpy_state():
  name, keys, pos, has_gauss, cached = np.random.get_state()
  return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_global_numpy_state(state):
  name, keys, pos, has_gauss, cached = state
  np.random.set_state((name, np.array(keys, np.uint32), pos, has_gauss, cached))


# ------------------------------------------------------------------ command line

flags.DEFINE_string("root_dir", None, "Output folder (resumed if it holds a run).")
flags.DEFINE_multi_string("gin_file", [], "gin config files (paths or packaged names, e.g. "
                          "demo.gin); later files override earlier ones.")
flags.DEFINE_multi_string("gin_bindings", [], "gin bindings, e.g. \"Runner.game='Breakout'\".")
flags.DEFINE_boolean("force", False, "Continue a run in root_dir whose saved config differs.")
flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads (0: TF's default, one "
                     "per core).")
flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads (0: TF's default).")
FLAGS = flags.FLAGS


_NOISE = ("is not a valid tf.function parameter name", "Found untraced functions",
          "Assets written to", "Writing fingerprint", "with unsupported characters",
          "system_path_file_exists", "gin-config opened", "Path not found:")


class _DropNoise(std_logging.Filter):
  """Drops the INFO/WARNING chatter of PolicySaver and gin that says nothing about the run."""

  def filter(self, record):
    message = str(record.getMessage())
    return not any(n in message for n in _NOISE)


def quiet_logs(verbose=False):
  """Keeps the console to the progress bar, the per-iteration lines and real warnings."""
  if not verbose:
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
  noise = _DropNoise()
  for logger in (std_logging.getLogger(), std_logging.getLogger("absl"), tf.get_logger()):
    logger.addFilter(noise)
  for handler in std_logging.getLogger().handlers + [logging.get_absl_handler()]:
    handler.addFilter(noise)


def parse_config(gin_files, gin_bindings):
  """Registers tfgap with gin and parses files and bindings; clear ValueErrors on bad input."""
  common.register_gin()
  files = [common.resolve_gin_file(f) for f in gin_files]
  quiet = _DropGinSearchNoise()
  std_logging.getLogger().addFilter(quiet)
  try:
    gin.parse_config_files_and_bindings(files, gin_bindings, finalize_config=False)
  except (ValueError, KeyError, SyntaxError, IOError) as e:
    raise ValueError(f"gin config error in {files} / bindings {list(gin_bindings)}: {e}") from e
  finally:
    std_logging.getLogger().removeFilter(quiet)


class _DropGinSearchNoise(std_logging.Filter):
  """gin logs an error for every include it then finds on the search path (the config folder)."""

  def filter(self, record):
    return not str(record.getMessage()).startswith("Path not found:")


def train(root_dir, gin_files=(), gin_bindings=(), force=False):
  """Parses the config and runs a `Runner` in root_dir; returns its metrics records."""
  gin.clear_config()
  parse_config(gin_files, gin_bindings)
  runner = Runner(root_dir, force=force)
  return runner.run()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.root_dir:
    raise app.UsageError("--root_dir is required.")
  if not FLAGS.gin_file and not FLAGS.gin_bindings:
    raise app.UsageError("Give at least one --gin_file (e.g. tfgap/launch/configs/demo.gin).")
  quiet_logs(verbose=FLAGS["verbosity"].present)
  # Thread pools are fixed when TensorFlow runs its first op, which has not happened yet here.
  if FLAGS.intra_op_threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
  if FLAGS.inter_op_threads:
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
  try:
    train(FLAGS.root_dir, FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.force)
  except (ValueError, NaNLossError) as e:
    print(f"ERROR: {e}", file=sys.stderr, flush=True)
    sys.exit(1)


def run():
  """Console entry point `tfgap-train`."""
  app.run(main)


if __name__ == "__main__":
  run()
