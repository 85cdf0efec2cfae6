"""The window's layout at a laptop's size: the real ``MainWindow`` over ``NullHost`` (an
empty library, no audio device), with the app's theme, checked in widget geometry."""

from __future__ import annotations

import pytest


@pytest.fixture
def window(qtbot, tmp_path):
    from PyQt6.QtWidgets import QApplication
    from tests.null_host import null_window
    from ui import theme

    theme.apply(QApplication.instance())
    with null_window(qtbot, tmp_path / "library", tmp_path / "config") as win:
        win.show()
        win.resize(1280, 720)
        qtbot.waitUntil(lambda: win.width() == 1280)
        yield win


def test_the_window_fits_1280_by_720_with_every_tab_shown(qtbot, window):
    for tabs in (window.tabs, window.views):
        for i in range(tabs.count()):
            tabs.setCurrentIndex(i)
            hint = window.minimumSizeHint()
            assert hint.width() <= 1280 and hint.height() <= 720, tabs.tabText(i)
    window.show_panel(window.preview_editor)
    qtbot.waitUntil(lambda: window.preview_editor.isVisible())
    assert window.size().width() == 1280 and window.size().height() == 720


def test_the_library_buttons_are_never_clipped_at_the_default_split(qtbot, window):
    from PyQt6.QtWidgets import QPushButton
    window.show_panel(window.library_panel)
    qtbot.waitUntil(lambda: window.library_panel.isVisible())
    buttons = window.library_panel.findChildren(QPushButton)
    assert len(buttons) >= 5
    for button in buttons:
        assert button.width() >= button.sizeHint().width(), button.text()


def test_every_tab_is_reachable_and_legible_at_1280(qtbot, window):
    from PyQt6.QtWidgets import QApplication
    QApplication.processEvents()
    for tabs in (window.views, window.tabs):
        bar = tabs.tabBar()
        for i in range(tabs.count()):
            rect = bar.tabRect(i)
            assert bar.rect().contains(rect), tabs.tabText(i)
            text_width = bar.fontMetrics().horizontalAdvance(tabs.tabText(i))
            assert rect.width() >= text_width, tabs.tabText(i)
    assert [window.views.tabText(i) for i in range(window.views.count())] == [
        "Live", "Browser", "Map", "Duplicates", "Detect"]


def test_the_live_view_stays_beside_the_library_effects_and_midi(qtbot, window):
    for panel in (window.library_panel, window.input_editor, window.midi_panel):
        window.show_panel(panel)
        qtbot.waitUntil(lambda: panel.isVisible())
        assert window.view.isVisible() and window.meter.isVisible()
