"""A recording fake of the window's host: the real library (catalog, index, encoder)
searched on a thread of its own through ``app.library_tasks``, real effect chains and MIDI
maps, but no audio device. Every request is appended to ``calls`` so tests can check them;
``inject_midi`` stands in for a MIDI port. The pads follow every update it publishes, as
the session's do in the window. For tests only: ``calls`` grows with every request.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Callable, Iterator

import numpy as np
from PyQt6.QtCore import QObject

from app.audio_types import Chain, MidiMap
from app.library_tasks import LibraryThread
from app.match_profiles import MODES, profile_names
from ui.host import SILENCE_DB, AudioSettings, Host, HostStatus, LevelReading


class _FakeVoice:
    def __init__(self, duration_s: float):
        self.started = time.monotonic()
        self.duration_s = duration_s


class NullHost(Host):
    """No audio device; real library, chains and MIDI maps. Records calls in ``calls``."""

    def __init__(self, library_dir: str | os.PathLike | None = None, *, k: int = 12,
                 sample_rate: int = 48000, parent: QObject | None = None):
        super().__init__(parent)
        from app.paths import library_dir as resolve
        self.library_dir = resolve(library_dir)
        self.k = k
        self._sample_rate = sample_rate
        self.calls: list[tuple[str, tuple]] = []
        self.mode = MODES[0]
        self.profile = profile_names()[0]
        self.volume = 1.0
        self._voices: dict[int, _FakeVoice] = {}
        self._next_voice = 1
        self._midi_map = MidiMap.default_16_pads()
        self._midi_port = ""
        self.midi_learning = False
        self.monitoring = False
        self._slots: list = []
        self._handlers: dict[str, Callable[[], None]] = {}
        self.input_chain = Chain("input", sample_rate=sample_rate)
        self.preview_chain = Chain("preview", sample_rate=sample_rate)
        self.settings = AudioSettings()
        self._library = LibraryThread(self.library_dir, self.error.emit)

    def _record(self, name: str, *args) -> None:
        self.calls.append((name, args))

    def close(self) -> None:
        self.stop_watching()
        self._library.close()

    def status(self) -> HostStatus:
        return HostStatus("offline", "no audio device (library only)",
                          library_files=self._library.files,
                          index_state=self._library.index_state,
                          index_vectors=self._library.index_vectors)

    def levels(self) -> LevelReading:
        return LevelReading((SILENCE_DB, SILENCE_DB), (SILENCE_DB, SILENCE_DB))

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def input_tail(self, frames: int) -> tuple[int, np.ndarray]:
        return 0, np.zeros(frames, np.float32)

    def playhead(self, voice_id: int) -> float | None:
        voice = self._voices.get(voice_id)
        if voice is None:
            return None
        played = time.monotonic() - voice.started
        if played > voice.duration_s:
            del self._voices[voice_id]
            return None
        return played

    def capture(self) -> None:
        self._record("capture")

    def reset_xruns(self) -> None:
        self._record("reset_xruns")

    def request_search(self, path: str) -> None:
        self._record("request_search", path)
        self._library.search_file(path, self.k, self._publish, self.search_filter,
                                  failed=lambda line: self.search_failed.emit(path, line))

    def edit_tag(self, path: str, tag: str, removed: bool) -> None:
        self._record("edit_tag", path, tag, removed)
        self._library.edit_tag(path, tag, removed, self.tags_changed.emit)

    def _publish(self, update) -> None:
        self._slots = list(update.suggestions)[:16]     # the pads follow every update
        self.suggestions.emit(update)

    def slots(self) -> list:
        return list(self._slots)

    def set_mode(self, mode: str) -> None:
        self._record("set_mode", mode)
        self.mode = mode

    def set_list_length(self, length: int) -> None:
        self._record("set_list_length", length)
        self.k = length

    def set_profile(self, profile: str) -> None:
        self._record("set_profile", profile)
        self.profile = profile

    def audition(self, suggestion, *, matched: bool = True) -> int | None:
        self._record("audition", suggestion.path)
        if matched and self.match_target is not None:
            self._record("audition_matched", suggestion.path, self.match_target)
        voice = self._next_voice
        self._next_voice += 1
        self._voices = {voice: _FakeVoice(float(suggestion.duration_s or 1.0))}  # one at a time
        return voice

    def set_match(self, target) -> None:
        self._record("set_match", target)
        self.match_target = target

    def stop_all(self) -> None:
        self._record("stop_all")
        self._voices.clear()

    def set_volume(self, volume: float) -> None:
        self._record("set_volume", volume)
        self.volume = volume

    def collect(self, name: str, file_ids: list[int]) -> None:
        self._record("collect", name, tuple(file_ids))
        self._library.collect(name, file_ids, lambda collection, added: self.info.emit(
            f"{added} samples added to the collection {collection!r}"))

    def reload_library(self) -> None:
        self._record("reload_library")
        self._library.reload(then=self.library_changed.emit)
        self.folders_changed()

    def browse_tasks(self):
        from app.browse_tasks import BrowseTasks
        return BrowseTasks(self._library)

    def midi_map(self) -> MidiMap:
        return self._midi_map

    def set_midi_map(self, midi_map: MidiMap) -> None:
        self._record("set_midi_map", json.dumps(midi_map.to_json()))
        self._midi_map = midi_map
        self.midi_map_changed.emit()

    def set_monitoring(self, on: bool) -> None:
        self._record("set_monitoring", on)
        self.monitoring = on

    def set_midi_learning(self, on: bool) -> None:
        self._record("set_midi_learning", on)
        self.midi_learning = on

    def set_midi_port(self, port: str) -> None:
        self._record("set_midi_port", port)
        self._midi_port = port

    def on_midi_action(self, action: str, handler: Callable[[], None]) -> None:
        self._handlers[action] = handler

    def inject_midi(self, message: list[int]) -> str | None:
        """Feed one MIDI message as if it came from the port (there is no MIDI hardware here).

        Audition slots play the slot's suggestion; other actions run the registered handler.
        """
        learning = self.midi_learning
        self.midi_received.emit(list(message))
        if learning:
            return None
        action = self._midi_map.action_for(message)
        if action is None:
            return None
        if action.startswith("audition_slot_"):
            slot = int(action.rsplit("_", 1)[1])
            if slot <= len(self._slots):
                self.audition(self._slots[slot - 1])
        elif action == "stop_all":
            self.stop_all()
        elif action == "capture_lookup":
            self.capture()
        else:
            handler = self._handlers.get(action)
            if handler is not None:
                handler()
        return action

    def apply_audio_settings(self, settings: AudioSettings) -> None:
        self._record("apply_audio_settings", settings.hostapi, settings.device,
                     settings.sample_rate, settings.block_size)
        self.settings = settings


@contextlib.contextmanager
def null_window(qtbot, library_dir, config_dir) -> Iterator:
    """The real ``MainWindow`` over a ``NullHost`` of ``library_dir`` with its settings in
    ``config_dir`` (one scan worker, no VST3 scan), registered with ``qtbot``; closed, and
    its host with it, on the way out. Not shown: the caller shows it."""
    from ui.main_window import MainWindow
    from ui.settings import SettingsStore
    host = NullHost(library_dir)
    win = MainWindow(host, SettingsStore(config_dir), scan_workers=1, scan_plugins=False)
    qtbot.addWidget(win)
    try:
        yield win
    finally:
        win.close()
        host.close()
