"""Live monitoring through chains built inside the audio process, against a real JACK server:
one peer plays known bursts into the engine's input while another records its output."""

import math
import time

import numpy as np
import pytest

from engine.chain import Chain
from engine.chain_presets import PresetPathError, build_members, chain_to_dict, parse_preset
from engine.plugins import PluginScanner
from engine.stream import EngineError
from tests.conftest import wait_for
from bench.harness.jack_server import burst, start_peer, tape_path
from tests.jack_fixtures import start_engine

# These tests compare the monitored output with the input sample for sample. On a loaded
# machine the dummy JACK server itself can drop a period (an xrun), which corrupts one
# 64-frame block of the take whatever the engine does: a failing take is played again, at
# most twice. A real fault fails all three takes.
pytestmark = [pytest.mark.jack, pytest.mark.flaky(reruns=2)]

HALF_DB = 20 * math.log10(0.5)      # Gain by exactly 0.5
QUARTER_DB = 20 * math.log10(0.25)
FRAMES, GAP = 4800, 48000           # two 0.1 s bursts, 1 s apart
ZAMCOMP = "/usr/lib/vst3/ZamComp.vst3"


def gain_spec(db):
    return {"format": "samplescout-chain", "version": 1, "name": "gain",
            "members": [{"type": "builtin", "effect": "Gain", "params": {"gain_db": db}}]}


def engine_for(tmp_path, **kw):
    return start_engine(vst3_cache_dir=str(tmp_path / "vst3-cache"), **kw)


def play_and_record(server, eng, seed, between=None, seconds=2.5):
    """Peer A plays burst(seed) then burst(seed + 1) GAP frames later into our input; peer B
    records our output. `between` runs after the first burst and before the second.
    Returns (tape, first frame of the input in the capture ring's clock, ring end before)."""
    rec = start_peer(server, "record", "PortAudio:out_", seconds)
    play = start_peer(server, "play", "PortAudio:in_", seed, FRAMES, GAP)
    before = eng.ring.end_frame
    rec.go_and_wait_recording()
    play.go()
    if between is not None:
        # Once burst A has wholly reached the capture ring, and while burst B is still 0.9 s
        # away: the change must land in that silence.
        assert wait_for(lambda: _input_onset(eng, before) is not None, 10), "burst A never came"
        a_start = _input_onset(eng, before)
        assert wait_for(lambda: eng.ring.end_frame >= a_start + FRAMES + 64, 10)
        between()
        assert eng.ring.end_frame < a_start + GAP - FRAMES, "the change came too late to test"
    play.result()
    rec.result()
    return np.load(tape_path(server.name)), before


def _input_onset(eng, before: int) -> int | None:
    """Ring frame of the first input sound after ``before``, or None yet."""
    end = eng.ring.end_frame
    nz = np.flatnonzero(eng.ring.read(before, end - before)[:, 0]) if end > before else []
    return before + int(nz[0]) if len(nz) else None


def onset(y, threshold=1e-4):
    nz = np.flatnonzero(np.abs(y) > threshold)
    assert len(nz) > 0, "nothing reached the recording peer"
    return int(nz[0])


def test_gain_chain_monitors_input_at_half_and_follows_parameter_changes(jack_server, tmp_path):
    eng = engine_for(tmp_path)
    try:
        ids = eng.set_input_chain(gain_spec(HALF_DB), member_ids=["g"])
        assert ids == ["g"]
        eng.set_monitoring(True)
        assert eng.monitoring
        changed = lambda: eng.set_chain_parameter("input", "g", "gain_db", QUARTER_DB)  # noqa: E731
        y, before = play_and_record(jack_server, eng, 11, between=changed)
        a, b = burst(11, FRAMES), burst(12, FRAMES)
        first = onset(y)
        # Output = input * 0.5, then (after the change) * 0.25, at one constant offset.
        np.testing.assert_allclose(y[first:first + FRAMES], 0.5 * a, atol=1e-6)
        assert not np.any(np.abs(y[first + FRAMES:first + GAP]) > 1e-6)
        np.testing.assert_allclose(y[first + GAP:first + GAP + FRAMES], 0.25 * b, atol=1e-6)
        # The capture ring keeps the raw input, whatever the chain does.
        raw = eng.ring.read(before, eng.ring.end_frame - before)[:, 0]
        r0 = onset(raw)
        np.testing.assert_array_equal(raw[r0:r0 + FRAMES], a)
        assert eng.chain_spec("input")["members"][0]["params"]["gain_db"] == pytest.approx(QUARTER_DB)
    finally:
        eng.close()


