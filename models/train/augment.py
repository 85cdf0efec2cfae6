"""Training damage: what a sample played in a studio and caught by a microphone goes through.

Independent of the evaluation damage in ``bench/damage.py`` (own code, parameter ranges
and random streams). A view of a clip is made by :func:`damage_view`, which draws a random
chain from these parts:

- excerpt / onset jitter: the view starts up to +-0.58 s (half a block hop) away from the
  clean block and may be shorter (1.4-2.4 s), or gets 0-250 ms of lead-in (silence or noise);
- small speed changes (+-4 %, pitch and time together, by resampling);
- speaker and microphone colouration: 1-4 peaking/shelf biquads (+-10 dB), a high-pass
  at 40-400 Hz, a low-pass at 2.5-16 kHz (Butterworth, Chebyshev or elliptic, order 2-8);
- rooms: hybrid impulse responses, the early part from a pyroomacoustics shoebox image
  source model (random room, positions, absorption) and a late tail of band-split noise
  decaying with a random RT60 of 0.1-1.2 s, at a random direct-to-reverberant ratio;
- background noise at 5-30 dB SNR: white, pink (IIR-filtered), brown (integrated),
  hum with harmonics, or a real noise bed (another training clip, low-passed or not);
- dynamics: a feed-forward compressor (pedalboard), soft clipping, gain;
- transport: resampling round trips (16/22.05/32/48/96 kHz, several soxr qualities) and
  MP3 encoding (pedalboard's MP3Compressor, VBR quality 1-9).

Any thread may call these functions; each takes its own ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np
import soxr
from scipy import signal

SAMPLE_RATE = 44100
BLOCK_SAMPLES = 101 * 1024          # what one encoder block covers
MAX_SHIFT = int(0.58 * SAMPLE_RATE)


# ---------------------------------------------------------------- rooms

def _late_tail(rng: np.random.Generator, rt60: float, length: int) -> np.ndarray:
    t = np.arange(length) / SAMPLE_RATE
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / SAMPLE_RATE)
    edges = (0.0, 250.0, 1000.0, 3000.0, 8000.0, SAMPLE_RATE / 2 + 1)
    # high bands decay faster (air and wall absorption); random tilt per room
    tilt = rng.uniform(0.05, 0.35)
    tail = np.zeros(length)
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        band = np.fft.irfft(np.where((freqs >= low) & (freqs < high), spectrum, 0), length)
        band_rt60 = rt60 * (1.0 + tilt * (2 - k) / 2)
        tail += band * np.exp(-6.9078 * t / max(band_rt60, 0.05))
    return tail


def room_impulse_response(rng: np.random.Generator) -> np.ndarray:
    """A hybrid impulse response (pyroomacoustics early reflections + decaying noise tail)."""
    import pyroomacoustics as pra

    rt60 = float(rng.uniform(0.1, 1.2))
    dims = np.array([rng.uniform(2.5, 14.0), rng.uniform(2.5, 10.0), rng.uniform(2.3, 5.0)])
    try:
        absorption, _ = pra.inverse_sabine(rt60, dims)
    except ValueError:
        absorption = 0.9
    absorption = float(np.clip(absorption, 0.02, 0.99))
    order = int(rng.integers(2, 9))
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=order)
    margin = 0.4
    source = [rng.uniform(margin, d - margin) for d in dims]
    mic = [rng.uniform(margin, d - margin) for d in dims]
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    early = np.asarray(room.rir[0][0], dtype=np.float64)
    direct = int(np.argmax(np.abs(early)))
    early = early[max(0, direct - 40):]
    length = int(1.3 * rt60 * SAMPLE_RATE) + early.size
    tail = _late_tail(rng, rt60, length)
    mixing = int(rng.uniform(0.02, 0.08) * SAMPLE_RATE)
    ramp = 1.0 - np.exp(-np.arange(length) / max(mixing / 3, 1))
    tail *= ramp
    rir = np.zeros(length)
    rir[:early.size] += early
    direct_energy = float(np.max(np.abs(early)) ** 2)
    drr_db = rng.uniform(-8.0, 12.0)
    tail_energy = float(np.sum(tail ** 2))
    if tail_energy > 0:
        tail *= np.sqrt(direct_energy / 10 ** (drr_db / 10) / tail_energy)
    rir += tail
    return rir / np.max(np.abs(rir))


def make_rir_bank(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    return [room_impulse_response(rng).astype(np.float32) for _ in range(count)]


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    wet = signal.fftconvolve(audio, rir)[:audio.size + rir.size // 2]
    peak = np.max(np.abs(wet))
    return wet * (np.max(np.abs(audio)) / peak) if peak > 0 else wet


# ---------------------------------------------------------------- colouration

def _peaking(f0: float, gain_db: float, q: float):
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / SAMPLE_RATE
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
    return b / den[0], den / den[0]


def colour(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random EQ bumps and dips, then band limits of a small speaker or a cheap mic."""
    out = audio
    for _ in range(int(rng.integers(1, 5))):
        f0 = float(np.exp(rng.uniform(np.log(60), np.log(12000))))
        b, a = _peaking(f0, float(rng.uniform(-10, 10)), float(rng.uniform(0.4, 4.0)))
        out = signal.lfilter(b, a, out)
    if rng.random() < 0.6:
        cutoff = float(np.exp(rng.uniform(np.log(40), np.log(400))))
        sos = signal.butter(int(rng.integers(1, 5)), cutoff, "highpass", fs=SAMPLE_RATE, output="sos")
        out = signal.sosfilt(sos, out)
    if rng.random() < 0.7:
        out = band_limit(out, rng)
    return out


