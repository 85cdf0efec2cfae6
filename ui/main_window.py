"""The main window and ``run(library_dir)``, which ``samplescout`` calls with no subcommand.

Everything the window shows comes from a ``Host`` (``ui.host``): suggestion
updates through a signal, levels, input, playheads and engine state polled on
timers. Nothing here blocks: searches, scans, plugin loads and device
listings run on other threads. GUI thread only.

Under the top bar, one view fills the width: Live (the input, the suggestions and the
Library/Effects/MIDI/Settings tabs beside them) or a view of the whole library (Browser,
Map, Duplicates, Detect).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path

from PyQt6.QtCore import QByteArray, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import (QApplication, QCheckBox, QComboBox, QHBoxLayout, QLabel, QMainWindow,
                             QPushButton, QSlider, QSplitter, QStatusBar, QTabWidget, QVBoxLayout,
                             QWidget)

from . import theme
from .chain_editor import ChainEditor, PluginCatalog
from .dragdrop import audio_paths_from_mime, render_through_chain
from .filter_bar import FilterBar
from .host import Host
from .browser_panel import BrowserPanel
from .detect_panel import DetectPanel
from .duplicates_panel import DuplicatesPanel
from .input_meter import InputMeter
from .library_panel import LibraryPanel
from .map_panel import MapPanel
from .midi_panel import MidiPanel
from .models import ScopeModel, SuggestionModel, ThumbnailCache
from .pages import scrolling
from .plugin_note import SkippedPluginsNote
from .settings import LIST_LENGTHS, SettingsPanel, SettingsStore
from .tempo_key_bar import TempoKeyBar
from .waveform_view import WaveformView
from .widgets import ElidedLabel, ScopeWidget, SuggestionView

PLAY_PROMPT = "Play something — or drop an audio file here to search by example."
EMPTY_LIBRARY_PROMPT = "The library is empty: add a folder of samples first."
SCANNING_PROMPT = "Scanning your samples: suggestions start when the first ones are in."
EMPTY_LIBRARY_TEXT = ("<b>Your library is empty.</b> Add a folder of samples: Sample Scout scans it "
                      "once, then suggests matches from it as you play or drop a sound.")
XRUNS_HELP = ("Dropouts (xruns): times the audio callback came too late, heard as a click or "
              "a gap. A few at start-up are normal; if the count keeps climbing, raise the "
              "block size in Settings or close other busy programs. Click to reset the count.")
DROP_PROMPT = "Drop the sound here to find samples like it."
EMPTY_VIEW_TEXT = "Play a sound into the input, press Capture, or drop an audio file here."
EMPTY_LIBRARY_VIEW_TEXT = "Nothing to suggest from yet: add a folder of samples first (Add a folder… above)."
ENGINE_STATUS_WIDTH = 260
CAPTURE_SHORTCUT = "C"
METER_INTERVAL_MS = 33
STATUS_INTERVAL_MS = 500
LOOKING_UP = "Looking up the last thing you played…"
SNAPSHOT_ENV = "SAMPLESCOUT_UI_SNAPSHOT"   # save a PNG of the window after each suggestion update


def pads_text(page: int, pages: int) -> str:
    """Status bar: which suggestions the 16 pads hold ('pads 17–32 · page 2/4')."""
    if pages <= 0:
        return "pads —"
    return f"pads {16 * page + 1}–{16 * page + 16} · page {page + 1}/{pages}"


def library_tooltip(index_state: str, scanning: bool) -> str:
    """The status bar's library count explained: why the index holds more vectors than
    there are samples, and when a scan's new samples become searchable."""
    text = (f"Search index: {index_state}. A sample longer than about 2 s (a loop, most "
            "often) gives one vector per stretch of it, so there are more vectors than samples.")
    if scanning:
        text += " Samples scanned now are searchable once the scan ends."
    return text


