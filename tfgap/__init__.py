"""tfgap: "Mind the GAP!" (Sokar & Castro) on TensorFlow 2 / Keras 2 and TF-Agents.

Scaled pixel encoders with the paper's bottlenecks (flatten, GAP, SoftMoE, tokenize, pruned),
TF-Agents agents with compiled updates, the paper's environments, and its analyses.

Importing the package (or `tfgap.replay`, `tfgap.envs`, `tfgap.checks`) imports no TensorFlow and
changes nothing in the process: no environment variables, no subprocesses. The packages that need
TensorFlow (`networks`, `agents`, `analysis`) import it themselves, and `tfgap.compat` checks the
installed stack when they do. Process-wide settings (TensorFlow's oneDNN kernels and log level, the
MuJoCo renderer) are made by the command-line tools through
`tfgap.launch.runtime.prepare_process()`, which scripts can call too, before importing TensorFlow.
"""

__version__ = "0.1.0"
