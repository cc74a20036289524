r"""Studies: the paper's experiments as resumable grids of tfgap runs, scheduled with Ray Tune.

    python -m tfgap.launch.study list
    python -m tfgap.launch.study show scale --budget paper        # the grid, run count, estimate
    python -m tfgap.launch.study run scale --root_dir runs/scale --budget laptop
    python -m tfgap.launch.study run my_study.yaml --root_dir runs/mine --address auto \
        --cpus_per_trial 4 --gpus_per_trial 1 --max_concurrent 8
    python -m tfgap.launch.study status runs/scale
    python -m tfgap.launch.study report runs/scale --out report/scale

A study is a spec (a built-in name from `tfgap.launch.studies` or a YAML/JSON file, format in
docs/studies.md): games x seeds x the product of its axes, at a budget. Each combination is a
trial: one ordinary tfgap run (`tfgap.launch.train.train`) in `ROOT/trials/<variant>/<game>/
seed_<n>`, so every trial writes metrics.jsonl, checkpoints/ and config.gin and resumes from its
last checkpoint when it runs again.

Trials run as Ray Tune function trainables: Tune gives each trial the CPUs/GPUs asked for, bounds
concurrency and retries a failed trial (`--retries`), and each retry resumes the run from its own
checkpoint. Which trials are finished is read from the trial directories, never from Tune's
state, so `study run` on the same ROOT after any interruption (kill -9 included) skips finished
trials and resumes the others. ROOT/study.json records the study's plan; a different plan on the
same ROOT is refused unless --force.

Without --address a local Ray starts in this process (loopback only, no dashboard, --num_cpus
cores); with --address auto or ray://host:port the study joins that cluster (ROOT must then be on
a filesystem every node sees).
"""

if __name__ == "__main__":
  # `python -m`: before TensorFlow is imported, which reads its oneDNN and log settings once.
  from tfgap.launch import runtime  # pylint: disable=g-import-not-at-top
  runtime.prepare_process()

import argparse
import contextlib
import copy
import csv
import dataclasses
import errno
import fcntl
import hashlib
import importlib
import itertools
import json
import math
import os
import pathlib
import re
import socket
import sys
import threading
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

from tfgap import checks
from tfgap.launch import studies as builtin

BUDGETS = ("smoke", "laptop", "paper")
# A spec whose bindings set `Runner.env_fn` names this suite: its games are not checked.
CUSTOM_SUITE = "custom"
NORMALIZATIONS = ("references", "max")
SPEC_KEYS = ("study", "description", "suite", "games", "seeds", "gin_files", "gin_bindings",
             "axes", "x_axis", "budgets", "references", "normalization", "unavailable")
BUDGET_KEYS = ("description", "suite", "games", "seeds", "gin_files", "gin_bindings", "axes",
               "references", "normalization")
ADDITION_KEYS = ("gin_files", "gin_bindings")
PLAN_FILE = "study.json"
STATE_FILE = "study_trial.json"
LOG_FILE = "study.log"
TRIALS_DIR = "trials"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]*$")


class SpecError(ValueError):
  """A study spec is malformed or names something tfgap does not have."""


class StudyDirError(ValueError):
  """ROOT holds another study's plan, or another `study run` is using it."""


# ------------------------------------------------------------------ spec


@dataclasses.dataclass(frozen=True)
class Trial:
  """One run of a study: a variant (one value per axis) on one game with one seed."""
  id: str
  variant: str
  labels: Tuple[Tuple[str, str], ...]
  suite: str
  game: str
  seed: int
  gin_files: Tuple[str, ...]
  gin_bindings: Tuple[str, ...]

  def as_dict(self):
    return {"id": self.id, "variant": self.variant, "labels": [list(l) for l in self.labels],
            "suite": self.suite, "game": self.game, "seed": self.seed,
            "gin_files": list(self.gin_files), "gin_bindings": list(self.gin_bindings)}

  @classmethod
  def from_dict(cls, d):
    return cls(id=d["id"], variant=d["variant"], labels=tuple(tuple(l) for l in d["labels"]),
               suite=d["suite"], game=d["game"], seed=int(d["seed"]),
               gin_files=tuple(d["gin_files"]), gin_bindings=tuple(d["gin_bindings"]))


@dataclasses.dataclass
class Spec:
  """A validated study spec at one budget.

  Attributes:
    name: the study's name.
    source: where it came from (built-in name or file path), for messages.
    budget: the budget applied (None for a spec without budgets).
    description: free text.
    suite: the tfgap.envs suite the games belong to.
    games: games or tasks.
    seeds: seeds.
    gin_files: gin files of every trial.
    gin_bindings: gin bindings of every trial.
    axes: {axis: {label: (gin_files, gin_bindings)}}, in order.
    x_axis: (axis, {label: number}) plotted on the figures' x axis, or None.
    references: {game: (low, high)} normalisation references added to tfgap's.
    normalization: "references" (human-normalised Atari, `references` for other games) or
      "max" (each game divided by the best score any trial reached in it).
    unavailable: why the study cannot run yet, or None.
  """
  name: str
  source: str
  budget: Optional[str]
  description: str
  suite: str
  games: List[str]
  seeds: List[int]
  gin_files: List[str]
  gin_bindings: List[str]
  axes: Dict[str, Dict[str, Tuple[List[str], List[str]]]]
  x_axis: Optional[Tuple[str, Dict[str, float]]]
  references: Dict[str, Tuple[float, float]]
  normalization: str
  unavailable: Optional[str]

  def variants(self):
    """[(variant name, ((axis, label), ...))] over the product of the axes, in order."""
    names = list(self.axes)
    out = []
    for combo in itertools.product(*(list(self.axes[a]) for a in names)):
      labels = tuple(zip(names, combo))
      out.append(("_".join(combo) if combo else "base", labels))
    return out

  def trials(self, extra_bindings=()):
    """Every trial of the grid (variants x games x seeds)."""
    from tfgap.launch.studies import TRIAL_DEFAULTS  # pylint: disable=g-import-not-at-top
    out = []
    for variant, labels in self.variants():
      files = list(self.gin_files)
      bindings = list(TRIAL_DEFAULTS) + list(self.gin_bindings)
      for axis, label in labels:
        axis_files, axis_bindings = self.axes[axis][label]
        files += axis_files
        bindings += axis_bindings
      bindings += list(extra_bindings)
      for game in self.games:
        for seed in self.seeds:
          identity = [f"Runner.game = {game!r}", f"Runner.seed = {seed}"]
          if self.suite != CUSTOM_SUITE:
            identity.insert(0, f"Runner.suite = {self.suite!r}")
          out.append(Trial(id=f"{variant}/{game}/seed_{seed}", variant=variant, labels=labels,
                           suite=self.suite, game=game, seed=seed, gin_files=tuple(files),
                           gin_bindings=tuple(bindings + identity)))
    return out


