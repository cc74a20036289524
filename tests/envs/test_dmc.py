"""DMC from pixels on real dm_control + MuJoCo + Mesa: frames, stacks, repeats, renderer."""

import os
import subprocess
import sys

import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

from tfgap import envs
from tfgap.envs import rendering

FIRST, MID, LAST = int(ts.StepType.FIRST), int(ts.StepType.MID), int(ts.StepType.LAST)


def _fresh_python(code, **env_vars):
  env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
  env.update(env_vars)
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120, check=True)
  return out.stdout.split()


@pytest.mark.parametrize("user_choice,expected", [(None, ["egl", "egl", "False"]),
                                                  ("osmesa", ["osmesa", "osmesa", "False"])])
def test_renderer_is_chosen_at_import_before_dm_control(user_choice, expected):
  # A fresh interpreter: `import tfgap.envs` picks EGL (this machine has Mesa's EGL) or keeps the
  # user's MUJOCO_GL, before dm_control (imported by any `import tf_agents`) is loaded.
  code = ("import os, sys\nimport tfgap.envs\n"
          "print(os.environ['MUJOCO_GL'], os.environ.get('PYOPENGL_PLATFORM'),"
          " 'dm_control._render' in sys.modules)")
  extra = {"MUJOCO_GL": user_choice} if user_choice else {}
  assert _fresh_python(code, **extra) == expected


@pytest.mark.parametrize("num_envs", [1, 2])
def test_pixels_shapes_and_zero_padded_stack(num_envs):
  env = envs.make("dmc", "cartpole-swingup", num_envs=num_envs, seed=0)
  try:
    assert env.observation_spec().shape == (84, 84, 9)
    assert env.observation_spec().dtype == np.uint8
    assert env.frame_shape == (84, 84, 3) and env.stack_size == 3
    spec = env.action_spec()
    assert spec.shape == (1,) and spec.dtype == np.float32
    assert np.all(spec.minimum == -1.0) and np.all(spec.maximum == 1.0)
    first = env.reset()
    obs = first.observation if num_envs > 1 else first.observation[None]
    assert obs.shape == (num_envs, 84, 84, 9)
    assert not obs[..., :6].any()  # Two zero frames before the first real one.
    assert obs[..., 6:].reshape(num_envs, -1).std(axis=1).min() > 0
    action = np.ones((num_envs, 1), np.float32) if num_envs > 1 else np.ones(1, np.float32)
    step = env.step(action)
    obs2 = step.observation if num_envs > 1 else step.observation[None]
    np.testing.assert_array_equal(obs2[..., 3:6], obs[..., 6:])
    # The cart moved: the newest frame differs from the reset frame and is not constant.
    assert not np.array_equal(obs2[..., 6:], obs[..., 6:])
    assert obs2[..., 6:].reshape(num_envs, -1).std(axis=1).min() > 0
    assert np.all(step.step_type == MID)
  finally:
    env.close()


def test_action_repeat_and_time_limit_truncation():
  # cartpole's 1000 physics steps at a repeat of 100 end after 10 agent steps, with discount 1.
  env = envs.make("dmc", "cartpole-balance", action_repeat=100, shadow_size=512)
  try:
    assert env.games[0].env.physics.model.vis.quality.shadowsize == 512
    env.reset()
    types, rewards = [], []
    for _ in range(11):
      step = env.step(np.zeros(1, np.float32))
      types.append(int(step.step_type))
      rewards.append(float(step.reward))
      if step.step_type == LAST:
        assert step.discount == 1.0
    assert types == [MID] * 9 + [LAST, FIRST]
    # Rewards are summed over the repeat: balance pays up to 1 per physics step.
    assert max(rewards) > 1.0
    stats = env.pop_episode_stats()
    assert len(stats) == 1 and stats[0]["length"] == 10
    assert stats[0]["return"] == pytest.approx(sum(rewards[:10]), rel=1e-5)
  finally:
    env.close()
    env.close()


def test_missing_renderer_error_names_system_packages():
  # Hide every EGL vendor library from the probe: EGL cannot start, as on a bare machine.
  with pytest.raises(rendering.RendererUnavailableError) as info:
    rendering.select_renderer(candidates=("egl",),
                              extra_env={"__EGL_VENDOR_LIBRARY_FILENAMES": "/nonexistent.json"})
  message = str(info.value)
  for package in ("libegl1", "libegl-mesa0", "libgl1-mesa-dri", "libosmesa6"):
    assert package in message
  assert "MUJOCO_GL=egl" in message


def test_falls_back_to_osmesa_when_egl_is_missing():
  backend = rendering.select_renderer(
      extra_env={"__EGL_VENDOR_LIBRARY_FILENAMES": "/nonexistent.json"})
  assert backend == "osmesa"


def test_make_tf_renders_from_tensorflow_threads():
  # tf.function runs the py_function on TensorFlow's threads, not the thread that built the env.
  import tensorflow as tf
  tf_env = envs.make_tf("dmc", "cartpole-swingup", num_envs=2)
  try:
    first = tf_env.reset()
    assert first.observation.shape == (2, 84, 84, 9)

    @tf.function
    def step():
      return tf_env.step(tf.ones([2, 1]))

    for _ in range(3):
      out = step()
    assert out.observation.dtype == tf.uint8
    assert out.step_type.numpy().tolist() == [MID, MID]
    assert float(tf.math.reduce_std(tf.cast(out.observation[..., 6:], tf.float32))) > 0
  finally:
    tf_env.pyenv.close()
    tf_env.pyenv.close()
