"""beta follows the learner's step; diagnostic samples and dropped prefetches change no state."""

import json
import os

import numpy as np
import pytest

from tests.replay import reference
from tfgap.replay import ReplayBuffer


def _filled(prioritized=True, seed=3, steps=40):
  buffer = ReplayBuffer(90, (5, 4, 1), stack_size=4, num_streams=3, n_step=3, gamma=0.97,
                        prioritized=prioritized, alpha=0.6, beta=0.4, beta_final=1.0,
                        beta_steps=10, seed=seed)
  streams = reference.EpisodeStreams(3, (5, 4, 1), 4, seed=1)
  for _ in range(steps):
    step = streams.step()
    buffer.add(step["frame"], step["action"], step["reward"], step["step_type"],
               step["discount"])
  return buffer


def _assert_same(a, b):
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("prioritized", [True, False])
def test_diagnostic_samples_leave_training_batches_and_beta_alone(prioritized):
  probed, clean = _filled(prioritized), _filled(prioritized)
  probed.set_learner_step(4)
  clean.set_learner_step(4)
  beta = probed.beta
  own = np.random.default_rng(11)
  probe = probed.sample(16, rng=own)
  probed.sample(16, rng=12)  # An int seed works too.
  assert probed.beta == beta
  _assert_same(probed.sample(8), clean.sample(8))
  # The probe really drew with its own generator.
  _assert_same(probe, _filled(prioritized).sample(16, rng=np.random.default_rng(11)))
  with pytest.raises(ValueError, match="rng='x' is not accepted"):
    probed.sample(2, rng="x")


def test_beta_anneals_over_learner_steps_only():
  buffer = _filled()
  assert buffer.beta == pytest.approx(0.4)
  for _ in range(20):
    buffer.sample(4)
  assert buffer.beta == pytest.approx(0.4)  # Samples alone never move it.
  buffer.set_learner_step(5)
  assert buffer.beta == pytest.approx(0.7)
  buffer.set_learner_step(50)
  assert buffer.beta == pytest.approx(1.0)


def test_learner_step_is_saved_and_old_checkpoints_restore(tmp_path):
  buffer = _filled()
  buffer.set_learner_step(5)
  buffer.save(str(tmp_path / "new"))
  restored = ReplayBuffer.from_checkpoint(str(tmp_path / "new"))
  assert restored.learner_step == 5 and restored.beta == pytest.approx(0.7)

  # A checkpoint written before set_learner_step existed counted sampled batches instead.
  buffer.save(str(tmp_path / "old"))
  folder = tmp_path / "old" / (tmp_path / "old" / "LATEST").read_text()
  manifest = json.loads((folder / "manifest.json").read_text())
  del manifest["state"]["learner_step"]
  manifest["state"]["num_batches"] = 2
  (folder / "manifest.json").write_text(json.dumps(manifest))
  old = ReplayBuffer.from_checkpoint(str(tmp_path / "old"))
  assert old.learner_step == 2 and old.beta == pytest.approx(0.52)
  del manifest["state"]["num_batches"]
  (folder / "manifest.json").write_text(json.dumps(manifest))
  assert ReplayBuffer.from_checkpoint(str(tmp_path / "old")).learner_step == 0
  assert os.path.exists(folder / "frames.npy")


@pytest.mark.parametrize("prioritized", [True, False])
def test_batches_a_prefetcher_drops_consume_no_randomness(prioritized):
  fetched, inline = _filled(prioritized), _filled(prioritized)
  prefetcher = fetched.prefetch(8, depth=3)
  used = [next(prefetcher) for _ in range(2)]
  # Let the thread fill its queue and block on one more batch: 4 drawn batches get dropped.
  for _ in range(200):
    if prefetcher._queue.full():  # pylint: disable=protected-access
      break
    prefetcher.thread.join(0.01)
  assert prefetcher._queue.full()  # pylint: disable=protected-access
  prefetcher.close()
  assert not prefetcher.thread.is_alive()
  for batch in used:
    _assert_same(batch, inline.sample(8))
  # Afterwards the buffer continues as if only the two used batches had been drawn.
  for _ in range(3):
    _assert_same(fetched.sample(8), inline.sample(8))


def test_prefetcher_leaves_the_rng_alone_if_someone_else_drew_meanwhile():
  fetched = _filled()
  prefetcher = fetched.prefetch(8, depth=2)
  next(prefetcher)
  for _ in range(200):
    if prefetcher._queue.full():  # pylint: disable=protected-access
      break
    prefetcher.thread.join(0.01)
  prefetcher._stop.set()  # pylint: disable=protected-access
  prefetcher.thread.join(5)
  fetched.sample(8)  # Another consumer of the main RNG after the thread's last draw.
  state = fetched._rng_state()  # pylint: disable=protected-access
  prefetcher.close()
  assert fetched._rng_state() == state  # pylint: disable=protected-access
