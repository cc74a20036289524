"""Prints a network's parameters, live parameters and FLOPs per part (phi, bottleneck, psi).

    python -m tfgap.launch.describe --encoder impala --width_scale 4 --bottleneck gap
    tfgap-describe --encoder nature --bottleneck softmoe --bottleneck_kwargs '{"num_experts": 8}'
    tfgap-describe --import_module my_project.bottlenecks --bottleneck maxpool
    tfgap-describe --gin_file dqn.gin --gin_file impala.gin --gin_bindings "WIDTH_SCALE = 4.0"

With --gin_file/--gin_bindings the network is the one a training run of that config builds (through
tfgap.launch.experiment, for the config's environment); the other network flags are then ignored.

FLOPs are forward FLOPs per example, 2 x multiply-accumulates of convs, dense layers and einsums
(see tfgap.networks.accounting for the conventions).
"""

if __name__ == "__main__":
  # `python -m`: before TensorFlow is imported, which reads its oneDNN and log settings once.
  from tfgap.launch import runtime  # pylint: disable=g-import-not-at-top
  runtime.prepare_process()

import importlib
import json
import sys

from absl import flags

from tfgap import networks
from tfgap.networks import accounting
from tfgap.networks import common

NETWORKS = ("q", "categorical", "actor", "critic", "value", "sac")


def _specs(observation_shape, num_actions, observation_dtype, continuous):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_agents.specs import tensor_spec  # pylint: disable=g-import-not-at-top
  dtype = tf.as_dtype(observation_dtype)
  if dtype == tf.uint8:
    obs = tensor_spec.BoundedTensorSpec(tuple(observation_shape), dtype, 0, 255)
  else:
    obs = tensor_spec.TensorSpec(tuple(observation_shape), dtype)
  if continuous:
    act = tensor_spec.BoundedTensorSpec((num_actions,), tf.float32, -1.0, 1.0)
  else:
    act = tensor_spec.BoundedTensorSpec((), tf.int64, 0, num_actions - 1)
  return obs, act


def build(network="q", observation_shape=(84, 84, 4), num_actions=18, observation_dtype="uint8",
          num_atoms=51, **kwargs):
  """Builds the network `describe` reports on (variables created).

  Args:
    network: "q", "categorical", "actor", "critic", "value" or "sac" (SACAgent's network: shared
      encoder, twin critics, actor; described per network too).
    observation_shape: (H, W, C).
    num_actions: discrete actions (q/categorical) or action dimensions (actor/critic).
    observation_dtype: "uint8" or a float type.
    num_atoms: categorical only.
    **kwargs: builder arguments (encoder, width_scale, bottleneck, bottleneck_kwargs, head_units,
      head_scale, dueling, noisy, padding, num_stacks, blocks_per_stack).

  Returns:
    The network.
  """
  network = common.check_name("network", network, NETWORKS)
  common.check_positive("num_actions", num_actions, integer=True)
  obs, act = _specs(observation_shape, num_actions, observation_dtype,
                    continuous=network in ("actor", "critic", "sac"))
  if network in ("actor", "critic", "value", "sac"):
    for key in ("dueling", "noisy"):
      if kwargs.pop(key, False):
        raise ValueError(f"{key}=True applies to q/categorical networks only; got network "
                         f"{network!r}.")
  if network == "q":
    net = networks.build_q_network(obs, act, **kwargs)
  elif network == "categorical":
    net = networks.build_categorical_q_network(obs, act, num_atoms=num_atoms, **kwargs)
  elif network == "actor":
    net = networks.build_actor_network(obs, act, **kwargs)
  elif network == "critic":
    net = networks.build_critic_network(obs, act, **kwargs)
  elif network == "sac":
    net = networks.build_sac_network(obs, act, **kwargs)
  else:
    net = networks.build_value_network(obs, **kwargs)
  net.create_variables()
  return net


