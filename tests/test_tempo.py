"""models/tempo.py: BPM of loops, abstention on one-shots and noise, the file-name hint."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from models.tempo import TempoEstimate, estimate_tempo, tempo_hint
from tests.conftest import LMMS, SONIC_PI, require
from tests.synth_audio import drum_groove, noise, tone


@pytest.mark.parametrize("bpm,bars,rate", [(92.0, 2, 22050), (100.0, 2, 44100), (128.0, 4, 22050),
                                           (150.0, 4, 44100), (172.0, 4, 22050),
                                           (110.0, 2, 48000), (136.0, 2, 96000)])
def test_groove_tempo_within_two_percent(bpm, bars, rate):
    result = estimate_tempo(drum_groove(bpm, bars, rate), rate)
    assert isinstance(result, TempoEstimate)
    assert result.bpm is not None and abs(result.bpm - bpm) <= 0.02 * bpm, result
    assert 0.0 < result.confidence <= 1.0


@pytest.mark.parametrize("bpm,bars", [(133.7, 1), (117.3, 2), (104.9, 1)])
def test_whole_bar_length_commits_to_the_exact_tempo(bpm, bars):
    # short loops: the autocorrelation alone is unsure; the whole-bar length prior commits
    # to the exact tempo that makes the file ``bars`` bars long
    result = estimate_tempo(drum_groove(bpm, bars, 22050), 22050)
    assert result.bpm == pytest.approx(bpm, abs=0.01), result


def _random_clicks(seed: int, rate: int = 22050, seconds: float = 7.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * rate), np.float32)
    click = tone(72, 0.1, rate, decay=0.02)
    for start in rng.uniform(0, seconds - 0.2, 14):
        out[int(start * rate): int(start * rate) + click.size] += click
    return out


def test_unperiodic_onsets_abstain():
    for seed in range(4):
        assert estimate_tempo(_random_clicks(seed), 22050).bpm is None


def test_one_shots_and_noise_abstain():
    assert estimate_tempo(tone(60, 1.0, 44100), 44100).bpm is None
    # a periodic sound shorter than a one-bar loop is a one-shot too
    assert estimate_tempo(drum_groove(170.0, 1, 44100)[: int(1.1 * 44100)], 44100).bpm is None
    assert estimate_tempo(noise(6.0, 22050), 22050).bpm is None
    assert estimate_tempo(np.zeros(44100 * 4, np.float32), 44100).bpm is None
    assert estimate_tempo(np.full(44100 * 4, np.nan, np.float32), 44100) == TempoEstimate(None, 0.0)


def test_name_hint_settles_the_octave_only_when_the_audio_agrees():
    audio = drum_groove(140.0, 4, 22050)
    assert estimate_tempo(audio, 22050, name="beat_70bpm.wav").bpm == pytest.approx(70.0, abs=0.05)
    assert estimate_tempo(audio, 22050, name="beat_140bpm.wav").bpm == pytest.approx(140.0, abs=0.05)
    # a number in the name that the audio does not support is ignored
    assert estimate_tempo(audio, 22050, name="take_113.wav").bpm == pytest.approx(140.0, abs=0.05)


@pytest.mark.parametrize("name,hint", [("loop_120bpm.wav", 120.0), ("Amen 136", 136.0), ("dnb_95_.flac", 95.0),
                                       ("break 170 BPM.aiff", 170.0), ("groove_97.5bpm", 97.5),
                                       ("kit808_kick.wav", None), ("take_2024.wav", None), ("loop.wav", None)])
def test_tempo_hint(name, hint):
    assert tempo_hint(name) == hint


@pytest.mark.samples
@pytest.mark.parametrize("root,name,bpm", [(SONIC_PI, "loop_amen_full.flac", 140.0),
                                           (LMMS / "beats", "house_loop01.ogg", 142.0)])
def test_real_debian_loops(root, name, bpm):
    audio, rate = sf.read(str(require(root / name, "sonic-pi-samples / lmms-common")), dtype="float32")
    result = estimate_tempo(audio.mean(axis=1) if audio.ndim == 2 else audio, rate)
    assert result.bpm is not None and abs(result.bpm - bpm) <= 0.02 * bpm, result
