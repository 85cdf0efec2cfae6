"""The shared catalogue on a real PostgreSQL 18 + pgvector server (``bench.harness.pg_server``):
two machines mounting one share at two paths see one library and never analyse a file
twice; pgvector answers as the local hnswlib path does; a server restart mid-scan loses
nothing; a stopped server leaves search working on the stale local copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.catalog import Catalog
from app.library import Library, LibraryError
from app.vector_files import id_summary
from app.scanner import Scanner
from app.storage import CatalogStore, StorageUnavailable, VectorSearch
from tests.conftest import SONIC_PI

pytestmark = pytest.mark.samples

QUERIES = ("bd_808.flac", "sn_dub.flac", "drum_cymbal_closed.flac")


@pytest.fixture(scope="module")
def server():
    from bench.harness.pg_server import PgServer
    pg = PgServer()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture
def running(server):
    """The module's server, started again if a test left it stopped."""
    if not server.running:
        server.start()
    yield server
    if not server.running:
        server.start()


@pytest.fixture(scope="module")
def nas(tmp_path_factory) -> Path:
    """A share of Debian's drum one-shots, as the NAS itself holds it."""
    if not SONIC_PI.exists():
        pytest.skip("Debian package sonic-pi-samples is not installed; `make test` installs it")
    share = tmp_path_factory.mktemp("nas") / "Drums"
    share.mkdir()
    for source in sorted(SONIC_PI.glob("*.flac")):
        if source.name.startswith(("bd_", "sn_", "drum_")):
            shutil.copy2(source, share / source.name)
    return share


def mount(nas: Path, where: Path) -> Path:
    """The share as one machine sees it: the same files under another path."""
    where.parent.mkdir(parents=True, exist_ok=True)
    where.symlink_to(nas, target_is_directory=True)
    return where


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def top(results, n: int = 5) -> list[str]:
    return [Path(r.file.path).name for r in results[:n]]


@pytest.fixture(scope="module")
def two_machines(server, nas, tmp_path_factory):
    """Machine A scans the share at /…/a/Drums; while A is between two batches, machine B
    scans it at /…/b/Drums; then A finishes. Yields what each saw."""
    root = tmp_path_factory.mktemp("machines")
    address = server.create_database("studio")
    path_a, path_b = mount(nas, root / "a" / "Drums"), mount(nas, root / "b" / "Drums")
    reports = {}

    def scan_b():
        try:
            with Library(root / "lib-b", catalog=address) as library:
                library.map_share(path_b, "nas-drums")
                reports["scan_b"] = Scanner(library, workers=1).scan([path_b])
        except BaseException as exc:  # noqa: BLE001 — raised again on the test's thread
            reports["scan_b"] = exc

    def on_progress(progress):
        if "scan_b" not in reports and progress.done < progress.total:
            other = threading.Thread(target=scan_b)   # a Library belongs to its thread
            other.start()
            other.join()

    # One commit per finished file, so A is between batches at least once however fast the
    # machine analyses the share.
    with Library(root / "lib-a", catalog=address) as library, pytest.MonkeyPatch.context() as mp:
        mp.setattr("app.scanner.COMMIT_EVERY_S", 0.0)
        library.map_share(path_a, "nas-drums")
        reports["scan_a"] = Scanner(library, workers=1, progress=on_progress).scan([path_a])
    if isinstance(reports.get("scan_b"), BaseException):
        raise reports["scan_b"]
    # the samples (a local scan of the share left its hidden library-folder marker there)
    files = sorted(p.name for p in nas.iterdir() if not p.name.startswith("."))
    yield {"address": address, "root": root, "a": path_a, "b": path_b, "files": files, **reports}


def test_storage_protocols_cover_both_implementations(two_machines, running):
    from app.index import VectorIndex
    from app.pg_store import PgCatalog, PgVectorIndex
    with Library(two_machines["root"] / "lib-a", catalog=two_machines["address"]) as shared:
        assert isinstance(shared.catalog, PgCatalog) and isinstance(shared.index, PgVectorIndex)
        assert isinstance(shared.catalog, CatalogStore) and isinstance(shared.index, VectorSearch)
    with Catalog(two_machines["root"] / "local.sqlite3") as local:
        assert isinstance(local, CatalogStore)
    assert isinstance(VectorIndex(8, "m"), VectorSearch)


