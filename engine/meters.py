"""Input meters (peak and RMS per channel) and xrun counters, written by the audio callback and
read by polling from any thread.

The callback writes into preallocated arrays (which may live in shared memory); a reader takes a
copy. A reader may see one channel from block k and another from block k+1: harmless for meters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Meters", "MeterReading", "xrun_bits"]

# counters array layout
IN_OVERFLOW, IN_UNDERFLOW, OUT_OVERFLOW, OUT_UNDERFLOW, CALLBACKS, BLOCK_FRAMES = range(6)
N_COUNTERS = 6


def xrun_bits(flags) -> int:
    """The status bits `Meters.update` takes, from sounddevice's `CallbackFlags` (through its
    public properties). Audio thread: allocates nothing (bools and small ints are shared)."""
    if not flags:
        return 0
    return ((1 if flags.input_underflow else 0) | (2 if flags.input_overflow else 0)
            | (4 if flags.output_underflow else 0) | (8 if flags.output_overflow else 0))


@dataclass
class MeterReading:
    peak: list[float]          # per input channel, linear, decaying peak hold
    rms: list[float]           # per input channel, linear, ~300 ms window
    input_overflows: int
    input_underflows: int
    output_overflows: int
    output_underflows: int
    callbacks: int
    block_frames: int = 0      # frames of the last callback (0 before the first)

    @property
    def xruns(self) -> int:
        return self.input_overflows + self.input_underflows + self.output_overflows + self.output_underflows

    def peak_dbfs(self) -> list[float]:
        return [20 * np.log10(max(p, 1e-9)) for p in self.peak]


class Meters:
    """`update` is called by the audio thread once per block; `read` by anyone."""

    def __init__(self, channels: int, max_block: int, sample_rate: int, decay_s: float = 0.3,
                 levels: np.ndarray | None = None, counters: np.ndarray | None = None):
        self.channels = channels
        # levels[0] = peak hold, levels[1] = mean square
        self.levels = levels if levels is not None else np.zeros((2, channels), np.float32)
        self.counters = counters if counters is not None else np.zeros(N_COUNTERS, np.int64)
        self._scratch = np.zeros((max_block, channels), np.float32)
        self._block = np.zeros(channels, np.float32)
        self._decay_frames = max(1.0, decay_s * sample_rate)  # peak hold halves, mean square settles

    def update(self, indata: np.ndarray, status_bits: int = 0) -> None:
        """Audio thread only. status_bits: 1 in-underflow, 2 in-overflow, 4 out-underflow, 8 out-overflow
        (PortAudio's paInputUnderflow... flags)."""
        frames = indata.shape[0]
        c = self.counters
        c[CALLBACKS] += 1
        c[BLOCK_FRAMES] = frames
        if status_bits:
            if status_bits & 1:
                c[IN_UNDERFLOW] += 1
            if status_bits & 2:
                c[IN_OVERFLOW] += 1
            if status_bits & 4:
                c[OUT_UNDERFLOW] += 1
            if status_bits & 8:
                c[OUT_OVERFLOW] += 1
        s = self._scratch[:frames]
        b = self._block
        peak, ms = self.levels[0], self.levels[1]
        # Plain ufunc reductions and Python float scalars: np.max/np.mean would add their
        # Python-level wrappers' temporary objects to every callback.
        np.abs(indata, out=s)
        np.maximum.reduce(s, axis=0, out=b)
        peak *= 0.5 ** (frames / self._decay_frames)
        np.maximum(peak, b, out=peak)
        np.square(indata, out=s)
        np.add.reduce(s, axis=0, out=b)
        b *= 1.0 / frames
        b -= ms
        b *= min(1.0, frames / self._decay_frames)
        ms += b

    def read(self) -> MeterReading:
        levels = self.levels.copy()
        c = self.counters.copy()
        return MeterReading(
            peak=[float(x) for x in levels[0]],
            rms=[float(np.sqrt(max(x, 0.0))) for x in levels[1]],
            input_overflows=int(c[IN_OVERFLOW]), input_underflows=int(c[IN_UNDERFLOW]),
            output_overflows=int(c[OUT_OVERFLOW]), output_underflows=int(c[OUT_UNDERFLOW]),
            callbacks=int(c[CALLBACKS]), block_frames=int(c[BLOCK_FRAMES]))
