"""Acting beside learning (`Runner.acting`): exact replay ratio, bounded lag, failures, lockstep.

The Runner cases train DQN on the band task of tests/agents/pixel_task.py (a real tfgap
environment) with tiny budgets, as tests/launch/test_train.py does; the ActorThread cases drive
the thread with plain Python iterators.
"""

import json
import pathlib
import re
import threading
import time

import numpy as np
import pytest

from tests.agents import pixel_task  # noqa: F401  (registers @tests.make_band_env with gin)
from tests.launch.test_train import make_runner
from tfgap.launch import acting
from tfgap.launch import experiment
from tfgap.launch import train

# Fields that differ between two runs of the same seed for reasons other than the training.
TIMING = ("time", "steps_per_sec", "eval_steps_per_sec", "acting")
NO_EVAL = ["Runner.evaluation_episodes = None", "Runner.num_iterations = 1",
           "Runner.dormant_batch_size = 0"]


def read_metrics(root):
  return [json.loads(line) for line in (pathlib.Path(root) / "metrics.jsonl").read_text()
          .splitlines()]


def checkpoint_names(root):
  return sorted(p.name for p in (pathlib.Path(root) / "checkpoints").iterdir())


def optimizer_variables(agent):
  variables = agent.optimizer.variables
  return variables() if callable(variables) else variables


def actor_threads():
  return [t for t in threading.enumerate() if t.name == "tfgap-actor" and t.is_alive()]


def watch_updates(runner, delay=0.0, peaks=None):
  """Records, at every update, the agent steps the actor has taken by then and the loss.

  `delay` slows each update down (sleeping, which lets the actor run) so that an actor thread
  has time to get ahead if it is allowed to; `peaks`, a list, receives the actor's steps at the
  end of each update (the furthest it got while the update ran).
  """
  seen, losses = [], []
  update = runner.agent.update

  def watched(batch):
    seen.append(runner.env_steps)
    time.sleep(delay)
    result = update(batch)
    losses.append(float(result[0]))
    if peaks is not None:
      peaks.append(runner.env_steps)
    return result

  runner.agent.update = watched
  return seen, losses


# ---------------------------------------------------------------- the Runner


def test_lockstep_gives_the_inline_run_exactly(tmp_path):
  runs = {}
  for mode in ("inline", "lockstep"):
    runner = make_runner(tmp_path / mode, [f"Runner.acting = '{mode}'",
                                           "Runner.prefetch_depth = 0"])
    seen, losses = watch_updates(runner)
    records = runner.run()
    runs[mode] = runner, seen, losses, records
  (inline, inline_seen, inline_losses, inline_records), (lock, lock_seen, lock_losses,
                                                        lock_records) = runs.values()
  assert [r["acting"] for r in lock_records] == ["lockstep", "lockstep"]
  assert [r["acting"] for r in inline_records] == ["inline", "inline"]
  strip = lambda records: [{k: v for k, v in r.items() if k not in TIMING} for r in records]
  assert strip(read_metrics(tmp_path / "lockstep")) == strip(read_metrics(tmp_path / "inline"))
  assert len(lock_losses) == 101 and lock_losses == inline_losses
  assert lock_seen == inline_seen  # Each update ran right after the step that owed it.
  for a, b in zip(inline.agent.q_network.variables + optimizer_variables(inline.agent),
                  lock.agent.q_network.variables + optimizer_variables(lock.agent)):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  ids = inline.replay.sampleable_indices()
  np.testing.assert_array_equal(lock.replay.sampleable_indices(), ids)
  np.testing.assert_array_equal(lock.replay.get(ids)["action"], inline.replay.get(ids)["action"])
  assert not actor_threads()


