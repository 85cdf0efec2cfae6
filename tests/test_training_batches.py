"""Training-data plumbing that needs no torch: level-twin groups and hard-negative batches."""

import numpy as np

from models.train.batches import draw_batch, nearest_other_groups, training_neighbours
from models.train.sources import Clip, level_twin_groups


def _clip(name, audio):
    return Clip("test", name, np.asarray(audio, dtype=np.float32))


def test_level_twins_are_grouped_and_near_twins_are_not():
    rng = np.random.default_rng(0)
    hit = rng.standard_normal(20000) * np.exp(-np.arange(20000) / 4000)
    other = rng.standard_normal(20000)
    near = hit + 0.02 * rng.standard_normal(20000)        # -34 dB apart: a different take, not a twin
    clips = [_clip("hit", hit), _clip("other", other), _clip("hit quiet", 0.1 * hit),
             _clip("hit short", hit[:15000]), _clip("near", near), _clip("hit loud", 1.9 * hit),
             _clip("silence a", np.zeros(20000)), _clip("silence b", np.zeros(20000))]
    group = level_twin_groups(clips)
    assert group.tolist() == [0, 1, 0, 3, 4, 0, 6, 7]


def test_nearest_other_groups_matches_brute_force_and_skips_own_group():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((300, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    groups = np.arange(300) // 3                               # three items per clip
    got = nearest_other_groups(vectors, groups, k=5, chunk=64)
    sims = vectors @ vectors.T
    for i in range(300):
        allowed = np.flatnonzero(groups != groups[i])
        expected = allowed[np.argsort(-sims[i, allowed])[:5]]
        assert got[i].tolist() == expected.tolist()


def test_training_neighbours_never_name_a_held_out_item():
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((200, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    clips = np.arange(200)
    held_out = rng.random(200) < 0.2
    train_idx = np.flatnonzero(~held_out)
    knn = training_neighbours(vectors, clips, train_idx, k=6)
    assert not held_out[knn[train_idx]].any()
    # the nearest training item of another clip comes first
    i = int(train_idx[0])
    others = train_idx[train_idx != i]
    assert knn[i, 0] == others[np.argmax(vectors[others] @ vectors[i])]


def test_hard_batches_are_distinct_and_come_in_neighbour_groups():
    rng = np.random.default_rng(3)
    n, k = 500, 8
    train_idx = np.arange(n)
    knn = np.stack([(i + 1 + np.arange(k)) % n for i in range(n)])   # neighbours: the next k items
    batch = draw_batch(np.random.default_rng(4), train_idx, knn, batch=64, hard_fraction=0.5)
    assert len(batch) == 64 and len(set(batch.tolist())) == 64
    hard = batch[:32].reshape(8, 4)
    for group in hard:
        assert all(int(j) in knn[group[0]] for j in group[1:])
    again = draw_batch(np.random.default_rng(4), train_idx, knn, batch=64, hard_fraction=0.5)
    assert again.tolist() == batch.tolist()


def test_random_batches_without_neighbours():
    batch = draw_batch(np.random.default_rng(5), np.arange(10, 110), None, batch=32, hard_fraction=0.5)
    assert len(set(batch.tolist())) == 32 and batch.min() >= 10 and batch.max() < 110
