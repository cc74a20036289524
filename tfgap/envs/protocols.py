"""Evaluation protocols per suite, and validation of protocol overrides.

A protocol is a flat dict of settings. `resolve(suite, mode, overrides)` starts from the suite's
defaults (which may depend on `mode`), applies the overrides after checking each one's name, type
and range, and returns the dict the environment is built from (also exposed as `env.protocol`).
"""

import numbers

from tfgap import checks
from tfgap.envs import games

SUITES = ("atari", "atari100k", "procgen", "dmc", "minatar")
MODES = ("train", "eval")


class _Setting:
  """One protocol setting: its kind and accepted values (for checks and error messages)."""

  def __init__(self, kind, low=None, high=None, choices=None, allow_none=False):
    self.kind = kind  # "bool", "int", "float" or "choice".
    self.low = low
    self.high = high
    self.choices = choices
    self.allow_none = allow_none

  def describe(self):
    if self.kind == "bool":
      text = "True or False"
    elif self.kind == "choice":
      text = "one of " + ", ".join(repr(c) for c in self.choices)
    else:
      noun = "an integer" if self.kind == "int" else "a number"
      if self.low is not None and self.high is not None:
        text = f"{noun} in [{self.low}, {self.high}]"
      elif self.low is not None:
        text = f"{noun} >= {self.low}"
      else:
        text = noun
    return text + (" or None" if self.allow_none else "")

  def check(self, name, value):
    """Returns `value` (ints widened to floats for float settings) or raises ValueError."""
    if value is None and self.allow_none:
      return None
    ok = True
    if self.kind == "bool":
      ok = isinstance(value, bool)
    elif self.kind == "choice":
      ok = value in self.choices
    elif self.kind == "int":
      ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif self.kind == "float":
      ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and self.kind in ("int", "float"):
      ok = ((self.low is None or value >= self.low) and
            (self.high is None or value <= self.high))
    if not ok:
      checks.reject(name, value, self.describe())
    if self.kind == "float":
      return float(value)
    if self.kind == "int":
      return int(value)
    return value


_ATARI_SETTINGS = {
    # Probability that ALE repeats the previous action on each frame (Machado et al. 2018).
    "sticky_actions": _Setting("float", 0.0, 1.0),
    "frame_skip": _Setting("int", 1),
    # Agent steps per episode before truncation (27,000 = 108k frames = 30 minutes of play).
    "max_episode_steps": _Setting("int", 1),
    "clip_rewards": _Setting("bool"),
    "terminal_on_life_loss": _Setting("bool"),
    "screen_size": _Setting("int", 8),
    "stack_size": _Setting("int", 1),
    "full_action_space": _Setting("bool"),
    # "gymnasium": one wrapped gymnasium AtariEnv per batch entry, stepped in turn (exact for
    # every protocol); "vector": ale_py's AtariVectorEnv (threads in C++, fast; life-loss
    # terminals are approximate, see docs/envs.md); "auto" picks per suite and num_envs.
    "backend": _Setting("choice", choices=("auto", "gymnasium", "vector")),
    # Worker threads of AtariVectorEnv; 0 lets ALE choose (one per env up to the core count).
    "num_threads": _Setting("int", 0),
    # No-op starts: each game begins with randint(0, noop_max) agent steps of action 0 (NOOP)
    # that neither the learner nor the episode's return and length see; 0 turns them off.
    # Backend "gymnasium" only (ALE's vector env counts its no-ops in frames, not agent steps).
    "noop_max": _Setting("int", 0),
}

_PROCGEN_SETTINGS = {
    "distribution_mode": _Setting("choice", choices=("easy", "hard", "extreme", "memory",
                                                     "exploration")),
    "num_levels": _Setting("int", 0),
    "start_level": _Setting("int", 0),
    "use_backgrounds": _Setting("bool"),
    "paint_vel_info": _Setting("bool"),
    "center_agent": _Setting("bool"),
}

_DMC_SETTINGS = {
    "action_repeat": _Setting("int", 1),
    "stack_size": _Setting("int", 1),
    "image_size": _Setting("int", 8),
    "camera_id": _Setting("int", 0),
    # MuJoCo's shadow map size; 512 (instead of MuJoCo's 4096) renders 1.5-2x faster on Mesa's
    # software renderer with near-identical pixels. None keeps the model's own value.
    "shadow_size": _Setting("int", 16, allow_none=True),
}

_MINATAR_SETTINGS = {
    # Probability that the game repeats the previous action instead of the agent's (per step).
    "sticky_actions": _Setting("float", 0.0, 1.0),
    # The games speed up and spawn more often as play goes on (minatar's `difficulty_ramping`).
    "difficulty_ramping": _Setting("bool"),
    "max_episode_steps": _Setting("int", 1),
    "minimal_action_set": _Setting("bool"),
    "clip_rewards": _Setting("bool"),
    "stack_size": _Setting("int", 1),
}