def test_two_machines_one_share_is_one_library_and_no_file_is_analysed_twice(two_machines, running):
    a, b, files = two_machines["a"], two_machines["b"], two_machines["files"]
    scan_a, scan_b = two_machines["scan_a"], two_machines["scan_b"]
    assert len(files) >= 20
    # B ran while A held claims on the files it had not committed yet: B left them to A
    assert scan_b.claimed_elsewhere > 0
    assert scan_a.files_analysed + scan_b.files_analysed == len(files)
    address = two_machines["address"]
    with Library(two_machines["root"] / "lib-b", catalog=address) as library:
        rows = library.catalog.files_under(str(b))
        assert sorted(Path(p).name for p in rows) == files
        assert all(p.startswith(str(b) + os.sep) for p in rows)   # B's own paths
        again = Scanner(library, workers=1).scan([b])
        assert again.unchanged == len(files) and again.files_analysed == 0
        assert library.catalog.stats()["indexed"] == len(files)
    with Library(two_machines["root"] / "lib-a", catalog=address) as library:
        assert sorted(Path(p).name for p in library.catalog.files_under(str(a))) == files


def test_a_machine_without_the_share_is_told_which_machines_have_the_file(two_machines, running):
    query = two_machines["b"] / QUERIES[0]
    with Library(two_machines["root"] / "lib-c", catalog=two_machines["address"]) as library:
        results = library.search_file(query, k=3)
    best = results[0]
    assert not best.exists and best.file.path == f"[nas-drums]/{QUERIES[0]}"
    assert str(two_machines["a"] / QUERIES[0]) in best.where
    assert str(two_machines["b"] / QUERIES[0]) in best.where
    assert best.as_dict()["where"] == best.where


def test_pgvector_search_ranks_as_the_local_hnswlib_path(two_machines, running, tmp_path):
    a = two_machines["a"]
    with Library(tmp_path / "local", catalog="local") as local:
        Scanner(local, workers=1).scan([a])
        expected = {q: local.search_file(a / q, k=5) for q in QUERIES}
    with Library(two_machines["root"] / "lib-a", catalog=two_machines["address"]) as shared:
        for q in QUERIES:
            got = shared.search_file(a / q, k=5)
            assert top(got) == top(expected[q]), q
            assert got[0].file.path == str(a / q)
            for mine, theirs in zip(got, expected[q]):
                assert abs(mine.score - theirs.score) < 1e-4
        # the live matcher's path: a Searcher, used from another thread
        query = shared.embed_file(a / QUERIES[0])
        searcher, answers = shared.searcher(), []
        worker = threading.Thread(target=lambda: answers.append(searcher.search(query, 5)))
        worker.start()
        worker.join()
        assert top(answers[0]) == top(expected[QUERIES[0]])


def test_a_server_restart_mid_scan_loses_nothing_and_the_scan_resumes(running, nas, tmp_path):
    address = running.create_database("restart")
    share = mount(nas, tmp_path / "m" / "Drums")
    # the samples (a local scan of the share left its hidden library-folder marker there)
    files = sorted(p.name for p in nas.iterdir() if not p.name.startswith("."))
    restarted = threading.Event()

    with Library(tmp_path / "lib", catalog=address) as library:
        def restart_when_waited_for():
            wait_until(lambda: library.catalog.reconnect_attempts >= 2)  # one try failed
            running.start()
            restarted.set()

        # The crash lands inside a batch, after one of its files was stored in its open
        # transaction and after an earlier batch was committed: the earlier batch must
        # survive, the open one is lost on the server and must be committed again.
        committed = [0]
        store = library.store

        def store_then_crash(analysis):
            file_id = store(analysis)
            if committed[0] and running.running and not restarted.is_set():
                running.stop("immediate")          # as a crash: no shutdown checkpoint
                threading.Thread(target=restart_when_waited_for, daemon=True).start()
            return file_id

        def on_progress(progress):
            committed[0] += 1

        library.store = store_then_crash
        with pytest.MonkeyPatch.context() as mp:   # a batch per file: the crash lands in one
            mp.setattr("app.scanner.COMMIT_EVERY_S", 0.0)
            report = Scanner(library, workers=1, progress=on_progress).scan([share])
        assert restarted.is_set() and not report.interrupted
        assert report.files_analysed == len(files)      # the retried batch counted once
        rows = library.catalog.files_under(str(share))
        assert sorted(Path(p).name for p in rows) == files
        assert library.catalog.vector_count() == sum(
            len(library.catalog.file_vectors(r.id)[0]) for r in rows.values()) > 0
        model_id = library.encoder.model_id          # the server's summary of the ids
        assert library.catalog.vector_id_summary(model_id) == id_summary(
            library.catalog.vector_ids(model_id))
        again = Scanner(library, workers=1).scan([share])
        assert again.files_analysed == 0 and again.unchanged == len(files)
    with running.connect("restart") as conn:
        assert conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 0


