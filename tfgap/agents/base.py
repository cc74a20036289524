"""What tfgap adds to TF-Agents' DQN-family agents: a compiled update fed by replay batches and a
compiled epsilon-greedy actor.

TF-Agents' `agent.train(experience)` takes `[B, n+1]` trajectories, converts them to n-step
transitions and runs the loss; it keeps working on tfgap agents. `agent.update(batch)` is the fast
path used by `tfgap.launch.train`: one `tf.function` (XLA when `jit_compile`) that takes the
numpy batch `tfgap.replay.ReplayBuffer.sample` returns (uint8 observations, action, n-step return,
bootstrap discount, uint8 next observations, importance weights), computes the loss, applies the
optimizer, counts the update, refreshes the target network every `target_update_period` agent
steps and pins the pruning step of pruned networks to the update count. It returns an
`UpdateResult`: the loss, per-sample priorities for prioritized replay and whether the loss,
the priorities and the updated weights are all finite. Summaries are never written inside it
(XLA has no summary ops); the caller writes them from the returned values.

Exploration follows the agent's own clock: `agent.env_step` counts the agent (environment) steps
taken by `collect_policy` and by `act()` without an explicit epsilon, and both read the training
epsilon of that step from the schedule, as Dopamine's agents read it from their `training_steps`.
"""

import collections
import inspect

import numpy as np
import tensorflow as tf
from tf_agents.policies import epsilon_greedy_policy

from tfgap import checks
from tfgap.agents import schedules
from tfgap.networks import common as networks_common
from tfgap.networks import heads as heads_lib
from tfgap.networks import pruning as pruning_lib
from tfgap.networks import sparse as sparse_lib

BATCH_KEYS = ("observation", "action", "reward", "discount", "next_observation", "weights")


def default_jit_compile():
  """XLA where it pays: on a GPU. On CPUs plain tf.function was measured faster (docs/agents.md)."""
  return bool(tf.config.list_physical_devices("GPU"))


def resolve_jit_compile(jit_compile):
  """`None` -> `default_jit_compile()`; True/False as given; anything else a ValueError."""
  if jit_compile is None:
    return default_jit_compile()
  if not isinstance(jit_compile, (bool, np.bool_)):
    checks.reject("jit_compile", jit_compile,
                  "None (XLA on GPU, plain tf.function on CPU), True or False")
  return bool(jit_compile)


def default_fused_forward():
  """One online call on concat([s, s']) where it pays: on a GPU (half the kernel launches). On
  CPUs two calls were measured faster: the backward pass then runs over both halves
  (benchmarks/train_throughput.py, docs/agents.md)."""
  return bool(tf.config.list_physical_devices("GPU"))


def network_precision(network):
  """"mixed_bfloat16" when `network` computes in bfloat16 (its `precision`, else its layers')."""
  precision = getattr(network, "precision", None)
  if precision in ("float32", "mixed_bfloat16"):
    return precision
  layers = getattr(network, "_flatten_layers", None)
  if layers is not None and any(layer.compute_dtype == "bfloat16"
                                for layer in layers(include_self=False, recursive=True)):
    return "mixed_bfloat16"
  return "float32"


def checked_precision(setting, network):
  """The network's precision ("float32" / "mixed_bfloat16"); `setting` (None or a precision,
  "auto" resolved) must agree with it: an agent cannot change a built network's layers."""
  precision = network_precision(network)
  if setting is not None and networks_common.resolve_precision(setting) != precision:
    checks.reject("precision", setting,
                  f"the network's precision {precision!r} (or None); build the network with "
                  f"precision={setting!r} (e.g. the gin macro PRECISION) to train in it")
  return precision


