"""MIDI panel: input port, MIDI learn, the map as a table, presets.

MIDI learn: switch Learn on, press a pad or move a knob (the panel shows what
it received), then click the action it should trigger. Clicking the action
first and then pressing the control works as well. Every change builds a new
``MidiMap`` and hands it to the host, which sends it to the engine whole.
GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView,
                             QLabel, QPushButton, QTableView, QVBoxLayout, QWidget)

from app.audio_types import MIDI_PRESET_DIR as PRESET_DIR, MidiMap, MidiMapError

from .host import Host, describe_binding, message_binding
from .models import MidiMapModel, action_label


class MidiPanel(QWidget):
    """See the module docstring."""

    refresh_requested = pyqtSignal()   # the window re-lists devices (off the GUI thread)

    def __init__(self, host: Host, user_preset_dir: Path | None = None, parent=None):
        super().__init__(parent)
        self.host = host
        self.user_preset_dir = user_preset_dir
        self.pending: tuple[str, int] | None = None   # control received, waiting for an action
        self.armed: str | None = None                 # action clicked, waiting for a control
        self.model = MidiMapModel(host.midi_map(), self)

        self.port = QComboBox()
        self.port.setToolTip("MIDI input port")
        refresh = QPushButton("Refresh")
        self.learn_button = QPushButton("Learn")
        self.learn_button.setCheckable(True)
        self.clear_button = QPushButton("Clear binding")
        self.prompt = QLabel("")
        self.prompt.setObjectName("dim")
        self.prompt.setWordWrap(True)
        self.last = QLabel("Last MIDI: —")
        self.last.setObjectName("dim")
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.presets = QComboBox()
        load = QPushButton("Load…")
        save = QPushButton("Save…")

        port_row = QHBoxLayout()
        port_row.addWidget(QLabel("Input"))
        port_row.addWidget(self.port, 1)
        port_row.addWidget(refresh)
        learn_row = QHBoxLayout()
        learn_row.addWidget(self.learn_button)
        learn_row.addWidget(self.clear_button)
        learn_row.addStretch(1)
        learn_row.addWidget(self.last)
        preset_row = QHBoxLayout()
        preset_row.addWidget(QLabel("Map"))
        preset_row.addWidget(self.presets, 1)
        preset_row.addWidget(load)
        preset_row.addWidget(save)
        title = QLabel("MIDI")
        title.setObjectName("sectionTitle")
        lay = QVBoxLayout(self)
        lay.addWidget(title)
        lay.addLayout(port_row)
        lay.addLayout(preset_row)
        lay.addLayout(learn_row)
        lay.addWidget(self.prompt)
        lay.addWidget(self.table, 1)

        refresh.clicked.connect(self.refresh_requested)
        self.port.activated.connect(lambda i: self.host.set_midi_port(self.port.itemData(i) or ""))
        self.learn_button.toggled.connect(self.set_learning)
        self.clear_button.clicked.connect(self.clear_selected)
        self.table.clicked.connect(lambda idx: self.action_clicked(self.model.action(idx.row())))
        self.presets.activated.connect(self._preset_chosen)
        load.clicked.connect(self._load_dialog)
        save.clicked.connect(self._save_dialog)
        host.midi_received.connect(self.on_midi)
        host.midi_map_changed.connect(self._map_changed)
        self.set_ports({})
        self._fill_presets()

    # -- ports and presets -------------------------------------------------------------------

    def _map_changed(self) -> None:
        self.model.set_map(self.host.midi_map())
        self.presets.setItemText(0, self.host.midi_map().name)   # the map in use, by name

    def set_ports(self, ports: dict[str, list[str]]) -> None:
        """MIDI input ports per API, from a device listing."""
        current = self.port.currentData()
        self.port.clear()
        self.port.addItem("Virtual port “Sample Scout In”", "")
        names = sorted({p for names in ports.values() for p in names if "Sample Scout" not in p})
        for name in names:
            self.port.addItem(name, name)
        i = self.port.findData(current)
        if i >= 0:
            self.port.setCurrentIndex(i)

    def _fill_presets(self) -> None:
        self.presets.clear()
        paths = sorted(Path(PRESET_DIR).glob("*.json"))
        if self.user_preset_dir is not None and self.user_preset_dir.is_dir():
            paths += sorted(self.user_preset_dir.glob("*.json"))
        self.presets.addItem(self.host.midi_map().name, None)
        for p in paths:
            self.presets.addItem(p.stem.replace("_", " "), str(p))

    def load_preset(self, path: str | Path) -> None:
        try:
            self._apply(MidiMap.load(path))
        except MidiMapError as exc:
            self.host.error.emit(str(exc))

    def save_preset(self, path: str | Path) -> None:
        self.model.midi_map().save(path)
        self._fill_presets()

    def _preset_chosen(self, index: int) -> None:
        path = self.presets.itemData(index)
        if path:
            self.load_preset(path)

    def _load_dialog(self) -> None:
        start = str(self.user_preset_dir or PRESET_DIR)
        path, _ = QFileDialog.getOpenFileName(self, "Load MIDI map", start, "MIDI maps (*.json)")
        if path:
            self.load_preset(path)

    def suggested_preset_path(self) -> Path:
        """Where "Save…" proposes to save: the user's presets folder (created), named after
        the map."""
        folder = self.user_preset_dir or Path.home()
        folder.mkdir(parents=True, exist_ok=True)
        name = self.model.midi_map().name or "my map"
        return folder / f"{name.replace(' ', '_')}.json"

    def _save_dialog(self) -> None:
        start = str(self.suggested_preset_path())
        path, _ = QFileDialog.getSaveFileName(self, "Save MIDI map", start, "MIDI maps (*.json)")
        if path:
            self.save_preset(path if path.endswith(".json") else path + ".json")

    # -- learn ------------------------------------------------------------------------------------

    def set_learning(self, on: bool) -> None:
        if self.learn_button.isChecked() != on:
            self.learn_button.setChecked(on)
            return
        self.pending = None
        self.armed = None
        self.host.set_midi_learning(on)
        self.prompt.setText("Press a pad or move a control, then click the action it should trigger."
                            if on else "")

    @property
    def learning(self) -> bool:
        return self.learn_button.isChecked()

    def on_midi(self, message) -> None:
        binding = message_binding(message)
        if binding is None:
            return
        self.last.setText(f"Last MIDI: {describe_binding(*binding)}")
        if not self.learning:
            return
        if self.armed is not None:
            self._bind(binding, self.armed)
            return
        self.pending = binding
        self.prompt.setText(f"{describe_binding(*binding)} received — now click an action.")

    def action_clicked(self, action: str) -> None:
        if not self.learning:
            return
        if self.pending is not None:
            self._bind(self.pending, action)
        else:
            self.armed = action
            self.prompt.setText(f"Now press the control for “{action_label(action)}”.")

    def _bind(self, binding: tuple[str, int], action: str) -> None:
        new = MidiMap.from_json(self.model.midi_map().to_json())
        new.name = "custom"
        new.bind(binding[0], binding[1], action)
        self._apply(new)
        self.pending = None
        self.armed = None
        self.prompt.setText(f"{describe_binding(*binding)} → {action_label(action)}. "
                            "Press another control, or switch Learn off.")

    def clear_selected(self) -> None:
        idx = self.table.currentIndex()
        if not idx.isValid():
            return
        action = self.model.action(idx.row())
        new = MidiMap.from_json(self.model.midi_map().to_json())
        for kind, number in self.model.bindings_for(action):
            new.unbind(kind, number)
        self._apply(new)

    def _apply(self, midi_map: MidiMap) -> None:
        self.host.set_midi_map(midi_map)
        self.model.set_map(midi_map)
