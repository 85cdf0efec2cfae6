"""Moved and unplugged library folders, on real files and a real SQLite catalog: a folder
found at a new path (renamed, its parent renamed, reached through a link, a bind mount)
is relinked without analysing anything again; a folder that is gone, or whose path now
holds an empty mount point, is offline and keeps its files, tags and collections through
full rescans, and comes back online with them."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import app.scanner as scanner_module
from app.catalog import Catalog
from app.cli import main
from app.folder_identity import MARKER_NAME, read_marker, volume_id
from app.library import Library, LibraryError
from app.paths import CATALOG_FILENAME
from app.scanner import Scanner
from tests.test_scanner import write_hits


@pytest.fixture
def pools(monkeypatch):
    """Counts the scanner's worker pools: none started means nothing was decoded or
    analysed (every analysis runs in one)."""
    started = []

    class CountedPool(scanner_module._WorkerPool):
        def __init__(self, *args):
            started.append(args)
            super().__init__(*args)

    monkeypatch.setattr(scanner_module, "_WorkerPool", CountedPool)
    return started


def scan(library_dir: Path, *roots) -> scanner_module.ScanReport:
    with Library(library_dir) as library:
        report = Scanner(library, workers=1).scan([str(r) for r in roots])
        assert len(library.index) == library.catalog.vector_count(library.encoder.model_id)
        return report


def analysis_rows(library_dir: Path) -> dict:
    """Every file's analysis by file id: vector ids, sound row, tags (the user's too),
    favourite and collections; and the catalog's generation stamp."""
    with Catalog(library_dir / CATALOG_FILENAME) as catalog:
        rows = {row.id: row for root in catalog.roots() for row in catalog.files_under(root).values()}
        ids = sorted(rows)
        return {
            "names": {i: rows[i].name for i in ids},
            "vectors": {i: catalog.file_vectors(i)[0].tolist() for i in ids},
            "sounds": catalog.sounds(ids),
            "tags": catalog.tags(ids),
            "favourites": catalog.favourites(),
            "collections": {c.name: catalog.collection_file_ids(c.id) for c in catalog.collections()},
            "generation": catalog.generation,
        }


def personalise(library_dir: Path, folder: Path) -> None:
    """The user's own work on a folder's files: a tag, a favourite, a collection."""
    with Library(library_dir) as library:
        rows = sorted(library.catalog.files_under(str(folder)).values(), key=lambda r: r.path)
        library.add_tag(rows[0].path, "cowbell")
        library.catalog.set_favourite([rows[1].id])
        crate = library.catalog.create_collection("crate")
        library.catalog.add_to_collection(crate, [r.id for r in rows])


def catalog_paths(library_dir: Path) -> set[str]:
    with Catalog(library_dir / CATALOG_FILENAME) as catalog:
        return {row.path for root in catalog.roots() for row in catalog.files_under(root).values()}


def test_renamed_folder_and_renamed_parent_are_relinked_without_reanalysis(
        tmp_path, isolated_library_dir, pools):
    folder = tmp_path / "drive-a" / "kicks"
    hits = write_hits(folder, 3)
    # a name that is not UTF-8 (stored as bytes) moves with the others
    os.rename(hits[2], os.path.join(os.fsencode(folder), b"caf\xe9.wav"))
    scan(isolated_library_dir, folder)
    assert read_marker(folder) is not None, "a writable library folder gets its marker"
    personalise(isolated_library_dir, folder)
    before = analysis_rows(isolated_library_dir)
    pools.clear()

    # the folder itself renamed: found by its marker when added at its new path
    renamed = tmp_path / "drive-a" / "kicks-2024"
    os.rename(folder, renamed)
    report = scan(isolated_library_dir, renamed)
    assert report.folders_relinked == [(str(folder), str(renamed))]
    assert (report.indexed, report.files_analysed, report.removed, report.unchanged) == (0, 0, 0, 3)
    assert analysis_rows(isolated_library_dir) == before
    assert pools == [], "a relinked folder must not be decoded or analysed again"

    # its parent renamed: the old path is gone, a full rescan marks it offline first
    os.rename(tmp_path / "drive-a", tmp_path / "drive-b")
    moved = tmp_path / "drive-b" / "kicks-2024"
    report = scan(isolated_library_dir, renamed)
    assert report.offline == [str(renamed)] and report.removed == 0
    report = scan(isolated_library_dir, moved)
    assert report.folders_relinked == [(str(renamed), str(moved))]
    assert (report.indexed, report.removed) == (0, 0)
    assert analysis_rows(isolated_library_dir) == before
    assert pools == []
    with Library(isolated_library_dir) as library:
        assert library.catalog.roots() == [str(moved)]
        assert library.catalog.offline_roots() == []
        paths = catalog_paths(isolated_library_dir)
        assert len(paths) == 3 and all(p.startswith(str(moved) + "/") for p in paths)
        assert os.fsdecode(os.path.join(os.fsencode(moved), b"caf\xe9.wav")) in paths
        # the index needs nothing: same vector ids, same file ids, and it still finds them
        first = sorted(library.catalog.files_under(str(moved)))[0]
        assert library.search_file(first, k=1)[0].file.path == first


