"""The selected sample's zoomable waveform and the input meter, in the real window: the real
``MainWindow`` over the real ``SessionHost`` and a real catalog of Debian samples (library
only here; tests/test_ui_live_window_jack.py plays audio through a JACK dummy server)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.conftest import SONIC_PI, final_answer_shown, require
from tests.test_ui_first_hour import config_home, no_vst3, open_window, scanned  # noqa: F401


def accent_rows(image, x: int, top: int, bottom: int) -> list[int]:
    """The rows of column ``x`` painted in the waveform's colour (the theme's accent)."""
    from PyQt6.QtGui import QColor
    from ui import theme
    accent = QColor(theme.ACCENT)
    rows = []
    for y in range(top, bottom):
        c = image.pixelColor(x, y)
        if (abs(c.red() - accent.red()) + abs(c.green() - accent.green())
                + abs(c.blue() - accent.blue())) < 60:
            rows.append(y)
    return rows


def test_the_selected_sample_shows_a_waveform_that_zooms_around_the_pointer_and_pans(
        qtbot, open_window, no_vst3, isolated_library_dir, tmp_path):  # noqa: F811
    require(SONIC_PI, "sonic-pi-samples")
    from PyQt6.QtCore import QPoint, QPointF, Qt
    from PyQt6.QtGui import QWheelEvent
    from app.decode import probe, read_mono
    paths = scanned(isolated_library_dir, tmp_path / "Loops", ["loop_amen", "bd_haus", "sn_dolf"])
    win = open_window(plugin_scanner=no_vst3)
    wave = win.waveform
    win.resize(1280, 780)
    win.search_file(paths["loop_amen"])
    qtbot.waitUntil(lambda: win.model.rowCount() == 3 and final_answer_shown(win), timeout=60000)
    rows = {win.model.suggestion(r).path: r for r in range(3)}

    win.view.selectRow(rows[paths["bd_haus"]])
    assert wave.path == paths["bd_haus"]
    win.view.selectRow(rows[paths["loop_amen"]])            # another row: its file
    assert wave.path == paths["loop_amen"]
    qtbot.waitUntil(lambda: wave.envelope is not None, timeout=10000)
    env = wave.envelope
    audio = read_mono(paths["loop_amen"], probe(paths["loop_amen"]).sample_rate)
    assert env.frames == len(audio) and wave.view_range() == (0.0, pytest.approx(env.duration_s))
    assert env.hi.max() == pytest.approx(audio.max()) and env.lo.min() == pytest.approx(audio.min())

    # the painted outline follows the envelope of what is in view
    def painted_matches_envelope():
        image = wave.grab().toImage()
        width, trace = wave.width(), wave.trace_rect()
        lo, hi = env.columns(*wave.view_range(), width)
        x = int(np.argmax(hi[10:-10])) + 10
        painted = accent_rows(image, x, 0, wave.height())
        half = trace.height() / 2 - 2
        assert painted, "nothing painted"
        # the outline joins neighbouring columns (antialiased: a thin spike fades at its tip)
        mid, near = trace.center().y(), slice(x - 1, x + 2)
        assert mid - hi[near].max() * half - 4 <= min(painted) <= mid - hi[x] * half + 4
        assert mid - lo[x] * half - 4 <= max(painted) <= mid - lo[near].min() * half + 4

    painted_matches_envelope()

    # the wheel zooms in around the pointer: the time under it stays under it
    x = wave.width() * 0.3
    under = wave.time_at(x)
    wave.wheelEvent(QWheelEvent(QPointF(x, 40), wave.mapToGlobal(QPointF(x, 40)), QPoint(),
                                QPoint(0, 360), Qt.MouseButton.NoButton,
                                Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))
    start, end = wave.view_range()
    assert end - start == pytest.approx(env.duration_s / 1.25 ** 3)
    assert wave.time_at(x) == pytest.approx(under, abs=1e-9)
    painted_matches_envelope()

    # +/- zoom around the cursor too (the middle when the pointer is elsewhere)
    span = end - start
    qtbot.keyClick(wave, Qt.Key.Key_Plus)
    assert wave.view_range()[1] - wave.view_range()[0] == pytest.approx(span / 1.25)
    qtbot.keyClick(wave, Qt.Key.Key_Minus)
    assert wave.view_range()[1] - wave.view_range()[0] == pytest.approx(span)

    # dragging pans: 100 px to the left shows what was 100 px to the right
    start, end = wave.view_range()
    qtbot.mousePress(wave, Qt.MouseButton.LeftButton, pos=QPoint(500, 40))
    qtbot.mouseMove(wave, QPoint(400, 40))
    qtbot.mouseRelease(wave, Qt.MouseButton.LeftButton, pos=QPoint(400, 40))
    assert wave.view_range()[0] == pytest.approx(start + 100 / wave.width() * (end - start))
    painted_matches_envelope()
    qtbot.keyClick(wave, Qt.Key.Key_0)
    assert wave.view_range() == (0.0, pytest.approx(env.duration_s))

    # a playhead is drawn where the sample plays
    wave.set_playhead(env.duration_s / 2)
    image = wave.grab().toImage()
    from PyQt6.QtGui import QColor
    from ui import theme
    x = round(wave.x_of(env.duration_s / 2))
    y = int(wave.trace_rect().top()) + 3
    assert any(image.pixelColor(xx, y) == QColor(theme.ONSET) for xx in range(x - 1, x + 2))


def luminance(colour) -> float:
    """WCAG relative luminance of a QColor."""
    channels = [c / 255 for c in (colour.red(), colour.green(), colour.blue())]
    r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_the_name_and_times_are_readable_above_and_below_a_full_scale_trace(qtbot, tmp_path):
    import soundfile
    from PyQt6.QtWidgets import QApplication
    from ui import theme
    from ui.waveform_view import WaveformView
    theme.apply(QApplication.instance())
    path = tmp_path / "loud.wav"
    square = np.sign(np.sin(np.arange(24000) * 2 * np.pi * 50 / 48000)).astype(np.float32)
    soundfile.write(path, square, 48000)
    wave = WaveformView()
    qtbot.addWidget(wave)
    wave.resize(600, wave.minimumHeight())
    wave.show()
    wave.set_path(str(path), "loud.wav")
    qtbot.waitUntil(lambda: wave.envelope is not None, timeout=10000)
    image = wave.grab().toImage()
    trace = wave.trace_rect()
    strips = [range(0, int(trace.top())), range(int(trace.bottom()) + 1, wave.height())]
    for rows in strips:
        assert len(rows) >= wave.fontMetrics().height()
        for x in range(0, wave.width(), 7):
            assert not accent_rows(image, x, rows.start, rows.stop)   # no trace under text
    assert accent_rows(image, 300, int(trace.top()), int(trace.bottom()))
    for rows, text_width in ((strips[0], wave.fontMetrics().horizontalAdvance("loud.wav")),
                             (strips[1], wave.fontMetrics().horizontalAdvance("0.000 s"))):
        pixels = [image.pixelColor(x, y) for y in rows for x in range(4, 12 + text_width)]
        background = image.pixelColor(wave.width() // 2, rows.start + 1)
        brightest = max(luminance(c) for c in pixels)
        assert (brightest + 0.05) / (luminance(background) + 0.05) >= 4.5


def test_envelope_columns_reduce_every_bucket_in_view():
    from ui.waveform_view import Envelope
    rng = np.random.default_rng(3)
    hi = rng.random(1000).astype(np.float32)
    lo = -rng.random(1000).astype(np.float32)
    env = Envelope(lo, hi, bucket_frames=48, sample_rate=48000, frames=48000)   # 1 ms buckets
    clo, chi = env.columns(0.1, 0.5, 100)                 # 4 buckets per column
    assert np.allclose(chi, hi[100:500].reshape(100, 4).max(axis=1))
    assert np.allclose(clo, lo[100:500].reshape(100, 4).min(axis=1))
    clo, chi = env.columns(0.1, 0.11, 40)                 # zoomed past one bucket per column
    assert np.allclose(chi, np.repeat(hi[100:110], 4))
    clo, chi = env.columns(0.9, 1.1, 20)                  # past the end: nothing
    assert np.all(chi[10:] == 0) and np.allclose(chi[:10], hi[900:1000].reshape(10, 10).max(axis=1))


def test_the_input_meter_shows_levels_holds_the_peak_and_latches_a_clip(qtbot, open_window,
                                                                       no_vst3):  # noqa: F811
    from ui.input_meter import HOLD_S
    win = open_window(plugin_scanner=no_vst3)
    meter = win.meter
    assert meter.isVisible() and meter.height() >= 30 and meter.width() >= 200
    now = [100.0]
    meter._clock = lambda: now[0]      # the hold's timing, on a clock the test moves

    def width_painted(channel_y: float) -> int:
        from PyQt6.QtGui import QColor
        from ui import theme
        image = meter.grab().toImage()
        bars = meter.bars_rect()
        sunken = QColor(theme.SUNKEN)
        y = int(bars.top() + channel_y * bars.height())
        return sum(1 for x in range(int(bars.left()) + 1, int(bars.right()) - 3)
                   if image.pixelColor(x, y) != sunken)

    meter.set_levels((-6.0, -30.0), (-12.0, -36.0))
    loud, quiet = width_painted(0.25), width_painted(0.75)
    assert loud > 1.5 * quiet > 0                       # channel 1 louder than channel 2
    assert meter.peak_text() == "-6.0 dBFS" and not meter.clipped
    now[0] += HOLD_S / 2
    meter.set_levels((-40.0, -40.0), (-45.0, -45.0))
    assert meter.hold_db[0] == -6.0                      # held…
    now[0] += HOLD_S * 2
    meter.set_levels((-40.0, -40.0), (-45.0, -45.0))
    assert -40.0 <= meter.hold_db[0] < -6.0              # …then falling
    meter.set_levels((0.0, -40.0), (-3.0, -45.0))       # a full-scale sample
    assert meter.clipped and "CLIP" in meter.toolTip()
    meter.set_levels((-50.0, -50.0), (-55.0, -55.0))
    assert meter.clipped                                 # latched
    from PyQt6.QtCore import Qt
    qtbot.mouseClick(meter, Qt.MouseButton.LeftButton)
    assert not meter.clipped

    # the window feeds it from the host's levels on its meter timer
    win.meter_timer.stop()
    meter.set_levels((-3.0, -3.0), (-3.0, -3.0))
    win.poll_audio()                                     # no device: the host says silence
    assert meter.peak_db == tuple(win.host.levels().peak_db)
