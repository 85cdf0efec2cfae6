"""Waveform fits of library sounds against a track, discounted by chance (for ``app.detect``).

A sound ``s`` fits the track at a place when the normalised cross-correlation of ``s`` with
the track, at the best lag within ``pad`` of that place, is high. Under other parts a short,
dull sound (a kick, a tom) fits some drum of any track about as well as it fits its own
place, so a fit counts only by how far it stands above the same sound's fits at *blind*
places: ``BLIND_PLACES`` windows spread over the track, away from where the sound's
embedding hits put it. ``Fit.contrast`` is the fit minus the median blind fit, over the
blind fits' spread (a z; the spread has a floor so a flat track does not inflate it).

Both the quick screen (``SCREEN_RATE``, every speed ratio) and the full fit
(``VERIFY_RATE``) use ``fit_places``: the windows of one sound are correlated in one batch.

A hat, a cymbal or a shaker keeps most of its energy above 4 kHz: at ``VERIFY_RATE``
(5.5 kHz of bandwidth) what is left of it is weak against the bass and drums of a mix, and
a dull hat or a rim shot keeps most of its energy above 2 kHz, where the mix is weaker than
in the full band. A ``HighBand`` (the same high-pass applied to the track and the sound, so
the sound still fits where it is) lets such a sound be fitted on what it is made of;
``band_of`` picks the highest of ``HIGH_BANDS`` that holds BRIGHT_SHARE of a sound.

Any thread: pure functions of their arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import functools

import numpy as np
import scipy.fft
import scipy.signal
import soxr

SCREEN_RATE = 2205          # Hz: the screen's rate (a speed error of 1 % drifts 2 samples a second here)
FIT_SECONDS = 8.0           # the first seconds of a sound that are fitted (a whole bar or two of a loop)
BLIND_PLACES = 8
MIN_SPREAD = 0.03           # floor of the blind fits' spread
SELF_SIMILAR = 0.5          # level-envelope correlation at which a sound repeats itself (a loop's bars)
ENVELOPE_SECONDS = 0.01     # frame of that envelope
BRIGHT_SHARE = 0.5          # of a sound's energy in a high band makes it fitted there (hats: 0.6-0.95 above 4 kHz)
_SILENT = 1e-10


@dataclass(frozen=True)
class Fit:
    """The best fit of one sound at one speed: ``correlation`` at ``start_s`` (seconds in
    the track), ``contrast`` against the blind places (see the module docstring)."""
    correlation: float
    start_s: float
    contrast: float
    ratio: float


def at_speed(sound: np.ndarray, rate: int, ratio: float, quality: str = "HQ") -> np.ndarray:
    """The first FIT_SECONDS of ``sound`` (at ``rate``) played ``ratio`` times faster, at
    the same rate."""
    if ratio != 1.0:
        sound = soxr.resample(sound, rate, rate / ratio, quality=quality)
    return np.asarray(sound[:int(FIT_SECONDS * rate)], dtype=np.float64)


@functools.lru_cache(maxsize=8)
def _high_pass(cutoff_hz: float, rate: int) -> np.ndarray:
    return scipy.signal.butter(4, cutoff_hz, "highpass", fs=rate, output="sos")


@dataclass(frozen=True)
class HighBand:
    """What lies above ``cutoff_hz`` of audio at ``rate``: a 4th-order high-pass, causal and
    linear, so a sound's band sits in the track's band as the sound sits in the track."""
    cutoff_hz: float
    rate: int

    def of(self, audio: np.ndarray) -> np.ndarray:
        """``audio`` (at ``rate``) through the high-pass, float64."""
        audio = np.asarray(audio, dtype=np.float64)
        if audio.size == 0:
            return audio
        return scipy.signal.sosfilt(_high_pass(self.cutoff_hz, self.rate), audio)

    def share(self, audio: np.ndarray) -> float:
        """The part of ``audio``'s energy (at ``rate``) that lies in the band (0 when silent)."""
        audio = np.asarray(audio, dtype=np.float64)
        total = float(np.dot(audio, audio))
        if total <= _SILENT:
            return 0.0
        band = self.of(audio)
        return float(np.dot(band, band)) / total


# brightest first: hats and cymbals (their detail up to 11 kHz), then dull hats and rims
HIGH_BANDS = (HighBand(4000.0, 22050), HighBand(2000.0, 11025))


def band_of(sound: np.ndarray, rate: int) -> HighBand | None:
    """The first of HIGH_BANDS that holds BRIGHT_SHARE of ``sound`` (at ``rate``, at least
    the band's rate), or None: the sound is fitted on its full band."""
    for band in HIGH_BANDS:
        at_rate = sound if rate == band.rate else soxr.resample(sound, rate, band.rate)
        if band.share(at_rate) >= BRIGHT_SHARE:
            return band
    return None


