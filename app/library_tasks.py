"""Library work for a window: scans, folder removal, summaries, and search without audio.

The window never builds a ``Library`` or a ``Scanner`` itself; it asks these two:

* ``LibraryTasks``: scan folders, forget a folder, read the totals and the skipped files.
  It opens its ``Library`` on the thread that first calls it and must stay on that thread
  (the window's library thread); ``cancel`` may come from any thread.
* ``LibraryThread``: a thread of its own that keeps a ``Library`` open for searches by
  example while no audio session runs, and for the status bar's totals. ``reload`` reopens
  it after a scan. Its public methods may be called from any thread; results come back
  through the callbacks given, on its thread. ``samplescout`` starts the window's one
  (``open_early``) before it imports the window, so the index loads meanwhile; the window
  takes it with ``library_thread``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable

from app.decode import DecodeError
from app.heap import release_free_heap
from app.query import SearchFilter
from app.suggestions import SuggestionUpdate, ranked

SILENCE_DB = -120.0
# A scan from the window waits this long for the folder watcher (or another writer) to
# finish what it is storing, instead of failing at once.
WRITER_WAIT_S = 30.0


class LibraryTasks:
    """Scans, removal and summaries of one library dir (see the module docstring)."""

    def __init__(self, library_dir: str | os.PathLike, workers: int | None = None):
        self.library_dir = Path(library_dir)
        self.workers = workers
        self._library = None
        self._scanner = None

    def _lib(self):
        if self._library is None:
            from app.library import Library
            self._library = Library(self.library_dir)
        return self._library

    def scan(self, roots: list[str], progress: Callable | None = None):
        """Scan ``roots`` into the library; returns the ``app.scanner.ScanReport``.
        ``progress(ScanProgress)`` runs on this thread. KeyboardInterrupt as the scanner's."""
        from app.scanner import Scanner
        self._scanner = Scanner(self._lib(), workers=self.workers, progress=progress)
        try:
            return self._scanner.scan(roots, wait_s=WRITER_WAIT_S)
        finally:
            self._scanner = None

    def relink_folder(self, old: str, new: str) -> int:
        """The library folder ``old`` is now at ``new`` ("Locate folder…"): its files keep
        their analysis; returns how many. Scan ``new`` afterwards to bring it up to date."""
        return self._lib().relink_folder(old, new)

    def cancel(self) -> None:
        """Stop the running scan after the files in flight. Any thread."""
        scanner = self._scanner
        if scanner is not None:
            scanner.cancel()

    def remove_folder(self, root: str) -> int:
        """Forget a library folder (catalog and index); the files removed."""
        return self._lib().remove_folder(root)

    def summary(self, skipped_limit: int | None = None) -> tuple[dict, list]:
        """(catalog totals with 'model_id' and 'other_models', skipped rows)."""
        library = self._lib()
        catalog, model_id = library.catalog, library.encoder.model_id
        stats = catalog.stats()
        stats["model_id"] = model_id
        stats["other_models"] = catalog.files_of_other_models(model_id)
        return stats, catalog.skipped(skipped_limit)

    def close(self) -> None:
        if self._library is not None:
            self._library.close()
            self._library = None


def search_failure(path: str | os.PathLike, exc: Exception) -> str:
    """One line naming the file a search by example could not use: 'Could not read
    kick01.ogg: file not found'. Any thread."""
    name = Path(path).name
    if isinstance(exc, DecodeError):
        return f"Could not read {name}: {exc.message}"
    return f"Could not search with {name}: {exc}"