def settings_signature(cls):
  """Class decorator: lists `cls.DEFAULTS`' fields as keyword-only arguments of `cls.__init__`.

  The agents' constructors take their hyperparameters as `**settings` and hand them to one
  settings dataclass, which validates them. gin (for `DERAgent.n_step = ...` bindings, its
  unknown-parameter errors and the operative config) and `help()` read a constructor's
  signature, so each agent class gets one naming its own fields and defaults. A class that only
  changes defaults (DER) gets a thin `__init__` of its own, so its signature is not its parent's.
  """
  field_names = cls.DEFAULTS.field_names()
  init = cls.__dict__.get("__init__")
  if init is None:
    parent_init = super(cls, cls).__init__

    def __init__(self, *args, **kwargs):  # pylint: disable=invalid-name
      parent_init(self, *args, **kwargs)

    __init__.__doc__ = (f"Creates the agent: arguments as `{cls.__mro__[1].__name__}`, with "
                        f"`{cls.__name__}.DEFAULTS`.")
    __init__.__qualname__ = f"{cls.__name__}.__init__"
    cls.__init__ = init = __init__
  else:
    parent_init = init
  keep = [p for p in inspect.signature(parent_init).parameters.values()
          if p.kind != p.VAR_KEYWORD and p.name not in field_names]
  positional = [p for p in keep if p.kind != p.KEYWORD_ONLY]
  keyword = {p.name: p for p in keep if p.kind == p.KEYWORD_ONLY}
  settings = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                default=getattr(cls.DEFAULTS, name)) for name in field_names]
  name = inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=cls.__name__)
  tail = [keyword[k] for k in keyword if k != "name"]
  head = [tail.pop(0)] if tail and tail[0].name == "optimizer" else []
  init.__signature__ = inspect.Signature(positional + head + settings + tail + [name])
  return cls


def network_is_noisy(network):
  """True when `network` has noisy layers (tfgap's `NoisyDense`, or a boolean `noisy` attribute).

  Exploration setting "auto" gives noisy networks epsilon 0, as Dopamine's full Rainbow does.
  """
  flag = getattr(network, "noisy", None)
  if isinstance(flag, bool):
    return flag
  if not hasattr(network, "_flatten_layers"):
    return False
  layers = network._flatten_layers(include_self=True, recursive=True)  # pylint: disable=protected-access
  return any(isinstance(layer, heads_lib.NoisyDense) for layer in layers)


def finite_parts(loss, priorities, variables):
  """`[3]` bools for `UpdateResult.PARTS`: the loss, the priorities and the weights are finite.

  The weights are checked through one sum per variable: a single pass over memory instead of an
  elementwise test and a reduction over its result (on a DER network, whose noisy layer holds 8M
  weights, that pass is a few percent of an update on a CPU). Any NaN or infinity makes its sum
  non-finite; so does a sum beyond float32's range (~3e38), which only a diverged network reaches.

  Args:
    loss: loss tensor of the update.
    priorities: `[B]` priorities of the update.
    variables: the trainable variables, read after the step.

  Returns:
    a `[3]` bool tensor.
  """
  sums = tf.stack([tf.reduce_sum(tf.cast(v, tf.float32)) for v in variables])
  return tf.stack([tf.reduce_all(tf.math.is_finite(loss)),
                   tf.reduce_all(tf.math.is_finite(priorities)),
                   tf.reduce_all(tf.math.is_finite(sums))])


class UpdateResult(collections.namedtuple("UpdateResult", ["loss", "priorities"])):
  """What `agent.update(batch)` returns: `loss, priorities = agent.update(batch)` still works.

  Attributes:
    loss: scalar loss tensor (before the step).
    priorities: `[B]` per-sample priorities.
    finite_parts: `[3]` bool tensor: the loss, every priority and every trainable weight after
      the step are finite (in the order of `PARTS`). Checked inside the compiled step.
  """

  PARTS = ("loss", "priorities", "weights")
  finite_parts = None

  @property
  def finite(self):
    """True when the loss, the priorities and the updated weights are all finite."""
    return self.finite_parts is None or bool(np.all(np.asarray(self.finite_parts)))

  def nonfinite(self):
    """The names (among `PARTS`) of what became NaN or infinite in this update; () if none."""
    if self.finite_parts is None:
      return ()
    flags = np.asarray(self.finite_parts)
    return tuple(part for part, ok in zip(self.PARTS, flags) if not ok)


