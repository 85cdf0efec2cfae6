"""Effect chain editor: members in order, bypass, parameters as sliders, presets, plugin windows.

One ``ChainEditor`` per chain (input and preview). Built-in effects are added
at once; VST3 plugins are probed out of process on a worker thread (a plugin that
hangs on load is stopped by the probe's timeout, never the window), then loaded on
the GUI thread, the one the plugin host accepts. Chain
edits publish a new snapshot, so audio keeps running while a slider moves.
GUI thread, except the jobs it starts.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                             QListWidget, QListWidgetItem, QPushButton, QScrollArea, QSlider,
                             QVBoxLayout, QWidget)

from app.audio_types import Chain, ParameterInfo, PluginScanner, builtin_effect_names

from .background import SerialWorker
from .plugin_note import skip_reason, skipped_name

SLIDER_STEPS = 1000


class PluginCatalog(QObject):
    """The VST3 plugins found by a background scan (cached by ``PluginScanner``)."""

    changed = pyqtSignal()

    def __init__(self, scanner: PluginScanner | None, parent=None):
        super().__init__(parent)
        self.scanner = scanner
        self.plugins: list = []      # ProbeResult with ok=True, effects only
        self.failed: list = []
        self.scanning = False
        self._worker = SerialWorker("vst3-scan")

    def scan(self, rescan: bool = False) -> None:
        if self.scanner is None or self.scanning:
            return
        self.scanning = True
        self.changed.emit()
        self._worker.call(lambda: self.scanner.scan(rescan=rescan), self._done)

    def stop(self) -> None:
        """On close: stop the running plugin scan (its probes are killed), so the app's exit
        never waits for a slow plugin. GUI thread."""
        if self.scanner is not None:
            self.scanner.stop()

    def _done(self, report, error: str) -> None:
        self.scanning = False
        if report is not None:
            self.plugins = [r for r in report.loaded if not r.is_instrument]
            self.failed = report.failed
        self.changed.emit()


_PLUGIN_WORKER: SerialWorker | None = None


def plugin_worker() -> SerialWorker:
    """The one thread that probes VST3 plugins and reads chain presets for every chain
    editor. The plugins themselves load on the GUI (main) thread: the plugin host binds
    itself to the thread of the first load and refuses loads from any other while it
    lives, and the main thread is the one it asks for. GUI thread."""
    global _PLUGIN_WORKER
    if _PLUGIN_WORKER is None:
        _PLUGIN_WORKER = SerialWorker("vst3-load")
    return _PLUGIN_WORKER


def slider_position(p: ParameterInfo, value: float) -> int:
    lo, hi = p.min, p.max
    if hi <= lo:
        return 0
    if _log_scale(p):
        t = (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
    else:
        t = (value - lo) / (hi - lo)
    return int(round(max(0.0, min(1.0, t)) * SLIDER_STEPS))


def slider_value(p: ParameterInfo, position: int) -> float:
    t = position / SLIDER_STEPS
    if _log_scale(p):
        return math.exp(math.log(p.min) + t * (math.log(p.max) - math.log(p.min)))
    return p.min + t * (p.max - p.min)


def _log_scale(p: ParameterInfo) -> bool:
    return p.units.strip().lower() in ("hz", "ms") and p.min > 0 and p.max / p.min > 50


def format_value(p: ParameterInfo, value: float) -> str:
    if p.is_boolean:
        return "on" if value >= 0.5 else "off"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {p.units}".strip()


def editor_supported() -> bool:
    """A plugin's own window needs a real display (not the offscreen/minimal platforms)."""
    return QGuiApplication.platformName() not in ("offscreen", "minimal", "")


