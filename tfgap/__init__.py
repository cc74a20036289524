"""tfgap: "Mind the GAP!" (Sokar & Castro) on TensorFlow 2 / Keras 2 and TF-Agents.

Scaled pixel encoders with the paper's bottlenecks (flatten, GAP, SoftMoE, tokenize, pruned),
TF-Agents agents with compiled updates, the paper's environments, and its analyses.
"""

from tfgap import compat as _compat  # Fails fast on an unsupported TF/Keras/numpy stack.

__version__ = "0.1.0"
