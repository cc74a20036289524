"""tfgap.launch.study: specs, and studies run on a real local Ray (2 CPUs), killed and resumed.

The runs train DQN on the pixel task of tests/agents/pixel_task.py (bound through gin as
`Runner.env_fn = @tests.make_band_env`, the module imported with --import_module) with tiny
budgets. `study run` runs as a subprocess, as a user runs it, so that it can be killed with
SIGKILL mid-way.
"""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from scipy import stats

from tfgap.launch import study
from tfgap.launch import studies

REPO = pathlib.Path(__file__).resolve().parents[2]
# The smoke study on the band task (whose env_fn takes no Atari protocol overrides).
BAND = ["--import_module", "tests.agents.pixel_task",
        "--gin_bindings", "Runner.env_fn = @tests.make_band_env",
        "--gin_bindings", "Runner.eval_env_kwargs = None"]
# Runner settings of tests/launch/test_train.py's BASE for the band task.
BAND_BINDINGS = [
    "Runner.agent = 'dqn'", "Runner.env_fn = @tests.make_band_env",
    "Runner.num_iterations = 2", "Runner.training_steps = 150",
    "Runner.evaluation_episodes = 4", "Runner.replay_capacity = 2000",
    "DQNAgent.min_replay_history = 100", "DQNAgent.update_period = 2",
    "DQNAgent.target_update_period = 40", "DQNAgent.epsilon_decay_period = 100",
]


def _env():
  env = dict(os.environ)
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _study(*args, timeout=240):
  return subprocess.run([sys.executable, "-m", "tfgap.launch.study", *args], cwd=REPO,
                        env=_env(), capture_output=True, text=True, timeout=timeout, check=False)


def _start(*args, log):
  # A session of its own: what is left of it after the kill can be ended as a group.
  return subprocess.Popen([sys.executable, "-m", "tfgap.launch.study", *args], cwd=REPO,
                          env=_env(), stdout=log, stderr=subprocess.STDOUT,
                          start_new_session=True)


def _write_spec(path, body):
  path.write_text(textwrap.dedent(body))
  return str(path)


def _spec_dict(**changes):
  spec = {"study": "t", "suite": "custom", "games": ["band"], "seeds": 1,
          "gin_bindings": list(BAND_BINDINGS),
          "axes": {"bottleneck": {"gap": ["build_q_network.bottleneck = 'gap'"]}}}
  spec.update(changes)
  return spec


# ------------------------------------------------------------------ specs (no Ray)


def test_builtin_studies_resolve_at_every_budget_and_count_their_runs():
  assert set(studies.NAMES) >= {"scale", "bottleneck_only", "depth", "sparse", "atari100k",
                                "procgen", "dmc", "compute", "smoke"}
  for name in studies.NAMES:
    for budget in study.BUDGETS:
      spec = study.load(name, budget)
      assert spec.trials(), (name, budget)
  scale = study.load("scale", "paper")
  # 2 agents x 5 bottlenecks x 4 widths x 20 games x 5 seeds.
  assert len(scale.trials()) == 4000
  assert len(study.load("smoke", "smoke").trials()) == 2
  # The laptop scale study: flatten vs GAP at x1..x8 on the five MinAtar games, one seed.
  laptop = study.load("scale", "laptop")
  assert len(laptop.trials()) == 40 and laptop.suite == "minatar"


@pytest.mark.parametrize("change, message", [
    ({"sedes": 3}, "unknown key 'sedes'; accepted: study, description, suite, games, seeds"),
    ({"axes": {"bottleneck": {}}}, "axes.bottleneck: {} is an empty grid"),
    ({"games": []}, "games: is empty"),
    ({"seeds": 0}, "seeds: 0 is not accepted"),
    ({"axes": {"width": {"x/1": []}}}, "label 'x/1' is not accepted"),
    ({"budgets": {"paper": {"gamez": ["band"]}}}, "budgets.paper: unknown key 'gamez'"),
    ({"normalization": "human"}, "normalization: 'human' is not accepted; accepted: references,"),
    ({"references": {"band": [1, 1]}}, "references.band: [1, 1] is not accepted"),
])
def test_bad_spec_structure_is_named(change, message):
  with pytest.raises(study.SpecError, match="study spec x: .*" + _re(message)):
    study.resolve(_spec_dict(**change), "x", "paper")


def _re(text):
  import re  # pylint: disable=g-import-not-at-top
  return re.escape(text)


