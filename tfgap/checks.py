"""Argument checks shared by every tfgap package: one family, one message format.

Pure Python (no TensorFlow, no numpy import), so any package, including the numpy-only
`tfgap.replay`, may use it. Every check returns the normalised value or raises `ValueError` with
the message::

    {name}={value!r} is not accepted; accepted: {what is accepted}.[ Did you mean 'x'?]

Example:

    from tfgap import checks
    steps = checks.check_int("Runner.training_steps", steps, low=1)
    name = checks.check_choice("bottleneck", name, ("flatten", "gap"))
"""

import difflib
import math
import numbers


def reject(name, value, accepted, hint=""):
  """Raises the family's ValueError for `name=value`; `accepted` says what would be accepted."""
  raise ValueError(f"{name}={value!r} is not accepted; accepted: {accepted}.{hint}")


def _is_int(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _range_text(kind, low, high, low_open=False, high_open=False):
  parts = []
  if low is not None:
    parts.append(f"{'>' if low_open else '>='} {low}")
  if high is not None:
    parts.append(f"{'<' if high_open else '<='} {high}")
  return kind + (" " + " and ".join(parts) if parts else "")


def check_int(name, value, *, low=None, high=None, allow_none=False):
  """An integer in [low, high] (either bound optional); returns it as `int`."""
  if allow_none and value is None:
    return None
  if not _is_int(value) or (low is not None and value < low) or (
      high is not None and value > high):
    accepted = _range_text("an integer", low, high) + (", or None" if allow_none else "")
    reject(name, value, accepted)
  return int(value)


def check_float(name, value, *, low=None, high=None, low_open=False, high_open=False,
                allow_none=False):
  """A finite real number within the bounds (open or closed); returns it as `float`."""
  if allow_none and value is None:
    return None
  ok = _is_real(value) and math.isfinite(float(value))
  if ok and low is not None:
    ok = value > low if low_open else value >= low
  if ok and high is not None:
    ok = value < high if high_open else value <= high
  if not ok:
    accepted = _range_text("a finite number", low, high, low_open, high_open)
    reject(name, value, accepted + (", or None" if allow_none else ""))
  return float(value)


def check_positive(name, value, *, integer=False):
  """A number > 0 (an integer-valued one when `integer`); returns int or the number."""
  ok = _is_real(value) and math.isfinite(float(value)) and value > 0
  if integer:
    ok = ok and float(value) == int(value)
  if not ok:
    reject(name, value, "a positive integer" if integer else "a positive number")
  return int(value) if integer else value


def check_bool(name, value):
  """True or False (numpy booleans included); returns a Python bool."""
  if isinstance(value, bool) or type(value).__name__ == "bool_":
    return bool(value)
  reject(name, value, "True or False")


def close_matches(value, accepted, n=3):
  """' Did you mean ...?' for a misspelled string among `accepted` (case-insensitive), or ''."""
  if not isinstance(value, str):
    return ""
  by_lower = {str(a).lower(): a for a in accepted}
  close = difflib.get_close_matches(value.lower(), list(by_lower), n=n, cutoff=0.5)
  if not close:
    return ""
  return f" Did you mean {' or '.join(repr(by_lower[c]) for c in close)}?"


def check_choice(name, value, accepted, *, case_sensitive=False, describe=None):
  """One of `accepted`, returned in its accepted spelling (case-insensitive by default).

  Args:
    name: what the value names, e.g. "bottleneck".
    value: what the user gave.
    accepted: the accepted values.
    case_sensitive: compare strings exactly.
    describe: optional text for the accepted part of the message (for long lists, e.g.
      "one of the 57 Atari games; list them with tfgap.envs.games.list_games('atari')").

  Raises:
    ValueError: naming the value, the accepted ones (or `describe`) and the closest matches.
  """
  accepted = list(accepted)
  if value in accepted and (case_sensitive or not isinstance(value, str)):
    return value
  if isinstance(value, str) and not case_sensitive:
    by_lower = {str(a).lower(): a for a in accepted if isinstance(a, str)}
    if value.lower() in by_lower:
      return by_lower[value.lower()]
  text = describe or ", ".join(map(repr, accepted)) or "none"
  reject(name, value, text, close_matches(value, accepted))


def check_options(name, options, accepted):
  """Keys of the dict `options` must be among `accepted`; returns a copy of the dict."""
  options = dict(options or {})
  for key in options:
    if key not in accepted:
      text = ", ".join(map(repr, accepted)) or "none"
      reject(f"{name} option", key, text, close_matches(key, accepted, n=2))
  return options


__all__ = ["reject", "check_int", "check_float", "check_positive", "check_bool",
           "check_choice", "check_options", "close_matches"]
