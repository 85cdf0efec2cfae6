"""A sample library: its catalog, its vector index and the encoder that fills them.

``Library`` ties the three together: it opens (and repairs or rebuilds) the
index from the catalog, saves it with the catalog's generation stamp, and
answers searches by example.

It is the one writer of both: ``store``, ``store_copy``, ``touch``, ``relink``,
``remove``, ``relink_folder`` and ``remove_folder`` change the catalog and the index
together, so no caller can leave one behind the other (``record_duplicate_check`` and ``forget_duplicate_pairs``
write the catalog's duplicate pairs). Readers elsewhere (the live matcher) get a
``Searcher`` from ``searcher()``: the index and a read-only view of the catalog.

The storage behind it (``app.storage``) is local by default: a SQLite catalog and an
hnswlib index in the library dir. A ``postgresql://`` catalog address (the ``catalog``
argument, ``$SAMPLESCOUT_CATALOG`` or the address remembered in the library dir) puts the
catalog and the vectors in a shared PostgreSQL + pgvector database (``app.pg_store``);
the search above it is the same. When that server cannot be reached, the library opens
its local read-only copy (``app.shared_cache``) and says so in ``stale_note``.

Threads: a ``Library`` belongs to the thread that opened it (it holds a catalog
connection); a ``Searcher`` may be used from any thread (one catalog connection per
thread); ``VectorIndex.search`` itself may be called from any thread.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from app.catalog import Catalog, CatalogError, FileAnalysis, FileRow, SoundInfo, TagRow
from app.machine import machine_id
from app.decode import read_mono
from app.compact_vectors import FIT_ROWS, Projection
from app.index import (
    DEFAULT_EF_CONSTRUCTION, DEFAULT_M, FORMAT_VERSION as INDEX_FORMAT_VERSION, IndexFormatError,
    VectorIndex, compact_for, ef_search_for,
)
from app.paths import CATALOG_FILENAME, INDEX_FILENAME, LOCK_FILENAME, library_dir
from app.similar_kind import QueryKind
from app.query import (FILE_RERANK_DEPTH, MAX_QUERY_SECONDS, Query, SearchFilter, SearchResult, describe,
                       embed_query, search)
from app.rerank import CACHE_BLOCKS, FileReranker
from app.shared_cache import cache_dir_for, read_state, write_cache
from app.vector_files import id_summary
from app.storage import StorageUnavailable, is_shared_address
from app.thesaurus import name_conflict, name_tags, normalise
from models.encoder import MODEL_SAMPLE_RATE, Encoder
from engine.errors import SampleScoutError

__all__ = ["Library", "LibraryBusyError", "LibraryError", "EmptyLibraryError", "Searcher", "SearchFilter",
           "SearchResult", "MAX_QUERY_SECONDS"]

# Share of sampled vectors that must find themselves in a fresh index before it is accepted
# without trying a denser graph.
SELF_RECALL_FLOOR = 0.99

CATALOG_ENV = "SAMPLESCOUT_CATALOG"
CATALOG_ADDRESS_FILENAME = "catalog-address"
LOCAL = "local"


def catalog_address(directory: Path, override: str | None = None) -> str | None:
    """The catalogue this library dir uses: ``override`` ('local' for the SQLite one),
    else $SAMPLESCOUT_CATALOG, else the address remembered in the dir; None: local."""
    for address in (override, os.environ.get(CATALOG_ENV)):
        if address:
            return None if address == LOCAL else address
    return remembered_catalog_address(directory)


def remembered_catalog_address(directory: Path) -> str | None:
    """The address remembered in the library dir (None: the local catalog). Any thread."""
    try:
        remembered = (Path(directory) / CATALOG_ADDRESS_FILENAME).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return remembered or None


def remember_catalog_address(directory: Path, address: str) -> None:
    """Make ``address`` this library dir's catalogue ('local' goes back to SQLite). An
    address holding a password is refused: keep passwords in ~/.pgpass or a service file."""
    path = Path(directory) / CATALOG_ADDRESS_FILENAME
    if address == LOCAL:
        path.unlink(missing_ok=True)
        return
    if not is_shared_address(address):
        raise LibraryError(f"unknown catalogue {address!r}: give postgresql://… or 'local'")
    from app.pg_store import has_password
    if has_password(address):
        raise LibraryError("the catalogue address holds a password, which is never stored: "
                           "put it in ~/.pgpass (or a pg_service.conf entry) instead")
    path.write_text(address + "\n", encoding="utf-8")


class LibraryError(SampleScoutError):
    """A one-line, user-facing problem with the library (empty, unreadable query...)."""


class EmptyLibraryError(LibraryError):
    """The library holds no vectors yet: no query can find anything."""


class LibraryBusyError(LibraryError):
    """Another process is updating this library (it holds the writer lock)."""


class Library:
    """Catalog + index + encoder of one library dir (see module docstring on threads)."""

    def __init__(self, directory: str | os.PathLike | None = None, *,
                 model_path: str | os.PathLike | None = None, encoder: Encoder | None = None,
                 catalog: str | None = None, rerank_cache_blocks: int = CACHE_BLOCKS):
        self.directory = library_dir(directory)
        self.address = catalog_address(self.directory, catalog)
        if self.address and not is_shared_address(self.address):
            raise LibraryError(f"unknown catalogue {self.address!r}: give postgresql://… or 'local'")
        self.shared = self.address is not None   # a shared catalogue (maybe offline)
        self.offline = False                     # ...searched through its local copy
        self.stale_note = ""
        self._store_dir = self.directory         # where the SQLite catalog and index live
        self.encoder = encoder or Encoder(model_path, threads=1)
        if self.shared:
            self.catalog = self._open_shared()
        else:
            self.catalog = Catalog(self.directory / CATALOG_FILENAME)
        self.model_path = model_path
        self._index: VectorIndex | None = None
        self.index_note = ""  # how the index was obtained, for `doctor` and the status bar
        self.index_self_recall: float | None = None  # measured by the last rebuild_index
        self._reranker: FileReranker | None | bool = False   # False: not loaded yet
        self._query_kind: QueryKind | None = None
        self._rerank_cache_blocks = int(rerank_cache_blocks)   # blocks its re-ranker keeps
        self._lock_fd: int | None = None  # the writer lock, while this Library holds it
        self.problems: list[str] = []  # found while opening the index, for the user
        self._sound_model_id: str | None = None

    def _open_shared(self):
        from app.pg_store import PgCatalog, redacted
        self.address_label = redacted(self.address)
        self._cache = cache_dir_for(self.directory, self.address_label)
        try:
            return PgCatalog(self.address, machine_id(self.directory))
        except StorageUnavailable as exc:
            state = read_state(self._cache)
            if state is None:
                raise StorageUnavailable(f"{exc}; this machine has no local copy of it yet") from exc
            self.offline = True
            self._store_dir = self._cache
            saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(state["saved_at"]))
            self.stale_note = (f"{exc}: searching this machine's read-only copy from {saved} "
                               "(stale; changes made since then are not in it)")
            return Catalog(self._cache / CATALOG_FILENAME)

    @property
    def index_path(self) -> Path:
        return self._store_dir / INDEX_FILENAME

    @property
    def live_shared(self) -> bool:
        """True when the catalogue is a reachable shared server."""
        return self.shared and not self.offline

    def check_writable(self) -> None:
        """Raise LibraryError when this library cannot be written (an offline copy)."""
        if self.offline:
            raise LibraryError(f"{self.stale_note.split(': searching')[0]}: nothing can be "
                               "added or removed until it is back")

    def map_share(self, path: str | os.PathLike, share: str) -> None:
        """On this machine, the shared catalogue's share ``share`` is the folder ``path``."""
        if not self.live_shared:
            raise LibraryError("shares name folders of a shared catalogue: give "
                               "--catalog postgresql://… as well")
        self.catalog.map_share(os.fspath(path), share)

    def claim(self, paths: Iterable[str]) -> dict[str, str]:
        """Claim files for analysis here; returns those another machine is analysing
        ({path: machine}). Local libraries have no one to share with: {}."""
        return self.catalog.claim(paths) if self.live_shared else {}

    def release_claims(self) -> None:
        if self.live_shared:
            self.catalog.release_claims()

    def reconnect(self) -> None:
        """After StorageUnavailable: wait (with backoff) for the shared server to return."""
        if not self.live_shared:
            raise LibraryError("only a shared catalogue reconnects")
        self.catalog.reconnect()

    def sync_cache(self) -> bool:
        """Bring the local read-only copy of a shared catalogue up to date; True when it was
        rewritten. Thread: the owner's."""
        if not self.live_shared:
            return False
        generation = self.catalog.cache_stamp   # vectors, tags and sounds
        state = read_state(self._cache)
        if state is not None and state.get("generation") == generation:
            return False

        def build_index(folder: Path) -> None:
            with Library(folder, encoder=self.encoder, catalog=LOCAL) as copy:
                copy.index  # builds and saves the hnswlib index of the copy
        write_cache(self._cache, self.catalog, self.encoder.model_id, generation,
                    self.address_label, build_index)
        return True

    def close(self) -> None:
        self._release_writer_lock()
        self.catalog.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one writer ----------------------------------------------------------

    @contextlib.contextmanager
    def writer_lock(self, wait_s: float = 0.0) -> Iterator[None]:
        """Hold the library's writer lock (an advisory ``flock`` on a file in the library
        dir) for a scan or a removal; raises LibraryBusyError when another holder (another
        process, or another ``Library`` of this one, such as the folder watcher's) keeps it
        for longer than ``wait_s`` (0: at once). Re-entrant within this Library. On taking
        it, temporary files left by an interrupted index save are removed. Thread: the
        Library's."""
        if self._lock_fd is not None:
            yield
            return
        deadline = time.monotonic() + wait_s
        while not self._try_writer_lock():
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if self._lock_fd is None:
            raise LibraryBusyError(
                f"another Sample Scout process{self._lock_holder()} is updating the library in "
                f"{self.directory}; wait for it to finish (or stop it), then run this again")
        try:
            yield
        finally:
            self._release_writer_lock()

    def _try_writer_lock(self) -> bool:
        fd = os.open(self.directory / LOCK_FILENAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self._lock_fd = fd
        with contextlib.suppress(OSError):  # who holds it, for the message; best effort
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._remove_stale_temp_files()
        return True

    def _release_writer_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def _lock_holder(self) -> str:
        try:
            pid = (self.directory / LOCK_FILENAME).read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def _remove_stale_temp_files(self) -> None:
        """Only the lock holder saves the index, so any temp file of a save is stale."""
        for leftover in self.directory.glob(f".{INDEX_FILENAME}.*tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()

    # -- index lifecycle -----------------------------------------------------

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = self._open_index()
            if not self.live_shared:   # pgvector's breadth is its own (app.pg_store)
                self._index.ef_search = ef_search_for(len(self._index))
        return self._index

    def _open_index(self) -> VectorIndex:
        model_id, dim = self.encoder.model_id, self.encoder.dim
        if self.live_shared:
            from app.pg_store import PgVectorIndex
            self.index_note = "pgvector HNSW on the shared catalogue"
            return PgVectorIndex(self.catalog, model_id, dim)
        # the catalog's id summary runs beside the load: the repair check below needs it
        catalog_summary = self.catalog.vector_id_summary_ahead(model_id)
        try:
            index = VectorIndex.load(self.index_path, dim=dim, model_id=model_id)
        except FileNotFoundError:
            self.index_note = "built from the catalog (no index file yet)"
            return self.rebuild_index(save=self.catalog.vector_count(model_id) > 0)
        except IndexFormatError as exc:
            self.index_note = f"rebuilt from the catalog ({exc})"
            return self.rebuild_index()
        # The stamp alone can be fooled (two writers, a save racing a commit): compare the
        # vector ids too; this also repairs an index whose stamp matches but whose ids do not.
        repaired = self._repair(index, catalog_summary)
        if repaired == 0 and index.generation == self.catalog.generation:
            self.index_note = "loaded"
            if index.compact and index.needs_resave:
                # an older compact file: format 2 has no sketch (it was made while loading),
                # format 3 keeps hnswlib's slow-loading graph stream, a format 4 file without
                # the sketch's CRC reads its sketch at load; save it as current
                self.index_note = (
                    f"loaded (format {index.saved_format}, saved again as {INDEX_FORMAT_VERSION})"
                    if index.saved_format < INDEX_FORMAT_VERSION
                    else "loaded (saved again with its sketch's own checksum)")
                self._index = index
                self.save_index()
            return index
        self.index_note = f"repaired from the catalog ({repaired} vectors changed since it was saved)"
        if index.needs_rebuild():
            return self.rebuild_index()
        self._index = index
        self.save_index()
        return index

    def _repair(self, index: VectorIndex, catalog_summary: Callable[[], tuple[int, int, int]]) -> int:
        """Bring an index saved at an older catalog state up to date. ``catalog_summary``
        gives the catalog's id summary (started beside the load: ``vector_id_summary_ahead``).

        Vector ids are never reused, so the difference of id sets says exactly
        what to drop and what to add.
        """
        model_id, dim = self.encoder.model_id, self.encoder.dim
        index_ids, index_files = index.live_vectors()
        if id_summary(index_ids) == catalog_summary():
            return 0     # the same ids (app.vector_files: a summary instead of every id)
        # sorted id arrays, compared in numpy: a million-vector library repairs in a second
        catalog_ids = self.catalog.vector_ids(model_id)      # ascending primary keys
        if len(catalog_ids) > 1 and not bool(np.all(catalog_ids[1:] > catalog_ids[:-1])):
            catalog_ids = np.unique(catalog_ids)
        gone = ~np.isin(index_ids, catalog_ids, assume_unique=True)
        stale_files = set(index_files[gone].tolist())
        index.remove_files(stale_files)
        wanted = set(np.setdiff1d(catalog_ids, index_ids, assume_unique=True).tolist())
        for file_id in stale_files:
            wanted.update(self.catalog.file_vectors(file_id)[0].tolist())
        bad: list[tuple[int, int]] = []
        for ids, file_ids, vectors in self.catalog.iter_vectors(model_id, dim=dim, ids=wanted,
                                                                bad=bad):
            index.add(ids, file_ids, vectors)
        self._set_aside(bad)
        return len(wanted) + len(stale_files)

    def rebuild_index(self, *, save: bool = True, M: int = DEFAULT_M,
                      ef_construction: int = DEFAULT_EF_CONSTRUCTION) -> VectorIndex:
        """A fresh index from every vector of the current model in the catalog.

        A shared catalogue's index lives on its server: nothing to build here.
        HNSW can leave some vectors unreachable by any query; when the self-recall of the new
        graph is below SELF_RECALL_FLOOR it is built once more with doubled M and
        ef_construction, and the better of the two is kept. The figure lands in
        ``index_self_recall``.
        """
        if self.live_shared:
            return self.index
        index = self._build_index(M, ef_construction)
        recall = index.self_recall()
        if recall < SELF_RECALL_FLOOR:
            denser = self._build_index(2 * M, 2 * ef_construction)
            denser_recall = denser.self_recall()
            if denser_recall > recall:
                index, recall = denser, denser_recall
        self.index_self_recall = recall
        self._index = index
        if save:
            self.save_index()
        return index

    def _build_index(self, M: int, ef_construction: int) -> VectorIndex:
        model_id, dim = self.encoder.model_id, self.encoder.dim
        count = self.catalog.vector_count(model_id)
        projection = self._fit_projection(model_id, dim) if compact_for(count, dim) else None
        index = VectorIndex(dim, model_id, capacity=max(1024, count), ef_search=ef_search_for(count),
                            M=M, ef_construction=ef_construction, projection=projection)
        bad: list[tuple[int, int]] = []
        for ids, file_ids, vectors in self.catalog.iter_vectors(model_id, dim=dim, bad=bad):
            index.add(ids, file_ids, vectors)
        self._set_aside(bad)
        return index

    def _fit_projection(self, model_id: str, dim: int) -> Projection:
        """The compact graph's projection, fitted on up to FIT_ROWS vectors of the catalog
        drawn at random (damaged rows are left out here and set aside by the build)."""
        ids = self.catalog.vector_ids(model_id)
        if len(ids) > FIT_ROWS:
            ids = np.random.default_rng(0).choice(ids, size=FIT_ROWS, replace=False)
        rows = [vectors for _, _, vectors in self.catalog.iter_vectors(model_id, dim=dim, ids=ids)]
        return Projection.fit(np.concatenate(rows))

    def _set_aside(self, bad: list[tuple[int, int]]) -> None:
        """Damaged vector rows (NaN, wrong length) never block the index: they are left
        out, dropped from the catalog and their files re-analysed by the next scan."""
        if not bad:
            return
        files = len({file_id for _, file_id in bad})
        try:
            self.catalog.mark_for_reanalysis(bad)
            what = f"their {files} files are re-analysed by the next scan"
        except (CatalogError, sqlite3.Error) as exc:
            what = f"their {files} files could not be marked for re-analysis ({exc})"
        self.problems.append(f"{len(bad)} damaged vectors in the catalog were skipped; {what}")

    def save_index(self) -> bool:
        """Write the index beside the catalog. Only the holder of the writer lock writes:
        when another process holds it, nothing is saved (that process saves its own) and
        False is returned. A read-only command that cannot write (full disk, read-only
        folder) keeps its repaired index in memory: also False."""
        if self.live_shared:  # a shared catalogue: refresh the local copy instead
            self.sync_cache()
            return True
        holds = self._lock_fd is not None
        if not holds:
            try:
                if not self._try_writer_lock():
                    return False
            except OSError:  # no lock file can be made here (read-only folder)
                return False
        try:
            index = self.index
            damage = index.exact_rows_damage(wait=True)
            if damage is not None:
                self.problems.append(f"{damage}; rebuilt from the catalog")
            if index.needs_rebuild() or damage is not None:
                index = self.rebuild_index(save=False)
            index.generation = self.catalog.generation
            index.ef_search = ef_search_for(len(index))
            try:
                index.save(self.index_path)
            except OSError as exc:
                if holds:
                    raise  # a scan must say so
                self.problems.append(f"the repaired index could not be saved ({exc.strerror}); "
                                     "it is repaired again on the next start")
                return False
            return True
        finally:
            if not holds:
                self._release_writer_lock()

    # -- writes: catalog and index together ----------------------------------

    def store(self, analysis: FileAnalysis) -> int:
        """Store one file's analysis (replacing what its path held before); its vectors
        join the index when it was indexed. Returns the file id."""
        self.check_writable()
        index = self.index
        with self.catalog.transaction():
            previous = self.catalog.file_by_path(analysis.path)
            if previous is not None:
                index.remove_files([previous.id])
            file_id, vector_ids = self.catalog.store(analysis)
        if analysis.status == "indexed":
            index.add(vector_ids, [file_id] * len(vector_ids), analysis.vectors)
        return file_id

    def store_copy(self, source: FileRow, path: str, size: int, mtime_ns: int) -> int:
        """A file with the same content as ``source``: a new row sharing its analysis
        (replacing what ``path`` held before). Returns the file id."""
        self.check_writable()
        index = self.index
        with self.catalog.transaction():
            previous = self.catalog.file_by_path(path)
            if previous is not None:
                index.remove_files([previous.id])
            file_id, vector_ids = self.catalog.copy_file(source.id, path, size, mtime_ns)
            self._rename_tags(file_id, path)
            if source.status == "indexed":
                _, vectors = self.catalog.file_vectors(file_id)
                index.add(vector_ids, [file_id] * len(vector_ids), vectors)
        return file_id

    def touch(self, file_id: int, size: int, mtime_ns: int) -> None:
        """Same content, new stat: the vectors stay."""
        self.check_writable()
        self.catalog.touch(file_id, size, mtime_ns)

    def relink(self, file_id: int, path: str, size: int, mtime_ns: int) -> None:
        """A catalogued file was moved to ``path``: it keeps its row and vectors; a row
        that ``path`` held before (other content) leaves the catalog and the index."""
        self.check_writable()
        with self.catalog.transaction():
            previous = self.catalog.file_by_path(path)
            if previous is not None and previous.id != file_id:
                self.remove([previous.id])
            self.catalog.relink(file_id, path, size, mtime_ns)
            self._rename_tags(file_id, path)

    def _rename_tags(self, file_id: int, path: str) -> None:
        """A file under a new name keeps its audio tags and the user's; its name speaks anew."""
        names = name_tags(path)
        self.catalog.set_sound(file_id, None, names, replace_sources=("name",))
        audio = [t for t in self.catalog.tag_rows([file_id]).get(file_id, ()) if t.source == "audio"]
        self.catalog.set_name_conflict(file_id, name_conflict(names, tuple(audio)))

    def store_sound(self, file_id: int, kind: str | None, sound: SoundInfo,
                    tags: Iterable[TagRow]) -> None:
        """A catalogued file's sound analysis (back-fill): its kind, tempo, key, root and
        audio / name tags; its vectors and the user's tags stay."""
        with self.catalog.transaction():
            if kind is not None:
                self.catalog.set_kind(file_id, kind)
            self.catalog.set_sound(file_id, sound, tags)

    def add_tag(self, path: str | os.PathLike, tag: str) -> str:
        """The user tags a catalogued file (any synonym, normalised); it stays through
        rescans, moves and new models. Returns the canonical tag."""
        return self._user_tag(path, tag, removed=False)

    def remove_tag(self, path: str | os.PathLike, tag: str) -> str:
        """The user removes a tag (whatever found it); the removal stays like an addition."""
        return self._user_tag(path, tag, removed=True)

    def _user_tag(self, path, tag: str, *, removed: bool) -> str:
        canonical = normalise(tag)
        row = self.file_row(path)
        self.catalog.set_user_tag(row.id, canonical, removed=removed)
        return canonical

    def file_row(self, path: str | os.PathLike) -> FileRow:
        """The catalog row of a file given by path; raises LibraryError when not catalogued."""
        absolute = os.path.abspath(os.path.expanduser(os.fspath(path)))
        row = self.catalog.file_by_path(absolute)
        if row is None:
            real = os.path.realpath(absolute)
            row = self.catalog.file_by_path(real) if real != absolute else None
        if row is None:
            raise LibraryError(f"{path}: not in the library (add its folder with `samplescout index`)")
        return row

    def describe(self, path: str | os.PathLike) -> dict:
        """Everything known about a catalogued file (``app.query.describe``); raises
        LibraryError when it is not in the library."""
        row = self.file_row(path)
        tags = self.catalog.tags([row.id]).get(row.id, [])
        standing = {t.tag for t in tags}
        found = [t for t in self.catalog.tag_rows([row.id]).get(row.id, []) if t.tag in standing]
        return describe(row, self.catalog.sounds([row.id]).get(row.id), tags, found)

    @property
    def sound_model_id(self) -> str:
        """Id of the sound analysis a scan does now (tag head + detectors present)."""
        if self._sound_model_id is None:
            from app.sound_analysis import SoundAnalyser
            self._sound_model_id = SoundAnalyser(self.encoder.model_id).model_id
        return self._sound_model_id

    def remove(self, file_ids: Iterable[int]) -> int:
        """Forget these files: their rows and their vectors. Returns how many."""
        ids = [int(i) for i in file_ids]
        if ids:
            self.check_writable()
            self.index.remove_files(ids)
            self.catalog.delete_files(ids)
        return len(ids)

    def record_duplicate_check(self, file_id: int, content_hash: str, pcm_hash: str | None,
                               pairs) -> None:
        """One file checked for duplicates (``app.duplicates``): its pairs are stored. The
        index does not change."""
        self.catalog.record_duplicate_check(file_id, content_hash, pcm_hash, pairs)

    def forget_duplicate_pairs(self, file_ids: Iterable[int]) -> None:
        """Files about to be checked again lose the pairs they had."""
        self.catalog.forget_duplicate_pairs(file_ids)

    def relink_folder(self, old: str | os.PathLike, new: str | os.PathLike) -> int:
        """The library folder ``old`` is now at ``new`` (moved, renamed, its drive mounted
        elsewhere): every file row under it moves with it, keeping its id, vectors, tags,
        favourites and collections; nothing is analysed again and the index stays as it is.
        Rows a scan had already made under ``new`` give way to the relinked ones. Returns
        the files relinked. Local catalogue only (a shared one names folders by share).
        Thread: the Library's."""
        self.check_writable()
        if self.shared:
            raise LibraryError("a shared catalogue knows folders by share name: "
                               "`samplescout index FOLDER --share NAME` on this machine")
        old = os.path.abspath(os.path.expanduser(os.fspath(old)))
        new = os.path.abspath(os.path.expanduser(os.fspath(new)))
        if self.catalog.root_row(old) is None:
            known = ", ".join(self.catalog.roots()) or "none"
            raise LibraryError(f"{old} is not a library folder (the library's folders: {known})")
        if not os.path.isdir(new):
            raise LibraryError(f"folder not found: {new}")
        if old == new or new.startswith(old.rstrip("/") + "/") or old.startswith(new.rstrip("/") + "/"):
            raise LibraryError(f"{new} and {old} overlap: give the folder's new place")
        with self.writer_lock():
            with self.catalog.transaction():
                taken = [row.id for row in self.catalog.files_under(new).values()]
                self.remove(taken)
                moved = self.catalog.relink_root(old, new)
            if taken:
                self.save_index()
        return moved

    def remove_folder(self, root: str | os.PathLike) -> int:
        """Forget a library folder and every file under it, and save the index. Returns
        the files removed."""
        self.check_writable()
        root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        self.index.remove_files(row.id for row in self.catalog.files_under(root).values())
        removed = self.catalog.remove_root(root)
        self.save_index()
        return removed

    # -- search ----------------------------------------------------------------

    def searcher(self, index: VectorIndex | None = None) -> "Searcher":
        """A read-only searcher over this library's index as loaded now (or over ``index``,
        one built from this catalog), for any thread."""
        if self.live_shared:
            from app.pg_store import PgCatalog, PgVectorIndex
            address, machine = self.address, self.catalog.machine_id

            def open_catalog():
                return PgCatalog(address, machine)
            if index is None:
                index = PgVectorIndex(open_catalog(), self.encoder.model_id, self.encoder.dim)
        else:
            path = self._store_dir / CATALOG_FILENAME

            def open_catalog():
                catalog = Catalog(path)
                catalog.set_read_only()
                return catalog
        return Searcher(self.directory, self.index if index is None else index, self.encoder,
                        self.reranker, open_catalog=open_catalog, query_kind=self.query_kind)

    @property
    def reranker(self) -> FileReranker | None:
        """The search's second stage (loaded on first use); None when the shipped re-ranker
        does not belong to this library's encoder."""
        if self._reranker is False:
            self._reranker = FileReranker.for_encoder(self.encoder, cache_blocks=self._rerank_cache_blocks)
        return self._reranker

    @property
    def query_kind(self) -> QueryKind:
        """The tag head for queries (``app.similar_kind``), loaded on its first query."""
        if self._query_kind is None:
            self._query_kind = QueryKind(self.encoder.model_id)
        return self._query_kind

    def search_vectors(self, query: Query | np.ndarray, k: int = 10, *,
                       filter: SearchFilter | None = None,
                       rerank_depth: int | None = None,
                       unranked: Callable[[list[SearchResult]], None] | None = None,
                       by_kind: bool = False,
                       ) -> list[SearchResult]:
        """Rank library files against ``query`` (or bare window vectors (m, dim), which skip
        the re-ranker: it needs the windows' audio); ``rerank_depth`` and ``unranked`` as
        ``app.query.search``; ``by_kind``: the answers after the first are the same kind of
        sound as the query (``app.similar_kind``; needs the query's audio)."""
        kind_of = self.query_kind.of(query) if by_kind else None
        return search(self.index, self.catalog, query, k, reranker=self.reranker, filter=filter,
                      rerank_depth=rerank_depth, unranked=unranked, kind_of=kind_of)

    def embed_file(self, path: str | os.PathLike) -> Query:
        """Query windows of an audio file; raises DecodeError or LibraryError."""
        audio = read_mono(path, MODEL_SAMPLE_RATE, max_seconds=MAX_QUERY_SECONDS)
        query = embed_query(self.encoder, audio)
        if len(query) == 0:
            raise LibraryError(f"{path}: the query is silent, nothing to search for")
        return query

    def search_file(self, path: str | os.PathLike, k: int = 10, *,
                    filter: SearchFilter | None = None,
                    rerank_depth: int | None = None,
                    unranked: Callable[[list[SearchResult]], None] | None = None,
                    by_kind: bool = True,
                    ) -> list[SearchResult]:
        """Search by example with an audio file: the closest file first, then (``by_kind``)
        the most similar files of the same kind; see ``search_vectors``."""
        if self.catalog.vector_count(self.encoder.model_id) == 0:
            others = self.catalog.files_of_other_models(self.encoder.model_id)
            if others:
                names = ", ".join(sorted(others))
                raise LibraryError(
                    f"the library was analysed by another model ({names}), not by "
                    f"{self.encoder.model_id}: re-analyse it with `samplescout index` (the app "
                    "does this by itself when it opens)")
            raise EmptyLibraryError(
                "the library is empty: add samples with `samplescout index FOLDER` first")
        depth = FILE_RERANK_DEPTH if rerank_depth is None else rerank_depth
        return self.search_vectors(self.embed_file(path), k, filter=filter, rerank_depth=depth,
                                   unranked=unranked, by_kind=by_kind)


class Searcher:
    """Read-only search over a library: an index and the catalog's rows, nothing that
    writes. Any thread (each thread reads the catalog through a connection of its own)."""

    def __init__(self, directory: Path, index: VectorIndex, encoder: Encoder,
                 reranker: FileReranker | None, open_catalog: Callable[[], Catalog],
                 query_kind: QueryKind | None = None):
        self.directory = Path(directory)
        self._open_catalog = open_catalog
        self.index = index
        self.encoder = encoder
        self.reranker = reranker
        self.query_kind = query_kind or QueryKind(encoder.model_id)
        self._local = threading.local()

    @property
    def catalog(self) -> Catalog:
        """This thread's read-only connection to the catalog (writes raise)."""
        catalog = getattr(self._local, "catalog", None)
        if catalog is None:
            catalog = self._local.catalog = self._open_catalog()
        return catalog

    def search(self, query: Query, k: int, *, filter: SearchFilter | None = None,
               rerank: bool = True, rerank_depth: int | None = None,
               timings: dict | None = None,
               unranked: Callable[[list[SearchResult]], None] | None = None,
               by_kind: bool = False,
               ) -> list[SearchResult]:
        """The one search (``app.query.search``) on this library; ``rerank=False`` skips the
        re-ranker (the index's order alone); ``rerank_depth``, ``timings`` and ``unranked``
        as ``app.query.search``; ``by_kind`` as ``Library.search_vectors``. Any thread."""
        kind_of = self.query_kind.of(query) if by_kind else None
        return search(self.index, self.catalog, query, k, filter=filter,
                      reranker=self.reranker if rerank else None, rerank_depth=rerank_depth,
                      timings=timings, unranked=unranked, kind_of=kind_of)

    def with_index(self, index: VectorIndex) -> "Searcher":
        """The same library searched through another index (after a rescan)."""
        return Searcher(self.directory, index, self.encoder, self.reranker, self._open_catalog,
                        self.query_kind)

    def with_reranker(self, reranker) -> "Searcher":
        """The same library re-ranked by ``reranker`` (a ``FileReranker`` or anything with
        its ``k`` and ``rerank``, such as ``app.rerank_worker.RerankWorker``)."""
        return Searcher(self.directory, self.index, self.encoder, reranker, self._open_catalog,
                        self.query_kind)

    def __len__(self) -> int:
        return len(self.index)