def repeat_lags(sound: np.ndarray, rate: int, count: int = 3, shortest_s: float = 0.25) -> list[float]:
    """Up to ``count`` lags in seconds (best first) at which ``sound`` repeats itself: local
    maxima of the correlation of its level envelope with itself shifted, over their overlap,
    of at least SELF_SIMILAR, from ``shortest_s`` to half its length. A loop of bars that
    repeat fits a track almost as well a bar early or late as at its start; the fit is
    then tried there too."""
    frame = max(1, int(ENVELOPE_SECONDS * rate))
    n = np.asarray(sound).size // frame
    lo, hi = max(1, int(round(shortest_s / ENVELOPE_SECONDS))), n // 2
    if hi <= lo + 1:
        return []
    env = np.sqrt(np.mean(np.square(np.asarray(sound[:n * frame], dtype=np.float64)).reshape(n, frame), axis=1))
    size = scipy.fft.next_fast_len(2 * n, real=True)
    spectrum = scipy.fft.rfft(env, size)
    products = scipy.fft.irfft(spectrum * np.conj(spectrum), size)[:hi + 2]   # sum_i e[i] e[i + lag]
    lags = np.arange(lo - 1, hi + 2)
    sums = np.concatenate([[0.0], np.cumsum(env)])
    squares = np.concatenate([[0.0], np.cumsum(env * env)])
    m = n - lags
    sa, sb = sums[n - lags], sums[n] - sums[lags]
    qa, qb = squares[n - lags], squares[n] - squares[lags]
    cov = products[lags] - sa * sb / m
    var = np.maximum((qa - sa * sa / m) * (qb - sb * sb / m), 1e-30)
    r = cov / np.sqrt(var)
    peaks = [i for i in range(1, len(r) - 1) if r[i] > r[i - 1] and r[i] >= r[i + 1] and r[i] >= SELF_SIMILAR]
    peaks.sort(key=lambda i: -r[i])
    return [float(lags[i] * frame / rate) for i in peaks[:count]]


@dataclass(frozen=True)
class TrackView:
    """A track at one rate, with the running sum of its squared samples."""
    audio: np.ndarray
    rate: int
    energy: np.ndarray

    @classmethod
    def of(cls, audio: np.ndarray, rate: int) -> "TrackView":
        audio = np.asarray(audio, dtype=np.float32)
        energy = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
        return cls(audio, rate, energy)


def window_correlations(track: TrackView, starts: list[int], length: int,
                        sound: np.ndarray) -> np.ndarray:
    """Normalised correlation of ``sound`` at every lag that lies wholly inside each window
    ``[start, start + length)`` of the track: (len(starts), length - len(sound) + 1)."""
    n = sound.size
    lags = length - n + 1
    windows = np.stack([track.audio[s:s + length] for s in starts])
    size = scipy.fft.next_fast_len(length + n, real=True)
    spectrum = np.conj(scipy.fft.rfft(sound.astype(np.float32), size))
    xc = scipy.fft.irfft(scipy.fft.rfft(windows, size, axis=1) * spectrum,
                         size, axis=1)[:, :lags]
    first = np.asarray(starts)[:, None] + np.arange(lags)[None, :]
    local = track.energy[first + n] - track.energy[first]
    sound_energy = float(np.dot(sound, sound))
    return xc / np.sqrt(np.maximum(local * sound_energy, _SILENT))


def blind_starts(track_size: int, window: int, avoid: list[int], count: int = BLIND_PLACES) -> list[int]:
    """Up to ``count`` window starts spread over the track that do not overlap a window
    at any of ``avoid``."""
    last = track_size - window
    if last <= 0:
        return []
    starts = np.linspace(0, last, count * 2).astype(int)
    free = [int(s) for s in starts if all(abs(int(s) - a) >= window for a in avoid)]
    return free[::2] if len(free) >= 2 * count else free[:count]


def fit_places(track: TrackView, sound: np.ndarray, places_s: list[float],
               pad_s: float, ratio: float) -> Fit | None:
    """The best fit of ``sound`` (already at ``rate`` and the speed ``ratio``) within
    ``pad_s`` of any of ``places_s`` in ``track``, with its contrast against blind places."""
    rate, size = track.rate, track.audio.size
    n, pad = sound.size, int(pad_s * rate)
    if n < 32 or float(np.dot(sound, sound)) <= _SILENT or size < n:
        return None
    length = min(size, n + 2 * pad)
    starts = sorted({min(max(0, int(p * rate) - pad), size - length) for p in places_s})
    blind = blind_starts(size, length, starts)
    corr = window_correlations(track, starts + blind, length, sound)
    at = np.unravel_index(int(np.argmax(corr[:len(starts)])), (len(starts), corr.shape[1]))
    peak = float(corr[at])
    blind_fits = corr[len(starts):].max(axis=1)
    if blind_fits.size >= 3:
        median = float(np.median(blind_fits))
        spread = max(MIN_SPREAD, 1.4826 * float(np.median(np.abs(blind_fits - median))))
        contrast = (peak - median) / spread
    else:
        contrast = peak / MIN_SPREAD
    return Fit(peak, (starts[at[0]] + int(at[1])) / rate, contrast, ratio)
