"""The session tempo/key bar in the window (pytest-qt, offscreen): typing, tapping with real
clicks, dropping a loop to take its tempo, the Match toggle reaching the host and the
settings, and a drag with Match on carrying the matched render. The host is ``NullHost``
(no audio device; the real detectors and renderer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent
from PyQt6.QtTest import QTest

from tests.conftest import SONIC_PI, require

pytestmark = pytest.mark.samples

AMEN_FULL = SONIC_PI / "loop_amen_full.flac"     # 140 BPM


@pytest.fixture
def window(qtbot, tmp_path):
    from tests.null_host import null_window
    with null_window(qtbot, tmp_path / "library", tmp_path / "config") as win:
        win.show()
        yield win


def test_typing_a_tempo_and_choosing_a_key_set_what_previews_match(qtbot, window):
    bar = window.tempo_key_bar
    with qtbot.waitSignal(bar.changed) as changed:
        bar.match.click()
    assert changed.args[0].bpm == 120.0 and changed.args[0].key is None
    bar.bpm.lineEdit().selectAll()
    QTest.keyClicks(bar.bpm.lineEdit(), "128")
    QTest.keyClick(bar.bpm.lineEdit(), Qt.Key.Key_Return)
    bar.key.setCurrentText("F#m")
    target = window.host.match_target
    assert (target.bpm, target.key) == (128.0, "F#m")
    assert ("set_match", (target,)) in window.host.calls
    bar.match.click()
    assert window.host.match_target is None


def test_tapping_the_button_sets_the_tempo_and_a_pause_starts_over(qtbot, window):
    bar = window.tempo_key_bar
    times = iter([100.0, 100.4, 100.8, 101.2, 110.0, 110.5])
    bar.clock = lambda: next(times)
    for _ in range(4):
        QTest.mouseClick(bar.tap_button, Qt.MouseButton.LeftButton)
    assert bar.bpm.value() == 150.0
    QTest.mouseClick(bar.tap_button, Qt.MouseButton.LeftButton)     # after a pause: a new count
    assert bar.bpm.value() == 150.0 and bar.tapper.taps == 1
    QTest.mouseClick(bar.tap_button, Qt.MouseButton.LeftButton)
    assert bar.bpm.value() == 120.0


def test_dropping_a_loop_on_the_bar_takes_its_tempo(qtbot, window):
    loop = require(AMEN_FULL, "sonic-pi-samples")
    bar = window.tempo_key_bar
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(loop))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.host.tempo_key_found, timeout=30000):
        bar.dropEvent(event)
    qtbot.waitUntil(lambda: "from loop_amen_full" in bar.note.text())
    assert bar.bpm.value() == pytest.approx(140.0, abs=1)


def test_the_session_and_match_survive_a_restart(qtbot, tmp_path):
    from tests.null_host import null_window

    with null_window(qtbot, tmp_path / "library", tmp_path / "config") as win:
        win.tempo_key_bar.set_session(97.5, "Bbm", True)
    with null_window(qtbot, tmp_path / "library", tmp_path / "config") as win:
        bar = win.tempo_key_bar
        assert (bar.bpm.value(), bar.session_key(), bar.match.isChecked()) == (97.5, "A#m", True)
        assert win.host.match_target is not None and win.host.match_target.bpm == 97.5


def test_with_match_on_auditions_are_matched_and_drags_carry_the_matched_render(qtbot, window):
    from app.suggestions import Suggestion, SuggestionUpdate
    loop = str(require(AMEN_FULL, "sonic-pi-samples"))
    suggestion = Suggestion(rank=1, file_id=1, path=loop, name=Path(loop).name, score=0.9,
                            kind="loop", duration_s=6.3, offset_s=0.0, exists=True)
    window.show_update(SuggestionUpdate(seq=1, onset_frame=None, mode="file",
                                        suggestions=(suggestion,), level_db=-6.0, reason="file",
                                        latency_ms=1.0))
    window.view.selectRow(0)
    # Match off: the file itself
    assert window.view.drag_payload().urls()[0].toLocalFile() == loop
    window.tempo_key_bar.set_session(120.0, "Am", True)
    window.audition_row(0)
    assert window.host.calls[-1][0] == "audition_matched"
    # selecting the row with Match on renders its match in the background, ahead of a drag
    window.view.clearSelection()
    window.view.setCurrentIndex(window.model.index(-1, -1))
    window.view.selectRow(0)
    prerenderer = window.host.matched_prerenderer()
    qtbot.waitUntil(lambda: prerenderer.done == 1, timeout=30000)
    from app.paths import cache_dir
    rendered = list((cache_dir() / "matched").glob("*/*.wav"))
    assert [r.name for r in rendered] == ["loop_amen_full (120 BPM).wav"]
    inode = rendered[0].stat().st_ino
    dragged = Path(window.view.drag_payload().urls()[0].toLocalFile())
    assert dragged == rendered[0] and dragged.stat().st_ino == inode      # not rendered again
    import soundfile as sf
    assert sf.info(str(dragged)).frames == pytest.approx(sf.info(loop).frames * 140 / 120, abs=2)
