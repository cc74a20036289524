"""One place that turns a run's configuration into its environment, network, agent and replay.

Everything that needs the objects of a run builds them here: the training `Runner`, the report
(`load_run_network`), `describe`, the benchmarks and the studies. The flow is Dopamine's
`create_environment_fn` / `create_agent_fn` split, with gin as the configuration language:

    config = experiment.configured()              # RunConfig from the gin bindings `Runner.*`
    env = experiment.make_env(config, "train")
    network = experiment.make_network(config, env)            # gin: build_q_network.* / ...
    agent = experiment.make_agent(config, env, network)       # gin: DQNAgent.* / RainbowAgent.*
    replay = experiment.make_replay(config, env, agent)       # gin: ReplayBuffer.*
    parts = experiment.build(config)              # all of the above, and the eval environment

`RunConfig` is registered with gin under the name `Runner`, so the bindings users write
(`Runner.game = 'Breakout'`, `Runner.num_iterations = 40`) configure it, and a run's saved
`config.gin` can be read back with `load_config`.
"""

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

import gin
import numpy as np

from tfgap import checks
from tfgap.launch import acting as acting_lib
from tfgap.launch import common


SCORES = ("train", "eval")
# Suites whose published scores are training returns (Dopamine's continuous_train schedule).
CONTINUOUS_TRAIN_SUITES = ("atari", "procgen", "minatar")


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """The settings of one training run (gin name: `Runner`).

  Attributes:
    suite: tfgap.envs suite ("atari", "atari100k", "procgen", "dmc").
    game: game or task of the suite.
    agent: "dqn", "rainbow" or "der" (discrete actions), or "sac" (continuous: "dmc").
    seed: seeds TF, numpy, the environments (eval: seed + 10,000), replay and acting.
    num_envs: parallel training environments (one replay stream each).
    num_iterations: iterations of training (+ evaluation when due).
    training_steps: agent steps (summed over environments) per iteration.
    evaluation_steps: minimum evaluation agent steps per evaluation (episodes are played to their
      end, as Dopamine does); ignored when `evaluation_episodes` is set; 0 (the default, as
      Dopamine's `continuous_train` schedule of the paper's Atari runs) skips evaluation.
    evaluation_episodes: evaluation episodes per evaluation (Atari100K: 100), or None.
    eval_period: evaluate after every `eval_period`-th iteration and after the last one.
    eval_num_envs: parallel evaluation environments.
    env_kwargs: protocol overrides of the training environment (tfgap.envs.make).
    eval_env_kwargs: protocol overrides of the evaluation environment.
    replay_capacity: stored transitions.
    env_fn: optional `env_fn(mode=..., num_envs=..., seed=..., **overrides)` returning a
      tfgap-style PyEnvironment (`frame_shape`, `stack_size`, `pop_episode_stats()`), replacing
      `tfgap.envs.make(suite, game, ...)`.
    summary_period: agent steps between TensorBoard training summaries.
    dormant_period: updates between dormant-neuron measurements during training (None: once per
      iteration only).
    dormant_taus: dormancy thresholds.
    dormant_batch_size: replay observations per dormant measurement (0 disables it).
    pruning_fractions: (begin, end) fractions of all updates over which a pruned network's
      schedule runs, replacing its begin/end steps; None keeps the network's own steps.
    keep_checkpoints: checkpoints kept (>= 1).
    export_policies: write a PolicySaver SavedModel per iteration.
    progress_bar: show a tqdm progress bar.
    prefetch_depth: replay batches a background thread samples ahead of the learner (0: inline).
    acting: who acts and steps the environments during training (`tfgap.launch.acting`):
      "inline" (the learner's thread, one step then its updates), "thread" (an actor thread
      beside the learner, a bounded lag ahead of it), "lockstep" (the thread taking turns with
      the learner: results equal "inline"'s, for tests) or "auto" (whichever pays:
      `acting_mode`). Every mode runs exactly the configured updates per agent step.
    score: which return an iteration is scored by (metrics `score`, `score_source`): "train"
      (the mean raw return of the training episodes that ended in the iteration, as Dopamine's
      continuous_train schedule reports), "eval" (the evaluation mean), or "auto": "train" for
      atari, procgen and minatar, "eval" for runs that evaluate otherwise (Atari100K: 100
      evaluation episodes).
    variant: an optional label recorded in every metrics line (`variant`), which aggregation
      uses to tell apart configurations the network fields do not (e.g. a study's axis value).
    loggers: extra loggers of the metrics records besides metrics.jsonl and metrics.csv:
      ("wandb",) sends them to Weights & Biases (`pip install tfgap[wandb]`).
    wandb_project: the W&B project; setting it turns the W&B logger on.
    force: accept a root_dir whose saved configuration differs (the `--force` flag).
    restart: start the run in root_dir over, moving its metrics and checkpoints aside (the
      `--restart` flag; needed when every checkpoint is unusable).
  """
  suite: str = "atari"
  game: str = "Pong"
  agent: str = "dqn"
  seed: int = 0
  num_envs: int = 1
  num_iterations: int = 200
  training_steps: int = 250_000
  evaluation_steps: int = 0
  evaluation_episodes: Optional[int] = None
  eval_period: int = 1
  eval_num_envs: int = 1
  env_kwargs: Optional[Dict[str, Any]] = None
  eval_env_kwargs: Optional[Dict[str, Any]] = None
  replay_capacity: int = 1_000_000
  env_fn: Optional[Callable[..., Any]] = None
  summary_period: int = 1000
  dormant_period: Optional[int] = None
  dormant_taus: Tuple[float, ...] = (0.0, 0.025, 0.1)
  dormant_batch_size: int = 256
  pruning_fractions: Optional[Tuple[float, float]] = (0.2, 0.8)
  keep_checkpoints: int = 2
  export_policies: bool = True
  progress_bar: bool = True
  prefetch_depth: int = 2
  acting: str = "auto"
  score: str = "auto"
  variant: Optional[str] = None
  loggers: Tuple[str, ...] = ()
  wandb_project: Optional[str] = None
  force: bool = False
  restart: bool = False

  def __post_init__(self):
    ints = {"seed": 0, "num_envs": 1, "num_iterations": 1, "training_steps": 1,
            "evaluation_steps": 0, "eval_period": 1, "eval_num_envs": 1, "replay_capacity": 1,
            "summary_period": 1, "dormant_batch_size": 0, "keep_checkpoints": 1,
            "prefetch_depth": 0}
    for name, low in ints.items():
      self._set(name, checks.check_int(f"Runner.{name}", getattr(self, name), low=low))
    for name in ("evaluation_episodes", "dormant_period"):
      self._set(name, checks.check_int(f"Runner.{name}", getattr(self, name),
                                       low=0 if name == "evaluation_episodes" else 1,
                                       allow_none=True))
    for name in ("export_policies", "progress_bar", "force", "restart"):
      self._set(name, checks.check_bool(f"Runner.{name}", getattr(self, name)))
    from tfgap import agents  # pylint: disable=g-import-not-at-top
    self._set("agent", checks.check_choice("Runner.agent", self.agent, sorted(agents.AGENTS)))
    self._set("score", checks.check_choice("Runner.score", self.score, ("auto",) + SCORES))
    self._set("acting", acting_lib.check_mode(self.acting))
    if self.score == "eval" and not self.evaluates:
      checks.reject("Runner.score", self.score, "'train' or 'auto' for a run without evaluation "
                    "(set Runner.evaluation_steps or Runner.evaluation_episodes to evaluate)")
    self._set("dormant_taus", tuple(
        checks.check_float("Runner.dormant_taus entry", t, low=0.0) for t in self.dormant_taus))
    if self.pruning_fractions is not None:
      try:
        begin, end = (float(f) for f in self.pruning_fractions)
        ok = 0.0 <= begin < end <= 1.0
      except (TypeError, ValueError):
        ok = False
      if not ok:
        checks.reject("Runner.pruning_fractions", self.pruning_fractions,
                      "(begin, end) with 0 <= begin < end <= 1, or None")
      self._set("pruning_fractions", (begin, end))
    if self.variant is not None and (not isinstance(self.variant, str) or not self.variant):
      checks.reject("Runner.variant", self.variant, "a non-empty string, or None")
    loggers = (self.loggers,) if isinstance(self.loggers, str) else self.loggers
    for name in tuple(loggers or ()):
      checks.check_choice("Runner.loggers entry", name, ("wandb",))
    self._set("loggers", tuple(loggers or ()))
    if self.wandb_project is not None and (not isinstance(self.wandb_project, str) or
                                           not self.wandb_project):
      checks.reject("Runner.wandb_project", self.wandb_project, "a non-empty string, or None")
    for name in ("env_kwargs", "eval_env_kwargs"):
      value = getattr(self, name)
      if value is not None and not isinstance(value, dict):
        checks.reject(f"Runner.{name}", value, "a dict of protocol overrides, or None")
    if self.env_fn is not None and not callable(self.env_fn):
      checks.reject("Runner.env_fn", self.env_fn, "a callable env_fn(mode, num_envs, seed), "
                    "or None")

  def _set(self, name, value):
    object.__setattr__(self, name, value)  # Normalising inside a frozen dataclass.

  @property
  def total_env_steps(self):
    return self.num_iterations * self.training_steps

  @property
  def evaluates(self):
    """Whether the run has evaluation phases at all."""
    return bool(self.evaluation_episodes or
                (self.evaluation_episodes is None and self.evaluation_steps))

  def evaluates_after(self, iteration):
    """Whether an evaluation phase follows iteration `iteration` (0-based)."""
    return self.evaluates and ((iteration + 1) % self.eval_period == 0 or
                               iteration + 1 == self.num_iterations)

  @property
  def score_source(self):
    """"train" or "eval": what this run's metrics `score` is (resolves "auto")."""
    if self.score != "auto":
      return self.score
    if self.suite in CONTINUOUS_TRAIN_SUITES or not self.evaluates:
      return "train"
    return "eval"

  @property
  def acting_mode(self):
    """"inline", "thread" or "lockstep": how this run acts (resolves "auto")."""
    return acting_lib.resolve(self.acting, network_kind(self.agent))

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)


