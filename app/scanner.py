"""Library scanner: walks sample folders and brings the catalog and index up to date.

Incremental: a file whose size and mtime match its catalog row is skipped; a
new file whose bytes match a catalogued file that disappeared is relinked (a
move or rename, no re-embedding); a duplicate of a catalogued file copies its
analysis; files gone from a folder leave the catalog and the index. Decoding
and embedding run in worker processes on all cores; results are committed to
the catalog in small transactions as they arrive, so an interrupted scan (Ctrl-C,
``cancel()``, even ``kill -9``) keeps everything finished so far and the next
scan resumes from there. Nothing is written into the scanned folders but one hidden
marker file per library folder (``app.folder_identity``), when the folder can be written.

Each library folder is settled first (``app.library_folders``): one that is gone or
holds another folder (an unplugged drive, an empty mount point) is marked offline and its
files are kept, never removed as gone; one found at a new path is relinked. ``scan_paths``
brings just the given files and folders up to date (the folder watcher's entry point),
with the same analysis, relinking and removal as a full scan.

On a shared catalogue, files are claimed before they are analysed: a file another
machine is analysing is left to it (``ScanReport.claimed_elsewhere``). When the server
goes away mid-scan, the batch being committed is rolled back, the scan waits for the
server (``Library.reconnect``) and commits the batch again.

Threads: ``Scanner.scan`` runs on the thread that owns the ``Library``;
``cancel`` may be called from any thread.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import stat
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from app.analysis import KnownContent, SoundResult, analyse_in_worker, analyse_sound_in_worker
from app.lifeline import init_scan_worker, is_child_of
from app.priority import scan_workers
from app.catalog import FileAnalysis, FileRow, FileStamp
from app.decode import SUPPORTED_EXTENSIONS
from app.library import Library
from app.paths import display_path
from app.storage import StorageUnavailable

# Extensions of audio files we know of but cannot read: they get a catalog row
# that says so. Anything else (text, images, DAW project files) is ignored.
UNSUPPORTED_AUDIO_EXTENSIONS = frozenset({
    ".m4a", ".aac", ".alac", ".wma", ".opus", ".mid", ".midi", ".caf", ".ape", ".wv",
    ".amr", ".ra", ".mka", ".webm", ".mp2", ".rex", ".rx2", ".sd2", ".mp4",
})
# Rows with these reasons are retried on every scan: the cause may be gone
# without the file changing (permissions fixed, a newer app version).
RETRY_CODES = frozenset({"unreadable", "analysis_failed"})

COMMIT_EVERY_S = 0.5
SAVE_INDEX_EVERY_S = 60.0


@dataclass
class ScanProgress:
    done: int
    total: int
    bytes_done: int
    elapsed_s: float
    current: str
    phase: str = "scan"         # 'scan', or 'analyse' for the back-fill of sound analyses


@dataclass
class ScanReport:
    roots: list[str] = field(default_factory=list)
    seen: int = 0
    unchanged: int = 0
    indexed: int = 0            # newly analysed and indexed (new or changed files)
    relinked: int = 0           # moved/renamed files recognised by content
    duplicates: int = 0         # copies of catalogued files, analysis reused
    touched: int = 0            # same content, new timestamp
    removed: int = 0            # gone from disk, removed from catalog and index
    skipped: Counter = field(default_factory=Counter)      # reason code -> count (this scan)
    skipped_files: list[tuple[str, str, str]] = field(default_factory=list)  # (path, code, message)
    problems: list[str] = field(default_factory=list)      # folder-level problems
    bytes_analysed: int = 0
    files_analysed: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    claimed_elsewhere: int = 0  # left to another machine of a shared catalogue
    sounds_analysed: int = 0    # catalogued files whose tags / tempo / key were (re)computed
    offline: list[str] = field(default_factory=list)       # library folders found offline
    back_online: list[str] = field(default_factory=list)   # ...and those back from offline
    folders_relinked: list[tuple[str, str]] = field(default_factory=list)   # (old, new)
    # (what, path) of each file stored, relinked or removed, when the scanner notes them:
    # what is 'indexed', 'skipped', 'duplicate', 'relinked', 'touched' or 'removed'
    changes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def stored(self) -> int:
        """Files whose catalog rows this scan changed (new, moved, removed...)."""
        return (self.indexed + self.relinked + self.duplicates + self.touched + self.removed
                + sum(self.skipped.values()) + len(self.folders_relinked))

    @property
    def files_per_s(self) -> float:
        return self.files_analysed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes_analysed / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True)
class _Candidate:
    path: str
    size: int
    mtime_ns: int


# Pseudo filesystems: nothing in them is a sample, and walking them can read the machine.
_PSEUDO_FS = ("/proc", "/sys", "/dev")


def walk_audio_files(root: str, problems: list[str], unreadable: list[str] | None = None,
                     library_roots: Iterable[str] = ()) -> Iterator[_Candidate]:
    """Audio files under ``root`` (following folder links once, never in a loop).

    A folder link is followed only when its target is on ``root``'s filesystem or inside
    one of ``library_roots``; nothing under /proc, /sys or /dev is ever read, and special
    files (devices, FIFOs, sockets) are skipped. Unreadable folders, link loops, links not
    followed and broken links are reported in ``problems``; the paths whose content could
    not be listed go to ``unreadable`` (their catalogued files must be kept). Hidden files
    and folders (dot names) are ignored. Any thread.
    """
    if unreadable is None:
        unreadable = []
    allowed = [os.path.realpath(r) for r in library_roots]
    seen_dirs: set[tuple[int, int]] = set()
    try:
        root_dev = os.stat(root).st_dev
    except OSError:
        root_dev = None
    stack = [root]
    while stack:
        folder = stack.pop()
        pseudo = _pseudo_fs(os.path.realpath(folder))
        if pseudo is not None:  # e.g. /proc reached through a link to / or given as a root
            problems.append(f"{pseudo} is never scanned, skipped: {display_path(folder)}")
            continue
        try:
            info = os.stat(folder)
        except OSError as exc:
            problems.append(f"unreadable folder: {display_path(folder)} ({exc.strerror}); "
                            "its catalogued files are kept")
            unreadable.append(folder)
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            problems.append(f"folder reached twice through a link (loop?), skipped: "
                            f"{display_path(folder)} -> {display_path(os.path.realpath(folder))}")
            continue
        seen_dirs.add(key)
        try:
            with os.scandir(folder) as entries:
                children = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            problems.append(f"unreadable folder: {display_path(folder)} ({exc.strerror}); "
                            "its catalogued files are kept")
            unreadable.append(folder)
            continue
        subfolders = []
        for entry in children:
            if entry.name.startswith("."):
                continue
            try:
                link = entry.is_symlink()
                is_dir = entry.is_dir()
                if link and _link_refused(entry.path, is_dir, root_dev, allowed, problems):
                    continue
                if is_dir:
                    subfolders.append(entry.path)
                    continue
                if not entry.is_file():
                    if link and not os.path.exists(entry.path):
                        problems.append(f"broken link: {display_path(entry.path)}")
                    elif _audio_name(entry.name):
                        what = "link to a special file" if link else "special file"
                        problems.append(f"{what}, not a regular file (device, FIFO or socket), "
                                        f"skipped: {display_path(entry.path)}")
                    continue
                if not _audio_name(entry.name):
                    continue
                st = entry.stat()
            except OSError as exc:
                problems.append(f"unreadable: {display_path(entry.path)} ({exc.strerror})")
                unreadable.append(entry.path)
                continue
            if stat.S_ISREG(st.st_mode):
                yield _Candidate(entry.path, st.st_size, st.st_mtime_ns)
        stack.extend(reversed(subfolders))


def _audio_name(name: str) -> bool:
    ext = os.path.splitext(name)[1].lower()
    return ext in SUPPORTED_EXTENSIONS or ext in UNSUPPORTED_AUDIO_EXTENSIONS


def _pseudo_fs(real_path: str) -> str | None:
    return next((p for p in _PSEUDO_FS if real_path == p or real_path.startswith(p + "/")), None)


def _link_refused(path: str, is_dir: bool, root_dev: int | None, allowed: list[str],
                  problems: list[str]) -> bool:
    """True (and reported) when the link at ``path`` must not be followed: its target is
    in a pseudo filesystem, or it is a folder on another filesystem and in no library
    folder (a link to one file elsewhere is fine: it cannot lead any further)."""
    target = os.path.realpath(path)
    pseudo = _pseudo_fs(target)
    if pseudo is not None:
        problems.append(f"link into {pseudo} not followed: {display_path(path)} -> "
                        f"{display_path(target)}")
        return True
    if not is_dir:
        return False
    try:
        target_dev = os.stat(path).st_dev
    except OSError:
        return False  # broken: reported by the caller
    if target_dev == root_dev or any(target == r or target.startswith(r.rstrip("/") + "/")
                                     for r in allowed):
        return False
    problems.append(f"link leaves the library's filesystem, not followed (add its target "
                    f"as a library folder to scan it): {display_path(path)} -> "
                    f"{display_path(target)}")
    return True


class Scanner:
    """Scans folders into a ``Library`` (see the module docstring)."""

    def __init__(self, library: Library, *, workers: int | None = None,
                 progress: Callable[[ScanProgress], None] | None = None,
                 note_changes: bool = False, keep_workers: bool = False):
        """``note_changes``: list every file stored, relinked or removed in
        ``ScanReport.changes`` (the folder watcher prints them). ``keep_workers``: keep the
        worker processes between scans (the folder watcher's many small scans), until
        ``close``."""
        self.library = library
        self.keep_workers = keep_workers
        self._pool: _WorkerPool | None = None
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.progress = progress
        self.note_changes = note_changes
        self._cancel = threading.Event()
        self._in_flight: dict = {}
        self._batch: list = []

    def cancel(self) -> None:
        """Stop after the files in flight; what is done stays done. Any thread."""
        self._cancel.set()

    def files_in_flight(self) -> int:
        """Files being analysed or analysed but not yet committed: what a ``cancel()`` still
        saves. Any thread (a snapshot)."""
        return len(self._in_flight) + len(self._batch)

    def scan(self, roots: list[str | os.PathLike], *, wait_s: float = 0.0) -> ScanReport:
        """Scan ``roots`` (and remember them as library folders).

        Raises KeyboardInterrupt after committing what was finished when
        interrupted with Ctrl-C; ``report.interrupted`` is set on ``cancel()``.
        Raises LibraryBusyError when another process (or the folder watcher) is updating
        the library for longer than ``wait_s``.
        """
        self.library.check_writable()
        with self.library.writer_lock(wait_s):
            return self._scan(roots)

    def scan_paths(self, paths: Iterable[str | os.PathLike], *,
                   wait_s: float = 0.0) -> ScanReport:
        """Bring just these files and folders of the library up to date: new or changed
        files are analysed, moved ones relinked (by content, no re-analysis), those gone
        removed; paths outside every library folder, hidden names and offline folders are
        left alone. A path that names a library folder that is gone marks it offline.
        Errors as ``scan``."""
        self.library.check_writable()
        with self.library.writer_lock(wait_s):
            return self._scan_paths(paths)

    def _folder_ready(self, root_path: str, report: ScanReport) -> str | None:
        """The path to scan a library folder at (None: not now), after settling it."""
        if self.library.shared:
            if not os.path.isdir(root_path):
                known = len(self.library.catalog.files_under(root_path))
                hint = f"; its {known} catalogued files are kept" if known else ""
                report.problems.append(
                    f"library folder not found: {root_path} (moved or unmounted?){hint}")
                return None
            return root_path
        from app.library_folders import settle_folder
        state = settle_folder(self.library, root_path)
        report.problems.extend(state.notes)
        if state.offline:
            report.offline.append(root_path)
        if state.back_online:
            report.back_online.append(state.path)
        if state.relinked_from is not None:
            report.folders_relinked.append((state.relinked_from, state.path))
        return state.path if state.scan else None

    def _scan(self, roots: list[str | os.PathLike]) -> ScanReport:
        report = ScanReport()
        started = time.monotonic()
        catalog = self.library.catalog
        model_id = self.library.encoder.model_id
        tasks: list[_Candidate] = []
        orphans: dict[str, FileRow] = {}
        for root in roots:
            root_path = self._folder_ready(
                os.path.abspath(os.path.expanduser(os.fspath(root))), report)
            if root_path is None:
                continue
            catalog.add_root(root_path)
            report.roots.append(root_path)
            # Only the stamps: an unchanged file costs one stat and one dict look-up.
            stamps = catalog.file_stamps(root_path)
            seen: set[str] = set()
            unreadable: list[str] = []
            library_roots = catalog.roots()
            for candidate in walk_audio_files(root_path, report.problems, unreadable,
                                              library_roots):
                seen.add(candidate.path)
                stamp = stamps.get(candidate.path)
                if stamp is not None and _unchanged(stamp, candidate, model_id):
                    report.unchanged += 1
                else:
                    tasks.append(candidate)
            report.seen += len(seen)
            # Files under a folder that could not be listed may well still be there.
            if unreadable:
                seen.update(p for p in stamps if _under_any(p, unreadable))
            if not seen and stamps and self.library.shared:
                # An empty mount point (the share not mounted here): deleting its rows would
                # delete them for every machine of the shared catalogue.
                report.problems.append(
                    f"library folder is empty: {root_path} (share not mounted?); its "
                    f"{len(stamps)} catalogued files are kept")
                continue
            gone = [stamp.id for p, stamp in stamps.items() if p not in seen]
            orphans.update((row.path, row) for row in catalog.files_by_id(gone).values())
        return self._finish(tasks, orphans, report, started)

    def _scan_paths(self, paths: Iterable[str | os.PathLike]) -> ScanReport:
        report = ScanReport()
        started = time.monotonic()
        catalog = self.library.catalog
        model_id = self.library.encoder.model_id
        offline = set(catalog.offline_roots()) if not self.library.shared else set()
        roots = [r for r in catalog.roots() if r not in offline]
        tasks: dict[str, _Candidate] = {}
        orphans: dict[str, FileRow] = {}
        touched_roots: set[str] = set()
        for path in dict.fromkeys(os.path.abspath(os.fspath(p)) for p in paths):
            root = _root_of(path, roots)
            if root is None or _hidden_below(path, root):
                continue
            if path == root or not os.path.isdir(root):
                # the library folder itself changed (or vanished): settle and rescan it whole
                root_path = self._folder_ready(root, report)
                if root_path is None:
                    continue
                path = root = root_path
            touched_roots.add(root)
            rows = (catalog.files_under(path) if os.path.isdir(path) or not os.path.exists(path)
                    else {})
            row = catalog.file_by_path(path)
            if row is not None:
                rows[path] = row
            seen: set[str] = set()
            if os.path.isdir(path):
                unreadable: list[str] = []
                for candidate in walk_audio_files(path, report.problems, unreadable, roots):
                    seen.add(candidate.path)
                    found = rows.get(candidate.path)
                    if found is None or not _unchanged(found, candidate, model_id):
                        tasks[candidate.path] = candidate
                    else:
                        report.unchanged += 1
                seen.update(p for p in rows if _under_any(p, unreadable))
            elif os.path.isfile(path) and _audio_name(os.path.basename(path)):
                try:
                    st = os.stat(path)
                except OSError:
                    st = None
                if st is not None and stat.S_ISREG(st.st_mode):
                    seen.add(path)
                    candidate = _Candidate(path, st.st_size, st.st_mtime_ns)
                    if row is None or not _unchanged(row, candidate, model_id):
                        tasks[path] = candidate
                    else:
                        report.unchanged += 1
            report.seen += len(seen)
            orphans.update((p, r) for p, r in rows.items() if p not in seen)
        report.roots = sorted(touched_roots)
        return self._finish(list(tasks.values()), orphans, report, started)

    def _finish(self, tasks: list[_Candidate], orphans: dict[str, FileRow], report: ScanReport,
                started: float) -> ScanReport:
        """Analyse ``tasks``, back-fill the sound analyses of ``report.roots``, and remove
        the ``orphans`` no task turned out to be a move of."""
        catalog = self.library.catalog
        held = self.library.claim(t.path for t in tasks)
        if held:
            report.claimed_elsewhere = len(held)
            machines = ", ".join(sorted(set(held.values())))
            report.problems.append(f"{len(held)} files are being analysed by {machines}; "
                                   "their rows appear when it commits them")
            tasks = [t for t in tasks if t.path not in held]
        # An unchanged tree changes nothing: the index is neither opened nor saved again
        # (at a million files each costs seconds).
        generation = catalog.generation
        if tasks or orphans:
            self.library.index   # open (or repair) the index before the first result lands
        interrupted = False
        completed = False
        try:
            self._run(tasks, orphans, report, started)
            if not self._cancel.is_set():
                self._backfill(report.roots, report, started)
            completed = not self._cancel.is_set()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if not completed:
                # A move may not have been seen yet: keep the orphans for the next scan.
                report.interrupted = True
            else:
                # Orphans not relinked by a moved copy are really gone.
                report.removed = self.library.remove(row.id for row in orphans.values())
                if self.note_changes:
                    report.changes.extend(("removed", path) for path in orphans)
            self.library.release_claims()
            if self.library.shared or catalog.generation != generation:
                self.library.save_index()
            report.elapsed_s = time.monotonic() - started
        if interrupted:
            raise KeyboardInterrupt
        return report

    def _run(self, tasks: list[_Candidate], orphans: dict[str, FileRow], report: ScanReport,
             started: float) -> None:
        if self.keep_workers:
            tasks = self._known_first(tasks, orphans, report)
        if not tasks:
            return
        catalog = self.library.catalog
        if self.keep_workers:
            pool = self._kept_pool()
        else:
            known = frozenset(catalog.known_hashes())
            model_path = os.fspath(self.library.model_path) if self.library.model_path else None
            pool = _WorkerPool(min(scan_workers(self.workers), len(tasks)), model_path, known)
        total = len(tasks)
        done = 0
        max_in_flight = self.workers * 4
        # (candidate, force): force skips the known-content shortcut.
        pending = [(task, False) for task in reversed(tasks)]
        # Files that were in flight when a worker process died: each is retried
        # alone, so the one that kills a worker again is known and skipped.
        suspects: list[tuple[_Candidate, bool]] = []
        in_flight: dict[Future, tuple[_Candidate, bool, bool]] = {}
        self._in_flight = in_flight
        last_commit = time.monotonic()
        last_save = last_commit
        batch: list = []
        self._batch = batch
        try:
            while pending or suspects or in_flight:
                if not self._cancel.is_set():
                    if suspects and not in_flight:
                        task, force = suspects.pop()
                        in_flight[pool.submit(task, force)] = (task, force, True)
                    while not suspects and pending and len(in_flight) < max_in_flight:
                        task, force = pending.pop()
                        in_flight[pool.submit(task, force)] = (task, force, False)
                if not in_flight:
                    break
                finished, _ = wait(list(in_flight), timeout=0.25, return_when=FIRST_COMPLETED)
                crashed = False
                for future in finished:
                    task, force, alone = in_flight.pop(future)
                    try:
                        batch.append((task, future.result()))
                    except BrokenProcessPool:
                        crashed = True
                        if alone:
                            batch.append((task, _crash_analysis(task)))
                        else:
                            suspects.append((task, force))
                    except Exception as exc:  # noqa: BLE001 — a bug must not stop the scan
                        batch.append((task, _crash_analysis(task, exc)))
                if crashed:
                    # Every other file in flight died with the worker: retry them alone.
                    suspects.extend((t, f) for t, f, _ in in_flight.values())
                    in_flight.clear()
                    pool.restart()
                now = time.monotonic()
                if batch and (now - last_commit >= COMMIT_EVERY_S or not in_flight):
                    done += self._commit(batch, orphans, report, pending)
                    batch.clear()
                    last_commit = now
                    if now - last_save >= SAVE_INDEX_EVERY_S:
                        self.library.save_index()
                        last_save = now
                if self.progress and finished:
                    # Each finished file moves the bar, not only each commit: a fast scan
                    # commits a few times a second and would jump in steps. A file sent back
                    # for a second look may count twice, hence the bound.
                    self.progress(ScanProgress(min(total, done + len(batch)), total,
                                               report.bytes_analysed, now - started, task.path))
                if self._cancel.is_set() and not in_flight:
                    break
        except BaseException:
            try:
                # Keep what finished before the interruption.
                if batch:
                    with catalog.transaction():
                        for task, result in batch:
                            self._record(task, result, orphans, report)
            finally:  # even when that commit fails too (a full disk): no worker left behind
                pool.shutdown(cancel=True)
                if pool is self._pool:
                    self._pool = None
            raise
        if pool is not self._pool:
            pool.shutdown()

    def warm_up(self) -> None:
        """With ``keep_workers``: start the worker processes now, so that the first file
        to analyse does not wait for them. Thread: the scanner's."""
        if self.keep_workers:
            self._kept_pool().warm()

    def close(self) -> None:
        """Stop the kept worker processes (``keep_workers``). Thread: the scanner's."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(cancel=True)

    def _kept_pool(self) -> "_WorkerPool":
        if self._pool is None:
            model_path = os.fspath(self.library.model_path) if self.library.model_path else None
            # No known contents in the workers: _known_first checks them against the
            # catalog as it is at each scan, which a long-lived worker could not.
            self._pool = _WorkerPool(scan_workers(self.workers), model_path, frozenset())
        return self._pool

    def _known_first(self, tasks: list[_Candidate], orphans: dict[str, FileRow],
                     report: ScanReport) -> list[_Candidate]:
        """Files whose bytes are already catalogued (a move, a copy, a touch) are recorded
        here without a worker; returns the files left to analyse."""
        from app.analysis import content_hash
        known = self.library.catalog.known_hashes()
        left = []
        with self.library.catalog.transaction():
            for task in tasks:
                try:
                    digest = content_hash(task.path)
                except OSError:
                    left.append(task)        # the worker reports it as unreadable
                    continue
                result = KnownContent(task.path, task.size, task.mtime_ns, digest)
                if digest not in known or self._record_known(task, result, orphans, report):
                    left.append(task)
        return left

    def _commit(self, batch: list, orphans: dict[str, FileRow], report: ScanReport,
                pending: list) -> int:
        """Record a batch in one transaction; returns the files done. When a shared server
        goes away, the transaction is rolled back, and so is what it noted in ``report``,
        ``orphans`` and ``pending``; the batch is committed again once the server is back."""
        catalog = self.library.catalog
        while True:
            mark = _mark(report, orphans, pending) if self.library.shared else None
            done = 0
            try:
                with catalog.transaction():
                    for task, result in batch:
                        if self._record(task, result, orphans, report):
                            pending.append((task, True))
                        else:
                            done += 1
                            report.bytes_analysed += task.size
                return done
            except StorageUnavailable:
                if mark is None:
                    raise
                _restore(mark, report, orphans, pending)
                self.library.reconnect()

    def _backfill(self, roots: list[str], report: ScanReport, started: float) -> None:
        """Analyse what each catalogued file under ``roots`` is, where that was never done
        or was done by another analysis model (the vectors stay: only tags, kind, tempo, key
        and root are computed). Committed as results arrive, like the scan. On a shared
        catalogue a file another machine is analysing is left to it."""
        model_id = self.library.sound_model_id
        rows = [row for root in roots for row in self.library.catalog.files_to_analyse(model_id, root)]
        held = self.library.claim(row.path for row in rows)
        rows = [row for row in rows if row.path not in held]
        if not rows:
            return
        model_path = os.fspath(self.library.model_path) if self.library.model_path else None
        pool = _WorkerPool(min(self.workers, len(rows)), model_path, frozenset())
        pending = list(reversed(rows))
        in_flight: dict[Future, FileRow] = {}
        done = 0
        try:
            while pending or in_flight:
                while pending and not self._cancel.is_set() and len(in_flight) < self.workers * 4:
                    row = pending.pop()
                    _, vectors = self.library.catalog.file_vectors(row.id)
                    in_flight[pool.submit_sound(row.id, row.path, vectors)] = row
                if not in_flight:
                    break
                finished, _ = wait(list(in_flight), timeout=0.25, return_when=FIRST_COMPLETED)
                with self.library.catalog.transaction():
                    for future in finished:
                        row = in_flight.pop(future)
                        try:
                            result: SoundResult = future.result()
                        except Exception:  # noqa: BLE001 — a crashed file keeps its old analysis
                            continue
                        if result.sound is not None:
                            self.library.store_sound(row.id, result.kind, result.sound, result.tags)
                            report.sounds_analysed += 1
                        done += 1
                if self.progress and finished:
                    self.progress(ScanProgress(done, len(rows), 0, time.monotonic() - started,
                                               row.path, phase="analyse"))
        except BaseException:
            pool.shutdown(cancel=True)
            raise
        pool.shutdown(cancel=self._cancel.is_set())

    def _record(self, task: _Candidate, result, orphans: dict[str, FileRow],
                report: ScanReport) -> bool:
        """Store one worker result; returns True when the file must be analysed after all."""
        if isinstance(result, KnownContent):
            return self._record_known(task, result, orphans, report)
        report.files_analysed += 1
        self.library.store(result)
        if result.status == "indexed":
            report.indexed += 1
        else:
            self._note_skip(report, result.path, result.error_code, result.error)
        self._note(report, "indexed" if result.status == "indexed" else "skipped", result.path)
        return False

    def _note(self, report: ScanReport, what: str, path: str) -> None:
        if self.note_changes:
            report.changes.append((what, path))

    def _record_known(self, task: _Candidate, result: KnownContent, orphans: dict[str, FileRow],
                      report: ScanReport) -> bool:
        model_id = self.library.encoder.model_id
        matches = self.library.catalog.rows_with_hash(result.content_hash)
        same_path = next((r for r in matches if r.path == task.path), None)
        if same_path is not None and _reusable(same_path, model_id):
            self.library.touch(same_path.id, task.size, task.mtime_ns)
            report.touched += 1
            self._note(report, "touched", task.path)
            return False
        moved = next((r for r in matches if r.path in orphans and _reusable(r, model_id)), None)
        if moved is not None:
            del orphans[moved.path]
            self.library.relink(moved.id, task.path, task.size, task.mtime_ns)
            report.relinked += 1
            self._note(report, "relinked", task.path)
            return False
        source = next((r for r in matches if _reusable(r, model_id)), None)
        if source is None:
            return True
        self.library.store_copy(source, task.path, task.size, task.mtime_ns)
        report.duplicates += 1
        self._note(report, "duplicate", task.path)
        if source.status != "indexed":
            self._note_skip(report, task.path, source.error_code, source.error)
        return False

    @staticmethod
    def _note_skip(report: ScanReport, path: str, code: str | None, message: str | None) -> None:
        report.skipped[code or "unknown"] += 1
        report.skipped_files.append((path, code or "unknown", message or ""))


class _WorkerPool:
    """The scanner's worker processes (spawned, each with its own encoder).

    Workers die with the scanning process (see ``app.lifeline``) and ignore SIGINT, which a
    terminal sends to the whole process group: the scan decides when they stop.
    """

    def __init__(self, workers: int, model_path: str | None, known: frozenset[str]):
        self._args = (workers, model_path, known)
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        workers, model_path, known = self._args
        context = multiprocessing.get_context("spawn")
        # each worker writes its pid here when it starts, so a second Ctrl-C can kill the
        # workers without reaching into the executor
        self._worker_pids = context.Array("q", workers)
        return ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=init_scan_worker,
            initargs=(os.getpid(), model_path, known, self._worker_pids))

    def kill_workers(self) -> None:
        """SIGKILL every worker process now (a second Ctrl-C: nothing waits for them)."""
        with self._worker_pids.get_lock():
            pids = [pid for pid in self._worker_pids if pid]
        for pid in pids:
            if is_child_of(pid, os.getpid()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def submit(self, task: _Candidate, force: bool) -> Future:
        # A submit may start a worker: it inherits the blocked SIGINT until its initializer
        # ignores it. (The pending Ctrl-C of this thread is delivered on unblocking.)
        with _sigint_blocked():
            return self._executor.submit(analyse_in_worker, task.path, task.size,
                                         task.mtime_ns, force)

    def submit_sound(self, file_id: int, path: str, vectors) -> Future:
        return self._executor.submit(analyse_sound_in_worker, file_id, path, vectors)

    def warm(self) -> None:
        """Start the worker processes (and load their encoders) now."""
        with _sigint_blocked():
            futures = [self._executor.submit(os.getpid) for _ in range(self._args[0])]
        wait(futures)

    def restart(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = self._start()

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            self.kill_workers()
        self._executor.shutdown(wait=True, cancel_futures=cancel)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _mark(report: ScanReport, orphans: dict, pending: list) -> tuple:
    counters = {k: v for k, v in vars(report).items() if isinstance(v, (int, float, bool))}
    return (counters, Counter(report.skipped), len(report.skipped_files), len(report.problems),
            dict(orphans), len(pending))


def _restore(mark: tuple, report: ScanReport, orphans: dict, pending: list) -> None:
    counters, skipped, n_skipped, n_problems, saved_orphans, n_pending = mark
    for name, value in counters.items():
        setattr(report, name, value)
    report.skipped = skipped
    del report.skipped_files[n_skipped:], report.problems[n_problems:], pending[n_pending:]
    orphans.clear()
    orphans.update(saved_orphans)


def _crash_analysis(task: _Candidate, exc: BaseException | None = None) -> FileAnalysis:
    """A skipped row for a file whose analysis killed its worker or raised."""
    if exc is None:
        message = "analysis failed: decoding this file crashed the worker process"
    else:
        message = f"analysis failed: {type(exc).__name__}: {exc}"
    return FileAnalysis(path=task.path, size=task.size, mtime_ns=task.mtime_ns, content_hash=None,
                        status="skipped", error_code="analysis_failed", error=message)


def _root_of(path: str, roots: list[str]) -> str | None:
    """The deepest library folder holding ``path`` (or being it)."""
    holding = [r for r in roots if path == r or path.startswith(r.rstrip("/") + "/")]
    return max(holding, key=len) if holding else None


def _hidden_below(path: str, root: str) -> bool:
    """A dot name between ``root`` and ``path`` (the scan ignores those, the marker too)."""
    inside = os.path.relpath(path, root)
    return inside != "." and any(part.startswith(".") for part in inside.split(os.sep))


def _under_any(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _unchanged(stamp: FileStamp, candidate: _Candidate, model_id: str) -> bool:
    return (stamp.size == candidate.size and stamp.mtime_ns == candidate.mtime_ns
            and _reusable(stamp, model_id))


def _reusable(row: FileRow | FileStamp, model_id: str) -> bool:
    """Can this row's analysis stand for its content under the current model?"""
    if row.status == "indexed":
        return row.model_id == model_id
    return row.error_code not in RETRY_CODES
