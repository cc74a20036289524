"""The bottleneck registry: a bottleneck defined outside tfgap works everywhere by its name.

The plugin (tests/plugins/maxpool_bottleneck.py) registers global max pooling as "maxpool"; no
file of tfgap knows it.
"""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec

from tests.plugins import maxpool_bottleneck
from tfgap import analysis
from tfgap import networks
from tfgap.analysis import adapters
from tfgap.analysis import dormant
from tfgap.compat import keras
from tfgap.launch import describe
from tfgap.networks import accounting
from tfgap.networks import bottlenecks

REPO = pathlib.Path(__file__).resolve().parents[2]
OBS = tensor_spec.BoundedTensorSpec((36, 36, 4), tf.uint8, 0, 255)  # Nature SAME: 5x5x64.
ACTIONS = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 5)
H, W, C = 5, 5, 64


def _obs(n=4, seed=0):
  return np.random.RandomState(seed).randint(0, 256, (n, 36, 36, 4)).astype(np.uint8)


def _row(text, part):
  match = re.search(rf"^\| {re.escape(part)} \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$", text,
                    re.MULTILINE)
  assert match, text
  return tuple(int(g.replace(",", "")) for g in match.groups())


def test_the_plugin_is_registered_next_to_the_built_ins():
  names = networks.list_bottlenecks()
  assert names[:5] == ("flatten", "gap", "softmoe", "tokenize", "pruned")
  assert "maxpool" in names and "maxpool" in networks.BOTTLENECKS  # A live view.
  assert networks.BOTTLENECKS == names
  assert networks.bottleneck_class("MaxPool") is maxpool_bottleneck.GlobalMaxPooling
  layer = networks.make_bottleneck("maxpool")
  x = tf.random.normal((2, H, W, C))
  np.testing.assert_array_equal(layer(x), tf.reduce_max(x, [1, 2]))
  assert layer.name == "bottleneck" and bottlenecks.name_of(layer) == "maxpool"
  assert layer.layer_costs((H, W, C)) == ([(layer, 0)], (C,))
  assert type(layer).from_config(layer.get_config()).name == "bottleneck"
  with pytest.raises(ValueError, match=r"option='size' is not accepted; accepted: none"):
    networks.make_bottleneck("maxpool", size=2)
  with pytest.raises(ValueError, match="Did you mean 'maxpool'"):
    networks.make_bottleneck("maxpoll")


@pytest.mark.parametrize("build", ["q", "categorical"])
def test_builders_take_the_name(build):
  if build == "q":
    net = networks.build_q_network(OBS, ACTIONS, bottleneck="maxpool")
    shape = (3, 6)
  else:
    net = networks.build_categorical_q_network(OBS, ACTIONS, num_atoms=11, dueling=True,
                                               bottleneck="maxpool")
    shape = (3, 6, 11)
  obs = _obs(3)
  out, _ = net(obs)
  assert tuple(out.shape) == shape and net.bottleneck_name == "maxpool"
  # decode == head(max pool of the feature map); psi's default (512,) comes from the base class.
  head = net._head  # pylint: disable=protected-access
  np.testing.assert_allclose(head(tf.reduce_max(net.encode(obs), [1, 2])), out, rtol=1e-5)
  assert head.hidden_units == (512,)
  copy = net.copy()
  assert copy.bottleneck_name == "maxpool"


def test_keras_model_and_its_adapter():
  model = networks.build_keras_model((36, 36, 4), 6, bottleneck="maxpool")
  assert tuple(model(_obs(2)).shape) == (2, 6)
  assert isinstance(model.get_layer("bottleneck"), maxpool_bottleneck.GlobalMaxPooling)
  assert adapters.as_network(model).bottleneck_name == "maxpool"
  result = accounting.account(model)
  assert result["parts"]["bottleneck"] == {"params": 0, "live": 0, "flops": 0}
  assert result["parts"]["psi"]["params"] == C * 512 + 512 + 512 * 6 + 6
  info = analysis.effective_parameters(model)
  assert (info.bottleneck, info.live, info.psi_width) == ("maxpool", C * 512, 512)


