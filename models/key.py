"""Musical key (tonic and mode) of tonal loops: tuned chroma correlated with key profiles.

Recipe: a long-window STFT (~186 ms) of at most 30 s; spectral peaks between 55 Hz and
2 kHz give the tuning (the magnitude-weighted circular mean of their offsets from the
equal-tempered grid); each bin's energy goes to its pitch class after that tuning
correction; the summed chroma is correlated (Pearson) with the 24 rotations of the
Temperley (Kostka-Payne) major and minor profiles. Abstains (``tonic=None``) when the
sound is not tonal: too little of the peak energy lies near semitone centres (drums,
noise), or the best key's correlation or its margin over the runner-up is small.

Pure functions; any thread may call them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from models.spectrum import as_mono, decimate, magnitude

MAX_SECONDS = 30.0
ANALYSIS_RATE = 11025        # higher rates are decimated first: the chroma reads up to 2 kHz
F_MIN, F_MAX = 55.0, 2000.0
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# Temperley's key profiles from the Kostka-Payne corpus (Temperley 2007)
MAJOR_PROFILE = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400])
MINOR_PROFILE = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330])
MIN_TONALITY = 0.8           # share of peak energy within 25 cents of a (tuned) semitone
MAX_FLATNESS = 0.95          # chroma entropy / log(12): 1 = all pitch classes alike (drums)
MIN_CORRELATION = 0.5
MIN_MARGIN = 0.02


@dataclass(frozen=True)
class KeyEstimate:
    tonic: int | None        # 0 = C .. 11 = B; None: abstained (atonal, drums)
    mode: str                # 'major' or 'minor' ('' when abstained)
    confidence: float        # 0..1

    def label(self) -> str:
        """Short name: "Am", "F#", "" when abstained."""
        if self.tonic is None:
            return ""
        return NAMES[self.tonic] + ("m" if self.mode == "minor" else "")


def estimate_key(audio: np.ndarray, sample_rate: int) -> KeyEstimate:
    """Estimate the key of ``audio`` (mono float32, any rate)."""
    audio = as_mono(audio)[: int(MAX_SECONDS * sample_rate)]
    if audio.size < sample_rate // 2 or not np.any(audio):
        return KeyEstimate(None, "", 0.0)
    chroma, tonality = chromagram(*decimate(audio, sample_rate, ANALYSIS_RATE))
    if not np.any(chroma):
        return KeyEstimate(None, "", 0.0)
    share = chroma / chroma.sum()
    flatness = float(-np.sum(share * np.log(share + 1e-12)) / np.log(12))
    scores = key_scores(chroma)
    order = np.argsort(scores)[::-1]
    best, runner_up = float(scores[order[0]]), float(scores[order[1]])
    confidence = float(np.clip((best - 0.3) / 0.5, 0.0, 1.0) * np.clip((best - runner_up) / 0.1, 0.0, 1.0)
                       * np.clip((tonality - 0.7) / 0.25, 0.0, 1.0)
                       * np.clip((1.0 - flatness) / 0.1, 0.0, 1.0)) ** 0.25
    if (tonality < MIN_TONALITY or flatness > MAX_FLATNESS or best < MIN_CORRELATION
            or best - runner_up < MIN_MARGIN):
        return KeyEstimate(None, "", confidence)
    index = int(order[0])
    return KeyEstimate(index % 12, "major" if index < 12 else "minor", confidence)


def chromagram(audio: np.ndarray, sample_rate: float) -> tuple[np.ndarray, float]:
    """Summed, tuning-corrected 12-bin chroma (C first) and the tonality share."""
    n_fft = 1 << int(round(np.log2(0.186 * sample_rate)))
    hop = n_fft // 4
    mag = magnitude(audio, n_fft, hop)
    freqs = np.arange(mag.shape[1]) * sample_rate / n_fft
    band = (freqs >= F_MIN) & (freqs <= min(F_MAX, sample_rate / 2.0))
    mag = mag[:, band]
    # spectral peaks: local maxima above a floor relative to each frame's loudest bin
    inner = mag[:, 1:-1]
    is_peak = (inner > mag[:, :-2]) & (inner >= mag[:, 2:]) & (inner > 0.05 * mag.max(axis=1, keepdims=True))
    rows, cols = np.nonzero(is_peak)
    cols = cols + 1
    if cols.size == 0:
        return np.zeros(12), 0.0
    # refine each peak's pitch by parabolic interpolation on the log magnitude
    a, b, c = (np.log(mag[rows, cols + d] + 1e-9) for d in (-1, 0, 1))
    offset = np.clip(0.5 * (a - c) / np.minimum(a - 2 * b + c, -1e-9), -0.5, 0.5)
    peak_freq = (np.flatnonzero(band)[0] + cols + offset) * sample_rate / n_fft
    peak_pitch = 69.0 + 12.0 * np.log2(peak_freq / 440.0)
    weight = mag[rows, cols] ** 2
    # tuning: circular mean of the peaks' deviations from the semitone grid
    phase = np.exp(2j * np.pi * peak_pitch)
    tuning = float(np.angle(np.sum(weight * phase)) / (2 * np.pi))     # in semitones, -0.5..0.5
    deviation = np.abs(((peak_pitch - tuning) + 0.5) % 1.0 - 0.5)
    tonality = float(np.sum(weight[deviation <= 0.25]) / np.sum(weight))
    # chroma from the peaks (cleaner than all bins for percussive mixtures), log-compressed
    classes = np.round(peak_pitch - tuning).astype(int) % 12
    energy = np.log1p(100.0 * mag[rows, cols] / mag.max())
    chroma = np.bincount(classes, weights=energy * (deviation <= 0.35), minlength=12)
    return chroma, tonality


def key_scores(chroma: np.ndarray) -> np.ndarray:
    """Pearson correlation with the 24 keys: index 0-11 major on C..B, 12-23 minor."""
    scores = np.empty(24)
    for mode, profile in enumerate((MAJOR_PROFILE, MINOR_PROFILE)):
        for tonic in range(12):
            scores[mode * 12 + tonic] = np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
    return np.nan_to_num(scores, nan=-1.0)


_KEY = re.compile(r"^\s*([A-Ga-g])\s*([#♯b♭]?)\s*(m|min|minor|maj|major|M)?\s*$")


def parse_key(text: str) -> tuple[int, str]:
    """("Am", "A minor", "F#m", "Bb", "C major") -> (tonic 0-11, 'major'|'minor'); ValueError otherwise."""
    match = _KEY.match(text.replace("-", " "))
    if match is None:
        raise ValueError(f"not a key: {text!r} (try 'Am', 'F#', 'Bb minor')")
    letter, accidental, quality = match.groups()
    tonic = NAMES.index(letter.upper())
    tonic += {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)
    mode = "minor" if quality in ("m", "min", "minor") else "major"
    return tonic % 12, mode
