"""Favourites and collections in the catalog (schema 4).

Both are kept by file id, so a file that is relinked (moved, renamed, a drive mounted at a
new path) or analysed again by a new model keeps its place; only deleting the file's row
(the user removed the file or its folder) drops it from them.

Threads: these are methods of :class:`app.catalog.Catalog`, used by the thread that opened
the catalog, like every other method of it.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Iterable

from engine.errors import SampleScoutError

MAX_COLLECTION_NAME = 200


class CollectionError(SampleScoutError):
    """A collection cannot be made or found (empty or taken name, unknown collection)."""


@dataclass(frozen=True)
class CollectionRow:
    id: int
    name: str
    size: int          # files in it
    created_at: float


def _chunks(ids: list[int], size: int = 500):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def clean_collection_name(name: str) -> str:
    """The name as stored: trimmed, one line, at most 200 characters; a CollectionError
    when nothing is left. Any thread."""
    cleaned = " ".join(str(name).split())
    if not cleaned:
        raise CollectionError("a collection needs a name")
    if len(cleaned) > MAX_COLLECTION_NAME:
        raise CollectionError(f"a collection's name is at most {MAX_COLLECTION_NAME} characters")
    return cleaned


class CollectionsMixin:
    """Favourites and collections; mixed into Catalog, which supplies ``_db`` and
    ``transaction``."""

    _db: sqlite3.Connection

    # -- favourites --------------------------------------------------------

    def set_favourite(self, file_ids: Iterable[int], favourite: bool = True) -> int:
        """Mark (or unmark) files as favourites; returns how many rows changed."""
        ids = [int(i) for i in file_ids]
        changed = 0
        with self.transaction():
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                if favourite:
                    now = time.time()
                    changed += self._db.execute(
                        f"INSERT OR IGNORE INTO favourites (file_id, added_at) "
                        f"SELECT id, ? FROM files WHERE id IN ({marks})", (now, *chunk)).rowcount
                else:
                    changed += self._db.execute(
                        f"DELETE FROM favourites WHERE file_id IN ({marks})", chunk).rowcount
        return changed

    def favourites(self) -> set[int]:
        """Every favourite's file id."""
        return {row[0] for row in self._db.execute("SELECT file_id FROM favourites")}

    # -- collections -------------------------------------------------------

    def create_collection(self, name: str) -> int:
        """A new, empty collection; CollectionError when the name is taken (any case)."""
        name = clean_collection_name(name)
        try:
            with self.transaction():
                return self._db.execute(
                    "INSERT INTO collections (name, created_at) VALUES (?, ?)",
                    (name, time.time())).lastrowid
        except sqlite3.IntegrityError:
            raise CollectionError(f"there is already a collection named {name!r}") from None

    def collection_id(self, name: str, *, create: bool = False) -> int:
        """The id of the collection called ``name`` (any case); made when ``create``."""
        name = clean_collection_name(name)
        row = self._db.execute("SELECT id FROM collections WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return row[0]
        if create:
            return self.create_collection(name)
        raise CollectionError(f"no collection named {name!r}")

    def rename_collection(self, collection_id: int, name: str) -> None:
        name = clean_collection_name(name)
        try:
            with self.transaction():
                if not self._db.execute("UPDATE collections SET name = ? WHERE id = ?",
                                        (name, int(collection_id))).rowcount:
                    raise CollectionError(f"no collection with id {collection_id}")
        except sqlite3.IntegrityError:
            raise CollectionError(f"there is already a collection named {name!r}") from None

    def delete_collection(self, collection_id: int) -> None:
        """Forget a collection (its files stay in the library)."""
        with self.transaction():
            self._db.execute("DELETE FROM collections WHERE id = ?", (int(collection_id),))

    def collections(self) -> list[CollectionRow]:
        """Every collection with its size, by name."""
        return [CollectionRow(*row) for row in self._db.execute(
            "SELECT c.id, c.name, COUNT(i.file_id), c.created_at FROM collections c "
            "LEFT JOIN collection_items i ON i.collection_id = c.id "
            "GROUP BY c.id ORDER BY c.name COLLATE NOCASE")]

    def add_to_collection(self, collection_id: int, file_ids: Iterable[int]) -> int:
        """Put files in a collection (those already there stay); returns how many were added."""
        ids = [int(i) for i in file_ids]
        added = 0
        with self.transaction():
            if self._db.execute("SELECT 1 FROM collections WHERE id = ?",
                                (int(collection_id),)).fetchone() is None:
                raise CollectionError(f"no collection with id {collection_id}")
            now = time.time()
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                added += self._db.execute(
                    f"INSERT OR IGNORE INTO collection_items (collection_id, file_id, added_at) "
                    f"SELECT ?, id, ? FROM files WHERE id IN ({marks})",
                    (int(collection_id), now, *chunk)).rowcount
        return added

    def remove_from_collection(self, collection_id: int, file_ids: Iterable[int]) -> int:
        ids = [int(i) for i in file_ids]
        removed = 0
        with self.transaction():
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                removed += self._db.execute(
                    f"DELETE FROM collection_items WHERE collection_id = ? AND file_id IN ({marks})",
                    (int(collection_id), *chunk)).rowcount
        return removed

    def collection_file_ids(self, collection_id: int) -> list[int]:
        """The files of a collection, in the order they were added."""
        return [row[0] for row in self._db.execute(
            "SELECT file_id FROM collection_items WHERE collection_id = ? "
            "ORDER BY added_at, file_id", (int(collection_id),))]

    def collections_of(self, file_ids: Iterable[int]) -> dict[int, list[int]]:
        """For each of these files, the ids of the collections that hold it."""
        found: dict[int, list[int]] = {}
        for chunk in _chunks([int(i) for i in file_ids]):
            marks = ",".join("?" * len(chunk))
            for file_id, collection_id in self._db.execute(
                    f"SELECT file_id, collection_id FROM collection_items "
                    f"WHERE file_id IN ({marks}) ORDER BY collection_id", chunk):
                found.setdefault(file_id, []).append(collection_id)
        return found
