"""Favourites and collections in a real SQLite catalog: kept by file id, so a relinked file
(moved, or its drive mounted elsewhere) keeps them; deleting the file's row drops it."""

from __future__ import annotations

import pytest

from app.catalog import Catalog, FileAnalysis
from app.catalog_collections import CollectionError


def _file(catalog: Catalog, path: str) -> int:
    file_id, _ = catalog.store(FileAnalysis(path=path, size=10, mtime_ns=1, content_hash=path,
                                            status="indexed", duration=0.5, kind="one-shot"))
    return file_id


def test_collections_and_favourites_survive_a_relink_and_reopening(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    with Catalog(path) as catalog:
        kick, snare = _file(catalog, "/s/kick.wav"), _file(catalog, "/s/snare.wav")
        drums = catalog.create_collection("  Drums   for  track ")
        assert catalog.add_to_collection(drums, [kick, snare, kick]) == 2
        assert catalog.set_favourite([snare]) == 1
        catalog.relink(snare, "/moved/snare.wav", 10, 2)
    with Catalog(path) as catalog:
        [row] = catalog.collections()
        assert (row.name, row.size) == ("Drums for track", 2)
        assert catalog.collection_file_ids(row.id) == [kick, snare]
        assert catalog.favourites() == {snare}
        assert catalog.collection_id("DRUMS FOR TRACK") == row.id
        assert catalog.collections_of([snare, 999]) == {snare: [row.id]}
        catalog.delete_files([kick])
        assert catalog.collection_file_ids(row.id) == [snare]
        assert catalog.remove_from_collection(row.id, [snare]) == 1
        assert catalog.set_favourite([snare], False) == 1
        assert catalog.favourites() == set()


def test_names_are_checked(tmp_path):
    with Catalog(tmp_path / "c.sqlite3") as catalog:
        catalog.create_collection("Kicks")
        with pytest.raises(CollectionError, match="already"):
            catalog.create_collection("kicks")
        for bad in ("", "   ", "x" * 201):
            with pytest.raises(CollectionError):
                catalog.create_collection(bad)
        with pytest.raises(CollectionError, match="no collection"):
            catalog.collection_id("Snares")
        assert catalog.collection_id("Snares", create=True) > 0
        with pytest.raises(CollectionError, match="no collection"):
            catalog.add_to_collection(12345, [1])
        # unknown file ids are ignored, not stored as dangling rows
        assert catalog.add_to_collection(catalog.collection_id("Kicks"), [777]) == 0