def _err(source, where, message):
  raise SpecError(f"study spec {source}: {where}: {message}")


def _str_list(source, where, value, allow_empty=True):
  if isinstance(value, str):
    value = [value]
  if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
    _err(source, where, f"{value!r} is not accepted; accepted: a list of non-empty strings")
  if not value and not allow_empty:
    _err(source, where, "is empty; accepted: a non-empty list")
  return list(value)


def _check_keys(source, where, mapping, accepted):
  if not isinstance(mapping, dict):
    _err(source, where, f"{mapping!r} is not accepted; accepted: a mapping with keys "
         f"{', '.join(accepted)}")
  for key in mapping:
    if key not in accepted:
      _err(source, where, f"unknown key {key!r}; accepted: {', '.join(accepted)}."
           f"{checks.close_matches(key, accepted)}")


def _addition(source, where, value):
  """An axis value: a list of gin bindings, or {gin_files: [...], gin_bindings: [...]}."""
  if isinstance(value, (list, str)):
    return [], _str_list(source, where, value)
  if value is None:
    return [], []
  _check_keys(source, where, value, ADDITION_KEYS)
  return (_str_list(source, f"{where}.gin_files", value.get("gin_files", [])),
          _str_list(source, f"{where}.gin_bindings", value.get("gin_bindings", [])))


def _seeds(source, where, value):
  if isinstance(value, int) and not isinstance(value, bool):
    if value < 1:
      _err(source, where, f"{value!r} is not accepted; accepted: a number of seeds >= 1 or a "
           "non-empty list of seeds >= 0")
    return list(range(value))
  if (not isinstance(value, list) or not value or
      not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)):
    _err(source, where, f"{value!r} is not accepted; accepted: a number of seeds >= 1 or a "
         "non-empty list of seeds >= 0")
  if len(set(value)) != len(value):
    _err(source, where, f"{value!r} repeats a seed")
  return list(value)


def _references(source, where, value):
  if not isinstance(value, dict):
    _err(source, where, f"{value!r} is not accepted; accepted: a mapping {{game: [low, high]}}")
  out = {}
  for game, pair in value.items():
    ok = (isinstance(pair, (list, tuple)) and len(pair) == 2 and
          all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
              for v in pair) and pair[0] != pair[1])
    if not ok:
      _err(source, f"{where}.{game}", f"{pair!r} is not accepted; accepted: [low, high] with two "
           "different finite numbers (random score, reference score)")
    out[str(game)] = (float(pair[0]), float(pair[1]))
  return out


def load_spec_dict(source):
  """The raw spec dict of a built-in study name or a YAML/JSON file (not validated)."""
  spec = builtin.get(source)
  if spec is not None:
    return spec, f"'{source}' (built-in)"
  path = pathlib.Path(source).expanduser()
  if not path.is_file():
    raise SpecError(f"study {source!r} is neither a built-in study nor a spec file; accepted: "
                    f"one of {', '.join(builtin.NAMES)}, or a path to a .yaml/.yml/.json spec "
                    f"(docs/studies.md).{checks.close_matches(source, builtin.NAMES)}")
  import yaml  # pylint: disable=g-import-not-at-top
  try:
    text = path.read_text(encoding="utf-8")
    spec = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
  except (OSError, UnicodeDecodeError) as err:
    raise SpecError(f"study spec {path}: cannot be read ({err})") from err
  except (ValueError, yaml.YAMLError) as err:
    raise SpecError(f"study spec {path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}"
                    f" ({err})") from err
  if not isinstance(spec, dict):
    raise SpecError(f"study spec {path}: the file holds a {type(spec).__name__}; accepted: a "
                    f"mapping with keys {', '.join(SPEC_KEYS)}")
  spec.setdefault("study", path.stem)
  return spec, str(path)


