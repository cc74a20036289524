"""Shared launch helpers: gin registration of tfgap builders and crash-safe checkpoint folders.

tfgap.networks, tfgap.agents and tfgap.replay never import gin; the launchers register them here,
so gin files bind `build_q_network.bottleneck = 'gap'`, `DQNAgent.learning_rate = 6.25e-5`,
`ReplayBuffer.alpha = 0.5`, ...
"""

import functools
import inspect
import json
import os
import pathlib
import shutil
import zlib

import gin

CONFIG_DIR = pathlib.Path(__file__).resolve().parent / "configs"

_REGISTERED = {}


def register_gin():
  """Registers the tfgap builders, agents and replay buffer with gin (idempotent).

  Returns:
    dict with the gin-wrapped callables: `build_q_network`, `build_categorical_q_network`,
    `agents` ({name: wrapped agent class}) and `ReplayBuffer`. Only calls through these wrappers
    receive gin bindings.
  """
  if _REGISTERED:
    return _REGISTERED
  from tfgap import agents  # pylint: disable=g-import-not-at-top
  from tfgap import networks  # pylint: disable=g-import-not-at-top
  from tfgap import replay  # pylint: disable=g-import-not-at-top
  # Shapes and specs come from the environment, never from a config file.
  structural = ["observation_spec", "action_spec"]
  registered = {}
  registered["build_q_network"] = gin.external_configurable(
      with_bottleneck_defaults(networks.build_q_network), module="tfgap.networks",
      denylist=structural)
  registered["build_categorical_q_network"] = gin.external_configurable(
      with_bottleneck_defaults(networks.build_categorical_q_network), module="tfgap.networks",
      denylist=structural)
  for name in networks.list_bottlenecks():
    bottleneck_configurable(name)
  registered["agents"] = {}
  for name, (cls, kind) in agents.AGENTS.items():
    network_arg = {"q": "q_network", "categorical": "categorical_q_network"}.get(
        kind, f"{kind}_network")
    registered["agents"][name] = gin.external_configurable(
        cls, module="tfgap.agents",
        denylist=["time_step_spec", "action_spec", network_arg, "optimizer",
                  "train_step_counter", "seed"])
  # Layout arguments (frame shape, stack, streams, n-step, gamma, capacity, seed) come from the
  # environment, the agent and the runner.
  registered["ReplayBuffer"] = gin.external_configurable(
      replay.ReplayBuffer, module="tfgap.replay",
      allowlist=["prioritized", "alpha", "beta", "beta_final", "beta_steps", "min_priority"])
  gin.add_config_file_search_path(str(CONFIG_DIR))
  _REGISTERED.update(registered)
  return _REGISTERED


class _Unset:
  """Default of a bottleneck option gin does not bind (left out of the operative config)."""

  def __repr__(self):
    return "<the bottleneck's default>"


_UNSET = _Unset()
_BOTTLENECK_CONFIGURABLES = {}  # registry name -> gin-wrapped options function


def bottleneck_configurable(name):
  """The gin configurable `<name>` whose parameters are bottleneck `name`'s options.

  `softmoe.num_experts = 8` in a gin file sets SoftMoE's `num_experts` for every network a
  gin-bound builder makes with `bottleneck='softmoe'`; the builder's `bottleneck_kwargs` still
  win where both set an option. Registered for every bottleneck known when `register_gin` runs,
  and for a later-registered one when a builder first uses it.
  """
  from tfgap import networks  # pylint: disable=g-import-not-at-top
  cls = networks.bottleneck_class(name)
  name = cls.bottleneck_name
  if name not in _BOTTLENECK_CONFIGURABLES:
    params = [inspect.Parameter(option, inspect.Parameter.KEYWORD_ONLY, default=_UNSET)
              for option in cls.accepted_options()]

    def options(**kwargs):
      return {k: v for k, v in kwargs.items() if v is not _UNSET}

    options.__name__ = options.__qualname__ = name
    options.__signature__ = inspect.Signature(params)
    options.__doc__ = f"Options of the {name!r} bottleneck ({cls.__module__}.{cls.__qualname__})."
    _BOTTLENECK_CONFIGURABLES[name] = gin.external_configurable(
        options, name=name, module="tfgap.bottlenecks")
  return _BOTTLENECK_CONFIGURABLES[name]


