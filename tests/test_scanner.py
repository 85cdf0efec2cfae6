"""The library scanner on real files in temp folders: bad input, incremental
re-scans, moves, deletions, interruption (Ctrl-C and kill -9) and resumption."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.folder_identity import MARKER_NAME
from app.library import Library, LibraryError
from app.paths import CATALOG_FILENAME, INDEX_FILENAME
from app.scanner import Scanner, walk_audio_files
from tests import badfiles
from tests.conftest import wait_for
from tests.shipped import SCOUT_MODEL_ID


def write_hits(folder: Path, count: int, seconds: float = 0.6, seed: int = 0,
               sample_rate: int = 44100) -> list[Path]:
    """Distinct percussive sounds: random partials and noise with random decays."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        rng = np.random.default_rng(seed * 1000 + i)
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        audio = np.zeros_like(t)
        for _ in range(4):
            freq = rng.uniform(40, 6000)
            audio += rng.uniform(0.1, 1) * np.sin(2 * np.pi * freq * t) * np.exp(-t * rng.uniform(3, 40))
        audio += rng.uniform(0, 0.5) * rng.normal(size=len(t)) * np.exp(-t * rng.uniform(10, 80))
        audio *= 0.5 / np.max(np.abs(audio))
        path = folder / f"hit_{seed}_{i:03d}.wav"
        sf.write(path, audio.astype(np.float32), sample_rate, subtype="PCM_16")
        paths.append(path)
    return paths


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder`` with its size and mtime (links not followed), but the
    library folder's marker file (the one file a scan writes, see app.folder_identity)."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if name == MARKER_NAME and dirpath == os.fspath(folder):
                continue
            st = os.lstat(path)
            state[path] = (st.st_size, st.st_mtime_ns)
    return state


def scan(library_dir: Path, *roots: Path, workers: int = 2):
    with Library(library_dir) as library:
        report = Scanner(library, workers=workers).scan(list(roots))
        consistent = len(library.index) == library.catalog.vector_count(library.encoder.model_id)
        return report, consistent


