"""tfgap.replay: a frame-once numpy replay buffer for pixel-based agents.

``ReplayBuffer`` stores one frame per environment step and stream, rebuilds zero-padded stacked
observations on sampling, computes n-step returns, samples uniformly or by priority (``SumTree``),
runs ahead of the learner (``ReplayBuffer.prefetch`` / ``ReplayBuffer.as_dataset``) and saves to a
directory atomically (``save`` / ``restore`` / ``ReplayBuffer.from_checkpoint``).
"""

from tfgap.replay.buffer import FIRST
from tfgap.replay.buffer import LAST
from tfgap.replay.buffer import MID
from tfgap.replay.buffer import ReplayBuffer
from tfgap.replay.checkpoint import ReplayCheckpointError
from tfgap.replay.prefetch import Prefetcher
from tfgap.replay.sum_tree import SumTree

__all__ = ["ReplayBuffer", "SumTree", "Prefetcher", "ReplayCheckpointError", "FIRST", "MID",
           "LAST"]
