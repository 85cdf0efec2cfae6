"""Synthesized test audio with known tempo, key and pitch (numpy only, seeded)."""

from __future__ import annotations

import numpy as np


def tone(midi: float, seconds: float, sample_rate: int, harmonics: int = 6, decay: float = 1.5) -> np.ndarray:
    """A harmonic tone (1/k partials) with a 5 ms attack and an exponential decay."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, harmonics + 1) if f0 * k < sample_rate / 2.2)
    envelope = np.minimum(1.0, t / 0.005) * np.exp(-t / decay)
    return (0.3 * wave * envelope).astype(np.float32)


def _place(out: np.ndarray, sound: np.ndarray, at: int) -> None:
    end = min(out.size, at + sound.size)
    out[at:end] += sound[: end - at]


def drum_groove(bpm: float, bars: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Kick on beats 1 and 3, snare on 2 and 4, closed hats on eighths; exactly ``bars`` bars."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    n = int(round(bars * 4 * beat * sample_rate))
    out = np.zeros(n, dtype=np.float32)
    t = np.arange(int(0.25 * sample_rate)) / sample_rate
    kick = (np.sin(2 * np.pi * (50 + 80 * np.exp(-t / 0.03)) * t) * np.exp(-t / 0.08)).astype(np.float32)
    snare = (rng.normal(0, 0.5, t.size) * np.exp(-t / 0.05) + 0.4 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.04))
    hat = rng.normal(0, 0.2, int(0.04 * sample_rate))
    hat = (np.diff(hat, prepend=0.0) * np.exp(-np.arange(hat.size) / (0.01 * sample_rate))).astype(np.float32)
    for eighth in range(bars * 8):
        at = int(round(eighth * beat / 2 * sample_rate))
        _place(out, hat * (1.0 if eighth % 2 == 0 else 0.6), at)
        if eighth % 4 == 0:
            _place(out, kick, at)
        elif eighth % 4 == 2:
            _place(out, snare.astype(np.float32), at)
    return out


MAJOR = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


def chord_loop(tonic: int, mode: str, sample_rate: int, bpm: float = 100.0, cents: float = 0.0) -> np.ndarray:
    """I-IV-V-I (i-iv-V-i in harmonic minor): triads plus a bass note, one bar each, detuned by ``cents``."""
    scale = MAJOR if mode == "major" else HARMONIC_MINOR
    bar = 4 * 60.0 / bpm
    base = 48 + tonic + cents / 100.0
    pieces = []
    for degree in (0, 3, 4, 0):
        notes = [base + 12 * ((degree + i) // 7) + scale[(degree + i) % 7] for i in (0, 2, 4)]
        chord = sum(tone(m, bar, sample_rate, decay=2.0) for m in notes)
        chord += tone(base - 12 + scale[degree], bar, sample_rate, decay=2.0)
        pieces.append(chord)
    return np.concatenate(pieces).astype(np.float32)


def noise(seconds: float, sample_rate: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.2, int(seconds * sample_rate)).astype(np.float32)
