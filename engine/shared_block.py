"""The block of memory the app process and the audio process share: capture ring, frame clock,
meters, playheads, the preview command ring, parameters and callback durations.

The app creates it (shared memory in process mode, plain memory in thread mode); the audio
process attaches to it by name. Every array is a numpy view at a 64-byte aligned offset, so
both sides read and write the same numbers without a round trip. Writers: the callback owns
the ring, clock, meters, playheads, durations and the command ring's read index; the app owns
the command slots, their write index and the volume and monitoring parameters.

Threads: views may be read and written from any thread; `close` only once nothing reads.
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from .meters import N_COUNTERS
from .ring import CaptureRing

__all__ = ["SharedBlock", "layout", "CMD_SLOTS", "DURATION_SLOTS", "MAX_CALLBACK_FRAMES",
           "CMD_WRITTEN", "CMD_READ", "PARAM_VOLUME", "PARAM_MONITORING", "PARAM_CHAIN_ERRORS"]

CMD_SLOTS = 256                  # preview commands in flight from the app to the callback
DURATION_SLOTS = 1 << 16         # callback durations kept for bench/engine.py
MAX_CALLBACK_FRAMES = 8192       # largest block a host may hand the callback (JACK's own period)

CMD_WRITTEN, CMD_READ = 0, 1                             # cmd_head indices
PARAM_VOLUME, PARAM_MONITORING, PARAM_CHAIN_ERRORS = 0, 1, 2  # params indices


def layout(cfg) -> list[tuple[str, tuple, type]]:
    """(name, shape, dtype) of each array, in order, for a `StreamConfig`."""
    ring_frames = int(cfg.ring_seconds * cfg.sample_rate) + 2 * MAX_CALLBACK_FRAMES
    return [
        ("ring", (ring_frames, cfg.input_channels), np.float32),
        ("clock", (1,), np.int64),
        ("levels", (2, cfg.input_channels), np.float32),
        ("counters", (N_COUNTERS,), np.int64),
        ("positions", (cfg.voices,), np.int64),
        ("voice_ids", (cfg.voices,), np.int64),
        ("cmd", (CMD_SLOTS, 5), np.float64),
        ("cmd_head", (2,), np.int64),      # [written, read]
        ("params", (4,), np.float64),      # [preview volume, monitoring on, chain errors, -]
        ("durations", (DURATION_SLOTS,), np.int64),
        ("dur_head", (1,), np.int64),
    ]


class SharedBlock:
    """Named numpy views on one buffer: `block["ring"]`, `block["params"]` ...

    `create=True` makes a new shared memory block (the app), `name=` attaches to one (the audio
    process), `in_process=True` uses plain memory (thread mode)."""

    def __init__(self, cfg, name: str | None = None, create: bool = False, in_process: bool = False):
        self.cfg = cfg
        specs = layout(cfg)
        offsets, size = [], 0
        for _, shape, dtype in specs:
            size = (size + 63) // 64 * 64
            offsets.append(size)
            size += int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.shm = None
        if in_process:
            buf = memoryview(bytearray(size))
        else:
            self.shm = shared_memory.SharedMemory(name=name, create=create, size=size if create else 0)
            buf = self.shm.buf
        self.name = self.shm.name if self.shm else None
        self.arrays: dict[str, np.ndarray] = {}
        for (key, shape, dtype), off in zip(specs, offsets):
            count = int(np.prod(shape))
            self.arrays[key] = np.frombuffer(buf, dtype=dtype, count=count, offset=off).reshape(shape)
        if create or in_process:
            self.arrays["params"][PARAM_VOLUME] = 1.0

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def capture_ring(self) -> CaptureRing:
        """A CaptureRing over the shared ring and clock (the callback writes, anyone reads)."""
        data = self.arrays["ring"]
        return CaptureRing(self.cfg.input_channels, data.shape[0], MAX_CALLBACK_FRAMES,
                           data=data, clock=self.arrays["clock"])

    def touch_pages(self) -> None:
        """Fault every page of a shared block in now, so the callback never does. Audio process."""
        if self.shm is not None:
            pages = np.frombuffer(self.shm.buf, np.uint8)[::4096]
            int(pages.sum(dtype=np.int64))
            del pages

    def close(self, unlink: bool = False) -> None:
        self.arrays = {}
        if self.shm is not None:
            try:
                self.shm.close()
            except BufferError:
                pass  # a reader still holds a view; the OS frees it at exit
            if unlink:
                try:
                    self.shm.unlink()
                except FileNotFoundError:
                    pass
