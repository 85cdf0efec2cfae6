"""A VST3 plugin whose probe timed out is named in the Effects tab, greyed in the add list
with its reason, and Rescan probes again: real ``ChainEditor`` and ``SkippedPluginsNote``
widgets over a ``PluginCatalog`` whose scanner reports a timed-out probe."""

from __future__ import annotations

from engine.plugins import ProbeResult, ScanReport

TIMED_OUT = "loading did not finish within 30 s; skipped"


class TimedOutScanner:
    """A scanner whose every scan found ZamVerb timing out; records each scan's rescan flag."""

    def __init__(self):
        self.scans: list[bool] = []

    def scan(self, rescan: bool = False) -> ScanReport:
        self.scans.append(rescan)
        verb = ProbeResult("/usr/lib/vst3/ZamVerb.vst3", False, name="ZamVerb", error=TIMED_OUT,
                           timed_out=True)
        return ScanReport([verb], ["/usr/lib/vst3"], 30.0, 0)

    def stop(self) -> None:
        pass


def test_a_timed_out_plugin_is_named_greyed_and_rescanned(qtbot, tmp_path):
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QWidget, QVBoxLayout
    from app.audio_types import Chain
    from ui.chain_editor import ChainEditor, PluginCatalog
    from ui.plugin_note import SkippedPluginsNote

    scanner = TimedOutScanner()
    catalog = PluginCatalog(scanner)
    page = QWidget()
    lay = QVBoxLayout(page)
    note = SkippedPluginsNote(catalog)
    editor = ChainEditor(Chain("input", sample_rate=48000), catalog, "Input chain", tmp_path)
    lay.addWidget(note)
    lay.addWidget(editor)
    qtbot.addWidget(page)
    page.show()
    assert not note.isVisible()
    catalog.scan()
    qtbot.waitUntil(lambda: not catalog.scanning and note.isVisible(), timeout=10000)
    assert note.label.text() == "1 plugin skipped (timed out): ZamVerb"
    assert TIMED_OUT in note.label.toolTip()
    combo = editor.add_combo
    rows = [i for i in range(combo.count()) if combo.itemText(i).startswith("ZamVerb")]
    assert len(rows) == 1 and "timed out" in combo.itemText(rows[0])
    item = combo.model().item(rows[0])
    assert not item.isEnabled() and item.toolTip() == TIMED_OUT
    assert combo.itemData(rows[0]) is None
    qtbot.mouseClick(note.rescan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: scanner.scans == [False, True] and not catalog.scanning,
                    timeout=10000)
    catalog.stop()


def test_the_effects_tab_holds_the_note_and_keeps_its_height(qtbot, tmp_path):
    from PyQt6.QtWidgets import QApplication
    from tests.null_host import null_window
    from ui import theme
    theme.apply(QApplication.instance())
    with null_window(qtbot, tmp_path / "library", tmp_path / "config") as win:
        assert win.effects_page.isAncestorOf(win.plugin_note)
        assert win.plugin_note.catalog is win.plugin_catalog
        win.plugin_catalog.scanner = TimedOutScanner()
        win.show()
        win.resize(1280, 800)
        win.show_panel(win.plugin_note)
        win.plugin_catalog.scan()
        qtbot.waitUntil(lambda: win.plugin_note.isVisible(), timeout=10000)
        qtbot.wait(50)
        content, viewport = win.effects_page.widget(), win.effects_page.viewport()
        # the page is as tall as the room or its minimum, never its preferred height
        assert content.height() <= max(viewport.height(), content.minimumSizeHint().height())
