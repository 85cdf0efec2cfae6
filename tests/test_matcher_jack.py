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

from app.session import CAPTURE_NOTE, Session
from engine.stream import StreamConfig
from models.encoder import MODEL_SAMPLE_RATE
from tests.jack_fixtures import jack_server  # noqa: F401  (fixture)
from bench.harness.live_peer import start_live_peer
from bench.harness.live_support import build_library, played_files, sequence

pytestmark = pytest.mark.jack

SPACING_S = 1.6
CLEAN_TOP1_RATE = 0.8      # played file ranked first, clean input
DAMAGED_TOP10_RATE = 0.8   # played file within the top 10, -12 dB and noise at -60 dBFS RMS


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
    """Ring frame of signal index 0 (first non-zero frame of the ring vs of the signal)."""
    end = session.engine.ring.end_frame
    tape = session.engine.ring.read(before, min(end - before, 10 * 48000))[:, 0]
    first_ring = int(np.flatnonzero(tape)[0])
    first_signal = int(np.flatnonzero(signal)[0])
    return before + first_ring - first_signal


def first_onset_updates(updates, offset, starts, sample_rate):
    """For each played file: the first onset update whose onset lies in the file's slot."""
    out = []
    for s in starts:
        lo, hi = offset + s - 2048, offset + s + int((SPACING_S - 0.3) * sample_rate)
        hits = [u for u in updates if u.reason == "onset" and u.onset_frame is not None and lo <= u.onset_frame < hi]
        out.append(hits[0] if hits else None)
    return out


def run_sequence(jack_server, tmp_path, session, signal, name):  # noqa: F811
    updates = []
    session.matcher.subscribe(updates.append)
    peer = play(jack_server, tmp_path, signal, name)
    before = session.engine.ring.end_frame
    peer.go()
    peer.result(timeout=len(signal) / 48000 + 30)
    time.sleep(1.5)  # the last window closes
    session.matcher.unsubscribe(updates.append)
    return updates, ring_offset(session, before, signal)


def test_played_samples_are_recognised_clean_and_damaged(jack_server, library, tmp_path):  # noqa: F811
    library_dir, linked = library
    files = played_files(linked, 12)
    session = open_session(library_dir)
    try:
        rates = {}
        for name, kw in (("clean", {}), ("damaged", {"gain_db": -12.0, "noise_dbfs": -60.0})):
            signal, starts = sequence(files, 48000, SPACING_S, **kw)
            updates, offset = run_sequence(jack_server, tmp_path, session, signal, name)
            firsts = first_onset_updates(updates, offset, starts, 48000)
            ranks = []
            for path, update in zip(files, firsts):
                paths = [s.path for s in update.suggestions] if update else []
                ranks.append(paths.index(str(path)) + 1 if str(path) in paths else None)
            rates[name] = ranks
            print(name, ranks)
        top1 = sum(r == 1 for r in rates["clean"]) / len(files)
        top10 = sum(r is not None and r <= 10 for r in rates["damaged"]) / len(files)
        assert top1 >= CLEAN_TOP1_RATE, rates
        assert top10 >= DAMAGED_TOP10_RATE, rates
        stats = session.matcher.stats()
        assert stats["errors"] == 0, stats["last_error"]
        # one query per played hit and condition; under the damaged condition on a shared
        # 2-core machine an onset is now and then lost (seen once in 4 runs: 23 of 24), which the
        # recognition rates above already allow for
        assert stats["queries"] >= 2 * len(files) - 2, stats
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
        # pressed a moment after the hit, well inside the profile's capture span
        sender = start_live_peer(jack_server, "note", "Sample Scout", CAPTURE_NOTE,
                                 f"{starts[1] / 48000 + 0.3:.3f}")
        player = play(jack_server, tmp_path, signal, "capture")
        player.go()
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
        index = session.engine._sample_index[str(last)]
        assert session.engine._slots[1] == index
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
            peer.go()
            peer.result()
            time.sleep(0.3)
            live = matcher.capture(4.0)
            assert live is not None and live.reason == "capture"
            _, window = matcher.last_window()
            wav = tmp_path / f"window{i}.wav"
            soundfile.write(wav, window, MODEL_SAMPLE_RATE, subtype="FLOAT")
            offline = matcher.search_file(wav)
            assert [s.path for s in offline.suggestions] == [s.path for s in live.suggestions]
            np.testing.assert_allclose([s.score for s in offline.suggestions],
                                       [s.score for s in live.suggestions], atol=1e-6)
            # the played file itself, searched by file, comes first too
            assert matcher.search_file(path).suggestions[0].path == str(path)
            assert live.suggestions[0].path == str(path)
            compared += 1
        assert compared == len(files)
    finally:
        session.close()
