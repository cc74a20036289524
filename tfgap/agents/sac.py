"""SAC from pixels as Dopamine runs it, as a TF-Agents SacAgent with a compiled update.

One `PixelSACNetwork` (tfgap/networks/sac.py) holds the encoder + bottleneck shared by twin
critics and a tanh-Gaussian actor; the encoder is trained by the critic loss only (the actor reads
detached features). TF-Agents' SacAgent gets views on that network, so `policy` (the actor's mean
action), `collect_policy` (a sample), `train(experience)` and PolicySaver work as usual.

tfgap's path is `agent.update(batch)`: one `tf.function` (XLA when `jit_compile`) fed by
`tfgap.replay.ReplayBuffer.sample` (uint8 frames, float actions `[B, A]`, n-step return,
bootstrap discount). Per update, as dopamine/jax/agents/sac/sac_agent.py `train`:

    y      = reward_scale * r + discount * (min(Q1', Q2')(s', a') - alpha * log pi(a'|s'))
    critic = mean(w * (0.5 (Q1(s,a) - y)^2 + 0.5 (Q2(s,a) - y)^2))     -> encoder, critics
    actor  = mean(alpha * log pi(a~|s) - min(Q1, Q2)(s, a~))             -> actor only
    alpha  = mean(-log_alpha * (log pi(a~|s) + target_entropy))          -> log_alpha

then a Polyak update (tau) of every parameter of the target network, encoder included. Dopamine
optimises `0.5 critic + actor + alpha` with one Adam over the network; the three losses touch
disjoint variables and Adam is per-parameter, so tfgap's three Adams (critic with encoder, actor,
alpha) stepping together make the same update, and let the actor step less often.

DrQ (Kostrikov et al. 2020, denisyarats/drq `drq.py`) differs in settings this agent has:
`augment_views = K` shifted copies of s' whose targets y are averaged and K shifted copies of s
whose critic losses are averaged (the actor reads the first), `actor_update_period = 2` (actor
and temperature step every 2nd update), `target_update_period = 2` (Polyak every 2nd update) and
`temperature_loss = "alpha"` (the temperature loss on alpha rather than log_alpha).
"""

import dataclasses
import math
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf
from tf_agents.agents.sac import sac_agent
from tf_agents.policies import greedy_policy

from tfgap import checks
from tfgap.agents import base
from tfgap.agents import settings as settings_lib

# How the bootstrap action a' of the critic target is chosen (the `target_action` setting).
TARGET_ACTIONS = {
    # dopamine/jax/agents/sac/sac_agent.py `train`: the target network's actor on s'; Q' is read
    # at its mean action and log pi at a sample (`network_def.apply(target_params, next_state,
    # rng1, True)`).
    "dopamine": "target network's actor: Q' at its mean action, log pi of a sample",
    # SAC (Haarnoja et al. 2018), SAC-AE, DrQ, TF-Agents: a sample of the online actor, used for
    # both Q' and log pi.
    "sample": "online actor's sample for both Q' and log pi (SAC paper, DrQ, TF-Agents)",
}
AUGMENTATIONS = ("none", "random_shift")
# What the temperature loss multiplies: "log_alpha" (Dopamine's sac_agent.py `train`; SAC's
# paper, TF-Agents) or "alpha" (SAC-AE's and DrQ's `alpha_loss = (alpha * gap).mean()`: the
# gradient on log_alpha is then scaled by alpha).
TEMPERATURE_LOSSES = ("log_alpha", "alpha")


