"""The training loop of one run: act, store, update, summarize, checkpoint.

`Runner(root_dir)` builds a run from the gin bindings (`Runner.*` configure
`tfgap.launch.experiment.RunConfig`; the builders, agents and replay have their own names) and
`run()` trains it. Each iteration runs `training_steps` agent steps (act, step the environment,
store the transition, update every `update_period` steps once `min_replay_history` steps are
stored; acting in a thread beside the learner or inline: `Runner.acting`), evaluates when due,
appends a line to `metrics.jsonl`, exports the greedy policy and writes a checkpoint. Rerunning
in the same `root_dir` resumes from the newest valid checkpoint.
"""

import dataclasses
import difflib
import json
import math
import os
import time
import warnings

from absl import logging
import numpy as np
import tensorflow as tf

from tfgap import networks
from tfgap.compat import keras
from tfgap.launch import acting
from tfgap.launch import checkpoints as checkpoints_lib
from tfgap.launch import common
from tfgap.launch import experiment
from tfgap.launch import records as records_lib
from tfgap.launch import rundir
from tfgap.networks import pruning as pruning_lib

POLICY_PREFIX = "iter_"


class ConfigMismatchError(ValueError):
  """The root_dir holds a run with another configuration (rerun with --force to accept)."""


class NaNLossError(RuntimeError):
  """The loss became NaN or infinite; the run stopped before writing a checkpoint."""


@dataclasses.dataclass
class PhaseStats:
  returns: list
  losses: list
  steps: int
  seconds: float
  truncated: int = 0  # Episodes cut by the env's step cap (their return is not a game's end).


@dataclasses.dataclass
class AgentStep:
  """One agent step (over every environment) as the actor hands it to the learner."""
  n: int  # Agent steps taken: one per environment.
  env_steps: int  # The run's agent steps after this one.
  epsilon: float  # The training epsilon it acted with (None for SAC).
  updates: int  # Gradient updates it owes (update_period, min_replay_history).
  episodes: list  # Stats of the episodes that ended at it (env.pop_episode_stats()).


def _batched(time_step, batched):
  """Adds a batch axis to an unbatched environment's time step."""
  if batched:
    return time_step
  return tf.nest.map_structure(lambda x: np.asarray(x)[None], time_step)


def _episode_quotas(episodes, num_envs):
  """Episodes each of `num_envs` evaluation envs contributes to `episodes` (None: step budget)."""
  if episodes is None:
    return None
  base, extra = divmod(int(episodes), num_envs)
  return np.array([base + (i < extra) for i in range(num_envs)], dtype=np.int64)


