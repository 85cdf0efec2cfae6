"""Library scanner: walks sample folders and brings the catalog and index up to date.

Incremental: a file whose size and mtime match its catalog row is skipped; a
new file whose bytes match a catalogued file that disappeared is relinked (a
move or rename, no re-embedding); a duplicate of a catalogued file copies its
analysis; files gone from a folder leave the catalog and the index. Decoding
and embedding run in worker processes on all cores; results are committed to
the catalog in small transactions as they arrive, so an interrupted scan (Ctrl-C,
``cancel()``, even ``kill -9``) keeps everything finished so far and the next
scan resumes from there. Nothing is ever written into the scanned folders.

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
from app.lifeline import init_scan_worker
from app.priority import scan_workers
from app.catalog import FileAnalysis, FileRow
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
                 progress: Callable[[ScanProgress], None] | None = None):
        self.library = library
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.progress = progress
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

    def scan(self, roots: list[str | os.PathLike]) -> ScanReport:
        """Scan ``roots`` (and remember them as library folders).

        Raises KeyboardInterrupt after committing what was finished when
        interrupted with Ctrl-C; ``report.interrupted`` is set on ``cancel()``.
        Raises LibraryBusyError when another process is updating the library.
        """
        self.library.check_writable()
        with self.library.writer_lock():
            return self._scan(roots)

    def _scan(self, roots: list[str | os.PathLike]) -> ScanReport:
        report = ScanReport()
        started = time.monotonic()
        catalog = self.library.catalog
        model_id = self.library.encoder.model_id
        tasks: list[_Candidate] = []
        orphans: dict[str, FileRow] = {}
        for root in roots:
            root_path = os.path.abspath(os.path.expanduser(os.fspath(root)))
            if not os.path.isdir(root_path):
                known = len(catalog.files_under(root_path))
                hint = f"; its {known} catalogued files are kept" if known else ""
                report.problems.append(
                    f"library folder not found: {root_path} (moved or unmounted?){hint}")
                continue
            catalog.add_root(root_path)
            report.roots.append(root_path)
            rows = catalog.files_under(root_path)
            seen: set[str] = set()
            unreadable: list[str] = []
            library_roots = catalog.roots()
            for candidate in walk_audio_files(root_path, report.problems, unreadable,
                                              library_roots):
                seen.add(candidate.path)
                row = rows.get(candidate.path)
                if row is not None and _unchanged(row, candidate, model_id):
                    report.unchanged += 1
                else:
                    tasks.append(candidate)
            report.seen += len(seen)
            # Files under a folder that could not be listed may well still be there.
            seen.update(p for p in rows if _under_any(p, unreadable))
            if not seen and rows and self.library.shared:
                # An empty mount point (the share not mounted here): deleting its rows would
                # delete them for every machine of the shared catalogue.
                report.problems.append(
                    f"library folder is empty: {root_path} (share not mounted?); its "
                    f"{len(rows)} catalogued files are kept")
                continue
            orphans.update((p, r) for p, r in rows.items() if p not in seen)

        held = self.library.claim(t.path for t in tasks)
        if held:
            report.claimed_elsewhere = len(held)
            machines = ", ".join(sorted(set(held.values())))
            report.problems.append(f"{len(held)} files are being analysed by {machines}; "
                                   "their rows appear when it commits them")
            tasks = [t for t in tasks if t.path not in held]
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
            self.library.release_claims()
            self.library.save_index()
            report.elapsed_s = time.monotonic() - started
        if interrupted:
            raise KeyboardInterrupt
        return report

    def _run(self, tasks: list[_Candidate], orphans: dict[str, FileRow], report: ScanReport,
             started: float) -> None:
        if not tasks:
            return
        catalog = self.library.catalog
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
                    if self.progress:
                        self.progress(ScanProgress(done, total, report.bytes_analysed,
                                                   now - started, task.path))
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
            raise
        pool.shutdown()

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
        return False

    def _record_known(self, task: _Candidate, result: KnownContent, orphans: dict[str, FileRow],
                      report: ScanReport) -> bool:
        model_id = self.library.encoder.model_id
        matches = self.library.catalog.rows_with_hash(result.content_hash)
        same_path = next((r for r in matches if r.path == task.path), None)
        if same_path is not None and _reusable(same_path, model_id):
            self.library.touch(same_path.id, task.size, task.mtime_ns)
            report.touched += 1
            return False
        moved = next((r for r in matches if r.path in orphans and _reusable(r, model_id)), None)
        if moved is not None:
            del orphans[moved.path]
            self.library.relink(moved.id, task.path, task.size, task.mtime_ns)
            report.relinked += 1
            return False
        source = next((r for r in matches if _reusable(r, model_id)), None)
        if source is None:
            return True
        self.library.store_copy(source, task.path, task.size, task.mtime_ns)
        report.duplicates += 1
        if source.status != "indexed":
            self._note_skip(report, task.path, source.error_code, source.error)
        return False

    @staticmethod
    def _note_skip(report: ScanReport, path: str, code: str | None, message: str | None) -> None:
        report.skipped[code or "unknown"] += 1
        report.skipped_files.append((path, code or "unknown", message or ""))


class _Executor(ProcessPoolExecutor):
    def kill_workers(self) -> None:
        """SIGKILL every worker process now (a second Ctrl-C: nothing waits for them)."""
        for process in list(self._processes.values()):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()


class _WorkerPool:
    """The scanner's worker processes (spawned, each with its own encoder).

    Workers die with the scanning process (see ``app.lifeline``) and ignore SIGINT, which a
    terminal sends to the whole process group: the scan decides when they stop.
    """

    def __init__(self, workers: int, model_path: str | None, known: frozenset[str]):
        self._args = (workers, model_path, known)
        self._executor = self._start()

    def _start(self) -> _Executor:
        workers, model_path, known = self._args
        return _Executor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=init_scan_worker, initargs=(os.getpid(), model_path, known))

    def submit(self, task: _Candidate, force: bool) -> Future:
        # A submit may start a worker: it inherits the blocked SIGINT until its initializer
        # ignores it. (The pending Ctrl-C of this thread is delivered on unblocking.)
        with _sigint_blocked():
            return self._executor.submit(analyse_in_worker, task.path, task.size,
                                         task.mtime_ns, force)

    def submit_sound(self, file_id: int, path: str, vectors) -> Future:
        return self._executor.submit(analyse_sound_in_worker, file_id, path, vectors)

    def restart(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = self._start()

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            self._executor.kill_workers()
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


def _under_any(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _unchanged(row: FileRow, candidate: _Candidate, model_id: str) -> bool:
    return (row.size == candidate.size and row.mtime_ns == candidate.mtime_ns
            and _reusable(row, model_id))


def _reusable(row: FileRow, model_id: str) -> bool:
    """Can this row's analysis stand for its content under the current model?"""
    if row.status == "indexed":
        return row.model_id == model_id
    return row.error_code not in RETRY_CODES
