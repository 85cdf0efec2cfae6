"""Framing and short-time spectra shared by the tempo, key and root-note detectors.

Pure numpy; any thread may call these functions.
"""

from __future__ import annotations

import functools

import numpy as np


def as_mono(audio: np.ndarray) -> np.ndarray:
    """Contiguous mono float32: channels (last axis of a 2-D array) are averaged, NaN and inf become 0."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    audio = np.ascontiguousarray(audio.reshape(-1))
    if not np.all(np.isfinite(audio)):
        audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    return audio


def frames(audio: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Read-only view of overlapping frames, shape (n_frames, frame_length); short input is padded."""
    if audio.size < frame_length:
        audio = np.pad(audio, (0, frame_length - audio.size))
    n = 1 + (audio.size - frame_length) // hop_length
    return np.lib.stride_tricks.as_strided(
        audio, shape=(n, frame_length),
        strides=(audio.strides[0] * hop_length, audio.strides[0]), writeable=False)


@functools.lru_cache(maxsize=16)
def hann(n: int) -> np.ndarray:
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    window.flags.writeable = False
    return window


def magnitude(audio: np.ndarray, n_fft: int, hop_length: int, chunk: int = 512) -> np.ndarray:
    """|STFT| with a Hann window, frames starting at sample 0: shape (n_frames, n_fft // 2 + 1)."""
    framed = frames(audio, n_fft, hop_length)
    window = hann(n_fft)
    out = np.empty((framed.shape[0], n_fft // 2 + 1), dtype=np.float32)
    for start in range(0, framed.shape[0], chunk):   # bounded temporary memory
        block = framed[start:start + chunk] * window
        out[start:start + chunk] = np.abs(np.fft.rfft(block, axis=1))
    return out


@functools.lru_cache(maxsize=8)
def _lowpass(factor: int) -> np.ndarray:
    """Blackman-windowed sinc low-pass at 90 % of the decimated rate's Nyquist frequency."""
    taps = 24 * factor + 1
    n = np.arange(taps) - (taps - 1) / 2
    cutoff = 0.45 / factor                      # cycles per input sample
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.blackman(taps)
    h = (h / h.sum()).astype(np.float32)
    h.flags.writeable = False
    return h


def decimate(audio: np.ndarray, sample_rate: float, max_rate: float) -> tuple[np.ndarray, float]:
    """Low-pass and keep every ``factor``-th sample so that the rate is at most ``max_rate`` (roughly).

    ``factor = sample_rate // max_rate``; returns the audio unchanged when that is 1.
    """
    factor = int(sample_rate // max_rate)
    if factor <= 1:
        return audio, float(sample_rate)
    h = _lowpass(factor)
    half = (h.size - 1) // 2
    padded = np.pad(audio.astype(np.float32, copy=False), (half, half))
    framed = frames(padded, h.size, factor)
    out = np.empty(framed.shape[0], dtype=np.float32)
    for start in range(0, framed.shape[0], 16384):     # bounded temporary memory
        out[start:start + 16384] = framed[start:start + 16384] @ h
    return out, sample_rate / factor
