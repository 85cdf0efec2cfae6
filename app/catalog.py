"""The library catalog: one SQLite file (WAL mode) in the library dir.

It is the source of truth. Every analysed file has a row (indexed or skipped
with a reason), and every embedding vector is stored here too, so the HNSW index
beside it is a cache that can always be rebuilt or repaired from the catalog.

Threads: a ``Catalog`` wraps one sqlite3 connection and must be used by the
thread that opened it. Open one per thread (WAL lets readers and one writer
work at the same time).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from engine.errors import SampleScoutError

SCHEMA_VERSION = 1

# Each entry upgrades the schema from version N-1 to N. Never edit a shipped
# entry: append a new one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE roots (
               id INTEGER PRIMARY KEY,
               path TEXT NOT NULL UNIQUE,
               added_at REAL NOT NULL)""",
        """CREATE TABLE files (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               path TEXT NOT NULL UNIQUE,
               size INTEGER NOT NULL,
               mtime_ns INTEGER NOT NULL,
               content_hash TEXT,
               duration REAL,
               sample_rate INTEGER,
               channels INTEGER,
               kind TEXT CHECK (kind IN ('one-shot', 'loop')),
               status TEXT NOT NULL CHECK (status IN ('indexed', 'skipped')),
               error_code TEXT,
               error TEXT,
               model_id TEXT,
               scanned_at REAL NOT NULL)""",
        "CREATE INDEX files_hash ON files (content_hash)",
        "CREATE INDEX files_status ON files (status)",
        # AUTOINCREMENT: a vector id is never reused, so an index holding an
        # old id can be repaired by set difference against this table.
        """CREATE TABLE vectors (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
               model_id TEXT NOT NULL,
               start_sample INTEGER NOT NULL,
               vector BLOB NOT NULL)""",
        "CREATE INDEX vectors_file ON vectors (file_id)",
        "CREATE INDEX vectors_model ON vectors (model_id)",
    ),
}


class CatalogError(SampleScoutError):
    """The catalog file cannot be used (newer schema, corrupt file)."""


@dataclass(frozen=True)
class FileRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str | None
    duration: float | None
    sample_rate: int | None
    channels: int | None
    kind: str | None
    status: str
    error_code: str | None
    error: str | None
    model_id: str | None

    @property
    def name(self) -> str:
        return Path(self.path).name


_FILE_COLUMNS = (
    "id, path, size, mtime_ns, content_hash, duration, sample_rate, channels, "
    "kind, status, error_code, error, model_id"
)


