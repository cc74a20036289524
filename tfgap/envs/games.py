"""Game and task lists of the paper, and reference scores for Atari (human) and Procgen (min/max).

Everything here is plain data plus name resolution; nothing imports an emulator at module
import time, so the analysis code can use `human_normalized` without ALE or MuJoCo.
"""

import difflib
import sys

from tfgap import checks

# The 20 Atari games of the SoftMoE / GAP line of work (Obando-Ceron et al. 2024; Sokar & Castro).
ATARI_GAMES = (
    "AirRaid", "Asterix", "Asteroids", "Bowling", "Breakout", "DemonAttack", "Freeway",
    "Gravitar", "Jamesbond", "MontezumaRevenge", "MsPacman", "Pong", "PrivateEye", "Qbert",
    "Seaquest", "SpaceInvaders", "Venture", "WizardOfWor", "YarsRevenge", "Zaxxon",
)

# The 26 games of the Atari 100K benchmark (Kaiser et al. 2020; DER, van Hasselt et al. 2019).
ATARI100K_GAMES = (
    "Alien", "Amidar", "Assault", "Asterix", "BankHeist", "BattleZone", "Boxing", "Breakout",
    "ChopperCommand", "CrazyClimber", "DemonAttack", "Freeway", "Frostbite", "Gopher", "Hero",
    "Jamesbond", "Kangaroo", "Krull", "KungFuMaster", "MsPacman", "Pong", "PrivateEye", "Qbert",
    "RoadRunner", "Seaquest", "UpNDown",
)

# Agent steps of interaction allowed by the Atari 100K benchmark (400k frames at frame skip 4).
ATARI100K_AGENT_STEPS = 100_000

# The 16 Procgen games (Cobbe et al. 2020), as procgen names them.
PROCGEN_GAMES = (
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
    "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
)

# The five MinAtar games (Young & Tian 2019), as the `minatar` package names them, and the
# channels of their 10x10 boolean observations (one object type per channel).
MINATAR_GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
MINATAR_CHANNELS = {"asterix": 4, "breakout": 4, "freeway": 7, "seaquest": 10,
                    "space_invaders": 6}

# The six DeepMind Control tasks of the pixel-SAC line (PlaNet, SAC-AE, CURL, DrQ), as
# "domain-task".
DMC_TASKS = (
    "ball_in_cup-catch", "cartpole-swingup", "cheetah-run", "finger-spin", "reacher-easy",
    "walker-walk",
)

# The harder tasks DrQ-v2 (Yarats et al. 2021) added to those six.
DMC_TASKS_EXTENDED = DMC_TASKS + (
    "acrobot-swingup", "cartpole-balance", "cartpole-balance_sparse", "cartpole-swingup_sparse",
    "finger-turn_easy", "finger-turn_hard", "hopper-hop", "hopper-stand", "pendulum-swingup",
    "quadruped-run", "quadruped-walk", "reacher-hard", "walker-run", "walker-stand",
)

# Every task of dm_control 1.0.50's `suite.ALL_TASKS`, so names can be checked before MuJoCo and
# a renderer are loaded (the DMC module checks again against the installed suite).
DMC_ALL_TASKS = (
    "acrobot-swingup", "acrobot-swingup_sparse", "ball_in_cup-catch", "cartpole-balance",
    "cartpole-balance_sparse", "cartpole-swingup", "cartpole-swingup_sparse", "cartpole-two_poles",
    "cartpole-three_poles", "cheetah-run", "dog-stand", "dog-walk", "dog-trot", "dog-run",
    "dog-fetch", "finger-spin", "finger-turn_easy", "finger-turn_hard", "fish-upright", "fish-swim",
    "hopper-stand", "hopper-hop", "humanoid-stand", "humanoid-walk", "humanoid-run",
    "humanoid-run_pure_state", "humanoid_CMU-stand", "humanoid_CMU-walk", "humanoid_CMU-run",
    "lqr-lqr_2_1", "lqr-lqr_6_2", "manipulator-bring_ball", "manipulator-bring_peg",
    "manipulator-insert_ball", "manipulator-insert_peg", "pendulum-swingup", "point_mass-easy",
    "point_mass-hard", "quadruped-walk", "quadruped-run", "quadruped-escape", "quadruped-fetch",
    "reacher-easy", "reacher-hard", "stacker-stack_2", "stacker-stack_4", "swimmer-swimmer6",
    "swimmer-swimmer15", "walker-stand", "walker-walk", "walker-run",
)

