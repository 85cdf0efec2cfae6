"""``app.foreground``: over a backing of real LMMS loops that repeats, a real snare played
once is what the foreground keeps, and the backing is what it takes away."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr

from app.foreground import foreground
from tests.conftest import LMMS, SONIC_PI, require

RATE = 44100


def _mono(path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(data.mean(axis=1), rate, RATE) if rate != RATE else data.mean(axis=1)


def _backing(seconds: float) -> np.ndarray:
    parts = sorted((require(LMMS, "lmms-common") / "beats").glob("*.ogg"))[:2] + \
        sorted((LMMS / "bassloops").glob("*.ogg"))[:1]
    track = np.zeros(int(seconds * RATE))
    for path in parts:
        part = _mono(path)
        part = np.tile(part, int(np.ceil(track.size / part.size)))[:track.size]
        track += part / np.sqrt(np.mean(np.square(part))) * 0.05
    return track


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x)) + 1e-12))


def test_a_sound_played_once_over_a_repeating_backing_is_what_the_foreground_keeps():
    backing = _backing(20.0)
    snare = _mono(require(SONIC_PI, "sonic-pi-samples") / "drum_snare_hard.flac")[:int(0.4 * RATE)]
    snare = snare / np.sqrt(np.mean(np.square(snare))) * 0.05   # as loud as one backing part
    at = int(11.3 * RATE)
    track = backing.copy()
    track[at:at + snare.size] += snare
    solo = foreground(track, RATE)
    assert solo.shape == track.shape
    here = slice(at, at + snare.size)
    elsewhere = np.r_[int(1 * RATE):at - RATE, at + 2 * RATE:int(19 * RATE)]
    # the backing loses at least 8 dB away from the snare; the snare's spot keeps far more
    assert _db(solo[elsewhere]) < _db(track[elsewhere]) - 8.0
    assert _db(solo[here]) > _db(solo[elsewhere]) + 6.0
    # and what is kept there is the snare: it correlates with it better than the mix does
    def corr(x):
        return float(np.dot(x, snare) / np.linalg.norm(x) / np.linalg.norm(snare))
    assert corr(solo[here]) > corr(track[here]) + 0.1


def test_audio_too_short_to_repeat_gives_silence_of_its_length():
    assert np.array_equal(foreground(np.ones(100), RATE), np.zeros(100))
    assert foreground(np.zeros(0), RATE).shape == (0,)


def test_a_sound_shorter_than_the_gap_to_a_repeat_is_kept_whole():
    sound = np.random.default_rng(0).standard_normal(int(0.5 * RATE)).astype(np.float32)
    assert np.allclose(foreground(sound, RATE), sound, atol=1e-5)
