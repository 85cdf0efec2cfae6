"""The shared catalogue: PostgreSQL + pgvector, several machines on one library.

Files are keyed by (share, relative path): a share is a library folder as the studio
knows it (a NAS volume, a drive), and each machine maps the shares it can reach to a
local folder (``path_mappings``), so one NAS mounted at /mnt/nas on one machine and at
/Volumes/nas on another is one library. ``FileRow.path`` is the local path where this
machine maps the share, or the label ``[share]/relative/path`` where it does not;
``where`` then names the machines that have it.

Vectors live in ``vectors.embedding`` (pgvector), searched through an HNSW index per
model (``USING hnsw ((embedding::vector(dim)) vector_cosine_ops) WHERE model_id = ...``).
Tags, sound analysis, favourites, collections and duplicate groups (schema 2) are in
``app.pg_librarian``.

Two machines scanning one share claim files before analysing them (``claims``, taken
with ``INSERT ... ON CONFLICT``): a file claimed by another machine is left to it. A
claim ends when the file's row is stored, when its scan ends, or after
``CLAIM_TIMEOUT_S`` (a machine that died mid-scan).

A lost connection raises ``StorageUnavailable``; ``reconnect`` waits for the server with
backoff. Threads: a ``PgCatalog`` belongs to the thread that opened it; psycopg
serialises the connection, so ``PgVectorIndex.search`` may be called from any thread.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
import time
import uuid
from typing import Callable, Iterable, Iterator

import numpy as np

from app.catalog import FileAnalysis, FileRow, FileStamp
from app.index import Hit
from app.pg_librarian import MIGRATION_2, PgLibrarianMixin
from app.storage import StorageUnavailable
from app.vector_files import ID_SUMMARY_SQL
from engine.errors import SampleScoutError

try:
    import psycopg
    from psycopg import sql
    from pgvector.psycopg import register_vector
except ImportError:  # the optional [postgres] extra
    psycopg = None

SCHEMA_VERSION = 2
CLAIM_TIMEOUT_S = 600
RECONNECT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5
# pgvector's HNSW parameters, tuned by bench/pg.py (100k 256-d vectors, 2 busy cores;
# bench/results/pg_100k.json): at m 16, ef_construction 64 (pgvector's default) gives
# recall@10 0.89 / 0.93 / 0.96 at ef_search 64 / 100 / 200; ef_construction 128 gives
# 0.95 / 0.98 / 1.00 for a 1.7x slower index build. At 1M vectors shaped like the encoder's
# (bench/results/pg_1m_side_by_side_real.json) ef_search 100 gives 0.90 and 200 gives 0.96
# at p95 11 ms: the app searches at 200.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
HNSW_EF_SEARCH = 200
_MIGRATION_LOCK = 0x5343_5354  # pg_advisory_xact_lock key: one migration at a time
_INDEX_LOCK = 0x5343_5349

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE EXTENSION IF NOT EXISTS vector",
        """CREATE TABLE roots (
               share_id TEXT PRIMARY KEY,
               added_by TEXT NOT NULL,
               added_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
        """CREATE TABLE path_mappings (
               machine_id TEXT NOT NULL,
               share_id TEXT NOT NULL REFERENCES roots (share_id) ON DELETE CASCADE,
               local_path TEXT NOT NULL,
               PRIMARY KEY (machine_id, local_path))""",
        """CREATE TABLE files (
               id BIGSERIAL PRIMARY KEY,
               share_id TEXT NOT NULL REFERENCES roots (share_id) ON DELETE CASCADE,
               rel_path TEXT NOT NULL,
               size BIGINT NOT NULL,
               mtime_ns BIGINT NOT NULL,
               content_hash TEXT,
               duration DOUBLE PRECISION,
               sample_rate INTEGER,
               channels INTEGER,
               kind TEXT CHECK (kind IN ('one-shot', 'loop')),
               status TEXT NOT NULL CHECK (status IN ('indexed', 'skipped')),
               error_code TEXT,
               error TEXT,
               model_id TEXT,
               scanned_by TEXT NOT NULL,
               scanned_at TIMESTAMPTZ NOT NULL DEFAULT now(),
               UNIQUE (share_id, rel_path))""",
        "CREATE INDEX files_hash ON files (content_hash)",
        # vector ids are never reused (a sequence), as in the local catalog
        """CREATE TABLE vectors (
               id BIGSERIAL PRIMARY KEY,
               file_id BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
               model_id TEXT NOT NULL,
               start_sample INTEGER NOT NULL,
               embedding vector NOT NULL)""",
        "CREATE INDEX vectors_file ON vectors (file_id)",
        """CREATE TABLE claims (
               share_id TEXT NOT NULL,
               rel_path TEXT NOT NULL,
               machine_id TEXT NOT NULL,
               claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
               PRIMARY KEY (share_id, rel_path))""",
        "CREATE SEQUENCE generation",
    ),
    # tags, sound analysis, duplicate groups, favourites and collections (app.pg_librarian)
    2: MIGRATION_2,
}

