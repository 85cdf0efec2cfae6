"""Library.rebuild_index against a real SQLite catalog, the real encoder's model id and
dimension, and real hnswlib: the self-recall check, the denser retry, and the README's
"after 20 % deletions, it is rebuilt" (through a real scan and through a reopened library)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.catalog import FileAnalysis
from app.index import DEFAULT_M, VectorIndex, ef_search_for
from app.library import SELF_RECALL_FLOOR, Library
from app.scanner import Scanner
from tests.test_scanner import write_hits

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


def test_a_rescan_after_deleting_30_percent_saves_a_compacted_index(tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    paths = write_hits(root, 10, seconds=0.4, seed=21)
    with Library(isolated_library_dir) as library:
        assert Scanner(library, workers=1).scan([root]).indexed == 10
    for path in paths[:3]:
        path.unlink()

    with Library(isolated_library_dir) as library:
        report = Scanner(library, workers=1).scan([root])
        assert report.removed == 3

    with Library(isolated_library_dir) as library:
        index = library.index
        assert library.index_note == "loaded"
        # 3 of 10 files gone is over the 20 % bound: the saved graph holds no tombstones.
        assert index.deleted_fraction == 0.0
        assert len(index) == library.catalog.vector_count(library.encoder.model_id)
        assert set(index.vector_files().values()) == {
            row.id for row in library.catalog.files_under(root).values()}


def _library_with_saved_index(directory: Path, files: int = 50) -> list[int]:
    """A library of ``files`` stored files with its index saved; returns the file ids."""
    with Library(directory) as library:
        store_files(library, unit(np.random.default_rng(9).normal(
            size=(files * WINDOWS_PER_FILE, library.encoder.dim))))
        library.save_index()
        return sorted(row.id for row in library.catalog.files_under("/samples").values())


def test_an_index_saved_before_many_deletions_is_rebuilt_when_opened(isolated_library_dir: Path):
    file_ids = _library_with_saved_index(isolated_library_dir)
    with Library(isolated_library_dir) as library:   # files deleted behind the index's back
        library.catalog.delete_files(file_ids[:15])   # 30 %

    with Library(isolated_library_dir) as library:
        index = library.index
        assert "repaired" in library.index_note
        assert index.deleted_fraction == 0.0
        assert len(index) == 35 * WINDOWS_PER_FILE
    with Library(isolated_library_dir) as library:   # and the compacted graph was saved
        assert library.index.deleted_fraction == 0.0
        assert library.index_note == "loaded"


def test_a_few_deletions_are_repaired_in_place_not_rebuilt(isolated_library_dir: Path):
    file_ids = _library_with_saved_index(isolated_library_dir)
    with Library(isolated_library_dir) as library:
        library.catalog.delete_files(file_ids[:5])    # 10 %: under the bound

    with Library(isolated_library_dir) as library:
        index = library.index
        assert "repaired" in library.index_note
        assert index.deleted_fraction == 5 / 50       # tombstones kept: no rebuild
        assert len(index) == 45 * WINDOWS_PER_FILE


def test_the_catalog_summary_started_ahead_is_the_one_computed_in_place(isolated_library_dir: Path):
    """The summary the index's open starts beside its load (its own read-only connection,
    another thread) sees what the catalog holds, additions and deletions included."""
    rng = np.random.default_rng(8)
    with Library(isolated_library_dir) as library:
        model_id = library.encoder.model_id
        store_files(library, unit(rng.normal(size=(20 * WINDOWS_PER_FILE, library.encoder.dim))))
        ahead = library.catalog.vector_id_summary_ahead(model_id)
        assert ahead() == library.catalog.vector_id_summary(model_id)
        assert ahead()[0] == 20 * WINDOWS_PER_FILE
        file_ids = sorted(library.catalog.files_by_id(library.index.file_ids()))
        library.catalog.delete_files(file_ids[:3])
        after = library.catalog.vector_id_summary_ahead(model_id)()
        assert after == library.catalog.vector_id_summary(model_id)
        assert after[0] == 17 * WINDOWS_PER_FILE
