"""Acting beside learning: the agent's steps in a thread of their own, the updates in the caller's.

A training phase is a stream of agent steps (act, step the environments, store the transition),
each of which owes the learner a number of gradient updates (`update_period`,
`min_replay_history`). `Runner.acting` chooses who produces that stream:

- "inline": the learner's own thread, one step then its updates (Dopamine's loop);
- "thread": an actor thread, which runs at most `lag` environment calls past the step whose
  updates the learner is doing, so that acting and stepping overlap the update;
- "lockstep": the actor thread, but each step starts only once the learner has finished the
  previous one: the same order of operations as "inline" (the deterministic mode for tests);
- "auto": whichever pays (`resolve`): "thread" for the DQN family, "inline" for SAC.

The learner consumes the steps in order and runs exactly the updates each one owes, so the
replay ratio is the configured one in every mode and the learner never trains on a step the
actor has not stored. This module is plain Python (no TensorFlow): the runner supplies the steps.
"""

import collections
import contextlib
import math
import threading

from tfgap import checks

MODES = ("auto", "inline", "thread", "lockstep")


def check_mode(value):
  """A valid `Runner.acting` value in its accepted spelling (ValueError naming it otherwise)."""
  return checks.check_choice("Runner.acting", value, MODES)


def resolve(mode, agent_kind):
  """The acting mode a run uses: `mode` itself, or for "auto" the one that pays.

  "auto" is "thread" for the DQN family (DQN, Rainbow, DER) and "inline" for SAC. Measured on
  the shared, loaded 2-core machine in alternated thread/inline pairs (docs/agents.md): DER on
  atari100k Pong (one update per step) x1.03-1.32, median ~1.2, over 4 pairs; DQN on atari Pong
  (one update per 4 steps) median x1.15 over 8 pairs with one environment and x1.03 with four
  (single pairs from x0.8 to x1.55: the load dominates them). A pixel SAC update (batch 256)
  took ~1-3 s against ~18 ms for a DMC cartpole step, so the thread has almost nothing to
  overlap (2 pairs, x0.95 and x1.39); inline keeps SAC runs repeatable.

  Args:
    mode: one of MODES.
    agent_kind: the agent's network kind ("q", "categorical" or "sac").
  """
  mode = check_mode(mode)
  if mode != "auto":
    return mode
  return "inline" if agent_kind == "sac" else "thread"


def lag(mode, update_period, envs_per_step):
  """Environment calls the actor may run past the step whose updates the learner is doing.

  "thread": just enough calls to owe the next update, ceil(update_period / envs_per_step), so
  the actor's stepping can fill the whole of an update while the weights it acts with miss at
  most the updates of that one step (the inline loop would have them). More lag would buy no
  overlap (the learner has nothing more to do) and only staler acting. "lockstep" and "inline": 0.
  """
  if mode != "thread":
    return 0
  return max(1, math.ceil(update_period / envs_per_step))


def actor(steps, mode, lag_steps):
  """A context manager giving the iterator of agent steps the learner consumes.

  Args:
    steps: an iterator of the agent's steps (its generator runs in the actor thread unless
      `mode` is "inline").
    mode: a resolved mode ("inline", "thread" or "lockstep").
    lag_steps: `lag(mode, ...)`.
  """
  checks.check_choice("mode", mode, ("inline", "thread", "lockstep"))
  if mode == "inline":
    return contextlib.closing(_Inline(steps))
  return ActorThread(steps, lag_steps)


class _Inline:
  """The steps iterated by their consumer (an object with `close`, as ActorThread)."""

  def __init__(self, steps):
    self._steps = steps

  def __iter__(self):
    return iter(self._steps)

  def close(self):
    close = getattr(self._steps, "close", None)
    if close is not None:
      close()


class ActorThread:
  """Iterates `steps` in a daemon thread, at most `lag` items ahead of the consumer's.

  Item j (0-based) is produced only once the consumer has finished items 0..j-lag-1; the
  consumer finishes an item when it asks for the next one (or closes). With lag 0 the actor and
  the consumer take turns, in the order a plain loop would run them.

  An exception raised by `steps` is raised by the consumer's next `next()`. `close()` (also on
  leaving the `with` block, e.g. because the consumer raised) stops the actor before its next
  item and joins it, so nothing acts, stores or reads the iterator's state afterwards.
  """

  def __init__(self, steps, lag, name="tfgap-actor"):
    self._steps = steps
    self._lag = checks.check_int("lag", lag, low=0)
    self._cond = threading.Condition()
    self._ready = collections.deque()  # Produced, not yet taken by the consumer.
    self._started = 0  # Items the actor has started.
    self._finished = 0  # Items the consumer has finished.
    self._holding = False  # Whether the consumer holds an item it has not finished.
    self._exhausted = False
    self._error = None
    self._stop = False
    self._thread = threading.Thread(target=self._run, name=name, daemon=True)
    self._thread.start()

  @property
  def thread(self):
    return self._thread

  def _run(self):
    try:
      while True:
        with self._cond:
          while not self._stop and self._started > self._finished + self._lag:
            self._cond.wait()
          if self._stop:
            return
          self._started += 1
        item = next(self._steps, _END)  # Acting and stepping: outside the lock.
        with self._cond:
          if item is _END:
            self._exhausted = True
          else:
            self._ready.append(item)
          self._cond.notify_all()
        if item is _END:
          return
    except BaseException as error:  # pylint: disable=broad-except
      with self._cond:  # Handed to the consumer, which stops at once.
        self._error = error
        self._cond.notify_all()
    finally:
      close = getattr(self._steps, "close", None)
      if close is not None:
        close()

  def __iter__(self):
    return self

  def __next__(self):
    with self._cond:
      if self._holding:
        self._holding = False
        self._finished += 1
        self._cond.notify_all()
      while not (self._ready or self._exhausted or self._error is not None or self._stop):
        self._cond.wait()
      if self._error is not None:
        raise self._error
      if self._ready:
        self._holding = True
        return self._ready.popleft()
      raise StopIteration

  def close(self):
    """Stops the actor before its next item and waits for the one it is doing; idempotent."""
    with self._cond:
      self._stop = True
      self._cond.notify_all()
    if self._thread is not threading.current_thread():
      self._thread.join()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


_END = object()

__all__ = ["MODES", "check_mode", "resolve", "lag", "actor", "ActorThread"]
