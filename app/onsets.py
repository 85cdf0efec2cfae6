"""Streaming onset detection: spectral flux with an adaptive threshold and a level gate.

For mono audio at any sample rate (the matcher runs it at the model rate):

1. Frames of ``n_fft`` samples every ``hop_length`` samples (frame ``n`` covers samples
   ``[n*hop_length, n*hop_length + n_fft)``), Hann window, power spectrum summed into
   ``N_BANDS`` log-spaced bands and scaled so the bands of a signal add up to its mean
   square (a full-scale white noise gives 1 in total).
2. Each band becomes ``10*log10(power + floor)`` with ``floor`` = the gate level's power
   divided by the number of bands: anything quieter than the gate barely moves the log.
3. Flux of frame ``n``: the mean over bands of the positive dB rises from frame ``n-1``.
4. Frame ``n`` is an onset when its flux is a local maximum (``>=`` frame ``n-1``, ``>``
   frame ``n+1``), exceeds ``delta_db + median_weight*median + mean_weight*mean`` of the
   flux of the ``history_frames`` frames before it, is at least ``min_gap`` after the
   previous onset, and the RMS level of frame ``n`` or ``n+1`` reaches ``gate_db``. An
   attack that falls between two frames' starts rises partly in each (the frames overlap
   by half): a peak holding at least half the threshold is judged by the rise over the
   pair it makes with the frame before or after it, less twice the flux just outside
   that pair (so a steady swell, every frame rising alike, gains nothing).
5. The reported onset sample is the start of the audio frame ``n`` added to frame ``n-1``
   (``(n-1)*hop_length + n_fft``) minus a quarter hop: within one hop of the true attack.
6. Sounds out of silence. When the level rises from below the gate, the frame where it
   crosses the gate opens a sound. A flux onset within ``backtrack_s`` of that frame (and the
   first since it) is reported at the opening frame, so the window of a hit whose flux
   peaks late (a swell, a swash, a backspin) starts where the sound starts. A sound with no
   flux onset at all is reported at its opening frame (strength 0) once its level has stood
   ``rise_db`` above the gate, ``backtrack_s`` or more after the opening, or when it falls
   back under the gate before then: a slow fade-in, and a quiet hit (a soft kick at -25
   dBFS, whose energy in a few low bands moves the mean flux less than the threshold).

Decisions for frame ``n`` wait for frame ``n+1`` (one hop of look-ahead). The detector
gives the same onsets whatever the sizes of the chunks pushed (tested).

Threads: an ``OnsetDetector`` is used by one thread at a time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

DEFAULT_N_FFT = 1024
DEFAULT_HOP_LENGTH = 512
N_BANDS = 24
LOWEST_BAND_HZ = 40.0


@dataclass(frozen=True)
class Onset:
    sample: int          # position in the pushed signal, in samples
    strength: float      # flux above the adaptive threshold, dB
    level_db: float      # RMS level of the onset frame (or the next one), dBFS


@dataclass(frozen=True)
class OnsetParams:
    n_fft: int = DEFAULT_N_FFT
    hop_length: int = DEFAULT_HOP_LENGTH
    gate_db: float = -50.0
    delta_db: float = 4.0
    median_weight: float = 1.0
    mean_weight: float = 0.5
    history_frames: int = 24
    min_gap_s: float = 0.05
    backtrack_s: float = 0.1
    rise_db: float = 15.0

    def validate(self) -> None:
        if self.n_fft < 64 or self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two >= 64, got {self.n_fft}")
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"hop_length must be in 1..n_fft, got {self.hop_length}")
        if not -120.0 <= self.gate_db <= 0.0:
            raise ValueError(f"gate_db must be between -120 and 0 dBFS, got {self.gate_db}")
        if self.delta_db < 0 or self.median_weight < 0 or self.mean_weight < 0:
            raise ValueError("delta_db, median_weight and mean_weight must be >= 0")
        if self.history_frames < 1:
            raise ValueError("history_frames must be >= 1")
        if self.min_gap_s < 0:
            raise ValueError("min_gap_s must be >= 0")
        if self.backtrack_s < 0 or self.rise_db < 0:
            raise ValueError("backtrack_s and rise_db must be >= 0")


def sensitivity_to_delta(sensitivity: float) -> float:
    """Map a 0..1 sensitivity (1 = most sensitive) to the threshold's ``delta_db``."""
    s = min(1.0, max(0.0, float(sensitivity)))
    return 1.0 + 11.0 * (1.0 - s)


ROWS_AT_ONCE = 256   # frames analysed together by ``push`` (their temporaries fit the cache)


