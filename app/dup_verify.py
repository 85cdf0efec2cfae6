"""Audio verification of a candidate duplicate pair: exact, near, variant or not at all.

Numbers only (numpy, soxr): the caller decodes. Both sounds are compared mono at
``VERIFY_RATE`` (11,025 Hz): re-encoding, resampling and bit depth change little below
5.5 kHz, while two recordings of one drum (velocity layers, other takes) differ in their
waveform even where their spectra agree.

- ``pcm_hash``: a hash of the decoded samples at the file's own rate and channel count, so
  the same samples in another container (WAV, FLAC, AIFF, a 16-bit file stored as 24-bit)
  hash the same.
- ``align``: the lag that maximises the normalised cross-correlation of the two waveforms.
  The shorter sound must lie inside the longer one (``COVER``) for a trimmed copy to count.
- ``segment_correlation``: at that lag, the median correlation of 50 ms segments (those
  within 30 dB of the loudest): a fade or a gain change leaves each segment's shape, while
  the loud attack no longer decides the whole figure.
- ``head_envelope_distance``: how differently the two rise and fall over the first half
  of their overlap, in 10 ms steps. Two velocity layers of one drum correlate segment by
  segment in their ringing tails, but a harder hit's attack stands further above its tail.
- ``verify``: ``near`` when it reaches ``NEAR_CORRELATION`` and their heads rise and fall
  alike (``NEAR_ENVELOPE_DB``); otherwise, when the fine structures of their spectra
  match at one of the speed ratios of ±1–2 semitones and ±5–10 % tempo (or the ratio of
  the two lengths: ``app.dup_spectrum``), the candidate is resampled by each of them,
  screened, the best refined on a fine grid, and ``variant`` when it reaches
  ``VARIANT_CORRELATION`` and the two rise and decay alike (``envelope_distance``): a
  tone matches any tone of its pitch segment by segment (LMMS's single-cycle saw and
  square waves did, before the fine-structure test).

The thresholds were measured on Debian's Hydrogen kits and Sonic Pi samples
(``bench/duplicates.py``): Ogg Vorbis and MP3 copies, resampled, faded, gain-changed and
8-bit copies keep a segment correlation of at least 0.973 (40 files each); 90 % of the velocity-layer pairs of
one kit instrument stay below 0.962. About 6 % of those layer pairs are one recording at
another gain (correlation 1.0): no audio test can tell them from a gain-changed copy, so
``app.duplicates`` leaves out the files a kit declares as parts of one instrument.

Any thread: pure functions of their arguments.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import soxr

from app.dup_spectrum import fine_structure, speed_match

VERIFY_RATE = 11025
NEAR_CORRELATION = 0.97
VARIANT_CORRELATION = 0.95
NEAR_ENVELOPE_DB = 0.75   # copies <= 0.47 dB (Ogg the most); Sonic Pi's hard/soft drums 1.8-2.4 dB
VARIANT_ENVELOPE_DB = 1.0  # variants rise and decay alike (copies: < 0.2 dB; toms of two kits: 2-3 dB)
SEGMENT = 551           # 50 ms at VERIFY_RATE
HEAD_SEGMENT = 110      # 10 ms at VERIFY_RATE
MIN_SEGMENT = 110       # 10 ms
COVER = 0.9             # share of the shorter sound's energy that must overlap the longer
MAX_SECONDS = 60.0      # how much of each sound is compared
VARIANT_SECONDS = 3.0   # variants are compared on their first seconds (a ratio error drifts)
# a variant's first second at the best screened ratio correlates at least this much before
# refining: found variants screen at 0.885 or more (bench/duplicates.py's pitched and
# stretched copies, and the variants among Debian's 1,429 samples), while about 88 % of the
# candidate pairs that are no variant screen lower and skip the refinement's 22 fits
VARIANT_SCREEN = 0.75
# the fine structures of a variant's and its source's first seconds correlate at least this
# much at their speed ratio (app.dup_spectrum; found variants: 0.71 or more)
VARIANT_SPECTRUM = 0.4
# the screen's resampler: soxr's medium quality takes a quarter of the high's time, and
# the screen only has to keep a variant above VARIANT_SCREEN (the refinement resamples at HQ)
SCREEN_QUALITY = "MQ"
# the aligned waveforms of a pair whose correlation curve peaks below this (interpolated
# between samples) are no copy: copies' curves peak at 0.45 or more (single-cycle waveforms
# of Debian's LMMS at 0.45-0.78, codec and trimmed copies at 0.98 or more), while half the
# candidate pairs that are no copy peak lower and skip the sub-sample search
NEAR_SCREEN = 0.3
FRACTION_SEARCH_SECONDS = 4.0   # how much of the overlap the sub-sample search compares
SEMITONE_RATIOS = tuple(2.0 ** (s / 12.0) for s in (-2, -1, 1, 2))
TEMPO_RATIOS = (0.9, 0.95, 1.0 / 0.95, 1.0 / 0.9)
_SILENT = 1e-8


@dataclass(frozen=True)
class Verdict:
    """How ``b`` relates to ``a``: ``label`` 'exact', 'near' or 'variant'; ``correlation``
    of the aligned waveforms; ``offset_s``: where ``b`` starts inside ``a`` (negative: ``a``
    starts inside ``b``); ``ratio``: ``b``'s speed against ``a`` (1.0 but for variants);
    ``trimmed``: one is a clear sub-span of the other."""
    label: str
    correlation: float
    offset_s: float = 0.0
    ratio: float = 1.0
    trimmed: bool = False

    @property
    def semitones(self) -> float:
        return float(12.0 * np.log2(self.ratio))


def pcm_hash(samples: np.ndarray, sample_rate: int) -> str:
    """Hash of decoded samples ``(frames,)`` or ``(frames, channels)`` as float32 at their
    own rate: a 16-bit value stored in 24 or 32 bits decodes to the same float."""
    data = np.ascontiguousarray(samples, dtype="<f4")
    channels = 1 if data.ndim == 1 else data.shape[1]
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{int(sample_rate)}:{channels}:".encode())
    digest.update(data.tobytes())
    return digest.hexdigest()


def prepare(mono: np.ndarray, sample_rate: int = VERIFY_RATE) -> np.ndarray:
    """Mono audio -> float64 at VERIFY_RATE, at most MAX_SECONDS, mean removed."""
    x = np.asarray(mono, dtype=np.float32).reshape(-1)
    if sample_rate != VERIFY_RATE and x.size:
        x = soxr.resample(x, sample_rate, VERIFY_RATE, quality="HQ")
    x = np.asarray(x[:int(MAX_SECONDS * VERIFY_RATE)], dtype=np.float64)
    return x - x.mean() if x.size else x


class Fixed:
    """One side of many correlations (a file checked against several speeds of another):
    its energy prefix sums and its spectrum at each FFT size, computed once."""

    def __init__(self, x: np.ndarray):
        self.x = x
        self.energy = np.concatenate([[0.0], np.cumsum(x * x)])
        self._spectra: dict[int, np.ndarray] = {}

    def spectrum(self, n: int) -> np.ndarray:
        """The spectrum at FFT size ``n``, in single precision (see ``correlation_curve``)."""
        if n not in self._spectra:
            import scipy.fft   # here, not at import: the window loads this module, not scipy
            self._spectra[n] = scipy.fft.rfft(self.x.astype(np.float32), n)
        return self._spectra[n]


def correlation_curve(a: np.ndarray | Fixed, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lags, correlation): the normalised correlation of ``b`` placed at each lag in ``a``
    (negative: ``a`` starts inside ``b``) over their overlap; -1 where the overlap holds less
    than COVER of the shorter sound's energy."""
    import scipy.fft   # here, not at import: the window loads this module, not scipy

    fixed = a if isinstance(a, Fixed) else Fixed(a)
    a = fixed.x
    if a.size == 0 or b.size == 0:
        return np.zeros(1, np.int64), np.full(1, -1.0)
    # any size of at least a.size + b.size - 1 gives the linear correlation; 5-smooth sizes
    # transform 2-3 times faster than the next power of two above
    # The products are summed in single precision (half the transform time): the curve
    # only chooses a lag, every verdict's correlation is measured in double on the waveforms,
    # and COVER keeps the overlap's energy near the shorter sound's, so the rounding stays
    # about 1e-6 of each value. The energies are prefix sums in double (they are differenced).
    n = scipy.fft.next_fast_len(a.size + b.size, real=True)
    product = scipy.fft.rfft(b.astype(np.float32), n)
    np.conj(product, out=product)
    np.multiply(fixed.spectrum(n), product, out=product)
    xc = scipy.fft.irfft(product, n)
    # xc[lag] = sum a[i + lag] b[i]; lags -len(b)+1 .. len(a)-1
    lags = np.arange(-(b.size - 1), a.size)
    ca = fixed.energy
    cb = np.concatenate([[0.0], np.cumsum(b * b)])
    shorter_total = ca[-1] if a.size <= b.size else cb[-1]
    if shorter_total <= _SILENT:
        return lags, np.full(lags.size, -1.0)
    # Only lags that keep COVER of the shorter sound's energy are measured: the others are
    # -1 whatever they hold. Cutting more of the shorter sound on either side only loses
    # energy, so those lags are one run; found from the prefix sums (a hair wide) and then
    # tested exactly as each lag always was.
    lo, hi = _covered_lags(ca if a.size <= b.size else cb, a.size, b.size, a.size <= b.size)
    corr = np.full(lags.size, -1.0)
    if lo > hi:
        return lags, corr
    run = lags[lo - lags[0]:hi - lags[0] + 1]
    num = np.concatenate([xc[n + run[0]:n + min(run[-1], -1) + 1] if run[0] < 0 else xc[:0],
                          xc[max(run[0], 0):run[-1] + 1]]).astype(np.float64)
    # the overlap of a[lo_a:hi_a] with b[lo_b:hi_b] at each lag (every lag overlaps by one
    # sample at least, so only one side of each bound can bind)
    ea = ca[np.minimum(run + b.size, a.size)] - ca[np.maximum(run, 0)]
    eb = cb[np.minimum(a.size - run, b.size)] - cb[np.maximum(-run, 0)]
    shorter_overlap = ea if a.size <= b.size else eb
    part = num / np.sqrt(np.maximum(ea * eb, _SILENT))
    part[shorter_overlap / shorter_total < COVER] = -1.0
    corr[lo - lags[0]:hi - lags[0] + 1] = part
    return lags, corr


