"""The layout of a run directory and the lock that gives one trainer at a time its use.

    root_dir/
      train/, eval/          TensorBoard events
      metrics.jsonl          one JSON object per iteration
      checkpoints/ckpt-NNNNNN
      policies/iter_NNNNNN   PolicySaver SavedModels
      config.gin             the operative gin config
      .lock                  held (flock) by the trainer using the directory; names its pid/host
"""

import errno
import fcntl
import os
import pathlib
import shutil
import socket

from tfgap.launch import common


class RunDirError(ValueError):
  """The run directory cannot be used (not a folder, not writable, locked by another trainer)."""


class RunPaths:
  """Paths of one run directory."""

  def __init__(self, root_dir):
    self.root = pathlib.Path(root_dir).expanduser().resolve()
    self.train = self.root / "train"
    self.eval = self.root / "eval"
    self.metrics = self.root / "metrics.jsonl"
    self.checkpoints = self.root / "checkpoints"
    self.policies = self.root / "policies"
    self.config = self.root / "config.gin"
    self.lock = self.root / ".lock"

  def make(self):
    """Creates the root folder; RunDirError naming the path when it cannot be used."""
    if self.root.exists() and not self.root.is_dir():
      raise RunDirError(f"--root_dir {self.root} is a file; accepted: a folder (new or holding "
                        "a tfgap run)")
    try:
      self.root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
      raise RunDirError(f"cannot create --root_dir {self.root}: {err.strerror}") from err
    if not os.access(self.root, os.W_OK | os.X_OK):
      raise RunDirError(f"--root_dir {self.root} is not writable; pick another folder or fix "
                        "its permissions")

  def __getitem__(self, key):  # paths["metrics"], as before this class existed.
    return getattr(self, key)


class RunLock:
  """An exclusive OS lock (flock) on `root_dir/.lock`, held while a trainer uses the directory.

  The kernel drops the lock when the process dies (kill -9 included), so no stale lock remains. A
  second trainer fails at once with RunDirError naming the holder's pid and host.
  """

  def __init__(self, paths):
    self.paths = paths
    self._fd = None

  def __enter__(self):
    self.paths.make()
    try:
      fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
      raise RunDirError(f"cannot open {self.paths.lock}: {err.strerror}") from err
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      holder = _read_holder(fd)
      os.close(fd)
      if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise RunDirError(
            f"{self.paths.root} is in use by another trainer ({holder}); wait for it to finish, "
            "stop it, or pick another --root_dir") from None
      raise RunDirError(f"cannot lock {self.paths.lock}: {err.strerror}") from err
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def __exit__(self, *exc):
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None
    return False


def _read_holder(fd):
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 200).decode("utf-8", "replace").strip()
  except OSError:
    text = ""
  return text or "pid unknown"


def explain_os_error(err, root_dir):
  """One line for an OS-level failure while a run wrote to `root_dir` (no traceback)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  full = isinstance(err, tf.errors.ResourceExhaustedError) or getattr(
      err, "errno", None) == errno.ENOSPC or "No space left" in str(err)
  denied = isinstance(err, (PermissionError, tf.errors.PermissionDeniedError)) or getattr(
      err, "errno", None) in (errno.EACCES, errno.EROFS, errno.EPERM)
  where = getattr(err, "filename", None) or root_dir
  detail = (getattr(err, "strerror", None) or getattr(err, "message", None) or str(err))
  detail = str(detail).strip().splitlines()[0][:200] if str(detail).strip() else type(err).__name__
  if full:
    what = "the disk is full"
    todo = "free some space and rerun the same command: it resumes from the last checkpoint"
  elif denied:
    what = "permission denied (read-only folder?)"
    todo = "make the folder writable or pick another --root_dir"
  else:
    what = f"an OS error ({detail})"
    todo = "fix it and rerun the same command: it resumes from the last checkpoint"
  return (f"writing the run in {root_dir} failed at {where}: {what}; {todo}. Checkpoints "
          "already written are intact.")


def policy_staging(paths, name):
  """(final, staging) folders of a policy export; a leftover staging folder is removed."""
  paths.policies.mkdir(parents=True, exist_ok=True)
  final = paths.policies / name
  tmp = paths.policies / f".tmp-{name}-{os.getpid()}"
  if tmp.exists():
    shutil.rmtree(tmp)
  return final, tmp


def clean_policy_staging(paths):
  """Removes policy staging folders of interrupted exports (only under the run lock)."""
  if paths.policies.is_dir():
    for stale in paths.policies.glob(".tmp-*"):
      shutil.rmtree(stale, ignore_errors=True)


def replace_folder(tmp, final):
  """Moves a finished staging folder into place (replacing an older folder of that name)."""
  if final.exists():
    shutil.rmtree(final)
  os.rename(tmp, final)
  common.fsync_path(final.parent)


__all__ = ["RunPaths", "RunLock", "RunDirError", "policy_staging", "clean_policy_staging",
           "replace_folder"]
