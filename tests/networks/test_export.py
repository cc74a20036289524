"""SavedModels of build_keras_model load in a fresh process that never imports tfgap."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfgap import networks
from tfgap.networks import pruning

SHAPE = (32, 32, 4)
# Three models cover the encoders, dueling + categorical heads, the einsum-based SoftMoE and a
# stripped pruned network (plain flatten + masked weights).
MODELS = {
    "impala_gap_dueling_c51": dict(bottleneck="gap", encoder="impala", dueling=True, num_atoms=7),
    "softmoe": dict(bottleneck="softmoe", bottleneck_kwargs=dict(num_experts=2, expert_hidden=8,
                                                                  normalize=True)),
    "pruned_stripped": dict(bottleneck="pruned",
                            bottleneck_kwargs=dict(begin_step=0, end_step=2, frequency=1,
                                                   target_sparsity=0.7, prune_phi=True)),
}

LOADER = """
import sys
import numpy as np
import tensorflow as tf
root = sys.argv[1]
x = np.load(root + "/x.npy")
for name in sys.argv[2:]:
  model = tf.saved_model.load(root + "/" + name)
  y = model(tf.constant(x), training=False).numpy()
  serving = model.signatures["serving_default"]
  (z,) = serving(observation=tf.constant(x)).values()
  np.save(root + "/" + name + ".loaded.npy", y)
  np.save(root + "/" + name + ".serving.npy", z.numpy())
leaked = sorted(m for m in sys.modules if m.split(".")[0] == "tfgap")
print("TFGAP_MODULES", leaked)
"""


@pytest.mark.slow
def test_saved_models_load_in_a_fresh_process_without_tfgap(tmp_path):
  x = np.random.randint(0, 256, (3,) + SHAPE).astype(np.uint8)
  np.save(tmp_path / "x.npy", x)
  expected = {}
  for name, kwargs in MODELS.items():
    model = networks.build_keras_model(SHAPE, 4, width_scale=0.25, head_units=(8,), **kwargs)
    if name.startswith("pruned"):
      pruning.initialize_pruning(model)
      model(x, training=True)
      model(x, training=True)  # Step 2 = end_step: masks at the target sparsity.
      model = pruning.strip_pruning(model)
      assert not pruning.pruning_wrappers(model)
    expected[name] = model(x).numpy()
    tf.saved_model.save(model, str(tmp_path / name))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
  # Run from the temporary directory so that the checkout's tfgap is not importable by path.
  result = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path), *MODELS],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "TFGAP_MODULES []" in result.stdout
  for name, want in expected.items():
    for suffix in ("loaded", "serving"):
      got = np.load(tmp_path / f"{name}.{suffix}.npy")
      assert got.shape == want.shape, name
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name} {suffix}")
  assert expected["impala_gap_dueling_c51"].shape == (3, 4, 7)
