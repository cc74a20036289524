"""The fused double forward (issue 13.2): one online call on concat([s, s']) gives the numbers of
two calls, draws noise per half as two calls would, and keeps the pruning step per update."""

import numpy as np
import pytest
import tensorflow as tf

from tests.agents import helpers
from tfgap import agents
from tfgap import networks
from tfgap.networks import heads
from tfgap.networks import pruning

def make_agent(kind, fused, jit_compile=False, bottleneck="gap", **net_kwargs):
  tss, act = helpers.specs()
  tf.keras.utils.set_random_seed(7)  # Same initial weights for the fused and unfused agents.
  if kind == "dqn":
    net = networks.build_q_network(tss.observation, act, bottleneck=bottleneck, **net_kwargs)
    return agents.DQNAgent(tss, act, net, double=True, fused_forward=fused,
                           jit_compile=jit_compile, target_update_period=8)
  net = networks.build_categorical_q_network(tss.observation, act, num_atoms=11, dueling=True,
                                             bottleneck=bottleneck, **net_kwargs)
  return agents.RainbowAgent(tss, act, net, fused_forward=fused, jit_compile=jit_compile,
                             target_update_period=8)


def run_updates(agent, steps=3):
  out = []
  for i in range(steps):
    loss, priorities = agent.update(helpers.make_batch(i))
    out.append((float(loss), priorities.numpy()))
  return out, [v.numpy() for v in agent.q_network.trainable_variables]


# XLA (jit_compile=True) stays compiled on the CPU in this test, as the GPU default uses it.
@pytest.mark.parametrize("kind", ["dqn", "rainbow"])
@pytest.mark.parametrize("jit", [False, True])
def test_fused_equals_unfused(kind, jit):
  """Same losses, priorities and weights to float32 rounding over three updates (a target
  refresh included at 2 updates with target_update_period 8 / update_period 4)."""
  unfused, fused = make_agent(kind, False, jit), make_agent(kind, True, jit)
  for a, b in zip(unfused.q_network.variables, fused.q_network.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  (steps_a, weights_a), (steps_b, weights_b) = run_updates(unfused), run_updates(fused)
  for (loss_a, prio_a), (loss_b, prio_b) in zip(steps_a, steps_b):
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prio_a, prio_b, rtol=1e-5, atol=1e-6)
  for a, b in zip(weights_a, weights_b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_default_is_per_device():
  agent = make_agent("dqn", None)
  assert agent.fused_forward == agents.base.default_fused_forward()
  assert agent.fused_forward == bool(tf.config.list_physical_devices("GPU"))


def test_noise_groups_draw_independent_noise_per_half():
  """One noisy call on concat([x, x]) with 2 groups: the halves differ (independent draws),
  each half is distributed as a single call's output, and without noise they are equal."""
  tss, act = helpers.specs()
  net = networks.build_q_network(tss.observation, act, bottleneck="gap", noisy=True,
                                 head_units=(16,))
  x = helpers.make_batch()["observation"]
  both = np.concatenate([x, x])
  call = tf.function(lambda obs: net(obs, training=True)[0])
  with heads.noise_groups(net, 2):
    grouped = call(both).numpy()
  assert not np.allclose(grouped[:helpers.BATCH], grouped[helpers.BATCH:])
  # Shared noise (the plain call) makes the two copies equal: the groups are what differs.
  shared = net(both, training=True)[0].numpy()
  np.testing.assert_allclose(shared[:helpers.BATCH], shared[helpers.BATCH:], rtol=1e-6)
  # In distribution: the per-row mean and spread of each half match single calls'.
  single = np.stack([net(x, training=True)[0].numpy() for _ in range(300)])
  with heads.noise_groups(net, 2):
    halves = np.stack([call(both).numpy() for _ in range(150)])
  halves = np.concatenate([halves[:, :helpers.BATCH], halves[:, helpers.BATCH:]])
  np.testing.assert_allclose(halves.mean(0), single.mean(0), atol=0.05 * single.std() + 1e-3)
  np.testing.assert_allclose(halves.std(0), single.std(0), rtol=0.25)
  # The context restores the layers' setting; with the noise off both halves agree.
  layers = [l for l in net._flatten_layers() if isinstance(l, heads.NoisyDense)]  # pylint: disable=protected-access
  assert layers and all(l.noise_groups == 1 for l in layers)
  networks.set_noise(net, False)
  with heads.noise_groups(net, 2):
    quiet = net(both, training=True)[0].numpy()
  np.testing.assert_allclose(quiet[:helpers.BATCH], quiet[helpers.BATCH:], rtol=1e-6)


def test_noisy_softmoe_groups():
  tss, act = helpers.specs()
  net = networks.build_q_network(tss.observation, act, bottleneck="softmoe", noisy=True,
                                 bottleneck_kwargs={"num_experts": 2, "expert_hidden": 8})
  x = helpers.make_batch()["observation"]
  with heads.noise_groups(net, 2):
    out = net(np.concatenate([x, x]), training=True)[0].numpy()
  assert not np.allclose(out[:helpers.BATCH], out[helpers.BATCH:])


def test_noisy_rainbow_fused_trains():
  """A noisy Rainbow update with the fused call runs (graph and XLA) and stays finite."""
  for jit in (False, True):
    agent = make_agent("rainbow", True, jit, noisy=True)
    result = agent.update(helpers.make_batch())
    assert result.finite and np.isfinite(float(result.loss))


def test_pruned_step_once_per_update():
  """A pruned network's pruning step follows the update count with the fused call too."""
  for fused in (False, True):
    agent = make_agent("dqn", fused, bottleneck="pruned",
                       bottleneck_kwargs={"begin_step": 0, "end_step": 10, "frequency": 1,
                                          "target_sparsity": 0.5})
    for i in range(3):
      agent.update(helpers.make_batch(i))
    steps = {int(w.pruning_step.numpy()) for w in pruning.pruning_wrappers(agent.q_network)}
    assert steps == {3}, (fused, steps)
