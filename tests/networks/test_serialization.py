"""Every tfgap layer round-trips through get_config and the `.keras` format.

`model.save("m.keras")` of a `build_keras_model` model reloads with `keras.models.load_model`
once tfgap is imported: same config, same weights, same outputs.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfgap import networks
from tfgap.compat import keras
from tfgap.networks import bottlenecks
from tfgap.networks import encoders
from tfgap.networks import heads
from tfgap.networks import pruning

SHAPE = (20, 20, 4)
TINY = dict(width_scale=0.25, head_units=(8,))
PRUNE = dict(begin_step=0, end_step=2, frequency=1, target_sparsity=0.5)

# Every registered bottleneck with its defaults (shrunk where the default is wide), plus the
# options that change its structure.
BOTTLENECK_OPTIONS = {
    "sparse": [dict(method="static", sparsity=0.9), dict(method="rigl", sparsity=0.8),
               dict(method="gmp", sparsity=0.5)],
    "flatten": [{}],
    "gap": [{}],
    "softmoe": [
        dict(num_experts=2, expert_hidden=8),
        dict(num_experts=8, slots_per_expert=1, expert_hidden=8),
        dict(num_experts=2, expert_hidden=8, tokenization="per_patch", patch_size=2,
             embedding_size=8),
        dict(num_experts=2, expert_hidden=8, tokenization="per_featuremap", normalize=True),
        dict(num_experts=2, expert_hidden=8, noisy=True),
    ],
    "tokenize": [
        dict(hidden_units=8),
        dict(hidden_units=8, output_units=0, tokenization="per_patch", patch_size=2,
             patch_embedding="avg_pool"),
    ],
    "pruned": [PRUNE, dict(PRUNE, prune_phi=True, wrap=False)],
}
BOTTLENECK_CASES = [(name, options) for name in bottlenecks.list_bottlenecks()
                    for options in BOTTLENECK_OPTIONS.get(name, [{}])]


def _ids(case):
  name, options = case
  return name + "".join(f"-{k}={v}" for k, v in sorted(options.items()) if k not in PRUNE)


def _observations(shape=SHAPE, n=3, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n,) + shape).astype(np.uint8)


def _plain(config):
  """A config as the .keras file holds it (JSON: tuples become lists)."""
  return json.loads(json.dumps(config))


def _roundtrip_config(layer):
  """The layer rebuilt from its config (through Keras' registry); asserts the same config."""
  config = keras.utils.serialize_keras_object(layer)
  assert config["registered_name"].startswith("tfgap"), config["registered_name"]
  clone = keras.utils.deserialize_keras_object(config)
  assert type(clone) is type(layer)
  assert clone.get_config() == layer.get_config()
  return clone


def _save_and_load(model, tmp_path, x):
  """Saves `model` as .keras, reloads it; asserts config, weights and outputs match."""
  heads.set_noise(model, False)  # Noisy layers draw fresh noise per call.
  want = model(x).numpy()
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  heads.set_noise(loaded, False)
  assert _plain(loaded.get_config()) == _plain(model.get_config())
  # Same variables in the same order (names differ only by the scope they were built in).
  assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
  for a, b in zip(loaded.get_weights(), model.get_weights()):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_allclose(loaded(x).numpy(), want, rtol=1e-6, atol=1e-6)
  return loaded


@pytest.mark.parametrize("case", BOTTLENECK_CASES, ids=_ids)
def test_bottleneck_config_and_keras_file(case, tmp_path):
  name, options = case
  layer = bottlenecks.make_bottleneck(name, **options)
  _roundtrip_config(layer)
  x = _observations()
  model = networks.build_keras_model(SHAPE, 3, bottleneck=name, bottleneck_kwargs=options,
                                     noisy=bool(options.get("noisy")), **TINY)
  if networks.bottleneck_class(name).bottleneck_name == "pruned" and options.get("wrap", True):
    pruning.initialize_pruning(model)
    model(x, training=True)
    model(x, training=True)  # Masks at the target: the reload must keep them.
  loaded = _save_and_load(model, tmp_path, x)
  assert type(loaded.get_layer("bottleneck")) is type(model.get_layer("bottleneck"))
  if name == "sparse" and options.get("method", "static") != "gmp":
    # A Keras model of a sparse bottleneck holds zeros, not masks; the copy keeps them.
    kernel = loaded.get_layer("psi").dense_layers[0].kernel.numpy()
    assert (kernel == 0).mean() > 0.5


@pytest.mark.parametrize("encoder", ["nature", "impala", "minatar"])
@pytest.mark.parametrize("width_scale", [0.25, 0.5])
def test_encoder_config_and_keras_file(encoder, width_scale, tmp_path):
  shape = (10, 10, 4) if encoder == "minatar" else SHAPE
  layer = encoders.make_encoder(encoder, width_scale=width_scale)
  clone = _roundtrip_config(layer)
  x = _observations(shape)
  np.testing.assert_equal(clone(x).shape, layer(x).shape)
  model = networks.build_keras_model(shape, 3, encoder=encoder, width_scale=width_scale,
                                     bottleneck="gap", head_units=(8,))
  _save_and_load(model, tmp_path, x)


HEADS = {
    "plain": {},
    "dueling_shared": dict(dueling=True),
    "dueling_separate": dict(dueling=True, dueling_layout="separate"),
    "noisy": dict(noisy=True, noisy_sigma0=0.5),
    "categorical": dict(num_atoms=5),
    "categorical_dueling_noisy": dict(num_atoms=5, dueling=True, noisy=True),
}


@pytest.mark.parametrize("head", sorted(HEADS))
def test_head_config_and_keras_file(head, tmp_path):
  options = HEADS[head]
  layer = heads.DenseHead((8, 6), num_actions=3, **options)
  clone = _roundtrip_config(layer)
  feats = tf.random.normal([2, 12])
  heads.set_noise(layer, False)
  assert clone(feats).shape == layer(feats).shape
  x = _observations()
  model = networks.build_keras_model(SHAPE, 3, bottleneck="gap", **TINY, **options)
  _save_and_load(model, tmp_path, x)


def test_noisy_dense_round_trips():
  layer = heads.NoisyDense(4, activation="relu", sigma0=0.3, name="n")
  clone = _roundtrip_config(layer)
  assert (clone.units, clone.sigma0) == (4, 0.3)


def test_an_outside_bottleneck_saves_once_registered(tmp_path):
  from tests.plugins import maxpool_bottleneck  # pylint: disable=g-import-not-at-top
  name = maxpool_bottleneck.GlobalMaxPooling.bottleneck_name
  model = networks.build_keras_model(SHAPE, 3, bottleneck=name, **TINY)
  _save_and_load(model, tmp_path, _observations())
