"""The paper's studies as specs (the same format a user's YAML/JSON spec file has; docs/studies.md).

Each study is one grid: games x seeds x the study's axes (bottleneck, width, depth, agent, ...),
with three budgets:

- `smoke`: a couple of tiny trials that check the plumbing (minutes on a laptop);
- `laptop`: the study's shape on the MinAtar suite (5 games, 10x10 frames) with small budgets,
  a night on a laptop;
- `paper`: the paper's protocol (docs/fidelity.md): Atari 200 x 250k agent steps, Atari100K
  10 x 10k, Procgen 100 x 250k (tfgap/launch/configs/procgen.gin), 5 seeds.

Pure data: importing this module loads nothing else of tfgap.
"""

import copy

from tfgap.envs import games

WIDTHS = {"x1": ["WIDTH_SCALE = 1.0"], "x2": ["WIDTH_SCALE = 2.0"],
          "x4": ["WIDTH_SCALE = 4.0"], "x8": ["WIDTH_SCALE = 8.0"]}
BOTTLENECKS = {name: {"gin_files": [f"bottleneck_{name}.gin"]}
               for name in ("flatten", "gap", "softmoe", "tokenize", "pruned")}
PAPER_SEEDS = 5

# Settings every study trial gets: no progress bar (trials run unattended; the study prints a
# progress line per iteration) and no SavedModel per iteration (checkpoints hold the networks).
TRIAL_DEFAULTS = ["Runner.progress_bar = False", "Runner.export_policies = False"]

# The MinAtar laptop budget: DQN's schedule shrunk to 100k agent steps (10 x 10k), learning after
# 5k steps, epsilon decayed over 25k, the target refreshed every 1k updates' worth of steps.
_MINATAR = [
    "Runner.suite = 'minatar'",
    "Runner.num_iterations = 10",
    "Runner.training_steps = 10000",
    "Runner.replay_capacity = 100000",
]


def _minatar_agent(agent_class):
  return [f"{agent_class}.min_replay_history = 5000",
          f"{agent_class}.epsilon_decay_period = 25000",
          f"{agent_class}.target_update_period = 4000",
          f"{agent_class}.update_period = 4"]


def _smoke(agent_class, suite_bindings=()):
  """Two iterations of 200 agent steps, learning from step 100, one short evaluation episode."""
  return list(suite_bindings) + [
      "Runner.num_iterations = 2",
      "Runner.training_steps = 200",
      "Runner.evaluation_episodes = 1",
      "Runner.eval_env_kwargs = {'max_episode_steps': 300}",
      "Runner.replay_capacity = 2000",
      "Runner.dormant_batch_size = 32",
      f"{agent_class}.min_replay_history = 100",
      f"{agent_class}.target_update_period = 100",
      f"{agent_class}.epsilon_decay_period = 100",
  ]


# Procgen normalisation (Cobbe et al. 2020, easy distribution): per game (R_min, R_max), kept
# with its source in tfgap.envs.games.
PROCGEN_REFERENCES = {k: list(v) for k, v in games.PROCGEN_REFERENCE_SCORES.items()}


# On top of sac.gin + sac_drq.gin (DrQ's values): 100k environment steps, batch 256 (DrQ's paper
# uses 512; 256 reached 830 with flatten on cartpole-swingup, docs/results.md).
_DMC_LAPTOP = [
    "Runner.num_iterations = 5",
    "Runner.training_steps = 2500",
    "Runner.evaluation_episodes = 10",
    "SACAgent.batch_size = 256",
]


def _laptop(agent_class, extra=(), encoder="minatar"):
  return {
      "suite": "minatar",
      "games": list(games.MINATAR_GAMES) if hasattr(games, "MINATAR_GAMES") else [
          "asterix", "breakout", "freeway", "seaquest", "space_invaders"],
      "seeds": 2,
      "normalization": "max",
      "gin_bindings": _MINATAR + [f"ENCODER = '{encoder}'"] + _minatar_agent(agent_class) +
                      list(extra),
  }