class StepCountingEpsilonGreedyPolicy(epsilon_greedy_policy.EpsilonGreedyPolicy):
  """TF-Agents' `EpsilonGreedyPolicy` that counts the agent steps it takes in `env_step`.

  Every `action(time_step)` call is one agent step per batch entry whose time step is not LAST:
  after choosing the actions it adds that count to `env_step`, the clock the epsilon callable
  reads. The action chosen at a LAST step is discarded by the environment's reset, and Dopamine's
  agent takes none there, so it is not counted (TF-Agents' step drivers count the same way). So a
  stock TF-Agents driver (`DynamicStepDriver(env, agent.collect_policy, ...)`) explores as
  Dopamine's agents do, with epsilon falling on the schedule of agent steps, warm-up included.
  Calling `action` for anything but acting in the environment advances the clock as well.
  """

  def __init__(self, policy, epsilon, env_step, name=None):
    super().__init__(policy, epsilon=epsilon, name=name)
    self._env_step = env_step

  @property
  def env_step(self):
    return self._env_step

  def _action(self, time_step, policy_state, seed):
    step = super()._action(time_step, policy_state, seed)
    count = tf.reduce_sum(tf.cast(tf.logical_not(time_step.is_last()), tf.int64))
    with tf.control_dependencies(tf.nest.flatten(step.action)):
      self._env_step.assign_add(count)
    return step


