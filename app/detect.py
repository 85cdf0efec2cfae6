"""Which library samples a track uses, and where (``samplescout detect``).

Four stages, each a function of this module:

1. ``collect_hits``: the track is cut into blocks every ``HOP_SECONDS``, and a short block
   at each onset (``track_blocks``), where a one-shot under other parts stands out; each goes
   through the encoder (in batches) and the index. So that a sample played faster or slower
   is found too, the same is done on the track resampled by each ratio of ``SPEED_RATIOS``
   (±1 and ±2 semitones, 0.9 and 1.1 tempo): a sample the track plays ``r`` times faster is
   heard at its own speed in the track stretched by ``r``. A hit of a library file's block at
   offset ``o`` in a track block starting at ``t`` puts the file's start at ``t - o / r``.
2. ``aggregate``: files are ranked by their hits' *contrast*: how far a hit's similarity
   stands above the mean similarity of all hits of its track block, in units of their
   spread. Under a dense mix every file scores high against every block; the file the
   block really holds stands out.
3. ``screen``: the ``SCREEN_CANDIDATES`` best files are fitted on the waveform at a low rate
   (``app.detect_fit.SCREEN_RATE``), at every speed ratio, around the places their hits put
   them, against the same sound at blind places of the track; the ``FIT_CANDIDATES`` that
   stand out most get the full fit.
4. ``verify``: the full waveform fit (``app.dup_verify.VERIFY_RATE``) at the screen's speeds
   and place sets each detection's speed and start, and its rank: the fit's contrast against
   blind places, so sounds that fit everywhere (a dull kick) stop winning. Other places
   where the file's hits put it are kept as repeats when the sound fits there too.

Two lanes. The stages above run on the track as it is, and again on its *foreground*
(``app.foreground``: what does not repeat in it), where a one-shot played once over a
repeating backing stands far clearer: onset blocks only, at the semitone ratios; the
foreground's best ``SOLO_SCREEN_CANDIDATES`` files are screened at ``SOLO_SCREEN_RATE`` (a hat
keeps little at ``SCREEN_RATE``) near their onsets, and its ``SOLO_FIT_CANDIDATES`` best get
the full fit on the foreground. Bright sounds of this lane (hats, cymbals, shakers, rims:
``app.detect_fit.band_of``) are screened and fitted on a high band of the foreground
instead (``BrightSounds``), where their detail is. Both lanes' detections are ranked
together; a file found in both is one entry with the occurrences of both.

Hits of one file whose starts agree within ``MERGE_SECONDS`` are one occurrence; occurrences
at other starts are repeats, listed in the same entry.

Threads: the thread that owns the ``Library``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import soxr

from app.catalog import FileRow
from app.decode import DecodeError, read_mono
from app.detect_fit import (HIGH_BANDS, SCREEN_RATE, Fit, HighBand, TrackView, at_speed, band_of, fit_places,
                            repeat_lags)
from app.dup_verify import VERIFY_RATE
from app.foreground import foreground
from app.library import Library
from app.onsets import detect_onsets
from app.priority import scan_workers
from models import frontend
from models.encoder import BLOCK_FRAMES, MODEL_SAMPLE_RATE
from models.preprocess import SILENCE_PEAK_DB, TARGET_PEAK_DB

HOP_SECONDS = 0.5
SPEED_RATIOS = (1.0, 2 ** (1 / 12), 2 ** (-1 / 12), 2 ** (2 / 12), 2 ** (-2 / 12), 1.1, 0.9)
ONESHOT_RATIOS = SPEED_RATIOS[:5]   # one-shots: the semitone steps (tempo is pitch for them)
ONESHOT_SECONDS = 0.5
ONSETS_PER_SECOND = 3.0
HITS_PER_BLOCK = 30
SCREEN_CANDIDATES = 240   # best files by contrast that the quick waveform screen reads
FIT_CANDIDATES = 40       # best files of the screen that get the full waveform fit
SOLO_SCREEN_CANDIDATES = 240   # the same, for files found in the track's foreground
SOLO_FIT_CANDIDATES = 20
SOLO_SCREEN_RATE = 5512   # Hz: a hat or a snare has little left at SCREEN_RATE
SOLO_PAD_SECONDS = 0.5    # foreground hits come from onset blocks: their places are close
SOLO_FIT_SECONDS = 2.0    # how much of a sound the foreground's screen fits
BRIGHT_FIT_SECONDS = 0.5  # how much of a bright sound is fitted (its attack holds the detail)
SCREEN_PLACES = 3         # places (best hits first) where the screen tries a file
SCREEN_PAD_SECONDS = 2.0  # how far from a hit's place the screen looks (a loop matches itself a bar away)
FIT_SPEEDS = 2            # the screen's best speeds that the full fit tries
FIT_PAD_SECONDS = 0.1     # how far the full fit may move the screen's start
REFINE_SECONDS = 1.0      # how far a repeat's start may move from its hit's place
MIN_CONTRAST = 4.0        # a full fit this far above the blind places verifies a detection
REPEAT_FIT = 0.6          # a repeat must fit this share of the best occurrence's correlation
EMBEDDING_WEIGHT = 0.5    # rank: fit contrast + this times the best hit's contrast
MAX_OCCURRENCES = 16      # occurrences of one file fitted (and so reported) at most
MAX_PLACES = max(MAX_OCCURRENCES, SCREEN_PLACES)   # distinct places a candidate keeps
MERGE_SECONDS = 0.75
MIN_SCORE = 0.5           # an unverified occurrence whose best block scores below this is not reported
MAX_TRACK_SECONDS = 20 * 60.0
MAX_SOUND_SECONDS = 9.5   # how much of a library file the fits read (FIT_SECONDS at 0.84 speed)
BATCH = 64
_TARGET_PEAK = 10.0 ** (TARGET_PEAK_DB / 20.0)
_SILENCE_PEAK = 10.0 ** (SILENCE_PEAK_DB / 20.0)


@dataclass
class Occurrence:
    start_s: float
    end_s: float
    score: float

    def as_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "score": round(self.score, 4)}


@dataclass
class Detection:
    """One library file found in the track: where, how well, at which speed."""
    file: FileRow
    ratio: float              # the track plays the file this many times faster
    occurrences: list[Occurrence] = field(default_factory=list)
    fit: float = 0.0          # waveform correlation with the track at the best occurrence
    fit_contrast: float = 0.0  # how far that fit stands above the sound's fits at blind places
    contrast: float = 0.0     # the best hit's similarity above its block's mean, over the spread
    verified: bool = False

    @property
    def rank_score(self) -> float:
        fit = self.fit_contrast if self.verified else 0.0
        return fit + EMBEDDING_WEIGHT * self.contrast

    @property
    def score(self) -> float:
        return max(o.score for o in self.occurrences)

    def as_dict(self) -> dict:
        return {"path": self.file.path, "score": round(self.score, 4),
                "pitch_semitones": round(float(12.0 * np.log2(self.ratio)), 2),
                "tempo_ratio": round(self.ratio, 4), "kind": self.file.kind,
                "duration_s": self.file.duration, "waveform_correlation": round(self.fit, 4),
                "occurrences": [o.as_dict() for o in sorted(self.occurrences, key=lambda o: o.start_s)]}


@dataclass
class DetectTrace:
    """What each stage of one ``detect`` kept, by file id, and its seconds (for benchmarks
    and diagnosis): files any block hit, the candidates the screen read, the files given
    the full fit."""
    hit_files: set[int] = field(default_factory=set)
    screened: list[int] = field(default_factory=list)
    fitted: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BrightSounds:
    """The foreground lane's bright sounds and where they are fitted: the foreground in each
    band some of them use (``views``) and, by file id, each bright file's band and its first
    BRIGHT_FIT_SECONDS at the band's rate (``sounds``)."""
    views: dict[HighBand, TrackView]
    sounds: dict[int, tuple[HighBand, np.ndarray]]

    @classmethod
    def of(cls, foreground_audio: np.ndarray, sounds: dict[int, tuple[HighBand, np.ndarray]]) -> "BrightSounds":
        """``foreground_audio`` at MODEL_SAMPLE_RATE, seen in the bands of ``sounds``."""
        views = {}
        for band in {band for band, _ in sounds.values()}:
            audio = soxr.resample(foreground_audio, MODEL_SAMPLE_RATE, band.rate)
            views[band] = TrackView.of(band.of(audio), band.rate)
        return cls(views, sounds)

    def fitting(self, file_id: int) -> tuple[TrackView, Callable[[float], np.ndarray]] | None:
        """Where file ``file_id`` is fitted and its sound there as a function of the speed
        ratio (``verify``'s ``sound_at``); None when the file is not bright."""
        if file_id not in self.sounds:
            return None
        band, sound = self.sounds[file_id]
        return self.views[band], lambda ratio: band.of(at_speed(sound, band.rate, ratio))


