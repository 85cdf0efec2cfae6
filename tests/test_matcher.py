"""Matcher pieces without an audio server: profiles, hysteresis, ring overrun, modes, gate.

The capture ring here is the engine's real CaptureRing, written by a thread of the test."""

from __future__ import annotations

import contextlib
import json
import time

import numpy as np
import pytest

from app.catalog import FileRow
from app.match_profiles import Hysteresis, ProfileError, get_profile, load_profile, profile_names
from app.matcher import LiveMatcher
from models.encoder import MODEL_SAMPLE_RATE
from app.decode import read_mono
from app.query import FILE_RERANK_DEPTH, MAX_QUERY_SECONDS, SearchResult, embed_query
from app.suggestions import SuggestionMerger
from engine.ring import CaptureRing
from tests.conftest import wait_for
from bench.harness.live_support import build_library, played_files, sequence

SR = 48000


# ---- profiles -----------------------------------------------------------------------------

def test_shipped_profiles_load():
    assert set(profile_names()) >= {"drums", "tonal", "loops", "voice_imitation"}
    for name in profile_names():
        profile = get_profile(name)
        assert profile.name == name and profile.mode in ("one-shot", "rolling")
    assert get_profile("loops").mode == "rolling"


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("k"), "missing key 'k'"),
    (lambda d: d.update(mode="continuous"), "'mode' must be one of"),
    (lambda d: d.update(window_seconds="1"), "'window_seconds' must be a number"),
    (lambda d: d.update(gate_db=12), "'gate_db' must be between"),
    (lambda d: d.update(k=0), "'k' must be between 1 and 100"),
    (lambda d: d.update(windw_seconds=1.0), "unknown key 'windw_seconds'"),
    (lambda d: d["hysteresis"].update(margin=True), "'hysteresis.margin' must be a number"),
    (lambda d: d["hysteresis"].update(extra=1), "unknown key 'hysteresis.extra'"),
    (lambda d: d.update(format="other"), "not a Sample Scout match profile"),
    (lambda d: d.update(version=2), "unsupported version"),
])
def test_malformed_profiles_give_specific_errors(tmp_path, change, message):
    data = json.loads(json.dumps(get_profile("drums").to_json()))
    change(data)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match=message) as info:
        load_profile(path)
    assert str(path) in str(info.value)


