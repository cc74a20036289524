r"""Plays an exported policy in its environment: scores and a video of the first episode.

    python -m tfgap.launch.evaluate runs/pong_gap                     # the run's newest policy
    python -m tfgap.launch.evaluate runs/pong_gap/policies/iter_000009 --episodes 10 \
        --video pong.mp4
    python -m tfgap.launch.evaluate my_model.keras --suite atari --game Breakout --video b.gif

POLICY is a run directory (its newest `policies/iter_*`), a PolicySaver SavedModel, a SavedModel of
a Keras Q-network, or a `.keras` file. The environment protocol (frame skip, max-pooling, 84x84
grayscale, zero-padded frame stack, ...) comes from the run's `config.gin` when POLICY belongs to a
run, or from `--suite/--game`; evaluation mode gives raw (unclipped) game scores. The video shows
what a person sees (Atari's colour screen), not the agent's grayscale input.
"""

if __name__ == "__main__":
  # `python -m`: before TensorFlow is imported, which reads its oneDNN and log settings once.
  from tfgap.launch import runtime  # pylint: disable=g-import-not-at-top
  runtime.prepare_process(renderer=True)

import argparse
import dataclasses
import importlib
import pathlib
import sys
import time
from typing import List, Optional

import numpy as np

from tfgap import checks

POLICY_PREFIX = "iter_"


@dataclasses.dataclass
class Evaluation:
  """Scores of the episodes played."""
  returns: List[float]
  lengths: List[int]
  video: Optional[str]
  seconds: float
  video_frames: int = 0

  def summary(self):
    r = np.asarray(self.returns, np.float64)
    return (f"{len(r)} episodes: mean {r.mean():.2f}, std {r.std():.2f}, min {r.min():.2f}, "
            f"max {r.max():.2f} (raw game score); mean length {np.mean(self.lengths):.0f} "
            f"steps; {self.seconds:.1f} s")


def find_policy(path):
  """(policy path, run directory or None) for a run dir, a policy folder or a model file."""
  path = pathlib.Path(path).expanduser().resolve()
  if not path.exists():
    checks.reject("POLICY", str(path), "an existing run directory, PolicySaver SavedModel or "
                  ".keras file")
  if path.is_dir() and (path / "config.gin").exists() and (path / "policies").is_dir():
    policies = sorted(p for p in (path / "policies").iterdir()
                      if p.is_dir() and p.name.startswith(POLICY_PREFIX))
    if not policies:
      raise ValueError(f"run directory {path} has no exported policy (policies/iter_*); train "
                       "with Runner.export_policies = True")
    return policies[-1], path
  run = path.parent.parent if path.parent.name == "policies" else None
  if run is not None and not (run / "config.gin").exists():
    run = None
  return path, run


class _Actor:
  """Greedy (or epsilon-greedy) actions from a PolicySaver policy or a Keras Q-network."""

  def __init__(self, path, num_actions, epsilon, seed):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    # PolicySaver's distribution specs are registered by tensorflow_probability's import.
    import tensorflow_probability  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    self._tf = tf
    self.num_actions = num_actions
    self.epsilon = checks.check_float("--epsilon", epsilon, low=0.0, high=1.0)
    self._rng = np.random.default_rng(seed)
    path = pathlib.Path(path)
    if path.suffix in (".keras", ".h5"):
      from tfgap.compat import keras  # pylint: disable=g-import-not-at-top
      import tfgap.networks  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
      self._model, self._policy = keras.models.load_model(str(path)), None
    elif (path / "saved_model.pb").exists():
      loaded = tf.saved_model.load(str(path))
      self._policy = loaded if hasattr(loaded, "action") else None
      self._model = None if self._policy is not None else loaded
    else:
      checks.reject("POLICY", str(path), "a folder with saved_model.pb or a .keras file")

  def __call__(self, time_step):
    tf = self._tf
    if self._policy is not None:
      from tf_agents.trajectories import time_step as ts  # pylint: disable=g-import-not-at-top
      batched = ts.TimeStep(*(tf.constant(np.asarray(x)[None]) for x in time_step))
      action = int(np.asarray(self._policy.action(batched).action)[0])
    else:
      q = np.asarray(self._model(tf.constant(np.asarray(time_step.observation)[None])))
      if q.ndim != 2:
        raise ValueError(f"the Keras model outputs shape {q.shape}; accepted: Q-values "
                         "[batch, actions] (export categorical networks with PolicySaver)")
      action = int(np.argmax(q[0]))
    if self.epsilon and self._rng.random() < self.epsilon:
      action = int(self._rng.integers(self.num_actions))
    return action


def make_env(run_dir, suite, game, seed, max_episode_steps):
  """The evaluation environment: the run's protocol, or suite/game given by flags."""
  overrides = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
  if run_dir is not None and suite is None and game is None:
    import gin  # pylint: disable=g-import-not-at-top
    from tfgap.launch import experiment  # pylint: disable=g-import-not-at-top
    try:
      config = experiment.load_config(run_dir / "config.gin")
    finally:
      gin.clear_config()
    if overrides:
      config = config.replace(eval_env_kwargs=dict(config.eval_env_kwargs or {}, **overrides))
    return experiment.make_env(config, "eval", num_envs=1, seed=seed)
  if suite is None or game is None:
    raise ValueError("--suite and --game are needed for a policy outside a run directory "
                     "(no config.gin names its environment)")
  from tfgap import envs  # pylint: disable=g-import-not-at-top
  return envs.make(suite, game, num_envs=1, seed=seed, mode="eval", **overrides)