def resolve(spec, source, budget=None):
  """Validates a raw spec dict and applies a budget; returns a `Spec`.

  Structure, names and references are checked here (pure Python); gin bindings and games are
  checked by `check_runnable`.

  Raises:
    SpecError: naming the key, the offending value and what is accepted.
  """
  _check_keys(source, "top level", spec, SPEC_KEYS)
  for key in ("suite", "games", "seeds"):
    if key not in spec:
      _err(source, "top level", f"missing key {key!r} (every spec needs suite, games, seeds)")
  spec = copy.deepcopy(spec)
  budgets = spec.pop("budgets", None)
  if budgets is not None:
    _check_keys(source, "budgets", budgets, BUDGETS)
    if budget is None:
      _err(source, "budgets", f"the spec has budgets {', '.join(budgets)}; choose one with "
           "--budget")
    if budget not in budgets:
      _err(source, "budgets", f"has no budget {budget!r}; accepted: {', '.join(budgets)}")
    overrides = budgets[budget] or {}
    _check_keys(source, f"budgets.{budget}", overrides, BUDGET_KEYS)
  else:
    overrides = {}
    budget = None
  where = f"budgets.{budget}" if budget else "top level"

  axes_raw = spec.get("axes") or {}
  _check_keys(source, "axes", axes_raw, list(axes_raw))
  axes = {}
  for axis, values in axes_raw.items():
    if not isinstance(axis, str) or not _LABEL.match(axis):
      _err(source, "axes", f"axis name {axis!r} is not accepted; accepted: letters, digits, "
           "'.', '+', '=', '-'")
    if not isinstance(values, dict) or not values:
      _err(source, f"axes.{axis}", f"{values!r} is an empty grid; accepted: a non-empty mapping "
           "{label: [gin bindings]} or {label: {gin_files: [...], gin_bindings: [...]}}")
    axes[axis] = {}
    for label, value in values.items():
      label = str(label)
      if not _LABEL.match(label):
        _err(source, f"axes.{axis}", f"label {label!r} is not accepted (it names a folder); "
             "accepted: letters, digits, '_', '.', '+', '=', '-'")
      axes[axis][label] = _addition(source, f"axes.{axis}.{label}", value)
  restrict = overrides.get("axes") or {}
  if not isinstance(restrict, dict):
    _err(source, f"{where}.axes", f"{restrict!r} is not accepted; accepted: {{axis: [labels]}}")
  for axis, labels in restrict.items():
    if axis not in axes:
      _err(source, f"{where}.axes", f"unknown axis {axis!r}; accepted: {', '.join(axes)}")
    labels = _str_list(source, f"{where}.axes.{axis}", labels, allow_empty=False)
    for label in labels:
      if label not in axes[axis]:
        _err(source, f"{where}.axes.{axis}", f"unknown label {label!r}; accepted: "
             f"{', '.join(axes[axis])}")
    axes[axis] = {label: axes[axis][label] for label in labels}

  def pick(key, default=None):
    return overrides[key] if key in overrides else spec.get(key, default)

  suite = pick("suite")
  if not isinstance(suite, str) or not suite:
    _err(source, f"{where}.suite", f"{suite!r} is not accepted; accepted: a tfgap.envs suite")
  games = _str_list(source, f"{where}.games", pick("games"), allow_empty=False)
  if len(set(games)) != len(games):
    _err(source, f"{where}.games", f"{games!r} repeats a game")
  seeds = _seeds(source, f"{where}.seeds", pick("seeds"))
  gin_files = (_str_list(source, "gin_files", spec.get("gin_files", [])) +
               _str_list(source, f"{where}.gin_files", overrides.get("gin_files", [])))
  gin_bindings = (_str_list(source, "gin_bindings", spec.get("gin_bindings", [])) +
                  _str_list(source, f"{where}.gin_bindings", overrides.get("gin_bindings", [])))
  references = _references(source, f"{where}.references", pick("references", {}) or {})
  normalization = pick("normalization", "references")
  if normalization not in NORMALIZATIONS:
    _err(source, f"{where}.normalization", f"{normalization!r} is not accepted; accepted: "
         f"{', '.join(NORMALIZATIONS)}")
  x_axis = None
  if spec.get("x_axis"):
    raw = spec["x_axis"]
    if not isinstance(raw, dict) or len(raw) != 1:
      _err(source, "x_axis", f"{raw!r} is not accepted; accepted: {{axis: {{label: number}}}} "
           "for one axis")
    (axis, values), = raw.items()
    if axis not in axes:
      _err(source, "x_axis", f"unknown axis {axis!r}; accepted: {', '.join(axes)}")
    if not isinstance(values, dict):
      _err(source, f"x_axis.{axis}", f"{values!r} is not accepted; accepted: {{label: number}}")
    for label in axes[axis]:
      value = values.get(label)
      if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        _err(source, f"x_axis.{axis}", f"label {label!r} needs a number > 0 (got {value!r})")
    x_axis = (axis, {label: float(values[label]) for label in axes[axis]})
  name = spec.get("study")
  if not isinstance(name, str) or not _LABEL.match(name):
    _err(source, "study", f"{name!r} is not accepted; accepted: a name of letters, digits, '_', "
         "'.', '+', '=', '-'")
  unavailable = spec.get("unavailable")
  return Spec(name=name, source=source, budget=budget,
              description=str(pick("description", "") or ""), suite=suite, games=games,
              seeds=seeds, gin_files=gin_files, gin_bindings=gin_bindings, axes=axes,
              x_axis=x_axis, references=references, normalization=normalization,
              unavailable=str(unavailable) if unavailable else None)


def load(source, budget=None):
  """`resolve(*load_spec_dict(source), budget)`."""
  raw, where = load_spec_dict(source)
  return resolve(raw, where, budget)


def _check_games(spec):
  """Every game must be one of the suite's (names the closest ones otherwise)."""
  from tfgap import envs  # pylint: disable=g-import-not-at-top
  from tfgap.envs import games as games_lib  # pylint: disable=g-import-not-at-top
  if spec.suite == CUSTOM_SUITE:
    return
  if spec.suite not in envs.SUITES:
    hint = ""
    if spec.suite == "minatar":
      hint = (" The MinAtar suite is not registered in this tfgap (tfgap.envs.SUITES); the "
              "laptop budgets need it: use --budget smoke or --budget paper until it is.")
    _err(spec.source, "suite", f"{spec.suite!r} is not a registered suite; accepted: "
         f"{', '.join(envs.SUITES)}, or {CUSTOM_SUITE!r} when the bindings set Runner.env_fn."
         f"{hint}")
  resolvers = {"atari": "resolve_atari_game", "atari100k": "resolve_atari_game",
               "procgen": "resolve_procgen_game", "dmc": "resolve_dmc_task",
               "minatar": "resolve_minatar_game"}
  resolver = getattr(games_lib, resolvers.get(spec.suite, ""), None)
  for game in spec.games:
    try:
      if resolver is not None:
        resolver(game)
      elif game not in games_lib.list_games(spec.suite):
        checks.reject("game", game, f"a game of suite {spec.suite!r}")
    except ValueError as err:
      _err(spec.source, "games", f"{game!r} is not a {spec.suite} game: {err}")