def test_folder_reached_through_a_symlinked_parent(tmp_path, isolated_library_dir, pools):
    """A drive that comes back under another mount path, reached through a link to it: the
    same folder, relinked; the folder seen through a second path is not catalogued twice."""
    folder = tmp_path / "media-1" / "loops"
    write_hits(folder, 2)
    scan(isolated_library_dir, folder)
    before = analysis_rows(isolated_library_dir)
    pools.clear()
    os.rename(tmp_path / "media-1", tmp_path / "media-2")
    (tmp_path / "current").symlink_to(tmp_path / "media-2", target_is_directory=True)
    through_link = tmp_path / "current" / "loops"

    report = scan(isolated_library_dir, through_link)
    assert report.folders_relinked == [(str(folder), str(through_link))]
    assert analysis_rows(isolated_library_dir) == before and pools == []

    # the real path of the same folder, now: recognised, not scanned a second time
    report = scan(isolated_library_dir, tmp_path / "media-2" / "loops")
    assert any("seen through another path" in p for p in report.problems)
    with Library(isolated_library_dir) as library:
        assert library.catalog.roots() == [str(through_link)]
    assert analysis_rows(isolated_library_dir) == before


def test_a_copy_of_a_library_folder_gets_its_own_identity(tmp_path, isolated_library_dir):
    folder = tmp_path / "kit"
    write_hits(folder, 2)
    scan(isolated_library_dir, folder)
    copy = tmp_path / "kit-copy"
    shutil.copytree(folder, copy)
    assert read_marker(copy) == read_marker(folder)
    report = scan(isolated_library_dir, copy)
    assert report.folders_relinked == [] and report.duplicates == 2
    assert read_marker(copy) != read_marker(folder)
    with Library(isolated_library_dir) as library:
        assert library.catalog.roots() == sorted([str(folder), str(copy)])


def test_offline_folder_survives_full_rescans_and_comes_back(tmp_path, isolated_library_dir):
    home = tmp_path / "home-samples"
    drive = tmp_path / "usb" / "snares"
    write_hits(home, 2, seed=1)
    write_hits(drive, 3, seed=2)
    scan(isolated_library_dir, home, drive)
    personalise(isolated_library_dir, drive)
    before = analysis_rows(isolated_library_dir)

    # unplugged: the mount point is gone
    os.rename(tmp_path / "usb", tmp_path / "unplugged")
    with Library(isolated_library_dir) as library:
        roots = library.catalog.roots()
    report = scan(isolated_library_dir, *roots)      # the full rescan ("Rescan all")
    assert report.offline == [str(drive)] and report.removed == 0
    assert any("library folder not found" in p and "3 catalogued files are kept" in p
               for p in report.problems)
    assert analysis_rows(isolated_library_dir) == before

    # ...and an empty mount point left in its place: not the folder, still nothing purged
    drive.mkdir(parents=True)
    report = scan(isolated_library_dir, *roots)
    assert report.offline == [str(drive)] and report.removed == 0
    assert analysis_rows(isolated_library_dir) == before
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["library", "--json"]) == 0
    assert '"offline_roots": ["' + str(drive) + '"]' in out.getvalue()

    # plugged in again at the same place: back online with everything it had
    drive.rmdir()
    os.rename(tmp_path / "unplugged" / "snares", drive)
    report = scan(isolated_library_dir, *roots)
    assert report.offline == [] and report.removed == 0 and report.indexed == 0
    assert any("back online" in p for p in report.problems)
    assert analysis_rows(isolated_library_dir) == before
    with Library(isolated_library_dir) as library:
        assert library.catalog.offline_roots() == []

    # only the user's word forgets it
    assert main(["index", "--remove", str(drive)]) == 0
    assert all(not p.startswith(str(drive)) for p in catalog_paths(isolated_library_dir))


def test_index_relink_command(tmp_path, isolated_library_dir, capsys, pools):
    folder = tmp_path / "old-place"
    write_hits(folder, 2)
    scan(isolated_library_dir, folder)
    personalise(isolated_library_dir, folder)
    before = analysis_rows(isolated_library_dir)
    os.rename(folder, tmp_path / "new-place")
    (tmp_path / "new-place" / MARKER_NAME).unlink()   # even without its marker: the user's word
    pools.clear()
    assert main(["index", "--relink", str(folder), str(tmp_path / "new-place")]) == 0
    out = capsys.readouterr().out
    assert "Relinked" in out and "2 files keep their analysis" in out
    assert analysis_rows(isolated_library_dir) == before and pools == []
    assert read_marker(tmp_path / "new-place") is not None
    # another library folder's place is refused
    other = tmp_path / "other"
    write_hits(other, 1, seed=5)
    scan(isolated_library_dir, other)
    assert main(["index", "--relink", str(tmp_path / "new-place"), str(other)]) != 0
    with Library(isolated_library_dir) as library, pytest.raises(LibraryError, match="not a library folder"):
        library.relink_folder(tmp_path / "nowhere", other)


