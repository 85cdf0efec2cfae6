"""Dense playing through a real JACK server (dummy backend): a peer plays a 150 BPM loop of
library drum hits in eighths (0.2 s apart, tails overlapping the next hit) into the app's
input; every hit gets its own final update, for its own onset, naming its file first."""

from __future__ import annotations

import numpy as np
import pytest

from app.decode import read_mono
from app.session import Session
from engine.stream import StreamConfig
from tests.conftest import wait_for
from tests.test_matcher_jack import ring_offset
from bench.harness.live_peer import start_live_peer
from bench.harness.live_support import build_library

pytestmark = pytest.mark.jack

SR = 48000
STEP_S = 0.2       # eighths at 150 BPM
# a 3-3-2 groove: kick, hat, snare. (A closed hat right under a snare's tail is not
# detected as an onset by the drums profile's sensitivity: not what this test is about.)
PATTERN = ["bd_haus", "drum_cymbal_closed", "sn_dolf", "bd_tek", "elec_tick", "sn_dub",
           "bd_haus", "drum_cymbal_closed"]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense-library")
    linked = build_library(root / "library-data", root / "samples")
    return root / "library-data", {p.name.split(".")[0]: p for p in linked}


def loop_signal(paths: list) -> tuple[np.ndarray, list[int]]:
    """The hits one step apart, each sounding on under the next (a drum machine's loop)."""
    lead, step = int(0.5 * SR), int(STEP_S * SR)
    audio = [read_mono(p, SR) for p in paths]
    signal = np.zeros(lead + step * len(paths) + 2 * SR, np.float32)
    starts = []
    for i, a in enumerate(audio):
        start = lead + i * step
        signal[start:start + len(a)] += a[:len(signal) - start]
        starts.append(start)
    return np.clip(signal, -1, 1), starts


def test_every_hit_of_a_dense_loop_gets_its_own_final_answer(jack_server, library, tmp_path):  # noqa: F811
    library_dir, by_name = library
    paths = [by_name[n] for n in PATTERN]
    signal, starts = loop_signal(paths)
    cfg = StreamConfig(hostapi="JACK", input_channels=1, output_channels=1, block_size=64)
    session = Session(library_dir, cfg, "drums")
    session.start(timeout=20)
    updates = []
    try:
        session.subscribe(updates.append)
        np.save(tmp_path / "loop.npy", signal)
        peer = start_live_peer(jack_server, "play", tmp_path / "loop.npy", "PortAudio:in_")
        before = session.engine.ring.end_frame
        peer.go()
        offset = wait_for(lambda: ring_offset(session, before, signal), 10)
        assert offset is not None, "the played signal never reached the capture ring"
        peer.result(timeout=len(signal) / SR + 30)
        last = offset + starts[-1]
        assert wait_for(lambda: any(u.stage == "final" and u.onset_frame is not None
                                    and abs(u.onset_frame - last) < 0.05 * SR for u in list(updates)), 20)
        stats = session.stats()
    finally:
        session.close()
    finals = [u for u in updates if u.reason == "onset" and u.stage == "final"]
    named, in_top3 = [], 0
    for path, start in zip(paths, starts):
        mine = [u for u in finals if abs(u.onset_frame - (offset + start)) < 0.05 * SR]
        assert len(mine) == 1, (path.name, len(mine), {k: stats.get(k) for k in (
                "onsets", "skipped_frames", "jumps", "queries", "windows_with_tail")})       # its own final answer
        top = [s.name for s in mine[0].suggestions[:3]]
        named.append(top[0])
        in_top3 += path.name in top
    print(named)
    # On a loaded two-core machine a final that cannot wait for the re-ranker may put a
    # near twin first (a kick under a snare's tail): at most two such hits, and every hit
    # in its own top three.
    assert sum(n == p.name for n, p in zip(named, paths)) >= len(paths) - 2, named
    assert in_top3 == len(paths), named
    assert stats["errors"] == 0, stats["last_error"]
