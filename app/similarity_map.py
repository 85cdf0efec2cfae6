"""The similarity map: every indexed sample as a point in 2-D, near the samples it sounds like.

Each file is one vector: the mean of its normalised block vectors (the same vectors the
index searches), normalised again. A full layout is an openTSNE embedding of those vectors
(cosine affinities, perplexity 30, FFT-accelerated gradients, PCA initialisation so the
result is the same from run to run). Positions are stored in the catalog
(``map_positions``, see :mod:`app.catalog_map`) under a layout id that names the model
whose vectors made it.

New files are placed without moving anyone: each new point goes to the similarity-weighted
mean of its ``PLACE_NEIGHBOURS`` nearest already-placed files (exact cosine neighbours,
blocked matrix products), plus a small deterministic spread so that near-twins do not hide
one another. A full re-layout happens only when asked, when there is no layout yet, when
the stored layout was made from another model's vectors, or when most files are new.

Threads: :class:`SimilarityMap` uses a catalog, so it stays on the thread that opened it;
:class:`MapTasks` opens its library on the thread that first calls it and must stay on that
thread (a window's map worker, or the CLI); ``cancel`` may come from any thread.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine.errors import SampleScoutError

PERPLEXITY = 30.0
PLACE_NEIGHBOURS = 10
REBUILD_NEW_SHARE = 0.5       # more new files than this share of all: lay out again
SPREAD = 0.01                 # of the layout's spread: the jitter of a placed point
SEED = 1234
PROGRESS_EVERY_ITERS = 50      # each report also computes the KL divergence
SINGLE_THREAD_BELOW = 5000


class MapError(SampleScoutError):
    """The map cannot be made (no indexed files, a catalog without map positions)."""


class MapCancelled(MapError):
    """The layout was stopped by ``cancel``; nothing was stored."""


@dataclass(frozen=True)
class MapProgress:
    stage: str          # "vectors", "neighbours", "layout", "placing", "storing"
    done: int
    total: int
    elapsed_s: float


@dataclass(frozen=True)
class MapReport:
    layout_id: str
    files: int           # points on the map now
    placed: int          # new points placed into the stored layout
    rebuilt: bool        # a full layout was made
    reason: str          # why it was (or was not) rebuilt
    seconds: float


@dataclass
class MapPoints:
    """What the window draws: one entry per point, arrays aligned."""

    layout_id: str
    file_ids: np.ndarray                 # int64
    points: np.ndarray                   # float32 (n, 2)
    paths: list[str]
    tags: list[str]                      # the top tag standing for the file ("" when none)
    kinds: list[str | None] = field(default_factory=list)
    durations: list[float | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.file_ids)


def layout_id_for(model_id: str) -> str:
    """A new layout's id: the model whose vectors it lays out, and when it was made."""
    return f"{model_id}@{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"


def layout_model(layout_id: str) -> str:
    return layout_id.rsplit("@", 1)[0]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def file_vectors(catalog, model_id: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(file_ids ascending, one normalised vector per file) of every file with vectors of
    ``model_id``: the mean of its normalised block vectors, normalised again. Damaged rows
    are left out (the library sets them aside on its next open)."""
    chunks_ids, chunks_vecs = [], []
    for _, ids, vectors in catalog.iter_vectors(model_id, dim=dim):
        if len(ids):
            chunks_ids.append(ids)
            chunks_vecs.append(_normalise(vectors))
    if not chunks_ids:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    ids = np.concatenate(chunks_ids)
    vectors = np.concatenate(chunks_vecs)
    unique, inverse = np.unique(ids, return_inverse=True)
    means = np.zeros((len(unique), dim), np.float64)
    np.add.at(means, inverse, vectors)
    return unique.astype(np.int64), _normalise(means)


def nearest(query: np.ndarray, reference: np.ndarray, k: int,
            block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(indices (n, k), cosine similarities (n, k)) of each normalised query row's ``k``
    nearest reference rows, exactly, best first. Any thread."""
    k = min(k, len(reference))
    out_idx = np.zeros((len(query), k), np.int64)
    out_sim = np.zeros((len(query), k), np.float32)
    for start in range(0, len(query), block):
        sims = query[start:start + block] @ reference.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        part_sims = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_sims, axis=1)
        out_idx[start:start + block] = np.take_along_axis(part, order, axis=1)
        out_sim[start:start + block] = np.take_along_axis(part_sims, order, axis=1)
    return out_idx, out_sim


