"""The training pool's damaged views do not depend on how items are split over workers."""

import numpy as np

from models.train import prepare
from models.train.sources import Clip


def test_an_items_views_depend_only_on_the_item(monkeypatch):
    rng = np.random.default_rng(0)
    n = 60_000
    hits = [rng.standard_normal(n) * np.exp(-np.arange(n) / tau) for tau in (3000, 9000, 20000)]
    clips = [Clip("test", f"hit{k}", (0.5 * h).astype(np.float32)) for k, h in enumerate(hits)]
    room = np.exp(-np.arange(8000) / 1500) * rng.standard_normal(8000)
    room[0] = 4.0
    beds = [rng.standard_normal(3 * 44100).astype(np.float32)]
    monkeypatch.setattr(prepare, "_shared", {"clips": clips, "rirs": [room.astype(np.float32)],
                                             "beds": beds, "views": 3})
    items = [(0, 0), (1, 0), (2, 0)]
    together = prepare._make_items(items)
    apart = [prepare._make_items([item])[0] for item in reversed(items)][::-1]
    for a, b in zip(together, apart):
        assert a[:2] == b[:2]
        assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])
    assert together[0][3].shape == (3, 100, 96)
    # the views are damaged, and differ between items and between views
    assert not np.array_equal(together[0][3][1], together[0][2])
    assert not np.array_equal(together[0][3][1], together[0][3][2])


def test_silent_items_are_left_out(monkeypatch):
    clips = [Clip("test", "silence", np.zeros(50_000, dtype=np.float32))]
    monkeypatch.setattr(prepare, "_shared", {"clips": clips, "rirs": [], "beds": [], "views": 2})
    assert prepare._make_items([(0, 0)]) == [None]
