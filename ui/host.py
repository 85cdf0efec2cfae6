"""What the window needs from the rest of the app, as one small interface.

The window only talks to a ``Host``: suggestions arrive through its Qt
signals, levels and engine state are polled on a timer, and every request
(audition, capture, search by example, MIDI learn) is a method call that
returns at once. Two hosts exist:

* ``NullHost`` (here): the real library (catalog, index, encoder) searched on
  a worker thread of its own, real effect chains and MIDI maps, but no audio
  device. It records the calls it gets, so tests can check them.
* ``SessionHost`` (``ui.session_host``): the same interface over
  ``app.session.Session`` with the live engine and matcher.

Threads: every public method is for the GUI thread. Signals may be emitted
from worker threads; Qt queues them to the receivers' thread.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from engine.chain import Chain
from engine.midi import ACTIONS, MidiMap, parse_message

from app.match_profiles import MODES, profile_names
from app.suggestions import Suggestion, SuggestionUpdate

SILENCE_DB = -120.0


@dataclass(frozen=True)
class HostStatus:
    """Engine and library state for the status bar."""

    state: str                 # "running", "waiting", "stopped", "offline"
    message: str
    device: str = ""
    xruns: int = 0
    latency_ms: float | None = None            # input + output latency of the running stream
    midi: str = ""
    library_files: int = 0
    index_state: str = ""
    input_latency_ms: float | None = None
    output_latency_ms: float | None = None
    pad_page: tuple[int, int] = (0, 0)   # (page the 16 pads show, pages in the list)


@dataclass(frozen=True)
class LevelReading:
    peak_db: tuple[float, ...] = ()
    rms_db: tuple[float, ...] = ()


@dataclass
class AudioSettings:
    """Audio device choice, persisted by ``ui.settings``."""

    hostapi: str = ""
    device: str = ""
    sample_rate: int = 48000
    block_size: int = 256
    preview_output: str = ""   # output device for previews; "" = same as the input device
    input_channels: int = 2
    extra: dict = field(default_factory=dict)


def category_of(path: str) -> str:
    """What a producer reads as the sample's category: its folder name."""
    return Path(path).parent.name


def suggestions_from_results(results: Iterable[Any]) -> tuple:
    """Suggestions from ``app.library.SearchResult`` rows."""
    out = []
    for r in results:
        out.append(Suggestion(rank=r.rank, file_id=r.file.id, path=r.file.path, name=r.file.name,
                              score=float(r.score), kind=r.file.kind, duration_s=r.file.duration,
                              offset_s=float(r.offset_s), exists=bool(r.exists)))
    return tuple(out)


class Host(QObject):
    """The interface the window uses. Subclasses implement the methods below."""

    suggestions = pyqtSignal(object)        # SuggestionUpdate
    error = pyqtSignal(str)                 # one line for the user
    info = pyqtSignal(str)                  # one line for the status bar
    midi_received = pyqtSignal(object)      # list[int], every incoming MIDI message
    midi_map_changed = pyqtSignal()
    library_changed = pyqtSignal()          # the index was reloaded after a scan or removal

    library_dir: Path
    input_chain: Chain
    preview_chain: Chain

    # lifecycle
    def start(self) -> None: ...
    def close(self) -> None: ...

    # polled by the window's timers
    def status(self) -> HostStatus: raise NotImplementedError
    def levels(self) -> LevelReading: raise NotImplementedError
    @property
    def sample_rate(self) -> int: raise NotImplementedError
    def input_tail(self, frames: int) -> tuple[int, np.ndarray]:
        """(frame clock at the end, the last ``frames`` mono input samples)."""
        raise NotImplementedError
    def recent_onsets(self) -> list[int]: return []
    def playhead(self, voice_id: int) -> float | None:
        """Seconds played of a preview voice, None once it stopped."""
        raise NotImplementedError

    # requests
    def capture(self) -> None: raise NotImplementedError
    def request_search(self, path: str) -> None: raise NotImplementedError
    def set_mode(self, mode: str) -> None: raise NotImplementedError
    def set_profile(self, profile: str) -> None: raise NotImplementedError
    def audition(self, suggestion) -> int | None: raise NotImplementedError
    def stop_all(self) -> None: raise NotImplementedError
    def set_volume(self, volume: float) -> None: raise NotImplementedError
    def set_slots(self, suggestions: Iterable) -> None: raise NotImplementedError
    def reload_library(self) -> None: raise NotImplementedError
    def chains_changed(self) -> None:
        """An effect chain was edited in the window."""
    def set_monitoring(self, on: bool) -> None:
        """Hear the input through the input chain."""
        raise NotImplementedError

    # MIDI
    def midi_map(self) -> MidiMap: raise NotImplementedError
    def set_midi_map(self, midi_map: MidiMap) -> None: raise NotImplementedError
    def set_midi_port(self, port: str) -> None: raise NotImplementedError
    def on_midi_action(self, action: str, handler: Callable[[], None]) -> None: ...
    def set_midi_learning(self, on: bool) -> None:
        """While on, incoming MIDI is only reported (midi_received), never acted on."""
        raise NotImplementedError

    # settings
    def apply_audio_settings(self, settings: AudioSettings) -> None: raise NotImplementedError

    def modes(self) -> tuple[str, ...]: return MODES
    def profiles(self) -> list[str]: return profile_names()


