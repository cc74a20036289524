"""Choosing an OpenGL backend for MuJoCo/dm_control before either is imported.

dm_control and mujoco read MUJOCO_GL once, at import. On a machine without a GPU the backends
that work are Mesa's: EGL (surfaceless llvmpipe) and OSMesa. `ensure_renderer()` keeps a MUJOCO_GL
the user set; otherwise it tries EGL, then OSMesa (with PYOPENGL_PLATFORM=osmesa), each in a
short-lived subprocess so that a failing backend cannot poison this process, and sets the
environment variables of the first that renders.
"""

import os
import subprocess
import sys

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

_chosen = None
_error = None


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


def missing_renderer_message(failures):
  tried = "; ".join(f"MUJOCO_GL={b}: {why}" for b, why in failures.items())
  return (
      "DMC from pixels needs an OpenGL renderer for MuJoCo and none works here (" + tried + "). "
      "On Debian/Ubuntu install Mesa's EGL: `apt-get install -y " +
      " ".join(SYSTEM_PACKAGES["egl"]) + "`, or OSMesa: `apt-get install -y " +
      " ".join(SYSTEM_PACKAGES["osmesa"]) + "` (scripts/install_system_deps.sh does this). "
      "To force a backend, set MUJOCO_GL=egl or MUJOCO_GL=osmesa (with PYOPENGL_PLATFORM=osmesa) "
      "before starting Python.")


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
  """Makes sure MUJOCO_GL is set (probing EGL then OSMesa) before dm_control is imported.

  `import tfgap.envs` calls this (with raise_errors=False) so the choice precedes TF-Agents,
  whose import loads dm_control's renderer module as a side effect. The result is cached.

  Args:
    raise_errors: raise when no backend renders (else remember the error and raise it on the
      next call that asks for errors, i.e. when a DMC environment is built).

  Returns:
    The MUJOCO_GL backend in use, or None when no backend renders and raise_errors is False.

  Raises:
    RendererUnavailableError: when no backend renders (naming the system packages).
  """
  global _chosen, _error
  if _chosen is None and _error is None:
    try:
      _chosen = _choose()
    except RendererUnavailableError as e:
      _error = e
  if _error is not None and raise_errors:
    raise _error
  return _chosen


def _choose():
  user_choice = os.environ.get("MUJOCO_GL")
  if user_choice:
    # Respect the user's choice; rendering errors later still name the packages.
    if user_choice == "osmesa":
      os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    return user_choice
  loaded = sys.modules.get("dm_control._render")
  if loaded is not None:
    # Too late to choose: dm_control picked a backend when it was imported (it tries glfw, egl,
    # osmesa by import success). Use it if it found one.
    backend = getattr(loaded, "BACKEND", None)
    if backend is None:
      raise RendererUnavailableError(missing_renderer_message(
          {"auto": "dm_control was imported before tfgap.envs and found no OpenGL backend"}))
    return backend
  backend = select_renderer()
  os.environ.update(backend_env(backend))
  return backend
