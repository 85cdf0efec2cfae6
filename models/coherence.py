"""Waveform coherence: is the query this very recording, heard through a room?

The encoder, the re-ranker network and the room fit all compare power maps, and the
takes of one strummed chord or hits of one drum have nearly the same power map once a
room has smeared them. The waveforms tell them apart: a room, a speaker, a mic, a
lowpass or a resampler is a linear filter, so the query keeps a fixed phase relation to
its own recording at every frequency (a delay plus the room's phase), while another take
of the same sound has phases of its own.

The measure is the peak of the phase-weighted cross-correlation (generalised
cross-correlation with a partial phase transform) of the two blocks, over every lag at
which they overlap:

    X(f) = Q(f) conj(C(f)),   r(lag) = irfft(|X|^(1-BETA) X/|X|),
    coherence = max |r| / r_max,

where ``r_max`` is the value ``r`` would reach at one lag if every frequency agreed. It
lies in [0, 1] and does not depend on gain or polarity. The same recording, dry, gives
about 1; through the tests' room (as much reverberant as direct energy) a strummed chord
keeps 0.62-0.79, while another take of the same chord by the same guitar reaches
0.15-0.60 (its sustained partials sit at the same frequencies). The less the two blocks
share (an excerpt that misses the attack, a speed change), the lower it gets. ``BETA`` =
0.7 keeps a little of the magnitude so that frequencies where both blocks have energy
count more than near-empty ones; the pure phase transform (1.0) ranked the held-out lists
of ``models/train/calibrate_scores.py`` a little worse (list loss 0.894 against 0.885).

Both signals are brought to ``COHERENCE_RATE`` (11.025 kHz) first: on the same lists,
22.05 kHz did no better (0.890), and this costs a quarter of full rate.

What it does not do: a pitch or speed change (a varispeed, a sampler transposing) breaks
the phase relation, and so does a different performance of the same part; both give a
low coherence for every candidate, and the other terms of the score decide.

Pure functions of their arrays; any thread may call them.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import soxr

from .frontend import HOP_LENGTH
from .preprocess import MODEL_SAMPLE_RATE, LogMelBlock, block_span

COHERENCE_RATE = 11025
# one block's span (``block_span`` of a block clear of the clip's start) at COHERENCE_RATE:
# the samples of one signal that are used (2.35 s)
_SPAN = block_span(HOP_LENGTH)
MAX_SIGNAL = -(-(_SPAN.stop - _SPAN.start) * COHERENCE_RATE // MODEL_SAMPLE_RATE)
# The correlation is circular: lags beyond N_FFT - MAX_SIGNAL (0.63 s) either way hold a
# second, wrapped lag too. Two blocks of one recording still peak where they line up (the
# wrapped part adds what two unrelated stretches give, about nothing), and two blocks the
# index pairs mostly lie within half a block hop (0.58 s); a transform twice this size made
# every re-ranking pay double for the farthest lags alone.
N_FFT = 1 << 15
BETA = 0.7                   # how much of the cross-spectrum's magnitude is whitened away
BIN_FLOOR = 1e-4             # bins 80 dB below a spectrum's peak carry no phase worth reading
COHERENCE_FLOOR = 1e-3       # keeps ln() finite for a silent block


def coherence_signal(audio: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """A block's mono samples at ``sample_rate`` -> float32 samples at ``COHERENCE_RATE``,
    at most ``MAX_SIGNAL`` of them. Any thread."""
    audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        return audio
    if sample_rate != COHERENCE_RATE:
        audio = soxr.resample(audio, sample_rate, COHERENCE_RATE, quality="HQ")
    return np.ascontiguousarray(audio[:MAX_SIGNAL], dtype=np.float32)


class BlockSignals(Sequence):
    """The ``coherence_signal`` of each block of one clip, made the first time it is asked
    for: a search compares only the few blocks its best pairs use, and most clips are
    never re-ranked at all. Holds a reference to the clip's samples. Any thread (two
    threads asking for one block at once both make it; the values are equal)."""

    def __init__(self, audio: np.ndarray, blocks: Sequence[LogMelBlock]):
        self._audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        self._starts = tuple(b.start_sample for b in blocks)
        self._made: dict[int, np.ndarray] = {}

    @classmethod
    def at(cls, audio: np.ndarray, starts: Sequence[int]) -> "BlockSignals":
        """The signals of blocks starting at model samples ``starts`` of ``audio``."""
        signals = cls(audio, ())
        signals._starts = tuple(int(s) for s in starts)
        return signals

    def recipe(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """(audio, block starts): what ``at`` makes the same signals from (to hand them to
        another process without making them here)."""
        return self._audio, self._starts

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, i: int) -> np.ndarray:
        i = range(len(self._starts))[operator.index(i)]
        if i not in self._made:
            self._made[i] = coherence_signal(self._audio[block_span(self._starts[i])])
        return self._made[i]


def spectrum(signal: np.ndarray) -> np.ndarray:
    """``rfft`` of a ``coherence_signal``, zero-padded to ``N_FFT`` (complex64). Any thread."""
    signal = np.asarray(signal, dtype=np.float32)
    if signal.size > MAX_SIGNAL:
        raise ValueError(f"a coherence signal holds at most {MAX_SIGNAL} samples, got {signal.size}")
    return np.fft.rfft(signal, N_FFT)


def peak_coherence(query_spectrum: np.ndarray, candidate_spectrum: np.ndarray) -> float:
    """The coherence (0..1) of two ``spectrum`` results; 0.0 if either is silent. Any thread."""
    q = np.asarray(query_spectrum)
    c = np.asarray(candidate_spectrum)
    if q.shape != (N_FFT // 2 + 1,) or c.shape != q.shape:
        raise ValueError(f"expected two spectra of {N_FFT // 2 + 1} bins, got {q.shape} and {c.shape}")
    return float(peak_coherences(q, c[None, :])[0])


def peak_coherences(query_spectrum: np.ndarray, candidate_spectra: np.ndarray) -> np.ndarray:
    """``peak_coherence`` of one query spectrum with each row of ``candidate_spectra``
    ``(m, bins)``, in one pass over all of them -> ``(m,)`` float64. Any thread."""
    q = np.asarray(query_spectrum)
    c = np.asarray(candidate_spectra)
    bins = N_FFT // 2 + 1
    if q.shape != (bins,) or c.ndim != 2 or c.shape[1] != bins:
        raise ValueError(f"expected a spectrum of {bins} bins and (m, {bins}) spectra, got {q.shape} and {c.shape}")
    if len(c) == 0:
        return np.zeros(0)
    # The arrays are (m, 32769): every step writes over one of them rather than making a
    # new one (a re-ranking compares ten candidates while the network and the room fit run)
    q_mag = np.abs(q)
    magnitude = np.abs(c)
    active = magnitude > BIN_FLOOR * magnitude.max(axis=1, keepdims=True)
    active &= q_mag > BIN_FLOOR * q_mag.max()
    magnitude *= q_mag                                   # |X| = |Q| |C|
    # |X|^(1-BETA) * X/|X| = X * |X|^-BETA; |X|^-BETA as exp(-BETA ln |X|), which numpy
    # vectorises in float32 where its power does not
    scale = np.maximum(magnitude, np.finfo(magnitude.dtype).tiny)
    np.log(scale, out=scale)
    scale *= -BETA
    np.exp(scale, out=scale)
    scale *= active
    cross = np.conj(c)
    cross *= q
    cross *= scale
    lags = np.fft.irfft(cross, N_FFT, axis=1)
    peaks = np.maximum(lags.max(axis=1), -lags.min(axis=1))
    weight = magnitude
    weight *= scale
    # irfft(weight)[0], the correlation if every bin's phase agreed, without a second transform
    agreeing = (weight[:, 0] + weight[:, -1] + 2.0 * weight[:, 1:-1].sum(axis=1, dtype=np.float64)) / N_FFT
    usable = active.any(axis=1) & (agreeing > 0.0)
    return np.where(usable, np.minimum(1.0, peaks / np.where(usable, agreeing, 1.0)), 0.0)


def coherence_term(coherence: np.ndarray | float) -> np.ndarray:
    """The score term ``ln(coherence + COHERENCE_FLOOR)``. Any thread."""
    return np.log(np.asarray(coherence, dtype=np.float64) + COHERENCE_FLOOR)
