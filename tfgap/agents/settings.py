"""The agents' hyperparameters: one dataclass per family, validated in one place.

`CommonSettings` holds what every tfgap agent takes (optimizer, discount, n-step return, replay
cadence and batch, gradient clipping, compilation, precision, seed) and validates it once;
`AgentSettings` adds what the DQN family shares (target refresh period, epsilon exploration,
double targets, the fused forward); `DQNSettings` adds the loss (and makes plain DQN targets its
default), `RainbowSettings` adds the C51 support. SAC's settings (`tfgap.agents.sac.SACSettings`)
derive from `CommonSettings` and add the soft target update, temperature and augmentation. Each
agent class names its defaults (`DQNAgent.DEFAULTS`, `RainbowAgent.DEFAULTS`, `DERAgent.DEFAULTS`,
`SACAgent.DEFAULTS`) and takes every field as a keyword-only constructor argument, so
`DQNAgent(..., n_step=3)` and the gin binding `DQNAgent.n_step = 3` both override one field of its
defaults. DER is Rainbow with six other defaults (`DER_DEFAULTS`), not a second list of arguments.

    from tfgap.agents import settings
    settings.DER_DEFAULTS.n_step                      # 10
    settings.RAINBOW_DEFAULTS.replace(n_step=5)       # validated copy
"""

import dataclasses
from typing import Optional

from tfgap import checks

# How the training epsilon is chosen (the `exploration` setting).
EXPLORATION = {
    # Dopamine's rule: epsilon 0 from the first step when the network has noisy layers
    # (dopamine/jax/agents/full_rainbow/full_rainbow_agent.py: `epsilon_fn = zero_epsilon if
    # noisy else epsilon_fn`), else the linear decay below.
    "auto": "zero epsilon for noisy networks, else 'linear' (Dopamine's rule)",
    # Dopamine's linearly_decaying_epsilon (dopamine/jax/agents/dqn/dqn_agent.py): 1 during the
    # min_replay_history warm-up, then linear to epsilon_train over epsilon_decay_period steps.
    "linear": "1 during warm-up, then linear to epsilon_train over epsilon_decay_period",
    "zero": "epsilon 0 from the first step (exploration by the network's noise only)",
}
# The `precision` setting (as tfgap.networks.common.PRECISIONS; this module imports no TF).
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
# The loss of DQNAgent (the `loss` setting): Dopamine's JAX DQN defaults to MSE
# (dopamine/jax/agents/dqn/dqn_agent.py `loss_type='mse'`, dopamine/jax/losses.py `mse_loss`).
DQN_LOSSES = ("mse", "huber")


@dataclasses.dataclass(frozen=True)
class CommonSettings:
  """Hyperparameters every tfgap agent takes (defaults: Dopamine's `dqn.gin` values).

  Subclasses add their family's fields (and may change defaults by redeclaring a field); each
  validates its own fields in `_checked`, on top of these.

  Attributes:
    learning_rate: Adam step size (> 0).
    adam_epsilon: Adam epsilon (> 0).
    gamma: discount per agent step, in [0, 1].
    n_step: return horizon (>= 1); the replay computes the n-step return.
    update_period: agent steps per gradient update (>= 1).
    min_replay_history: agent steps collected before learning starts (>= 0).
    batch_size: replay batch size (>= 1).
    gradient_clipping: optional global-norm clip of the gradients (> 0), None as Dopamine.
    jit_compile: XLA for the update: None picks per device (GPU yes, CPU no), or True/False.
    precision: None (the network's: `net.precision`, set when the network is built with
      `precision=`), or "float32" / "mixed_bfloat16" / "auto", which the network's must match
      (the agent cannot change the layers of a built network).
    seed: seed of the agent's random generators (>= 0).
  """

  learning_rate: float = 6.25e-5
  adam_epsilon: float = 1.5e-4
  gamma: float = 0.99
  n_step: int = 1
  update_period: int = 4
  min_replay_history: int = 20000
  batch_size: int = 32
  gradient_clipping: Optional[float] = None
  jit_compile: Optional[bool] = None
  precision: Optional[str] = None
  seed: int = 0

  def __post_init__(self):
    for name, value in self._checked().items():
      object.__setattr__(self, name, value)  # Frozen: normalise through object.

  def _checked(self):
    """The fields validated and normalised (ints as int, floats as float)."""
    jit = self.jit_compile
    if jit is not None and type(jit).__name__ not in ("bool", "bool_"):
      checks.reject("jit_compile", jit,
                    "None (XLA on GPU, plain tf.function on CPU), True or False")
    return {
        "learning_rate": checks.check_float("learning_rate", self.learning_rate, low=0.0,
                                            low_open=True),
        "adam_epsilon": checks.check_float("adam_epsilon", self.adam_epsilon, low=0.0,
                                           low_open=True),
        "gamma": checks.check_float("gamma", self.gamma, low=0.0, high=1.0),
        "n_step": checks.check_int("n_step", self.n_step, low=1),
        "update_period": checks.check_int("update_period", self.update_period, low=1),
        "min_replay_history": checks.check_int("min_replay_history", self.min_replay_history,
                                               low=0),
        "batch_size": checks.check_int("batch_size", self.batch_size, low=1),
        "gradient_clipping": checks.check_float("gradient_clipping", self.gradient_clipping,
                                                low=0.0, low_open=True, allow_none=True),
        "jit_compile": None if jit is None else bool(jit),
        "precision": None if self.precision is None else checks.check_choice(
            "precision", self.precision, PRECISIONS),
        "seed": checks.check_int("seed", self.seed, low=0),
    }

  @classmethod
  def field_names(cls):
    return tuple(f.name for f in dataclasses.fields(cls))

  def replace(self, **changes):
    """A validated copy with `changes`; a ValueError (with close matches) for unknown names."""
    checks.check_options(f"{type(self).__name__}", changes, self.field_names())
    return dataclasses.replace(self, **changes)

  def asdict(self):
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AgentSettings(CommonSettings):
  """`CommonSettings` plus what the DQN family (DQN, Rainbow, DER) shares.

  Attributes:
    target_update_period: agent steps between target-network refreshes (>= 1), as Dopamine
      counts it; the agent refreshes every `target_update_period / update_period` updates.
    epsilon_train: final training epsilon, in [0, 1].
    epsilon_eval: evaluation epsilon, in [0, 1].
    epsilon_decay_period: agent steps of linear epsilon decay after the warm-up (>= 1); epsilon
      is 1 during the `min_replay_history` warm-up.
    exploration: how the training epsilon is chosen: "auto" (Dopamine: 0 throughout when the
      network has noisy layers, else "linear"), "linear" (Dopamine's linearly_decaying_epsilon
      with the three settings above) or "zero" (0 throughout).
    double: double-DQN action selection (online argmax) for the bootstrap; Dopamine's Rainbow
      uses it, its DQN does not.
    fused_forward: double targets only: evaluate the online network on s and s' in one call on
      a 2B batch (`concat([s, s'])`, noise drawn per half) instead of two calls. None picks per
      device (`base.default_fused_forward`: GPU yes, CPU no, where the backward pass over both
      halves measured slower), or True/False. The numbers are the same either way.
  """

  target_update_period: int = 8000
  epsilon_train: float = 0.01
  epsilon_eval: float = 0.001
  epsilon_decay_period: int = 250000
  exploration: str = "auto"
  double: bool = True
  fused_forward: Optional[bool] = None

  def _checked(self):
    values = super()._checked()
    values.update({
        "target_update_period": checks.check_int("target_update_period",
                                                 self.target_update_period, low=1),
        "epsilon_train": checks.check_float("epsilon_train", self.epsilon_train, low=0.0,
                                            high=1.0),
        "epsilon_eval": checks.check_float("epsilon_eval", self.epsilon_eval, low=0.0, high=1.0),
        "epsilon_decay_period": checks.check_int("epsilon_decay_period",
                                                 self.epsilon_decay_period, low=1),
        "exploration": checks.check_choice("exploration", self.exploration, EXPLORATION),
        "double": checks.check_bool("double", self.double),
        "fused_forward": None if self.fused_forward is None else checks.check_bool(
            "fused_forward", self.fused_forward),
    })
    return values


