"""Mixed precision (issue 13.1): bfloat16 compute, float32 everything the agent reads.

Learning parity, on a fixed batch with the same weights: a mixed_bfloat16 network's Q-values are
within 3% of max |Q| of the float32 network's, its greedy actions are the same wherever the
float32 margin between the two best actions is above that tolerance, and the update's loss is
within 5% (bfloat16 keeps 8 mantissa bits: ~0.4% per rounding).
"""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_saver
from tf_agents.trajectories import time_step as ts

from tests.agents import helpers
from tfgap import agents
from tfgap import networks
from tfgap.networks import common

OBS_SHAPE = (20, 20, 2)
NUM_ACTIONS = 4
BATCH = 32
Q_TOLERANCE = 0.03  # of max |Q| over the batch
LOSS_TOLERANCE = 0.05  # relative

NETWORKS = {
    "nature_flatten": dict(encoder="nature", bottleneck="flatten"),
    "impala_gap": dict(encoder="impala", bottleneck="gap"),
    "nature_softmoe": dict(encoder="nature", bottleneck="softmoe",
                           bottleneck_kwargs={"num_experts": 2, "expert_hidden": 32}),
}


def specs():
  return helpers.specs(OBS_SHAPE, NUM_ACTIONS)


def make_batch(seed=0):
  """A fixed batch without terminals or importance weights (every weight 1)."""
  return helpers.make_batch(seed, terminal_every=None, obs_shape=OBS_SHAPE,
                            num_actions=NUM_ACTIONS, batch=BATCH, discount=0.99,
                            random_weights=False)


def agent_pair(kind, net_kwargs, **agent_kwargs):
  """A float32 and a mixed_bfloat16 agent with the same weights."""
  tss, act = specs()
  pair = []
  for precision in ("float32", "mixed_bfloat16"):
    if kind == "dqn":
      net = networks.build_q_network(tss.observation, act, precision=precision, **net_kwargs)
      agent = agents.DQNAgent(tss, act, net, double=True, jit_compile=False, **agent_kwargs)
    else:
      net = networks.build_categorical_q_network(tss.observation, act, num_atoms=11,
                                                 dueling=True, precision=precision,
                                                 **net_kwargs)
      agent = agents.RainbowAgent(tss, act, net, jit_compile=False, **agent_kwargs)
    pair.append(agent)
  f32, bf16 = pair
  for source, target in zip(f32.q_network.variables, bf16.q_network.variables):
    target.assign(source)
  for source, target in zip(f32.target_q_network.variables, bf16.target_q_network.variables):
    target.assign(source)
  return f32, bf16


@pytest.mark.parametrize("kind", ["dqn", "rainbow"])
@pytest.mark.parametrize("net", sorted(NETWORKS))
def test_parity_on_a_fixed_batch(kind, net):
  f32, bf16 = agent_pair(kind, NETWORKS[net])
  assert (f32.precision, bf16.precision) == ("float32", "mixed_bfloat16")
  batch = make_batch()
  q32 = f32.greedy_q_values(batch["observation"]).numpy()
  q16 = bf16.greedy_q_values(batch["observation"]).numpy()
  assert q16.dtype == np.float32
  scale = np.abs(q32).max()
  np.testing.assert_allclose(q16, q32, atol=Q_TOLERANCE * scale)
  top2 = np.sort(q32, axis=1)[:, -2:]
  clear = (top2[:, 1] - top2[:, 0]) > 2 * Q_TOLERANCE * scale
  assert clear.sum() >= BATCH // 4  # The check below must compare something.
  np.testing.assert_array_equal(q16.argmax(1)[clear], q32.argmax(1)[clear])
  np.testing.assert_array_equal(bf16.act(batch["observation"], epsilon=0.0)[clear],
                                f32.act(batch["observation"], epsilon=0.0)[clear])
  for step in range(2):
    loss32, prio32 = f32.update(make_batch(step))
    loss16, prio16 = bf16.update(make_batch(step))
    assert loss16.dtype == tf.float32 and prio16.dtype == tf.float32
    np.testing.assert_allclose(float(loss16), float(loss32), rtol=LOSS_TOLERANCE)
  for v in bf16.q_network.variables:
    assert v.dtype == tf.float32, v.name
  for v in bf16.optimizer.variables():
    assert v.dtype in (tf.float32, tf.int64), v.name


