"""`samplescout listen`: JSON lines for a played sample through JACK; one line without a device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import proc_stats, wait_for
from tests.jack_fixtures import jack_server  # noqa: F401  (fixture)
from bench.harness.live_peer import start_live_peer
from bench.harness.live_support import build_library, played_files, sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def listen(args, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "app.cli", "listen", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_no_audio_device_gives_one_line_and_nonzero_exit(tmp_path):
    env = dict(os.environ, JACK_DEFAULT_SERVER=f"absent_{os.getpid()}", JACK_NO_START_SERVER="1")
    proc = listen(["--library-dir", str(tmp_path / "lib"), "--json"], env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("samplescout: error: no audio device"), err
    assert "Traceback" not in err and out == ""


def test_bad_profile_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "samplescout-match-profile", "version": 1, "name": "x"')
    proc = listen(["--library-dir", str(tmp_path / "lib"), "--profile", str(bad)], dict(os.environ))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "not valid JSON" in err and "Traceback" not in err


@pytest.mark.jack
def test_listen_json_lines_name_the_played_sample(jack_server, tmp_path):  # noqa: F811
    library_dir = tmp_path / "library-data"
    linked = build_library(library_dir, tmp_path / "samples")
    files = played_files(linked, 12)[4:7]
    signal, _ = sequence(files, 48000, 1.6, lead_s=1.0)
    np.save(tmp_path / "signal.npy", signal)
    proc = listen(["--library-dir", str(library_dir), "--hostapi", "JACK", "--json",
                   "--seconds", f"{len(signal) / 48000 + 6:.1f}"], jack_server.env())
    try:
        peer = start_live_peer(jack_server, "play", tmp_path / "signal.npy", "PortAudio:in_", 40, timeout=50)
        peer.go()
        peer.result()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    updates = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    onset_updates = [u for u in updates if u["reason"] == "onset"]
    assert len(onset_updates) >= len(files), out
    for u in onset_updates:
        assert isinstance(u["onset_frame"], int)
        scores = [r["score"] for r in u["results"]]
        assert u["results"] and all(-1.0 <= s <= 1.0001 for s in scores)
    tops = [u["results"][0]["path"] for u in onset_updates]
    # every played file is named first, in the order played
    firsts = [tops.index(str(p)) if str(p) in tops else None for p in files]
    assert None not in firsts and firsts == sorted(firsts), (tops, [str(p) for p in files])


def live(pids) -> list[int]:
    """Those of ``pids`` still running (zombies waiting to be reaped left out)."""
    return [pid for pid, fields in proc_stats() if pid in pids and fields[0] != "Z"]


def holds_jack(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return "libjack" in maps.read()
    except OSError:
        return False


@pytest.mark.jack
def test_the_audio_process_ends_when_the_audio_server_and_the_app_are_killed_together(
        jack_server, tmp_path):  # noqa: F811
    """kill -9 of the app closes the audio process's pipe; the server gone a moment earlier
    must not leave it waiting for ever on a stream it cannot close (an orphan per kill)."""
    library_dir = tmp_path / "library-data"
    build_library(library_dir, tmp_path / "samples")
    proc = listen(["--library-dir", str(library_dir), "--hostapi", "JACK", "--json",
                   "--seconds", "120"], jack_server.env(), start_new_session=True)
    audio = []
    try:
        deadline = time.monotonic() + 60
        while not audio and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            audio = [pid for pid, fields in proc_stats()
                     if int(fields[1]) == proc.pid and holds_jack(pid)]
        assert audio, "the audio process never started: " + (proc.stderr.read() if proc.poll() is not None else "")
        time.sleep(2.0)                    # serving: the stream runs
        # the server goes, and the app with it before the audio process notices the
        # silence (0.5 s): it sees its pipe close and must close a stream of a dead server
        jack_server.stop()
        os.kill(proc.pid, 9)
        proc.wait(30)
        assert wait_for(lambda: not live(audio), timeout=30), "the audio process outlived its app"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in live(audio):
            os.kill(pid, 9)
