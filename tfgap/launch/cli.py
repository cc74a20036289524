"""Console-script entry points (`tfgap-train`, `tfgap-describe`, `tfgap-report`, `tfgap-study`;
setup.py).

A console script imports its entry point's module before calling it, and the tools' modules
import TensorFlow at their top, too early for `runtime.prepare_process()`. So the scripts point
here: each function prepares the process, then imports its tool and runs it, exactly as
`python -m tfgap.launch.<tool>` does (those call `prepare_process()` under `__main__`).
"""

import importlib

from tfgap.launch import runtime


def _run(module_name, renderer):
  runtime.prepare_process(renderer=renderer)
  return importlib.import_module(module_name).run()


def train():
  """`tfgap-train`: `python -m tfgap.launch.train`."""
  return _run("tfgap.launch.train", renderer=True)


def describe():
  """`tfgap-describe`: `python -m tfgap.launch.describe` (networks only: no renderer)."""
  return _run("tfgap.launch.describe", renderer=False)


def report():
  """`tfgap-report`: `python -m tfgap.launch.report` (`--policy` evaluates in environments)."""
  return _run("tfgap.launch.report", renderer=True)


def evaluate():
  """`tfgap-evaluate`: `python -m tfgap.launch.evaluate` (plays policies in environments)."""
  return _run("tfgap.launch.evaluate", renderer=True)


def study():
  """`tfgap-study`: `python -m tfgap.launch.study` (trials choose the renderer in their worker)."""
  runtime.prepare_process()
  from tfgap.launch import study as study_lib  # pylint: disable=g-import-not-at-top
  return study_lib.run_cli()