# Action repeat of the pixel-SAC protocol (PlaNet, Hafner et al. 2019): per domain, 4 otherwise.
DMC_ACTION_REPEAT = {"cartpole": 8, "walker": 2, "finger": 2}
DMC_DEFAULT_ACTION_REPEAT = 4
# Camera of the pixel protocol: 0 everywhere but quadruped, whose camera 0 is far away.
DMC_CAMERA = {"quadruped": 2}

# (random, human) scores per Atari-57 game: the table of the Agent57 paper's appendix (Badia et al.
# 2020, "Agent57: Outperforming the Atari Human Benchmark", Table H.1 "Random" and "Human"
# columns), which extends the human/random scores of Mnih et al. 2015 (Nature DQN) to all 57
# games. Episodes start with up to 30 no-ops and are capped at 108k frames. Same numbers as
# DeepMind's dqn_zoo `atari_data.py`. AirRaid is not among the 57: no common table has a human
# score for it, so it is listed with None instead of an invented value.
ATARI_REFERENCE_SCORES = {
    "AirRaid": (None, None),
    "Alien": (227.8, 7127.7),
    "Amidar": (5.8, 1719.5),
    "Assault": (222.4, 742.0),
    "Asterix": (210.0, 8503.3),
    "Asteroids": (719.1, 47388.7),
    "Atlantis": (12850.0, 29028.1),
    "BankHeist": (14.2, 753.1),
    "BattleZone": (2360.0, 37187.5),
    "BeamRider": (363.9, 16926.5),
    "Berzerk": (123.7, 2630.4),
    "Bowling": (23.1, 160.7),
    "Boxing": (0.1, 12.1),
    "Breakout": (1.7, 30.5),
    "Centipede": (2090.9, 12017.0),
    "ChopperCommand": (811.0, 7387.8),
    "CrazyClimber": (10780.5, 35829.4),
    "Defender": (2874.5, 18688.9),
    "DemonAttack": (152.1, 1971.0),
    "DoubleDunk": (-18.6, -16.4),
    "Enduro": (0.0, 860.5),
    "FishingDerby": (-91.7, -38.7),
    "Freeway": (0.0, 29.6),
    "Frostbite": (65.2, 4334.7),
    "Gopher": (257.6, 2412.5),
    "Gravitar": (173.0, 3351.4),
    "Hero": (1027.0, 30826.4),
    "IceHockey": (-11.2, 0.9),
    "Jamesbond": (29.0, 302.8),
    "Kangaroo": (52.0, 3035.0),
    "Krull": (1598.0, 2665.5),
    "KungFuMaster": (258.5, 22736.3),
    "MontezumaRevenge": (0.0, 4753.3),
    "MsPacman": (307.3, 6951.6),
    "NameThisGame": (2292.3, 8049.0),
    "Phoenix": (761.4, 7242.6),
    "Pitfall": (-229.4, 6463.7),
    "Pong": (-20.7, 14.6),
    "PrivateEye": (24.9, 69571.3),
    "Qbert": (163.9, 13455.0),
    "Riverraid": (1338.5, 17118.0),
    "RoadRunner": (11.5, 7845.0),
    "Robotank": (2.2, 11.9),
    "Seaquest": (68.4, 42054.7),
    "Skiing": (-17098.1, -4336.9),
    "Solaris": (1236.3, 12326.7),
    "SpaceInvaders": (148.0, 1668.7),
    "StarGunner": (664.0, 10250.0),
    "Surround": (-10.0, 6.5),
    "Tennis": (-23.8, -8.3),
    "TimePilot": (3568.0, 5229.2),
    "Tutankham": (11.4, 167.6),
    "UpNDown": (533.4, 11693.2),
    "Venture": (0.0, 1187.5),
    # Agent57's random score here is above what some other protocols report (0.0 in DER's table).
    "VideoPinball": (16256.9, 17667.9),
    "WizardOfWor": (563.5, 4756.5),
    "YarsRevenge": (3092.9, 54576.9),
    "Zaxxon": (32.5, 9173.3),
}