class LibraryThread:
    """A thread that owns a ``Library`` for searches without a session (module docstring).
    ``on_error`` gets its error lines; without one they are held for ``report_errors_to``."""

    def __init__(self, library_dir: str | os.PathLike,
                 on_error: Callable[[str], None] | None = None):
        self.library_dir = Path(library_dir)
        self._error_lock = threading.Lock()
        self._error_sink = on_error
        self._held_errors: list[str] = []
        self._jobs: queue.Queue = queue.Queue()
        self._seq = 0
        self.files = 0
        self.index_state = "opening"
        self.index_vectors: int | None = None     # set once an index is open
        # The loaded index, shared with the live session (one copy in memory): ``_opened``
        # counts the opens done, ``_asked`` those asked for (the first, then each reload).
        self._index = None
        self._opened = 0
        self._asked = 1
        self._index_ready = threading.Condition()
        self._after_first_open: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._run, name="library-worker", daemon=True)
        self._thread.start()

    def index(self, timeout: float | None = None):
        """The ``VectorIndex`` of the library as last opened or reloaded (waiting for an
        open or reload still under way), for a live session to search instead of loading a
        second copy (an index may be searched from any thread). None when the library could
        not be opened or the wait timed out. Any thread."""
        with self._index_ready:
            if not self._index_ready.wait_for(lambda: self._opened >= self._asked, timeout):
                return None
            return self._index

    def report_errors_to(self, on_error: Callable[[str], None]) -> None:
        """Send error lines to ``on_error`` from now on, the lines held so far first. Any
        thread."""
        with self._error_lock:
            held, self._held_errors = self._held_errors, []
            self._error_sink = on_error
        for line in held:
            on_error(line)

    def _on_error(self, line: str) -> None:
        with self._error_lock:
            sink = self._error_sink
            if sink is None:
                self._held_errors.append(line)
                return
        sink(line)

    def when_open(self, then: Callable[[], None]) -> None:
        """Run ``then()`` once the first open has finished, opened or failed: at once on the
        calling thread when it has, else on this thread right after it. Any thread."""
        with self._index_ready:
            if self._opened == 0:
                self._after_first_open.append(then)
                return
        then()

    def search_file(self, path: str | os.PathLike, k: int, publish: Callable[[SuggestionUpdate], None],
                    search_filter: SearchFilter | None = None,
                    failed: Callable[[str], None] | None = None) -> None:
        """Search by example; ``publish(update)`` gets the answer (mode and reason 'file'),
        ``failed(line)`` a failure naming the file (else the thread's error callback)."""
        path = os.fspath(path)

        def job(library):
            t0 = time.perf_counter()

            def answer(results, stage: str = "final") -> None:
                self._seq += 1
                publish(SuggestionUpdate(
                    seq=self._seq, onset_frame=None, mode="file",
                    suggestions=ranked(results, len(results)), level_db=SILENCE_DB,
                    reason=f"file {Path(path).name}", stage=stage,
                    latency_ms=(time.perf_counter() - t0) * 1e3))
            try:
                # the index's order is shown while the re-ranker works
                results = library.search_file(path, k=k, filter=search_filter,
                                              unranked=lambda first: answer(first, "index"))
            except Exception as exc:  # noqa: BLE001 - one line for the user
                if failed is None:
                    raise
                failed(search_failure(path, exc))
                return
            answer(results)
            release_free_heap()     # the re-ranking's temporaries, tens of MB

        self._jobs.put(job)

    def edit_tag(self, path: str, tag: str, removed: bool,
                 then: Callable[[str, tuple[str, ...]], None]) -> None:
        """The user adds (or removes) a tag of a catalogued file; ``then(path, tags)`` gets
        the tags that stand for it afterwards (on this worker thread)."""
        def job(library):
            if removed:
                library.remove_tag(path, tag)
            else:
                library.add_tag(path, tag)
            then(path, tuple(t["tag"] for t in library.describe(path)["tags"]))

        self._jobs.put(job)

    def run(self, job: Callable[[object], None]) -> None:
        """Run ``job(library)`` on this thread after the jobs before it; its exceptions
        reach ``on_error`` as one line. Any thread."""
        self._jobs.put(job)

    def collect(self, name: str, file_ids: list[int], then: Callable[[str, int], None]) -> None:
        """Put files in the collection ``name`` (made when new); ``then(name, added)`` on
        this worker thread, a CollectionError to ``on_error``."""
        ids = [int(i) for i in file_ids]

        def job(library):
            catalog = library.catalog
            added = catalog.add_to_collection(catalog.collection_id(name, create=True), ids)
            then(name, added)

        self._jobs.put(job)

    def reload(self, then: Callable[[], None] | None = None) -> None:
        """Reopen the library (after a scan); ``then()`` runs once it is open."""
        with self._index_ready:
            self._asked += 1
        self._jobs.put("reload")
        if then is not None:
            self._jobs.put(lambda library: then())

    def close(self, timeout: float = 5.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)

    def _open(self):
        from app.library import Library
        from app.rerank import BY_EXAMPLE_CACHE_BLOCKS
        library = Library(self.library_dir, rerank_cache_blocks=BY_EXAMPLE_CACHE_BLOCKS)
        library.index  # load or repair now, not on the first query
        self.files = library.catalog.indexed_count()     # not stats(): seconds at 1M files
        self.index_vectors = len(library.index)
        self.index_state = f"{self.index_vectors} vectors ({library.index_note})"
        return library

    def _opened_one(self, library) -> None:
        with self._index_ready:
            self._index = None if library is None else library.index
            self._opened += 1
            self._index_ready.notify_all()
            waiting, self._after_first_open = self._after_first_open, []
        for then in waiting:
            then()

    def _run(self) -> None:
        library = None
        try:
            library = self._open()
        except Exception as exc:  # noqa: BLE001 - reported, the window lives on
            self.index_state, self.index_vectors = "unavailable", None
            self._on_error(f"library unavailable: {exc}")
        self._opened_one(library)
        while True:
            job = self._jobs.get()
            if job is None:
                break
            if job == "reload":
                if library is not None:
                    library.close()
                try:
                    library = self._open()
                except Exception as exc:  # noqa: BLE001
                    library = None
                    self._on_error(f"library unavailable: {exc}")
                self._opened_one(library)
                continue
            if library is None:
                self._on_error("the library could not be opened")
                continue
            try:
                job(library)
            except Exception as exc:  # noqa: BLE001 - user-facing line
                self._on_error(str(exc))
        if library is not None:
            library.close()


# The window's library, started before the window's own modules load (``open_early``).
_EARLY: dict[Path, LibraryThread] = {}
_EARLY_LOCK = threading.Lock()


def open_early(library_dir: str | os.PathLike | None) -> None:
    """Start opening the library of ``library_dir`` (its index loads in the background)
    while the desktop window's modules are still being imported: the first
    ``library_thread`` of that folder is then this one. At start-up, main thread."""
    from app.paths import library_dir as resolve
    try:
        path = resolve(library_dir)
    except OSError:
        return      # the window meets the same error when it opens the library, and says so
    with _EARLY_LOCK:
        if path not in _EARLY:
            _EARLY[path] = LibraryThread(path)


def library_thread(library_dir: str | os.PathLike, on_error: Callable[[str], None]) -> LibraryThread:
    """The ``LibraryThread`` of ``library_dir``: the one ``open_early`` started (handed out
    once), else a new one; its error lines go to ``on_error``. Any thread."""
    from app.paths import library_dir as resolve
    path = resolve(library_dir)
    with _EARLY_LOCK:
        thread = _EARLY.pop(path, None)
    if thread is None:
        return LibraryThread(path, on_error)
    thread.report_errors_to(on_error)
    return thread
