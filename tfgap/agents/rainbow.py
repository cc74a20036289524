"""Rainbow (C51 + n-step + prioritized replay + dueling + double, noisy nets optional) and DER.

Both are TF-Agents `CategoricalDqnAgent`s with tfgap's compiled update. Dueling and noisy nets are
properties of the network (`tfgap.networks.build_categorical_q_network(dueling=..., noisy=...)`);
prioritized replay is a property of the replay buffer, which receives the priorities `update`
returns. The compiled update selects the next action with the online network (double), as
Dopamine's Rainbow does; TF-Agents' own `train()` keeps its C51 loss (target-network argmax).
"""

from tf_agents.agents.categorical_dqn import categorical_dqn_agent

from tfgap.agents import base
from tfgap.agents import losses


class RainbowAgent(base.CompiledUpdateMixin, categorical_dqn_agent.CategoricalDqnAgent):
  """Rainbow with Dopamine's Atari defaults (REFERENCE.md table, Dopamine `rainbow.gin`)."""

  def __init__(self, time_step_spec, action_spec, categorical_q_network, optimizer=None, *,
               learning_rate=6.25e-5, adam_epsilon=1.5e-4, gamma=0.99, n_step=3, v_max=10.0,
               v_min=None, update_period=4, target_update_period=8000,
               min_replay_history=20000, batch_size=32, epsilon_train=0.01, epsilon_eval=0.001,
               epsilon_decay_period=250000, double=True, gradient_clipping=None,
               jit_compile=None, seed=0, train_step_counter=None, name="RainbowAgent"):
    """Creates the agent.

    Args:
      time_step_spec: TF-Agents time step spec (uint8 image observations).
      action_spec: scalar bounded integer action spec with minimum 0.
      categorical_q_network: a network with logits `[B, num_actions, num_atoms]` and a
        `num_atoms` property, e.g. `tfgap.networks.build_categorical_q_network(...)`.
      optimizer: a Keras optimizer; None builds Adam(learning_rate, epsilon=adam_epsilon).
      learning_rate: Adam step size (Dopamine Rainbow: 6.25e-5).
      adam_epsilon: Adam epsilon (1.5e-4).
      gamma: discount per agent step.
      n_step: return horizon (Rainbow 3).
      v_max: largest atom of the support (Rainbow 10).
      v_min: smallest atom; None means -v_max.
      update_period: agent steps per gradient update.
      target_update_period: agent steps between target refreshes.
      min_replay_history: agent steps collected before learning (and epsilon warm-up).
      batch_size: replay batch size.
      epsilon_train: final training epsilon (0 is usual with noisy nets).
      epsilon_eval: evaluation epsilon.
      epsilon_decay_period: agent steps of linear epsilon decay after the warm-up.
      double: select bootstrap actions with the online network.
      gradient_clipping: optional global-norm clip.
      jit_compile: XLA for the update: None per device, or True/False.
      seed: seed of the acting random generator.
      train_step_counter: optional int64 variable counting updates.
      name: agent name.

    Raises:
      ValueError: on a hyperparameter outside its range or a network without atoms.
    """
    if not hasattr(categorical_q_network, "num_atoms"):
      raise ValueError(
          f"{type(self).__name__} needs a categorical network with a num_atoms property and logits "
          f"[B, num_actions, num_atoms]; got {categorical_q_network.name!r} (use "
          "build_categorical_q_network, or DQNAgent for Q-value networks).")
    v_max = base.check_float("v_max", v_max, 0.0, low_open=True)
    v_min = -v_max if v_min is None else base.check_float("v_min", v_min, -float("inf"))
    if v_min >= v_max:
      raise ValueError(f"v_min={v_min!r} is not accepted: it must be smaller than v_max={v_max!r}.")
    if categorical_q_network.num_atoms < 2:
      raise ValueError(f"num_atoms={categorical_q_network.num_atoms} is not accepted: C51 needs at "
                       "least 2 atoms (Rainbow uses 51).")
    self._init_settings(
        gamma=gamma, n_step=n_step, update_period=update_period,
        target_update_period=target_update_period, min_replay_history=min_replay_history,
        batch_size=batch_size, epsilon_train=epsilon_train, epsilon_eval=epsilon_eval,
        epsilon_decay_period=epsilon_decay_period, double=double, jit_compile=jit_compile,
        seed=seed)
    self.v_min, self.v_max = v_min, v_max
    optimizer, train_step_counter = base.optimizer_and_counter(
        optimizer, train_step_counter, learning_rate, adam_epsilon)
    try:
      super().__init__(
          time_step_spec, action_spec, categorical_q_network, optimizer,
          min_q_value=v_min, max_q_value=v_max, epsilon_greedy=lambda: self.epsilon,
          n_step_update=self.n_step, target_update_period=self.target_update_updates,
          gamma=self.gamma, gradient_clipping=gradient_clipping,
          train_step_counter=train_step_counter, name=name)
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


class DERAgent(RainbowAgent):
  """Data-efficient Rainbow (van Hasselt et al. 2019) with its Atari100K hyperparameters.

  Defaults from the REFERENCE.md table / Dopamine's DER gin: Adam lr 1e-4 (eps 1.5e-4), n-step 10,
  one update per agent step, target refresh every 2,000 steps, learning after 1,600 steps, epsilon
  0.01 reached over 2,000 steps. Build its network with `dueling=True, noisy=True`.
  """

  def __init__(self, time_step_spec, action_spec, categorical_q_network, optimizer=None, *,
               learning_rate=1e-4, adam_epsilon=1.5e-4, gamma=0.99, n_step=10, v_max=10.0,
               v_min=None, update_period=1, target_update_period=2000, min_replay_history=1600,
               batch_size=32, epsilon_train=0.01, epsilon_eval=0.001, epsilon_decay_period=2000,
               double=True, gradient_clipping=None, jit_compile=None, seed=0,
               train_step_counter=None, name="DERAgent"):
    """Creates the agent; arguments as `RainbowAgent` with the Atari100K defaults."""
    super().__init__(
        time_step_spec, action_spec, categorical_q_network, optimizer,
        learning_rate=learning_rate, adam_epsilon=adam_epsilon, gamma=gamma, n_step=n_step,
        v_max=v_max, v_min=v_min, update_period=update_period,
        target_update_period=target_update_period, min_replay_history=min_replay_history,
        batch_size=batch_size, epsilon_train=epsilon_train, epsilon_eval=epsilon_eval,
        epsilon_decay_period=epsilon_decay_period, double=double,
        gradient_clipping=gradient_clipping, jit_compile=jit_compile, seed=seed,
        train_step_counter=train_step_counter, name=name)