# (R_min, R_max) per Procgen game in the easy distribution: the normalisation constants of Cobbe
# et al. 2020, "Leveraging Procedural Generation to Benchmark Reinforcement Learning" (arXiv
# 1912.01588, appendix table of normalisation constants, "Easy" columns); normalised score
# = (R - R_min) / (R_max - R_min). Checked against two public copies of that table (all 16
# values agree), not against the paper's PDF itself. R_max is the maximal achievable return;
# R_min that of a policy that does nothing useful (not a random policy).
PROCGEN_REFERENCE_SCORES = {
    "bigfish": (1.0, 40.0), "bossfight": (0.5, 13.0), "caveflyer": (3.5, 12.0),
    "chaser": (0.5, 13.0), "climber": (2.0, 12.6), "coinrun": (5.0, 10.0),
    "dodgeball": (1.5, 19.0), "fruitbot": (-1.5, 32.4), "heist": (3.5, 10.0),
    "jumper": (3.0, 10.0), "leaper": (3.0, 10.0), "maze": (5.0, 10.0), "miner": (1.5, 13.0),
    "ninja": (3.5, 10.0), "plunder": (4.5, 30.0), "starpilot": (2.5, 64.0),
}


SUITES = ("atari", "atari100k", "procgen", "dmc", "minatar")


def closest(name, valid, n=5):
  """Returns up to `n` names of `valid` closest to `name` (difflib), best first."""
  lowered = {v.lower(): v for v in valid}
  hits = difflib.get_close_matches(str(name).lower(), list(lowered), n=n, cutoff=0.4)
  return [lowered[h] for h in hits]


def list_games(suite):
  """Every game or task name `tfgap.envs.make(suite, name)` accepts, sorted.

  Atari and Atari100K accept every ROM shipped in ale-py (the papers' subsets are `ATARI_GAMES`
  and `ATARI100K_GAMES`), Procgen its 16 games, DMC every dm_control task ("domain-task"; the
  pixel benchmark's six are `DMC_TASKS`), MinAtar its five games. Also a command line:
  `python -m tfgap.envs.games atari`.

  Raises:
    ValueError: for an unknown suite.
  """
  suite = checks.check_choice("suite", suite, SUITES)
  if suite in ("atari", "atari100k"):
    return sorted(atari_rom_ids())
  if suite == "minatar":
    return sorted(MINATAR_GAMES)
  return sorted(PROCGEN_GAMES if suite == "procgen" else DMC_ALL_TASKS)


def unknown_name_error(kind, name, valid, how_to_list=None):
  """The ValueError for an unknown game/task: the closest valid names, and how to list them all.

  Args:
    kind: what the name names, e.g. "Atari game".
    name: the name given.
    valid: the accepted names.
    how_to_list: how a user lists `valid` (e.g. "tfgap.envs.games.list_games('atari')"), for
      long lists; None writes `valid` into the message.
  """
  if how_to_list is None:
    accepted = f"one of {', '.join(sorted(valid))}"
  else:
    accepted = f"one of the {len(valid)} {kind}s; list them with {how_to_list}"
  try:  # Returned, not raised: callers write `raise unknown_name_error(...)`.
    checks.reject("task" if kind.endswith("task") else "game", name, accepted,
                  checks.close_matches(name, valid))
  except ValueError as e:
    return e


def _list_hint(suite):
  return f"tfgap.envs.games.list_games({suite!r}) or `python -m tfgap.envs.games {suite}`"


def _camel(rom_id):
  # ALE ROM ids are snake_case ("ms_pacman"); the papers write CamelCase ("MsPacman").
  return "".join(part.capitalize() for part in rom_id.split("_"))


def atari_rom_ids():
  """Returns `{CamelCaseName: rom_id}` for every ROM shipped inside ale-py."""
  from ale_py import roms  # pylint: disable=g-import-not-at-top
  return {_camel(rom): rom for rom in roms.get_all_rom_ids()}


def resolve_atari_game(name):
  """Maps "MsPacman", "ms_pacman" or "mspacman" to `(canonical CamelCase name, ALE rom id)`.

  Raises:
    ValueError: for a name that is no ROM of ale-py, naming the closest ROMs.
  """
  if not isinstance(name, str):
    checks.reject("game", name, "an Atari game name (a string), e.g. 'Pong'")
  table = atari_rom_ids()
  key = name.replace("_", "").replace("-", "").lower()
  for camel, rom in table.items():
    if camel.lower() == key:
      return camel, rom
  raise unknown_name_error("Atari game", name, list(table), _list_hint("atari"))