def register():
  """Registers RunConfig (as `Runner`) and the tfgap builders with gin; returns the wrappers."""
  registered = common.register_gin()
  if "build_sac_network" not in registered:
    from tfgap.networks import sac  # pylint: disable=g-import-not-at-top
    registered["build_sac_network"] = gin.external_configurable(
        common.with_bottleneck_defaults(sac.build_sac_network), module="tfgap.networks",
        denylist=["observation_spec", "action_spec"])
  if "Runner" not in registered:
    registered["Runner"] = gin.external_configurable(RunConfig, name="Runner",
                                                     module="tfgap.launch")
  return registered


def configured(**overrides):
  """The RunConfig the current gin bindings describe; keyword arguments override them."""
  return register()["Runner"](**overrides)


def load_config(config_path):
  """Parses a run's saved config.gin into gin (cleared first) and returns its RunConfig.

  The bindings stay parsed so that `make_network` & co. build what the run built; call
  `gin.clear_config()` when done.

  Raises:
    ValueError: naming the file when it is missing or gin rejects it.
  """
  register()
  gin.clear_config()
  try:
    with open(config_path, "rb") as f:
      text = f.read().decode("utf-8")
    gin.parse_config(text)
  except OSError as err:
    raise ValueError(f"cannot read the run config {config_path}: {err}") from err
  except UnicodeDecodeError as err:
    raise ValueError(f"{config_path} is not a UTF-8 gin file ({err}); accepted: a config.gin "
                     "written by tfgap.launch.train") from err
  except (ValueError, KeyError, SyntaxError) as err:
    raise ValueError(f"{config_path} cannot be parsed by gin: {err}") from err
  return configured()


