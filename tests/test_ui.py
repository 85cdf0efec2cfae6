"""The desktop window against a real library (Sonic Pi samples scanned into a temp dir).

The host is ``NullHost``: the real catalog, index and encoder, real effect chains and MIDI
maps, but no audio device (the window's live side is tested under Xvfb + JACK in
test_ui_smoke.py). MIDI messages are injected because there is no MIDI hardware here.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent

from tests.conftest import SONIC_PI, final_answer_shown, require

pytestmark = pytest.mark.samples

LIBRARY_LAYOUT = {
    "Kicks": ["bd_haus", "bd_808", "bd_boom", "drum_heavy_kick"],
    "Snares": ["sn_dolf", "sn_dub", "drum_snare_hard", "elec_snare"],
    "Hats": ["drum_cymbal_closed", "drum_cymbal_open", "elec_tick"],
    "Perc": ["perc_bell", "elec_bell", "tabla_na"],
}
ODD_NAME = "Kick drum #1 é.flac"   # spaces, '#' and non-ASCII: the URL must still be right


@pytest.fixture(scope="module")
def sample_library(tmp_path_factory):
    """A scanned library: (library_dir, samples_root, {stem: path})."""
    require(SONIC_PI, "sonic-pi-samples")
    from app.library import Library
    from app.scanner import Scanner

    base = tmp_path_factory.mktemp("ui-library")
    root = base / "samples"
    paths = {}
    for folder, stems in LIBRARY_LAYOUT.items():
        (root / folder).mkdir(parents=True)
        for stem in stems:
            paths[stem] = shutil.copy(SONIC_PI / f"{stem}.flac", root / folder / f"{stem}.flac")
    paths["odd"] = shutil.copy(SONIC_PI / "bd_fat.flac", root / "Kicks" / ODD_NAME)
    (root / "Perc" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    library_dir = base / "library"
    with Library(library_dir) as library:
        report = Scanner(library, workers=1).scan([root])
    assert report.indexed == len(paths)
    return library_dir, root, {k: str(v) for k, v in paths.items()}


@pytest.fixture
def window(qtbot, sample_library, tmp_path):
    from ui import theme
    from tests.null_host import NullHost
    from ui.main_window import MainWindow
    from ui.settings import SettingsStore

    theme.apply(qtbot_app())
    host = NullHost(sample_library[0])
    store = SettingsStore(tmp_path / "config")
    win = MainWindow(host, store, scan_workers=1, scan_plugins=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    host.close()


def qtbot_app():
    from PyQt6.QtWidgets import QApplication
    return QApplication.instance()


def drop_file(win, path: str) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    win.dropEvent(event)


def cell_pixels(view, index) -> np.ndarray:
    """The painted pixels of one cell of ``view``, (height, width, 3) uint8 RGB."""
    image = view.viewport().grab(view.visualRect(index)).toImage()
    from PyQt6.QtGui import QImage
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = image.width(), image.height()
    data = np.frombuffer(image.constBits().asstring(image.sizeInBytes()), np.uint8)
    return data.reshape(height, image.bytesPerLine())[:, :3 * width].reshape(height, width, 3)


def colour_mask(pixels: np.ndarray, hex_colour: str, tolerance: int = 24) -> np.ndarray:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], np.int16)
    return np.all(np.abs(pixels.astype(np.int16) - rgb) <= tolerance, axis=2)


def show_matches_for(qtbot, win, path: str) -> None:
    """Drop ``path`` and wait for its final answer (after the index's order)."""
    drop_file(win, path)
    qtbot.waitUntil(lambda: final_answer_shown(win), timeout=30000)


def test_a_dropped_file_lists_the_index_order_then_the_reranked_list(qtbot, window,
                                                                     sample_library):
    """The index's answer shows at once, marked as such; the re-ranked list replaces it."""
    _, _, paths = sample_library
    shown = []
    window.host.suggestions.connect(
        lambda update: shown.append((update.stage, window.match_info.text(),
                                     [s.path for s in window.model.suggestions()])))
    show_matches_for(qtbot, window, paths["sn_dolf"])
    # the window's own slot may run before this one for the final update
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=30000)
    assert [stage for stage, _, _ in shown] == ["index", "final"]
    (_, first_line, first_rows), (_, final_line, final_rows) = shown
    assert "like sn_dolf.flac (index order, re-ranking…)" in first_line
    assert "like sn_dolf.flac ·" in final_line and "re-ranking" not in final_line
    assert len(first_rows) == len(final_rows) > 1 and final_rows[0] == paths["sn_dolf"]


