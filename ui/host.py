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
    index_state: str = ""                 # for people: "opening", "2154 vectors (…)"
    index_vectors: int | None = None      # vectors in the open index; None while none is
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
    search_failed = pyqtSignal(str, str)    # path, one line naming it: a search by example failed
    info = pyqtSignal(str)                  # one line for the status bar
    midi_received = pyqtSignal(object)      # list[int], every incoming MIDI message
    midi_map_changed = pyqtSignal()
    library_changed = pyqtSignal()          # the index was reloaded after a scan or removal
    folders_watched = pyqtSignal(object)    # app.scanner.ScanReport: the folder watcher stored it
    tags_changed = pyqtSignal(str, object)  # path, tuple of the tags that now stand for it
    tempo_key_found = pyqtSignal(str, object)  # path, app.matched_preview.SourceInfo

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
    def audition(self, suggestion, *, matched: bool = True) -> int | None:
        """Play ``suggestion``'s file; the voice id (None when nothing plays). With
        ``matched`` (the default) it is matched to ``match_target`` when one is set; a
        stretch of a track heard as it is passes ``matched=False``."""
        raise NotImplementedError
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
    def browse_tasks(self):
        """An ``app.browse_tasks.BrowseTasks`` for the library browser: its snapshot of the
        catalog, favourites and collections, answered on the library thread."""
        raise NotImplementedError

    # watched folders (app.watcher): one watcher per host, started by ``watch_folders``
    watcher = None     # the app.watcher.FolderWatcher, once started

    def when_library_open(self, then: Callable[[], None]) -> None:
        """Run ``then()`` once the library has opened (its index loaded, or the open failed);
        at once when it has. Start-up work that can wait (folder watching, the library's
        totals) waits for this, so the first answer does not share the CPU with it. GUI
        thread. A host whose library opens with it runs ``then`` at once."""
        then()

    def watch_folders(self) -> None:
        """Keep the library up to date with its folders while the window runs, from the
        moment the library has opened: what the watcher stores reloads the library
        (``library_changed`` follows); its notices (the system's watch limit reached...) go
        to ``info``."""
        self.when_library_open(self._start_watching)

    def _start_watching(self) -> None:
        if self.watcher is not None:
            return
        from app.watcher import FolderWatcher
        self.folders_watched.connect(self._folders_watched)
        self.watcher = FolderWatcher(self.library_dir, on_change=self.folders_watched.emit,
                                      on_notice=self.info.emit)
        self.watcher.start()

    def folders_changed(self) -> None:
        """The library's folders were added, removed or relinked: the watcher re-reads them."""
        if self.watcher is not None:
            self.watcher.rescan_roots()

    def stop_watching(self) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()

    def _folders_watched(self, report) -> None:
        self.reload_library()
        self.info.emit(watch_summary(report))

    def map_tasks(self):
        """An ``app.similarity_map.MapTasks`` (layout, new samples placed, the points) for
        the map panel's worker thread."""
        from app.similarity_map import MapTasks
        return MapTasks(self.library_dir)
    def duplicate_tasks(self):
        """An ``app.duplicate_tasks.DuplicateTasks`` (find groups, move files to the trash)
        for the duplicates view's worker thread."""
        from app.duplicate_tasks import DuplicateTasks
        return DuplicateTasks(self.library_dir)

    def detect_tasks(self):
        """An ``app.detect_tasks.DetectTasks`` (samples in a track, its overview, a slice of
        it to audition) for the detect view's worker thread."""
        from app.detect_tasks import DetectTasks
        return DetectTasks(self.library_dir)

    def collect(self, name: str, file_ids: list[int]) -> None:
        """Put library files in the collection ``name`` (made when new); ``info`` says how
        many were added, ``error`` what went wrong."""
        raise NotImplementedError
    def chains_changed(self) -> None:
        """An effect chain was edited in the window."""
    def set_monitoring(self, on: bool) -> None:
        """Hear the input through the input chain."""
        raise NotImplementedError

    # tempo- and key-matched preview (app.matched_preview)
    match_target = None                     # app.matched_preview.Target, or None: play as is

    def set_match(self, target) -> None:
        """Auditions from now on are matched to ``target`` (None: the files as they are)."""
        self.match_target = target

    def render_matched(self, path: str) -> str | None:
        """The matched render of ``path`` for a drag (written to the cache, named after the
        source with the new tempo/key), or None with Match off or nothing to change. Renders
        on the caller's thread when not in the cache."""
        if self.match_target is None:
            return None
        rendered, _plan = self.matched_prerenderer().render(path, self.match_target)
        return None if rendered is None else str(rendered)

    def prepare_matched(self, path: str) -> None:
        """The selection moved to ``path``: render its match for a drag in the background."""
        if self.match_target is not None:
            self.matched_prerenderer().prepare(path, self.match_target)

    def matched_prerenderer(self):
        """The background renderer of matched files for drags (made on first use)."""
        if getattr(self, "_matched_prerenderer", None) is None:
            from app.matched_preview import Prerenderer
            self._matched_prerenderer = Prerenderer(self.library_dir)
        return self._matched_prerenderer

    def request_tempo_key(self, path: str) -> None:
        """Look up a file's tempo and key (the library's analysis, or the detectors for a
        file outside it) on a thread; ``tempo_key_found`` or ``error`` follows."""
        import threading

        def run() -> None:
            from app.matched_preview import source_info
            try:
                self.tempo_key_found.emit(path, source_info(path, self.library_dir))
            except Exception as exc:  # noqa: BLE001 - one line for the user
                self.error.emit(f"cannot read the tempo and key of {Path(path).name}: {exc}")

        threading.Thread(target=run, name="tempo-key", daemon=True).start()

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

    # the catalogue: local, or a shared server (read when the app starts)
    def catalogue_choice(self):
        """``app.catalogue_setting.CatalogueChoice`` of this library dir."""
        from app.catalogue_setting import catalogue_choice
        return catalogue_choice(self.library_dir)

    def set_catalogue(self, address: str | None) -> None:
        """Use the shared catalogue at ``address`` (None: the local one) from the next start;
        LibraryError with plain words when the address cannot be used (a password in it)."""
        from app.catalogue_setting import choose_catalogue
        choose_catalogue(self.library_dir, address)

    def test_catalogue(self, address: str):
        """Connect to a shared catalogue as doctor does; ``CatalogueTest`` in plain words.
        Blocks for seconds: any thread but the GUI's."""
        from app.catalogue_setting import test_catalogue
        return test_catalogue(self.library_dir, address)

    def modes(self) -> tuple[str, ...]: return MODES
    def profiles(self) -> list[str]: return profile_names()


