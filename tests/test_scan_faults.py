"""Faults a library meets, on real files and real processes: names that are not UTF-8,
folders that cannot be read, links out of the library, special files, two writers at once,
``kill -9`` and Ctrl-C (sent to the whole process group, as a terminal does)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


from app.cli import main
from app.index import VectorIndex
from app.library import Library, LibraryBusyError
from app.paths import CATALOG_FILENAME, INDEX_FILENAME
from app.scanner import walk_audio_files
from tests.conftest import proc_stats
from tests.test_scanner import _wait_for_rows, scan, write_hits

REPO = Path(__file__).parent.parent


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def _index_cmd(root: Path, library_dir: Path, workers: int = 1) -> list[str]:
    # The slower aisfx encoder leaves time to act while the scan runs.
    return _cli("index", str(root), "--library-dir", str(library_dir), "--workers", str(workers),
                "--model", "aisfx")


def _process_group(pgid: int) -> list[int]:
    """Live processes of a process group, read from /proc (zombies excluded)."""
    return [pid for pid, fields in proc_stats() if int(fields[2]) == pgid and fields[0] != "Z"]


def _wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class _Lines:
    """Collects a pipe's lines on a thread, so the test can wait for one."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        def found():
            return next((m for m in map(re.compile(pattern).search, list(self.lines)) if m), None)
        return _wait_until(found, timeout, f"a line matching {pattern!r}")

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def _rows(library_dir: Path) -> int:
    with sqlite3.connect(library_dir / CATALOG_FILENAME, timeout=30) as db:
        return db.execute("SELECT COUNT(*) FROM files").fetchone()[0]


# -- names, folders, links --------------------------------------------------------------------

def test_a_name_that_is_not_utf8_is_indexed_found_and_cleaned_out(tmp_path, isolated_library_dir,
                                                                  capsys):
    root = tmp_path / "samples"
    paths = write_hits(root, 3)
    latin1_file = os.fsdecode(os.path.join(os.fsencode(root), b"caf\xe9.wav"))
    latin1_folder = os.fsdecode(os.path.join(os.fsencode(root), b"d\xe9mo"))
    os.rename(paths[0], latin1_file)
    os.mkdir(latin1_folder)
    os.rename(paths[1], os.path.join(latin1_folder, "kick.wav"))

    report, consistent = scan(isolated_library_dir, root)
    assert consistent and report.indexed == 3 and not report.skipped
    again, _ = scan(isolated_library_dir, root)
    assert (again.unchanged, again.indexed, again.removed) == (3, 0, 0)
    with Library(isolated_library_dir) as library:
        row = library.catalog.file_by_path(latin1_file)
        assert row.status == "indexed" and os.path.exists(row.path)  # the real bytes came back
        assert list(library.catalog.files_under(latin1_folder)) == [
            os.path.join(latin1_folder, "kick.wav")]
        assert library.search_file(latin1_file, k=1)[0].file.path == latin1_file
    capsys.readouterr()
    assert main(["search", latin1_file, "-k", "1"]) == 0
    assert "\ufffd" in capsys.readouterr().out  # shown readably, not as a crash

    os.unlink(latin1_file)
    shutil.rmtree(latin1_folder)
    gone, consistent = scan(isolated_library_dir, root)
    assert consistent and gone.removed == 2
    with Library(isolated_library_dir) as library:
        assert library.catalog.file_by_path(latin1_file) is None
        assert library.catalog.stats()["indexed"] == 1


