"""The window's Detect tab against a real library of Sonic Pi and Hydrogen samples: a
track built here (Sonic Pi's loop_amen mixed 6 dB under other real Sonic Pi loops that are
not in the library) is dropped on the tab; the timeline shows loop_amen where it was
placed, a click on its span auditions loop_amen's file through the host (``NullHost``
records it), and "Play the spot in the track" auditions a WAV of that stretch of the track
written to the cache dir."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtGui import QDropEvent

from tests.conftest import SONIC_PI
from tests.test_detect import BACKGROUND, RATE, _mono, _rms, library  # noqa: F401 - fixture
from ui.detect_panel import COL_AT, COL_SAMPLE
from ui.dragdrop import mime_for_files

pytestmark = pytest.mark.samples

AMEN_AT = 4.0
TRACK_SECONDS = 14


def build_track(path) -> float:
    """loop_amen at AMEN_AT s under background loops; returns loop_amen's length in s."""
    background = np.concatenate([_mono(SONIC_PI / f"{n}.flac") for n in BACKGROUND])
    track = background[:TRACK_SECONDS * RATE] / _rms(background) * 0.1
    amen = _mono(SONIC_PI / "loop_amen.flac")
    at = int(AMEN_AT * RATE)
    track[at:at + amen.size] += amen * (0.1 * 10 ** (-6 / 20) / _rms(amen))
    sf.write(path, track * (0.5 / np.max(np.abs(track))), RATE, subtype="PCM_16")
    return amen.size / RATE


@pytest.fixture
def window(qtbot, library, tmp_path):  # noqa: F811
    from tests.null_host import null_window

    library_dir, root = library
    with null_window(qtbot, library_dir, tmp_path / "config") as win:
        win.show()
        win.views.setCurrentWidget(win.detect_panel)
        yield win, root


def test_a_dropped_track_shows_the_sample_at_its_place_and_a_click_auditions_it(qtbot, window,
                                                                                 tmp_path):
    win, root = window
    panel, host = win.detect_panel, win.host
    assert win.views.tabText(win.views.indexOf(panel)) == "Detect"
    track = tmp_path / "bounce.wav"
    amen_seconds = build_track(track)
    amen = str(root / "loop_amen.flac")

    mime = mime_for_files([track])      # kept alive: the event only points at it
    panel.dropEvent(QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                               Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    assert panel.busy()
    qtbot.waitUntil(lambda: not panel.busy(), timeout=300000)
    assert not panel.failed(), panel.status.text()

    # the table and the timeline hold loop_amen at its place
    rows = [i for i, r in enumerate(panel.rows) if r.detection.file.path == amen]
    assert rows, [r.detection.file.name for r in panel.rows]
    row = min(rows, key=lambda i: abs(panel.rows[i].occurrence.start_s - AMEN_AT))
    occurrence = panel.rows[row].occurrence
    assert occurrence.start_s == pytest.approx(AMEN_AT, abs=0.5)
    assert panel.table.item(row, COL_SAMPLE).text() == "loop_amen.flac"
    assert panel.table.item(row, COL_AT).text().startswith(f"{occurrence.start_s:.2f}–")
    timeline = panel.timeline
    assert timeline.duration_s == pytest.approx(TRACK_SECONDS, abs=0.05)
    assert len(timeline.spans) == len(panel.rows)
    bar = timeline.lane_rect(row)
    width = timeline.width() - 12
    per_second = width / TRACK_SECONDS
    assert bar.left() == pytest.approx(6 + AMEN_AT * per_second, abs=0.5 * per_second)

    # a click on its span auditions the sample's file
    host.calls.clear()
    qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton, pos=bar.center().toPoint())
    assert host.calls == [("audition", (amen,))]
    assert timeline.selected == row and panel.current_row() == row

    # the second control plays that stretch of the track as it is (never matched to the
    # session's tempo and key), cut to a WAV in the cache dir
    from app.matched_preview import Target
    host.set_match(Target(bpm=100.0))
    host.calls.clear()
    qtbot.mouseClick(panel.play_spot_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(host.calls), timeout=30000)
    (name, (played,)), = host.calls
    assert name == "audition" and played == panel.last_slice
    from app.paths import cache_dir
    assert os.path.dirname(played) == str(cache_dir() / "detect-slices")
    cut, rate = sf.read(played)
    assert len(cut) / rate == pytest.approx(occurrence.end_s - occurrence.start_s, abs=0.01)
    assert occurrence.end_s - occurrence.start_s == pytest.approx(amen_seconds, abs=0.1)
    source, _ = sf.read(track)
    start = int(round(occurrence.start_s * rate))
    assert np.allclose(cut[:rate // 2], source[start:start + rate // 2], atol=2e-3)