class MainWindow(QMainWindow):
    """See the module docstring."""

    searched = pyqtSignal(str)   # a file was dropped or chosen as a query

    def __init__(self, host: Host, store: SettingsStore, *, scan_workers: int | None = None,
                 scan_plugins: bool = True, parent=None):
        super().__init__(parent)
        self.host = host
        self.store = store
        self.setWindowTitle("Sample Scout")
        self.setAcceptDrops(True)
        self.resize(1280, 780)
        self._voice: tuple[int, object] | None = None
        self.last_update = None
        self._query_name = ""            # the file searched by example last
        self._search_warning = ""        # the status bar's line about a failed search
        self.drop_highlight = False

        self.thumbnails = ThumbnailCache(self)
        self.model = SuggestionModel(self.thumbnails, self)
        self.scope_model = ScopeModel()

        # -- top bar: brand, input, level, mode/profile, capture -------------------------------
        brand = QLabel("Sample<span style='color:%s'>Scout</span>" % theme.ACCENT)
        brand.setStyleSheet("font-size: 15pt; font-weight: 700; letter-spacing: 0.5px;")
        self.device_label = ElidedLabel("no input")
        self.device_label.setObjectName("dim")
        self.meter = InputMeter()
        self.meter.setFixedWidth(300)
        self.mode = QComboBox()
        for m in host.modes():
            self.mode.addItem(m.replace("-", " ").capitalize(), m)
        self.mode_note = QLabel()
        self.mode_note.setObjectName("dim")
        self.profile = QComboBox()
        for p in host.profiles():
            self.profile.addItem(p.replace("_", " ").capitalize(), p)
        self.mode_override = False    # the user chose a mode other than the profile's
        self.capture_button = QPushButton(f"●  Capture   {CAPTURE_SHORTCUT}")
        self.capture_button.setObjectName("capture")
        self.capture_button.setToolTip("Look up the last thing you played "
                                       f"(shortcut {CAPTURE_SHORTCUT}, or a MIDI pad)")
        top = QHBoxLayout()
        top.setSpacing(12)
        top.addWidget(brand)
        top.addSpacing(16)
        input_box = QVBoxLayout()
        input_box.setSpacing(2)
        input_box.addWidget(self.device_label)
        input_box.addWidget(self.meter)
        top.addLayout(input_box)
        top.addStretch(1)
        top.addWidget(self._caption("PROFILE"))
        top.addWidget(self.profile)
        top.addWidget(self._caption("MODE"))
        top.addWidget(self.mode)
        top.addWidget(self.mode_note)
        top.addSpacing(8)
        top.addWidget(self.capture_button)

        # -- left: scope, match line, suggestions, preview controls -----------------------------
        self.scope = ScopeWidget()
        self.scope.seconds = self.scope_model.seconds
        self.match_info = ElidedLabel(PLAY_PROMPT)
        self.match_info.setObjectName("matchInfo")
        self.filter_bar = FilterBar()
        self.first_run = QWidget()      # shown while the library is empty
        first_lay = QHBoxLayout(self.first_run)
        first_lay.setContentsMargins(0, 0, 0, 0)
        self.first_run_text = QLabel(EMPTY_LIBRARY_TEXT)
        self.first_run_text.setWordWrap(True)
        self.add_folder_button = QPushButton("Add a folder…")
        self.add_folder_button.setObjectName("capture")
        first_lay.addWidget(self.first_run_text, 1)
        first_lay.addWidget(self.add_folder_button)
        self.first_run.hide()
        self.list_length = QComboBox()
        for n in LIST_LENGTHS:
            self.list_length.addItem(f"{n} rows", n)
        self.list_length.setToolTip("How many matches the list shows")
        self.view = SuggestionView()
        self.view.setModel(self.model)
        self.waveform = WaveformView()      # the selected sample, zoomable
        self.auto_preview = QCheckBox("Preview on select")
        self.drag_fx = QCheckBox("Drag with preview FX")
        self.drag_fx.setToolTip("Dragged samples are rendered through the preview chain first")
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setFixedWidth(140)
        self.volume_label = QLabel()
        self.volume_label.setObjectName("dim")
        self.volume_label.setMinimumWidth(52)
        self.stop_button = QPushButton("■ Stop")
        self.stop_button.setToolTip("Stop all previews (Esc)")
        controls = QHBoxLayout()
        controls.addWidget(self.auto_preview)
        controls.addWidget(self.drag_fx)
        controls.addStretch(1)
        controls.addWidget(self._caption("PREVIEW"))
        controls.addWidget(self.volume)
        controls.addWidget(self.volume_label)
        controls.addWidget(self.stop_button)
        self.tempo_key_bar = TempoKeyBar()
        suggestions_title = QHBoxLayout()
        suggestions_title.addWidget(self._caption("SUGGESTIONS"))
        suggestions_title.addWidget(self.match_info, 1)
        suggestions_title.addWidget(self.list_length)
        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.setSpacing(8)
        left_lay.addWidget(self.scope, 0)
        left_lay.addWidget(self.first_run)
        left_lay.addLayout(suggestions_title)
        left_lay.addWidget(self.filter_bar)
        left_lay.addWidget(self.view, 1)
        left_lay.addWidget(self.waveform)
        left_lay.addLayout(controls)
        left_lay.addWidget(self.tempo_key_bar)

        # -- right: library, effects, MIDI, settings ----------------------------------------------
        self.library_panel = LibraryPanel(host, workers=scan_workers)
        self.plugin_catalog = PluginCatalog(getattr(host.preview_chain, "scanner", None), self)
        user_presets = store.presets_dir
        self.input_editor = ChainEditor(host.input_chain, self.plugin_catalog, "Input chain",
                                        user_presets / "chains")
        self.preview_editor = ChainEditor(host.preview_chain, self.plugin_catalog, "Preview chain",
                                          user_presets / "chains")
        self.monitor = QCheckBox("Monitor input through the input chain")
        self.monitor.setToolTip("Hear what you play, with the input effects (mind feedback with a mic)")
        effects = QWidget()
        self.effects_page = scrolling(effects)
        fx_lay = QVBoxLayout(effects)
        fx_lay.addWidget(self.monitor)
        self.plugin_note = SkippedPluginsNote(self.plugin_catalog)
        fx_lay.addWidget(self.plugin_note)
        fx_lay.addWidget(self.input_editor, 1)
        fx_lay.addSpacing(10)
        fx_lay.addWidget(self.preview_editor, 1)
        self.midi_panel = MidiPanel(host, user_presets / "midi")
        self.settings_panel = SettingsPanel(host, store)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.library_panel, "Library")
        self.tabs.addTab(self.effects_page, "Effects")
        self.tabs.addTab(scrolling(self.midi_panel), "MIDI")
        self.tabs.addTab(scrolling(self.settings_panel), "Settings")
        self.tabs.setMinimumWidth(360)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([800, 440])

        # -- the whole width: the live view, or one of the views of the whole library ------------
        self.browser_panel = BrowserPanel(host, self.thumbnails)    # every sample, searched
        self.browser_panel.similar_requested.connect(self.search_file)
        self.map_panel = MapPanel(host)
        self.duplicates_panel = DuplicatesPanel(host)    # one sound stored more than once
        self.detect_panel = DetectPanel(host)            # which samples a track uses
        self.views = QTabWidget()
        self.views.setObjectName("views")
        self.views.setDocumentMode(True)
        self.views.tabBar().setDrawBase(False)
        self.views.addTab(self.splitter, "Live")
        self.views.addTab(self.browser_panel, "Browser")
        self.views.addTab(self.map_panel, "Map")
        self.views.addTab(self.duplicates_panel, "Duplicates")
        self.views.addTab(self.detect_panel, "Detect")

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(14, 10, 14, 8)
        lay.setSpacing(6)
        lay.addLayout(top)
        lay.addWidget(self.views, 1)
        self.setCentralWidget(central)

        # -- status bar ------------------------------------------------------------------------------
        self.status_dot = QLabel()
        self.status_engine = ElidedLabel()
        self.status_engine.setMinimumWidth(ENGINE_STATUS_WIDTH)   # fixed: never the message's
        self.status_xruns = QPushButton()
        self.status_xruns.setFlat(True)
        self.status_xruns.setToolTip(XRUNS_HELP)
        self.status_xruns.clicked.connect(self.reset_xruns)
        self.status_latency = QLabel()
        self.status_library = QLabel()
        self.status_pads = QLabel()
        self.status_index = QLabel()
        self.status_message = ElidedLabel()
        self.status_message.setStyleSheet(f"color: {theme.ONSET};")
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.status_message.clear)
        bar = QStatusBar()
        bar.setSizeGripEnabled(False)
        bar.addWidget(self.status_dot)
        bar.addWidget(self.status_engine)
        for w in (self.status_xruns, self.status_latency, self.status_library, self.status_pads):
            bar.addWidget(w)
        bar.addWidget(self.status_message, 1)
        bar.addPermanentWidget(self.status_index)
        self.setStatusBar(bar)

        # -- wiring ------------------------------------------------------------------------------------
        host.suggestions.connect(self.show_update)
        host.error.connect(self.show_error)
        host.search_failed.connect(self._search_failed)
        host.info.connect(self.show_info)
        host.library_changed.connect(self.update_status)
        self.capture_button.clicked.connect(self.capture)
        QShortcut(QKeySequence(CAPTURE_SHORTCUT), self, activated=self.capture)
        QShortcut(QKeySequence("Ctrl+F"), self, activated=lambda: self.view.setFocus())
        self.filter_bar.changed.connect(self.host.set_filter)
        self.view.tag_edit_requested.connect(
            lambda row, tag, removed: self.host.edit_tag(self.model.suggestion(row).path, tag, removed))
        self.host.tags_changed.connect(self.model.set_tags)
        self.filter_bar.invalid.connect(self.match_info.setText)
        self.filter_bar.restore(self.store.ui["filter"])
        self.filter_bar.changed.connect(self._remember_filter)
        self.mode.currentIndexChanged.connect(lambda i: self._set_mode(self.mode.itemData(i)))
        self.profile.currentIndexChanged.connect(lambda i: self._set_profile(self.profile.itemData(i)))
        self.list_length.currentIndexChanged.connect(
            lambda i: self._set_list_length(self.list_length.itemData(i)))
        self.add_folder_button.clicked.connect(self._add_folder)
        self.library_panel.scan_done.connect(self.update_status)
        self.library_panel.totals_changed.connect(self.update_status)
        self.view.audition_requested.connect(self.audition_row)
        self.view.selectionModel().currentRowChanged.connect(self._show_waveform)
        self.view.similar_requested.connect(self.search_file)
        self.view.reveal_requested.connect(reveal_in_file_manager)
        self.view.stop_requested.connect(self.stop_all)
        self.stop_button.clicked.connect(self.stop_all)
        self.auto_preview.toggled.connect(self._set_auto_preview)
        self.drag_fx.toggled.connect(self._set_drag_fx)
        self.tempo_key_bar.changed.connect(self._set_match)
        self.view.selectionModel().currentRowChanged.connect(self._prepare_match)
        self.tempo_key_bar.loop_dropped.connect(host.request_tempo_key)
        host.tempo_key_found.connect(
            lambda path, source: self.tempo_key_bar.take_source(Path(path).name, source))
        self.volume.valueChanged.connect(self._set_volume)
        self.monitor.toggled.connect(host.set_monitoring)
        self.midi_panel.refresh_requested.connect(self.settings_panel.refresh)
        self.settings_panel.devices_listed.connect(self._devices_listed)
        for editor in (self.input_editor, self.preview_editor):
            editor.error.connect(self.show_error)
            editor.changed.connect(host.chains_changed)

        self._restore()
        self.meter_timer = QTimer(self)
        self.meter_timer.timeout.connect(self.poll_audio)
        self.meter_timer.start(METER_INTERVAL_MS)
        self.status_timer = QTimer(self)
        self.status_timer.timeout.connect(self.update_status)
        self.status_timer.start(STATUS_INTERVAL_MS)
        self.update_status()
        if scan_plugins:
            self.plugin_catalog.scan()
        self.view.setFocus()

    @staticmethod
    def _caption(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("sectionTitle")
        return label

    # -- settings ------------------------------------------------------------------------------------

    def _restore(self) -> None:
        ui = self.store.ui
        self.auto_preview.setChecked(bool(ui["auto_preview"]))
        self.view.auto_preview = bool(ui["auto_preview"])
        self.drag_fx.setChecked(bool(ui["drag_rendered"]))
        self._set_drag_fx(bool(ui["drag_rendered"]))
        self.volume.setValue(int(round(float(ui["volume"]) * 100)))
        self._set_volume(self.volume.value())
        override, mode = bool(ui["mode_override"]), ui["mode"]
        i = self.profile.findData(ui["profile"])
        self._set_profile(self.profile.itemData(i if i >= 0 else self.profile.currentIndex()))
        if i >= 0:
            self.profile.blockSignals(True)
            self.profile.setCurrentIndex(i)
            self.profile.blockSignals(False)
        if override and self.mode.findData(mode) >= 0:
            self.mode.setCurrentIndex(self.mode.findData(mode))
        self.list_length.setCurrentIndex(max(0, self.list_length.findData(ui["list_length"])))
        self._set_list_length(self.list_length.currentData())
        self.tempo_key_bar.set_session(float(ui["session_bpm"]), ui["session_key"],
                                       bool(ui["match_preview"]))
        self._restore_session()
        if ui["geometry"]:
            self.restoreGeometry(QByteArray.fromHex(ui["geometry"].encode()))
        if ui["splitter"]:
            self.splitter.restoreState(QByteArray.fromHex(ui["splitter"].encode()))

    def _restore_session(self) -> None:
        """The MIDI map and both chains as they were when the window last closed."""
        from app.audio_types import MidiMap
        if self.store.midi_map is not None:
            try:
                self.host.set_midi_map(MidiMap.from_json(self.store.midi_map, source="settings"))
            except Exception as exc:  # noqa: BLE001 - the default map stays
                self.show_error(f"MIDI map not restored: {exc}")
        for editor, key in ((self.input_editor, "input"), (self.preview_editor, "preview")):
            if key in self.store.chains:
                editor.restore(self.store.chains[key])

    def _remember_session(self) -> None:
        from app.audio_types import chain_to_dict
        self.store.midi_map = self.host.midi_map().to_json()
        for editor, key in ((self.input_editor, "input"), (self.preview_editor, "preview")):
            try:
                self.store.chains[key] = chain_to_dict(editor.chain, editor.preset_name or "")
            except Exception as exc:  # noqa: BLE001 - the other settings are still saved
                print(f"samplescout: {key} chain not saved: {exc}", file=sys.stderr)

    def _set_mode(self, mode: str) -> None:
        """A mode from the combo: the profile's own, or the user's override of it."""
        profile_mode = self.host.profile_mode(self.profile.currentData())
        self.mode_override = mode != profile_mode
        self.store.ui["mode"] = mode
        self.store.ui["mode_override"] = self.mode_override
        self.mode_note.setText("your choice" if self.mode_override else "from profile")
        self.mode_note.setToolTip(f"The {self.profile.currentText()} profile listens "
                                  f"{profile_mode.replace('-', ' ')}" +
                                  ("; you chose another mode" if self.mode_override else ""))
        self.host.set_mode(mode)

    def _set_profile(self, profile: str) -> None:
        """A profile brings its own mode (a user's override ends with the profile)."""
        self.store.ui["profile"] = profile
        self.host.set_profile(profile)
        mode = self.host.profile_mode(profile)
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(max(0, self.mode.findData(mode)))
        self.mode.blockSignals(False)
        self._set_mode(mode)

    def _set_list_length(self, length: int) -> None:
        self.store.ui["list_length"] = length
        self.model.max_rows = length
        self.host.set_list_length(length)
        if self.last_update is not None:
            self.model.set_suggestions(self.last_update.suggestions)

    def show_panel(self, widget: QWidget) -> None:
        """Bring the view and the tab holding ``widget`` to the front. GUI thread."""
        for tabs in (self.views, self.tabs):
            for i in range(tabs.count()):
                page = tabs.widget(i)
                if page is widget or page.isAncestorOf(widget):
                    tabs.setCurrentIndex(i)

    def _add_folder(self) -> None:
        self.show_panel(self.library_panel)
        self.library_panel.choose_folder()

    def _set_auto_preview(self, on: bool) -> None:
        self.view.auto_preview = on
        self.store.ui["auto_preview"] = on

    def _set_drag_fx(self, on: bool) -> None:
        self.store.ui["drag_rendered"] = on
        self._update_drag_render()

    def _update_drag_render(self) -> None:
        """Drags render a copy with the preview FX, or matched to the session, or both."""
        rendered = self.drag_fx.isChecked() or self.host.match_target is not None
        self.view.drag_rendered = self._render_for_drag if rendered else None

    def _set_match(self, target) -> None:
        """The session tempo/key bar changed: previews and drags follow its target."""
        bar = self.tempo_key_bar
        self.store.ui["session_bpm"] = float(bar.bpm.value())
        self.store.ui["session_key"] = bar.session_key()
        self.store.ui["match_preview"] = target is not None
        self.host.set_match(target)
        self._update_drag_render()

    def _set_volume(self, value: int) -> None:
        self.volume_label.setText(
            f"{20 * math.log10(value / 100):+.1f} dB" if value > 0 else "−∞ dB")
        self.store.ui["volume"] = value / 100
        self.host.set_volume(value / 100)

    def _prepare_match(self, current, _previous) -> None:
        """With Match on, the selected row's matched render is made ahead of a drag."""
        s = self.model.suggestion(current.row()) if current.isValid() else None
        if s is not None and s.exists and self.host.match_target is not None:
            self.host.prepare_matched(s.path)

    def _render_for_drag(self, suggestion) -> str | None:
        """A copy of the sample matched to the session tempo/key (Match on) and/or rendered
        through the preview chain (Drag with preview FX on and a chain); None: the file itself."""
        source = None
        if self.host.match_target is not None:
            try:
                source = self.host.render_matched(suggestion.path)
            except Exception as exc:  # noqa: BLE001 - the plain file is dragged instead
                self.show_error(f"could not match {suggestion.name} to the session: {exc}")
        chain = self.host.preview_chain
        if not self.drag_fx.isChecked() or not chain.members():
            return source
        from app.paths import cache_dir
        from app.audio_types import chain_to_dict
        try:
            doc = chain_to_dict(chain, name="preview fx")
            return os.fspath(render_through_chain(source or suggestion.path, doc, cache_dir(),
                                                  scanner=chain.scanner))
        except Exception as exc:  # noqa: BLE001 - the plain file is dragged instead
            self.show_error(f"could not render through the preview chain: {exc}")
            return None

    # -- suggestions and audition ---------------------------------------------------------------------

    def show_update(self, update) -> None:
        self.last_update = update
        self.model.set_suggestions(update.suggestions)
        if not self.view.currentIndex().isValid() and self.model.rowCount():
            # Keyboard navigation starts at the top; no preview for a selection the user did not make.
            self.view.selectionModel().setCurrentIndex(
                self.model.index(0, 0),
                self.view.selectionModel().SelectionFlag.ClearAndSelect
                | self.view.selectionModel().SelectionFlag.Rows)
        source = {"file": "dropped file", "rolling": "rolling", "one-shot": "onset",
                  "capture": "capture"}.get(update.mode, update.mode)
        detail = update.reason or source
        if (update.reason or "").startswith("file") and self._query_name:
            detail = f"like {self._query_name}"
        if update.reason == "onset":
            detail = f"{detail} ({update.stage})"
        elif update.stage == "index":
            detail = f"{detail} (index order, re-ranking…)"
        # what the producer waited: from the hit (its frame on the engine's clock) to now,
        # the update applied; else the query's own time
        since = update.since_onset_ms()
        waited = f"{since:.0f} ms after the hit" if since is not None else f"{update.latency_ms:.0f} ms"
        self.match_info.setText(f"{len(update.suggestions)} matches · {detail} · {waited}")
        if self._search_warning and self.status_message.toolTip() == self._search_warning:
            self.status_message.clear()         # the failure it told of is over
            self.status_message.setToolTip("")
            self._search_warning = ""
        snapshot = os.environ.get(SNAPSHOT_ENV)
        if snapshot and update.suggestions:
            QTimer.singleShot(400, lambda: self.save_snapshot(snapshot))

    def save_snapshot(self, path: str) -> None:
        """Write a PNG of the window and a JSON list of the suggestions shown beside it."""
        self.thumbnails.wait(2000)
        self.grab().save(path)
        names = [s.name for s in self.model.suggestions()]
        Path(path).with_suffix(".json").write_text(json.dumps({"suggestions": names}))

    def _show_waveform(self, current, _previous=None) -> None:
        """The selected row's sample in the waveform (a cleared selection keeps the last)."""
        s = self.model.suggestion(current.row()) if current.isValid() else None
        if s is not None and s.exists:
            self.waveform.set_path(s.path, s.name)

    def audition_row(self, row: int) -> None:
        s = self.model.suggestion(row)
        if s is None:
            return
        if not s.exists:
            self.show_error(f"{s.path} is missing (moved or deleted since the last scan)")
            return
        try:
            voice = self.host.audition(s)
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"cannot play {s.name}: {exc}")
            return
        self._voice = (voice, s) if voice is not None else None

    def stop_all(self) -> None:
        self.host.stop_all()
        self._voice = None
        self.model.set_playhead(None, None)
        self.waveform.set_playhead(None)

    def capture(self) -> None:
        self.host.capture()
        self.match_info.setText(LOOKING_UP)

    def search_file(self, path: str) -> None:
        """Search by example; the live view comes to the front to show the matches."""
        self.views.setCurrentWidget(self.splitter)
        self._query_name = Path(path).name
        self.match_info.setText(f"Searching for sounds like {Path(path).name}…")
        self.host.request_search(path)
        self.searched.emit(path)

    def _search_failed(self, path: str, line: str) -> None:
        """A search by example failed: the header says so instead of 'Searching…'."""
        if Path(path).name == self._query_name:
            self.match_info.setText(line)
        self.show_error(line)
        self._search_warning = line

    # -- drops ------------------------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if audio_paths_from_mime(event.mimeData()) and event.source() is None:
            event.acceptProposedAction()
            self.set_drop_highlight(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dragLeaveEvent(self, event) -> None:
        self.set_drop_highlight(False)

    def set_drop_highlight(self, on: bool) -> None:
        """While a sound is dragged over the window: the list says it will search with it."""
        self.drop_highlight = on
        self.view.setStyleSheet(f"QTableView {{ border: 2px dashed {theme.ACCENT}; }}" if on else "")
        self.view.empty_text = DROP_PROMPT if on else self._empty_view_text()
        self.view.viewport().update()

    def dropEvent(self, event) -> None:
        self.set_drop_highlight(False)
        paths = audio_paths_from_mime(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.search_file(paths[0])

    # -- polling --------------------------------------------------------------------------------------------

    def poll_audio(self) -> None:
        host = self.host
        levels = host.levels()
        self.meter.set_levels(levels.peak_db, levels.rms_db)
        sr = host.sample_rate
        frames = int(self.scope_model.seconds * sr)
        end, tail = host.input_tail(frames)
        self.scope.set_frame(self.scope_model.frame(end, tail, host.recent_onsets(), sr))
        if self._voice is not None:
            voice, s = self._voice
            played = host.playhead(voice)
            if played is None or not s.duration_s:
                self._voice = None
                self.model.set_playhead(None, None)
                self.waveform.set_playhead(None)
            else:
                self.model.set_playhead(s.file_id, min(1.0, played / s.duration_s))
                self.waveform.set_playhead(played if s.path == self.waveform.path else None)

    def update_status(self) -> None:
        st = self.host.status()
        dot = {"running": theme.ACCENT, "waiting": theme.ONSET}.get(st.state, theme.TEXT_DIM)
        self.status_dot.setText(f"<span style='color:{dot}'>●</span>")
        self.status_engine.setText(st.message)
        self.status_engine.setToolTip(st.message)
        self.device_label.setText(f"INPUT  ·  {st.device}" if st.device else "INPUT  ·  no device")
        self.settings_panel.show_running(st.block_size)
        self.status_xruns.setText(f"dropouts {st.xruns}" if st.xruns else "no dropouts")
        if st.input_latency_ms is not None and st.output_latency_ms is not None:
            self.status_latency.setText(f"latency in {st.input_latency_ms:.1f} · out {st.output_latency_ms:.1f} ms")
        else:
            self.status_latency.setText(f"latency {st.latency_ms:.1f} ms" if st.latency_ms is not None
                                        else "latency —")
        scanning = self.library_panel.scanning
        files = max(st.library_files, self.library_panel.indexed()) if scanning else st.library_files
        self.status_library.setText(f"{files} samples" + (" · scanning…" if scanning else ""))
        self.status_library.setToolTip(library_tooltip(st.index_state, scanning))
        self._show_first_run(st.library_files == 0 and not scanning)
        self.status_pads.setText(pads_text(*st.pad_page))
        # an open index's count is in the tooltip; the bar names only other states
        self.status_index.setText(f"index: {st.index_state}"
                                  if st.index_state and st.index_vectors is None else "")

    def _show_first_run(self, empty: bool) -> None:
        """An empty library: say to add a folder first (with the button), not to play."""
        self.first_run.setVisible(empty)
        if not self.drop_highlight and self.view.empty_text != self._empty_view_text():
            self.view.empty_text = self._empty_view_text()
            self.view.viewport().update()
        if self.last_update is not None or self.match_info.text() not in (
                PLAY_PROMPT, EMPTY_LIBRARY_PROMPT, SCANNING_PROMPT):
            return      # matches, or a search or capture said something since
        scanning = self.library_panel.scanning and self.host.status().library_files == 0
        self.match_info.setText(EMPTY_LIBRARY_PROMPT if empty else
                                SCANNING_PROMPT if scanning else PLAY_PROMPT)

    def _empty_view_text(self) -> str:
        return EMPTY_LIBRARY_VIEW_TEXT if self.first_run.isVisibleTo(self) else EMPTY_VIEW_TEXT

    def _devices_listed(self, report, error: str) -> None:
        self.midi_panel.set_ports(report.midi if report is not None else {})

    def show_info(self, text: str) -> None:
        self.show_message(text, warning=False)

    def show_error(self, text: str) -> None:
        self.show_message(text, warning=True)

    def reset_xruns(self) -> None:
        self.host.reset_xruns()
        self.update_status()

    def show_message(self, text: str, warning: bool = False) -> None:
        """A line in the status bar that clears itself; the engine figures stay visible."""
        if self.match_info.text() == LOOKING_UP:      # the capture's answer is this line
            self.match_info.setText(text)
        color = theme.ONSET if warning else theme.TEXT
        self.status_message.setStyleSheet(f"color: {color};")
        self.status_message.setText(("⚠ " if warning else "") + text)
        self.status_message.setToolTip(text)
        self._message_timer.start(8000 if warning else 5000)

    def _remember_filter(self, _filter) -> None:
        self.store.ui["filter"] = self.filter_bar.state()

    # -- close ----------------------------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        self.meter_timer.stop()
        self.status_timer.stop()
        self._remember_session()
        self.store.ui["geometry"] = bytes(self.saveGeometry().toHex()).decode()
        self.store.ui["splitter"] = bytes(self.splitter.saveState().toHex()).decode()
        try:
            self.store.save()
        except OSError as exc:
            print(f"samplescout: settings not saved: {exc}", file=sys.stderr)
        for editor in (self.input_editor, self.preview_editor):
            editor.close_editors()
        self.plugin_catalog.stop()
        self.library_panel.shutdown()
        self.map_panel.shutdown()
        self.duplicates_panel.shutdown()
        self.detect_panel.shutdown()
        super().closeEvent(event)


def reveal_in_file_manager(path: str) -> None:
    """Open the folder holding ``path`` in the desktop's file manager."""
    from PyQt6.QtCore import QUrl
    from PyQt6.QtGui import QDesktopServices
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))


