"""The test harness's own JACK parts leave nothing behind: a stopped server takes its log,
its tape and its peers with it, and a recording peer whose server dies exits by itself."""

from __future__ import annotations

import os

import pytest

from bench.harness.jack_server import JackServer, start_peer, tape_path


@pytest.fixture
def own_server():
    server = JackServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_a_recording_peer_exits_when_its_server_dies(own_server):
    rec = start_peer(own_server, "record", "system:capture_", 60)
    rec.go()
    own_server.proc.terminate()          # jackd goes away mid-recording
    own_server.proc.wait(10)
    rc = rec.proc.wait(20)               # it used to wait for frames that never came
    assert rc != 0
    assert "went away" in rec.proc.stderr.read()


def test_stopping_a_server_removes_its_log_tape_and_peers():
    server = JackServer().start()
    try:
        assert os.path.exists(server.log_path)
        rec = start_peer(server, "record", "system:capture_", 0.2)
        rec.go()
        rec.result()
        assert os.path.exists(tape_path(server.name))
        idle = start_peer(server, "record", "system:capture_", 60)   # never told to go
    finally:
        server.stop()
    assert idle.proc.poll() is not None
    assert not os.path.exists(server.log_path)
    assert not os.path.exists(tape_path(server.name))


def test_a_playing_peer_reports_its_signal_clock(own_server, tmp_path):
    """The player's clock of its signal (what bench/live_latency.py times each hit by, since a
    loaded dummy server runs slower than real time): sample 0 first, then one entry every
    CLOCK_CYCLES cycles to the signal's end, each later than the one before."""
    import numpy as np

    from bench.harness.jack_server import CLOCK_CYCLES
    from bench.harness.live_peer import start_live_peer
    path = tmp_path / "signal.npy"
    np.save(path, np.zeros(own_server.sample_rate, np.float32))
    peer = start_live_peer(own_server, "play", str(path), "system:playback_")
    peer.go()
    clock = peer.result(timeout=30)["clock"]
    samples, times = [s for s, _ in clock], [t for _, t in clock]
    step = CLOCK_CYCLES * own_server.period
    assert samples == list(range(0, samples[-1] + 1, step)), samples[:5]
    assert samples[-1] > own_server.sample_rate - step
    assert all(b > a for a, b in zip(times, times[1:]))
