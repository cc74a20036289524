"""What a run writes about itself: metrics.jsonl, TensorBoard summaries and console lines.

`metrics.jsonl` holds one JSON object per iteration (fields in docs/DESIGN.md), appended and
fsynced as each iteration ends. On resume, lines of iterations that will be redone are dropped and
lines of iterations that a checkpoint vouches for are rebuilt from it when damaged.
"""

import json
import os
import pathlib
import socket
import sys
import time

import numpy as np
import tensorflow as tf


def mean_or_none(values):
  return float(np.mean(values)) if len(values) else None


class MetricsLog:
  """The run's metrics.jsonl."""

  def __init__(self, path):
    self.path = pathlib.Path(path)

  def append(self, record):
    with open(self.path, "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")
      f.flush()
      os.fsync(f.fileno())

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
    for folder in (root / "train", root / "eval"):
      _mark_session_start(folder, 0 if resume_step is None else resume_step + 1)
    self.train = tf.summary.create_file_writer(str(root / "train"))
    self.eval = tf.summary.create_file_writer(str(root / "eval"))

  def scalars(self, step, values, writer=None):
    with (writer or self.train).as_default(step=step):
      for name, value in values.items():
        if value is not None:
          tf.summary.scalar(name, value)

  def iteration(self, record):
    """The per-iteration summaries of a metrics record."""
    step = record["env_steps"]
    values = {f"iteration/{k}": record.get(k) for k in self.TRAIN_KEYS}
    values.update({k: v for k, v in record.items() if k.startswith("dormant/")})
    self.scalars(step, values)
    if record.get("eval_return") is not None:
      with self.eval.as_default(step=step):
        tf.summary.scalar("eval_return", record["eval_return"])
        tf.summary.histogram("eval_returns", record["eval_returns"])
    self.flush()

  def flush(self):
    self.train.flush()
    self.eval.flush()

  def close(self):
    self.train.close()
    self.eval.close()


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
  return (f"iteration {record['iteration'] + 1}/{num_iterations}: env steps "
          f"{record['env_steps']}, updates {record['train_steps']}, train return "
          f"{fmt(record['train_return'])}, eval return {fmt(record['eval_return'])} "
          f"({len(record['eval_returns'])} episodes), loss {fmt(record['loss'])}, "
          f"{record['steps_per_sec']:.1f} steps/s")


__all__ = ["MetricsLog", "Summaries", "describe", "mean_or_none"]
