"""What a run logs beside metrics.jsonl: metrics.csv, W&B (optional), TensorBoard scalars/text."""

import csv
import json
import sys
import types

import gin
import pytest

from tests.agents import pixel_task  # noqa: F401  (registers @tests.make_band_env with gin)
from tests.launch.test_train import make_runner
from tests.launch.helpers import read_metrics
from tfgap.launch import records


def _csv(path):
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
  return rows[0], rows[1:]


class FakeWandb(types.ModuleType):
  """Stands in for the wandb package: records init and log calls, no network."""

  def __init__(self):
    super().__init__("wandb")
    self.inits, self.logged, self.finished = [], [], 0

  def init(self, **kwargs):
    self.inits.append(kwargs)
    fake = self

    class Run:
      def log(self, values, step=None):
        fake.logged.append((step, dict(values)))

      def finish(self):
        fake.finished += 1

    return Run()


@pytest.fixture
def fake_wandb(monkeypatch):
  module = FakeWandb()
  monkeypatch.setitem(sys.modules, "wandb", module)
  return module


def _record(iteration, **extra):
  return {"iteration": iteration, "env_steps": 100 * (iteration + 1), "loss": 0.5,
          "eval_returns": [1.0, 2.0], "score": None, **extra}


def test_csv_keeps_a_stable_superset_header_and_follows_rewinds(tmp_path):
  log = records.MetricsLog(tmp_path / "metrics.jsonl")
  log.append(_record(0))
  log.append(_record(1, **{"dormant/phi/0.1": 0.25}))  # A key the header lacks: a new column.
  log.append(_record(2))
  header, rows = _csv(tmp_path / "metrics.csv")
  assert header == ["iteration", "env_steps", "loss", "eval_returns", "score", "dormant/phi/0.1"]
  assert [r[0] for r in rows] == ["0", "1", "2"]
  assert rows[0][5] == "" and rows[1][5] == "0.25" and rows[2][5] == ""
  assert json.loads(rows[0][3]) == [1.0, 2.0]  # Lists as JSON text.
  # Resume at iteration 1: the redone iteration's row goes with its metrics.jsonl line.
  records.MetricsLog(tmp_path / "metrics.jsonl").rewind(1)
  header2, rows = _csv(tmp_path / "metrics.csv")
  assert header2 == header and [r[0] for r in rows] == ["0"]
  log = records.MetricsLog(tmp_path / "metrics.jsonl")
  log.append(_record(1, variant="x"))
  header3, rows = _csv(tmp_path / "metrics.csv")
  assert header3 == header + ["variant"] and [r[0] for r in rows] == ["0", "1"]


def test_flatten_joins_nested_keys():
  assert records.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": (1, 2)}) == {
      "a/b": 1, "a/c/d": 2, "e": "[1, 2]"}


def test_wandb_logger_sends_the_same_keys_at_env_steps(tmp_path, fake_wandb):
  (logger,) = records.make_loggers(("wandb",), tmp_path, project="p", config={"game": "Pong"})
  logger.log(_record(0, **{"dormant/phi/0.1": 0.25, "game": "Pong"}))
  logger.close()
  (init,) = fake_wandb.inits
  assert init["project"] == "p" and init["resume"] == "allow" and init["config"] == {
      "game": "Pong"}
  assert fake_wandb.logged == [(100, {"iteration": 0, "env_steps": 100, "loss": 0.5,
                                      "dormant/phi/0.1": 0.25})]
  assert fake_wandb.finished == 1
  # The same directory is the same W&B run (resume).
  records.make_loggers((), tmp_path, project="p")
  assert fake_wandb.inits[1]["id"] == init["id"]


def test_wandb_is_off_unless_asked_and_missing_wandb_says_what_to_install(tmp_path,
                                                                            monkeypatch):
  assert records.make_loggers((), tmp_path) == []
  monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError.
  with pytest.raises(ImportError, match=r"pip install tfgap\[wandb\]"):
    records.make_loggers(("wandb",), tmp_path)
  with pytest.raises(ValueError, match=r"Runner.loggers entry='tensorboard' is not accepted"):
    records.make_loggers(("tensorboard",), tmp_path)


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
  """A 2-iteration run with the W&B logger on (fake wandb)."""
  module = FakeWandb()
  saved = sys.modules.get("wandb")
  sys.modules["wandb"] = module
  try:
    root = tmp_path_factory.mktemp("logging") / "run"
    make_runner(root, ["Runner.loggers = ('wandb',)", "Runner.wandb_project = 'tfgap-test'"]).run()
  finally:
    gin.clear_config()
    if saved is None:
      sys.modules.pop("wandb", None)
    else:
      sys.modules["wandb"] = saved
  return root, module


def test_a_run_writes_metrics_csv_and_wandb_with_metrics_jsonl_keys(wandb_run):
  root, fake = wandb_run
  lines = read_metrics(root)
  header, rows = _csv(root / "metrics.csv")
  assert len(rows) == len(lines) == 2
  assert header == list(records.flatten(lines[0]))
  for line, row in zip(lines, rows):
    flat = records.flatten(line)
    assert row == ["" if flat.get(k) is None else str(flat[k]) for k in header]
  assert fake.inits[0]["project"] == "tfgap-test"
  assert [step for step, _ in fake.logged] == [r["env_steps"] for r in lines]
  assert set(fake.logged[0][1]) <= set(header)
  assert fake.finished == 1


def test_tensorboard_scalars_read_with_the_classic_event_accumulator(wandb_run):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  root, _ = wandb_run
  acc = event_accumulator.EventAccumulator(str(root / "train"),
                                           size_guidance={event_accumulator.SCALARS: 0,
                                                          event_accumulator.TENSORS: 0})
  acc.Reload()
  assert [e.step for e in acc.Scalars("iteration/loss")] == [150, 300]
  # The user's one-liner works too.
  loss = event_accumulator.EventAccumulator(str(root / "train")).Reload().Scalars(
      "iteration/loss")
  assert len(loss) == 2
  for tag in acc.Tags()[event_accumulator.SCALARS]:  # Each tag once per step.
    steps = [e.step for e in acc.Scalars(tag)]
    assert steps == sorted(set(steps)), (tag, steps)
  (text,) = acc.Tensors("config/operative")
  assert text.step == 0
  assert b"Runner.agent = 'dqn'" in text.tensor_proto.string_val[0]
  evals = event_accumulator.EventAccumulator(str(root / "eval")).Reload()
  assert [e.step for e in evals.Scalars("eval_return")] == [150, 300]