def describe(per_layer=False, **kwargs):
  """Returns the accounting table (markdown) of the network `build(**kwargs)` makes.

  Args:
    per_layer: also list every layer.
    **kwargs: as `build`.
  """
  net = build(**kwargs)
  result = accounting.account(net)
  shape = tuple(kwargs.get("observation_shape", (84, 84, 4)))
  header = (f"{type(net).__name__}: encoder={net.encoder_name} width_scale={net.width_scale} "
            f"bottleneck={net.bottleneck_name} observation={shape}\n"
            f"psi input weights (the bottleneck connection): "
            f"{accounting.psi_input_weights(net):,}\n")
  return (header + accounting.format_table(result, per_layer=per_layer)
          + _final_sparsity_line(net) + _per_network(net, per_layer))


def _final_sparsity_line(net):
  """For gradual magnitude pruning: the live parameters the schedule ends with."""
  live = accounting.live_at_final_sparsity(net)
  if live is None:
    return ""
  parts = ", ".join(f"{part} {live[part]:,}" for part in accounting.PARTS)
  return (f"\nlive at the pruning schedule's final sparsity (masks start dense): {parts}; "
          f"total {live['total']:,}")


def _per_network(net, per_layer):
  """SAC networks: one table per network (critic, actor), the shared encoder in each."""
  if not hasattr(net, "part_networks"):
    return ""
  text = ""
  for name, view in net.part_networks().items():
    text += (f"\n\n{name} network (phi and bottleneck shared; psi its own layers):\n" +
             accounting.format_table(accounting.account(view), per_layer=per_layer))
  return text


def describe_config(gin_files=(), gin_bindings=(), per_layer=False):
  """The accounting table of the network a training run of this gin config builds.

  The network is built as the Runner builds it (tfgap.launch.experiment: the config's environment
  gives the observation and action specs; the agent's gin-bound builder makes the network).
  """
  import gin  # pylint: disable=g-import-not-at-top
  from tfgap.launch import experiment  # pylint: disable=g-import-not-at-top
  from tfgap.launch import train  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  try:
    train.parse_config(gin_files, gin_bindings)
    config = experiment.configured()
    env = experiment.make_env(config, "eval", num_envs=1)
    try:
      net = experiment.make_network(config, env)
    finally:
      env.close()
  finally:
    gin.clear_config()
  net.create_variables()
  result = accounting.account(net)
  shape = tuple(net.input_tensor_spec.shape.as_list())
  header = (f"{config.suite}/{config.game}, agent {config.agent}: {type(net).__name__}: "
            f"encoder={net.encoder_name} width_scale={net.width_scale} "
            f"bottleneck={net.bottleneck_name} observation={shape}\n"
            f"psi input weights (the bottleneck connection): "
            f"{accounting.psi_input_weights(net):,}\n")
  return (header + accounting.format_table(result, per_layer=per_layer)
          + _final_sparsity_line(net) + _per_network(net, per_layer))


def import_modules(names):
  """Imports modules by dotted name (e.g. ones that `register_bottleneck` their own bottlenecks).

  Raises:
    ValueError: naming a module that cannot be imported.
  """
  for name in names or ():
    try:
      importlib.import_module(name)
    except ImportError as e:
      raise ValueError(f"--import_module {name!r} cannot be imported ({e}); accepted: a module "
                       "importable from the current directory or sys.path") from e


