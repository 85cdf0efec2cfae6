"""Deterministic damage applied to clean clips to build re-identification queries.

Every function takes mono float32 ``audio`` at ``sample_rate`` and returns a new
float32 array; the ones with randomness take a ``numpy.random.Generator`` so a
seed fixes the result. :data:`CONDITIONS` names the benchmark's conditions and
:func:`apply_condition` runs one with a generator derived from ``(seed, condition,
item)``.

Room reverb is synthetic (no room simulator): a direct path, eight early
reflections between 2 and 30 ms, and a late tail of Gaussian noise whose energy
decays by 60 dB in ``rt60`` seconds above 4 kHz and more slowly below (bands split
at 500 Hz and 4 kHz decay with RT60 x1.3, x1.15 and x1.0). With ``rt60=0.4`` the
broadband T30 measured by Schroeder integration is 0.36-0.40 s. The tail is scaled
to a direct-to-reverberant energy ratio of ``drr_db`` (0 dB by default: a mic a
couple of metres from the source in a small room).

Pure functions; any thread may call them.
"""

from __future__ import annotations

import zlib

import numpy as np
import soxr
from scipy import signal

SAMPLE_RATE = 44100

GAIN_DB = -12.0
NOISE_SNR_DB = 20.0
REVERB_RT60 = 0.4
LOWPASS_HZ = 8000.0
LOWPASS_ORDER = 6
ROUND_TRIP_RATE = 48000
LEAD_SILENCE_RANGE = (0.030, 0.080)
EXCERPT_SECONDS = 2.0
EXCERPT_MIN_SECONDS = 4.0

CONDITIONS = (
    "gain",
    "white_noise",
    "pink_noise",
    "room_reverb",
    "round_trip_48k",
    "lead_silence",
    "lowpass_8k",
    "light_combo",
    "full_combo",
)
EXCERPT_CONDITION = "excerpt_2s"

DESCRIPTIONS = {
    "gain": f"gain {GAIN_DB:+.0f} dB",
    "white_noise": f"white noise, {NOISE_SNR_DB:.0f} dB SNR",
    "pink_noise": f"pink noise, {NOISE_SNR_DB:.0f} dB SNR",
    "room_reverb": f"synthetic room reverb, RT60 {REVERB_RT60} s, DRR 0 dB",
    "round_trip_48k": "resample 44.1 -> 48 -> 44.1 kHz (soxr HQ)",
    "lead_silence": "30-80 ms of leading digital silence",
    "lowpass_8k": f"Butterworth lowpass {LOWPASS_HZ:.0f} Hz, order {LOWPASS_ORDER}",
    "light_combo": "gain, 48 kHz round trip, leading silence, pink noise 20 dB",
    "full_combo": "room reverb, lowpass 8 kHz, gain, 48 kHz round trip, leading silence, "
                  "pink noise 20 dB",
    EXCERPT_CONDITION: f"random {EXCERPT_SECONDS:.0f} s excerpt of a file longer than "
                       f"{EXCERPT_MIN_SECONDS:.0f} s",
}


def _as_float32(audio: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(audio, dtype=np.float32)


def mean_power(audio: np.ndarray) -> float:
    """Mean square of the clip (0.0 for an empty clip)."""
    audio = np.asarray(audio, dtype=np.float64)
    return float(np.mean(audio * audio)) if audio.size else 0.0


def gain(audio: np.ndarray, db: float = GAIN_DB) -> np.ndarray:
    """Scale by ``db`` decibels."""
    return _as_float32(np.asarray(audio, dtype=np.float64) * 10.0 ** (db / 20.0))


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian white noise."""
    return rng.standard_normal(n)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise with a 1/f power spectrum (white noise shaped in the FFT)."""
    if n == 0:
        return np.zeros(0)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0  # keep DC finite; it is removed below
    spectrum /= np.sqrt(freqs)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n)
    std = noise.std()
    return noise / std if std > 0 else noise


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white",
              reference_power: float | None = None) -> np.ndarray:
    """Add white or pink noise at ``snr_db`` below the signal's mean power.

    ``reference_power`` overrides the signal power (used when silence was padded
    on, so the padding does not lower the noise level). A silent clip gets no noise.
    """
    audio = np.asarray(audio, dtype=np.float64)
    power = mean_power(audio) if reference_power is None else reference_power
    if colour == "white":
        noise = white_noise(audio.size, rng)
    elif colour == "pink":
        noise = pink_noise(audio.size, rng)
    else:
        raise ValueError(f"unknown noise colour {colour!r} (white or pink)")
    scale = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return _as_float32(audio + scale * noise)