@dataclasses.dataclass(frozen=True)
class SACSettings(settings_lib.CommonSettings):
  """SAC hyperparameters (defaults: Dopamine's sac_pixels.gin and sac_agent.py).

  The fields every agent takes (`tfgap.agents.settings.CommonSettings`: learning_rate,
  adam_epsilon, gamma, n_step, update_period, min_replay_history, batch_size, gradient_clipping,
  jit_compile, precision, seed) with SAC's defaults, plus SAC's own.

  Attributes:
    learning_rate: Adam step size of the network and of log_alpha (3e-4).
    adam_epsilon: Adam epsilon (1e-8).
    update_period: agent steps per update (1).
    min_replay_history: agent steps of uniformly random actions before learning (10,000).
    batch_size: replay batch size (256).
    tau: Polyak coefficient of the target network, every parameter, every update (0.005).
    encoder_tau: Polyak coefficient of the encoder and bottleneck; None: `tau` (Dopamine).
      SAC-AE used 0.05 (with critic tau 0.01).
    reward_scale: multiplies rewards in the critic target (0.1).
    initial_temperature: alpha at the start (1.0: log_alpha = 0).
    target_entropy: the temperature's entropy target; None: `-target_entropy_scale * |A|`.
    target_entropy_scale: 0.5 (Dopamine: -0.5 |A|); 1.0 is the SAC paper's -|A|.
    target_action: "dopamine" or "sample" (see `TARGET_ACTIONS`).
    augmentation: "none" (Dopamine) or "random_shift" (DrQ: replicate-pad by `augment_pad`
      pixels, random crop back, independently for s and s').
    augment_pad: pixels of the random shift (4, DrQ).
    augment_views: K, the number of independently shifted copies of s and of s' per update (1;
      DrQ's K = M = 2): the critic target is the mean of the K targets, the critic loss the
      mean over the K copies of s, the actor reads the first copy. Needs "random_shift" for K>1.
    actor_update_period: updates between actor and temperature steps (1, Dopamine; DrQ: 2).
    target_update_period: updates between Polyak updates of the target (1, Dopamine; DrQ: 2).
    temperature_loss: "log_alpha" (Dopamine: `mean(-log_alpha * gap)`) or "alpha" (SAC-AE,
      DrQ: `mean(-alpha * gap)`), where gap = stop_gradient(log pi + target_entropy).
    gradient_clipping: as every agent's, applied to each loss's gradients separately.
    precision: as every agent's: None (the network's, `build_sac_network(precision=...)`) or a
      value the network's must match. Log-probs, tanh squashing, temperature, targets and the
      Polyak update stay float32 in either.
    seed: seed of the acting, update and augmentation random generators.
  """

  # SAC's values of common fields (gamma 0.99, n_step 1, no clipping: as the common defaults).
  learning_rate: float = 3e-4
  adam_epsilon: float = 1e-8
  update_period: int = 1
  min_replay_history: int = 10000
  batch_size: int = 256
  tau: float = 0.005
  encoder_tau: Optional[float] = None
  reward_scale: float = 0.1
  initial_temperature: float = 1.0
  target_entropy: Optional[float] = None
  target_entropy_scale: float = 0.5
  target_action: str = "dopamine"
  augmentation: str = "none"
  augment_pad: int = 4
  augment_views: int = 1
  actor_update_period: int = 1
  target_update_period: int = 1
  temperature_loss: str = "log_alpha"

  def _checked(self):
    values = super()._checked()
    values.update({
        "tau": checks.check_float("tau", self.tau, low=0.0, high=1.0, low_open=True),
        "encoder_tau": checks.check_float("encoder_tau", self.encoder_tau, low=0.0, high=1.0,
                                          low_open=True, allow_none=True),
        "reward_scale": checks.check_float("reward_scale", self.reward_scale),
        "initial_temperature": checks.check_float("initial_temperature",
                                                  self.initial_temperature, low=0.0,
                                                  low_open=True),
        "target_entropy": checks.check_float("target_entropy", self.target_entropy,
                                             allow_none=True),
        "target_entropy_scale": checks.check_float("target_entropy_scale",
                                                   self.target_entropy_scale),
        "target_action": checks.check_choice("target_action", self.target_action,
                                             TARGET_ACTIONS),
        "augmentation": checks.check_choice("augmentation", self.augmentation, AUGMENTATIONS),
        "augment_pad": checks.check_int("augment_pad", self.augment_pad, low=1),
        "augment_views": checks.check_int("augment_views", self.augment_views, low=1),
        "actor_update_period": checks.check_int("actor_update_period",
                                                self.actor_update_period, low=1),
        "target_update_period": checks.check_int("target_update_period",
                                                 self.target_update_period, low=1),
        "temperature_loss": checks.check_choice("temperature_loss", self.temperature_loss,
                                                TEMPERATURE_LOSSES),
    })
    if values["augment_views"] > 1 and values["augmentation"] == "none":
      checks.reject("augment_views", self.augment_views,
                    "1 with augmentation='none' (unshifted copies are identical); more views "
                    "need augmentation='random_shift'")
    return values