SETTINGS = {
    "atari": _ATARI_SETTINGS,
    "atari100k": _ATARI_SETTINGS,
    "procgen": _PROCGEN_SETTINGS,
    "dmc": _DMC_SETTINGS,
    "minatar": _MINATAR_SETTINGS,
}

# Training levels of the Procgen generalization protocol, and where evaluation levels start.
PROCGEN_TRAIN_LEVELS = 200
PROCGEN_EVAL_START_LEVEL = PROCGEN_TRAIN_LEVELS


def defaults(suite, mode, name=None):
  """The protocol of `suite` in `mode` before overrides (`name` picks DMC's per-task values)."""
  if suite == "atari":
    # Machado et al. 2018 as Dopamine runs it.
    return {
        "sticky_actions": 0.25,
        "frame_skip": 4,
        "max_episode_steps": 27_000,
        "clip_rewards": mode == "train",
        "terminal_on_life_loss": False,
        "screen_size": 84,
        "stack_size": 4,
        "full_action_space": False,
        "backend": "auto",
        "num_threads": 0,
        # Dopamine's Atari Runner has no no-op starts (run_experiment.py _initialize_episode).
        "noop_max": 0,
    }
  if suite == "atari100k":
    # Data-efficient Rainbow (van Hasselt et al. 2019) as Dopamine runs it: no sticky actions,
    # life loss ends the learner's episode (not the game), and up to 30 no-op steps at the start
    # of every train and eval game (dopamine/labs/atari_100k/atari_100k_runner.py
    # DataEfficientAtariRunner(max_noops=30), _initialize_episode: randint(0, 30) steps of
    # action 0); the rest as "atari".
    return dict(defaults("atari", mode), sticky_actions=0.0, terminal_on_life_loss=True,
                noop_max=30)
  if suite == "procgen":
    train = mode == "train"
    return {
        "distribution_mode": "easy",
        # Train on levels [0, 200); evaluate with num_levels=0 (the full level distribution).
        "num_levels": PROCGEN_TRAIN_LEVELS if train else 0,
        "start_level": 0 if train else PROCGEN_EVAL_START_LEVEL,
        "use_backgrounds": True,
        "paint_vel_info": False,
        "center_agent": True,
    }
  if suite == "dmc":
    domain = name.split("-", 1)[0] if name else ""
    return {
        "action_repeat": games.DMC_ACTION_REPEAT.get(domain, games.DMC_DEFAULT_ACTION_REPEAT),
        "stack_size": 3,
        "image_size": 84,
        "camera_id": games.DMC_CAMERA.get(domain, 0),
        "shadow_size": None,
    }
  if suite == "minatar":
    # MinAtar (Young & Tian 2019) as its package and example DQN run it: sticky actions 0.1 and
    # difficulty ramping on (the defaults of `minatar.Environment`), all 6 actions, raw rewards,
    # one frame (motion is in the trail channels). The games have no time limit but Freeway's;
    # the cap only ends an agent that never loses (LAST with discount 1).
    return {
        "sticky_actions": 0.1,
        "difficulty_ramping": True,
        "max_episode_steps": 100_000,
        "minimal_action_set": False,
        "clip_rewards": False,
        "stack_size": 1,
    }
  raise unknown_suite(suite)


def unknown_suite(suite):
  """The ValueError for a suite that is not one of `SUITES` (checks' message format)."""
  try:
    checks.check_choice("suite", suite, SUITES, case_sensitive=True)
  except ValueError as err:
    return err
  return ValueError(f"suite={suite!r} has no protocol")  # Unreachable for names in SUITES.


def resolve(suite, mode, overrides, name=None):
  """Returns the protocol dict of `suite`/`mode` with `overrides` applied and checked.

  Raises:
    ValueError: for an unknown suite or mode, an unknown override name, or a value of the wrong
      type or out of range (naming the accepted values).
  """
  if suite not in SETTINGS:
    raise unknown_suite(suite)
  checks.check_choice("mode", mode, MODES, case_sensitive=True)
  settings = SETTINGS[suite]
  protocol = defaults(suite, mode, name)
  for key, value in overrides.items():
    if key not in settings:
      accepted = ", ".join(f"{k} ({s.describe()})" for k, s in settings.items())
      checks.reject(f"{suite} protocol override", key, accepted,
                    checks.close_matches(key, settings, n=2))
    protocol[key] = settings[key].check(key, value)
  return protocol