def with_bottleneck_defaults(builder):
  """`builder` whose bottleneck options start from the gin bindings of `<bottleneck>.<option>`.

  Args:
    builder: a tfgap network builder with `bottleneck` and `bottleneck_kwargs` arguments.

  Returns:
    A function with the builder's signature (gin reads it through `__wrapped__`).
  """
  default = inspect.signature(builder).parameters["bottleneck"].default

  @functools.wraps(builder)
  def build(*args, bottleneck=default, bottleneck_kwargs=None, **kwargs):
    options = dict(bottleneck_configurable(bottleneck)(), **(bottleneck_kwargs or {}))
    return builder(*args, bottleneck=bottleneck, bottleneck_kwargs=options or bottleneck_kwargs,
                   **kwargs)

  return build


def operative_config():
  """gin's operative config of the calls made so far (what the run's objects were built with)."""
  return gin.operative_config_str()


def write_atomically(path, text):
  """Writes `text` to `path` through a temporary file and a rename (never a half-written file)."""
  path = pathlib.Path(path)
  tmp = path.with_name(path.name + ".tmp")
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def resolve_gin_file(path):
  """`path` if it exists, else the packaged config of that name (e.g. 'demo.gin')."""
  p = pathlib.Path(path)
  if p.exists():
    return str(p)
  for candidate in (CONFIG_DIR / p, CONFIG_DIR / p.name, CONFIG_DIR / (p.name + ".gin")):
    if candidate.exists():
      return str(candidate)
  available = sorted(f.name for f in CONFIG_DIR.glob("*.gin"))
  raise ValueError(f"gin file {path!r} does not exist; accepted: a path or one of the packaged "
                   f"configs {available}.")


# ------------------------------------------------------------------ crash-safe folders

MANIFEST = "MANIFEST.json"


def _crc32_file(path, chunk=1 << 22):
  crc = 0
  with open(path, "rb") as f:
    while True:
      data = f.read(chunk)
      if not data:
        return crc
      crc = zlib.crc32(data, crc)


def fsync_path(path):
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def seal_folder(folder):
  """Writes MANIFEST.json (size and CRC-32 of every file) and fsyncs every file and folder."""
  folder = pathlib.Path(folder)
  files = {}
  for path in sorted(folder.rglob("*")):
    if path.is_file() and path.name != MANIFEST:
      files[str(path.relative_to(folder))] = {"size": path.stat().st_size,
                                              "crc32": _crc32_file(path)}
      fsync_path(path)
  manifest = folder / MANIFEST
  manifest.write_text(json.dumps({"files": files}, indent=1))
  fsync_path(manifest)
  for path in sorted(folder.rglob("*"), reverse=True):
    if path.is_dir():
      fsync_path(path)
  fsync_path(folder)


def verify_folder(folder, under=None):
  """Raises IOError if a sealed folder's files are missing, truncated or corrupted.

  Args:
    folder: a folder sealed by `commit_folder`.
    under: check only the files below this relative subfolder (e.g. "tf" for a checkpoint's
      network state without its replay); None checks every file.
  """
  folder = pathlib.Path(folder)
  manifest = folder / MANIFEST
  if not manifest.exists():
    raise IOError(f"{folder} has no {MANIFEST} (an interrupted write?)")
  try:
    files = json.loads(manifest.read_text())["files"]
  except (ValueError, KeyError) as e:
    raise IOError(f"{manifest} is unreadable: {e}") from e
  for name, info in files.items():
    if under is not None and not pathlib.PurePath(name).is_relative_to(under):
      continue
    path = folder / name
    if not path.exists():
      raise IOError(f"{path} is missing")
    size = path.stat().st_size
    if size != info["size"]:
      raise IOError(f"{path} has {size} bytes, expected {info['size']} (truncated?)")
    if _crc32_file(path) != info["crc32"]:
      raise IOError(f"{path} fails its CRC-32 check (corrupted)")


def commit_folder(tmp, final):
  """Seals `tmp` and renames it to `final` atomically (replacing an older `final`)."""
  tmp, final = pathlib.Path(tmp), pathlib.Path(final)
  seal_folder(tmp)
  if final.exists():
    # Only after a crash between a commit and the bookkeeping that follows it.
    shutil.rmtree(final)
  os.rename(tmp, final)
  fsync_path(final.parent)
