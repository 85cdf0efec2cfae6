"""The similarity map's stored positions in the catalog (schema 4's ``map_positions``).

One row per file: the layout it belongs to (``layout_id``, a name given by
:mod:`app.similarity_map` to one full layout) and its point (x, y). A file deleted from the
catalog loses its position with its row (ON DELETE CASCADE); a relinked file keeps it.

Threads: these are methods of :class:`app.catalog.Catalog`, used by the thread that opened
the catalog, like every other method of it.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable

import numpy as np


class MapPositionsMixin:
    """Map positions; mixed into Catalog, which supplies ``_db`` and ``transaction``."""

    _db: sqlite3.Connection

    def map_positions(self, layout_id: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(file_ids int64, points float64 (n, 2)) of indexed files, by file id; only those
        of ``layout_id`` when given."""
        sql = ("SELECT m.file_id, m.x, m.y FROM map_positions m JOIN files f ON f.id = m.file_id "
               "WHERE f.status = 'indexed'")
        params: tuple = ()
        if layout_id is not None:
            sql += " AND m.layout_id = ?"
            params = (layout_id,)
        rows = self._db.execute(sql + " ORDER BY m.file_id", params).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        points = np.array([(r[1], r[2]) for r in rows], dtype=np.float64).reshape(len(rows), 2)
        return ids, points

    def map_layout_ids(self) -> dict[str, int]:
        """{layout id: positions stored under it}."""
        return dict(self._db.execute(
            "SELECT layout_id, COUNT(*) FROM map_positions GROUP BY layout_id"))

    def set_map_positions(self, layout_id: str, file_ids: Iterable[int], points: np.ndarray,
                          *, replace: bool = False) -> int:
        """Store points of one layout (an existing file's point is overwritten); with
        ``replace`` every other stored position is dropped first (a full re-layout).
        Ids of files no longer in the catalog are skipped. Returns the rows written."""
        ids = [int(i) for i in file_ids]
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(ids) != len(points):
            raise ValueError(f"{len(ids)} file ids for {len(points)} points")
        if not np.isfinite(points).all():
            raise ValueError("map positions must be finite numbers")
        written = 0
        with self.transaction():
            if replace:
                self._db.execute("DELETE FROM map_positions")
            for file_id, (x, y) in zip(ids, points.tolist()):
                written += self._db.execute(
                    "INSERT INTO map_positions (file_id, layout_id, x, y) "
                    "SELECT id, ?, ?, ? FROM files WHERE id = ? "
                    "ON CONFLICT (file_id) DO UPDATE SET layout_id = excluded.layout_id, "
                    "x = excluded.x, y = excluded.y", (layout_id, x, y, file_id)).rowcount
        return written

    def clear_map_positions(self) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM map_positions")
