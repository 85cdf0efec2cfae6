"""The library's writes keep the catalog and the index in step: store, store_copy, relink,
remove and remove_folder on a real SQLite catalog and a real hnswlib index, checked against
each other (every catalog vector in the index and no other) and across a reopen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.catalog import FileAnalysis
from app.library import Library


def analysis(library: Library, path: str, seed: int, windows: int = 3) -> FileAnalysis:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(windows, library.encoder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return FileAnalysis(path=path, size=1000 + seed, mtime_ns=seed, content_hash=f"h{seed}",
                        status="indexed", duration=1.0, sample_rate=48000, channels=1,
                        kind="one-shot", model_id=library.encoder.model_id,
                        start_samples=tuple(range(0, 4096 * windows, 4096)), vectors=vectors)


def in_step(library: Library) -> bool:
    """The index holds exactly the catalog's vectors, each under its own file."""
    catalog_ids = set(library.catalog.vector_ids(library.encoder.model_id).tolist())
    index_files = library.index.vector_files()
    if set(index_files) != catalog_ids:
        return False
    return all(library.catalog.file(f) is not None for f in index_files.values())


def test_each_write_keeps_catalog_and_index_in_step(isolated_library_dir: Path):
    with Library(isolated_library_dir) as library:
        library.index                                     # an empty index, built now
        kept = {library.store(analysis(library, f"/lib/keep/{n}.wav", 100 + n)) for n in range(20)}
        library.store(analysis(library, "/lib/a/kick.wav", 1))
        b = library.store(analysis(library, "/lib/b/snare.wav", 2))
        assert in_step(library) and len(library.index) == 66
        # the same path analysed again: the old vectors leave the index
        a2 = library.store(analysis(library, "/lib/a/kick.wav", 3, windows=2))
        assert in_step(library) and len(library.index) == 65 and library.index.file_ids() == kept | {a2, b}
        # a copy shares the analysis and is searchable on its own
        copy = library.store_copy(library.catalog.file(b), "/lib/a/snare copy.wav", 2002, 7)
        assert in_step(library) and library.index.file_ids() == kept | {a2, b, copy}
        # a move onto a path that held other content: that content is gone from both
        library.relink(copy, "/lib/a/kick.wav", 2002, 8)
        assert in_step(library) and library.index.file_ids() == kept | {b, copy}
        assert library.catalog.file_by_path("/lib/a/kick.wav").id == copy
        assert library.remove([b]) == 1
        assert in_step(library) and library.index.file_ids() == kept | {copy}
        library.catalog.add_root("/lib/a")
        assert library.remove_folder("/lib/a") == 1
        assert in_step(library) and library.index.file_ids() == kept
        assert library.catalog.roots() == []
    with Library(isolated_library_dir) as reopened:       # the saved index matches the catalog
        assert reopened.index.file_ids() == kept and reopened.index_note == "loaded"


def test_a_searcher_reads_the_catalog_and_cannot_write_it(isolated_library_dir: Path):
    import sqlite3

    import pytest
    with Library(isolated_library_dir) as library:
        kick = library.store(analysis(library, "/lib/a/kick.wav", 1))
        searcher = library.searcher()
        vectors = library.catalog.file_vectors(kick)[1]
    assert searcher.search(vectors, 1)[0].file.id == kick         # reads through its catalog
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        searcher.catalog.add_root("/lib/b")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        searcher.catalog.delete_files([kick])