def place(new_vectors: np.ndarray, placed_vectors: np.ndarray, placed_points: np.ndarray,
          k: int = PLACE_NEIGHBOURS, seed: int = SEED) -> np.ndarray:
    """Points for new files in an existing layout, which does not move: the weighted mean of
    their nearest placed neighbours' points (weights grow steeply with similarity), plus a
    small deterministic spread. Any thread."""
    if len(new_vectors) == 0:
        return np.zeros((0, 2), np.float64)
    if len(placed_vectors) == 0:
        raise MapError("there is no layout to place new files in")
    idx, sims = nearest(new_vectors, placed_vectors, k)
    weights = np.exp((sims - sims[:, :1]) * 20.0).astype(np.float64)
    weights /= weights.sum(axis=1, keepdims=True)
    neighbours = placed_points[idx]                                  # (n, k, 2)
    points = np.einsum("nk,nkd->nd", weights, neighbours)
    rng = np.random.default_rng(seed + len(placed_points))
    return points + rng.normal(scale=SPREAD * float(np.std(placed_points)), size=points.shape)


def layout(vectors: np.ndarray, *, n_jobs: int = 2, seed: int = SEED,
           progress: Callable[[str, int, int], None] | None = None,
           cancelled: Callable[[], bool] | None = None) -> np.ndarray:
    """A full openTSNE layout of normalised vectors: (n, 2) float64. ``progress(stage,
    done, total)`` and ``cancelled()`` are called on this thread; MapCancelled when
    ``cancelled()`` turns true. Tiny sets get a PCA layout."""
    n = len(vectors)
    if n < 5:
        return _pca(vectors, n)
    import openTSNE
    if n < SINGLE_THREAD_BELOW:
        n_jobs = 1     # a thread pool costs more than it saves here, and starves under load
    perplexity = min(PERPLEXITY, max(2.0, (n - 1) / 3.0))
    if progress:
        progress("neighbours", 0, 1)
    affinities = openTSNE.affinity.PerplexityBasedNN(
        vectors, perplexity=perplexity, metric="cosine", n_jobs=n_jobs, random_state=seed,
        method="annoy" if n > 1000 else "exact", verbose=False)
    if cancelled and cancelled():
        raise MapCancelled("the map's layout was cancelled")
    init = openTSNE.initialization.pca(vectors, random_state=seed)
    embedding = openTSNE.TSNEEmbedding(init, affinities, n_jobs=n_jobs, random_state=seed,
                                       negative_gradient_method="fft" if n > 10000 else "bh",
                                       verbose=False)
    early, late = 250, 500
    total = early + late
    state = {"base": 0}

    def callback(iteration, error, current):
        if progress:
            progress("layout", min(total, state["base"] + iteration), total)
        return bool(cancelled and cancelled())

    def run(**kwargs):
        nonlocal embedding
        embedding = embedding.optimize(callbacks=callback,
                                       callbacks_every_iters=PROGRESS_EVERY_ITERS, **kwargs)

    try:
        run(n_iter=early, exaggeration=12, momentum=0.5)
        state["base"] = early
        if cancelled and cancelled():
            raise MapCancelled("the map's layout was cancelled")
        run(n_iter=late, momentum=0.8)
    except openTSNE.callbacks.OptimizationInterrupt as stop:
        raise MapCancelled("the map's layout was cancelled") from stop
    if cancelled and cancelled():
        raise MapCancelled("the map's layout was cancelled")
    return np.asarray(embedding, dtype=np.float64)


def _pca(vectors: np.ndarray, n: int) -> np.ndarray:
    if n == 0:
        return np.zeros((0, 2), np.float64)
    centred = vectors - vectors.mean(0)
    try:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        points = centred @ vt[:2].T
    except np.linalg.LinAlgError:
        points = np.zeros((n, 2))
    if points.shape[1] < 2:
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    return points.astype(np.float64)


