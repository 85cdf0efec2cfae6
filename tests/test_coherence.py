"""The waveform coherence (models/coherence.py) on real strummed-guitar takes (Debian's
hydrogen-drumkits-effects) through a synthetic room, and when the re-ranker applies it. What
it changes in the app's search is tested in test_rerank_gain.py."""

from __future__ import annotations


import numpy as np
import pytest

from app.decode import read_mono
from models.coherence import (MAX_SIGNAL, BlockSignals, coherence_signal, coherence_term, peak_coherence,
                              spectrum)
from models.encoder import MODEL_SAMPLE_RATE as SR
from models.encoder import Encoder
from models.preprocess import clip_blocks
from models.reranker import Candidate, Reranker, rerank_order
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
    with_audio, with_scores = rerank_order(reranker, query_mel[None], qv, cands, (query_signal,))
    _, no_query_audio = rerank_order(reranker, query_mel[None], qv, cands)
    assert with_audio[0] == TAKES.index(take)
    assert not np.allclose(with_scores, no_query_audio, atol=1e-3)   # the term counted
    # one candidate without audio: the term is left out for all, so they stay comparable
    cands[3] = Candidate(cands[3].blocks, cands[3].vectors)
    _, one_missing = rerank_order(reranker, query_mel[None], qv, cands, (query_signal,))
    np.testing.assert_allclose(one_missing, no_query_audio, rtol=1e-5, atol=1e-5)


def test_a_delayed_copy_is_coherent_at_any_lag_the_two_blocks_share():
    """The correlation is circular in a transform shorter than two blocks: lags past
    0.63 s wrap onto others, and a copy delayed that far must still line up."""
    from models.coherence import COHERENCE_RATE, peak_coherences
    rng = np.random.default_rng(3)
    n = MAX_SIGNAL
    signal = rng.standard_normal(n).astype(np.float32)        # a steady sound, a whole block
    values = {}
    for seconds in (0.0, 0.55, -0.55, 0.9, -0.9, 1.5, 2.0):
        shift = int(seconds * COHERENCE_RATE)
        moved = np.zeros(n, np.float32)
        if shift >= 0:
            moved[shift:] = signal[:n - shift]
        else:
            moved[:shift] = signal[-shift:]
        values[seconds] = peak_coherences(spectrum(moved), spectrum(signal)[None, :])[0]
    # the shared part lines up, less the farther apart (a transform that never wraps gives
    # 1.0, 0.85, 0.75, 0.57 and 0.36 here, to 0.001)
    least = {0.0: 0.99, 0.55: 0.8, 0.9: 0.7, 1.5: 0.5, 2.0: 0.3}
    for seconds, value in values.items():
        assert least[abs(seconds)] < value < least[abs(seconds)] + 0.1, (seconds, value)
    other = rng.standard_normal(n).astype(np.float32)
    assert peak_coherences(spectrum(other), spectrum(signal)[None, :])[0] < 0.1
