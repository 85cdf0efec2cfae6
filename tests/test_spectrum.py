"""models/spectrum.py: decimation keeps the band below the new Nyquist frequency and rejects the rest."""

from __future__ import annotations

import numpy as np

from models.spectrum import decimate


def _amplitude(audio: np.ndarray, rate: float, hz: float) -> float:
    t = np.arange(audio.size) / rate
    return float(2 * abs(np.mean(audio * np.exp(-2j * np.pi * hz * t))))


def test_decimation_keeps_the_low_band_and_does_not_alias():
    rate = 96000
    t = np.arange(rate) / rate
    audio = (0.5 * np.sin(2 * np.pi * 1000 * t) + 0.5 * np.sin(2 * np.pi * 30000 * t)).astype(np.float32)
    out, out_rate = decimate(audio, rate, 22050)
    assert out_rate == 24000 and out.size == rate // 4
    core = out[500:-500]    # away from the edges' zero padding
    assert abs(_amplitude(core, out_rate, 1000) - 0.5) < 0.01
    # 30 kHz would alias to 6 kHz at 24 kHz without the low-pass
    assert _amplitude(core, out_rate, 6000) < 0.005


def test_rates_at_or_below_the_target_pass_through():
    audio = np.ones(100, np.float32)
    out, out_rate = decimate(audio, 22050, 22050)
    assert out is audio and out_rate == 22050