def test_broken_json_and_missing_files(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"format": ')
    with pytest.raises(ProfileError, match=r"not valid JSON .*line 1"):
        load_profile(path)
    with pytest.raises(ProfileError, match="no match profile named 'nope'"):
        get_profile("nope")
    with pytest.raises(ProfileError, match="bad profile name"):
        get_profile("drums!")


# ---- hysteresis ---------------------------------------------------------------------------

def result(file_id, score):
    row = FileRow(id=file_id, path=f"/s/{file_id}.wav", size=1, mtime_ns=0, content_hash=None,
                  duration=1.0, sample_rate=44100, channels=1, kind="one-shot", status="indexed",
                  error_code=None, error=None, model_id="m")
    return SearchResult(rank=0, file=row, score=score, offset_s=0.0, exists=False)


def test_small_wobbles_do_not_reorder_and_clear_wins_do():
    merger = SuggestionMerger(Hysteresis(margin=0.05, new_weight=1.0, decay=0.9, max_age_seconds=100,
                                         min_score=0.0, display=10))
    first = merger.update([result(1, 0.90), result(2, 0.88), result(3, 0.80)], now=0.0)
    assert [s.file_id for s in first] == [1, 2, 3]
    wobble = merger.update([result(1, 0.88), result(2, 0.91), result(3, 0.80)], now=1.0)
    assert [s.file_id for s in wobble] == [1, 2, 3]        # 2 beats 1 by 0.03 < margin
    clear = merger.update([result(1, 0.80), result(2, 0.95), result(3, 0.80)], now=2.0)
    assert [s.file_id for s in clear][:2] == [2, 1]        # 2 beats 1 by 0.15
    newcomer = merger.update([result(4, 0.97), result(2, 0.95)], now=3.0)
    assert newcomer[0].file_id == 2                         # 4 is new but within the margin


def test_entries_decay_out():
    merger = SuggestionMerger(Hysteresis(margin=0.02, new_weight=0.8, decay=0.5, max_age_seconds=5.0,
                                         min_score=0.3, display=10))
    merger.update([result(1, 0.9), result(2, 0.5)], now=0.0)
    after = merger.update([result(3, 0.9)], now=1.0)
    ids = [s.file_id for s in after]
    assert 2 not in ids and 1 in ids          # 0.5*0.5 < 0.3; 0.9*0.5 stays
    later = merger.update([result(3, 0.9)], now=10.0)
    assert [s.file_id for s in later] == [3]  # 1 too old


# ---- the matcher on a ring written by a test thread -----------------------------------------

@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("matcher-library")
    return root / "library-data", build_library(root / "library-data", root / "samples")


def feed(ring, signal, speed=4.0, block=512):
    t0 = time.perf_counter()
    for i in range(0, len(signal), block):
        ring.write(signal[i:i + block, None])
        delay = t0 + (i + block) / SR / speed - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


@contextlib.contextmanager
def running(matcher):
    """The matcher's worker running for the block, stopped however the block ends."""
    matcher.start()
    try:
        yield matcher
    finally:
        matcher.stop()


def caught_up(matcher) -> bool:
    """The matcher has read everything the ring holds (its analysis may still be running)."""
    return matcher.stats()["behind_frames"] == 0


def test_silence_and_quiet_noise_give_no_queries(library):
    library_dir, _ = library
    ring = CaptureRing.for_seconds(1, SR, 10, 1024)
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"))
    with running(matcher):
        rng = np.random.default_rng(0)
        quiet = (rng.standard_normal(3 * SR) * 10 ** (-70 / 20)).astype(np.float32)
        feed(ring, np.concatenate([np.zeros(SR, np.float32), quiet]))
        assert wait_for(lambda: caught_up(matcher))
        matcher.set_mode("rolling")
        feed(ring, quiet)
        assert wait_for(lambda: caught_up(matcher) and matcher.stats()["windows_gated"] >= 2)
        stats = matcher.stats()
    assert stats["queries"] == 0 and stats["onsets"] == 0
    assert stats["windows_gated"] >= 1          # rolling windows came, the gate held them
    assert matcher.latest() is None


def test_mode_switch_and_overrun_skip(library):
    library_dir, linked = library
    files = played_files(linked, 12)[:3]
    signal, _ = sequence(files, SR, 1.4)
    ring = CaptureRing.for_seconds(1, SR, 3, 1024)
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"))
    updates = []
    matcher.subscribe(updates.append)
    with running(matcher):
        feed(ring, signal)
        assert wait_for(lambda: len(updates) >= 1 and caught_up(matcher))
        assert {u.reason for u in updates} == {"onset"} and matcher.recent_onsets()
        matcher.set_mode("rolling")
        feed(ring, signal)
        assert wait_for(lambda: any(u.reason == "rolling" for u in updates) and caught_up(matcher))
        assert all(u.mode == "rolling" for u in updates if u.reason == "rolling")
        # the matcher falls 5 s behind (more than the 3 s the ring holds): it jumps to 0.1 s
        # before the end and counts exactly the frames it never read
        assert wait_for(lambda: caught_up(matcher))
        before = matcher.stats()
        original = matcher._step
        matcher._step = lambda: False          # hold the reader while the ring overruns
        written = 0
        for i in range(0, 5 * SR, 1024):
            ring.write(np.zeros((1024, 1), np.float32))
            written += 1024
        matcher._step = original
        assert wait_for(lambda: matcher.stats()["jumps"] > before["jumps"]), matcher.stats()
        stats = matcher.stats()
    assert stats["jumps"] == before["jumps"] + 1
    assert stats["skipped_frames"] - before["skipped_frames"] == written - int(0.1 * SR)
    assert stats["errors"] == 0, stats["last_error"]


# ---- captures, capture span, index swap -------------------------------------------------------

def test_capture_span_comes_from_the_profile():
    assert get_profile("drums").capture_span == 0.5
    data = json.loads(json.dumps(get_profile("drums").to_json()))
    del data["capture_seconds"]
    from app.match_profiles import profile_from_json
    assert profile_from_json(data).capture_span == data["window_seconds"] + 0.5
    data["capture_seconds"] = 0.01
    with pytest.raises(ProfileError, match="'capture_seconds' must be between"):
        profile_from_json(data)


def test_capture_runs_on_the_callers_thread_and_finds_the_hit_just_played(library):
    import threading
    library_dir, linked = library
    files = played_files(linked, 12)
    earlier, last = files[1], files[6]
    signal, starts = sequence([earlier, last], SR, 0.8)
    signal = signal[:starts[1] + int(0.3 * SR)]      # the capture comes 0.3 s after the last hit
    ring = CaptureRing.for_seconds(1, SR, 10, 1024)
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"))
    seen, full = [], []
    matcher.subscribe(lambda u: seen.append((u.reason, threading.current_thread().name)))
    matcher.subscribe(lambda u: full.append(u) if u.reason == "capture-full" else None)
    live = []
    matcher.subscribe(live.append)
    with running(matcher):
        feed(ring, signal)
        assert wait_for(lambda: caught_up(matcher))
        # the worker has answered what is due of the last hit (its refined or final stage)
        # and waits for more audio: the last window analysed is the capture's own
        assert wait_for(lambda: any(u.reason == "onset" and u.stage != "attack"
                                    and u.onset_frame >= starts[1] - 0.05 * SR for u in live))
        update = matcher.capture()
        # a hit still sounding after 0.3 s: its full window follows; one that decayed
        # within them was heard whole by the capture
        # (a window cut at the decay ends on a 20 ms frame before the span's end)
        sounding = len(matcher.last_window()[1]) > 0.29 * MODEL_SAMPLE_RATE
        feed(ring, np.zeros(SR, np.float32))      # the rest of the hit's window arrives
        assert wait_for(lambda: len(full) >= sounding and ("onset", "live-matcher") in seen)
    assert update is not None and update.reason == "capture"
    assert update.suggestions[0].path == str(last), [s.name for s in update.suggestions[:3]]
    assert ("capture", threading.current_thread().name) in seen
    assert ("onset", "live-matcher") in seen
    assert len(full) == int(sounding)
    if sounding:       # for the same onset
        assert full[0].onset_frame == update.onset_frame
        assert full[0].suggestions[0].path == str(last)


def test_set_index_swaps_the_index_queries_use(library):
    from app.catalog import Catalog
    from app.index import VectorIndex
    from app.paths import CATALOG_FILENAME
    library_dir, linked = library
    target = played_files(linked, 12)[4]
    ring = CaptureRing.for_seconds(1, SR, 2, 1024)
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"))
    full = matcher.search_file(target)
    assert full.suggestions[0].path == str(target) and len(full.suggestions) > 1
    with Catalog(library_dir / CATALOG_FILENAME) as catalog:
        row = catalog.file_by_path(str(target))
        parts = [p for p in catalog.iter_vectors(matcher.encoder.model_id, dim=matcher.encoder.dim)]
    ids = np.concatenate([p[0] for p in parts])
    fids = np.concatenate([p[1] for p in parts])
    vecs = np.concatenate([p[2] for p in parts])
    others = fids != row.id
    smaller = VectorIndex.build(matcher.encoder.dim, matcher.encoder.model_id, ids[others], fids[others], vecs[others])
    matcher.set_index(smaller)
    swapped = matcher.search_file(target)
    assert str(target) not in [s.path for s in swapped.suggestions]
    assert len(swapped.suggestions) > 1


def test_a_new_sound_ranks_by_its_own_scores_over_a_near_twin_the_last_hit_put_first():
    """One-shot hits: a kick after another kick is named for itself, though its near twin led
    the list by less than the margin (what hysteresis keeps for more looks at one sound)."""
    h = Hysteresis(margin=0.02, new_weight=0.85, decay=0.5, max_age_seconds=6.0, min_score=0.3, display=16)
    twin = SuggestionMerger(h)
    twin.update([result(1, 0.95), result(2, 0.94)], now=0.0)             # first kick: file 1
    same_look = twin.snapshot()
    looked_again = twin.update([result(2, 0.95), result(1, 0.94)], now=0.2)
    assert [s.file_id for s in looked_again][:2] == [1, 2]              # hysteresis holds
    twin.restore(same_look)
    new_hit = twin.update([result(2, 0.95), result(1, 0.94)], now=0.2, new_sound=True)
    assert [s.file_id for s in new_hit][:2] == [2, 1]                    # the new hit's own best
    assert new_hit[0].score == pytest.approx(0.95)


def test_a_dropped_file_shows_the_index_order_first_then_the_reranked_list(library):
    """The re-ranker reads dozens of candidate files (seconds on a cold disk at a million
    files): the index's answer is published first, and the re-ranked list replaces it."""
    library_dir, linked = library
    target = played_files(linked, 12)[7]
    ring = CaptureRing.for_seconds(1, SR, 2, 1024)
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"))
    assert matcher.reranker is not None
    seen = []
    matcher.subscribe(seen.append)
    final = matcher.search_file(target)
    assert [u.stage for u in seen] == ["index", "final"] and seen[-1] is final
    first = seen[0]
    assert first.seq < final.seq and first.reason == final.reason == "file"
    assert first.latency_ms <= final.latency_ms
    # the first list is the index's own order (the same search, the re-ranker left out)
    audio = read_mono(target, MODEL_SAMPLE_RATE, max_seconds=MAX_QUERY_SECONDS)
    shown = [s.path for s in first.suggestions]
    index_order = matcher.searcher.search(embed_query(matcher.encoder, audio),
                                          max(FILE_RERANK_DEPTH, len(shown)), rerank=False)
    assert len(shown) > 1 and shown == [r.file.path for r in index_order][:len(shown)]
    assert final.suggestions[0].path == str(target)


def test_a_late_final_answer_re_ranks_unless_a_later_hit_waits(library):
    """A worker that falls behind (a stall of a loaded machine; here two hits reach the ring
    at once) answers the first hit's final window without the re-ranker, since the second
    waits, and re-ranks the second's: late, but with nothing behind it."""
    library_dir, linked = library
    files = played_files(linked, 12)
    signal, starts = sequence([files[2], files[5]], SR, 0.6)
    ring = CaptureRing.for_seconds(1, SR, 10, len(signal))
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"), max_lag_seconds=10.0)
    assert matcher.reranker is not None
    finals = []
    matcher.subscribe(lambda u: finals.append(u) if u.reason == "onset" and u.stage == "final" else None)
    with running(matcher):
        ring.write(signal[:, None])          # one write: the worker finds both hits waiting
        assert wait_for(lambda: any(u.onset_frame >= starts[1] - 0.05 * SR for u in finals))

    def of_hit(i):
        return [u for u in finals if abs(u.onset_frame - starts[i]) < 0.05 * SR]

    def reranked(update):
        return any(stage.startswith("rerank") for stage, _ in update.trace)

    first, second = of_hit(0), of_hit(1)
    assert len(first) == 1 and len(second) == 1, [(u.onset_frame, u.stage) for u in finals]
    assert not reranked(first[0]) and reranked(second[0]), (first[0].trace, second[0].trace)
    assert second[0].suggestions[0].path == str(files[5])


def test_between_hits_the_worker_reads_the_ring_at_the_idle_rate(library):
    """Listening to silence in one-shot mode, the worker wakes about every
    IDLE_POLL_SECONDS rather than every poll_interval (500 times a second, a tenth of a core
    for nothing); a hit after the silence still gets its attack answer."""
    from app.matcher import IDLE_POLL_SECONDS
    library_dir, linked = library
    ring = CaptureRing.for_seconds(1, SR, 4, 1024)
    matcher = LiveMatcher(library_dir, ring, SR, profile=get_profile("drums"))
    updates = []
    matcher.subscribe(updates.append)
    with running(matcher):
        feed(ring, np.zeros(SR // 5, np.float32), speed=1.0, block=256)
        assert wait_for(lambda: matcher.stats()["ring_reads"] > 0)      # warmed up, reading
        before = matcher.stats()["ring_reads"]
        feed(ring, np.zeros(SR, np.float32), speed=1.0, block=256)
        idle_reads = matcher.stats()["ring_reads"] - before
        signal, _ = sequence([played_files(linked, 12)[3]], SR, 0.8)
        feed(ring, signal, speed=1.0, block=256)
        assert wait_for(lambda: any(u.reason == "onset" and u.stage == "attack" for u in updates))
    assert 20 <= idle_reads <= 1.5 / IDLE_POLL_SECONDS, idle_reads


# ---- the resampler's held-back tail ------------------------------------------------------------

@pytest.mark.parametrize("device_rate", [48000, 32000, 96000, 22050])
def test_the_held_back_tail_is_what_the_stream_gives_later(device_rate):
    """A stream resampler gives its last outputs only once it has seen the input after them
    (5-40 ms of them); ``tail`` makes them now. They match what the stream gives later,
    exactly but for the last 3 ms (made as if the input stopped there)."""
    from app.matcher import InputConditioner
    rng = np.random.default_rng(device_rate)
    t = np.arange(2 * device_rate) / device_rate
    signal = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    whole = InputConditioner(device_rate)
    later = np.concatenate([whole.stream(signal[i:i + 64, None]) for i in range(0, signal.size, 64)])
    live = InputConditioner(device_rate)
    given, checked = 0, 0
    for i in range(0, signal.size, 64):
        given += live.stream(signal[i:i + 64, None]).size
        if i % 4096 or i == 0:
            continue
        tail = live.tail()
        held = live.held_back()
        assert len(tail) == held > 0
        # the input holds them: the device samples read reach past them
        assert given + held <= (i + 64) * MODEL_SAMPLE_RATE // device_rate
        truth = later[given:given + held]
        exact = max(0, held - 160)          # the last 3.6 ms are made as if the input stopped
        np.testing.assert_allclose(tail[:exact], truth[:exact], atol=1e-5)
        assert np.linalg.norm(tail - truth) < 0.1 * np.linalg.norm(truth)
        checked += 1
    assert checked >= 10


def test_input_at_the_model_rate_holds_nothing_back():
    from app.matcher import InputConditioner
    conditioner = InputConditioner(MODEL_SAMPLE_RATE)
    out = conditioner.stream(np.ones((512, 2), np.float32))
    assert out.size == 512 and conditioner.held_back() == 0 and conditioner.tail().size == 0


@pytest.mark.parametrize("device_rate", [48000, 22050])
def test_a_decay_found_in_the_held_back_tail_is_where_the_whole_input_puts_it(device_rate):
    """The decay check reads the tail but for its last TAIL_SETTLING_SAMPLES (made as if
    the input stopped): wherever it finds a hit's decay, the complete input finds it at the
    same sample."""
    from app.matcher import TAIL_SETTLING_SAMPLES, InputConditioner, decay_end
    rng = np.random.default_rng(7)
    hit = int(0.3 * device_rate)
    t = np.arange(hit) / device_rate
    signal = np.zeros(4 * hit, np.float32)
    for k in range(4):       # noise hits decaying at four rates
        envelope = np.exp(-t / (0.01 + 0.02 * k))
        signal[k * hit:(k + 1) * hit] = 0.5 * envelope * rng.standard_normal(hit)
    whole = InputConditioner(device_rate)
    later = np.concatenate([whole.stream(signal[i:i + 64, None]) for i in range(0, signal.size, 64)])
    live = InputConditioner(device_rate)
    given, starts = [], [k * hit * MODEL_SAMPLE_RATE // device_rate for k in range(4)]
    found = 0
    for i in range(0, signal.size, 64):
        given.append(live.stream(signal[i:i + 64, None]))
        history = np.concatenate(given)
        settled = live.tail()[:max(0, live.held_back() - TAIL_SETTLING_SAMPLES)]
        known = np.concatenate([history, settled])
        for start in starts:
            if start >= history.size:
                continue
            at = decay_end(known[start:], -60.0)
            if at is not None and start + at <= history.size + settled.size:
                assert at == decay_end(later[start:start + at], -60.0), (start, at)
                found += 1
    assert found > 0
