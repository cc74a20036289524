"""Shared pytest set-up: quiet TensorFlow, deterministic seeds."""

# As the command-line tools do, before TensorFlow or TF-Agents load: oneDNN and log-level defaults,
# and the MuJoCo renderer chosen before test modules import tf_agents (which loads dm_control).
from tfgap.launch import runtime

runtime.prepare_process(renderer=True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
  np.random.seed(0)
  tf.random.set_seed(0)
  yield
