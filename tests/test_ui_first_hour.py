"""The window as a new user meets it: the real ``MainWindow`` over the real ``SessionHost``
(library only, no audio device), a real catalog, real chains, VST3 plugins probed out of
process, and the settings in a temporary user config dir (XDG_CONFIG_HOME), so a restart is
a second window built on the same dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SONIC_PI, final_answer_shown, require
from tests.jack_fixtures import jack_server  # noqa: F401  (fixture)

ZAMCOMP = Path("/usr/lib/vst3/ZamComp.vst3")


@pytest.fixture
def config_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home / "samplescout"


@pytest.fixture
def no_vst3(tmp_path):
    """A scanner that finds no plugins (fast): for the tests that are not about them."""
    from app.audio_types import PluginScanner
    return PluginScanner(extra_paths=[], include_standard=False, cache_dir=tmp_path / "vst3-cache")


@pytest.fixture
def open_window(qtbot, config_home, isolated_library_dir):
    """``open_window(**host_options)``: a window over a fresh SessionHost and the settings in
    the config dir, as the app builds them; closed (settings saved) at the end if still open."""
    from ui import theme
    from ui.main_window import MainWindow
    from ui.session_host import SessionHost
    from ui.settings import SettingsStore

    opened = []

    def open_(scan_plugins=False, **host_options):
        from PyQt6.QtWidgets import QApplication
        theme.apply(QApplication.instance())
        store = SettingsStore()
        host = SessionHost(isolated_library_dir, store.audio, live=False, **host_options)
        win = MainWindow(host, store, scan_workers=1, scan_plugins=scan_plugins)
        qtbot.addWidget(win)
        host.start()
        win.show()
        opened.append((win, host))
        return win

    yield open_
    for win, host in opened:
        if win.isVisible():
            close(win)


def close(win) -> None:
    win.close()
    win.host.close()


def suggestions(scores):
    from app.suggestions import Suggestion, SuggestionUpdate
    rows = tuple(Suggestion(rank=i + 1, file_id=100 + i, path=f"/samples/s{i}.wav", name=f"s{i}.wav",
                            score=score, kind="one-shot", duration_s=0.2, offset_s=0.0, exists=True)
                 for i, score in enumerate(scores))
    return SuggestionUpdate(seq=1, onset_frame=None, mode="one-shot", suggestions=rows,
                            level_db=-6.0, reason="onset", latency_ms=20.0)


# -- 4: the capture note ----------------------------------------------------------------------

def test_the_windows_default_map_captures_on_note_35(open_window, no_vst3):
    win = open_window(plugin_scanner=no_vst3)
    assert win.host.midi_map().action_for([0x90, 35, 100]) == "capture_lookup"
    assert win.midi_panel.model.bindings_for("capture_lookup") == [("note", 35)]
    assert win.host.midi_map().action_for([0x90, 36, 100]) == "audition_slot_1"


# -- 3: everything comes back after a restart -------------------------------------------------

def test_midi_map_chains_profile_mode_and_preview_settings_survive_a_restart(
        qtbot, open_window, no_vst3, config_home):
    win = open_window(plugin_scanner=no_vst3)
    panel = win.midi_panel
    panel.set_learning(True)
    win.host.midi_received.emit([0x90, 60, 100])        # press a pad…
    panel.action_clicked("stop_all")                     # …then click what it should do
    panel.set_learning(False)
    win.input_editor.add_effect("Gain")
    win.input_editor.set_parameter("gain_db", -9.0)
    win.preview_editor.add_effect("Reverb")
    win.profile.setCurrentIndex(win.profile.findData("loops"))
    win.mode.setCurrentIndex(win.mode.findData("one-shot"))      # the user's override
    win.volume.setValue(50)
    win.auto_preview.setChecked(False)
    win.list_length.setCurrentIndex(win.list_length.findData(32))
    close(win)
    assert (config_home / "settings.json").is_file()

    again = open_window(plugin_scanner=no_vst3)
    assert again.host.midi_map().action_for([0x90, 60, 100]) == "stop_all"
    assert again.host.midi_map().action_for([0x90, 35, 100]) == "capture_lookup"
    assert ("note", 60) in again.midi_panel.model.bindings_for("stop_all")
    qtbot.waitUntil(lambda: again.input_editor.members.count() == 1
                    and again.preview_editor.members.count() == 1, timeout=10000)
    (gain,) = again.host.input_chain.members()
    assert gain.effect == "Gain"
    assert again.host.input_chain.get_parameter(gain.id, "gain_db") == pytest.approx(-9.0, abs=0.1)
    assert [m.effect for m in again.host.preview_chain.members()] == ["Reverb"]
    assert again.profile.currentData() == "loops" and again.host.profile == "loops"
    assert again.mode.currentData() == "one-shot" and again.host.mode == "one-shot"
    assert again.mode_note.text() == "your choice"
    assert again.volume.value() == 50 and not again.auto_preview.isChecked()
    assert again.list_length.currentData() == 32 and again.model.max_rows == 32


def test_a_damaged_settings_file_opens_with_defaults(open_window, no_vst3, config_home):
    config_home.mkdir(parents=True)
    (config_home / "settings.json").write_text('{"ui": {"volume": 1e99999}, "midi_map": [')
    win = open_window(plugin_scanner=no_vst3)
    assert win.host.midi_map().action_for([0x90, 35, 100]) == "capture_lookup"
    assert win.volume.value() == 80


def test_a_saved_preset_goes_to_the_users_folder_is_listed_and_named(qtbot, open_window, no_vst3,
                                                                     config_home):
    from app.audio_types import shipped_presets
    win = open_window(plugin_scanner=no_vst3)
    editor = win.input_editor
    editor.add_effect("Compressor")
    proposed = editor.suggested_preset_path()
    assert proposed.parent == config_home / "presets" / "chains" and proposed.parent.is_dir()
    assert proposed.name == "my_input_chain.json"
    editor.save_preset(proposed.with_name("crunch.json"))
    texts = [editor.preset_combo.itemText(i) for i in range(editor.preset_combo.count())]
    assert "crunch  (yours)" in texts
    assert editor.preset_combo.currentText() == "crunch  (yours)"
    shipped = shipped_presets()[0]
    editor.load_preset(shipped)
    qtbot.waitUntil(lambda: editor.preset_combo.currentData() == str(shipped), timeout=10000)
    assert editor.preset_name == editor.preset_combo.currentText()
    # the MIDI panel's "Save…" proposes the user's folder too
    assert win.midi_panel.suggested_preset_path().parent == config_home / "presets" / "midi"


# -- 5: profile and mode agree; one list length; score order ---------------------------------

def test_a_profile_sets_its_mode_and_an_override_is_shown(open_window, no_vst3):
    win = open_window(plugin_scanner=no_vst3)
    win.profile.setCurrentIndex(win.profile.findData("loops"))
    assert win.mode.currentData() == "rolling" and win.host.mode == "rolling"
    assert win.mode_note.text() == "from profile"
    win.mode.setCurrentIndex(win.mode.findData("one-shot"))
    assert win.host.mode == "one-shot" and win.mode_note.text() == "your choice"
    win.profile.setCurrentIndex(win.profile.findData("drums"))
    assert win.mode.currentData() == "one-shot" and win.mode_note.text() == "from profile"


def test_the_list_has_the_users_length_in_score_order(open_window, no_vst3):
    win = open_window(plugin_scanner=no_vst3)
    scores = [0.5, 0.9, 0.7] + [0.1 + i / 1000 for i in range(61)]
    win.show_update(suggestions(scores))
    shown = [s.score for s in win.model.suggestions()]
    assert len(shown) == 16 and shown == sorted(shown, reverse=True) and shown[0] == 0.9
    win.list_length.setCurrentIndex(win.list_length.findData(48))
    assert win.model.rowCount() == 48 and win.host.k == 48
    assert win.model.index(0, win.model.COL_RANK).data() == "1"


# -- 2: messages never widen the window --------------------------------------------------------

def test_long_messages_elide_and_the_window_keeps_its_width(qtbot, open_window, no_vst3):
    win = open_window(plugin_scanner=no_vst3)
    win.resize(1280, 780)
    qtbot.waitUntil(lambda: win.width() == 1280)
    long_error = ("preset not loaded: /usr/lib/vst3/ZamCompX2.vst3 is outside the allowed VST3 "
                  "folders " + "(/a/very/long/folder) " * 60)
    win.show_error(long_error)
    win.library_panel.current.setText("/samples/" + "deep/" * 200 + "kick.wav")
    assert win.minimumSizeHint().width() < 1280 and win.sizeHint().width() < 1600
    shown = win.status_message.shown_text()
    assert shown.endswith("…") and len(shown) < len(long_error)
    assert win.status_message.toolTip() == long_error
    assert win.library_panel.current.shown_text().endswith("kick.wav")   # the middle goes
    qtbot.wait(50)
    assert win.width() == 1280


# -- 6: the first run ----------------------------------------------------------------------------

def test_first_run_says_to_add_a_folder_then_to_play(qtbot, open_window, no_vst3, tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    win = open_window(plugin_scanner=no_vst3)
    qtbot.waitUntil(lambda: win.first_run.isVisible(), timeout=10000)
    assert "add a folder" in win.match_info.text().lower()
    assert win.add_folder_button.isVisible() and "Play something" not in win.match_info.text()
    assert "add a folder" in win.view.empty_text and "Play a sound" not in win.view.empty_text
    folder = tmp_path / "kicks"
    folder.mkdir()
    for stem in ("bd_haus", "bd_808"):
        shutil.copy(SONIC_PI / f"{stem}.flac", folder)
    win.library_panel.add_folder(str(folder))
    qtbot.waitUntil(lambda: not win.first_run.isVisible(), timeout=60000)
    qtbot.waitUntil(lambda: "Play something" in win.match_info.text(), timeout=10000)
    assert win.view.empty_text.startswith("Play a sound")


# -- 1: VST3 plugins in the effects panel ------------------------------------------------------

def test_the_windows_chains_can_load_the_standard_vst3_folders(open_window):
    win = open_window()            # the scanner the app builds (not scanned here)
    roots = [str(r) for r in win.host.input_chain.scanner.roots()]
    assert win.host.preview_chain.scanner is win.host.input_chain.scanner
    if ZAMCOMP.exists():
        assert "/usr/lib/vst3" in roots


@pytest.mark.skipif(not ZAMCOMP.exists(), reason="Debian package zam-plugins is not installed; "
                    "`make test` installs it")
def test_effects_panel_offers_a_scanned_vst3_and_loads_a_preset_with_it(qtbot, open_window,
                                                                         tmp_path):
    import json

    from app.audio_types import PluginScanner
    folder = tmp_path / "my-plugins"
    folder.mkdir()
    shutil.copytree(ZAMCOMP, folder / "ZamComp.vst3")
    scanner = PluginScanner(extra_paths=[folder], include_standard=False,
                            cache_dir=tmp_path / "vst3-cache", timeout=20)
    win = open_window(plugin_scanner=scanner, scan_plugins=True)   # scans in the background
    editor = win.input_editor
    offered = lambda: [editor.add_combo.itemText(i) for i in range(editor.add_combo.count())]  # noqa: E731
    qtbot.waitUntil(lambda: any(t.startswith("ZamComp (VST3") for t in offered()), timeout=60000)
    assert not any("Scanning" in t for t in offered())
    preset = tmp_path / "comp.json"
    preset.write_text(json.dumps({"format": "samplescout-chain", "version": 1, "name": "comp",
                                  "members": [{"type": "vst3",
                                               "path": str(folder / "ZamComp.vst3")}]}))
    errors = []
    editor.error.connect(errors.append)
    editor.load_preset(preset)
    qtbot.waitUntil(lambda: editor.members.count() == 1 or bool(errors), timeout=60000)
    assert not errors
    assert win.host.input_chain.members()[0].kind == "vst3"
    assert editor.preset_combo.currentText() == "comp"


# -- 7: the library panel ------------------------------------------------------------------------

def test_library_panel_queues_a_folder_shows_time_left_and_totals_that_agree(qtbot, open_window,
                                                                          no_vst3, tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    from PyQt6.QtCore import Qt
    win = open_window(plugin_scanner=no_vst3)
    panel = win.library_panel
    first, second = tmp_path / "pack one", tmp_path / "pack two"
    first.mkdir()
    second.mkdir()
    for path in sorted(SONIC_PI.glob("*.flac"))[:30]:
        shutil.copy(path, first)
    shutil.copy(SONIC_PI / "bd_haus.flac", second)
    (second / "truncated.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    formats, totals = [], []
    panel.jobs.progress.connect(lambda *_: formats.append(panel.progress.format()))
    done = []
    panel.jobs.summary.connect(lambda *_: totals.append((not done, panel.totals.text())))
    panel.scan_done.connect(lambda: done.append(panel.progress.format()))
    panel.add_folder(str(first))
    assert panel.scanning and panel.add_button.isEnabled()
    panel.add_folder(str(second))                       # queued behind the running scan
    assert "pack two" in panel.current.text()
    qtbot.waitUntil(lambda: len(done) == 2, timeout=120000)
    assert set(panel.roots()) >= {str(first), str(second)}
    assert any("left" in f for f in formats), formats
    during = [text for first_scan_running, text in totals if first_scan_running]
    assert any(not text.startswith("<b>0</b>") for text in during), totals   # totals grow
    qtbot.waitUntil(lambda: "<b>31</b> samples indexed" in panel.totals.text(), timeout=10000)
    assert "1 skipped" in panel.totals.text()
    with qtbot.waitSignal(panel.scan_done, timeout=60000):
        panel.scan(panel.roots())                      # nothing new: the same totals
    qtbot.waitUntil(lambda: panel.progress.format() == "done: 0 new · 31 indexed · 1 skipped",
                    timeout=10000)
    assert "unchanged" not in panel.progress.format()
    assert panel.skipped.textElideMode() == Qt.TextElideMode.ElideMiddle
    # a path with spaces ("pack two") wrapped to lines has its end elided, the name lost
    assert not panel.skipped.wordWrap()
    (skipped,) = [panel.skipped.item(r, 0).text() for r in range(panel.skipped.rowCount())]
    assert skipped == str(second / "truncated.wav")          # the file's own path, named


# -- 9: settings in plain words ---------------------------------------------------------------------

def test_settings_say_device_problems_in_plain_words_and_dropouts_explain_themselves(
        qtbot, open_window, no_vst3, monkeypatch):
    from ui.settings import plain_words
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "samplescout-nobody-home")
    win = open_window(plugin_scanner=no_vst3)
    note = win.settings_panel.note
    qtbot.waitUntil(lambda: "Looking" not in note.text(), timeout=30000)
    assert "MidiInAlsa" not in note.text() and "::" not in note.text()
    assert "No audio device" in note.text()
    assert plain_words("MIDI alsa: unavailable (MidiInAlsa::initialize: error creating ALSA "
                       "sequencer client object.)").startswith("ALSA MIDI is not available")
    assert "Dropouts" in win.status_xruns.toolTip() and win.status_xruns.text() == "no dropouts"


# -- 8: reading the list -------------------------------------------------------------------------

def scanned(library_dir, folder, stems):
    from app.library import Library
    from app.scanner import Scanner
    folder.mkdir()
    for stem in stems:
        shutil.copy(SONIC_PI / f"{stem}.flac", folder)
    with Library(library_dir) as library:
        Scanner(library, workers=1).scan([folder])
    return {stem: str(folder / f"{stem}.flac") for stem in stems}


def test_the_list_sorts_by_a_column_offers_a_row_menu_and_names_the_dropped_query(
        qtbot, open_window, no_vst3, isolated_library_dir, tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDragEnterEvent, QGuiApplication
    paths = scanned(isolated_library_dir, tmp_path / "Kicks",
                    ["bd_haus", "bd_808", "bd_boom", "sn_dolf", "elec_tick", "perc_bell"])
    win = open_window(plugin_scanner=no_vst3)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(paths["bd_808"])])
    enter = QDragEnterEvent(win.rect().center(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    win.dragEnterEvent(enter)
    assert win.drop_highlight and "Drop the sound" in win.view.empty_text
    from PyQt6.QtGui import QDropEvent
    win.dropEvent(QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime,
                             Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    assert not win.drop_highlight
    qtbot.waitUntil(lambda: win.model.rowCount() == 6, timeout=60000)
    assert "like bd_808.flac" in win.match_info.text()
    model, header = win.model, win.view.horizontalHeader()
    header.setSortIndicator(model.COL_NAME, Qt.SortOrder.AscendingOrder)      # a header click
    names = [s.name for s in model.suggestions()]
    assert names == sorted(names, key=str.lower)
    header.setSortIndicator(model.COL_LENGTH, Qt.SortOrder.DescendingOrder)
    lengths = [s.duration_s for s in model.suggestions()]
    assert lengths == sorted(lengths, reverse=True)
    row = model.row_of(model.suggestion(0).file_id)
    menu = win.view.context_menu(row)
    actions = {a.text(): a for a in menu.actions()}
    assert list(actions) == ["Play", "Find similar", "Show in file manager", "Copy path"]
    actions["Copy path"].trigger()
    assert QGuiApplication.clipboard().text() == model.suggestion(row).path
    target = model.suggestion(row)
    actions["Find similar"].trigger()
    qtbot.waitUntil(lambda: f"like {target.name}" in win.match_info.text(), timeout=60000)


# -- 10: a clean exit -------------------------------------------------------------------------------

CLEAN_EXIT_CHILD = r'''
import sys, time
from PyQt6.QtWidgets import QApplication
from ui import theme
from ui.main_window import MainWindow, make_host
from ui.settings import SettingsStore

def main():
    app = QApplication(sys.argv[:1])
    theme.apply(app)
    def pump(cond, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.01)
        return False
    store = SettingsStore()
    store.audio.hostapi = "JACK"
    host, _ = make_host(None, store)
    win = MainWindow(host, store, scan_plugins=False)
    host.start()
    win.show()
    assert pump(lambda: host.status().state == "running", 60), host.status()
    win.search_file(sys.argv[1])
    assert pump(lambda: win.model.rowCount() > 0, 60)
    win.preview_editor.add_effect("Reverb")
    for row in range(2):
        win.audition_row(row)
        pump(lambda: False, 0.3)
    win.close()
    host.close()
    print("closed", flush=True)

if __name__ == "__main__":
    main()
'''


@pytest.mark.jack
def test_closing_the_live_window_prints_no_traceback(jack_server, isolated_library_dir, tmp_path):  # noqa: F811
    import os
    import subprocess
    import sys
    require(SONIC_PI, "sonic-pi-samples")
    paths = scanned(isolated_library_dir, tmp_path / "Kicks", ["bd_haus", "bd_808", "sn_dolf"])
    script = tmp_path / "window_exit.py"
    script.write_text(CLEAN_EXIT_CHILD)
    env = {**jack_server.env(), "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = subprocess.run([sys.executable, str(script), paths["bd_haus"]], capture_output=True,
                            text=True, timeout=180, env=env, cwd=tmp_path)
    assert result.returncode == 0 and "closed" in result.stdout, result.stderr[-3000:]
    for noise in ("Traceback", "BufferError", "leaked", "Exception ignored"):
        assert noise not in result.stderr, result.stderr[-3000:]


def test_thumbnails_share_one_time_scale(qtbot, open_window, no_vst3, isolated_library_dir,
                                         tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    from ui.models import ThumbnailRole
    from ui.widgets import thumbnail_fraction
    paths = scanned(isolated_library_dir, tmp_path / "Hits", ["elec_tick", "bd_boom", "perc_bell"])
    win = open_window(plugin_scanner=no_vst3)
    win.search_file(paths["bd_boom"])
    model = win.model
    qtbot.waitUntil(lambda: model.rowCount() == 3 and final_answer_shown(win), timeout=60000)
    qtbot.waitUntil(lambda: all(model.index(r, model.COL_WAVE).data(ThumbnailRole) is not None
                                for r in range(3)), timeout=20000)
    rows = sorted(range(3), key=lambda r: model.suggestion(r).duration_s)
    shortest, longest = rows[0], rows[-1]
    ratio = model.suggestion(shortest).duration_s / model.suggestion(longest).duration_s
    assert ratio < 0.5
    image = win.view.viewport().grab().toImage()
    background = {image.pixel(win.view.visualRect(model.index(r, model.COL_WAVE)).right() - 2,
                              win.view.visualRect(model.index(r, model.COL_WAVE)).top() + 2)
                  for r in range(3)}

    def painted_width(row):
        rect = win.view.visualRect(model.index(row, model.COL_WAVE))
        y = rect.center().y()
        xs = [x for x in range(rect.left(), rect.right()) if image.pixel(x, y) not in background]
        return max(xs) - min(xs)

    assert painted_width(shortest) / painted_width(longest) == pytest.approx(
        thumbnail_fraction(model.suggestion(shortest).duration_s, model.longest_s()), abs=0.08)


# -- 9: the block size the server runs ----------------------------------------------------------------

@pytest.mark.jack
def test_settings_show_the_block_size_the_server_really_runs(jack_server, qtbot, tmp_path):  # noqa: F811
    from ui.host import AudioSettings
    from ui.main_window import MainWindow
    from ui.session_host import SessionHost
    from ui.settings import SettingsStore
    store = SettingsStore(tmp_path / "cfg")
    store.audio = AudioSettings(hostapi="JACK", block_size=256)     # JACK runs 64 here
    host = SessionHost(tmp_path / "lib", store.audio)
    win = MainWindow(host, store, scan_plugins=False)
    qtbot.addWidget(win)
    try:
        host.start()
        qtbot.waitUntil(lambda: host.status().block_size is not None, timeout=30000)
        assert host.status().block_size == jack_server.period == 64
        win.update_status()
        assert "runs 64 frames per block" in win.settings_panel.latency.text()
        assert "256 asked" in win.settings_panel.latency.text()
    finally:
        win.close()
        host.close()


@pytest.mark.skipif(not ZAMCOMP.exists(), reason="Debian package zam-plugins is not installed; "
                    "`make test` installs it")
def test_one_vst3_in_both_chains_and_again_after_a_restart(qtbot, open_window, tmp_path):
    from app.audio_types import PluginScanner
    folder = tmp_path / "my-plugins"
    folder.mkdir()
    shutil.copytree(ZAMCOMP, folder / "ZamComp.vst3")

    def scanner():
        return PluginScanner(extra_paths=[folder], include_standard=False,
                             cache_dir=tmp_path / "vst3-cache", timeout=20)

    win = open_window(plugin_scanner=scanner())
    errors = []
    for editor in (win.input_editor, win.preview_editor):
        editor.error.connect(errors.append)
        editor.add_vst3(str(folder / "ZamComp.vst3"))
        qtbot.waitUntil(lambda: editor.members.count() == 1 or bool(errors), timeout=60000)
    assert not errors
    close(win)
    again = open_window(plugin_scanner=scanner())       # restored in this same process
    again.input_editor.error.connect(errors.append)
    qtbot.waitUntil(lambda: again.input_editor.members.count() == 1 or bool(errors),
                    timeout=60000)
    assert not errors
    assert again.host.input_chain.members()[0].effect == "ZamComp"


def test_several_folders_at_once_from_the_picker_and_drops_queue_behind_a_scan(
        qtbot, open_window, no_vst3, tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDropEvent
    from PyQt6.QtWidgets import QListView
    win = open_window(plugin_scanner=no_vst3)
    panel = win.library_panel
    running = tmp_path / "running"
    running.mkdir()
    for path in sorted(SONIC_PI.glob("*.flac"))[:60]:
        shutil.copy(path, running)
    packs = tmp_path / "packs"
    for name, stem in (("808", "bd_808"), ("haus", "bd_haus"), ("snares", "sn_dolf"),
                       ("dropped", "elec_tick"), ("on panel", "perc_bell")):
        (packs / name).mkdir(parents=True)
        shutil.copy(SONIC_PI / f"{stem}.flac", packs / name)
    (packs / "loose.wav").write_bytes(b"")             # a file, not a folder: never added

    def drop(widget, paths):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                           Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        widget.dropEvent(event)
        return event.isAccepted()

    done = []
    panel.scan_done.connect(lambda: done.append(set(panel.roots())))
    panel.add_folder(str(running))
    assert panel.scanning

    win.add_folder_button.click()              # the same dialog as the panel's Add folders…
    dialog = panel.folder_dialog
    qtbot.waitUntil(dialog.isVisible)
    dialog.directory = str(packs)
    dialog.add_button.click()
    picker = dialog.picker
    qtbot.waitUntil(picker.isVisible)
    (view,) = [v for v in picker.findChildren(QListView) if v.objectName() == "listView"]
    model = view.model()
    qtbot.waitUntil(lambda: model.rowCount(view.rootIndex()) == 5, timeout=10000)
    rows = {model.index(r, 0, view.rootIndex()).data(): model.index(r, 0, view.rootIndex())
            for r in range(5)}
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(rows["808"]).center())
    for name in ("haus", "snares"):            # Ctrl-click adds to the selection
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.ControlModifier, view.visualRect(rows[name]).center())
    assert len(view.selectionModel().selectedRows()) == 3
    picker.accept()
    assert dialog.folders() == [str(packs / n) for n in ("808", "haus", "snares")]
    dialog.list.setCurrentRow(2)
    dialog.remove_button.click()               # the user changes their mind about one
    assert drop(dialog, [packs / "dropped", packs / "loose.wav"])
    assert dialog.folders() == [str(packs / n) for n in ("808", "haus", "dropped")]
    dialog.ok_button.click()
    assert not dialog.isVisible()
    assert panel.scanning and panel.queued == [str(packs / n) for n in ("808", "haus", "dropped")]
    assert drop(panel, [packs / "on panel"]) and not drop(panel, [packs / "loose.wav"])
    assert panel.queued[-1] == str(packs / "on panel")
    assert "on panel" in panel.current.text()

    qtbot.waitUntil(lambda: len(done) == 2, timeout=120000)   # the running scan, then the queue
    wanted = {str(running)} | {str(packs / n) for n in ("808", "haus", "dropped", "on panel")}
    assert done[-1] >= wanted and str(packs / "snares") not in done[-1]
    qtbot.waitUntil(lambda: "<b>64</b> samples indexed" in panel.totals.text(), timeout=10000)


def test_the_watcher_and_the_totals_wait_until_the_library_has_opened(open_window, qtbot, tmp_path,
                                                                      isolated_library_dir):
    """Start-up work that can wait (the folder watcher, the library's totals) starts once the
    library thread has opened the index, not beside its load (a million-file library's
    load shared two cores with them)."""
    from app.library import Library
    from app.scanner import Scanner
    from tests.test_scanner import write_hits
    folder = tmp_path / "samples"
    write_hits(folder, 3)
    with Library(isolated_library_dir) as library:
        Scanner(library, workers=1).scan([folder])
    win = open_window()
    host = win.host
    states = []
    host.when_library_open(lambda: states.append(host.status().index_state))
    host.watch_folders()
    # the library thread's open is still under way: nothing of this has started
    assert host.watcher is None and states == []
    assert win.library_panel.totals.text() == "Opening the library…"
    qtbot.waitUntil(lambda: host.watcher is not None and bool(states), timeout=60000)
    assert states[0] != "opening", states
    qtbot.waitUntil(lambda: win.library_panel.totals.text() != "Opening the library…", timeout=60000)
    assert "3" in win.library_panel.totals.text()
    host.when_library_open(lambda: states.append("at once"))     # opened: runs now
    assert states[-1] == "at once"
