"""The waveform coherence (models/coherence.py) and its place in the re-ranker's score, on
real strummed-guitar takes (Debian's hydrogen-drumkits-effects) through a synthetic room,
and through the app's search (real SQLite catalog, real hnswlib index)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from app.decode import read_mono
from app.library import Library
from app.scanner import Scanner
from models.coherence import (MAX_SIGNAL, BlockSignals, coherence_signal, coherence_term, peak_coherence,
                              spectrum)
from models.encoder import MODEL_SAMPLE_RATE as SR
from models.encoder import Encoder
from models.preprocess import clip_blocks
from models.reranker import Candidate, Reranker, rerank_order
from models.room_fit import room_fit_bonus
from tests.test_reranker import room
from tests.test_room_fit import CHORDS, STRUMS, TAKES, own_take_first, take_path


def first_block(audio: np.ndarray):
    """The first block of a clip: its log-mel and its coherence signal."""
    blocks = clip_blocks(audio)
    return blocks[0].log_mel, BlockSignals(audio, blocks[:1])[0]


@pytest.fixture(scope="module")
def takes() -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Every take of the four chords, clean: first block's log-mel and coherence signal."""
    if not STRUMS.is_dir():
        pytest.fail(f"{STRUMS} is missing: install hydrogen-drumkits-effects (make test does)")
    return {(chord, take): first_block(read_mono(take_path(chord, take), SR)) for chord in CHORDS for take in TAKES}


