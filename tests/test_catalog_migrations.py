"""The schema migrates forward: a catalog of every released schema version, made here from
``app.catalog.MIGRATIONS`` on a fresh SQLite file with a few rows, opens with the current
code and keeps its files, vectors and generation stamp (so its index stays valid)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from app.catalog import MIGRATIONS, SCHEMA_VERSION, Catalog
from app.library import Library
from app.paths import CATALOG_FILENAME

RELEASED = sorted(MIGRATIONS)
CATALOG_ID = "0123456789abcdef0123456789abcdef"


def write_old_catalog(path: Path, version: int, model_id: str, dim: int) -> np.ndarray:
    """A catalog as the release with schema ``version`` left it: its migrations, the meta
    rows that release wrote, one indexed file with two vectors, one skipped file."""
    db = sqlite3.connect(path)
    for step in range(1, version + 1):
        for statement in MIGRATIONS[step]:
            db.execute(statement)
    db.execute("INSERT INTO meta (key, value) VALUES ('catalog_id', ?), ('generation', '7')",
               (CATALOG_ID,))
    db.execute("INSERT INTO roots (path, added_at) VALUES ('/samples', 1.0)")
    db.execute(
        "INSERT INTO files (id, path, size, mtime_ns, content_hash, duration, sample_rate, "
        "channels, kind, status, error_code, error, model_id, scanned_at) VALUES "
        "(1, '/samples/kick.wav', 1234, 99, 'abc', 0.5, 44100, 2, 'one-shot', 'indexed', "
        "NULL, NULL, ?, 1.0), "
        "(2, '/samples/broken.wav', 10, 98, 'def', NULL, NULL, NULL, NULL, 'skipped', "
        "'truncated', 'truncated: 3 of 90 frames', NULL, 1.0)", (model_id,))
    vectors = np.random.default_rng(version).normal(size=(2, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for start, vector in zip((0, 50688), vectors):
        db.execute("INSERT INTO vectors (file_id, model_id, start_sample, vector) VALUES "
                   "(1, ?, ?, ?)", (model_id, start, vector.tobytes()))
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()
    return vectors


@pytest.mark.parametrize("version", RELEASED)
def test_a_catalog_of_each_released_version_opens_with_its_data(tmp_path, version):
    path = tmp_path / "old.sqlite3"
    vectors = write_old_catalog(path, version, "m1", 4)

    with Catalog(path) as catalog:
        assert catalog.schema_version == SCHEMA_VERSION
        assert catalog.generation == f"{CATALOG_ID}:7"     # the saved index stays valid
        assert catalog.roots() == ["/samples"]
        kick = catalog.file_by_path("/samples/kick.wav")
        assert (kick.size, kick.mtime_ns, kick.content_hash, kick.kind, kick.status,
                kick.channels, kick.model_id) == (1234, 99, "abc", "one-shot", "indexed", 2, "m1")
        ids, stored = catalog.file_vectors(kick.id)
        np.testing.assert_array_equal(stored, vectors)
        assert sorted(catalog.window_starts(ids).values()) == [0, 50688]
        (broken,) = catalog.skipped()
        assert (broken.path, broken.error_code) == ("/samples/broken.wav", "truncated")

    with Catalog(path) as catalog:   # opening again migrates nothing and loses nothing
        assert catalog.schema_version == SCHEMA_VERSION
        assert catalog.vector_count("m1") == 2


@pytest.mark.parametrize("version", RELEASED)
def test_a_library_on_an_old_catalog_indexes_its_vectors(tmp_path, version):
    directory = tmp_path / "library"
    directory.mkdir()
    with Library(directory) as library:   # only for the encoder's model id and dimension
        model_id, dim = library.encoder.model_id, library.encoder.dim
    (directory / CATALOG_FILENAME).unlink()
    for leftover in directory.glob(CATALOG_FILENAME + "-*"):
        leftover.unlink()
    vectors = write_old_catalog(directory / CATALOG_FILENAME, version, model_id, dim)

    with Library(directory) as library:
        results = library.search_vectors(vectors[1:], k=1)
        assert [r.file.path for r in results] == ["/samples/kick.wav"]
        assert results[0].score == pytest.approx(1.0, abs=1e-4)
