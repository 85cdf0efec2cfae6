"""What the window needs from the rest of the app, as one small interface.

The window only talks to a ``Host``: suggestions arrive through its Qt
signals, levels and engine state are polled on a timer, and every request
(audition, capture, search by example, MIDI learn) is a method call that
returns at once. Two hosts exist:

* ``SessionHost`` (``ui.session_host``): the interface over ``app.session.Session``
  (the live engine, matcher and pads), and over ``app.library_tasks`` for the library;
  without an audio device it keeps searching the library by example.
* ``tests.null_host.NullHost``: a recording fake for the window's tests (real library,
  chains and MIDI maps, no audio device).

Threads: every public method is for the GUI thread. Signals may be emitted
from worker threads; Qt queues them to the receivers' thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from app.audio_types import ACTIONS, Chain, MidiMap, parse_message

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
    block_size: int | None = None        # frames per callback the audio server really runs


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


class Host(QObject):
    """The interface the window uses. Subclasses implement the methods below."""

    suggestions = pyqtSignal(object)        # SuggestionUpdate
    error = pyqtSignal(str)                 # one line for the user
    info = pyqtSignal(str)                  # one line for the status bar
    midi_received = pyqtSignal(object)      # list[int], every incoming MIDI message
    midi_map_changed = pyqtSignal()
    library_changed = pyqtSignal()          # the index was reloaded after a scan or removal
    tags_changed = pyqtSignal(str, object)  # path, tuple of the tags that now stand for it

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
    def reset_xruns(self) -> None: ...
    def request_search(self, path: str) -> None: raise NotImplementedError
    def set_mode(self, mode: str) -> None: raise NotImplementedError
    def set_profile(self, profile: str) -> None:
        """A match profile by name, keeping the current mode (the window sets it next)."""
        raise NotImplementedError
    def set_list_length(self, length: int) -> None:
        """How many matches a search by example asks for."""
    def profile_mode(self, profile: str) -> str:
        """The mode a match profile comes with."""
        from app.match_profiles import get_profile
        return get_profile(profile).mode

    search_filter = None                    # app.query.SearchFilter of every later search

    def edit_tag(self, path: str, tag: str, removed: bool) -> None:
        """The user adds or removes a tag of a library file; ``tags_changed`` follows."""
        raise NotImplementedError

    def set_filter(self, search_filter) -> None:
        """Narrow every later search (live, capture, dropped file) to what it accepts."""
        self.search_filter = search_filter
    def audition(self, suggestion) -> int | None: raise NotImplementedError
    def stop_all(self) -> None: raise NotImplementedError
    def set_volume(self, volume: float) -> None: raise NotImplementedError
    def slots(self) -> list:
        """The suggestions the 16 pads play (None: silent pad); the pads follow the
        suggestions shown, by the app's own policy."""
        return []
    def reload_library(self) -> None: raise NotImplementedError
    def library_tasks(self, workers: int | None = None):
        """An ``app.library_tasks.LibraryTasks`` (scan, folder removal, summary) for the
        library panel's thread."""
        from app.library_tasks import LibraryTasks
        return LibraryTasks(self.library_dir, workers)
    def map_tasks(self):
        """An ``app.similarity_map.MapTasks`` (layout, new samples placed, the points) for
        the map panel's worker thread."""
        from app.similarity_map import MapTasks
        return MapTasks(self.library_dir)
    def collect(self, name: str, file_ids: list[int]) -> None:
        """Put library files in the collection ``name`` (made when new); ``info`` says how
        many were added, ``error`` what went wrong."""
        raise NotImplementedError
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


def describe_binding(kind: str, number: int) -> str:
    return f"{'Note' if kind == 'note' else 'CC'} {number}"


def message_binding(message) -> tuple[str, int] | None:
    """('note'|'cc', number) a message could be bound to, or None."""
    parsed = parse_message(message)
    if parsed is None or parsed[0] == "note_off" or (parsed[0] == "cc" and parsed[2] == 0):
        return None
    return parsed[0], parsed[1]


__all__ = ["ACTIONS", "AudioSettings", "Host", "HostStatus", "LevelReading", "MODES",
           "Suggestion", "SuggestionUpdate", "category_of", "describe_binding", "message_binding",
           "profile_names"]