class SimilarityMap:
    """The map of one catalog for one model (module docstring). Catalog's thread."""

    def __init__(self, catalog, model_id: str, dim: int, *, n_jobs: int | None = None):
        if not hasattr(catalog, "map_positions"):
            raise MapError("the similarity map needs the local catalog (this one keeps no "
                           "map positions)")
        self.catalog = catalog
        self.model_id = model_id
        self.dim = dim
        self.n_jobs = n_jobs or min(2, os.cpu_count() or 1)
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop a running layout at its next check. Any thread."""
        self._cancel.set()

    def current_layout(self) -> str | None:
        """The layout holding most stored positions, or None."""
        layouts = self.catalog.map_layout_ids()
        if not layouts:
            return None
        return max(layouts.items(), key=lambda item: (item[1], item[0]))[0]

    def update(self, *, rebuild: bool = False,
               progress: Callable[[MapProgress], None] | None = None) -> MapReport:
        """Bring the stored map up to date with the catalog: place new files, or lay
        everything out again (module docstring says when). MapCancelled after ``cancel``."""
        self._cancel.clear()
        started = time.perf_counter()

        def report(stage: str, done: int, total: int) -> None:
            if progress is not None:
                progress(MapProgress(stage, done, total, time.perf_counter() - started))

        report("vectors", 0, 1)
        file_ids, vectors = file_vectors(self.catalog, self.model_id, self.dim)
        if len(file_ids) == 0:
            raise MapError("the library has no indexed samples to map yet: scan a folder first")
        layout_now = self.current_layout()
        stored_ids, stored_points = (self.catalog.map_positions(layout_now) if layout_now
                                     else (np.zeros(0, np.int64), np.zeros((0, 2))))
        keep = np.isin(stored_ids, file_ids)
        stored_ids, stored_points = stored_ids[keep], stored_points[keep]
        is_new = ~np.isin(file_ids, stored_ids)
        new = int(is_new.sum())
        reason = ""
        if rebuild:
            reason = "asked"
        elif layout_now is None or len(stored_ids) == 0:
            reason = "no layout yet"
        elif layout_model(layout_now) != self.model_id:
            reason = "the stored layout is of another model"
        elif new > REBUILD_NEW_SHARE * len(file_ids):
            reason = f"{new} of {len(file_ids)} files are new"
        if reason:
            points = layout(vectors, n_jobs=self.n_jobs, progress=report,
                            cancelled=self._cancel.is_set)
            layout_new = layout_id_for(self.model_id)
            report("storing", 0, 1)
            self.catalog.set_map_positions(layout_new, file_ids, points, replace=True)
            return MapReport(layout_new, len(file_ids), 0, True, reason,
                             time.perf_counter() - started)
        if new:
            report("placing", 0, new)
            where = {int(f): i for i, f in enumerate(file_ids)}
            placed_rows = np.fromiter((where[int(f)] for f in stored_ids), np.int64,
                                      count=len(stored_ids))
            points = place(vectors[is_new], vectors[placed_rows], stored_points)
            report("storing", 0, 1)
            self.catalog.set_map_positions(layout_now, file_ids[is_new], points)
        return MapReport(layout_now, len(stored_ids) + new, new, False,
                         f"{new} new files placed" if new else "up to date",
                         time.perf_counter() - started)

    def points(self) -> MapPoints:
        """The stored map of the current layout, with what the window shows of each file."""
        layout_now = self.current_layout()
        if layout_now is None:
            return MapPoints("", np.zeros(0, np.int64), np.zeros((0, 2), np.float32), [], [])
        ids, points = self.catalog.map_positions(layout_now)
        rows = self.catalog.files_by_id(ids.tolist())
        keep = np.fromiter((int(i) in rows for i in ids), bool, count=len(ids))
        ids, points = ids[keep], points[keep]
        tags = self.catalog.tags(ids.tolist())
        ordered = [rows[int(i)] for i in ids]
        return MapPoints(
            layout_now, ids, points.astype(np.float32),
            [r.path for r in ordered],
            [tags[int(i)][0].tag if tags.get(int(i)) else "" for i in ids],
            [r.kind for r in ordered], [r.duration for r in ordered])


class MapTasks:
    """Map work for a window's map worker or the CLI: opens the library's catalog on the
    thread that first calls it and stays there; ``cancel`` from any thread."""

    def __init__(self, library_dir: str | os.PathLike | None = None, *, n_jobs: int | None = None):
        self.library_dir = library_dir if library_dir is None else Path(library_dir)
        self.n_jobs = n_jobs
        self._library = None
        self._map: SimilarityMap | None = None

    def _the_map(self) -> SimilarityMap:
        if self._map is None:
            from app.library import Library
            self._library = Library(self.library_dir)
            encoder = self._library.encoder
            self._map = SimilarityMap(self._library.catalog, encoder.model_id, encoder.dim,
                                      n_jobs=self.n_jobs)
        return self._map

    def update(self, rebuild: bool = False,
               progress: Callable[[MapProgress], None] | None = None) -> MapReport:
        return self._the_map().update(rebuild=rebuild, progress=progress)

    def points(self) -> MapPoints:
        return self._the_map().points()

    def cancel(self) -> None:
        """Any thread."""
        if self._map is not None:
            self._map.cancel()

    def close(self) -> None:
        if self._library is not None:
            self._library.close()
            self._library = None
            self._map = None
