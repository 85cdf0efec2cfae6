"""Which library samples a track uses, and where (``samplescout detect``).

The track is cut into embedded blocks every ``HOP_SECONDS``; each block goes through the
encoder (in batches) and the index; so does a short block at each onset of the track
(``track_blocks``), where a one-shot under other parts stands out. So that a sample played faster or slower is found
too, the same is done on the track resampled by each ratio of ``SPEED_RATIOS`` (±1 and ±2
semitones, 0.9 and 1.1 tempo): a sample that the track plays ``r`` times faster is heard
at its own speed in the track stretched by ``r``. The encoder's own tolerance covers the
steps between.

Each hit of a library file's block at offset ``o`` in a track block starting at ``t`` puts
the file's start at ``t - o / r`` in the track. Hits of one file whose starts agree within
``MERGE_SECONDS`` are one occurrence (the consecutive blocks of a loop, or the blocks that
all hold one hit); occurrences at other starts are repeats, listed in the same entry. The
start of each reported occurrence is then refined by cross-correlating the file's audio
(at the found speed) with the track around it.

Threads: the thread that owns the ``Library``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import soxr

from app.catalog import FileRow
from app.decode import DecodeError, read_mono
from app.dup_verify import VERIFY_RATE, correlation_curve
from app.library import Library
from app.onsets import detect_onsets
from models import frontend
from models.encoder import BLOCK_FRAMES, MODEL_SAMPLE_RATE
from models.preprocess import SILENCE_PEAK_DB, TARGET_PEAK_DB

HOP_SECONDS = 0.5
SPEED_RATIOS = (1.0, 2 ** (1 / 12), 2 ** (-1 / 12), 2 ** (2 / 12), 2 ** (-2 / 12), 1.1, 0.9)
ONESHOT_RATIOS = SPEED_RATIOS[:5]   # one-shots: the semitone steps (tempo is pitch for them)
ONESHOT_SECONDS = 0.5
ONSETS_PER_SECOND = 3.0
HITS_PER_BLOCK = 30
VERIFY_CANDIDATES = 80    # best files by embedding whose waveform is fitted to the track
FIT_WEIGHT = 1.0
MIN_RANK_FIT = 0.25       # below this waveform correlation a fit does not raise the rank
FIT_Z_FULL = 20.0         # a waveform fit this significant adds the full FIT_WEIGHT
MAX_OCCURRENCES = 16      # occurrences of one file fitted (and so reported) at most
FIT_OCCURRENCES = 1       # occurrences of a file (best by embedding) where its waveform is tried
MIN_FIT = 0.3             # waveform correlation that verifies an occurrence and moves its start
MERGE_SECONDS = 0.75
MIN_SCORE = 0.5           # an occurrence whose best block scores below this is not reported
MAX_TRACK_SECONDS = 20 * 60.0
BATCH = 64
REFINE_SECONDS = 1.0      # how far the cross-correlation may move a start
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
    fit_z: float = 0.0        # how unlikely that correlation is by chance (``_significance``)
    start_by_speed: dict[float, float] = field(default_factory=dict)   # best hit's start per speed

    @property
    def rank_score(self) -> float:
        if self.fit < MIN_RANK_FIT:   # a long loop reaches a high z on a faint likeness
            return self.score
        return self.score + FIT_WEIGHT * min(1.0, self.fit_z / FIT_Z_FULL)

    @property
    def score(self) -> float:
        return max(o.score for o in self.occurrences)

    def as_dict(self) -> dict:
        return {"path": self.file.path, "score": round(self.score, 4),
                "pitch_semitones": round(float(12.0 * np.log2(self.ratio)), 2),
                "tempo_ratio": round(self.ratio, 4), "kind": self.file.kind,
                "duration_s": self.file.duration, "waveform_correlation": round(self.fit, 4),
                "occurrences": [o.as_dict() for o in sorted(self.occurrences, key=lambda o: o.start_s)]}


@dataclass(frozen=True)
class _Hit:
    file_id: int
    anchor_s: float     # where the file's start falls in the track
    score: float
    ratio: float


def track_blocks(audio: np.ndarray, hop_frames: int,
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
    spans = [(s, s + BLOCK_FRAMES) for s in range(0, max(0, n_frames - BLOCK_FRAMES) + 1, hop_frames)]
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
           limit: int = 20, progress: Callable[[int, int], None] | None = None) -> list[Detection]:
    """The library files heard in ``track``, best first (at most ``limit``)."""
    audio = read_mono(track, MODEL_SAMPLE_RATE, max_seconds=MAX_TRACK_SECONDS)
    index, catalog, encoder = library.index, library.catalog, library.encoder
    hop_frames = max(1, int(round(HOP_SECONDS * MODEL_SAMPLE_RATE / frontend.HOP_LENGTH)))
    onsets = track_onsets(audio)
    hits: list[_Hit] = []
    for n, ratio in enumerate(SPEED_RATIOS):
        if progress is not None:
            progress(n, len(SPEED_RATIOS))
        stretched = audio if ratio == 1.0 else soxr.resample(
            audio, MODEL_SAMPLE_RATE, MODEL_SAMPLE_RATE * ratio, quality="HQ")
        blocks, starts = track_blocks(
            stretched, hop_frames, onsets * ratio if ratio in ONESHOT_RATIOS else None)
        for b in range(0, len(blocks), BATCH):
            vectors = encoder.embed_blocks(blocks[b:b + BATCH])
            found = [index.search(v, HITS_PER_BLOCK) for v in vectors]
            offsets = catalog.window_starts(h.vector_id for row in found for h in row)
            for start, row in zip(starts[b:b + BATCH], found):
                t = start / (MODEL_SAMPLE_RATE * ratio)
                for h in row:
                    anchor = t - offsets.get(h.vector_id, 0) / (MODEL_SAMPLE_RATE * ratio)
                    hits.append(_Hit(h.file_id, anchor, h.score, ratio))
    if progress is not None:
        progress(len(SPEED_RATIOS), len(SPEED_RATIOS))
    detections = _aggregate(hits, catalog.files_by_id({h.file_id for h in hits}), min_score)
    detections = detections[:max(limit, VERIFY_CANDIDATES)]
    _refine_starts(detections, audio)
    detections.sort(key=lambda d: -d.rank_score)
    return detections[:limit]


def _aggregate(hits: list[_Hit], rows: dict[int, FileRow], min_score: float) -> list[Detection]:
    by_file: dict[int, list[_Hit]] = {}
    for h in hits:
        if h.score >= min_score and h.file_id in rows:
            by_file.setdefault(h.file_id, []).append(h)
    out = []
    for file_id, file_hits in by_file.items():
        # best hits first: each opens an occurrence unless one already holds its anchor
        file_hits.sort(key=lambda h: -h.score)
        chosen: list[_Hit] = []
        for h in file_hits:
            if all(abs(h.anchor_s - c.anchor_s) > MERGE_SECONDS for c in chosen):
                chosen.append(h)
        best = chosen[0]
        row = rows[file_id]
        duration = row.duration or 0.0
        occurrences = [Occurrence(max(0.0, c.anchor_s), max(0.0, c.anchor_s) + duration / c.ratio,
                                  c.score) for c in chosen]
        # where each speed's own best hit puts the file: the speed that fits the waveform
        # best is tried there (the best hit overall may sit elsewhere, at another speed)
        by_speed: dict[float, float] = {}
        for h in file_hits:   # best first
            by_speed.setdefault(h.ratio, max(0.0, h.anchor_s))
        out.append(Detection(row, best.ratio, occurrences, start_by_speed=by_speed))
    out.sort(key=lambda d: -d.score)
    return out


def _refine_starts(detections: list[Detection], audio_44k: np.ndarray) -> None:
    """Move each occurrence's start to where the file's waveform (at the found speed)
    correlates best with the track, within REFINE_SECONDS."""
    if not detections:
        return
    track = soxr.resample(np.asarray(audio_44k, np.float32), MODEL_SAMPLE_RATE, VERIFY_RATE)
    track = np.asarray(track, dtype=np.float64)
    pad = int(REFINE_SECONDS * VERIFY_RATE)
    for d in detections:
        try:
            source = read_mono(d.file.path, VERIFY_RATE, max_seconds=30.0)
        except (DecodeError, OSError):
            continue
        # the speed and the place: where the waveform fits best, at each speed, around the
        # occurrences the embeddings liked best and around that speed's own best hit
        tried = [o.start_s for o in sorted(d.occurrences, key=lambda o: -o.score)[:FIT_OCCURRENCES]]
        fits = []
        for ratio in SPEED_RATIOS:
            sound = _at_speed(source, ratio)
            if sound.size < 64:
                continue
            starts = set(tried)
            if ratio in d.start_by_speed:
                starts.add(d.start_by_speed[ratio])
            for start in sorted(starts):
                fit = _fit(track, sound, start, pad)
                if fit is not None:
                    fits.append((fit[0], ratio, sound, start))
        if not fits:
            continue
        corr, ratio, sound, fitted_at = max(fits, key=lambda f: f[0])
        d.fit = max(0.0, corr)
        d.fit_z = _significance(d.fit, sound)
        if corr < MIN_FIT:
            # not verified on the waveform: only the occurrences that score like the best
            top = max(o.score for o in d.occurrences)
            d.occurrences = [o for o in d.occurrences if o.score >= top - 0.03]
            continue
        d.ratio = ratio
        length = (d.file.duration or 0.0) / ratio
        placed = _fit(track, sound, fitted_at, pad)
        found = Occurrence(placed[1], placed[1] + length, d.score)
        verified = [found]
        for occ in sorted(d.occurrences, key=lambda o: -o.score)[:MAX_OCCURRENCES]:
            fit = _fit(track, sound, occ.start_s, pad)
            # a repeat must fit the track about as well as the best occurrence
            if fit is not None and fit[0] >= max(MIN_FIT, 0.5 * corr):
                verified.append(Occurrence(fit[1], fit[1] + length, occ.score))
        d.occurrences = _without_overlaps(verified)


def _significance(corr: float, sound: np.ndarray) -> float:
    """Fisher z of a correlation over the sound's independent samples, about twice its zero
    crossings: a short, dull kick reaches 0.6 against any drum of a track at some lag,
    while 0.3 over two seconds of a broadband loop cannot happen by chance."""
    if corr <= 0.0 or sound.size < 2:
        return 0.0
    loud = np.abs(sound) >= np.max(np.abs(sound)) * 0.01
    crossings = int(np.count_nonzero(np.signbit(sound[1:]) != np.signbit(sound[:-1]) & loud[1:]))
    n_eff = max(4, 2 * crossings)
    return float(np.arctanh(min(corr, 0.999)) * np.sqrt(n_eff - 3))


def _at_speed(sound: np.ndarray, ratio: float) -> np.ndarray:
    """The first seconds of a sound played ``ratio`` times faster, at VERIFY_RATE."""
    if ratio != 1.0:
        sound = soxr.resample(sound, VERIFY_RATE, VERIFY_RATE / ratio, quality="HQ")
    return np.asarray(sound[:int(4.0 * VERIFY_RATE)], dtype=np.float64)


def _fit(track: np.ndarray, sound: np.ndarray, start_s: float, pad: int) -> tuple[float, float] | None:
    """(correlation, start in seconds) of ``sound`` placed best in the track near ``start_s``."""
    lo = max(0, int(start_s * VERIFY_RATE) - pad)
    window = track[lo:int(start_s * VERIFY_RATE) + pad + sound.size]
    if window.size <= sound.size:
        return None
    lags, corr = correlation_curve(window, sound)
    best = int(np.argmax(corr))
    if corr[best] <= -1.0 or lags[best] < 0:
        return None
    return float(corr[best]), (lo + int(lags[best])) / VERIFY_RATE


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
