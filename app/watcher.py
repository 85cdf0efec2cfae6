"""Watched folders: files added, changed, moved or deleted in the library's folders are
picked up while the app runs.

``FolderWatcher`` watches every library folder (recursively) through watchdog, which uses
inotify on Linux (and the native API elsewhere): it pairs a move's two halves, adds
watches for new subfolders and, when the kernel's event queue overflows, says so
(``EventsLostEvent``) so the folder is rescanned whole. Events are gathered for
``debounce_s`` after the last one (a copy in progress sends many), then the touched paths
go through the scanner's own ``Scanner.scan_paths``: the same analysis as a scan, a moved
file relinked by its content (no re-analysis), a deleted one removed.

When the system's inotify limits run out (``OSError`` ENOSPC from ``inotify_add_watch``:
``fs.inotify.max_user_watches``; EMFILE: ``max_user_instances``), when a folder is first
watched or later, for a new subfolder (watchdog only logs that), the watcher falls back
to a full rescan of the library's folders every ``poll_s`` seconds (cheap: unchanged files
are skipped by size and time) and says so once, through ``on_notice`` and the log.

Every couple of seconds it also re-reads the library's folders: a folder the user added
is watched, one removed is dropped, one that vanished or now holds another folder (an
unplugged drive, an empty mount point) is marked offline by a scan of it, and an offline
folder that is back is scanned and comes back online.

One writer: the watcher writes through its own ``Library`` under the library's writer
lock. When a scan (the window's, ``samplescout index``) holds the lock, the touched paths
stay queued and are tried again a second later; nothing is lost and nothing fails.

Threads: ``start``, ``stop`` and ``rescan_roots`` from any thread. Its own thread
("library-watch") opens the Library and runs every scan; ``on_change(report)`` (an
``app.scanner.ScanReport`` that stored something) and ``on_notice(text)`` run there.
watchdog's observer thread only queues paths.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

from watchdog.events import (DirModifiedEvent, EventsLostEvent,
                             FileClosedNoWriteEvent, FileOpenedEvent, FileSystemEvent,
                             FileSystemEventHandler)

from app.folder_identity import read_marker

log = logging.getLogger("samplescout.watch")

DEBOUNCE_S = 0.5          # quiet time after the last event before the paths are scanned
POLL_EVERY_S = 60.0       # full rescans when inotify's limits ran out
ROOTS_EVERY_S = 2.0       # the library's folders are re-read this often
BATCH_WAIT_S = 5.0        # changes wait at most this long for the events to stop
BUSY_RETRY_S = 1.0        # another writer holds the lock: try again after this
LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)

# Events that change nothing on disk (or only repeat a file's own event).
_IGNORED = (FileOpenedEvent, FileClosedNoWriteEvent, DirModifiedEvent)


class _Handler(FileSystemEventHandler):
    def __init__(self, queue_paths: Callable[[list[str], bool], None]):
        super().__init__()
        self._queue = queue_paths

    def on_any_event(self, event: FileSystemEvent) -> None:
        """watchdog's observer thread: queue the paths, nothing more."""
        if isinstance(event, _IGNORED):
            return
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        self._queue(paths, isinstance(event, EventsLostEvent))


class _LimitSpy(logging.Handler):
    """watchdog reports a watch it could not add for a new subfolder only in its log (the
    rest of that tree then goes unwatched): this hears ENOSPC / EMFILE there."""

    def __init__(self, on_limit: Callable[[OSError], None]):
        super().__init__(logging.WARNING)
        self._on_limit = on_limit

    def emit(self, record: logging.LogRecord) -> None:
        for arg in record.args if isinstance(record.args, tuple) else ():
            if isinstance(arg, OSError) and arg.errno in LIMIT_ERRNOS:
                self._on_limit(arg)


WATCHDOG_LOGGER = "watchdog.observers.inotify"