@dataclasses.dataclass(frozen=True)
class DQNSettings(AgentSettings):
  """`AgentSettings` plus the loss (defaults: Dopamine's JAX DQN, `dqn.gin`).

  Dopamine's JAX DQN bootstraps from the plain max of the target network (not double DQN) and
  uses the squared TD error: `dopamine/jax/agents/dqn/dqn_agent.py` (`target_q`, `loss_type`).

  Attributes:
    double: False (Dopamine's DQN); True for double DQN.
    loss: "mse" (Dopamine: `(target - q)^2`, no 0.5 factor) or "huber" (delta 1, as Dopamine's
      `loss_type='huber'` and the 2015 Nature DQN).
  """

  double: bool = False
  loss: str = "mse"

  def _checked(self):
    values = super()._checked()
    values.update(loss=checks.check_choice("loss", self.loss, DQN_LOSSES))
    return values


@dataclasses.dataclass(frozen=True)
class RainbowSettings(AgentSettings):
  """`AgentSettings` plus the C51 support (defaults: Dopamine's Rainbow, `full_rainbow.gin`).

  Attributes:
    v_max: largest atom of the value support (> 0).
    v_min: smallest atom (< v_max); None means -v_max.
  """

  v_max: float = 10.0
  v_min: Optional[float] = None

  def _checked(self):
    values = super()._checked()
    v_max = checks.check_float("v_max", self.v_max, low=0.0, low_open=True)
    v_min = checks.check_float("v_min", self.v_min, high=v_max, high_open=True, allow_none=True)
    values.update(v_max=v_max, v_min=v_min)
    return values

  @property
  def support_range(self):
    """`(v_min, v_max)` with v_min resolved (-v_max when None)."""
    return (-self.v_max if self.v_min is None else self.v_min), self.v_max


DQN_DEFAULTS = DQNSettings()
# Rainbow: 3-step returns, double action selection (`double=True`, the AgentSettings default)
# and the C51 support; the rest as DQN (dopamine/jax/agents/full_rainbow/configs/full_rainbow.gin).
RAINBOW_DEFAULTS = RainbowSettings(n_step=3)
# Data-efficient Rainbow (van Hasselt et al. 2019) for Atari100K: six defaults differ from Rainbow.
DER_DEFAULTS = RAINBOW_DEFAULTS.replace(
    learning_rate=1e-4, n_step=10, update_period=1, target_update_period=2000,
    min_replay_history=1600, epsilon_decay_period=2000)

__all__ = ["CommonSettings", "AgentSettings", "DQNSettings", "EXPLORATION", "PRECISIONS",
           "DQN_LOSSES", "RainbowSettings", "DQN_DEFAULTS", "RAINBOW_DEFAULTS", "DER_DEFAULTS"]