def band_limit(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cutoff = float(np.exp(rng.uniform(np.log(2500), np.log(16000))))
    order = int(rng.integers(2, 9))
    kind = rng.integers(0, 3)
    if kind == 0:
        sos = signal.butter(order, cutoff, "lowpass", fs=SAMPLE_RATE, output="sos")
    elif kind == 1:
        sos = signal.cheby1(order, float(rng.uniform(0.5, 3)), cutoff, "lowpass", fs=SAMPLE_RATE, output="sos")
    else:
        sos = signal.ellip(min(order, 6), 1.0, 50.0, cutoff, "lowpass", fs=SAMPLE_RATE, output="sos")
    return signal.sosfilt(sos, audio)


# ---------------------------------------------------------------- noise

def coloured_noise(n: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        noise = white
    elif kind == "pink":
        # three-pole approximation of a -3 dB/octave slope
        b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
        a = [1, -2.494956002, 2.017265875, -0.522189400]
        noise = signal.lfilter(b, a, white)
    elif kind == "brown":
        noise = signal.lfilter([1.0], [1.0, -0.997], white)
    elif kind == "hum":
        f0 = float(rng.choice([50.0, 60.0])) * rng.uniform(0.99, 1.01)
        t = np.arange(n) / SAMPLE_RATE
        noise = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3))
                    for k in range(1, 8)) + 0.05 * white
    else:
        raise ValueError(kind)
    noise = noise - noise.mean()
    std = noise.std()
    return noise / std if std > 0 else noise


