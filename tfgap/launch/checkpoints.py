"""Checkpoints of a training run: atomic, verified, restored all-or-nothing.

A checkpoint is a folder `checkpoints/ckpt-NNNNNN` (NNNNNN the iteration it completes):

    tf/state*       networks, optimizer, counters (tf.train.Checkpoint)
    replay/         the replay buffer (tfgap.replay save format)
    state.json      iteration, env steps, numpy RNG states, the run's config, the iteration's record
    MANIFEST.json   size and CRC-32 of every file (written last, before the atomic rename)

It is written to a staging folder and renamed into place, so a crash leaves either the previous
checkpoint or the new one, never half of one. Restoring checks a candidate fully (MANIFEST,
state.json, the caller's own check) before applying anything; if applying still fails, the caller
is told to rebuild its objects (`PartialRestoreError`) and try the next older checkpoint, as
Dopamine's Checkpointer falls back to older checkpoints.
"""

import json
import os
import pathlib
import re
import shutil
import sys

from tfgap.launch import common

PREFIX = "ckpt-"
_NAME = re.compile(r"^ckpt-(\d{6,})$")


class CheckpointRejected(Exception):
  """A checkpoint failed verification (nothing of it was applied)."""


class PartialRestoreError(RuntimeError):
  """Applying a verified checkpoint failed part-way; the restored objects must be rebuilt."""

  def __init__(self, path, cause):
    super().__init__(f"restoring {path} failed part-way ({cause}); its objects must be rebuilt")
    self.path = pathlib.Path(path)
    self.cause = cause


def iteration_of(path):
  """The iteration a checkpoint folder completes, or None for other names."""
  match = _NAME.match(pathlib.Path(path).name)
  return int(match.group(1)) if match else None


def _short(err):
  """A one-line reason for a failed restore (TF's mismatch errors print whole variables)."""
  text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
  match = re.match(r"Found (\d+) Python objects that were not bound", text)
  if match:
    return (f"its variables do not match this run's network and optimizer ({match.group(1)} "
            "objects unmatched): it was written by another network layout (another config or "
            "tfgap version)")
  return text[:300]


def _warn(message):
  # Printed, not logged: the console must show it once, whatever logging is configured.
  print(f"WARNING: {message}", file=sys.stderr, flush=True)


