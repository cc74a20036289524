"""tfgap.launch.evaluate: play an exported policy with its run's protocol, scores and video."""

import subprocess
import sys

import gin
import numpy as np
import pytest
from PIL import Image

from tests.agents import pixel_task  # noqa: F401  (registers @tests.make_band_env with gin)
from tests.launch.test_train import make_runner
from tfgap.launch import evaluate
from tfgap.launch import train


@pytest.fixture(scope="module")
def band_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("evaluate") / "run"
  gin.clear_config()
  runner = make_runner(root, ["Runner.num_iterations = 1", "Runner.export_policies = True",
                              "Runner.training_steps = 400"])
  record = runner.run()[0]
  gin.clear_config()
  return root, record


def test_a_run_directory_plays_its_newest_policy_with_the_runs_protocol(band_run, tmp_path,
                                                                         capsys):
  root, record = band_run
  video = tmp_path / "first.gif"
  assert evaluate.main([str(root), "--episodes", "3", "--epsilon", "0", "--video",
                        str(video)]) == 0
  out = capsys.readouterr().out
  assert "3 episodes: mean" in out and "video of the first episode" in out
  with Image.open(video) as gif:
    assert gif.convert("RGB").size == (12, 12)
  # The band env's episodes last 10 agent steps: the reset frame and 10 steps make the video.
  result = evaluate.evaluate(root, episodes=1, epsilon=0.0, video=str(video), progress=False)
  assert result.video_frames == 11
  result = evaluate.evaluate(root / "policies" / "iter_000000", episodes=4, epsilon=0.0,
                             progress=False)
  assert len(result.returns) == 4 and result.lengths == [10] * 4
  # The same greedy policy as the run's own evaluation: far above random (10/3 per episode).
  assert np.mean(result.returns) > 5.0 and record["eval_return"] > 5.0


def test_bad_input_is_one_line(band_run, tmp_path, capsys):
  root, _ = band_run
  assert evaluate.main([str(tmp_path / "nothing")]) == 1
  assert "POLICY=" in capsys.readouterr().err
  assert evaluate.main([str(root), "--video", str(tmp_path / "x.avi")]) == 1
  assert "--video=" in capsys.readouterr().err
  # A SavedModel outside a run names no environment.
  lone = tmp_path / "lone"
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.copytree(root / "policies" / "iter_000000", lone)
  assert evaluate.main([str(lone)]) == 1
  assert "--suite and --game are needed" in capsys.readouterr().err


@pytest.mark.slow
def test_atari_policy_in_a_fresh_process_writes_the_colour_screen(tmp_path):
  root = tmp_path / "pong"
  train.train(str(root), gin_bindings=[
      "Runner.suite='atari'", "Runner.game='Pong'", "Runner.num_iterations=1",
      "Runner.training_steps=120", "Runner.replay_capacity=500", "Runner.dormant_batch_size=0",
      "Runner.progress_bar=False", "DQNAgent.min_replay_history=64", "DQNAgent.batch_size=8",
      "build_q_network.bottleneck='gap'", "build_q_network.head_units=(32,)"])
  video = tmp_path / "pong.mp4"
  result = subprocess.run(
      [sys.executable, "-m", "tfgap.launch.evaluate", str(root), "--episodes", "1",
       "--max_episode_steps", "50", "--video", str(video)],
      capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "1 episodes: mean" in result.stdout
  import cv2  # pylint: disable=g-import-not-at-top
  capture = cv2.VideoCapture(str(video))
  ok, frame = capture.read()
  count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
  capture.release()
  # The emulator's colour screen (210x160), the reset frame and 50 steps.
  assert ok and frame.shape == (210, 160, 3) and count == 51
  assert frame.std(axis=2).max() > 0  # Colour, not grayscale repeated.
