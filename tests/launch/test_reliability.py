"""A run directory that nothing can corrupt (issue 15): the reliability suite of tfgap.launch.train.

Each case is a fault found by fault injection on the training driver, turned into a test:

* restore is all-or-nothing, a fresh start builds fresh objects, a refused run changes nothing;
* retention keeps the newest checkpoints of this run's lineage (stale later names go first);
* one trainer per run directory (flock); staging folders are cleaned only under the lock;
* damaged metrics lines are rebuilt from checkpoints (and kept aside), with a warning;
* a step producing non-finite weights stops the run before they reach a checkpoint;
* the config check survives a deleted config.gin; a longer budget needs no --force;
* OS errors (disk full, read-only folder, --root_dir or report --out a file, bad bytes) give one
  line naming the path, exit 1 and leave what was saved intact;
* TensorBoard shows each step once after a resume; both checkpoints damaged -> refuse unless
  --restart;
* a crash right after every staging step of a checkpoint, a policy export, a metrics append (and
  the start-up writes), then a rerun: the run completes with contiguous metrics; a real kill -9 of
  a trainer paused mid-checkpoint.

The API cases train the band task of tests/agents/pixel_task.py with tiny budgets (one shared
2-iteration run is trained once and copied); the CLI cases run `python -m tfgap.launch.train` or a
small wrapper of it (FAULT_SCRIPT) that injects a fault by monkeypatching, so the library carries
no test hook. docs/reliability.md lists what each case checks.
"""

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.agents import pixel_task  # noqa: F401  (registers @tests.make_band_env with gin)
from tests.launch.test_train import BASE
from tfgap.launch import checkpoints as checkpoints_lib
from tfgap.launch import common
from tfgap.launch import rundir
from tfgap.launch import train

REPO = pathlib.Path(__file__).resolve().parents[2]
# The shared run: 2 iterations of 150 steps, per-step summaries every 50 steps. The import is
# part of the operative config: runs made here and through the CLI compare equal.
SHARED = ["import tests.agents.pixel_task"] + BASE + ["Runner.summary_period = 50"]


def make_runner(root, extra=(), **kwargs):
  gin.clear_config()
  train.parse_config([], SHARED + list(extra))
  return train.Runner(str(root), **kwargs)


def read_metrics(root):
  return [json.loads(line) for line in (pathlib.Path(root) / "metrics.jsonl").read_text()
          .splitlines()]


def checkpoint_names(root):
  folder = pathlib.Path(root) / "checkpoints"
  return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def snapshot(root):
  """{relative path: bytes} of what a run saved (metrics, config, checkpoints)."""
  root = pathlib.Path(root)
  files = {}
  for path in [root / "metrics.jsonl", root / "config.gin"] + sorted(
      (root / "checkpoints").rglob("*")):
    if path.is_file():
      files[str(path.relative_to(root))] = path.read_bytes()
  return files