def _define_flags(fv):
  flags.DEFINE_enum("network", "q", list(NETWORKS), "Which network to build.", flag_values=fv)
  flags.DEFINE_string("encoder", "nature", "nature or impala; also sac (Dopamine's SAC conv stack) "
                      "for --network sac.", flag_values=fv)
  flags.DEFINE_float("width_scale", 1.0, "Encoder width multiplier.", flag_values=fv)
  flags.DEFINE_string("bottleneck", "flatten",
                      f"A registered bottleneck: {', '.join(networks.list_bottlenecks())}, or one "
                      "registered by an --import_module.", flag_values=fv)
  flags.DEFINE_multi_string("import_module", [],
                            "Module(s) to import first, e.g. one that registers its own "
                            "bottleneck with tfgap.networks.register_bottleneck.",
                            flag_values=fv)
  flags.DEFINE_string("bottleneck_kwargs", None,
                      'JSON dict of bottleneck options, e.g. \'{"num_experts": 8}\'.',
                      flag_values=fv)
  flags.DEFINE_list("observation_shape", ["84", "84", "4"], "H,W,C of the observation.",
                    flag_values=fv)
  flags.DEFINE_string("observation_dtype", "uint8", "Observation dtype.", flag_values=fv)
  flags.DEFINE_integer("num_actions", 18, "Actions (or action dimensions for actor/critic).",
                       flag_values=fv)
  flags.DEFINE_list("head_units", None,
                    "psi hidden widths, e.g. 512 or 512,512; 'none' for no hidden layer; unset: "
                    "the per-bottleneck default.", flag_values=fv)
  flags.DEFINE_float("head_scale", 1.0, "psi width multiplier.", flag_values=fv)
  flags.DEFINE_string("padding", "SAME", "SAME or VALID (nature only).", flag_values=fv)
  flags.DEFINE_integer("num_stacks", 3, "Impala stacks.", flag_values=fv)
  flags.DEFINE_integer("blocks_per_stack", 2, "Impala residual blocks per stack.", flag_values=fv)
  flags.DEFINE_bool("dueling", False, "Dueling head.", flag_values=fv)
  flags.DEFINE_bool("noisy", False, "Noisy dense layers in psi.", flag_values=fv)
  flags.DEFINE_integer("num_atoms", 51, "Atoms of the categorical network.", flag_values=fv)
  flags.DEFINE_bool("per_layer", False, "Also list every layer.", flag_values=fv)
  flags.DEFINE_multi_string("gin_file", [], "gin config files of a training run (paths or "
                            "packaged names, e.g. dqn.gin): describe the network it builds.",
                            flag_values=fv)
  flags.DEFINE_multi_string("gin_bindings", [], "gin bindings, e.g. \"WIDTH_SCALE = 4.0\".",
                            flag_values=fv)


def _parse_int_list(name, values):
  try:
    return tuple(int(v) for v in values)
  except ValueError:
    raise ValueError(
        f"--{name} must be comma-separated integers; got {','.join(values)!r}.") from None


def main(argv=None):
  """Parses `argv` (default sys.argv), prints the table and returns the exit code."""
  argv = list(sys.argv if argv is None else argv)
  fv = flags.FlagValues()
  _define_flags(fv)
  if any(a in ("-h", "--help", "-help", "--helpfull") for a in argv[1:]):
    print(__doc__)
    print(fv.get_help())
    return 0
  try:
    fv(argv)
  except flags.Error as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  try:
    if fv.import_module and "" not in sys.path:
      # The console script's sys.path lacks the current directory that `python -m` adds.
      sys.path.insert(0, "")
    import_modules(fv.import_module)
    if fv.gin_file or fv.gin_bindings:
      print(describe_config(fv.gin_file, fv.gin_bindings, per_layer=fv.per_layer))
      return 0
    head_units = None
    if fv.head_units is not None:
      values = [v for v in fv.head_units if v]
      head_units = () if values in (["none"], ["None"], []) else _parse_int_list("head_units",
                                                                                values)
    kwargs = json.loads(fv.bottleneck_kwargs) if fv.bottleneck_kwargs else None
    if kwargs is not None and not isinstance(kwargs, dict):
      raise ValueError(f"--bottleneck_kwargs must be a JSON object; got {fv.bottleneck_kwargs!r}.")
    text = describe(
        network=fv.network, encoder=fv.encoder, width_scale=fv.width_scale,
        bottleneck=fv.bottleneck, bottleneck_kwargs=kwargs,
        observation_shape=_parse_int_list("observation_shape", fv.observation_shape),
        observation_dtype=fv.observation_dtype, num_actions=fv.num_actions,
        head_units=head_units, head_scale=fv.head_scale, padding=fv.padding,
        num_stacks=fv.num_stacks, blocks_per_stack=fv.blocks_per_stack, dueling=fv.dueling,
        noisy=fv.noisy, num_atoms=fv.num_atoms, per_layer=fv.per_layer)
  except (ValueError, json.JSONDecodeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(text)
  return 0


def run():
  """Console entry point (`tfgap-describe`)."""
  sys.exit(main())


if __name__ == "__main__":
  run()