def test_a_dropped_file_lists_the_same_kind_after_itself(qtbot, window, sample_library):
    """A search by example in the window lists, after the file itself, the same kind of
    sound first (app.similar_kind), not the closeness order."""
    from app.library import Library
    library_dir, _, paths = sample_library
    k = window.host.k
    with Library(library_dir) as library:
        for stem in LIBRARY_LAYOUT["Snares"] + LIBRARY_LAYOUT["Hats"] + LIBRARY_LAYOUT["Kicks"]:
            kind = [r.file.path for r in library.search_file(paths[stem], k=k)]
            closest = [r.file.path for r in library.search_file(paths[stem], k=k, by_kind=False)]
            if kind != closest:
                break
    assert kind != closest, "the kind order changed no list of this library"
    show_matches_for(qtbot, window, paths[stem])
    shown = [s.path for s in window.model.suggestions()]
    assert shown == kind[:len(shown)] and shown[0] == paths[stem]


def test_dropping_a_file_shows_its_matches(qtbot, window, sample_library):
    _, _, paths = sample_library
    show_matches_for(qtbot, window, paths["sn_dolf"])
    model = window.model
    first = model.suggestion(0)
    assert first.path == paths["sn_dolf"]                       # itself, first
    assert model.index(0, model.COL_NAME).data() == "sn_dolf.flac"
    assert model.index(0, model.COL_CATEGORY).data().startswith("snare")   # its tags, not its folder
    assert float(model.index(0, model.COL_SCORE).data()) > 0.9
    assert model.index(0, model.COL_LENGTH).data().endswith("s")
    assert ("request_search", (paths["sn_dolf"],)) in window.host.calls
    assert "matches" in window.match_info.text()
    # Thumbnails arrive from the pool and are painted from the model: the file's own peak
    # envelope, drawn as bars whose heights follow it.
    from ui import theme
    from ui.models import ThumbnailRole, waveform_thumbnail
    cell = model.index(0, model.COL_WAVE)
    qtbot.waitUntil(lambda: cell.data(ThumbnailRole) is not None, timeout=10000)
    envelope = np.asarray(cell.data(ThumbnailRole))
    np.testing.assert_allclose(envelope, waveform_thumbnail(paths["sn_dolf"]), atol=1e-6)
    window.view.clearSelection()
    drawn = colour_mask(cell_pixels(window.view, cell), theme.ACCENT).sum(axis=0)  # per column
    bars = drawn[drawn > 0]
    share = first.duration_s / model.longest_s()    # thumbnails share one time scale
    assert len(bars) > 0.5 * share * len(envelope), "the thumbnail painted no waveform"
    # bar heights against the envelope, both in pixel columns
    columns = np.flatnonzero(drawn)
    expected = envelope[np.minimum(((columns - columns[0]) * len(envelope)
                                    / (columns[-1] - columns[0] + 1)).astype(int), len(envelope) - 1)]
    assert np.corrcoef(drawn[columns], expected)[0, 1] > 0.9
    # The pads play the new matches.
    assert window.host.slots()[0].path == paths["sn_dolf"]


def test_drop_of_a_non_audio_file_is_refused(qtbot, window, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(text))])
    from ui.dragdrop import audio_paths_from_mime
    assert audio_paths_from_mime(mime) == []
    drop_file(window, str(text))
    assert not any(name == "request_search" for name, _ in window.host.calls)