class ChainEditor(QWidget):
    """Edits one ``Chain``; see the module docstring."""

    error = pyqtSignal(str)
    changed = pyqtSignal()

    def __init__(self, chain: Chain, plugins: PluginCatalog, title: str,
                 preset_dir: Path | None = None, parent=None):
        super().__init__(parent)
        self.chain = chain
        self.plugins = plugins
        self.preset_dir = preset_dir
        self.preset_name: str | None = None     # the preset loaded or saved last
        self._preset_path: str | None = None
        self._worker = plugin_worker()
        self._sliders: dict[str, tuple[QSlider, QLabel, ParameterInfo]] = {}
        self._editor_threads: dict[str, threading.Event] = {}

        head = QLabel(title.upper())
        head.setObjectName("sectionTitle")
        self.add_combo = QComboBox()
        self.add_combo.setMinimumWidth(160)
        self.add_button = QPushButton("Add")
        self.members = QListWidget()
        self.members.setMinimumHeight(60)
        self.members.setMaximumHeight(132)      # room to spare goes to the parameters
        self.up_button = QPushButton("▲")
        self.down_button = QPushButton("▼")
        self.remove_button = QPushButton("Remove")
        self.editor_button = QPushButton("Plugin window")
        self.editor_button.setToolTip("Open the plugin's own editor (VST3, needs a display)")
        self.params_box = QWidget()
        self.params_form = QFormLayout(self.params_box)
        self.params_form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.params_box)
        scroll.setMinimumHeight(96)
        self.preset_combo = QComboBox()
        self.load_button = QPushButton("Load…")
        self.save_button = QPushButton("Save…")

        add_row = QHBoxLayout()
        add_row.addWidget(self.add_combo, 1)
        add_row.addWidget(self.add_button)
        edit_row = QHBoxLayout()
        for b in (self.up_button, self.down_button, self.remove_button):
            edit_row.addWidget(b)
        edit_row.addStretch(1)
        edit_row.addWidget(self.editor_button)
        preset_row = QHBoxLayout()
        preset_row.addWidget(QLabel("Preset"))
        preset_row.addWidget(self.preset_combo, 1)
        preset_row.addWidget(self.load_button)
        preset_row.addWidget(self.save_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(head)
        lay.addLayout(preset_row)
        lay.addLayout(add_row)
        lay.addWidget(self.members)
        lay.addLayout(edit_row)
        lay.addWidget(scroll, 1)

        self.add_button.clicked.connect(self._add_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(+1))
        self.editor_button.clicked.connect(self.open_editor)
        self.members.currentRowChanged.connect(self._show_parameters)
        self.members.itemChanged.connect(self._bypass_toggled)
        self.save_button.clicked.connect(self._save_dialog)
        self.load_button.clicked.connect(self._load_dialog)
        self.preset_combo.activated.connect(self._preset_chosen)
        plugins.changed.connect(self._fill_add_combo)
        self._fill_add_combo()
        self._fill_presets()
        self.refresh()

    # -- lists ---------------------------------------------------------------------------

    def _fill_add_combo(self) -> None:
        current = self.add_combo.currentData()
        self.add_combo.clear()
        for name in builtin_effect_names():
            self.add_combo.addItem(name, ("builtin", name))
        for p in self.plugins.plugins:
            self.add_combo.addItem(f"{p.name} (VST3, {p.layout or 'any'})", ("vst3", p.path))
        for p in self.plugins.failed:
            self.add_combo.addItem(f"{skipped_name(p)} (VST3, skipped: {skip_reason(p)})", None)
            item = self.add_combo.model().item(self.add_combo.count() - 1)
            item.setEnabled(False)
            item.setToolTip(p.error)
        if self.plugins.scanning:
            self.add_combo.addItem("Scanning VST3 plugins…", None)
        i = self.add_combo.findData(current)
        if i >= 0:
            self.add_combo.setCurrentIndex(i)

    def _fill_presets(self) -> None:
        """The shipped presets, then the user's own (marked as such); the loaded one selected."""
        from app.audio_types import shipped_presets
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItem("—", None)
        for p in shipped_presets():
            self.preset_combo.addItem(p.stem.replace("_", " "), str(p))
        if self.preset_dir is not None and self.preset_dir.is_dir():
            for p in sorted(self.preset_dir.glob("*.json")):
                self.preset_combo.addItem(f"{p.stem.replace('_', ' ')}  (yours)", str(p))
        self._show_preset()
        self.preset_combo.blockSignals(False)

    def _show_preset(self) -> None:
        """Select the loaded preset in the list; a restored chain whose file is gone shows its
        name as an entry of its own."""
        i = self.preset_combo.findData(self._preset_path) if self._preset_path else -1
        if i < 0 and self.preset_name:
            self.preset_combo.addItem(self.preset_name, None)
            i = self.preset_combo.count() - 1
        self.preset_combo.setCurrentIndex(max(0, i))

    def refresh(self) -> None:
        """Rebuild the member list from the chain, keeping the selected member."""
        selected = self.selected_id()
        self.members.blockSignals(True)
        self.members.clear()
        for info in self.chain.members():
            label = info.effect if info.kind == "builtin" else f"{info.effect}  ·  VST3 {info.layout}"
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, info.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if info.bypassed else Qt.CheckState.Checked)
            item.setToolTip("Tick to enable, untick to bypass")
            self.members.addItem(item)
        self.members.blockSignals(False)
        ids = [m.id for m in self.chain.members()]
        row = ids.index(selected) if selected in ids else (0 if ids else -1)
        self.members.setCurrentRow(row)
        self._show_parameters(row)
        self.changed.emit()

    def selected_id(self) -> str | None:
        item = self.members.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    # -- editing ---------------------------------------------------------------------------

    def _add_selected(self) -> None:
        data = self.add_combo.currentData()
        if data is None:
            return
        kind, what = data
        if kind == "builtin":
            self.add_effect(what)
        else:
            self.add_vst3(what)

    def add_effect(self, effect: str) -> str | None:
        try:
            member_id = self.chain.add_effect(effect)
        except Exception as exc:  # noqa: BLE001
            self.error.emit(str(exc))
            return None
        self.refresh()
        self._select(member_id)
        return member_id

    def add_vst3(self, path: str) -> None:
        """Probe the plugin out of process on the worker (the slow, risky part), then load
        it here on the GUI thread (see ``plugin_worker``)."""
        self.add_button.setEnabled(False)
        self.add_button.setText("Loading…")
        scanner = self.chain.scanner

        def probe():
            if scanner is not None:
                scanner.probe(path)

        self._worker.call(probe, lambda _, error: self._load_vst(path, error))

    def _load_vst(self, path: str, error: str) -> None:
        if error:
            self._after_vst(None, error)
            return
        try:
            member_id = self.chain.add_vst3(path)
        except Exception as exc:  # noqa: BLE001 - one line for the user
            self._after_vst(None, str(exc))
            return
        self._after_vst(member_id, "")

    def _after_vst(self, member_id, error: str) -> None:
        self.add_button.setEnabled(True)
        self.add_button.setText("Add")
        if error:
            self.error.emit(error)
            return
        self.refresh()
        self._select(member_id)

    def _select(self, member_id: str) -> None:
        for i in range(self.members.count()):
            if self.members.item(i).data(Qt.ItemDataRole.UserRole) == member_id:
                self.members.setCurrentRow(i)

    def remove_selected(self) -> None:
        member_id = self.selected_id()
        if member_id is not None:
            self.chain.remove(member_id)
            self.refresh()

    def move_selected(self, delta: int) -> None:
        member_id = self.selected_id()
        if member_id is None:
            return
        row = self.members.currentRow() + delta
        if 0 <= row < self.members.count():
            self.chain.move(member_id, row)
            self.refresh()

    def _bypass_toggled(self, item: QListWidgetItem) -> None:
        member_id = item.data(Qt.ItemDataRole.UserRole)
        self.chain.set_bypass(member_id, item.checkState() != Qt.CheckState.Checked)
        self.changed.emit()

    # -- parameters -------------------------------------------------------------------------

    def _show_parameters(self, row: int) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self._sliders = {}
        member_id = self.selected_id()
        member = self.chain.member(member_id) if member_id else None
        self.remove_button.setEnabled(member is not None)
        self.up_button.setEnabled(member is not None and row > 0)
        self.down_button.setEnabled(member is not None and row < self.members.count() - 1)
        self.editor_button.setEnabled(member is not None and member.kind == "vst3"
                                      and editor_supported()
                                      and hasattr(member.plugin, "show_editor"))
        if member is None:
            return
        for p in self.chain.parameters(member_id):
            value_label = QLabel(format_value(p, p.value))
            value_label.setMinimumWidth(76)
            value_label.setObjectName("dim")
            if p.is_boolean:
                box = QCheckBox()
                box.setChecked(p.value >= 0.5)
                box.toggled.connect(lambda on, name=p.name, pi=p, lab=value_label:
                                    self._set_param(name, 1.0 if on else 0.0, pi, lab))
                self.params_form.addRow(p.label or p.name, box)
                continue
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, SLIDER_STEPS)
            slider.setValue(slider_position(p, p.value))
            slider.valueChanged.connect(lambda pos, pi=p, lab=value_label:
                                        self._set_param(pi.name, slider_value(pi, pos), pi, lab))
            row_widget = QWidget()
            row_lay = QHBoxLayout(row_widget)
            row_lay.setContentsMargins(0, 0, 0, 0)
            row_lay.addWidget(slider, 1)
            row_lay.addWidget(value_label)
            self.params_form.addRow(pretty_name(p.name), row_widget)
            self._sliders[p.name] = (slider, value_label, p)

    def _set_param(self, name: str, value: float, p: ParameterInfo, label: QLabel) -> None:
        member_id = self.selected_id()
        if member_id is None:
            return
        value = min(p.max, max(p.min, value))
        try:
            self.chain.set_parameter(member_id, name, value)
        except Exception as exc:  # noqa: BLE001
            self.error.emit(str(exc))
            return
        label.setText(format_value(p, value))
        self.changed.emit()

    def set_parameter(self, name: str, value: float) -> None:
        """Move a parameter's slider to ``value`` (as a user would)."""
        slider, _, p = self._sliders[name]
        slider.setValue(slider_position(p, value))

    # -- plugin window -----------------------------------------------------------------------

    def open_editor(self) -> None:
        member_id = self.selected_id()
        if member_id is None or member_id in self._editor_threads:
            return
        plugin = self.chain.member(member_id).plugin
        close = threading.Event()
        self._editor_threads[member_id] = close

        def show():
            try:
                plugin.show_editor(close)
            except Exception as exc:  # noqa: BLE001
                self.error.emit(f"plugin window: {exc}")
            finally:
                self._editor_threads.pop(member_id, None)

        threading.Thread(target=show, name="plugin-editor", daemon=True).start()

    def close_editors(self) -> None:
        for event in list(self._editor_threads.values()):
            event.set()

    # -- presets -------------------------------------------------------------------------------

    def save_preset(self, path: str | Path) -> Path:
        from app.audio_types import save_chain_preset
        saved = save_chain_preset(self.chain, path)
        self.preset_name, self._preset_path = saved.stem.replace("_", " "), str(saved)
        self._fill_presets()
        return saved

    def suggested_preset_path(self) -> Path:
        """Where "Save…" proposes to save: the user's presets folder (created), named after
        the loaded preset or the chain."""
        folder = self.preset_dir or Path.home()
        folder.mkdir(parents=True, exist_ok=True)
        stem = (self.preset_name or f"my {self.chain.name} chain").replace(" ", "_")
        return folder / f"{stem}.json"

    def load_preset(self, path: str | Path) -> None:
        """Read a preset and probe its VST3 members on the worker, then build the chain on
        the GUI thread; refreshes when done."""
        from app.audio_types import read_preset
        self._preset_path = str(path)
        self._worker.call(lambda: self._probed(read_preset(path, self._roots())), self._build)

    def restore(self, doc: dict) -> None:
        """Rebuild the chain from a preset document (the chain saved with the settings),
        like a preset file."""
        from app.audio_types import parse_preset
        self._preset_path = None
        self._worker.call(lambda: self._probed(parse_preset(doc, self._roots())), self._build)

    def _roots(self) -> list:
        scanner = self.chain.scanner
        return scanner.roots() if scanner is not None else []

    def _probed(self, preset):
        """Worker: probe every VST3 member out of process (cached), so loading them on the
        GUI thread is quick."""
        scanner = self.chain.scanner
        for spec in preset.members:
            if spec.type == "vst3" and scanner is not None:
                scanner.probe(spec.path)
        return preset

    def _build(self, preset, error: str) -> None:
        """GUI thread: load the preset's members (the plugin host wants its loads on the
        main thread) and swap them in whole."""
        from app.audio_types import build_members
        if not error:
            try:
                members, bypassed = build_members(preset, self.chain)
                self.chain.replace(members, bypassed)
            except Exception as exc:  # noqa: BLE001 - one line for the user
                error = str(exc)
        self._after_preset(None if error else preset, error)

    def wait(self, msecs: int = 30000) -> bool:
        return self._worker.wait(msecs)

    def _after_preset(self, preset, error: str) -> None:
        if error:
            self._preset_path = None
            self.error.emit(f"preset not loaded: {error}")
        elif preset is not None:
            name = preset.name if preset.name and preset.name != self.chain.name else ""
            if self._preset_path:
                self.preset_name = name or Path(self._preset_path).stem.replace("_", " ")
            else:
                self.preset_name = name or None
        self._fill_presets()
        self.refresh()

    def _preset_chosen(self, index: int) -> None:
        path = self.preset_combo.itemData(index)
        if path:
            self.load_preset(path)

    def _save_dialog(self) -> None:
        start = str(self.suggested_preset_path())
        path, _ = QFileDialog.getSaveFileName(self, "Save chain preset", start, "Chain presets (*.json)")
        if path:
            if not path.endswith(".json"):
                path += ".json"
            try:
                self.save_preset(path)
            except Exception as exc:  # noqa: BLE001
                self.error.emit(f"preset not saved: {exc}")

    def _load_dialog(self) -> None:
        start = str(self.preset_dir or Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Load chain preset", start, "Chain presets (*.json)")
        if path:
            self.load_preset(path)


def pretty_name(name: str) -> str:
    words = name.replace("_", " ").split()
    units = {"db", "hz", "ms", "s"}
    words = [w for w in words if w.lower() not in units] or words
    text = " ".join(words)
    return text[:1].upper() + text[1:]