@dataclasses.dataclass
class VariantInfo:
  """What gin says one variant runs: its budget and the numbers the cost estimate needs."""
  num_iterations: int
  training_steps: int
  agent: str
  encoder: str
  width_scale: float
  blocks_per_stack: int
  min_replay_history: int
  update_period: int
  evaluation_steps: int


_AGENT_CLASSES = {"dqn": "DQNAgent", "rainbow": "RainbowAgent", "der": "DERAgent",
                  "sac": "SACAgent"}


def _query(name, default):
  import gin  # pylint: disable=g-import-not-at-top
  try:
    value = gin.query_parameter(name)
  except (ValueError, KeyError):
    return default
  return default if value is None or hasattr(value, "selector") else value


def check_runnable(spec, trials, import_modules=()):
  """Parses every variant's gin config and checks the games; returns {variant: VariantInfo}.

  Imports TensorFlow (the gin configurables are tfgap's builders and agents).

  Raises:
    SpecError: the study is unavailable, a game is not in the suite, or gin (or the Runner's
      settings check) rejects a variant's files or bindings.
  """
  if spec.unavailable:
    raise SpecError(f"study {spec.name!r} is not available yet: {spec.unavailable}")
  _check_games(spec)
  import_extra_modules(import_modules)
  import gin  # pylint: disable=g-import-not-at-top
  from tfgap.launch import experiment  # pylint: disable=g-import-not-at-top
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  infos = {}
  for trial in trials:
    if trial.variant in infos:
      continue
    gin.clear_config()
    try:
      train.parse_config(list(trial.gin_files), list(trial.gin_bindings))
      config = experiment.configured()
      agent_class = _AGENT_CLASSES.get(config.agent, "DQNAgent")
      infos[trial.variant] = VariantInfo(
          num_iterations=config.num_iterations, training_steps=config.training_steps,
          agent=config.agent, encoder=str(_query("%ENCODER", "nature")),
          width_scale=float(_query("%WIDTH_SCALE", 1.0)),
          blocks_per_stack=int(_query("build_q_network.blocks_per_stack", 2)),
          min_replay_history=int(_query(f"{agent_class}.min_replay_history", 20_000)),
          update_period=int(_query(f"{agent_class}.update_period", 4)),
          evaluation_steps=_evaluation_steps(config))
    except (ValueError, TypeError, KeyError) as err:
      _err(spec.source, f"variant {trial.variant}",
           f"gin rejects its files {list(trial.gin_files)} / bindings: {err}")
    finally:
      gin.clear_config()
  return infos


def _evaluation_steps(config):
  """Agent steps a run spends evaluating (an episode counted as 2,000 steps when unknown)."""
  if not config.evaluates:
    return 0
  per_evaluation = (config.evaluation_episodes * 2_000 if config.evaluation_episodes
                    else config.evaluation_steps)
  return per_evaluation * math.ceil(config.num_iterations / config.eval_period)


def import_extra_modules(names):
  """Imports modules that register gin configurables (e.g. a custom env_fn)."""
  for name in names:
    try:
      importlib.import_module(name)
    except ImportError as err:
      raise SpecError(f"--import_module {name!r} cannot be imported ({err}); accepted: a module "
                      "importable here and on every Ray node") from err


# ------------------------------------------------------------------ cost estimate

# Rough single-GPU rates behind `estimate` (assumptions, not measurements): an emulator plus the
# compiled act step runs ~1,500 agent steps/s; a batch-32 update of a x1 network runs ~400/s
# (Nature) or ~250/s (Impala), categorical (Rainbow/DER) networks at 0.8x; a wider encoder slows
# updates by the factor below (its FLOPs grow ~width^2, a GPU hides part of it); deeper Impala
# stacks slow them in proportion to the residual blocks. SAC's batch-256 update of actor, twin
# critics and encoder ('sac' encoder) is taken at ~150/s.
_ENV_STEPS_PER_SEC = 1_500.0
_UPDATES_PER_SEC = {"nature": 400.0, "impala": 250.0, "minatar": 1_000.0, "sac": 150.0}
_WIDTH_SLOWDOWN = {1.0: 1.0, 2.0: 1.4, 4.0: 2.5, 8.0: 6.0}


def estimate(trials, infos):
  """(runs, agent steps, GPU-days) of a plan, from `_ENV_STEPS_PER_SEC` & co. (rough)."""
  seconds = steps_total = 0.0
  for trial in trials:
    info = infos[trial.variant]
    steps = info.num_iterations * info.training_steps
    updates = max(0, steps - info.min_replay_history) / max(1, info.update_period)
    rate = _UPDATES_PER_SEC.get(info.encoder, 300.0)
    if info.agent in ("rainbow", "der"):
      rate *= 0.8
    rate /= _WIDTH_SLOWDOWN.get(info.width_scale, max(1.0, info.width_scale * 0.75))
    if info.encoder == "impala":
      rate /= max(1.0, info.blocks_per_stack / 2)
    seconds += (steps + info.evaluation_steps) / _ENV_STEPS_PER_SEC + updates / rate
    steps_total += steps
  return len(trials), steps_total, seconds / 86_400.0


# ------------------------------------------------------------------ the study directory


class StudyDir:
  """ROOT of a study: study.json (the plan), trials/ (one tfgap run each), ray/ (Tune's files)."""

  def __init__(self, root):
    self.root = pathlib.Path(root).expanduser().resolve()
    self.plan_path = self.root / PLAN_FILE
    self.trials_root = self.root / TRIALS_DIR
    self.ray_dir = self.root / "ray"
    self.lock_path = self.root / ".study.lock"

  def trial_dir(self, trial_id):
    return self.trials_root / trial_id

  def load_plan(self):
    """The recorded plan dict, or None when ROOT holds no study."""
    if not self.plan_path.exists():
      return None
    try:
      return json.loads(self.plan_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
      raise StudyDirError(f"{self.plan_path} is unreadable ({err}); move it away or pick another "
                          "--root_dir") from err

  def trials(self):
    plan = self.load_plan()
    if plan is None:
      raise StudyDirError(f"{self.root} holds no study ({PLAN_FILE} is missing); accepted: a "
                          "--root_dir written by `tfgap.launch.study run`")
    return plan, [Trial.from_dict(t) for t in plan["trials"]]

  @contextlib.contextmanager
  def lock(self):
    """Held by `study run` (flock; the kernel drops it when the process dies, kill -9 too)."""
    self.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "pid unknown"
      os.close(fd)
      if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise StudyDirError(f"{self.root} is in use by another `study run` ({holder}); wait for "
                            "it, stop it, or pick another --root_dir") from None
      raise
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode())
    try:
      yield
    finally:
      fcntl.flock(fd, fcntl.LOCK_UN)
      os.close(fd)

  def driver_running(self):
    return _locked(self.lock_path)


