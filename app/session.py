"""The running app without a window: engine, chains, live matcher, MIDI capture and pads.

``Session`` is the one façade the desktop window (through ``ui.session_host``) and
``samplescout listen`` use. It owns the audio engine (its own audio process), the input
chain (before analysis, and on the monitoring path) and the preview chain (the engine runs
it live on the preview mix), the ``LiveMatcher`` reading the engine's capture ring through
a read-only searcher of the library, and the MIDI capture action.

What it offers, all as public methods and callbacks: levels, the input tail, onsets,
playheads, the chains and sending them to the engine, audition, capture, search by file,
the pads and their pages, the MIDI map, MIDI learn, reload of the index and status, and
auditions matched to a session tempo and key (``audition_matched``).

The pads: slot i (1..16) plays suggestion i of the pads' list. The policy is the
session's alone: a capture always fills them (a MIDI capture note looks up the last hit);
with ``pads_follow="updates"`` (the window) every published update fills them too, on the
session's worker, the newest list winning. Page n puts suggestions 16n+1..16n+16 on pads
1..16; the MIDI actions 'page_next' / 'page_prev' (and ``next_page`` / ``previous_page``)
turn pages; a new list starts again at page 0.

Threads: construct, ``start`` and ``close`` on one thread; every other public method from
any thread, and none waits on audio. MIDI captures, page turns and pad fills run on the
session's worker thread (the engine's message thread only hands them over). Suggestion
callbacks run on the matcher's thread (live) or the caller's (capture, search_file);
MIDI-message callbacks on the engine's message thread: keep them short.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from app.audio_types import Chain, EngineError, MidiMap, StreamConfig
from app.match_profiles import MatchProfile, get_profile
from app.matcher import LiveMatcher
from app.priority import live_session
from app.query import SearchFilter
from app.suggestions import Suggestion, SuggestionUpdate
from engine.errors import SampleScoutError
from engine.mixdown import mono_mix
from engine.stream import AudioEngine

CAPTURE_NOTE = 35   # just below the 16 pads (36-51) of the default map
SLOTS = 16
PAD_SUGGESTIONS = 64   # suggestions the pads can page through (4 pages)
SILENCE_DB = -120.0
PAD_POLICIES = ("captures", "updates")

__all__ = ["CAPTURE_NOTE", "PAD_SUGGESTIONS", "SLOTS", "Chain", "EngineError", "Levels", "MidiMap",
           "SearchFilter", "Session", "SessionError", "SessionStatus", "StreamConfig",
           "default_midi_map"]


class SessionError(SampleScoutError):
    """One line for the user (no audio device, engine failed...)."""


@dataclass(frozen=True)
class Levels:
    """Input levels per channel, dBFS (SILENCE_DB for silence)."""
    peak_db: tuple[float, ...]
    rms_db: tuple[float, ...]


@dataclass(frozen=True)
class SessionStatus:
    """The engine's state and the session's figures, for a status bar."""
    state: str                          # the engine's: "running", "waiting", "stopped"...
    message: str
    device: str
    xruns: int
    input_latency_s: float | None
    output_latency_s: float | None
    midi: str
    index_vectors: int
    pad_page: tuple[int, int]


def _db(x: float) -> float:
    return 20 * math.log10(x) if x > 1e-6 else SILENCE_DB


def default_midi_map() -> MidiMap:
    """The shipped 16-pad map plus the capture note, unless a capture binding exists."""
    from engine.midi import DEFAULT_MAP_PATH
    midi_map = MidiMap.load(DEFAULT_MAP_PATH) if Path(DEFAULT_MAP_PATH).exists() else MidiMap.default_16_pads()
    if "capture_lookup" not in midi_map.bindings.values():
        midi_map.bind("note", CAPTURE_NOTE, "capture_lookup")
    return midi_map


class Session:
    def __init__(self, library_dir, stream_config: StreamConfig, profile_name: str | MatchProfile = "drums",
                 *, mode: str | None = None, midi_map: MidiMap | None = None, encoder=None, index=None,
                 capture_seconds: float | None = None, input_chain: Chain | None = None,
                 preview_chain: Chain | None = None, pads_follow: str = "captures"):
        """``input_chain`` / ``preview_chain``: chains to use (the window keeps its edited
        chains across sessions), set to this stream's format; new empty ones when None."""
        profile = profile_name if isinstance(profile_name, MatchProfile) else get_profile(profile_name)
        if mode is not None:
            profile = profile.with_mode(mode)
        if pads_follow not in PAD_POLICIES:
            raise SessionError(f"pads_follow must be one of {', '.join(PAD_POLICIES)}, not {pads_follow!r}")
        self.config = stream_config
        self.capture_seconds = capture_seconds
        self.pads_follow = pads_follow
        self._input_chain = input_chain or Chain("input", stream_config.sample_rate,
                                                 stream_config.input_channels)
        self._input_chain.set_format(stream_config.sample_rate, stream_config.input_channels)
        self._preview_chain = preview_chain or Chain("preview", stream_config.sample_rate,
                                                     stream_config.output_channels)
        self._preview_chain.set_format(stream_config.sample_rate, stream_config.output_channels)
        self.engine = AudioEngine(stream_config)
        self.matcher = LiveMatcher(library_dir, self.engine.ring, stream_config.sample_rate,
                                   profile=profile, input_chain=self._input_chain,
                                   encoder=encoder, index=index, rerank_process=True)
        self.library_dir = self.matcher.library_dir
        self.matcher.subscribe(self._on_update)
        self._xrun_base = 0
        self._midi_map = midi_map or default_midi_map()
        self._midi_learning = False
        self._monitoring = False
        self._slots: list[Suggestion | None] = [None] * SLOTS
        self._pad_list: list[Suggestion] = []
        self._page = 0
        self._page_info = (0, 0)     # replaced whole: read without the lock (GUI polling)
        self._slot_lock = threading.RLock()
        self._pending_fill: tuple | None = None     # newest list waiting for the worker
        self._fill_lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="session-capture", daemon=True)
        self.slot_updates = 0
        self.last_error = ""
        self._started = False
        self._matched = None        # app.matched_audition.MatchedAuditions, made on first use

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Open the audio device and start matching; SessionError if no device runs."""
        self.engine.on_action("capture_lookup", lambda: self._jobs.put(("capture", None)))
        self.engine.on_action("page_next", lambda: self._jobs.put(("page", 1)))
        self.engine.on_action("page_prev", lambda: self._jobs.put(("page", -1)))
        self.engine.start()
        deadline = time.monotonic() + timeout
        status = self.engine.status()
        while status.state != "running":
            if status.state == "waiting" or time.monotonic() > deadline:
                self.matcher.ring = None
                self.engine.close()
                raise SessionError(status.message.removesuffix("; retrying"))
            time.sleep(0.02)
            status = self.engine.status()
        if self.config.midi_api:
            self.engine.set_midi_map(self._engine_midi_map())
        self._worker.start()
        self.matcher.start()
        self._live = live_session()
        self._live.__enter__()      # scans in this process run fewer workers meanwhile
        self._started = True

    def close(self) -> None:
        live, self._live = getattr(self, "_live", None), None
        if live is not None:
            live.__exit__(None, None, None)
        self.matcher.stop()
        if self._worker.is_alive():
            self._jobs.put(("stop", None))
            self._worker.join(10)
        self.matcher.ring = None  # the ring is a view on the engine's shared memory
        if self._matched is not None:
            self._matched.close()
        self.engine.close()

    def __enter__(self) -> "Session":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- callbacks ----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[SuggestionUpdate], None]) -> None:
        """Call ``callback(update)`` for every published suggestion update (see threads)."""
        self.matcher.subscribe(callback)

    def unsubscribe(self, callback) -> None:
        self.matcher.unsubscribe(callback)

    def on_midi_message(self, callback: Callable[[list], None]) -> Callable[[], None]:
        """Call ``callback(message)`` for every incoming MIDI message, also during MIDI learn.
        Returns a function that removes the subscription."""
        return self.engine.on_midi_message(lambda message, _action: callback(message))

    # ---- polled (any thread, never waits) -------------------------------------------------

    def meters(self):
        """The engine's meter reading (linear levels, xrun counters)."""
        return self.engine.meters()

    def levels(self) -> Levels:
        m = self.engine.meters()
        return Levels(tuple(_db(p) for p in m.peak), tuple(_db(r) for r in m.rms))

    def input_tail(self, frames: int) -> tuple[int, np.ndarray] | None:
        """(device frame at the end, the last ``frames`` input samples mixed to mono);
        None when the capture ring is gone; silence while the ring is being overwritten."""
        ring = self.engine.ring
        if ring is None:
            return None
        try:
            start, block = ring.read_latest(frames)
        except Exception:  # noqa: BLE001 - overrun while copying: show silence this frame
            return 0, np.zeros(frames, np.float32)
        return start + frames, mono_mix(block)

    def recent_onsets(self) -> list[int]:
        """Device-frame positions of the most recent onsets, oldest first."""
        return self.matcher.recent_onsets()

    def playhead(self, voice: int) -> int | None:
        """Frames played by a preview voice; None when it is not (or no longer) playing."""
        return self.engine.playheads().get(voice)

    def latest(self) -> SuggestionUpdate | None:
        return self.matcher.latest()

    def stats(self) -> dict:
        """The matcher's counters and latencies."""
        return self.matcher.stats()

    @property
    def profile(self) -> MatchProfile:
        return self.matcher.profile

    @property
    def mode(self) -> str:
        return self.matcher.mode

    def index_size(self) -> int:
        """Vectors in the index the matcher searches."""
        return len(self.matcher.index)

    def status(self) -> SessionStatus:
        es = self.engine.status()
        meters = self.engine.meters()
        return SessionStatus(state=es.state, message=es.message, device=es.device,
                             xruns=max(0, meters.xruns - self._xrun_base),
                             input_latency_s=es.input_latency,
                             output_latency_s=es.output_latency, midi=es.midi,
                             index_vectors=self.index_size(), pad_page=self.pad_page())

    def reset_xruns(self) -> None:
        """Count xruns from now on in ``status`` (the engine's own counter runs on). Any
        thread."""
        self._xrun_base = self.engine.meters().xruns

    # ---- matching -------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        self.matcher.set_mode(mode)

    def set_profile(self, profile: str | MatchProfile) -> None:
        """A match profile by name (keeping the current mode) or whole."""
        if not isinstance(profile, MatchProfile):
            profile = get_profile(profile).with_mode(self.mode)
        self.matcher.set_profile(profile)

    def set_filter(self, search_filter: SearchFilter | None) -> None:
        """Narrow every later search (live, capture, file) to what the filter accepts."""
        self.matcher.set_filter(search_filter)

    def capture(self, seconds: float | None = None) -> SuggestionUpdate | None:
        """Look up the last hit and fill the pads with its matches; None if it was silent."""
        update = self.matcher.capture(self.capture_seconds if seconds is None else seconds)
        if update is not None:
            self.fill_slots(update.suggestions)
        return update

    def search_file(self, path: str | os.PathLike, k: int | None = None) -> SuggestionUpdate:
        """Search by example with an audio file; the update is published to subscribers.
        Raises DecodeError (unreadable) or MatcherError (silent)."""
        return self.matcher.search_file(path, k=k)

    def reload_index(self, index=None) -> None:
        """Search ``index`` from now on (one the caller loaded already, e.g. the window's
        library's), or else the library's index as it is on disk now (after a scan or a
        removal)."""
        if index is not None:
            self.matcher.set_index(index)
            return
        from app.library import Library
        with Library(self.library_dir, encoder=self.matcher.encoder) as library:
            # the same searcher over the new index: the re-ranker keeps its cache
            self.matcher.set_index(library.index)

    # ---- audio ----------------------------------------------------------------------------

    @property
    def input_chain(self) -> Chain:
        """The chain before analysis (and on the monitoring path); edit it, then ``send_chains``."""
        return self._input_chain

    @property
    def preview_chain(self) -> Chain:
        """The chain the engine runs on the preview mix; edit it, then ``send_chains``."""
        return self._preview_chain

    def send_chains(self) -> None:
        """Send both chains, as they are now, to the audio process."""
        from engine.chain_presets import chain_to_dict
        for chain, send in ((self._input_chain, self.engine.set_input_chain),
                            (self._preview_chain, self.engine.set_preview_chain)):
            members = chain.members()
            send(chain_to_dict(chain) if members else None, [m.id for m in members] or None)
        self.engine.set_monitoring(self._monitoring)

    def set_monitoring(self, on: bool) -> None:
        """Hear the input through the input chain."""
        self._monitoring = bool(on)
        self.engine.set_monitoring(self._monitoring)

    def set_volume(self, volume: float) -> None:
        self.engine.set_volume(volume)

    def audition(self, suggestion_or_path) -> int:
        """Play a suggestion (or a file path) now; returns the voice id. Decodes the file on
        the caller's thread the first time."""
        path = suggestion_or_path.path if isinstance(suggestion_or_path, Suggestion) else str(suggestion_or_path)
        try:
            index = self.engine.load_sample(path)
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001 — decode problems become one line
            raise SessionError(f"cannot play {path}: {exc}") from None
        return self.engine.play(index)

    def audition_matched(self, path, target, source=None):
        """Play a file matched to the session tempo and key (``app.matched_preview.Target``);
        returns an ``app.matched_audition.MatchedAudition`` (voice, plan, how it started).
        A render done before plays at once; else the first block is rendered on the caller's
        thread and the rest streams into the playing sample from the session's render thread.
        """
        if self._matched is None:
            from app.matched_audition import MatchedAuditions
            self._matched = MatchedAuditions(self.engine, self.library_dir)
        try:
            return self._matched.play(os.fspath(path), target, source)
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001 — decode problems become one line
            raise SessionError(f"cannot play {path} matched: {exc}") from None

    def stop_all(self) -> None:
        self.engine.stop_all()

    # ---- MIDI -----------------------------------------------------------------------------

    @property
    def midi_map(self) -> MidiMap:
        return self._midi_map

    def set_midi_map(self, midi_map: MidiMap) -> None:
        """Act on MIDI through ``midi_map`` (after learn ends, if it runs)."""
        self._midi_map = midi_map
        if not self._midi_learning:
            self.engine.set_midi_map(midi_map)

    def set_midi_learning(self, on: bool) -> None:
        """While on, the engine gets an empty map: incoming MIDI is only reported."""
        self._midi_learning = bool(on)
        self.engine.set_midi_map(self._engine_midi_map())

    def _engine_midi_map(self) -> MidiMap:
        return MidiMap(name="learning") if self._midi_learning else self._midi_map

    # ---- pads -----------------------------------------------------------------------------

    def fill_slots(self, suggestions) -> None:
        """A new suggestion list for the pads (up to PAD_SUGGESTIONS), shown from page 0:
        slot i (1..16) plays suggestion i; slots past the list go silent. Loads the samples
        on the caller's thread."""
        with self._slot_lock:
            self._pad_list = list(suggestions)[:PAD_SUGGESTIONS]
            self._page = 0
            self._load_page()

    def next_page(self) -> int:
        """Show the next 16 suggestions on the pads (stays on the last page); the page shown."""
        return self._turn(1)

    def previous_page(self) -> int:
        return self._turn(-1)

    def pad_page(self) -> tuple[int, int]:
        """(page shown, number of pages) of the pads' suggestion list; (0, 0) when empty.
        Never waits for a page being loaded."""
        return self._page_info

    def slots(self) -> list[Suggestion | None]:
        """The suggestions on pads 1..16 (None: silent pad). Never waits for a page load."""
        return list(self._slots)

    def _page_count(self) -> int:
        return math.ceil(len(self._pad_list) / SLOTS)

    def _turn(self, step: int) -> int:
        with self._slot_lock:
            page = min(max(0, self._page + step), max(0, self._page_count() - 1))
            if page != self._page:
                self._page = page
                self._load_page()
            return self._page

    def _load_page(self) -> None:
        """Caller holds the slot lock: put the current page on the pads."""
        first = self._page * SLOTS
        page = self._pad_list[first:first + SLOTS]
        filled: list[Suggestion | None] = [None] * SLOTS
        for i, suggestion in enumerate(page):
            if not suggestion.exists:
                self.engine.set_slot(i + 1, None)
                continue
            try:
                index = self.engine.load_sample(suggestion.path)
            except Exception as exc:  # noqa: BLE001 — one bad file must not empty the pads
                self.last_error = f"{suggestion.path}: {exc}"
                self.engine.set_slot(i + 1, None)
                continue
            self.engine.set_slot(i + 1, index)
            filled[i] = suggestion
        for slot in range(len(page) + 1, SLOTS + 1):
            self.engine.set_slot(slot, None)
        self._slots = filled
        self._page_info = (self._page, self._page_count())
        self.slot_updates += 1

    # ---- internals ----------------------------------------------------------------------

    def _on_update(self, update: SuggestionUpdate) -> None:
        """Matcher (or caller) thread: hand the pads' new list to our worker. A capture
        fills them itself; its full-window answer, and with pads_follow="updates" every
        other update, comes here. Only the newest waiting list is kept."""
        if update.reason == "capture":
            return
        if update.reason != "capture-full" and self.pads_follow != "updates":
            return
        with self._fill_lock:
            queued = self._pending_fill is not None
            self._pending_fill = update.suggestions
        if not queued:
            self._jobs.put(("fill", None))

    def _take_fill(self):
        with self._fill_lock:
            suggestions, self._pending_fill = self._pending_fill, None
        return suggestions

    def _work(self) -> None:
        while True:
            kind, arg = self._jobs.get()
            if kind == "stop":
                return
            try:
                if kind == "page":
                    self._turn(arg)
                elif kind == "fill":
                    suggestions = self._take_fill()
                    if suggestions is not None:
                        self.fill_slots(suggestions)
                else:
                    self.capture()
            except Exception as exc:  # noqa: BLE001 — keep the pads alive
                self.last_error = f"{kind}: {type(exc).__name__}: {exc}"