class OnsetDetector:
    """Streaming spectral-flux onset detector (see module docstring)."""

    def __init__(self, sample_rate: int, params: OnsetParams | None = None):
        self.params = params or OnsetParams()
        self.params.validate()
        self.sample_rate = int(sample_rate)
        p = self.params
        self._window = np.hanning(p.n_fft + 1)[:-1].astype(np.float64)
        n_bins = p.n_fft // 2 + 1
        # full-scale white noise (variance 1) gives E|X|^2 = sum(w^2) per bin: bins then sum to 1
        self._scale = 1.0 / (float(np.sum(self._window ** 2)) * n_bins)
        self._bands = _band_matrix(n_bins, p.n_fft, sample_rate)
        self._floor = 10.0 ** (p.gate_db / 10.0) / self._bands.shape[1]
        self._gate_ms = 10.0 ** (p.gate_db / 10.0)
        self._min_gap_frames = max(1, int(round(p.min_gap_s * sample_rate / p.hop_length)))
        self._backtrack_frames = int(round(p.backtrack_s * sample_rate / p.hop_length))
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next push starts a new signal at sample 0."""
        self._buffer = np.zeros(0, dtype=np.float64)
        self._buffer_start = 0          # signal sample index of _buffer[0]
        self._next_frame = 0
        self._prev_log: np.ndarray | None = None
        self._history: deque[float] = deque(maxlen=self.params.history_frames)
        # frame, flux, level, threshold, two-frame rise (see _decide)
        self._pending: tuple[int, float, float, float, float] | None = None
        self._prev_flux = -np.inf
        self._before_prev_flux = -np.inf
        self._last_onset_frame = -(1 << 40)
        self._below_gate = True          # the previous frame was quieter than the gate
        self._open_frame: int | None = None   # where the current sound rose out of silence
        self._open_sample = 0
        self._open_reported = False      # an onset was reported since _open_frame
        self._open_peak = -np.inf        # the loudest frame level since _open_frame
        self.n_samples = 0

    @property
    def hop_length(self) -> int:
        return self.params.hop_length

    def push(self, audio: np.ndarray) -> list[Onset]:
        """Add mono samples; return the onsets decided so far (in signal order)."""
        audio = np.asarray(audio, dtype=np.float64).reshape(-1)
        self.n_samples += audio.size
        self._buffer = np.concatenate([self._buffer, audio]) if self._buffer.size else audio.copy()
        p = self.params
        available = self._buffer_start + self._buffer.size
        n_frames = 0
        if available >= self._next_frame * p.hop_length + p.n_fft:
            n_frames = (available - self._next_frame * p.hop_length - p.n_fft) // p.hop_length + 1
        if n_frames <= 0:
            return []
        first = self._next_frame * p.hop_length - self._buffer_start
        frames = np.lib.stride_tricks.sliding_window_view(
            self._buffer[first:first + (n_frames - 1) * p.hop_length + p.n_fft], p.n_fft)[::p.hop_length]
        log_power = np.empty((n_frames, self._bands.shape[1]))
        levels = np.empty(n_frames)
        for at in range(0, n_frames, ROWS_AT_ONCE):   # a whole track at once left the CPU's cache
            rows = frames[at:at + ROWS_AT_ONCE]
            power = (np.abs(np.fft.rfft(rows * self._window, axis=1)) ** 2) @ self._bands * self._scale
            log_power[at:at + ROWS_AT_ONCE] = 10.0 * np.log10(power + self._floor)
            levels[at:at + ROWS_AT_ONCE] = 10.0 * np.log10(np.mean(rows * rows, axis=1) + 1e-20)
        onsets = self._decide(log_power, levels, frames)
        self._next_frame += n_frames
        drop = self._next_frame * p.hop_length - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
        return onsets

    def flush(self) -> list[Onset]:
        """End of signal: decide the last frame (no frame follows it), then reset."""
        out = []
        if self._pending is not None:
            out = self._judge(self._pending, next_flux=-np.inf, next_level=-np.inf, next_rise2=-np.inf)
        self.reset()
        return out

    def _decide(self, log_power: np.ndarray, levels: np.ndarray, frames: np.ndarray) -> list[Onset]:
        prev = self._prev_log
        if prev is None:
            prev = np.repeat(log_power[:1], 2, axis=0)   # the first frame has no rise
        rows = np.concatenate([prev, log_power])
        flux = np.mean(np.maximum(rows[2:] - rows[1:-1], 0.0), axis=1)
        # The rise over two frames: an attack that falls between two frames' starts is
        # split between their fluxes (at 50 % overlap each frame holds part of it), and a
        # kick whose whole rise clears the threshold could show two halves that do not
        rise2 = np.mean(np.maximum(rows[2:] - rows[:-2], 0.0), axis=1)
        self._prev_log = rows[-2:].copy()
        thresholds = self._thresholds(flux)
        out: list[Onset] = []
        for i in range(flux.shape[0]):
            frame = self._next_frame + i
            f, level = float(flux[i]), float(levels[i])
            if self._pending is not None:
                out.extend(self._judge(self._pending, f, level, float(rise2[i])))
            out.extend(self._follow_level(frame, level, frames[i]))
            self._pending = (frame, f, level, float(thresholds[i]), float(rise2[i]))
        self._history.extend(flux.tolist())
        return out

    def _thresholds(self, flux: np.ndarray) -> np.ndarray:
        """Each new frame's threshold: delta plus weighted median and mean of the flux of
        the ``history_frames`` frames before it (fewer at the start of a signal)."""
        p = self.params
        past = np.fromiter(self._history, dtype=np.float64, count=len(self._history))
        series = np.concatenate([past, flux])
        out = np.full(flux.size, p.delta_db)
        full = p.history_frames
        short = min(flux.size, max(0, full - past.size))   # frames whose history is not full yet
        for i in range(short):
            h = series[:past.size + i]
            if h.size:
                out[i] += p.median_weight * float(np.median(h)) + p.mean_weight * float(np.mean(h))
        if short < flux.size:
            # row j: the ``full`` values before frame short + j
            first = past.size + short - full
            h = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(series[first:-1], full))
            out[short:] += p.median_weight * np.median(h, axis=1) + p.mean_weight * h.mean(axis=1)
        return out

    def _judge(self, pending, next_flux: float, next_level: float, next_rise2: float) -> list[Onset]:
        frame, f, level, thr, rise2 = pending
        prev_flux, before_prev = self._prev_flux, self._before_prev_flux
        self._prev_flux, self._before_prev_flux = f, prev_flux
        if not (f >= prev_flux and f > next_flux):
            return []
        # A peak of the flux whose attack may be split with the frame before it (or after
        # it): the pair's two-frame rise, less what two frames rising like the one just
        # outside the pair would give, so that a steady swell gains nothing from it. The
        # larger half of an attack that clears the threshold holds half of it at least.
        strength = f
        if 2.0 * f > thr:
            strength = max(f, rise2 - 2.0 * max(before_prev, next_flux, 0.0),
                           next_rise2 - 2.0 * max(prev_flux, 0.0))
        if not strength > thr:
            return []
        if frame - self._last_onset_frame < self._min_gap_frames:
            return []
        onset_level = max(level, next_level)
        if onset_level < self.params.gate_db:
            return []
        self._last_onset_frame = frame
        sample = self._frame_sample(frame)
        if (self._open_frame is not None and not self._open_reported
                and frame - self._open_frame <= self._backtrack_frames):
            sample = min(sample, self._open_sample)
        self._open_reported = True
        return [Onset(sample=sample, strength=strength - thr, level_db=onset_level)]

    def _follow_level(self, frame: int, level: float, audio: np.ndarray) -> list[Onset]:
        """Track sounds rising out of silence; report one that no flux onset marked."""
        gate = self.params.gate_db
        if level < gate:
            # a short sound that no flux onset marked, closing before backtrack_s
            unmarked = self._unmarked_loud_sound()
            self._below_gate = True
            self._open_frame = None
            return self._report_opening(frame, self._open_peak) if unmarked else []
        if self._below_gate:
            self._below_gate = False
            self._open_frame, self._open_reported, self._open_peak = frame, False, level
            # The sound starts in the hop this frame added: at its first sample above the gate.
            p = self.params
            new = np.abs(audio[p.n_fft - p.hop_length:])
            loud = np.flatnonzero(new >= 10.0 ** (gate / 20.0))
            self._open_sample = frame * p.hop_length + p.n_fft - p.hop_length + (int(loud[0]) if loud.size else 0)
            return []
        self._open_peak = max(self._open_peak, level)
        if not self._unmarked_loud_sound() or frame - self._open_frame <= self._backtrack_frames:
            return []
        # No flux onset can still be backtracked here: the pending frame is past the window.
        return self._report_opening(frame, level)

    def _unmarked_loud_sound(self) -> bool:
        """A sound is open, no onset marked it, and it has stood ``rise_db`` above the gate."""
        return (self._open_frame is not None and not self._open_reported
                and self._open_peak >= self.params.gate_db + self.params.rise_db)

    def _report_opening(self, frame: int, level: float) -> list[Onset]:
        """The open sound's onset at its opening sample (no flux onset marked it)."""
        self._open_reported = True
        self._last_onset_frame = frame
        return [Onset(sample=self._open_sample, strength=0.0, level_db=level)]

    def _frame_sample(self, frame: int) -> int:
        p = self.params
        return max(0, (frame - 1) * p.hop_length + p.n_fft - p.hop_length // 4)


def _band_matrix(n_bins: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """(n_bins, n_bands) 0/1 matrix: log-spaced bands from LOWEST_BAND_HZ to Nyquist, each at
    least one bin wide; bins below the lowest edge go to the first band."""
    edges_hz = np.geomspace(LOWEST_BAND_HZ, sample_rate / 2.0, N_BANDS + 1)
    edges = np.unique(np.clip(np.round(edges_hz * n_fft / sample_rate).astype(int), 1, n_bins))
    edges[0], edges[-1] = 0, n_bins
    edges = np.unique(edges)
    matrix = np.zeros((n_bins, len(edges) - 1), dtype=np.float64)
    for b in range(len(edges) - 1):
        matrix[edges[b]:edges[b + 1], b] = 1.0
    return matrix


def detect_onsets(audio: np.ndarray, sample_rate: int, params: OnsetParams | None = None) -> list[Onset]:
    """Offline: every onset of a whole signal. Any thread."""
    detector = OnsetDetector(sample_rate, params)
    return detector.push(audio) + detector.flush()
