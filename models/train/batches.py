"""How training batches are drawn from the pool: at random, or partly as groups of near
neighbours; and the nearest-neighbour mining they and the re-ranker's lists share.

numpy only (no torch), so the app's test suite covers it. Called by the training process.
"""

from __future__ import annotations

import numpy as np


def draw_batch(rng: np.random.Generator, train_idx: np.ndarray, knn: np.ndarray | None,
               batch: int, hard_fraction: float, group: int = 4) -> np.ndarray:
    """Batch of distinct training items; ``hard_fraction`` of it comes in groups of
    ``group`` neighbours (``knn[i]`` lists item ``i``'s), the rest at random.

    Neighbours are hard negatives for each other: the contrastive loss must tell apart
    exactly the sounds that damage makes alike.
    """
    if knn is None or hard_fraction <= 0:
        return rng.choice(train_idx, size=batch, replace=False)
    chosen: list[int] = []
    taken: set[int] = set()
    n_hard = int(batch * hard_fraction) // group * group
    while len(chosen) < n_hard:
        seed = int(rng.choice(train_idx))
        if seed in taken:
            continue
        members = [seed] + [int(j) for j in rng.permutation(knn[seed]) if int(j) not in taken][:group - 1]
        for j in members[:n_hard - len(chosen)]:
            chosen.append(j)
            taken.add(j)
    while len(chosen) < batch:
        j = int(rng.choice(train_idx))
        if j not in taken:
            chosen.append(j)
            taken.add(j)
    return np.array(chosen)


def nearest_in_other_groups(queries: np.ndarray, query_groups: np.ndarray, keys: np.ndarray,
                            key_groups: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """For each row of ``queries``, the indices (into ``keys``) of its ``k`` most similar
    ``keys`` rows by dot product (cosine for unit rows), best first, leaving out keys of the
    query's own group."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for lo in range(0, len(queries), chunk):
        sims = queries[lo:lo + chunk] @ keys.T
        sims[query_groups[lo:lo + chunk][:, None] == key_groups[None, :]] = -2.0
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[lo:lo + chunk] = np.take_along_axis(top, order, axis=1)
    return out


def nearest_other_groups(vectors: np.ndarray, groups: np.ndarray, k: int, rows: np.ndarray | None = None,
                         chunk: int = 1024) -> np.ndarray:
    """For each row of ``vectors`` (unit length) listed in ``rows`` (default: all), the indices of
    its ``k`` most similar rows by cosine, best first, leaving out rows of its own group."""
    rows = np.arange(len(vectors)) if rows is None else np.asarray(rows)
    return nearest_in_other_groups(vectors[rows], groups[rows], vectors, groups, k, chunk)


def training_neighbours(vectors: np.ndarray, clips: np.ndarray, train_idx: np.ndarray, k: int) -> np.ndarray:
    """``(n_items, k)``: for every training item its ``k`` nearest training items of other clips
    by cosine of ``vectors`` (unit rows). Held-out items are never anyone's neighbour, so a
    hard batch cannot pull them into training; their rows stay 0 and are never read."""
    knn = np.zeros((len(vectors), k), dtype=np.int64)
    knn[train_idx] = train_idx[nearest_other_groups(vectors[train_idx], clips[train_idx], k)]
    return knn
