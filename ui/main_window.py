"""The main window and ``run(library_dir)``, which ``samplescout`` calls with no subcommand.

Everything the window shows comes from a ``Host`` (``ui.host``): suggestion
updates through a signal, levels, input, playheads and engine state polled on
timers. Nothing here blocks: searches, scans, plugin loads and device
listings run on other threads. GUI thread only.
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
from .host import Host
from .library_panel import LibraryPanel
from .midi_panel import MidiPanel
from .models import ScopeModel, SuggestionModel, ThumbnailCache
from .settings import SettingsPanel, SettingsStore
from .widgets import LevelMeter, ScopeWidget, SuggestionView

CAPTURE_SHORTCUT = "C"
METER_INTERVAL_MS = 33
STATUS_INTERVAL_MS = 500
XRUNS_TIP = ("Audio dropouts: callbacks where the input overflowed or the output ran dry "
             "(the audio process was late), since the engine started or the last reset. "
             "Click to reset.")
LOOKING_UP = "Looking up the last thing you played…"
SNAPSHOT_ENV = "SAMPLESCOUT_UI_SNAPSHOT"   # save a PNG of the window after each suggestion update


def pads_text(page: int, pages: int) -> str:
    """Status bar: which suggestions the 16 pads hold ('pads 17–32 · page 2/4')."""
    if pages <= 0:
        return "pads —"
    return f"pads {16 * page + 1}–{16 * page + 16} · page {page + 1}/{pages}"


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

        self.thumbnails = ThumbnailCache(self)
        self.model = SuggestionModel(self.thumbnails, self)
        self.scope_model = ScopeModel()

        # -- top bar: brand, input, level, mode/profile, capture -------------------------------
        brand = QLabel("Sample<span style='color:%s'>Scout</span>" % theme.ACCENT)
        brand.setStyleSheet("font-size: 15pt; font-weight: 700; letter-spacing: 0.5px;")
        self.device_label = QLabel("no input")
        self.device_label.setObjectName("dim")
        self.meter = LevelMeter()
        self.meter.setFixedWidth(220)
        self.mode = QComboBox()
        for m in host.modes():
            self.mode.addItem(m.replace("-", " ").capitalize(), m)
        self.profile = QComboBox()
        for p in host.profiles():
            self.profile.addItem(p.replace("_", " ").capitalize(), p)
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
        top.addWidget(self._caption("MODE"))
        top.addWidget(self.mode)
        top.addWidget(self._caption("PROFILE"))
        top.addWidget(self.profile)
        top.addSpacing(8)
        top.addWidget(self.capture_button)

        # -- left: scope, match line, suggestions, preview controls -----------------------------
        self.scope = ScopeWidget()
        self.scope.seconds = self.scope_model.seconds
        self.match_info = QLabel("Play something — or drop an audio file here to search by example.")
        self.match_info.setObjectName("matchInfo")
        self.view = SuggestionView()
        self.view.setModel(self.model)
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
        suggestions_title = QHBoxLayout()
        suggestions_title.addWidget(self._caption("SUGGESTIONS"))
        suggestions_title.addStretch(1)
        suggestions_title.addWidget(self.match_info)
        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.setSpacing(8)
        left_lay.addWidget(self.scope, 0)
        left_lay.addLayout(suggestions_title)
        left_lay.addWidget(self.view, 1)
        left_lay.addLayout(controls)

        # -- right: library, effects, MIDI, settings ----------------------------------------------
        self.library_panel = LibraryPanel(host, workers=scan_workers)
        self.plugin_catalog = PluginCatalog(getattr(host.preview_chain, "scanner", None), self)
        user_presets = Path(store.path).parent / "presets"
        self.input_editor = ChainEditor(host.input_chain, self.plugin_catalog, "Input chain",
                                        user_presets / "chains")
        self.preview_editor = ChainEditor(host.preview_chain, self.plugin_catalog, "Preview chain",
                                          user_presets / "chains")
        self.monitor = QCheckBox("Monitor input through the input chain")
        self.monitor.setToolTip("Hear what you play, with the input effects (mind feedback with a mic)")
        effects = QWidget()
        fx_lay = QVBoxLayout(effects)
        fx_lay.addWidget(self.monitor)
        fx_lay.addWidget(self.input_editor, 1)
        fx_lay.addSpacing(10)
        fx_lay.addWidget(self.preview_editor, 1)
        self.midi_panel = MidiPanel(host, user_presets / "midi")
        self.settings_panel = SettingsPanel(host, store)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.library_panel, "Library")
        self.tabs.addTab(effects, "Effects")
        self.tabs.addTab(self.midi_panel, "MIDI")
        self.tabs.addTab(self.settings_panel, "Settings")
        self.tabs.setMinimumWidth(360)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([800, 440])

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(14, 10, 14, 8)
        lay.setSpacing(10)
        lay.addLayout(top)
        lay.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        # -- status bar ------------------------------------------------------------------------------
        self.status_engine = QLabel()
        self.status_xruns = QPushButton()
        self.status_xruns.setFlat(True)
        self.status_xruns.setToolTip(XRUNS_TIP)
        self.status_xruns.clicked.connect(self.reset_xruns)
        self.status_latency = QLabel()
        self.status_library = QLabel()
        self.status_pads = QLabel()
        self.status_index = QLabel()
        self.status_message = QLabel()
        self.status_message.setStyleSheet(f"color: {theme.ONSET};")
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.status_message.clear)
        bar = QStatusBar()
        bar.setSizeGripEnabled(False)
        for w in (self.status_engine, self.status_xruns, self.status_latency, self.status_library,
                  self.status_pads):
            bar.addWidget(w)
        bar.addWidget(self.status_message, 1)
        bar.addPermanentWidget(self.status_index)
        self.setStatusBar(bar)

        # -- wiring ------------------------------------------------------------------------------------
        host.suggestions.connect(self.show_update)
        host.error.connect(self.show_error)
        host.info.connect(self.show_info)
        host.library_changed.connect(self.update_status)
        self.capture_button.clicked.connect(self.capture)
        QShortcut(QKeySequence(CAPTURE_SHORTCUT), self, activated=self.capture)
        QShortcut(QKeySequence("Ctrl+F"), self, activated=lambda: self.view.setFocus())
        self.mode.currentIndexChanged.connect(lambda i: self._set_mode(self.mode.itemData(i)))
        self.profile.currentIndexChanged.connect(lambda i: self._set_profile(self.profile.itemData(i)))
        self.view.audition_requested.connect(self.audition_row)
        self.view.stop_requested.connect(self.stop_all)
        self.stop_button.clicked.connect(self.stop_all)
        self.auto_preview.toggled.connect(self._set_auto_preview)
        self.drag_fx.toggled.connect(self._set_drag_fx)
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
        for combo, key in ((self.mode, "mode"), (self.profile, "profile")):
            i = combo.findData(ui[key])
            if i >= 0:
                combo.setCurrentIndex(i)
        if ui["geometry"]:
            self.restoreGeometry(QByteArray.fromHex(ui["geometry"].encode()))
        if ui["splitter"]:
            self.splitter.restoreState(QByteArray.fromHex(ui["splitter"].encode()))

    def _set_mode(self, mode: str) -> None:
        self.store.ui["mode"] = mode
        self.host.set_mode(mode)

    def _set_profile(self, profile: str) -> None:
        self.store.ui["profile"] = profile
        self.host.set_profile(profile)

    def _set_auto_preview(self, on: bool) -> None:
        self.view.auto_preview = on
        self.store.ui["auto_preview"] = on

    def _set_drag_fx(self, on: bool) -> None:
        self.store.ui["drag_rendered"] = on
        self.view.drag_rendered = self._render_for_drag if on else None

    def _set_volume(self, value: int) -> None:
        self.volume_label.setText(
            f"{20 * math.log10(value / 100):+.1f} dB" if value > 0 else "−∞ dB")
        self.store.ui["volume"] = value / 100
        self.host.set_volume(value / 100)

    def _render_for_drag(self, suggestion) -> str | None:
        """A copy of the sample rendered through the preview chain, or None when the chain is empty."""
        chain = self.host.preview_chain
        if not chain.members():
            return None
        from app.paths import cache_dir
        from app.audio_types import chain_to_dict
        try:
            doc = chain_to_dict(chain, name="preview fx")
            return os.fspath(render_through_chain(suggestion.path, doc, cache_dir(),
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
        if update.reason == "onset":
            detail = f"{detail} ({update.stage})"
        # what the producer waited: from the hit (its frame on the engine's clock) to now,
        # the update applied; else the query's own time
        since = update.since_onset_ms()
        waited = f"{since:.0f} ms after the hit" if since is not None else f"{update.latency_ms:.0f} ms"
        self.match_info.setText(f"{len(update.suggestions)} matches · {detail} · {waited}")
        snapshot = os.environ.get(SNAPSHOT_ENV)
        if snapshot and update.suggestions:
            QTimer.singleShot(400, lambda: self.save_snapshot(snapshot))

    def save_snapshot(self, path: str) -> None:
        """Write a PNG of the window and a JSON list of the suggestions shown beside it."""
        self.thumbnails.wait(2000)
        self.grab().save(path)
        names = [s.name for s in self.model.suggestions()]
        Path(path).with_suffix(".json").write_text(json.dumps({"suggestions": names}))

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

    def capture(self) -> None:
        self.host.capture()
        self.match_info.setText(LOOKING_UP)

    def search_file(self, path: str) -> None:
        self.match_info.setText(f"Searching for sounds like {Path(path).name}…")
        self.host.request_search(path)
        self.searched.emit(path)

    # -- drops ------------------------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if audio_paths_from_mime(event.mimeData()) and event.source() is None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
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
            else:
                self.model.set_playhead(s.file_id, min(1.0, played / s.duration_s))

    def update_status(self) -> None:
        st = self.host.status()
        dot = {"running": theme.ACCENT, "waiting": theme.ONSET}.get(st.state, theme.TEXT_DIM)
        self.status_engine.setText(f"<span style='color:{dot}'>●</span> {st.message}")
        self.device_label.setText(f"INPUT  ·  {st.device}" if st.device else "INPUT  ·  no device")
        self.status_xruns.setText(f"xruns {st.xruns}")
        if st.input_latency_ms is not None and st.output_latency_ms is not None:
            self.status_latency.setText(f"latency in {st.input_latency_ms:.1f} · out {st.output_latency_ms:.1f} ms")
        else:
            self.status_latency.setText(f"latency {st.latency_ms:.1f} ms" if st.latency_ms is not None
                                        else "latency —")
        self.status_library.setText(f"library {st.library_files} samples")
        self.status_pads.setText(pads_text(*st.pad_page))
        self.status_index.setText(f"index: {st.index_state}" if st.index_state else "")

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

    # -- close ----------------------------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        self.meter_timer.stop()
        self.status_timer.stop()
        self.store.ui["geometry"] = bytes(self.saveGeometry().toHex()).decode()
        self.store.ui["splitter"] = bytes(self.splitter.saveState().toHex()).decode()
        try:
            self.store.save()
        except OSError as exc:
            print(f"samplescout: settings not saved: {exc}", file=sys.stderr)
        for editor in (self.input_editor, self.preview_editor):
            editor.close_editors()
        self.library_panel.shutdown()
        super().closeEvent(event)


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