def test_bind_mounted_drive_remounted_elsewhere(tmp_path, isolated_library_dir, pools):
    """A real mount: the folder bind-mounted at one place, unmounted (an empty mount point
    stays), mounted at another. Needs root and a container that allows mounts; the rename
    and link tests above cover the same paths of the code without them."""
    source, first, second = tmp_path / "disk", tmp_path / "mnt-1", tmp_path / "mnt-2"
    write_hits(source, 2)
    first.mkdir()
    second.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "--bind", str(source), str(first)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mount --bind is not allowed here (not root, or a container without "
                    "CAP_SYS_ADMIN); the rename and symlinked-parent tests cover relinking")
    mounted = [first]
    try:
        scan(isolated_library_dir, first)
        before = analysis_rows(isolated_library_dir)
        pools.clear()
        subprocess.run(["umount", str(first)], check=True)
        mounted.remove(first)
        report = scan(isolated_library_dir, first)      # an empty mount point now
        assert report.offline == [str(first)] and report.removed == 0
        subprocess.run(["mount", "--bind", str(source), str(second)], check=True)
        mounted.append(second)
        report = scan(isolated_library_dir, second)
        assert report.folders_relinked == [(str(first), str(second))]
        assert analysis_rows(isolated_library_dir) == before and pools == []
    finally:
        for point in mounted:
            subprocess.run(["umount", str(point)], check=False)


def test_volume_id_is_the_filesystem_and_the_path_inside_it(tmp_path):
    """/proc/self/mountinfo and /dev/disk/by-uuid, given as text and a folder: the same
    folder seen through its own mount and through a bind mount has one volume id."""
    device = tmp_path / "dev-sdb1"
    device.touch()
    by_uuid = tmp_path / "by-uuid"
    by_uuid.mkdir()
    (by_uuid / "1234-ABCD").symlink_to(device)
    drive, bound = tmp_path / "media" / "usb", tmp_path / "srv" / "kits"
    (drive / "samples" / "808").mkdir(parents=True)
    bound.mkdir(parents=True)
    mountinfo = (
        "22 1 0:21 / / rw - overlay overlay rw\n"
        f"40 22 8:17 / {drive} rw,relatime - vfat {device} rw\n"
        f"41 22 8:17 /samples {bound} rw,relatime - vfat {device} rw\n")
    direct = volume_id(drive / "samples" / "808", mountinfo=mountinfo, by_uuid=str(by_uuid))
    through_bind = volume_id(bound / "808", mountinfo=mountinfo, by_uuid=str(by_uuid))
    assert direct == through_bind == "1234-ABCD:/samples/808"
    assert volume_id(tmp_path, mountinfo=mountinfo, by_uuid=str(by_uuid)) is None  # overlay


def test_library_panel_greys_an_offline_folder_and_locates_it(qtbot, tmp_path,
                                                              isolated_library_dir, pools):
    from tests.null_host import NullHost
    from ui.library_panel import LibraryPanel
    folder = tmp_path / "drive" / "perc"
    write_hits(folder, 2)
    scan(isolated_library_dir, folder)
    personalise(isolated_library_dir, folder)
    before = analysis_rows(isolated_library_dir)
    os.rename(tmp_path / "drive", tmp_path / "drive-now")
    scan(isolated_library_dir, folder)                 # offline now
    pools.clear()
    host = NullHost(isolated_library_dir)
    panel = LibraryPanel(host, workers=1)
    qtbot.addWidget(panel)
    try:
        qtbot.waitUntil(lambda: panel.offline() == [str(folder)], timeout=20000)
        item = panel.folders.item(0)
        assert item.text() == str(folder) and "offline" in item.toolTip()
        assert item.foreground().color() == panel.palette().placeholderText().color()
        assert not panel.locate_button.isEnabled()
        panel.folders.setCurrentRow(0)
        assert panel.locate_button.isEnabled()
        with qtbot.waitSignal(panel.scan_done, timeout=60000):
            panel.relink_folder(str(folder), str(tmp_path / "drive-now" / "perc"))
        qtbot.waitUntil(lambda: panel.roots() == [str(tmp_path / "drive-now" / "perc")],
                        timeout=20000)
        assert panel.offline() == [] and not panel.locate_button.isEnabled()
        assert analysis_rows(isolated_library_dir) == before and pools == []
    finally:
        panel.shutdown()
        host.close()


def test_system_folders_are_never_written_to(tmp_path):
    from app.folder_identity import write_marker
    assert write_marker("/usr/share") is None          # even as root
    assert not os.path.exists(os.path.join("/usr/share", MARKER_NAME))
    assert write_marker(tmp_path) is not None