def resolve_procgen_game(name):
  """Returns the procgen name for `name` (case-insensitive) or raises ValueError."""
  if isinstance(name, str) and name.lower() in PROCGEN_GAMES:
    return name.lower()
  raise unknown_name_error("Procgen game", name, PROCGEN_GAMES)


def resolve_minatar_game(name):
  """Maps "breakout", "Breakout", "SpaceInvaders" or "space-invaders" to the minatar name.

  Raises:
    ValueError: for a name that is none of the five games, naming the closest ones.
  """
  if isinstance(name, str):
    key = name.replace("_", "").replace("-", "").lower()
    for game in MINATAR_GAMES:
      if game.replace("_", "") == key:
        return game
  raise unknown_name_error("MinAtar game", name, MINATAR_GAMES)


def resolve_dmc_task(name):
  """Splits "domain-task" (or "domain/task") into `(domain, task)`.

  Raises:
    ValueError: for an unknown task, naming the closest suite tasks.
  """
  if isinstance(name, str):
    for candidate in (name, name.replace("/", "-", 1)):
      if candidate in DMC_ALL_TASKS:
        domain, task = candidate.split("-", 1)
        return domain, task
  raise unknown_name_error("DMC task", name, DMC_ALL_TASKS, _list_hint("dmc"))


def reference_scores(game):
  """Returns `(random, human)` for an Atari game name (any spelling `resolve` accepts).

  Values are None for games without a published human reference (AirRaid).

  Raises:
    ValueError: for a name that is not in the reference table.
  """
  key = str(game).replace("_", "").replace("-", "").lower()
  for name, scores in ATARI_REFERENCE_SCORES.items():
    if name.lower() == key:
      return scores
  raise unknown_name_error("reference-scored Atari game", game,
                           list(ATARI_REFERENCE_SCORES),
                           "sorted(tfgap.envs.games.ATARI_REFERENCE_SCORES)")


def human_normalized(game, score):
  """Human-normalized score: (score - random) / (human - random).

  Args:
    game: Atari game name, e.g. "MsPacman" (or "ms_pacman").
    score: raw game score (a float, or anything numpy can turn into floats).

  Returns:
    The normalized score (same shape as `score`).

  Raises:
    ValueError: for a game without human/random references (AirRaid) or an unknown game.
  """
  random_score, human_score = reference_scores(game)
  if random_score is None or human_score is None:
    checks.reject(
        "game", game, "one of the Atari-57 games, which have human/random reference scores in "
        "the Mnih et al. 2015 / Agent57 (Badia et al. 2020) tables (see has_reference_scores); "
        "report this game's raw score, or leave it out of normalized aggregates")
  try:
    import numpy as np  # pylint: disable=g-import-not-at-top
    value = np.asarray(score, dtype=np.float64)
  except (TypeError, ValueError):
    checks.reject("score", score, "a number or an array of numbers")
  result = (value - random_score) / (human_score - random_score)
  return float(result) if result.ndim == 0 else result


def has_reference_scores(game):
  """Whether `human_normalized(game, ...)` is defined."""
  try:
    random_score, _ = reference_scores(game)
  except ValueError:
    return False
  return random_score is not None


__all__ = [
    "ATARI_GAMES", "ATARI100K_GAMES", "ATARI100K_AGENT_STEPS", "PROCGEN_GAMES", "DMC_TASKS",
    "DMC_TASKS_EXTENDED", "DMC_ALL_TASKS", "DMC_ACTION_REPEAT", "DMC_DEFAULT_ACTION_REPEAT",
    "DMC_CAMERA", "ATARI_REFERENCE_SCORES", "PROCGEN_REFERENCE_SCORES", "human_normalized", "reference_scores",
    "has_reference_scores", "resolve_atari_game", "resolve_procgen_game", "resolve_dmc_task",
    "closest", "list_games", "MINATAR_GAMES", "MINATAR_CHANNELS", "resolve_minatar_game",
]


def main(argv=None):
  """`python -m tfgap.envs.games SUITE`: prints every name the suite accepts, one per line."""
  argv = sys.argv[1:] if argv is None else argv
  if len(argv) != 1:
    print(f"usage: python -m tfgap.envs.games {{{','.join(SUITES)}}}", file=sys.stderr)
    return 2
  print("\n".join(list_games(argv[0])))
  return 0


if __name__ == "__main__":
  sys.exit(main())
