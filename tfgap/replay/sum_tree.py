"""A vectorised numpy sum tree for proportional prioritized replay.

The tree is wide rather than binary: every node has ``fanout`` children (128 by default), so 1M
leaves need only three levels. A batch of updates or samples costs a few numpy calls per level on
``[batch, fanout]`` blocks, instead of ~20 levels of tiny numpy calls for a binary tree, whose
per-call overhead dominates at replay batch sizes. Leaves are float64; parents are recomputed from
their children on every update (never adjusted by deltas), so the sums never drift.
"""

import numpy as np

from tfgap import checks


class SumTree:
  """Sum tree over ``capacity`` non-negative leaf values."""

  def __init__(self, capacity, fanout=128):
    """Creates a tree of zeros.

    Args:
      capacity: number of leaves, a positive int.
      fanout: children per node, an int >= 2.

    Raises:
      ValueError: if ``capacity`` or ``fanout`` is out of range.
    """
    self._capacity = checks.check_int("SumTree capacity", capacity, low=1)
    self._fanout = checks.check_int("SumTree fanout", fanout, low=2)
    # _levels[0] are the leaves; _levels[i + 1][j] sums _levels[i][j * fanout:(j + 1) * fanout];
    # the last level (at most `fanout` nodes) holds the root's children. Lower levels are padded
    # with zeros to a multiple of `fanout` so each reshapes to [parents, fanout].
    self._levels = []
    size = self._capacity
    while size > self._fanout:
      padded = -(-size // self._fanout) * self._fanout
      self._levels.append(np.zeros(padded, dtype=np.float64))
      size = padded // self._fanout
    self._levels.append(np.zeros(size, dtype=np.float64))

  @property
  def capacity(self):
    return self._capacity

  @property
  def total(self):
    """Sum of all leaves."""
    return float(self._levels[-1].sum())

  @property
  def nbytes(self):
    return sum(level.nbytes for level in self._levels)

  def get(self, indices):
    """Returns the leaf values at ``indices`` (int array) as float64."""
    return self._levels[0][np.asarray(indices, dtype=np.int64)]

  def leaves(self, count=None):
    """Returns a view of the first ``count`` leaves (all leaves by default)."""
    count = self._capacity if count is None else count
    return self._levels[0][:count]

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
    values = np.asarray(values, dtype=np.float64)
    if values.ndim and values.shape != indices.shape:
      values = np.broadcast_to(values, indices.shape)
    low, high = indices.min(), indices.max()
    if low < 0 or high >= self._capacity:
      checks.reject("SumTree indices", (int(low), int(high)),
                    f"indices in [0, {self._capacity}) (shown: min, max)")
    if not (np.all(np.isfinite(values)) and values.min() >= 0):
      checks.reject("SumTree values", values.tolist(), "finite numbers >= 0")
    self.set_unchecked(indices, values)

  def set_unchecked(self, indices, values):
    """``set`` without argument checks: int64 indices in range, values finite and >= 0."""
    self._levels[0][indices] = values
    nodes = indices
    for child, parent in zip(self._levels[:-1], self._levels[1:]):
      # Repeated parents are recomputed twice with the same value: cheaper than np.unique.
      nodes = nodes // self._fanout
      parent[nodes] = child.reshape(-1, self._fanout)[nodes].sum(axis=1)

  def rebuild(self, leaf_values):
    """Replaces all leaves (zeros past ``len(leaf_values)``) and recomputes every parent."""
    leaf_values = np.asarray(leaf_values, dtype=np.float64).reshape(-1)
    if leaf_values.size > self._capacity:
      checks.reject("SumTree.rebuild values count", leaf_values.size,
                    f"at most the capacity {self._capacity}")
    if leaf_values.size and not (np.all(np.isfinite(leaf_values)) and leaf_values.min() >= 0):
      checks.reject("SumTree.rebuild values", "<array>", "finite numbers >= 0")
    leaves = self._levels[0]
    leaves[:leaf_values.size] = leaf_values
    leaves[leaf_values.size:] = 0.0
    for child, parent in zip(self._levels[:-1], self._levels[1:]):
      sums = child.reshape(-1, self._fanout).sum(axis=1)
      parent[:sums.size] = sums
      parent[sums.size:] = 0.0  # Padding.

  def find(self, values):
    """Maps each value in ``[0, total)`` to the leaf whose prefix-sum interval contains it.

    Leaf ``j`` owns ``[sum(leaves[:j]), sum(leaves[:j+1]))``. The descent never enters a node of
    mass zero, so a zero leaf is never returned, even when rounding puts a value at or past the end
    of its node's interval.

    Args:
      values: float array of query values.

    Returns:
      int64 array of leaf indices, same shape as ``values``.

    Raises:
      ValueError: if the tree is empty (total 0).
    """
    if self.total <= 0:
      raise ValueError("SumTree.find on an empty tree (total priority 0).")
    values = np.array(values, dtype=np.float64, copy=True)
    shape = values.shape
    values = values.reshape(-1)
    rows = np.arange(values.size)
    top = self._levels[-1]
    nodes = self._descend(np.broadcast_to(top, (values.size, top.size)), values, rows)
    for level in reversed(self._levels[:-1]):
      children = level.reshape(-1, self._fanout)[nodes]
      nodes = nodes * self._fanout + self._descend(children, values, rows)
    return nodes.reshape(shape)

  @staticmethod
  def _descend(children, values, rows):
    """Picks, per row, the child whose interval holds ``values`` (updated in place)."""
    count, width = children.shape
    cumulative = np.zeros((count, width + 1))
    np.cumsum(children, axis=1, out=cumulative[:, 1:])
    position = np.count_nonzero(cumulative[:, 1:] <= values[:, None], axis=1)
    np.minimum(position, width - 1, out=position)
    empty = children[rows, position] == 0
    if empty.any():
      # Only when rounding put a value at or past the end of its node: take the last child with
      # mass (the one just before the end).
      flipped = children[empty, ::-1] > 0
      position[empty] = width - 1 - np.argmax(flipped, axis=1)
    values -= cumulative[rows, position]
    return position

  def sample_stratified(self, batch_size, rng):
    """Draws ``batch_size`` leaves, one from each of ``batch_size`` equal slices of the total mass.

    Args:
      batch_size: positive int.
      rng: a ``numpy.random.Generator``.

    Returns:
      int64 array ``[batch_size]`` of leaf indices, each drawn with probability proportional to its
      value (stratification lowers the variance of the batch, not the marginal probabilities).
    """
    segment = self.total / batch_size
    values = (np.arange(batch_size) + rng.random(batch_size)) * segment
    return self.find(values)
