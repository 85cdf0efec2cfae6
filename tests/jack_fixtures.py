"""pytest's side of the JACK harness (bench/harness/jack_server.py): a server per test, an engine on it."""

from __future__ import annotations

import pytest

from bench.harness.jack_server import JackServer, JackUnavailable


@pytest.fixture
def jack_server():
    server = JackServer()
    try:
        server.start()
    except JackUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


def start_engine(**config):
    """An AudioEngine on the test's JACK server (1 in, 1 out, 64 frames), running or a test failure."""
    from engine.stream import AudioEngine, StreamConfig
    cfg = StreamConfig(**{"hostapi": "JACK", "input_channels": 1, "output_channels": 1,
                          "block_size": 64, **config})
    eng = AudioEngine(cfg)
    eng.start()
    if not eng.wait_running(20):
        eng.close()
        pytest.fail(f"engine did not start: {eng.status().message}")
    return eng
