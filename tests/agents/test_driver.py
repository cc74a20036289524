"""A stock TF-Agents driver with `agent.collect_policy` explores on the agent's own schedule.

No tfgap training loop here: `DynamicStepDriver` + `TFPyEnvironment` on a real tfgap environment
(tests/agents/pixel_task.py), as a TF-Agents user would run them.
"""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.environments import tf_py_environment
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common

from tests.agents import pixel_task
from tfgap import agents
from tfgap import networks

NUM_ENVS = 2


class Recorder:
  """TF-Agents' own replay buffer as the driver's observer (works in eager and graph mode)."""

  def __init__(self, agent):
    self.buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        agent.collect_data_spec, batch_size=NUM_ENVS, max_length=1000)
    self.observer = self.buffer.add_batch

  def take(self):
    """The observations and actions recorded since the last call, flattened over (env, time)."""
    trajectory = self.buffer.gather_all()
    self.buffer.clear()
    obs = trajectory.observation.numpy()
    return obs.reshape((-1,) + obs.shape[2:]), trajectory.action.numpy().reshape(-1)


def make(agent_name, noisy=False, **settings):
  env = tf_py_environment.TFPyEnvironment(pixel_task.make_band_env(num_envs=NUM_ENVS, seed=0))
  obs_spec, action_spec = env.observation_spec(), env.action_spec()
  cls, kind = agents.agent_class(agent_name)
  if kind == "q":
    net = networks.build_q_network(obs_spec, action_spec, bottleneck="gap")
  else:
    net = networks.build_categorical_q_network(obs_spec, action_spec, num_atoms=11,
                                               dueling=True, noisy=noisy, bottleneck="gap")
  agent = cls(ts.time_step_spec(tensor_spec.from_spec(obs_spec)), action_spec, net, seed=1,
              **settings)
  return env, agent


def greedy_share(agent, observations, actions):
  step = ts.restart(tf.constant(observations), batch_size=len(observations))
  return float(np.mean(agent.policy.action(step).action.numpy() == actions))


@pytest.mark.parametrize("compiled", [False, True])
def test_stock_driver_explores_on_the_schedule_of_agent_steps(compiled):
  env, agent = make("dqn", min_replay_history=200, epsilon_decay_period=200)
  recorder = Recorder(agent)
  driver = dynamic_step_driver.DynamicStepDriver(
      env, agent.collect_policy, observers=[recorder.observer], num_steps=20)
  run = common.function(driver.run) if compiled else driver.run
  time_step, epsilons, clock = None, [], []
  for _ in range(30):  # 600 agent steps: warm-up, decay, then epsilon_train.
    time_step, _ = run(time_step=time_step)
    epsilons.append(float(agent.epsilon))
    clock.append(int(agent.env_step))
    if clock[-1] == 200:
      warmup = recorder.take()
    elif clock[-1] == 400:
      recorder.take()  # The decay.
  final = recorder.take()  # Agent steps 400-600, at epsilon_train.
  # The clock counts agent steps (batch entries); the driver stops every 20 counted steps.
  assert clock[0] == 20 and clock[-1] == 600 and all(np.diff(clock) == 20)
  # Epsilon is Dopamine's schedule of the clock: 1 through the warm-up, then falling to 0.01.
  for steps, eps in zip(clock, epsilons):
    assert eps == pytest.approx(agent.epsilon_at(steps - NUM_ENVS), abs=1e-6)
  assert epsilons[9] == 1.0 and epsilons[-1] == pytest.approx(0.01)
  assert all(np.diff(epsilons) <= 1e-7) and epsilons[14] < 0.6
  # Warm-up actions are uniform (a third agree with the greedy policy, 3 actions); at the end
  # the collect policy acts greedily but for epsilon 0.01.
  assert greedy_share(agent, *warmup) < 0.5
  assert greedy_share(agent, *final) > 0.95


def test_noisy_rainbow_collects_with_epsilon_zero_from_the_first_step():
  env, agent = make("rainbow", noisy=True, min_replay_history=200)
  driver = dynamic_step_driver.DynamicStepDriver(env, agent.collect_policy, num_steps=20)
  driver.run()
  assert int(agent.env_step) == 20 and float(agent.epsilon) == 0.0
  # The decaying schedule stays available for noisy networks.
  env, agent = make("der", noisy=True, exploration="linear")
  dynamic_step_driver.DynamicStepDriver(env, agent.collect_policy, num_steps=20).run()
  assert float(agent.epsilon) == 1.0  # DER's warm-up: 1,600 agent steps.
