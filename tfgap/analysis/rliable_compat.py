"""Imports rliable (Agarwal et al., 2021) on the project's stack.

rliable.library imports `arch`; arch 7.x (the last series rliable 1.2.0 accepts) decorates a method
with pandas' private `deprecate_kwarg(old_name, new_name)`, whose signature pandas 3 changed to
`deprecate_kwarg(warning_class, old_name, new_name)`. With pandas >= 3 importing arch then fails
with "deprecate_kwarg() missing 1 required positional argument". That decorator only renames a
keyword of an ARCH plotting method we never call, so when (and only when) that exact failure
happens we import arch once with an adapter for the old signature, then put pandas' function back.
Pinning pandas < 3 makes this path unused.
"""

import importlib
import sys
import threading

_LOCK = threading.Lock()
_MODULES = None


def _import_all():
  library = importlib.import_module("rliable.library")
  metrics = importlib.import_module("rliable.metrics")
  return library, metrics


def _drop_partial_imports():
  for name in list(sys.modules):
    if name == "arch" or name.startswith("arch.") or name == "rliable.library":
      del sys.modules[name]


def _import_with_pandas3_adapter():
  from pandas.util import _decorators  # pylint: disable=g-import-not-at-top
  original = _decorators.deprecate_kwarg

  def adapter(*args, **kwargs):
    # Old call style: deprecate_kwarg("old", "new", ...). New: (WarningClass, "old", "new", ...).
    if args and isinstance(args[0], str):
      args = (FutureWarning,) + args
    return original(*args, **kwargs)

  _decorators.deprecate_kwarg = adapter
  try:
    _drop_partial_imports()
    return _import_all()
  finally:
    _decorators.deprecate_kwarg = original


def modules():
  """Returns (rliable.library, rliable.metrics), importing them once.

  Raises:
    ImportError: when rliable is missing or fails to import for another reason.
  """
  global _MODULES
  with _LOCK:
    if _MODULES is None:
      try:
        _MODULES = _import_all()
      except TypeError as err:
        if "deprecate_kwarg" not in str(err):
          raise
        _MODULES = _import_with_pandas3_adapter()
    return _MODULES