# ------------------------------------------------------------------ builders


def network_kind(agent):
  """"q", "categorical" or "sac": the kind of network an agent name trains."""
  from tfgap import agents  # pylint: disable=g-import-not-at-top
  return agents.agent_class(agent)[1]


def make_env(config, mode, *, num_envs=None, seed=None):
  """The training (`mode="train"`) or evaluation (`"eval"`) environment of a run.

  Args:
    config: RunConfig.
    mode: "train" or "eval".
    num_envs: parallel environments (default: config.num_envs / config.eval_num_envs).
    seed: environment seed (default: config.seed, or config.seed + 10,000 for "eval").

  Returns:
    A tfgap PyEnvironment.
  """
  mode = checks.check_choice("mode", mode, ("train", "eval"))
  train = mode == "train"
  if num_envs is None:
    num_envs = config.num_envs if train else config.eval_num_envs
  if seed is None:
    seed = config.seed if train else config.seed + 10_000
  overrides = dict((config.env_kwargs if train else config.eval_env_kwargs) or {})
  if config.env_fn is not None:
    return config.env_fn(mode=mode, num_envs=num_envs, seed=seed, **overrides)
  from tfgap import envs  # pylint: disable=g-import-not-at-top
  return envs.make(config.suite, config.game, num_envs=num_envs, seed=seed, mode=mode,
                   **overrides)


