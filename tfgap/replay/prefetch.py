"""A background thread that samples replay batches ahead of the learner."""

import atexit
import queue
import threading
import weakref

# Prefetchers whose thread may still run. A daemon thread still inside OpenCV/numpy C code when the
# interpreter finalizes can abort the process ("terminate called without an active exception"), so
# every live prefetcher is stopped and joined at exit, before finalization.
_LIVE = weakref.WeakSet()


@atexit.register
def _close_all():
  for prefetcher in list(_LIVE):
    prefetcher.close()


class Prefetcher:
  """Iterator over replay batches sampled ahead by a daemon thread into a bounded queue.

  The thread samples while the learner trains on the previous batch; numpy releases the GIL in
  most of its copies, so on two cores this overlaps with TensorFlow's update. Priority updates for
  batches already waiting in the queue are not seen by those batches: at most ``depth`` batches
  are drawn from slightly stale priorities, which is the accepted cost of running ahead (priority
  updates of items overwritten meanwhile are ignored by the buffer).

  Use as ``for batch in buffer.prefetch(32): ...`` or ``with buffer.prefetch(32) as batches:``;
  ``close()`` stops the thread. The thread is a daemon and every live prefetcher is closed at
  exit (atexit), so a forgotten prefetcher neither blocks nor aborts interpreter exit.

  Batches drawn ahead and dropped by ``close()`` consume nothing: ``close()`` sets the buffer's
  sampling RNG back to where it was before the first batch the consumer never received (unless
  something else drew from it meanwhile), so the buffer's later samples, and a checkpoint saved
  after ``close()``, are those of a learner that sampled exactly the batches it used. Sampling
  does not move beta either (it follows ``ReplayBuffer.set_learner_step``).
  """

  def __init__(self, buffer, batch_size, depth=4, min_sampleable=None):
    """Starts the sampling thread.

    Args:
      buffer: a ``ReplayBuffer``.
      batch_size: positive int.
      depth: maximum number of batches waiting in the queue, >= 1.
      min_sampleable: wait until ``buffer.num_sampleable`` reaches this before sampling (default
        ``batch_size``).

    Raises:
      ValueError: for a non-positive ``batch_size`` or ``depth``, or ``min_sampleable`` below
        ``batch_size``.
    """
    from tfgap import checks  # pylint: disable=g-import-not-at-top
    batch_size = checks.check_int("batch_size", batch_size, low=1)
    depth = checks.check_int("depth", depth, low=1)
    min_sampleable = checks.check_int(
        "min_sampleable", batch_size if min_sampleable is None else min_sampleable,
        low=batch_size)
    self._buffer = buffer
    self._batch_size = batch_size
    self._min_sampleable = min_sampleable
    self._queue = queue.Queue(maxsize=depth)
    self._stop = threading.Event()
    self._closed = False
    # Queue items are (sequence, RNG state before the draw, batch). `_held` is a batch the thread
    # drew but could not queue; `_rng_after` the buffer's RNG state after the thread's last draw.
    self._sequence = 0
    self._held = None
    self._rng_after = None
    self._thread = threading.Thread(target=self._run, name="tfgap-replay-prefetch", daemon=True)
    _LIVE.add(self)
    self._thread.start()

  @property
  def thread(self):
    return self._thread

  def _put(self, item):
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.05)
        return True
      except queue.Full:
        continue
    return False

  def _run(self):
    buffer = self._buffer
    try:
      while not self._stop.is_set():
        with buffer._added:  # pylint: disable=protected-access
          while buffer.num_sampleable < self._min_sampleable and not self._stop.is_set():
            buffer._added.wait(0.05)  # pylint: disable=protected-access
          if self._stop.is_set():
            break
          # Sampled under the same lock as the check, so the count cannot drop in between.
          before = buffer._rng_state()  # pylint: disable=protected-access
          batch = buffer.sample(self._batch_size)
          self._rng_after = buffer._rng_state()  # pylint: disable=protected-access
          item = (self._sequence, before, batch)
          self._sequence += 1
        if not self._put(item):
          self._held = item
          break
    except BaseException as e:  # pylint: disable=broad-except
      # Hand the failure to the consumer instead of dying silently.
      self._put(_Failure(e))

  def __iter__(self):
    return self

  def __next__(self):
    while True:
      if self._closed:
        raise StopIteration
      try:
        item = self._queue.get(timeout=0.1)
      except queue.Empty:
        if not self._thread.is_alive() and self._queue.empty():
          raise StopIteration  # pylint: disable=raise-missing-from
        continue
      if isinstance(item, _Failure):
        self.close()
        raise item.error
      return item[2]

  def close(self, timeout=5.0):
    """Stops the thread and drops queued batches, giving back their draws; safe to call again.

    Once the thread has stopped, the buffer's sampling RNG is set back to its state before the
    oldest dropped batch, provided nothing else drew from it after the thread's last draw.
    """
    self._closed = True
    self._stop.set()
    dropped = self._drain()  # Also frees a put() blocked on a full queue.
    if self._thread is not threading.current_thread():
      self._thread.join(timeout)
    dropped += self._drain()  # A put that completed between the drain and the stop.
    if not self._thread.is_alive():
      if self._held is not None:
        dropped.append(self._held[:2])
        self._held = None
      if dropped and self._rng_after is not None:
        _, oldest_state = min(dropped, key=lambda d: d[0])
        self._buffer._rewind_rng(oldest_state, self._rng_after)  # pylint: disable=protected-access
        self._rng_after = None
    _LIVE.discard(self)

  def _drain(self):
    """Empties the queue; returns (sequence, RNG state before) of every batch it held."""
    dropped = []
    while True:
      try:
        item = self._queue.get_nowait()
      except queue.Empty:
        return dropped
      if not isinstance(item, _Failure):
        dropped.append(item[:2])

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def __del__(self):
    try:
      self._stop.set()
    except Exception:  # pylint: disable=broad-except
      pass


class _Failure:

  def __init__(self, error):
    self.error = error