class Runner:
  """Builds a run (through `tfgap.launch.experiment`) and trains it.

  Args:
    root_dir: output folder (created; a run already there is resumed).
    config: a `RunConfig`; None reads the gin bindings (`Runner.*`).
    force: accept a root_dir whose saved configuration differs (also `Runner.force`).
    **overrides: RunConfig fields that override the gin bindings.

  Raises:
    ValueError: on a bad setting, before any training.
  """

  def __init__(self, root_dir, *, config=None, force=None, restart=None, **overrides):
    if config is None:
      config = experiment.configured(**overrides)
    elif overrides:
      config = config.replace(**overrides)
    if force is not None:
      config = config.replace(force=bool(force))
    if restart is not None:
      config = config.replace(restart=bool(restart))
    self.config = config
    self.paths = rundir.RunPaths(root_dir)
    self.root_dir = self.paths.root
    self.checkpointer = checkpoints_lib.Checkpointer(self.paths.checkpoints,
                                                     keep=config.keep_checkpoints)
    self._build()
    # After the build: gin's operative config lists the calls made (builders, agent, replay).
    self.operative_config = common.operative_config()

  def _build(self):
    """(Re)builds environments, network, agent and replay with fresh variables."""
    config = self.config
    # TF's, numpy's and Python's global seeds, and Keras' seed generator: unseeded Keras
    # initializers draw their seeds from it (from Python's `random` without it), so without
    # this the same seed started from other weights in every process.
    keras.utils.set_random_seed(config.seed)
    self._np_rng = np.random.default_rng(config.seed)
    self.experiment = experiment.build(config)
    self.suite, self.game = self.experiment.suite, self.experiment.game
    self.env, self.eval_env = self.experiment.env, self.experiment.eval_env
    self.agent, self.replay = self.experiment.agent, self.experiment.replay
    self.network = self.agent.q_network
    self.agent_name = config.agent
    self.acting = config.acting_mode
    self._acting_lag = acting.lag(self.acting, self.agent.update_period,
                                  self.env.num_envs if self.env.batched else 1)
    # SAC names its own state (temperature, its optimizer, update RNG); the DQN family this.
    items = getattr(self.agent, "checkpoint_items", None)
    self._tf_state = tf.train.Checkpoint(**(items() if items else dict(
        q_network=self.agent.q_network, target_q_network=self.agent.target_q_network,
        optimizer=self.agent.optimizer, train_step=self.agent.train_step_counter,
        act_rng=self.agent.act_rng, epsilon=self.agent.epsilon)))
    self._update_parts = None  # SAC's loss parts of the last update, for the summaries.
    self._batches = None  # The running replay prefetcher, if any.
    self.env_steps = 0
    self.iteration = 0

  # ---------------------------------------------------------------- the loop

  def run(self, on_record=None):
    """Trains for the remaining iterations; returns the list of metrics records written.

    Args:
      on_record: optional callable receiving each iteration's record once it is in metrics.jsonl
        (e.g. a study reporting progress to its scheduler).
    """
    config = self.config
    with rundir.RunLock(self.paths):
      self.paths.make()
      if config.restart:
        self._set_aside_old_run()
      self._check_config()
      self.checkpointer.clean_staging()
      rundir.clean_policy_staging(self.paths)
      start, saved_records = self.restore()
      # Only a run that will train records its config: a refused one leaves config.gin as it was.
      common.write_atomically(self.paths.config, self.operative_config)
      self.metrics = records_lib.MetricsLog(self.paths.metrics, records_lib.make_loggers(
          config.loggers, self.paths.root, project=config.wandb_project,
          config=dataclasses.asdict(config)))
      # Every checkpoint's record, not only the restored one's, can rebuild a damaged line.
      self.metrics.rewind(start, {**self.checkpointer.records(), **saved_records})
      self.summaries = records_lib.Summaries(self.paths.root,
                                             resume_step=self.env_steps if start else None)
      self.summaries.config(self.operative_config)
      if start > 0:
        self._reseed_envs(start)
      self._time_step = _batched(self.env.reset(), self.env.batched)
      self.replay.add_time_step(self._time_step)
      bar = self._progress()
      self._print(bar, self._start_line())
      written = []
      try:
        for iteration in range(start, config.num_iterations):
          self.iteration = iteration
          train = self._train_phase(bar)
          self._stop_prefetch()
          evaluation = self._eval_phase() if config.evaluates_after(iteration) else None
          record = self._record(iteration, train, evaluation)
          self.summaries.iteration(record)
          self.metrics.append(record)
          if on_record is not None:
            on_record(record)
          if config.export_policies:
            self._export_policy(iteration)
          self._save_checkpoint(iteration, record)
          written.append(record)
          self._print(bar, records_lib.describe(record, config.num_iterations))
      finally:
        self._stop_prefetch()
        if bar is not None:
          bar.close()
        self.summaries.flush()
        self.metrics.close()
      self._print_locations()
    return written

  def _train_phase(self, bar):
    """`training_steps` agent steps: act, step, store, update. Returns the phase's statistics.

    The agent's steps come from `_agent_steps`, run by the actor `Runner.acting` chose (this
    thread, or an actor thread beside it); here the learner takes them in order and runs the
    updates each one owes, then writes the summaries and moves the progress bar.
    """
    stats = PhaseStats([], [], 0, 0.0)
    since_summary = 0
    start = last_bar = time.perf_counter()
    agent_steps = self._agent_steps(self.config.training_steps)
    with acting.actor(agent_steps, self.acting, self._acting_lag) as agent_steps:
      for step in agent_steps:
        stats.steps += step.n
        since_summary += step.n
        self._collect_episodes(stats, step.episodes, step.env_steps)

        for _ in range(step.updates):
          stats.losses.append(self._update(step.env_steps))

        if since_summary >= self.config.summary_period:
          since_summary = 0
          self.summaries.scalars(step.env_steps, {
              "epsilon": step.epsilon,
              "steps_per_sec": stats.steps / max(time.perf_counter() - start, 1e-9),
              "loss": stats.losses[-1] if stats.losses else None,
              **{f"sac/{k}": float(v) for k, v in (self._update_parts or {}).items()}})
        if bar is not None:
          bar.update(step.n)
          now = time.perf_counter()
          if now - last_bar > 1.0:
            last_bar = now
            bar.set_postfix(steps_s=f"{stats.steps / (now - start):.0f}",
                            ret=stats.returns[-1] if stats.returns else None,
                            loss=f"{stats.losses[-1]:.4f}" if stats.losses else None,
                            eps=None if step.epsilon is None else f"{step.epsilon:.3f}",
                            refresh=False)
    stats.seconds = time.perf_counter() - start
    return stats

  def _agent_steps(self, budget):
    """The actor: `budget` agent steps of act, step, store, each yielded as an `AgentStep`.

    A step owes one update per `update_period` agent steps once learning has started, decided
    right after its transition is stored; the learner runs exactly those.
    """
    agent, steps, since_update = self.agent, 0, 0
    while steps < budget:
      epsilon = agent.epsilon_at(self.env_steps)
      action = self._act(self._time_step.observation, epsilon)
      self._time_step = _batched(self.env.step(action if self.env.batched else action[0]),
                                 self.env.batched)
      self.replay.add_time_step(self._time_step, action)
      n = len(action)
      self.env_steps += n
      steps += n
      since_update += n
      updates = 0
      while since_update >= agent.update_period:
        since_update -= agent.update_period
        updates += self._learning_started()
      yield AgentStep(n, self.env_steps, epsilon, updates, self.env.pop_episode_stats())

  def _act(self, observation, epsilon):
    """Actions for a batch of observations (uniform during warm-up, no forward pass)."""
    if getattr(self.agent, "continuous_actions", False):
      # SAC: uniform in the action bounds for the first min_replay_history agent steps (Dopamine's
      # SACAgent acts randomly until the replay holds min_replay_history transitions), then a
      # sample of the policy; no epsilon.
      if self.env_steps < self.agent.min_replay_history:
        low, high = self.agent.action_bounds
        return self._np_rng.uniform(low, high, size=(len(observation),) + low.shape).astype(
            np.float32)
      return self.agent.act(observation)
    if epsilon >= 1.0:
      return self._np_rng.integers(0, self.agent.num_actions, size=len(observation))
    return self.agent.act(observation, epsilon)

  def _collect_episodes(self, stats, episodes, env_steps):
    """Counts the episodes that ended at agent step `env_steps` into `stats` and the summaries."""
    for episode in episodes:
      stats.returns.append(episode["return"])
      stats.truncated += bool(episode.get("truncated"))
    if episodes:  # Parallel envs may end several at one step: one point, their mean.
      self.summaries.scalars(env_steps, {
          "episode_return": float(np.mean([e["return"] for e in episodes])),
          "episode_length": float(np.mean([e["length"] for e in episodes]))})

  def _learning_started(self):
    return (self.env_steps >= self.agent.min_replay_history and
            self.replay.num_sampleable >= self.agent.batch_size)

  def _update(self, env_steps):
    """One gradient update on a replay batch; returns its loss (stops the run on NaN).

    Args:
      env_steps: the agent steps the update is owed at, which its summaries and a NaN message
        name (an actor thread may already be past them).
    """
    batch = self._next_batch()
    result = self.agent.update(batch)
    loss, priorities = result
    self._update_parts = getattr(result, "parts", None)
    loss = float(loss)
    # The compiled step checks loss, priorities and the updated weights; a step that broke any
    # of them stops the run before priorities are written or a checkpoint is saved.
    finite = bool(getattr(result, "finite", True)) and math.isfinite(loss)
    if not finite:
      bad = result.nonfinite() if hasattr(result, "nonfinite") else ("loss",)
      raise NaNLossError(self._nan_message(loss, bad, env_steps))
    if self.replay.prioritized:
      self.replay.update_priorities(batch["indices"], priorities.numpy())
      # Beta anneals over the learner's updates, not over the batches drawn.
      self.replay.set_learner_step(int(self.agent.train_step_counter))
    period = self.config.dormant_period
    if period and int(self.agent.train_step_counter) % period == 0:
      metrics = self._dormant(batch["observation"])
      self.summaries.scalars(env_steps, metrics)
    return loss

  def _next_batch(self):
    """A replay batch: sampled ahead by the prefetcher (started on first use) or inline."""
    depth = self.config.prefetch_depth
    if not depth:
      return self.replay.sample(self.agent.batch_size)
    if self._batches is None:
      self._batches = self.replay.prefetch(self.agent.batch_size, depth=depth)
    return next(self._batches)

  def _stop_prefetch(self):
    if self._batches is not None:
      self._batches.close()
      self._batches = None

  def _eval_phase(self):
    """Evaluation episodes at epsilon_eval (noise of noisy nets off); raw game scores."""
    env, agent, config = self.eval_env, self.agent, self.config
    networks.set_noise(agent.q_network, False)
    try:
      env.pop_episode_stats()
      time_step = _batched(env.reset(), env.batched)
      returns, steps, truncated = [], 0, 0
      num_envs = env.num_envs if env.batched else 1
      # After the step budget, only episodes already running may finish (Dopamine semantics).
      finished_after_budget = np.zeros(num_envs, bool)
      # A fixed episode count is split into per-env quotas, each env giving its first episodes:
      # taking the first N episodes to end over all envs would favour short episodes.
      quota = _episode_quotas(config.evaluation_episodes, num_envs)
      start = time.perf_counter()
      continuous = getattr(agent, "continuous_actions", False)
      while True:
        # SAC evaluates its mean action (Dopamine's eval mode), the DQN family at epsilon_eval.
        action = (agent.act(time_step.observation, greedy=True) if continuous else
                  agent.act(time_step.observation, agent.epsilon_eval))
        time_step = _batched(env.step(action if env.batched else action[0]), env.batched)
        steps += len(action)
        budget_reached = (config.evaluation_episodes is None and
                          steps >= config.evaluation_steps)
        for episode in env.pop_episode_stats():
          env_id = episode["env_id"]
          if quota is not None:
            counts = quota[env_id] > 0
            quota[env_id] -= counts
          else:
            counts = not finished_after_budget[env_id]
            finished_after_budget[env_id] |= budget_reached
          if counts:
            returns.append(episode["return"])
            truncated += bool(episode.get("truncated"))
        if quota is not None:
          if not quota.any():
            break
        elif budget_reached and finished_after_budget.all():
          break
      return PhaseStats(returns, [], steps, time.perf_counter() - start, truncated)
    finally:
      networks.set_noise(agent.q_network, True)

  # ---------------------------------------------------------------- records

  def _record(self, iteration, train, evaluation):
    net = self.network
    record = {
        "iteration": iteration,
        "env_steps": self.env_steps,
        "train_steps": int(self.agent.train_step_counter.numpy()),
        "suite": self.suite,
        "game": self.game,
        "seed": self.config.seed,
        "agent": self.agent_name,
        "encoder": getattr(net, "encoder_name", None),
        "bottleneck": getattr(net, "bottleneck_name", None),
        "width_scale": getattr(net, "width_scale", None),
        "precision": getattr(self.agent, "precision", None),
        "acting": self.acting,
        "variant": self.config.variant,
        "train_return": records_lib.mean_or_none(train.returns),
        "train_episodes": len(train.returns),
        "train_truncated": train.truncated,
        "eval_return": records_lib.mean_or_none(evaluation.returns) if evaluation else None,
        "eval_returns": [float(r) for r in evaluation.returns] if evaluation else [],
        "eval_truncated": evaluation.truncated if evaluation else None,
        "loss": records_lib.mean_or_none(train.losses),
        "steps_per_sec": train.steps / max(train.seconds, 1e-9),
        "epsilon": self.agent.epsilon_at(self.env_steps),
        "time": time.time(),
    }
    if getattr(self.agent, "continuous_actions", False):
      record["temperature"] = self.agent.temperature  # SAC's alpha after the iteration.
    record["score_source"] = self._score_source()
    record["score"] = record[f"{record['score_source']}_return"]
    if evaluation:
      record["eval_steps_per_sec"] = evaluation.steps / max(evaluation.seconds, 1e-9)
    if getattr(net, "parts", None) is not None:
      # Live parameters and sparsity per part (every network; masked weights count as dead),
      # plus `sparsity`/`sparsity_target` of the sparse kernels (GMP, static, SET, RigL).
      from tfgap.networks import sparse  # pylint: disable=g-import-not-at-top
      parts = sparse.part_metrics(net)
      record.update(parts)
      self.summaries.scalars(self.env_steps, {k: v for k, v in parts.items() if "/" in k})
    size = self.config.dormant_batch_size
    if size and self.replay.num_sampleable >= size:
      # A probe of its own: it must not move the replay's sampling RNG (the run would differ
      # with and without dormant measurements).
      probe = np.random.default_rng([self.config.seed, iteration, 0x5EED])
      record.update(self._dormant(self.replay.sample(size, rng=probe)["observation"]))
    return record

  def _score_source(self):
    """The config's score source, with a custom env_fn's suite name (run_name) for "auto"."""
    if self.config.score != "auto":
      return self.config.score
    return self.config.replace(suite=self.suite).score_source

  def _dormant(self, observations):
    from tfgap.analysis import dormant  # pylint: disable=g-import-not-at-top
    return dormant.dormant_fractions(self.network, observations,
                                     self.config.dormant_taus).group_metrics()

  def _start_line(self):
    """The run's first line: what trains, in which precision and with which compilation."""
    precision = getattr(self.agent, "precision", None) or "float32"
    from tfgap.networks import common as net_common  # pylint: disable=g-import-not-at-top
    native, reason = net_common.bfloat16_support()  # What precision 'auto' goes by.
    why = f" (bfloat16 {'native' if native else 'not native'} here: {reason})"
    jit = getattr(self.agent, "jit_compile", None)
    return (f"tfgap {self.agent_name} on {self.suite} {self.game}: precision {precision}{why}, "
            f"update {'XLA' if jit else 'tf.function'}, acting {self.acting}")

  def _print(self, bar, line):
    if bar is not None:
      bar.write(line)
    else:
      print(line, flush=True)

  def _nan_message(self, loss, bad, env_steps):
    latest = self.checkpointer.latest()
    where = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written"
    what = " and ".join(bad) if tuple(bad) != ("loss",) else "loss"
    return (f"{what} became non-finite (loss {loss}) at update "
            f"{int(self.agent.train_step_counter.numpy())} (env step "
            f"{env_steps}, iteration {self.iteration}); training stopped and {where}. Lower "
            "the learning rate or check the rewards.")

  def _progress(self):
    if not self.config.progress_bar:
      return None
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    total = self.config.total_env_steps
    return tqdm(total=total, initial=min(self.env_steps, total), unit="step", dynamic_ncols=True,
                desc=f"{self.agent_name} {self.game}", mininterval=1.0)

  def _print_locations(self):
    p = self.paths
    policies = sorted(p.policies.glob(POLICY_PREFIX + "*")) if p.policies.exists() else []
    latest = self.checkpointer.latest()
    lines = [
        f"Run finished: {self.config.num_iterations} iterations, {self.env_steps} env steps, "
        f"{int(self.agent.train_step_counter.numpy())} updates.",
        f"  root dir:     {p.root}",
        f"  metrics:      {p.metrics}",
        f"  TensorBoard:  tensorboard --logdir {p.root}  ({p.train}, {p.eval})",
        f"  checkpoints:  {latest or 'none'}",
        f"  policy:       {policies[-1] if policies else 'none'} (PolicySaver SavedModel; "
        "`import tensorflow_probability` before tf.saved_model.load)",
        f"  config:       {p.config}",
    ]
    print("\n".join(lines), flush=True)

  # ---------------------------------------------------------------- config, checkpoints, export

  def _saved_config(self):
    """(the config the run directory was trained with, where it was read) or (None, None).

    config.gin first; without it (deleted or lost), the newest checkpoint's copy.
    """
    path = self.paths.config
    if path.exists():
      try:
        return path.read_bytes().decode("utf-8"), path
      except (OSError, UnicodeDecodeError) as err:
        raise rundir.RunDirError(f"{path} is unreadable ({err}); move it away, or pick another "
                                 "--root_dir") from err
    for candidate in reversed(self.checkpointer.list()):
      try:
        state = json.loads((candidate / "state.json").read_text())
        return str(state["config"]), candidate / "state.json"
      except (OSError, ValueError, KeyError, TypeError):
        continue
    return None, None

  def _check_config(self):
    """Refuses a root_dir whose saved config differs (a longer budget is allowed)."""
    saved, where = self._saved_config()
    if saved is not None:
      diff = config_diff(saved, self.operative_config)
      if diff:
        if not self.config.force:
          raise ConfigMismatchError(
              f"{self.root_dir} holds a run with another configuration ({where}); pass --force "
              "(or Runner.force=True) to continue it with this one, or pick another --root_dir. "
              f"Differences:\n{diff}")
        logging.warning("Continuing %s with a changed configuration (--force):\n%s",
                        self.root_dir, diff)

  def restore(self):
    """Restores the newest usable checkpoint (all-or-nothing).

    Returns:
      (the iteration to start from, {iteration: record} kept by the checkpoints).
    """
    saved_records = {}
    rejected = set()
    while True:
      for path, state in self.checkpointer.candidates():
        if isinstance(state.get("record"), dict):
          saved_records.setdefault(int(state["iteration"]), state["record"])
        if path in rejected:
          continue
        try:
          self.checkpointer.apply(path, self._tf_state, self.replay)
        except checkpoints_lib.PartialRestoreError as err:
          checkpoints_lib._warn(f"skipping unusable checkpoint {path.name}: {err.cause}")  # pylint: disable=protected-access
          rejected.add(path)
          self.experiment.close()
          self._build()  # Nothing of the rejected checkpoint may survive.
          break
        self.env_steps = int(state["env_steps"])
        if hasattr(self.agent, "env_step"):  # The agent's own exploration clock, in agent steps.
          self.agent.env_step.assign(self.env_steps)
        self._np_rng.bit_generator.state = state["numpy_rng"]
        _set_global_numpy_state(state["numpy_global"])
        print(f"Resuming from {path} (iteration {state['iteration'] + 1} done, "
              f"{self.env_steps} env steps).", flush=True)
        return int(state["iteration"]) + 1, saved_records
      else:
        if self.checkpointer.list():
          raise rundir.RunDirError(
              f"every checkpoint in {self.paths.checkpoints} is unusable (see the warnings "
              "above), so this run cannot resume; rerun with --restart (Runner.restart=True) to "
              "start it over (its metrics.jsonl and checkpoints are moved aside, not deleted), or "
              "pick another --root_dir")
        return 0, saved_records

  def _set_aside_old_run(self):
    """--restart: moves metrics.jsonl, checkpoints/ and config.gin to `*.old-<time>`."""
    suffix = time.strftime(".old-%Y%m%d-%H%M%S")
    for path in (self.paths.metrics, self.paths.checkpoints, self.paths.config):
      if path.exists():
        target = path.with_name(path.name + suffix)
        os.rename(path, target)
        print(f"--restart: moved {path} to {target}", flush=True)

  def _save_checkpoint(self, iteration, record):
    state = {
        "env_steps": self.env_steps,
        "train_steps": int(self.agent.train_step_counter.numpy()),
        "numpy_rng": self._np_rng.bit_generator.state,
        "numpy_global": _global_numpy_state(),
        "config": self.operative_config,
        "record": record,
    }
    self.checkpointer.save(iteration, self._tf_state, self.replay, state)

  def _reseed_envs(self, start):
    """Environments restart their episodes on resume (emulator state is not checkpointed); a
    fresh seed per resumed iteration avoids replaying the same episodes. TF-side randomness
    (noisy nets) also restarts from a seed that depends on the iteration."""
    seed = self.config.seed + 1_000 * start
    tf.random.set_seed(seed)
    self.env.close()
    self.env = experiment.make_env(self.config, "train", seed=seed)
    self.experiment.env = self.env

  def _policy_to_export(self):
    """The greedy policy; for pruned/sparse networks over a copy holding the masked weights
    without tfmot wrappers or mask variables, so the SavedModel carries zeros, not masks."""
    from tfgap.networks import sparse  # pylint: disable=g-import-not-at-top
    network = self.agent.q_network
    if not (getattr(self.agent, "pruned", False) or sparse.is_masked(network)):
      return self.agent.policy
    from tf_agents.policies import greedy_policy  # pylint: disable=g-import-not-at-top
    from tf_agents.policies import q_policy  # pylint: disable=g-import-not-at-top
    from tf_agents.policies import categorical_q_policy  # pylint: disable=g-import-not-at-top
    stripped = pruning_lib.strip_pruning(network)
    time_step_spec, action_spec = self.agent.time_step_spec, self.agent.action_spec
    if hasattr(stripped, "num_atoms"):
      inner = categorical_q_policy.CategoricalQPolicy(
          time_step_spec, action_spec, stripped, self.agent.v_min, self.agent.v_max)
    else:
      inner = q_policy.QPolicy(time_step_spec, action_spec, q_network=stripped)
    return greedy_policy.GreedyPolicy(inner)

  def _export_policy(self, iteration):
    from tf_agents.policies import policy_saver  # pylint: disable=g-import-not-at-top
    final, tmp = rundir.policy_staging(self.paths, f"{POLICY_PREFIX}{iteration:06d}")
    networks.set_noise(self.agent.q_network, False)  # The exported policy is deterministic.
    try:
      if self.agent.pruned:
        pruning_lib.apply_masks(self.agent.q_network)
      from tfgap.networks import sparse  # pylint: disable=g-import-not-at-top
      sparse.apply_masks(self.agent.q_network)  # The exported kernels hold the zeros.
      saver = policy_saver.PolicySaver(self._policy_to_export(), batch_size=None,
                                       train_step=self.agent.train_step_counter)
      with warnings.catch_warnings():
        # Loading needs `import tensorflow_probability`; the locations printout says so.
        warnings.filterwarnings("ignore", message="Encoding a StructuredValue")
        saver.save(str(tmp))
    finally:
      networks.set_noise(self.agent.q_network, True)
    rundir.replace_folder(tmp, final)