def _covered_lags(energy: np.ndarray, a_size: int, b_size: int, a_shorter: bool) -> tuple[int, int]:
    """(first, last) lag at which the overlap may hold COVER of the shorter sound's
    energy, from its prefix sums ``energy``; a superset of those lags (the tolerance
    outweighs any rounding), empty when first > last."""
    total = energy[-1]
    # the most that may be cut from the start, and the least the kept start must hold
    cut_start = int(np.searchsorted(energy, (1.0 - COVER) * total * (1 + 1e-9) + 1e-300, "right")) - 1
    keep_end = int(np.searchsorted(energy, COVER * total * (1 - 1e-9), "left"))
    if a_shorter:     # lag >= 0 cuts a's start; lag < a_size - b_size cuts a's end
        return max(-(b_size - 1), keep_end - b_size), min(a_size - 1, cut_start)
    # lag <= 0 cuts b's start; lag > a_size - b_size cuts b's end
    return max(-(b_size - 1), -cut_start), min(a_size - 1, a_size - keep_end)


def align(a: np.ndarray | Fixed, b: np.ndarray) -> tuple[float, int, float]:
    """(correlation, lag, cover): the best normalised correlation of ``b`` placed at ``lag``
    samples into ``a`` (negative: ``a`` starts inside ``b``), over their overlap, among the
    placements where the overlap holds at least COVER of the shorter sound's energy."""
    lags, corr = correlation_curve(a, b)
    best = int(np.argmax(corr))
    return float(corr[best]), int(lags[best]), 1.0 if corr[best] > -1.0 else 0.0


