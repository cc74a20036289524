"""A vectorised numpy sum tree for proportional prioritized replay.

The tree is a flat float64 array of size ``2 * num_leaves`` (``num_leaves`` is the capacity rounded up
to a power of two): node ``i`` has children ``2i`` and ``2i + 1``, the root is node 1 and leaf ``j``
is node ``num_leaves + j``. Updates and samples work on whole batches of indices at once, one numpy
operation per tree level, so a batch costs ``O(log capacity)`` numpy calls, not ``O(batch)`` Python
iterations.
"""

import numpy as np


class SumTree:
  """Sum tree over ``capacity`` non-negative leaf values.

  Parents are recomputed from their children on every update (never adjusted by deltas), so the sums
  never drift however many updates are applied.
  """

  def __init__(self, capacity):
    """Creates a tree of zeros.

    Args:
      capacity: number of leaves, a positive int.

    Raises:
      ValueError: if ``capacity`` is not a positive int.
    """
    if int(capacity) != capacity or capacity <= 0:
      raise ValueError(f"SumTree capacity must be a positive int, got {capacity!r}.")
    self._capacity = int(capacity)
    self._num_leaves = 1
    while self._num_leaves < self._capacity:
      self._num_leaves *= 2
    self._depth = self._num_leaves.bit_length() - 1  # Levels below the root.
    self._nodes = np.zeros(2 * self._num_leaves, dtype=np.float64)

  @property
  def capacity(self):
    return self._capacity

  @property
  def total(self):
    """Sum of all leaves."""
    return float(self._nodes[1])

  @property
  def nbytes(self):
    return self._nodes.nbytes

  def get(self, indices):
    """Returns the leaf values at ``indices`` (int array) as float64."""
    return self._nodes[self._num_leaves + np.asarray(indices, dtype=np.int64)]

  def leaves(self, count=None):
    """Returns a view of the first ``count`` leaves (all leaves by default)."""
    count = self._capacity if count is None else count
    return self._nodes[self._num_leaves:self._num_leaves + count]

  def set(self, indices, values):
    """Sets leaves ``indices`` to ``values`` and recomputes their ancestors.

    Args:
      indices: int array of leaf indices in ``[0, capacity)``. With repeated indices the last value
        wins.
      values: array broadcastable to ``indices`` of non-negative finite values.

    Raises:
      ValueError: for an index out of range or a negative / non-finite value.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size == 0:
      return
    values = np.broadcast_to(np.asarray(values, dtype=np.float64), indices.shape)
    if indices.min() < 0 or indices.max() >= self._capacity:
      raise ValueError(
          f"SumTree indices must be in [0, {self._capacity}), got min {indices.min()} "
          f"max {indices.max()}.")
    if not np.all(np.isfinite(values)) or values.min() < 0:
      raise ValueError(f"SumTree values must be finite and >= 0, got {values}.")
    nodes = indices + self._num_leaves
    self._nodes[nodes] = values
    for _ in range(self._depth):
      nodes = nodes >> 1
      # Duplicated parents are written twice with the same value: harmless, and cheaper than unique.
      self._nodes[nodes] = self._nodes[2 * nodes] + self._nodes[2 * nodes + 1]

  def rebuild(self, leaf_values):
    """Replaces all leaves (zeros past ``len(leaf_values)``) and recomputes every parent."""
    leaf_values = np.asarray(leaf_values, dtype=np.float64).reshape(-1)
    if leaf_values.size > self._capacity:
      raise ValueError(
          f"SumTree.rebuild got {leaf_values.size} values for capacity {self._capacity}.")
    self._nodes[:] = 0.0
    self._nodes[self._num_leaves:self._num_leaves + leaf_values.size] = leaf_values
    width = self._num_leaves
    while width > 1:
      width //= 2
      children = self._nodes[2 * width:4 * width]
      self._nodes[width:2 * width] = children[0::2] + children[1::2]

  def find(self, values):
    """Maps each value in ``[0, total)`` to the leaf whose prefix-sum interval contains it.

    Leaf ``j`` owns ``[sum(leaves[:j]), sum(leaves[:j+1]))``. The descent never enters a subtree of
    sum zero, so a zero leaf is never returned even when rounding puts a value at or past ``total``.

    Args:
      values: float array of query values.

    Returns:
      int64 array of leaf indices, same shape as ``values``.

    Raises:
      ValueError: if the tree is empty (total 0).
    """
    if self._nodes[1] <= 0:
      raise ValueError("SumTree.find on an empty tree (total priority 0).")
    values = np.array(values, dtype=np.float64, copy=True)
    shape = values.shape
    values = values.reshape(-1)
    nodes = np.ones(values.shape, dtype=np.int64)
    for _ in range(self._depth):
      left = 2 * nodes
      left_sum = self._nodes[left]
      go_right = (values >= left_sum) & (self._nodes[left + 1] > 0)
      values -= np.where(go_right, left_sum, 0.0)
      nodes = left + go_right
    return (nodes - self._num_leaves).reshape(shape)

  def sample_stratified(self, batch_size, rng):
    """Draws ``batch_size`` leaves, one from each of ``batch_size`` equal slices of the total mass.

    Args:
      batch_size: positive int.
      rng: a ``numpy.random.Generator``.

    Returns:
      int64 array ``[batch_size]`` of leaf indices, each drawn with probability proportional to its
      value (stratification lowers the variance of the batch, not the marginal probabilities).
    """
    segment = self._nodes[1] / batch_size
    values = (np.arange(batch_size) + rng.random(batch_size)) * segment
    return self.find(values)