def test_a_folder_that_cannot_be_read_keeps_its_files(tmp_path, isolated_library_dir):
    """The second scan runs without the capabilities that let root read any folder
    (setpriv drops them from the bounding set, so the spawned workers lack them too)."""
    root = tmp_path / "samples"
    write_hits(root / "open", 2)
    write_hits(root / "locked", 2, seed=3)
    first, _ = scan(isolated_library_dir, root)
    assert first.indexed == 4
    os.chmod(root / "locked", 0o000)
    try:
        proc = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--",
             *_index_cmd(root, isolated_library_dir)[:-2]],
            capture_output=True, text=True, cwd=REPO, timeout=300)
        probe = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", "ls",
             str(root / "locked")], capture_output=True)
    finally:
        os.chmod(root / "locked", 0o755)
    assert probe.returncode != 0, "the folder was readable: the test proves nothing"
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"unreadable folder: \S*locked .*catalogued files are kept", proc.stdout)
    assert re.search(r"removed \(gone from disk\)\s+0", proc.stdout), proc.stdout
    with Library(isolated_library_dir) as library:
        assert library.catalog.stats()["indexed"] == 4
    back, consistent = scan(isolated_library_dir, root)
    assert consistent and back.unchanged == 4 and back.removed == 0


def test_links_out_of_the_library_and_special_files_are_not_followed(tmp_path,
                                                                     isolated_library_dir):
    root = tmp_path / "samples"
    write_hits(root / "kit", 2)
    elsewhere = tmp_path / "elsewhere"
    write_hits(elsewhere, 1, seed=5)
    os.symlink(elsewhere, root / "linked")       # same filesystem: followed
    os.symlink("/proc", root / "proc")           # never
    os.symlink("/dev/zero", root / "zero.wav")   # a device behind a link
    os.mkfifo(root / "kit" / "pipe.wav")         # would block whoever opens it
    other_fs = tmp_path / "mnt"
    other_fs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(other_fs)], check=True)
    try:
        write_hits(other_fs / "usb", 1, seed=7)
        os.symlink(other_fs / "usb", root / "usb")  # another filesystem: not followed ...

        report, consistent = scan(isolated_library_dir, root)
        with Library(isolated_library_dir) as library:
            found = sorted(os.path.relpath(p, root) for p in library.catalog.files_under(root))
        assert consistent and found == ["kit/hit_0_000.wav", "kit/hit_0_001.wav",
                                        "linked/hit_5_000.wav"]
        problems = "\n".join(report.problems)
        assert "link into /proc not followed" in problems
        assert "link into /dev not followed" in problems and "zero.wav" in problems
        assert "not a regular file" in problems and "pipe.wav" in problems
        assert "link leaves the library's filesystem" in problems and "usb" in problems

        proc_problems: list[str] = []
        assert list(walk_audio_files("/proc", proc_problems)) == []  # not even as a root
        assert proc_problems == ["/proc is never scanned, skipped: /proc"]

        scan(isolated_library_dir, other_fs / "usb")  # ... until it is a library folder
        again, consistent = scan(isolated_library_dir, root)
        assert consistent and again.duplicates == 1
        assert "link leaves" not in "\n".join(again.problems)
    finally:
        subprocess.run(["umount", str(other_fs)], check=True)


# -- one writer -------------------------------------------------------------------------------

