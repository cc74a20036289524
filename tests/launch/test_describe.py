"""`python -m tfgap.launch.describe`: the accounting table from the command line."""

import os
import re
import subprocess
import sys

import pytest

from tfgap.launch import describe


def _row(text, part):
  match = re.search(rf"^\| {re.escape(part)} \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$", text,
                    re.MULTILINE)
  assert match, text
  return tuple(int(g.replace(",", "")) for g in match.groups())


def test_impala_x4_gap_matches_reference(capsys):
  code = describe.main(["describe", "--encoder", "impala", "--width_scale", "4",
                        "--bottleneck", "gap"])
  out = capsys.readouterr().out
  assert code == 0
  assert _row(out, "phi")[:2] == (1_552_192, 1_552_192)  # REFERENCE.md's table.
  assert _row(out, "bottleneck") == (0, 0, 0)
  assert _row(out, "psi")[0] == 128 * 512 + 512 + 512 * 18 + 18
  assert "psi input weights (the bottleneck connection): 65,536" in out


def test_flags_reach_the_builder(capsys):
  code = describe.main([
      "describe", "--encoder", "nature", "--padding", "VALID", "--observation_shape", "84,84,3",
      "--num_actions", "6", "--head_units", "256,128", "--bottleneck", "softmoe",
      "--bottleneck_kwargs", '{"num_experts": 2, "expert_hidden": 32}', "--per_layer"])
  out = capsys.readouterr().out
  assert code == 0
  # VALID: 7x7x64 tokens; psi = 3136 -> 256 -> 128 -> 6.
  psi = (3136 * 256 + 256) + (256 * 128 + 128) + (128 * 6 + 6)
  assert _row(out, "psi")[0] == psi
  assert _row(out, "phi/conv0")[0] == 8 * 8 * 3 * 32 + 32
  router = 64 * 2 * 25
  experts = 2 * (64 * 32 + 32 + 32 * 64 + 64)
  assert _row(out, "bottleneck")[0] == router + experts


def test_function_api_and_other_networks():
  text = describe.describe(network="critic", observation_shape=(36, 36, 3), num_actions=2,
                           bottleneck="gap", head_units=(8,))
  assert _row(text, "psi")[0] == (64 + 2) * 8 + 8 + 8 + 1
  text = describe.describe(network="categorical", observation_shape=(36, 36, 4), num_actions=3,
                           num_atoms=5, bottleneck="gap", head_units=(8,), dueling=True)
  # Dueling as Dopamine's FullRainbowNetwork: one shared hidden layer, split in the outputs.
  assert _row(text, "psi")[0] == (64 * 8 + 8) + (8 * 5 + 5) + (8 * 15 + 15)


@pytest.mark.parametrize("argv,message", [
    (["--encoder", "impal"], "Did you mean 'impala'"),
    (["--bottleneck", "softmoe", "--bottleneck_kwargs", '{"num_experts": 0}'], "num_experts"),
    (["--width_scale", "-1"], "width_scale=-1.0 is not accepted; accepted: a positive number"),
    (["--observation_shape", "84,84"], "rank 3"),
    (["--head_units", "512,x"], "--head_units must be comma-separated integers"),
    (["--network", "policy"], "error"),
    (["--bottleneck_kwargs", "[1, 2]"], "must be a JSON object"),
])
def test_bad_flags_exit_with_a_message(argv, message, capsys):
  assert describe.main(["describe", *argv]) == 2
  assert message in capsys.readouterr().err


def test_module_entry_point_runs():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run(
      [sys.executable, "-m", "tfgap.launch.describe", "--encoder", "nature", "--bottleneck",
       "flatten", "--observation_shape", "36,36,4"],
      capture_output=True, text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert _row(result.stdout, "phi")[0] == 77_984
  assert _row(result.stdout, "psi")[0] == 5 * 5 * 64 * 512 + 512 + 512 * 18 + 18


def test_describe_a_training_config_builds_the_runs_network(capsys):
  # Through tfgap.launch.experiment, as the Runner builds it: Atari's 84x84x4 frames and Pong's
  # six actions come from the config's environment, the widths from the gin files.
  assert describe.main(["describe", "--gin_file", "dqn.gin", "--gin_file", "impala.gin",
                        "--gin_bindings", "WIDTH_SCALE = 2.0"]) == 0
  out = capsys.readouterr().out
  assert "atari/Pong, agent dqn" in out and "encoder=impala width_scale=2.0" in out
  # Impala x2 feature map 11x11x64 flattened into 512 units.
  assert "psi input weights (the bottleneck connection): 3,964,928" in out


def test_pruned_networks_show_live_parameters_at_the_final_sparsity():
  text = describe.describe(bottleneck="pruned", bottleneck_kwargs={"target_sparsity": 0.9},
                           observation_shape=(36, 36, 4), num_actions=18)
  kernel = 5 * 5 * 64 * 512  # psi's first layer, the only one pruned (psi_layers=1).
  rest = 512 + 512 * 18 + 18
  expected = kernel - round(kernel * 0.9) + rest
  assert f"psi {expected:,}; total {expected + 77_984:,}" in text
  # Dense networks have no such line.
  assert "final sparsity" not in describe.describe(bottleneck="gap",
                                                   observation_shape=(36, 36, 4))
