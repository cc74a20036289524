"""Game lists, reference scores and human normalization."""

import numpy as np
import pytest

from tfgap import envs
from tfgap.envs import games


def test_list_sizes_match_the_benchmarks():
  assert len(set(envs.ATARI_GAMES)) == 20
  assert len(set(envs.ATARI100K_GAMES)) == 26
  assert len(set(envs.PROCGEN_GAMES)) == 16
  assert len(set(envs.DMC_TASKS)) == 6
  assert envs.ATARI100K_AGENT_STEPS == 100_000


@pytest.mark.parametrize("name", sorted(set(games.ATARI_GAMES + games.ATARI100K_GAMES)))
def test_every_listed_atari_game_is_a_rom_with_references(name):
  canonical, rom = games.resolve_atari_game(name)
  assert canonical == name
  assert rom == rom.lower()
  random_score, human_score = games.reference_scores(name)
  if name == "AirRaid":
    assert random_score is None and human_score is None
  else:
    assert human_score > random_score


def test_reference_table_is_atari57_plus_airraid():
  with_refs = [g for g, (r, h) in games.ATARI_REFERENCE_SCORES.items() if r is not None]
  assert len(with_refs) == 57
  assert not games.has_reference_scores("AirRaid")
  assert games.has_reference_scores("Pong")


@pytest.mark.parametrize("game,random_score,human_score", [
    ("Pong", -20.7, 14.6), ("Breakout", 1.7, 30.5), ("Asterix", 210.0, 8503.3)])
def test_human_normalized_maps_random_to_0_and_human_to_1(game, random_score, human_score):
  assert envs.human_normalized(game, random_score) == pytest.approx(0.0)
  assert envs.human_normalized(game, human_score) == pytest.approx(1.0)
  mid = (random_score + human_score) / 2
  assert envs.human_normalized(game.lower(), mid) == pytest.approx(0.5)


def test_human_normalized_accepts_arrays():
  out = envs.human_normalized("Pong", np.array([-20.7, 14.6, 50.0]))
  np.testing.assert_allclose(out, [0.0, 1.0, (50.0 + 20.7) / 35.3])


def test_human_normalized_without_reference_raises_clearly():
  with pytest.raises(ValueError, match="game='AirRaid' is not accepted; accepted: .*Agent57"):
    envs.human_normalized("AirRaid", 1000.0)


def test_human_normalized_unknown_game_names_closest():
  with pytest.raises(ValueError, match="game='Pongg' is not accepted.* Did you mean 'Pong'"):
    envs.human_normalized("Pongg", 3.0)


@pytest.mark.parametrize("resolver,bad,closest", [
    (games.resolve_atari_game, "Breakot", "Breakout"),
    (games.resolve_procgen_game, "coinrn", "coinrun"),
    (games.resolve_dmc_task, "walker-wlk", "walker-walk"),
])
def test_unknown_names_list_closest_valid_names(resolver, bad, closest):
  with pytest.raises(ValueError) as info:
    resolver(bad)
  message = str(info.value)
  assert f"={bad!r} is not accepted; accepted: " in message
  assert f"Did you mean {closest!r}" in message


@pytest.mark.parametrize("suite,resolver,bad", [
    ("atari", games.resolve_atari_game, "Breakot"),
    ("dmc", games.resolve_dmc_task, "walker-wlk"),
])
def test_long_lists_are_not_spelled_out_but_say_how_to_list_them(suite, resolver, bad):
  with pytest.raises(ValueError) as info:
    resolver(bad)
  message = str(info.value)
  assert f"tfgap.envs.games.list_games({suite!r})" in message
  assert f"python -m tfgap.envs.games {suite}" in message
  names = games.list_games(suite)
  assert len(names) > 40
  # Only the close matches are named, not the whole list.
  assert sum(f"'{name}'" in message for name in names) <= 3
  assert len(message) < 400


def test_list_games_names_every_accepted_name():
  for suite, subset in (("atari", games.ATARI_GAMES), ("atari100k", games.ATARI100K_GAMES),
                        ("procgen", games.PROCGEN_GAMES), ("dmc", games.DMC_TASKS)):
    names = games.list_games(suite)
    assert names == sorted(names) and set(subset) <= set(names)
  assert games.list_games("procgen") == sorted(games.PROCGEN_GAMES)
  assert games.list_games("DMC") == sorted(games.DMC_ALL_TASKS)
  for name in games.list_games("atari"):
    assert games.resolve_atari_game(name)[0] == name
  with pytest.raises(ValueError, match="suite='atary' is not accepted.*Did you mean 'atari'"):
    games.list_games("atary")


def test_list_games_command_line(capsys):
  assert games.main(["procgen"]) == 0
  assert capsys.readouterr().out.split() == sorted(games.PROCGEN_GAMES)
  assert games.main([]) == 2


@pytest.mark.parametrize("name,expected", [
    ("MsPacman", ("MsPacman", "ms_pacman")), ("ms_pacman", ("MsPacman", "ms_pacman")),
    ("UpNDown", ("UpNDown", "up_n_down")), ("montezuma_revenge",
                                            ("MontezumaRevenge", "montezuma_revenge"))])
def test_atari_name_spellings(name, expected):
  assert games.resolve_atari_game(name) == expected


def test_dmc_task_list_matches_installed_suite():
  from tfgap.envs import rendering
  rendering.ensure_renderer()
  from dm_control import suite
  assert sorted(games.DMC_ALL_TASKS) == sorted(f"{d}-{t}" for d, t in suite.ALL_TASKS)
  assert set(games.DMC_TASKS_EXTENDED) <= set(games.DMC_ALL_TASKS)