def make_host(library_dir: str | None, store: SettingsStore) -> tuple[Host, str]:
    """The live host over the session; library search only when the audio side cannot be
    loaded or SAMPLESCOUT_UI_HOST=null asks for that."""
    from .session_host import SessionHost
    if os.environ.get("SAMPLESCOUT_UI_HOST") == "null":
        return SessionHost(library_dir, store.audio, live=False), \
            "library search only (SAMPLESCOUT_UI_HOST=null)"
    try:
        return SessionHost(library_dir, store.audio), ""
    except Exception as exc:  # noqa: BLE001 - the window opens anyway
        return SessionHost(library_dir, store.audio, live=False), \
            f"audio engine not started: {exc}; library search only"


def run(library_dir: str | None = None) -> int:
    """Open the window; returns the exit status. Main thread."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Sample Scout")
    app.setOrganizationName("samplescout")
    theme.apply(app)
    store = SettingsStore()
    host, note = make_host(library_dir, store)
    window = MainWindow(host, store)
    if note:
        window.show_error(note)
    host.start()
    host.watch_folders()     # new, moved and deleted samples are picked up while it runs
    window.show()

    # Ctrl-C / SIGTERM close the window cleanly (the timer lets Python see the signal).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    signal.signal(signal.SIGTERM, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        status = app.exec()
    finally:
        host.close()
    return status
