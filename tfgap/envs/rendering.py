"""Choosing an OpenGL backend for MuJoCo/dm_control, when a DMC environment first needs one.

dm_control reads MUJOCO_GL once, when `dm_control._render` is imported, and `import tf_agents`
imports it (TF-Agents' environments package loads its dm_control suite). On a machine without a GPU
the backends that work are Mesa's: EGL (surfaceless llvmpipe) and OSMesa. `ensure_renderer()`
keeps a MUJOCO_GL the user set; otherwise it tries EGL, then OSMesa (with PYOPENGL_PLATFORM=osmesa),
each in a short-lived subprocess so that a failing backend cannot poison this process, and sets the
environment variables of the first that renders.

Nothing happens at import: `tfgap.envs.make("dmc", ...)` calls `ensure_renderer()` before it
imports TF-Agents, and the command-line tools call it at start-up
(`tfgap.launch.runtime.prepare_process(renderer=True)`). If dm_control was imported before that,
its own choice stands (glfw, EGL, OSMesa by import success); when it found none, or its choice
cannot render, the error says how to let tfgap choose.
"""

import os
import subprocess
import sys
import threading

SYSTEM_PACKAGES = {
    "egl": ("libegl1", "libegl-mesa0", "libgl1-mesa-dri"),
    "osmesa": ("libosmesa6",),
}
CANDIDATES = ("egl", "osmesa")
PROBE_TIMEOUT_S = 60.0

# Renders one 8x8 frame through dm_control's own OpenGL path.
_PROBE = """
from dm_control import _render
renderer = _render.Renderer(max_width=8, max_height=8)
renderer.free()
print("ok")
"""

# Who chose the backend in use: "user" (MUJOCO_GL was set), "tfgap" (probed here) or "dm_control"
# (it was imported before tfgap could choose and picked one itself).
_chosen = None
_source = None
_error = None
_lock = threading.Lock()  # Two envs built at once on two threads probe once.

_LET_TFGAP_CHOOSE = (
    "build the first DMC environment, or call `tfgap.envs.rendering.ensure_renderer()`, before "
    "importing tf_agents (tfgap.networks and tfgap.agents import it)")
_TOO_LATE_HINT = (
    "dm_control was imported (`import tf_agents` imports it) before tfgap chose a renderer, so "
    "dm_control's own choice stands. To let tfgap choose, " + _LET_TFGAP_CHOOSE + ", or set "
    "MUJOCO_GL before starting Python.")


class RendererUnavailableError(RuntimeError):
  """No OpenGL backend can render for MuJoCo; the message names the packages to install."""


def backend_env(backend):
  """Environment variables selecting `backend`."""
  env = {"MUJOCO_GL": backend}
  if backend == "osmesa":
    env["PYOPENGL_PLATFORM"] = "osmesa"
  elif backend == "egl":
    env["PYOPENGL_PLATFORM"] = "egl"
  return env


def probe(backend, extra_env=None, timeout=PROBE_TIMEOUT_S):
  """Tries to render with `backend` in a subprocess.

  Args:
    backend: a MUJOCO_GL value ("egl", "osmesa", "glfw").
    extra_env: further environment variables for the subprocess (tests use this to hide a
      backend's libraries).
    timeout: seconds before the probe counts as failed.

  Returns:
    None if it rendered, else a short description of the failure.
  """
  env = dict(os.environ)
  env.update(backend_env(backend))
  env.update(extra_env or {})
  try:
    result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
  except subprocess.TimeoutExpired:
    return f"timed out after {timeout:.0f} s"
  if result.returncode == 0 and "ok" in result.stdout:
    return None
  lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
  return lines[-1] if lines else f"exit code {result.returncode}"


