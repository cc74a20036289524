"""FrameStack against a plain list-of-frames reference."""

import numpy as np
import pytest

from tfgap.envs.core import FrameStack


@pytest.mark.parametrize("frame_shape,k", [((84, 84, 1), 4), ((84, 84, 1), 3), ((10, 10, 3), 3),
                                           ((6, 6, 1), 4), ((5, 7, 2), 2), ((8, 8, 3), 1)])
def test_frame_stack_matches_reference(frame_shape, k):
  rng = np.random.RandomState(0)
  n = 3
  stack = FrameStack(n, frame_shape, k)
  zeros = np.zeros(frame_shape, np.uint8)
  ref = [[zeros] * k for _ in range(n)]
  for t in range(15):
    frames = rng.randint(0, 256, size=(n,) + frame_shape).astype(np.uint8)
    if t % 5 == 0:
      stack.begin(1, frames[1])
      ref[1] = [zeros] * (k - 1) + [frames[1]]
    elif t % 3 == 0:
      stack.push_all(frames)
      ref = [r[1:] + [frames[i]] for i, r in enumerate(ref)]
    else:
      stack.push(2, frames[2])
      ref[2] = ref[2][1:] + [frames[2]]
    want = np.stack([np.concatenate(r, axis=-1) for r in ref])
    got = stack.observation()
    np.testing.assert_array_equal(got, want)
    # Observations are copies: the next push must not change them.
    kept = got.copy()
    stack.push_all(frames)
    ref = [r[1:] + [frames[i]] for i, r in enumerate(ref)]
    np.testing.assert_array_equal(got, kept)
