"""Live matching through a real JACK server (dummy backend): a peer plays real library
samples into the app's input, the matcher names them; a MIDI capture note fills the pads;
the live path answers like search-by-file for the same audio."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import soundfile

from app.decode import read_mono

from app.session import CAPTURE_NOTE, Session
from engine.stream import StreamConfig
from models.encoder import MODEL_SAMPLE_RATE
from bench.damage import lowpass, room_reverb
from tests.conftest import wait_for
from bench.harness.live_peer import start_live_peer
from bench.harness.live_support import build_library, played_files, sequence

pytestmark = pytest.mark.jack

SPACING_S = 1.6
PLAYED = 20
# Bounds a user would notice, set under what runs measured on a loaded 2-core machine (see
# the test's docstring). Of the hits that got an update: clean, at most one not named first
# (a near twin); through a room and a mic, four in five named first and all but one in the
# list. A hit with no update at all (an onset lost when the machine is overloaded) counts
# apart: at most two per condition.
CLEAN_WRONG_FIRST = 1
ROOM_TOP1_RATE = 0.8
ROOM_OUTSIDE_TOP10 = 1
LOST_ONSETS = 2


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("live-library")
    linked = build_library(root / "library-data", root / "samples")
    return root / "library-data", linked


def open_session(library_dir, **kw) -> Session:
    cfg = StreamConfig(hostapi="JACK", input_channels=1, output_channels=1, block_size=64,
                       midi_api=kw.pop("midi_api", None))
    session = Session(library_dir, cfg, "drums", **kw)
    session.start(timeout=20)
    return session


def play(jack_server, tmp_path, signal, name):  # noqa: F811
    path = tmp_path / f"{name}.npy"
    np.save(path, signal)
    peer = start_live_peer(jack_server, "play", path, "PortAudio:in_")
    return peer


def ring_offset(session, before, signal):
    """Ring frame of signal index 0 (first non-zero frame of the ring vs of the signal), or
    None while the signal has not reached the ring. Call it early: the ring holds 30 s."""
    end = session.engine.ring.end_frame
    tape = session.engine.ring.read(before, end - before)[:, 0] if end > before else np.zeros(0)
    if not np.any(tape):
        return None
    first_ring = int(np.flatnonzero(tape)[0])
    first_signal = int(np.flatnonzero(signal)[0])
    return before + first_ring - first_signal


# How much earlier than its place in the signal a hit may reach the capture ring: audio
# cycles the engine misses under load never reach the ring, so every later hit arrives that
# many frames early (a whole tail of one condition's hits had fallen before its slot).
EARLY_S = 0.25


def first_onset_updates(updates, offset, starts, sample_rate):
    """For each played file: the final answer of the first onset in the file's slot (its
    attack and refined answers come before it)."""
    out = []
    for s in starts:
        lo, hi = offset + s - int(EARLY_S * sample_rate), offset + s + int((SPACING_S - 0.3) * sample_rate)
        hits = [u for u in updates if u.reason == "onset" and u.stage == "final"
                and u.onset_frame is not None and lo <= u.onset_frame < hi]
        out.append(hits[0] if hits else None)
    return out


def run_sequence(jack_server, tmp_path, session, signal, starts, name):  # noqa: F811
    updates = []
    session.matcher.subscribe(updates.append)
    peer = play(jack_server, tmp_path, signal, name)
    before = session.engine.ring.end_frame
    peer.go()
    offset = wait_for(lambda: ring_offset(session, before, signal), 10)
    assert offset is not None, "the played signal never reached the capture ring"
    peer.result(timeout=len(signal) / 48000 + 30)
    # the last window closes: its update names the last hit (or the wait runs out on a miss)
    wait_for(lambda: first_onset_updates(list(updates), offset, starts[-1:], 48000)[0], 15)
    session.matcher.unsubscribe(updates.append)
    return updates, offset


def room_and_mic(audio: np.ndarray, index: int) -> np.ndarray:
    """A small room (RT60 0.4 s, direct-to-reverberant 0 dB) and a mic that stops at 8 kHz."""
    wet = room_reverb(audio, np.random.default_rng(100 + index), sample_rate=48000)
    return lowpass(wet, sample_rate=48000)


# Now and then a run got no update for a whole tail of one condition's hits (the last 8 to
# 15 of 20), never reproduced alone: hits that reached the ring earlier than their slot
# (EARLY_S). A rerun still tells load apart from hits the matcher names wrongly, which
# fail every run.
@pytest.mark.flaky(reruns=1)
def test_played_samples_are_recognised_clean_and_through_a_room(jack_server, library, tmp_path):  # noqa: F811
    """Measured (`-s` prints the ranks), three runs on the shared 2-core machine: clean 19 or
    20 of 20 first (one file's twin ranks above it, depending on where the window starts), room + mic + -12 dB + -50 dBFS noise 18 of 20
    first and 20 of 20 in the top 10; under a load average of 10, up to two hits per
    condition got no update."""
    library_dir, linked = library
    files = played_files(linked, PLAYED)
    assert len(files) == PLAYED
    session = open_session(library_dir)
    try:
        rates, updates_by_condition = {}, {}
        conditions = (("clean", {}),
                      ("room", {"damage": room_and_mic, "gain_db": -12.0, "noise_dbfs": -50.0}))
        for name, kw in conditions:
            signal, starts = sequence(files, 48000, SPACING_S, **kw)
            updates, offset = run_sequence(jack_server, tmp_path, session, signal, starts, name)
            firsts = first_onset_updates(updates, offset, starts, 48000)
            updates_by_condition[name] = firsts
            ranks = []
            for path, update in zip(files, firsts):
                paths = [s.path for s in update.suggestions] if update else []
                ranks.append(paths.index(str(path)) + 1 if str(path) in paths else None)
            rates[name] = ranks
            print(name, ranks)
        lost = {name: sum(update is None for update in ranks_updates)
                for name, ranks_updates in updates_by_condition.items()}
        assert all(n <= LOST_ONSETS for n in lost.values()), (lost, rates, session.status().xruns)
        clean = [r for r, u in zip(rates["clean"], updates_by_condition["clean"]) if u is not None]
        room = [r for r, u in zip(rates["room"], updates_by_condition["room"]) if u is not None]
        assert sum(r != 1 for r in clean) <= CLEAN_WRONG_FIRST, rates
        assert sum(r == 1 for r in room) >= ROOM_TOP1_RATE * len(room), rates
        assert sum(r is None or r > 10 for r in room) <= ROOM_OUTSIDE_TOP10, rates
        stats = session.matcher.stats()
        assert stats["errors"] == 0, stats["last_error"]
        # one query per played hit and condition, less the onsets lost above
        assert stats["queries"] >= 2 * len(files) - sum(lost.values()), stats
    finally:
        session.close()


def test_midi_capture_note_fills_pads_with_the_last_hit(jack_server, library, tmp_path):  # noqa: F811
    library_dir, linked = library
    first, last = played_files(linked, 12)[2], played_files(linked, 12)[7]
    session = open_session(library_dir, midi_api="jack")
    captures = []
    session.matcher.subscribe(lambda u: captures.append(u) if u.reason == "capture" else None)
    try:
        assert "Sample Scout In" in session.engine.status().midi
        signal, starts = sequence([first, last], 48000, 1.6)
        signal = signal[:starts[1] + int(1.2 * 48000)]
        sender = start_live_peer(jack_server, "note", "Sample Scout", CAPTURE_NOTE, "0")
        player = play(jack_server, tmp_path, signal, "capture")
        before = session.engine.ring.end_frame
        player.go()
        offset = wait_for(lambda: ring_offset(session, before, signal), 10)
        assert offset is not None, "the played signal never reached the capture ring"
        # pressed once the last hit has been heard for 0.3 s, well inside the capture span
        assert wait_for(lambda: session.engine.ring.end_frame >= offset + starts[1] + int(0.3 * 48000), 20)
        sender.go()
        player.result()
        sender.result()
        deadline = time.monotonic() + 15
        while session.slot_updates == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        slots = session.slots()
        assert session.slot_updates >= 1, session.last_error
        assert slots[0] is not None and slots[0].path == str(last), [s and s.name for s in slots[:3]]
        # the pad really holds that sample: slot 1 points at the engine's copy of the file
        index = session.engine.sample_index(last)
        assert index is not None and session.engine.slot_sample(1) == index
        assert len(captures) == 1 and captures[0].suggestions[0].path == str(last)
    finally:
        session.close()


def test_live_path_answers_like_search_by_file(jack_server, library, tmp_path):  # noqa: F811
    library_dir, linked = library
    files = played_files(linked, 12)[3:6]
    session = open_session(library_dir)
    try:
        matcher = session.matcher
        compared = 0
        for i, path in enumerate(files):
            signal, _ = sequence([path], 48000, 1.6, lead_s=0.2)
            peer = play(jack_server, tmp_path, signal, f"parity{i}")
            before = session.engine.ring.end_frame
            peer.go()
            peer.result()
            assert wait_for(lambda: session.engine.ring.end_frame - before >= len(signal), 10)
            live = matcher.capture(4.0)
            assert live is not None and live.reason == "capture"
            _, window = matcher.last_window()
            wav = tmp_path / f"window{i}.wav"
            soundfile.write(wav, window, MODEL_SAMPLE_RATE, subtype="FLOAT")
            # the same audio through the one query path at the live re-ranking depth
            # (a search by file re-ranks deeper, FILE_RERANK_DEPTH, and may order the tail
            # differently)
            offline = matcher.query_audio(read_mono(wav, MODEL_SAMPLE_RATE), reason="file")
            assert [s.path for s in offline.suggestions] == [s.path for s in live.suggestions]
            assert matcher.search_file(wav).suggestions[0].path == live.suggestions[0].path
            np.testing.assert_allclose([s.score for s in offline.suggestions],
                                       [s.score for s in live.suggestions], atol=1e-6)
            # the played file itself, searched by file, comes first too
            assert matcher.search_file(path).suggestions[0].path == str(path)
            assert live.suggestions[0].path == str(path)
            compared += 1
        assert compared == len(files)
    finally:
        session.close()