@dataclass(frozen=True)
class Hit:
    """One index hit of one track block: the file, where its start falls in the track, the
    similarity, that similarity above the mean of the block's hits over their spread, the
    speed ratio."""
    file_id: int
    anchor_s: float
    score: float
    contrast: float
    ratio: float
    solo: bool = False        # a block of the track's foreground (``app.foreground``)


@dataclass
class Candidate:
    """A file's hits, best contrast first, and the distinct places they put it."""
    file: FileRow
    hits: list[Hit]
    places: list[float]

    @property
    def contrast(self) -> float:
        return self.hits[0].contrast

    @property
    def score(self) -> float:
        return max(h.score for h in self.hits)

    @functools.cached_property
    def _anchors_and_scores(self) -> tuple[np.ndarray, np.ndarray]:
        anchors = np.maximum(0.0, np.fromiter((h.anchor_s for h in self.hits), float, len(self.hits)))
        return anchors, np.fromiter((h.score for h in self.hits), float, len(self.hits))

    def score_near(self, place: float) -> float:
        """The best similarity of the hits that put the file within MERGE_SECONDS of
        ``place`` (0.0 when none does)."""
        anchors, scores = self._anchors_and_scores
        near = scores[np.abs(anchors - place) <= MERGE_SECONDS]
        return float(near.max()) if near.size else 0.0


