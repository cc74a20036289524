"""Writes run directories with metrics.jsonl in the format of docs/DESIGN.md, for tests."""

import json
import os

# Human-normalisation references {game: (random, human)} used by the tests (Mnih et al. 2015).
REFERENCES = {"Pong": (-20.7, 14.6), "Breakout": (1.7, 30.5), "Asterix": (210.0, 8503.3)}


def record(iteration, game, seed, eval_return, agent="dqn", encoder="nature",
           bottleneck="flatten", width_scale=1.0, steps_per_iteration=1000, dormant=None):
  out = {
      "iteration": iteration, "env_steps": (iteration + 1) * steps_per_iteration,
      "train_steps": (iteration + 1) * steps_per_iteration // 4, "suite": "atari", "game": game,
      "seed": seed, "agent": agent, "encoder": encoder, "bottleneck": bottleneck,
      "width_scale": width_scale, "train_return": 0.0,
      "eval_return": eval_return, "eval_returns": [eval_return], "loss": 0.1,
      "steps_per_sec": 100.0,
  }
  if dormant is not None:
    out.update(dormant)
  return out


def write_run(root, game, seed, returns, name=None, dormant=True, **config):
  """Writes root/<name>/metrics.jsonl with one record per entry of `returns`.

  Returns:
    The metrics.jsonl path.
  """
  label = "_".join(f"{v}" for v in config.values()) or "default"
  run_dir = os.path.join(root, name or f"{label}_{game}_{seed}")
  os.makedirs(run_dir, exist_ok=True)
  path = os.path.join(run_dir, "metrics.jsonl")
  with open(path, "w", encoding="utf-8") as f:
    for i, value in enumerate(returns):
      fields = None
      if dormant:
        frac = min(1.0, 0.05 * i)
        fields = {"dormant/phi/0": frac / 2, "dormant/phi/0.1": frac,
                  "dormant/psi/0": frac / 4, "dormant/psi/0.1": frac / 2,
                  "dormant/all/0.1": frac * 0.8, "dormant/conv0/0.1": frac}
      f.write(json.dumps(record(i, game, seed, value, dormant=fields, **config)) + "\n")
  return path
