"""The environments inside TF-Agents' own machinery: TFPyEnvironment, a driver, a policy."""

import pytest
import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.policies import random_tf_policy

from tfgap import envs


@pytest.mark.parametrize("suite,name,num_envs", [
    ("atari", "Pong", 2), ("atari100k", "Breakout", 1), ("procgen", "coinrun", 4),
    ("dmc", "cartpole-swingup", 2)])
def test_driver_collects_with_a_random_policy(suite, name, num_envs):
  tf_env = envs.make_tf(suite, name, num_envs=num_envs)
  try:
    policy = random_tf_policy.RandomTFPolicy(tf_env.time_step_spec(), tf_env.action_spec())
    seen = []
    driver = dynamic_step_driver.DynamicStepDriver(
        tf_env, policy, observers=[seen.append], num_steps=4 * num_envs)
    time_step, _ = driver.run()
    assert len(seen) == 4
    frames = seen[-1].observation
    assert frames.dtype == tf.uint8
    assert frames.shape == (num_envs,) + tf_env.pyenv.observation_spec().shape
    assert seen[-1].action.shape[0] == num_envs
    assert time_step.step_type.shape == (num_envs,)
  finally:
    tf_env.pyenv.close()
