"""DQN (double DQN, Huber loss, Adam) as a TF-Agents DdqnAgent with a compiled update."""

from tf_agents.agents.dqn import dqn_agent
from tf_agents.utils import common

from tfgap.agents import base
from tfgap.agents import losses


class DQNAgent(base.CompiledUpdateMixin, dqn_agent.DdqnAgent):
  """Double DQN with Dopamine's Atari defaults (REFERENCE.md table, Dopamine `dqn.gin`).

  A TF-Agents `DdqnAgent`: `policy` (greedy), `collect_policy` (epsilon-greedy, epsilon read from
  the `epsilon` variable), `train(experience)` and PolicySaver work as usual. tfgap adds
  `update(batch)` (compiled, replay-batch input), `act(observation)` (compiled epsilon-greedy) and
  the replay/exploration settings the training loop reads (`update_period`, `min_replay_history`,
  `batch_size`, `epsilon_at(step)`, `n_step`, `gamma`).
  """

  def __init__(self, time_step_spec, action_spec, q_network, optimizer=None, *,
               learning_rate=6.25e-5, adam_epsilon=1.5e-4, gamma=0.99, n_step=1,
               update_period=4, target_update_period=8000, min_replay_history=20000,
               batch_size=32, epsilon_train=0.01, epsilon_eval=0.001,
               epsilon_decay_period=250000, double=True, gradient_clipping=None,
               jit_compile=None, seed=0, train_step_counter=None, name="DQNAgent"):
    """Creates the agent.

    Args:
      time_step_spec: TF-Agents time step spec (uint8 image observations).
      action_spec: scalar bounded integer action spec with minimum 0.
      q_network: a network with output `[B, num_actions]`, e.g.
        `tfgap.networks.build_q_network(...)` with any encoder and bottleneck.
      optimizer: a Keras optimizer; None builds Adam(learning_rate, epsilon=adam_epsilon).
      learning_rate: Adam step size (Dopamine DQN: 6.25e-5).
      adam_epsilon: Adam epsilon (Dopamine: 1.5e-4).
      gamma: discount per agent step.
      n_step: return horizon (replay computes the n-step return; also TF-Agents' n_step_update).
      update_period: agent steps per gradient update.
      target_update_period: agent steps between target-network refreshes (Dopamine: 8,000).
      min_replay_history: agent steps collected before learning (and epsilon warm-up).
      batch_size: replay batch size.
      epsilon_train: final training epsilon.
      epsilon_eval: evaluation epsilon.
      epsilon_decay_period: agent steps of linear epsilon decay after the warm-up.
      double: double DQN targets (True) or max over the target network (False).
      gradient_clipping: optional global-norm clip of the gradients (None as in Dopamine).
      jit_compile: XLA for the update: None picks per device (GPU yes, CPU no), or True/False.
      seed: seed of the acting random generator.
      train_step_counter: optional int64 variable counting updates.
      name: agent name.

    Raises:
      ValueError: on a hyperparameter outside its range, or a network whose output is not
        `[B, num_actions]` Q-values (e.g. a categorical network: use RainbowAgent).
    """
    if hasattr(q_network, "num_atoms"):
      raise ValueError(
          f"DQNAgent needs a Q-network with output [B, num_actions]; got the categorical network "
          f"{q_network.name!r} with num_atoms={q_network.num_atoms} (use RainbowAgent/DERAgent, or "
          "build_q_network).")
    self._init_settings(
        gamma=gamma, n_step=n_step, update_period=update_period,
        target_update_period=target_update_period, min_replay_history=min_replay_history,
        batch_size=batch_size, epsilon_train=epsilon_train, epsilon_eval=epsilon_eval,
        epsilon_decay_period=epsilon_decay_period, double=double, jit_compile=jit_compile,
        seed=seed)
    optimizer, train_step_counter = base.optimizer_and_counter(
        optimizer, train_step_counter, learning_rate, adam_epsilon)
    try:
      super().__init__(
          time_step_spec, action_spec, q_network=q_network, optimizer=optimizer,
          epsilon_greedy=lambda: self.epsilon, n_step_update=self.n_step,
          target_update_period=self.target_update_updates,
          td_errors_loss_fn=common.element_wise_huber_loss, gamma=self.gamma,
          gradient_clipping=gradient_clipping, train_step_counter=train_step_counter, name=name)
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
    return losses.dqn_loss(output, action, targets, weights)