def _locked(path):
  """Whether someone holds an flock on `path` (a shared probe that is released at once)."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return False
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except OSError:
    return True
  finally:
    os.close(fd)  # Closing releases the probe's lock.
  return False


def plan_dict(spec, trials, infos, import_modules, extra_bindings):
  """What study.json records; `plan_key` of it decides whether a ROOT holds the same study."""
  return {
      "study": spec.name, "source": spec.source, "budget": spec.budget,
      "description": spec.description, "suite": spec.suite, "games": spec.games,
      "seeds": spec.seeds, "axes": {a: list(v) for a, v in spec.axes.items()},
      "x_axis": list(spec.x_axis) if spec.x_axis else None,
      "references": {g: list(v) for g, v in spec.references.items()},
      "normalization": spec.normalization, "import_modules": list(import_modules),
      "extra_bindings": list(extra_bindings),
      "num_iterations": {v: i.num_iterations for v, i in infos.items()},
      "trials": [t.as_dict() for t in trials],
  }


def plan_key(plan):
  """A digest of what the trials run (their ids, gin files and bindings, imported modules)."""
  core = {"trials": [[t["id"], t["gin_files"], t["gin_bindings"]] for t in plan["trials"]],
          "import_modules": plan.get("import_modules", [])}
  return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()


def plan_difference(old, new):
  """Lines saying how two plans differ (trials added, removed, changed)."""
  before = {t["id"]: t for t in old["trials"]}
  after = {t["id"]: t for t in new["trials"]}
  lines = []
  added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
  changed = sorted(i for i in set(before) & set(after)
                   if (before[i]["gin_files"], before[i]["gin_bindings"]) !=
                   (after[i]["gin_files"], after[i]["gin_bindings"]))
  for what, ids in (("added", added), ("removed", removed), ("changed", changed)):
    if ids:
      shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
      lines.append(f"  {len(ids)} trial(s) {what}: {shown}")
  for trial_id in changed[:1]:
    old_b, new_b = before[trial_id]["gin_bindings"], after[trial_id]["gin_bindings"]
    lines += [f"    - {b}" for b in old_b if b not in new_b]
    lines += [f"    + {b}" for b in new_b if b not in old_b]
  if old.get("import_modules", []) != new.get("import_modules", []):
    lines.append(f"  imported modules: {old.get('import_modules')} -> "
                 f"{new.get('import_modules')}")
  return lines


# ------------------------------------------------------------------ trial state


def read_state(trial_dir):
  path = pathlib.Path(trial_dir) / STATE_FILE
  try:
    return json.loads(path.read_text(encoding="utf-8"))
  except (OSError, ValueError):
    return {}


def _write_state(trial_dir, state):
  from tfgap.launch import common  # pylint: disable=g-import-not-at-top
  common.write_atomically(pathlib.Path(trial_dir) / STATE_FILE, json.dumps(state, indent=1))


def read_records(trial_dir):
  """The trial's metrics.jsonl records (unparsable lines skipped), by iteration."""
  path = pathlib.Path(trial_dir) / "metrics.jsonl"
  records = {}
  try:
    lines = path.read_text(encoding="utf-8").splitlines()
  except (OSError, UnicodeDecodeError):
    return []
  for line in lines:
    try:
      record = json.loads(line)
    except ValueError:
      continue
    if isinstance(record, dict) and isinstance(record.get("iteration"), int):
      records[record["iteration"]] = record
  return [records[i] for i in sorted(records)]


def score_of(record):
  from tfgap.analysis import aggregate as agg  # pylint: disable=g-import-not-at-top
  return agg.score_of(record)


def trial_finished(trial_dir, num_iterations):
  """Finished: the trial's last attempt returned and metrics.jsonl has every iteration."""
  state = read_state(trial_dir)
  records = read_records(trial_dir)
  return state.get("state") == "done" and len(records) >= num_iterations


# ------------------------------------------------------------------ the trainable (Ray worker)


_LOCK_WAIT_SECONDS = 120.0


