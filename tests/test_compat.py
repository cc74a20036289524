"""The supported-stack check fails fast with a message naming installed and supported versions."""

import pytest

from tfgap import compat


def test_installed_stack_is_supported():
  installed = compat.check_stack()
  assert installed["tensorflow"].startswith("2.15")
  assert installed["keras"].startswith("2.15")


@pytest.mark.parametrize("kwargs, needle", [
    (dict(tf_version="2.21.0"), "tensorflow 2.21.0"),
    (dict(keras_version="3.6.0"), "keras 3.6.0"),
    (dict(numpy_version="2.1.0"), "numpy 2.1.0"),
])
def test_unsupported_stack_names_installed_and_supported(kwargs, needle):
  with pytest.raises(compat.UnsupportedStackError) as err:
    compat.check_stack(**kwargs)
  assert needle in str(err.value)
  assert "supported" in str(err.value)


def test_keras_is_keras2_and_layers_accepted_by_tf_agents():
  from tf_agents.networks import sequential
  dense = compat.keras.layers.Dense(3)
  # Keras 2 proper, not the separate tf_keras package (TF-Agents checks layer classes).
  assert type(dense).__module__.startswith("keras.")
  net = sequential.Sequential([dense])
  assert net.layers[0] is dense
