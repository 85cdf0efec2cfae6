"""models/pitch.py: root note and tuning of tonal one-shots, abstention on unpitched sounds."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from models.pitch import RootEstimate, estimate_root
from tests.conftest import HYDROGEN, SONIC_PI, require
from tests.synth_audio import noise, tone


@pytest.mark.parametrize("midi,cents,rate", [(28, 0.0, 22050), (33, 23.0, 44100), (45, -37.0, 22050),
                                             (60, 12.0, 44100), (69, 0.0, 44100), (84, -18.0, 22050),
                                             (96, 41.0, 44100), (52, -8.0, 48000), (40, 27.0, 96000)])
def test_tones_give_their_note_and_cents(midi, cents, rate):
    audio = np.concatenate([np.zeros(rate // 10, np.float32), tone(midi + cents / 100.0, 2.0, rate)])
    result = estimate_root(audio, rate)
    assert result.midi == midi, result
    assert abs(result.cents - cents) <= 5.0, result
    assert result.confidence > 0.5


@pytest.mark.parametrize("midi,stretch", [(64, 3e-4), (76, 4e-4)])
def test_stretched_partials_do_not_pull_the_tuning_sharp(midi, stretch):
    # piano-like partials k * f0 * sqrt(1 + B k^2): the fundamental is within 1 cent of f0,
    # while the period of the whole sound reads 13-15 cents sharp
    rate = 44100
    t = np.arange(2 * rate) / rate
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    audio = sum(np.sin(2 * np.pi * f0 * k * np.sqrt(1 + stretch * k * k) * t) / k for k in range(1, 13))
    result = estimate_root((0.3 * audio * np.minimum(1, t / 0.005) * np.exp(-t)).astype(np.float32), rate)
    assert result.midi == midi and abs(result.cents) <= 5.0, result


def test_weak_fundamental_keeps_the_root():
    rate = 44100
    t = np.arange(rate) / rate
    f0 = 110.0
    audio = sum(np.sin(2 * np.pi * f0 * k * t) * (0.1 if k == 1 else 1.0 / k) for k in range(1, 8))
    assert estimate_root((0.2 * audio * np.exp(-t)).astype(np.float32), rate).midi == 45


def test_unpitched_sounds_abstain():
    rate = 22050
    t = np.arange(rate // 2) / rate
    snare = (noise(0.5, rate) * np.exp(-t / 0.06)).astype(np.float32)
    for audio in (noise(1.5, rate), snare, np.zeros(rate, np.float32), np.zeros(10, np.float32),
                  np.full(rate, 0.3, np.float32), np.full(rate, np.nan, np.float32)):
        result = estimate_root(audio, rate)
        assert result.midi is None and result.note_name() == "", result


@pytest.mark.samples
@pytest.mark.parametrize("name,pitch_class", [("bass_thick_c.flac", 0), ("bass_woodsy_c.flac", 0),
                                              ("bass_dnb_f.flac", 5), ("drum_cymbal_open.flac", None),
                                              ("drum_snare_hard.flac", None)])
def test_real_sonic_pi_samples(name, pitch_class):
    audio, rate = sf.read(str(require(SONIC_PI / name, "sonic-pi-samples")), dtype="float32")
    result = estimate_root(audio.mean(axis=1) if audio.ndim == 2 else audio, rate)
    assert (None if result.midi is None else result.midi % 12) == pitch_class, result


@pytest.mark.samples
def test_real_hydrogen_kick_abstains():
    kicks = sorted(require(HYDROGEN, "hydrogen-drumkits").glob("*/*[Kk]ick*.flac"))[:3]
    assert kicks
    for path in kicks:
        audio, rate = sf.read(str(path), dtype="float32")
        assert estimate_root(audio.mean(axis=1) if audio.ndim == 2 else audio, rate).midi is None, path


def test_note_names():
    assert RootEstimate(57, 0.0, 1.0).note_name() == "A3"
    assert RootEstimate(61, 0.0, 1.0).note_name() == "C#4"
    assert RootEstimate(None, 0.0, 0.0).note_name() == ""