def test_bad_spec_files_bindings_and_games_are_named(tmp_path):
  with pytest.raises(study.SpecError, match="neither a built-in study nor a spec file.*scale"):
    study.load("scael")
  bad_yaml = _write_spec(tmp_path / "bad.yaml", "study: [unclosed\n")
  with pytest.raises(study.SpecError, match="bad.yaml: not valid YAML"):
    study.load(bad_yaml)
  # gin rejects a binding: the variant and gin's own message are named.
  spec = study.resolve(_spec_dict(gin_bindings=BAND_BINDINGS + ["DQNAgent.learning_rat = 1.0"]),
                       "x")
  with pytest.raises(study.SpecError, match="variant gap: gin rejects.*learning_rat"):
    study.check_runnable(spec, spec.trials(), ["tests.agents.pixel_task"])
  # The Runner's own settings check runs too.
  spec = study.resolve(_spec_dict(gin_bindings=BAND_BINDINGS + ["Runner.agent = 'ppo'"]), "x")
  with pytest.raises(study.SpecError, match="Runner.agent='ppo' is not accepted"):
    study.check_runnable(spec, spec.trials(), ["tests.agents.pixel_task"])
  spec = study.resolve(_spec_dict(suite="atari", games=["Pong", "Breakuot"]), "x")
  with pytest.raises(study.SpecError, match="'Breakuot' is not a atari game.*Breakout"):
    study.check_runnable(spec, spec.trials())
  # A spec may declare itself unavailable (e.g. a plugin's study waiting on an agent).
  spec = study.resolve(_spec_dict(unavailable="needs the agent of plugin P"), "x")
  with pytest.raises(study.SpecError, match="is not available yet: needs the agent of plugin P"):
    study.check_runnable(spec, spec.trials())


def test_the_dmc_study_trains_sac_with_each_bottleneck():
  spec = study.load("dmc", "paper")
  assert spec.unavailable is None
  # 2 bottlenecks x 3 widths x 6 tasks x 5 seeds.
  assert len(spec.trials()) == 180
  infos = study.check_runnable(spec, spec.trials())
  assert {info.agent for info in infos.values()} == {"sac"}
  assert {info.encoder for info in infos.values()} == {"sac"}
  assert sorted(info.width_scale for info in infos.values()) == [1.0, 1.0, 2.0, 2.0, 4.0, 4.0]
  # SAC's own warm-up is read, not the DQN default.
  assert {info.min_replay_history for info in infos.values()} == {10_000}
  # The laptop budget runs DrQ's settings (sac_drq.gin) at 100k environment steps.
  laptop = study.load("dmc", "laptop")
  assert laptop.gin_files[-1] == "sac_drq.gin" and len(laptop.trials()) == 4
  infos = study.check_runnable(laptop, laptop.trials())
  assert {(i.num_iterations, i.training_steps, i.min_replay_history)
          for i in infos.values()} == {(5, 2500, 1000)}


def test_laptop_budgets_need_the_minatar_suite(monkeypatch):
  from tfgap import envs  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(envs, "SUITES", tuple(s for s in envs.SUITES if s != "minatar"))
  spec = study.load("scale", "laptop")
  with pytest.raises(study.SpecError, match="'minatar' is not a registered suite.*MinAtar suite "
                     "is not registered.*--budget smoke"):
    study.check_runnable(spec, spec.trials())


def test_another_plan_in_the_same_root_is_refused_unless_forced(tmp_path):
  spec_path = tmp_path / "s.json"
  spec_path.write_text(json.dumps(_spec_dict()))
  options = study.RunOptions(import_modules=("tests.agents.pixel_task",))
  _, study_dir, plan, _ = study.prepare(str(spec_path), tmp_path / "root", options=options)
  study_dir.root.mkdir(parents=True)
  study_dir.plan_path.write_text(json.dumps(plan))
  spec_path.write_text(json.dumps(_spec_dict(seeds=2)))
  with pytest.raises(study.StudyDirError, match=r"(?s)holds another study plan.*--force.*1 trial\(s\)"
                     r" added: gap/band/seed_1"):
    study.prepare(str(spec_path), tmp_path / "root", options=options)
  forced = study.RunOptions(import_modules=("tests.agents.pixel_task",), force=True)
  study.prepare(str(spec_path), tmp_path / "root", options=forced)


# ------------------------------------------------------------------ on Ray


def _wait_for(predicate, timeout, process=None, what=""):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if predicate():
      return
    if process is not None and process.poll() is not None:
      raise AssertionError(f"study run exited ({process.returncode}) before {what}")
    time.sleep(0.5)
  raise AssertionError(f"timed out waiting for {what}")


