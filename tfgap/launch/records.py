"""What a run writes about itself: metrics.jsonl, TensorBoard summaries and console lines.

`metrics.jsonl` holds one JSON object per iteration (fields in docs/DESIGN.md), appended and
fsynced as each iteration ends. On resume, lines of iterations that will be redone are dropped and
lines of iterations that a checkpoint vouches for are rebuilt from it when damaged.
"""

import csv
import json
import os
import pathlib
import socket
import sys
import time
import zlib

import numpy as np
import tensorflow as tf


def mean_or_none(values):
  return float(np.mean(values)) if len(values) else None


def flatten(record, prefix=""):
  """A metrics record as flat columns: nested dicts joined with "/", lists as JSON text."""
  out = {}
  for key, value in record.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(flatten(value, prefix=name + "/"))
    elif isinstance(value, (list, tuple)):
      out[name] = json.dumps(list(value))
    else:
      out[name] = value
  return out


class CsvLog:
  """`metrics.csv` beside metrics.jsonl: the same records, flattened, one row per iteration.

  The header is the union of the records' keys in first-seen order: a record with a key the
  header lacks rewrites the file with that key as a new last column (earlier rows empty there),
  so the columns of a run only ever grow at the end. The file is always rebuilt from whole
  records, never edited in place.
  """

  def __init__(self, path):
    self.path = pathlib.Path(path)
    self.columns = self._read_header()

  def _read_header(self):
    try:
      with open(self.path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
      return []

  def append(self, record, all_records):
    """Adds `record` (the last of `all_records`, the file's records after it)."""
    row = flatten(record)
    if not self.path.exists() or any(k not in self.columns for k in row):
      self.rewrite(all_records() if callable(all_records) else all_records)
      return
    with open(self.path, "a", newline="", encoding="utf-8") as f:
      csv.DictWriter(f, self.columns, restval="").writerow(row)
      f.flush()
      os.fsync(f.fileno())

  def rewrite(self, records):
    """Writes every record (through a temporary file and a rename)."""
    rows = [flatten(r) for r in records]
    columns = list(self.columns)
    for row in rows:
      columns.extend(k for k in row if k not in columns)
    tmp = self.path.with_name(self.path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
      writer = csv.DictWriter(f, columns, restval="")
      writer.writeheader()
      writer.writerows(rows)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, self.path)
    self.columns = columns


class MetricsLog:
  """The run's metrics.jsonl, its metrics.csv and the optional loggers fed the same records."""

  def __init__(self, path, loggers=()):
    self.path = pathlib.Path(path)
    self.csv = CsvLog(self.path.with_suffix(".csv"))
    self.loggers = list(loggers)

  def append(self, record):
    with open(self.path, "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")
      f.flush()
      os.fsync(f.fileno())
    # The CSV follows the file; a logger failing (network) must not lose the run's own record.
    self.csv.append(record, lambda: self.read()[0])
    for logger in self.loggers:
      logger.log(record)

  def close(self):
    for logger in self.loggers:
      logger.close()

  def read(self):
    """(records, damaged line numbers) of the file as it is."""
    if not self.path.exists():
      return [], []
    records, damaged = [], []
    with open(self.path, "rb") as f:
      for number, raw in enumerate(f, start=1):
        try:
          record = json.loads(raw.decode("utf-8"))
          int(record["iteration"])
          records.append(record)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
          damaged.append(number)
    return records, damaged

  def _keep_damaged(self, numbers):
    """Appends the raw damaged lines to `metrics.jsonl.damaged` (kept, not dropped)."""
    aside = self.path.with_name(self.path.name + ".damaged")
    wanted = set(numbers)
    with open(self.path, "rb") as f:
      lines = [raw for number, raw in enumerate(f, start=1) if number in wanted]
    with open(aside, "ab") as f:
      for raw in lines:
        f.write(raw if raw.endswith(b"\n") else raw + b"\n")
      f.flush()
      os.fsync(f.fileno())
    return aside

  def rewind(self, start, saved_records=()):
    """Keeps one record per iteration < start; rebuilds missing ones from `saved_records`.

    Args:
      start: the iteration the run continues with (lines of later ones are dropped).
      saved_records: records kept in checkpoints ({iteration: record} or a list), used for
        iterations whose line is missing or damaged.

    Returns:
      The iterations < start that have no record at all (neither line nor checkpoint).
    """
    records, damaged = self.read()
    by_iteration = {}
    for record in records:
      if int(record["iteration"]) < start:
        by_iteration[int(record["iteration"])] = record  # The last line of a redone iteration.
    rebuilt = []
    for record in (saved_records.values() if isinstance(saved_records, dict) else saved_records):
      it = int(record["iteration"])
      if it < start and it not in by_iteration:
        by_iteration[it] = record
        rebuilt.append(it)
    if damaged:
      aside = self._keep_damaged(damaged)
      print(f"WARNING: {self.path}: damaged lines {damaged} moved to {aside}"
            + (f"; iterations {rebuilt} rebuilt from their checkpoints" if rebuilt else ""),
            file=sys.stderr, flush=True)
    missing = [i for i in range(start) if i not in by_iteration]
    if missing and (records or rebuilt):
      print(f"WARNING: {self.path}: no record of iterations {missing} (neither a line nor a "
            "checkpoint holds one)", file=sys.stderr, flush=True)
    tmp = self.path.with_name(self.path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
      for it in sorted(by_iteration):
        f.write(json.dumps(by_iteration[it]) + "\n")
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, self.path)
    self.csv.rewrite([by_iteration[it] for it in sorted(by_iteration)])
    return missing


class Summaries:
  """TensorBoard writers of `root/train` and `root/eval`."""

  TRAIN_KEYS = ("train_return", "loss", "steps_per_sec", "epsilon", "sparsity",
                "sparsity_target")

  def __init__(self, root, resume_step=None):
    """Opens the writers; `resume_step` marks a resume so TensorBoard drops the redone steps.

    After a crash the iteration being trained is redone from its checkpoint, so its steps would
    appear twice. A SessionLog START event is TensorBoard's own signal for that: each one after
    the first in a folder purges every point already read at its step or later (the first START
    of a folder only opens it). So every session opens with a START: at step 0 for a new run, at
    the restored step + 1 on resume (the restored step's own points are not rewritten).
    """
    root = pathlib.Path(root)
    self.start_step = 0 if resume_step is None else resume_step + 1
    for folder in (root / "train", root / "eval"):
      _mark_session_start(folder, self.start_step)
    self.train = tf.summary.create_file_writer(str(root / "train"))
    self.eval = tf.summary.create_file_writer(str(root / "eval"))
    self._last_step = {}  # (writer, tag) -> last step written: one point per tag and step.

  def scalars(self, step, values, writer=None):
    """Writes scalars at `step`; a tag already written at `step` (or later) is not rewritten.

    They are written as classic `simple_value` scalars: TensorBoard shows them as TF2's
    `tf.summary.scalar` points, and `event_accumulator.EventAccumulator(path).Scalars(tag)` reads
    them too (TF2's tensor summaries are listed under `Tensors()` only).
    """
    writer = writer or self.train
    step = int(step)
    fresh = {}
    for name, value in values.items():
      if value is None or self._last_step.get((id(writer), name), -1) >= step:
        continue
      self._last_step[(id(writer), name)] = step
      fresh[name] = float(value)
    if fresh:
      with writer.as_default(step=step):
        tf.summary.experimental.write_raw_pb(_scalar_summary(fresh), step=step)

  def config(self, text):
    """The run's operative gin config as a text summary `config/operative`, once per session.

    Written at the session's START step (0, or the restored step + 1), so a session that is
    redone replaces it.
    """
    block = "\n".join("    " + line for line in text.splitlines())  # Markdown: verbatim.
    with self.train.as_default(step=self.start_step):
      tf.summary.text("config/operative", block)

  def iteration(self, record):
    """The per-iteration summaries of a metrics record."""
    step = record["env_steps"]
    values = {f"iteration/{k}": record.get(k) for k in self.TRAIN_KEYS}
    values.update({k: v for k, v in record.items() if k.startswith("dormant/")})
    self.scalars(step, values)
    if record.get("eval_return") is not None:
      self.scalars(step, {"eval_return": record["eval_return"]}, writer=self.eval)
      with self.eval.as_default(step=step):
        tf.summary.histogram("eval_returns", record["eval_returns"])
    self.flush()

  def flush(self):
    self.train.flush()
    self.eval.flush()

  def close(self):
    self.train.close()
    self.eval.close()


LOGGERS = ("wandb",)


class WandbLogger:
  """Sends every metrics record to Weights & Biases (`pip install tfgap[wandb]`).

  Off unless asked (`Runner.loggers = ('wandb',)` or `Runner.wandb_project = '...'`). The keys
  are metrics.jsonl's, flattened as in metrics.csv, logged at `step=env_steps`. The W&B run id
  is derived from the run directory, so a resumed run continues the same W&B run.
  """

  def __init__(self, root, project=None, config=None, name=None):
    try:
      import wandb  # pylint: disable=g-import-not-at-top
    except ImportError as err:
      raise ImportError(
          "Runner.loggers includes 'wandb' (or Runner.wandb_project is set) but the wandb "
          "package is not installed; install it with `pip install tfgap[wandb]` (or `pip "
          "install wandb`), or drop the W&B logger.") from err
    root = pathlib.Path(root).resolve()
    run_id = f"tfgap-{zlib.crc32(str(root).encode()):08x}"
    self._wandb = wandb
    plain = {k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
             for k, v in (config or {}).items()}
    self._run = wandb.init(project=project or "tfgap", name=name or root.name, id=run_id,
                           resume="allow", dir=str(root), config=plain)

  def log(self, record):
    values = {k: v for k, v in flatten(record).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    self._run.log(values, step=int(record["env_steps"]))

  def close(self):
    self._run.finish()


def make_loggers(names, root, project=None, config=None):
  """The loggers named in `names` (besides metrics.jsonl/csv, which every run writes)."""
  loggers = []
  names = tuple(names or ())
  for name in names:
    if name not in LOGGERS:
      from tfgap import checks  # pylint: disable=g-import-not-at-top
      checks.reject("Runner.loggers entry", name, ", ".join(map(repr, LOGGERS)))
  if "wandb" in names or project:
    loggers.append(WandbLogger(root, project=project, config=config))
  return loggers


def _scalar_summary(values):
  """A serialized Summary proto of `{tag: float}` as classic simple_value scalars."""
  from tensorboard.compat.proto import summary_pb2  # pylint: disable=g-import-not-at-top
  return summary_pb2.Summary(value=[
      summary_pb2.Summary.Value(tag=name, simple_value=value)
      for name, value in values.items()]).SerializeToString()


def _mark_session_start(folder, step):
  """Writes an event file holding one SessionLog START at `step`.

  TensorBoard reads a folder's event files in name order. The name is TF's own
  (`events.out.tfevents.<seconds>.<host>.<pid>.`) ending in "-start": "-" sorts before the digits
  of the writer id that follows in the name of the file TF opens next, even in the same second,
  and files of earlier sessions carry earlier times.
  """
  # tensorboard ships with TensorFlow.
  from tensorboard.compat.proto import event_pb2  # pylint: disable=g-import-not-at-top
  from tensorboard.summary.writer import record_writer  # pylint: disable=g-import-not-at-top
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  now = time.time()
  name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}.-start"
  events = [event_pb2.Event(wall_time=now, file_version="brain.Event:2"),
            event_pb2.Event(wall_time=now, step=int(step), session_log=event_pb2.SessionLog(
                status=event_pb2.SessionLog.START))]
  with open(folder / name, "ab") as f:
    writer = record_writer.RecordWriter(f)
    for event in events:
      writer.write(event.SerializeToString())
    f.flush()
    os.fsync(f.fileno())


def describe(record, num_iterations):
  """The console line of one iteration."""
  def fmt(v):
    return "n/a" if v is None else f"{v:.2f}"
  # env_steps counts the agent's actions (each repeated by the env's frame skip / action repeat).
  return (f"iteration {record['iteration'] + 1}/{num_iterations}: agent steps "
          f"{record['env_steps']}, updates {record['train_steps']}, train return "
          f"{fmt(record['train_return'])}, eval return {fmt(record['eval_return'])} "
          f"({len(record['eval_returns'])} episodes), loss {fmt(record['loss'])}, "
          f"{record['steps_per_sec']:.1f} steps/s")


__all__ = ["CsvLog", "MetricsLog", "Summaries", "WandbLogger", "describe", "flatten",
           "make_loggers", "mean_or_none"]
