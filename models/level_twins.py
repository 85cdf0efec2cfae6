"""Level twins: recordings that are the same audio up to a gain factor.

Sample libraries are full of them (one take scaled to several velocity layers, a file
copied into two folders). A level-invariant encoder cannot tell them apart, so the
retrieval benchmark counts any twin as the right file and training never treats two
twins as different sounds. Both call :func:`level_twin_groups`, so they agree on what a
twin is.

Twins have the same length; within one length, the whole clips are correlated. The Gram
matrix is summed over slices of the clips so memory stays bounded for long files.
numpy only; any thread.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import numpy as np

TWIN_CORRELATION = 0.9999
SLICE_SAMPLES = 1 << 16


def whole_clip_correlation(audio: np.ndarray) -> np.ndarray:
    """Normalised correlation at lag 0 between the rows of ``audio`` (clips of one length)."""
    audio = np.asarray(audio)
    m, n = audio.shape
    gram = np.zeros((m, m))
    for start in range(0, n, SLICE_SAMPLES):
        part = audio[:, start:start + SLICE_SAMPLES].astype(np.float64)
        gram += part @ part.T
    norm = np.sqrt(np.maximum(np.diag(gram), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = gram / np.outer(norm, norm)
    corr[~np.isfinite(corr)] = 0.0     # silent clips are nobody's twin
    return corr


def level_twin_groups(lengths: Sequence[int], load: Callable[[int], np.ndarray],
                      threshold: float = TWIN_CORRELATION) -> list[list[int]]:
    """Groups (ascending indices, two or more members) of clips that are level twins.

    ``lengths[i]`` is clip ``i``'s length in samples (0 leaves it out); ``load(i)`` gives
    its mono audio. Only clips that share a length with another are loaded. Twinship is
    made transitive (union-find), so a group is closed even if a chain of near-threshold
    pairs links it.
    """
    by_length = defaultdict(list)
    for i, n in enumerate(lengths):
        if n:
            by_length[int(n)].append(i)
    parent = list(range(len(lengths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for members in by_length.values():
        if len(members) < 2:
            continue
        corr = whole_clip_correlation(np.stack([np.asarray(load(i), dtype=np.float32) for i in members]))
        for a, b in zip(*np.nonzero(np.triu(corr >= threshold, k=1))):
            ra, rb = root(members[a]), root(members[b])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups = defaultdict(list)
    for i in range(len(lengths)):
        groups[root(i)].append(i)
    return [g for g in groups.values() if len(g) > 1]


def group_ids(n: int, groups: list[list[int]]) -> np.ndarray:
    """For every one of ``n`` clips, the lowest index of its twin group (its own index if none)."""
    ids = np.arange(n)
    for g in groups:
        ids[g] = min(g)
    return ids