def room_impulse_response(rng: np.random.Generator, rt60: float = REVERB_RT60,
                          sample_rate: int = SAMPLE_RATE, drr_db: float = 0.0) -> np.ndarray:
    """Synthetic room impulse response, ``1.5 * rt60`` seconds long, direct path 1.0."""
    length = int(round(1.5 * rt60 * sample_rate))
    t = np.arange(length) / sample_rate
    rir = np.zeros(length)
    rir[0] = 1.0
    delays = np.sort(rng.uniform(0.002, 0.030, size=8))
    for delay in delays:
        index = int(round(delay * sample_rate))
        rir[index] += rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.6) * np.exp(-delay / 0.03)
    # Late tail: three bands, the highest decaying fastest, onset smoothed over 5 ms.
    edges = (0.0, 500.0, 4000.0, sample_rate / 2.0)
    rt60_factors = (1.3, 1.15, 1.0)
    tail = np.zeros(length)
    noise_spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    for low, high, factor in zip(edges[:-1], edges[1:], rt60_factors):
        band = np.fft.irfft(np.where((freqs >= low) & (freqs < high), noise_spectrum, 0), length)
        tail += band * np.exp(-6.9078 * t / (rt60 * factor))
    tail *= 1.0 - np.exp(-t / 0.005)
    direct_energy = float(np.sum(rir[:int(0.002 * sample_rate)] ** 2))
    reverberant_energy = float(np.sum(rir[int(0.002 * sample_rate):] ** 2))
    target = direct_energy / 10.0 ** (drr_db / 10.0)
    tail_energy = float(np.sum(tail ** 2))
    if target > reverberant_energy and tail_energy > 0:
        tail *= np.sqrt((target - reverberant_energy) / tail_energy)
    return rir + tail


def room_reverb(audio: np.ndarray, rng: np.random.Generator, rt60: float = REVERB_RT60,
                sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Convolve with :func:`room_impulse_response`; the output keeps the tail (``rt60`` s).

    The result is scaled to the input's peak so level is not part of this damage.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if audio.size == 0:
        return _as_float32(audio)
    rir = room_impulse_response(rng, rt60, sample_rate)
    wet = signal.fftconvolve(audio, rir)[: audio.size + int(round(rt60 * sample_rate))]
    peak_in, peak_out = np.max(np.abs(audio)), np.max(np.abs(wet))
    if peak_out > 0:
        wet *= peak_in / peak_out
    return _as_float32(wet)


def lowpass(audio: np.ndarray, cutoff_hz: float = LOWPASS_HZ, sample_rate: int = SAMPLE_RATE,
            order: int = LOWPASS_ORDER) -> np.ndarray:
    """Causal Butterworth lowpass."""
    sos = signal.butter(order, cutoff_hz, btype="lowpass", fs=sample_rate, output="sos")
    return _as_float32(signal.sosfilt(sos, np.asarray(audio, dtype=np.float64)))


def round_trip(audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
               other_rate: int = ROUND_TRIP_RATE) -> np.ndarray:
    """Resample to ``other_rate`` and back with soxr (HQ), as a 48 kHz device would."""
    audio = _as_float32(audio)
    if audio.size == 0:
        return audio
    there = soxr.resample(audio, sample_rate, other_rate, quality="HQ")
    return _as_float32(soxr.resample(there, other_rate, sample_rate, quality="HQ"))


def lead_silence(audio: np.ndarray, rng: np.random.Generator,
                 seconds_range: tuple[float, float] = LEAD_SILENCE_RANGE,
                 sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Prepend a random 30-80 ms of digital silence."""
    n = int(round(rng.uniform(*seconds_range) * sample_rate))
    return _as_float32(np.concatenate([np.zeros(n), np.asarray(audio, dtype=np.float64)]))


def excerpt(audio: np.ndarray, rng: np.random.Generator, seconds: float = EXCERPT_SECONDS,
            sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A random ``seconds``-long excerpt (the whole clip when it is shorter)."""
    n = int(round(seconds * sample_rate))
    audio = _as_float32(audio)
    if audio.size <= n:
        return audio.copy()
    start = int(rng.integers(0, audio.size - n + 1))
    return audio[start:start + n].copy()


def condition_rng(seed: int, condition: str, item: int) -> np.random.Generator:
    """Generator fixed by ``(seed, condition, item)``, independent of evaluation order."""
    return np.random.default_rng([seed, zlib.crc32(condition.encode()), item])


def apply_condition(condition: str, audio: np.ndarray, rng: np.random.Generator,
                    sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Apply one named condition of :data:`CONDITIONS` (or the excerpt) to a clean clip."""
    audio = _as_float32(audio)
    if condition == "gain":
        return gain(audio)
    if condition == "white_noise":
        return add_noise(audio, NOISE_SNR_DB, rng, "white")
    if condition == "pink_noise":
        return add_noise(audio, NOISE_SNR_DB, rng, "pink")
    if condition == "room_reverb":
        return room_reverb(audio, rng, sample_rate=sample_rate)
    if condition == "round_trip_48k":
        return round_trip(audio, sample_rate)
    if condition == "lead_silence":
        return lead_silence(audio, rng, sample_rate=sample_rate)
    if condition == "lowpass_8k":
        return lowpass(audio, sample_rate=sample_rate)
    if condition == "light_combo":
        return _light_chain(audio, rng, sample_rate)
    if condition == "full_combo":
        wet = room_reverb(audio, rng, sample_rate=sample_rate)
        return _light_chain(lowpass(wet, sample_rate=sample_rate), rng, sample_rate)
    if condition == EXCERPT_CONDITION:
        return excerpt(audio, rng, sample_rate=sample_rate)
    raise ValueError(f"unknown damage condition {condition!r}")


def _light_chain(audio: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    quieter = round_trip(gain(audio), sample_rate)
    power = mean_power(quieter)
    padded = lead_silence(quieter, rng, sample_rate=sample_rate)
    return add_noise(padded, NOISE_SNR_DB, rng, "pink", reference_power=power)
