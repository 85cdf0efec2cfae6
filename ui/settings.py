"""Persisted settings (a JSON file in the user config dir) and the Settings panel.

``SettingsStore`` reads and writes ``settings.json`` under
``platformdirs.user_config_dir("samplescout")`` (or a directory given to it,
as tests do). Unknown or malformed values fall back to defaults with no
error: a settings file must never stop the app from opening. GUI thread,
except the device listing, which runs on a pool thread.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, fields
from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout,
                             QWidget)

from .background import SerialWorker
from .catalogue_settings import CatalogueSettings
from .host import AudioSettings, Host

SAMPLE_RATES = (44100, 48000, 88200, 96000)
BLOCK_SIZES = (64, 128, 256, 512, 1024)
SETTINGS_FILE = "settings.json"

LIST_LENGTHS = (8, 12, 16, 24, 32, 48, 64)
UI_DEFAULTS = {"auto_preview": True, "volume": 0.8, "mode": "one-shot", "profile": "",
               "mode_override": False, "list_length": 16,
               "midi_port": "", "drag_rendered": False, "geometry": "", "splitter": "",
               # the session tempo and key matched previews follow (ui.tempo_key_bar)
               "session_bpm": 120.0, "session_key": "", "match_preview": False,
               # the filter bar's fields (ui.filter_bar.FilterBar.state)
               "filter": {}}
SETTINGS_MAX_BYTES = 10 * 1024 * 1024    # two chains of VST3 state (4 MiB each at most) and a map


def config_dir() -> Path:
    from app.paths import config_dir as user_config_dir
    return user_config_dir()


class SettingsStore:
    """Audio settings, window preferences, the MIDI map and both effect chains in one JSON
    file. ``midi_map`` and ``chains`` hold documents (a MIDI map's and chain presets' JSON),
    checked where they are used."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.path = Path(directory or config_dir()) / SETTINGS_FILE
        self.audio = AudioSettings()
        self.ui = dict(UI_DEFAULTS)
        self.midi_map: dict | None = None
        self.chains: dict[str, dict] = {}
        self.load()

    @property
    def presets_dir(self) -> Path:
        """The user's own presets, beside the settings: ``chains/`` and ``midi/``."""
        return self.path.parent / "presets"

    def load(self) -> None:
        from app.audio_types import JsonFileError, read_json_file
        try:
            data = read_json_file(self.path, max_bytes=SETTINGS_MAX_BYTES)
        except JsonFileError:
            return
        if not isinstance(data, dict):
            return
        if isinstance(data.get("midi_map"), dict):
            self.midi_map = data["midi_map"]
        chains = data.get("chains")
        if isinstance(chains, dict):
            self.chains = {k: v for k, v in chains.items()
                           if k in ("input", "preview") and isinstance(v, dict)}
        audio = data.get("audio", {})
        if isinstance(audio, dict):
            defaults = AudioSettings()
            values = {}
            for f in fields(AudioSettings):
                v = audio.get(f.name, getattr(defaults, f.name))
                if type(v) is type(getattr(defaults, f.name)):
                    values[f.name] = v
            self.audio = AudioSettings(**values)
            if self.audio.block_size not in BLOCK_SIZES:
                self.audio.block_size = defaults.block_size
        ui = data.get("ui", {})
        if isinstance(ui, dict):
            for key, default in UI_DEFAULTS.items():
                if key in ui and type(ui[key]) is type(default) or (
                        key in ("volume", "session_bpm") and isinstance(ui.get(key), (int, float))
                        and not isinstance(ui.get(key), bool)):
                    self.ui[key] = ui[key]

        if self.ui["list_length"] not in LIST_LENGTHS:
            self.ui["list_length"] = UI_DEFAULTS["list_length"]

    def save(self) -> None:
        """Write the file atomically: a crash leaves the old settings or the new, whole."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"audio": asdict(self.audio), "ui": self.ui, "midi_map": self.midi_map,
               "chains": self.chains}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(doc, indent=2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


_PLAIN_WORDS = (
    (re.compile(r"MIDI alsa: unavailable \(.*ALSA sequencer.*\)", re.I),
     "ALSA MIDI is not available on this machine (it has no sound card sequencer); "
     "MIDI works through JACK when JACK runs."),
    (re.compile(r"MIDI (\w+): unavailable \((.*)\)", re.I),
     r"\1 MIDI is not available here."),
    (re.compile(r"no audio device found.*", re.I),
     "No audio device: no audio server or sound card is available. Start JACK "
     "(for example `jackd -d dummy -r 48000 -p 64`) or connect an interface, then Refresh."),
    (re.compile(r".*(Device unavailable|Invalid sample rate|Unanticipated host error).*", re.I),
     "The audio device refused these settings (it may be busy or not support them): "
     "try another sample rate or block size."),
)


def plain_words(line: str) -> str:
    """A device or MIDI error as a sentence for the Settings panel (the raw line stays in
    the tooltip)."""
    for pattern, text in _PLAIN_WORDS:
        if pattern.fullmatch(line.strip()):
            return pattern.sub(text, line.strip())
    return line


class SettingsPanel(QWidget):
    """Audio host API, device, sample rate, block size and preview output; Apply restarts audio.
    Below: the catalogue (``ui.catalogue_settings``)."""

    devices_listed = pyqtSignal(object, str)

    def __init__(self, host: Host, store: SettingsStore, parent=None):
        super().__init__(parent)
        self.host, self.store = host, store
        self.report = None
        self.hostapi = QComboBox()
        self.device = QComboBox()
        self.preview_output = QComboBox()
        self.sample_rate = QComboBox()
        self.block_size = QComboBox()
        for sr in SAMPLE_RATES:
            self.sample_rate.addItem(f"{sr} Hz", sr)
        for bs in BLOCK_SIZES:
            self.block_size.addItem(f"{bs} frames", bs)
        self.running_block_size: int | None = None
        self.latency = QLabel()
        self.latency.setObjectName("dim")
        self.latency.setWordWrap(True)
        self.note = QLabel()
        self.note.setObjectName("dim")
        self.note.setWordWrap(True)
        refresh = QPushButton("Refresh devices")
        apply = QPushButton("Apply")
        apply.setDefault(True)
        form = QFormLayout()
        form.addRow("Audio system", self.hostapi)
        form.addRow("Input device", self.device)
        form.addRow("Preview output", self.preview_output)
        form.addRow("Sample rate", self.sample_rate)
        form.addRow("Block size", self.block_size)
        form.addRow("", self.latency)
        buttons = QHBoxLayout()
        buttons.addWidget(refresh)
        buttons.addStretch(1)
        buttons.addWidget(apply)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.note)
        self.catalogue = CatalogueSettings(host)   # local or a shared server, on restart
        lay.addWidget(self.catalogue)
        lay.addStretch(1)
        self.hostapi.currentIndexChanged.connect(self._fill_devices)
        self.block_size.currentIndexChanged.connect(self._show_latency)
        self.sample_rate.currentIndexChanged.connect(self._show_latency)
        refresh.clicked.connect(self.refresh)
        apply.clicked.connect(self.apply)
        self._select(self.sample_rate, store.audio.sample_rate)
        self._select(self.block_size, store.audio.block_size)
        self._show_latency()
        self._worker = SerialWorker("device-listing")
        self.refresh()

    @staticmethod
    def _select(combo: QComboBox, value) -> None:
        i = combo.findData(value)
        if i >= 0:
            combo.setCurrentIndex(i)

    def refresh(self) -> None:
        self.note.setText("Looking for audio devices…")
        from .device_probe import probe_devices
        self._worker.call(probe_devices, self._devices_done)

    def _devices_done(self, report, error: str) -> None:
        self._listed(report, error)
        self.devices_listed.emit(report, error)

    def _listed(self, report, error: str) -> None:
        self.report = report
        self.hostapi.blockSignals(True)
        self.hostapi.clear()
        apis = list(report.by_hostapi()) if report is not None else []
        for api in apis:
            self.hostapi.addItem(api, api)
        if not apis:
            self.hostapi.addItem("(none)", "")
        self._select(self.hostapi, self.store.audio.hostapi)
        self.hostapi.blockSignals(False)
        self._fill_devices()
        lines = list(report.errors) if report is not None else [error]
        self.note.setText("\n".join(plain_words(line) for line in lines))
        self.note.setToolTip("\n".join(lines))

    def _fill_devices(self) -> None:
        api = self.hostapi.currentData()
        devices = self.report.by_hostapi().get(api, []) if self.report is not None else []
        for combo, want in ((self.device, self.store.audio.device),
                            (self.preview_output, self.store.audio.preview_output)):
            combo.clear()
            combo.addItem("Default", "")
            for d in devices:
                if combo is self.device and d.max_input_channels < 1:
                    continue
                if combo is self.preview_output and d.max_output_channels < 1:
                    continue
                combo.addItem(d.name, d.name)
            self._select(combo, want)

    def _show_latency(self) -> None:
        sr = self.sample_rate.currentData() or 48000
        bs = self.block_size.currentData() or 256
        text = f"{bs / sr * 1000:.1f} ms per block"
        if self.running_block_size and self.running_block_size != bs:
            text = (f"the audio server runs {self.running_block_size} frames per block "
                    f"({self.running_block_size / sr * 1000:.1f} ms; it decides, not this "
                    f"setting: {bs} asked)")
        self.latency.setText(text)

    def show_running(self, block_size: int | None) -> None:
        """The block size the running stream really uses (from the host's status)."""
        if block_size != self.running_block_size:
            self.running_block_size = block_size
            self._show_latency()

    def current(self) -> AudioSettings:
        a = self.store.audio
        return AudioSettings(hostapi=self.hostapi.currentData() or "",
                             device=self.device.currentData() or "",
                             sample_rate=int(self.sample_rate.currentData()),
                             block_size=int(self.block_size.currentData()),
                             preview_output=self.preview_output.currentData() or "",
                             input_channels=a.input_channels, extra=dict(a.extra))

    def apply(self) -> None:
        self.store.audio = self.current()
        self.store.save()
        self.host.apply_audio_settings(self.store.audio)