class Checkpointer:
  """Saves, lists, verifies and restores the checkpoints of one run directory.

  Args:
    folder: the run's `checkpoints/` folder (created on the first save).
    keep: checkpoints kept (the newest of this run's lineage).
  """

  def __init__(self, folder, keep=2):
    self.folder = pathlib.Path(folder)
    self.keep = int(keep)

  def list(self):
    """Checkpoint folders, oldest first (by iteration)."""
    if not self.folder.is_dir():
      return []
    found = [p for p in self.folder.iterdir() if p.is_dir() and iteration_of(p) is not None]
    return sorted(found, key=iteration_of)

  def latest(self):
    paths = self.list()
    return paths[-1] if paths else None

  def clean_staging(self):
    """Removes staging folders left by interrupted saves (call only while holding the run lock)."""
    if self.folder.is_dir():
      for stale in self.folder.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)

  # ------------------------------------------------------------------ saving

  def save(self, iteration, tf_checkpoint, replay, state):
    """Writes checkpoint `iteration` atomically and prunes older ones; returns its path.

    Args:
      iteration: the iteration the checkpoint completes.
      tf_checkpoint: a `tf.train.Checkpoint` of the networks, optimizer and counters.
      replay: the replay buffer (`save(directory, checksum=False)`), or None.
      state: JSON-serialisable dict stored as state.json (`iteration` is added).
    """
    self.folder.mkdir(parents=True, exist_ok=True)
    final = self.folder / f"{PREFIX}{iteration:06d}"
    tmp = self.folder / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
      shutil.rmtree(tmp)
    tmp.mkdir()
    try:
      tf_checkpoint.write(str(tmp / "tf" / "state"))
      if replay is not None:
        # The MANIFEST checksums every replay file; the replay's own CRC pass would read the
        # (gigabytes of) replay a second time.
        replay.save(str(tmp / "replay"), checksum=False)
      (tmp / "state.json").write_text(json.dumps(dict(state, iteration=int(iteration))))
      common.commit_folder(tmp, final)
    except BaseException:
      shutil.rmtree(tmp, ignore_errors=True)
      raise
    self.prune(iteration)
    return final

  def prune(self, current):
    """Keeps checkpoint `current` and the newest older ones (keep in all); drops later ones.

    Checkpoints of later iterations than `current` belong to an abandoned lineage (a fallback to
    an older checkpoint, or a restart), so they go first, whatever their names sort as.
    """
    mine = [p for p in self.list() if iteration_of(p) <= current]
    stale = [p for p in self.list() if iteration_of(p) > current]
    for path in stale + mine[:-self.keep]:
      self._drop(path)

  def _drop(self, path):
    """Deletes a checkpoint, renamed out of sight first: a crash mid-delete never leaves half a
    checkpoint under a checkpoint's name (the staging clean-up finishes the job)."""
    doomed = self.folder / f".tmp-drop-{path.name}-{os.getpid()}"
    try:
      os.rename(path, doomed)
    except FileNotFoundError:
      return
    shutil.rmtree(doomed, ignore_errors=True)

  # ------------------------------------------------------------------ verifying and restoring

  def verify(self, path, under=None):
    """Checks a checkpoint's files against its MANIFEST and reads its state.json.

    Args:
      path: checkpoint folder.
      under: verify only the files below this subfolder (e.g. "tf" to read the networks only).

    Returns:
      The state dict.

    Raises:
      CheckpointRejected: naming what is wrong.
    """
    path = pathlib.Path(path)
    try:
      common.verify_folder(path, under=under)
      state = json.loads((path / "state.json").read_text())
    except (OSError, ValueError) as err:
      raise CheckpointRejected(f"{path}: {err}") from err
    if not isinstance(state, dict) or state.get("iteration") != iteration_of(path):
      raise CheckpointRejected(f"{path}: state.json does not belong to this checkpoint")
    return state

  def records(self):
    """{iteration: metrics record} kept by every checkpoint whose state.json passes its CRC."""
    found = {}
    for path in self.list():
      try:
        state = self.verify(path, under="state.json")
      except CheckpointRejected:
        continue  # The restore warns about the checkpoints it tries.
      if isinstance(state.get("record"), dict):
        found[int(state["iteration"])] = state["record"]
    return found

  def candidates(self, check=None, under=None):
    """Yields `(path, state)` of verified checkpoints, newest first; warns about rejected ones.

    Args:
      check: optional `check(path, state)` raising CheckpointRejected for a checkpoint the caller
        cannot use (e.g. another configuration).
      under: as in `verify`.
    """
    for path in reversed(self.list()):
      try:
        state = self.verify(path, under=under)
        if check is not None:
          check(path, state)
      except CheckpointRejected as err:
        _warn(f"skipping unusable checkpoint {path.name}: {err}")
        continue
      yield path, state

  @staticmethod
  def apply(path, tf_checkpoint, replay):
    """Loads a verified checkpoint into the objects; PartialRestoreError if that fails."""
    path = pathlib.Path(path)
    status = None
    try:
      status = tf_checkpoint.read(str(path / "tf" / "state"))
      status.assert_existing_objects_matched()
      if replay is not None:
        replay.restore(str(path / "replay"))
    except Exception as err:  # pylint: disable=broad-except
      if status is not None:
        status.expect_partial()  # Else TF logs every unmatched value when `status` is collected.
      raise PartialRestoreError(path, _short(err)) from err


__all__ = ["Checkpointer", "CheckpointRejected", "PartialRestoreError", "PREFIX",
           "iteration_of"]
