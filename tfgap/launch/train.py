r"""Train and evaluate a tfgap agent: `python -m tfgap.launch.train --root_dir DIR --gin_file F`.

    python -m tfgap.launch.train --root_dir runs/demo --gin_file tfgap/launch/configs/demo.gin
    python -m tfgap.launch.train --root_dir runs/pong_gap --gin_file dqn.gin \
        --gin_file impala.gin --gin_file bottleneck_gap.gin --gin_bindings "Runner.game='Pong'"

The loop (`Runner.run`) reads top to bottom: each iteration runs `training_steps` environment
steps (act epsilon-greedily, step, store the transition, update the agent every `update_period`
steps once `min_replay_history` steps are stored), then evaluates (epsilon 0.001, raw game
scores), appends a line to `metrics.jsonl`, exports the greedy policy as a SavedModel and writes
a checkpoint. Everything lives under `root_dir`:

    train/, eval/            TensorBoard events (returns, loss, steps/s, epsilon, sparsity, dormant)
    metrics.jsonl            one JSON object per iteration (fields: docs/DESIGN.md)
    checkpoints/ckpt-NNNNNN  networks, optimizer, replay, counters, RNG states (last 2 kept)
    policies/iter_NNNNNN     PolicySaver SavedModels of the greedy policy
    config.gin               the operative gin config of the run

Rerunning with the same root_dir resumes from the latest valid checkpoint; a different config is
refused unless --force.
"""

if __name__ == "__main__":
  # `python -m`: before TensorFlow is imported, which reads its oneDNN and log settings once.
  from tfgap.launch import runtime  # pylint: disable=g-import-not-at-top
  runtime.prepare_process(renderer=True)

import logging as std_logging
import sys

from absl import app
from absl import flags
from absl import logging
import gin
import tensorflow as tf

from tfgap.launch import common
from tfgap.launch import experiment
from tfgap.launch import rundir
from tfgap.launch.runner import ConfigMismatchError
from tfgap.launch.runner import NaNLossError
from tfgap.launch.runner import Runner

# ------------------------------------------------------------------ command line

flags.DEFINE_string("root_dir", None, "Output folder (resumed if it holds a run).")
flags.DEFINE_multi_string("gin_file", [], "gin config files (paths or packaged names, e.g. "
                          "demo.gin); later files override earlier ones.")
flags.DEFINE_multi_string("gin_bindings", [], "gin bindings, e.g. \"Runner.game='Breakout'\".")
flags.DEFINE_boolean("force", False, "Continue a run in root_dir whose saved config differs.")
flags.DEFINE_boolean("restart", False, "Start the run in root_dir over (its metrics, checkpoints "
                     "and config are moved aside to *.old-<time>); for a run whose checkpoints "
                     "are all unusable.")
flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads (0: TF's default, one "
                     "per core).")
flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads (0: TF's default).")
FLAGS = flags.FLAGS


_NOISE = ("is not a valid tf.function parameter name", "Found untraced functions",
          "Assets written to", "Writing fingerprint", "with unsupported characters",
          "system_path_file_exists", "gin-config opened", "Path not found:")


class _DropNoise(std_logging.Filter):
  """Drops the INFO/WARNING chatter of PolicySaver and gin that says nothing about the run."""

  def filter(self, record):
    message = str(record.getMessage())
    return not any(n in message for n in _NOISE)


def quiet_logs(verbose=False):
  """Keeps the console to the progress bar, the per-iteration lines and real warnings."""
  if not verbose:
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
  noise = _DropNoise()
  for logger in (std_logging.getLogger(), std_logging.getLogger("absl"), tf.get_logger()):
    logger.addFilter(noise)
  for handler in std_logging.getLogger().handlers + [logging.get_absl_handler()]:
    handler.addFilter(noise)


def parse_config(gin_files, gin_bindings):
  """Registers tfgap with gin and parses files and bindings; clear ValueErrors on bad input."""
  experiment.register()
  files = [common.resolve_gin_file(f) for f in gin_files]
  quiet = _DropGinSearchNoise()
  std_logging.getLogger().addFilter(quiet)
  try:
    gin.parse_config_files_and_bindings(files, gin_bindings, finalize_config=False)
  except (ValueError, KeyError, SyntaxError, IOError) as e:
    raise ValueError(f"gin config error in {files} / bindings {list(gin_bindings)}: {e}") from e
  finally:
    std_logging.getLogger().removeFilter(quiet)


class _DropGinSearchNoise(std_logging.Filter):
  """gin logs an error for every include it then finds on the search path (the config folder)."""

  def filter(self, record):
    return not str(record.getMessage()).startswith("Path not found:")


def train(root_dir, gin_files=(), gin_bindings=(), force=False, restart=False):
  """Parses the config and runs a `Runner` in root_dir; returns its metrics records."""
  gin.clear_config()
  parse_config(gin_files, gin_bindings)
  runner = Runner(root_dir, force=force or None, restart=restart or None)
  return runner.run()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.root_dir:
    raise app.UsageError("--root_dir is required.")
  if not FLAGS.gin_file and not FLAGS.gin_bindings:
    raise app.UsageError("Give at least one --gin_file (e.g. tfgap/launch/configs/demo.gin).")
  quiet_logs(verbose=FLAGS["verbosity"].present)
  # Thread pools are fixed when TensorFlow runs its first op, which has not happened yet here.
  if FLAGS.intra_op_threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
  if FLAGS.inter_op_threads:
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
  try:
    train(FLAGS.root_dir, FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.force, FLAGS.restart)
  except (ValueError, NaNLossError, rundir.RunDirError) as e:
    print(f"ERROR: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
  except (OSError, tf.errors.OpError) as e:  # Disk full, read-only folder, lost mount, ...
    print(f"ERROR: {rundir.explain_os_error(e, FLAGS.root_dir)}", file=sys.stderr, flush=True)
    sys.exit(1)


def run():
  """Console entry point `tfgap-train`."""
  app.run(main)


if __name__ == "__main__":
  run()
