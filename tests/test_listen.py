"""`samplescout listen`: JSON lines for a played sample through JACK; one line without a device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

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
