"""Progressive answers and capture look-back, against a real scanned library with the live
matcher reading a capture ring fed in real time: one hit answers from its attack, then
refined, then final (one onset frame); a capture 1 s and 2.5 s after the last hit still
names it, even when an earlier hit was louder."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.decode import read_mono
from app.match_profiles import get_profile
from app.matcher import LiveMatcher
from engine.ring import CaptureRing
from tests.conftest import wait_for
from bench.harness.live_support import build_library, played_files, sequence

pytestmark = pytest.mark.samples

SR = 48000


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("progressive-library")
    return root / "library-data", build_library(root / "library-data", root / "samples")


def feed(ring, signal, block=480):
    """Write ``signal`` into the ring in real time (10 ms blocks)."""
    t0 = time.perf_counter()
    for i in range(0, len(signal), block):
        ring.write(signal[i:i + block, None])
        delay = t0 + (i + block) / SR - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def longest_hit(linked):
    """The played one-shot that sounds longest (its refinements are not cut by a decay)."""
    return max(played_files(linked, 20), key=lambda p: np.count_nonzero(
        np.abs(read_mono(p, SR)) > 10 ** (-40 / 20)))


def test_one_hit_answers_attack_then_refined_then_final(library):
    library_dir, linked = library
    path = longest_hit(linked)
    signal, starts = sequence([path], SR, 1.6, lead_s=0.3)
    ring = CaptureRing.for_seconds(1, SR, 10, 1024)
    # re-ranking in its own process, as the app's session runs it
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"), rerank_process=True)
    updates = []
    matcher.subscribe(lambda u: updates.append((u, ring.end_frame)))
    matcher.start()
    try:
        feed(ring, signal)
        assert wait_for(lambda: any(u.stage == "final" for u, _ in updates), 20)
        rerank = matcher.rerank_stats()
    finally:
        matcher.stop()
    # the early stages told the re-ranking process which files to read; stopping reaps it
    assert rerank is not None and rerank["prepared"] >= 1 and rerank["alive"], rerank
    assert matcher.rerank_stats() is None
    onset_updates = [(u, end) for u, end in updates if u.reason == "onset"]
    stages = [u.stage for u, _ in onset_updates]
    assert stages[0] == "attack" and stages[-1] == "final" and "refined" in stages, stages
    assert stages == sorted(stages, key=("attack", "refined", "final").index), stages
    assert stages.count("final") == 1 and stages.count("attack") == 1, stages
    assert len({u.onset_frame for u, _ in onset_updates}) == 1
    attack, ring_end_at_attack = onset_updates[0]
    # the attack's answer came while most of the hit was still to arrive
    assert ring_end_at_attack - attack.onset_frame < 0.5 * SR
    # its onset is where the hit starts, its arrival time is known
    assert abs(attack.onset_frame - starts[0]) < 0.03 * SR
    assert all(u.onset_time == attack.onset_time for u, _ in onset_updates)
    assert attack.since_onset_ms() > 0
    final = onset_updates[-1][0]
    assert final.suggestions[0].path == str(path), [s.name for s in final.suggestions[:3]]
    # the final update says where its latency went, re-ranking included
    trace = dict(final.trace)
    assert {"wait", "embed", "search", "rerank", "merge"} <= set(trace), trace
    assert sum(trace[s] for s in ("wait", "embed", "search", "rerank", "merge")) <= final.latency_ms + 1.0
    # and it is what a query from scratch of the same window gives (the matcher's last window)
    start_frame, window = matcher.last_window()
    assert abs(start_frame - starts[0]) < 0.03 * SR
    fresh = matcher.query_audio(window, k=len(final.suggestions))
    assert [s.path for s in fresh.suggestions[:3]] == [s.path for s in final.suggestions[:3]]
    np.testing.assert_allclose([s.score for s in fresh.suggestions[:3]],
                               [s.score for s in final.suggestions[:3]], rtol=1e-5)


def test_windows_due_inside_the_resamplers_held_back_tail_are_answered_from_it(library):
    """Input at 48 kHz goes through a stream resampler that gives its last 5-20 ms only
    after the input that follows them: windows due inside them are analysed from a tail
    made of the recent input rather than waiting (``windows_with_tail``), and every hit is
    still named first."""
    library_dir, linked = library
    files = played_files(linked, 12)[:4]
    signal, starts = sequence(files, SR, 0.7, lead_s=0.3)
    ring = CaptureRing.for_seconds(1, SR, 10, 1024)
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"))
    finals = {}
    matcher.subscribe(lambda u: finals.setdefault(u.onset_frame, u)
                      if u.reason == "onset" and u.stage == "final" else None)
    matcher.start()
    try:
        feed(ring, signal)
        assert wait_for(lambda: len(finals) >= len(files), 20), len(finals)
        stats = matcher.stats()
    finally:
        matcher.stop()
    assert stats["windows_with_tail"] >= 1, stats
    for start, path in zip(starts, files):
        near = [u for frame, u in finals.items() if abs(frame - start) < 0.03 * SR]
        assert near and near[0].suggestions[0].path == str(path), [s.name for s in near[0].suggestions[:3]] if near else finals.keys()


@pytest.mark.parametrize("after_s", [1.0, 2.5])
def test_capture_finds_the_last_hit_seconds_later_not_the_loudest(library, after_s):
    library_dir, linked = library
    files = played_files(linked, 12)
    louder, last = files[2], files[8]
    signal, starts = sequence([louder, last], SR, 0.8, lead_s=0.2)
    signal[starts[1]:] *= np.float32(10 ** (-12 / 20))    # the last hit 12 dB softer
    signal = np.concatenate([signal[:starts[1] + int(after_s * SR)],
                             np.zeros(max(0, starts[1] + int(after_s * SR) - len(signal)), np.float32)])
    ring = CaptureRing.for_seconds(1, SR, 10, 1024)
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"))
    matcher.start()
    try:
        feed(ring, signal)
        assert wait_for(lambda: matcher.stats()["behind_frames"] == 0)
        update = matcher.capture()
    finally:
        matcher.stop()
    assert update is not None, "the capture heard nothing"
    assert update.suggestions[0].path == str(last), [s.name for s in update.suggestions[:3]]
    assert abs(update.onset_frame - starts[1]) < 0.03 * SR
