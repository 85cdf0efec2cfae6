"""Capture ring: a preallocated single-producer buffer of input frames with an integer frame clock.

One producer (the audio callback, or the thread that drains a C ring) calls `write`.
Any number of readers call `read` / `read_into` with an absolute frame position.
Frame positions are integers counted from the first frame ever written; they never wrap.

Readers never lock the producer out. A read copies the frames, then checks the clock
again: if the producer may have overwritten any of the copied frames meanwhile, the read
raises `RingOverrun` instead of returning a mix of old and new audio.
"""

from __future__ import annotations

import numpy as np

from engine.errors import SampleScoutError

__all__ = ["CaptureRing", "RingOverrun", "RingUnderrun"]


class RingOverrun(SampleScoutError):
    """The requested frames were already overwritten: the reader fell behind."""

    def __init__(self, start_frame: int, oldest_frame: int):
        super().__init__(
            f"capture ring overrun: asked for frame {start_frame}, oldest frame still held is {oldest_frame}"
        )
        self.start_frame = start_frame
        self.oldest_frame = oldest_frame


class RingUnderrun(SampleScoutError):
    """The requested frames were not written yet."""

    def __init__(self, start_frame: int, frames: int, end_frame: int):
        super().__init__(
            f"capture ring: frames {start_frame}..{start_frame + frames} asked, only {end_frame} written"
        )
        self.start_frame = start_frame
        self.frames = frames
        self.end_frame = end_frame


class CaptureRing:
    """Single-producer ring of float32 frames shaped (capacity, channels).

    `max_write_frames` is the largest block one `write` call may add; readers keep that
    margin away from the overwrite edge, because frames are stored before the clock moves.
    """

    def __init__(self, channels: int, capacity_frames: int, max_write_frames: int = 4096):
        if channels < 1:
            raise ValueError("channels must be >= 1")
        if capacity_frames <= 2 * max_write_frames:
            raise ValueError("capacity_frames must be more than twice max_write_frames")
        self.channels = int(channels)
        self.capacity = int(capacity_frames)
        self.max_write_frames = int(max_write_frames)
        self._data = np.zeros((self.capacity, self.channels), dtype=np.float32)
        # A one-element int64 array: the callback bumps it in place, with no new Python int boxed
        # per block into a shared attribute; readers take a plain int snapshot.
        self._clock = np.zeros(1, dtype=np.int64)

    @classmethod
    def for_seconds(cls, channels: int, sample_rate: int, seconds: float = 30.0,
                    max_write_frames: int = 4096) -> "CaptureRing":
        return cls(channels, int(round(seconds * sample_rate)) + 2 * max_write_frames, max_write_frames)

    # ---- producer (one thread only) -------------------------------------------------------

    def write(self, block: np.ndarray) -> None:
        """Append `block` (frames, channels) float32. Producer thread only; allocates nothing."""
        frames = block.shape[0]
        if frames > self.max_write_frames:
            raise ValueError("block larger than max_write_frames")
        end = int(self._clock[0])
        pos = end % self.capacity
        first = self.capacity - pos
        if frames <= first:
            np.copyto(self._data[pos:pos + frames], block)
        else:
            np.copyto(self._data[pos:], block[:first])
            np.copyto(self._data[:frames - first], block[first:])
        self._clock[0] = end + frames

    # ---- readers (any thread) -------------------------------------------------------------

    @property
    def end_frame(self) -> int:
        """Frame position one past the newest frame written."""
        return int(self._clock[0])

    @property
    def oldest_frame(self) -> int:
        """Oldest frame position a reader can still safely ask for."""
        return max(0, int(self._clock[0]) - self.capacity + self.max_write_frames)

    def read_into(self, out: np.ndarray, start_frame: int) -> None:
        """Copy frames [start_frame, start_frame + len(out)) into `out` (frames, channels).

        Raises RingUnderrun if they are not written yet, RingOverrun if some were overwritten
        before or during the copy. Any thread except the producer.
        """
        frames = out.shape[0]
        if frames > self.capacity - 2 * self.max_write_frames:
            raise ValueError("read longer than the ring can hold")
        end = int(self._clock[0])
        if start_frame + frames > end:
            raise RingUnderrun(start_frame, frames, end)
        if start_frame < end - self.capacity + self.max_write_frames or start_frame < 0:
            raise RingOverrun(start_frame, max(0, end - self.capacity + self.max_write_frames))
        pos = start_frame % self.capacity
        first = self.capacity - pos
        if frames <= first:
            np.copyto(out, self._data[pos:pos + frames])
        else:
            np.copyto(out[:first], self._data[pos:])
            np.copyto(out[first:], self._data[:frames - first])
        end_after = int(self._clock[0])
        # The producer may be writing up to max_write_frames past end_after right now.
        if start_frame < end_after - self.capacity + self.max_write_frames:
            raise RingOverrun(start_frame, max(0, end_after - self.capacity + self.max_write_frames))

    def read(self, start_frame: int, frames: int) -> np.ndarray:
        """Return a new contiguous (frames, channels) array; see `read_into`."""
        out = np.empty((frames, self.channels), dtype=np.float32)
        self.read_into(out, start_frame)
        return out

    def read_latest(self, frames: int) -> tuple[int, np.ndarray]:
        """Return (start_frame, block) for the newest `frames` frames (zeros before frame 0)."""
        end = int(self._clock[0])
        start = end - frames
        if start >= 0:
            return start, self.read(start, frames)
        out = np.zeros((frames, self.channels), dtype=np.float32)
        if end > 0:
            self.read_into(out[-end:], 0)
        return start, out
