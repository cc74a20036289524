"""DeepMind Control Suite from pixels (dm-control 1.0.50 + MuJoCo 3.17), the pixel-SAC protocol.

84x84 RGB frames from camera 0 (camera 2 for quadruped), a stack of the last 3 frames on the
channel axis (84x84x9, oldest first, zero-padded at episode start), action repeat per domain
(cartpole 8, walker and finger 2, others 4; rewards summed over the repeats), continuous
actions as a float32 BoundedArraySpec. Episodes are the suite's 1000 physics steps, a time limit:
the LAST step keeps discount 1.

Rendering is the whole cost on a CPU (Mesa). The renderer is chosen when the first DMC env is
built, before this module (and with it TF-Agents and dm_control) is imported
(tfgap.envs.rendering). A batch is a list of envs stepped in turn: Mesa's llvmpipe already
renders on several threads, so worker processes would not add speed on 2 cores.
"""

import atexit
import queue
import threading
import weakref

import numpy as np
from tf_agents.specs import array_spec

from tfgap.envs import core
from tfgap.envs import rendering


def _import_suite():
  rendering.ensure_renderer()
  from dm_control import suite  # pylint: disable=g-import-not-at-top
  return suite


class DMCGame:
  """One dm_control task rendering pixel frames with the protocol's settings."""

  def __init__(self, domain, task, seed, protocol):
    suite = _import_suite()
    if (domain, task) not in suite.ALL_TASKS:
      from tfgap.envs import games  # pylint: disable=g-import-not-at-top
      raise games.unknown_name_error("DMC task", f"{domain}-{task}",
                                     [f"{d}-{t}" for d, t in suite.ALL_TASKS])
    self.env = suite.load(domain, task, task_kwargs={"random": seed})
    if protocol["shadow_size"] is not None:
      # Must happen before the first render, which sizes the shadow map.
      self.env.physics.model.vis.quality.shadowsize = protocol["shadow_size"]
    self._repeat = protocol["action_repeat"]
    self._size = protocol["image_size"]
    self._camera = protocol["camera_id"]
    spec = self.env.action_spec()
    self.minimum = spec.minimum.astype(np.float32)
    self.maximum = spec.maximum.astype(np.float32)
    self.action_shape = spec.shape
    self._rendered = False
    # Render once now: a broken renderer fails at construction, and the GL contexts exist
    # before make_dmc registers its exit hook.
    self.render()

  def render(self):
    try:
      frame = self.env.physics.render(height=self._size, width=self._size,
                                      camera_id=self._camera)
    except Exception as e:  # pylint: disable=broad-except
      if self._rendered:
        raise
      raise rendering.RendererUnavailableError(
          rendering.render_failure_message(rendering.ensure_renderer(), e)) from e
    self._rendered = True
    return frame

  def reset(self):
    self.env.reset()
    return self.render()

  def step(self, action):
    action = np.clip(np.asarray(action, np.float64), self.minimum, self.maximum)
    reward = 0.0
    step = None
    for _ in range(self._repeat):
      step = self.env.step(action)
      reward += step.reward or 0.0
      if step.last():
        break
    terminated = step.last() and step.discount == 0.0
    truncated = step.last() and not terminated
    return self.render(), reward, terminated, truncated, False

  def close(self):
    env, self.env = self.env, None
    if env is not None:
      env.physics.free()


class RenderThread:
  """One daemon thread that runs every MuJoCo call of a DMC environment.

  dm_control's EGL context uses a pass-through executor: a context is bound to the thread that
  first made it current, and rendering from another thread raises. TFPyEnvironment calls the
  environment from TensorFlow's threads, so all MuJoCo work goes to this one thread. (A plain
  thread rather than concurrent.futures: that one refuses work once interpreter exit begins,
  when the at-exit close still has to free the contexts.)
  """

  def __init__(self, name="tfgap-dmc-render", timeout=600.0):
    self._jobs = queue.Queue()
    self._timeout = timeout
    self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
    self._thread.start()

  def _loop(self):
    while True:
      job = self._jobs.get()
      if job is None:
        return
      fn, args, box, done = job
      try:
        box["result"] = fn(*args)
      except BaseException as e:  # pylint: disable=broad-except
        box["error"] = e
      finally:
        done.set()

  def call(self, fn, *args):
    """Runs `fn(*args)` on the render thread and returns its result (or raises its error)."""
    if threading.current_thread() is self._thread:
      return fn(*args)
    if not self._thread.is_alive():
      raise RuntimeError("The DMC render thread is not running (environment closed?).")
    box, done = {}, threading.Event()
    self._jobs.put((fn, args, box, done))
    if not done.wait(self._timeout):
      raise RuntimeError(f"MuJoCo did not answer within {self._timeout:.0f} s (render hung?).")
    if "error" in box:
      raise box["error"]
    return box["result"]

  def stop(self):
    if self._thread.is_alive():
      self._jobs.put(None)
      self._thread.join(timeout=self._timeout)


class _OnRenderThread:
  """A DMCGame whose every call runs on a RenderThread."""

  def __init__(self, thread, factory):
    self._thread = thread
    self.game = thread.call(factory)

  def reset(self):
    return self._thread.call(self.game.reset)

  def step(self, action):
    return self._thread.call(self.game.step, action)

  def close(self):
    self._thread.call(self.game.close)

  def __getattr__(self, name):
    # Plain attributes (action bounds, the dm_control env for inspection).
    return getattr(self.__dict__["game"], name)


def _close_at_exit(env_ref):
  env = env_ref()
  if env is not None:
    try:
      env.close()
    except Exception:  # pylint: disable=broad-except
      pass


def make_dmc(name, domain, task, num_envs, seed, mode, protocol, batched):
  """Builds a (list-batched) pixel DMC environment."""
  thread = RenderThread()
  try:
    games = [_OnRenderThread(thread, lambda i=i: DMCGame(domain, task, seed + i, protocol))
             for i in range(num_envs)]
  except BaseException:
    thread.stop()
    raise
  size = protocol["image_size"]
  first = games[0]
  action_spec = array_spec.BoundedArraySpec(first.action_shape, np.float32, first.minimum,
                                            first.maximum, name="action")
  env = core.SerialEnv(
      games, clip_rewards=False, terminal_on_life_loss=False, max_episode_steps=None,
      suite="dmc", name=name, mode=mode, batched=batched, protocol=protocol, seed=seed,
      frame_shape=(size, size, 3), stack_size=protocol["stack_size"], action_spec=action_spec,
      on_close=thread.stop)
  # An env left open at exit: free its GL contexts on their thread before dm_control's own exit
  # hooks run (from the main thread they fail and print errors). Registered after the games
  # rendered once, so it runs first (exit hooks run last in, first out). threading's hook list
  # runs before concurrent.futures stops the OSMesa render executor; atexit is the fallback.
  try:
    threading._register_atexit(_close_at_exit, weakref.ref(env))  # pylint: disable=protected-access
  except (AttributeError, RuntimeError):
    atexit.register(_close_at_exit, weakref.ref(env))
  return env
