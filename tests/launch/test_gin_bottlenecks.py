"""One gin binding sets one bottleneck option: `softmoe.num_experts = 8`."""

import pytest

from tests.agents import pixel_task  # noqa: F401  (registers @tests.make_band_env with gin)
from tests.launch.test_train import BASE
from tfgap.launch import common
from tfgap.launch import experiment
from tfgap.launch import train


def _network(bindings):
  train.parse_config([], BASE + bindings)
  config = experiment.configured()
  env = experiment.make_env(config, "train")
  try:
    return experiment.make_network(config, env)
  finally:
    env.close()


def test_a_single_binding_sets_a_softmoe_option_and_is_in_the_operative_config():
  net = _network(["build_q_network.bottleneck = 'softmoe'", "softmoe.num_experts = 8",
                  "softmoe.expert_hidden = 16"])
  layer = net.parts()["bottleneck"][0]
  assert (layer.num_experts, layer.expert_hidden) == (8, 16)
  assert layer.slots_per_expert is None  # Unbound options keep the class default.
  operative = common.operative_config()
  assert "softmoe.num_experts = 8" in operative
  assert "softmoe.expert_hidden = 16" in operative
  # A copy (the target network) is built with the same options.
  assert net.copy(name="target")._saved_kwargs["bottleneck_kwargs"]["num_experts"] == 8  # pylint: disable=protected-access


def test_bottleneck_kwargs_win_over_the_per_option_binding():
  net = _network(["build_q_network.bottleneck = 'softmoe'", "softmoe.num_experts = 8",
                  "softmoe.tokenization = 'per_featuremap'",
                  "build_q_network.bottleneck_kwargs = {'num_experts': 2}"])
  layer = net.parts()["bottleneck"][0]
  assert layer.num_experts == 2
  assert layer.tokenizer.tokenization == "per_featuremap"


def test_options_of_a_bottleneck_not_in_use_are_ignored():
  net = _network(["softmoe.num_experts = 8"])  # BASE uses gap.
  assert net.bottleneck_name == "gap"


def test_a_misspelled_option_fails_when_parsed():
  with pytest.raises(ValueError, match="num_expert"):
    train.parse_config([], BASE + ["softmoe.num_expert = 8"])


def test_pruned_options_bind_one_by_one():
  net = _network(["build_q_network.bottleneck = 'pruned'", "pruned.target_sparsity = 0.5"])
  assert net.parts()["bottleneck"][0].prune_config["target_sparsity"] == 0.5
