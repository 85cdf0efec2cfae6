"""Audio settings applied from the window reach the live stream: checked on the real engine
over a JACK server (dummy backend), not on a test host's record of calls.

The server runs at 44.1 kHz. The host starts asking for 48 kHz, which that server cannot
give; once 44.1 kHz is applied, the reopened stream runs and reports one JACK period of
output latency at 44.1 kHz (64 / 44100 s), where a 48 kHz stream reports 64 / 48000 s.
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import SONIC_PI, require, wait_for
from bench.harness.jack_server import JackServer

pytestmark = [pytest.mark.jack, pytest.mark.samples]


@pytest.fixture
def server_44k():
    server = JackServer(sample_rate=44100).start()
    try:
        yield server
    finally:
        server.stop()


def test_applied_sample_rate_reopens_the_live_stream_at_that_rate(server_44k, qtbot, tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    from app.library import Library
    from app.scanner import Scanner
    from ui.host import AudioSettings
    from ui.session_host import SessionHost

    root = tmp_path / "samples"
    root.mkdir()
    for stem in ("bd_haus", "sn_dolf"):
        shutil.copy(SONIC_PI / f"{stem}.flac", root)
    with Library(tmp_path / "library") as library:
        Scanner(library, workers=1).scan([root])

    host = SessionHost(tmp_path / "library", AudioSettings(hostapi="JACK", sample_rate=48000,
                                                           block_size=64))
    try:
        host.start()
        # 48 kHz on a 44.1 kHz server: the live stream does not run
        assert wait_for(lambda: host.status().state in ("waiting", "stopped", "error"), 60), \
            host.status()
        assert "sample rate" in host.status().message.lower(), host.status()

        host.apply_audio_settings(AudioSettings(hostapi="JACK", sample_rate=44100, block_size=64))
        assert wait_for(lambda: host.status().state == "running", 60), host.status()
        latency_ms = wait_for(lambda: host.status().output_latency_ms, 10)
        assert latency_ms == pytest.approx(1000 * 64 / 44100, rel=0.01), host.status()
        assert host.session.engine.meters().callbacks > 0
    finally:
        host.close()