_STUDIES = {
    "scale": {
        "description": "IQM against width (x1/x2/x4/x8) per bottleneck (flatten, GAP, SoftMoE, "
                       "tokenize, pruned), DQN and Rainbow on the Impala encoder, 20 Atari games "
                       "(the paper's main figure).",
        "suite": "atari",
        "games": list(games.ATARI_GAMES),
        "seeds": PAPER_SEEDS,
        # A binding, not impala.gin: bindings apply after every file (the agent's file included).
        "gin_bindings": ["ENCODER = 'impala'"],
        "axes": {
            "agent": {"dqn": {"gin_files": ["dqn.gin"]},
                      "rainbow": {"gin_files": ["rainbow.gin"]}},
            "bottleneck": BOTTLENECKS,
            "width": WIDTHS,
        },
        "x_axis": {"width": {"x1": 1, "x2": 2, "x4": 4, "x8": 8}},
        "budgets": {
            "paper": {},
            # Flatten vs GAP at x1..x8 on the five MinAtar games, one seed: 40 runs of 100k
            # agent steps, a few hours on a 2-core CPU (--max_concurrent 2 --cpus_per_trial 1).
            "laptop": dict(_laptop("DQNAgent"), seeds=1,
                           axes={"agent": ["dqn"], "bottleneck": ["flatten", "gap"],
                                 "width": ["x1", "x2", "x4", "x8"]}),
            "smoke": {"suite": "atari100k", "games": ["Pong"], "seeds": 1,
                      "gin_bindings": _smoke("DQNAgent", ["Runner.suite = 'atari100k'",
                                                          "ENCODER = 'nature'"]),
                      "axes": {"agent": ["dqn"], "bottleneck": ["flatten", "gap"],
                               "width": ["x1"]}},
        },
    },
    "bottleneck_only": {
        "description": "Only the bottleneck grows: phi stays at x1 while psi's widths (and so "
                       "the connection into psi) scale x1..x8 (`head_scale`), flatten vs GAP, "
                       "DQN on Impala, 20 Atari games.",
        "suite": "atari",
        "games": list(games.ATARI_GAMES),
        "seeds": PAPER_SEEDS,
        "gin_files": ["dqn.gin", "impala.gin"],
        "axes": {
            "bottleneck": {k: BOTTLENECKS[k] for k in ("flatten", "gap")},
            "head": {f"x{s}": [f"build_q_network.head_scale = {float(s)}"] for s in (1, 2, 4, 8)},
        },
        "x_axis": {"head": {"x1": 1, "x2": 2, "x4": 4, "x8": 8}},
        "budgets": {
            "paper": {},
            "laptop": dict(_laptop("DQNAgent"), axes={"head": ["x1", "x2", "x4"]}),
            "smoke": {"suite": "atari100k", "games": ["Pong"], "seeds": 1,
                      "gin_bindings": _smoke("DQNAgent", ["Runner.suite = 'atari100k'",
                                                          "ENCODER = 'nature'"]),
                      "axes": {"bottleneck": ["flatten", "gap"], "head": ["x2"]}},
        },
    },
    "depth": {
        "description": "IQM against Impala depth (residual blocks per stack 1/2/4) per "
                       "bottleneck (flatten, GAP, SoftMoE), DQN, 20 Atari games.",
        "suite": "atari",
        "games": list(games.ATARI_GAMES),
        "seeds": PAPER_SEEDS,
        "gin_files": ["dqn.gin", "impala.gin"],
        "axes": {
            "bottleneck": {k: BOTTLENECKS[k] for k in ("flatten", "gap", "softmoe")},
            "depth": {f"b{b}": [f"build_q_network.blocks_per_stack = {b}"] for b in (1, 2, 4)},
        },
        "x_axis": {"depth": {"b1": 1, "b2": 2, "b4": 4}},
        "budgets": {
            "paper": {},
            # MinAtar's 10x10 frames go through Impala's three pooling stages (10 -> 5 -> 3 -> 2).
            "laptop": dict(_laptop("DQNAgent", encoder="impala")),
            "smoke": {"suite": "atari100k", "games": ["Pong"], "seeds": 1,
                      "gin_bindings": _smoke("DQNAgent", ["Runner.suite = 'atari100k'"]),
                      "axes": {"bottleneck": ["gap"], "depth": ["b1", "b2"]}},
        },
    },
    "sparse": {
        "description": "Sparse training against GAP: dense flatten, gradual magnitude pruning of "
                       "the bottleneck layer (95%), GAP; widths x1..x8, DQN on Impala, 20 Atari "
                       "games. (Dynamic sparse training, RigL/SET, is not in tfgap.)",
        "suite": "atari",
        "games": list(games.ATARI_GAMES),
        "seeds": PAPER_SEEDS,
        "gin_files": ["dqn.gin", "impala.gin"],
        "axes": {
            "method": {"dense": BOTTLENECKS["flatten"], "pruned": BOTTLENECKS["pruned"],
                       "gap": BOTTLENECKS["gap"]},
            "width": WIDTHS,
        },
        "x_axis": {"width": {"x1": 1, "x2": 2, "x4": 4, "x8": 8}},
        "budgets": {
            "paper": {},
            "laptop": dict(_laptop("DQNAgent"), axes={"width": ["x1", "x2", "x4"]}),
            "smoke": {"suite": "atari100k", "games": ["Pong"], "seeds": 1,
                      "gin_bindings": _smoke("DQNAgent", ["Runner.suite = 'atari100k'",
                                                          "ENCODER = 'nature'"]),
                      "axes": {"method": ["pruned", "gap"], "width": ["x1"]}},
        },
    },
    "atari100k": {
        "description": "Data-efficient regime: DER on the 26 Atari100K games, widths x1..x8 per "
                       "bottleneck (flatten, GAP, SoftMoE).",
        "suite": "atari100k",
        "games": list(games.ATARI100K_GAMES),
        "seeds": PAPER_SEEDS,
        "gin_files": ["der.gin"],
        "axes": {
            "bottleneck": {k: BOTTLENECKS[k] for k in ("flatten", "gap", "softmoe")},
            "width": WIDTHS,
        },
        "x_axis": {"width": {"x1": 1, "x2": 2, "x4": 4, "x8": 8}},
        "budgets": {
            "paper": {},
            # DER keeps its one update per agent step on MinAtar.
            "laptop": dict(_laptop("DERAgent", extra=["DERAgent.update_period = 1"]),
                           axes={"width": ["x1", "x2", "x4"]}),
            "smoke": {"games": ["Pong"], "seeds": 1, "gin_bindings": _smoke("DERAgent"),
                      "axes": {"bottleneck": ["flatten", "gap"], "width": ["x1"]}},
        },
    },
    "procgen": {
        "description": "Procgen (16 games, easy, 200 training levels): DQN on Impala, widths "
                       "x1..x4 per bottleneck (flatten, GAP, SoftMoE); scores normalised with "
                       "Cobbe et al.'s per-game (R_min, R_max).",
        "suite": "procgen",
        "games": list(games.PROCGEN_GAMES),
        "seeds": PAPER_SEEDS,
        "gin_files": ["procgen.gin"],
        "references": PROCGEN_REFERENCES,
        "axes": {
            "bottleneck": {k: BOTTLENECKS[k] for k in ("flatten", "gap", "softmoe")},
            "width": {k: WIDTHS[k] for k in ("x1", "x2", "x4")},
        },
        "x_axis": {"width": {"x1": 1, "x2": 2, "x4": 4}},
        "budgets": {
            "paper": {},
            "laptop": dict(_laptop("DQNAgent", encoder="impala"), references={}),
            "smoke": {"games": ["coinrun"], "seeds": 1,
                      "gin_bindings": _smoke("DQNAgent") + ["Runner.evaluation_steps = 0"],
                      "axes": {"bottleneck": ["flatten", "gap"], "width": ["x1"]}},
        },
    },
    "dmc": {
        "description": "SAC from pixels on the DeepMind Control Suite, flatten vs GAP at widths "
                       "x1/x2/x4 (the paper's SAC validation), Dopamine's SAC-from-pixels setup "
                       "(sac.gin), the six DrQ/PlaNet tasks.",
        "suite": "dmc",
        "games": list(games.DMC_TASKS),
        "seeds": PAPER_SEEDS,
        "gin_files": ["sac.gin"],
        "axes": {"bottleneck": {k: BOTTLENECKS[k] for k in ("flatten", "gap")},
                 "width": {k: WIDTHS[k] for k in ("x1", "x2", "x4")}},
        "x_axis": {"width": {"x1": 1, "x2": 2, "x4": 4}},
        # Returns are in [0, 1000] on every DMC task: normalise by the best return per task.
        "normalization": "max",
        "budgets": {
            "paper": {},
            # benchmarks/dmc_sac.py's learning check as a study: cartpole-swingup, 100k
            # environment steps (12.5k agent steps at action repeat 8) with DrQ's settings
            # (sac_drq.gin: 1,000 warm-up steps, two shifted views, ...); 10 evaluation
            # episodes after each of 5 iterations. Dopamine's values (sac.gin) are tuned for
            # 3.2M steps and barely move at this budget.
            "laptop": {"games": ["cartpole-swingup"], "seeds": 2,
                       "axes": {"width": ["x1"]}, "gin_files": ["sac_drq.gin"],
                       "gin_bindings": _DMC_LAPTOP},
            "smoke": {"games": ["cartpole-swingup"], "seeds": 1, "axes": {"width": ["x1"]},
                      "gin_bindings": [
                          "Runner.num_iterations = 2", "Runner.training_steps = 40",
                          "Runner.evaluation_episodes = 1",
                          "Runner.replay_capacity = 2000", "Runner.dormant_batch_size = 8",
                          "SACAgent.min_replay_history = 20", "SACAgent.batch_size = 8"]},
        },
    },
    "compute": {
        "description": "Parameters, FLOPs and measured updates/s per variant (bottleneck x width, "
                       "DQN on Impala): short runs on one game whose metrics give the update "
                       "rate; the report adds parameters and FLOPs of each network.",
        "suite": "atari",
        "games": ["Pong"],
        "seeds": 1,
        "gin_files": ["dqn.gin", "impala.gin"],
        "gin_bindings": ["Runner.num_iterations = 2", "Runner.training_steps = 25000",
                         "Runner.replay_capacity = 100000",
                         "DQNAgent.min_replay_history = 5000"],
        "axes": {"bottleneck": BOTTLENECKS, "width": WIDTHS},
        "x_axis": {"width": {"x1": 1, "x2": 2, "x4": 4, "x8": 8}},
        "budgets": {
            "paper": {},
            "laptop": {"suite": "minatar", "games": ["breakout"], "normalization": "max",
                       "gin_bindings": ["Runner.suite = 'minatar'", "ENCODER = 'minatar'",
                                        "Runner.training_steps = 5000",
                                        "DQNAgent.min_replay_history = 1000"]},
            "smoke": {"suite": "atari100k",
                      "gin_bindings": _smoke("DQNAgent", ["Runner.suite = 'atari100k'",
                                                          "ENCODER = 'nature'"]),
                      "axes": {"bottleneck": ["flatten", "gap"], "width": ["x1"]}},
        },
    },
    "smoke": {
        "description": "Two tiny trials (DQN, Nature x1, flatten vs GAP, Atari100K Pong, 2 x 200 "
                       "agent steps): checks that Ray, the trials and the report work.",
        "suite": "atari100k",
        "games": ["Pong"],
        "seeds": 1,
        "gin_files": ["dqn.gin"],
        "gin_bindings": _smoke("DQNAgent"),
        # Each game's best score in the study: defined for any game (tests run it on their own
        # environment), and the plumbing is what the smoke study checks.
        "normalization": "max",
        "axes": {"bottleneck": {k: BOTTLENECKS[k] for k in ("flatten", "gap")}},
        "budgets": {"paper": {}, "laptop": {}, "smoke": {}},
    },
}

NAMES = tuple(_STUDIES)


def get(name):
  """A deep copy of the built-in study `name` (a spec dict), or None."""
  spec = _STUDIES.get(name)
  if spec is None:
    return None
  spec = copy.deepcopy(spec)
  spec["study"] = name
  return spec


__all__ = ["NAMES", "get", "TRIAL_DEFAULTS", "PROCGEN_REFERENCES"]
