"""Cheap descriptors of a sound beside its embedding: length, decay, brightness, noisiness,
onset density. They feed the tagger's head (``models/tagger.py``) and its training script,
so both compute them here, from the same model-rate mono audio. Any thread.
"""

from __future__ import annotations

import math

import numpy as np

DESCRIPTOR_NAMES = ("log_duration", "decay_db", "log_centroid", "flatness", "zcr", "crest_db",
                    "onset_rate", "low_ratio", "high_ratio", "sustain_db")
# Descriptors read at most this much audio from the start (bounds the scan's extra cost).
DESCRIPTOR_SECONDS = 8.0
_FRAME = 2048
_HOP = 1024
_WINDOW = np.hanning(_FRAME).astype(np.float32)


def decay_db(audio: np.ndarray) -> float:
    """Level of the last quarter relative to the whole, in dB (the scan's loop rule figure)."""
    if audio.size == 0:
        return 0.0
    rms_all = math.sqrt(float(np.mean(np.square(audio, dtype=np.float64))))
    tail = audio[int(audio.size * 0.75):]
    rms_last = math.sqrt(float(np.mean(np.square(tail, dtype=np.float64)))) if tail.size else 0.0
    return 20 * math.log10(max(rms_last, 1e-12) / max(rms_all, 1e-12))


def describe_whole(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``describe`` of a sound held whole in memory: its length and decay from all of it."""
    return describe(audio, sample_rate, audio.size / sample_rate, decay_db(audio))


def describe(audio: np.ndarray, sample_rate: int, duration_s: float,
             decay_db: float) -> np.ndarray:
    """(len(DESCRIPTOR_NAMES),) float32 for the start of a sound. ``duration_s``: the whole
    file's length; ``decay_db``: level of its last quarter relative to the whole (<= 0)."""
    x = np.asarray(audio[: int(DESCRIPTOR_SECONDS * sample_rate)], dtype=np.float32)
    out = np.zeros(len(DESCRIPTOR_NAMES), dtype=np.float32)
    out[0] = math.log(max(duration_s, 1e-3))
    out[1] = max(-60.0, min(0.0, decay_db)) / 20.0
    if x.size < _FRAME:
        x = np.pad(x, (0, _FRAME - x.size))
    n = 1 + (x.size - _FRAME) // _HOP
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(n, _FRAME), strides=(x.strides[0] * _HOP, x.strides[0]))
    spectrum = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)).astype(np.float32)
    power = spectrum * spectrum + np.float32(1e-12)
    frame_energy = power.sum(axis=1, dtype=np.float64)
    weights = frame_energy / frame_energy.sum()
    freqs = np.fft.rfftfreq(_FRAME, 1.0 / sample_rate).astype(np.float32)
    centroid = (power @ freqs) / frame_energy
    out[2] = math.log(max(float((centroid * weights).sum()), 20.0)) / 10.0
    flatness = np.exp(np.log(power).mean(axis=1, dtype=np.float64)) / power.mean(axis=1, dtype=np.float64)
    out[3] = float((flatness * weights).sum())
    out[4] = float(np.mean(np.abs(np.diff(np.signbit(x).astype(np.int8))))) * 10
    rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64)))) + 1e-9
    out[5] = 20 * math.log10(float(np.max(np.abs(x))) / rms + 1e-9) / 20.0
    flux = np.maximum(np.diff(np.log(spectrum + 1e-6), axis=0), 0).mean(axis=1)
    if flux.size > 2:
        threshold = flux.mean() + flux.std()
        peaks = (flux[1:-1] > threshold) & (flux[1:-1] >= flux[:-2]) & (flux[1:-1] > flux[2:])
        seconds = max(x.size / sample_rate, 0.5)
        out[6] = float(peaks.sum()) / seconds / 4.0
    total = power.sum()
    out[7] = float(power[:, freqs < 150].sum() / total)
    out[8] = float(power[:, freqs > 5000].sum() / total)
    level = 10 * np.log10(frame_energy / frame_energy.max())
    out[9] = float(np.mean(level > -20.0))
    return out
