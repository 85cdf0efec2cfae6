"""The SQLite catalog on a real file: schema, migrations, rows and vectors."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from app.catalog import SCHEMA_VERSION, Catalog, CatalogError, FileAnalysis


def _analysis(path, vectors=2, status="indexed", dim=4, content_hash="h1", **extra):
    rng = np.random.default_rng(len(path))
    vecs = rng.normal(size=(vectors, dim)).astype(np.float32) if vectors else None
    fields = dict(path=path, size=100, mtime_ns=5, content_hash=content_hash, status=status,
                  duration=1.5, sample_rate=44100, channels=2, kind="one-shot", model_id="m1",
                  start_samples=tuple(range(0, 1000 * vectors, 1000)), vectors=vecs)
    fields.update(extra)
    return FileAnalysis(**fields)


def test_new_catalog_is_wal_and_current_schema(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        assert catalog.schema_version == SCHEMA_VERSION
    raw = sqlite3.connect(tmp_path / "c.sqlite3")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_catalog_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "c.sqlite3"
    Catalog(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(CatalogError, match="newer"):
        Catalog(path)


def test_a_file_that_is_not_sqlite_gives_a_clear_error(tmp_path):
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CatalogError, match="cannot be opened"):
        Catalog(path)


def test_store_and_read_back_rows_and_vectors(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        generation = catalog.generation
        analysis = _analysis("/lib/a.wav", vectors=3)
        file_id, vector_ids = catalog.store(analysis)
        assert len(vector_ids) == 3
        assert catalog.generation != generation
        row = catalog.file(file_id)
        assert (row.path, row.status, row.kind, row.channels) == ("/lib/a.wav", "indexed", "one-shot", 2)
        ids, vectors = catalog.file_vectors(file_id)
        np.testing.assert_array_equal(ids, vector_ids)
        np.testing.assert_array_equal(vectors, analysis.vectors)
        assert catalog.window_starts(vector_ids) == dict(zip(vector_ids.tolist(), [0, 1000, 2000]))
        batches = list(catalog.iter_vectors("m1", dim=4))
        assert sum(len(b[0]) for b in batches) == 3
        assert list(catalog.iter_vectors("other-model", dim=4)) == []


def test_restoring_a_path_replaces_its_vectors_and_never_reuses_ids(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        file_id, first = catalog.store(_analysis("/lib/a.wav", vectors=2))
        same_id, second = catalog.store(_analysis("/lib/a.wav", vectors=1, content_hash="h2"))
        assert same_id == file_id
        assert set(first.tolist()).isdisjoint(second.tolist())
        assert catalog.vector_count() == 1
        catalog.delete_files([file_id])
        _, third = catalog.store(_analysis("/lib/b.wav", vectors=1))
        assert third[0] > second[0]  # AUTOINCREMENT: deleted ids stay retired


def test_skipped_rows_keep_their_reason(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        catalog.store(_analysis("/lib/bad.wav", vectors=0, status="skipped",
                                error_code="truncated", error="truncated: header says more"))
        (row,) = catalog.skipped()
        assert (row.error_code, row.error) == ("truncated", "truncated: header says more")
        assert catalog.stats()["skipped_by_reason"] == {"truncated": 1}


def test_files_under_matches_whole_folder_names_only(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        for path in ("/lib/drums/a.wav", "/lib/drums/sub/b.wav", "/lib/drums2/c.wav", "/lib/d.wav"):
            catalog.store(_analysis(path))
        assert sorted(catalog.files_under("/lib/drums")) == ["/lib/drums/a.wav", "/lib/drums/sub/b.wav"]
        assert sorted(catalog.files_under("/lib/drums/")) == ["/lib/drums/a.wav", "/lib/drums/sub/b.wav"]


def test_relink_keeps_row_and_vectors(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        file_id, vector_ids = catalog.store(_analysis("/lib/a.wav"))
        generation = catalog.generation
        catalog.relink(file_id, "/lib/moved/a.wav", 100, 9)
        assert catalog.file_by_path("/lib/a.wav") is None
        assert catalog.file_by_path("/lib/moved/a.wav").id == file_id
        np.testing.assert_array_equal(catalog.file_vectors(file_id)[0], vector_ids)
        assert catalog.generation == generation  # the vector set did not change


def test_copy_file_duplicates_analysis_under_new_ids(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        source_id, source_vectors = catalog.store(_analysis("/lib/a.wav"))
        copy_id, copy_vectors = catalog.copy_file(source_id, "/lib/copy.wav", 100, 7)
        assert copy_id != source_id
        assert set(copy_vectors.tolist()).isdisjoint(source_vectors.tolist())
        np.testing.assert_array_equal(catalog.file_vectors(copy_id)[1], catalog.file_vectors(source_id)[1])
        assert [r.path for r in catalog.rows_with_hash("h1")] == ["/lib/a.wav", "/lib/copy.wav"]


def test_a_failed_transaction_leaves_nothing_behind(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        with pytest.raises(RuntimeError):
            with catalog.transaction():
                catalog.store(_analysis("/lib/a.wav"))
                raise RuntimeError("disk full, say")
        assert catalog.file_by_path("/lib/a.wav") is None
        assert catalog.vector_count() == 0


def test_remove_root_forgets_its_files(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        catalog.add_root("/lib")
        catalog.add_root("/other")
        catalog.store(_analysis("/lib/a.wav"))
        catalog.store(_analysis("/other/b.wav"))
        assert catalog.remove_root("/lib") == 1
        assert catalog.roots() == ["/other"]
        assert catalog.file_by_path("/other/b.wav") is not None
        assert catalog.vector_count() == 2
