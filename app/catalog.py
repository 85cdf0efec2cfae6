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
import functools
import itertools
import os
from collections import Counter
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np

from engine.errors import SampleScoutError
from app.paths import display_path  # noqa: F401 — part of the catalog's path helpers
from app.catalog_browse import BrowseColumnsMixin
from models.tag_vocabulary import facet_of
from app.catalog_collections import CollectionsMixin
from app.catalog_roots import RootsMixin
from app.catalog_map import MapPositionsMixin
from app.vector_files import ID_SUMMARY_SQL

SCHEMA_VERSION = 4

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
    # What a sound is: tags with their source, and tempo / key / root / loudness.
    2: (
        # One row per (file, tag, source). 'audio' and 'name' rows are rewritten by every
        # analysis; 'user' rows only by the user: removed = 1 records a removal, which hides
        # the tag from every source.
        """CREATE TABLE tags (
               file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
               tag TEXT NOT NULL,
               source TEXT NOT NULL CHECK (source IN ('audio', 'name', 'user')),
               confidence REAL NOT NULL,
               model_id TEXT,
               removed INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1)),
               PRIMARY KEY (file_id, tag, source))""",
        "CREATE INDEX tags_tag ON tags (tag)",
        """CREATE TABLE sounds (
               file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
               analysis_model TEXT NOT NULL,
               loop_probability REAL,
               tempo_bpm REAL,
               tempo_confidence REAL,
               key_tonic INTEGER CHECK (key_tonic BETWEEN 0 AND 11),
               key_mode TEXT,
               key_label TEXT,
               key_confidence REAL,
               root_midi INTEGER,
               tuning_cents REAL,
               root_confidence REAL,
               loudness_db REAL,
               name_conflict TEXT,
               analysed_at REAL NOT NULL)""",
        "CREATE INDEX sounds_tempo ON sounds (tempo_bpm)",
        "CREATE INDEX sounds_model ON sounds (analysis_model)",
    ),
    # duplicate groups (app.duplicates): which file contents were checked, and the pairs
    # found; a file row whose content_hash differs from its check is checked again
    3: (
        """CREATE TABLE duplicate_checks (
               file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
               content_hash TEXT NOT NULL,
               pcm_hash TEXT,
               checked_at REAL NOT NULL)""",
        """CREATE TABLE duplicate_pairs (
               a INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
               b INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
               label TEXT NOT NULL CHECK (label IN ('exact', 'near', 'variant')),
               correlation REAL NOT NULL,
               offset_s REAL NOT NULL,
               ratio REAL NOT NULL,
               trimmed INTEGER NOT NULL,
               PRIMARY KEY (a, b),
               CHECK (a < b))""",
        "CREATE INDEX duplicate_pairs_b ON duplicate_pairs (b)",
    ),
    # the librarian: favourites and collections (kept by file id, so a relinked or
    # re-analysed file keeps them), a library folder's identity beyond its path (a marker
    # file's id and the volume's), its offline state, and the similarity map's positions
    4: (
        """CREATE TABLE favourites (
               file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
               added_at REAL NOT NULL)""",
        """CREATE TABLE collections (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               name TEXT NOT NULL UNIQUE COLLATE NOCASE,
               created_at REAL NOT NULL)""",
        """CREATE TABLE collection_items (
               collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
               file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
               added_at REAL NOT NULL,
               PRIMARY KEY (collection_id, file_id))""",
        "CREATE INDEX collection_items_file ON collection_items (file_id)",
        "ALTER TABLE roots ADD COLUMN folder_id TEXT",
        "ALTER TABLE roots ADD COLUMN volume_id TEXT",
        "ALTER TABLE roots ADD COLUMN offline_since REAL",
        """CREATE TABLE map_positions (
               file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
               layout_id TEXT NOT NULL,
               x REAL NOT NULL,
               y REAL NOT NULL)""",
    ),
}


class CatalogError(SampleScoutError):
    """The catalog file cannot be used (newer schema, corrupt file)."""