def _kill_group(process):
  try:
    os.killpg(process.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass


@pytest.mark.slow
def test_smoke_study_survives_kill_9_resumes_and_its_figure_matches_the_metrics(tmp_path,
                                                                                 capsys):
  root = tmp_path / "smoke"
  args = ["run", "smoke", "--root_dir", str(root), "--budget", "smoke", "--num_cpus", "2",
          "--max_concurrent", "1"] + BAND
  first_trial = root / "trials" / "flatten" / "Pong" / "seed_0"
  with open(tmp_path / "first.log", "w") as log:
    process = _start(*args, log=log)
    try:
      _wait_for(lambda: study.read_state(first_trial).get("state") == "done", 150, process,
                "the first trial finished")
      process.send_signal(signal.SIGKILL)  # The study command only, as `kill -9 PID`.
      process.wait(timeout=30)
    finally:
      time.sleep(2.0)
      _kill_group(process)  # Whatever of its Ray outlived it (nothing, when Ray fate-shares).
  metrics = first_trial / "metrics.jsonl"
  finished_at = metrics.stat().st_mtime_ns
  rows = {r.id: r for r in study.status_rows(root)}
  assert rows["flatten/Pong/seed_0"].state == "done"
  assert rows["gap/Pong/seed_0"].state in ("pending", "failed")

  # Again, in this process this time (as `study run` does it; saves a second interpreter).
  options = study.RunOptions(num_cpus=2, import_modules=("tests.agents.pixel_task",),
                             gin_bindings=tuple(BAND[3::2]))
  rows = study.run("smoke", str(root), "smoke", options)
  out = capsys.readouterr().out
  assert [r.state for r in rows] == ["done", "done"], out
  assert "2 trials, 1 finished, 1 to run" in out
  assert "gap/Pong/seed_0: iteration 2/2 score" in out  # The live progress lines.
  assert "flatten/Pong/seed_0: iteration" not in out
  assert metrics.stat().st_mtime_ns == finished_at  # The finished trial did not run again.
  assert study.read_state(first_trial)["attempts"] == 1
  status = study.format_status(study.status_rows(root))
  assert "2 done" in status and "flatten/Pong/seed_0  done   2/2" in status
  # Running it again has nothing left to do (and starts no Ray).
  rows = study.run("smoke", str(root), "smoke", options)
  assert [r.state for r in rows] == ["done", "done"]
  assert "2 trials, 2 finished, 0 to run" in capsys.readouterr().out

  out = tmp_path / "report"
  report = study.report(str(root), str(out), reps=200)
  for name in ("iqm_vs_variant.png", "iqm_vs_variant.csv", "aggregates.csv", "learning_curves.png",
               "learning_curves.csv", "dormant.png", "dormant.csv", "compute.csv", "study.md"):
    assert (out / name).exists(), name
  # The figure's numbers from the trials' metrics.jsonl directly: each trial's last score,
  # normalised by the study's best score in the game (smoke's normalisation), IQM over runs.
  last = {}
  for variant in ("flatten", "gap"):
    lines = (root / "trials" / variant / "Pong" / "seed_0" / "metrics.jsonl").read_text()
    records = [json.loads(l) for l in lines.splitlines()]
    last[variant] = [r["score"] for r in records if r["score"] is not None][-1]
  best = max(last.values())
  with open(out / "iqm_vs_variant.csv") as f:
    figure = {row["variant"]: float(row["IQM"]) for row in csv.DictReader(f)}
  for variant, score in last.items():
    expected = stats.trim_mean(np.array([[score / best]]), 0.25, axis=None)
    assert figure[variant] == pytest.approx(expected)
  with open(out / "compute.csv") as f:
    compute = {row["variant"]: row for row in csv.DictReader(f)}
  assert int(compute["flatten"]["bottleneck_params"]) == 0
  assert int(compute["gap"]["psi_params"]) < int(compute["flatten"]["psi_params"])
  assert float(compute["gap"]["updates_per_sec"]) > 0
  assert "IQM against variant" in pathlib.Path(report.report).read_text()


@pytest.mark.slow
def test_a_failing_trial_is_retried_then_reported_failed_with_its_error(tmp_path, capsys):
  spec = _spec_dict(axes={"bottleneck": {"broken": ["build_q_network.bottleneck = 'gap'",
                                                    "tests.make_band_env.size = -1"]}})
  spec_path = tmp_path / "broken.json"
  spec_path.write_text(json.dumps(spec))
  options = study.RunOptions(num_cpus=2, retries=1, import_modules=("tests.agents.pixel_task",))
  rows = study.run(str(spec_path), str(tmp_path / "root"), options=options)
  out = capsys.readouterr().out
  assert [r.state for r in rows] == ["failed"]
  assert "broken/band/seed_0: failed, retrying" in out
  # numpy refuses the band task's negative frame size; the message says so.
  assert "broken/band/seed_0: FAILED after its retries: ValueError: " in out
  assert "negative" in rows[0].error
  status = _study("status", str(tmp_path / "root"))
  assert status.returncode == 0, status.stderr
  assert "broken/band/seed_0  failed  0/2" in status.stdout
  assert f"error: {rows[0].error.splitlines()[0]}" in status.stdout
  state = study.read_state(tmp_path / "root" / "trials" / "broken" / "band" / "seed_0")
  assert state["attempts"] == 2 and state["state"] == "error"
