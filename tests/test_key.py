"""models/key.py: key of tonal loops (also detuned), abstention on drums and noise, key names."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from models.key import KeyEstimate, estimate_key, parse_key
from tests.conftest import SONIC_PI, require
from tests.synth_audio import chord_loop, drum_groove, noise


@pytest.mark.parametrize("tonic,mode,rate,cents", [(0, "major", 22050, 0.0), (9, "minor", 44100, 0.0),
                                                   (6, "major", 44100, 30.0), (3, "minor", 22050, -35.0),
                                                   (10, "major", 48000, 0.0), (4, "minor", 96000, 20.0)])
def test_chord_progressions_give_their_key(tonic, mode, rate, cents):
    result = estimate_key(chord_loop(tonic, mode, rate, cents=cents), rate)
    assert (result.tonic, result.mode) == (tonic, mode), result
    assert result.confidence > 0.3


def test_drums_noise_and_silence_abstain():
    for audio, rate in ((drum_groove(120.0, 2, 22050), 22050), (noise(4.0, 44100), 44100),
                        (np.zeros(44100, np.float32), 44100)):
        result = estimate_key(audio, rate)
        assert result.tonic is None and result.label() == "", result


@pytest.mark.samples
def test_real_drum_loop_abstains():
    audio, rate = sf.read(str(require(SONIC_PI / "loop_amen_full.flac", "sonic-pi-samples")), dtype="float32")
    assert estimate_key(audio.mean(axis=1) if audio.ndim == 2 else audio, rate).tonic is None


@pytest.mark.parametrize("text,expected", [("Am", (9, "minor")), ("A minor", (9, "minor")), ("F#m", (6, "minor")),
                                           ("Bb", (10, "major")), ("C major", (0, "major")), ("ebm", (3, "minor")),
                                           ("Cb", (11, "major")), ("G#min", (8, "minor")), ("D maj", (2, "major"))])
def test_parse_key(text, expected):
    assert parse_key(text) == expected


@pytest.mark.parametrize("text", ["", "H", "Xm", "A minor 7", "12"])
def test_parse_key_refuses_other_text(text):
    with pytest.raises(ValueError):
        parse_key(text)


def test_labels():
    assert KeyEstimate(9, "minor", 0.9).label() == "Am"
    assert KeyEstimate(6, "major", 0.9).label() == "F#"
    assert KeyEstimate(None, "", 0.0).label() == ""
    assert parse_key(KeyEstimate(1, "minor", 1.0).label()) == (1, "minor")