def test_drag_of_a_suggestion_carries_its_file_url(qtbot, window, sample_library):
    _, _, paths = sample_library
    show_matches_for(qtbot, window, paths["odd"])
    view, model = window.view, window.model
    row = model.row_of(model.suggestion(0).file_id)
    view.selectRow(row)
    mime = view.drag_payload()              # what startDrag hands to QDrag
    assert mime.hasFormat("text/uri-list")
    assert mime.urls() == [QUrl.fromLocalFile(paths["odd"])]
    assert mime.urls()[0].toLocalFile() == paths["odd"]
    assert "%23" in bytes(mime.data("text/uri-list")).decode()   # '#' percent-encoded on the wire
    assert mime.text() == paths["odd"]
    # The model's own mimeData (Qt's default drag path) is the same payload.
    assert model.mimeData([model.index(row, 0)]).urls() == mime.urls()


def test_drag_with_preview_fx_renders_a_copy_named_after_the_source(qtbot, window, sample_library):
    import soundfile as sf
    _, _, paths = sample_library
    show_matches_for(qtbot, window, paths["bd_haus"])
    window.preview_editor.add_effect("Gain")
    window.preview_editor.set_parameter("gain_db", -12.0)
    window.drag_fx.setChecked(True)
    window.view.selectRow(0)
    url = window.view.drag_payload().urls()[0]
    rendered = Path(url.toLocalFile())
    assert rendered.name == "bd_haus (preview fx).wav"
    assert rendered.is_file()
    out, sr = sf.read(rendered)
    from app.decode import read_mono
    src = read_mono(paths["bd_haus"], sr)
    gain_db = 20 * math.log10(np.max(np.abs(out)) / np.max(np.abs(src)))
    assert gain_db == pytest.approx(-12.0, abs=0.5)


def test_keys_audition_and_arrows_preview_when_switched_on(qtbot, window, sample_library):
    _, _, paths = sample_library
    show_matches_for(qtbot, window, paths["bd_boom"])
    host, view, model = window.host, window.view, window.model
    view.setFocus()
    view.setCurrentIndex(model.index(0, 1))
    auditions = lambda: [args[0] for name, args in host.calls if name == "audition"]
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert auditions()[-1] == model.suggestion(0).path
    window.auto_preview.setChecked(True)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert auditions()[-1] == model.suggestion(1).path
    window.auto_preview.setChecked(False)
    count = len(auditions())
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert len(auditions()) == count                          # no preview on select
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert auditions()[-1] == model.suggestion(2).path
    # A click auditions too, and the playhead shows on that row's thumbnail.
    from ui import theme
    from ui.models import PlayheadRole, ThumbnailRole
    cell = model.index(3, model.COL_WAVE)
    qtbot.waitUntil(lambda: cell.data(ThumbnailRole) is not None, timeout=10000)
    rect = view.visualRect(model.index(3, model.COL_NAME))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert auditions()[-1] == model.suggestion(3).path
    # the playhead moves with the voice: wait until it is well into the sample
    qtbot.waitUntil(lambda: (window.poll_audio(), (cell.data(PlayheadRole) or 0) > 0.3)[1],
                    timeout=10000)
    fraction = cell.data(PlayheadRole)
    # the played part of the bars takes the playhead colour, up to the playhead's x
    played = np.flatnonzero(colour_mask(cell_pixels(view, cell), theme.ONSET).any(axis=0))
    width = view.visualRect(cell).width() - 12                      # the delegate's margins
    width *= model.suggestion(3).duration_s / model.longest_s()    # one time scale for all rows
    assert len(played) > 0
    assert played[-1] - 6 == pytest.approx(fraction * width, abs=0.05 * width + 3), (played[-1], fraction)
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert host.calls[-1][0] == "stop_all"
    assert model.index(3, model.COL_WAVE).data(PlayheadRole) is None