class FolderWatcher:
    """Keeps a library up to date with its folders while it runs (module docstring)."""

    def __init__(self, library_dir: str | os.PathLike, *,
                 on_change: Callable[[object], None] | None = None,
                 on_notice: Callable[[str], None] | None = None,
                 workers: int = 1, debounce_s: float = DEBOUNCE_S, poll_s: float = POLL_EVERY_S,
                 roots_s: float = ROOTS_EVERY_S, observer=None, encoder=None):
        """``roots_s``: how often the library's folders are re-read (a folder unplugged is
        offline that soon). ``observer``: the watchdog observer to schedule the folders on (default: the
        platform's, inotify on Linux); any object with watchdog's ``schedule``,
        ``unschedule``, ``start``, ``stop`` and ``join``. ``encoder``: share one already
        loaded (else the library's default is loaded on the watcher's thread)."""
        self.library_dir = Path(library_dir)
        self.on_change = on_change
        self.on_notice = on_notice
        self.workers = workers
        self.debounce_s = debounce_s
        self.poll_s = poll_s
        self.roots_s = roots_s
        if observer is None:
            from watchdog.observers import Observer
            observer = Observer()
        self._observer = observer
        self._encoder = encoder
        self._handler = _Handler(self._queue)
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._whole: set[str] = set()          # library folders to rescan whole
        self._last_event = 0.0
        self._first_event = 0.0
        self._retry_at = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reread = threading.Event()
        self._watches: dict[str, object] = {}  # library folder -> watchdog watch
        self._seen: dict[str, tuple] = {}      # library folder -> (is a folder, marker id)
        self._scanner = None
        self.mode = "starting"                 # 'watching', 'polling', 'stopped'
        self.notices: list[str] = []
        self.scans = 0                         # batches scanned (incremental or whole)
        self.busy_retries = 0                  # batches put back: another scan held the lock
        self.ready = threading.Event()         # set once the folders are watched (or polled)
        self._limit_hit: OSError | None = None  # set from watchdog's thread, acted on here
        self._spy = _LimitSpy(self._on_limit)
        self._thread = threading.Thread(target=self._run, name="library-watch", daemon=True)

    # -- any thread -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching: a scan in progress stops after its files in flight. Any thread."""
        self._stop.set()
        scanner = self._scanner
        if scanner is not None:
            scanner.cancel()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def rescan_roots(self) -> None:
        """The library's folders changed (added, removed, relinked): re-read them now."""
        self._reread.set()
        self._wake.set()

    def running(self) -> bool:
        """True until the watcher's thread has ended (after ``stop``)."""
        return self._thread.is_alive()

    def watched(self) -> list[str]:
        """The library folders watched now (none while polling)."""
        return sorted(self._watches)

    def pending(self) -> int:
        """Paths queued for the next scan."""
        with self._lock:
            return len(self._paths) + len(self._whole)

    def _on_limit(self, exc: OSError) -> None:
        self._limit_hit = exc
        self._wake.set()

    def _queue(self, paths: list[str], whole: bool) -> None:
        with self._lock:
            if not self._paths and not self._whole:
                self._first_event = time.monotonic()
            if whole:
                self._whole.update(paths)
            else:
                self._paths.update(paths)
            self._last_event = time.monotonic()
        self._wake.set()

    # -- the watcher's thread -------------------------------------------------------------

    def _run(self) -> None:
        from app.library import Library
        from app.scanner import Scanner
        library = None
        try:
            library = Library(self.library_dir, encoder=self._encoder)
            self._scanner = Scanner(library, workers=self.workers, note_changes=True,
                                    keep_workers=True)
            self._scanner.warm_up()   # the first new file need not wait for a worker to start
            logging.getLogger(WATCHDOG_LOGGER).addHandler(self._spy)
            self._observer.start()
            self.mode = "watching"
            next_roots = 0.0
            next_poll = None
            while not self._stop.is_set():
                now = time.monotonic()
                if self._limit_hit is not None and self.mode == "watching":
                    self._fall_back(self._limit_hit)
                if now >= next_roots or self._reread.is_set():
                    self._reread.clear()
                    self._sync_roots(library)
                    next_roots = now + self.roots_s
                    self.ready.set()
                if self.mode == "polling":
                    if next_poll is None or now >= next_poll:
                        with self._lock:
                            self._whole.update(library.catalog.roots())
                        next_poll = now + self.poll_s
                due = self._due()
                if due is not None and now >= due:
                    self._flush()
                    continue
                wake_at = min(t for t in (next_roots, next_poll, due) if t is not None)
                self._wake.wait(max(0.0, wake_at - time.monotonic()))
                self._wake.clear()
        except Exception as exc:  # noqa: BLE001 - the app runs on without its watcher
            log.exception("folder watcher stopped")
            self._say(f"Watching the library's folders stopped: {exc}")
        finally:
            logging.getLogger(WATCHDOG_LOGGER).removeHandler(self._spy)
            self.mode = "stopped"
            self.ready.set()
            scanner, self._scanner = self._scanner, None
            if scanner is not None:
                scanner.close()
            try:
                self._observer.stop()
                if self._observer.is_alive():
                    self._observer.join(10)
            except Exception:  # noqa: BLE001 - shutting down
                log.exception("stopping the file observer")
            if library is not None:
                library.close()

    def _due(self) -> float | None:
        with self._lock:
            if not self._paths and not self._whole:
                return None
            # quiet for debounce_s, but never later than BATCH_WAIT_S after the first event
            # (a folder that never stops changing still gets scanned)
            quiet = min(self._last_event + self.debounce_s, self._first_event + BATCH_WAIT_S)
            return max(quiet, self._retry_at)

    def _flush(self) -> None:
        from app.library import LibraryBusyError
        with self._lock:
            paths, self._paths = self._paths, set()
            whole, self._whole = self._whole, set()
        # events were lost somewhere in a folder: the library folder holding it, whole
        # (only library folders: one the user removed meanwhile must not come back)
        roots = self._scanner.library.catalog.roots()
        whole = {root for root in (_holding(p, roots) for p in whole) if root is not None}
        try:
            reports = []
            if whole:
                reports.append(self._scanner.scan(sorted(whole)))
            paths = {p for p in paths if _holding(p, sorted(whole)) is None}
            if paths:
                reports.append(self._scanner.scan_paths(sorted(paths)))
        except LibraryBusyError:
            # Another scan writes now: keep everything queued, try again in a moment.
            with self._lock:
                self._paths |= paths
                self._whole |= whole
            self._retry_at = time.monotonic() + BUSY_RETRY_S
            self.busy_retries += 1
            log.info("library busy (another scan runs): %d paths stay queued", len(paths) + len(whole))
            return
        except KeyboardInterrupt:
            return
        except Exception as exc:  # noqa: BLE001 - one bad batch must not stop the watching
            log.exception("scanning watched paths")
            self._say(f"Watched folders: could not update the library ({exc})")
            return
        self.scans += 1
        if whole:
            self._reread.set()   # a folder went offline or came back: (un)watch it now
        for report in reports:
            for problem in report.problems:
                log.info("%s", problem)
            if report.stored or report.offline or report.back_online or report.folders_relinked:
                for what, path in report.changes:
                    log.info("%s: %s", what, path)
                if self.on_change is not None:
                    self.on_change(report)

    def _sync_roots(self, library) -> None:
        """Watch the library's online folders; queue a whole scan of a folder that vanished,
        changed identity or came back."""
        rows = library.catalog.root_rows() if hasattr(library.catalog, "root_rows") else []
        current = {r.path: r for r in rows}
        for path in list(self._watches):
            if path not in current:
                self._unwatch(path)
        for path, row in current.items():
            state = (os.path.isdir(path), read_marker(path) if row.folder_id else None)
            before = self._seen.get(path)
            self._seen[path] = state
            if before is not None and before != state:
                self._queue([path], True)      # gone, back, or another folder there now
            elif before is None and row.offline and state[0]:
                self._queue([path], True)      # an offline folder is there again: try it
            online = state[0] and not row.offline
            if online and path not in self._watches and self.mode == "watching":
                self._watch(path)
            elif not online and path in self._watches:
                self._unwatch(path)
        for path in list(self._seen):
            if path not in current:
                del self._seen[path]

    def _watch(self, path: str) -> None:
        try:
            self._watches[path] = self._observer.schedule(self._handler, path, recursive=True)
        except OSError as exc:
            if exc.errno in LIMIT_ERRNOS:
                self._fall_back(exc)
            else:
                log.warning("cannot watch %s: %s", path, exc)
                self._say(f"Cannot watch {path} ({exc.strerror or exc}); rescan it by hand")

    def _unwatch(self, path: str) -> None:
        watch = self._watches.pop(path, None)
        if watch is not None:
            try:
                self._observer.unschedule(watch)
            except (KeyError, OSError):
                pass   # its emitter already stopped (the folder was deleted)

    def _fall_back(self, exc: OSError) -> None:
        """inotify's limits ran out: stop watching, rescan every ``poll_s`` instead."""
        for path in list(self._watches):
            self._unwatch(path)
        self.mode = "polling"
        limit = ("fs.inotify.max_user_watches" if exc.errno == errno.ENOSPC
                 else "fs.inotify.max_user_instances")
        self._say(f"The system's limit of watched folders is reached ({limit}): the library's "
                  f"folders are rescanned every {self.poll_s:g} s instead of being watched "
                  f"(raise {limit} with sysctl to watch them)")

    def _say(self, text: str) -> None:
        if text in self.notices:
            return
        self.notices.append(text)
        log.warning("%s", text)
        if self.on_notice is not None:
            self.on_notice(text)


def _holding(path: str, folders: list[str]) -> str | None:
    """The deepest of ``folders`` that is ``path`` or holds it."""
    found = [f for f in folders if path == f or path.startswith(f.rstrip("/") + "/")]
    return max(found, key=len) if found else None