SAC_DEFAULTS = SACSettings()


def random_shift(images, pad, rng):
  """DrQ's augmentation: replicate-pad by `pad` pixels, then crop a random window of the
  original size, per image (an integer shift in [-pad, pad] on each axis, edges repeated).

  Args:
    images: `[B, H, W, C]` (any dtype; uint8 stays uint8).
    pad: pixels of padding.
    rng: a `tf.random.Generator`.
  """
  shape = tf.shape(images)
  b, h, w = shape[0], shape[1], shape[2]
  offsets = rng.uniform([b, 2], 0, 2 * pad + 1, dtype=tf.int32) - pad
  rows = tf.clip_by_value(tf.range(h)[None, :] + offsets[:, :1], 0, h - 1)
  cols = tf.clip_by_value(tf.range(w)[None, :] + offsets[:, 1:], 0, w - 1)
  images = tf.gather(images, rows, axis=1, batch_dims=1)
  return tf.gather(images, cols, axis=2, batch_dims=1)


class SACUpdateResult(base.UpdateResult):
  """`loss, priorities = agent.update(batch)`; `parts` has each loss and the temperature."""

  parts = None


@base.settings_signature
class SACAgent(sac_agent.SacAgent):
  """SAC from pixels (Dopamine's dopamine/labs/sac_from_pixels/ defaults) on one shared encoder.

  A TF-Agents `SacAgent` whose critics and actor are views of one `PixelSACNetwork`
  (`tfgap.networks.build_sac_network`, any encoder, bottleneck and width): `policy` acts with the
  actor's mean action (Dopamine's eval mode), `collect_policy` samples, PolicySaver exports
  `policy`. tfgap adds `update(batch)` (the compiled update of the module docstring), `act(obs)`
  (compiled sampling, `greedy=True` for the mean action), the replay settings the training loop
  reads, and `q_network` / `target_q_network` (the online and target SAC networks) for the
  tfgap analyses.
  """

  DEFAULTS = SAC_DEFAULTS

  def __init__(self, time_step_spec, action_spec, sac_network, *, optimizer=None,
               actor_optimizer=None, alpha_optimizer=None, train_step_counter=None, name=None,
               **settings):
    """Creates the agent.

    Args:
      time_step_spec: TF-Agents time step spec (uint8 image observations).
      action_spec: bounded float action spec `(action_dim,)`.
      sac_network: a `tfgap.networks.PixelSACNetwork` (`build_sac_network(...)`).
      optimizer: Keras optimizer of the critics, encoder and bottleneck; None:
        Adam(learning_rate, adam_epsilon).
      actor_optimizer: Keras optimizer of the actor's layers; None: another such Adam.
      alpha_optimizer: Keras optimizer of log_alpha; None: another such Adam.
      train_step_counter: optional int64 variable counting updates.
      name: agent name (default: the class name).
      **settings: keyword-only hyperparameters overriding `DEFAULTS` (`SACSettings` fields).

    Raises:
      ValueError: on an unknown setting or one outside its range, discrete actions, or a
        network that is not a PixelSACNetwork.
    """
    from tfgap.networks import sac as sac_networks  # pylint: disable=g-import-not-at-top
    flat = tf.nest.flatten(action_spec)
    if len(flat) != 1 or not flat[0].dtype.is_floating:
      checks.reject("action_spec", action_spec,
                    "one bounded float spec (SAC acts in continuous action spaces, e.g. the "
                    "'dmc' suite; discrete actions: agent 'dqn', 'rainbow' or 'der')")
    if not isinstance(sac_network, sac_networks.PixelSACNetwork):
      checks.reject("sac_network", type(sac_network).__name__,
                    "a tfgap.networks.PixelSACNetwork (tfgap.networks.build_sac_network)")
    checks.check_options(type(self).__name__, settings, self.DEFAULTS.field_names())
    self.settings = self.DEFAULTS.replace(**settings)
    for field, value in self.settings.asdict().items():
      setattr(self, field, value)
    self.jit_compile = base.resolve_jit_compile(self.settings.jit_compile)
    self.precision = base.checked_precision(self.settings.precision, sac_network)
    self.action_dim = sac_network.action_dim
    if self.settings.target_entropy is None:
      self.target_entropy_value = -self.settings.target_entropy_scale * self.action_dim
    else:
      self.target_entropy_value = self.settings.target_entropy
    optimizer = optimizer or base.make_optimizer(self.learning_rate, self.adam_epsilon)
    actor_optimizer = actor_optimizer or base.make_optimizer(self.learning_rate,
                                                             self.adam_epsilon)
    if actor_optimizer is optimizer:
      checks.reject("actor_optimizer", "the critic's optimizer object",
                    "a separate optimizer (the actor may step less often than the critic)")
    alpha_optimizer = alpha_optimizer or base.make_optimizer(self.learning_rate,
                                                             self.adam_epsilon)
    if train_step_counter is None:
      train_step_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
    self._sac_network = sac_network
    sac_network.create_variables()
    self._target_sac_network = sac_network.copy(name="TargetPixelSACNetwork")
    self._target_sac_network.create_variables()
    super().__init__(
        time_step_spec, action_spec,
        critic_network=sac_network.critic_network(1),
        critic_network_2=sac_network.critic_network(2),
        target_critic_network=self._target_sac_network.critic_network(1),
        target_critic_network_2=self._target_sac_network.critic_network(2),
        actor_network=sac_network.actor_network(),
        actor_optimizer=actor_optimizer, critic_optimizer=optimizer,
        alpha_optimizer=alpha_optimizer, target_update_tau=self.tau,
        target_update_period=self.target_update_period, gamma=self.gamma,
        reward_scale_factor=self.reward_scale,
        initial_log_alpha=math.log(self.initial_temperature),
        target_entropy=self.target_entropy_value, gradient_clipping=self.gradient_clipping,
        train_step_counter=train_step_counter, name=name or type(self).__name__)
    # Dopamine evaluates (and tfgap exports) the actor's mean action; collect_policy samples.
    # SacAgent's own losses keep reading the sampling policy (`self._policy`).
    self._greedy_policy = greedy_policy.GreedyPolicy(self._policy)
    self._optimizer = optimizer
    self.act_rng = tf.random.Generator.from_seed(self.seed + 7919)
    self.update_rng = tf.random.Generator.from_seed(self.seed + 104729)
    self._init_compiled()

  # ---------------------------------------------------------------- what the loop reads

  continuous_actions = True
  pruned = False

  @property
  def policy(self):
    """The actor's mean action (Dopamine's eval mode); what PolicySaver exports."""
    return self._greedy_policy

  @property
  def q_network(self):
    """The online PixelSACNetwork (the tfgap analyses read it; named as the DQN family's)."""
    return self._sac_network

  @property
  def target_q_network(self):
    return self._target_sac_network

  @property
  def sac_network(self):
    return self._sac_network

  @property
  def optimizer(self):
    return self._optimizer

  @property
  def actor_optimizer(self):
    return self._actor_optimizer

  @property
  def alpha_optimizer(self):
    return self._alpha_optimizer

  @property
  def log_alpha(self):
    return self._log_alpha

  @property
  def temperature(self):
    return float(tf.exp(self._log_alpha))

  @property
  def action_bounds(self):
    """(low, high) float32 numpy arrays of the action spec's shape."""
    return self._sac_network.action_low, self._sac_network.action_high

  def epsilon_at(self, env_steps):  # pylint: disable=unused-argument
    """SAC explores by sampling its policy: no epsilon (None)."""
    return None

  def checkpoint_items(self):
    """Everything a resumed run needs, as `tf.train.Checkpoint` keyword arguments."""
    return dict(q_network=self._sac_network, target_q_network=self._target_sac_network,
                optimizer=self._optimizer, actor_optimizer=self._actor_optimizer,
                alpha_optimizer=self._alpha_optimizer,
                log_alpha=self._log_alpha, train_step=self.train_step_counter,
                act_rng=self.act_rng, update_rng=self.update_rng)

  # ---------------------------------------------------------------- compiled functions

  def _init_compiled(self):
    net = self._sac_network
    obs_spec = self.time_step_spec.observation
    obs = tf.TensorSpec([None] + obs_spec.shape.as_list(), obs_spec.dtype)
    act = tf.TensorSpec([None, self.action_dim], tf.float32)
    vec = tf.TensorSpec([None], tf.float32)
    self._update_fn = tf.function(self._update_step,
                                  input_signature=[obs, act, vec, vec, obs, vec],
                                  jit_compile=self.jit_compile, autograph=False)
    self._act_fn = tf.function(self._act_step, input_signature=[obs, tf.TensorSpec([], tf.bool)],
                               autograph=False)
    self._obs_dtype = obs_spec.dtype.as_numpy_dtype
    # The encoder and bottleneck (their own tau) and every other variable of the network.
    shared = {id(v) for v in net._encoder.variables + net._bottleneck.variables}  # pylint: disable=protected-access
    self._is_shared = [id(v) in shared for v in net.variables]
    self._critic_vars = (net._encoder.trainable_variables +  # pylint: disable=protected-access
                         net._bottleneck.trainable_variables +  # pylint: disable=protected-access
                         net.critic_feature.trainable_variables +
                         [v for h in net.critic_heads for v in h.trainable_variables])
    self._actor_vars = net.actor_feature.trainable_variables + net.actor_head.trainable_variables
    # Slots exist from the start, so a checkpoint restores them before the first update.
    for optimizer, variables in ((self._optimizer, self._critic_vars),
                                 (self._actor_optimizer, self._actor_vars),
                                 (self._alpha_optimizer, [self._log_alpha])):
      if hasattr(optimizer, "_create_all_weights"):  # Keras legacy optimizers.
        optimizer._create_all_weights(variables)  # pylint: disable=protected-access
      elif callable(getattr(optimizer, "build", None)):
        optimizer.build(variables)
    self.copy_to_target()

  def update(self, batch):
    """One compiled SAC update on a replay batch (`tfgap.replay.ReplayBuffer.sample`).

    Args:
      batch: dict with uint8 `observation` / `next_observation` `[B, H, W, C]`, float `action`
        `[B, A]`, `reward` (n-step return), `discount` (bootstrap discount), optional `weights`.

    Returns:
      `SACUpdateResult`: the loss (0.5 critic + actor + alpha, Dopamine's combined loss),
      per-sample priorities (mean |TD error| of the two critics), `finite_parts` and `parts`
      ({"critic", "actor", "alpha", "temperature", "entropy"} scalars).
    """
    weights = batch.get("weights")
    if weights is None:
      weights = np.ones(len(batch["reward"]), np.float32)
    action = np.asarray(batch["action"], np.float32).reshape(-1, self.action_dim)
    loss, priorities, finite_parts, parts = self._update_fn(
        np.asarray(batch["observation"], self._obs_dtype), action,
        np.asarray(batch["reward"], np.float32), np.asarray(batch["discount"], np.float32),
        np.asarray(batch["next_observation"], self._obs_dtype), np.asarray(weights, np.float32))
    result = SACUpdateResult(loss, priorities)
    result.finite_parts = finite_parts
    result.parts = parts
    return result

  def act(self, observation, greedy=False):
    """Actions `[N, A]` (float32 numpy) for a batch of observations (compiled).

    Args:
      observation: `[N, H, W, C]` batch.
      greedy: the actor's mean action (evaluation, as Dopamine's eval mode) instead of a sample.
    """
    observation = tf.convert_to_tensor(observation, self._obs_dtype)
    return self._act_fn(observation, tf.constant(bool(greedy))).numpy()

  def _act_step(self, observation, greedy):
    net = self._sac_network
    loc, log_std = net.actor_params(net.features(observation))
    noise = self.act_rng.normal(tf.shape(loc))
    u = tf.where(greedy, loc, loc + tf.exp(log_std) * noise)
    return net.squash(u)

  def _augment(self, images):
    if self.augmentation == "random_shift":
      return random_shift(images, self.augment_pad, self.update_rng)
    return images

  def _bootstrap(self, next_observation):
    """(min(Q1', Q2') at the bootstrap action, log pi of the bootstrap sample), no gradients."""
    target = self._target_sac_network
    if self.target_action == "dopamine":
      feats = target.features(next_observation)
      loc, log_std = target.actor_params(feats)
      _, log_prob = target.sample_and_log_prob(loc, log_std,
                                               self.update_rng.normal(tf.shape(loc)))
      q1, q2 = target.critic_values(feats, target.squash(loc))
    else:
      online = self._sac_network
      loc, log_std = online.actor_params(online.features(next_observation))
      action, log_prob = online.sample_and_log_prob(loc, log_std,
                                                    self.update_rng.normal(tf.shape(loc)))
      q1, q2 = target.critic_values(target.features(next_observation), action)
    return tf.stop_gradient(tf.minimum(q1, q2)), tf.stop_gradient(log_prob)

  def _clip(self, grads):
    if self.gradient_clipping is None:
      return grads
    return tf.clip_by_global_norm(grads, self.gradient_clipping)[0]

  def _views(self, images):
    """`augment_views` independently augmented copies of a batch, stacked `[K * B, ...]`."""
    if self.augment_views == 1:
      return self._augment(images)
    return tf.concat([self._augment(images) for _ in range(self.augment_views)], axis=0)

  def _per_sample(self, values):
    """The mean over the K views of `[K * B]` values: `[B]`."""
    if self.augment_views == 1:
      return values
    return tf.reduce_mean(tf.reshape(values, [self.augment_views, -1]), axis=0)

  def _periodically(self, period, step):
    """Runs `step` on the updates `period` selects: the first, then every period-th."""
    if period == 1:
      step()
    else:
      tf.cond(tf.equal(self.train_step_counter % period, 0), step, lambda: None)

  def _update_step(self, observation, action, reward, discount, next_observation, weights):
    net = self._sac_network
    k = self.augment_views
    batch_size = tf.shape(reward)[0]
    observation = self._views(observation)
    next_observation = self._views(next_observation)
    alpha = tf.exp(self._log_alpha)
    next_q, next_log_prob = self._bootstrap(next_observation)
    next_value = self._per_sample(next_q - alpha * next_log_prob)
    y = tf.stop_gradient(self.reward_scale * reward + discount * next_value)
    if k > 1:
      y, action, weights = tf.tile(y, [k]), tf.tile(action, [k, 1]), tf.tile(weights, [k])
    with tf.GradientTape(persistent=True) as tape:
      feats = net.features(observation, training=True)
      critic_z = net.critic_feature(feats, training=True)
      q1, q2 = net.critic_values_from_z(critic_z, action, training=True)
      td1, td2 = q1 - y, q2 - y
      # The mean over K * B samples: the mean over the views of each view's critic loss.
      critic_loss = tf.reduce_mean(weights * 0.5 * (tf.square(td1) + tf.square(td2)))
      # The actor reads detached features of the first view (actor_params stops the gradient);
      # its Q is the critics' at the current parameters, which the actor loss does not update
      # (Dopamine's `frozen_params`): the critic gradient below comes from critic_loss alone.
      if k > 1:
        feats, critic_z = feats[:batch_size], critic_z[:batch_size]
      loc, log_std = net.actor_params(feats, training=True)
      sampled, log_prob = net.sample_and_log_prob(loc, log_std,
                                                  self.update_rng.normal(tf.shape(loc)))
      pi_q1, pi_q2 = net.critic_values_from_z(tf.stop_gradient(critic_z), sampled,
                                              training=True)
      actor_loss = tf.reduce_mean(tf.stop_gradient(alpha) * log_prob -
                                  tf.minimum(pi_q1, pi_q2))
      entropy_gap = tf.stop_gradient(log_prob + self.target_entropy_value)
      temperature = (tf.exp(self._log_alpha) if self.temperature_loss == "alpha"
                     else self._log_alpha)
      alpha_loss = -tf.reduce_mean(temperature * entropy_gap)
    critic_grads = self._clip(tape.gradient(critic_loss, self._critic_vars))
    actor_grads = self._clip(tape.gradient(actor_loss, self._actor_vars))
    alpha_grads = tape.gradient(alpha_loss, [self._log_alpha])
    del tape
    self._optimizer.apply_gradients(zip(critic_grads, self._critic_vars))

    def step_actor():
      self._actor_optimizer.apply_gradients(zip(actor_grads, self._actor_vars))
      self._alpha_optimizer.apply_gradients(zip(alpha_grads, [self._log_alpha]))

    self._periodically(self.actor_update_period, step_actor)
    self._periodically(self.target_update_period, self._polyak)
    self.train_step_counter.assign_add(1)
    loss = critic_loss + actor_loss + alpha_loss
    priorities = self._per_sample(0.5 * (tf.abs(td1) + tf.abs(td2)))
    variables = self._critic_vars + self._actor_vars + [self._log_alpha]
    finite_parts = base.finite_parts(loss, priorities, variables)
    parts = {"critic": critic_loss, "actor": actor_loss, "alpha": alpha_loss,
             "temperature": tf.exp(self._log_alpha),
             "entropy": -tf.reduce_mean(log_prob)}
    return loss, priorities, finite_parts, parts

  def _polyak(self):
    """target <- (1 - tau) target + tau online, for every variable (encoder included)."""
    encoder_tau = self.tau if self.encoder_tau is None else self.encoder_tau
    sources, targets = self._sac_network.variables, self._target_sac_network.variables
    for source, target, shared in zip(sources, targets, self._is_shared):
      tau = encoder_tau if shared else self.tau
      target.assign(target * (1.0 - tau) + source * tau)

  def copy_to_target(self):
    """Makes the target network equal the online network."""
    sources, targets = self._sac_network.variables, self._target_sac_network.variables
    if len(sources) != len(targets):
      raise ValueError(f"online and target networks differ: {len(sources)} vs {len(targets)} "
                       "variables.")
    for source, target in zip(sources, targets):
      target.assign(source)

  def _initialize(self):
    self.copy_to_target()


__all__ = ["SACAgent", "SACSettings", "SAC_DEFAULTS", "TARGET_ACTIONS", "AUGMENTATIONS",
           "TEMPERATURE_LOSSES", "random_shift", "SACUpdateResult"]
