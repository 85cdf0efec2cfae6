"""The room fit (models/room_fit.py) on real strummed-guitar takes (Debian's
hydrogen-drumkits-effects) through a synthetic room. What it changes in the app's search is
tested in test_rerank_gain.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.reranker import Reranker, RerankerError
from models.room_fit import coarse_lags, room_fit_bonus, room_fit_error
from tests.test_reranker import blocks_of, room
from app.decode import read_mono
from models.encoder import MODEL_SAMPLE_RATE as SR

STRUMS = Path("/usr/share/hydrogen/data/drumkits/belofilms_GuitarStrums")
CHORDS = ("Amajor", "Dmajor", "Eminor", "Fmajor")
TAKES = [f"{style}{n:02d}" for style in ("", "DOWN_", "UP_") for n in range(4)]


def take_path(chord: str, take: str) -> Path:
    return STRUMS / f"{chord}_{take}.flac"


@pytest.fixture(scope="module")
def strums() -> dict[str, dict[str, np.ndarray]]:
    """Each chord's twelve takes (plain, down and up strums, four each): clean first block."""
    if not STRUMS.is_dir():
        pytest.fail(f"{STRUMS} is missing: install hydrogen-drumkits-effects (make test does)")
    return {chord: {take: blocks_of(read_mono(take_path(chord, take), SR))[0] for take in TAKES}
            for chord in CHORDS}


@pytest.fixture(scope="module")
def strum_queries() -> dict[tuple[str, str], np.ndarray]:
    """Every take through a room (its own seed): the first block a microphone would give."""
    out = {}
    for c, chord in enumerate(CHORDS):
        for t, take in enumerate(TAKES):
            audio = read_mono(take_path(chord, take), SR)
            out[chord, take] = blocks_of(room(audio, seed=100 * c + t, rt60=0.5))[0]
    return out


def own_take_first(scores: dict[tuple[str, str], np.ndarray]) -> int:
    """How many queries score their own take (column ``TAKES.index(take)``) strictly highest."""
    hits = 0
    for (chord, take), row in scores.items():
        own = TAKES.index(take)
        hits += int(row[own] > np.delete(row, own).max())
    return hits


def test_the_fit_tells_strums_of_one_chord_apart_through_a_room(strums, strum_queries):
    errors = {}
    for (chord, take), query in strum_queries.items():
        cands = np.stack([strums[chord][t] for t in TAKES])
        errors[chord, take] = room_fit_error(np.repeat(query[None], len(TAKES), axis=0), cands)
    hits = own_take_first({key: -err for key, err in errors.items()})
    # Twelve takes of one chord are one guitar, one player, one microphone; the fit alone,
    # from nothing but each band's timing and decay, puts the own take first for most
    # (42 of 48 when written; a fit that ignored time, or lost the lag, would not).
    assert hits >= 0.75 * len(strum_queries), hits


def test_alignment_finds_a_delay_and_the_fit_follows_it(strums):
    clean = strums["Dmajor"]["DOWN_01"]
    delayed = np.zeros_like(clean)
    delayed[7:] = clean[:-7]
    assert coarse_lags(delayed[None], clean[None])[0] == 7
    assert coarse_lags(clean[None], delayed[None])[0] == -7
    others = np.stack([strums["Dmajor"][t] for t in ("UP_01", "01", "DOWN_02")])
    own = room_fit_error(delayed[None], clean[None])[0]
    assert own < room_fit_error(np.repeat(delayed[None], 3, axis=0), others).min()
    assert own < 0.05 * room_fit_error(delayed[None], np.zeros_like(clean)[None])[0]


def test_degenerate_inputs_give_finite_equal_errors_or_a_clear_error(strums):
    cands = np.stack([strums["Fmajor"][t] for t in TAKES[:3]])
    silent = np.zeros((3,) + cands.shape[1:], dtype=np.float32)
    errors = room_fit_error(silent, cands)
    assert np.all(np.isfinite(errors)) and np.ptp(errors) < 1e-6
    # a block against itself: float rounding must not push the error below zero (ln of it)
    itself = room_fit_error(cands, cands)
    assert np.all(itself >= 0) and np.all(np.isfinite(room_fit_bonus(cands, cands, 1.0)))
    assert np.all(itself < room_fit_error(cands, cands[::-1])[[0, 2]].min())
    assert room_fit_error(np.zeros((0, 100, 96)), np.zeros((0, 100, 96))).shape == (0,)
    with pytest.raises(ValueError, match="expected two"):
        room_fit_error(cands[:1], cands)


def test_the_shipped_reranker_carries_a_calibrated_weight():
    """What the weight changes in the app's search is tested in test_rerank_gain.py."""
    assert 0 < Reranker().room_fit_weight < 10


@pytest.mark.parametrize("key", ["room_fit_weight", "coherence_weight"])
@pytest.mark.parametrize("value, message", [("abc", "not a number"), ("-1", ">= 0"), ("nan", "finite")])
def test_a_malformed_weight_in_the_file_is_a_clear_error(tmp_path, key, value, message):
    import onnx
    model = onnx.load(str(Reranker().model_path))
    for prop in list(model.metadata_props):
        if prop.key == key:
            model.metadata_props.remove(prop)
    prop = model.metadata_props.add()
    prop.key, prop.value = key, value
    path = tmp_path / "bad_weight.onnx"
    onnx.save(model, str(path))
    with pytest.raises(RerankerError, match=f"{key}.*{message}|{message}.*{key}"):
        Reranker(path)


def test_a_click_that_a_lag_leaves_out_gives_a_finite_error():
    """A short candidate (a kick, a plip) whose energy lies within the frames a lag leaves
    out: its terms' sums over the shared frames are rounding, once even below zero, and
    the fit must leave them out instead of taking their square root (NaN errors that put
    such candidates anywhere in a re-ranked list)."""
    sonic_pi = Path("/usr/share/sonic-pi/samples")
    pairs = [("bass_drop_c", "bd_haus"), ("drum_tom_mid_hard", "elec_plip")]
    if not sonic_pi.is_dir():
        pytest.fail(f"{sonic_pi} is missing: install sonic-pi-samples (make test does)")
    first = lambda stem: blocks_of(read_mono(sonic_pi / f"{stem}.flac", SR))[0]  # noqa: E731
    queries = np.stack([first(q) for q, _ in pairs])
    candidates = np.stack([first(c) for _, c in pairs])
    with np.errstate(all="raise"):
        errors = room_fit_error(queries, candidates)
    assert np.all(np.isfinite(errors)) and np.all(errors >= 0), errors
    # and they still rank below the sound itself
    assert np.all(room_fit_error(candidates, candidates) < errors)
