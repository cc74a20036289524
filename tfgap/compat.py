"""The one module that imports Keras, and the supported-stack check.

TF-Agents 0.19 and tensorflow-model-optimization 0.8 both need Keras 2 layers; in TF 2.15,
``tf.keras`` *is* Keras 2 (keras 2.15). Every other tfgap module takes Keras from here::

    from tfgap.compat import keras

so that a change of Keras backend is a one-line change and a wrong stack fails at import, not deep
inside a layer. Importing it imports TensorFlow (the modules that take Keras from here need it) but
changes nothing else: `import tfgap` does not import this module.
"""

# Importing this module only reads version strings: it writes no environment variable. TensorFlow
# reads TF_ENABLE_ONEDNN_OPTS and TF_CPP_MIN_LOG_LEVEL when it is imported, so their defaults are
# set by the command-line tools before any import (tfgap.launch.runtime.prepare_process), not here.
# Do not set TF_USE_LEGACY_KERAS: in TF 2.15 it switches tf.keras to the separate tf_keras package
# lazily, so layers built before and after the switch fail TF-Agents' isinstance checks.

import numpy as np
import tensorflow as tf

SUPPORTED = {
    "tensorflow": "2.15",
    "keras": "2.15",
    "numpy": "1.26",
}


class UnsupportedStackError(ImportError):
  """Raised (at import of tfgap.compat, or by check_stack) when TF/Keras/numpy cannot run tfgap."""


def check_stack(tf_version=None, keras_version=None, numpy_version=None):
  """Checks the installed TensorFlow, Keras and numpy versions.

  Args:
    tf_version: version string to check instead of the installed TensorFlow's.
    keras_version: version string to check instead of the installed tf.keras's.
    numpy_version: version string to check instead of the installed numpy's.

  Raises:
    UnsupportedStackError: naming what is installed and what is supported.
  """
  installed = {
      "tensorflow": tf_version or tf.__version__,
      "keras": keras_version or _keras_version(),
      "numpy": numpy_version or np.__version__,
  }
  bad = []
  for name, prefix in SUPPORTED.items():
    version = installed[name]
    if not (version == prefix or version.startswith(prefix + ".")):
      bad.append(f"{name} {version} (supported: {prefix}.x)")
  if bad:
    raise UnsupportedStackError(
        "tfgap needs the stack TensorFlow 2.15 + Keras 2.15 + numpy 1.26 (TF-Agents 0.19 and "
        "tensorflow-model-optimization 0.8 are built for it; Keras 3 layers are rejected by both, "
        "numpy 2 breaks TF-Agents 0.19). Installed and unsupported: " + "; ".join(bad) +
        ". Install the pinned stack with `make install` (requirements.txt).")
  return installed


def _keras_version():
  version_fn = getattr(tf.keras, "version", None)
  if version_fn is not None:  # Keras 3 exposes keras.version().
    return version_fn()
  # In TF 2.15, tf.keras is the `keras` 2.15 package behind a lazy API module.
  import keras as keras_package  # pylint: disable=g-import-not-at-top
  return keras_package.__version__


# At import, so that a module needing Keras fails here with the message above rather than deep
# inside a layer. It only compares version strings: no side effect but the exception.
check_stack()

keras = tf.keras

__all__ = ["keras", "check_stack", "UnsupportedStackError", "SUPPORTED"]