def run_name(config, env):
  """(suite, game) a run is recorded under: a custom env_fn's own names when it has them."""
  if config.env_fn is None:
    return config.suite, config.game
  return getattr(env, "suite", config.suite), getattr(env, "name", config.game)


def specs(env):
  """(time_step_spec, action_spec) of a PyEnvironment as TF-Agents tensor specs."""
  from tf_agents.specs import tensor_spec  # pylint: disable=g-import-not-at-top
  from tf_agents.trajectories import time_step as ts  # pylint: disable=g-import-not-at-top
  time_step_spec = ts.time_step_spec(tensor_spec.from_spec(env.observation_spec()))
  return time_step_spec, tensor_spec.from_spec(env.action_spec())


# The gin-bound builder of each network kind.
_BUILDERS = {"q": "build_q_network", "categorical": "build_categorical_q_network",
             "sac": "build_sac_network"}


def check_action_space(config, action_spec, names=None):
  """ValueError naming the agent and the suite when the agent cannot act in the suite's actions
  (SAC needs continuous actions, the DQN family discrete ones). `names`: (suite, game) of the
  environment (default: the config's)."""
  suite, game = names or (config.suite, config.game)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  continuous = all(s.dtype.is_floating for s in tf.nest.flatten(action_spec))
  wants_continuous = network_kind(config.agent) == "sac"
  if continuous != wants_continuous:
    kind = "continuous" if continuous else "discrete"
    agents_for = "'sac'" if continuous else "'dqn', 'rainbow' or 'der'"
    checks.reject("Runner.agent", config.agent,
                  f"an agent for {kind} actions ({agents_for}): suite {suite!r} (game "
                  f"{game!r}) has {kind} actions")


def make_network(config, env):
  """The agent's network for `env`, from the gin-bound builder of the agent's network kind."""
  time_step_spec, action_spec = specs(env)
  check_action_space(config, action_spec, run_name(config, env))
  builder = register()[_BUILDERS[network_kind(config.agent)]]
  return builder(time_step_spec.observation, action_spec)


def make_agent(config, env, network):
  """The gin-configured agent on `network`; a pruned network gets this run's schedule."""
  time_step_spec, action_spec = specs(env)
  agent_fn = register()["agents"][config.agent]
  agent = agent_fn(time_step_spec, action_spec, network, seed=config.seed)
  agent.initialize()
  schedule_pruning(config, agent)
  return agent