def test_describe_python_api_and_command_line():
  text = describe.describe(bottleneck="maxpool", observation_shape=(36, 36, 4), num_actions=6)
  assert "bottleneck=maxpool" in text
  assert _row(text, "bottleneck") == (0, 0, 0)
  assert _row(text, "psi")[0] == C * 512 + 512 + 512 * 6 + 6
  assert "psi input weights (the bottleneck connection): 32,768" in text
  # A fresh process knows the name only through --import_module.
  result = subprocess.run(
      [sys.executable, "-m", "tfgap.launch.describe", "--import_module",
       "tests.plugins.maxpool_bottleneck", "--bottleneck", "maxpool", "--observation_shape",
       "36,36,4", "--num_actions", "6"], cwd=REPO, capture_output=True, text=True, timeout=300,
      check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip().endswith(text.strip().splitlines()[-1])
  assert _row(result.stdout, "psi") == _row(text, "psi")


def test_describe_reports_a_module_it_cannot_import(capsys):
  code = describe.main(["describe", "--import_module", "no_such_module_xyz", "--bottleneck",
                        "maxpool"])
  assert code == 2
  assert "--import_module 'no_such_module_xyz' cannot be imported" in capsys.readouterr().err


def test_dormant_neurons_and_effective_parameters():
  net = networks.build_q_network(OBS, ACTIONS, bottleneck="maxpool", dueling=True,
                                 dueling_layout="separate")
  net.create_variables()
  obs = _obs(8)
  report = analysis.dormant_fractions(net, obs, taus=(0.0, 0.1))
  groups = [(layer.group, layer.num_neurons) for layer in report.layers]
  # Max pooling has no neurons: three convs, then the two streams' hidden layers.
  assert groups == [("phi", 32), ("phi", 64), ("phi", 64), ("psi", 512), ("psi", 512)]
  # psi's hidden layers see the max-pooled features.
  pooled = tf.reduce_max(net.encode(obs), [1, 2])
  streams = net._head.streams  # pylint: disable=protected-access
  for layer, stream in zip(report.layers[3:], streams):
    scores = dormant.neuron_scores(stream[0](pooled))
    assert layer.dormant == {t: int(np.count_nonzero(scores <= t)) for t in (0.0, 0.1)}

  info = analysis.effective_parameters(net)
  assert info.bottleneck == "maxpool" and info.feature_shape == (H, W, C)
  assert (info.psi_width, info.streams) == (512, 2)
  assert info.live == info.total == info.psi_input_weights == 2 * C * 512
  assert info.dense_equivalent == 2 * H * W * C * 512
  assert info.density == pytest.approx(1.0 / (H * W))
  # Dopamine's shared dueling layout: one 512 layer reads the pooled features.
  shared = networks.build_q_network(OBS, ACTIONS, bottleneck="maxpool", dueling=True)
  shared.create_variables()
  assert [(l.group, l.num_neurons) for l in analysis.dormant_fractions(shared, obs).layers][3:] == [
      ("psi", 512)]
  info = analysis.effective_parameters(shared)
  assert (info.streams, info.live, info.dense_equivalent) == (1, C * 512, H * W * C * 512)


def test_options_come_from_init():

  class Scaled(networks.Bottleneck):

    def __init__(self, scale=1.0, *, shift=0.0, name="scaled", **kwargs):
      super().__init__(name=name, **kwargs)
      self.scale, self.shift = scale, shift

    def call(self, inputs):
      return self.scale * tf.reduce_mean(inputs, [1, 2]) + self.shift

  assert Scaled.accepted_options() == ("scale", "shift")
  assert maxpool_bottleneck.GlobalMaxPooling.accepted_options() == ()
  assert networks.bottleneck_class("pruned").accepted_options()[0] == "target_sparsity"
  assert networks.bottleneck_class("softmoe").default_q_head_units == ()


def test_bad_registrations_are_rejected():

  class Other(networks.Bottleneck):

    def call(self, inputs):
      return tf.reduce_min(inputs, [1, 2])

  before = networks.list_bottlenecks()
  for name in ("gap", "GAP", "maxpool"):
    with pytest.raises(ValueError, match=rf"bottleneck name={name!r} is not accepted; accepted: "
                                         "a name not registered yet"):
      networks.register_bottleneck(Other, name=name)
  with pytest.raises(ValueError, match="a non-empty string without spaces"):
    networks.register_bottleneck(Other, name="min pool")
  for cls in (object, keras.layers.GlobalMaxPooling2D, networks.Bottleneck, "gap"):
    with pytest.raises(ValueError, match="accepted: a subclass of tfgap.networks.Bottleneck"):
      networks.register_bottleneck(cls, name="minpool")
  with pytest.raises(ValueError, match="registered as 'maxpool'"):
    networks.register_bottleneck(maxpool_bottleneck.GlobalMaxPooling, name="maxpool2")
  # Registering the same class under its own name again is a no-op (e.g. a module reload).
  networks.register_bottleneck(maxpool_bottleneck.GlobalMaxPooling)
  assert networks.list_bottlenecks() == before


def test_a_short_training_run_through_gin(tmp_path):
  # Real Atari (the demo config's DER on Pong), 120 agent steps: a few seconds.
  from tfgap.launch import train as train_lib  # pylint: disable=g-import-not-at-top
  root = tmp_path / "run"
  records = train_lib.train(str(root), [str(REPO / "tfgap/launch/configs/demo.gin")], [
      "import tests.plugins.maxpool_bottleneck",  # The gin form (already imported here).
      "build_categorical_q_network.bottleneck = 'maxpool'",
      "Runner.num_iterations = 1", "Runner.training_steps = 120",
      "DERAgent.min_replay_history = 100", "Runner.evaluation_episodes = 1",
      "Runner.eval_env_kwargs = {'max_episode_steps': 100}", "Runner.progress_bar = False",
      "Runner.export_policies = False"])
  metrics = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]
  assert [m["bottleneck"] for m in metrics] == ["maxpool"]
  assert records[0]["bottleneck"] == "maxpool"
  assert records[0]["train_steps"] > 0 and np.isfinite(records[0]["loss"])