def write_video(frames, path, fps=30):
  """Writes RGB frames to .gif (Pillow) or .mp4 (OpenCV); returns the path."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if path.suffix == ".gif":
    from PIL import Image  # pylint: disable=g-import-not-at-top
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                   duration=max(1, int(1000 / fps)))
  elif path.suffix == ".mp4":
    import cv2  # pylint: disable=g-import-not-at-top
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
      raise ValueError(f"OpenCV cannot write {path} here; accepted: a .gif path instead")
    for frame in frames:
      writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
  else:
    checks.reject("--video", str(path), "a path ending in .mp4 or .gif")
  return str(path)


def evaluate(policy, *, suite=None, game=None, episodes=10, seed=0, epsilon=0.001, video=None,
             max_episode_steps=None, progress=True):
  """Plays `episodes` episodes of a policy; returns an `Evaluation`.

  Args:
    policy: run directory, PolicySaver SavedModel folder, Keras SavedModel folder or .keras file.
    suite: tfgap.envs suite (default: the run's).
    game: game or task (default: the run's).
    episodes: episodes to play.
    seed: environment and exploration seed.
    epsilon: probability of a uniform action (Dopamine's evaluation uses 0.001).
    video: .mp4 or .gif path for a video of the first episode, or None.
    max_episode_steps: optional cap on an episode's agent steps.
    progress: print a line per episode.
  """
  episodes = checks.check_int("--episodes", episodes, low=1)
  if video is not None and pathlib.Path(video).suffix not in (".mp4", ".gif"):
    checks.reject("--video", str(video), "a path ending in .mp4 or .gif")
  path, run_dir = find_policy(policy)
  env = make_env(run_dir, suite, game, seed, max_episode_steps)
  try:
    spec = env.action_spec()
    actor = _Actor(path, int(spec.maximum) - int(spec.minimum) + 1, epsilon, seed)
    returns, lengths, frames = [], [], []
    start = time.perf_counter()
    time_step = env.reset()
    env.pop_episode_stats()
    if video:
      frames.append(env.render())
    while len(returns) < episodes:
      time_step = env.step(np.asarray(actor(time_step), spec.dtype))
      if video and not returns:
        frames.append(env.render())
      for episode in env.pop_episode_stats():
        returns.append(episode["return"])
        lengths.append(episode["length"])
        if progress:
          print(f"episode {len(returns)}/{episodes}: return {episode['return']:.2f}, "
                f"{episode['length']} steps", flush=True)
    written = write_video(frames, video) if video else None
    return Evaluation(returns[:episodes], lengths[:episodes], written,
                      time.perf_counter() - start, len(frames))
  finally:
    env.close()


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog="python -m tfgap.launch.evaluate",
      description="Play an exported tfgap policy (or Keras Q-network) in its environment; print "
                  "raw scores and write a video of the first episode.")
  parser.add_argument("policy", help="run directory, policies/iter_* folder, SavedModel or .keras")
  parser.add_argument("--suite", default=None, help="environment suite (default: the run's)")
  parser.add_argument("--game", default=None, help="game or task (default: the run's)")
  parser.add_argument("--episodes", type=int, default=10, help="episodes to play")
  parser.add_argument("--seed", type=int, default=0, help="environment and exploration seed")
  parser.add_argument("--epsilon", type=float, default=0.001,
                      help="probability of a uniform action (Dopamine's evaluation: 0.001)")
  parser.add_argument("--video", default=None, help="write the first episode to OUT.mp4 or .gif")
  parser.add_argument("--max_episode_steps", type=int, default=None,
                      help="cap an episode's agent steps")
  parser.add_argument("--import_module", action="append", default=[],
                      help="module(s) to import first (e.g. one registering a custom env_fn or "
                           "bottleneck named in the run's config)")
  return parser.parse_args(argv)


def main(argv=None):
  """Runs the CLI; returns the exit code."""
  args = parse_args(sys.argv[1:] if argv is None else argv)
  try:
    if "" not in sys.path:
      sys.path.insert(0, "")
    for name in args.import_module:
      try:
        importlib.import_module(name)
      except ImportError as err:
        raise ValueError(f"--import_module {name!r} cannot be imported ({err})") from err
    result = evaluate(args.policy, suite=args.suite, game=args.game, episodes=args.episodes,
                      seed=args.seed, epsilon=args.epsilon, video=args.video,
                      max_episode_steps=args.max_episode_steps)
  except ValueError as err:
    print(f"tfgap evaluate: error: {err}", file=sys.stderr)
    return 1
  print(result.summary())
  if result.video:
    print(f"video of the first episode: {result.video}")
  return 0


def run():
  """Console entry point (`tfgap-evaluate`)."""
  sys.exit(main())


if __name__ == "__main__":
  run()
