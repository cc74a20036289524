"""Each agent learns a pixel task (tests/agents/pixel_task.py) in a bounded number of steps.

The loop is the one tfgap.launch.train runs, written out: act epsilon-greedily with the compiled
actor, store the step in tfgap's replay, update from replay batches, feed priorities back.
"""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from tests.agents import pixel_task
from tfgap import agents
from tfgap import networks
from tfgap import replay as replay_lib

EPISODE_LENGTH = 10
NUM_ACTIONS = 3
RANDOM_RETURN = EPISODE_LENGTH / NUM_ACTIONS  # 3.33; the optimal policy earns 10.
TRAIN_STEPS = 1600  # environment steps over both environments

# Short-horizon settings so that learning fits in a test: the agents' own losses (DQN: MSE on the
# target max), networks, replay and exploration (DER: noisy, epsilon 0 throughout), with smaller
# periods than the Atari defaults.
AGENT_SETTINGS = {
    "dqn": dict(learning_rate=1e-3, n_step=1, update_period=1, target_update_period=50,
                min_replay_history=200, epsilon_decay_period=300),
    "rainbow": dict(learning_rate=1e-3, n_step=3, update_period=1, target_update_period=50,
                    min_replay_history=200, epsilon_decay_period=300),
    "der": dict(learning_rate=1e-3, n_step=3, update_period=1, target_update_period=50,
                min_replay_history=200, epsilon_decay_period=300),
}
NETWORK_SETTINGS = {
    "dqn": dict(bottleneck="gap"),
    "rainbow": dict(bottleneck="flatten", dueling=True, num_atoms=51),
    "der": dict(bottleneck="gap", dueling=True, noisy=True, num_atoms=51),
}


def evaluate(agent, env, episodes, epsilon):
  env.pop_episode_stats()
  time_step = env.reset()
  returns = []
  while len(returns) < episodes:
    time_step = env.step(agent.act(time_step.observation, epsilon))
    returns.extend(e["return"] for e in env.pop_episode_stats())
  return float(np.mean(returns[:episodes]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dqn", "rainbow", "der"])
def test_agent_beats_random_policy(name):
  env = pixel_task.make_band_env(num_envs=2, seed=1, episode_length=EPISODE_LENGTH,
                                 num_actions=NUM_ACTIONS)
  eval_env = pixel_task.make_band_env(num_envs=4, seed=100, episode_length=EPISODE_LENGTH,
                                      num_actions=NUM_ACTIONS)
  obs_spec = tensor_spec.from_spec(env.observation_spec())
  action_spec = tensor_spec.from_spec(env.action_spec())
  cls, kind = agents.agent_class(name)
  if kind == "q":
    net = networks.build_q_network(obs_spec, action_spec, **NETWORK_SETTINGS[name])
  else:
    net = networks.build_categorical_q_network(obs_spec, action_spec, **NETWORK_SETTINGS[name])
  agent = cls(ts.time_step_spec(obs_spec), action_spec, net, seed=3, **AGENT_SETTINGS[name])
  prioritized = name != "dqn"
  buffer = replay_lib.ReplayBuffer(
      capacity=4000, frame_shape=env.frame_shape, stack_size=env.stack_size, num_streams=2,
      n_step=agent.n_step, gamma=agent.gamma, prioritized=prioritized, alpha=0.5, beta=0.5,
      seed=0)

  before = evaluate(agent, eval_env, 20, epsilon=agent.epsilon_eval)
  time_step = env.reset()
  buffer.add_time_step(time_step)
  env_steps = 0
  while env_steps < TRAIN_STEPS:
    action = agent.act(time_step.observation, agent.epsilon_at(env_steps))
    time_step = env.step(action)
    buffer.add_time_step(time_step, action)
    env_steps += 2
    if env_steps >= agent.min_replay_history:
      for _ in range(2):  # update_period 1, two envs: two updates per loop step.
        batch = buffer.sample(agent.batch_size)
        loss, priorities = agent.update(batch)
        assert np.isfinite(float(loss))
        if prioritized:
          buffer.update_priorities(batch["indices"], priorities.numpy())
  after = evaluate(agent, eval_env, 20, epsilon=agent.epsilon_eval)
  # A clear margin over the random policy's 3.33 (the optimum is 10), which the untrained
  # network did not have: the margin was learned, not drawn at initialisation.
  assert before < RANDOM_RETURN + 3.0, (name, before, after)
  assert after >= RANDOM_RETURN + 3.0, (name, before, after)
  assert after >= before + 2.0, (name, before, after)
  assert int(agent.train_step_counter.numpy()) == TRAIN_STEPS - 200 + 2
  # DER's noisy network explored alone: epsilon 0 from the first step, as in Dopamine.
  assert agent.noisy == (name == "der") and (agent.epsilon_at(0) == 0.0) == agent.noisy
  if not agent.noisy:  # Noisy layers draw new noise on every call.
    # The TF-Agents greedy policy and the compiled actor at epsilon 0 agree.
    policy_actions = agent.policy.action(
        ts.TimeStep(tf.constant(time_step.step_type), tf.constant(time_step.reward),
                    tf.constant(time_step.discount),
                    tf.constant(time_step.observation))).action.numpy()
    np.testing.assert_array_equal(policy_actions, agent.act(time_step.observation, 0.0))
