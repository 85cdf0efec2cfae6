"""Watched library folders with real inotify (watchdog), real files and a real catalog: a
copied-in file, a deletion and a move are in the catalog within 2 s; a scan holding the
writer lock makes the watcher wait, not fail; when the system's watch limit is reached it
rescans instead and says so once; `samplescout watch` prints what it picked up; the
window's host reloads the library when the watcher stored something."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from watchdog.observers import Observer

from app.catalog import Catalog
from app.library import Library
from app.paths import CATALOG_FILENAME
from app.scanner import Scanner
from app.watcher import FolderWatcher
from tests.conftest import abort_with_stacks, wait_for
from tests.test_scanner import write_hits

PICKUP_S = 2.0     # the promise: a change is in the catalog this soon


def scan(library_dir: Path, *roots) -> None:
    with Library(library_dir) as library:
        Scanner(library, workers=1).scan([str(r) for r in roots])


def row(library_dir: Path, path: Path):
    """The file's catalog row, read as the window's readers do (no encoder loaded)."""
    with Catalog(library_dir / CATALOG_FILENAME) as catalog:
        return catalog.file_by_path(str(path))


def vector_ids(library_dir: Path, file_id: int) -> list[int]:
    with Catalog(library_dir / CATALOG_FILENAME) as catalog:
        return catalog.file_vectors(file_id)[0].tolist()


@pytest.fixture
def watcher_factory(isolated_library_dir):
    """FolderWatchers stopped (their threads and observers joined) after the test."""
    made: list[FolderWatcher] = []

    def make(**options) -> FolderWatcher:
        watcher = FolderWatcher(isolated_library_dir, **options)
        made.append(watcher)
        watcher.start()
        assert watcher.ready.wait(30)
        return watcher

    yield make
    for watcher in made:
        watcher.stop()
        assert not watcher.running()   # reaped


def picked_up(condition) -> float:
    """Seconds until ``condition()`` holds (the wait is long: it bounds a hang; the
    caller asserts the promise)."""
    started = time.monotonic()
    assert wait_for(condition, timeout=30), "never picked up"
    return time.monotonic() - started


def test_copied_in_deleted_and_moved_files_are_picked_up(tmp_path, isolated_library_dir,
                                                          watcher_factory):
    folder = tmp_path / "samples"
    originals = write_hits(tmp_path / "elsewhere", 2, seed=3)
    write_hits(folder, 2)
    (folder / "sub").mkdir()
    scan(isolated_library_dir, folder)
    reports = []
    watcher = watcher_factory(on_change=reports.append)
    assert watcher.mode == "watching" and watcher.watched() == [str(folder)]

    # copied in (a file that is new to the library: analysed as a scan would)
    shutil.copy(originals[0], folder / "sub" / "new-hit.wav")
    took = picked_up(lambda: row(isolated_library_dir, folder / "sub" / "new-hit.wav"))
    assert took < PICKUP_S, f"a copied-in file took {took:.2f} s"
    new = row(isolated_library_dir, folder / "sub" / "new-hit.wav")
    assert new.status == "indexed" and vector_ids(isolated_library_dir, new.id)

    # moved: relinked, the same row and vectors
    before = vector_ids(isolated_library_dir, new.id)
    os.rename(folder / "sub" / "new-hit.wav", folder / "renamed-hit.wav")
    took = picked_up(lambda: row(isolated_library_dir, folder / "renamed-hit.wav"))
    assert took < PICKUP_S, f"a move took {took:.2f} s"
    moved = row(isolated_library_dir, folder / "renamed-hit.wav")
    assert moved.id == new.id and vector_ids(isolated_library_dir, moved.id) == before
    assert row(isolated_library_dir, folder / "sub" / "new-hit.wav") is None

    # deleted: removed from the catalog and the index
    os.remove(folder / "renamed-hit.wav")
    took = picked_up(lambda: row(isolated_library_dir, folder / "renamed-hit.wav") is None)
    assert took < PICKUP_S, f"a deletion took {took:.2f} s"
    assert any(("relinked", str(folder / "renamed-hit.wav")) in r.changes for r in reports)
    with Library(isolated_library_dir) as library:
        assert library.catalog.stats()["indexed"] == 2
        assert len(library.index) == library.catalog.vector_count(library.encoder.model_id)


def test_watcher_waits_for_a_running_scan_instead_of_failing(tmp_path, isolated_library_dir,
                                                              watcher_factory):
    folder = tmp_path / "samples"
    write_hits(folder, 1)
    scan(isolated_library_dir, folder)
    watcher = watcher_factory()
    newcomer = write_hits(tmp_path / "elsewhere", 1, seed=9)[0]
    with Library(isolated_library_dir) as scanning, scanning.writer_lock():
        shutil.copy(newcomer, folder / "late.wav")
        # the watcher found the lock taken: the path stays queued, nothing stored
        assert wait_for(lambda: watcher.busy_retries > 0, timeout=30)
        assert watcher.pending() > 0
        assert row(isolated_library_dir, folder / "late.wav") is None
    picked_up(lambda: row(isolated_library_dir, folder / "late.wav"))
    assert watcher.notices == []


def test_watched_folder_unplugged_and_plugged_in_again(tmp_path, isolated_library_dir,
                                                       watcher_factory):
    folder = tmp_path / "usb" / "kit"
    write_hits(folder, 2)
    scan(isolated_library_dir, folder)
    reports = []
    watcher = watcher_factory(on_change=reports.append, roots_s=0.3)

    def offline() -> list[str]:
        with Catalog(isolated_library_dir / CATALOG_FILENAME) as catalog:
            return catalog.offline_roots()

    os.rename(tmp_path / "usb", tmp_path / "unplugged")
    assert wait_for(lambda: offline() == [str(folder)], timeout=30)
    with Catalog(isolated_library_dir / CATALOG_FILENAME) as catalog:
        assert len(catalog.files_under(str(folder))) == 2, "an unplugged folder keeps its files"
    os.rename(tmp_path / "unplugged", tmp_path / "usb")
    assert wait_for(lambda: offline() == [] and watcher.watched() == [str(folder)], timeout=30)
    assert any(r.offline == [str(folder)] for r in reports)
    assert any(r.back_online == [str(folder)] for r in reports)
    assert all(r.removed == 0 for r in reports)


class ExhaustedObserver(Observer):
    """Stands in for a system whose inotify watches are used up. watchdog raises exactly
    this from ``schedule`` when ``inotify_add_watch`` fails with ENOSPC; the real limit
    (fs.inotify.max_user_watches) is machine-wide, so lowering it in a test would break
    every other program's watches on the machine (and /proc/sys is read-only in most
    containers)."""

    def schedule(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_watch_limit_falls_back_to_rescans_and_says_so_once(tmp_path, isolated_library_dir,
                                                             watcher_factory):
    folder = tmp_path / "samples"
    write_hits(folder, 1)
    scan(isolated_library_dir, folder)
    notices = []
    watcher = watcher_factory(observer=ExhaustedObserver(), poll_s=0.3,
                              on_notice=notices.append)
    assert watcher.mode == "polling" and watcher.watched() == []
    newcomer = write_hits(tmp_path / "elsewhere", 1, seed=4)[0]
    shutil.copy(newcomer, folder / "polled.wav")
    picked_up(lambda: row(isolated_library_dir, folder / "polled.wav"))
    scans = watcher.scans
    assert wait_for(lambda: watcher.scans >= scans + 2, timeout=30)   # it keeps rescanning
    assert len(notices) == 1, notices
    assert "max_user_watches" in notices[0] and "rescanned every 0.3 s" in notices[0]


def test_watch_limit_reached_later_for_a_new_subfolder(tmp_path, isolated_library_dir,
                                                       watcher_factory):
    """watchdog adds a watch for each new subfolder; when that fails with ENOSPC it only
    logs it (exactly as below, from its inotify module) and leaves the subtree unwatched:
    the watcher hears it and rescans instead. (The real limit is machine-wide: see
    ExhaustedObserver.)"""
    folder = tmp_path / "samples"
    write_hits(folder, 1)
    scan(isolated_library_dir, folder)
    notices = []
    watcher = watcher_factory(poll_s=0.3, on_notice=notices.append)
    assert watcher.mode == "watching"
    logging.getLogger("watchdog.observers.inotify").warning(
        "Unable to watch %r: %s", os.fsencode(folder / "new-pack"),
        OSError(errno.ENOSPC, "inotify watch limit reached"))
    # the notice is said just after the mode changes, on the observer's thread
    assert wait_for(lambda: watcher.mode == "polling" and notices, timeout=30)
    assert watcher.watched() == [] and len(notices) == 1 and "max_user_watches" in notices[0]
    (folder / "new-pack").mkdir()
    shutil.copy(write_hits(tmp_path / "elsewhere", 1, seed=8)[0], folder / "new-pack" / "a.wav")
    picked_up(lambda: row(isolated_library_dir, folder / "new-pack" / "a.wav"))


def test_samplescout_watch_prints_what_it_picked_up(tmp_path, isolated_library_dir):
    folder = tmp_path / "samples"
    write_hits(folder, 1)
    scan(isolated_library_dir, folder)
    newcomer = write_hits(tmp_path / "elsewhere", 1, seed=6)[0]
    exe = shutil.which("samplescout", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-c", "from app.cli import main; raise SystemExit(main())"]
    process = subprocess.Popen(command + ["watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=Path(__file__).parent.parent,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent),
                                    "PYTHONFAULTHANDLER": "1"})
    lines: list[str] = []
    errors: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),
                              daemon=True)
    # stderr read as it comes too: a full pipe would block the app, not the test
    error_reader = threading.Thread(target=lambda: errors.extend(iter(process.stderr.readline, "")),
                                    daemon=True)
    reader.start()
    error_reader.start()
    try:
        assert wait_for(lambda: any("watched (Ctrl-C stops)" in line for line in lines),
                        timeout=60), (lines, errors)
        shutil.copy(newcomer, folder / "fresh.wav")
        assert wait_for(lambda: any(line.startswith("added") and "fresh.wav" in line
                                    for line in lines), timeout=30), (lines, errors)
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            abort_with_stacks(process)
            error_reader.join(10)
            pytest.fail("samplescout watch did not stop after Ctrl-C:\n" + "".join(errors)[-6000:])
        assert code == 0, "".join(errors)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(10)
    assert lines[-1].strip() == "Stopped watching."


def test_window_host_reloads_the_library_when_the_watcher_stores(qtbot, tmp_path,
                                                                  isolated_library_dir):
    from tests.null_host import NullHost
    folder = tmp_path / "samples"
    write_hits(folder, 1)
    scan(isolated_library_dir, folder)
    host = NullHost(isolated_library_dir)
    try:
        host.watch_folders()
        assert host.watcher.ready.wait(30)
        newcomer = write_hits(tmp_path / "elsewhere", 1, seed=7)[0]
        with qtbot.waitSignal(host.library_changed, timeout=30000):
            with qtbot.waitSignal(host.info, timeout=30000) as info:
                shutil.copy(newcomer, folder / "dropped.wav")
        assert info.args == ["Library folders: 1 added"]
        assert ("reload_library", ()) in host.calls
    finally:
        host.close()