class LibraryWorker:
    """A thread that owns a ``Library`` (SQLite connections are per thread) and runs jobs on it."""

    def __init__(self, library_dir: Path, on_error: Callable[[str], None]):
        self.library_dir = library_dir
        self._on_error = on_error
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="library-worker", daemon=True)
        self._thread.start()
        self.files = 0
        self.index_state = "opening"

    def submit(self, job: Callable[[Any], None]) -> None:
        self._jobs.put(job)

    def reload(self) -> None:
        self._jobs.put("reload")

    def close(self, timeout: float = 5.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)

    def _open(self):
        from app.library import Library
        library = Library(self.library_dir)
        library.index  # load or repair now, not on the first query
        stats = library.catalog.stats()
        self.files = stats["indexed"]
        self.index_state = f"{len(library.index)} vectors ({library.index_note})"
        return library

    def _run(self) -> None:
        library = None
        try:
            library = self._open()
        except Exception as exc:  # noqa: BLE001 - reported, the window lives on
            self.index_state = "unavailable"
            self._on_error(f"library unavailable: {exc}")
        while True:
            job = self._jobs.get()
            if job is None:
                break
            if job == "reload":
                if library is not None:
                    library.close()
                try:
                    library = self._open()
                except Exception as exc:  # noqa: BLE001
                    library = None
                    self._on_error(f"library unavailable: {exc}")
                continue
            if library is None:
                self._on_error("the library could not be opened")
                continue
            try:
                job(library)
            except Exception as exc:  # noqa: BLE001 - user-facing line
                self._on_error(str(exc))
        if library is not None:
            library.close()


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
        self._seq = 0
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
        self._library = LibraryWorker(self.library_dir, self.error.emit)

    def _record(self, name: str, *args) -> None:
        self.calls.append((name, args))

    def close(self) -> None:
        self._library.close()

    def status(self) -> HostStatus:
        return HostStatus("offline", "no audio device (library only)",
                          library_files=self._library.files,
                          index_state=self._library.index_state)

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

    def request_search(self, path: str) -> None:
        self._record("request_search", path)
        path = os.fspath(path)
        k = self.k

        def job(library):
            t0 = time.perf_counter()
            results = library.search_file(path, k=k)
            self._seq += 1
            update = SuggestionUpdate(
                seq=self._seq, onset_frame=None, mode="file",
                suggestions=suggestions_from_results(results), level_db=SILENCE_DB,
                reason=f"file {Path(path).name}", latency_ms=(time.perf_counter() - t0) * 1e3)
            self.suggestions.emit(update)

        self._library.submit(job)

    def set_mode(self, mode: str) -> None:
        self._record("set_mode", mode)
        self.mode = mode

    def set_profile(self, profile: str) -> None:
        self._record("set_profile", profile)
        self.profile = profile

    def audition(self, suggestion) -> int | None:
        self._record("audition", suggestion.path)
        voice = self._next_voice
        self._next_voice += 1
        self._voices = {voice: _FakeVoice(float(suggestion.duration_s or 1.0))}  # one at a time
        return voice

    def stop_all(self) -> None:
        self._record("stop_all")
        self._voices.clear()

    def set_volume(self, volume: float) -> None:
        self._record("set_volume", volume)
        self.volume = volume

    def set_slots(self, suggestions: Iterable) -> None:
        self._slots = list(suggestions)[:16]
        self._record("set_slots", tuple(s.path for s in self._slots))

    def reload_library(self) -> None:
        self._record("reload_library")
        self._library.reload()
        self._library.submit(lambda library: self.library_changed.emit())

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


def describe_binding(kind: str, number: int) -> str:
    return f"{'Note' if kind == 'note' else 'CC'} {number}"


def message_binding(message) -> tuple[str, int] | None:
    """('note'|'cc', number) a message could be bound to, or None."""
    parsed = parse_message(message)
    if parsed is None or parsed[0] == "note_off" or (parsed[0] == "cc" and parsed[2] == 0):
        return None
    return parsed[0], parsed[1]


__all__ = ["ACTIONS", "AudioSettings", "Host", "HostStatus", "LevelReading", "MODES", "NullHost",
           "Suggestion", "SuggestionUpdate", "category_of", "describe_binding", "message_binding",
           "profile_names", "suggestions_from_results"]