def test_layers_compute_in_bfloat16_variables_float32():
  tss, act = specs()
  net = networks.build_categorical_q_network(
      tss.observation, act, num_atoms=11, dueling=True, noisy=True, encoder="impala",
      bottleneck="gap", precision="mixed_bfloat16")
  net.create_variables()
  layers = [l for l in net._flatten_layers(include_self=False, recursive=True)  # pylint: disable=protected-access
            if l.weights]
  kinds = {type(l).__name__ for l in layers if l.compute_dtype == "bfloat16"}
  assert {"Conv2D", "NoisyDense"} <= kinds
  # The head's output layers (value, advantage) compute in float32; its hidden layer does not.
  head = net._head  # pylint: disable=protected-access
  outputs = [branch[-1] for branch in head.branches]
  assert [l.name for l in outputs] == ["value", "advantage"]
  assert all(l.compute_dtype == "float32" for l in outputs)
  assert all(l.compute_dtype == "bfloat16" for l in head.trunk)
  assert all(v.dtype == tf.float32 for v in net.variables)
  out, _ = net(make_batch()["observation"])
  assert out.dtype == tf.float32
  assert net.encode(make_batch()["observation"]).dtype == tf.float32
  assert all(t.dtype == tf.float32 for _, _, t in net.activations(make_batch()["observation"]))


@pytest.mark.parametrize("bottleneck, kwargs", [
    ("softmoe", {"num_experts": 2, "expert_hidden": 16}),
    ("softmoe", {"num_experts": 2, "expert_hidden": 16, "noisy": True}),
    ("tokenize", {"hidden_units": 16}),
])
def test_token_bottleneck_activations_match_float32(bottleneck, kwargs):
  """activations() (dormant neurons) runs outside Keras' autocast: a bfloat16 SoftMoE must cast
  its own variables, and its expert activations follow the float32 network's."""
  from tfgap.analysis import dormant  # pylint: disable=g-import-not-at-top
  tss, act = specs()
  nets = []
  for precision in ("float32", "mixed_bfloat16"):
    net = networks.build_q_network(tss.observation, act, encoder="nature", bottleneck=bottleneck,
                                   bottleneck_kwargs=kwargs, precision=precision)
    net.create_variables()
    nets.append(net)
  for source, target in zip(nets[0].variables, nets[1].variables):
    target.assign(source)
  networks.set_noise(nets[0], False)
  networks.set_noise(nets[1], False)
  obs = make_batch()["observation"]
  f32 = {(group, name): t.numpy() for group, name, t in nets[0].activations(obs)}
  bf16 = {(group, name): t for group, name, t in nets[1].activations(obs)}
  assert f32.keys() == bf16.keys() and any(group == "bottleneck" for group, _ in f32)
  for name, value in f32.items():
    assert bf16[name].dtype == tf.float32, name
    scale = max(1e-6, float(np.abs(value).max()))
    np.testing.assert_allclose(bf16[name].numpy(), value, atol=0.05 * scale, err_msg=name)
  report = dormant.dormant_fractions(nets[1], obs)
  fraction = report.group_fraction("bottleneck", report.taus[0])
  assert fraction is not None and 0.0 <= fraction <= 1.0


def test_large_q_values_keep_their_action_gaps():
  """Q-values near 100 (long horizons, SAC's returns): a bfloat16 output layer would round them
  to multiples of 0.5, blurring action gaps of a few tenths; the float32 output layer keeps
  them (measured on this test: max |dQ| 0.25 with a bfloat16 output layer, 0.004 in float32)."""
  tss, act = specs()
  nets = [networks.build_q_network(tss.observation, act, precision=p)
          for p in ("float32", "mixed_bfloat16")]
  for net in nets:
    net.create_variables()
  output_kernel, output_bias = nets[0].variables[-2:]
  assert output_bias.shape == (NUM_ACTIONS,)
  output_bias.assign_add(tf.fill([NUM_ACTIONS], 100.0))
  output_kernel.assign(output_kernel * 10.0)  # action gaps of a few tenths
  for source, target in zip(nets[0].variables, nets[1].variables):
    target.assign(source)
  obs = make_batch()["observation"]
  q32, q16 = (net(obs)[0].numpy() for net in nets)
  assert abs(q32.mean() - 100.0) < 5.0
  np.testing.assert_allclose(q16, q32, atol=0.05)
  top2 = np.sort(q32, axis=1)[:, -2:]
  clear = (top2[:, 1] - top2[:, 0]) > 0.1
  assert clear.sum() >= BATCH // 4
  np.testing.assert_array_equal(q16.argmax(1)[clear], q32.argmax(1)[clear])


