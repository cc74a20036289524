"""tfgap networks inside real TF-Agents agents: a CategoricalDqnAgent and a SacAgent train step."""

import numpy as np
import tensorflow as tf
from tf_agents.agents.categorical_dqn import categorical_dqn_agent
from tf_agents.agents.sac import sac_agent
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory
from tf_agents.utils import common

from tfgap import networks
from tfgap.compat import keras

OBS = tensor_spec.BoundedTensorSpec((32, 32, 3), tf.uint8, 0, 255)
TIME_STEP_SPEC = ts.time_step_spec(OBS)


def _experience(action_spec, batch=4):
  """A [batch, 2] Trajectory of MID steps with finite rewards."""
  spec = trajectory.Trajectory(
      step_type=TIME_STEP_SPEC.step_type, observation=OBS, action=action_spec, policy_info=(),
      next_step_type=TIME_STEP_SPEC.step_type, reward=TIME_STEP_SPEC.reward,
      discount=TIME_STEP_SPEC.discount)
  sample = tensor_spec.sample_spec_nest(spec, outer_dims=(batch, 2))
  mid = tf.fill((batch, 2), ts.StepType.MID)
  return sample._replace(step_type=mid, next_step_type=mid,
                         reward=tf.random.normal((batch, 2)), discount=tf.ones((batch, 2)))


def _changed(before, variables):
  return any(not np.allclose(b, v.numpy()) for b, v in zip(before, variables))


def test_categorical_network_in_categorical_dqn_agent():
  actions = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 3)
  net = networks.build_categorical_q_network(
      OBS, actions, num_atoms=11, encoder="nature", width_scale=0.25, bottleneck="softmoe",
      bottleneck_kwargs=dict(num_experts=2, expert_hidden=16), head_units=(16,), dueling=True,
      noisy=True)
  agent = categorical_dqn_agent.CategoricalDqnAgent(
      TIME_STEP_SPEC, actions, net, keras.optimizers.Adam(1e-3), min_q_value=-1.0,
      max_q_value=1.0, epsilon_greedy=0.0)
  agent.initialize()
  # The agent made its target network with copy(): separate variables of the same shapes.
  target = agent._target_q_network  # pylint: disable=protected-access
  assert not {id(v) for v in target.variables} & {id(v) for v in net.variables}
  before = [v.numpy() for v in net.trainable_variables]
  loss = common.function(agent.train)(_experience(actions))
  assert np.isfinite(loss.loss.numpy())
  assert _changed(before, net.trainable_variables)
  obs = tf.constant(np.random.randint(0, 256, (3, 32, 32, 3)).astype(np.uint8))
  step = agent.collect_policy.action(ts.restart(obs, batch_size=3))
  assert step.action.shape == (3,) and step.action.dtype == tf.int64


def test_actor_and_critic_in_sac_agent():
  actions = tensor_spec.BoundedTensorSpec((2,), tf.float32, -1.0, 1.0)
  kw = dict(width_scale=0.25, bottleneck="gap", head_units=(16, 16))
  actor = networks.build_actor_network(OBS, actions, **kw)
  critic = networks.build_critic_network(OBS, actions, **kw)
  agent = sac_agent.SacAgent(
      TIME_STEP_SPEC, actions, actor_network=actor, critic_network=critic,
      actor_optimizer=keras.optimizers.Adam(1e-3),
      critic_optimizer=keras.optimizers.Adam(1e-3),
      alpha_optimizer=keras.optimizers.Adam(1e-3))
  agent.initialize()
  before_actor = [v.numpy() for v in actor.trainable_variables]
  before_critic = [v.numpy() for v in critic.trainable_variables]
  loss = common.function(agent.train)(_experience(actions))
  assert np.isfinite(loss.loss.numpy())
  assert _changed(before_actor, actor.trainable_variables)
  assert _changed(before_critic, critic.trainable_variables)
  obs = tf.constant(np.random.randint(0, 256, (3, 32, 32, 3)).astype(np.uint8))
  action = agent.policy.action(ts.restart(obs, batch_size=3)).action
  assert action.shape == (3, 2)
  assert float(tf.reduce_max(tf.abs(action))) <= 1.0
