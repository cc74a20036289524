"""DQN as Dopamine's JAX DQN runs it (MSE loss, plain max over the target network, Adam), as a
TF-Agents DdqnAgent with a compiled update; Huber loss and double DQN are options."""

from tf_agents.agents.dqn import dqn_agent
from tf_agents.utils import common

from tfgap.agents import base
from tfgap.agents import losses
from tfgap.agents import settings as settings_lib

# TF-Agents' element-wise losses for its own train() path; the squared loss has no 0.5 factor,
# as Dopamine's mse_loss.
_TF_AGENTS_LOSSES = {"mse": common.element_wise_squared_loss,
                     "huber": common.element_wise_huber_loss}


@base.settings_signature
class DQNAgent(base.CompiledUpdateMixin, dqn_agent.DdqnAgent):
  """DQN with Dopamine's Atari defaults (`dopamine/jax/agents/dqn/configs/dqn.gin`).

  As Dopamine's `JaxDQNAgent`: the bootstrap is `max_a Q_target(s', a)` and the loss the squared
  TD error (`loss_type='mse'`, dopamine/jax/agents/dqn/dqn_agent.py). `double=True` selects the
  next action with the online network (double DQN), `loss="huber"` uses the Huber loss.

  A TF-Agents `DdqnAgent` (whose target computation follows `double`): `policy` (greedy),
  `collect_policy` (epsilon-greedy on the schedule of `env_step`, which it advances),
  `train(experience)` and PolicySaver work as usual. tfgap adds `update(batch)` (compiled,
  replay-batch input), `act(observation)` (compiled epsilon-greedy) and the replay/exploration
  settings the training loop reads (`update_period`, `min_replay_history`, `batch_size`,
  `epsilon_at(step)`, `n_step`, `gamma`; all in `agent.settings`).
  """

  DEFAULTS = settings_lib.DQN_DEFAULTS

  def __init__(self, time_step_spec, action_spec, q_network, *, optimizer=None,
               train_step_counter=None, name=None, **settings):
    """Creates the agent.

    Args:
      time_step_spec: TF-Agents time step spec (uint8 image observations).
      action_spec: scalar bounded integer action spec with minimum 0.
      q_network: a network with output `[B, num_actions]`, e.g.
        `tfgap.networks.build_q_network(...)` with any encoder and bottleneck.
      optimizer: a Keras optimizer; None builds Adam(learning_rate, epsilon=adam_epsilon).
      train_step_counter: optional int64 variable counting updates.
      name: agent name (default: the class name).
      **settings: keyword-only hyperparameters overriding `DEFAULTS`, the fields of
        `tfgap.agents.settings.DQNSettings` (learning_rate, adam_epsilon, gamma, n_step,
        update_period, target_update_period, min_replay_history, batch_size, epsilon_train,
        epsilon_eval, epsilon_decay_period, exploration, double, gradient_clipping,
        jit_compile, seed, loss).

    Raises:
      ValueError: on an unknown setting or one outside its range, or a network whose output is
        not `[B, num_actions]` Q-values (e.g. a categorical network: use RainbowAgent).
    """
    if hasattr(q_network, "num_atoms"):
      raise ValueError(
          f"DQNAgent needs a Q-network with output [B, num_actions]; got the categorical network "
          f"{q_network.name!r} with num_atoms={q_network.num_atoms} (use RainbowAgent/DERAgent, or "
          "build_q_network).")
    self._init_settings(settings, q_network)
    optimizer, train_step_counter = base.optimizer_and_counter(
        optimizer, train_step_counter, self.learning_rate, self.adam_epsilon)
    try:
      super().__init__(
          time_step_spec, action_spec, q_network=q_network, optimizer=optimizer,
          epsilon_greedy=self._scheduled_epsilon, n_step_update=self.n_step,
          target_update_period=self.target_update_updates,
          td_errors_loss_fn=_TF_AGENTS_LOSSES[self.loss], gamma=self.gamma,
          gradient_clipping=self.gradient_clipping, train_step_counter=train_step_counter,
          name=name or type(self).__name__)
    except (TypeError, ValueError) as e:
      raise ValueError(f"DQNAgent cannot use network {q_network.name!r}: {e}") from e
    self._init_compiled()

  def _compute_next_q_values(self, next_time_steps, info):
    # TF-Agents' train() path honours `double` too.
    if self.double:
      return super()._compute_next_q_values(next_time_steps, info)
    return dqn_agent.DqnAgent._compute_next_q_values(self, next_time_steps, info)

  def _loss_and_priorities(self, output, action, reward, discount, next_online, next_target,
                           weights):
    targets = losses.double_dqn_target(reward, discount, next_online, next_target,
                                       double=self.double)
    return losses.dqn_loss(output, action, targets, weights, loss=self.loss)