def test_monitoring_off_is_silent_while_previews_play_through_preview_chain(jack_server, tmp_path):
    eng = engine_for(tmp_path)
    try:
        eng.set_input_chain(gain_spec(HALF_DB))
        eng.set_preview_chain(gain_spec(HALF_DB))
        eng.set_monitoring(False)
        idx = eng.add_sample(np.full((2400, 1), 0.3, np.float32))
        y, before = play_and_record(jack_server, eng, 21, between=lambda: eng.play(idx))
        raw = eng.ring.read(before, eng.ring.end_frame - before)[:, 0]
        assert np.count_nonzero(raw) >= 2 * FRAMES  # the input did arrive...
        loud = np.flatnonzero(np.abs(y) > 1e-6)
        assert len(loud) > 0, "the preview never sounded"
        # ...but only the preview (0.3 through Gain 0.5, with its fades) reached the output.
        assert loud[-1] - loud[0] < 2400 + 64
        assert np.max(np.abs(y)) == pytest.approx(0.15, abs=1e-6)
        assert np.count_nonzero(np.abs(y - 0.15) < 1e-6) > 2000
    finally:
        eng.close()


def test_vst3_chain_output_equals_the_chain_applied_offline(jack_server, tmp_path):
    scanner = PluginScanner(cache_dir=tmp_path / "vst3-cache")
    local = Chain("input", 48000, 1, 8192, scanner)
    mid = local.add_vst3(ZAMCOMP)
    local.set_parameter(mid, "threshold_db", -30.0)
    local.set_parameter(mid, "ratio", 8.0)
    local.set_parameter(mid, "makeup_db", 6.0)
    spec = chain_to_dict(local)
    eng = engine_for(tmp_path)
    try:
        eng.set_input_chain(spec)
        eng.set_monitoring(True)
        a, b = burst(31, FRAMES), burst(32, FRAMES)
        dry = np.zeros(GAP + FRAMES, np.float32)
        dry[:FRAMES], dry[GAP:] = a, b
        # An xrun drops blocks on the server's side, whatever the chain does: a take during
        # which jackd reported one is played again (at most three takes).
        for _ in range(3):
            xruns = jack_server.xrun_count()
            y, _ = play_and_record(jack_server, eng, 31)
            first = onset(y)
            got = y[first:first + GAP + FRAMES]
            # The same description built here and run over the same input, in 64-frame blocks.
            offline = Chain("input", 48000, 1, 8192, scanner)
            offline.replace(*build_members(parse_preset(spec, scanner.roots()), offline))
            ref = np.concatenate([offline.process(dry[i:i + 64, None])[:, 0]
                                  for i in range(0, len(dry), 64)])
            if jack_server.xrun_count() == xruns or np.allclose(got, ref, atol=1e-5):
                break
        assert np.max(np.abs(got - dry)) > 0.05  # the compressor did something
        np.testing.assert_allclose(got, ref, atol=1e-5)
    finally:
        eng.close()


def test_reconnect_resends_chain_and_bad_specs_are_refused(jack_server, tmp_path):
    eng = engine_for(tmp_path, retry_interval=0.3)
    try:
        eng.set_input_chain(gain_spec(0.0), member_ids=["g"])
        eng.set_chain_parameter("input", "g", "gain_db", HALF_DB)
        eng.set_monitoring(True)
        with pytest.raises(EngineError, match="outside"):
            eng.set_chain_parameter("input", "g", "gain_db", 99.0)
        with pytest.raises(EngineError, match="no member"):
            eng.set_chain_parameter("input", "x", "gain_db", 0.0)
        hostile = {"format": "samplescout-chain", "version": 1,
                   "members": [{"type": "vst3", "path": "/tmp/../etc/evil.vst3"}]}
        with pytest.raises(PresetPathError):
            eng.set_input_chain(hostile)
        assert eng.chain_spec("input")["members"][0]["effect"] == "Gain"  # refused spec not kept
        jack_server.stop()
        deadline = time.monotonic() + 10
        while eng.status().state == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert eng.status().state == "waiting"
        jack_server.start()
        assert eng.wait_running(20), eng.status().message
        # The fresh audio process builds the chain again: takes are played until its output
        # is the gain's (nothing says when the rebuild is done), for at most 20 s.
        want = 0.5 * burst(41, FRAMES)
        deadline = time.monotonic() + 20
        while True:
            y, _ = play_and_record(jack_server, eng, 41)
            first = onset(y)
            got = y[first:first + FRAMES]
            if np.allclose(got, want, atol=1e-6) or time.monotonic() > deadline:
                break
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert eng.status().restarts >= 1
    finally:
        eng.close()
