"""Tempo (BPM) of loops: onset-strength autocorrelation with a bar-length prior.

Recipe: a spectral-flux onset envelope (log-magnitude STFT, ~5.8 ms hop), its circular
autocorrelation, a comb score over 60-200 BPM weighted by a log-normal tempo prior
(octave errors), then two loop priors: a loop is a whole number of 4/4 bars long, so the
tempi that make it 1, 2, 4, 8 or 16 bars are preferred when the audio supports them,
and a tempo written in the file name is taken when the audio agrees with it. Abstains
(``bpm=None``) on one-shots (< 1.5 s) and when the periodicity is weak.

Pure functions; any thread may call them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from models.spectrum import as_mono, decimate, magnitude

MIN_BPM, MAX_BPM = 60.0, 200.0
MIN_SECONDS = 1.25           # shorter files are one-shots (one bar at 192 BPM is 1.25 s)
MAX_SECONDS = 30.0           # analysed length cap (bounded time)
ANALYSIS_RATE = 22050        # higher rates are decimated first (onsets need no more)
BAR_COUNTS = (1, 2, 4, 8, 16)
BEATS_PER_BAR = 4
BAR_TOLERANCE = 0.015        # relative tempo distance that still counts as "whole bars"
PRIOR_BPM = 130.0
COMB_MULTIPLES = (0.5, 1, 2, 3, 4)
COMB_WEIGHTS = (0.0, 1.0, 0.5, 0.0, 0.0)
PRIOR_OCTAVES = 0.6          # std-dev of the log2 tempo prior
COMMIT_CONFIDENCE = 0.45
OFF_BAR_FACTOR = 0.7
BAR_SUPPORT = 0.65           # share of the best tempo's prior-weighted support a whole-bar tempo needs
BAR_BONUS = 0.3
HINT_SUPPORT = 0.5            # a named tempo needs this share of the best tempo's periodicity
_EXTENSION = re.compile(r"\.(wav|wave|flac|ogg|oga|opus|aif|aiff|aifc|mp3|m4a)$", re.IGNORECASE)
_HINT = re.compile(r"(?<![0-9.])(\d{2,3}(?:\.\d+)?)(?:\s*bpm)?(?![0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class TempoEstimate:
    bpm: float | None        # None: abstained (one-shot or no clear pulse)
    confidence: float        # 0..1


def estimate_tempo(audio: np.ndarray, sample_rate: int, *, name: str = "") -> TempoEstimate:
    """Estimate the tempo of ``audio`` (mono float32, any rate); ``name`` is the file name (a hint)."""
    audio = as_mono(audio)
    duration = audio.size / float(sample_rate)
    if duration < MIN_SECONDS or not np.any(audio):
        return TempoEstimate(None, 0.0)
    head = audio[: int(MAX_SECONDS * sample_rate)]
    envelope, fps = onset_envelope(*decimate(head, sample_rate, ANALYSIS_RATE))
    acf = _circular_acf(envelope)
    if acf is None:
        return TempoEstimate(None, 0.0)
    grid = np.exp(np.linspace(math.log(MIN_BPM), math.log(MAX_BPM), 600))
    scores = np.array([_comb(acf, 60.0 * fps / b) for b in grid])
    weighted = np.clip(scores, 0.0, None) * _prior(grid)
    best = int(np.argmax(weighted))
    if weighted[best] <= 0.0:
        return TempoEstimate(None, 0.0)
    bpm = _refine(acf, fps, float(grid[best]))

    def support(tempo: float) -> float:
        return max(0.0, _comb(acf, 60.0 * fps / tempo)) * _prior(tempo) / weighted[best]

    def confidence_of(tempo: float) -> float:
        """Periodicity at ``tempo``, lowered when its double or half is nearly as well supported."""
        own = support(tempo)
        rival = max((support(tempo * f) for f in (0.5, 2.0) if MIN_BPM * 0.7 <= tempo * f <= MAX_BPM * 1.3),
                    default=0.0) / max(own, 1e-9)
        periodicity = float(np.clip(_comb(acf, 60.0 * fps / tempo), 0.0, 1.0))
        return periodicity * float(np.clip(2.0 * (1.0 - rival), 0.0, 1.0)) ** 0.5

    hint = tempo_hint(name)
    strength = _comb(acf, 60.0 * fps / bpm)
    if hint is not None and _agrees(hint, bpm, _comb(acf, 60.0 * fps / hint) / max(strength, 1e-9)):
        bar = _bar_tempo(hint, duration)
        bpm = bar if bar is not None else hint
        return TempoEstimate(round(bpm, 2), min(1.0, confidence_of(bpm) + 0.4))
    bar = _bar_tempo(bpm, duration)
    if bar is None:
        # a whole-bar tempo nearly as well supported as the best one wins
        options = [t for t in _bar_tempi(duration) if support(t) >= BAR_SUPPORT]
        if options:
            bar = max(options, key=support)
    if bar is not None:
        bpm = bar
        confidence = min(1.0, confidence_of(bpm) + BAR_BONUS)
    else:
        confidence = confidence_of(bpm)
        if duration <= MAX_SECONDS:
            confidence *= OFF_BAR_FACTOR     # a loop-length file whose length is no whole bars
    if confidence < COMMIT_CONFIDENCE:
        return TempoEstimate(None, confidence)
    return TempoEstimate(round(bpm, 2), confidence)


def onset_envelope(audio: np.ndarray, sample_rate: float) -> tuple[np.ndarray, float]:
    """Spectral-flux onset strength (zero-mean, rectified) and its frame rate in Hz."""
    hop = max(1, round(sample_rate * 0.0058))
    n_fft = 1 << int(round(np.log2(0.046 * sample_rate)))
    peak = float(np.max(np.abs(audio)))
    mag = magnitude(audio / peak if peak > 0 else audio, n_fft, hop)
    top = min(mag.shape[1], int(11000.0 * n_fft / sample_rate))
    spectrum = np.log1p(100.0 * mag[:, 1:top] / (n_fft / 4))
    flux = np.maximum(np.diff(spectrum, axis=0), 0.0).sum(axis=1)
    flux = np.concatenate([[0.0], flux])
    fps = sample_rate / hop
    width = max(1, int(0.4 * fps)) | 1
    local = np.convolve(flux, np.ones(width) / width, mode="same")
    return np.maximum(flux - local, 0.0), fps


def tempo_hint(name: str) -> float | None:
    """A tempo written in a file name ("loop_120bpm", "Amen 136", "_95_"), or None."""
    stem = _EXTENSION.sub("", re.split(r"[\\/]", name)[-1])
    found = [(m.group(0).lower().endswith("bpm"), float(m.group(1))) for m in _HINT.finditer(stem)]
    found = [(explicit, v) for explicit, v in found if 40.0 <= v <= 250.0]
    if not found:
        return None
    explicit = [v for e, v in found if e]
    return explicit[0] if explicit else found[-1][1]


def _agrees(hint: float, bpm: float, relative_support: float) -> bool:
    """A named tempo agrees with the audio: the estimate or its double/half, or strong support."""
    octave_match = any(abs(bpm * f - hint) <= 0.04 * hint for f in (0.5, 1.0, 2.0))
    return (octave_match and relative_support >= HINT_SUPPORT) or relative_support >= 0.9


def _circular_acf(envelope: np.ndarray) -> np.ndarray | None:
    x = envelope - envelope.mean()
    spectrum = np.fft.rfft(x)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, n=x.size)
    if acf[0] <= 1e-12:
        return None
    return acf / acf[0]


def _at(acf: np.ndarray, lag: float) -> float:
    i = int(lag)
    frac = lag - i
    n = acf.size
    return float((1.0 - frac) * acf[i % n] + frac * acf[(i + 1) % n])


def _comb(acf: np.ndarray, lag: float) -> float:
    """Mean autocorrelation at the first multiples of ``lag`` that fit in half the envelope."""
    limit = acf.size / 2.0
    pairs = [(w, _at(acf, k * lag)) for k, w in zip(COMB_MULTIPLES, COMB_WEIGHTS) if k * lag <= limit]
    if not pairs:
        return _at(acf, lag)
    return float(sum(w * v for w, v in pairs) / max(1e-9, sum(max(w, 0.0) for w, _ in pairs)))


def _prior(bpm):
    return np.exp(-0.5 * (np.log2(np.asarray(bpm) / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)


def _refine(acf: np.ndarray, fps: float, bpm: float) -> float:
    """Sharpen a tempo from the autocorrelation peak at its largest usable multiple."""
    lag = 60.0 * fps / bpm
    k = max(1, min(8, int(acf.size / 2.0 // lag)))
    centre = k * lag
    lo, hi = int(centre * 0.97), int(math.ceil(centre * 1.03)) + 1
    hi = min(hi, acf.size - 2)
    if hi <= lo + 1:
        return bpm
    i = lo + int(np.argmax(acf[lo:hi]))
    a, b, c = acf[i - 1], acf[i], acf[i + 1]
    denominator = a - 2 * b + c
    offset = 0.5 * (a - c) / denominator if denominator < 0 else 0.0
    return 60.0 * fps * k / (i + float(np.clip(offset, -0.5, 0.5)))


def _bar_tempi(duration: float) -> list[float]:
    tempi = [60.0 * BEATS_PER_BAR * bars / duration for bars in BAR_COUNTS]
    return [t for t in tempi if MIN_BPM <= t <= MAX_BPM]


def _bar_tempo(bpm: float, duration: float) -> float | None:
    """The whole-bar tempo within ``BAR_TOLERANCE`` of ``bpm``, or None."""
    for tempo in _bar_tempi(duration):
        if abs(tempo - bpm) <= BAR_TOLERANCE * tempo:
            return tempo
    return None
