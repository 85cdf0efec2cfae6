"""The level-twin rule shared by training and the retrieval benchmark (numpy only)."""

import numpy as np

from models import level_twins
from models.level_twins import group_ids, level_twin_groups, whole_clip_correlation


def _decaying_hit(rng, n, tau):
    return rng.standard_normal(n) * np.exp(-np.arange(n) / tau)


def test_sliced_correlation_equals_the_direct_one(monkeypatch):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((5, 10_001)).astype(np.float32)
    audio[3] = 0.0
    monkeypatch.setattr(level_twins, "SLICE_SAMPLES", 1000)     # eleven slices, the last one short
    got = whole_clip_correlation(audio)
    x = audio.astype(np.float64)
    norm = np.linalg.norm(x, axis=1)
    expected = (x @ x.T) / np.outer(np.where(norm > 0, norm, 1), np.where(norm > 0, norm, 1))
    assert np.allclose(got, expected, atol=1e-12)
    assert got[3].tolist() == [0.0] * 5                         # silence correlates with nothing


def test_twins_that_differ_only_in_a_quiet_tail_are_found():
    # A drum velocity layer rendered twice: the same hit up to gain, with render noise
    # 80 dB down in a tail that has decayed by 45 dB. A probe from the middle of the clip
    # (the earlier training rule) sees mostly that noise and misses the pair; the whole
    # clip is dominated by the attack and correlates above the threshold.
    rng = np.random.default_rng(1)
    n = 44100
    hit = _decaying_hit(rng, n, 2500)
    twin = 0.4 * hit + 1e-4 * rng.standard_normal(n)
    mid = slice(n // 2 - 2048, n // 2 + 2048)
    probe = hit[mid] @ twin[mid] / np.linalg.norm(hit[mid]) / np.linalg.norm(twin[mid])
    assert probe < level_twins.TWIN_CORRELATION
    clips = [hit, _decaying_hit(rng, n, 2500), twin]
    assert level_twin_groups([n] * 3, lambda i: clips[i]) == [[0, 2]]


def test_groups_are_transitive_and_skip_zero_lengths():
    rng = np.random.default_rng(2)
    hit = _decaying_hit(rng, 8000, 900)
    a, b = hit, 0.5 * hit
    loaded = []
    clips = [a, rng.standard_normal(8000), b, 2.0 * hit, hit[:7000], 3.0 * hit]

    def load(i):
        loaded.append(i)
        return clips[i]

    groups = level_twin_groups([8000, 8000, 8000, 8000, 7000, 0], load)
    assert groups == [[0, 2, 3]]
    assert 4 not in loaded and 5 not in loaded                  # nothing of its length, left out
    assert group_ids(6, groups).tolist() == [0, 1, 0, 0, 4, 5]
