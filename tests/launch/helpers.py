"""What the tfgap.launch.train tests share: reading a run's outputs, and acting with its exported
policy in a fresh interpreter."""

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf


def read_metrics(root):
  """The records of a run's metrics.jsonl, in order."""
  return [json.loads(line) for line in (pathlib.Path(root) / "metrics.jsonl").read_text()
          .splitlines()]


def event_tags(folder):
  """Every summary tag in the TensorBoard event files of `folder`."""
  tags = set()
  for path in pathlib.Path(folder).glob("events.out.tfevents.*"):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      tags.update(v.tag for v in event.summary.value)
  return tags


def saved_policy_actions(policy_dir, observations, work_dir):
  """The actions a SavedModel policy (`Runner.export_policies`) takes on `observations`, loaded
  in a fresh interpreter with TensorFlow, TF-Agents and TFP only.

  The interpreter runs in `work_dir` (not the repository), and the check fails if it imported
  any tfgap module: an exported policy must not need tfgap.

  Args:
    policy_dir: a policies/iter_* folder.
    observations: `[N, ...]` observations (saved to work_dir/obs.npy).
    work_dir: a scratch folder.

  Returns:
    The actions as a numpy array (first dimension N).
  """
  obs_path = pathlib.Path(work_dir) / "obs.npy"
  np.save(obs_path, observations)
  script = textwrap.dedent(f"""
      import json
      import sys
      import numpy as np
      import tensorflow as tf
      import tensorflow_probability  # registers the distribution specs the SavedModel needs
      from tf_agents.trajectories import time_step as ts
      policy = tf.saved_model.load({str(policy_dir)!r})
      obs = tf.constant(np.load({str(obs_path)!r}))
      n = obs.shape[0]
      step = ts.TimeStep(tf.ones([n], tf.int32), tf.zeros([n]), tf.ones([n]), obs)
      print("ACTIONS", policy.action(step).action.numpy().tolist())
      print("TFGAP", json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "tfgap")))
  """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False, cwd=work_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = dict(line.split(" ", 1) for line in result.stdout.splitlines()
               if line.startswith(("ACTIONS ", "TFGAP ")))
  assert json.loads(lines["TFGAP"]) == [], lines["TFGAP"]
  return np.array(json.loads(lines["ACTIONS"]))