def damage(path, how="truncate"):
  path = pathlib.Path(path)
  data = path.read_bytes()
  if how == "truncate":
    path.write_bytes(data[:len(data) // 2])
  elif how == "flip":
    middle = len(data) // 2
    path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
  elif how == "zeros":
    path.write_bytes(bytes(len(data)))
  else:
    raise ValueError(how)


def tf_data_file(checkpoint):
  return next((pathlib.Path(checkpoint) / "tf").glob("state.data-*"))


def scalar_steps(folder):
  """{tag: [steps]} as the TensorBoard app loads a run folder, orphaned data purged.

  The app's accumulator (plugin_event_accumulator) is used: TF2's tf.summary.scalar writes tensor
  summaries, which the classic event_accumulator.EventAccumulator lists under Tensors() and never
  purges on a restart; the app reads and purges them as scalars.
  """
  from tensorboard.backend.event_processing import plugin_event_accumulator as accumulator  # pylint: disable=g-import-not-at-top
  acc = accumulator.EventAccumulator(str(folder), size_guidance={accumulator.TENSORS: 0})
  acc.Reload()
  return {tag: [e.step for e in acc.Tensors(tag)] for tag in acc.Tags()[accumulator.TENSORS]}


def assert_each_step_once(folder):
  for tag, steps in scalar_steps(folder).items():
    if tag.startswith("eval_returns"):
      continue
    assert steps == sorted(set(steps)), f"{folder.name}/{tag}: steps {steps}"


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
  """A finished 2-iteration run (ckpt-000000, ckpt-000001), trained once for the module."""
  root = tmp_path_factory.mktemp("shared") / "run"
  make_runner(root).run()
  gin.clear_config()
  return root


@pytest.fixture
def run_copy(shared_run, tmp_path):
  """A private copy of the shared run."""
  root = tmp_path / "run"
  shutil.copytree(shared_run, root)
  return root


# ---------------------------------------------------------------- 1. all-or-nothing restore


@pytest.mark.parametrize("change", ["make_band_env.num_actions = 4",  # another game: new head
                                    "Runner.replay_capacity = 1000"])
def test_refused_checkpoints_leave_nothing_behind_and_restart_builds_fresh_objects(
    run_copy, change, capsys):
  before = snapshot(run_copy)
  runner = make_runner(run_copy, [change], force=True)
  with pytest.raises(rundir.RunDirError, match=r"every checkpoint .* unusable.*--restart"):
    runner.run()
  assert "skipping unusable checkpoint ckpt-000001" in capsys.readouterr().err
  # Nothing of the rejected checkpoints was kept in the objects, nothing saved was touched.
  assert int(runner.agent.train_step_counter) == 0 and runner.env_steps == 0
  assert runner.replay.num_added == 0
  assert snapshot(run_copy) == before
  # The untouched run still resumes with its own config (no --force): nothing to redo.
  assert make_runner(run_copy).run() == []

  records = make_runner(run_copy, [change, "Runner.num_iterations = 1"], force=True,
                        restart=True).run()
  # A fresh run: its first update counter and env steps are its own (26 updates in 150 steps).
  assert [(r["iteration"], r["env_steps"], r["train_steps"]) for r in records] == [(0, 150, 26)]
  assert [m["iteration"] for m in read_metrics(run_copy)] == [0]
  assert checkpoint_names(run_copy) == ["ckpt-000000"]
  aside = sorted(p.name for p in run_copy.iterdir() if ".old-" in p.name)
  assert [name.split(".old-")[0] for name in aside] == ["checkpoints", "config.gin",
                                                        "metrics.jsonl"]


def test_a_verified_checkpoint_that_fails_to_apply_falls_back_to_a_clean_older_one(
    run_copy, shared_run):
  # ckpt-000001 passes its MANIFEST (resealed) but its replay has another layout: applying it
  # fails after the networks were read. The Runner must rebuild and restore ckpt-000000 alone.
  newest = run_copy / "checkpoints" / "ckpt-000001"
  manifest = next((newest / "replay").glob("data-*/manifest.json"))
  replay_manifest = json.loads(manifest.read_text())
  replay_manifest["config"]["capacity"] = 999
  manifest.write_text(json.dumps(replay_manifest))
  common.seal_folder(newest)
  runner = make_runner(run_copy)
  start, _ = runner.restore()
  assert start == 1 and runner.env_steps == 150
  assert int(runner.agent.train_step_counter) == 26
  reader = tf.train.load_checkpoint(str(run_copy / "checkpoints" / "ckpt-000000" / "tf" / "state"))
  saved = {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(
      str(run_copy / "checkpoints" / "ckpt-000000" / "tf" / "state"))
           if name.startswith("q_network/") and name.endswith("VARIABLE_VALUE")
           and "OPTIMIZER_SLOT" not in name}
  assert saved
  mine = [v.numpy().tobytes() for v in runner.agent.q_network.variables]
  assert sorted(a.tobytes() for a in saved.values()) == sorted(mine)
  assert runner.replay.num_added == 151  # ckpt-000000's replay (150 steps + the first reset)


# ---------------------------------------------------------------- 2. lineage-aware retention


class _TinyState:
  """Stands in for a tf.train.Checkpoint: writes one file."""

  def write(self, prefix):
    pathlib.Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(prefix + ".data").write_text("weights")


def test_retention_keeps_the_just_written_checkpoint_when_stale_later_ones_exist(tmp_path):
  checkpointer = checkpoints_lib.Checkpointer(tmp_path / "checkpoints", keep=2)
  for iteration in (0, 1, 2):
    checkpointer.save(iteration, _TinyState(), None, {})
  assert [p.name for p in checkpointer.list()] == ["ckpt-000001", "ckpt-000002"]
  # A fallback (or a new lineage) writes iteration 0 again: the later names are stale.
  checkpointer.save(0, _TinyState(), None, {})
  assert [p.name for p in checkpointer.list()] == ["ckpt-000000"]
  checkpointer.save(1, _TinyState(), None, {})
  assert [p.name for p in checkpointer.list()] == ["ckpt-000000", "ckpt-000001"]
  assert not [p for p in checkpointer.folder.iterdir() if p.name.startswith(".tmp-")]


def test_a_stale_later_checkpoint_does_not_outlive_the_run_that_replaced_it(run_copy, capsys):
  # A leftover of another lineage whose name sorts after everything this run writes.
  shutil.copytree(run_copy / "checkpoints" / "ckpt-000001", run_copy / "checkpoints" / "ckpt-000007")
  records = make_runner(run_copy, ["Runner.num_iterations = 3"]).run()
  assert "skipping unusable checkpoint ckpt-000007" in capsys.readouterr().err
  assert [r["iteration"] for r in records] == [2]
  assert checkpoint_names(run_copy) == ["ckpt-000001", "ckpt-000002"]
  assert make_runner(run_copy, ["Runner.num_iterations = 3"]).run() == []  # Nothing to redo.


# ---------------------------------------------------------------- 3. one trainer per directory


def test_a_second_trainer_is_refused_at_once_and_leaves_the_holders_staging_alone(run_copy):
  staging = [run_copy / "checkpoints" / ".tmp-ckpt-000002-4242",
             run_copy / "policies" / ".tmp-iter_000002-4242"]
  for folder in staging:
    folder.mkdir(parents=True)
    (folder / "partial").write_text("being written")
  before = snapshot(run_copy)
  holder = f"pid {os.getpid()} on host {socket.gethostname()}"
  with rundir.RunLock(rundir.RunPaths(run_copy)):
    second = make_runner(run_copy, ["Runner.num_iterations = 3"])
    start = time.monotonic()
    with pytest.raises(rundir.RunDirError, match=f"in use by another trainer \\({holder}\\)"):
      second.run()
    assert time.monotonic() - start < 5
  assert all(folder.is_dir() for folder in staging)
  assert snapshot(run_copy) == before
  # With the lock free, leftovers of interrupted writes are cleaned and the run goes on.
  assert [r["iteration"] for r in make_runner(run_copy, ["Runner.num_iterations = 3"]).run()] == [2]
  assert not any(folder.exists() for folder in staging)


# ---------------------------------------------------------------- 4. damaged metrics lines


def test_damaged_metrics_lines_are_rebuilt_from_checkpoints_kept_aside_and_reported(
    run_copy, capsys):
  metrics = run_copy / "metrics.jsonl"
  original = read_metrics(run_copy)
  lines = metrics.read_bytes().splitlines(keepends=True)
  bad = [b"\xff\xfe{\"iteration\": 0, garbage\n", lines[1][:40] + b"\n"]
  metrics.write_bytes(b"".join(bad))
  records = make_runner(run_copy, ["Runner.num_iterations = 3"]).run()
  err = capsys.readouterr().err
  assert "damaged lines [1, 2]" in err and "rebuilt from their checkpoints" in err
  assert [r["iteration"] for r in records] == [2]
  rebuilt = read_metrics(run_copy)
  assert [m["iteration"] for m in rebuilt] == [0, 1, 2]
  assert rebuilt[:2] == original  # Both checkpoints hold their iteration's record.
  # The damaged bytes are kept, not dropped.
  kept = (run_copy / "metrics.jsonl.damaged").read_bytes()
  assert all(line.rstrip(b"\n") in kept for line in bad)


def test_an_unrecoverable_damaged_line_is_reported_not_silently_dropped(run_copy, capsys):
  for path in (run_copy / "checkpoints").iterdir():
    if path.name == "ckpt-000000":
      shutil.rmtree(path)  # As retention does after a few iterations.
  metrics = run_copy / "metrics.jsonl"
  lines = metrics.read_bytes().splitlines(keepends=True)
  metrics.write_bytes(b"{not json\n" + lines[1])
  make_runner(run_copy, ["Runner.num_iterations = 3"]).run()
  err = capsys.readouterr().err
  assert "no record of iterations [0]" in err and "metrics.jsonl.damaged" in err
  assert [m["iteration"] for m in read_metrics(run_copy)] == [1, 2]
  assert (run_copy / "metrics.jsonl.damaged").read_bytes() == b"{not json\n"


# ---------------------------------------------------------------- 5. non-finite weights


def _all_finite(checkpoint):
  prefix = str(pathlib.Path(checkpoint) / "tf" / "state")
  reader = tf.train.load_checkpoint(prefix)
  for name, _ in tf.train.list_variables(prefix):
    value = reader.get_tensor(name)
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
      if not np.isfinite(value).all():
        return False
  return True


def test_an_update_producing_non_finite_weights_stops_the_run_before_a_checkpoint(tmp_path):
  root = tmp_path / "run"
  runner = make_runner(root)
  agent, update = runner.agent, runner.agent.update

  def exploding_update(batch):
    # The last update of iteration 1 (101 in all) gets an infinite step size: its loss, computed
    # before the step, is finite; the weights it leaves are not.
    if int(agent.train_step_counter) == 100:
      tf.keras.backend.set_value(agent.optimizer.learning_rate, np.inf)
    return update(batch)

  agent.update = exploding_update
  with pytest.raises(train.NaNLossError, match=r"weights became non-finite .* at update 101"):
    runner.run()
  assert checkpoint_names(root) == ["ckpt-000000"]
  assert _all_finite(root / "checkpoints" / "ckpt-000000")
  assert [m["iteration"] for m in read_metrics(root)] == [0]


# ---------------------------------------------------------------- 6. the config check


def test_config_check_survives_a_deleted_config_gin_and_a_longer_budget_needs_no_force(run_copy):
  (run_copy / "config.gin").unlink()
  with pytest.raises(train.ConfigMismatchError, match=r"(?s)state\.json.*learning_rate"):
    make_runner(run_copy, ["DQNAgent.learning_rate = 0.01"]).run()
  assert not (run_copy / "config.gin").exists()  # A refused run writes nothing.
  records = make_runner(run_copy, ["Runner.num_iterations = 3"]).run()  # No --force needed.
  assert [r["iteration"] for r in records] == [2]
  assert "Runner.num_iterations = 3" in (run_copy / "config.gin").read_text()
  with pytest.raises(train.ConfigMismatchError, match="num_iterations"):
    make_runner(run_copy, ["Runner.num_iterations = 2"]).run()  # Fewer is another run.


# ---------------------------------------------------------------- 8. TensorBoard after a resume


def test_tensorboard_shows_each_step_once_after_a_resume(run_copy):
  # As after a crash between iteration 1's summaries and its checkpoint: iteration 1 is redone.
  shutil.rmtree(run_copy / "checkpoints" / "ckpt-000001")
  records = make_runner(run_copy).run()
  assert [r["iteration"] for r in records] == [1]
  for folder in (run_copy / "train", run_copy / "eval"):
    assert_each_step_once(folder)
  train_steps = scalar_steps(run_copy / "train")
  assert train_steps["iteration/loss"] == [150, 300]  # Iteration 0's point survives the purge.
  assert train_steps["epsilon"] == [50, 100, 150, 200, 250, 300]
  assert scalar_steps(run_copy / "eval")["eval_return"] == [150, 300]


# ---------------------------------------------------------------- 9. every checkpoint damaged


def test_all_checkpoints_damaged_refuses_to_start_over_unless_restart(run_copy, capsys):
  for name in ("ckpt-000000", "ckpt-000001"):
    damage(tf_data_file(run_copy / "checkpoints" / name))
  before = snapshot(run_copy)
  with pytest.raises(rundir.RunDirError, match=r"every checkpoint in .*checkpoints is unusable"):
    make_runner(run_copy).run()
  assert snapshot(run_copy) == before
  records = make_runner(run_copy, restart=True).run()
  assert [r["iteration"] for r in records] == [0, 1]
  assert "--restart: moved" in capsys.readouterr().out
  old_metrics = next(run_copy.glob("metrics.jsonl.old-*"))
  assert old_metrics.read_bytes() == before["metrics.jsonl"]
  assert len(list(next(run_copy.glob("checkpoints.old-*")).iterdir())) == 2


# ---------------------------------------------------------------- damage to the newest checkpoint


def _drop(path):
  path.unlink()


DAMAGE = {
    "tf data truncated": lambda c: damage(tf_data_file(c), "truncate"),
    "tf data byte flipped": lambda c: damage(tf_data_file(c), "flip"),
    "tf data zeroed": lambda c: damage(tf_data_file(c), "zeros"),
    "tf index deleted": lambda c: _drop(c / "tf" / "state.index"),
    "replay frames byte flipped": lambda c: damage(next(c.glob("replay/data-*/frames.npy")),
                                                   "flip"),
    "replay manifest deleted": lambda c: _drop(next(c.glob("replay/data-*/manifest.json"))),
    "state.json truncated": lambda c: damage(c / "state.json", "truncate"),
    "MANIFEST deleted": lambda c: _drop(c / "MANIFEST.json"),
    "MANIFEST garbage": lambda c: (c / "MANIFEST.json").write_bytes(b"\x00\x01 not json"),
    "emptied": lambda c: [shutil.rmtree(p) if p.is_dir() else p.unlink() for p in c.iterdir()],
    "another checkpoint's state.json, resealed": lambda c: (
        shutil.copy(c.parent / "ckpt-000000" / "state.json", c / "state.json"),
        common.seal_folder(c)),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_each_kind_of_damage_to_the_newest_checkpoint_falls_back_to_the_previous_one(
    run_copy, kind, capsys):
  newest = run_copy / "checkpoints" / "ckpt-000001"
  DAMAGE[kind](newest)
  checkpointer = checkpoints_lib.Checkpointer(run_copy / "checkpoints")
  found = [path.name for path, _ in checkpointer.candidates()]
  assert found == ["ckpt-000000"]
  assert "skipping unusable checkpoint ckpt-000001" in capsys.readouterr().err


# ---------------------------------------------------------------- 7. OS errors through the CLI


def run_cli(root, *flags, bindings=(), timeout=300, script=None, env=None, popen=False):
  """`python -m tfgap.launch.train` (or the fault-injecting wrapper) on the band task."""
  command = [sys.executable] + ([str(script)] if script else ["-m", "tfgap.launch.train"])
  command += ["--root_dir", str(root)]
  for binding in SHARED + list(bindings):
    command += ["--gin_bindings", binding]
  command += list(flags)
  env = dict(os.environ, **(env or {}))
  if popen:
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
  return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                        check=False, env=env)


def assert_one_clear_line(result, *names):
  """Exit 1, no traceback, exactly one error line, naming each of `names`; returns the line."""
  assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines()
            if line.startswith("ERROR:") or " error: " in line]
  assert len(errors) == 1, result.stderr[-3000:]
  for name in names:
    assert str(name) in errors[0], errors[0]
  return errors[0]


def test_cli_root_dir_that_is_a_file(tmp_path):
  root = tmp_path / "notes.txt"
  root.write_text("not a run")
  assert_one_clear_line(run_cli(root), root, "is a file")
  assert root.read_text() == "not a run"


@pytest.mark.slow
def test_cli_config_gin_with_bad_bytes_names_the_file(run_copy, tmp_path):
  config = run_copy / "config.gin"
  config.write_bytes(b"Runner.game = '\xff\xfe\x00'\n")
  before = snapshot(run_copy)
  assert_one_clear_line(run_cli(run_copy), config)
  assert snapshot(run_copy) == before
  bad = tmp_path / "bad.gin"
  bad.write_bytes(b"\xff\xfe\x00 Runner.game = 1\n")
  assert_one_clear_line(run_cli(tmp_path / "other", "--gin_file", str(bad)), bad)
  assert not (tmp_path / "other").exists()


def test_cli_report_out_that_is_a_file(run_copy, tmp_path):
  out = tmp_path / "report.md"
  out.write_text("an older report")
  result = subprocess.run([sys.executable, "-m", "tfgap.launch.report", str(run_copy.parent),
                           "--out", str(out), "--reps", "10"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)
  assert_one_clear_line(result, out, "is a file")
  assert out.read_text() == "an older report"


@contextlib.contextmanager
def small_disk(path, size="16m"):
  """A tmpfs of `size` at `path` (root only); yields False where mounting is not allowed."""
  path.mkdir(parents=True, exist_ok=True)
  mounted = os.geteuid() == 0 and subprocess.run(
      ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
      capture_output=True, check=False).returncode == 0
  try:
    yield mounted
  finally:
    if mounted:
      subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill_disk(folder, leave):
  """Fills the file system of `folder` up to `leave` free bytes; returns the filler file."""
  stat = os.statvfs(folder)
  filler = pathlib.Path(folder) / "filler"
  with open(filler, "wb") as f:
    remaining = stat.f_bavail * stat.f_frsize - leave
    while remaining > 0:
      chunk = min(remaining, 1 << 20)
      f.write(b"\x01" * chunk)
      remaining -= chunk
  return filler


def verified(root):
  checkpointer = checkpoints_lib.Checkpointer(pathlib.Path(root) / "checkpoints")
  for path in checkpointer.list():
    checkpointer.verify(path)
  return [p.name for p in checkpointer.list()]


@pytest.mark.slow
def test_cli_full_disk_then_read_only_folder_one_line_each_and_the_run_intact(tmp_path):
  disk = tmp_path / "disk"
  with small_disk(disk) as mounted:
    root = disk / "run"
    make_runner(root, ["Runner.num_iterations = 1"]).run()
    saved = {k: v for k, v in snapshot(root).items() if k.startswith("checkpoints/")}
    if mounted:
      # Room for config.gin, metrics and events, not for a 1.8 MB checkpoint.
      filler = fill_disk(disk, leave=300_000)
      full = run_cli(root)
    else:  # No tmpfs here: the checkpoint writer fails as a full disk makes it fail.
      filler = None
      full = run_cli(root, script=fault_script(tmp_path), env={"TFGAP_TEST_ACTION": "enospc"})
    line = assert_one_clear_line(full, root, "disk is full")
    assert "rerun" in line
    assert verified(root) == ["ckpt-000000"]
    assert {k: v for k, v in snapshot(root).items() if k.startswith("checkpoints/")} == saved
    assert read_metrics(root)[0]["iteration"] == 0
    if filler is not None:
      filler.unlink()
    assert [r["iteration"] for r in make_runner(root).run()] == [1]  # Resumes once freed.
    assert [m["iteration"] for m in read_metrics(root)] == [0, 1]
    assert [m["env_steps"] for m in read_metrics(root)] == [150, 300]

    before = snapshot(root)
    if mounted:
      subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    elif os.geteuid() != 0:
      os.chmod(root, 0o555)
    else:
      pytest.skip("root without mount: permission bits do not stop root")
    try:
      line = assert_one_clear_line(run_cli(root, bindings=["Runner.num_iterations = 3"]), root)
      assert "not writable" in line or "read-only" in line or "permission" in line, line
    finally:
      if mounted:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
      else:
        os.chmod(root, 0o755)
    assert snapshot(root) == before


# ---------------------------------------------------------------- kill -9 at every staging step

#
# What kill -9 leaves is what was on disk at that moment (written data is in the kernel's page
# cache, unflushed user-space buffers are lost either way). So one training run takes a copy of
# its directory -- a crash image -- right after each staging step, and each image is resumed by a
# fresh Runner: 15 crashes for the price of one run. A real SIGKILL (of a trainer paused mid-
# checkpoint) is in the two-trainers case below.

# Steps, in the order a run takes them. Per-iteration steps are imaged in iteration 1 (a
# checkpoint of iteration 0 exists), start-up steps at the first start.
CRASH_POINTS = {
    "config.gin staged": "startup", "metrics rewind staged": "startup",
    "summaries written": 1, "metrics line torn": 1, "metrics line appended": 1,
    "policy staged": 1, "policy renamed into place": 1,
    "checkpoint networks written": 1, "checkpoint replay written": 1,
    "checkpoint state.json written": 1, "checkpoint MANIFEST written": 1,
    "checkpoint renamed into place": 1, "old checkpoint half deleted": 1,
    "old checkpoint deleted": 1, "lock taken": "startup",
}
CRASH_RUN = ["Runner.export_policies = True", "Runner.keep_checkpoints = 1"]


class CrashImages:
  """Copies the run directory to `images/<point>` when the run reaches each point."""

  def __init__(self, root, images, monkeypatch):
    self.root, self.images = pathlib.Path(root), pathlib.Path(images)
    self.seen = {}
    self.iteration = 0
    self._patch(monkeypatch)

  def due(self, point):
    """Whether to image `point` now (its first passage in the iteration it is imaged in)."""
    when = CRASH_POINTS[point]
    if point in self.seen or (when != "startup" and self.iteration != when):
      return False
    self.seen[point] = True
    return True

  def image(self, point):
    shutil.copytree(self.root, self.images / point.replace(" ", "_"), symlinks=True)

  def at(self, point, when="after", where=lambda args: args[0], match=lambda path: True):
    """A wrapper imaging `point` before/after a call whose `where(args)` path matches."""
    def wrap(original):
      def wrapper(*args, **kwargs):
        hit = match(str(where(args)))
        if hit and when == "before" and self.due(point):
          self.image(point)
        result = original(*args, **kwargs)
        if hit and when == "after" and self.due(point):
          self.image(point)
        return result
      return wrapper
    return wrap

  def _patch(self, mp):
    from tfgap.launch import records  # pylint: disable=g-import-not-at-top
    from tfgap.replay import buffer  # pylint: disable=g-import-not-at-top
    base = os.path.basename
    staged = lambda path: ".tmp-ckpt-" in path
    old_ckpt = lambda path: "ckpt-" in base(path) and not base(path).startswith(".tmp-ckpt-")

    def patch(owner, name, wrap):
      mp.setattr(owner, name, wrap(getattr(owner, name)))

    patch(rundir.RunLock, "__enter__", self.at("lock taken"))
    patch(os, "replace", self.at("config.gin staged", "before", lambda a: a[1],
                                 lambda p: p.endswith("config.gin")))
    patch(os, "replace", self.at("metrics rewind staged", "before", lambda a: a[1],
                                 lambda p: p.endswith("metrics.jsonl")))
    patch(records.Summaries, "iteration", self.at("summaries written", where=lambda a: "-"))
    patch(records.MetricsLog, "append", self.at("metrics line appended", where=lambda a: "-"))
    patch(rundir, "replace_folder", self.at("policy staged", "before"))
    patch(os, "rename", self.at("policy renamed into place", where=lambda a: a[1],
                                match=lambda p: base(p).startswith("iter_")))
    patch(tf.train.Checkpoint, "write", self.at("checkpoint networks written",
                                                where=lambda a: a[1], match=staged))
    patch(buffer.ReplayBuffer, "save", self.at("checkpoint replay written",
                                               where=lambda a: a[1], match=staged))
    patch(common, "commit_folder", self.at("checkpoint state.json written", "before",
                                           match=staged))
    patch(common, "seal_folder", self.at("checkpoint MANIFEST written", match=staged))
    patch(os, "rename", self.at("checkpoint renamed into place", where=lambda a: a[1],
                                match=lambda p: base(p).startswith("ckpt-")))
    patch(shutil, "rmtree", self.at("old checkpoint deleted", match=old_ckpt))
    rmtree, append = shutil.rmtree, records.MetricsLog.append

    def half_rmtree(path, *args, **kwargs):
      if old_ckpt(str(path)) and self.due("old checkpoint half deleted"):
        os.unlink(os.path.join(path, "tf", "state.index"))
        self.image("old checkpoint half deleted")
      return rmtree(path, *args, **kwargs)

    def torn_append(log, record):
      self.iteration = record["iteration"]
      if self.due("metrics line torn"):
        line = json.dumps(record) + "\n"
        with open(log.path, "a", encoding="utf-8") as f:
          f.write(line[:len(line) // 2])
        self.image("metrics line torn")
        with open(log.path, "rb+") as f:
          f.truncate(os.path.getsize(log.path) - len(line) // 2)
      return append(log, record)

    mp.setattr(shutil, "rmtree", half_rmtree)
    mp.setattr(records.MetricsLog, "append", torn_append)
    summaries = records.Summaries.iteration

    def tracking_summaries(summary, record):
      self.iteration = record["iteration"]  # The per-iteration points follow this call.
      return summaries(summary, record)

    mp.setattr(records.Summaries, "iteration", tracking_summaries)


def check_crash_image(root, point):
  """What must hold whenever a trainer dies: sealed checkpoints, metrics damaged at most at the
  end (a torn last line), no line of an iteration beyond the next one to train."""
  names = verified(root)
  metrics = root / "metrics.jsonl"
  lines = metrics.read_bytes().splitlines() if metrics.exists() else []
  parsed = []
  for number, line in enumerate(lines):
    try:
      parsed.append(json.loads(line)["iteration"])
    except ValueError:
      assert number == len(lines) - 1, f"{point}: damaged line {number + 1} is not the last"
  done = max((checkpoints_lib.iteration_of(n) for n in names), default=-1)
  assert all(i <= done + 1 for i in parsed), (point, parsed, names)


@pytest.mark.slow
def test_a_crash_right_after_each_staging_step_then_a_rerun_completes_the_run(
    tmp_path, monkeypatch):
  root, images = tmp_path / "run", tmp_path / "images"
  images.mkdir()
  started = time.monotonic()
  with monkeypatch.context() as mp:
    crashes = CrashImages(root, images, mp)
    make_runner(root, CRASH_RUN).run()
  assert sorted(crashes.seen) == sorted(CRASH_POINTS)
  for point in CRASH_POINTS:
    image = images / point.replace(" ", "_")
    check_crash_image(image, point)
    records = make_runner(image, CRASH_RUN).run()
    metrics = read_metrics(image)
    assert [m["iteration"] for m in metrics] == [0, 1], point
    assert [m["env_steps"] for m in metrics] == [150, 300], point
    assert [r["iteration"] for r in records] == [i for i in (0, 1) if i >= 2 - len(records)]
    assert verified(image)[-1] == "ckpt-000001", point
    assert sorted(p.name for p in (image / "policies").iterdir()) == [
        "iter_000000", "iter_000001"], point
    leftovers = [p for p in image.rglob("*") if p.name.startswith(".tmp")
                 or p.name.endswith(".tmp")]
    assert not leftovers, (point, leftovers)
    for folder in (image / "train", image / "eval"):
      assert_each_step_once(folder)
    assert scalar_steps(image / "train")["iteration/loss"] == [150, 300], point
  print(f"{len(CRASH_POINTS)} crash images resumed in {time.monotonic() - started:.0f} s")


# ---------------------------------------------------------------- 3. two trainers, then kill -9
#
# (A kill -9 at an arbitrary moment of a CLI run is test_train's test_sigkill_mid_run...)

FAULT_SCRIPT = r"""
# tfgap.launch.train with a fault right after the networks of a checkpoint are staged:
# TFGAP_TEST_ACTION=pause writes TFGAP_TEST_RELEASE.paused and waits for that file; enospc raises
# OSError ENOSPC there, as a full disk does.
import errno
import os
import sys
import time

sys.path.insert(0, os.getcwd())
from tfgap.launch import runtime
runtime.prepare_process(renderer=True)

from absl import app
import tensorflow as tf
import tests.agents.pixel_task  # noqa: F401
from tfgap.launch import train

ACTION = os.environ["TFGAP_TEST_ACTION"]
RELEASE = os.environ.get("TFGAP_TEST_RELEASE", "")
write = tf.train.Checkpoint.write


def faulty_write(self, prefix, *args, **kwargs):
  result = write(self, prefix, *args, **kwargs)
  if ".tmp-ckpt-" in str(prefix):
    if ACTION == "enospc":
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(prefix))
    with open(RELEASE + ".paused", "w") as f:
      f.write(str(prefix))
    while not os.path.exists(RELEASE):
      time.sleep(0.05)
  return result


tf.train.Checkpoint.write = faulty_write
app.run(train.main)
"""


def fault_script(folder):
  path = pathlib.Path(folder) / "faulty_train.py"
  path.write_text(FAULT_SCRIPT)
  return path


@pytest.mark.slow
def test_two_trainers_on_one_directory_then_kill_9_mid_checkpoint(tmp_path):
  root = tmp_path / "run"
  release = tmp_path / "release"
  # The first trainer pauses mid-checkpoint, its staging folder half written.
  first = run_cli(root, script=fault_script(tmp_path), popen=True, env={
      "TFGAP_TEST_ACTION": "pause", "TFGAP_TEST_RELEASE": str(release)})
  try:
    paused = pathlib.Path(str(release) + ".paused")
    deadline = time.monotonic() + 240
    while not paused.exists():
      assert first.poll() is None, first.communicate()[1][-3000:]
      assert time.monotonic() < deadline
      time.sleep(0.1)
    staging = list((root / "checkpoints").glob(".tmp-ckpt-*"))
    assert len(staging) == 1
    second = run_cli(root, "--restart")  # Even --restart must not touch a live run.
    line = assert_one_clear_line(second, root, f"pid {first.pid} on host {socket.gethostname()}")
    assert "in use by another trainer" in line
    assert staging[0].is_dir() and (staging[0] / "tf").is_dir()
    assert (root / "metrics.jsonl").exists() and not list(root.glob("*.old-*"))
    first.kill()  # kill -9 with the checkpoint half staged: the kernel drops the lock.
    first.communicate()
  finally:
    if first.poll() is None:
      first.kill()
      first.wait()
  assert first.returncode == -signal.SIGKILL
  check_crash_image(root, "paused trainer killed")

  # The lock died with its holder: the next trainer cleans the staging folder and goes on.
  records = make_runner(root, ["Runner.num_iterations = 3"]).run()
  assert [r["iteration"] for r in records] == [0, 1, 2]  # Killed in iteration 0's checkpoint.
  metrics = read_metrics(root)
  assert [m["iteration"] for m in metrics] == [0, 1, 2]
  assert [m["env_steps"] for m in metrics] == [150, 300, 450]
  assert checkpoint_names(root) == ["ckpt-000001", "ckpt-000002"]
  assert not list((root / "checkpoints").glob(".tmp-*"))
  for folder in (root / "train", root / "eval"):
    assert_each_step_once(folder)
