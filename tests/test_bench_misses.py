"""bench/misses.py: the waveform match that tells "the same recording" from "another hit"."""

import numpy as np

from bench import misses

SR = 44100


def _hit(rng, n=SR):
    t = np.arange(n) / SR
    return np.exp(-t / 0.08) * rng.standard_normal(n)


def test_same_recording_at_another_level_and_offset_matches():
    rng = np.random.default_rng(0)
    hit = _hit(rng)
    shifted = np.concatenate([np.zeros(300), 0.2 * hit])[:hit.size]
    assert misses.waveform_match(hit, hit) > 0.999
    assert misses.waveform_match(hit, shifted) > 0.95


def test_another_hit_does_not_match():
    rng = np.random.default_rng(1)
    assert misses.waveform_match(_hit(rng), _hit(rng)) < 0.2


def test_empty_clip_gives_zero():
    assert misses.waveform_match(np.zeros(0), np.ones(10)) == 0.0


def test_misses_are_counted_per_folder_against_that_folders_queries():
    queries = ["kits/a", "kits/a", "kits/a", "kits/b", "kits/b", "sfx"]
    rows = misses.misses_by_folder(queries, ["kits/b", "kits/a", "kits/a"])
    assert list(rows) == ["kits/a", "kits/b"]          # most misses first, folders without a miss left out
    assert rows["kits/a"] == {"misses": 2, "queries": 3}
    assert rows["kits/b"] == {"misses": 1, "queries": 2}
