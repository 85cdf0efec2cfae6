import sys
import threading
import time

import numpy as np
import pytest

from engine.ring import CaptureRing, RingOverrun, RingUnderrun


def ramp(start, frames, channels):
    """Frames whose value encodes their absolute position (exact in float32 below 2**24)."""
    pos = np.arange(start, start + frames, dtype=np.float32)
    return np.stack([pos + 0.25 * c for c in range(channels)], axis=1).astype(np.float32)


def test_read_by_frame_position_across_wraparound():
    ring = CaptureRing(channels=2, capacity_frames=1000, max_write_frames=64)
    written = 0
    for size in [64, 17, 64, 1, 63] * 40:  # about 8 laps of the ring, odd block sizes
        ring.write(ramp(written, size, 2))
        written += size
    assert ring.end_frame == written
    # A read that straddles the physical end of the buffer comes back contiguous and exact.
    start = written - 900
    wrap_at = (start // 1000 + 1) * 1000
    assert start < wrap_at < start + 800
    block = ring.read(start, 800)
    assert block.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(block, ramp(start, 800, 2))


def test_overrun_when_reader_falls_behind():
    ring = CaptureRing(channels=1, capacity_frames=1000, max_write_frames=64)
    for i in range(50):
        ring.write(ramp(i * 64, 64, 1))
    with pytest.raises(RingOverrun) as err:
        ring.read(0, 64)
    assert err.value.oldest_frame == ring.oldest_frame == 50 * 64 - 1000 + 64
    # The oldest frame it names can be read.
    np.testing.assert_array_equal(ring.read(ring.oldest_frame, 10), ramp(ring.oldest_frame, 10, 1))


def test_underrun_when_frames_not_written_yet():
    ring = CaptureRing(channels=1, capacity_frames=1000, max_write_frames=64)
    ring.write(ramp(0, 64, 1))
    with pytest.raises(RingUnderrun):
        ring.read(32, 64)
    np.testing.assert_array_equal(ring.read(32, 32), ramp(32, 32, 1))


def test_read_latest_pads_before_first_frame():
    ring = CaptureRing(channels=1, capacity_frames=1000, max_write_frames=64)
    ring.write(ramp(0, 10, 1))
    start, block = ring.read_latest(16)
    assert start == -6
    np.testing.assert_array_equal(block[:6], 0)
    np.testing.assert_array_equal(block[6:], ramp(0, 10, 1))


def test_thirty_seconds_capacity():
    ring = CaptureRing.for_seconds(channels=2, sample_rate=48000, seconds=30)
    assert ring.capacity - ring.max_write_frames >= 30 * 48000


def test_concurrent_reader_never_sees_torn_data():
    """A producer thread laps a small ring while a reader copies: every read either matches
    the frame positions exactly or reports an overrun."""
    ring = CaptureRing(channels=1, capacity_frames=600, max_write_frames=64)
    stop = threading.Event()
    blocks = [ramp(i * 64, 64, 1) for i in range(800)]

    def produce():
        for b in blocks:
            ring.write(b)
            time.sleep(0)  # let the reader run between blocks, as a real callback would
        stop.set()

    # Hand the GIL over often so both threads interleave many times within a short test.
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    thread = threading.Thread(target=produce)
    thread.start()
    good = overruns = 0
    out = np.empty((400, 1), dtype=np.float32)
    while not stop.is_set():
        start = max(0, ring.end_frame - 500)
        try:
            ring.read_into(out, start)
        except RingOverrun:
            overruns += 1
            continue
        except RingUnderrun:
            continue
        np.testing.assert_array_equal(out, ramp(start, 400, 1))
        good += 1
    thread.join()
    sys.setswitchinterval(old_interval)
    assert good > 0


def test_rejects_blocks_larger_than_declared():
    ring = CaptureRing(channels=1, capacity_frames=1000, max_write_frames=64)
    with pytest.raises(ValueError):
        ring.write(np.zeros((65, 1), np.float32))


def test_two_rings_over_one_pair_of_buffers_see_the_same_frames():
    """The app's reader and the audio callback's writer are two rings over shared buffers."""
    data, clock = np.zeros((1000, 2), np.float32), np.zeros(1, np.int64)
    writer = CaptureRing(2, 1000, 64, data=data, clock=clock)
    reader = CaptureRing(2, 1000, 64, data=data, clock=clock)
    for i in range(20):
        writer.write(ramp(i * 50, 50, 2))
    assert reader.end_frame == int(clock[0]) == 1000
    np.testing.assert_array_equal(reader.read(300, 500), ramp(300, 500, 2))
    with pytest.raises(ValueError):
        CaptureRing(2, 1000, 64, data=np.zeros((1000, 1), np.float32), clock=clock)
    with pytest.raises(ValueError):
        CaptureRing(2, 1000, 64, data=data, clock=np.zeros(1, np.int32))