def missing_renderer_message(failures, hint=""):
  """The error text when no backend renders: what failed, the packages, how to force a backend.

  Args:
    failures: {backend: why it failed}.
    hint: a sentence appended to the message.
  """
  tried = "; ".join(f"MUJOCO_GL={b}: {why}" for b, why in failures.items())
  return (
      "DMC from pixels needs an OpenGL renderer for MuJoCo and none works here (" + tried + "). "
      "On Debian/Ubuntu install Mesa's EGL: `apt-get install -y " +
      " ".join(SYSTEM_PACKAGES["egl"]) + "`, or OSMesa: `apt-get install -y " +
      " ".join(SYSTEM_PACKAGES["osmesa"]) + "` (scripts/install_system_deps.sh does this). "
      "To force a backend, set MUJOCO_GL=egl or MUJOCO_GL=osmesa (with PYOPENGL_PLATFORM=osmesa) "
      "before starting Python." + (" " + hint if hint else ""))


def render_failure_message(backend, error):
  """The error text when `backend` was chosen but a render failed with `error`."""
  hint = _TOO_LATE_HINT if _source == "dm_control" else ""
  return missing_renderer_message({backend: f"{type(error).__name__}: {error}"}, hint)


def select_renderer(candidates=CANDIDATES, extra_env=None):
  """Returns the first backend of `candidates` that renders.

  Raises:
    RendererUnavailableError: if none does, naming the system packages to install.
  """
  failures = {}
  for backend in candidates:
    why = probe(backend, extra_env)
    if why is None:
      return backend
    failures[backend] = why
  raise RendererUnavailableError(missing_renderer_message(failures))


def ensure_renderer(raise_errors=True):
  """Chooses the MuJoCo OpenGL backend for this process, once, before dm_control renders.

  Keeps a MUJOCO_GL the user set; otherwise, if dm_control is not imported yet, probes EGL then
  OSMesa (a subprocess each, ~0.5 s) and exports the first that renders (MUJOCO_GL and
  PYOPENGL_PLATFORM, which child processes inherit). If dm_control was imported first, its own
  choice is the one in use. Called by the first DMC environment (before TF-Agents is imported)
  and by `tfgap.launch.runtime.prepare_process(renderer=True)`; the result is cached.

  Args:
    raise_errors: raise when no backend renders (else remember the error and raise it on the
      next call that asks for errors, i.e. when a DMC environment is built).

  Returns:
    The MUJOCO_GL backend in use, or None when no backend renders and raise_errors is False.

  Raises:
    RendererUnavailableError: when no backend renders (naming the system packages), or when
      dm_control was imported first and found none (saying how to let tfgap choose).
  """
  global _chosen, _source, _error
  with _lock:
    if _chosen is None and _error is None:
      try:
        _chosen, _source = _choose()
      except RendererUnavailableError as e:
        _error = e
  if _error is not None and raise_errors:
    raise _error
  return _chosen


def _choose():
  loaded = sys.modules.get("dm_control._render")
  if loaded is not None:
    # Too late to choose: dm_control read MUJOCO_GL (or tried glfw, EGL, OSMesa by import
    # success) when it was imported. After a failed EGL import its OSMesa fallback fails too
    # (EGL's import already set PYOPENGL_PLATFORM=egl), and PyOpenGL cannot switch platforms in a
    # running process, so there is nothing to repair here.
    backend = getattr(loaded, "BACKEND", None)
    if backend is None:
      raise RendererUnavailableError(_too_late_message())
    return backend, ("user" if os.environ.get("MUJOCO_GL") else "dm_control")
  user_choice = os.environ.get("MUJOCO_GL")
  if user_choice:
    # Respect the user's choice (dm_control sets PYOPENGL_PLATFORM to match); rendering errors
    # later still name the packages.
    return user_choice, "user"
  backend = select_renderer()
  os.environ.update(backend_env(backend))
  return backend, "tfgap"


def _too_late_message():
  """dm_control chose no backend before tfgap could: say what would work and how to get it."""
  try:
    works = select_renderer()
  except RendererUnavailableError as e:
    return f"{e} ({_TOO_LATE_HINT})"
  setting = " ".join(f"{k}={v}" for k, v in backend_env(works).items())
  return (
      "dm_control was imported (`import tf_agents` imports it) before tfgap chose a MuJoCo "
      "renderer, and found none itself (with MUJOCO_GL unset it tries glfw, EGL, then OSMesa, "
      "and after a failed EGL import its OSMesa fallback fails too). A fresh process renders "
      f"with {setting}: set that before starting Python, or " + _LET_TFGAP_CHOOSE + ".")
