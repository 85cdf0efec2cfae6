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