class CatalogDamagedError(CatalogError):
    """The catalog file is damaged (SQLite finds it malformed)."""


def explain_database_error(path: str | os.PathLike, exc: sqlite3.DatabaseError) -> CatalogError:
    """One user-facing error for an SQLite failure met after the catalog was opened: runs
    ``PRAGMA quick_check`` on a fresh connection to tell damage from other causes. Any
    thread."""
    problem = quick_check(path)
    if problem is None:
        return CatalogError(f"catalog {display_path(path)} could not be used: {exc}")
    return CatalogDamagedError(_damage_advice(path, problem))


def quick_check(path: str | os.PathLike) -> str | None:
    """None when SQLite's quick_check passes on the catalog at ``path``, else what it
    found (first lines). Reads every page once: about a second per GB. Any thread."""
    try:
        db = sqlite3.connect(f"file:{os.fspath(path)}?mode=ro", uri=True, timeout=30.0)
        try:
            rows = [r[0] for r in db.execute("PRAGMA quick_check(3)")]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return None  # I/O, a full disk, a lock: not damage
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if rows == ["ok"] else "; ".join(rows)


def _damage_advice(path, problem: str) -> str:
    problem = " ".join(problem.replace("*** in database main ***", "").split())
    return (f"the catalog {display_path(path)} is damaged ({problem}). Move it aside (keep it "
            "for a backup) and run `samplescout index FOLDER...` to rebuild it from your "
            "sample folders; the samples themselves are untouched")


def db_path(path: str | os.PathLike) -> str | bytes:
    """A file path as stored in the catalog: text when it is valid UTF-8, else the raw
    bytes of the name (``os.fsencode``), so a Latin-1 ``café.wav`` round-trips exactly.
    SQLite keeps a BLOB in a TEXT column as it is; the two never collide. Any thread."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def py_path(value: str | bytes) -> str:
    """The inverse of :func:`db_path`: the ``str`` Python's os functions take. Any thread."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


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


class FileStamp(NamedTuple):
    """The part of a catalog row that says whether a file on disk is unchanged."""
    id: int
    size: int
    mtime_ns: int
    status: str
    model_id: str | None
    error_code: str | None


TAG_SOURCES = ("audio", "name", "user")


@dataclass(frozen=True)
class TagRow:
    tag: str
    source: str            # 'audio', 'name' or 'user'
    confidence: float
    model_id: str | None = None


def standing_tags(rows: dict[int, list[TagRow]],
                  removed: dict[int, set[str]]) -> dict[int, list[TagRow]]:
    """From each file's stored tag rows and the tags its user removed: the tags that stand,
    one row per tag (user > name > audio): type tags before genre and mood tags, within
    each the user's first, then by confidence. Any thread."""
    rank = {"user": 0, "name": 1, "audio": 2}
    out: dict[int, list[TagRow]] = {}
    for file_id, file_rows in rows.items():
        best: dict[str, TagRow] = {}
        for row in sorted(file_rows, key=lambda r: rank[r.source]):
            if row.tag not in removed.get(file_id, ()) and row.tag not in best:
                best[row.tag] = row
        out[file_id] = sorted(best.values(), key=lambda r: (facet_of(r.tag) != "type",
                                                             rank[r.source] != 0, -r.confidence))
    return out


@dataclass(frozen=True)
class SoundInfo:
    """What the analysis found about a sound besides its vectors (None: unknown or abstained)."""
    analysis_model: str
    loop_probability: float | None = None
    tempo_bpm: float | None = None
    tempo_confidence: float | None = None
    key_tonic: int | None = None       # 0 = C ... 11 = B
    key_mode: str | None = None        # 'major' or 'minor'
    key_label: str | None = None       # "Am"
    key_confidence: float | None = None
    root_midi: int | None = None
    tuning_cents: float | None = None
    root_confidence: float | None = None
    loudness_db: float | None = None
    name_conflict: str | None = None   # the name's tag where a confident audio tag disagrees


