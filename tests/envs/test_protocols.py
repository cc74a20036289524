"""Protocol defaults and the rejection of bad input (before any emulator is built)."""

import pytest

from tfgap import envs
from tfgap.envs import protocols


@pytest.mark.parametrize("suite,mode,key,value", [
    ("atari", "train", "sticky_actions", 0.25),
    ("atari", "train", "clip_rewards", True),
    ("atari", "eval", "clip_rewards", False),
    ("atari", "train", "terminal_on_life_loss", False),
    ("atari", "train", "max_episode_steps", 27_000),
    ("atari", "train", "frame_skip", 4),
    ("atari", "train", "stack_size", 4),
    ("atari100k", "train", "sticky_actions", 0.0),
    ("atari100k", "train", "terminal_on_life_loss", True),
    ("atari100k", "eval", "clip_rewards", False),
    # No-op starts: none in Dopamine's Atari Runner, up to 30 in its DataEfficientAtariRunner.
    ("atari", "train", "noop_max", 0),
    ("atari100k", "train", "noop_max", 30),
    ("atari100k", "eval", "noop_max", 30),
    ("procgen", "train", "num_levels", 200),
    ("procgen", "train", "start_level", 0),
    ("procgen", "eval", "num_levels", 0),
    ("procgen", "train", "distribution_mode", "easy"),
])
def test_defaults(suite, mode, key, value):
  assert protocols.resolve(suite, mode, {})[key] == value


def test_procgen_eval_starts_outside_training_levels():
  start = protocols.resolve("procgen", "eval", {})["start_level"]
  assert start >= protocols.resolve("procgen", "train", {})["num_levels"]


@pytest.mark.parametrize("task,repeat,camera", [
    ("cartpole-swingup", 8, 0), ("walker-walk", 2, 0), ("finger-spin", 2, 0),
    ("cheetah-run", 4, 0), ("reacher-easy", 4, 0), ("ball_in_cup-catch", 4, 0),
    ("quadruped-run", 4, 2)])
def test_dmc_action_repeat_and_camera_per_task(task, repeat, camera):
  protocol = protocols.resolve("dmc", "train", {}, name=task)
  assert protocol["action_repeat"] == repeat
  assert protocol["camera_id"] == camera
  assert protocol["stack_size"] == 3 and protocol["image_size"] == 84


def test_override_is_applied_and_converted():
  protocol = protocols.resolve("atari", "train", {"sticky_actions": 0, "frame_skip": 2})
  assert protocol["sticky_actions"] == 0.0 and isinstance(protocol["sticky_actions"], float)
  assert protocol["frame_skip"] == 2


@pytest.mark.parametrize("suite,name,overrides,match", [
    ("atari", "Pong", {"sticky_actions": 1.5}, r"sticky_actions=1\.5.*\[0\.0, 1\.0\]"),
    ("atari", "Pong", {"sticky_actions": "high"}, r"sticky_actions='high'.*a number"),
    ("atari", "Pong", {"frame_skip": 0}, r"frame_skip=0.*integer >= 1"),
    ("atari", "Pong", {"frame_skip": 2.5}, r"frame_skip=2\.5.*integer"),
    ("atari", "Pong", {"frame_skip": True}, r"frame_skip=True.*integer"),
    ("atari", "Pong", {"clip_rewards": 1}, r"clip_rewards=1.*True or False"),
    ("atari", "Pong", {"backend": "envpool"}, r"backend='envpool'.*'gymnasium', 'vector'"),
    ("atari", "Pong", {"stiky_actions": 0.1}, r"atari protocol override='stiky_actions' is "
                                              r"not accepted.*Did you mean 'sticky_actions'"),
    ("atari100k", "Pong", {"max_episode_steps": -1}, r"max_episode_steps=-1"),
    ("atari100k", "Pong", {"noop_max": -1}, r"noop_max=-1 is not accepted"),
    ("procgen", "coinrun", {"distribution_mode": "easyy"}, r"distribution_mode='easyy'.*'easy'"),
    ("procgen", "coinrun", {"sticky_actions": 0.0}, r"procgen protocol override='sticky_actions'.*num_levels"),
    ("dmc", "walker-walk", {"action_repeat": 0}, r"action_repeat=0"),
    ("dmc", "walker-walk", {"shadow_size": "small"}, r"shadow_size='small'.*or None"),
])
def test_bad_overrides_are_rejected_with_accepted_values(suite, name, overrides, match):
  with pytest.raises(ValueError, match=match):
    envs.make(suite, name, **overrides)


@pytest.mark.parametrize("kwargs,match", [
    (dict(suite="atary", name="Pong"), r"suite='atary' is not accepted; accepted: 'atari'.*Did you mean 'atari'"),
    (dict(suite="atari", name="Pongg"), r"game='Pongg' is not accepted.*Did you mean 'Pong'"),
    (dict(suite="atari100k", name="SpaceInvader"), r"Did you mean 'SpaceInvaders'"),
    (dict(suite="procgen", name="coin_run"), r"game='coin_run'.*Did you mean 'coinrun'"),
    (dict(suite="dmc", name="cheetah-walk"), r"task='cheetah-walk'.*Did you mean 'cheetah-run'"),
    (dict(suite="atari", name="Pong", mode="test"), r"mode='test' is not accepted; accepted: 'train', 'eval'"),
    (dict(suite="atari", name="Pong", num_envs=0), r"num_envs=0.*integer >= 1"),
    (dict(suite="atari", name="Pong", num_envs=2.0), r"num_envs=2\.0"),
    (dict(suite="atari", name="Pong", seed=-3), r"seed=-3"),
])
def test_bad_arguments_name_the_valid_values(kwargs, match):
  with pytest.raises(ValueError, match=match):
    envs.make(**kwargs)