class CompiledUpdateMixin:
  """Mixin for DqnAgent subclasses: `update`, `act`, exploration and replay settings.

  Subclasses set `DEFAULTS` (a `tfgap.agents.settings` dataclass), call `_init_settings` before
  the TF-Agents constructor (the collect policy reads the exploration clock) and
  `_init_compiled` after it, pass `epsilon_greedy=self._scheduled_epsilon` to TF-Agents, and
  implement `_loss_and_priorities`. After `_init_settings` every settings field is an attribute
  (`agent.n_step`, `agent.batch_size`, ...) and `agent.settings` holds them all.
  """

  DEFAULTS = None  # The class's settings dataclass instance.

  def _init_settings(self, overrides, network):
    """Validates `DEFAULTS` + `overrides` into `self.settings` and mirrors them as attributes.

    Also builds the exploration schedule (it depends on whether `network` is noisy), the
    `env_step` clock and the `epsilon` variable.
    """
    defaults = type(self).DEFAULTS
    checks.check_options(type(self).__name__, overrides, defaults.field_names())
    self.settings = defaults.replace(**overrides)
    for field, value in self.settings.asdict().items():
      setattr(self, field, value)
    self.jit_compile = resolve_jit_compile(self.settings.jit_compile)
    self.fused_forward = (default_fused_forward() if self.settings.fused_forward is None
                          else self.settings.fused_forward)
    self.precision = checked_precision(self.settings.precision, network)
    # Dopamine counts the target period in agent steps; one update happens every update_period
    # steps, so the target is refreshed every target_update_period / update_period updates.
    self.target_update_updates = max(
        1, int(round(self.target_update_period / self.update_period)))
    self.noisy = network_is_noisy(network)
    if self.exploration == "zero" or (self.exploration == "auto" and self.noisy):
      self.epsilon_schedule = schedules.ZeroEpsilon()
    else:
      self.epsilon_schedule = schedules.LinearEpsilon(
          self.epsilon_decay_period, self.min_replay_history, self.epsilon_train)
    # The exploration clock: agent steps taken by collect_policy and by act() without an explicit
    # epsilon (Dopamine's `training_steps`, which its epsilon_fn reads; warm-up included). It
    # counts environment steps, not updates (train_step_counter), so the schedule keeps
    # Dopamine's units whatever the update period.
    self.env_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_step")
    # The epsilon the collect policy / act() used last. Kept as a variable named `epsilon`, as
    # older checkpoints hold one; restoring it changes nothing, the schedule overwrites it.
    self.epsilon = tf.Variable(self.epsilon_schedule(0), dtype=tf.float32, trainable=False,
                               name="epsilon")
    self.act_rng = tf.random.Generator.from_seed(self.seed + 7919)

  def _init_compiled(self):
    self._target_period = tf.constant(self.target_update_updates, tf.int64)
    self._pruned = bool(pruning_lib.pruning_wrappers(self._q_network))
    if self._pruned:
      pruning_lib.initialize_pruning(self._q_network)
      pruning_lib.initialize_pruning(self._target_q_network)
    obs_spec = self.time_step_spec.observation
    obs = tf.TensorSpec([None] + obs_spec.shape.as_list(), obs_spec.dtype)
    vec = tf.TensorSpec([None], tf.float32)
    self._update_fn = tf.function(
        self._update_step,
        input_signature=[obs, tf.TensorSpec([None], tf.int32), vec, vec, obs, vec],
        jit_compile=self.jit_compile, autograph=False)
    # Acting runs on tiny batches where compilation does not pay; plain graph mode.
    self._act_fn = tf.function(
        self._act_step, input_signature=[obs, tf.TensorSpec([], tf.float32)], autograph=False)
    self._act_scheduled_fn = tf.function(
        self._act_scheduled_step, input_signature=[obs], autograph=False)
    spec = tf.nest.flatten(self.action_spec)[0]
    self._action_dtype = spec.dtype.as_numpy_dtype
    self._num_actions_int = int(spec.maximum) - int(spec.minimum) + 1
    self._obs_dtype = obs_spec.dtype.as_numpy_dtype
    # Slots exist from the start, so a checkpoint restores them before the first update.
    variables = self._q_network.trainable_variables
    if hasattr(self._optimizer, "_create_all_weights"):  # Keras legacy optimizers.
      self._optimizer._create_all_weights(variables)  # pylint: disable=protected-access
    elif callable(getattr(self._optimizer, "build", None)):
      self._optimizer.build(variables)
    self._copy_to_target()

  # ---------------------------------------------------------------- public API

  @property
  def q_network(self):
    return self._q_network

  @property
  def target_q_network(self):
    return self._target_q_network

  @property
  def optimizer(self):
    return self._optimizer

  @property
  def num_actions(self):
    return self._num_actions_int

  @property
  def pruned(self):
    """True when the online network has tfmot pruning wrappers (bottleneck 'pruned')."""
    return self._pruned

  def epsilon_at(self, env_steps):
    """The training epsilon after `env_steps` agent steps: Dopamine's linear decay, or 0 for
    noisy networks (exploration "auto", as Dopamine's full Rainbow) or exploration "zero"."""
    return self.epsilon_schedule(env_steps)

  def _setup_policy(self, time_step_spec, action_spec, boltzmann_temperature,
                    emit_log_probability):
    # TF-Agents builds the greedy and epsilon-greedy policies; the collect policy is rebuilt
    # around the same Q policy so that it advances the exploration clock as it acts.
    policy, collect_policy = super()._setup_policy(
        time_step_spec, action_spec, boltzmann_temperature, emit_log_probability)
    if isinstance(collect_policy, epsilon_greedy_policy.EpsilonGreedyPolicy):
      collect_policy = StepCountingEpsilonGreedyPolicy(
          collect_policy.wrapped_policy, epsilon=self._scheduled_epsilon,
          env_step=self.env_step, name=collect_policy.name)
    return policy, collect_policy

  def _scheduled_epsilon(self):
    """The training epsilon at `env_step` as a tensor; also stored in the `epsilon` variable."""
    epsilon = self.epsilon_schedule.tensor(self.env_step.read_value())
    self.epsilon.assign(epsilon)
    return epsilon

  def update(self, batch):
    """One compiled gradient update on a replay batch.

    Args:
      batch: mapping with `observation` and `next_observation` `[B, ...]` (observation dtype,
        uint8 for pixels), `action` `[B]` int, `reward` `[B]` n-step returns, `discount` `[B]`
        bootstrap discounts and optionally `weights` `[B]` importance weights (ones if absent).
        `tfgap.replay.ReplayBuffer.sample()` returns exactly this.

    Returns:
      An `UpdateResult`, which unpacks as `(loss, priorities)` tensors: the scalar loss and `[B]`
      per-sample priorities (|TD error| for DQN, the C51 cross-entropy for Rainbow/DER). Its
      `finite` is False when the loss, a priority or an updated weight is NaN or infinite
      (`nonfinite()` names which): the step has been applied, so a driver should stop before
      feeding the priorities back or saving the weights.
    """
    if any(k not in batch for k in BATCH_KEYS[:5]):
      checks.reject("batch keys", sorted(batch),
                    f"a mapping with {list(BATCH_KEYS[:5])} and optionally 'weights', as "
                    "tfgap.replay.ReplayBuffer.sample returns")
    observation = np.asarray(batch["observation"], self._obs_dtype)
    weights = batch.get("weights")
    if weights is None:
      weights = np.ones(observation.shape[0], np.float32)
    loss, priorities, finite_parts = self._update_fn(
        observation, np.asarray(batch["action"], np.int32),
        np.asarray(batch["reward"], np.float32), np.asarray(batch["discount"], np.float32),
        np.asarray(batch["next_observation"], self._obs_dtype),
        np.asarray(weights, np.float32))
    result = UpdateResult(loss, priorities)
    result.finite_parts = finite_parts
    return result

  def act(self, observation, epsilon=None):
    """Epsilon-greedy actions for a batch of observations (compiled).

    Same semantics as `collect_policy`: with probability epsilon a uniformly random action, else
    the greedy action of the online network (argmax Q; for C51 the expected value over atoms).

    Args:
      observation: `[N, ...]` batch (numpy or tensor).
      epsilon: exploration rate. None acts as `collect_policy` does: the training epsilon at
        `env_step` (`epsilon_at`), and the N actions advance `env_step` by N. An explicit value
        (e.g. `epsilon_eval`, or `epsilon_at(steps)` from a driver keeping its own count) leaves
        `env_step` alone.

    Returns:
      numpy `[N]` actions of the action spec's dtype.
    """
    observation = tf.convert_to_tensor(observation, self._obs_dtype)
    if epsilon is None:
      return self._act_scheduled_fn(observation).numpy()
    return self._act_fn(observation, tf.constant(epsilon, tf.float32)).numpy()

  def greedy_q_values(self, observation, training=False):
    """Q-values `[N, A]` of the online network (C51: expectation over the support)."""
    out, _ = self._q_network(observation, training=training)
    return self._q_values_from_output(out)

  # ---------------------------------------------------------------- compiled bodies

  def _q_values_from_output(self, output):
    return output

  def _loss_and_priorities(self, output, action, reward, discount, next_online, next_target,
                           weights):
    raise NotImplementedError

  def _update_step(self, observation, action, reward, discount, next_observation, weights):
    if self._pruned:
      # The training-mode call below advances the step to train_step + 1, as Keras' fit would
      # for its (train_step + 1)-th batch: masks follow the update count, not call counts.
      pruning_lib.set_pruning_step(self._q_network, self.train_step_counter)
    next_target, _ = self._target_q_network(next_observation, training=False)
    fused = self.double and self.fused_forward
    next_online = None
    if self.double and not fused:
      next_online, _ = self._q_network(next_observation, training=False)
    variables = self._q_network.trainable_variables
    with tf.GradientTape() as tape:
      if fused:
        output, next_online = self._fused_online_call(observation, next_observation)
      else:
        output, _ = self._q_network(observation, training=True)
      loss, priorities = self._loss_and_priorities(
          output, action, reward, discount, next_online, next_target, weights)
    grads = tape.gradient(loss, variables)
    if self._gradient_clipping is not None:
      grads, _ = tf.clip_by_global_norm(grads, self._gradient_clipping)
    self._optimizer.apply_gradients(zip(grads, variables))
    step = self.train_step_counter.assign_add(1)
    self._after_gradient_step(grads, variables, step)
    tf.cond(tf.equal(tf.math.floormod(tf.cast(step, tf.int64), self._target_period), 0),
            self._copy_to_target_op, tf.no_op)
    # Read after the step, so a driver can stop before it feeds NaN priorities to the replay or
    # saves diverged weights.
    return loss, priorities, finite_parts(loss, priorities, variables)

  def _fused_online_call(self, observation, next_observation):
    """The online network on s and s' in one training-mode call on `concat([s, s'])`.

    Noisy layers draw one noise sample per half (`heads.noise_groups`), as the two calls of the
    unfused path do; without noise or batch statistics the rows are what two calls give. One
    training-mode call advances a pruned network's step once, as the unfused path does.
    Returns `(output on s, output on s' with its gradient stopped)`.
    """
    both = tf.concat([observation, next_observation], axis=0)
    with heads_lib.noise_groups(self._q_network, 2):
      out, _ = self._q_network(both, training=True)
    rows = tf.shape(observation)[0]
    return out[:rows], tf.stop_gradient(out[rows:])

  def _after_gradient_step(self, grads, variables, step):
    """Runs after the optimizer step, inside the compiled update, before the target refresh.

    Calls the online network's `after_gradient_step(grads, variables, step)` when it has one:
    sparse networks (`tfgap.networks.sparse`) re-apply their masks there and update their
    topology (RigL reads the dense gradients). Nothing else happens here for dense networks.

    Args:
      grads: the gradients just applied (after clipping), one per `variables` entry; None
        from TF-Agents' `train` (`_train`).
      variables: the online network's trainable variables (None with `grads`).
      step: the update count after this update (int64 tensor).
    """
    hook = getattr(self._q_network, "after_gradient_step", None)
    if hook is not None:
      hook(grads, variables, step)

  def _train(self, experience, weights):
    """TF-Agents' `train` step, then the post-step hook its loop lacks (`_after_gradient_step`).

    The gradients stay inside TF-Agents' step: static/SET masks run, RigL raises. The hook runs
    after TF-Agents' target refresh, so the target's dead entries are re-zeroed here as well.
    """
    loss_info = super()._train(experience, weights)
    self._after_gradient_step(None, None, self.train_step_counter)
    sparse_lib.apply_masks(self._target_q_network)
    return loss_info

  def _copy_to_target_op(self):
    self._copy_to_target()
    return tf.no_op()

  def _copy_to_target(self):
    """Makes the target network equal the online network (masks and pruning steps included)."""
    sources, targets = self._q_network.variables, self._target_q_network.variables
    if len(sources) != len(targets):
      raise ValueError(f"online and target networks differ: {len(sources)} vs {len(targets)} "
                       "variables.")
    for source, target in zip(sources, targets):
      target.assign(source)

  def _act_scheduled_step(self, observation):
    actions = self._act_step(observation, self._scheduled_epsilon())
    with tf.control_dependencies([actions]):
      self.env_step.assign_add(tf.cast(tf.shape(observation)[0], tf.int64))
    return actions

  def _act_step(self, observation, epsilon):
    values = self.greedy_q_values(observation)
    greedy = tf.argmax(values, axis=-1, output_type=tf.int64)
    n = tf.shape(observation)[0:1]
    random_actions = self.act_rng.uniform(n, 0, self._num_actions_int, dtype=tf.int64)
    explore = self.act_rng.uniform(n) < epsilon
    return tf.cast(tf.where(explore, random_actions, greedy), self._action_dtype)


def make_optimizer(learning_rate, adam_epsilon):
  """Adam as Dopamine configures it (lr, eps; no gradient clipping).

  Keras' legacy Adam applies the update with one fused kernel (ResourceApplyAdam); the new Keras
  optimizer spends several element-wise passes per variable and measured 20-30% fewer updates/s
  for the Nature network on this CPU (benchmarks/train_throughput.py). The update rule is the same.
  """
  from tfgap.compat import keras  # pylint: disable=g-import-not-at-top
  checks.check_float("learning_rate", learning_rate, low=0.0, low_open=True)
  checks.check_float("adam_epsilon", adam_epsilon, low=0.0, low_open=True)
  return keras.optimizers.legacy.Adam(learning_rate=learning_rate, epsilon=adam_epsilon)


def optimizer_and_counter(optimizer, train_step_counter, learning_rate, adam_epsilon):
  """The agent's optimizer and update counter: the given ones, else `make_optimizer(...)` and a
  fresh int64 variable."""
  if optimizer is None:
    optimizer = make_optimizer(learning_rate, adam_epsilon)
  if train_step_counter is None:
    train_step_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
  return optimizer, train_step_counter
