"""Framing and short-time spectra shared by the tempo, key and root-note detectors.

Pure numpy; any thread may call these functions.
"""

from __future__ import annotations

import functools

import numpy as np


def as_mono(audio: np.ndarray) -> np.ndarray:
    """Contiguous mono float32: channels (last axis of a 2-D array) are averaged."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    return np.ascontiguousarray(audio.reshape(-1))


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
