"""A bottleneck defined outside tfgap: global max pooling, registered as "maxpool".

Importing this module is all it takes to use `bottleneck="maxpool"` in the builders, gin configs
(`build_q_network.bottleneck = 'maxpool'`), `tfgap.launch.describe --import_module ...` and the
analyses. Like GAP it keeps one feature per channel, so psi's input weights are C * dim(psi).
"""

import tensorflow as tf

from tfgap import networks


@networks.register_bottleneck
class GlobalMaxPooling(networks.Bottleneck):
  """`[B, H, W, C]` -> `[B, C]`: g_c = max over (i, j) of F[i, j, c].

  No options, no weights, no neurons of its own: the base class's defaults give psi's widths
  ((512,) for Q-networks), the output width and FLOPs (0) for accounting, and the effective
  parameters (psi's first-layer kernels).
  """

  bottleneck_name = "maxpool"

  def call(self, inputs, training=False):
    del training  # Same in training and inference.
    return tf.reduce_max(inputs, axis=[1, 2])
