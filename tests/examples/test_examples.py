"""Every script in examples/ runs at its smoke budget and leaves the artefacts it promises.

Each runs as a user runs it, `python examples/X.py --smoke --out DIR`, in its own process. The
examples double as a check that tfgap's public API is enough: no name they use from tfgap starts
with an underscore.
"""

import ast
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NAMES = ("tf_agents_driver", "evaluate_saved_policy", "keras_transfer", "custom_bottleneck",
         "scaling_figure")
TIMEOUT = 600  # Seconds; each takes under a minute on a 2-core machine.
# Each example is a fresh process that imports TensorFlow and traces its functions: 20-40 s each,
# about 3.5 minutes for the six runs on a shared 2-core machine, so they are `slow` (`make test`
# runs them, `make test-fast` does not). The checks of the sources stay in the fast suite.
slow = pytest.mark.slow


def run_example(name, out, *flags):
  result = subprocess.run(
      [sys.executable, str(EXAMPLES / f"{name}.py"), "--smoke", "--out", str(out), *flags],
      cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, check=False)
  assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
  return result.stdout


@slow
@pytest.mark.parametrize("agent", ["stock", "tfgap"])
def test_tf_agents_driver(tmp_path, agent):
  stdout = run_example("tf_agents_driver", tmp_path, "--agent", agent)
  assert (tmp_path / "policy" / "saved_model.pb").is_file()
  assert re.search(r"average return [\d.]+ over 1 episodes", stdout), stdout
  # Under the stock driver, epsilon falls on the agent's own schedule (TF-Agents': over updates;
  # tfgap's: over agent steps) down to 0.1.
  epsilons = [float(e) for e in re.findall(r"epsilon ([\d.]+)", stdout)]
  assert len(epsilons) >= 3, stdout
  assert all(b <= a + 1e-6 for a, b in zip(epsilons, epsilons[1:])), epsilons
  assert epsilons[0] < 1.0 and epsilons[-1] == pytest.approx(0.1), epsilons


@slow
def test_evaluate_saved_policy(tmp_path):
  stdout = run_example("evaluate_saved_policy", tmp_path)
  assert re.search(r"^scores: 2 episodes of minatar/breakout: mean ", stdout, re.MULTILINE), stdout
  scores = json.loads((tmp_path / "scores.json").read_text())
  assert scores["episodes"] == 2 and scores["min"] <= scores["mean"] <= scores["max"]
  assert pathlib.Path(scores["policy"]).parent == tmp_path / "run" / "policies"


@slow
def test_keras_transfer(tmp_path):
  stdout = run_example("keras_transfer", tmp_path)
  assert re.search(r"test accuracy: [\d.]+", stdout), stdout
  assert "phi frozen: True" in stdout, stdout
  # The saved model loads here too and classifies frame stacks of the right shape.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tfgap.networks  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  model = tf.keras.models.load_model(tmp_path / "which_game.keras")
  logits = model.predict(np.zeros((2, 84, 84, 4), np.uint8), verbose=0)
  assert logits.shape == (2, 3) and not model.get_layer("phi").trainable


@slow
def test_custom_bottleneck(tmp_path):
  stdout = run_example("custom_bottleneck", tmp_path)
  lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
  assert json.loads(lines[-1])["bottleneck"] == "attnpool"
  assert "attnpool" in stdout.split("registered bottlenecks:")[1].splitlines()[0]
  # Accounting reached the new class: its score weights (2 heads x (16 + 1)) and its FLOPs.
  table = stdout.split("bottleneck=attnpool")[1]
  assert re.search(r"^\| bottleneck \| 34 \| 34 \| [1-9][\d,]* \|$", table, re.MULTILINE), table


@slow
def test_scaling_figure(tmp_path):
  stdout = run_example("scaling_figure", tmp_path)
  runs = sorted(p.parent.name for p in (tmp_path / "runs").glob("*/metrics.jsonl"))
  assert runs == ["flatten_x1_seed0", "flatten_x2_seed0", "gap_x1_seed0", "gap_x2_seed0"]
  figure = tmp_path / "report" / "aggregate_vs_width.png"
  assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert f"figure: {figure}" in stdout
  assert "gap" in (tmp_path / "report" / "aggregates.csv").read_text()


def _private_names(path):
  """Underscored names a script imports from tfgap or reads as attributes (dunders excepted)."""
  found = []
  for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
    if isinstance(node, ast.Import):
      found += [part for alias in node.names if alias.name.startswith("tfgap")
                for part in alias.name.split(".") if part.startswith("_")]
    elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfgap"):
      found += [part for part in node.module.split(".") if part.startswith("_")]
      found += [alias.name for alias in node.names if alias.name.startswith("_")]
    elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and
          not re.fullmatch(r"__\w+__", node.attr)):
      found.append(ast.unparse(node))
  return found


@pytest.mark.parametrize("name", NAMES)
def test_examples_use_only_public_names(name):
  assert _private_names(EXAMPLES / f"{name}.py") == []


def test_every_example_is_linked_from_the_readme():
  readme = (REPO / "README.md").read_text()
  for name in NAMES:
    assert f"(examples/{name}.py)" in readme, name
  assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(NAMES)