@dataclass(frozen=True)
class FileAnalysis:
    """What the scanner learnt about one file, ready to be stored."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    status: str  # 'indexed' or 'skipped'
    duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    kind: str | None = None
    error_code: str | None = None
    error: str | None = None
    model_id: str | None = None
    start_samples: tuple[int, ...] = ()
    vectors: np.ndarray | None = None  # (n, dim) float32


class Catalog:
    """One connection to the catalog file. See the module docstring on threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"catalog {self.path} cannot be opened: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema ------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise CatalogError(
                f"catalog {self.path} has schema version {current}, newer than this "
                f"version of Sample Scout understands ({SCHEMA_VERSION}); update the app"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in MIGRATIONS[version]:
                    self._db.execute(statement)
                if version == 1:
                    self._set_meta("catalog_id", uuid.uuid4().hex)
                    self._set_meta("generation", "0")
                self._db.execute(f"PRAGMA user_version = {version}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction; nested use joins the outer one."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @property
    def generation(self) -> str:
        """Stamp of the vector set; changes whenever vectors are added or removed."""
        return f"{self._meta('catalog_id')}:{self._meta('generation')}"

    def _bump_generation(self) -> None:
        self._db.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
            "WHERE key = 'generation'"
        )

    # -- roots -------------------------------------------------------------

    def add_root(self, path: str | Path) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO roots (path, added_at) VALUES (?, ?)",
                (str(path), time.time()),
            )

    def remove_root(self, path: str | Path) -> int:
        """Forget a library folder and every file under it; returns files removed."""
        path = str(path)
        with self.transaction():
            ids = [row.id for row in self.files_under(path).values()]
            self.delete_files(ids)
            self._db.execute("DELETE FROM roots WHERE path = ?", (path,))
        return len(ids)

    def roots(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT path FROM roots ORDER BY path")]

    # -- reading files -----------------------------------------------------

    def _rows(self, sql: str, params: Iterable = ()) -> list[FileRow]:
        return [FileRow(*row) for row in self._db.execute(sql, tuple(params))]

    def files_under(self, root: str | Path) -> dict[str, FileRow]:
        """Rows whose path lies inside ``root``, keyed by path."""
        root = str(root).rstrip("/\\")
        # Range scan on the path: everything that starts with "root/".
        lo, hi = root + "/", root + "0"  # '0' sorts right after '/'
        rows = self._rows(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE path >= ? AND path < ?", (lo, hi)
        )
        return {row.path: row for row in rows}

    def file(self, file_id: int) -> FileRow | None:
        rows = self._rows(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,))
        return rows[0] if rows else None

    def file_by_path(self, path: str | Path) -> FileRow | None:
        rows = self._rows(f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (str(path),))
        return rows[0] if rows else None

    def files_by_id(self, file_ids: Iterable[int]) -> dict[int, FileRow]:
        ids = list(dict.fromkeys(int(i) for i in file_ids))
        found: dict[int, FileRow] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._rows(f"SELECT {_FILE_COLUMNS} FROM files WHERE id IN ({marks})", chunk):
                found[row.id] = row
        return found

    def rows_with_hash(self, content_hash: str) -> list[FileRow]:
        return self._rows(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE content_hash = ? ORDER BY id", (content_hash,)
        )

    def known_hashes(self) -> set[str]:
        return {r[0] for r in self._db.execute(
            "SELECT DISTINCT content_hash FROM files WHERE content_hash IS NOT NULL")}

    def indexed_files(self) -> list[FileRow]:
        """Every indexed file, ordered by path."""
        return self._rows(f"SELECT {_FILE_COLUMNS} FROM files WHERE status = 'indexed' ORDER BY path")

    def skipped(self, limit: int | None = None) -> list[FileRow]:
        sql = f"SELECT {_FILE_COLUMNS} FROM files WHERE status = 'skipped' ORDER BY path"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._rows(sql)

    def stats(self) -> dict:
        counts = dict(self._db.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))
        kinds = dict(self._db.execute(
            "SELECT kind, COUNT(*) FROM files WHERE status = 'indexed' GROUP BY kind"))
        reasons = dict(self._db.execute(
            "SELECT error_code, COUNT(*) FROM files WHERE status = 'skipped' GROUP BY error_code"))
        models = dict(self._db.execute("SELECT model_id, COUNT(*) FROM vectors GROUP BY model_id"))
        duration = self._db.execute(
            "SELECT COALESCE(SUM(duration), 0) FROM files WHERE status = 'indexed'").fetchone()[0]
        return {
            "files": sum(counts.values()),
            "indexed": counts.get("indexed", 0),
            "skipped": counts.get("skipped", 0),
            "one_shots": kinds.get("one-shot", 0),
            "loops": kinds.get("loop", 0),
            "skipped_by_reason": reasons,
            "vectors_by_model": models,
            "total_duration_s": float(duration),
            "roots": self.roots(),
        }

    # -- vectors -----------------------------------------------------------

    def vector_count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        return self._db.execute(
            "SELECT COUNT(*) FROM vectors WHERE model_id = ?", (model_id,)).fetchone()[0]

    def files_of_other_models(self, model_id: str) -> dict[str, int]:
        """Files holding vectors of a model other than ``model_id``: {that model id: files}.

        Empty when every vector is of ``model_id``. After a model upgrade these are the files
        the next scan re-embeds. Thread: the one that opened this catalog, like every method.
        """
        return dict(self._db.execute(
            "SELECT model_id, COUNT(DISTINCT file_id) FROM vectors WHERE model_id != ? "
            "GROUP BY model_id ORDER BY model_id", (model_id,)))

    def vector_ids(self, model_id: str) -> np.ndarray:
        ids = [r[0] for r in self._db.execute(
            "SELECT id FROM vectors WHERE model_id = ? ORDER BY id", (model_id,))]
        return np.asarray(ids, dtype=np.int64)

    def iter_vectors(
        self, model_id: str, *, dim: int, min_id: int = 0, ids: Iterable[int] | None = None,
        batch: int = 4096,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yields (vector_ids, file_ids, vectors) in batches, by ascending id."""
        if ids is not None:
            wanted = np.asarray(sorted(int(i) for i in ids), dtype=np.int64)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500].tolist()
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT id, file_id, vector FROM vectors WHERE id IN ({marks}) "
                    "AND model_id = ? ORDER BY id", (*chunk, model_id)).fetchall()
                if rows:
                    yield _unpack_vectors(rows, dim)
            return
        last = min_id - 1
        while True:
            rows = self._db.execute(
                "SELECT id, file_id, vector FROM vectors WHERE model_id = ? AND id > ? "
                "ORDER BY id LIMIT ?", (model_id, last, batch)).fetchall()
            if not rows:
                return
            yield _unpack_vectors(rows, dim)
            last = rows[-1][0]

    def window_starts(self, vector_ids: Iterable[int]) -> dict[int, int]:
        """Start sample (at the model rate) of each vector's window in its file."""
        ids = [int(i) for i in vector_ids]
        starts: dict[int, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            starts.update(self._db.execute(
                f"SELECT id, start_sample FROM vectors WHERE id IN ({marks})", chunk))
        return starts

    def file_vectors(self, file_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(vector_ids, vectors) of one file."""
        rows = self._db.execute(
            "SELECT id, vector FROM vectors WHERE file_id = ? ORDER BY id", (file_id,)).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        vectors = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows])
        return ids, vectors

    # -- writing -----------------------------------------------------------

    def store(self, analysis: FileAnalysis) -> tuple[int, np.ndarray]:
        """Insert or replace the row for ``analysis.path`` and its vectors.

        Returns (file_id, new vector ids). Old vectors of the row are deleted.
        """
        a = analysis
        with self.transaction():
            existing = self._db.execute("SELECT id FROM files WHERE path = ?", (a.path,)).fetchone()
            values = (a.size, a.mtime_ns, a.content_hash, a.duration, a.sample_rate, a.channels,
                      a.kind, a.status, a.error_code, a.error, a.model_id, time.time())
            if existing:
                file_id = existing[0]
                had_vectors = self._db.execute(
                    "DELETE FROM vectors WHERE file_id = ?", (file_id,)).rowcount
                self._db.execute(
                    "UPDATE files SET size=?, mtime_ns=?, content_hash=?, duration=?, "
                    "sample_rate=?, channels=?, kind=?, status=?, error_code=?, error=?, "
                    "model_id=?, scanned_at=? WHERE id=?", (*values, file_id))
            else:
                had_vectors = 0
                file_id = self._db.execute(
                    "INSERT INTO files (path, size, mtime_ns, content_hash, duration, sample_rate, "
                    "channels, kind, status, error_code, error, model_id, scanned_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (a.path, *values)).lastrowid
            ids = self._insert_vectors(file_id, a.model_id, a.start_samples, a.vectors)
            if len(ids) or had_vectors:
                self._bump_generation()
        return file_id, ids

    def _insert_vectors(self, file_id, model_id, start_samples, vectors) -> np.ndarray:
        if vectors is None or len(vectors) == 0:
            return np.zeros(0, np.int64)
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        ids = []
        for start, vector in zip(start_samples, vectors):
            ids.append(self._db.execute(
                "INSERT INTO vectors (file_id, model_id, start_sample, vector) VALUES (?,?,?,?)",
                (file_id, model_id, int(start), vector.tobytes())).lastrowid)
        return np.asarray(ids, dtype=np.int64)

    def relink(self, file_id: int, path: str, size: int, mtime_ns: int) -> None:
        """A catalogued file was moved or renamed: keep its row and vectors."""
        with self.transaction():
            self._db.execute(
                "UPDATE files SET path=?, size=?, mtime_ns=?, scanned_at=? WHERE id=?",
                (path, size, mtime_ns, time.time(), file_id))

    def touch(self, file_id: int, size: int, mtime_ns: int) -> None:
        """Same content, new mtime (e.g. copied over itself): just note the new stat."""
        with self.transaction():
            self._db.execute("UPDATE files SET size=?, mtime_ns=? WHERE id=?",
                             (size, mtime_ns, file_id))

    def copy_file(self, source_id: int, path: str, size: int, mtime_ns: int) -> tuple[int, np.ndarray]:
        """A duplicate of an analysed file: a new row sharing the source's analysis."""
        source = self.file(source_id)
        ids, vectors = self.file_vectors(source_id)
        starts = [r[0] for r in self._db.execute(
            "SELECT start_sample FROM vectors WHERE file_id = ? ORDER BY id", (source_id,))]
        return self.store(FileAnalysis(
            path=path, size=size, mtime_ns=mtime_ns, content_hash=source.content_hash,
            status=source.status, duration=source.duration, sample_rate=source.sample_rate,
            channels=source.channels, kind=source.kind, error_code=source.error_code,
            error=source.error, model_id=source.model_id, start_samples=tuple(starts),
            vectors=vectors if len(ids) else None))

    def delete_files(self, file_ids: Iterable[int]) -> None:
        ids = [int(i) for i in file_ids]
        if not ids:
            return
        with self.transaction():
            removed = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                removed += self._db.execute(
                    f"DELETE FROM vectors WHERE file_id IN ({marks})", chunk).rowcount
                self._db.execute(f"DELETE FROM files WHERE id IN ({marks})", chunk)
            if removed:
                self._bump_generation()


def _unpack_vectors(rows, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    file_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), dim)
    return ids, file_ids, vectors
