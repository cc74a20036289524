"""Rainbow (C51 + n-step + prioritized replay + dueling + double + noisy nets) and DER.

Both are TF-Agents `CategoricalDqnAgent`s with tfgap's compiled update. Dueling and noisy nets are
properties of the network (`tfgap.networks.build_categorical_q_network(dueling=..., noisy=...)`);
prioritized replay is a property of the replay buffer, which receives the priorities `update`
returns. The compiled update selects the next action with the online network (double), as
Dopamine's Rainbow does; TF-Agents' own `train()` keeps its C51 loss (target-network argmax).
With a noisy network the training epsilon is 0 from the first step (exploration "auto"), as in
Dopamine's full Rainbow: the network's noise explores, there is no uniform-random warm-up.
"""

from tf_agents.agents.categorical_dqn import categorical_dqn_agent

from tfgap import checks
from tfgap.agents import base
from tfgap.agents import losses
from tfgap.agents import settings as settings_lib


@base.settings_signature
class RainbowAgent(base.CompiledUpdateMixin, categorical_dqn_agent.CategoricalDqnAgent):
  """Rainbow with Dopamine's Atari defaults (Dopamine's
  `dopamine/jax/agents/full_rainbow/configs/full_rainbow.gin`): build its network with
  `dueling=True, noisy=True`; the agent then explores with epsilon 0 (exploration "auto")."""

  DEFAULTS = settings_lib.RAINBOW_DEFAULTS

  def __init__(self, time_step_spec, action_spec, categorical_q_network, *, optimizer=None,
               train_step_counter=None, name=None, **settings):
    """Creates the agent.

    Args:
      time_step_spec: TF-Agents time step spec (uint8 image observations).
      action_spec: scalar bounded integer action spec with minimum 0.
      categorical_q_network: a network with logits `[B, num_actions, num_atoms]` and a
        `num_atoms` property, e.g. `tfgap.networks.build_categorical_q_network(...)`.
      optimizer: a Keras optimizer; None builds Adam(learning_rate, epsilon=adam_epsilon).
      train_step_counter: optional int64 variable counting updates.
      name: agent name (default: the class name).
      **settings: keyword-only hyperparameters overriding `DEFAULTS`, the fields of
        `tfgap.agents.settings.RainbowSettings`: those of DQN plus v_max (largest atom) and
        v_min (smallest atom; None means -v_max). With a noisy network and exploration "auto"
        the epsilon settings are unused (epsilon 0 throughout, as Dopamine).

    Raises:
      ValueError: on an unknown setting or one outside its range, or a network without atoms.
    """
    if not hasattr(categorical_q_network, "num_atoms"):
      raise ValueError(
          f"{type(self).__name__} needs a categorical network with a num_atoms property and logits "
          f"[B, num_actions, num_atoms]; got {categorical_q_network.name!r} (use "
          "build_categorical_q_network, or DQNAgent for Q-value networks).")
    checks.check_int(f"{categorical_q_network.name}.num_atoms", categorical_q_network.num_atoms,
                     low=2)  # C51 needs at least 2 atoms (Rainbow uses 51).
    self._init_settings(settings, categorical_q_network)
    self.v_min, self.v_max = self.settings.support_range
    optimizer, train_step_counter = base.optimizer_and_counter(
        optimizer, train_step_counter, self.learning_rate, self.adam_epsilon)
    try:
      super().__init__(
          time_step_spec, action_spec, categorical_q_network, optimizer,
          min_q_value=self.v_min, max_q_value=self.v_max, epsilon_greedy=self._scheduled_epsilon,
          n_step_update=self.n_step, target_update_period=self.target_update_updates,
          gamma=self.gamma, gradient_clipping=self.gradient_clipping,
          train_step_counter=train_step_counter, name=name or type(self).__name__)
    except (TypeError, ValueError) as e:
      raise ValueError(
          f"{type(self).__name__} cannot use network {categorical_q_network.name!r}: {e}") from e
    self._init_compiled()

  @property
  def support(self):
    """The `[num_atoms]` atoms of the value distribution."""
    return self._support

  @property
  def num_atoms(self):
    return self._num_atoms

  def _q_values_from_output(self, output):
    return losses.categorical_q_values(output, self._support)

  def _loss_and_priorities(self, output, action, reward, discount, next_online, next_target,
                           weights):
    target = losses.categorical_target(reward, discount, next_online, next_target, self._support,
                                       double=self.double)
    return losses.categorical_loss(output, action, target, weights)


@base.settings_signature
class DERAgent(RainbowAgent):
  """Data-efficient Rainbow (van Hasselt et al. 2019): Rainbow with its Atari100K defaults.

  `DEFAULTS` is `tfgap.agents.settings.DER_DEFAULTS`: Rainbow's, but Adam lr 1e-4, n-step 10, one
  update per agent step, target refresh every 2,000 steps, learning after 1,600 steps and epsilon
  0.01 reached over 2,000 steps (Dopamine's `dopamine/labs/atari_100k/configs/DER.gin`). Build
  its network with `dueling=True, noisy=True`: then, as in Dopamine (whose full Rainbow replaces
  DER.gin's linearly_decaying_epsilon by zero_epsilon for noisy networks), the epsilon settings
  are unused and every action comes from the noisy network, warm-up included.
  """

  DEFAULTS = settings_lib.DER_DEFAULTS
