"""What keeps a large library cheap (bench/million.py measures the figures): an unchanged
re-scan reads only the rows' stamps and neither opens nor rewrites the index; the window's
library thread hands its loaded index to the live session instead of a second copy."""

from __future__ import annotations

import os
import threading
import time

from app.catalog import Catalog, FileAnalysis
from app.library import Library
from app.library_tasks import LibraryThread
from app.paths import CATALOG_FILENAME, INDEX_FILENAME
from app.scanner import Scanner
from tests.conftest import wait_for
from tests.test_scanner import write_hits


def test_file_stamps_match_the_full_rows_for_text_and_byte_paths(tmp_path):
    root = tmp_path / "samples"
    names = [str(root / "a.wav"), str(root / "sub" / "b.wav"),
             os.fsdecode(os.fsencode(str(root)) + b"/caf\xe9.wav"),    # not UTF-8
             str(tmp_path / "samples-other" / "c.wav")]                 # beside, not inside
    with Catalog(tmp_path / "catalog.sqlite3") as catalog:
        for i, path in enumerate(names):
            catalog.store(FileAnalysis(path=path, size=100 + i, mtime_ns=7 + i, content_hash=f"h{i}",
                                       status="skipped" if i == 1 else "indexed",
                                       error_code="silent" if i == 1 else None, model_id="m"))
        rows = catalog.files_under(root)
        stamps = catalog.file_stamps(root)
    assert sorted(stamps) == sorted(rows) == sorted(names[:3])
    for path, row in rows.items():
        assert stamps[path] == (row.id, row.size, row.mtime_ns, row.status, row.model_id,
                                row.error_code)


def test_an_unchanged_rescan_neither_opens_nor_rewrites_the_index(tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    write_hits(root, 3)
    with Library(isolated_library_dir) as library:
        assert Scanner(library, workers=1).scan([root]).indexed == 3
    index_file = isolated_library_dir / INDEX_FILENAME
    before = os.stat(index_file)

    with Library(isolated_library_dir) as library:
        report = Scanner(library, workers=1).scan([root])
        assert (report.unchanged, report.files_analysed) == (3, 0)
        assert library.index_note == ""          # never opened
    after = os.stat(index_file)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    # a change still reaches the index on disk
    write_hits(root, 1, seed=5)
    with Library(isolated_library_dir) as library:
        assert Scanner(library, workers=1).scan([root]).indexed == 1
    assert os.stat(index_file).st_ino != before.st_ino
    with Library(isolated_library_dir) as library:
        assert len(library.index) == library.catalog.vector_count(library.encoder.model_id)
        assert library.index_note == "loaded"


def test_the_library_thread_shares_its_index_and_waits_for_a_reload(tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    write_hits(root, 2)
    with Library(isolated_library_dir) as library:
        Scanner(library, workers=1).scan([root])
    errors: list[str] = []
    thread = LibraryThread(isolated_library_dir, errors.append)
    try:
        first = thread.index(timeout=60)
        assert first is not None and len(first) >= 2
        assert thread.index(timeout=0) is first      # the same copy, every time
        assert thread.files == 2
        thread.reload()
        second = thread.index(timeout=60)            # waits for the reopened library's
        assert second is not None and second is not first and len(second) == len(first)
    finally:
        thread.close()
    assert errors == []


def test_work_waiting_for_the_library_runs_once_it_has_opened_and_at_once_afterwards(
        tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    write_hits(root, 2)
    with Library(isolated_library_dir) as library:
        Scanner(library, workers=1).scan([root])
    thread = LibraryThread(isolated_library_dir, lambda line: None)
    ran: list[tuple[str, bool, str]] = []

    def waiting(name):
        # what the index holds when it runs, and on which thread
        return lambda: ran.append((name, thread.index(timeout=0) is not None,
                                   threading.current_thread().name))
    try:
        thread.when_open(waiting("before"))
        assert thread.index(timeout=60) is not None
        assert wait_for(lambda: ran, timeout=30)
        thread.when_open(waiting("after"))        # opened: runs now, on this thread
        assert ran[-1] == ("after", True, threading.current_thread().name)
        thread.reload()                           # a reopen does not run them again
        assert thread.index(timeout=60) is not None
    finally:
        thread.close()
    assert [name for name, _, _ in ran] == ["before", "after"]
    assert ran[0][1], "ran before the index had opened"


def test_a_library_opened_early_is_handed_out_once_with_the_errors_it_held(tmp_path,
                                                                           isolated_library_dir):
    from app import library_tasks
    root = tmp_path / "samples"
    write_hits(root, 2)
    with Library(isolated_library_dir) as library:
        Scanner(library, workers=1).scan([root])
    library_tasks.open_early(isolated_library_dir)
    errors: list[str] = []
    first = library_tasks.library_thread(isolated_library_dir, errors.append)
    second = library_tasks.library_thread(isolated_library_dir, errors.append)
    try:
        assert first is not second                       # the early one, handed out once
        assert first.index(timeout=60) is not None and len(first.index(timeout=0)) >= 2
    finally:
        first.close()
        second.close()
    assert errors == []
    # a library that cannot open: the error line waits for whoever takes the thread
    (tmp_path / "a-file").write_text("a file where a folder should be")
    library_tasks.open_early(tmp_path / "a-file" / "library")    # cannot be made: no error here
    broken = tmp_path / "broken-library"
    broken.mkdir()
    (broken / CATALOG_FILENAME).write_bytes(b"not a database " * 100)
    library_tasks.open_early(broken)
    time.sleep(0.5)
    thread = library_tasks.library_thread(broken, errors.append)
    try:
        assert thread.index(timeout=60) is None
        assert wait_for(lambda: errors, timeout=30)
        assert errors[0].startswith("library unavailable"), errors
    finally:
        thread.close()