def test_capture_button_and_shortcut_ask_the_host(qtbot, window):
    qtbot.mouseClick(window.capture_button, Qt.MouseButton.LeftButton)
    window.activateWindow()
    qtbot.keyClick(window.view, Qt.Key.Key_C)
    assert [n for n, _ in window.host.calls].count("capture") == 2


def test_updates_keep_the_selection_and_do_not_reset_the_model(qtbot, sample_library):
    from ui.host import Suggestion
    from ui.models import SuggestionModel
    from PyQt6.QtCore import QItemSelectionModel

    def sug(fid):
        return Suggestion(rank=fid, file_id=fid, path=f"/x/{fid}.wav", name=f"{fid}.wav", score=0.5,
                          kind="one-shot", duration_s=1.0, offset_s=0.0, exists=True)

    model = SuggestionModel()
    sel = QItemSelectionModel(model)
    resets = []
    model.modelReset.connect(lambda: resets.append(1))
    model.set_suggestions([sug(i) for i in (1, 2, 3, 4)])
    sel.setCurrentIndex(model.index(2, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                        | QItemSelectionModel.SelectionFlag.Rows)
    assert model.suggestion(sel.currentIndex().row()).file_id == 3
    model.set_suggestions([sug(i) for i in (3, 9, 1)])          # reordered and shorter
    assert model.suggestion(sel.currentIndex().row()).file_id == 3
    assert [model.suggestion(i.row()).file_id for i in sel.selectedRows()] == [3]
    model.set_suggestions([sug(i) for i in (5, 6, 7, 3, 8, 1)])  # longer, moved to row 3
    assert sel.currentIndex().row() == 3
    model.set_suggestions([sug(i) for i in (5, 6)])             # gone: nothing selected
    assert not sel.currentIndex().isValid()
    assert resets == []


def test_midi_learn_press_then_click_and_click_then_press(qtbot, window):
    from engine.midi import MidiMap
    host, panel = window.host, window.midi_panel
    host.set_midi_map(MidiMap(name="empty"))
    panel.learn_button.click()
    assert panel.learning
    host.inject_midi([0x90, 60, 100])                        # press a pad
    assert panel.pending == ("note", 60)
    row = panel.model.rowCount() - 1                         # "Stop all previews"
    assert panel.model.action(row) == "stop_all"
    rect = panel.table.visualRect(panel.model.index(row, 0))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert host.midi_map().bindings == {("note", 60): "stop_all"}
    assert panel.model.index(row, 1).data() == "Note 60"
    # The other way round: click the action, then move a knob.
    panel.action_clicked("capture_lookup")
    host.inject_midi([0xB0, 21, 127])
    assert host.midi_map().bindings[("cc", 21)] == "capture_lookup"
    assert ("capture", ()) not in host.calls                 # learning: controls do not act
    assert json.loads(host.calls[-1][1][0])["bindings"][0] == {
        "kind": "cc", "number": 21, "action": "capture_lookup"}
    panel.learn_button.click()
    # Learned controls now act.
    host.inject_midi([0x90, 60, 90])
    assert host.calls[-1][0] == "stop_all"


def test_midi_preset_save_and_load(qtbot, window, tmp_path):
    from engine.midi import MidiMap
    panel, host = window.midi_panel, window.host
    host.set_midi_map(MidiMap({("note", 40): "page_next"}, name="mine"))
    panel.save_preset(tmp_path / "mine.json")
    panel.load_preset(MidiMap.default_16_pads and Path(__import__("engine.midi", fromlist=["x"]).DEFAULT_MAP_PATH))
    assert len(host.midi_map().bindings) == 16
    panel.load_preset(tmp_path / "mine.json")
    assert host.midi_map().bindings == {("note", 40): "page_next"}
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    errors = []
    host.error.connect(errors.append)
    panel.load_preset(bad)
    assert errors and "not valid JSON" in errors[0]


def test_chain_editor_round_trips_a_preset(qtbot, window, tmp_path):
    from engine.chain import Chain
    editor = window.input_editor
    chain: Chain = editor.chain
    comp = editor.add_effect("Compressor")
    editor.set_parameter("threshold_db", -24.0)
    editor.set_parameter("ratio", 4.0)
    rev = editor.add_effect("Reverb")
    editor.members.item(1).setCheckState(Qt.CheckState.Unchecked)    # bypass the reverb
    editor.members.setCurrentRow(1)
    editor.move_selected(-1)                                         # reverb first
    assert [m.effect for m in chain.members()] == ["Reverb", "Compressor"]
    path = editor.save_preset(tmp_path / "my chain.json")
    saved = json.loads(path.read_text())
    assert [m["effect"] for m in saved["members"]] == ["Reverb", "Compressor"]
    for member_id in (comp, rev):
        chain.remove(member_id)
    editor.refresh()
    assert editor.members.count() == 0
    editor.load_preset(path)
    qtbot.waitUntil(lambda: editor.members.count() == 2, timeout=10000)
    infos = chain.members()
    assert [m.effect for m in infos] == ["Reverb", "Compressor"]
    assert [m.bypassed for m in infos] == [True, False]
    assert editor.members.item(0).checkState() == Qt.CheckState.Unchecked
    comp_id = infos[1].id
    assert chain.get_parameter(comp_id, "threshold_db") == pytest.approx(-24.0, abs=0.2)
    assert chain.get_parameter(comp_id, "ratio") == pytest.approx(4.0, abs=0.1)
    editor.members.setCurrentRow(1)
    labels = [editor.params_form.itemAt(i, editor.params_form.ItemRole.LabelRole).widget().text()
              for i in range(editor.params_form.rowCount())]
    assert "Threshold" in labels and "Ratio" in labels
    assert not editor.editor_button.isEnabled()       # built-in effect, offscreen: no plugin window


def test_parameter_sliders_map_units_and_log_ranges():
    from engine.plugins import ParameterInfo
    from ui.chain_editor import format_value, slider_position, slider_value
    hz = ParameterInfo("cutoff_frequency_hz", 10, 20000, 440, 440, "Hz")
    assert slider_value(hz, slider_position(hz, 1000.0)) == pytest.approx(1000.0, rel=0.01)
    assert slider_position(hz, 10) == 0 and slider_position(hz, 20000) == 1000
    assert 400 < slider_position(hz, 440) < 600                      # log scale: 440 Hz mid-way
    assert format_value(hz, 1234.0) == "1,234 Hz"
    db = ParameterInfo("gain_db", -60, 24, 0, 0, "dB")
    assert slider_value(db, slider_position(db, -6.0)) == pytest.approx(-6.0, abs=0.1)


def test_library_panel_scans_with_progress_and_lists_skipped_files(qtbot, window, tmp_path):
    folder = tmp_path / "new samples"
    folder.mkdir()
    shutil.copy(SONIC_PI / "elec_blip.flac", folder / "blip.flac")
    (folder / "truncated.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    panel = window.library_panel
    progress = []
    panel.jobs.progress.connect(lambda done, total, cur: progress.append((done, total)))
    with qtbot.waitSignal(panel.scan_done, timeout=60000):
        panel.add_folder(str(folder))
        assert panel.scanning and panel.cancel_button.isEnabled()
    assert not panel.scanning
    assert str(folder) in panel.roots()
    assert progress and progress[-1][0] == progress[-1][1]
    qtbot.waitUntil(lambda: panel.skipped.rowCount() >= 2, timeout=10000)
    skipped = {panel.skipped.item(r, 0).text(): panel.skipped.item(r, 1).text()
               for r in range(panel.skipped.rowCount())}
    assert skipped[str(folder / "truncated.wav")]
    assert "samples indexed" in panel.totals.text()
    assert ("reload_library", ()) in window.host.calls
    # The new sample is searchable once the host reloaded its index.
    qtbot.waitUntil(lambda: window.host.status().library_files == 16, timeout=20000)
    show_matches_for(qtbot, window, str(folder / "blip.flac"))
    assert window.model.suggestion(0).path == str(folder / "blip.flac")
    with qtbot.waitSignal(panel.scan_done, timeout=30000):
        panel.remove_folder(str(folder))
    qtbot.waitUntil(lambda: str(folder) not in panel.roots(), timeout=10000)


def test_settings_persist_in_the_given_config_dir(qtbot, tmp_path):
    from tests.null_host import NullHost
    from ui.settings import SettingsPanel, SettingsStore
    store = SettingsStore(tmp_path / "cfg")
    host = NullHost(tmp_path / "lib")
    try:
        panel = SettingsPanel(host, store)
        qtbot.addWidget(panel)
        panel.sample_rate.setCurrentIndex(panel.sample_rate.findData(44100))
        panel.block_size.setCurrentIndex(panel.block_size.findData(128))
        panel.apply()
        assert host.calls[-1] == ("apply_audio_settings", (store.audio.hostapi, store.audio.device,
                                                           44100, 128))
        again = SettingsStore(tmp_path / "cfg")
        assert (again.audio.sample_rate, again.audio.block_size) == (44100, 128)
        (tmp_path / "cfg" / "settings.json").write_text('{"audio": {"block_size": "big"}, "ui": 3}')
        fallback = SettingsStore(tmp_path / "cfg")
        assert fallback.audio.block_size == 256 and fallback.ui["auto_preview"] is True
    finally:
        host.close()


def test_scope_model_places_onsets_and_envelope():
    from ui.models import ScopeModel
    sr = 1000
    model = ScopeModel(seconds=4.0, columns=400)
    tail = np.zeros(4000, np.float32)
    tail[3000:3010] = 0.5
    frame = model.frame(end_frame=10_000, tail=tail, onsets=[9_000, 2_000], sample_rate=sr)
    assert frame.onsets == [pytest.approx(0.75)]             # 1 s before the end of a 4 s view
    assert frame.hi[300] == pytest.approx(0.5) and frame.hi[10] == 0
    assert frame.peak_db == pytest.approx(20 * math.log10(0.5))


def test_live_host_without_an_audio_server_says_so_and_still_searches(qtbot, sample_library,
                                                                      monkeypatch):
    from ui.host import AudioSettings
    from ui.session_host import SessionHost
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "no_such_server_for_ui_test")
    library_dir, _, paths = sample_library
    host = SessionHost(library_dir, AudioSettings(hostapi="JACK"))
    try:
        host.start()
        qtbot.waitUntil(lambda: host.status().state == "waiting", timeout=20000)
        status = host.status()
        assert "audio" in status.message and "retrying" in status.message
        assert host.session is None
        with qtbot.waitSignal(host.suggestions, timeout=30000) as got:
            host.request_search(paths["elec_bell"])
        assert got.args[0].suggestions[0].path == paths["elec_bell"]
        errors = []
        host.error.connect(errors.append)
        assert host.audition(got.args[0].suggestions[0]) is None
        assert errors and "not running" in errors[0]
    finally:
        host.close()


def test_a_rows_tags_are_edited_from_its_menu_and_stay_in_the_library(qtbot, window, sample_library):
    from app.library import Library

    library_dir, _, paths = sample_library
    path = paths["tabla_na"]
    show_matches_for(qtbot, window, path)
    assert window.model.suggestion(0).path == path
    menu = window.view.tag_menu(0)
    add = next(a.menu() for a in menu.actions() if a.text() == "Add tag")
    next(a for a in add.actions() if a.text() == "vocal").trigger()
    qtbot.waitUntil(lambda: "vocal" in window.model.suggestion(0).tags, timeout=10000)
    assert window.model.index(0, window.model.COL_CATEGORY).data().startswith("vocal")
    remove = next(a.menu() for a in window.view.tag_menu(0).actions() if a.text() == "Remove tag")
    next(a for a in remove.actions() if a.text() == "vocal").trigger()
    qtbot.waitUntil(lambda: "vocal" not in window.model.suggestion(0).tags, timeout=10000)
    with Library(library_dir) as library:
        assert "vocal" not in {t["tag"] for t in library.describe(path)["tags"]}
        assert library.catalog.tag_rows([library.file_row(path).id])   # the rest is kept


def test_the_filter_bar_narrows_dropped_file_searches_to_a_type(qtbot, window, sample_library):
    _, _, paths = sample_library
    show_matches_for(qtbot, window, paths["sn_dolf"])
    everything = [window.model.suggestion(i) for i in range(window.model.rowCount())]
    bar = window.filter_bar
    bar.tag.setCurrentIndex(bar.tag.findData("kick"))
    assert window.host.search_filter.tags == ("kick",)
    window.model.set_suggestions([])
    show_matches_for(qtbot, window, paths["sn_dolf"])
    kicks = [window.model.suggestion(i) for i in range(window.model.rowCount())]
    assert len(kicks) < len(everything)
    assert all("kick" in s.tags for s in kicks)
    assert window.model.index(0, window.model.COL_CATEGORY).data().startswith("kick")
    bar.bpm.setText("fast")
    bar.bpm.editingFinished.emit()
    assert "tempo wants" in window.match_info.text()
    assert window.host.search_filter.tags == ("kick",)          # a bad field changes nothing
    bar.bpm.setText("")
    bar.bpm.editingFinished.emit()
    house_kick = kicks[-1].path                               # and a genre: both must hold
    window.host.edit_tag(house_kick, "house", False)
    qtbot.waitUntil(lambda: "house" in window.model.suggestion(len(kicks) - 1).tags, timeout=10000)
    bar.style.setCurrentIndex(bar.style.findData("house"))
    assert window.host.search_filter.tags == ("kick", "house")
    window.model.set_suggestions([])
    show_matches_for(qtbot, window, paths["sn_dolf"])
    assert [window.model.suggestion(i).path for i in range(window.model.rowCount())] == [house_kick]
    window.host.edit_tag(house_kick, "house", True)
    bar.style.setCurrentIndex(0)
    bar.tag.setCurrentIndex(0)
    assert window.host.search_filter is None


def test_the_filter_bar_survives_a_restart_and_a_hostile_settings_file(qtbot, sample_library, tmp_path):
    import json

    from tests.null_host import NullHost
    from ui.main_window import MainWindow
    from ui.settings import SettingsStore

    def open_window():
        host = NullHost(sample_library[0])
        win = MainWindow(host, SettingsStore(tmp_path / "config"), scan_workers=1, scan_plugins=False)
        qtbot.addWidget(win)
        return win, host

    win, host = open_window()
    bar = win.filter_bar
    bar.tag.setCurrentIndex(bar.tag.findData("snare"))
    bar.style.setCurrentIndex(bar.style.findData("chill"))
    bar.key.setText("Am")
    bar.key.editingFinished.emit()
    win.close()
    host.close()
    win, host = open_window()
    try:
        assert win.filter_bar.state() == {"tag": "snare", "style": "chill", "kind": "", "key": "Am", "bpm": ""}
        assert host.search_filter.tags == ("snare", "chill") and host.search_filter.key == "Am"
    finally:
        win.close()
        host.close()
    settings = tmp_path / "config" / "settings.json"
    doc = json.loads(settings.read_text())
    doc["ui"]["filter"] = {"tag": 5, "style": "banjo", "kind": ["loop"], "key": "H" * 10000, "bpm": None}
    settings.write_text(json.dumps(doc))
    win, host = open_window()
    try:
        state = win.filter_bar.state()
        assert (state["tag"], state["style"], state["kind"], state["bpm"]) == ("", "", "", "")
        assert len(state["key"]) <= 40 and "not a key" in win.match_info.text()
    finally:
        win.close()
        host.close()
