"""The map tab against a real library (Sonic Pi one-shots scanned into a temp dir):
hovering a point auditions that point's file (through the recording NullHost, and on the
engine's recorded output through a real JACK dummy server with the SessionHost), and a
Shift-drag lasso selects exactly the points inside it and makes them a collection."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PyQt6.QtCore import QEvent, QPoint, QPointF, Qt
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QApplication

from tests.conftest import SONIC_PI, require

pytestmark = pytest.mark.samples

STEMS = ["bd_808", "bd_boom", "bd_haus", "bd_klub", "sn_dolf", "sn_dub", "sn_generic",
         "drum_cymbal_closed", "drum_cymbal_open", "drum_splash_soft", "tabla_na", "tabla_ke1",
         "elec_ping", "elec_blip", "perc_bell", "bass_hit_c"]
SR = 48000


@pytest.fixture(scope="module")
def map_library(tmp_path_factory):
    require(SONIC_PI, "sonic-pi-samples")
    from app.library import Library
    from app.scanner import Scanner
    base = tmp_path_factory.mktemp("map-panel")
    root = base / "samples"
    root.mkdir()
    for stem in STEMS:
        shutil.copy(SONIC_PI / f"{stem}.flac", root)
    with Library(base / "library") as library:
        assert Scanner(library, workers=1).scan([root]).indexed == len(STEMS)
    return base / "library"


def open_panel(qtbot, host):
    from ui import theme
    from ui.map_panel import MapPanel
    theme.apply(QApplication.instance())
    panel = MapPanel(host)
    qtbot.addWidget(panel)
    panel.resize(800, 600)
    panel.show()
    qtbot.waitUntil(lambda: panel.loaded() or panel.failed(), timeout=60000)
    assert panel.loaded(), panel.status.text()
    assert panel.point_count() == len(STEMS)
    # the legend fills in and the plot takes its final size a few events after loading:
    # tests aim at points once they stand still
    last: list = []

    def still() -> bool:
        nonlocal last
        now = [panel.point_widget_pos(r) for r in range(panel.point_count())]
        same, last = now == last, now
        return same
    qtbot.waitUntil(lambda: (qtbot.wait(50), still())[1], timeout=10000)
    return panel


def mouse(widget, kind, pos: QPoint | QPointF, buttons=Qt.MouseButton.NoButton,
          modifiers=Qt.KeyboardModifier.NoModifier, button=Qt.MouseButton.NoButton) -> None:
    """One real mouse event on the plot's viewport (as the window system would send it)."""
    local = QPointF(pos)
    event = QMouseEvent(kind, local, widget.mapToGlobal(local), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def loneliest(panel) -> int:
    """The row whose point is farthest, on screen, from every other point."""
    screen = np.array([[panel.point_widget_pos(r).x(), panel.point_widget_pos(r).y()]
                       for r in range(panel.point_count())], float)
    gaps = np.linalg.norm(screen[:, None] - screen[None], axis=2) + np.eye(len(screen)) * 1e9
    return int(np.argmax(gaps.min(axis=1)))


def hover(qtbot, panel, row: int) -> None:
    viewport = panel.plot.viewport()
    target = panel.point_widget_pos(row)
    mouse(viewport, QEvent.Type.MouseMove, target + QPoint(40, 40))   # somewhere else first
    qtbot.wait(30)
    mouse(viewport, QEvent.Type.MouseMove, target + QPoint(1, 1))


def test_hovering_a_point_auditions_its_file(qtbot, map_library):
    from tests.null_host import NullHost
    host = NullHost(map_library)
    try:
        panel = open_panel(qtbot, host)
        for row in {loneliest(panel), 0}:
            before = len(host.calls)
            hover(qtbot, panel, row)
            qtbot.waitUntil(lambda: any(c[0] == "audition" for c in host.calls[before:]),
                            timeout=5000)
            assert [c for c in host.calls[before:] if c[0] == "audition"][-1] == \
                ("audition", (panel.path(row),))
        # a click selects the point under the cursor
        row = loneliest(panel)
        pos = panel.point_widget_pos(row)
        viewport = panel.plot.viewport()
        mouse(viewport, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton,
              button=Qt.MouseButton.LeftButton)
        mouse(viewport, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.NoButton,
              button=Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.selected_file_ids() == [panel.file_id(row)], timeout=5000)
        panel.shutdown()
    finally:
        host.close()


def test_a_lasso_selects_the_points_inside_and_makes_a_collection(qtbot, map_library):
    from app.catalog import Catalog
    from tests.null_host import NullHost
    host = NullHost(map_library)
    try:
        panel = open_panel(qtbot, host)
        screen = np.array([[panel.point_widget_pos(r).x(), panel.point_widget_pos(r).y()]
                           for r in range(panel.point_count())], float)
        # a lasso around the left half of the points (by screen x), drawn as a freehand
        # pentagon with Shift held
        xs = np.unique(screen[:, 0])
        middle = len(xs) // 2     # cut in the widest gap near the middle: no point on the edge
        gap = max(range(max(1, middle - 3), min(len(xs), middle + 4)),
                  key=lambda i: xs[i] - xs[i - 1])
        cut = float(xs[gap - 1] + xs[gap]) / 2
        low, high = screen.min(0) - 20, screen.max(0) + 20
        corners = [(low[0], low[1]), (cut, low[1]), (cut + 0.5, (low[1] + high[1]) / 2),
                   (cut, high[1]), (low[0], high[1])]
        expected = {panel.file_id(r) for r in range(len(screen)) if screen[r, 0] < cut}
        assert 0 < len(expected) < len(screen)
        viewport = panel.plot.viewport()
        shift, left = Qt.KeyboardModifier.ShiftModifier, Qt.MouseButton.LeftButton
        trail = [QPointF(x, y) for x, y in corners] + [QPointF(low[0], low[1])]
        mouse(viewport, QEvent.Type.MouseButtonPress, trail[0], left, shift, left)
        for a, b in zip(trail, trail[1:]):
            for t in np.linspace(0, 1, 8)[1:]:
                point = QPointF(a.x() + (b.x() - a.x()) * t, a.y() + (b.y() - a.y()) * t)
                qtbot.wait(12)     # pyqtgraph's scene drops drag moves closer than 10 ms
                mouse(viewport, QEvent.Type.MouseMove, point, left, shift)
        mouse(viewport, QEvent.Type.MouseButtonRelease, trail[-1], Qt.MouseButton.NoButton,
              shift, left)
        assert set(panel.selected_file_ids()) == expected
        # the view did not pan while lassoing: the points are where they were
        assert panel.point_widget_pos(0) == QPoint(int(screen[0, 0]), int(screen[0, 1]))
        with qtbot.waitSignal(host.info, timeout=10000) as said:
            panel.collection_name.setText("Left side")
            panel.collect_button.click()
        assert "added to the collection" in said.args[0]
        assert host.calls[-1][0] == "collect"
        with Catalog(map_library / "catalog.sqlite3") as catalog:
            collection = catalog.collection_id("left side")
            assert set(catalog.collection_file_ids(collection)) == expected
        panel.shutdown()
    finally:
        host.close()


def similarity(tape: np.ndarray, ref: np.ndarray) -> float:
    """Best normalised correlation of the start of ``ref`` with the tape (any lag)."""
    ref = ref[:2048].astype(np.float64)
    ref = ref - ref.mean()
    y = tape.astype(np.float64)
    best = 0.0
    for lag in range(0, len(y) - len(ref), 16):
        seg = y[lag:lag + len(ref)]
        denom = np.linalg.norm(seg) * np.linalg.norm(ref)
        if denom > 0:
            best = max(best, float(np.dot(seg - seg.mean(), ref) / denom))
    return best


@pytest.mark.jack
def test_hovering_plays_the_file_on_the_engines_output(jack_server, qtbot, map_library):
    from app.decode import read_mono
    from bench.harness.jack_server import start_peer, tape_path
    from ui.host import AudioSettings
    from ui.session_host import SessionHost
    host = SessionHost(map_library, AudioSettings(hostapi="JACK", block_size=64))
    errors: list[str] = []
    host.error.connect(errors.append)
    host.start()
    rec = None
    try:
        qtbot.waitUntil(lambda: host.session is not None, timeout=60000)
        panel = open_panel(qtbot, host)
        row = loneliest(panel)
        rec = start_peer(jack_server, "record", "PortAudio:out_", 2.0)
        rec.go_and_wait_recording()
        hover(qtbot, panel, row)
        qtbot.waitUntil(lambda: any((host.playhead(v) or 0) > 0 for v in range(1, 4)),
                        timeout=10000)
        rec.result()
        rec = None
        tape = np.load(tape_path(jack_server.name)).reshape(-1)
        assert np.max(np.abs(tape)) > 0.01, "the hover played nothing"
        played = similarity(tape, read_mono(panel.path(row), SR))
        others = [similarity(tape, read_mono(panel.path(r), SR))
                  for r in range(panel.point_count()) if r != row][:4]
        assert played > 0.9 and played > max(others), (played, others)
        assert errors == []
        panel.shutdown()
    finally:
        if rec is not None:
            rec.stop()
        host.close()


def lab(hex_colour: str) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour '#rrggbb'."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ rgb / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_twelve_map_colours_are_far_apart_and_stand_out_on_the_panel():
    from ui import theme
    from ui.map_panel import COLOURED_TAGS, OTHER, PALETTE
    assert len(set(PALETTE)) == COLOURED_TAGS == 12
    colours = [lab(c) for c in PALETTE]
    nearest = min(np.linalg.norm(a - b) for i, a in enumerate(colours) for b in colours[i + 1:])
    assert nearest >= 30        # the old palette had orange and yellow 13 apart
    for c in colours:
        assert np.linalg.norm(c - lab(theme.PANEL)) >= 50
        assert np.linalg.norm(c - lab(OTHER)) >= 30


def test_the_legend_and_the_hint_sit_outside_the_plot(qtbot, map_library):
    from tests.null_host import NullHost
    from ui.map_panel import PALETTE
    host = NullHost(map_library)
    try:
        panel = open_panel(qtbot, host)
        plot_item = panel.plot.getPlotItem()
        assert plot_item.legend is None
        assert not any(type(item).__name__ == "LegendItem"
                       for item in panel.plot.scene().items())
        entries = panel.legend.entries()
        assert sum(count for _, count, _ in entries) == len(STEMS)
        tagged = [colour for name, _, colour in entries if name != "other"]
        assert tagged == list(PALETTE[:len(tagged)])
        plot = panel.plot.geometry()
        for label in (panel.legend, panel.hint):
            assert label.isVisible() and not label.geometry().intersects(plot)
        assert panel.hint.height() < 2.5 * panel.hint.fontMetrics().height()   # one line
        assert not panel.hint.geometry().intersects(panel.collection_name.geometry())
        panel.shutdown()
    finally:
        host.close()

