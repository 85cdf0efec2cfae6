"""The window's layout at a laptop's size: the real ``MainWindow`` over ``NullHost`` (an
empty library, no audio device), with the app's theme, checked in widget geometry."""

from __future__ import annotations

import pytest


@pytest.fixture
def window(qtbot, tmp_path):
    from PyQt6.QtWidgets import QApplication
    from tests.null_host import NullHost
    from ui import theme
    from ui.main_window import MainWindow
    from ui.settings import SettingsStore

    theme.apply(QApplication.instance())
    host = NullHost(tmp_path / "library")
    win = MainWindow(host, SettingsStore(tmp_path / "config"), scan_workers=1, scan_plugins=False)
    qtbot.addWidget(win)
    win.show()
    win.resize(1280, 720)
    qtbot.waitUntil(lambda: win.width() == 1280)
    yield win
    win.close()
    host.close()


def test_the_window_fits_1280_by_720_with_every_tab_shown(qtbot, window):
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        hint = window.minimumSizeHint()
        assert hint.width() <= 1280 and hint.height() <= 720, window.tabs.tabText(i)
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
