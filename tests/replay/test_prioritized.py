"""Sum tree and proportional prioritized sampling."""

import numpy as np
import pytest

from tfgap.replay import MID, ReplayBuffer, SumTree


@pytest.mark.parametrize("capacity, fanout", [(1, 2), (5, 2), (64, 4), (1000, 3), (1000, 128),
                                              (5000, 16)])
def test_sum_tree_totals_and_find_match_prefix_sums(capacity, fanout):
  rng = np.random.default_rng(capacity)
  tree = SumTree(capacity, fanout=fanout)
  values = np.zeros(capacity)
  for _ in range(30):
    idx = rng.integers(0, capacity, size=rng.integers(1, 8))
    new = rng.random(idx.size) * (rng.random(idx.size) < 0.8)  # Some zeros.
    tree.set(idx, new)
    for i, v in zip(idx, new):  # Last write wins, as numpy assignment.
      values[i] = v
    np.testing.assert_allclose(tree.total, values.sum())
    np.testing.assert_allclose(tree.get(np.arange(capacity)), values)
  if values.sum() == 0:
    values[0] = 1.0
    tree.set([0], 1.0)
  cumsum = np.cumsum(values)
  queries = rng.random(500) * cumsum[-1]
  want = np.searchsorted(cumsum, queries, side="right")
  np.testing.assert_array_equal(tree.find(queries), want)
  # Values at or past the total (rounding) still land on a non-zero leaf.
  edge = tree.find(np.array([cumsum[-1], cumsum[-1] * (1 + 1e-12)]))
  assert np.all(values[edge] > 0)
  # Zero leaves are never returned, even for queries on their (empty) interval boundaries.
  boundaries = np.concatenate([[0.0], cumsum[:-1]])
  assert np.all(values[tree.find(boundaries)] > 0)
  tree.rebuild(values)
  np.testing.assert_allclose(tree.total, values.sum())
  np.testing.assert_array_equal(tree.find(queries), want)


def test_sum_tree_rejects_bad_input():
  with pytest.raises(ValueError,
                     match="SumTree capacity=0 is not accepted; accepted: an integer >= 1"):
    SumTree(0)
  tree = SumTree(4)
  with pytest.raises(ValueError, match=r"SumTree indices=\(4, 4\) is not accepted; accepted: "
                                       r"indices in \[0, 4\)"):
    tree.set([4], [1.0])
  with pytest.raises(ValueError, match="finite numbers >= 0"):
    tree.set([0], [-1.0])
  with pytest.raises(ValueError, match="empty tree"):
    tree.find([0.0])
  with pytest.raises(ValueError,
                     match="SumTree fanout=1 is not accepted; accepted: an integer >= 2"):
    SumTree(4, fanout=1)


def _filled(num_items, alpha=0.6, beta=0.4, beta_steps=0, seed=0):
  # One stream, n=1, no episode ends: num_items sampleable items after num_items + 1 steps.
  buffer = ReplayBuffer(num_items + 8, (1, 1, 1), stack_size=1, num_streams=1, n_step=1,
                        gamma=0.9, prioritized=True, alpha=alpha, beta=beta, beta_steps=beta_steps,
                        seed=seed)
  buffer.add_first(np.zeros((1, 1, 1), np.uint8))
  for _ in range(num_items):
    buffer.add(np.zeros((1, 1, 1), np.uint8), 0, 0.0, MID)
  assert len(buffer) == num_items
  return buffer


def test_new_items_get_the_max_priority():
  buffer = _filled(6, alpha=0.5)
  ids = buffer.sampleable_indices()
  np.testing.assert_allclose(buffer.priorities(ids), 1.0)
  buffer.update_priorities(ids[:2], [4.0, 0.25])
  buffer.add(np.zeros((1, 1, 1), np.uint8), 0, 0.0, MID)
  newest = buffer.sampleable_indices()[-1]
  assert newest not in ids
  np.testing.assert_allclose(buffer.priorities([newest]), 4.0 ** 0.5)
  np.testing.assert_allclose(buffer.priorities(ids[:2]), [2.0, 0.5])