def config_diff(saved, current):
  """A unified diff of two operative configs, or "" when they describe the same run.

  Comments and blank lines do not count, nor `Runner.force`; a larger `Runner.num_iterations`
  extends the run's budget (as Dopamine's Runner resumes a run with more iterations).
  """
  old, new = _normalise(saved), _normalise(current)
  default = experiment.RunConfig.num_iterations
  old_iters, new_iters = _pop_iterations(old, default), _pop_iterations(new, default)
  if old == new and old_iters is not None and new_iters is not None and new_iters >= old_iters:
    return ""
  return _diff(saved, current)


def _diff(saved, current):
  return "\n".join(difflib.unified_diff(_normalise(saved), _normalise(current),
                                        "saved config.gin", "this run", lineterm="", n=0))


def _normalise(config):
  """Config lines without comments, blank lines and `Runner.force` (gin adds comment headers)."""
  return [line.rstrip() for line in config.splitlines()
          if line.strip() and not line.lstrip().startswith("#")
          and not line.replace(" ", "").startswith(("Runner.force=", "Runner.restart=",
                                                    "Runner.loggers=", "Runner.wandb_project="))]


def _pop_iterations(lines, default):
  """Removes the `Runner.num_iterations` line; returns its value (None if not an integer)."""
  for i, line in enumerate(lines):
    key, _, value = line.partition("=")
    if key.strip() == "Runner.num_iterations":
      del lines[i]
      try:
        return int(value.strip().replace("_", ""))
      except ValueError:
        return None
  return default


def _global_numpy_state():
  name, keys, pos, has_gauss, cached = np.random.get_state()
  return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_global_numpy_state(state):
  name, keys, pos, has_gauss, cached = state
  np.random.set_state((name, np.array(keys, np.uint32), pos, has_gauss, cached))


__all__ = ["Runner", "ConfigMismatchError", "NaNLossError", "config_diff", "POLICY_PREFIX"]
