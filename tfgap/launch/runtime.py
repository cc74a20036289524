"""Process-wide settings for a tfgap program, made once at start-up, before TensorFlow loads.

Importing a tfgap module changes nothing in the process. What used to happen at import happens
here, called by the command-line tools first thing (and by any script that wants the same):

    from tfgap.launch import runtime
    runtime.prepare_process(renderer=True)   # before importing tensorflow / tf_agents
    import tensorflow as tf

- TF_ENABLE_ONEDNN_OPTS=1 (unless set): TF 2.15 turns its oneDNN CPU kernels on by default only on
  CPUs with AVX-512 VNNI/BF16 or AMX; on the project's AVX2 machines they made the Nature-network
  DQN update ~2x faster (docs/agents.md). TensorFlow reads the variable once, when it is imported.
  Set TF_ENABLE_ONEDNN_OPTS=0 to opt out.
- TF_CPP_MIN_LOG_LEVEL=3 (unless set): quiets TensorFlow's C++ start-up chatter.
- The supported TF/Keras/numpy stack is checked (`tfgap.compat.check_stack`), so a wrong stack
  stops the program with a message naming what to install.
- With `renderer=True`, the MuJoCo renderer is chosen (`tfgap.envs.rendering.ensure_renderer`)
  before TF-Agents is imported, since its import loads dm_control, which reads MUJOCO_GL once.

This module imports neither TensorFlow nor TF-Agents.
"""

import os
import sys
import threading
import warnings

from tfgap import checks

# Set only when absent, so a user's own value always wins.
TF_DEFAULTS = {
    "TF_ENABLE_ONEDNN_OPTS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}

_lock = threading.Lock()
_defaults_done = False


def prepare_process(renderer=False, check_stack=True):
  """Applies tfgap's process-wide defaults; call it before TensorFlow is imported.

  Idempotent: later calls only add what an earlier call did not do (e.g. the renderer).

  Args:
    renderer: also choose the MuJoCo renderer now (a ~0.5 s subprocess probe unless MUJOCO_GL is
      set). For programs that may build DMC environments after importing TF-Agents (the training
      and report tools); without it the first DMC environment chooses.
    check_stack: check the installed TF/Keras/numpy versions (imports TensorFlow, after the
      defaults are set).

  Returns:
    The environment variables this call set, {name: value} (empty when the user set them all,
    or when TensorFlow was already imported).

  Raises:
    tfgap.compat.UnsupportedStackError: when the installed stack is not supported.
    ValueError: for arguments that are not bools.
  """
  global _defaults_done
  renderer = checks.check_bool("renderer", renderer)
  check_stack = checks.check_bool("check_stack", check_stack)
  applied = {}
  with _lock:
    if not _defaults_done:
      missing = {k: v for k, v in TF_DEFAULTS.items() if k not in os.environ}
      if missing and "tensorflow" in sys.modules:
        # TensorFlow read these at its import; setting them now would only mislead child
        # processes and anyone reading os.environ.
        warnings.warn(
            "tfgap.launch.runtime.prepare_process() ran after TensorFlow was imported, so its "
            "defaults (" + ", ".join(f"{k}={v}" for k, v in missing.items()) + ") do not apply "
            "to this process. Call it before importing tensorflow, tf_agents or tfgap.networks/"
            "agents, or set the variables before starting Python.",
            RuntimeWarning, stacklevel=2)
      else:
        os.environ.update(missing)
        applied = missing
      _defaults_done = True
  if renderer:
    # Before TensorFlow and TF-Agents: keeps the probe's subprocess small, and dm_control must not
    # be loaded yet. A failure is kept and raised when a DMC environment is built.
    from tfgap.envs import rendering  # pylint: disable=g-import-not-at-top
    rendering.ensure_renderer(raise_errors=False)
  if check_stack:
    from tfgap import compat  # pylint: disable=g-import-not-at-top
    compat.check_stack()
  return applied
