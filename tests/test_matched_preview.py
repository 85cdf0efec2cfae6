"""Tempo- and key-matched preview through the real renderer (Rubber Band in pedalboard) on
Debian's loops and instruments, checked with the app's own detectors; the plan's rules;
the render cache; tap tempo; ``samplescout preview-match``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from app.matched_preview import (MatchedCache, MatchError, MatchPlan, SourceInfo, Target,
                                 block_edges, detect_source, matched_name, plan_match, render,
                                 render_blocks, render_file, smallest_move)
from app.tap_tempo import TapTempo
from tests.conftest import LMMS, SONIC_PI, require

pytestmark = pytest.mark.samples

AMEN_FULL = SONIC_PI / "loop_amen_full.flac"     # a 140 BPM drum loop
AMEN = SONIC_PI / "loop_amen.flac"               # too short for a tempo: the detector abstains
PIANO = LMMS / "instruments" / "piano01.ogg"     # a piano note, C4
GUITAR = LMMS / "latin" / "latin_guitar03.ogg"   # a guitar loop, 119 BPM, A minor


@pytest.fixture(scope="module")
def amen_full():
    path = require(AMEN_FULL, "sonic-pi-samples")
    return path, detect_source(path)


def test_a_loop_stretched_to_the_session_tempo_has_its_length_and_tempo(amen_full, tmp_path):
    from models.tempo import estimate_tempo
    path, source = amen_full
    assert source.kind == "loop" and source.tempo_bpm == pytest.approx(140, abs=1)
    rendered, plan = render_file(path, Target(bpm=120.0), cache=MatchedCache(tmp_path))
    assert plan.bpm == 120.0 and plan.semitones == 0
    out, rate = sf.read(rendered, dtype="float32", always_2d=True)
    original = sf.info(str(path))
    assert rate == original.samplerate
    assert out.shape[0] / original.frames == pytest.approx(source.tempo_bpm / 120.0, rel=0.02)
    found = estimate_tempo(out.mean(axis=1), rate)
    assert found.bpm == pytest.approx(120.0, abs=1.5)
    assert rendered.name == "loop_amen_full (120 BPM).wav"


def test_a_tonal_one_shot_moves_to_the_session_key_by_the_smallest_step(tmp_path):
    from models.pitch import estimate_root
    path = require(PIANO, "lmms-common")
    source = detect_source(path)
    assert source.kind == "one-shot" and source.root_midi == 60      # C4
    rendered, plan = render_file(path, Target(key="E"), cache=MatchedCache(tmp_path))
    assert plan.semitones == 4 and rendered.name == "piano01 (E).wav"
    out, rate = sf.read(rendered, dtype="float32", always_2d=True)
    assert out.shape[0] == sf.info(str(path)).frames                  # a one-shot keeps its length
    assert estimate_root(out.mean(axis=1), rate).midi == 64           # E4
    # A (a minor sixth up, or a major third down): down is the smaller move
    assert plan_match(source, Target(key="Ab")).semitones == -4


def test_a_tonal_loop_is_stretched_and_moved_to_the_relative_key(tmp_path):
    from models.key import estimate_key
    from models.tempo import estimate_tempo
    path = require(GUITAR, "lmms-common")
    source = detect_source(path)
    assert (source.kind, source.key_text) == ("loop", "Am")
    # E major's relative minor is C#m: A minor moves up 4 semitones
    rendered, plan = render_file(path, Target(bpm=110.0, key="E"), cache=MatchedCache(tmp_path))
    assert (plan.semitones, plan.key) == (4, "C#m")
    assert rendered.name == "latin_guitar03 (110 BPM, C#m).wav"
    out, rate = sf.read(rendered, dtype="float32", always_2d=True)
    mono = out.mean(axis=1)
    assert estimate_key(mono, rate).label() == "C#m"
    assert estimate_tempo(mono, rate).bpm == pytest.approx(110.0, abs=1.5)


def test_drums_are_never_pitched_and_an_unknown_tempo_abstains_with_a_reason(amen_full, tmp_path):
    _, source = amen_full
    plan = plan_match(source, Target(bpm=120.0, key="Am"))
    assert plan.semitones == 0 and plan.bpm == 120.0
    assert "drums" in plan.reason
    short = detect_source(require(AMEN, "sonic-pi-samples"))
    assert short.kind == "loop" and short.tempo_bpm is None
    rendered, plan = render_file(AMEN, Target(bpm=120.0), cache=MatchedCache(tmp_path))
    assert rendered is None and not plan.changes
    assert "tempo" in plan.reason and "unknown" in plan.reason
    uncertain = SourceInfo(kind="loop", tempo_bpm=90.0, tempo_confidence=0.1)
    assert "uncertain" in plan_match(uncertain, Target(bpm=120.0)).reason
    assert not plan_match(uncertain, Target(bpm=120.0)).changes


def test_the_plan_handles_relative_keys_and_half_time():
    c_major_loop = SourceInfo(kind="loop", tempo_bpm=120, tempo_confidence=0.9, key_tonic=0,
                              key_mode="major", key_confidence=0.9)
    assert plan_match(c_major_loop, Target(key="Am")).semitones == 0     # relative minor
    plan = plan_match(c_major_loop, Target(key="Bm"))                     # relative major: D
    assert (plan.semitones, plan.key) == (2, "D")
    assert plan_match(c_major_loop, Target(key="F#")).semitones == 6
    slow = SourceInfo(kind="loop", tempo_bpm=70, tempo_confidence=0.9)
    half = plan_match(slow, Target(bpm=150.0))
    assert half.stretch == pytest.approx(150 / 140) and "half time" in half.reason
    assert [smallest_move(0, t) for t in (1, 5, 6, 7, 11)] == [1, 5, 6, -5, -1]
    with pytest.raises(MatchError):
        Target(key="H minor")
    with pytest.raises(MatchError):
        Target(bpm=5)


def test_the_progressive_blocks_double_and_join_into_one_render(amen_full):
    path, source = amen_full
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    plan = MatchPlan(stretch=140 / 128, bpm=128.0)
    edges = block_edges(plan.output_frames(audio.shape[0]), rate)
    sizes = np.diff(edges)
    assert edges[0] == 0 and edges[-1] == plan.output_frames(audio.shape[0])
    assert sizes[0] == int(0.25 * rate) and all(b == 2 * a for a, b in zip(sizes[:-2], sizes[1:-1]))
    out = render(audio, rate, plan)
    whole = np.zeros_like(out)
    for _ in render_blocks(audio, rate, plan, whole, first_s=1000.0):   # one block
        pass

    def envelope(x, frame=480):
        n = x.shape[0] // frame * frame
        return np.sqrt(np.mean(x[:n, 0].reshape(-1, frame) ** 2, axis=1))

    # block by block it sounds like the render in one piece (the same envelope), with no
    # gap or doubling where blocks join
    assert np.corrcoef(envelope(out), envelope(whole))[0, 1] > 0.9
    for edge in edges[1:-1]:
        seam = slice(edge - 240, edge + 240)
        ratio = np.sqrt(np.mean(out[seam] ** 2)) / np.sqrt(np.mean(whole[seam] ** 2))
        assert 0.5 < ratio < 2.0, (edge, ratio)


def test_the_render_cache_reuses_a_render_names_it_and_drops_the_least_recent(amen_full, tmp_path):
    path, source = amen_full
    cache = MatchedCache(tmp_path / "matched")
    first, _ = render_file(path, Target(bpm=128.0), cache=cache, source=source)
    inode = os.stat(first).st_ino
    again, _ = render_file(path, Target(bpm=128.0), cache=cache, source=source)
    assert again == first and os.stat(again).st_ino == inode          # not rendered again
    assert first.name == "loop_amen_full (128 BPM).wav"
    plan = MatchPlan(stretch=1.1, semitones=-2, bpm=120.0, key="Am")
    assert matched_name("/x/bass loop.wav", plan) == "bass loop (120 BPM, Am).wav"
    # LRU: a bound that holds two renders keeps the two used last
    piano = require(PIANO, "lmms-common")
    note = detect_source(piano)
    small = MatchedCache(tmp_path / "small")
    renders = [render_file(piano, Target(key="D"), cache=small, source=note)[0]]
    small.max_bytes = int(2.5 * os.path.getsize(renders[0]))
    for key in ("E", "F"):
        small.get(renders[0])                       # the first stays in use
        renders.append(render_file(piano, Target(key=key), cache=small, source=note)[0])
    assert [r.exists() for r in renders] == [True, False, True]
    assert small.size() <= small.max_bytes


def test_tap_tempo_averages_the_last_taps_and_starts_again_after_a_pause():
    tapper = TapTempo(reset_after_s=2.0, window=4)
    assert tapper.tap(10.0) is None
    assert tapper.tap(10.5) == 120.0
    for t in (11.0, 11.5, 12.0):
        bpm = tapper.tap(t)
    assert bpm == 120.0 and tapper.taps == 5
    # drifting faster: only the last four intervals count
    for t in (12.4, 12.8, 13.2, 13.6):
        bpm = tapper.tap(t)
    assert bpm == 150.0
    # a pause starts a new count
    assert tapper.tap(20.0) is None and tapper.taps == 1
    assert tapper.tap(20.6) == 100.0


def test_preview_match_command_writes_the_render(amen_full, tmp_path, capsys):
    from app.cli import main
    path, _ = amen_full
    out = tmp_path / "out"
    out.mkdir()
    assert main(["preview-match", str(path), "--bpm", "150", "--key", "Am", "--out", str(out),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["bpm"] == 150.0 and doc["semitones"] == 0 and doc["kind"] == "loop"
    assert doc["rendered"] == str(out / "loop_amen_full (150 BPM).wav")
    assert sf.info(doc["rendered"]).frames == pytest.approx(sf.info(str(path)).frames * 140 / 150,
                                                            abs=2)
    assert main(["preview-match", str(path), "--key", "Am"]) == 0
    assert "nothing to render" in capsys.readouterr().out
    assert main(["preview-match", str(path), "--key", "H"]) == 1


def test_a_library_file_is_matched_from_the_catalogs_analysis(tmp_path):
    import shutil

    from app.library import Library
    from app.matched_preview import source_info
    from app.scanner import Scanner

    root = tmp_path / "samples"
    root.mkdir()
    loop = shutil.copy(require(AMEN_FULL, "sonic-pi-samples"), root / "loop_amen_full.flac")
    library_dir = tmp_path / "library"
    with Library(library_dir) as library:
        assert Scanner(library, workers=1).scan([root]).indexed == 1
    source = source_info(loop, library_dir)
    assert source.origin == "catalog" and source.kind == "loop"
    assert source.tempo_bpm == pytest.approx(140, abs=1) and source.content_hash
    assert "drum loop" in source.tags
    plan = plan_match(source, Target(bpm=120.0, key="Am"))
    assert plan.bpm == 120.0 and plan.semitones == 0 and "drums" in plan.reason
    # a file outside the library falls back to the detectors
    assert source_info(require(AMEN, "sonic-pi-samples"), library_dir).origin == "detected"