def test_pruned_layers_stay_float32():
  tss, act = specs()
  net = networks.build_q_network(tss.observation, act, bottleneck="pruned",
                                 bottleneck_kwargs={"prune_phi": True},
                                 precision="mixed_bfloat16")
  net.create_variables()
  wrappers = [l for l in net._flatten_layers(include_self=False, recursive=True)  # pylint: disable=protected-access
              if common.is_pruned(l)]
  assert wrappers and all(w.compute_dtype == "float32" and w.layer.compute_dtype == "float32"
                          for w in wrappers)
  agent = agents.DQNAgent(tss, act, net, jit_compile=False)
  assert agent.update(make_batch()).finite


def test_xla_update_in_mixed_precision():
  """The XLA-compiled update (the GPU default) runs in bfloat16 on the CPU as well."""
  tss, act = specs()
  net = networks.build_categorical_q_network(tss.observation, act, num_atoms=11, noisy=True,
                                             dueling=True, bottleneck="gap",
                                             precision="mixed_bfloat16")
  agent = agents.RainbowAgent(tss, act, net, jit_compile=True, fused_forward=True)
  result = agent.update(make_batch())
  assert result.finite and result.loss.dtype == tf.float32


def test_auto_follows_the_hardware():
  native, why = common.bfloat16_support()
  assert isinstance(why, str) and why
  expected = "mixed_bfloat16" if native else "float32"
  assert common.resolve_precision("auto") == expected
  tss, act = specs()
  net = networks.build_q_network(tss.observation, act, precision="auto")
  assert net.precision == expected
  assert agents.DQNAgent(tss, act, net, precision="auto").precision == expected


def test_bad_precision_and_mismatch_are_one_line_errors():
  tss, act = specs()
  with pytest.raises(ValueError, match="precision='bf16' is not accepted"):
    networks.build_q_network(tss.observation, act, precision="bf16")
  with pytest.raises(ValueError, match="precision='bf16' is not accepted"):
    agents.DQNAgent(tss, act, networks.build_q_network(tss.observation, act), precision="bf16")
  net = networks.build_q_network(tss.observation, act)
  with pytest.raises(ValueError, match="network's precision 'float32'"):
    agents.DQNAgent(tss, act, net, precision="mixed_bfloat16")


def test_exports_are_float32(tmp_path):
  """PolicySaver and Keras SavedModels take uint8 frames and return float32 / int actions."""
  tss, act = specs()
  net = networks.build_q_network(tss.observation, act, bottleneck="gap",
                                 precision="mixed_bfloat16")
  agent = agents.DQNAgent(tss, act, net)
  saver = policy_saver.PolicySaver(agent.policy, batch_size=None)
  saver.save(str(tmp_path / "policy"))
  loaded = tf.saved_model.load(str(tmp_path / "policy"))
  obs = make_batch()["observation"][:2]
  step = ts.restart(tf.constant(obs), batch_size=2)
  assert loaded.action(step).action.dtype == act.dtype
  model = networks.build_keras_model(OBS_SHAPE, NUM_ACTIONS, bottleneck="gap",
                                     precision="mixed_bfloat16")
  tf.saved_model.save(model, str(tmp_path / "model"))
  restored = tf.saved_model.load(str(tmp_path / "model"))
  out = restored(tf.constant(obs))
  assert out.dtype == tf.float32
  np.testing.assert_allclose(out.numpy(), model(obs).numpy(), rtol=1e-5, atol=1e-6)