def segment_correlation(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """Median correlation of the 50 ms segments of ``b`` placed at ``lag`` in ``a``, over
    the segments where both are within 30 dB of their loudest segment. An overlap shorter
    than 0.4 s is cut into 8 segments (at least 10 ms each), so that the edge of a cut,
    where the resampler rings, is one vote among several."""
    x, y = (a[lag:], b) if lag >= 0 else (a, b[-lag:])
    n = min(x.size, y.size)
    seg = max(MIN_SEGMENT, min(SEGMENT, n // 8))
    k = n // seg
    if k < 2:   # shorter than two segments: the whole overlap is one
        x, y = x[:n], y[:n]
        return float(np.dot(x, y) / np.sqrt(max(np.dot(x, x) * np.dot(y, y), _SILENT)))
    xs, ys = x[:k * seg].reshape(k, seg), y[:k * seg].reshape(k, seg)
    ex, ey = np.einsum("ij,ij->i", xs, xs), np.einsum("ij,ij->i", ys, ys)
    keep = (ex > ex.max() * 1e-3) & (ey > ey.max() * 1e-3)
    if not keep.any():
        return 0.0
    corr = np.sort(np.einsum("ij,ij->i", xs, ys)[keep] / np.sqrt(np.maximum(ex[keep] * ey[keep], _SILENT)))
    mid = corr.size // 2
    return float(corr[mid] if corr.size % 2 else (corr[mid - 1] + corr[mid]) / 2)


def envelope_distance(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """RMS difference in dB of the 50 ms segment levels of ``b`` placed at ``lag`` in
    ``a``, after their mean difference (a gain) is taken out, over the segments within
    40 dB of the loudest: two tones of one pitch correlate segment by segment, but they
    rarely rise and decay alike."""
    x, y = (a[lag:], b) if lag >= 0 else (a, b[-lag:])
    n = min(x.size, y.size)
    k = n // SEGMENT
    if k < 2:
        return 0.0
    ex = np.einsum("ij,ij->i", *(x[:k * SEGMENT].reshape(k, SEGMENT),) * 2)
    ey = np.einsum("ij,ij->i", *(y[:k * SEGMENT].reshape(k, SEGMENT),) * 2)
    keep = (ex > ex.max() * 1e-4) & (ey > ey.max() * 1e-4)
    if keep.sum() < 2:
        return 0.0
    diff = 10 * np.log10(ex[keep] + _SILENT) - 10 * np.log10(ey[keep] + _SILENT)
    return float(np.sqrt(np.mean((diff - diff.mean()) ** 2)))


def head_envelope_distance(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """RMS difference in dB of the 10 ms segment levels of ``b`` placed at ``lag`` in ``a``
    over the first half of their overlap, after their mean difference (a gain) is taken out,
    over the segments within 20 dB of the loudest. The first half: a fade-out copy keeps it;
    20 dB: an 8-bit copy's noise floor does not reach it."""
    x, y = (a[lag:], b) if lag >= 0 else (a, b[-lag:])
    k = min(x.size, y.size) // 2 // HEAD_SEGMENT
    if k < 2:
        return 0.0
    # each segment's own mean out: ``prepare`` removes the whole file's mean, and a cut
    # copy's mean differs from its original's, which would tilt the quiet segments
    ex = x[:k * HEAD_SEGMENT].reshape(k, HEAD_SEGMENT).var(axis=1)
    ey = y[:k * HEAD_SEGMENT].reshape(k, HEAD_SEGMENT).var(axis=1)
    keep = (ex > ex.max() * 1e-2) & (ey > ey.max() * 1e-2)
    if keep.sum() < 2:
        return 0.0
    diff = 10 * np.log10(ex[keep] + _SILENT) - 10 * np.log10(ey[keep] + _SILENT)
    return float(np.sqrt(np.mean((diff - diff.mean()) ** 2)))


def fractional_correlation(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """``segment_correlation`` at the best of ``lag`` give or take 4 samples in quarter-sample
    steps: a copy cut at a sample of its own rate starts between two samples of
    VERIFY_RATE, half a sample turns bright sounds away from themselves, and the
    cross-correlation peak of a bright sound can then sit a few samples off. The steps are
    searched on the first ``FRACTION_SEARCH_SECONDS`` of the overlap (one copy has one
    offset throughout), and the best is measured on the whole."""
    best = segment_correlation(a, b, lag)
    if best >= NEAR_CORRELATION or b.size < 2:
        return best
    span = int(FRACTION_SEARCH_SECONDS * VERIFY_RATE) + 8
    a_part, b_part = a[:max(0, lag) + span], b[:max(0, -lag) + span]
    found, where = -2.0, (0.0, lag)
    delay = _Delays(b_part)
    for frac in (0.0, -0.5, -0.25, 0.25, 0.5):
        shifted = delay.by(frac)
        for near in range(lag - 4, lag + 5):
            score = segment_correlation(a_part, shifted, near)
            if score > found:
                found, where = score, (frac, near)
    if b_part.size == b.size and a_part.size == a.size:
        return found
    frac, near = where
    return max(best, segment_correlation(a, _Delays(b).by(frac), near))


class _Delays:
    """``x`` delayed by fractions of a sample (band-limited: its spectrum, zero-padded so
    the delay does not wrap the end onto the start, times a phase ramp)."""

    def __init__(self, x: np.ndarray):
        import scipy.fft   # here, not at import: the window loads this module, not scipy

        self.x = x
        self._n = scipy.fft.next_fast_len(x.size + 8, real=True)
        self._spectrum: np.ndarray | None = None

    def by(self, frac: float) -> np.ndarray:
        if frac == 0.0:
            return self.x
        import scipy.fft   # loaded by __init__ already: a lookup

        if self._spectrum is None:
            self._spectrum = scipy.fft.rfft(self.x, self._n)
        ramp = np.exp(-2j * np.pi * frac * np.arange(self._spectrum.size) / self._n)
        return scipy.fft.irfft(self._spectrum * ramp, self._n)[:self.x.size]


def subsample_peak(curve: np.ndarray, best: int, reach: int = 4, taps: int = 8) -> float:
    """The highest value of ``curve`` (a correlation curve of band-limited sounds) within
    ``reach`` samples of ``best`` in quarter-sample steps, interpolated with a Lanczos kernel
    of ``taps`` lobes; +inf where the kernel would reach the curve's end or a placement
    ``correlation_curve`` rules out (it cannot tell)."""
    lo, hi = best - reach - taps, best + reach + taps + 1
    if lo < 0 or hi > curve.size or np.any(curve[lo:hi] <= -1.0):
        return float("inf")
    where = best + np.arange(-4 * reach, 4 * reach + 1) / 4.0
    index = np.floor(where).astype(np.int64)[:, None] + np.arange(-taps + 1, taps + 1)
    distance = where[:, None] - index
    kernel = np.sinc(distance) * np.sinc(distance / taps)
    return float(np.max(np.sum(kernel * curve[index], axis=1)))


def _energy_span(x: np.ndarray) -> float:
    """Seconds between the first and last sample above -50 dB of the peak."""
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak <= 0:
        return 0.0
    loud = np.flatnonzero(np.abs(x) >= peak * 10 ** (-50 / 20))
    return (loud[-1] - loud[0] + 1) / VERIFY_RATE


class Checked:
    """A prepared sound verified against several others, with what ``verify`` derives from
    it alone (its energy span, its head's fine structure) computed once."""

    def __init__(self, audio: np.ndarray):
        self.audio = audio
        self.span = _energy_span(audio)
        self.head = _from_onset(audio)[:int(VARIANT_SECONDS * VERIFY_RATE)]
        self.fine_structure = fine_structure(self.head[:VERIFY_RATE], VERIFY_RATE)
        # the variant screen's and refinement's fixed sides: their spectra are kept per FFT
        # size, so the candidates of one file share them
        self.screen_head = Fixed(self.head[:VERIFY_RATE])
        self.fit_head = Fixed(self.head)


def verify(a: np.ndarray | Checked, b: np.ndarray, *, same_samples: bool = False) -> Verdict | None:
    """``a`` and ``b`` prepared (``prepare``; ``a`` may come as ``Checked`` when it is
    verified against several): the verdict, or None when they are not one sound.
    ``same_samples``: their PCM hashes agree (exact)."""
    if same_samples:
        return Verdict("exact", 1.0)
    checked = a if isinstance(a, Checked) else Checked(a)
    a = checked.audio
    lags, curve = correlation_curve(a, b)
    best = int(np.argmax(curve))
    lag = int(lags[best])
    if subsample_peak(curve, best) >= NEAR_SCREEN:
        corr = fractional_correlation(a, b, lag)
    else:   # no sub-sample placement can make it a copy: its integer fit is the figure
        corr = segment_correlation(a, b, lag)
    span_a, span_b = checked.span, _energy_span(b)
    trimmed = min(span_a, span_b) < 0.9 * max(span_a, span_b)
    if corr >= NEAR_CORRELATION:
        if head_envelope_distance(a, b, lag) > NEAR_ENVELOPE_DB:
            return None   # one drum hit harder or softer: its own sound
        return Verdict("near", corr, lag / VERIFY_RATE, 1.0, bool(trimmed))
    return _variant(checked, b, span_b)


def _variant(checked: Checked, b: np.ndarray, span_b: float) -> Verdict | None:
    limit = int(VARIANT_SECONDS * VERIFY_RATE)
    a_head, span_a = checked.head, checked.span
    b_onset = _from_onset(b)
    candidates = set(SEMITONE_RATIOS) | set(TEMPO_RATIOS)
    if span_a > 0 and span_b > 0 and 0.85 <= span_b / span_a <= 1.2:
        # b plays at speed r against a: it lasts span_a / r
        candidates.add(span_a / span_b)
    head = VERIFY_RATE
    # the fine structures of the first seconds first (cheap), then each ratio screened on
    # the first second, then the best one refined on VARIANT_SECONDS
    print_a, print_b = checked.fine_structure, fine_structure(b_onset[:head], VERIFY_RATE)
    if print_a is not None and print_b is not None and \
            speed_match(print_a, print_b, sorted(candidates)) < VARIANT_SPECTRUM:
        return None
    screened = [(_corr_at_ratio(checked.screen_head, b_onset, r, head, SCREEN_QUALITY)[0], r)
                for r in sorted(candidates)]
    score, ratio = max(screened)
    if score < VARIANT_SCREEN:
        return None
    corr, lag = _corr_at_ratio(checked.fit_head, b_onset, ratio, limit)
    for step in (0.001, 0.0002):
        centre = ratio
        for r in centre * (1.0 + np.arange(-5, 6) * step):
            c, l = _corr_at_ratio(checked.fit_head, b_onset, float(r), limit)
            if c > corr:
                corr, ratio, lag = c, float(r), l
    back = _slowed(b_onset, ratio, limit)
    corr = max(corr, fractional_correlation(a_head, back, lag))
    if corr >= VARIANT_CORRELATION and envelope_distance(a_head, back, lag) <= VARIANT_ENVELOPE_DB:
        return Verdict("variant", corr, lag / VERIFY_RATE, ratio, False)
    return None


def _corr_at_ratio(a_head: Fixed, b: np.ndarray, ratio: float, limit: int,
                   quality: str = "HQ") -> tuple[float, int]:
    """Correlation of ``a_head`` with ``b`` slowed back by ``ratio`` (``b`` plays ``ratio``
    times faster than ``a``)."""
    back = _slowed(b, ratio, limit, quality)
    if back.size < 16:
        return 0.0, 0
    _, lag, _ = align(a_head, back)
    return segment_correlation(a_head.x, back, lag), lag


def _slowed(b: np.ndarray, ratio: float, limit: int, quality: str = "HQ") -> np.ndarray:
    """The start of ``b`` (which plays ``ratio`` times faster than ``a``) at ``a``'s speed."""
    src = b[:int(limit / ratio) + VERIFY_RATE // 10]
    if src.size < 16:
        return np.zeros(0)
    # b at speed r: its sample k holds a's sample k*r; resample to rate*r to undo
    back = soxr.resample(src.astype(np.float32), VERIFY_RATE, VERIFY_RATE * ratio, quality=quality)
    return np.asarray(back[:limit + VERIFY_RATE // 20], dtype=np.float64)


def _from_onset(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak <= 0:
        return x
    start = int(np.argmax(np.abs(x) >= peak * 10 ** (-40 / 20)))
    return x[max(0, start - 64):]