_SOUND_COLUMNS = ("analysis_model, loop_probability, tempo_bpm, tempo_confidence, key_tonic, "
                  "key_mode, key_label, key_confidence, root_midi, tuning_cents, root_confidence, "
                  "loudness_db, name_conflict")


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
    sound: SoundInfo | None = None     # tempo, key, root... (None: not analysed)
    tags: tuple[TagRow, ...] = ()      # 'audio' and 'name' tags


class Catalog(CollectionsMixin, BrowseColumnsMixin, RootsMixin, MapPositionsMixin):
    """One connection to the catalog file. See the module docstring on threads.

    Favourites and collections are in :class:`app.catalog_collections.CollectionsMixin`;
    library folders' identity and offline state in :class:`app.catalog_roots.RootsMixin`;
    the similarity map's positions in :class:`app.catalog_map.MapPositionsMixin`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.read_only_reason: str | None = None  # set when only reading was possible
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                # WAL needs its -shm file: on a full disk (or a read-only folder) it cannot be
                # made, but the catalog can still be read as it was last checkpointed.
                self._db.close()
                self._db = self._open_read_only(exc)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"catalog {display_path(self.path)} cannot be opened: {exc}") from exc

    def _open_read_only(self, cause: sqlite3.OperationalError) -> sqlite3.Connection:
        if not self.path.exists():
            raise cause
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                             isolation_level=None)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise cause from None
        self.read_only_reason = str(cause)
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check(self) -> None:
        """Raise CatalogDamagedError when SQLite's quick_check finds damage (reads every
        page once: about a second per GB, so writers call it, not every reader)."""
        try:
            rows = [r[0] for r in self._db.execute("PRAGMA quick_check(3)")]
        except sqlite3.OperationalError:
            raise  # I/O, a full disk, a lock: not damage
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows != ["ok"]:
            raise CatalogDamagedError(_damage_advice(self.path, "; ".join(rows)))

    def set_read_only(self) -> None:
        """Refuse every write on this connection from now on (a reader's connection)."""
        self._db.execute("PRAGMA query_only = ON")

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
        if self.read_only_reason is not None:
            raise CatalogError(
                f"the catalog {display_path(self.path)} can only be read now "
                f"({self.read_only_reason}: is the disk full?); free some space and try again")
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
                (db_path(path), time.time()),
            )

    def remove_root(self, path: str | Path) -> int:
        """Forget a library folder and every file under it; returns files removed."""
        with self.transaction():
            ids = [row.id for row in self.files_under(path).values()]
            self.delete_files(ids)
            self._db.execute("DELETE FROM roots WHERE path = ?", (db_path(path),))
        return len(ids)

    def roots(self) -> list[str]:
        return [py_path(r[0]) for r in self._db.execute("SELECT path FROM roots ORDER BY path")]

    # -- reading files -----------------------------------------------------

    def _rows(self, sql: str, params: Iterable = ()) -> list[FileRow]:
        return [FileRow(row[0], py_path(row[1]), *row[2:])
                for row in self._db.execute(sql, tuple(params))]

    def files_under(self, root: str | Path) -> dict[str, FileRow]:
        """Rows whose path lies inside ``root``, keyed by path."""
        return {row[0]: FileRow(row[1], row[0], *row[3:])
                for row in self._rows_under(root, "path, " + _FILE_COLUMNS)}

    def file_stamps(self, root: str | Path) -> dict[str, FileStamp]:
        """What an unchanged-file check needs of each row inside ``root``, keyed by path:
        plain tuples, no ``FileRow`` built (a re-scan of a million files reads them all)."""
        return {row[0]: FileStamp(*row[1:]) for row in self._rows_under(
            root, "path, id, size, mtime_ns, status, model_id, error_code")}

    def _rows_under(self, root: str | Path, columns: str) -> Iterator[tuple]:
        """``columns`` of the rows inside ``root``, the path first (as a ``str``)."""
        root = os.fspath(root).rstrip("/\\")
        # Range scans on the path: everything that starts with "root/", among the text
        # paths and among the byte paths (names that are not UTF-8).
        raw = os.fsencode(root)
        sql = f"SELECT {columns} FROM files WHERE path >= ? AND path < ?"
        ranges = [(raw + b"/", raw + b"0")]   # '0' sorts right after '/'
        if isinstance(db_path(root), str):
            ranges.append((root + "/", root + "0"))
        for low, high in ranges:
            for row in self._db.execute(sql, (low, high)):
                yield (py_path(row[0]), *row[1:]) if isinstance(row[0], bytes) else row

    def file(self, file_id: int) -> FileRow | None:
        rows = self._rows(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,))
        return rows[0] if rows else None

    def file_by_path(self, path: str | Path) -> FileRow | None:
        rows = self._rows(f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (db_path(path),))
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

    def where(self, row: FileRow) -> str | None:
        """Which other machine has a file missing here: none, this catalog is one machine's."""
        return None

    def indexed_files(self) -> list[FileRow]:
        """Every indexed file, ordered by path."""
        return self._rows(f"SELECT {_FILE_COLUMNS} FROM files WHERE status = 'indexed' ORDER BY path")

    def skipped(self, limit: int | None = None) -> list[FileRow]:
        sql = f"SELECT {_FILE_COLUMNS} FROM files WHERE status = 'skipped' ORDER BY path"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._rows(sql)

    def indexed_count(self) -> int:
        """``stats()['indexed']`` alone: one count on the status index (stats() takes
        seconds at a million files)."""
        return self._db.execute("SELECT COUNT(*) FROM files WHERE status = 'indexed'").fetchone()[0]

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
            "offline_roots": self.offline_roots(),
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

    def vector_id_summary(self, model_id: str) -> tuple[int, int, int]:
        """(count, sum, hash sum) of the model's vector ids (app.vector_files.id_summary)."""
        return _id_summary(self._db, model_id)

    def vector_id_summary_ahead(self, model_id: str) -> Callable[[], tuple[int, int, int]]:
        """``vector_id_summary``, started now on a read-only connection of its own in a
        background thread, so that it runs beside the caller's own work (a million-vector
        catalog takes a few hundred milliseconds); the returned function waits for it. A
        catalog opened read-only, or a second connection that fails, computes on this
        connection instead. The returned function is called on this catalog's thread."""
        if self.read_only_reason is not None:
            return functools.partial(self.vector_id_summary, model_id)
        uri = f"{self.path.resolve().as_uri()}?mode=ro"

        def summary() -> tuple[int, int, int]:
            db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
            try:
                return _id_summary(db, model_id)
            finally:
                db.close()

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-summary")
        pending = pool.submit(summary)
        pool.shutdown(wait=False)

        def result() -> tuple[int, int, int]:
            try:
                return pending.result()
            except sqlite3.Error:
                return self.vector_id_summary(model_id)
        return result

    def vector_ids(self, model_id: str) -> np.ndarray:
        """Ids of the model's vectors, ascending (a million in well under a second: the rows
        go straight into the array, no list of them is built)."""
        return np.fromiter(itertools.chain.from_iterable(self._db.execute(
            "SELECT id FROM vectors WHERE model_id = ? ORDER BY id", (model_id,))), dtype=np.int64)

    def iter_vectors(
        self, model_id: str, *, dim: int, min_id: int = 0, ids: Iterable[int] | None = None,
        batch: int = 4096, bad: list[tuple[int, int]] | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yields (vector_ids, file_ids, vectors) in batches, by ascending id.

        Damaged rows (wrong length, NaN, infinity, all zeros) are left out and their
        (vector_id, file_id) appended to ``bad``."""
        if bad is None:
            bad = []
        if ids is not None:
            wanted = np.asarray(sorted(int(i) for i in ids), dtype=np.int64)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500].tolist()
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT id, file_id, vector FROM vectors WHERE id IN ({marks}) "
                    "AND model_id = ? ORDER BY id", (*chunk, model_id)).fetchall()
                if rows:
                    yield _unpack_vectors(rows, dim, bad)
            return
        last = min_id - 1
        while True:
            rows = self._db.execute(
                "SELECT id, file_id, vector FROM vectors WHERE model_id = ? AND id > ? "
                "ORDER BY id LIMIT ?", (model_id, last, batch)).fetchall()
            if not rows:
                return
            yield _unpack_vectors(rows, dim, bad)
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
        size = Counter(len(r[1]) for r in rows).most_common(1)[0][0]
        rows = [r for r in rows if len(r[1]) == size and size and size % 4 == 0
                and _usable(np.frombuffer(r[1], dtype="<f4"))]
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        vectors = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows])
        return ids, vectors

    def mark_for_reanalysis(self, bad: Iterable[tuple[int, int]]) -> int:
        """Drop damaged vector rows and make the next scan re-analyse their files (their
        stored mtime and model no longer match). Returns the files marked."""
        bad = list(bad)
        files = sorted({int(f) for _, f in bad})
        if not bad:
            return 0
        with self.transaction():
            self._db.executemany("DELETE FROM vectors WHERE id = ?", [(int(v),) for v, _ in bad])
            # No model: the row's analysis no longer counts as reusable for its content.
            self._db.executemany("UPDATE files SET mtime_ns = -1, model_id = NULL WHERE id = ?",
                                 [(f,) for f in files])
            self._bump_generation()
        return len(files)

    # -- writing -----------------------------------------------------------

    def store(self, analysis: FileAnalysis) -> tuple[int, np.ndarray]:
        """Insert or replace the row for ``analysis.path`` and its vectors.

        Returns (file_id, new vector ids). Old vectors of the row are deleted.
        """
        a = analysis
        with self.transaction():
            existing = self._db.execute(
                "SELECT id FROM files WHERE path = ?", (db_path(a.path),)).fetchone()
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
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (db_path(a.path), *values)).lastrowid
            ids = self._insert_vectors(file_id, a.model_id, a.start_samples, a.vectors)
            self.set_sound(file_id, a.sound, a.tags)
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
                (db_path(path), size, mtime_ns, time.time(), file_id))

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
        sound = self.sounds([source_id]).get(source_id)
        audio_tags = tuple(t for t in self.tag_rows([source_id]).get(source_id, ())
                           if t.source == "audio")
        return self.store(FileAnalysis(
            path=path, size=size, mtime_ns=mtime_ns, content_hash=source.content_hash,
            status=source.status, duration=source.duration, sample_rate=source.sample_rate,
            channels=source.channels, kind=source.kind, error_code=source.error_code,
            error=source.error, model_id=source.model_id, start_samples=tuple(starts),
            vectors=vectors if len(ids) else None, sound=sound, tags=audio_tags))

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

    # -- duplicates (app.duplicates) ----------------------------------------

    def duplicate_unchecked(self) -> list[FileRow]:
        """Indexed files whose content was not checked for duplicates yet (new or changed
        since the last check)."""
        return self._rows(
            f"SELECT {', '.join('f.' + c for c in _FILE_COLUMNS.split(', '))} FROM files f "
            "LEFT JOIN duplicate_checks d ON d.file_id = f.id "
            "WHERE f.status = 'indexed' AND (d.file_id IS NULL OR d.content_hash IS NOT f.content_hash) "
            "ORDER BY f.id")

    def duplicate_pcm_hashes(self, file_ids: Iterable[int]) -> dict[int, str]:
        """PCM hashes recorded by earlier checks (for files whose content is unchanged)."""
        ids = [int(i) for i in file_ids]
        found: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(
                f"SELECT d.file_id, d.pcm_hash FROM duplicate_checks d JOIN files f "
                f"ON f.id = d.file_id AND f.content_hash = d.content_hash "
                f"WHERE d.file_id IN ({marks}) AND d.pcm_hash IS NOT NULL", chunk))
        return found

    def record_duplicate_check(self, file_id: int, content_hash: str, pcm_hash: str | None,
                               pairs: Iterable[tuple[int, str, float, float, float, bool]]) -> None:
        """One file checked: its ``pairs`` (other file id, label, correlation, offset_s,
        ratio, trimmed), seen from this file, join the stored ones."""
        with self.transaction():
            for other, label, corr, offset, ratio, trimmed in pairs:
                if other == file_id:
                    continue
                a, b = (file_id, other) if file_id < other else (other, file_id)
                if a != file_id:   # stored from a's side: b sits at -offset, speed 1/ratio
                    offset, ratio = -offset, 1.0 / ratio
                self._db.execute(
                    "INSERT OR REPLACE INTO duplicate_pairs (a, b, label, correlation, offset_s, "
                    "ratio, trimmed) VALUES (?,?,?,?,?,?,?)",
                    (a, b, label, float(corr), float(offset), float(ratio), int(bool(trimmed))))
            self._db.execute(
                "INSERT OR REPLACE INTO duplicate_checks (file_id, content_hash, pcm_hash, checked_at) "
                "VALUES (?,?,?,?)", (file_id, content_hash, pcm_hash, time.time()))

    def forget_duplicate_pairs(self, file_ids: Iterable[int]) -> None:
        """Drop every stored pair that touches these files (their content changed)."""
        ids = [int(i) for i in file_ids]
        with self.transaction():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                self._db.execute(f"DELETE FROM duplicate_pairs WHERE a IN ({marks}) OR b IN ({marks})",
                                 chunk + chunk)

    def duplicate_pairs(self) -> list[tuple[int, int, str, float, float, float, bool]]:
        """Every stored pair: (a, b, label, correlation, offset_s, ratio, trimmed), a < b."""
        return [(a, b, label, corr, off, ratio, bool(trimmed)) for a, b, label, corr, off, ratio, trimmed
                in self._db.execute("SELECT a, b, label, correlation, offset_s, ratio, trimmed "
                                    "FROM duplicate_pairs ORDER BY a, b")]


    # -- sounds and tags ---------------------------------------------------

    def set_sound(self, file_id: int, sound: SoundInfo | None, tags: Iterable[TagRow] = (),
                  *, replace_sources: tuple[str, ...] = ("audio", "name")) -> None:
        """Replace a file's analysis and its tags of ``replace_sources`` (never the user's).
        A None ``sound`` leaves the file unanalysed (its old analysis goes)."""
        tags = list(tags)
        if any(t.source == "user" for t in tags) or "user" in replace_sources:
            raise ValueError("user tags are written by add_user_tag / remove_user_tag only")
        with self.transaction():
            marks = ",".join("?" * len(replace_sources))
            self._db.execute(f"DELETE FROM tags WHERE file_id = ? AND source IN ({marks})",
                             (file_id, *replace_sources))
            for t in tags:
                self._db.execute(
                    "INSERT OR REPLACE INTO tags (file_id, tag, source, confidence, model_id) "
                    "VALUES (?,?,?,?,?)", (file_id, t.tag, t.source, float(t.confidence), t.model_id))
            if "audio" not in replace_sources:
                return
            self._db.execute("DELETE FROM sounds WHERE file_id = ?", (file_id,))
            if sound is not None:
                self._db.execute(
                    f"INSERT INTO sounds (file_id, {_SOUND_COLUMNS}, analysed_at) "
                    f"VALUES ({','.join('?' * 15)})",
                    (file_id, *(getattr(sound, c.strip()) for c in _SOUND_COLUMNS.split(",")),
                     time.time()))

    def set_name_conflict(self, file_id: int, conflict: str | None) -> None:
        with self.transaction():
            self._db.execute("UPDATE sounds SET name_conflict = ? WHERE file_id = ?",
                             (conflict, file_id))

    def set_kind(self, file_id: int, kind: str) -> None:
        with self.transaction():
            self._db.execute("UPDATE files SET kind = ? WHERE id = ?", (kind, file_id))

    def set_user_tag(self, file_id: int, tag: str, *, removed: bool) -> None:
        """Record the user's word on one tag of one file: added, or removed (which hides the
        tag whatever source found it). Survives every later analysis of the file."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO tags (file_id, tag, source, confidence, removed) "
                "VALUES (?, ?, 'user', 1.0, ?) ON CONFLICT (file_id, tag, source) "
                "DO UPDATE SET removed = excluded.removed", (file_id, tag, int(removed)))

    def tag_rows(self, file_ids: Iterable[int]) -> dict[int, list[TagRow]]:
        """Every stored tag row (removals excluded) of these files, best first."""
        return self._tag_rows_and_removals(file_ids)[0]

    def tags(self, file_ids: Iterable[int]) -> dict[int, list[TagRow]]:
        """The tags that stand for each file: the user's additions, then the name's and the
        audio's, without those the user removed; one row per tag (user > name > audio)."""
        return standing_tags(*self._tag_rows_and_removals(file_ids))

    def _tag_rows_and_removals(self, file_ids: Iterable[int]
                               ) -> tuple[dict[int, list[TagRow]], dict[int, set[str]]]:
        """(stored tag rows best first, removals excluded; the tags the user removed) of
        these files, in one query a chunk (a search asks for them on every answer)."""
        found: dict[int, list[TagRow]] = {}
        removed: dict[int, set[str]] = {}
        for chunk in _chunks([int(i) for i in file_ids]):
            marks = ",".join("?" * len(chunk))
            for file_id, tag, source, confidence, model_id, gone in self._db.execute(
                    f"SELECT file_id, tag, source, confidence, model_id, removed FROM tags "
                    f"WHERE file_id IN ({marks}) "
                    f"ORDER BY file_id, confidence DESC, tag", chunk):
                if not gone:
                    found.setdefault(file_id, []).append(TagRow(tag, source, confidence, model_id))
                elif source == "user":
                    removed.setdefault(file_id, set()).add(tag)
        return found, removed

    def sounds(self, file_ids: Iterable[int]) -> dict[int, SoundInfo]:
        found: dict[int, SoundInfo] = {}
        for chunk in _chunks([int(i) for i in file_ids]):
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                    f"SELECT file_id, {_SOUND_COLUMNS} FROM sounds WHERE file_id IN ({marks})", chunk):
                found[row[0]] = SoundInfo(*row[1:])
        return found

    def files_to_analyse(self, analysis_model: str, root: str | None = None) -> list[FileRow]:
        """Indexed files (under ``root``) with no sound analysis or one by another model."""
        sql = (f"SELECT {', '.join('f.' + c.strip() for c in _FILE_COLUMNS.split(','))} "
               "FROM files f LEFT JOIN sounds s ON s.file_id = f.id WHERE f.status = 'indexed' "
               "AND (s.file_id IS NULL OR s.analysis_model != ?)")
        params: list = [analysis_model]
        if root is not None:
            root = str(root).rstrip("/\\")
            sql += " AND f.path >= ? AND f.path < ?"
            params += [root + "/", root + "0"]
        return self._rows(sql + " ORDER BY f.path", params)


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _usable(vector: np.ndarray) -> bool:
    return bool(np.isfinite(vector).all()) and bool(np.any(vector != 0))


def _unpack_vectors(rows, dim: int, bad: list[tuple[int, int]]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    good = []
    for row in rows:
        blob = row[2]
        if (isinstance(blob, bytes) and len(blob) == 4 * dim
                and _usable(np.frombuffer(blob, dtype="<f4"))):
            good.append(row)
        else:
            bad.append((int(row[0]), int(row[1])))
    rows = good
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    file_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), dim)
    return ids, file_ids, vectors


def _id_summary(db: sqlite3.Connection, model_id: str) -> tuple[int, int, int]:
    row = db.execute(f"SELECT {ID_SUMMARY_SQL} FROM vectors WHERE model_id = ?",
                     (model_id,)).fetchone()
    return int(row[0]), int(row[1]), int(row[2])
