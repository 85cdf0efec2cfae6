"""The window's status bar and suggestions header through a scan and a failed drop: the real
``MainWindow`` over ``NullHost`` (real library thread and catalog, no audio device)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import SONIC_PI, require


@pytest.fixture
def window(qtbot, tmp_path):
    from tests.null_host import null_window
    with null_window(qtbot, tmp_path / "library", tmp_path / "config") as win:
        win.show()
        yield win


def sample_folder(tmp_path, stems):
    require(SONIC_PI, "sonic-pi-samples")
    folder = tmp_path / "samples"
    folder.mkdir()
    for stem in stems:
        shutil.copy(SONIC_PI / f"{stem}.flac", folder)
    return folder


def test_the_status_bar_counts_what_the_scan_has_indexed_and_explains_the_vectors(
        qtbot, window, tmp_path):
    folder = sample_folder(tmp_path, ["bd_haus", "sn_dolf", "loop_amen"])
    panel = window.library_panel
    panel.add_folder(str(folder))
    assert panel.scanning
    # the totals as the scan reports them mid-way (the host's count follows after the scan)
    panel.jobs.summary.emit({"indexed": 2, "roots": [str(folder)]}, [])
    assert window.status_library.text().startswith("2 samples")
    assert "vectors" not in window.status_library.text()
    qtbot.waitUntil(lambda: not panel.scanning, timeout=60000)
    qtbot.waitUntil(lambda: window.status_library.text() == "3 samples", timeout=20000)
    qtbot.waitUntil(lambda: "vectors" in window.host.status().index_state, timeout=20000)
    window.update_status()
    tip = window.status_library.toolTip()
    assert window.host.status().index_state in tip and "more vectors than samples" in tip
    assert window.status_index.text() == ""


def test_a_failed_drop_names_the_file_in_the_header_until_a_search_succeeds(qtbot, window,
                                                                           tmp_path):
    folder = sample_folder(tmp_path, ["bd_haus", "sn_dolf"])
    panel = window.library_panel
    panel.add_folder(str(folder))
    qtbot.waitUntil(lambda: not panel.scanning, timeout=60000)
    qtbot.waitUntil(lambda: window.host.status().library_files == 2, timeout=20000)
    window.search_file(str(folder / "kick01.ogg"))          # not there
    line = "Could not read kick01.ogg: file not found"
    qtbot.waitUntil(lambda: window.match_info.text() == line, timeout=20000)
    assert window.status_message.toolTip() == line and "kick01.ogg" in window.status_message.text()
    window.search_file(str(folder / "bd_haus.flac"))
    qtbot.waitUntil(lambda: "matches" in window.match_info.text(), timeout=20000)
    assert "like bd_haus.flac" in window.match_info.text()
    assert window.status_message.text() == "" and window.status_message.toolTip() == ""
