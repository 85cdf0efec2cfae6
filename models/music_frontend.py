"""Numpy log-mel front end of musicnn's taggers (``models/genre_mood.py``), no librosa.

Matches musicnn's ``batch_data``: ``librosa.feature.melspectrogram(y, sr=16000, n_fft=512,
hop_length=256, n_mels=96)`` with librosa's defaults (periodic Hann window, ``center=True``
with zero padding, power spectrum, Slaney mel scale and Slaney area normalisation,
fmin 0, fmax 8000), rounded to float16 as musicnn does, then ``log10(10000 * x + 1)``.
Frames are time-major ``(n_frames, N_MELS)``; ``n`` samples give ``1 + n // HOP_LENGTH``
frames. The model reads patches of PATCH_FRAMES frames (about 3 s).

Pure functions: any thread.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
PATCH_FRAMES = 187
LOG_SCALE = 10000.0
_FLOAT16_MAX = float(np.finfo(np.float16).max)

# Slaney's mel scale: linear below 1 kHz, logarithmic above
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    logarithmic = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, logarithmic, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = _F_SP * mel
    logarithmic = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, logarithmic, linear)


@functools.lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """Slaney-scale triangles with Slaney area normalisation (``2 / band width``):
    ``(N_MELS, 1 + N_FFT // 2)`` float64, read-only."""
    fft_freqs = np.linspace(0.0, SAMPLE_RATE / 2.0, 1 + N_FFT // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2.0), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@functools.lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    window.setflags(write=False)
    return window


def power_mel(audio: np.ndarray) -> np.ndarray:
    """Power mel ``(1 + len(audio) // HOP_LENGTH, N_MELS)`` float64 of mono audio at
    SAMPLE_RATE."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D array), got shape {audio.shape}")
    if audio.size == 0:
        return np.zeros((0, N_MELS), dtype=np.float64)
    half = N_FFT // 2
    padded = np.concatenate([np.zeros(half), audio, np.zeros(half)])
    n_frames = 1 + audio.size // HOP_LENGTH
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    spectrum = np.fft.rfft(frames * _hann(), axis=-1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    return power @ mel_filterbank().T


def log_mel(audio: np.ndarray) -> np.ndarray:
    """musicnn's input representation ``(n_frames, N_MELS)`` float32 of mono audio at
    SAMPLE_RATE: the power mel rounded to float16 (as musicnn stores it), then
    ``log10(10000 * x + 1)``."""
    mel = np.minimum(power_mel(audio), _FLOAT16_MAX).astype(np.float16).astype(np.float64)
    return np.log10(LOG_SCALE * mel + 1.0).astype(np.float32)


def patches(audio: np.ndarray, max_patches: int = 3, max_seconds: float | None = None) -> np.ndarray:
    """Up to ``max_patches`` log-mel patches ``(k, PATCH_FRAMES, N_MELS)`` float32 of mono
    audio at SAMPLE_RATE, spread evenly over its first ``max_seconds`` (all of it when None).
    A signal shorter than one patch is repeated to fill it (the model was trained on
    repeat-padded short clips; a loop repeats by nature). Empty audio gives no patch."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if max_seconds is not None:
        audio = audio[:int(max_seconds * SAMPLE_RATE)]
    if audio.size == 0 or max_patches < 1:
        return np.zeros((0, PATCH_FRAMES, N_MELS), dtype=np.float32)
    needed = (PATCH_FRAMES - 1) * HOP_LENGTH
    if audio.size < needed:
        audio = np.tile(audio, -(-needed // audio.size))[:needed]
    frames = log_mel(audio)
    count = min(max_patches, len(frames) // PATCH_FRAMES)
    starts = np.linspace(0, len(frames) - PATCH_FRAMES, count).round().astype(int)
    return np.stack([frames[s:s + PATCH_FRAMES] for s in starts])