def test_sampling_frequencies_follow_priorities():
  alpha = 0.7
  buffer = _filled(12, alpha=alpha, seed=3)
  ids = buffer.sampleable_indices()
  priorities = np.linspace(0.1, 3.0, ids.size)
  buffer.update_priorities(ids, priorities)
  expected_p = priorities ** alpha / (priorities ** alpha).sum()
  counts = np.zeros(ids.size)
  position = {item: i for i, item in enumerate(ids.tolist())}
  draws = 0
  for _ in range(3000):
    for item in buffer.sample(8)["indices"].tolist():
      counts[position[item]] += 1
      draws += 1
  expected = expected_p * draws
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 < 2.5 * (ids.size - 1)  # Stratified draws only lower the variance.
  # And visibly not uniform: the top item is drawn far more than the bottom one.
  assert counts[-1] > 5 * counts[0]


def test_importance_weights_formula_and_beta_annealing():
  alpha, beta0 = 0.6, 0.4
  buffer = _filled(10, alpha=alpha, beta=beta0, beta_steps=4)
  ids = buffer.sampleable_indices()
  priorities = np.arange(1, 11, dtype=float)
  buffer.update_priorities(ids, priorities)
  scaled = dict(zip(ids.tolist(), priorities ** alpha))
  total = sum(scaled.values())
  betas = []
  for step in range(6):
    buffer.set_learner_step(step)  # beta follows the learner's step, never the sample count
    beta = buffer.beta
    betas.append(beta)
    for _ in range(2):  # A second (e.g. diagnostic) sample leaves beta where it is.
      batch = buffer.sample(8)
      probs = np.array([scaled[i] for i in batch["indices"].tolist()]) / total
      raw = (10 * probs) ** (-beta)
      np.testing.assert_allclose(batch["weights"], raw / raw.max(), rtol=1e-5)
      assert batch["weights"].max() == pytest.approx(1.0)
  np.testing.assert_allclose(betas, [0.4, 0.55, 0.7, 0.85, 1.0, 1.0])
  assert buffer.learner_step == 5
  with pytest.raises(ValueError, match="step=-1 is not accepted"):
    buffer.set_learner_step(-1)
  # An explicit beta overrides the schedule.
  batch = buffer.sample(8, beta=0.0)
  np.testing.assert_allclose(batch["weights"], 1.0)


def test_alpha_zero_is_uniform_and_zero_priority_items_stay_drawable():
  buffer = _filled(5, alpha=0.0)
  ids = buffer.sampleable_indices()
  buffer.update_priorities(ids, [0.0, 1.0, 5.0, 10.0, 100.0])
  np.testing.assert_allclose(buffer.priorities(ids), 1.0)
  buffer = _filled(5, alpha=1.0)
  ids = buffer.sampleable_indices()
  buffer.update_priorities(ids, [0.0, 1.0, 1.0, 1.0, 1.0])
  assert buffer.priorities(ids[:1])[0] > 0  # Clipped at min_priority, never impossible.


def test_overwritten_items_ignore_stale_priority_updates():
  buffer = ReplayBuffer(12, (1, 1, 1), stack_size=2, num_streams=1, n_step=1, gamma=0.9,
                        prioritized=True, alpha=1.0)
  buffer.add_first(np.zeros((1, 1, 1), np.uint8))
  for _ in range(6):
    buffer.add(np.zeros((1, 1, 1), np.uint8), 0, 0.0, MID)
  old = buffer.sampleable_indices()
  for _ in range(12):  # Wrap: every old item is overwritten.
    buffer.add(np.zeros((1, 1, 1), np.uint8), 0, 0.0, MID)
  assert not set(old.tolist()) & set(buffer.sampleable_indices().tolist())
  total_before = buffer._tree.total  # pylint: disable=protected-access
  buffer.update_priorities(old, np.full(old.size, 50.0))
  assert buffer._tree.total == total_before  # pylint: disable=protected-access
  np.testing.assert_array_equal(buffer.priorities(old), 0.0)
  leaves = buffer._tree.leaves()  # pylint: disable=protected-access
  assert np.count_nonzero(leaves) == len(buffer)


@pytest.mark.parametrize("indices, priorities, needle", [
    ([0, 1], [1.0], r"priorities shape=\(1,\) is not accepted; accepted: the indices shape"),
    ([0], [-1.0], r"priorities=\[-1.0\] is not accepted; accepted: finite numbers >= 0"),
    ([0], [np.nan], "finite numbers >= 0"),
])
def test_bad_priority_updates(indices, priorities, needle):
  buffer = _filled(4)
  with pytest.raises(ValueError, match=needle):
    buffer.update_priorities(indices, priorities)
