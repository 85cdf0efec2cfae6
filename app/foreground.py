"""The part of a track that does not repeat: a sound played once over a repeating backing.

Music repeats (bars, loops, a beat); a one-shot sampled into a track usually does not. For
each short-time frame, the ``NEIGHBOURS`` frames of the track that look most like it (cosine
similarity of their pooled magnitude spectra, at least ``MIN_GAP_SECONDS`` away, within
``SEARCH_SECONDS``) hold the same backing without that frame's own extra sound; their
element-wise median magnitude estimates the backing, and what stands above it is kept
(a soft time-frequency mask, resynthesised with the frame's own phase). This is the
similarity-based repeating pattern extraction of Rafii and Pardo, "Music/voice separation
using the similarity matrix" (ISMIR 2012).

Memory is bounded by ``CHUNK_FRAMES``: the features of the whole track are small (``BANDS``
numbers a frame), and each chunk's spectra and its neighbours' are recomputed from the audio.

Threads: any thread (pure function of its input).
"""

from __future__ import annotations

import warnings

import numpy as np

N_FFT = 2048
HOP_LENGTH = N_FFT // 2
NEIGHBOURS = 10
MIN_GAP_SECONDS = 0.75
SEARCH_SECONDS = 40.0
BANDS = 64
CHUNK_FRAMES = 256
_EPS = 1e-9


def _window() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1]


def _spectra(padded: np.ndarray, a: int, b: int, window: np.ndarray) -> np.ndarray:
    """Complex spectra of frames ``a`` to ``b`` of ``padded`` (frame ``i`` starts at
    ``i * HOP_LENGTH``)."""
    at = np.arange(a, b)[:, None] * HOP_LENGTH + np.arange(N_FFT)[None, :]
    return np.fft.rfft(padded[at] * window, axis=1)


def _neighbours(features: np.ndarray, sample_rate: int) -> np.ndarray:
    """For each frame, the NEIGHBOURS most similar frames at least MIN_GAP_SECONDS away
    and at most SEARCH_SECONDS away, (n_frames, NEIGHBOURS); -1 where there are fewer."""
    n = features.shape[0]
    gap = max(1, int(round(MIN_GAP_SECONDS * sample_rate / HOP_LENGTH)))
    reach = max(gap + 1, int(round(SEARCH_SECONDS * sample_rate / HOP_LENGTH)))
    out = np.full((n, NEIGHBOURS), -1, np.int64)
    for a in range(0, n, CHUNK_FRAMES):
        b = min(n, a + CHUNK_FRAMES)
        lo, hi = max(0, a - reach), min(n, b + reach)
        sim = features[a:b] @ features[lo:hi].T
        far = np.abs(np.arange(a, b)[:, None] - np.arange(lo, hi)[None, :])
        sim[(far < gap) | (far > reach)] = -np.inf
        take = min(NEIGHBOURS, sim.shape[1])
        best = np.argpartition(-sim, take - 1, axis=1)[:, :take]
        valid = np.take_along_axis(sim, best, axis=1) > -np.inf
        out[a:b, :take] = np.where(valid, best + lo, -1)
    return out


def foreground(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """What of mono ``audio`` does not repeat elsewhere in it, as float32 audio of the same
    length and rate (module docstring). Audio shorter than one frame comes back as silence;
    a frame with no other frame MIN_GAP_SECONDS away (a track under a second) is kept whole."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size < N_FFT:
        return np.zeros(audio.size, np.float32)
    n_frames = -(-audio.size // HOP_LENGTH) + 1
    padded = np.zeros((n_frames + 1) * HOP_LENGTH + N_FFT, np.float32)
    padded[N_FFT // 2:N_FFT // 2 + audio.size] = audio
    window = _window()
    bins = N_FFT // 2 + 1
    edges = np.linspace(0, bins, BANDS + 1).astype(int)[:-1]
    # magnitudes in half precision: the whole track's are kept (2 bytes per bin and frame)
    mag = np.empty((n_frames, bins), np.float16)
    features = np.empty((n_frames, BANDS), np.float32)
    for a in range(0, n_frames, CHUNK_FRAMES):
        b = min(n_frames, a + CHUNK_FRAMES)
        m = np.abs(_spectra(padded, a, b, window))
        mag[a:b] = np.minimum(m, np.finfo(np.float16).max)
        features[a:b] = np.add.reduceat(m, edges, axis=1)
    features /= np.linalg.norm(features, axis=1, keepdims=True) + _EPS
    neighbours = _neighbours(features, sample_rate)
    out = np.zeros(padded.size, np.float32)
    halves = out.reshape(-1, HOP_LENGTH)     # frame i spans halves i and i + 1
    for a in range(0, n_frames, CHUNK_FRAMES):
        b = min(n_frames, a + CHUNK_FRAMES)
        spectra = _spectra(padded, a, b, window)
        own = np.abs(spectra)
        near = neighbours[a:b]
        stack = mag[np.maximum(near, 0)].astype(np.float32)     # (chunk, NEIGHBOURS, bins)
        if (near < 0).any():
            stack[near < 0] = np.nan
            with warnings.catch_warnings():      # a frame with no neighbour: no background
                warnings.simplefilter("ignore", RuntimeWarning)
                background = np.nan_to_num(np.nanmedian(stack, axis=1))
        else:
            background = np.median(stack, axis=1)
        keep = 1.0 - np.minimum(background, own) / (own + _EPS)
        frames = np.fft.irfft(spectra * keep, n=N_FFT, axis=1) * window
        halves[a:b] += frames[:, :HOP_LENGTH]
        halves[a + 1:b + 1] += frames[:, HOP_LENGTH:]
    # every kept sample lies under two frames, HOP_LENGTH apart: their squared windows add
    # up to a pattern of period HOP_LENGTH, and the kept part starts on a period
    squared = window * window
    kept = halves[1:]
    kept /= (squared[:HOP_LENGTH] + squared[HOP_LENGTH:]).astype(np.float32)
    return kept.reshape(-1)[:audio.size].copy()
