"""The running app without a window: engine, chains, live matcher, MIDI capture and slots.

``Session`` builds what ``samplescout listen`` and the desktop window need: the audio engine
(its own audio process), the input chain (before analysis) and the preview chain (rendered
into the engine's sample cache when a sample is loaded), the ``LiveMatcher`` reading the
engine's capture ring, and the MIDI capture action: a capture note looks up the last hit and
fills the 16 audition slots (slot i plays suggestion i, so the pads play the matches).

The pads page through the current suggestion list (up to ``PAD_SUGGESTIONS``): page n puts
suggestions 16n+1..16n+16 on pads 1..16. The MIDI actions 'page_next' / 'page_prev' (and
``next_page`` / ``previous_page``) turn pages; a new list starts again at page 0.

Threads: construct, ``start`` and ``close`` on one thread. ``audition``, ``stop_all``,
``capture``, ``slots``, ``fill_slots``, ``next_page``, ``previous_page``, ``pad_page`` from
any thread. MIDI captures and page turns run on a worker thread of the session (the engine's
message thread only hands them over).
"""

from __future__ import annotations

import math
import queue
import threading
from pathlib import Path

from app.match_profiles import MatchProfile, get_profile
from app.matcher import LiveMatcher
from app.suggestions import Suggestion, SuggestionUpdate
from engine.chain import Chain
from engine.midi import MidiMap
from engine.stream import AudioEngine, EngineError, StreamConfig
from engine.errors import SampleScoutError

CAPTURE_NOTE = 35   # just below the 16 pads (36-51) of the default map
SLOTS = 16
PAD_SUGGESTIONS = 64   # suggestions the pads can page through (4 pages)


class SessionError(SampleScoutError):
    """One line for the user (no audio device, engine failed...)."""


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
                 capture_seconds: float | None = None):
        profile = profile_name if isinstance(profile_name, MatchProfile) else get_profile(profile_name)
        if mode is not None:
            profile = profile.with_mode(mode)
        self.config = stream_config
        self.capture_seconds = capture_seconds
        self.input_chain = Chain("input", stream_config.sample_rate, stream_config.input_channels)
        self.preview_chain = Chain("preview", stream_config.sample_rate, stream_config.output_channels)
        self.engine = AudioEngine(stream_config)
        self.engine.cache.render = self._render_preview
        self.matcher = LiveMatcher(library_dir, self.engine.ring, stream_config.sample_rate,
                                   profile=profile, input_chain=self.input_chain,
                                   encoder=encoder, index=index)
        self.matcher.subscribe(self._on_update)
        self.midi_map = midi_map or default_midi_map()
        self._slots: list[Suggestion | None] = [None] * SLOTS
        self._pad_list: list[Suggestion] = []
        self._page = 0
        self._page_info = (0, 0)     # replaced whole: read without the lock (GUI polling)
        self._slot_lock = threading.RLock()
        self._jobs: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="session-capture", daemon=True)
        self.slot_updates = 0
        self.last_error = ""
        self._started = False

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Open the audio device and start matching; SessionError if no device runs."""
        self.engine.on_action("capture_lookup", lambda: self._jobs.put(("capture", None)))
        self.engine.on_action("page_next", lambda: self._jobs.put(("page", 1)))
        self.engine.on_action("page_prev", lambda: self._jobs.put(("page", -1)))
        self.engine.start()
        import time
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
            self.engine.set_midi_map(self.midi_map)
        self._worker.start()
        self.matcher.start()
        self._started = True

    def close(self) -> None:
        self.matcher.stop()
        if self._worker.is_alive():
            self._jobs.put(("stop", None))
            self._worker.join(10)
        self.matcher.ring = None  # the ring is a view on the engine's shared memory
        self.engine.close()

    def __enter__(self) -> "Session":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- actions (any thread) -----------------------------------------------------------

    def capture(self, seconds: float | None = None) -> SuggestionUpdate | None:
        """Look up the last hit and fill the slots with its matches."""
        update = self.matcher.capture(self.capture_seconds if seconds is None else seconds)
        if update is not None:
            self.fill_slots(update.suggestions)
        return update

    def fill_slots(self, suggestions) -> None:
        """A new suggestion list for the pads (up to PAD_SUGGESTIONS), shown from page 0:
        slot i (1..16) plays suggestion i; slots past the list go silent."""
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

    def slots(self) -> list[Suggestion | None]:
        """The suggestions on pads 1..16 (None: silent pad). Never waits for a page load."""
        return list(self._slots)

    def audition(self, suggestion_or_path) -> int:
        """Play a suggestion (or a file path) now; returns the voice id."""
        path = suggestion_or_path.path if isinstance(suggestion_or_path, Suggestion) else str(suggestion_or_path)
        try:
            index = self.engine.load_sample(path)
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001 — decode problems become one line
            raise SessionError(f"cannot play {path}: {exc}") from None
        return self.engine.play(index)

    def stop_all(self) -> None:
        self.engine.stop_all()

    # ---- internals ----------------------------------------------------------------------

    def _on_update(self, update: SuggestionUpdate) -> None:
        """Matcher thread: a capture's full-window answer refills the pads (on our worker)."""
        if update.reason == "capture-full":
            self._jobs.put(("fill", update.suggestions))

    def _render_preview(self, audio):
        if not self.preview_chain.members():
            return audio
        return self.preview_chain.process(audio, self.config.sample_rate)

    def _work(self) -> None:
        while True:
            kind, arg = self._jobs.get()
            if kind == "stop":
                return
            try:
                if kind == "page":
                    self._turn(arg)
                elif kind == "fill":
                    self.fill_slots(arg)
                else:
                    self.capture()
            except Exception as exc:  # noqa: BLE001 — keep the pads alive
                self.last_error = f"{kind}: {type(exc).__name__}: {exc}"