@pytest.mark.parametrize("update_period,num_envs", [(1, 1), (4, 1), (1, 2), (4, 2)])
def test_thread_runs_exactly_the_owed_updates_never_before_their_data(tmp_path, update_period,
                                                                      num_envs):
  extra = NO_EVAL + [f"DQNAgent.update_period = {update_period}",
                     f"Runner.num_envs = {num_envs}"]
  inline = make_runner(tmp_path / "inline", extra + ["Runner.acting = 'inline'"])
  owed, _ = watch_updates(inline)  # The agent steps after which each update is owed.
  expected = inline.run()[0]
  threaded = make_runner(tmp_path / "thread", extra + ["Runner.acting = 'thread'"])
  peaks = []
  # Sleeping 20 ms per update gives the actor time to take its next step even on a loaded
  # machine (a step here is well under a millisecond of work).
  seen, _ = watch_updates(threaded, delay=0.02, peaks=peaks)
  record = threaded.run()[0]

  assert record["acting"] == "thread"
  assert (record["train_steps"], record["env_steps"]) == (expected["train_steps"],
                                                          expected["env_steps"])
  assert len(seen) == len(owed) == expected["train_steps"] > 0
  lag = acting.lag("thread", update_period, num_envs)
  assert lag == max(1, -(-update_period // num_envs))
  ahead = np.array(seen) - np.array(owed)
  ahead_at_end = np.array(peaks) - np.array(owed)
  # Update u starts once the step owing it is stored, and the actor is at most `lag`
  # environment calls (of num_envs agent steps each) past that step meanwhile.
  assert ahead.min() >= 0, ahead
  assert ahead_at_end.max() <= lag * num_envs, ahead_at_end
  assert ahead_at_end.max() > 0  # The actor did run beside the learner.
  assert not actor_threads()


def test_a_nan_in_the_learner_stops_the_actor_and_no_checkpoint_is_written(tmp_path):
  root = tmp_path / "run"
  # No updates in iteration 0 (learning starts at step 160), then an absurd step size.
  runner = make_runner(root, ["DQNAgent.min_replay_history = 160",
                              "DQNAgent.learning_rate = 1e30", "Runner.num_iterations = 3",
                              "Runner.acting = 'thread'"])
  with pytest.raises(train.NaNLossError, match=r"at update \d+ \(env step \d+, iteration 1\)"
                     ".*ckpt-000000") as raised:
    runner.run()
  assert checkpoint_names(root) == ["ckpt-000000"]
  assert [m["iteration"] for m in read_metrics(root)] == [0]
  assert not actor_threads()
  at = int(re.search(r"env step (\d+)", str(raised.value)).group(1))
  # The actor stopped within its lag (update_period 2, one environment) of the failed update.
  assert at <= runner.env_steps <= at + 2


def test_an_exception_in_the_environment_step_propagates_and_stops_the_phase(tmp_path):
  root = tmp_path / "run"
  runner = make_runner(root, ["Runner.acting = 'thread'"])
  step, calls = runner.env.step, []

  def failing_step(action):
    calls.append(1)
    if len(calls) == 200:  # In iteration 1 (150 steps per iteration).
      raise RuntimeError("the emulator died")
    return step(action)

  runner.env.step = failing_step
  with pytest.raises(RuntimeError, match="the emulator died"):
    runner.run()
  assert not actor_threads()
  assert checkpoint_names(root) == ["ckpt-000000"]
  assert [m["iteration"] for m in read_metrics(root)] == [0]
  assert runner.env_steps == 199  # Nothing acted after the failure.


def test_resume_after_a_checkpoint_in_thread_mode(tmp_path, capsys):
  root = tmp_path / "run"
  first = make_runner(root, ["Runner.acting = 'thread'", "Runner.num_iterations = 1"])
  first.run()
  records = make_runner(root, ["Runner.acting = 'thread'", "Runner.num_iterations = 2"]).run()
  assert "Resuming from" in capsys.readouterr().out
  assert [r["iteration"] for r in records] == [1]
  metrics = read_metrics(root)
  # As the inline loop: updates every 2 steps from step 100 on, 26 then 101 in all.
  assert [(m["env_steps"], m["train_steps"]) for m in metrics] == [(150, 26), (300, 101)]
  assert [m["acting"] for m in metrics] == ["thread", "thread"]
  assert not actor_threads()


@pytest.mark.parametrize("value,hint", [("threads", "Did you mean 'thread'"),
                                        ("parallel", ""), (1, "")])
def test_a_bad_acting_value_is_refused_naming_it(tmp_path, value, hint):
  message = (f"Runner.acting={value!r} is not accepted; accepted: 'auto', 'inline', 'thread', "
             f"'lockstep'.")
  with pytest.raises(ValueError, match=re.escape(message) + ".*" + re.escape(hint)):
    experiment.RunConfig(acting=value)
  with pytest.raises(ValueError, match=re.escape(message)):
    make_runner(tmp_path / "run", [f"Runner.acting = {value!r}"])
  assert not (tmp_path / "run").exists()


def test_auto_resolves_per_agent_and_the_start_line_names_the_mode(tmp_path, capsys):
  assert experiment.RunConfig().acting == "auto"
  for agent, mode in (("dqn", "thread"), ("rainbow", "thread"), ("der", "thread"),
                      ("sac", "inline")):
    config = experiment.RunConfig(agent=agent, suite="dmc" if agent == "sac" else "atari")
    assert config.acting_mode == mode
    assert config.replace(acting="lockstep").acting_mode == "lockstep"
  assert experiment.RunConfig(acting="Lockstep").acting == "lockstep"
  runner = make_runner(tmp_path / "run", NO_EVAL + ["Runner.training_steps = 20"])
  assert runner.acting == "thread"
  runner.run()
  assert "acting thread" in capsys.readouterr().out


# ---------------------------------------------------------------- ActorThread


def test_actor_thread_stays_within_its_lag_and_lockstep_alternates():
  for lag in (0, 1, 3):
    log, finished = [], [0]

    def steps(log=log, finished=finished, lag=lag):
      for j in range(30):
        assert j - finished[0] <= lag, (j, finished[0], lag)
        log.append(("act", j))
        yield j

    with acting.ActorThread(steps(), lag) as items:
      got = []
      for item in items:
        time.sleep(0.001)  # The learner's update: the actor may run ahead meanwhile.
        log.append(("learn", item))
        got.append(item)
        finished[0] += 1
    assert got == list(range(30))
    assert not items.thread.is_alive()
    if lag == 0:  # Inline order: step j, then its updates, then step j + 1.
      assert log == [(kind, j) for j in range(30) for kind in ("act", "learn")]
    else:
      assert log != [(kind, j) for j in range(30) for kind in ("act", "learn")]


def test_actor_thread_hands_the_actors_exception_to_the_consumer():
  def steps():
    yield 0
    raise KeyError("env broke")

  with pytest.raises(KeyError, match="env broke"):
    with acting.ActorThread(steps(), 1) as items:
      for _ in items:
        pass
  assert not items.thread.is_alive()


def test_a_failing_consumer_stops_the_actor_within_its_lag():
  produced, closed = [], []

  def steps():
    try:
      for j in range(1000):
        produced.append(j)
        yield j
    finally:
      closed.append(True)

  with pytest.raises(ZeroDivisionError):
    with acting.ActorThread(steps(), 2) as items:
      for item in items:
        time.sleep(0.002)
        if item == 5:
          raise ZeroDivisionError
  assert not items.thread.is_alive() and closed == [True]
  assert 6 <= len(produced) <= 6 + 2  # Items 0..5 plus at most `lag` ahead of item 5.
