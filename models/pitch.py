"""Root note and tuning of tonal one-shots: YIN f0 over the stable part after the attack.

Recipe (de Cheveigné & Kawahara's YIN): the attack is the loudest 10 ms frame of the
first 2 s; from 40 ms after it, at most 1.5 s is analysed in 40 ms steps while the
level stays within 40 dB of that peak. Each frame's cumulative-mean-normalised
difference function gives an f0 (first dip under a threshold, refined by parabolic
interpolation) and an aperiodicity (the dip's depth). The root is the median pitch of
the periodic frames; its cents are relative to A440 equal temperament. Abstains
(``midi=None``) on unpitched sounds: too few periodic frames or an unstable pitch.

Pure functions; any thread may call them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.spectrum import as_mono, decimate, frames

NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
F0_MIN, F0_MAX = 27.0, 4200.0         # A0 (27.5 Hz) to C8 (4186 Hz)
ANALYSIS_RATE = 22050                 # first pass; the tuning pass reads low partials at a rate of its own
ATTACK_SEARCH_SECONDS = 2.0
SKIP_AFTER_PEAK = 0.04
ANALYSIS_SECONDS = 1.5
STEP_SECONDS = 0.01
YIN_STEP_SECONDS = 0.01
FLOOR_DB = -40.0
DIP_THRESHOLD = 0.15                  # YIN's absolute threshold
MAX_APERIODICITY = 0.3                # a frame above this is unvoiced
MIN_VOICED_SHARE = 0.5
MAX_SPREAD = 0.35                     # semitones between the 25th and 75th percentile


@dataclass(frozen=True)
class RootEstimate:
    midi: int | None         # MIDI note number (69 = A4); None: abstained (unpitched)
    cents: float             # deviation of the sound from that note, -50..50
    confidence: float        # 0..1

    def note_name(self) -> str:
        """Scientific pitch name ("A3", "C#5"), "" when abstained."""
        if self.midi is None:
            return ""
        return f"{NAMES[self.midi % 12]}{self.midi // 12 - 1}"


def estimate_root(audio: np.ndarray, sample_rate: int) -> RootEstimate:
    """Estimate the root note and tuning of ``audio`` (mono float32, any rate)."""
    audio = as_mono(audio)
    segment = stable_segment(audio, sample_rate)
    if segment is None:
        return RootEstimate(None, 0.0, 0.0)
    pitches, aperiodicity = yin(*decimate(segment, sample_rate, ANALYSIS_RATE))
    if pitches.size == 0:
        return RootEstimate(None, 0.0, 0.0)
    voiced = aperiodicity <= MAX_APERIODICITY
    share = float(np.mean(voiced))
    if not np.any(voiced):
        return RootEstimate(None, 0.0, 0.0)
    midi_float = float(np.median(pitches[voiced]))
    low, high = np.percentile(pitches[voiced], [25, 75])
    spread = float(high - low)
    periodicity = 1.0 - float(np.median(aperiodicity[voiced]))
    confidence = share * periodicity * float(np.clip(1.0 - spread, 0.0, 1.0))
    if share < MIN_VOICED_SHARE or spread > MAX_SPREAD:
        return RootEstimate(None, 0.0, confidence)
    midi_float = _low_partials_pitch(segment, sample_rate, midi_float)
    midi = int(round(midi_float))
    return RootEstimate(midi, round(100.0 * (midi_float - midi), 1), confidence)


def stable_segment(audio: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """The part after the attack that stays within ``FLOOR_DB`` of the peak, at most 1.5 s."""
    hop = max(1, int(STEP_SECONDS * sample_rate))
    head = audio[: int(ATTACK_SEARCH_SECONDS * sample_rate) + hop]
    if head.size < hop:
        return None
    rms = np.sqrt(np.mean(frames(head, hop, hop).astype(np.float64) ** 2, axis=1))
    peak = int(np.argmax(rms))
    if rms[peak] <= 1e-6:
        return None
    start = peak * hop + int(SKIP_AFTER_PEAK * sample_rate)
    segment = audio[start: start + int(ANALYSIS_SECONDS * sample_rate)]
    if segment.size < hop:
        return None
    segment = segment - segment.mean()      # a DC offset is no pitch
    level = np.sqrt(np.mean(frames(segment, hop, hop).astype(np.float64) ** 2, axis=1))
    quiet = np.flatnonzero(level < rms[peak] * 10 ** (FLOOR_DB / 20))
    end = quiet[0] * hop if quiet.size else segment.size
    return segment[:end] if end >= int(0.05 * sample_rate) else None


def yin(segment: np.ndarray, sample_rate: float, f0_min: float = F0_MIN,
        f0_max: float = F0_MAX) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame pitch (fractional MIDI) and aperiodicity (0 = perfectly periodic)."""
    tau_max = int(np.ceil(sample_rate / f0_min))
    tau_min = max(2, int(sample_rate / f0_max))
    window = tau_max
    hop = max(1, int(YIN_STEP_SECONDS * sample_rate))
    segment = segment.astype(np.float64)
    if segment.size < window + tau_max:
        # short sounds: only lags up to half of what is there
        tau_max = max(tau_min + 2, segment.size // 2)
        window = segment.size - tau_max
        if window <= tau_min:
            return np.empty(0), np.empty(0)
    framed = frames(segment, window + tau_max, hop)
    import scipy.fft   # here: the window imports this module, and scipy loads slowly
    # any size of at least a frame keeps lags <= tau_max from wrapping; 5-smooth sizes
    # transform faster than the next power of two
    n_fft = scipy.fft.next_fast_len(window + tau_max, real=True)
    spectrum = scipy.fft.rfft(framed, n_fft, axis=1)
    head = scipy.fft.rfft(framed[:, :window], n_fft, axis=1)
    np.conj(head, out=head)
    head *= spectrum
    cross = scipy.fft.irfft(head, n_fft, axis=1)[:, : tau_max + 1]
    # each frame's energies from one prefix sum of the segment (the frames overlap: one
    # sum over each of them cost more than their transforms)
    energy = np.concatenate([[0.0], np.cumsum(segment * segment)])
    starts = np.arange(framed.shape[0])[:, None] * hop
    energy_head = energy[starts + window] - energy[starts]
    lags = np.arange(tau_max + 1)
    energy_shift = energy[starts + lags + window] - energy[starts + lags]
    diff = np.maximum(energy_head + energy_shift - 2.0 * cross, 0.0)
    cumulative = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(cumulative, 1e-12)
    rows = np.arange(framed.shape[0])
    # each frame's period: the first lag under the threshold, walked down to the bottom of
    # its dip; the deepest lag where none is under it
    searched = cmnd[:, tau_min:tau_max]
    below = searched < DIP_THRESHOLD
    has_dip = below.any(axis=1)
    tau = tau_min + below.argmax(axis=1)
    if not has_dip.all():
        tau[~has_dip] = tau_min + searched[~has_dip].argmin(axis=1)
    walking = has_dip.copy()
    while walking.any():       # a few lags a frame
        at = rows[walking]
        step = tau[at] + 1
        falls = step < tau_max
        falls[falls] = cmnd[at[falls], step[falls]] < cmnd[at[falls], tau[at[falls]]]
        tau[at[falls]] += 1
        walking[at[~falls]] = False
    a = cmnd[rows, tau - 1]
    b = cmnd[rows, tau]
    c = cmnd[rows, np.minimum(tau + 1, tau_max)]
    denominator = a - 2.0 * b + c
    curved = denominator > 0
    offset = np.zeros(len(rows))
    offset[curved] = np.clip(0.5 * (a - c)[curved] / denominator[curved], -0.5, 0.5)
    pitches = 69.0 + 12.0 * np.log2(sample_rate / (tau + offset) / 440.0)
    silent = energy_head[:, 0] <= 1e-12 * window
    aperiodicity = np.where(silent, 1.0, b)
    return pitches, aperiodicity


def _low_partials_pitch(segment: np.ndarray, sample_rate: int, midi_float: float) -> float:
    """Re-estimate with only the partials below ~3.5 f0: stretched (inharmonic) upper partials
    of pianos pull YIN's period sharp, while a tuner reads the low ones. Keeps ``midi_float``
    when the filtered sound is not periodic enough (weak fundamental)."""
    hz = 440.0 * 2 ** ((midi_float - 69.0) / 12.0)
    cutoff = 3.5 * hz
    if cutoff >= 0.4 * sample_rate:
        return midi_float
    n_fft = 1 << int(np.ceil(np.log2(segment.size + 4096)))   # room for the filter's short ring
    spectrum = np.fft.rfft(segment.astype(np.float64), n_fft)
    freqs = np.arange(spectrum.size) * sample_rate / n_fft
    ramp = np.clip((1.5 * cutoff - freqs) / (0.5 * cutoff), 0.0, 1.0)
    filtered = np.fft.irfft(spectrum * np.sin(0.5 * np.pi * ramp) ** 2, n_fft)[: segment.size]
    # only low partials are left: a lower rate and a narrow lag range suffice
    low, rate = decimate(filtered, sample_rate, max(8000.0, 8.0 * cutoff))
    pitches, aperiodicity = yin(low, rate, hz / 1.5, hz * 1.5)
    near = (aperiodicity <= MAX_APERIODICITY) & (np.abs(pitches - midi_float) < 0.5)
    if np.mean(near) < MIN_VOICED_SHARE:
        return midi_float
    return float(np.median(pitches[near]))
