"""Live matching: capture ring -> input chain -> resampler -> onsets/windows -> encoder -> index.

``LiveMatcher`` runs one worker thread. It reads the engine's capture ring by frame position
(never touching the audio thread), runs the optional input chain, mixes to mono, resamples
to the model rate with a streaming soxr resampler, keeps the last ``history_seconds`` of that
audio, and feeds the onset detector. In *one-shot* mode every onset opens an analysis window
(``window_seconds`` from the onset minus a short pre-roll) that ends early where the next hit
starts or where the hit has decayed (``decay_end``); the encoder zero-pads a short window the
way it pads a library's short files, so each hit of dense playing is analysed on its own.
A hit answers progressively: from its attack (``ATTACK_SECONDS``), refined at
``REFINE_SECONDS``, and a final time when its window is complete; each update carries its
``stage`` and, with the onset's device frame, ``onset_time`` (when that frame reached the
ring, from the ring's frame clock sampled with the time at each read), so a display can show
the time since the hit. A hit's later stages replace its earlier ones in the merged list. The
early stages search without the re-ranker and hand their files to it (``prepare``) so that
it reads them while the hit sounds; the final one re-ranks unless the worker is behind with
more to answer (``RERANK_LATE_SECONDS`` late and a later hit or window waiting). With
``rerank_process`` (the app's session) the re-ranking runs in a process of its own
(``app.rerank_worker``), so the process's other threads (the window's) never wait for the
GIL behind it.
In *rolling* mode a window ends every ``hop_seconds``. Windows below the gate are dropped.
The chain, the mix to mono and the resampling are one ``InputConditioner``, streaming for the
live worker and whole for a capture read straight from the ring. Every window, capture and
file goes through ``_lookup`` (``app.query.embed_query`` and the library's read-only
``Searcher``, with the matcher's ``SearchFilter``), and the ranked files are merged over
recent windows with hysteresis (``app.suggestions``) or published as they are.

Falling behind: if the ring overran the reader, or more than ``max_lag_seconds`` wait to be
read, the worker jumps to the newest audio, restarts its stream state and counts the frames
it skipped.

A capture looks back at least ``CAPTURE_LOOKBACK_SECONDS`` and takes the last hit whose own
window peaks above the gate (not the loudest). A capture asked for shortly after a hit has
heard only the start of it. When its window was
cut short by the end of the span (not by the next hit), the worker analyses the full window
once the ring holds it and publishes it again with reason 'capture-full' (same onset), so
the answer for the whole sound follows the instant one.

Captures never wait behind live analysis: ``capture`` copies the span it needs (audio and
onsets the worker has seen) under a short state lock and runs the encoder and the index on
the caller's thread, alongside whatever window the worker is analysing (the encoder allows
concurrent runs).

Latency of an update (``latency_ms``): from the moment the last frame of its window was in
the capture ring to the moment the update is published (window end -> published); for a
capture, from the request to the publication. What the producer waited is
``SuggestionUpdate.since_onset_ms`` at the moment the answer is shown.

Threads: ``start``/``stop`` from the owning thread; ``set_mode``, ``set_profile``,
``set_index``, ``set_searcher``, ``set_filter``, ``subscribe``, ``latest``, ``recent_onsets``, ``stats``, ``capture`` and
``search_file`` from any thread. Subscribers run on the matcher thread for live updates and
on the caller's thread for ``capture`` and ``search_file``: keep them short and hand work to
your own thread or event loop.
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

from app.decode import read_mono
from app.index import VectorIndex
from app.library import Searcher
from app.match_profiles import MODES, MatchProfile, ProfileError
from app.onsets import Onset, OnsetDetector, OnsetParams, detect_onsets, sensitivity_to_delta
from app.paths import library_dir as resolve_library_dir
from app.query import FILE_RERANK_DEPTH, MAX_QUERY_SECONDS, SearchFilter, SearchResult, embed_query
from app.rerank import FileReranker
from app.rerank_worker import RerankWorker
from app.suggestions import Suggestion, SuggestionMerger, SuggestionUpdate, ranked
from engine.mixdown import mono_mix
from engine.ring import RingOverrun, RingUnderrun
from models.encoder import MODEL_SAMPLE_RATE, Encoder
from engine.errors import SampleScoutError

__all__ = ["InputConditioner", "LiveMatcher", "Suggestion", "SuggestionUpdate", "MatcherError"]

# Medium quality: 3.6 ms of resampler delay from 48 kHz instead of 16 ms for "HQ" (the
# passband ends near 20 kHz instead of 21 kHz; only the top mel band or two see it).
RESAMPLE_QUALITY = "MQ"
# The stream resampler gives its last outputs only once it has seen the input after them
# (MQ, in 64-frame blocks: 5-19 ms of output held back from 48 or 96 kHz, up to 27 ms from
# 32 kHz and 40 ms from 22.05 kHz). A window due inside them is not kept waiting:
# ``InputConditioner.tail`` makes them from the recent input, after this much exact output...
TAIL_CONTEXT_SAMPLES = 480
# ...from the device-rate input kept this long.
RECENT_INPUT_SECONDS = 0.25
# A tail's last samples are made as if the input stopped there (the resampler's filter
# spreads a sample over 1-2 ms at MQ): a fade that the decay check must not take for the hit's.
TAIL_SETTLING_SAMPLES = 128
MAX_READ_SECONDS = 0.25        # frames read from the ring at once (a step reads all it holds)
RECENT_ONSETS = 64
# Suggestions an update carries at most (the pads page through them 16 at a time): captures
# ask the index for this many files; live updates carry what the merger holds, up to this.
KEEP_SUGGESTIONS = 64
LATENCY_HISTORY = 512
# Progressive answers (one-shot): a hit is looked up from its attack, again as more of it
# arrives, and a last time when its analysis window is complete or cut short.
ATTACK_SECONDS = 0.1
REFINE_SECONDS = (0.25, 0.5)
# A hit's analysis window also ends where it has decayed: with the first 20 ms frame (after
# the attack) whose peak is DECAY_DB below the hit's peak so far, or below the gate. That
# quiet frame is the last of the window: the decay is known the moment it is complete, so
# the final answer need not wait any longer. The encoder zero-pads what is cut, the way it
# pads a library's short files.
DECAY_DB = 45.0
DECAY_FRAME_SECONDS = 0.02
# A capture looks back at least this far for the last hit above the gate.
CAPTURE_LOOKBACK_SECONDS = 3.5
STAGES = ("attack", "refined", "final")
# A final answer this late skips the re-ranker when more waits behind it (a later hit, another
# due window); late with nothing behind it (a stall of a loaded machine between spaced hits),
# it re-ranks: the worker has time, and the answer is far better
RERANK_LATE_SECONDS = 0.1
# With no window pending in one-shot mode (between hits), the worker reads the ring this
# often instead of every poll_interval: an onset found up to this late still opens its
# windows long before its attack window is due (ATTACK_SECONDS), and a listening worker
# that would wake 500 times a second costs a tenth of a core on input that is silence
IDLE_POLL_SECONDS = 0.01


class MatcherError(SampleScoutError):
    """A one-line, user-facing problem of the matcher (bad mode, unreadable query...)."""


@dataclass
class _Window:
    start: int                # model-rate sample (absolute)
    end: int
    onset: int | None         # model-rate sample of the onset, if any
    reason: str               # 'onset', 'rolling', or 'capture-full' (a capture's full window)
    stage: str = "final"      # 'attack' | 'refined' | 'final' (see STAGES)
    checked: int = 0          # model sample up to which the decay was looked for


def write_circular(buffer: np.ndarray, position: int, samples: np.ndarray) -> None:
    """Write ``samples`` into the circular ``buffer`` as the stream's samples from
    ``position`` on (only the last ``buffer.size`` of them when there are more). Any thread
    that owns the buffer."""
    size = buffer.size
    if samples.size > size:
        position += samples.size - size
        samples = samples[-size:]
    at = position % size
    first = min(samples.size, size - at)
    buffer[at:at + first] = samples[:first]
    buffer[:samples.size - first] = samples[first:]


def read_circular(buffer: np.ndarray, start: int, end: int) -> np.ndarray:
    """The stream's samples ``start`` to ``end`` (within the last ``buffer.size``) from the
    circular ``buffer``, as a new array."""
    return buffer[np.arange(start, end) % buffer.size]


class _KnownInput:
    """The model-rate input known at one step of the worker: the history up to
    ``model_end`` and after it the conditioner's held-back tail, made on first need (most
    steps need none). Worker thread."""

    def __init__(self, model_end: int, conditioner: "InputConditioner"):
        self.model_end = model_end
        self._conditioner = conditioner
        self._held = conditioner.held_back()
        self._tail: np.ndarray | None = None

    @property
    def reach(self) -> int:
        """The end of the known input: what the tail will hold until it is made."""
        return self.model_end + (self._held if self._tail is None else len(self._tail))

    def tail(self) -> np.ndarray:
        if self._tail is None:
            self._tail = self._conditioner.tail()
        return self._tail

    def holds(self, end: int) -> bool:
        """Whether the input up to ``end`` is known (the tail made only if it must be)."""
        return end <= self.model_end or (end <= self.reach
                                         and end <= self.model_end + len(self.tail()))

    def settled_end(self) -> int:
        """The end of the input that the decay check may read: the tail less its last
        ``TAIL_SETTLING_SAMPLES``."""
        return self.model_end + max(0, len(self.tail()) - TAIL_SETTLING_SAMPLES)


class InputConditioner:
    """Device-rate input blocks (frames, channels) -> model-rate mono: the input chain, the
    mix to mono, the resampler. ``stream`` keeps the resampler's state from block to block
    (the live worker); ``whole`` converts one span by itself (a capture from the ring). The
    chain keeps its own state across both. The matcher's worker thread, or the capture's
    caller while the worker is stopped."""

    def __init__(self, sample_rate: int, chain=None):
        self.sample_rate = int(sample_rate)
        self.chain = chain
        self._resampler = None
        self.reset()

    def reset(self) -> None:
        """A new continuous stream (start, or after a jump)."""
        self._resampler = (soxr.ResampleStream(self.sample_rate, MODEL_SAMPLE_RATE, 1, dtype="float32",
                                               quality=RESAMPLE_QUALITY)
                           if self.sample_rate != MODEL_SAMPLE_RATE else None)
        self._taken = self._given = 0       # device-rate samples in, model-rate samples out
        self._recent = np.zeros(int(RECENT_INPUT_SECONDS * self.sample_rate) + 1, np.float32)
        # a tail starts at a model sample that falls on a device sample: multiples of these
        common = math.gcd(self.sample_rate, MODEL_SAMPLE_RATE)
        self._model_step = MODEL_SAMPLE_RATE // common
        self._device_step = self.sample_rate // common

    def _mono(self, block: np.ndarray) -> np.ndarray:
        if self.chain is not None:
            block = self.chain.process(block, self.sample_rate)
        return mono_mix(block) if block.shape[1] > 1 else block[:, 0]

    def stream(self, block: np.ndarray) -> np.ndarray:
        mono = self._mono(block)
        if self._resampler is not None:
            mono = np.ascontiguousarray(mono, dtype=np.float32)
            self._remember(mono)
            mono = self._resampler.resample_chunk(mono, last=False)
            self._given += mono.size
        return np.asarray(mono, dtype=np.float32)

    def held_back(self) -> int:
        """Model-rate samples the input already holds that ``stream`` has not given yet
        (0 without a resampler)."""
        if self._resampler is None:
            return 0
        return max(0, self._taken * MODEL_SAMPLE_RATE // self.sample_rate - self._given)

    def tail(self) -> np.ndarray:
        """The ``held_back`` samples, made now from the recent input by a resampling of its
        own (aligned with the stream's: it starts on a model sample that falls on a device
        sample). Equal to what ``stream`` gives later but for the last few milliseconds,
        which are made as if the input stopped there (a few percent off). Empty when there
        are none or the recent input no longer reaches back far enough (a long read)."""
        count = self.held_back()
        if count == 0:
            return np.zeros(0, np.float32)
        first = max(0, self._given - TAIL_CONTEXT_SAMPLES) // self._model_step * self._model_step
        start = first // self._model_step * self._device_step
        size = self._recent.size
        if self._taken - start > size:
            return np.zeros(0, np.float32)
        made = soxr.resample(read_circular(self._recent, start, self._taken),
                             self.sample_rate, MODEL_SAMPLE_RATE,
                             quality=RESAMPLE_QUALITY)
        return np.asarray(made[self._given - first:self._given - first + count], dtype=np.float32)

    def _remember(self, mono: np.ndarray) -> None:
        write_circular(self._recent, self._taken, mono)
        self._taken += mono.size

    def whole(self, block: np.ndarray) -> np.ndarray:
        mono = self._mono(block)
        if self.sample_rate != MODEL_SAMPLE_RATE:
            mono = soxr.resample(mono, self.sample_rate, MODEL_SAMPLE_RATE, quality=RESAMPLE_QUALITY)
        return np.asarray(mono, dtype=np.float32)


def _onset_params(profile: MatchProfile) -> OnsetParams:
    return OnsetParams(gate_db=profile.gate_db, delta_db=sensitivity_to_delta(profile.onset_sensitivity),
                       min_gap_s=profile.min_onset_gap_seconds)


def decay_end(audio: np.ndarray, gate_db: float) -> int | None:
    """Where a hit starting at ``audio[0]`` has decayed (see DECAY_DB): the sample index
    just after the first quiet frame after the attack, or None while it still sounds. Any
    thread."""
    frame = int(DECAY_FRAME_SECONDS * MODEL_SAMPLE_RATE)
    n = audio.size // frame
    first = int(round(ATTACK_SECONDS / DECAY_FRAME_SECONDS))
    if n <= first:
        return None
    peaks = np.abs(audio[:n * frame]).reshape(n, frame).max(axis=1)
    floor = np.maximum(np.maximum.accumulate(peaks) * 10.0 ** (-DECAY_DB / 20.0),
                       10.0 ** (gate_db / 20.0))
    quiet = np.flatnonzero(peaks[first:] < floor[first:])
    return int((first + quiet[0] + 1) * frame) if quiet.size else None


def _peak_db(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


class LiveMatcher:
    """Suggestions from the live input (see module docstring)."""

    def __init__(self, library, ring, sample_rate: int, *, profile: MatchProfile,
                 input_chain=None, encoder: Encoder | None = None, index: VectorIndex | None = None,
                 history_seconds: float = 12.0, max_lag_seconds: float = 2.0,
                 poll_interval: float = 0.002, rerank_process: bool = False):
        """``library``: a ``Searcher`` (``Library.searcher()``), or a library dir whose
        library hands one out (over ``index`` when given). ``rerank_process``: while
        running, re-rank in a process of its own (``app.rerank_worker``), so that this
        process's other threads (a window's) never wait for the GIL behind it."""
        if profile.mode not in MODES:
            raise ProfileError(f"mode must be one of {', '.join(MODES)}, not {profile.mode!r}")
        if isinstance(library, Searcher):
            searcher = library
        else:
            from app.library import Library
            with Library(resolve_library_dir(library), encoder=encoder or Encoder(threads=1)) as lib:
                searcher = lib.searcher(index)
        self.searcher = searcher
        self.library_dir = searcher.directory
        self.ring = ring
        self.sample_rate = int(sample_rate)
        self.conditioner = InputConditioner(self.sample_rate, input_chain)
        self.encoder = searcher.encoder
        self._filter: SearchFilter | None = None
        self._profile = profile
        self._history_len = int(history_seconds * MODEL_SAMPLE_RATE)
        self.max_lag_frames = int(max_lag_seconds * self.sample_rate)
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        # Guards the worker's stream state (history, onsets, segment origin) against captures.
        self._state_lock = threading.Lock()
        self._subscribers: list = []
        self._merger = SuggestionMerger(profile.hysteresis)
        self._merged_onset: int | None = None     # the hit whose stages the merger last took
        self._before_onset = self._merger.snapshot()
        self._latest: SuggestionUpdate | None = None
        self._seq = 0
        self._onsets: collections.deque[tuple[int, float]] = collections.deque(maxlen=RECENT_ONSETS)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._running = False
        self._last_window: tuple[int, np.ndarray] | None = None
        self._stats = {"queries": 0, "windows_gated": 0, "empty_windows": 0, "onsets": 0,
                       "skipped_frames": 0, "jumps": 0, "errors": 0, "last_error": "",
                       "captures": 0, "last_latency_ms": None, "windows_with_tail": 0,
                       "ring_reads": 0}
        self._latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_HISTORY)
        self._position = 0
        self._rerank_process = bool(rerank_process)
        self._rerank_worker = None
        self._reset_stream(0)

    # ---- control (any thread) ---------------------------------------------------------

    @property
    def profile(self) -> MatchProfile:
        return self._profile

    @property
    def mode(self) -> str:
        return self._profile.mode

    def start(self) -> None:
        """Start listening from the newest frame of the ring, at once. With
        ``rerank_process`` the re-ranking process starts too; until it has loaded (a few
        seconds) re-ranking runs here, so no hit played meanwhile goes unheard."""
        if self._thread is not None:
            return
        self._stop.clear()
        if self._rerank_process and self._rerank_worker is None and isinstance(self.searcher.reranker, FileReranker):
            # the worker answers from this process while its child loads, or if it fails
            self._rerank_worker = RerankWorker(self.searcher.reranker)
            with self._lock:
                self.searcher = self.searcher.with_reranker(self._rerank_worker)
        self._position = self.ring.end_frame
        self._reset_stream(self._position)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="live-matcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(10)
        self._thread = None
        self._running = False
        worker, self._rerank_worker = self._rerank_worker, None
        if worker is not None:
            with self._lock:
                if self.searcher.reranker is worker:
                    self.searcher = self.searcher.with_reranker(worker.local)
            worker.close()

    def rerank_stats(self) -> dict | None:
        """The re-ranking process's counters and its last re-ranking's milliseconds per
        stage (``RerankWorker.stats``), or None when re-ranking runs in this process. Any
        thread."""
        worker = self._rerank_worker
        return worker.stats() if worker is not None else None

    def set_mode(self, mode: str) -> None:
        """Switch between 'one-shot' and 'rolling' while running."""
        self.set_profile(self._profile.with_mode(mode))

    def set_profile(self, profile: MatchProfile) -> None:
        if profile.mode not in MODES:
            raise ProfileError(f"mode must be one of {', '.join(MODES)}, not {profile.mode!r}")
        with self._lock:
            self._profile = profile
            self._merger.hysteresis = profile.hysteresis

    @property
    def input_chain(self):
        return self.conditioner.chain

    @property
    def index(self) -> VectorIndex:
        return self.searcher.index

    @property
    def reranker(self):
        return self.searcher.reranker

    def set_index(self, index: VectorIndex) -> None:
        """Query ``index`` from now on (after a rescan); queries already running finish on the
        old one. Any thread."""
        if index is None:
            raise MatcherError("set_index needs an index")
        self.set_searcher(self.searcher.with_index(index))

    def set_searcher(self, searcher: Searcher) -> None:
        """Search through ``searcher`` from now on (the library reopened after a rescan).
        Any thread."""
        worker = self._rerank_worker
        if worker is not None and isinstance(searcher.reranker, FileReranker) \
                and searcher.reranker.reranker.model_path == worker.reranker.model_path:
            searcher = searcher.with_reranker(worker)
        with self._lock:
            self.searcher = searcher

    def set_filter(self, search_filter: SearchFilter | None) -> None:
        """Narrow every later search (live, capture, file) to what ``search_filter`` accepts;
        None: the whole library. Any thread."""
        with self._lock:
            self._filter = search_filter

    @property
    def filter(self) -> SearchFilter | None:
        return self._filter

    def subscribe(self, callback) -> None:
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

    def unsubscribe(self, callback) -> None:
        with self._lock:
            self._subscribers = [c for c in self._subscribers if c is not callback]

    def latest(self) -> SuggestionUpdate | None:
        return self._latest

    def recent_onsets(self) -> list[int]:
        """Device-frame positions of the most recent onsets, oldest first."""
        with self._lock:
            return [f for f, _ in self._onsets]

    def last_window(self) -> tuple[int, np.ndarray] | None:
        """(device frame where it starts, model-rate audio) of the last analysed window."""
        return self._last_window

    def stats(self) -> dict:
        with self._lock:
            out = dict(self._stats)
            lat = np.asarray(self._latencies, dtype=np.float64)
        out["latency_p50_ms"] = float(np.percentile(lat, 50)) if lat.size else None
        out["latency_p95_ms"] = float(np.percentile(lat, 95)) if lat.size else None
        out["behind_frames"] = max(0, self.ring.end_frame - self._position) if self._running and self.ring is not None else 0
        out["mode"] = self._profile.mode
        out["profile"] = self._profile.name
        out["running"] = self._running
        return out

    def latencies(self) -> list[float]:
        """Latencies (ms) of the recent live updates, oldest first."""
        with self._lock:
            return list(self._latencies)

    # ---- queries from outside the live stream -------------------------------------------

    def capture(self, seconds: float | None = None) -> SuggestionUpdate | None:
        """Look up the last ``seconds`` of input (default: the profile's capture span, at
        least ``CAPTURE_LOOKBACK_SECONDS``): its last hit above the gate, else the whole span.

        Returns the published update, or None if the span is silent. Any thread; runs on the
        caller's thread without waiting for the live analysis.
        """
        requested = time.monotonic()
        seconds = self._capture_seconds(seconds)
        if self._running:
            return self._capture_live(seconds, requested)
        return self._capture_from_ring(seconds, requested)

    def search_file(self, path, k: int | None = None) -> SuggestionUpdate:
        """Search by example with an audio file, through the same query path. Any thread.

        Raises DecodeError for unreadable files and MatcherError for silent ones.
        """
        started = time.perf_counter()
        audio = read_mono(path, MODEL_SAMPLE_RATE, max_seconds=MAX_QUERY_SECONDS)
        update = self.query_audio(audio, k=k, reason="file", started=started,
                                  rerank_depth=FILE_RERANK_DEPTH, by_kind=True)
        if update is None:
            raise MatcherError(f"{os.fspath(path)}: the query is silent, nothing to search for")
        return update

    def query_audio(self, audio_44k: np.ndarray, *, k: int | None = None, reason: str = "file",
                    started: float | None = None,
                    rerank_depth: int | None = None,
                    by_kind: bool = False) -> SuggestionUpdate | None:
        """Query with model-rate mono audio (no hysteresis) and publish; None if silent.
        ``k`` files (default: as many as a capture keeps); ``rerank_depth`` as
        ``app.query.search`` (None: the re-ranker's own). The index's order is published
        first (stage 'index') when the re-ranker runs, its list when it is done."""
        started = time.perf_counter() if started is None else started
        profile = self._profile
        k = k or KEEP_SUGGESTIONS
        shown = max(k or 0, profile.hysteresis.display)
        level_db = _peak_db(np.asarray(audio_44k))

        def unranked(results: list[SearchResult]) -> None:
            self._publish(ranked(results, shown), None, level_db, reason,
                          (time.perf_counter() - started) * 1000.0, record_latency=False,
                          stage="index")
        results = self._lookup(audio_44k, max(k or 0, profile.k), rerank_depth=rerank_depth,
                               unranked=unranked, by_kind=by_kind)
        if results is None:
            return None
        return self._publish(ranked(results, shown), None, level_db, reason,
                             (time.perf_counter() - started) * 1000.0, record_latency=False)

    def _lookup(self, audio_44k: np.ndarray, k: int, *, rerank: bool = True,
                rerank_depth: int | None = None, timings: dict | None = None,
                unranked: Callable[[list[SearchResult]], None] | None = None,
                by_kind: bool = False,
                ) -> list[SearchResult] | None:
        """The one query path: model-rate mono audio -> the k best files under the current
        filter; None when the audio holds nothing to search for. ``rerank=False``: the
        index's order alone (a hit's early stages, which must be fast). ``timings``: each
        stage's milliseconds are added to it ("embed", then ``app.query.search``'s);
        ``unranked`` as ``app.query.search``; ``by_kind``: the answers after the first are the
        same kind of sound (a search by example). Any thread."""
        started = time.perf_counter()
        query = embed_query(self.encoder, audio_44k)
        if timings is not None:
            timings["embed"] = (time.perf_counter() - started) * 1e3
        if len(query) == 0:
            return None
        return self.searcher.search(query, k, filter=self._filter, rerank=rerank,
                                    rerank_depth=rerank_depth, timings=timings,
                                    unranked=unranked, by_kind=by_kind)

    # ---- worker thread --------------------------------------------------------------------

    def _reset_stream(self, device_frame: int) -> None:
        """New continuous segment starting at ``device_frame`` (start, or after a jump)."""
        with self._state_lock:
            self._reset_stream_locked(device_frame)

    def _reset_stream_locked(self, device_frame: int) -> None:
        profile = self._profile
        self._active_profile = profile
        self._seg_frame = device_frame
        self._seg_model = getattr(self, "_model_end", 0)
        self._model_end = self._seg_model
        if not hasattr(self, "_history"):
            self._history = np.zeros(self._history_len, dtype=np.float32)
        self.conditioner.reset()
        self._detector = OnsetDetector(MODEL_SAMPLE_RATE, _onset_params(profile))
        self._pending: list[_Window] = []
        self._seg_onsets: list[tuple[int, Onset]] = []   # (absolute model sample, onset)
        self._next_rolling_end = self._seg_model + int(profile.window_seconds * MODEL_SAMPLE_RATE)
        self._reads: collections.deque[tuple[float, int, int]] = collections.deque(maxlen=256)
        self._level_db = -math.inf

    def _model_to_frame(self, m: int) -> int:
        return self._seg_frame + int(math.ceil((m - self._seg_model) * self.sample_rate / MODEL_SAMPLE_RATE))

    def _warm_up(self) -> None:
        """One query of a short click before listening: the encoder's and the index's first
        run is slow, and the first hit's attack must not pay for it. Not re-ranked: reading
        its candidates' files here (the re-ranking process is still loading) took seconds
        on a loaded machine, and the worker then skipped the audio that arrived meanwhile.
        Worker thread."""
        click = np.zeros(int(0.05 * MODEL_SAMPLE_RATE), np.float32)
        click[:64] = 0.5
        try:
            self._lookup(click, 1, rerank=False)
        except Exception:  # noqa: BLE001 — a real query reports the problem
            pass

    def _run(self) -> None:
        self._warm_up()
        while not self._stop.is_set():
            try:
                worked = self._step()
            except Exception as exc:  # noqa: BLE001 — keep listening; report in stats
                with self._lock:
                    self._stats["errors"] += 1
                    self._stats["last_error"] = f"{type(exc).__name__}: {exc}"
                worked = False
                self._stop.wait(0.05)
            if not worked:
                self._stop.wait(self._poll_seconds())

    def _poll_seconds(self) -> float:
        """How long the worker waits before it reads the ring again: ``poll_interval`` while
        a window is pending or in rolling mode, ``IDLE_POLL_SECONDS`` between hits. Worker
        thread (a capture adding a window meanwhile waits at most the longer one)."""
        if self._pending or self._active_profile.mode != "one-shot":
            return self.poll_interval
        return max(self.poll_interval, IDLE_POLL_SECONDS)

    def _step(self) -> bool:
        """Read what the ring holds, analyse due windows. True if windows were analysed or
        the stream jumped (the next step comes at once)."""
        if self._profile is not self._active_profile:
            self._switch_profile()
        t_end, end = time.monotonic(), self.ring.end_frame
        if end - self._position > self.max_lag_frames:
            self._jump(end, self._position)
            return True
        # all that the ring holds is read before anything is answered: a worker behind (a
        # stall) then knows every hit waiting, answers only their latest stages, and
        # re-ranks only the last (``RERANK_LATE_SECONDS``)
        did = False
        while (frames := min(end - self._position, int(MAX_READ_SECONDS * self.sample_rate))) > 0:
            block = np.empty((frames, self.ring.channels), dtype=np.float32)
            try:
                self.ring.read_into(block, self._position)
            except RingOverrun as exc:
                self._jump(self.ring.end_frame, exc.start_frame)
                return True
            except RingUnderrun:
                return False
            self._position += frames
            self._consume(block, t_end, end)
            did = True
        if did:
            with self._lock:
                self._stats["ring_reads"] += 1
        return self._analyse_due()

    def _jump(self, end: int, lost_from: int) -> None:
        target = max(end - int(0.1 * self.sample_rate), self._position)
        with self._lock:
            self._stats["skipped_frames"] += max(0, target - lost_from)
            self._stats["jumps"] += 1
        self._position = target
        self._reset_stream(target)

    def _switch_profile(self) -> None:
        new, old = self._profile, self._active_profile
        self._active_profile = new
        if _onset_params(new) != _onset_params(old):
            self._jump(self.ring.end_frame, self._position)
            return
        if new.mode != old.mode:
            with self._state_lock:
                self._pending = []
            window = int(new.window_seconds * MODEL_SAMPLE_RATE)
            self._next_rolling_end = max(self._model_end, self._seg_model + window)

    def _consume(self, block: np.ndarray, t_end: float, ring_end: int) -> None:
        """``ring_end``: the ring's frame clock at ``t_end`` (monotonic), read just before
        the block."""
        mono = self.conditioner.stream(block)
        onsets = self._detector.push(mono)
        with self._state_lock:
            if mono.size:
                self._append_history(mono)
            self._reads.append((t_end, ring_end, self._model_end))
            for onset in onsets:
                self._on_onset(onset)

    def _append_history(self, mono: np.ndarray) -> None:
        write_circular(self._history, self._model_end, mono)
        self._model_end += mono.size

    def _history_span(self, start: int, end: int) -> np.ndarray:
        oldest = max(self._seg_model, self._model_end - self._history_len)
        start, end = max(start, oldest), min(end, self._model_end)
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        return read_circular(self._history, start, end)

    def _on_onset(self, onset: Onset) -> None:
        m = self._seg_model + onset.sample
        profile = self._active_profile
        with self._lock:
            self._onsets.append((self._model_to_frame(m), onset.strength))
            self._stats["onsets"] += 1
        self._seg_onsets.append((m, onset))
        if len(self._seg_onsets) > 4 * RECENT_ONSETS:
            del self._seg_onsets[:-RECENT_ONSETS]
        if profile.mode != "one-shot":
            return
        pre = int(profile.pre_roll_seconds * MODEL_SAMPLE_RATE)
        start = max(self._seg_model, m - pre)
        if profile.cut_at_next_onset:
            self._cut_pending(start)
        full = int(profile.window_seconds * MODEL_SAMPLE_RATE)
        for seconds in (ATTACK_SECONDS, *REFINE_SECONDS):
            stage = "attack" if seconds == ATTACK_SECONDS else "refined"
            if int((seconds + profile.pre_roll_seconds) * MODEL_SAMPLE_RATE) < full:
                end = start + int((seconds + profile.pre_roll_seconds) * MODEL_SAMPLE_RATE)
                self._pending.append(_Window(start, end, m, "onset", stage))
        self._pending.append(_Window(start, start + full, m, "onset", "final", checked=start))

    def _cut_pending(self, at: int, onset: int | None = None) -> None:
        """End the pending windows (of ``onset``, or all) at model sample ``at``: a final
        window is cut short, an earlier stage that would reach past it is dropped (the
        final one, due now, supersedes it). Under the state lock."""
        kept = []
        for w in self._pending:
            if w.end > at and (onset is None or w.onset == onset):
                if w.stage != "final":
                    continue
                w.end = max(w.start + 1, at)
            kept.append(w)
        self._pending = kept

    def _cut_decayed(self, known: "_KnownInput") -> None:
        """Cut the open final windows of hits that have decayed (worker thread, under the
        state lock). Looked for as soon as a frame of the hit is known (the resampler's
        held-back tail included)."""
        frame = int(DECAY_FRAME_SECONDS * MODEL_SAMPLE_RATE)
        gate = self._active_profile.gate_db
        for w in [w for w in self._pending if w.reason == "onset" and w.stage == "final"]:
            reach = known.reach
            if w.end <= reach or (reach - w.start) // frame == (w.checked - w.start) // frame:
                continue
            reach = known.settled_end()
            if reach <= w.checked:
                continue
            w.checked = reach
            at = decay_end(self._span(w.start, reach, known), gate)
            if at is not None:
                self._cut_pending(w.start + at, w.onset)

    def _span(self, start: int, end: int, known: "_KnownInput") -> np.ndarray:
        """Model-rate input from ``start`` to ``end``: the history, then the held-back tail
        where ``end`` reaches into it. Worker thread."""
        audio = self._history_span(start, min(end, known.model_end))
        if end <= known.model_end:
            return audio
        return np.concatenate([audio, known.tail()[max(0, start - known.model_end):end - known.model_end]])

    def _analyse_due(self) -> bool:
        profile = self._active_profile
        due: list[_Window] = []
        known = _KnownInput(self._model_end, self.conditioner)
        if self._pending:
            with self._state_lock:          # captures add windows from their own threads
                self._cut_decayed(known)
                ready = [known.holds(w.end) for w in self._pending]
                due = [w for w, r in zip(self._pending, ready) if r]
                self._pending = [w for w, r in zip(self._pending, ready) if not r]
        if profile.mode != "one-shot" and self._model_end >= self._next_rolling_end:
            hop = max(1, int(profile.hop_seconds * MODEL_SAMPLE_RATE))
            window = int(profile.window_seconds * MODEL_SAMPLE_RATE)
            steps = (self._model_end - self._next_rolling_end) // hop
            end = self._next_rolling_end + steps * hop      # only the newest due window
            self._next_rolling_end = end + hop
            due.append(_Window(end - window, end, None, "rolling"))
        # behind (a slow query, a loaded machine): an earlier stage whose later one is due
        # too would only delay the better answer
        later = {(w.onset, w.reason) for w in due if w.stage == "final"}
        due = [w for w in due if w.stage == "final" or (w.onset, w.reason) not in later]
        for n, w in enumerate(due):
            self._analyse(w, profile, known, backlog=n + 1 < len(due) or self._later_onset(w))
        return bool(due)

    def _later_onset(self, w: _Window) -> bool:
        """Whether an onset after ``w``'s own has been heard (its hit waits to be answered).
        Worker thread."""
        if w.onset is None:
            return False
        with self._state_lock:
            return bool(self._seg_onsets) and self._seg_onsets[-1][0] > w.onset

    def _analyse(self, w: _Window, profile: MatchProfile, known: "_KnownInput", *,
                 backlog: bool = False) -> None:
        """Answer window ``w``; ``backlog``: more waits to be answered after it (a final
        answer that is late then skips the re-ranker). Worker thread."""
        begun = time.monotonic()
        audio = self._span(w.start, w.end, known)   # the worker is the only writer: no lock
        if w.end > known.model_end:
            with self._lock:
                self._stats["windows_with_tail"] += 1
        if w.reason == "capture-full":
            onset_frame = self._model_to_frame(w.onset) if w.onset is not None else None
            self._capture_query(audio, onset_frame, self._arrival_time(w.end), profile,
                                seed_merger=True, reason="capture-full")
            return
        level = _peak_db(audio)
        if level < profile.gate_db:
            with self._lock:
                self._stats["windows_gated"] += 1
            return
        self._last_window = (self._model_to_frame(max(w.start, self._seg_model)), audio)
        # the re-ranker reads files (hundreds of ms on a loaded machine): a late final answer
        # with more behind it skips it, so dense playing never falls behind
        late_s = (self.ring.end_frame - self._model_to_frame(w.end)) / self.sample_rate
        timings = {"wait": (begun - self._arrival_time(w.end)) * 1e3}
        rerank = w.stage == "final" and (late_s < RERANK_LATE_SECONDS or not backlog)
        results = self._lookup(audio, profile.k, rerank=rerank, timings=timings)
        if results is None:
            with self._lock:
                self._stats["empty_windows"] += 1
            return
        merging = time.monotonic()
        if w.stage != "final":
            self._prepare_rerank(results)
        arrived = self._arrival_time(w.end)
        onset_frame = self._model_to_frame(w.onset) if w.onset is not None else None
        onset_time = self._arrival_time(w.onset) if w.onset is not None else None
        with self._lock:
            self._stats["queries"] += 1
            # a hit's later stages replace its earlier ones in the merged list
            if w.onset is not None and w.onset == self._merged_onset:
                self._merger.restore(self._before_onset)
            elif w.onset is not None:
                self._merged_onset, self._before_onset = w.onset, self._merger.snapshot()
            # each hit ranks by its own scores (its stages replace each other above);
            # rolling windows are more looks at one sound: hysteresis
            self._merger.update(results, time.monotonic(), new_sound=w.onset is not None)
            suggestions = self._merger.suggestions(max(KEEP_SUGGESTIONS, profile.hysteresis.display))
        now = time.monotonic()
        timings["merge"] = (now - merging) * 1e3
        self._publish(suggestions, onset_frame, level, w.reason, (now - arrived) * 1000.0,
                      record_latency=True, mode=profile.mode, stage=w.stage, onset_time=onset_time,
                      trace=tuple(timings.items()))

    def _prepare_rerank(self, results: list[SearchResult]) -> None:
        """An early stage's files are most of what the final stage re-ranks: have the
        re-ranking process read them now, while the hit still sounds. Worker thread."""
        reranker = self.searcher.reranker
        # only the re-ranking process reads ahead; re-ranking here would read them on this
        # thread, in the way of the answer
        if isinstance(reranker, RerankWorker):
            reranker.prepare(results)

    def _arrival_time(self, model_end: int) -> float:
        """When (time.monotonic()) the ring held the device frame of model sample
        ``model_end``: from the ring's frame clock sampled with the time at each read."""
        frame = self._model_to_frame(model_end)
        for t_end, ring_end, model_after in self._reads:
            if model_after >= model_end:
                return t_end - max(0, ring_end - frame) / self.sample_rate
        # the resampler still holds it back (a window answered from the held-back tail):
        # the last read, whose input reaches past it
        if self._reads and self._reads[-1][1] >= frame:
            t_end, ring_end, _ = self._reads[-1]
            return t_end - (ring_end - frame) / self.sample_rate
        return time.monotonic()

    def _publish(self, suggestions: tuple[Suggestion, ...], onset_frame: int | None, level_db: float,
                 reason: str, latency_ms: float, *, record_latency: bool,
                 mode: str | None = None, stage: str = "final",
                 onset_time: float | None = None, trace: tuple = ()) -> SuggestionUpdate:
        with self._lock:
            self._seq += 1
            update = SuggestionUpdate(seq=self._seq, onset_frame=onset_frame, mode=mode or self._profile.mode,
                                      suggestions=suggestions, level_db=level_db, reason=reason,
                                      latency_ms=latency_ms, stage=stage, onset_time=onset_time,
                                      trace=trace)
            self._latest = update
            subscribers = self._subscribers
            if record_latency:
                self._latencies.append(latency_ms)
                self._stats["last_latency_ms"] = latency_ms
        for callback in subscribers:
            try:
                callback(update)
            except Exception as exc:  # noqa: BLE001 — a bad subscriber must not stop matching
                with self._lock:
                    self._stats["errors"] += 1
                    self._stats["last_error"] = f"subscriber: {type(exc).__name__}: {exc}"
        return update

    # ---- capture ------------------------------------------------------------------------

    def _capture_seconds(self, seconds: float | None) -> float:
        if seconds is None:
            return max(self._profile.capture_span, CAPTURE_LOOKBACK_SECONDS)
        seconds = float(seconds)
        if not 0.05 <= seconds <= 20.0:
            raise MatcherError(f"capture span must be 0.05..20 s, got {seconds:g}")
        return seconds

    def _capture_window(self, onsets: list[tuple[int, Onset]], span_start: int, span_end: int,
                        profile: MatchProfile, audio_of) -> tuple[int, int, int | None]:
        """The last hit in the span whose own window (to the next onset, the decay or the
        window's length) peaks above the gate; else the whole span. ``audio_of(start, end)``
        gives model-rate audio by absolute sample."""
        pre = int(profile.pre_roll_seconds * MODEL_SAMPLE_RATE)
        inside = sorted(m for m, _ in onsets if span_start <= m < span_end)
        for i in range(len(inside) - 1, -1, -1):
            m = inside[i]
            start = max(span_start, m - pre)
            end = min(span_end, start + int(profile.window_seconds * MODEL_SAMPLE_RATE))
            if profile.cut_at_next_onset and i + 1 < len(inside):
                end = min(end, max(start + 1, inside[i + 1] - pre))
            audio = audio_of(start, end)
            if _peak_db(audio) < profile.gate_db:
                continue
            decayed = decay_end(audio, profile.gate_db)
            return start, (start + decayed if decayed is not None else end), m
        return span_start, span_end, None

    def _capture_live(self, seconds: float, requested: float) -> SuggestionUpdate | None:
        with self._state_lock:
            profile = self._active_profile
            span_end = self._model_end
            span_start = max(self._seg_model, span_end - int(seconds * MODEL_SAMPLE_RATE))
            start, end, onset = self._capture_window(list(self._seg_onsets), span_start, span_end, profile,
                                                     self._history_span)
            audio = self._history_span(start, end)
            onset_frame = self._model_to_frame(onset) if onset is not None else None
            full_end = start + int(profile.window_seconds * MODEL_SAMPLE_RATE)
            if onset is not None and end == span_end < full_end and _peak_db(audio) >= profile.gate_db:
                # later onsets cut this window like any other (see _on_onset)
                self._pending.append(_Window(start, full_end, onset, "capture-full", checked=start))
        return self._capture_query(audio, onset_frame, requested, profile, seed_merger=True)

    def _capture_from_ring(self, seconds: float, requested: float) -> SuggestionUpdate | None:
        """Matcher stopped: read the ring directly and analyse the span offline."""
        profile = self._profile
        frames = min(int(seconds * self.sample_rate), self.ring.end_frame)
        if frames <= 0:
            return None
        start_frame, block = self.ring.read_latest(frames)
        mono = self.conditioner.whole(block)
        onsets = [(o.sample, o) for o in detect_onsets(mono, MODEL_SAMPLE_RATE, _onset_params(profile))]
        start, end, onset = self._capture_window(onsets, 0, mono.size, profile, lambda a, b: mono[a:b])
        onset_frame = (start_frame + int(onset * self.sample_rate / MODEL_SAMPLE_RATE)
                       if onset is not None else None)
        return self._capture_query(mono[start:end], onset_frame, requested, profile, seed_merger=False)

    def _capture_query(self, audio: np.ndarray, onset_frame: int | None, requested: float,
                       profile: MatchProfile, *, seed_merger: bool,
                       reason: str = "capture") -> SuggestionUpdate | None:
        level = _peak_db(audio)
        if reason == "capture":
            with self._lock:
                self._stats["captures"] += 1
        if level < profile.gate_db:
            return None
        self._last_window = (onset_frame if onset_frame is not None else -1, audio)
        results = self._lookup(audio, max(profile.k, KEEP_SUGGESTIONS))
        if results is None:
            return None
        suggestions = ranked(results, max(KEEP_SUGGESTIONS, profile.hysteresis.display))
        if seed_merger:
            with self._lock:
                self._merger.reset()
                self._merger.update(results[:profile.k], time.monotonic())
        return self._publish(suggestions, onset_frame, level, reason,
                             (time.monotonic() - requested) * 1000.0, record_latency=False,
                             mode=profile.mode)
