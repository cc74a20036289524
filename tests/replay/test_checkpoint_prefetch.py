"""Save/restore, corruption detection, prefetching and the tf.data path."""

import os
import threading

import numpy as np
import pytest

from tests.replay import reference
from tfgap.replay import ReplayBuffer, ReplayCheckpointError


def _run(buffer, streams, steps):
  for _ in range(steps):
    step = streams.step()
    buffer.add(step["frame"], step["action"], step["reward"], step["step_type"],
               step["discount"])


def _make(prioritized=True, seed=7):
  return ReplayBuffer(90, (5, 4, 1), stack_size=4, num_streams=3, n_step=3, gamma=0.97,
                      prioritized=prioritized, alpha=0.6, beta=0.4, beta_steps=50, seed=seed)


@pytest.mark.parametrize("prioritized", [True, False])
def test_save_restore_identical_contents_and_samples(tmp_path, prioritized):
  buffer = _make(prioritized)
  streams = reference.EpisodeStreams(3, (5, 4, 1), 4, seed=1)
  _run(buffer, streams, 70)  # Wraps the 30-step streams.
  for _ in range(3):
    batch = buffer.sample(8)
    if prioritized:
      buffer.update_priorities(batch["indices"], np.abs(batch["reward"]) + 0.1)
  buffer.save(str(tmp_path / "replay"))
  restored = _make(prioritized, seed=999)  # Different seed: the saved RNG state must win.
  restored.restore(str(tmp_path / "replay"))
  rebuilt = ReplayBuffer.from_checkpoint(str(tmp_path / "replay"))
  for other in (restored, rebuilt):
    assert len(other) == len(buffer)
    assert other.num_added == buffer.num_added
    assert other.beta == buffer.beta
    np.testing.assert_array_equal(other.sampleable_indices(), buffer.sampleable_indices())
    ids = buffer.sampleable_indices()
    want, got = buffer.get(ids), other.get(ids)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])
    if prioritized:
      np.testing.assert_array_equal(other.priorities(ids), buffer.priorities(ids))
  # Same RNG and same contents: the next samples agree, and so do later adds.
  step = streams.step()
  for b in (buffer, restored, rebuilt):
    b.add(step["frame"], step["action"], step["reward"], step["step_type"], step["discount"])
  for _ in range(3):
    batches = [b.sample(8) for b in (buffer, restored, rebuilt)]
    for key in batches[0]:
      np.testing.assert_array_equal(batches[1][key], batches[0][key])
      np.testing.assert_array_equal(batches[2][key], batches[0][key])


def test_save_writes_only_used_part_and_replaces_atomically(tmp_path):
  buffer = ReplayBuffer(3000, (8, 8, 1), stack_size=4, num_streams=1, n_step=1, seed=0)
  streams = reference.EpisodeStreams(1, (8, 8, 1), 4, seed=2)
  _run(buffer, streams, 10)
  first = buffer.save(str(tmp_path / "r"))
  frames_file = os.path.getsize(os.path.join(first, "frames.npy"))
  assert frames_file < 10 * 64 + 1024  # 10 frames plus the .npy header, not 3000 frames.
  _run(buffer, streams, 5)
  # A leftover of an interrupted save must not confuse restore or survive the next save.
  os.makedirs(tmp_path / "r" / ".tmp-data-000009-dead")
  second = buffer.save(str(tmp_path / "r"))
  assert sorted(os.listdir(tmp_path / "r")) == ["LATEST", os.path.basename(second)]
  assert not os.path.exists(first)
  restored = ReplayBuffer.from_checkpoint(str(tmp_path / "r"))
  assert restored.num_added == 15


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "no_latest"])
def test_damaged_checkpoint_is_detected(tmp_path, damage):
  buffer = _make()
  _run(buffer, reference.EpisodeStreams(3, (5, 4, 1), 4, seed=4), 40)
  folder = buffer.save(str(tmp_path / "replay"))
  path = os.path.join(folder, "frames.npy")
  if damage == "truncate":
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) - 100)
  elif damage == "flip":
    with open(path, "r+b") as f:
      f.seek(-10, os.SEEK_END)
      byte = f.read(1)
      f.seek(-10, os.SEEK_END)
      f.write(bytes([byte[0] ^ 0xFF]))
  elif damage == "delete":
    os.remove(path)
  else:
    os.remove(tmp_path / "replay" / "LATEST")
  fresh = _make()
  with pytest.raises(ReplayCheckpointError, match="frames.npy|no replay checkpoint"):
    fresh.restore(str(tmp_path / "replay"))
  assert fresh.num_added == 0  # Nothing half-restored.


def test_restore_rejects_another_layout(tmp_path):
  buffer = _make()
  _run(buffer, reference.EpisodeStreams(3, (5, 4, 1), 4, seed=4), 10)
  buffer.save(str(tmp_path / "replay"))
  other = ReplayBuffer(90, (5, 4, 1), stack_size=4, num_streams=3, n_step=2, prioritized=True)
  with pytest.raises(ValueError, match="n_step"):
    other.restore(str(tmp_path / "replay"))


def test_empty_buffer_round_trips(tmp_path):
  buffer = _make()
  buffer.save(str(tmp_path / "empty"))
  restored = ReplayBuffer.from_checkpoint(str(tmp_path / "empty"))
  assert restored.num_added == 0 and len(restored) == 0