def schedule_pruning(config, agent):
  """Spreads a pruned or sparse network's schedule over this run's updates.

  GMP (bottlenecks `pruned` and `sparse` with method `gmp`): begin/end at
  `config.pruning_fractions` of the updates. SET/RigL (`sparse`): topology updates from update 0
  (Graesser et al.'s `begin_step = 0`) to the end fraction. The schedule objects are changed in
  place before anything is traced, so the agent is built once. A masked network also gets the
  agent's optimizer, whose slots restart at 0 for regrown connections.
  Returns the schedule set ({begin_step, end_step, frequency} or {start_step, end_step,
  update_freq}) or None.
  """
  from tfgap.networks import pruning  # pylint: disable=g-import-not-at-top
  from tfgap.networks import sparse  # pylint: disable=g-import-not-at-top
  sparse.bind_optimizer(agent.q_network, agent.optimizer)
  layer = sparse.sparse_bottleneck(agent.q_network)
  dynamic = layer is not None and layer.method in sparse.DYNAMIC
  if config.pruning_fractions is not None and dynamic:
    updates = max(1, (config.total_env_steps - agent.min_replay_history) // agent.update_period)
    freq = max(1, min(layer.sparse_config["update_freq"], updates // 10 or 1))
    end = max(1, int(round(updates * config.pruning_fractions[1])))
    steps = {"start_step": 0, "end_step": end, "update_freq": freq}
    for net in (agent.q_network, agent.target_q_network):
      sparse.reschedule(net, **steps)
    return steps
  if config.pruning_fractions is None or not pruning.pruning_wrappers(agent.q_network):
    return None
  updates = max(1, (config.total_env_steps - agent.min_replay_history) // agent.update_period)
  frequency = pruning.schedule_frequency(agent.q_network)
  frequency = max(1, min(frequency, updates // 10 or 1))
  begin, end = config.pruning_fractions
  steps = pruning.schedule_steps(updates, begin, end, frequency)
  for net in (agent.q_network, agent.target_q_network):
    pruning.reschedule(net, **steps)
  return steps


def make_replay(config, env, agent):
  """The gin-configured replay buffer laid out for `env` (frames, streams) and `agent` (n-step)."""
  if agent.batch_size > config.replay_capacity:
    checks.reject("Runner.replay_capacity", config.replay_capacity,
                  f"at least the agent's batch_size ({agent.batch_size})")
  # Discrete actions are stored as int32 scalars, continuous ones as float32 vectors (SAC).
  action_spec = env.action_spec()
  continuous = np.issubdtype(np.dtype(action_spec.dtype), np.floating)
  return register()["ReplayBuffer"](
      capacity=config.replay_capacity, frame_shape=env.frame_shape, stack_size=env.stack_size,
      num_streams=env.num_envs if env.batched else 1, n_step=agent.n_step, gamma=agent.gamma,
      action_shape=tuple(action_spec.shape) if continuous else (),
      action_dtype=np.float32 if continuous else np.int32, seed=config.seed)


@dataclasses.dataclass
class Experiment:
  """The objects of one run, built by `build`."""
  config: RunConfig
  env: Any
  eval_env: Any
  agent: Any
  replay: Any
  suite: str
  game: str

  @property
  def network(self):
    return self.agent.q_network

  def close(self):
    for env in (self.env, self.eval_env):
      if env is not None:
        env.close()


def build(config, *, eval_env=True):
  """Environment(s), network, agent and replay of `config`, in that order."""
  env = make_env(config, "train")
  try:
    suite, game = run_name(config, env)
    evaluation = make_env(config, "eval") if eval_env and config.evaluates else None
    network = make_network(config, env)
    agent = make_agent(config, env, network)
    replay = make_replay(config, env, agent)
  except BaseException:
    env.close()
    raise
  return Experiment(config=config, env=env, eval_env=evaluation, agent=agent, replay=replay,
                    suite=suite, game=game)


__all__ = ["RunConfig", "Experiment", "register", "configured", "load_config", "network_kind",
           "make_env", "make_network", "check_action_space", "make_agent", "schedule_pruning", "make_replay", "build",
           "run_name", "specs"]
