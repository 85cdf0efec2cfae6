"""Library scanner: walks sample folders and brings the catalog and index up to date.

Incremental: a file whose size and mtime match its catalog row is skipped; a
new file whose bytes match a catalogued file that disappeared is relinked (a
move or rename, no re-embedding); a duplicate of a catalogued file copies its
analysis; files gone from a folder leave the catalog and the index. Decoding
and embedding run in worker processes on all cores; results are committed to
the catalog in small transactions as they arrive, so an interrupted scan (Ctrl-C,
``cancel()``, even ``kill -9``) keeps everything finished so far and the next
scan resumes from there. Nothing is ever written into the scanned folders.

Threads: ``Scanner.scan`` runs on the thread that owns the ``Library``;
``cancel`` may be called from any thread.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Callable, Iterator

from app.analysis import KnownContent, SoundResult, analyse_in_worker, analyse_sound_in_worker, init_worker
from app.catalog import FileAnalysis, FileRow
from app.decode import SUPPORTED_EXTENSIONS
from app.library import Library

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


def walk_audio_files(root: str, problems: list[str]) -> Iterator[_Candidate]:
    """Audio files under ``root`` (following folder links once, never in a loop).

    Unreadable folders, link loops and broken links are reported in ``problems``.
    Hidden files and folders (dot names) are ignored. Any thread.
    """
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = os.stat(folder)
        except OSError as exc:
            problems.append(f"unreadable folder: {folder} ({exc.strerror})")
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            problems.append(f"folder reached twice through a link (loop?), skipped: {folder} "
                            f"-> {os.path.realpath(folder)}")
            continue
        seen_dirs.add(key)
        try:
            with os.scandir(folder) as entries:
                children = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            problems.append(f"unreadable folder: {folder} ({exc.strerror})")
            continue
        subfolders = []
        for entry in children:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    subfolders.append(entry.path)
                    continue
                if not entry.is_file():
                    if entry.is_symlink():
                        problems.append(f"broken link: {entry.path}")
                    continue
                ext = os.path.splitext(entry.name)[1].lower()
                if ext not in SUPPORTED_EXTENSIONS and ext not in UNSUPPORTED_AUDIO_EXTENSIONS:
                    continue
                st = entry.stat()
            except OSError as exc:
                problems.append(f"unreadable: {entry.path} ({exc.strerror})")
                continue
            if stat.S_ISREG(st.st_mode):
                yield _Candidate(entry.path, st.st_size, st.st_mtime_ns)
        stack.extend(reversed(subfolders))


class Scanner:
    """Scans folders into a ``Library`` (see the module docstring)."""

    def __init__(self, library: Library, *, workers: int | None = None,
                 progress: Callable[[ScanProgress], None] | None = None):
        self.library = library
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.progress = progress
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop after the files in flight; what is done stays done. Any thread."""
        self._cancel.set()

    def scan(self, roots: list[str | os.PathLike]) -> ScanReport:
        """Scan ``roots`` (and remember them as library folders).

        Raises KeyboardInterrupt after committing what was finished when
        interrupted with Ctrl-C; ``report.interrupted`` is set on ``cancel()``.
        """
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
            for candidate in walk_audio_files(root_path, report.problems):
                seen.add(candidate.path)
                row = rows.get(candidate.path)
                if row is not None and _unchanged(row, candidate, model_id):
                    report.unchanged += 1
                else:
                    tasks.append(candidate)
            report.seen += len(seen)
            orphans.update((p, r) for p, r in rows.items() if p not in seen)

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
        pool = _WorkerPool(min(self.workers, len(tasks)), model_path, known)
        total = len(tasks)
        done = 0
        max_in_flight = self.workers * 4
        # (candidate, force): force skips the known-content shortcut.
        pending = [(task, False) for task in reversed(tasks)]
        # Files that were in flight when a worker process died: each is retried
        # alone, so the one that kills a worker again is known and skipped.
        suspects: list[tuple[_Candidate, bool]] = []
        in_flight: dict[Future, tuple[_Candidate, bool, bool]] = {}
        last_commit = time.monotonic()
        last_save = last_commit
        batch: list = []
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
                    with catalog.transaction():
                        for task, result in batch:
                            if self._record(task, result, orphans, report):
                                pending.append((task, True))
                            else:
                                done += 1
                                report.bytes_analysed += task.size
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
            # Keep what finished before the interruption.
            if batch:
                with catalog.transaction():
                    for task, result in batch:
                        self._record(task, result, orphans, report)
            pool.shutdown(cancel=True)
            raise
        pool.shutdown()

    def _backfill(self, roots: list[str], report: ScanReport, started: float) -> None:
        """Analyse what each catalogued file under ``roots`` is, where that was never done
        or was done by another analysis model (the vectors stay: only tags, kind, tempo, key
        and root are computed). Committed as results arrive, like the scan."""
        model_id = self.library.sound_model_id
        rows = [row for root in roots for row in self.library.catalog.files_to_analyse(model_id, root)]
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


class _WorkerPool:
    """The scanner's worker processes (spawned, each with its own encoder)."""

    def __init__(self, workers: int, model_path: str | None, known: frozenset[str]):
        self._args = (workers, model_path, known)
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        workers, model_path, known = self._args
        return ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker, initargs=(model_path, known))

    def submit(self, task: _Candidate, force: bool) -> Future:
        return self._executor.submit(analyse_in_worker, task.path, task.size, task.mtime_ns, force)

    def submit_sound(self, file_id: int, path: str, vectors) -> Future:
        return self._executor.submit(analyse_sound_in_worker, file_id, path, vectors)

    def restart(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = self._start()

    def shutdown(self, cancel: bool = False) -> None:
        self._executor.shutdown(wait=True, cancel_futures=cancel)


def _crash_analysis(task: _Candidate, exc: BaseException | None = None) -> FileAnalysis:
    """A skipped row for a file whose analysis killed its worker or raised."""
    if exc is None:
        message = "analysis failed: decoding this file crashed the worker process"
    else:
        message = f"analysis failed: {type(exc).__name__}: {exc}"
    return FileAnalysis(path=task.path, size=task.size, mtime_ns=task.mtime_ns, content_hash=None,
                        status="skipped", error_code="analysis_failed", error=message)


def _unchanged(row: FileRow, candidate: _Candidate, model_id: str) -> bool:
    return (row.size == candidate.size and row.mtime_ns == candidate.mtime_ns
            and _reusable(row, model_id))


def _reusable(row: FileRow, model_id: str) -> bool:
    """Can this row's analysis stand for its content under the current model?"""
    if row.status == "indexed":
        return row.model_id == model_id
    return row.error_code not in RETRY_CODES