def distinct_places(anchors: np.ndarray, limit: int = MAX_PLACES) -> list[float]:
    """Places in the order of ``anchors`` (best hit first), each kept only when it lies
    more than MERGE_SECONDS from every place kept before it; at most ``limit``."""
    anchors = np.maximum(0.0, np.asarray(anchors, dtype=float))
    open_ = np.ones(anchors.size, dtype=bool)
    places: list[float] = []
    while len(places) < limit:
        left = np.flatnonzero(open_)
        if left.size == 0:
            break
        place = float(anchors[left[0]])
        places.append(place)
        open_ &= np.abs(anchors - place) > MERGE_SECONDS
    return places


def track_blocks(audio: np.ndarray, hop_frames: int | None,
                 onset_samples: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Encoder blocks of mono model-rate audio every ``hop_frames`` analysis frames, with the
    encoder's per-block level (``models.preprocess`` step 3) and no onset trimming, then one
    block per onset in ``onset_samples`` holding ONESHOT_SECONDS of frames and silence after
    them (a one-shot under other parts is heard there without the seconds of music that
    follow it): (log-mel blocks (n, 100, 96), start samples (n,)). Silent blocks are left out."""
    audio = np.asarray(audio, dtype=np.float64)
    hop = frontend.HOP_LENGTH
    mel = frontend.power_mel(audio)
    n_frames = mel.shape[0]
    n_seg = -(-audio.size // hop)
    padded = np.zeros(n_seg * hop)
    padded[:audio.size] = np.abs(audio)
    seg_peaks = padded.reshape(n_seg, hop).max(axis=1) if n_seg else np.zeros(0)
    oneshot_frames = max(1, int(round(ONESHOT_SECONDS * MODEL_SAMPLE_RATE / hop)))
    spans = [] if hop_frames is None else [
        (s, s + BLOCK_FRAMES) for s in range(0, max(0, n_frames - BLOCK_FRAMES) + 1, hop_frames)]
    if onset_samples is not None:
        spans += [(int(o) // hop, int(o) // hop + oneshot_frames) for o in onset_samples
                  if int(o) // hop < n_frames]
    blocks, kept = [], []
    for start, stop in spans:
        rows = mel[start:stop]
        peaks = seg_peaks[max(0, start - 1):stop]
        peak = float(peaks.max()) if peaks.size else 0.0
        if peak < _SILENCE_PEAK:
            continue
        gain = _TARGET_PEAK / peak
        block = np.zeros((BLOCK_FRAMES, frontend.N_MELS), dtype=np.float32)
        block[:rows.shape[0]] = frontend.log_compress(rows * (gain * gain))
        blocks.append(block)
        kept.append(start * hop)
    if not blocks:
        return np.zeros((0, BLOCK_FRAMES, frontend.N_MELS), np.float32), np.zeros(0, np.int64)
    return np.stack(blocks), np.asarray(kept, dtype=np.int64)


def track_onsets(audio: np.ndarray) -> np.ndarray:
    """Samples of the strongest onsets of the track (ONSETS_PER_SECOND at most), in order."""
    onsets = detect_onsets(np.asarray(audio, dtype=np.float32), MODEL_SAMPLE_RATE)
    budget = int(ONSETS_PER_SECOND * audio.size / MODEL_SAMPLE_RATE) + 1
    chosen = sorted(onsets, key=lambda o: -o.strength)[:budget]
    return np.sort(np.asarray([o.sample for o in chosen], dtype=np.int64))


def detect(library: Library, track: str | os.PathLike, *, min_score: float = MIN_SCORE,
           limit: int = 20, progress: Callable[[int, int], None] | None = None,
           trace: DetectTrace | None = None, workers: int | None = None) -> list[Detection]:
    """The library files heard in ``track``, best first (at most ``limit``).
    ``progress(done, total)`` is called as stages advance; ``trace`` (when given) is
    filled with what each stage kept; ``workers``: threads for the heavy stages
    (``default_workers()`` when None; the result does not depend on it)."""
    trace = trace if trace is not None else DetectTrace()
    clock = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.monotonic()
        trace.seconds[stage] = round(now - clock, 3)
        clock = now

    total = len(SPEED_RATIOS) + 2
    audio = read_mono(track, MODEL_SAMPLE_RATE, max_seconds=MAX_TRACK_SECONDS)
    lap("decode")
    solo = foreground(audio, MODEL_SAMPLE_RATE)
    lap("foreground")
    hits = collect_hits(library, audio, solo, progress=progress, total=total, workers=workers)
    trace.hit_files = {h.file_id for h in hits}
    lap("hits")
    rows = library.catalog.files_by_id(trace.hit_files)
    lanes = [aggregate([h for h in hits if not h.solo], rows)[:SCREEN_CANDIDATES],
             aggregate([h for h in hits if h.solo], rows)[:SOLO_SCREEN_CANDIDATES]]
    lap("aggregate")
    trace.screened = sorted({c.file.id for lane in lanes for c in lane})
    files = {c.file.id: c.file for lane in lanes for c in lane}
    solo_ids = {c.file.id for c in lanes[1]}
    with _ordered_map(lambda row: _sound(row, row.id in solo_ids), list(files.values()), workers) as results:
        read = dict(zip(files, results))
    sounds = {i: sound for i, (sound, _) in read.items()}
    bright = BrightSounds.of(solo, {i: b for i, (_, b) in read.items() if b is not None})
    lap("read sounds")
    views = [_views(audio, SCREEN_RATE), _views(solo, SOLO_SCREEN_RATE)]
    picked = [screen(lanes[0], sounds, views[0][1], workers=workers)[:FIT_CANDIDATES],
              screen(lanes[1], sounds, views[1][1], pad_s=SOLO_PAD_SECONDS,
                     seconds=SOLO_FIT_SECONDS, bright=bright, workers=workers)[:SOLO_FIT_CANDIDATES]]
    if progress is not None:
        progress(total - 1, total)
    trace.fitted = sorted({c.file.id for lane in picked for c, _ in lane})
    lap("screen")

    def fit_job(c: Candidate, fits: list[Fit], lane: int) -> tuple:
        fitting = bright.fitting(c.file.id) if lane == 1 else None
        if fitting is not None:
            view, sound_at = fitting
            return c, fits, sound_at, view
        source = sounds.get(c.file.id)
        sound_at = None if source is None else functools.partial(at_speed, source, VERIFY_RATE)
        return c, fits, sound_at, views[lane][0]

    jobs = [fit_job(c, fits, n) for n, lane in enumerate(picked) for c, fits in lane]
    with _ordered_map(lambda job: verify(*job), jobs, workers) as verified:
        detections = list(verified)
    lap("verify")
    fitted = {d.file.id for d in detections}
    detections += [_unverified(c) for c in lanes[0][:max(limit, FIT_CANDIDATES)]
                   if c.file.id not in fitted]
    detections = [d for d in detections if d.verified or d.score >= min_score]
    detections.sort(key=lambda d: -d.rank_score)
    best: dict[int, Detection] = {}
    for d in detections:                     # a file found in both lanes: one entry
        kept = best.setdefault(d.file.id, d)
        if kept is not d and d.verified:
            kept.occurrences = _without_overlaps(kept.occurrences + d.occurrences)
    if progress is not None:
        progress(total, total)
    return list(best.values())[:limit]


def _views(audio: np.ndarray, screen_rate: int) -> tuple[TrackView, TrackView]:
    """Model-rate track audio as the full fit's view and a screen's view at ``screen_rate``."""
    at_fit_rate = soxr.resample(np.asarray(audio, np.float32), MODEL_SAMPLE_RATE, VERIFY_RATE)
    return (TrackView.of(at_fit_rate, VERIFY_RATE),
            TrackView.of(soxr.resample(at_fit_rate, VERIFY_RATE, screen_rate), screen_rate))


def collect_hits(library: Library, audio: np.ndarray, solo: np.ndarray, *,
                 progress: Callable[[int, int], None] | None = None, total: int | None = None,
                 workers: int | None = None) -> list[Hit]:
    """Stage 1: every track block's index hits, at every speed ratio (module docstring), and
    the onset blocks of ``solo`` (the track's foreground) at the semitone ratios, as hits
    marked ``solo``. The speed passes' resampling, front-end and encoder run on ``workers`` threads (default:
    the cores, fewer while a live session runs: ``app.priority.scan_workers``); the index
    and catalog lookups stay on the calling thread."""
    index, catalog, encoder = library.index, library.catalog, library.encoder
    hop_frames = max(1, int(round(HOP_SECONDS * MODEL_SAMPLE_RATE / frontend.HOP_LENGTH)))
    onsets = track_onsets(audio)
    solo_onsets = track_onsets(solo)

    def embedded(job: tuple[float, bool]) -> tuple[np.ndarray, np.ndarray]:
        # any thread: the encoder session runs concurrently, soxr and numpy release the GIL
        ratio, alone = job
        source = solo if alone else audio
        stretched = source if ratio == 1.0 else soxr.resample(
            source, MODEL_SAMPLE_RATE, MODEL_SAMPLE_RATE * ratio, quality="HQ")
        if alone:
            blocks, starts = track_blocks(stretched, None, solo_onsets * ratio)
        else:
            blocks, starts = track_blocks(
                stretched, hop_frames, onsets * ratio if ratio in ONESHOT_RATIOS else None)
        vectors = [encoder.embed_blocks(blocks[b:b + BATCH]) for b in range(0, len(blocks), BATCH)]
        return starts, (np.concatenate(vectors) if vectors else np.zeros((0, index.dim), np.float32))

    jobs = [(r, False) for r in SPEED_RATIOS] + [(r, True) for r in ONESHOT_RATIOS]
    hits: list[Hit] = []
    with _ordered_map(embedded, jobs, workers) as passes:
        for n, ((ratio, alone), (starts, vectors)) in enumerate(zip(jobs, passes)):
            if progress is not None:
                progress(n * len(SPEED_RATIOS) // len(jobs), total or len(SPEED_RATIOS))
            hits += _pass_hits(index, catalog, ratio, starts, vectors, alone)
    return hits


def default_workers() -> int:
    """Threads a detection uses: the cores, fewer while a live session runs in this process
    (``app.priority.scan_workers``), so the audio keeps its headroom."""
    return scan_workers(os.cpu_count() or 1)


@contextlib.contextmanager
def _ordered_map(fn: Callable, items, workers: int | None):
    """``fn`` over ``items`` on up to ``workers`` threads (``default_workers()`` when None),
    yielding the results in the order of ``items``; one worker maps on the calling thread.
    Leaving the block waits for the threads."""
    items = list(items)
    workers = max(1, min(default_workers() if workers is None else int(workers), len(items) or 1))
    if workers == 1:
        yield map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="detect") as pool:
        yield pool.map(fn, items)


def _pass_hits(index, catalog, ratio: float, starts: np.ndarray, vectors: np.ndarray,
               solo: bool) -> list[Hit]:
    """The index hits of one speed pass's blocks (``starts`` in samples of the pass)."""
    hits: list[Hit] = []
    for b in range(0, len(vectors), BATCH):
        found = [index.search(v, HITS_PER_BLOCK) for v in vectors[b:b + BATCH]]
        offsets = catalog.window_starts(h.vector_id for row in found for h in row)
        for start, row in zip(starts[b:b + BATCH], found):
            if not row:
                continue
            t = start / (MODEL_SAMPLE_RATE * ratio)
            scores = np.asarray([h.score for h in row])
            # the floor keeps a block whose hits all tie from inflating its contrasts
            mean, spread = float(scores.mean()), max(float(scores.std()), 0.01)
            for h in row:
                anchor = t - offsets.get(h.vector_id, 0) / (MODEL_SAMPLE_RATE * ratio)
                hits.append(Hit(h.file_id, anchor, h.score, (h.score - mean) / spread, ratio, solo))
    return hits


def aggregate(hits: list[Hit], rows: dict[int, FileRow]) -> list[Candidate]:
    """Stage 2: one candidate per file, best contrast first, with the distinct places its
    hits put it (``distinct_places``: best hit first, MAX_PLACES at most)."""
    by_file: dict[int, list[Hit]] = {}
    for h in hits:
        if h.file_id in rows:
            by_file.setdefault(h.file_id, []).append(h)
    out = []
    for file_id, file_hits in by_file.items():
        file_hits.sort(key=lambda h: -h.contrast)
        anchors = np.fromiter((h.anchor_s for h in file_hits), float, len(file_hits))
        out.append(Candidate(rows[file_id], file_hits, distinct_places(anchors)))
    out.sort(key=lambda c: -c.contrast)
    return out


def screen(candidates: list[Candidate], sounds: dict[int, np.ndarray | None],
           track_screen: TrackView, *, pad_s: float = SCREEN_PAD_SECONDS,
           seconds: float | None = None, bright: BrightSounds | None = None,
           workers: int | None = None) -> list[tuple[Candidate, list[Fit]]]:
    """Stage 3: the candidates with their fits at every speed ratio at ``track_screen``'s
    rate, within ``pad_s`` of their first SCREEN_PLACES places (the first ``seconds`` of each
    sound; all of it when None), those whose sound stands out most from its blind places
    first (candidates are fitted on ``workers`` threads). The files of ``bright`` are
    fitted on their band's view instead."""
    def fits_of(c: Candidate) -> list[Fit]:
        fitting = bright.fitting(c.file.id) if bright is not None else None
        if fitting is not None:
            view, sound_at = fitting
        else:
            source = sounds.get(c.file.id)
            if source is None or source.size < 64:
                return []
            view, rate = track_screen, track_screen.rate
            if seconds is not None:
                source = source[:int(seconds * VERIFY_RATE)]
            low = soxr.resample(source, VERIFY_RATE, rate, quality="MQ")
            sound_at = functools.partial(at_speed, low, rate, quality="MQ")
        fits = []
        for ratio in SPEED_RATIOS:
            fit = fit_places(view, sound_at(ratio), c.places[:SCREEN_PLACES], pad_s, ratio)
            if fit is not None:
                fits.append(fit)
        fits.sort(key=lambda f: -f.contrast)
        return fits

    with _ordered_map(fits_of, candidates, workers) as all_fits:
        scored = [(c, fits) for c, fits in zip(candidates, all_fits) if fits]
    scored.sort(key=lambda cf: -cf[1][0].contrast)
    return scored


def verify(candidate: Candidate, screen_fits: list[Fit],
           sound_at: Callable[[float], np.ndarray] | None, track_fit: TrackView) -> Detection:
    """Stage 4: the full fit of one screened candidate at its best screen speeds and place;
    the detection's speed, occurrences and rank (module docstring). ``sound_at(ratio)``:
    the candidate's sound at ``track_fit``'s rate, played ``ratio`` times faster (None:
    its file could not be read)."""
    detection = _unverified(candidate)
    if sound_at is None:
        return detection
    best: tuple[Fit, np.ndarray] | None = None
    for s in screen_fits[:FIT_SPEEDS]:
        sound = sound_at(s.ratio)
        fit = fit_places(track_fit, sound, [s.start_s], FIT_PAD_SECONDS, s.ratio)
        if fit is not None and (best is None or fit.contrast > best[0].contrast):
            best = (fit, sound)
    if best is None:
        return detection
    fit, sound = best
    lags = repeat_lags(sound, track_fit.rate)
    if lags:    # a loop of repeating bars: its start may lie a bar or two from here
        shifted = fit_places(track_fit, sound, [fit.start_s + k * lag for lag in lags for k in (-2, -1, 1, 2)],
                             FIT_PAD_SECONDS, fit.ratio)
        if shifted is not None and shifted.correlation > fit.correlation:
            fit = shifted
    detection.fit, detection.fit_contrast = max(0.0, fit.correlation), fit.contrast
    if fit.contrast < MIN_CONTRAST:
        return detection
    detection.verified = True
    detection.ratio = fit.ratio
    length = (candidate.file.duration or 0.0) / fit.ratio
    found = [Occurrence(fit.start_s, fit.start_s + length, candidate.score)]
    for place in candidate.places[:MAX_OCCURRENCES]:
        if abs(place - fit.start_s) <= MERGE_SECONDS:
            continue
        repeat = fit_places(track_fit, sound, [place], REFINE_SECONDS, fit.ratio)
        if repeat is not None and repeat.correlation >= REPEAT_FIT * fit.correlation:
            found.append(Occurrence(repeat.start_s, repeat.start_s + length, candidate.score_near(place)))
    detection.occurrences = _without_overlaps(found)
    return detection


def _unverified(candidate: Candidate) -> Detection:
    """A candidate as its embedding hits place it: one occurrence per place, at the speed
    of its best hit."""
    best = candidate.hits[0]
    duration = candidate.file.duration or 0.0
    occurrences = []
    for place in candidate.places[:MAX_OCCURRENCES]:
        occurrences.append(Occurrence(place, place + duration / best.ratio, candidate.score_near(place)))
    return Detection(candidate.file, best.ratio, occurrences, contrast=candidate.contrast)


def _sound(row: FileRow, solo: bool = False
           ) -> tuple[np.ndarray | None, tuple[HighBand, np.ndarray] | None]:
    """The first MAX_SOUND_SECONDS of a library file at VERIFY_RATE (None when unreadable)
    and, for a file of the foreground lane (``solo``) that is bright
    (``app.detect_fit.band_of``), its band and its first BRIGHT_FIT_SECONDS at the band's
    rate (else None). A foreground file is decoded once, at the brightest band's rate."""
    rate = max(band.rate for band in HIGH_BANDS) if solo else VERIFY_RATE
    try:
        sound = np.asarray(read_mono(row.path, rate, max_seconds=MAX_SOUND_SECONDS), np.float64)
    except (DecodeError, OSError):
        return None, None
    if rate == VERIFY_RATE:
        return sound, None
    start = sound[:int(BRIGHT_FIT_SECONDS * rate)]
    at_verify_rate = soxr.resample(sound, rate, VERIFY_RATE)
    band = band_of(start, rate)
    if band is None:
        return at_verify_rate, None
    return at_verify_rate, (band, start if band.rate == rate else soxr.resample(start, rate, band.rate))


def _without_overlaps(occurrences: list[Occurrence]) -> list[Occurrence]:
    """Best first, an occurrence that overlaps a better one by more than a quarter of its
    length is the same one seen from a block that started inside it (a loop matches its
    own cyclic shifts)."""
    kept: list[Occurrence] = []
    for occ in sorted(occurrences, key=lambda o: -o.score):
        length = max(occ.end_s - occ.start_s, 1e-3)
        if all(min(occ.end_s, k.end_s) - max(occ.start_s, k.start_s) <= 0.25 * length for k in kept):
            kept.append(occ)
    return kept
