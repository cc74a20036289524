"""Every bottleneck's forward and backward pass compiles with XLA and matches plain TensorFlow.

The Nature encoder is used throughout: the subject is the bottleneck, and Impala's backward pass
takes XLA on CPU several times longer to compile. The first XLA compile in a process also pays a
one-off start-up of several seconds.
"""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec

from tfgap import networks
from tfgap.networks import pruning

OBS = tensor_spec.BoundedTensorSpec((28, 28, 3), tf.uint8, 0, 255)
ACT = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 3)
CASES = {
    "flatten": dict(bottleneck="flatten"),
    "gap": dict(bottleneck="gap"),
    "softmoe": dict(bottleneck="softmoe",
                    bottleneck_kwargs=dict(num_experts=2, expert_hidden=16, normalize=True)),
    "softmoe_per_patch": dict(bottleneck="softmoe",
                              bottleneck_kwargs=dict(num_experts=2, expert_hidden=16,
                                                     tokenization="per_patch", patch_size=2)),
    "tokenize_per_featuremap": dict(bottleneck="tokenize",
                                    bottleneck_kwargs=dict(hidden_units=16,
                                                           tokenization="per_featuremap")),
    "pruned": dict(bottleneck="pruned",
                   bottleneck_kwargs=dict(begin_step=0, end_step=4, frequency=1, prune_phi=True)),
    "categorical_dueling_noisy": dict(bottleneck="gap", num_atoms=5, dueling=True, noisy=True),
    # Noisy networks make SoftMoE's expert first layers noisy (Dopamine's MoE lab).
    "softmoe_noisy_experts": dict(bottleneck="softmoe", num_atoms=5, dueling=True, noisy=True,
                                  bottleneck_kwargs=dict(num_experts=2, expert_hidden=16)),
}


def _build(key):
  kwargs = dict(CASES[key])
  if "num_atoms" in kwargs:
    net = networks.build_categorical_q_network(OBS, ACT, width_scale=0.25, head_units=(8,),
                                               **kwargs)
  else:
    net = networks.build_q_network(OBS, ACT, width_scale=0.25, head_units=(16,), **kwargs)
  net.create_variables()
  return net


@pytest.mark.parametrize("key", list(CASES))
def test_forward_backward_compiles_with_xla(key):
  net = _build(key)
  networks.set_noise(net, False)  # The compiled and the plain pass must see the same function.
  pruning.initialize_pruning(net)
  # Training mode would advance the pruning step (and update masks) on the pruned network.
  training = key != "pruned"
  x = tf.constant(np.random.randint(0, 256, (4, 28, 28, 3)).astype(np.uint8))

  def loss_and_grads():
    with tf.GradientTape() as tape:
      q, _ = net(x, training=training)
      loss = tf.reduce_mean(tf.square(q))
    return loss, tape.gradient(loss, net.trainable_variables)

  compiled = tf.function(loss_and_grads, jit_compile=True)
  loss, grads = compiled()
  # A real XLA function (must-compile), not a silent fallback to the plain graph.
  assert compiled.get_concrete_function().function_def.attr["_XlaMustCompile"].b
  loss_ref, grads_ref = loss_and_grads()
  np.testing.assert_allclose(loss, loss_ref, rtol=1e-3)
  assert len(grads) == len(net.trainable_variables) and all(g is not None for g in grads)
  assert any(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
  for g, r in zip(grads, grads_ref):
    np.testing.assert_allclose(g, r, rtol=2e-3, atol=1e-5)
