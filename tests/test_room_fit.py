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


def reference_error(query: np.ndarray, candidate: np.ndarray, lags) -> float:
    """The room fit of one (T, F) pair written out plainly from the model in
    models/room_fit.py, band by band and lag by lag, for the compiled fit to agree with."""
    from models import frontend
    from models.room_fit import DEAD_TERM, DECAY_FRAMES, NNLS_SWEEPS, SPREAD_FLOOR
    q, c = query.astype(np.float64), candidate.astype(np.float64)
    power = lambda log_mel: (10.0 ** (log_mel * frontend.LOG_NORM) - 1.0) / frontend.LOG_SCALE  # noqa: E731
    compress = lambda p: np.log10(np.maximum(p, 0.0) * frontend.LOG_SCALE + 1.0) / frontend.LOG_NORM  # noqa: E731
    frames, bands = c.shape
    direct = power(c)
    columns = [direct]
    for tau in DECAY_FRAMES:                    # reflections: only later, decaying
        a, decayed = np.exp(-1.0 / tau), np.zeros_like(direct)
        for t in range(1, frames):
            decayed[t] = a * decayed[t - 1] + (1.0 - a) * direct[t - 1]
        columns.append(decayed)
    columns.append(np.ones_like(direct))        # the floor
    design = np.stack(columns, axis=2)          # (T, F, J)
    spread = ((q - q.mean()) ** 2).sum() + SPREAD_FLOOR * frames * bands
    best = np.inf
    for lag in lags:
        shared = [t for t in range(frames) if 0 <= t + lag < frames]
        seen = q[[t + lag for t in shared]]
        squared = (q ** 2).sum() - (seen ** 2).sum()
        for f in range(bands):
            x, y = design[shared, f], power(seen[:, f])
            energy = (x ** 2).sum(axis=0)
            live = energy > DEAD_TERM * (design[:, f] ** 2).sum(axis=0)
            norms = np.where(live, np.sqrt(energy), 1.0)
            xn = np.where(live, x / norms, 0.0)
            gram, goal = xn.T @ xn, xn.T @ y
            w = np.zeros(len(norms))
            for _ in range(NNLS_SWEEPS):
                for j in range(len(w)):
                    if live[j]:
                        w[j] = max(0.0, w[j] + (goal[j] - gram[j] @ w) / gram[j, j])
            squared += ((compress(x @ (w / norms)) - seen[:, f]) ** 2).sum()
        best = min(best, squared / spread)
    return best


@pytest.fixture(params=["arrays", "compiled"])
def fit_in(request, monkeypatch):
    """The room fit as a one-off search runs it (numpy arrays), or compiled, as in the
    re-ranking process after ``warm_up``."""
    from models import room_fit, room_fit_arrays, room_fit_kernel
    monkeypatch.setattr(room_fit, "_compiled",
                        room_fit_kernel if request.param == "compiled" else None)
    used = []
    for module, name in ((room_fit_arrays, "fit_errors"), (room_fit_kernel, "pair_error")):
        fit = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _fit=fit, _module=module, **kw: used.append(_module) or _fit(*a, **kw))
    yield used, room_fit_kernel if request.param == "compiled" else room_fit_arrays


def test_each_fit_agrees_with_the_model_written_out(strums, fit_in):
    from models.room_fit import FINE_LAG_FRAMES
    used, expected = fit_in
    clean = np.stack([strums["Amajor"]["DOWN_00"], strums["Eminor"]["UP_02"]])
    delayed = np.zeros_like(clean)
    delayed[0, 4:] = clean[0, :-4]              # the query trails its candidate
    delayed[1, :-3] = clean[1, 3:]              # and leads it
    queries = np.stack([delayed[0] * 0.9, delayed[1]]) + 0.02
    candidates = np.stack([clean[0], strums["Eminor"]["02"]])
    errors = room_fit_error(queries, candidates)
    for i in range(2):
        lag = int(coarse_lags(queries[i:i + 1], candidates[i:i + 1])[0])
        lags = range(lag - FINE_LAG_FRAMES, lag + FINE_LAG_FRAMES + 1)
        assert errors[i] == pytest.approx(reference_error(queries[i], candidates[i], lags), rel=1e-4)
    assert set(used) == {expected}


def test_the_compiled_lag_is_the_arrays_lag(strums):
    """The re-ranking process finds each pair's lag in the compiled kernel, one pair at a
    time; it must pick the lag ``coarse_lags`` picks, ties to the nearest included."""
    from models import room_fit_kernel
    from models.room_fit import LAG_FLOOR, _lag_order, _onset_strength
    clean = strums["Dmajor"]["DOWN_01"]
    pairs = []
    for shift in (-30, -9, -1, 0, 2, 13, 25):
        moved = np.zeros_like(clean)
        if shift >= 0:
            moved[shift:] = clean[:len(clean) - shift]
        else:
            moved[:shift] = clean[-shift:]
        pairs.append((moved, clean))
    pairs += [(strums["Dmajor"][a], strums["Amajor"][b]) for a, b in (("UP_01", "DOWN_00"), ("01", "UP_02"))]
    pairs.append((np.zeros_like(clean), clean))            # silent: every lag ties, 0 wins
    queries = np.stack([q for q, _ in pairs]).astype(np.float32)
    candidates = np.stack([c for _, c in pairs]).astype(np.float32)
    expected = coarse_lags(queries, candidates)
    order = _lag_order(queries.shape[1])
    got = [room_fit_kernel.coarse_lag(_onset_strength(queries[i:i + 1])[0],
                                      _onset_strength(candidates[i:i + 1])[0], order, LAG_FLOOR)
           for i in range(len(pairs))]
    assert got == [int(x) for x in expected]
    assert got[-1] == 0 and got[1] == -9 and got[5] == 13


def test_only_a_process_that_warmed_up_loads_numba():
    """A one-off search must not pay numba's load (0.6 s, 100 MB): a fresh interpreter that
    re-ranks leaves numba unloaded until it asks for the compiled fit."""
    import subprocess
    import sys
    script = ("import sys, numpy as np\n"
              "from models.room_fit import room_fit_error, warm_up\n"
              "q = np.random.default_rng(0).random((2, 40, 8)).astype(np.float32)\n"
              "room_fit_error(q, q[::-1])\n"
              "print('numba' in sys.modules)\n"
              "warm_up()\n"
              "print('numba' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.split() == ["False", "True"]