def test_prefetch_yields_valid_batches_while_adding_and_closes():
  buffer = _make()
  streams = reference.EpisodeStreams(3, (5, 4, 1), 4, seed=5)
  prefetcher = buffer.prefetch(8, depth=2)  # Starts before any data: waits for it.
  _run(buffer, streams, 20)
  seen = 0
  for batch in prefetcher:
    assert batch["observation"].shape == (8, 5, 4, 4)
    assert batch["weights"].shape == (8,)
    assert np.all(batch["discount"] <= 1.0)
    buffer.update_priorities(batch["indices"], np.ones(8))  # Possibly stale ids: ignored.
    _run(buffer, streams, 1)  # Actor and prefetch thread share the buffer.
    seen += 1
    if seen == 30:
      break
  prefetcher.close()
  assert not prefetcher.thread.is_alive()
  assert prefetcher.thread.daemon
  with pytest.raises(StopIteration):
    next(prefetcher)
  # The whole buffer is still consistent after concurrent use.
  np.testing.assert_array_equal(
      np.count_nonzero(buffer._valid), len(buffer))  # pylint: disable=protected-access


def test_prefetch_surfaces_errors_and_context_manager_closes():
  buffer = _make()
  _run(buffer, reference.EpisodeStreams(3, (5, 4, 1), 4, seed=6), 20)
  with buffer.prefetch(4, depth=1) as batches:
    next(batches)
    thread = batches.thread
  thread.join(5)
  assert not thread.is_alive()
  with pytest.raises(ValueError, match="depth=0 is not accepted; accepted: an integer >= 1"):
    buffer.prefetch(4, depth=0)
  # A failure in the thread reaches the consumer.
  original = buffer.sample
  buffer.sample = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))
  try:
    batches = buffer.prefetch(4)
    with pytest.raises(RuntimeError, match="boom"):
      next(batches)
    batches.thread.join(5)
    assert not batches.thread.is_alive()
  finally:
    buffer.sample = original


def test_as_dataset_yields_tensors():
  import tensorflow as tf
  buffer = _make()
  _run(buffer, reference.EpisodeStreams(3, (5, 4, 1), 4, seed=8), 30)
  callers = []
  original = buffer.sample

  def recording_sample(*args, **kwargs):
    callers.append(threading.get_ident())
    return original(*args, **kwargs)

  buffer.sample = recording_sample
  dataset = buffer.as_dataset(6, prefetch=2)
  ids = set(buffer.sampleable_indices().tolist())
  for batch in dataset.take(3):
    assert batch["observation"].shape == (6, 5, 4, 4)
    assert batch["observation"].dtype == tf.uint8
    assert set(batch["indices"].numpy().tolist()) <= ids
  # Every batch came from buffer.sample, run in tf.data's threads rather than the caller's.
  assert len(callers) >= 3
  assert threading.get_ident() not in callers


def test_forgotten_prefetcher_does_not_block_interpreter_exit():
  import subprocess
  import sys
  import time
  script = (
      # The real package: `import tfgap.replay` loads numpy only, never TensorFlow.
      "import sys\n"
      "import numpy as np\n"
      "from tfgap.replay import ReplayBuffer\n"
      "b = ReplayBuffer(40, (2, 2, 1), stack_size=2, n_step=1)\n"
      "b.add_first(np.zeros((2, 2, 1), np.uint8))\n"
      "for _ in range(10): b.add(np.ones((2, 2, 1), np.uint8), 0, 1.0, 1)\n"
      "p = b.prefetch(2, depth=1)\n"
      "next(p)\n"
      "waiting = b.prefetch(2, min_sampleable=1000)  # Blocked waiting for data.\n"
      # A third one busy sampling 84x84 stacks (inside OpenCV/numpy C code) at exit: a daemon
      # thread caught there by interpreter finalization used to abort the process.
      "big = ReplayBuffer(400, (84, 84, 1), stack_size=4, n_step=3)\n"
      "big.add_first(np.zeros((84, 84, 1), np.uint8))\n"
      "for _ in range(300): big.add(np.ones((84, 84, 1), np.uint8), 0, 1.0, 1)\n"
      "busy = big.prefetch(32, depth=10_000)\n"
      "next(busy)\n"
      "print('exiting', p.thread.is_alive(), waiting.thread.daemon, busy.thread.is_alive(),"
      " flush=True)\n"
      "assert 'tensorflow' not in sys.modules\n")
  for _ in range(3):  # The abort was intermittent.
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "exiting True True True" in result.stdout
    assert time.monotonic() - start < 120


def test_restore_over_a_used_buffer_clears_what_the_checkpoint_lacks(tmp_path):
  small = _make()
  _run(small, reference.EpisodeStreams(3, (5, 4, 1), 4, seed=12), 8)
  small.save(str(tmp_path / "small"))
  big = _make()
  _run(big, reference.EpisodeStreams(3, (5, 4, 1), 4, seed=13), 60)
  big.restore(str(tmp_path / "small"))
  assert big.num_added == small.num_added
  np.testing.assert_array_equal(big.sampleable_indices(), small.sampleable_indices())
  used = 8 * 3
  assert not big._frames[used:].any()  # pylint: disable=protected-access
  assert not big._valid[used:].any()  # pylint: disable=protected-access
  np.testing.assert_allclose(big._tree.total, small._tree.total)  # pylint: disable=protected-access