def add_noise(audio: np.ndarray, rng: np.random.Generator, beds: list[np.ndarray],
              snr_db: float, reference_power: float) -> np.ndarray:
    """Add one noise at ``snr_db`` below ``reference_power`` (power of the clip itself)."""
    kind = rng.choice(["white", "pink", "brown", "hum", "bed", "bed"], p=[0.2, 0.25, 0.1, 0.05, 0.2, 0.2])
    if kind == "bed" and beds:
        bed = beds[int(rng.integers(len(beds)))]
        if bed.size < audio.size:
            bed = np.tile(bed, audio.size // bed.size + 1)
        start = int(rng.integers(0, bed.size - audio.size + 1))
        noise = bed[start:start + audio.size].astype(np.float64)
        if rng.random() < 0.5:
            noise = band_limit(noise, rng)
        std = noise.std()
        if std == 0:
            return audio
        noise = (noise - noise.mean()) / std
    else:
        noise = coloured_noise(audio.size, rng, "pink" if kind == "bed" else str(kind))
    return audio + np.sqrt(reference_power / 10 ** (snr_db / 10)) * noise


# ---------------------------------------------------------------- dynamics and transport

def compress(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import pedalboard

    peak = np.max(np.abs(audio))
    if peak == 0:
        return audio
    x = (audio / peak * 0.8).astype(np.float32)
    comp = pedalboard.Compressor(threshold_db=float(rng.uniform(-30, -6)), ratio=float(rng.uniform(2, 10)),
                                 attack_ms=float(rng.uniform(0.5, 30)), release_ms=float(rng.uniform(30, 300)))
    y = comp(x, SAMPLE_RATE).astype(np.float64)
    if rng.random() < 0.3:
        drive = rng.uniform(1.5, 6.0)
        y = np.tanh(drive * y) / np.tanh(drive)
    return y


def mp3(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import pedalboard

    peak = np.max(np.abs(audio))
    if peak == 0:
        return audio
    x = (audio / peak * 0.9).astype(np.float32)
    codec = pedalboard.MP3Compressor(vbr_quality=float(rng.uniform(1.0, 9.0)))
    y = codec(x, SAMPLE_RATE).astype(np.float64)
    return y[:audio.size] / 0.9 * peak


def resample_round_trip(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rate = int(rng.choice([16000, 22050, 32000, 48000, 96000]))
    quality = str(rng.choice(["LQ", "MQ", "HQ", "VHQ"]))
    there = soxr.resample(audio.astype(np.float32), SAMPLE_RATE, rate, quality=quality)
    back = soxr.resample(there, rate, SAMPLE_RATE, quality=quality).astype(np.float64)
    return back[:audio.size] if back.size >= audio.size else np.pad(back, (0, audio.size - back.size))


def speed_change(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    factor = float(rng.uniform(0.96, 1.04))
    return soxr.resample(audio.astype(np.float32), SAMPLE_RATE, int(round(SAMPLE_RATE / factor)),
                         quality="HQ").astype(np.float64)


# ---------------------------------------------------------------- one view

def clean_segment(audio: np.ndarray, start: int) -> np.ndarray:
    return audio[start:start + BLOCK_SAMPLES]


def damage_view(audio: np.ndarray, start: int, rng: np.random.Generator, rirs: list[np.ndarray],
                beds: list[np.ndarray], strength: float = 1.0) -> np.ndarray:
    """One damaged view of the block that starts at ``start`` in ``audio`` (mono, 44.1 kHz).

    ``strength`` in (0, 1] scales how many damages are drawn; the clean view is
    ``clean_segment(audio, start)``.
    """
    p = strength
    audio = np.asarray(audio, dtype=np.float64)
    long_clip = audio.size > BLOCK_SAMPLES + SAMPLE_RATE // 2
    if long_clip and rng.random() < 0.8:
        start = int(np.clip(start + rng.integers(-MAX_SHIFT, MAX_SHIFT + 1), 0, audio.size - SAMPLE_RATE))
    length = BLOCK_SAMPLES
    if long_clip and rng.random() < 0.4:
        length = int(rng.uniform(1.4, 2.4) * SAMPLE_RATE)
    x = audio[start:start + length].copy()
    if x.size == 0 or np.max(np.abs(x)) == 0:
        return x.astype(np.float32)
    if rng.random() < 0.3 * p:
        x = speed_change(x, rng)
    power = float(np.mean(x ** 2))
    if rng.random() < 0.75 * p and rirs:
        x = reverberate(x, rirs[int(rng.integers(len(rirs)))])
    if rng.random() < 0.7 * p:
        x = colour(x, rng)
    if rng.random() < 0.3 * p:
        x = compress(x, rng)
    power = float(np.mean(x ** 2)) if power > 0 else power
    lead = 0
    if rng.random() < 0.6:
        lead = int(rng.uniform(0.0, 0.25) * SAMPLE_RATE)
        x = np.concatenate([np.zeros(lead), x])
    n_noises = int(rng.choice([0, 1, 2], p=[1 - 0.8 * p, 0.6 * p, 0.2 * p]))
    for _ in range(n_noises):
        x = add_noise(x, rng, beds, float(rng.uniform(5.0, 30.0)), power)
    if rng.random() < 0.35 * p:
        x = resample_round_trip(x, rng)
    if rng.random() < 0.3 * p:
        x = mp3(x, rng)
    x = x * 10 ** (rng.uniform(-30, 6) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)