@pytest.fixture(scope="module")
def heard() -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Every take through a room of its own: what a microphone gives, first block."""
    return {(chord, take): first_block(room(read_mono(take_path(chord, take), SR), seed=100 * c + t, rt60=0.5))
            for c, chord in enumerate(CHORDS) for t, take in enumerate(TAKES)}


def coherence_rows(takes, heard) -> dict[tuple[str, str], np.ndarray]:
    clean = {key: spectrum(signal) for key, (_, signal) in takes.items()}
    return {(chord, take): np.array([peak_coherence(spectrum(signal), clean[chord, t]) for t in TAKES])
            for (chord, take), (_, signal) in heard.items()}


def test_coherence_tells_the_own_take_from_other_takes_of_one_chord(takes, heard):
    rows = coherence_rows(takes, heard)
    # one guitar, one player, one chord: the power maps are near twins, the phases are not
    # (48 of 48 when written; the own take 0.62-0.79, the best other take 0.15-0.60)
    assert own_take_first(rows) >= 46
    assert all(0.0 <= row.min() and row.max() <= 1.0 for row in rows.values())
    own = np.array([row[TAKES.index(take)] for (_, take), row in rows.items()])
    assert np.median(own) > 0.5


def test_coherence_finds_the_recording_at_any_lag_and_ignores_gain_and_polarity():
    audio = read_mono(take_path("Eminor", "DOWN_02"), SR)
    _, clean = first_block(audio)
    clean_spectrum = spectrum(clean)
    shift = int(0.4 * SR)
    for delayed in (np.concatenate([np.zeros(shift), audio])[:int(2.3 * SR)],    # later than the block
                    audio[shift:shift + int(2.3 * SR)]):                          # earlier (no attack)
        own = peak_coherence(spectrum(coherence_signal(delayed)), clean_spectrum)
        assert own > 0.1
        flipped = peak_coherence(spectrum(coherence_signal(-0.01 * delayed)), clean_spectrum)
        assert flipped == pytest.approx(own, abs=1e-3)
        other = first_block(read_mono(take_path("Eminor", "DOWN_03"), SR))[1]
        assert peak_coherence(spectrum(coherence_signal(delayed)), spectrum(other)) < own
    # a quarter of the block's samples are not in the later copy: a quiet tail
    later = np.concatenate([np.zeros(shift), audio])[:int(2.3 * SR)]
    assert peak_coherence(spectrum(coherence_signal(later)), clean_spectrum) > 0.9


def test_degenerate_inputs_give_a_finite_term_or_a_clear_error():
    tone = coherence_signal(0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR))
    silent = np.zeros(1000, dtype=np.float32)
    assert peak_coherence(spectrum(silent), spectrum(tone)) == 0.0
    assert np.isfinite(coherence_term(0.0))
    assert peak_coherence(spectrum(tone), spectrum(tone)) == pytest.approx(1.0, abs=1e-3)
    assert coherence_signal(np.zeros(0)).size == 0
    assert coherence_signal(np.ones(4 * SR)).size == MAX_SIGNAL     # longer than a block: cut
    with pytest.raises(ValueError, match="at most"):
        spectrum(np.ones(MAX_SIGNAL + 1, dtype=np.float32))
    with pytest.raises(ValueError, match="expected two spectra"):
        peak_coherence(spectrum(tone), spectrum(tone)[:-1])


def test_rerank_order_adds_the_coherence_term_only_when_every_candidate_has_audio(takes, heard):
    reranker, encoder = Reranker(), Encoder()
    assert 0 < reranker.coherence_weight < 20
    chord, take = "Amajor", "UP_01"
    query_mel, query_signal = heard[chord, take]
    cands = [Candidate(takes[chord, t][0][None], encoder.embed_blocks(takes[chord, t][0][None]),
                       (takes[chord, t][1],)) for t in TAKES]
    qv = encoder.embed_blocks(query_mel[None])
    queries = np.repeat(query_mel[None], len(TAKES), axis=0)
    blocks = np.stack([takes[chord, t][0] for t in TAKES])
    without = reranker.score(queries, blocks) + room_fit_bonus(queries, blocks, reranker.room_fit_weight)
    coherence = np.array([peak_coherence(spectrum(query_signal), spectrum(takes[chord, t][1])) for t in TAKES])
    expected = without + reranker.coherence_weight * coherence_term(coherence)

    order, scores = rerank_order(reranker, query_mel[None], qv, cands, (query_signal,))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-3)
    assert order[0] == TAKES.index(take)
    # one candidate without audio: the term is left out for all, so they stay comparable
    cands[3] = Candidate(cands[3].blocks, cands[3].vectors)
    _, scores = rerank_order(reranker, query_mel[None], qv, cands, (query_signal,))
    np.testing.assert_allclose(scores, without, rtol=1e-5, atol=1e-3)
    # and none without the query's audio
    _, scores = rerank_order(reranker, query_mel[None], qv, cands)
    np.testing.assert_allclose(scores, without, rtol=1e-5, atol=1e-3)


def test_the_whole_score_beats_network_and_room_fit_on_the_strums(takes, heard):
    reranker = Reranker()
    rows = coherence_rows(takes, heard)
    before, after = {}, {}
    for (chord, take), (query_mel, _) in heard.items():
        queries = np.repeat(query_mel[None], len(TAKES), axis=0)
        blocks = np.stack([takes[chord, t][0] for t in TAKES])
        before[chord, take] = reranker.score(queries, blocks) + room_fit_bonus(queries, blocks,
                                                                                reranker.room_fit_weight)
        after[chord, take] = before[chord, take] + reranker.coherence_weight * coherence_term(rows[chord, take])
    assert own_take_first(after) > own_take_first(before)
    assert own_take_first(after) >= 46


def test_the_apps_search_finds_the_own_take_through_a_room(tmp_path, isolated_library_dir, monkeypatch):
    """Library.search_file over the four chords' 48 takes: the query's blocks keep their
    audio, the re-ranker decodes each candidate's matched block with its audio, and the
    coherence term decides among takes. The same library with a re-ranker file whose
    metadata has no coherence weight (network and room fit only) does worse."""
    import onnx
    source = tmp_path / "strums"
    source.mkdir()
    queries = []
    for c, chord in enumerate(CHORDS):
        for t, take in enumerate(TAKES):
            shutil.copy(take_path(chord, take), source / f"{chord}_{take}.flac")
            query_path = tmp_path / f"{chord}_{take}-room.wav"
            sf.write(query_path, room(read_mono(take_path(chord, take), SR), seed=700 + 20 * c + t), SR)
            queries.append((query_path, f"{chord}_{take}.flac"))
    without = onnx.load(str(Reranker().model_path))
    for prop in list(without.metadata_props):
        if prop.key == "coherence_weight":
            without.metadata_props.remove(prop)
    without_path = tmp_path / "no_coherence.onnx"
    onnx.save(without, str(without_path))

    own_first = {}
    for name, reranker_file in (("with", None), ("without", without_path)):
        if reranker_file is not None:
            monkeypatch.setenv("SAMPLESCOUT_RERANKER", str(reranker_file))
        with Library(isolated_library_dir) as library:
            if name == "with":
                assert Scanner(library, workers=1).scan([str(source)]).indexed == len(queries)
            weight = library.reranker.reranker.coherence_weight
            assert (weight > 0) == (name == "with")
            hits = 0
            for query_path, own in queries:
                query = library.embed_file(query_path)
                assert len(query.signals) == len(query.blocks)
                hits += library.search_file(query_path, k=10)[0].file.path.endswith(own)
            own_first[name] = hits
    # 47 against 44 of 48 when written
    assert own_first["with"] >= 46 and own_first["with"] > own_first["without"], own_first