def test_bad_and_odd_files_are_skipped_with_specific_reasons(tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    cases = badfiles.make_bad_library(root)
    long_file = badfiles.write_long(root / "long", seconds=660.0, sample_rate=8000)
    (root / "good" / "loop").symlink_to(root, target_is_directory=True)
    (root / "notes.txt").write_text("not a sample, ignored")
    before = snapshot(root)

    report, consistent = scan(isolated_library_dir, root)

    assert snapshot(root) == before, "the scan wrote into the sample folder"
    assert consistent
    with Library(isolated_library_dir) as library:
        for name, (path, expected_code) in cases.items():
            row = library.catalog.file_by_path(str(path))
            assert row is not None, f"{name}: no catalog row"
            if name == "silent":
                assert (row.status, row.error_code) == ("skipped", "silent"), name
            elif expected_code is None:
                assert row.status == "indexed", f"{name}: {row.error}"
                assert row.duration > 0 and row.sample_rate > 0 and row.channels > 0
            else:
                assert (row.status, row.error_code) == ("skipped", expected_code), f"{name}: {row.error}"
                assert row.error and expected_code.split("_")[0] in row.error.lower()
        long_row = library.catalog.file_by_path(str(long_file))
        assert long_row.status == "indexed" and long_row.duration > 600
        assert len(library.catalog.file_vectors(long_row.id)[0]) > 100  # one vector per block
        assert library.catalog.file_by_path(str(root / "notes.txt")) is None

    expected_skips = sum(1 for _, code in cases.values() if code) + 1  # + the silent file
    assert sum(report.skipped.values()) == expected_skips
    assert report.skipped["silent"] == 1
    assert any("link" in p and "loop" in p for p in report.problems), report.problems


def test_rescan_moves_copies_edits_and_deletions(tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    paths = write_hits(root / "drums", 6)

    first, consistent = scan(isolated_library_dir, root)
    assert (first.indexed, first.unchanged) == (6, 0) and consistent

    again, _ = scan(isolated_library_dir, root)
    assert (again.indexed, again.unchanged, again.files_analysed) == (0, 6, 0)

    with Library(isolated_library_dir) as library:
        moved_row = library.catalog.file_by_path(str(paths[0]))
        moved_vectors = library.catalog.file_vectors(moved_row.id)[0]
    (root / "renamed").mkdir()
    moved_to = root / "renamed" / "kick final.wav"
    shutil.move(paths[0], moved_to)
    shutil.copy(paths[1], root / "copy of hit.wav")
    paths[2].unlink()
    write_hits(root / "edited", 1, seed=7)[0].replace(paths[3])  # new content, same path

    report, consistent = scan(isolated_library_dir, root)
    assert consistent
    assert (report.relinked, report.duplicates, report.removed, report.indexed) == (1, 1, 1, 1)
    assert report.files_analysed == 1  # only the edited file was decoded and embedded

    with Library(isolated_library_dir) as library:
        row = library.catalog.file_by_path(str(moved_to))
        assert row.id == moved_row.id
        np.testing.assert_array_equal(library.catalog.file_vectors(row.id)[0], moved_vectors)
        assert library.catalog.file_by_path(str(paths[2])) is None
        top = library.search_file(moved_to, k=3)[0]
        assert top.file.path == str(moved_to) and top.score > 0.99
        found = {r.file.path for r in library.search_file(paths[1], k=10)}
        assert str(paths[2]) not in found
        assert {str(paths[1]), str(root / "copy of hit.wav")} <= found


def test_missing_library_folder_keeps_its_files(tmp_path, isolated_library_dir):
    root = tmp_path / "external-drive"
    write_hits(root, 3)
    scan(isolated_library_dir, root)
    root.rename(tmp_path / "unplugged")
    report, _ = scan(isolated_library_dir, root)
    assert any("library folder not found" in p and "3 catalogued files are kept" in p
               for p in report.problems)
    with Library(isolated_library_dir) as library:
        assert library.catalog.stats()["indexed"] == 3


def test_index_file_damage_or_staleness_is_repaired_from_the_catalog(tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    write_hits(root, 4)
    scan(isolated_library_dir, root)
    index_path = isolated_library_dir / INDEX_FILENAME
    stale = index_path.read_bytes()
    write_hits(root, 3, seed=1)
    scan(isolated_library_dir, root)

    index_path.write_bytes(stale)  # as if the last save never happened
    with Library(isolated_library_dir) as library:
        assert len(library.index) == library.catalog.vector_count()
        assert "repaired" in library.index_note

    index_path.write_bytes(b"\0garbage" * 50)
    with Library(isolated_library_dir) as library:
        assert len(library.index) == library.catalog.vector_count()
        assert "rebuilt" in library.index_note


def test_unreadable_folder_is_reported_and_the_rest_walked(tmp_path):
    """Walks as an unprivileged user in a forked child (root, who reads any folder, drops
    to nobody there), so the test runs, never skips, as root or not."""
    base = Path(tempfile.mkdtemp(prefix="samplescout-perm-"))
    try:
        write_hits(base / "open", 2)
        write_hits(base / "locked", 2, seed=3)
        for dirpath, _, filenames in os.walk(base):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
        os.chmod(base / "locked", 0o000)
        if os.geteuid() != 0:
            problems: list[str] = []
            found = [c.path for c in walk_audio_files(str(base), problems)]
            assert sorted(Path(p).parent.name for p in found) == ["open", "open"]
            assert any(p.startswith("unreadable folder") and "locked" in p for p in problems)
            return
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop privileges, walk, report back as JSON
            try:
                os.close(read_end)
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                problems: list[str] = []
                found = [c.path for c in walk_audio_files(str(base), problems)]
                os.write(write_end, json.dumps([found, problems]).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            found, problems = json.loads(pipe.read())
        os.waitpid(pid, 0)
        assert sorted(Path(p).parent.name for p in found) == ["open", "open"]
        assert any(p.startswith("unreadable folder") and "locked" in p for p in problems), problems
    finally:
        os.chmod(base / "locked", 0o755)
        shutil.rmtree(base, ignore_errors=True)


def _start_scan(root: Path, library_dir: Path) -> subprocess.Popen:
    # The slower aisfx encoder and one worker leave time to interrupt the scan.
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "index", str(root), "--library-dir", str(library_dir),
         "--workers", "1", "--model", "aisfx"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).parent.parent)


def _wait_for_rows(library_dir: Path, at_least: int, proc: subprocess.Popen, timeout=120.0) -> int:
    deadline = time.monotonic() + timeout
    db_path = library_dir / CATALOG_FILENAME
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the scan finished before it could be interrupted"
        if db_path.exists():
            try:
                with sqlite3.connect(db_path, timeout=1) as db:
                    count = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
                if count >= at_least:
                    return count
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError("the scan made no progress")


@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_interrupted_scan_stays_consistent_and_resumes(tmp_path, isolated_library_dir, how,
                                                       monkeypatch):
    root = tmp_path / "samples"
    write_hits(root, 80, seconds=6.0)
    proc = _start_scan(root, isolated_library_dir)
    _wait_for_rows(isolated_library_dir, 5, proc)
    if how == "kill -9":
        proc.kill()
        proc.wait(timeout=30)
    else:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert "run the same command again to resume" in stderr

    db = sqlite3.connect(isolated_library_dir / CATALOG_FILENAME)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    done = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    orphan_vectors = db.execute(
        "SELECT COUNT(*) FROM vectors WHERE file_id NOT IN (SELECT id FROM files)").fetchone()[0]
    db.close()
    assert 0 < done < 80 and orphan_vectors == 0

    monkeypatch.setenv("SAMPLESCOUT_MODEL", "aisfx")
    report, consistent = scan(isolated_library_dir, root)
    assert consistent
    assert report.unchanged == done and report.indexed == 80 - done
    with Library(isolated_library_dir) as library:
        assert library.catalog.stats()["indexed"] == 80


def holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux: /proc/PID/fd)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


def test_a_worker_that_dies_is_replaced_and_the_file_that_kills_it_is_skipped(
        tmp_path, isolated_library_dir, monkeypatch):
    """Kills the scanner's worker processes for real (SIGKILL, as the OOM killer or a
    crashing decoder would): first while the long file is in flight with others, then
    while it is retried alone."""
    monkeypatch.setenv("SAMPLESCOUT_MODEL", "aisfx")  # the slower encoder: time to kill
    root = tmp_path / "samples"
    write_hits(root, 6)
    long_file = badfiles.write_long(root, seconds=660.0, sample_rate=8000)
    shorts_done = threading.Event()
    kills: list[int] = []

    def on_progress(progress):
        if progress.done >= 6:
            shorts_done.set()

    def reading_long_file(pids) -> bool:
        """One of ``pids`` has the long file open: it is hashing or decoding it."""
        return any(holds_open(pid, long_file) for pid in pids)

    def killer():
        if not shorts_done.wait(120):
            return
        first = {p.pid for p in multiprocessing.active_children()}
        if not wait_for(lambda: reading_long_file(first), 60):
            return
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        kills.append(len(first))
        fresh = wait_for(lambda: [p.pid for p in multiprocessing.active_children()
                                  if p.pid not in first and holds_open(p.pid, long_file)], 60)
        if fresh:                          # the long file's retry, alone, is in flight
            for pid in fresh:
                os.kill(pid, signal.SIGKILL)
            kills.append(len(fresh))

    thread = threading.Thread(target=killer)
    thread.start()
    with Library(isolated_library_dir) as library:
        report = Scanner(library, workers=2, progress=on_progress).scan([root])
        thread.join()
        assert len(kills) == 2, "the test did not get to kill the workers twice"
        row = library.catalog.file_by_path(str(long_file))
        assert (row.status, row.error_code) == ("skipped", "analysis_failed")
        assert "crashed" in row.error
        assert library.catalog.stats()["indexed"] == 6
        assert not report.interrupted
        assert len(library.index) == library.catalog.vector_count()


def test_changing_the_model_re_embeds_instead_of_mixing_vectors(tmp_path, isolated_library_dir,
                                                                monkeypatch):
    root = tmp_path / "samples"
    paths = write_hits(root, 4)
    monkeypatch.setenv("SAMPLESCOUT_MODEL", "aisfx")
    first, _ = scan(isolated_library_dir, root)
    assert first.indexed == 4
    monkeypatch.setenv("SAMPLESCOUT_MODEL", "scout")
    with Library(isolated_library_dir) as library:
        # before the re-scan, a search says why it cannot answer instead of "empty"
        with pytest.raises(LibraryError, match=r"analysed by another model \(aisfx-int8-1/r\d+\)"):
            library.search_file(paths[2], k=1)
    report, consistent = scan(isolated_library_dir, root)
    assert consistent and report.indexed == 4 and report.files_analysed == 4
    with Library(isolated_library_dir) as library:
        assert library.encoder.network_id == SCOUT_MODEL_ID
        assert set(library.catalog.stats()["vectors_by_model"]) == {library.encoder.model_id}
        assert library.search_file(paths[2], k=1)[0].file.path == str(paths[2])
    again, _ = scan(isolated_library_dir, root)
    assert again.unchanged == 4 and again.files_analysed == 0


def test_progress_moves_with_each_finished_file_between_commits(tmp_path, isolated_library_dir,
                                                                 monkeypatch):
    """The bar follows the files as they finish, not the commits: with commits held back
    (here: one at the end), a 12-file scan still reports its count rising file by file,
    and its last report is the whole scan. A scan that committed twice a second jumped
    from 4 to 30 of 30 and never showed the time left."""
    import app.scanner
    monkeypatch.setattr(app.scanner, "COMMIT_EVERY_S", 3600.0)
    root = tmp_path / "samples"
    write_hits(root, 12)
    seen: list[tuple[int, int]] = []
    with Library(isolated_library_dir) as library:
        report = Scanner(library, workers=2, progress=lambda p: seen.append((p.done, p.total))).scan([root])
        assert library.catalog.stats()["indexed"] == 12
    counts = [done for done, _ in seen]
    assert counts == sorted(counts) and all(total == 12 for _, total in seen), seen
    assert len(set(counts)) >= 6, seen          # at least every other file, not one jump
    assert counts[-1] == 12 and report.indexed == 12
