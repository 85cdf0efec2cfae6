"""Whether one sound may be another played faster or slower, from the fine structure of
their spectra: the variant check's first, cheap test (``app.dup_verify``).

Played at speed ``r`` (resampled), every frequency of a sound is multiplied by ``r``: on a
log-frequency axis its whole spectrum shifts by ``log2(r)`` octaves, the fine structure
included (partials, the ripples of a noise burst). ``fine_structure`` keeps that structure
and drops the broad shape (a level per 1/96 octave, less its average over a quarter
octave), so two snares of one kit, whose broad shapes agree, do not look alike while a
pitched copy does. ``speed_match`` is the best correlation of two such structures over
the speeds asked for.

Measured on ``bench/duplicates.py``'s pitched and stretched copies (including copies of
trimmed, faded and 8-bit copies): 0.71 or more; candidate pairs that are no variant: 97.5 %
below ``app.dup_verify.VARIANT_SPECTRUM`` (0.4).

Any thread: pure functions of their arguments.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BANDS_PER_OCTAVE = 96
LOWEST_HZ = 150.0
HIGHEST_HZ = 5000.0
SMOOTH_BANDS = BANDS_PER_OCTAVE // 4   # either side: the broad shape taken out
MIN_SAMPLES = 256                       # shorter sounds have no fine structure to compare
_FFT_SIZE = 16384
_JITTER = (-0.5, 0.0, 0.5)              # bands: a speed between the grid's steps


@lru_cache(maxsize=8)
def _hann(size: int) -> np.ndarray:
    return np.hanning(size)


@lru_cache(maxsize=4)
def _band_of_bin(sample_rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    edges = LOWEST_HZ * 2.0 ** (np.arange(int(BANDS_PER_OCTAVE * np.log2(HIGHEST_HZ / LOWEST_HZ)) + 2)
                                / BANDS_PER_OCTAVE)
    band = np.searchsorted(edges, np.fft.rfftfreq(_FFT_SIZE, 1.0 / sample_rate)) - 1
    used = (band >= 0) & (band < edges.size - 1)
    return band[used], used, edges.size - 1


def fine_structure(x: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """(bands,) float64: the log level of each 1/96-octave band of ``x`` (Hann-windowed,
    at most ``_FFT_SIZE`` samples) less its quarter-octave average; None when ``x`` is
    shorter than ``MIN_SAMPLES``."""
    import scipy.fft   # here, not at import: the window loads the duplicate modules, not scipy

    x = np.asarray(x, dtype=np.float64)[:_FFT_SIZE]
    if x.size < MIN_SAMPLES:
        return None
    power = np.abs(scipy.fft.rfft(x * _hann(x.size), _FFT_SIZE)) ** 2
    band, used, bands = _band_of_bin(sample_rate)
    level = np.bincount(band, power[used], minlength=bands)[:bands]
    level = np.log(level + 1e-10 * (level.max() + 1e-30))
    kernel = np.ones(2 * SMOOTH_BANDS + 1) / (2 * SMOOTH_BANDS + 1)
    broad = np.convolve(np.pad(level, SMOOTH_BANDS, mode="edge"), kernel, mode="valid")
    return level - broad


def speed_match(a: np.ndarray, b: np.ndarray, ratios) -> float:
    """The best correlation of ``a``'s fine structure with ``b``'s, where ``b`` plays at
    one of ``ratios`` times ``a``'s speed (its bands shifted down by that many octaves,
    give or take half a band)."""
    shifts = (BANDS_PER_OCTAVE * np.log2(np.asarray(list(ratios), dtype=np.float64))[:, None]
              + np.asarray(_JITTER)[None, :]).reshape(-1, 1)
    at = np.arange(a.size, dtype=np.float64)[None, :] + shifts          # (shifts, bands)
    inside = (at >= 0) & (at <= b.size - 1)
    weight = inside.astype(np.float64)
    count = weight.sum(axis=1)
    y = np.interp(at, np.arange(b.size, dtype=np.float64), b) * weight
    x = a[None, :] * weight
    # Pearson correlation over each row's bands inside ``b``
    with np.errstate(invalid="ignore", divide="ignore"):
        x -= weight * (x.sum(axis=1) / count)[:, None]
        y -= weight * (y.sum(axis=1) / count)[:, None]
        corr = (x * y).sum(axis=1) / np.sqrt(np.maximum((x * x).sum(axis=1) * (y * y).sum(axis=1), 1e-30))
    corr[count < BANDS_PER_OCTAVE // 2] = -1.0
    return float(corr.max()) if corr.size else -1.0
