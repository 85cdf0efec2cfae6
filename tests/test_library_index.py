"""Library.rebuild_index against a real SQLite catalog, the real encoder's model id and
dimension, and real hnswlib: the self-recall check and the denser retry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.catalog import FileAnalysis
from app.index import DEFAULT_M, VectorIndex, ef_search_for
from app.library import SELF_RECALL_FLOOR, Library

WINDOWS_PER_FILE = 4


def store_files(library: Library, vectors: np.ndarray) -> None:
    """Catalog rows of WINDOWS_PER_FILE windows each, as a scan of the current model writes them."""
    for n, start in enumerate(range(0, len(vectors), WINDOWS_PER_FILE)):
        windows = vectors[start:start + WINDOWS_PER_FILE]
        library.catalog.store(FileAnalysis(
            path=f"/samples/hit-{n:04d}.wav", size=1000 + n, mtime_ns=n, content_hash=f"h{n}",
            status="indexed", duration=1.0, sample_rate=48000, channels=1, kind="one-shot",
            model_id=library.encoder.model_id,
            start_samples=tuple(range(0, 4096 * len(windows), 4096)), vectors=windows))


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_a_fresh_library_index_records_its_self_recall(isolated_library_dir: Path):
    with Library(isolated_library_dir) as library:
        rng = np.random.default_rng(5)
        store_files(library, unit(rng.normal(size=(1200, library.encoder.dim))))

        index = library.index  # no index file yet: built from the catalog

        assert "built from the catalog" in library.index_note
        assert library.index_self_recall is not None
        assert library.index_self_recall >= SELF_RECALL_FLOOR
        assert index.M == DEFAULT_M  # good enough at once: no denser retry
        assert len(index) == 1200


def test_a_graph_that_strands_vectors_is_rebuilt_denser(isolated_library_dir: Path):
    with Library(isolated_library_dir) as library:
        dim = library.encoder.dim
        rng = np.random.default_rng(11)
        # 2000 near-duplicates of one vector; M=2 with ef_construction=1 strands most of them.
        cluster = unit(rng.normal(size=dim) + 0.05 * rng.normal(size=(2000, dim)))
        store_files(library, cluster)
        ids, file_ids, vectors = next(library.catalog.iter_vectors(
            library.encoder.model_id, dim=dim))
        sparse = VectorIndex.build(
            dim, library.encoder.model_id, ids, file_ids, vectors, M=2, ef_construction=1,
            ef_search=ef_search_for(len(ids)), num_threads=1).self_recall()
        assert sparse < SELF_RECALL_FLOOR

        index = library.rebuild_index(save=False, M=2, ef_construction=1)

        assert (index.M, index.ef_construction) == (4, 2)  # the denser retry was kept
        assert library.index_self_recall == index.self_recall()
        assert library.index_self_recall > sparse
        assert len(index) == 2000