_FILE_COLUMNS = ("id, share_id, rel_path, size, mtime_ns, content_hash, duration, sample_rate, "
                 "channels, kind, status, error_code, error, model_id")


class PgSchemaError(SampleScoutError):
    """The database's schema is newer than this app understands, or cannot be created."""


class PgAccessError(SampleScoutError):
    """This database role may not do that (a read-only role asked to write)."""


def _unavailable(exc: BaseException) -> StorageUnavailable:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageUnavailable(f"the shared catalogue cannot be reached ({detail})")


def redacted(address: str) -> str:
    """The address without its password, for messages and cache names."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(address)
    except Exception:  # noqa: BLE001 — a malformed address is shown as its scheme only
        return address.split("://", 1)[0] + "://…"
    info.pop("password", None)
    return "postgresql://{user}@{host}:{port}/{dbname}".format(
        user=info.get("user", ""), host=info.get("host", ""), port=info.get("port", "5432"),
        dbname=info.get("dbname", ""))


class PgCatalog(PgLibrarianMixin):
    """One connection to the shared catalogue, as seen from ``machine_id``. Tags, sounds,
    favourites, collections and duplicates: :class:`app.pg_librarian.PgLibrarianMixin`."""

    def __init__(self, address: str, machine_id: str):
        if psycopg is None:
            raise StorageUnavailable(
                "a postgresql:// catalogue needs the optional packages: "
                "pip install 'samplescout[postgres]'")
        self.address = address
        self.machine_id = machine_id
        self.reconnect_attempts = 0
        self._conn = None
        self._in_tx = False
        self._mappings: dict[str, str] = {}    # local path -> share id
        self._indexed_models: set[str] = set()
        self._connect()

    # -- connection ----------------------------------------------------------

    def _connect(self) -> None:
        try:
            conn = psycopg.connect(self.address, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc
        self._conn = conn
        try:
            self._migrate()
            register_vector(conn)
            conn.execute("SET hnsw.iterative_scan = relaxed_order")
            self._load_mappings()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(exc) from exc

    def reconnect(self, timeout_s: float = RECONNECT_TIMEOUT_S) -> None:
        """Wait for the server (backoff from 0.1 s to 5 s) and open a fresh connection;
        raises StorageUnavailable after ``timeout_s``. The thread that owns this catalog."""
        with contextlib.suppress(Exception):
            self._conn.close()
        self._in_tx = False
        deadline = time.monotonic() + timeout_s
        delay = 0.1
        while True:
            self.reconnect_attempts += 1
            try:
                self._connect()
                return
            except StorageUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(5.0, delay * 2)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    def __enter__(self) -> "PgCatalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _q(self, query, params=()):
        try:
            return self._conn.execute(query, params)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(exc) from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PgAccessError(f"the shared catalogue refuses this role: "
                                f"{str(exc).splitlines()[0]}") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction; nested use joins the outer one."""
        if self._in_tx:
            yield
            return
        self._in_tx = True
        try:
            with self._conn.transaction():
                yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(exc) from exc
        finally:
            self._in_tx = False

    # -- schema ----------------------------------------------------------------

    def _schema_version(self) -> int | None:
        """The database's schema version, None when it has no catalogue yet."""
        if self._conn.execute("SELECT to_regclass('scout_meta')").fetchone()[0] is None:
            return None
        row = self._conn.execute(
            "SELECT value FROM scout_meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        current = self._schema_version()
        if current == SCHEMA_VERSION:
            return        # nothing to write: a read-only role opens the catalogue too
        if current is not None and current > SCHEMA_VERSION:
            raise PgSchemaError(
                f"the shared catalogue has schema version {current}, newer than this version "
                f"of Sample Scout understands ({SCHEMA_VERSION}); update the app on this machine")
        try:
            self._migrate_locked()
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PgSchemaError(
                f"cannot set up the shared catalogue ({str(exc).splitlines()[0]}): its schema "
                "must be created once by a role that may (see the README)") from exc

    def _migrate_locked(self) -> None:
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            self._conn.execute("CREATE TABLE IF NOT EXISTS scout_meta "
                               "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = self._conn.execute(
                "SELECT value FROM scout_meta WHERE key = 'schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise PgSchemaError(
                    f"the shared catalogue has schema version {current}, newer than this version "
                    f"of Sample Scout understands ({SCHEMA_VERSION}); update the app on this machine")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    try:
                        self._conn.execute(statement)
                    except psycopg.errors.InsufficientPrivilege as exc:
                        raise PgSchemaError(
                            f"cannot set up the shared catalogue ({exc}); a database owner must run "
                            "CREATE EXTENSION vector in it first") from exc
                if version == 1:
                    self._conn.execute("INSERT INTO scout_meta VALUES ('catalog_id', %s)",
                                       (uuid.uuid4().hex,))
                self._conn.execute(
                    "INSERT INTO scout_meta VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(version),))

    @property
    def generation(self) -> str:
        catalog_id, = self._q("SELECT value FROM scout_meta WHERE key = 'catalog_id'").fetchone()
        last, called = self._q("SELECT last_value, is_called FROM generation").fetchone()
        return f"{catalog_id}:{last if called else 0}"

    @property
    def cache_stamp(self) -> str:
        """Stamp of everything the local copy holds: the vectors and the librarian's data."""
        return f"{self.generation}/{self.changes}"

    def _bump_generation(self) -> None:
        self._q("SELECT nextval('generation')")

    @staticmethod
    def vector_index_name(model_id: str) -> str:
        return "vectors_hnsw_" + hashlib.sha1(model_id.encode()).hexdigest()[:12]

    def ensure_vector_index(self, model_id: str, dim: int) -> None:
        """The HNSW index of one model's vectors (created once, under a lock)."""
        if model_id in self._indexed_models:
            return
        name = self.vector_index_name(model_id)
        # CREATE INDEX takes a lock that waits for every open write on the table, even when
        # the index exists: look first, so concurrent scans never queue behind each other
        if self._q("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None:
            self._indexed_models.add(model_id)
            return
        with self.transaction():
            self._q("SELECT pg_advisory_xact_lock(%s)", (_INDEX_LOCK,))
            self._q(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON vectors USING hnsw "
                "((embedding::vector({})) vector_cosine_ops) WITH (m = {}, ef_construction = {}) "
                "WHERE model_id = {}").format(
                    sql.Identifier(name), sql.Literal(int(dim)), sql.Literal(HNSW_M),
                    sql.Literal(HNSW_EF_CONSTRUCTION), sql.Literal(model_id)))
        self._indexed_models.add(model_id)

    def facts(self) -> dict:
        """{address (no password), server, pgvector (None: missing), schema, writes,
        reads_stamps}: the server's and pgvector's versions, whether this role may write rows
        and read the sequences that date the local copy."""
        server = self._q("SHOW server_version").fetchone()[0]
        vector = self._q("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        writes = self._q("SELECT has_table_privilege('files', 'INSERT') AND "
                         "has_table_privilege('vectors', 'INSERT') AND "
                         "has_table_privilege('tags', 'INSERT')").fetchone()[0]
        stamps = self._q("SELECT has_sequence_privilege('generation', 'SELECT') AND "
                         "has_sequence_privilege('library_changes', 'SELECT')").fetchone()[0]
        return {"address": redacted(self.address), "server": server,
                "pgvector": vector[0] if vector else None, "schema": SCHEMA_VERSION,
                "writes": bool(writes), "reads_stamps": bool(stamps)}

    def describe(self) -> str:
        """Server and pgvector versions, schema, and whether this role may write rows."""
        f = self.facts()
        return (f"{f['address']}: PostgreSQL {f['server']}, pgvector "
                f"{f['pgvector'] or 'missing'}, schema {f['schema']}, "
                f"{'read-write' if f['writes'] else 'read-only'} role, machine {self.machine_id}"
                + ("" if f["reads_stamps"] else "; the role may not read the catalogue's "
                   "sequences: GRANT SELECT ON ALL SEQUENCES IN SCHEMA public to it"))

    # -- shares and this machine's mappings -------------------------------------

    def _load_mappings(self) -> None:
        self._mappings = dict(self._conn.execute(
            "SELECT local_path, share_id FROM path_mappings WHERE machine_id = %s",
            (self.machine_id,)).fetchall())

    def map_share(self, path: str, share_id: str) -> None:
        """On this machine, the share ``share_id`` is the folder ``path``."""
        path = _norm(path)
        with self.transaction():
            self._q("INSERT INTO roots (share_id, added_by) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING", (share_id, self.machine_id))
            self._q("INSERT INTO path_mappings (machine_id, share_id, local_path) VALUES (%s,%s,%s) "
                    "ON CONFLICT (machine_id, local_path) DO UPDATE SET share_id = excluded.share_id",
                    (self.machine_id, share_id, path))
        self._mappings[path] = share_id

    def add_root(self, path: str) -> None:
        """A library folder of this machine; one that is no mapped share becomes a share of
        its own, named after this machine and the folder."""
        path = _norm(path)
        if self._locate(path) is None:
            self.map_share(path, f"{self.machine_id}:{path}")

    def remove_root(self, path: str) -> int:
        """Forget this machine's folder; the share's files go too when no other machine maps
        it. Returns the files removed."""
        path = _norm(path)
        share = self._mappings.get(path)
        if share is None:
            return 0
        with self.transaction():
            self._q("DELETE FROM path_mappings WHERE machine_id = %s AND local_path = %s",
                    (self.machine_id, path))
            others = self._q("SELECT count(*) FROM path_mappings WHERE share_id = %s",
                             (share,)).fetchone()[0]
            removed = 0
            if not others:
                removed = self._q("SELECT count(*) FROM files WHERE share_id = %s",
                                  (share,)).fetchone()[0]
                self._q("DELETE FROM roots WHERE share_id = %s", (share,))
                if removed:
                    self._bump_generation()
        del self._mappings[path]
        return removed

    def roots(self) -> list[str]:
        return sorted(self._mappings)

    def _locate(self, path: str) -> tuple[str, str] | None:
        """(share id, relative path) of a local path, through the longest mapping."""
        best = None
        for local, share in self._mappings.items():
            if path == local or path.startswith(local.rstrip("/") + "/"):
                if best is None or len(local) > len(best[0]):
                    best = (local, share)
        if best is None:
            return None
        rel = path[len(best[0]):].lstrip("/")
        return best[1], rel

    def _must_locate(self, path: str) -> tuple[str, str]:
        located = self._locate(_norm(path))
        if located is None:
            raise SampleScoutError(f"{path} is inside no library folder of this machine")
        return located

    def _local_path(self, share: str, rel: str) -> str:
        for local, mapped in self._mappings.items():
            if mapped == share:
                return os.path.join(local, rel) if rel else local
        return f"[{share}]/{rel}"

    # -- reading rows -------------------------------------------------------------

    def _row(self, r) -> FileRow:
        return FileRow(r[0], self._local_path(r[1], r[2]), *r[3:])

    def _rows(self, where: str, params=()) -> list[FileRow]:
        return [self._row(r) for r in self._q(f"SELECT {_FILE_COLUMNS} FROM files {where}", params)]

    def files_under(self, root: str) -> dict[str, FileRow]:
        located = self._locate(_norm(root))
        if located is None:
            return {}
        share, rel = located
        if rel:
            prefix = rel.rstrip("/") + "/"
            rows = self._rows("WHERE share_id = %s AND rel_path >= %s AND rel_path < %s",
                              (share, prefix, prefix[:-1] + "0"))
        else:
            rows = self._rows("WHERE share_id = %s", (share,))
        return {row.path: row for row in rows}

    def file_stamps(self, root: str) -> dict[str, FileStamp]:
        """What an unchanged-file check needs of each row inside ``root`` (see
        ``app.catalog.Catalog.file_stamps``)."""
        return {path: FileStamp(row.id, row.size, row.mtime_ns, row.status, row.model_id,
                                row.error_code) for path, row in self.files_under(root).items()}

    def file(self, file_id: int) -> FileRow | None:
        rows = self._rows("WHERE id = %s", (int(file_id),))
        return rows[0] if rows else None

    def file_by_path(self, path: str) -> FileRow | None:
        located = self._locate(_norm(path))
        if located is None:
            return None
        rows = self._rows("WHERE share_id = %s AND rel_path = %s", located)
        return rows[0] if rows else None

    def files_by_id(self, file_ids: Iterable[int]) -> dict[int, FileRow]:
        ids = list(dict.fromkeys(int(i) for i in file_ids))
        return {row.id: row for row in self._rows("WHERE id = ANY(%s)", (ids,))} if ids else {}

    def rows_with_hash(self, content_hash: str) -> list[FileRow]:
        return self._rows("WHERE content_hash = %s ORDER BY id", (content_hash,))

    def known_hashes(self) -> set[str]:
        return {r[0] for r in self._q(
            "SELECT DISTINCT content_hash FROM files WHERE content_hash IS NOT NULL")}

    def skipped(self, limit: int | None = None) -> list[FileRow]:
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        return self._rows("WHERE status = 'skipped' ORDER BY share_id, rel_path" + tail)

    def where(self, row: FileRow) -> str | None:
        """Which machines have this file, for a row whose file is not reachable here."""
        found = self._q(
            "SELECT m.machine_id, m.local_path, f.rel_path FROM files f JOIN path_mappings m "
            "USING (share_id) WHERE f.id = %s AND m.machine_id <> %s ORDER BY m.machine_id",
            (row.id, self.machine_id)).fetchall()
        if not found:
            return None
        return "; ".join(f"on {machine}: {os.path.join(local, rel)}" for machine, local, rel in found)

    def indexed_count(self) -> int:
        return int(self._q("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone()[0])

    def stats(self) -> dict:
        counts = dict(self._q("SELECT status, count(*) FROM files GROUP BY status").fetchall())
        kinds = dict(self._q("SELECT kind, count(*) FROM files WHERE status = 'indexed' "
                             "GROUP BY kind").fetchall())
        reasons = dict(self._q("SELECT error_code, count(*) FROM files WHERE status = 'skipped' "
                               "GROUP BY error_code").fetchall())
        models = dict(self._q("SELECT model_id, count(*) FROM vectors GROUP BY model_id").fetchall())
        duration = self._q("SELECT COALESCE(sum(duration), 0) FROM files "
                           "WHERE status = 'indexed'").fetchone()[0]
        machines = [r[0] for r in self._q("SELECT DISTINCT machine_id FROM path_mappings "
                                          "ORDER BY 1")]
        return {
            "files": sum(counts.values()), "indexed": counts.get("indexed", 0),
            "skipped": counts.get("skipped", 0), "one_shots": kinds.get("one-shot", 0),
            "loops": kinds.get("loop", 0), "skipped_by_reason": reasons,
            "vectors_by_model": models, "total_duration_s": float(duration),
            "roots": self.roots(), "machines": machines, "catalog": redacted(self.address),
        }

    # -- vectors ------------------------------------------------------------------

    def vector_count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return self._q("SELECT count(*) FROM vectors").fetchone()[0]
        return self._q("SELECT count(*) FROM vectors WHERE model_id = %s", (model_id,)).fetchone()[0]

    def files_of_other_models(self, model_id: str) -> dict[str, int]:
        return dict(self._q("SELECT model_id, count(DISTINCT file_id) FROM vectors "
                            "WHERE model_id <> %s GROUP BY model_id ORDER BY model_id",
                            (model_id,)).fetchall())

    def vector_id_summary(self, model_id: str) -> tuple[int, int, int]:
        summary = ID_SUMMARY_SQL.replace("%", "%%")    # psycopg's placeholders
        row = self._q(f"SELECT {summary} FROM vectors WHERE model_id = %s",
                      (model_id,)).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def vector_id_summary_ahead(self, model_id: str) -> Callable[[], tuple[int, int, int]]:
        """``vector_id_summary`` when the returned function is called (the server computes
        it; nothing runs ahead on this client)."""
        return functools.partial(self.vector_id_summary, model_id)

    def vector_ids(self, model_id: str) -> np.ndarray:
        return np.asarray([r[0] for r in self._q(
            "SELECT id FROM vectors WHERE model_id = %s ORDER BY id", (model_id,))], dtype=np.int64)

    def iter_vectors(self, model_id: str, *, dim: int, min_id: int = 0,
                     ids: Iterable[int] | None = None,
                     batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yields (vector_ids, file_ids, vectors) in batches, by ascending id."""
        last = min_id - 1
        wanted = None if ids is None else sorted(int(i) for i in ids)
        while True:
            if wanted is None:
                rows = self._q("SELECT id, file_id, embedding FROM vectors WHERE model_id = %s "
                               "AND id > %s ORDER BY id LIMIT %s", (model_id, last, batch)).fetchall()
            else:
                chunk, wanted = wanted[:batch], wanted[batch:]
                rows = self._q("SELECT id, file_id, embedding FROM vectors WHERE id = ANY(%s) "
                               "AND model_id = %s ORDER BY id", (chunk, model_id)).fetchall() if chunk else []
            if not rows:
                if wanted:
                    continue
                return
            yield (np.asarray([r[0] for r in rows], np.int64), np.asarray([r[1] for r in rows], np.int64),
                   np.stack([_vec(r[2]) for r in rows]).reshape(len(rows), dim))
            last = rows[-1][0]

    def window_starts(self, vector_ids: Iterable[int]) -> dict[int, int]:
        ids = [int(i) for i in vector_ids]
        return dict(self._q("SELECT id, start_sample FROM vectors WHERE id = ANY(%s)",
                            (ids,)).fetchall()) if ids else {}

    def file_vectors(self, file_id: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._q("SELECT id, embedding FROM vectors WHERE file_id = %s ORDER BY id",
                       (int(file_id),)).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return (np.asarray([r[0] for r in rows], np.int64),
                np.stack([_vec(r[1]) for r in rows]))

    def nearest(self, model_id: str, dim: int, query: np.ndarray, n: int,
                ef_search: int) -> list[tuple[int, int, float]]:
        """(vector_id, file_id, cosine distance) of the ``n`` nearest vectors of ``model_id``
        to one query vector, by the model's HNSW index."""
        cast = sql.SQL("::vector({})").format(sql.Literal(int(dim)))
        with self.transaction():
            self._q(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(
                sql.Literal(int(max(ef_search, min(n, 1000))))))
            return self._q(sql.SQL(
                "SELECT id, file_id, (embedding{c}) <=> %s{c} AS d FROM vectors "
                "WHERE model_id = %s ORDER BY (embedding{c}) <=> %s{c} LIMIT %s").format(c=cast),
                (query, model_id, query, int(n))).fetchall()

    # -- writes -------------------------------------------------------------------

    def store(self, analysis: FileAnalysis) -> tuple[int, np.ndarray]:
        """Insert or replace the row of ``analysis.path`` and its vectors; the file's claim
        ends. Returns (file_id, new vector ids)."""
        a = analysis
        share, rel = self._must_locate(a.path)
        if a.vectors is not None and len(a.vectors) and a.model_id:
            self.ensure_vector_index(a.model_id, a.vectors.shape[1])
        with self.transaction():
            file_id, = self._q(
                "INSERT INTO files (share_id, rel_path, size, mtime_ns, content_hash, duration, "
                "sample_rate, channels, kind, status, error_code, error, model_id, scanned_by) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (share_id, rel_path) DO UPDATE SET size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, content_hash = excluded.content_hash, "
                "duration = excluded.duration, sample_rate = excluded.sample_rate, "
                "channels = excluded.channels, kind = excluded.kind, status = excluded.status, "
                "error_code = excluded.error_code, error = excluded.error, "
                "model_id = excluded.model_id, scanned_by = excluded.scanned_by, scanned_at = now() "
                "RETURNING id",
                (share, rel, a.size, a.mtime_ns, a.content_hash, a.duration, a.sample_rate,
                 a.channels, a.kind, a.status, a.error_code, a.error, a.model_id,
                 self.machine_id)).fetchone()
            had = self._q("DELETE FROM vectors WHERE file_id = %s", (file_id,)).rowcount
            ids = self._insert_vectors(file_id, a.model_id, a.start_samples, a.vectors)
            self.set_sound(file_id, a.sound, a.tags)
            self._q("DELETE FROM claims WHERE share_id = %s AND rel_path = %s", (share, rel))
            if len(ids) or had:
                self._bump_generation()
        return file_id, ids

    def _insert_vectors(self, file_id, model_id, start_samples, vectors) -> np.ndarray:
        if vectors is None or len(vectors) == 0:
            return np.zeros(0, np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        try:
            with self._conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO vectors (file_id, model_id, start_sample, embedding) "
                    "VALUES (%s, %s, %s, %s) RETURNING id",
                    [(file_id, model_id, int(s), v) for s, v in zip(start_samples, vectors)],
                    returning=True)
                ids = []
                while True:
                    ids.append(cur.fetchone()[0])
                    if not cur.nextset():
                        break
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(exc) from exc
        return np.asarray(ids, dtype=np.int64)

    def relink(self, file_id: int, path: str, size: int, mtime_ns: int) -> None:
        share, rel = self._must_locate(path)
        with self.transaction():
            self._q("UPDATE files SET share_id = %s, rel_path = %s, size = %s, mtime_ns = %s, "
                    "scanned_by = %s, scanned_at = now() WHERE id = %s",
                    (share, rel, size, mtime_ns, self.machine_id, int(file_id)))
            self._q("DELETE FROM claims WHERE share_id = %s AND rel_path = %s", (share, rel))

    def touch(self, file_id: int, size: int, mtime_ns: int) -> None:
        with self.transaction():
            self._q("UPDATE files SET size = %s, mtime_ns = %s WHERE id = %s",
                    (size, mtime_ns, int(file_id)))

    def copy_file(self, source_id: int, path: str, size: int, mtime_ns: int) -> tuple[int, np.ndarray]:
        source = self.file(source_id)
        _, vectors = self.file_vectors(source_id)
        starts = [r[0] for r in self._q("SELECT start_sample FROM vectors WHERE file_id = %s "
                                        "ORDER BY id", (int(source_id),))]
        sound = self.sounds([source_id]).get(source_id)
        audio_tags = tuple(t for t in self.tag_rows([source_id]).get(source_id, ())
                           if t.source == "audio")
        return self.store(FileAnalysis(
            path=path, size=size, mtime_ns=mtime_ns, content_hash=source.content_hash,
            status=source.status, duration=source.duration, sample_rate=source.sample_rate,
            channels=source.channels, kind=source.kind, error_code=source.error_code,
            error=source.error, model_id=source.model_id, start_samples=tuple(starts),
            vectors=vectors if len(starts) else None, sound=sound, tags=audio_tags))

    def delete_files(self, file_ids: Iterable[int]) -> None:
        ids = [int(i) for i in file_ids]
        if not ids:
            return
        with self.transaction():
            removed = self._q("DELETE FROM vectors WHERE file_id = ANY(%s)", (ids,)).rowcount
            self._q("DELETE FROM files WHERE id = ANY(%s)", (ids,))
            if removed:
                self._bump_generation()

    # -- claims -------------------------------------------------------------------

    def claim(self, paths: Iterable[str]) -> dict[str, str]:
        """Claim these local files for analysis by this machine. Returns the ones another
        machine holds a live claim on: {path: that machine}."""
        located = {}
        for path in paths:
            where = self._locate(_norm(path))
            if where is not None:
                located[where] = path
        if not located:
            return {}
        keys = sorted(located)   # one lock order for every machine: no deadlock between two
        with self.transaction():
            held = self._q(
                "INSERT INTO claims (share_id, rel_path, machine_id) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) "
                "ON CONFLICT (share_id, rel_path) DO UPDATE SET machine_id = excluded.machine_id, "
                "claimed_at = now() WHERE claims.machine_id = excluded.machine_id "
                f"OR claims.claimed_at < now() - interval '{int(CLAIM_TIMEOUT_S)} seconds' "
                "RETURNING share_id, rel_path",
                ([k[0] for k in keys], [k[1] for k in keys], [self.machine_id] * len(keys))).fetchall()
            won = {tuple(r) for r in held}
            lost = [k for k in keys if k not in won]
            holders = dict(((s, r), m) for s, r, m in self._q(
                "SELECT share_id, rel_path, machine_id FROM claims WHERE (share_id, rel_path) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                ([k[0] for k in lost], [k[1] for k in lost])).fetchall()) if lost else {}
        return {located[k]: holders.get(k, "another machine") for k in lost}

    def release_claims(self) -> None:
        """End every claim of this machine (its scan is over)."""
        self._q("DELETE FROM claims WHERE machine_id = %s", (self.machine_id,))

    # -- export for the local cache -------------------------------------------------

    def export(self, model_id: str) -> Iterator[FileAnalysis]:
        """Every row with its vectors of ``model_id``, its sound analysis and its audio and
        name tags, as this machine sees the paths (the user's tags: ``export_user_tags``)."""
        rows = self._rows("ORDER BY id")
        for start in range(0, len(rows), 512):
            chunk = rows[start:start + 512]
            ids = [r.id for r in chunk]
            sounds, tags = self.sounds(ids), self.tag_rows(ids)
            vectors: dict[int, list] = {}
            for file_id, begin, embedding in self._q(
                    "SELECT file_id, start_sample, embedding FROM vectors WHERE file_id = ANY(%s) "
                    "AND model_id = %s ORDER BY id", ([r.id for r in chunk], model_id)):
                vectors.setdefault(file_id, []).append((begin, _vec(embedding)))
            for r in chunk:
                own = vectors.get(r.id, [])
                yield FileAnalysis(
                    path=r.path, size=r.size, mtime_ns=r.mtime_ns, content_hash=r.content_hash,
                    status=r.status if own or r.status != "indexed" else "skipped",
                    duration=r.duration, sample_rate=r.sample_rate, channels=r.channels,
                    kind=r.kind, error_code=r.error_code if own or r.status != "indexed"
                    else "other_model", error=r.error, model_id=r.model_id,
                    start_samples=tuple(b for b, _ in own),
                    vectors=np.stack([v for _, v in own]) if own else None,
                    sound=sounds.get(r.id),
                    tags=tuple(t for t in tags.get(r.id, ()) if t.source != "user"))

    def export_user_tags(self) -> Iterator[tuple[str, str, bool]]:
        """Every user's word on a tag: (path as this machine sees it, tag, removed)."""
        rows = self._rows("WHERE id IN (SELECT file_id FROM tags WHERE source = 'user')")
        paths = {r.id: r.path for r in rows}
        for file_id, words in self.user_tags(paths).items():
            for tag, removed in words:
                yield paths[file_id], tag, removed


class PgVectorIndex:
    """Nearest-neighbour search by pgvector's HNSW index, with the same answers' shape as
    ``app.index.VectorIndex`` (best vector per file, score = 1 - cosine distance).

    The vectors are the catalog's own rows, so ``add``/``remove_files`` have nothing to do
    and there is nothing to save. ``search``: any thread (one connection, serialised)."""

    def __init__(self, catalog: PgCatalog, model_id: str, dim: int):
        self.catalog = catalog
        self.model_id = model_id
        self.dim = int(dim)
        self.ef_search = HNSW_EF_SEARCH
        self.generation = ""
        self._lock = threading.Lock()   # one query at a time on the shared connection

    def __len__(self) -> int:
        return self.catalog.vector_count(self.model_id)

    def add(self, vector_ids, file_ids, vectors) -> None:
        """Nothing to do: the catalog stored the vectors."""

    def remove_files(self, file_ids) -> int:
        """Nothing to do: the catalog deleted the vectors."""
        return 0

    def needs_rebuild(self, threshold: float = 0.2) -> bool:
        return False

    def search(self, query: np.ndarray, k: int = 10, *,
               exclude_file_ids: Iterable[int] = ()) -> list[Hit]:
        q = np.asarray(query, dtype=np.float32)
        if q.ndim == 1:
            q = q.reshape(1, -1)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"query must have shape ({self.dim},) or (m, {self.dim}), got {np.shape(query)}")
        q = q[np.einsum("ij,ij->i", q, q) > 0.0]
        if k <= 0 or len(q) == 0:
            return []
        excluded = {int(f) for f in exclude_file_ids}
        n_ask = k * 4 + 16
        live = None
        while True:
            best: dict[int, tuple[float, int]] = {}
            answered = 0
            for row in q:
                with self._lock:
                    found = self.catalog.nearest(self.model_id, self.dim, row, n_ask, self.ef_search)
                answered = max(answered, len(found))
                for vector_id, file_id, distance in found:
                    if file_id in excluded:
                        continue
                    score = min(1.0, 1.0 - float(distance))
                    if file_id not in best or score > best[file_id][0]:
                        best[file_id] = (score, vector_id)
            if len(best) >= k or answered < n_ask:
                break
            live = len(self) if live is None else live
            if n_ask >= live:
                break
            n_ask = min(live, n_ask * 2)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        return [Hit(file_id=f, score=s, vector_id=v) for f, (s, v) in ranked]


def _vec(value) -> np.ndarray:
    """A pgvector value as float32 (the adapter answers ``Vector`` objects)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, np.float32)


def _norm(path: str) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def has_password(address: str) -> bool:
    """Does this address carry a password (never to be stored)?"""
    if psycopg is None:
        return "@" in address and ":" in address.split("://", 1)[-1].split("@", 1)[0]
    try:
        return bool(psycopg.conninfo.conninfo_to_dict(address).get("password"))
    except Exception:  # noqa: BLE001 — unparsable: treat as secret
        return True
