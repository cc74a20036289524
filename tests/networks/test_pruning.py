"""Gradual magnitude pruning: schedule inside an XLA-compiled loop, masks, reports and export."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec

from tfgap import networks
from tfgap.compat import keras
from tfgap.networks import accounting
from tfgap.networks import pruning

OBS = tensor_spec.BoundedTensorSpec((36, 36, 4), tf.uint8, 0, 255)
ACT = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 5)
BEGIN, END, FREQ, TARGET = 2, 14, 3, 0.8


def _net(prune_phi=False, psi_layers=1, **kwargs):
  net = networks.build_q_network(
      OBS, ACT, bottleneck="pruned", head_units=(24,), width_scale=0.25,
      bottleneck_kwargs=dict(target_sparsity=TARGET, begin_step=BEGIN, end_step=END,
                             frequency=FREQ, prune_phi=prune_phi, psi_layers=psi_layers),
      **kwargs)
  net.create_variables()
  return net


def _batch(n=8):
  x = tf.constant(np.random.randint(0, 256, (n, 36, 36, 4)).astype(np.uint8))
  return x, tf.random.normal((n, 6))


def _cubic(step):
  p = min(1.0, max(0.0, (step - BEGIN) / (END - BEGIN)))
  return TARGET * (1 - (1 - p) ** 3)


@pytest.mark.slow  # XLA's first compile in a process costs ~10 s on this CPU.
def test_schedule_and_target_inside_jit_compiled_loop():
  net = _net(prune_phi=True)
  assert len(pruning.pruning_wrappers(net)) == 4  # 3 convs + psi's first layer.
  opt = keras.optimizers.Adam(1e-2)
  x, y = _batch()
  updates = tf.Variable(0, dtype=tf.int64)

  @tf.function(jit_compile=True)
  def step():
    # Both helpers run inside the compiled step, as an agent's train step would call them.
    pruning.initialize_pruning(net)
    pruning.set_pruning_step(net, updates)
    with tf.GradientTape() as tape:
      q, _ = net(x, training=True)
      loss = tf.reduce_mean(tf.square(q - y))
    grads = tape.gradient(loss, net.trainable_variables)
    opt.apply_gradients(zip(grads, net.trainable_variables))
    updates.assign_add(1)
    return loss

  masks_at_end = None
  for i in range(1, END + 5):
    step()
    rows = pruning.sparsity_report(net)
    # Pinned to the completed updates (i - 1), the training call advanced it to i.
    assert {r["step"] for r in rows} == {i}
    # The mask of the last update at or before step i has the cubic schedule's sparsity.
    last_update = BEGIN + ((min(i, END) - BEGIN) // FREQ) * FREQ if i >= BEGIN else None
    expected = 0.0 if last_update is None else _cubic(last_update)
    for r in rows:
      assert abs(r["sparsity"] - expected) <= 1.0 / r["size"] + 1e-9, (i, r)
    if i == END:
      assert all(abs(r["sparsity"] - TARGET) <= 1.0 / r["size"] for r in rows)
      assert {r["part"] for r in rows} == {"phi", "psi"}
      masks_at_end = [m.numpy() for w in pruning.pruning_wrappers(net)
                      for _, m, _ in w.pruning_vars]
  # After end_step the masks stay put, and pruned weights stay zero in the forward pass.
  masks_now = [m.numpy() for w in pruning.pruning_wrappers(net) for _, m, _ in w.pruning_vars]
  for before, now in zip(masks_at_end, masks_now):
    np.testing.assert_array_equal(before, now)
  net(x, training=False)  # Any call re-applies the masks after the optimizer's update.
  for w in pruning.pruning_wrappers(net):
    for weight, mask, _ in w.pruning_vars:
      assert np.all(weight.numpy()[mask.numpy() == 0] == 0)
  result = accounting.account(net)
  first = net.parts()["psi"][0]
  params, live = accounting.layer_params(first)
  kernel = int(np.prod(networks.common.unwrap(first).kernel.shape))
  assert params - live == int(round(TARGET * kernel))
  assert result["total"]["live"] < result["total"]["params"]


def test_magnitude_criterion_keeps_the_largest_weights():
  net = _net()
  pruning.initialize_pruning(net)
  pruning.set_pruning_step(net, END - 1)  # The next training call is step END: full target.
  wrapper, = pruning.pruning_wrappers(net)
  (weight, mask, _), = wrapper.pruning_vars
  before = weight.numpy()  # Before the call, which masks the kernel in place.
  magnitudes = np.abs(before)
  net(_batch()[0], training=True)
  assert pruning.pruning_step(net) == END
  kept = mask.numpy() == 1
  # The target fraction is dropped, and every kept weight is at least as large as every dropped.
  assert abs((~kept).mean() - TARGET) < 0.01
  assert magnitudes[kept].min() >= magnitudes[~kept].max()
  # The kernel is masked in place: exactly the dropped weights are now zero.
  after = weight.numpy()
  np.testing.assert_array_equal(after[~kept], 0.0)
  np.testing.assert_array_equal(after[kept], before[kept])
  assert np.count_nonzero(after) == kept.sum()


def test_psi_layers_all_and_dueling_prune_every_stream():
  net = _net(psi_layers="all", dueling=True)
  # Shared dueling layout: one hidden layer, value and advantage output layers.
  assert len(pruning.pruning_wrappers(net)) == 3
  assert [r["part"] for r in pruning.sparsity_report(net)] == ["psi"] * 3
  net = _net(psi_layers="all", dueling=True, dueling_layout="separate")
  # Two streams, each a hidden and an output layer.
  assert len(pruning.pruning_wrappers(net)) == 4
  assert [r["part"] for r in pruning.sparsity_report(net)] == ["psi"] * 4


def test_dueling_prunes_the_connection_once_when_shared():
  # psi_layers=1 wraps the layers the bottleneck feeds: the shared hidden layer only.
  net = _net(dueling=True)
  assert [networks.common.unwrap(w).name for w in pruning.pruning_wrappers(net)] == ["dense0"]
  net = _net(dueling=True, dueling_layout="separate")
  assert [networks.common.unwrap(w).name for w in pruning.pruning_wrappers(net)] == [
      "value_dense0", "advantage_dense0"]


def test_training_calls_initialise_the_step_themselves():
  net = _net()
  assert pruning.pruning_step(net) == -1  # tfmot's initial step.
  net(_batch()[0], training=False)
  assert pruning.pruning_step(net) == -1  # Inference calls leave it alone.
  net(_batch()[0], training=True)  # tfmot alone would fail its UpdatePruningStep assertion.
  assert pruning.pruning_step(net) == 1
  pruning.initialize_pruning(net)  # Idempotent: a later call keeps the step.
  net(_batch()[0], training=True)
  assert pruning.pruning_step(net) == 2


def test_strip_pruning_keeps_outputs_and_drops_wrappers():
  net = _net(prune_phi=True)
  pruning.initialize_pruning(net)
  pruning.set_pruning_step(net, END - 1)
  x, _ = _batch(4)
  net(x, training=True)
  stripped = pruning.strip_pruning(net)
  assert not pruning.pruning_wrappers(stripped)
  assert stripped.bottleneck_name == "pruned"
  np.testing.assert_allclose(stripped(x)[0], net(x)[0], rtol=1e-5, atol=1e-6)
  # The stripped weights are the masked ones: the first psi kernel has the target sparsity.
  kernel = stripped.parts()["psi"][0].kernel.numpy()
  assert abs((kernel == 0).mean() - TARGET) < 0.01


def test_keras_model_prunes_under_fit_and_strips():
  model = networks.build_keras_model(
      (36, 36, 4), 6, width_scale=0.25, bottleneck="pruned", head_units=(24,),
      bottleneck_kwargs=dict(target_sparsity=0.5, begin_step=0, end_step=4, frequency=2))
  x, y = _batch(8)
  pruning.initialize_pruning(model)
  model.compile("adam", "mse")
  model.fit(x.numpy(), y.numpy(), batch_size=8, epochs=4, verbose=0)
  row, = pruning.sparsity_report(model)
  assert row["part"] == "psi" and row["step"] == 4
  assert abs(row["sparsity"] - 0.5) <= 1.0 / row["size"]
  stripped = pruning.strip_pruning(model)
  assert not pruning.pruning_wrappers(stripped)
  np.testing.assert_allclose(stripped(x), model(x), rtol=1e-5, atol=1e-6)


def test_schedule_steps_aligns_end_with_mask_updates():
  s = pruning.schedule_steps(2_500_000)
  assert s == {"begin_step": 500_000, "end_step": 2_000_000, "frequency": 1000}
  s = pruning.schedule_steps(10_007, frequency=300)
  assert (s["end_step"] - s["begin_step"]) % 300 == 0
  with pytest.raises(ValueError, match=r"end_fraction=0.2 is not accepted; accepted: a number > begin_fraction \(0.8\)"):
    pruning.schedule_steps(100, begin_fraction=0.8, end_fraction=0.2)


def test_helpers_reject_unbuilt_or_unpruned():
  net = networks.build_q_network(OBS, ACT, bottleneck="pruned",
                                 bottleneck_kwargs=dict(begin_step=0, end_step=10))
  with pytest.raises(ValueError, match="not built"):
    pruning.initialize_pruning(net)
  plain = networks.build_q_network(OBS, ACT, bottleneck="gap", head_units=(8,))
  plain.create_variables()
  assert pruning.initialize_pruning(plain) == 0
  with pytest.raises(ValueError, match="no pruning wrappers"):
    pruning.pruning_step(plain)
  with pytest.raises(ValueError, match="Expected a Keras layer"):
    pruning.pruning_wrappers(42)


def test_stock_tf_agents_dqn_trains_a_pruned_network_without_initialize_pruning():
  from tf_agents.agents.dqn import dqn_agent  # pylint: disable=g-import-not-at-top
  from tf_agents.trajectories import time_step as ts  # pylint: disable=g-import-not-at-top
  from tf_agents.trajectories import trajectory  # pylint: disable=g-import-not-at-top
  obs_spec = tensor_spec.BoundedTensorSpec((12, 12, 2), tf.uint8, 0, 255)
  act_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 2)
  net = networks.build_q_network(
      obs_spec, act_spec, bottleneck="pruned", head_units=(8,), width_scale=0.25,
      bottleneck_kwargs=dict(begin_step=0, end_step=4, frequency=1, target_sparsity=0.5))
  # A stock agent: no tfgap agent, no manual pruning.initialize_pruning call.
  agent = dqn_agent.DqnAgent(ts.time_step_spec(obs_spec), act_spec, q_network=net,
                             optimizer=keras.optimizers.Adam(1e-3))
  agent.initialize()
  batch = 4
  rng = np.random.RandomState(0)
  experience = trajectory.Trajectory(
      step_type=tf.ones((batch, 2), tf.int32), next_step_type=tf.ones((batch, 2), tf.int32),
      observation=tf.constant(rng.randint(0, 256, (batch, 2, 12, 12, 2)).astype(np.uint8)),
      action=tf.zeros((batch, 2), tf.int64), policy_info=(), reward=tf.ones((batch, 2)),
      discount=tf.ones((batch, 2)))
  for _ in range(3):
    assert np.isfinite(agent.train(experience).loss.numpy())
  assert pruning.pruning_step(net) == 3  # One training-mode call per update.
  # Cubic schedule from step 0 to 4: 0.5 * (1 - (1/4)^3) at step 3.
  (row,) = pruning.sparsity_report(net)
  assert row["target"] == pytest.approx(0.5 * (1 - 0.25 ** 3))
  assert row["sparsity"] == pytest.approx(row["target"], abs=0.02)


def test_building_a_pruned_network_leaves_tf_keras_as_it_was():
  # tfmot's import sets TF_USE_LEGACY_KERAS=1; left set, the user's next `tf.keras` (and every
  # child process's) would be the separate tf_keras package, which cannot hold tfgap's layers.
  # A fresh interpreter, since tfmot is imported once per process.
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = (
      "import os\n"
      "import tensorflow as tf\n"
      "from tf_agents.specs import tensor_spec\n"
      "from tfgap import networks\n"
      "obs = tensor_spec.BoundedTensorSpec((36, 36, 4), tf.uint8, 0, 255)\n"
      "act = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 3)\n"
      "networks.build_q_network(obs, act, bottleneck='pruned')\n"
      "assert 'TF_USE_LEGACY_KERAS' not in os.environ, os.environ['TF_USE_LEGACY_KERAS']\n"
      "assert tf.keras.layers.Dense.__module__.startswith('keras.'), tf.keras.layers.Dense\n")
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-1500:]