def _trainable(config):
  """Runs one trial in a Ray Tune worker; reports every new metrics.jsonl line to Tune."""
  from tfgap.launch import runtime  # pylint: disable=g-import-not-at-top
  trial, options = Trial.from_dict(config["trial"]), config["options"]
  runtime.prepare_process(renderer=trial.suite == "dmc")
  root = pathlib.Path(options["root"]) / TRIALS_DIR / trial.id
  root.mkdir(parents=True, exist_ok=True)
  state = read_state(root)
  state.update(state="running", attempts=int(state.get("attempts", 0)) + 1,
               host=socket.gethostname(), pid=os.getpid(), started=time.time(), error=None)
  _write_state(root, state)
  log = open(root / LOG_FILE, "a", encoding="utf-8", buffering=1)  # pylint: disable=consider-using-with
  log.write(f"==== attempt {state['attempts']} on {state['host']} pid {state['pid']} at "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
  try:
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
      _run_trial(trial, options, root, config["trial"]["num_iterations"])
  except BaseException as err:  # Recorded for `status`, then Tune retries or marks it failed.
    state.update(state="error", error=f"{type(err).__name__}: {err}".strip()[:2000],
                 finished=time.time())
    log.write(traceback.format_exc())
    _write_state(root, state)
    raise
  finally:
    log.close()
  state.update(state="done", finished=time.time())
  _write_state(root, state)


def _run_trial(trial, options, root, config_iterations):
  import_extra_modules(options.get("import_modules", ()))
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from ray import tune  # pylint: disable=g-import-not-at-top
  from tfgap.launch import rundir  # pylint: disable=g-import-not-at-top
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  threads = int(math.ceil(options.get("cpus_per_trial") or 0))
  if threads:  # TensorFlow would otherwise size its pools by the machine, not by the trial.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
  outcome = {}

  def work():
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while True:
      try:
        train.train(str(root), list(trial.gin_files), list(trial.gin_bindings),
                    force=bool(options.get("force")))
        return
      except rundir.RunDirError as err:
        # A trainer of an interrupted study may still be exiting (or `status` probing the lock).
        if "in use" not in str(err) or time.monotonic() > deadline:
          outcome["error"] = err
          return
        time.sleep(1.0)
      except BaseException as err:  # pylint: disable=broad-except
        outcome["error"] = err
        return

  worker = threading.Thread(target=work, name=f"trial {trial.id}", daemon=True)
  worker.start()
  reported = -1
  num_iterations = int(config_iterations)
  while True:
    alive = worker.is_alive()
    for record in read_records(root):
      if record["iteration"] > reported:
        reported = record["iteration"]
        score = score_of(record)
        tune.report({"trial_id": trial.id, "study_iteration": reported + 1,
                     "num_iterations": num_iterations,
                     "score": float("nan") if score is None else float(score),
                     "env_steps": int(record.get("env_steps", 0)),
                     "steps_per_sec": float(record.get("steps_per_sec") or 0.0)})
    if not alive:
      break
    worker.join(timeout=1.0)
  if "error" in outcome:
    raise outcome["error"]


# ------------------------------------------------------------------ run


@dataclasses.dataclass
class RunOptions:
  """Settings of `study run` (see the command-line flags)."""
  address: Optional[str] = None
  num_cpus: Optional[int] = None
  num_gpus: Optional[int] = None
  max_concurrent: Optional[int] = None
  cpus_per_trial: float = 1.0
  gpus_per_trial: float = 0.0
  retries: int = 2
  force: bool = False
  import_modules: Tuple[str, ...] = ()
  gin_bindings: Tuple[str, ...] = ()
  object_store_mb: int = 256


def prepare(source, root_dir, budget=None, options=None):
  """Loads and checks the spec, then records its plan in root_dir (or checks it is the same).

  Returns:
    (Spec, StudyDir, plan dict, [Trial]).

  Raises:
    SpecError, StudyDirError.
  """
  options = options or RunOptions()
  study_dir = StudyDir(root_dir)
  recorded = study_dir.load_plan()
  if budget is None:
    budget = (recorded or {}).get("budget") or "laptop"
  raw, where = load_spec_dict(source)
  if "budgets" not in raw:
    budget = None
  spec = resolve(raw, where, budget)
  trials = spec.trials(options.gin_bindings)
  infos = check_runnable(spec, trials, options.import_modules)
  plan = plan_dict(spec, trials, infos, options.import_modules, options.gin_bindings)
  if recorded is not None and plan_key(recorded) != plan_key(plan):
    difference = "\n".join(plan_difference(recorded, plan))
    if not options.force:
      raise StudyDirError(
          f"{study_dir.root} holds another study plan ({recorded.get('study')}, budget "
          f"{recorded.get('budget') or '-'}); rerun with --force to replace it (trials keep their "
          f"folders and continue with the new settings), or pick another --root_dir. "
          f"Differences:\n{difference}")
    print(f"--force: replacing the plan in {study_dir.plan_path}:\n{difference}", flush=True)
  return spec, study_dir, plan, trials


def _init_ray(options):
  """Joins `options.address`, or starts a private local Ray."""
  import logging  # pylint: disable=g-import-not-at-top
  import warnings  # pylint: disable=g-import-not-at-top
  # Ray's own console output: Tune's legacy reporter (silent at verbose=0; the study prints its
  # progress lines), and no notices about future defaults that do not concern a study.
  os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
  os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
  warnings.filterwarnings("ignore", category=FutureWarning, module=r"ray\..*")
  import ray  # pylint: disable=g-import-not-at-top
  if options.address:
    ray.init(address=options.address, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=True)
    return ray
  # A private, light local Ray: loopback only, no dashboard, no usage report.
  os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
  ray.init(num_cpus=options.num_cpus or os.cpu_count(), num_gpus=options.num_gpus,
           include_dashboard=False, dashboard_host="127.0.0.1",
           object_store_memory=options.object_store_mb * 1024 * 1024,
           logging_level=logging.WARNING, log_to_driver=True,
           _node_ip_address="127.0.0.1")
  return ray


def _progress_callback(total, done_before):
  from ray import tune  # pylint: disable=g-import-not-at-top

  class Progress(tune.Callback):
    """One console line per trial iteration, and one per finished/failed/retried trial."""

    def __init__(self):
      self.done = done_before
      self.failed = 0

    def _line(self, text):
      print(f"[{self.done}/{total} done, {self.failed} failed] {text}", flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
      del iteration, trials, info
      score = result.get("score")
      score = "-" if score is None or (isinstance(score, float) and math.isnan(score)) else (
          f"{score:.2f}")
      self._line(f"{trial.config['trial']['id']}: iteration {result.get('study_iteration')}/"
                 f"{result.get('num_iterations')} score {score} env steps "
                 f"{result.get('env_steps')} ({result.get('steps_per_sec', 0):.0f} steps/s)")

    def on_trial_complete(self, iteration, trials, trial, **info):
      del iteration, trials, info
      self.done += 1
      self._line(f"{trial.config['trial']['id']}: finished")

    def on_trial_recover(self, iteration, trials, trial, **info):
      del iteration, trials, info
      self._line(f"{trial.config['trial']['id']}: failed, retrying (resumes from its last "
                 f"checkpoint): {_trial_error(trial)}")

    def on_trial_error(self, iteration, trials, trial, **info):
      del iteration, trials, info
      self.failed += 1
      self._line(f"{trial.config['trial']['id']}: FAILED after its retries: "
                 f"{_trial_error(trial)}")

  return Progress()


def _trial_error(trial):
  state = read_state(pathlib.Path(trial.config["options"]["root"]) / TRIALS_DIR /
                     trial.config["trial"]["id"])
  return (state.get("error") or "see the trial's study.log").splitlines()[0][:300]


def run(source, root_dir, budget=None, options=None):
  """`study run`: schedules the unfinished trials of a study on Ray; returns the status rows.

  Raises:
    SpecError, StudyDirError: before anything runs.
  """
  options = options or RunOptions()
  spec, study_dir, plan, trials = prepare(source, root_dir, budget, options)
  with study_dir.lock():
    from tfgap.launch import common  # pylint: disable=g-import-not-at-top
    common.write_atomically(study_dir.plan_path, json.dumps(plan, indent=1))
    iterations = plan["num_iterations"]
    pending = [t for t in trials
               if not trial_finished(study_dir.trial_dir(t.id), iterations[t.variant])]
    done = len(trials) - len(pending)
    print(f"Study {spec.name} (budget {spec.budget or '-'}): {len(trials)} trials, {done} "
          f"finished, {len(pending)} to run, in {study_dir.root}", flush=True)
    if pending:
      _tune(study_dir, plan, pending, options, done, len(trials))
  rows = status_rows(study_dir.root)
  print(format_status(rows), flush=True)
  return rows


def _tune(study_dir, plan, pending, options, done, total):
  ray = _init_ray(options)
  from ray import tune  # pylint: disable=g-import-not-at-top
  try:
    resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
    trainable = tune.with_resources(_trainable, resources)
    base = {"root": str(study_dir.root), "force": options.force,
            "import_modules": list(options.import_modules),
            "cpus_per_trial": options.cpus_per_trial}
    jobs = [dict(t.as_dict(), num_iterations=plan["num_iterations"][t.variant])
            for t in pending]
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(jobs), "options": base},
        tune_config=tune.TuneConfig(max_concurrent_trials=options.max_concurrent,
                                    num_samples=1, reuse_actors=False),
        run_config=tune.RunConfig(
            name=time.strftime("run-%Y%m%d-%H%M%S"), storage_path=str(study_dir.ray_dir),
            failure_config=tune.FailureConfig(max_failures=options.retries),
            callbacks=[_progress_callback(total, done)], verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    tuner.fit()
  finally:
    ray.shutdown()


# ------------------------------------------------------------------ status


@dataclasses.dataclass
class TrialStatus:
  """One row of `study status`."""
  id: str
  state: str
  iterations: int
  num_iterations: int
  last_score: Optional[float]
  attempts: int
  error: Optional[str]


def status_rows(root_dir):
  """The state of every trial: done / running / failed / pending (from the trial folders)."""
  study_dir = StudyDir(root_dir)
  plan, trials = study_dir.trials()
  driver = study_dir.driver_running()
  rows = []
  for trial in trials:
    folder = study_dir.trial_dir(trial.id)
    state = read_state(folder)
    records = read_records(folder)
    num_iterations = int(plan["num_iterations"].get(trial.variant, 0))
    scores = [score_of(r) for r in records if score_of(r) is not None]
    if state.get("state") == "done" and len(records) >= num_iterations:
      what = "done"
    elif _locked(folder / ".lock"):
      what = "running"
    elif state.get("state") == "error":
      what = "retrying" if driver else "failed"
    else:
      what = "pending"
    rows.append(TrialStatus(id=trial.id, state=what, iterations=len(records),
                            num_iterations=num_iterations,
                            last_score=scores[-1] if scores else None,
                            attempts=int(state.get("attempts", 0)),
                            error=state.get("error") if what in ("failed", "retrying") else None))
  return rows


def format_status(rows):
  """A plain-text table of status rows, with a count per state."""
  headers = ("trial", "state", "iterations", "last score", "attempts")
  table = [(r.id, r.state, f"{r.iterations}/{r.num_iterations}",
            "-" if r.last_score is None else f"{r.last_score:.2f}", str(r.attempts))
           for r in rows]
  widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
            for i, h in enumerate(headers)]
  lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
  lines.append("  ".join("-" * w for w in widths))
  for row, r in zip(table, rows):
    lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    if r.error:
      lines.append(f"    error: {r.error.splitlines()[0][:200]}")
  counts = {}
  for r in rows:
    counts[r.state] = counts.get(r.state, 0) + 1
  lines.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials")
  return "\n".join(lines)


# ------------------------------------------------------------------ report



def report(root_dir, out, reps=2000, seed=0):
  """`study report`: the study's figures, CSVs and markdown (tfgap.launch.studies.report)."""
  from tfgap.launch.studies import report as report_lib  # pylint: disable=g-import-not-at-top
  return report_lib.write_study_report(root_dir, out, reps=reps, seed=seed)


# ------------------------------------------------------------------ command line


def _show(source, budget, import_modules, gin_bindings):
  raw, where = load_spec_dict(source)
  if "budgets" not in raw:
    budget = None
  elif budget is None:
    budget = "paper"
  spec = resolve(raw, where, budget)
  trials = spec.trials(gin_bindings)
  lines = [f"study {spec.name} ({spec.source}), budget {spec.budget or '-'}",
           f"  {spec.description}" if spec.description else "",
           f"  suite {spec.suite}: {len(spec.games)} games ({', '.join(spec.games)})",
           f"  seeds: {spec.seeds}"]
  for axis, values in spec.axes.items():
    lines.append(f"  axis {axis}: {', '.join(values)}")
  lines.append(f"  trials: {len(trials)} = {len(spec.variants())} variants x {len(spec.games)} "
               f"games x {len(spec.seeds)} seeds")
  if spec.unavailable:
    lines.append(f"  NOT AVAILABLE YET: {spec.unavailable}")
    return "\n".join(l for l in lines if l)
  infos = check_runnable(spec, trials, import_modules)
  runs, steps, gpu_days = estimate(trials, infos)
  lines.append(f"  agent steps: {steps:,.0f} in all; estimate (rough, from assumed single-GPU "
               f"rates in tfgap/launch/study.py): {gpu_days:,.1f} GPU-days")
  example = trials[0]
  lines.append(f"  first trial {example.id}:\n    gin files: {list(example.gin_files)}\n"
               "    bindings:\n" + "\n".join(f"      {b}" for b in example.gin_bindings))
  return "\n".join(l for l in lines if l)


def _list():
  lines = ["built-in studies (trials per budget: smoke / laptop / paper):"]
  for name in builtin.NAMES:
    raw = builtin.get(name)
    counts = []
    for budget in BUDGETS:
      spec = resolve(raw, name, budget)
      counts.append(str(len(spec.trials())))
    note = " (not available yet)" if raw.get("unavailable") else ""
    lines.append(f"  {name:16s} {' / '.join(counts):>22s}  {raw.get('description', '')}{note}")
  return "\n".join(lines)


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog="python -m tfgap.launch.study",
      description="Run the paper's studies (grids of tfgap runs) on Ray, resumably; show their "
                  "status; write their figures. See docs/studies.md.")
  sub = parser.add_subparsers(dest="command", required=True)

  def spec_flags(p):
    p.add_argument("--budget", choices=BUDGETS, default=None,
                   help="budget of the study (run: the root_dir's recorded one, else laptop; "
                        "show: paper)")
    p.add_argument("--import_module", action="append", default=[],
                   help="module to import first (registers gin configurables, e.g. a custom "
                        "env_fn); repeatable")
    p.add_argument("--gin_bindings", action="append", default=[],
                   help="extra gin binding for every trial; repeatable")

  p = sub.add_parser("run", help="run (or resume) a study")
  p.add_argument("study", help=f"built-in study ({', '.join(builtin.NAMES)}) or spec file")
  p.add_argument("--root_dir", required=True, help="the study's folder (resumed if it exists)")
  spec_flags(p)
  p.add_argument("--address", default=None,
                 help="Ray cluster to join: auto or ray://host:port (default: a local Ray)")
  p.add_argument("--num_cpus", type=int, default=None,
                 help="CPUs of the local Ray (default: the machine's cores)")
  p.add_argument("--num_gpus", type=int, default=None,
                 help="GPUs of the local Ray (default: detected)")
  p.add_argument("--max_concurrent", type=int, default=None, help="trials at once (default: "
                 "as many as the resources allow)")
  p.add_argument("--cpus_per_trial", type=float, default=1.0, help="CPUs each trial asks for")
  p.add_argument("--gpus_per_trial", type=float, default=0.0, help="GPUs each trial asks for")
  p.add_argument("--retries", type=int, default=2,
                 help="times a failed trial is retried (each retry resumes its checkpoint)")
  p.add_argument("--force", action="store_true",
                 help="accept a root_dir that holds another plan of the study")

  p = sub.add_parser("status", help="table of the trials of a study folder")
  p.add_argument("root_dir")

  p = sub.add_parser("report", help="figures, CSVs and markdown of a study folder")
  p.add_argument("root_dir")
  p.add_argument("--out", required=True, help="output folder")
  p.add_argument("--reps", type=int, default=2000, help="bootstrap replications")
  p.add_argument("--seed", type=int, default=0, help="bootstrap seed")

  p = sub.add_parser("show", help="a study's grid, run count and cost estimate")
  p.add_argument("study")
  spec_flags(p)

  sub.add_parser("list", help="the built-in studies")
  return parser.parse_args(argv)