def test_a_second_index_run_is_refused_while_the_first_writes(tmp_path, isolated_library_dir,
                                                              monkeypatch):
    root = tmp_path / "samples"
    write_hits(root, 24, seconds=6.0)
    first = subprocess.Popen(_index_cmd(root, isolated_library_dir), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        _wait_for_rows(isolated_library_dir, 2, first)
        # The first run is held still (its lock with it) while the second starts, so a slow
        # start-up of the second on a loaded machine cannot let the first finish first.
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second = subprocess.run(_index_cmd(root, isolated_library_dir), capture_output=True,
                                    text=True, cwd=REPO, timeout=120)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert first.poll() is None, "the first scan ended before the second started"
        assert second.returncode == 1
        assert f"another Sample Scout process (pid {first.pid}) is updating" in second.stderr
        assert "Traceback" not in second.stderr
        _, stderr = first.communicate(timeout=600)
        assert first.returncode == 0, stderr
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    monkeypatch.setenv("SAMPLESCOUT_MODEL", "aisfx")
    with Library(isolated_library_dir) as library:
        model_id = library.encoder.model_id
        saved = VectorIndex.load(isolated_library_dir / INDEX_FILENAME, dim=library.encoder.dim,
                                 model_id=model_id)
        assert set(saved.vector_files()) == set(library.catalog.vector_ids(model_id).tolist())
        assert library.catalog.stats()["indexed"] == 24


def test_an_index_whose_stamp_matches_but_whose_ids_do_not_is_repaired(tmp_path,
                                                                       isolated_library_dir):
    """Two writers could leave an index stamped with the catalog's generation but holding
    other vectors; the ids decide, not the stamp."""
    root = tmp_path / "samples"
    paths = write_hits(root, 4)
    scan(isolated_library_dir, root)
    stale = (isolated_library_dir / INDEX_FILENAME).read_bytes()
    paths[0].unlink()
    write_hits(root, 1, seed=9)
    scan(isolated_library_dir, root)
    with Library(isolated_library_dir) as library:
        stamp = library.catalog.generation
    (isolated_library_dir / INDEX_FILENAME).write_bytes(stale)
    with Library(isolated_library_dir) as library:  # restamp the stale index: a fooled save
        index = VectorIndex.load(library.index_path, dim=library.encoder.dim,
                                 model_id=library.encoder.model_id)
        index.generation = stamp
        index.save(library.index_path)
    with Library(isolated_library_dir) as library:
        model_id = library.encoder.model_id
        assert set(library.index.vector_files()) == set(library.catalog.vector_ids(model_id).tolist())
        assert "repaired" in library.index_note
        assert library.search_file(paths[0].parent / "hit_9_000.wav", k=1)[0].score > 0.99


def test_a_library_held_by_a_writer_refuses_another_writer_in_process(tmp_path,
                                                                      isolated_library_dir):
    with Library(isolated_library_dir) as one, Library(isolated_library_dir) as two:
        with one.writer_lock():
            try:
                with two.writer_lock():
                    raise AssertionError("two writers held the lock")
            except LibraryBusyError as exc:
                assert f"pid {os.getpid()}" in str(exc)
            assert two.save_index() is False  # a reader leaves the index to the writer
        with two.writer_lock():
            assert two.save_index() is True


# -- kill -9, Ctrl-C, leftovers ---------------------------------------------------------------

def _semaphores_of(pids: list[int]) -> set[str]:
    names = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                names.update(m.group(0) for m in re.finditer(r"/dev/shm/sem\.mp-\S+", f.read()))
        except OSError:
            pass
    return names


def test_kill_9_of_the_scan_leaves_no_process_semaphore_or_temp_file(tmp_path,
                                                                     isolated_library_dir):
    root = tmp_path / "samples"
    write_hits(root, 40, seconds=6.0)
    proc = subprocess.Popen(_index_cmd(root, isolated_library_dir, workers=2),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            start_new_session=True)
    try:
        _wait_for_rows(isolated_library_dir, 3, proc)
        members = _process_group(proc.pid)
        assert len(members) >= 4, "expected the CLI, two workers and the resource tracker"
        semaphores = _semaphores_of(members)
        assert semaphores, "the workers map no multiprocessing semaphore"
        proc.kill()
        proc.wait(timeout=30)
        left = _wait_until(lambda: not _process_group(proc.pid) or None, 30,
                           "the scan's worker processes and resource tracker to exit")
        assert left
    finally:
        for pid in _process_group(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert not [s for s in semaphores if os.path.exists(s)]

    # An index save cut short leaves temp files: the next writer removes them.
    stale = [isolated_library_dir / f".{INDEX_FILENAME}.x1y2.hnsw.tmp",
             isolated_library_dir / f".{INDEX_FILENAME}.x1y2.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 4096)
    report, consistent = scan(isolated_library_dir, root)
    assert consistent and report.unchanged + report.indexed == 40
    assert not [p for p in stale if p.exists()]


def _start_in_own_group(root: Path, library_dir: Path) -> tuple[subprocess.Popen, _Lines]:
    proc = subprocess.Popen(_index_cmd(root, library_dir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    return proc, _Lines(proc.stderr)


def test_first_ctrl_c_commits_the_files_in_flight(tmp_path, isolated_library_dir):
    """SIGINT to the whole process group: workers get it too and must carry on."""
    root = tmp_path / "samples"
    write_hits(root, 60, seconds=6.0)
    proc, stderr = _start_in_own_group(root, isolated_library_dir)
    try:
        before = _wait_for_rows(isolated_library_dir, 3, proc)
        os.killpg(proc.pid, signal.SIGINT)
        in_flight = int(stderr.wait_for(r"finishing the (\d+) files in flight").group(1))
        assert proc.wait(timeout=300) == 130, stderr.text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = stderr.text()
    assert "run the same command again to resume" in text and "Traceback" not in text
    done = _rows(isolated_library_dir)
    assert in_flight >= 1
    assert before + in_flight <= done < 60
    _wait_until(lambda: not _process_group(proc.pid) or None, 30, "the scan's processes to exit")


def test_second_ctrl_c_stops_at_once_and_keeps_what_was_saved(tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    write_hits(root, 60, seconds=6.0)
    proc, stderr = _start_in_own_group(root, isolated_library_dir)
    try:
        before = _wait_for_rows(isolated_library_dir, 3, proc)
        os.killpg(proc.pid, signal.SIGINT)
        in_flight = int(stderr.wait_for(r"finishing the (\d+) files in flight").group(1))
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 130, stderr.text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in stderr.text()
    assert in_flight >= 2
    done = _rows(isolated_library_dir)
    assert before <= done < before + in_flight  # it did not wait for the files in flight
    _wait_until(lambda: not _process_group(proc.pid) or None, 30, "the scan's processes to exit")
    db = sqlite3.connect(isolated_library_dir / CATALOG_FILENAME)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM vectors WHERE file_id NOT IN "
                          "(SELECT id FROM files)").fetchone()[0] == 0
    finally:
        db.close()


# -- damaged catalog, full disk ---------------------------------------------------------------

def test_damaged_vector_rows_are_skipped_reported_and_re_analysed(tmp_path, isolated_library_dir,
                                                                  capsys):
    root = tmp_path / "samples"
    paths = write_hits(root, 4)
    assert main(["index", str(root), "--workers", "1"]) == 0
    db = sqlite3.connect(isolated_library_dir / CATALOG_FILENAME)
    with db:
        by_file = dict(db.execute("SELECT f.path, MIN(v.id) FROM vectors v JOIN files f "
                                  "ON f.id = v.file_id GROUP BY f.path"))
        nan = np.full(256, np.nan, dtype="<f4").tobytes()
        db.execute("UPDATE vectors SET vector = ? WHERE id = ?", (nan, by_file[str(paths[0])]))
        db.execute("UPDATE vectors SET vector = substr(vector, 1, 100) WHERE id = ?",
                   (by_file[str(paths[1])],))
    db.close()
    (isolated_library_dir / INDEX_FILENAME).unlink()  # the index must be rebuilt
    capsys.readouterr()

    assert main(["search", str(paths[3]), "-k", "1"]) == 0
    out, err = capsys.readouterr()
    assert paths[3].name in out
    assert "2 damaged vectors in the catalog were skipped; their 2 files are re-analysed" in err

    assert main(["index", str(root), "--workers", "1"]) == 0
    with Library(isolated_library_dir) as library:
        assert library.catalog.stats()["indexed"] == 4
        assert len(library.index) == library.catalog.vector_count()
        assert library.search_file(paths[0], k=1)[0].file.path == str(paths[0])
        assert not library.problems


def _damage_pages(catalog: Path) -> None:
    """Scribble over every page after the first (the schema stays readable)."""
    data = bytearray(catalog.read_bytes())
    for page in range(4096, len(data), 4096):
        data[page:page + 64] = b"\xa5" * 64
    catalog.write_bytes(bytes(data))


def test_a_damaged_catalog_is_one_clear_line_that_says_what_to_do(tmp_path,
                                                                  isolated_library_dir, capsys):
    root = tmp_path / "samples"
    paths = write_hits(root, 4)
    assert main(["index", str(root), "--workers", "1"]) == 0
    _damage_pages(isolated_library_dir / CATALOG_FILENAME)
    for argv in (["library"], ["search", str(paths[0])], ["index", str(root), "--workers", "1"]):
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert "is damaged" in err and "Move it aside" in err and "samplescout index" in err


def _fill(disk: Path, leave: int) -> None:
    """Fill a small filesystem, then give back ``leave`` bytes."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave))


def test_a_full_disk_still_answers_and_a_scan_stops_with_one_message(tmp_path,
                                                                     isolated_library_dir):
    root = tmp_path / "samples"
    paths = write_hits(root, 6)
    more = tmp_path / "more"
    write_hits(more, 30, seed=4)
    built = tmp_path / "built"
    assert main(["index", str(root), "--library-dir", str(built), "--workers", "1"]) == 0
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    try:
        for name in (CATALOG_FILENAME, INDEX_FILENAME):
            shutil.copy(built / name, disk / name)
        _fill(disk, leave=0)
        search = subprocess.run(_cli("search", str(paths[1]), "-k", "1", "--library-dir",
                                     str(disk)), capture_output=True, text=True, cwd=REPO)
        assert search.returncode == 0 and paths[1].name in search.stdout, search.stderr
        library = subprocess.run(_cli("library", "--json", "--library-dir", str(disk)),
                                 capture_output=True, text=True, cwd=REPO)
        assert library.returncode == 0, library.stderr
        assert '"indexed": 6' in library.stdout

        # Full at the start, then at various points of the scan (commits, the index save).
        for leave in (0, 48 << 10, 64 << 10, 80 << 10, 96 << 10, 112 << 10, 128 << 10, 176 << 10):
            for old in disk.iterdir():  # a fresh copy of the library each time
                old.unlink()
            for name in (CATALOG_FILENAME, INDEX_FILENAME):
                shutil.copy(built / name, disk / name)
            _fill(disk, leave)
            scan_run = subprocess.run(_cli("index", str(more), "--library-dir", str(disk),
                                           "--workers", "1"),
                                      capture_output=True, text=True, cwd=REPO, timeout=300)
            assert scan_run.returncode == 1, scan_run.stdout
            lines = [line for line in scan_run.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, scan_run.stderr
            assert "free some space" in lines[0]
        (disk / "filler").unlink()
        with Library(disk) as after:  # what each stopped scan finished is there, intact
            after.catalog.check()
            assert len(after.index) == after.catalog.vector_count()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


_CTRL_C_WHILE_WORKERS_START = """
import os, signal, sys
from app.scanner import _Candidate, _WorkerPool
got = []
signal.signal(signal.SIGINT, lambda *_: got.append(1))
pool = _WorkerPool(2, None, frozenset())
futures = [pool.submit(_Candidate(p, os.path.getsize(p), 0), False) for p in sys.argv[1:]]
os.killpg(0, signal.SIGINT)  # the workers are still starting: Python is not even up yet
try:
    print(sorted(type(f.result()).__name__ for f in futures), bool(got))
finally:
    pool.shutdown()
"""


def test_a_ctrl_c_while_the_workers_start_does_not_kill_them(tmp_path):
    paths = write_hits(tmp_path / "samples", 2)
    run = subprocess.run([sys.executable, "-c", _CTRL_C_WHILE_WORKERS_START, *map(str, paths)],
                         capture_output=True, text=True, cwd=REPO, timeout=120,
                         start_new_session=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['FileAnalysis', 'FileAnalysis'] True", run.stderr
