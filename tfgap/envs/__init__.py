"""tfgap.envs: the paper's environments as TF-Agents PyEnvironments.

    env = tfgap.envs.make("atari", "Pong", num_envs=8, seed=0, mode="train")
    time_step = env.reset()            # uint8 [8, 84, 84, 4], zero-padded frame stacks
    time_step = env.step(actions)      # int64 [8]
    env.pop_episode_stats()            # [{"return": raw score, "length": steps, "env_id": i}]

Suites: "atari" (Machado et al. 2018 as Dopamine runs it), "atari100k" (DER protocol),
"procgen" (easy, 200 training levels; mode "eval" = unseen levels), "dmc" (pixel SAC protocol),
"minatar" (the five MinAtar games, 10x10xC, sticky actions 0.1).
Protocol settings can be overridden by keyword (checked; see `tfgap.envs.protocols` and
docs/envs.md). Emulators are imported only when their suite is built, and importing this
package has no side effect: the MuJoCo renderer is chosen by the first DMC environment.
"""

import numbers

from tfgap.envs import games
from tfgap.envs import protocols
from tfgap.envs import rendering
from tfgap.envs.games import (  # noqa: F401
    ATARI100K_AGENT_STEPS, ATARI100K_GAMES, ATARI_GAMES, ATARI_REFERENCE_SCORES, DMC_TASKS,
    DMC_TASKS_EXTENDED, MINATAR_GAMES, PROCGEN_GAMES, has_reference_scores, human_normalized,
    reference_scores)
from tfgap.envs.protocols import MODES, SUITES  # noqa: F401
from tfgap.envs.rendering import RendererUnavailableError  # noqa: F401


def _check_int(name, value, low):
  from tfgap import checks  # pylint: disable=g-import-not-at-top
  return checks.check_int(name, value, low=low)


def _build(suite, name, num_envs, seed, mode, overrides, batched):
  if suite not in protocols.SUITES:
    raise protocols.unknown_suite(suite)
  num_envs = _check_int("num_envs", num_envs, 1)
  seed = _check_int("seed", seed, 0)
  if batched is None:
    batched = num_envs > 1
  if suite in ("atari", "atari100k"):
    canonical, rom_id = games.resolve_atari_game(name)
    protocol = protocols.resolve(suite, mode, overrides)
    from tfgap.envs import atari  # pylint: disable=g-import-not-at-top
    return atari.make_atari(suite, canonical, rom_id, num_envs, seed, mode, protocol, batched)
  if suite == "procgen":
    game = games.resolve_procgen_game(name)
    protocol = protocols.resolve(suite, mode, overrides)
    from tfgap.envs import procgen_env  # pylint: disable=g-import-not-at-top
    return procgen_env.make_procgen(game, num_envs, seed, mode, protocol, batched)
  if suite == "minatar":
    game = games.resolve_minatar_game(name)
    protocol = protocols.resolve(suite, mode, overrides)
    from tfgap.envs import minatar_env  # pylint: disable=g-import-not-at-top
    return minatar_env.make_minatar(game, num_envs, seed, mode, protocol, batched)
  domain, task = games.resolve_dmc_task(name)
  canonical = f"{domain}-{task}"
  protocol = protocols.resolve(suite, mode, overrides, name=canonical)
  # Before the dmc module imports TF-Agents, whose import loads dm_control's renderer module,
  # which reads MUJOCO_GL once.
  rendering.ensure_renderer()
  from tfgap.envs import dmc  # pylint: disable=g-import-not-at-top
  return dmc.make_dmc(canonical, domain, task, num_envs, seed, mode, protocol, batched)


def make(suite, name, num_envs=1, seed=0, mode="train", **overrides):
  """Builds an environment of the paper's protocols as a TF-Agents PyEnvironment.

  Args:
    suite: "atari", "atari100k", "procgen", "dmc" or "minatar".
    name: game or task: Atari "Pong"/"MsPacman" (or ALE ids "ms_pacman"), Procgen "coinrun",
      DMC "walker-walk", MinAtar "breakout"/"space_invaders".
    num_envs: parallel environments. With more than one the environment is batched
      (`batch_size == num_envs`, actions and time steps carry a leading batch axis).
    seed: base seed (entry i of a batch uses seed + i where the backend seeds per entry).
    mode: "train" or "eval" (Atari: unclipped rewards; Procgen: unseen levels).
    **overrides: protocol settings to change, e.g. `sticky_actions=0.0`, `frame_skip=4`,
      `max_episode_steps=1000`, `backend="vector"`, `shadow_size=512`. Accepted names and values
      per suite: `tfgap.envs.protocols.SETTINGS` (listed in docs/envs.md).

  Returns:
    A `tfgap.envs.core.TfgapEnv` (a PyEnvironment) with `pop_episode_stats()`, `frame_shape`,
    `stack_size` and `protocol`.

  Raises:
    ValueError: unknown suite/game/task/mode/override (naming the closest valid names), or an
      override of the wrong type or range (naming the accepted values).
    RendererUnavailableError: DMC without a working OpenGL backend (names the packages).
  """
  return _build(suite, name, num_envs, seed, mode, overrides, batched=None)


def make_tf(suite, name, num_envs=1, seed=0, mode="train", **overrides):
  """Like `make`, wrapped in a `TFPyEnvironment` (always batched; batch size `num_envs`).

  The tfgap environment is `tf_env.pyenv` (for `pop_episode_stats()`, `frame_shape`, ...).
  """
  from tf_agents.environments import tf_py_environment  # pylint: disable=g-import-not-at-top
  # Batched even for one env, so TFPyEnvironment does not add its thread-pool wrapper.
  py_env = _build(suite, name, num_envs, seed, mode, overrides, batched=True)
  return tf_py_environment.TFPyEnvironment(py_env)


__all__ = [
    "make", "make_tf", "SUITES", "MODES", "ATARI_GAMES", "ATARI100K_GAMES",
    "ATARI100K_AGENT_STEPS", "PROCGEN_GAMES", "DMC_TASKS", "DMC_TASKS_EXTENDED", "MINATAR_GAMES",
    "ATARI_REFERENCE_SCORES", "human_normalized", "reference_scores", "has_reference_scores",
    "RendererUnavailableError",
]