def main(argv=None):
  """Runs the command line; returns the exit code."""
  args = parse_args(sys.argv[1:] if argv is None else argv)
  try:
    if args.command == "list":
      print(_list())
    elif args.command == "show":
      print(_show(args.study, args.budget, args.import_module, args.gin_bindings))
    elif args.command == "status":
      rows = status_rows(args.root_dir)
      print(format_status(rows))
    elif args.command == "report":
      result = report(args.root_dir, args.out, reps=args.reps, seed=args.seed)
      for note in result.notes:
        print(f"tfgap study: note: {note}", file=sys.stderr)
      print(f"tfgap study: wrote {result.report} ({len(result.files)} files)")
    else:
      for name, value, low in (("--retries", args.retries, 0),
                               ("--max_concurrent", args.max_concurrent, 1),
                               ("--num_cpus", args.num_cpus, 1)):
        if value is not None:
          checks.check_int(name, value, low=low)
      checks.check_float("--cpus_per_trial", args.cpus_per_trial, low=0.0, low_open=True)
      checks.check_float("--gpus_per_trial", args.gpus_per_trial, low=0.0)
      options = RunOptions(address=args.address, num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                           max_concurrent=args.max_concurrent,
                           cpus_per_trial=args.cpus_per_trial,
                           gpus_per_trial=args.gpus_per_trial, retries=args.retries,
                           force=args.force, import_modules=tuple(args.import_module),
                           gin_bindings=tuple(args.gin_bindings))
      rows = run(args.study, args.root_dir, args.budget, options)
      return 0 if all(r.state == "done" for r in rows) else 1
  except ValueError as err:
    print(f"tfgap study: error: {err}", file=sys.stderr)
    return 2
  return 0


def run_cli():
  """Console entry point (`tfgap-study`)."""
  sys.exit(main())


__all__ = ["Spec", "Trial", "SpecError", "StudyDirError", "StudyDir", "RunOptions", "load",
           "load_spec_dict", "resolve", "check_runnable", "estimate", "prepare", "run",
           "status_rows", "format_status", "report", "read_records", "read_state", "main"]


if __name__ == "__main__":
  run_cli()
