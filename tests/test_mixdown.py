"""engine.mixdown: the channel mean every decode, the live stream and the scope use."""

import numpy as np
import pytest

from engine.mixdown import mono_mix


@pytest.mark.parametrize("channels", [1, 2, 3, 7, 8, 10])
def test_mono_mix_is_the_float32_channel_mean(channels):
    rng = np.random.default_rng(channels)
    frames = rng.standard_normal((4_097, channels)).astype(np.float32)
    mono = mono_mix(frames)
    assert mono.dtype == np.float32 and mono.shape == (4_097,)
    assert np.array_equal(mono, frames.mean(axis=1, dtype=np.float32))


def test_mono_mix_returns_a_new_array():
    frames = np.ones((16, 1), np.float32)
    mono = mono_mix(frames)
    mono[:] = 5.0
    assert np.all(frames == 1.0)
