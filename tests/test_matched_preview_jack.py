"""A matched audition through a real JACK server (dummy backend): what the engine plays is
the matched render, streamed into the playing sample block by block."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bench.harness.jack_server import start_peer, tape_path
from tests.conftest import SONIC_PI, require
from tests.jack_fixtures import start_engine

pytestmark = pytest.mark.jack


def test_a_matched_audition_plays_the_render_streamed_into_the_engine(jack_server, tmp_path):
    from app.matched_audition import MatchedAuditions
    from app.matched_preview import MatchedCache, Target, detect_source

    loop = require(SONIC_PI / "loop_amen_full.flac", "sonic-pi-samples")
    source = detect_source(loop)            # 140 BPM drum loop
    eng = start_engine()
    auditions = MatchedAuditions(eng, cache=MatchedCache(tmp_path / "matched"))
    try:
        rec = start_peer(jack_server, "record", "PortAudio:out_", 1.5)
        rec.go_and_wait_recording()
        started = auditions.play(str(loop), Target(bpm=120.0), source)
        assert started.how == "streamed" and started.plan.bpm == 120.0
        assert auditions.wait_idle(30) and auditions.completed == 1
        rec.result()
        tape = np.load(tape_path(jack_server.name))
        renders = list((tmp_path / "matched").glob("*/*.wav"))
        assert [r.name for r in renders] == ["loop_amen_full (120 BPM).wav"]
        render, rate = sf.read(renders[0], dtype="float32")
        assert rate == 48000
        original = eng.cache.load(str(loop))[:, 0]
        assert render.shape[0] == pytest.approx(original.shape[0] * 140 / 120, abs=2)
        # the engine's output is the render: the first block (rendered before the play
        # command) and pieces of the next two blocks (streamed in after it) are in the tape
        # sample for sample. A dropout of the loaded machine delays the rest by whole
        # periods, so each piece is looked for at a lag of whole periods; a block that came
        # late plays as silence, and the render thread counted it.
        nz = np.flatnonzero(tape)
        assert nz.size, "nothing reached the output"
        start = nz[0]
        for at in (0.05, 0.45, 0.95):           # blocks 0-0.25 s, 0.25-0.75 s, 0.75-1.75 s
            piece = render[int(at * 48000):int(at * 48000) + 1024]
            assert np.abs(piece).max() > 0.05
            errors = []
            # up to half a second either way: on a loaded machine the server skips cycles
            # (the recorder loses them too) and the engine plays a late block as silence
            for lag in range(-375 * 64, 375 * 64, 64):
                begin = start + int(at * 48000) + lag
                heard = tape[max(begin, 0):begin + 1024]
                if heard.shape == piece.shape:
                    errors.append(np.abs(heard - piece).max())
            if at > 0.25 and not any(np.abs(tape[start + int(at * 48000):][:1024]) > 0):
                assert auditions.late_blocks > 0
                continue
            assert min(errors) < 1e-5, (at, min(errors))
        heard = tape[start + 64:start + 48000]
        # and it is not the original at the original tempo
        assert np.max(np.abs(heard - original[64:48000])) > 0.1
        # a second audition of the same match plays the finished render, already loaded
        again = auditions.play(str(loop), Target(bpm=120.0), source)
        assert again.how == "loaded" and again.sample_index == started.sample_index
    finally:
        auditions.close()
        eng.close()