def test_a_stopped_server_leaves_search_on_the_stale_local_copy(two_machines, running):
    a, address = two_machines["a"], two_machines["address"]
    lib_a = two_machines["root"] / "lib-a"
    with Library(lib_a, catalog=address) as library:
        online = library.search_file(a / QUERIES[1], k=5)
        library.sync_cache()
    running.stop("immediate")
    with Library(lib_a, catalog=address) as library:
        assert library.offline and "stale" in library.stale_note
        assert "cannot be reached" in library.stale_note
        assert top(library.search_file(a / QUERIES[1], k=5)) == top(online)
        with pytest.raises(LibraryError, match="nothing can be added"):
            Scanner(library, workers=1).scan([a])
    env = dict(os.environ, SAMPLESCOUT_LIBRARY_DIR=str(lib_a))
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "search", str(a / QUERIES[1]), "-k", "3", "--json",
         "--catalog", address], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert "stale" in answer and Path(answer["results"][0]["path"]).name == QUERIES[1]
    assert "read-only copy" in done.stderr
    with pytest.raises(StorageUnavailable, match="no local copy"):
        Library(two_machines["root"] / "lib-new", catalog=address)


def test_doctor_checks_the_shared_catalogue_and_a_read_only_role_cannot_write(running, tmp_path, monkeypatch):
    from app.doctor import shared_catalogue_check
    address = running.create_database("doctor")
    monkeypatch.setenv("SAMPLESCOUT_CATALOG", address)
    check = shared_catalogue_check(str(tmp_path / "lib"))
    assert check.ok and "pgvector 0.8" in check.detail and "read-write role" in check.detail
    with running.connect("doctor") as conn:
        conn.execute("CREATE ROLE listener LOGIN")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO listener")
    monkeypatch.setenv("SAMPLESCOUT_CATALOG", address.replace("postgres@", "listener@"))
    check = shared_catalogue_check(str(tmp_path / "lib"))
    assert check.ok and "read-only role" in check.detail
    from app.pg_store import PgAccessError
    with Library(tmp_path / "lib", catalog=address.replace("postgres@", "listener@")) as library:
        with pytest.raises(PgAccessError, match="refuses this role"):   # the database says no
            library.map_share(tmp_path, "nas")
    running.stop("fast")
    check = shared_catalogue_check(str(tmp_path / "lib"))
    assert not check.ok and "cannot be reached" in check.detail


def test_a_newer_schema_is_refused_not_written(running, tmp_path):
    from app.pg_store import PgSchemaError
    address = running.create_database("newer")
    Library(tmp_path / "lib", catalog=address).close()
    with running.connect("newer") as conn:
        conn.execute("UPDATE scout_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(PgSchemaError, match="newer than this version"):
        Library(tmp_path / "lib", catalog=address)


def test_a_catalogue_address_is_remembered_but_never_its_password(tmp_path):
    from app.library import catalog_address, remember_catalog_address
    with pytest.raises(LibraryError, match="pgpass"):
        remember_catalog_address(tmp_path, "postgresql://scout:secret@nas/studio")
    assert catalog_address(tmp_path) is None
    remember_catalog_address(tmp_path, "postgresql://scout@nas/studio")
    assert catalog_address(tmp_path) == "postgresql://scout@nas/studio"
    assert catalog_address(tmp_path, "local") is None
    remember_catalog_address(tmp_path, "local")
    assert catalog_address(tmp_path) is None


def test_an_unmounted_share_deletes_nothing_for_the_other_machines(two_machines, running):
    root, files = two_machines["root"], two_machines["files"]
    mount_point = root / "d" / "Drums"        # the share's folder, nothing mounted on it
    mount_point.mkdir(parents=True)
    with Library(root / "lib-d", catalog=two_machines["address"]) as library:
        library.map_share(mount_point, "nas-drums")
        report = Scanner(library, workers=1).scan([mount_point])
        assert report.removed == 0 and any("share not mounted" in p for p in report.problems)
    with Library(root / "lib-a", catalog=two_machines["address"]) as library:
        assert len(library.catalog.files_under(str(two_machines["a"]))) == len(files)
