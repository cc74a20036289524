"""Agent construction, acting semantics, exploration schedule and TF-Agents compatibility."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from tfgap import agents
from tfgap import networks

OBS_SHAPE = (12, 12, 2)


def specs(num_actions=4):
  obs = tensor_spec.BoundedTensorSpec(OBS_SHAPE, tf.uint8, 0, 255)
  act = tensor_spec.BoundedTensorSpec((), tf.int64, 0, num_actions - 1)
  return ts.time_step_spec(obs), act


@pytest.fixture(scope="module")
def rainbow():
  tss, act = specs()
  net = networks.build_categorical_q_network(tss.observation, act, num_atoms=11, dueling=True,
                                             bottleneck="gap")
  return agents.RainbowAgent(tss, act, net, seed=5)


def observations(n, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n,) + OBS_SHAPE, dtype=np.uint8)


def test_greedy_actions_match_the_tf_agents_policy(rainbow):
  obs = observations(64)
  step = ts.TimeStep(tf.ones([64], tf.int32), tf.zeros([64]), tf.ones([64]), tf.constant(obs))
  greedy = rainbow.policy.action(step).action.numpy()
  np.testing.assert_array_equal(rainbow.act(obs, epsilon=0.0), greedy)
  expected = (tf.nn.softmax(rainbow.q_network(obs)[0], -1) * rainbow.support).numpy().sum(-1)
  np.testing.assert_array_equal(greedy, expected.argmax(-1))
  assert rainbow.act(obs, 0.0).dtype == np.int64


def test_epsilon_one_is_uniform_and_collect_policy_follows_the_agents_clock(rainbow):
  obs = np.repeat(observations(1), 2000, axis=0)
  counts = np.bincount(rainbow.act(obs, epsilon=1.0), minlength=4)
  assert counts.sum() == 2000 and np.all(np.abs(counts - 500) < 100), counts
  greedy = rainbow.act(obs[:1], epsilon=0.0)[0]
  # epsilon 0.5: greedy half the time plus a quarter of the random draws.
  share = np.mean(rainbow.act(obs, epsilon=0.5) == greedy)
  assert 0.55 < share < 0.70, share
  assert int(rainbow.env_step) == 0  # An explicit epsilon leaves the clock alone.
  step = ts.TimeStep(tf.ones([2000], tf.int32), tf.zeros([2000]), tf.ones([2000]),
                     tf.constant(obs))
  # Warm-up (env_step < min_replay_history): epsilon 1, uniform actions.
  collected = rainbow.collect_policy.action(step).action.numpy()
  assert len(np.unique(collected)) == 4 and float(rainbow.epsilon) == 1.0
  assert int(rainbow.env_step) == 2000  # One agent step per batch entry.
  # Past the decay: epsilon_train (0.01), read from the same clock by act() and the policy.
  rainbow.env_step.assign(10**7)
  collected = rainbow.collect_policy.action(step).action.numpy()
  assert float(rainbow.epsilon) == pytest.approx(0.01)
  assert np.mean(collected == greedy) > 0.97
  assert np.mean(rainbow.act(obs) == greedy) > 0.97
  assert int(rainbow.env_step) == 10**7 + 4000


@pytest.mark.parametrize("step,expected", [
    (0, 1.0), (20_000, 1.0), (20_000 + 125_000, 0.505), (270_000, 0.01), (10**7, 0.01)])
def test_epsilon_schedule_is_dopamines_linear_decay(step, expected):
  schedule = agents.LinearEpsilon(decay_period=250_000, warmup_steps=20_000, epsilon=0.01)
  assert schedule(step) == pytest.approx(expected)
  assert agents.linearly_decaying_epsilon(step, 250_000, 20_000, 0.01) == pytest.approx(expected)


def test_dqn_agent_defaults_follow_the_reference_table():
  tss, act = specs()
  agent = agents.DQNAgent(tss, act, networks.build_q_network(tss.observation, act))
  assert (agent.gamma, agent.n_step, agent.update_period, agent.target_update_period,
          agent.min_replay_history, agent.batch_size) == (0.99, 1, 4, 8000, 20000, 32)
  assert agent.target_update_updates == 2000  # 8,000 agent steps / 4 steps per update
  assert agent.optimizer.get_config()["learning_rate"] == pytest.approx(6.25e-5)
  assert agent.optimizer.get_config()["epsilon"] == pytest.approx(1.5e-4)
  assert agent.epsilon_at(0) == 1.0 and agent.epsilon_at(10**6) == pytest.approx(0.01)
  # Dopamine's JaxDQNAgent: MSE loss, plain max over the target network.
  assert (agent.loss, agent.double, agent.exploration, agent.noisy) == ("mse", False, "auto",
                                                                         False)
  assert agent.jit_compile == agents.default_jit_compile()
  assert agents.resolve_jit_compile(None) == bool(tf.config.list_physical_devices("GPU"))


def test_der_defaults_follow_the_reference_table():
  tss, act = specs()
  net = networks.build_categorical_q_network(tss.observation, act, dueling=True, noisy=True)
  agent = agents.DERAgent(tss, act, net)
  assert (agent.n_step, agent.update_period, agent.target_update_period,
          agent.min_replay_history, agent.epsilon_decay_period) == (10, 1, 2000, 1600, 2000)
  assert agent.optimizer.get_config()["learning_rate"] == pytest.approx(1e-4)
  np.testing.assert_allclose(agent.support.numpy()[[0, -1]], [-10.0, 10.0])
  assert agent.num_atoms == 51
  # Noisy network: epsilon 0 from the first step, warm-up included (Dopamine's zero_epsilon).
  assert agent.noisy and agent.exploration == "auto" and agent.double
  assert agent.epsilon_at(0) == 0.0 and agent.epsilon_at(1000) == 0.0
  assert float(agent.epsilon) == 0.0


@pytest.mark.parametrize("exploration,noisy,expected", [
    ("auto", True, [0.0, 0.0, 0.0]), ("auto", False, [1.0, 0.505, 0.01]),
    ("linear", True, [1.0, 0.505, 0.01]), ("zero", False, [0.0, 0.0, 0.0])])
def test_exploration_setting_picks_the_schedule(exploration, noisy, expected):
  tss, act = specs()
  net = networks.build_categorical_q_network(tss.observation, act, num_atoms=11, dueling=True,
                                             noisy=noisy, bottleneck="gap")
  agent = agents.RainbowAgent(tss, act, net, exploration=exploration, min_replay_history=100,
                              epsilon_decay_period=200)
  assert agent.noisy == noisy
  got = [agent.epsilon_at(t) for t in (0, 200, 10**6)]
  np.testing.assert_allclose(got, expected, atol=1e-9)
  # The graph-side schedule (collect policy, act) agrees with the Python one.
  for t in (0, 150, 200, 299, 10**6):
    assert float(agent.epsilon_schedule.tensor(tf.constant(t, tf.int64))) == pytest.approx(
        agent.epsilon_at(t), abs=1e-7)


def test_act_without_epsilon_advances_the_clock_and_explicit_epsilon_does_not():
  tss, act = specs()
  agent = agents.DQNAgent(tss, act, networks.build_q_network(tss.observation, act),
                          min_replay_history=4, epsilon_decay_period=8)
  obs = observations(2)
  assert float(agent.epsilon) == 1.0
  for i in range(1, 7):
    agent.act(obs)
    assert int(agent.env_step) == 2 * i
    # The epsilon of the last call: the schedule at the steps taken before it.
    assert float(agent.epsilon) == pytest.approx(agent.epsilon_at(2 * i - 2))
  agent.act(obs, epsilon=agent.epsilon_eval)
  assert int(agent.env_step) == 12
  assert float(agent.epsilon) == pytest.approx(agent.epsilon_at(10))


def test_checkpoints_holding_epsilon_restore_and_the_schedule_takes_over(tmp_path):
  tss, act = specs()
  # Checkpoints written before the clock existed hold a variable named `epsilon` (1.0).
  old = tf.train.Checkpoint(epsilon=tf.Variable(1.0, dtype=tf.float32))
  path = old.save(str(tmp_path / "old"))
  agent = agents.DQNAgent(tss, act, networks.build_q_network(tss.observation, act),
                          min_replay_history=0, epsilon_decay_period=1)
  agent.env_step.assign(5)
  agent.act(observations(1))
  assert float(agent.epsilon) == pytest.approx(0.01)
  tf.train.Checkpoint(epsilon=agent.epsilon).restore(path).assert_consumed()
  assert float(agent.epsilon) == 1.0
  agent.act(observations(1))
  assert float(agent.epsilon) == pytest.approx(0.01)
  # The clock itself is a trackable variable of the agent.
  new = tf.train.Checkpoint(agent=agent)
  saved = new.save(str(tmp_path / "new"))
  agent.env_step.assign(0)
  new.restore(saved)
  assert int(agent.env_step) == 7


@pytest.mark.parametrize("kwargs,message", [
    (dict(gamma=1.5), r"gamma=1.5 is not accepted; accepted: a finite number >= 0.0 and <= 1.0"),
    (dict(update_period=0), r"update_period=0 is not accepted; accepted: an integer >= 1\."),
    (dict(epsilon_train=-0.1), "epsilon_train=-0.1 is not accepted"),
    (dict(jit_compile="yes"), r"jit_compile='yes' is not accepted; accepted: None \(XLA on GPU"),
    (dict(learning_rate=0.0), "learning_rate=0.0 is not accepted; accepted: a finite number > 0"),
    (dict(n_stepp=3), "DQNAgent option=.n_stepp. is not accepted.*Did you mean .n_step."),
    (dict(loss="l1"), r"loss='l1' is not accepted; accepted: 'mse', 'huber'"),
    (dict(exploration="linaer"), r"exploration='linaer' is not accepted.*Did you mean 'linear'"),
])
def test_bad_hyperparameters_raise_value_error_naming_them(kwargs, message):
  tss, act = specs()
  with pytest.raises(ValueError, match=message):
    agents.DQNAgent(tss, act, networks.build_q_network(tss.observation, act), **kwargs)


def test_networks_of_the_wrong_kind_are_rejected():
  tss, act = specs()
  categorical = networks.build_categorical_q_network(tss.observation, act)
  with pytest.raises(ValueError, match="RainbowAgent"):
    agents.DQNAgent(tss, act, categorical)
  with pytest.raises(ValueError, match="num_atoms"):
    agents.RainbowAgent(tss, act, networks.build_q_network(tss.observation, act))
  wrong_actions = networks.build_q_network(tss.observation, specs(num_actions=7)[1])
  with pytest.raises(ValueError, match="cannot use network"):
    agents.DQNAgent(tss, act, wrong_actions)
  with pytest.raises(ValueError, match="ppo"):
    agents.agent_class("ppo")


def test_der_is_rainbow_with_six_other_defaults():
  rainbow, der = agents.RAINBOW_DEFAULTS.asdict(), agents.DER_DEFAULTS.asdict()
  changed = {k: der[k] for k in der if der[k] != rainbow[k]}
  assert changed == dict(learning_rate=1e-4, n_step=10, update_period=1,
                         target_update_period=2000, min_replay_history=1600,
                         epsilon_decay_period=2000)
  assert issubclass(agents.DERAgent, agents.RainbowAgent)
  assert agents.DERAgent.DEFAULTS is agents.DER_DEFAULTS
  # RainbowAgent's defaults are untouched by DER's.
  assert agents.RainbowAgent.DEFAULTS.n_step == 3 and agents.DQN_DEFAULTS.n_step == 1


def test_settings_are_keyword_only_and_listed_in_each_signature():
  import inspect  # pylint: disable=g-import-not-at-top
  for cls in (agents.DQNAgent, agents.RainbowAgent, agents.DERAgent):
    params = inspect.signature(cls.__init__).parameters
    positional = [n for n, p in params.items() if p.kind != p.KEYWORD_ONLY]
    assert positional[1:3] == ["time_step_spec", "action_spec"] and len(positional) == 4
    for field in cls.DEFAULTS.field_names():
      assert params[field].kind == params[field].KEYWORD_ONLY
      assert params[field].default == getattr(cls.DEFAULTS, field), (cls, field)
    assert params["name"].default == cls.__name__
  tss, act = specs()
  net = networks.build_q_network(tss.observation, act)
  with pytest.raises(TypeError):
    agents.DQNAgent(tss, act, net, None)  # optimizer is keyword-only now


def test_gin_binds_each_agent_by_its_own_name_with_its_own_defaults():
  import gin  # pylint: disable=g-import-not-at-top
  from tfgap.launch import common  # pylint: disable=g-import-not-at-top
  registered = common.register_gin()["agents"]
  tss, act = specs()
  net = networks.build_categorical_q_network(tss.observation, act, num_atoms=11)
  with gin.unlock_config():
    gin.parse_config("DERAgent.n_step = 7\nRainbowAgent.batch_size = 16")
  try:
    der = registered["der"](tss, act, net, seed=1)
    rainbow = registered["rainbow"](tss, act, net.copy())
    assert (der.n_step, der.batch_size, der.update_period, der.name) == (7, 32, 1, "DERAgent")
    assert (rainbow.n_step, rainbow.batch_size) == (3, 16)
    with pytest.raises(ValueError, match="n_stepp"):
      gin.parse_config("DERAgent.n_stepp = 7")
  finally:
    gin.clear_config()