def watch_summary(report) -> str:
    """One status-bar line for what the folder watcher stored (an app.scanner.ScanReport)."""
    parts = [f"{n} {what}" for n, what in (
        (report.indexed + report.duplicates, "added"), (report.relinked, "moved"),
        (report.removed, "removed"), (sum(report.skipped.values()), "skipped"))
        if n]
    parts += [f"{Path(old).name} relinked" for old, _ in report.folders_relinked]
    parts += [f"{Path(p).name} offline" for p in report.offline]
    parts += [f"{Path(p).name} back online" for p in report.back_online]
    return "Library folders: " + (", ".join(parts) or "up to date")


def file_suggestion(path: str, *, file_id: int = -1, kind: str | None = None,
                    duration_s: float | None = None) -> Suggestion:
    """A file as the ``Suggestion`` that ``Host.audition`` plays (score 0: not a match);
    ``file_id`` -1 for a file outside the library. Any thread."""
    return Suggestion(rank=0, file_id=file_id, path=path, name=Path(path).name, score=0.0,
                      kind=kind, duration_s=duration_s, offset_s=0.0, exists=True)


def describe_binding(kind: str, number: int) -> str:
    return f"{'Note' if kind == 'note' else 'CC'} {number}"


def message_binding(message) -> tuple[str, int] | None:
    """('note'|'cc', number) a message could be bound to, or None."""
    parsed = parse_message(message)
    if parsed is None or parsed[0] == "note_off" or (parsed[0] == "cc" and parsed[2] == 0):
        return None
    return parsed[0], parsed[1]


__all__ = ["ACTIONS", "AudioSettings", "Host", "HostStatus", "LevelReading", "MODES",
           "Suggestion", "SuggestionUpdate", "category_of", "describe_binding", "file_suggestion",
           "message_binding", "profile_names", "watch_summary"]
