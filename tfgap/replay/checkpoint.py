"""Atomic, verified on-disk checkpoints of replay arrays.

Layout of a checkpoint directory::

  directory/
    LATEST              # name of the current data folder, replaced atomically (os.replace)
    data-000003/        # one folder per save; older ones are removed after LATEST moves on
      manifest.json     # config, state, and for every array: file name, shape, dtype, size, CRC-32
      frames.npy ...

A save writes ``.tmp-data-...`` first, renames it to ``data-...`` and only then points ``LATEST`` at
it, so a crash at any moment leaves the previous checkpoint readable. ``read`` checks every file's
size (and CRC-32 when recorded) against the manifest, so a truncated or corrupted file raises
``ReplayCheckpointError`` instead of restoring garbage.
"""

import json
import os
import re
import shutil
import uuid
import zlib

import numpy as np

_FORMAT_VERSION = 1
_LATEST = "LATEST"
_MANIFEST = "manifest.json"
_DATA_RE = re.compile(r"^data-(\d+)$")
_CRC_CHUNK = 1 << 26  # 64 MiB slices keep CRC-32 over mmapped files from paging everything in.


class ReplayCheckpointError(IOError):
  """A replay checkpoint is missing, truncated, corrupted or inconsistent."""


def _crc32(array):
  flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
  crc = 0
  for start in range(0, flat.size, _CRC_CHUNK):
    crc = zlib.crc32(memoryview(flat[start:start + _CRC_CHUNK]), crc)
  return crc


def _fsync_dir(path):
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def _write_file_synced(path, write):
  with open(path, "wb") as f:
    write(f)
    f.flush()
    os.fsync(f.fileno())


def write(directory, config, state, arrays, checksum=True):
  """Writes ``arrays`` (name -> numpy array) plus config/state JSON as a new checkpoint.

  Args:
    directory: checkpoint folder, created if missing.
    config: JSON-serialisable dict describing the buffer's layout.
    state: JSON-serialisable dict of cursors, counters and RNG state.
    arrays: dict of numpy arrays, each written with ``np.save``.
    checksum: record a CRC-32 of every array's bytes.

  Returns:
    Path of the data folder written.
  """
  os.makedirs(directory, exist_ok=True)
  sequence = 1 + max([int(m.group(1)) for m in map(_DATA_RE.match, os.listdir(directory)) if m],
                     default=0)
  name = f"data-{sequence:06d}"
  tmp = os.path.join(directory, f".tmp-{name}-{uuid.uuid4().hex[:8]}")
  os.makedirs(tmp)
  try:
    files = {}
    for key, array in arrays.items():
      file_name = f"{key}.npy"
      path = os.path.join(tmp, file_name)
      array = np.ascontiguousarray(array)
      _write_file_synced(path, lambda f, a=array: np.save(f, a, allow_pickle=False))
      files[key] = {
          "file": file_name,
          "shape": list(array.shape),
          "dtype": array.dtype.str,
          "size": os.path.getsize(path),
          "crc32": _crc32(array) if checksum else None,
      }
    manifest = {"format": _FORMAT_VERSION, "config": config, "state": state, "files": files}
    _write_file_synced(os.path.join(tmp, _MANIFEST),
                       lambda f: f.write(json.dumps(manifest).encode("utf-8")))
    _fsync_dir(tmp)
    final = os.path.join(directory, name)
    os.rename(tmp, final)
    pointer_tmp = os.path.join(directory, f".tmp-{_LATEST}-{uuid.uuid4().hex[:8]}")
    _write_file_synced(pointer_tmp, lambda f: f.write(name.encode("utf-8")))
    os.replace(pointer_tmp, os.path.join(directory, _LATEST))
    _fsync_dir(directory)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  # The new checkpoint is in place: drop older data folders and leftovers of interrupted saves.
  for entry in os.listdir(directory):
    if entry == name or entry == _LATEST:
      continue
    if _DATA_RE.match(entry) or entry.startswith(".tmp-"):
      path = os.path.join(directory, entry)
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        try:
          os.remove(path)
        except OSError:
          pass
  return final


def _latest_folder(directory):
  pointer = os.path.join(directory, _LATEST)
  if not os.path.isfile(pointer):
    raise ReplayCheckpointError(f"no replay checkpoint in {directory!r} (no {_LATEST} file).")
  with open(pointer, "rb") as f:
    name = f.read().decode("utf-8").strip()
  if not _DATA_RE.match(name):
    raise ReplayCheckpointError(f"{pointer} names {name!r}, not a data folder.")
  return os.path.join(directory, name)


def _read_manifest(folder):
  path = os.path.join(folder, _MANIFEST)
  try:
    with open(path, "rb") as f:
      manifest = json.loads(f.read().decode("utf-8"))
  except (OSError, ValueError) as e:
    raise ReplayCheckpointError(f"cannot read replay checkpoint manifest {path}: {e}") from e
  if manifest.get("format") != _FORMAT_VERSION:
    raise ReplayCheckpointError(
        f"{path} has format {manifest.get('format')!r}; this tfgap reads format "
        f"{_FORMAT_VERSION}.")
  return manifest


def read_config(directory):
  """Returns the buffer config recorded in the latest checkpoint of ``directory``."""
  return _read_manifest(_latest_folder(directory))["config"]


def read(directory):
  """Reads and verifies the latest checkpoint of ``directory``.

  Returns:
    ``(config, state, arrays)`` with arrays memory-mapped read-only (copy them out).

  Raises:
    ReplayCheckpointError: if a file is missing, has the wrong size or shape, or fails its CRC-32.
  """
  folder = _latest_folder(directory)
  manifest = _read_manifest(folder)
  arrays = {}
  for key, info in manifest["files"].items():
    path = os.path.join(folder, info["file"])
    if not os.path.isfile(path):
      raise ReplayCheckpointError(f"replay checkpoint file {path} is missing.")
    size = os.path.getsize(path)
    if size != info["size"]:
      raise ReplayCheckpointError(
          f"replay checkpoint file {path} has {size} bytes, the manifest says {info['size']}: "
          f"the save was truncated or the file was modified.")
    try:
      array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
      raise ReplayCheckpointError(f"cannot load replay checkpoint file {path}: {e}") from e
    if list(array.shape) != info["shape"] or array.dtype.str != info["dtype"]:
      raise ReplayCheckpointError(
          f"replay checkpoint file {path} holds {array.shape} {array.dtype.str}, the manifest "
          f"says {tuple(info['shape'])} {info['dtype']}.")
    if info.get("crc32") is not None and _crc32(array) != info["crc32"]:
      raise ReplayCheckpointError(
          f"replay checkpoint file {path} fails its CRC-32 check: the data is corrupted.")
    arrays[key] = array
  return manifest["config"], manifest["state"], arrays
