"""What the benchmark scripts share: start-up, training runs, and interleaved timing.

    import harness   # benchmarks/ is the script's folder

- `start`: parse the command line, prepare the process as the training CLI does, print the
  machine line (benchmarks/machine.py);
- `add_run_flags`, `run_dir`, `train`, `per_iteration`: a benchmark that trains ordinary tfgap
  run directories (atari100k.py, dmc_sac.py learn), resumable by running the same command again;
- `interleaved`, `medians`: time several callables round-robin, so that load changes on a shared
  machine hit each of them alike (sparse.py, networks.py, dmc_sac.py speed);
- `emit`: print a result table, and write it to an --output file when one is named.

Importing it imports neither TensorFlow nor tfgap.
"""

import json
import pathlib
import statistics
import sys
import time

from machine import describe_machine


def start(parse_args, argv=None):
  """Parses the arguments, prepares the process, prints the machine line; returns the args.

  Args:
    parse_args: the script's `parse_args(argv)`.
    argv: the arguments (None: sys.argv[1:]).
  """
  args = parse_args(sys.argv[1:] if argv is None else argv)
  from tfgap.launch import runtime  # pylint: disable=g-import-not-at-top
  runtime.prepare_process()  # oneDNN on, as the training CLI runs; before TensorFlow loads.
  print(describe_machine(), flush=True)
  return args


def add_run_flags(parser, steps, steps_help, eval_episodes, root_dir, root_help):
  """--steps, --seed, --eval_episodes, --root_dir and --progress_bar, as `train` reads them."""
  parser.add_argument("--steps", type=int, default=steps, help=steps_help)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--eval_episodes", type=int, default=eval_episodes,
                      help="evaluation episodes after each iteration")
  parser.add_argument("--root_dir", default=root_dir, help=root_help)
  parser.add_argument("--progress_bar", action="store_true")


def run_dir(args, game, variant):
  """ROOT/<game>_<variant>_s<seed>: one run directory per game, variant and seed."""
  return pathlib.Path(args.root_dir) / f"{game}_{variant}_s{args.seed}"


def train(root, config, args, game, bottleneck, iterations, per_iteration, bindings=()):
  """Trains (or resumes) the tfgap run in `root`.

  Args:
    root: the run directory.
    config: a packaged gin file (tfgap/launch/configs), e.g. "der.gin", or a list of them.
    args: the flags of `add_run_flags` (seed, eval_episodes, progress_bar).
    game: the game or task.
    bottleneck: the BOTTLENECK macro.
    iterations: Runner.num_iterations.
    per_iteration: agent steps per iteration (Runner.training_steps).
    bindings: further gin bindings.

  Returns:
    (the records of its metrics.jsonl, the wall seconds of this call; a resumed run counts only
    the part run now).
  """
  from tfgap.launch import train as train_lib  # pylint: disable=g-import-not-at-top
  train_lib.quiet_logs()
  began = time.time()
  configs = [config] if isinstance(config, str) else list(config)
  train_lib.train(str(root), configs, [
      f"Runner.game = '{game}'", f"Runner.seed = {args.seed}",
      f"Runner.num_iterations = {iterations}", f"Runner.training_steps = {per_iteration}",
      f"Runner.evaluation_episodes = {args.eval_episodes}", f"BOTTLENECK = '{bottleneck}'",
      f"Runner.progress_bar = {args.progress_bar}"] + list(bindings))
  wall = time.time() - began
  records = [json.loads(line) for line in
             (pathlib.Path(root) / "metrics.jsonl").read_text().splitlines()]
  return records, wall


def per_iteration(records, field):
  """"  per iteration: 0: 12, 1: 40, ..." of a metrics field, over the iterations that have it."""
  return "  per iteration: " + ", ".join(
      f"{r['iteration']}: {r[field]:.0f}" for r in records if r.get(field) is not None)


def interleaved(fns, rounds, warmup=1, calls=1):
  """Times callables round-robin: each round calls each of them `calls` times in turn.

  Args:
    fns: {name: callable with no arguments}; it should block until its work is done.
    rounds: timed rounds.
    warmup: untimed calls of each first (tracing, caches).
    calls: calls per callable per round.

  Returns:
    {name: [seconds per call, one per round]}.
  """
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      began = time.perf_counter()
      for _ in range(calls):
        fn()
      times[name].append((time.perf_counter() - began) / calls)
  return times


def medians(times):
  """{name: median} of `interleaved`'s (or any) {name: [values]}."""
  return {name: statistics.median(values) for name, values in times.items()}


def emit(text, output=None):
  """Prints `text` (a benchmark's result) and, when `output` names a file, writes it there too."""
  print(text)
  if output:
    with open(output, "w", encoding="utf-8") as f:
      f.write(text + "\n")
