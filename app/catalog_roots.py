"""A library folder's identity and state in the catalog (schema 4's roots columns).

Each library folder (a row of ``roots``) may carry the id of its marker file
(``folder_id``) and its volume's id (``volume_id``, see ``app.folder_identity``), and
``offline_since`` while it cannot be found (an unplugged drive, an unmounted share). An
offline folder keeps every file row, with its vectors, tags, favourites and collections.
``relink_root`` moves a folder to a new path in one transaction, keeping every file id,
so the vector index, the tags and the collections stay valid as they are.

SQLite only: the shared catalogue (``app.pg_store``) maps shares to folders its own way.

Threads: these are methods of :class:`app.catalog.Catalog`, used by the thread that opened
the catalog, like every other method of it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RootRow:
    path: str
    folder_id: str | None
    volume_id: str | None
    offline_since: float | None    # seconds since the epoch; None: online

    @property
    def offline(self) -> bool:
        return self.offline_since is not None


def _stored(path) -> str | bytes:
    from app.catalog import db_path
    return db_path(path)


def _python(value) -> str:
    from app.catalog import py_path
    return py_path(value)


class RootsMixin:
    """Library folders' identity, offline state and relinking; mixed into Catalog, which
    supplies ``_db``, ``transaction`` and ``files_under``."""

    _db: sqlite3.Connection

    def root_rows(self) -> list[RootRow]:
        """Every library folder with its identity and state, by path."""
        return [RootRow(_python(p), f, v, o) for p, f, v, o in self._db.execute(
            "SELECT path, folder_id, volume_id, offline_since FROM roots ORDER BY path")]

    def root_row(self, path: str | os.PathLike) -> RootRow | None:
        row = self._db.execute(
            "SELECT path, folder_id, volume_id, offline_since FROM roots WHERE path = ?",
            (_stored(path),)).fetchone()
        return None if row is None else RootRow(_python(row[0]), *row[1:])

    def offline_roots(self) -> list[str]:
        """The library folders that could not be found at the last scan."""
        return [_python(r[0]) for r in self._db.execute(
            "SELECT path FROM roots WHERE offline_since IS NOT NULL ORDER BY path")]

    def roots_with_identity(self, folder_id: str | None = None,
                            volume_id: str | None = None) -> list[RootRow]:
        """Library folders whose marker id is ``folder_id`` or whose volume id is
        ``volume_id`` (None matches nothing)."""
        return [r for r in self.root_rows()
                if (folder_id is not None and r.folder_id == folder_id)
                or (volume_id is not None and r.volume_id == volume_id)]

    def set_root_identity(self, path: str | os.PathLike, folder_id: str | None,
                          volume_id: str | None) -> None:
        """Remember what the folder at ``path`` is (a None keeps what was known)."""
        with self.transaction():
            self._db.execute(
                "UPDATE roots SET folder_id = COALESCE(?, folder_id), "
                "volume_id = COALESCE(?, volume_id) WHERE path = ?",
                (folder_id, volume_id, _stored(path)))

    def set_root_offline(self, path: str | os.PathLike, offline: bool) -> bool:
        """Mark a library folder offline (since now, unless it already was) or back online;
        True when its state changed."""
        with self.transaction():
            if offline:
                sql = ("UPDATE roots SET offline_since = ? WHERE path = ? "
                       "AND offline_since IS NULL")
                return self._db.execute(sql, (time.time(), _stored(path))).rowcount > 0
            return self._db.execute(
                "UPDATE roots SET offline_since = NULL WHERE path = ? AND offline_since IS NOT NULL",
                (_stored(path),)).rowcount > 0

    def relink_root(self, old: str | os.PathLike, new: str | os.PathLike) -> int:
        """The library folder ``old`` is now at ``new``: its row and the path of every file
        under it (and of library folders inside it) move, in one transaction; file ids, and
        so vectors, tags, favourites and collections, stay. Rows already at ``new``'s paths
        must have been removed first (``Library.relink_folder`` does). Returns the files
        moved."""
        old = os.fspath(old).rstrip("/") or "/"
        new = os.fspath(new).rstrip("/") or "/"
        with self.transaction():
            moved = 0
            if isinstance(_stored(old), str) and isinstance(_stored(new), str):
                # text paths in one statement (substr counts characters, as len does)
                moved = self._db.execute(
                    "UPDATE files SET path = ? || substr(path, ?) "
                    "WHERE typeof(path) = 'text' AND path >= ? AND path < ?",
                    (new, len(old) + 1, old + "/", old + "0")).rowcount
            # names that are not UTF-8 are stored as bytes: one by one
            rows = self.files_under(old)
            self._db.executemany("UPDATE files SET path = ? WHERE id = ?",
                                 [(_stored(new + path[len(old):]), row.id)
                                  for path, row in rows.items()])
            moved += len(rows)
            self._db.execute("DELETE FROM roots WHERE path = ?", (_stored(new),))
            for root in self.root_rows():
                if root.path == old or root.path.startswith(old + "/"):
                    self._db.execute(
                        "UPDATE roots SET path = ?, offline_since = NULL WHERE path = ?",
                        (_stored(new + root.path[len(old):]), _stored(root.path)))
        return moved
