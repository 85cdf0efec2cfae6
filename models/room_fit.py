"""Room fit: how well a query block is explained as a candidate block heard through a room.

A sound played into a room reaches the microphone as itself (the direct path) followed by
its reflections, which only ever come later and decay. In each mel band that is, to a good
approximation, the candidate's power envelope through a causal, non-negative filter, plus
a floor of background noise. This module fits that model for every (query, candidate) pair
and returns the error of the best fit. The right file fits well; another take of the same
sound (a chord strummed up instead of down, a second hit of one drum) needs its bands to
start earlier or later than the room allows, and fits worse. That timing, at the
front-end's 23 ms frame, is what the re-ranker's pooled maps cannot see.

The model, per candidate, per mel band ``f`` (power, not log):

    query[t, f] ~ w0 * cand[t, f] + sum_j wj * (cand * decay_j)[t, f] + floor

with every ``w >= 0``. ``decay_j`` is a causal exponential (time constant ``DECAY_FRAMES[j]``
frames) that starts one frame after the direct sound, so reflections can only lag. The
weights are free per band: a room's colouration and its decay time both vary with
frequency.

Alignment: a library block and a query block need not start at the same moment (a query
cut from the middle of a long file sits up to half a block hop, 25 frames, away from the
nearest library block; onset gates land a frame apart). The lag is first found by
correlating the two blocks' onset strength (each band's rise in log level, which a room
leaves in place) over up to ``MAX_LAG_FRAMES``; the fit then tries that lag and the
``FINE_LAG_FRAMES`` either side, over the frames the two blocks share, and the best counts.
The error is the squared difference of the fit and the query on the encoder's log scale
over those frames (so quiet detail counts as well as the loudest frame), relative to the
query's own spread on that scale over the same frames.

A process that asked for the compiled fit (``warm_up``: the re-ranking process) runs each
pair's coarse lag, its fits (one per lag and band) and their misfit in
``models.room_fit_kernel``, reading the candidate's ``CandidateTerms`` in place; any other
process runs the same as whole-array numpy (``coarse_lags`` here, the fits in
``models.room_fit_arrays``). Any thread (no state besides that choice); the compiled part
releases the GIL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import frontend, room_fit_arrays

DECAY_FRAMES = (1.0, 3.0, 8.0, 20.0)    # reflections' time constants, in 23 ms frames
MAX_LAG_FRAMES = 25                     # half a block hop (models.preprocess.HOP_FRAMES)
FINE_LAG_FRAMES = 1
MIN_OVERLAP_FRAMES = 25
NNLS_SWEEPS = 20
DTYPE = np.float32                      # the prepared arrays (float64 gives the same errors to 1e-4)
RESIDUAL_FLOOR = 1e-12                  # keeps ln() finite for an identical pair
DEAD_TERM = 1e-14                       # of a term's sum over all frames: below, rounding
LAG_FLOOR = 1e-12                       # keeps the lag's correlation finite for silent blocks
SPREAD_FLOOR = 1e-6                     # per cell: a silent query block fits every candidate alike
# models.room_fit_kernel once this process has asked for the compiled fit (warm_up);
# models.room_fit_arrays until then (see there for why both)
_compiled = None


# log10(x) = ln(x) / ln(10): numpy's natural log and exp of float32 are vectorised, its log10
# and power are not; the results differ in float32's last bits only
_LN_10_NORM = DTYPE(np.log(10.0) * frontend.LOG_NORM)


def _power(log_mel: np.ndarray) -> np.ndarray:
    """Inverse of the front-end's ``frontend.log_compress`` (power at the block's own gain)."""
    power = log_mel.astype(DTYPE) * _LN_10_NORM
    np.exp(power, out=power)
    power -= DTYPE(1.0)
    power /= DTYPE(frontend.LOG_SCALE)
    return power


def _decay_matrices(frames: int) -> np.ndarray:
    """``(frames, frames * len(DECAY_FRAMES))``: ``x @ M`` gives, for each time constant, at
    column block ``j`` row ``t`` the decaying sum of ``x``'s frames before ``t``."""
    lag = np.arange(frames)[None, :] - np.arange(frames)[:, None]     # column t, row s: t - s
    out = []
    for tau in DECAY_FRAMES:
        a = np.exp(-1.0 / tau)
        out.append(np.where(lag >= 1, (1.0 - a) * a ** np.maximum(lag - 1, 0), 0.0))
    return np.concatenate(out, axis=1)


def _onset_strength(log_mel: np.ndarray) -> np.ndarray:
    """``(k, T, F)`` log-mel -> each band's rise in level from the frame before (0 for a fall)."""
    rise = np.diff(log_mel, axis=1, prepend=log_mel[:, :1])
    return np.maximum(rise, 0.0)


def _lag_order(frames: int) -> np.ndarray:
    """The lags ``coarse_lags`` tries for blocks of ``frames``, nearest first, so that among
    equal correlations the smallest lag wins (argmax takes the first)."""
    max_lag = max(min(MAX_LAG_FRAMES, frames - MIN_OVERLAP_FRAMES), 0)
    return np.array(sorted(range(-max_lag, max_lag + 1), key=abs), dtype=np.int64)


def coarse_lags(query_blocks: np.ndarray, candidate_blocks: np.ndarray) -> np.ndarray:
    """``(k,)`` lag in frames by which each query row trails its candidate row (negative:
    leads), from the onset-strength correlation over at least ``MIN_OVERLAP_FRAMES`` shared
    frames. Any thread."""
    q = _onset_strength(query_blocks.astype(DTYPE))
    c = _onset_strength(candidate_blocks.astype(DTYPE))
    k, frames = q.shape[:2]
    order = _lag_order(frames)
    cand_frame = np.arange(frames)[None, :]
    query_frame = cand_frame + order[:, None]                                     # (L, T)
    inside = ((query_frame >= 0) & (query_frame < frames)).astype(DTYPE)
    query_frame = np.clip(query_frame, 0, frames - 1)
    products = q @ c.transpose(0, 2, 1)                       # (k, T, T): query frame . candidate frame
    num = (products[:, query_frame, cand_frame] * inside).sum(axis=2)             # (k, L)
    q_energy = np.einsum("ktf,ktf->kt", q, q)
    c_energy = np.einsum("ktf,ktf->kt", c, c)
    den = np.sqrt((q_energy[:, query_frame] * inside).sum(axis=2)
                  * (c_energy[:, None, :] * inside).sum(axis=2)) + LAG_FLOOR
    return order[np.argmax(num / den, axis=1)]


# frames a lag can leave out at either end of a block (the coarse lag and the fine step)
EDGE_FRAMES = MAX_LAG_FRAMES + FINE_LAG_FRAMES


@dataclass(frozen=True)
class CandidateTerms:
    """What the fit needs of one candidate block alone, made once per block: the design
    ``(F, J, T)`` (its power, the power through each decay, the floor) and the sums of the
    products of every pair of design rows ``(F, P)``, over all frames (``total``) and over
    the first and last ``e`` frames (``head``, ``tail``: ``(EDGE_FRAMES + 1, F, P)``, ``e``
    = 0..EDGE_FRAMES). The frames two blocks share at a lag are all but a few at one end,
    so each query's Gram matrices are ``total`` less one edge. About 1 MB a block.

    An edge's sums lie together (edge-major): a search reads three edges of each of its
    ten candidates, each as one run of memory rather than one value per cache line."""
    design: np.ndarray
    total: np.ndarray
    head: np.ndarray
    tail: np.ndarray


def _upper() -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(len(DECAY_FRAMES) + 2)


def _designs(candidate_blocks: np.ndarray) -> np.ndarray:
    """``(k, T, F)`` log-mel -> ``(k, F, J, T)``: power, each decay of it, the floor."""
    k, frames, bands = candidate_blocks.shape
    cand = _power(candidate_blocks).transpose(0, 2, 1)                             # (k, F, T)
    decays = (cand @ _decay_matrices(frames)).reshape(k, bands, len(DECAY_FRAMES), frames)
    floor = np.ones((k, bands, 1, frames), dtype=DTYPE)
    return np.concatenate([cand[:, :, None], decays, floor], axis=2)


def _products(design: np.ndarray) -> np.ndarray:
    """``(k, F, J, T)`` -> ``(k, F, P, T)``: design row i times row j for i <= j."""
    upper = _upper()
    return design[:, :, upper[0]] * design[:, :, upper[1]]


def _frame_sums(design: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(k, F, J, T)`` designs -> the products' sums ``total`` ``(k, F, P)``, ``head``,
    ``tail`` ``(k, E + 1, F, P)`` (see ``CandidateTerms``), in float64 so that a sum less an
    edge keeps its precision."""
    products = _products(design).astype(np.float64)
    edge = min(EDGE_FRAMES, products.shape[-1])
    zero = np.zeros(products.shape[:-1] + (1,))
    head = np.concatenate([zero, np.cumsum(products[..., :edge], axis=-1)], axis=-1)
    tail = np.concatenate([zero, np.cumsum(products[..., ::-1][..., :edge], axis=-1)], axis=-1)
    return (products.sum(axis=-1), np.ascontiguousarray(np.moveaxis(head, -1, 1)),
            np.ascontiguousarray(np.moveaxis(tail, -1, 1)))


def candidate_terms(candidate_blocks: np.ndarray) -> list[CandidateTerms]:
    """``CandidateTerms`` of each row of ``candidate_blocks`` ``(k, T, F)`` log-mel. Any thread."""
    candidate_blocks = np.asarray(candidate_blocks)
    if candidate_blocks.ndim != 3:
        raise ValueError(f"expected a (k, T, F) array, got {candidate_blocks.shape}")
    design = _designs(candidate_blocks)
    total, head, tail = _frame_sums(design)
    return [CandidateTerms(design[i], total[i], head[i], tail[i]) for i in range(len(design))]


def room_fit_error(query_blocks: np.ndarray, candidate_blocks: np.ndarray,
                   terms: Sequence[CandidateTerms] | None = None) -> np.ndarray:
    """Error of the best room fit of each row of ``query_blocks`` from the same row of
    ``candidate_blocks`` (both ``(k, T, F)`` log-mel) -> ``(k,)`` float64, lower = more
    likely the same sound. ``terms``: each candidate row's ``candidate_terms``, when made
    before (the same errors, without the candidate's share of the work). Any thread."""
    query_blocks = np.asarray(query_blocks)
    candidate_blocks = np.asarray(candidate_blocks)
    if candidate_blocks.ndim != 3 or candidate_blocks.shape != query_blocks.shape:
        raise ValueError(f"expected two (k, T, F) arrays, got {query_blocks.shape} "
                         f"and {candidate_blocks.shape}")
    k, frames, bands = candidate_blocks.shape
    if k == 0:
        return np.zeros(0)
    if terms is not None and len(terms) != k:
        raise ValueError(f"expected {k} candidate terms, got {len(terms)}")
    query_log = query_blocks.astype(np.float64)
    spread = ((query_log - query_log.mean(axis=(1, 2), keepdims=True)) ** 2).sum(axis=(1, 2))
    denominators = spread + SPREAD_FLOOR * frames * bands
    if _compiled is not None:
        return _compiled_errors(query_blocks, candidate_blocks, terms, denominators)
    # Query frame t + lag is modelled by candidate frame t; frames the two do not share
    # are left out of the fit and of the error.
    fine = np.arange(-FINE_LAG_FRAMES, FINE_LAG_FRAMES + 1)
    lags = coarse_lags(query_blocks, candidate_blocks)[:, None] + fine[None, :]     # (k, S)
    # the shared frames at lag L are [max(0, -L), min(T, T - L)): all frames less one edge
    first = np.maximum(0, -lags)                                                   # (k, S)
    last = np.maximum(0, lags)
    if terms is not None:
        design = np.stack([t.design for t in terms])                               # (k, F, J, T)
        total = np.stack([t.total for t in terms])                                 # (k, F, P)
        # only the edges these lags leave out, not every edge of every candidate
        head_edge = np.stack([t.head[f] for t, f in zip(terms, first)])           # (k, S, F, P)
        tail_edge = np.stack([t.tail[e] for t, e in zip(terms, last)])
    else:
        design = _designs(candidate_blocks)
        total, head, tail = _frame_sums(design)
        ks = np.arange(k)[:, None]
        head_edge, tail_edge = head[ks, first], tail[ks, last]                     # (k, S, F, P)
    return room_fit_arrays.fit_errors(
        query_blocks, _power(query_blocks), design, total, head_edge, tail_edge,
        lags, _upper(), dead_term=DEAD_TERM, sweeps=NNLS_SWEEPS, log_scale=frontend.LOG_SCALE,
        ln_10_norm=float(_LN_10_NORM), denominators=denominators)


def _compiled_errors(query_blocks: np.ndarray, candidate_blocks: np.ndarray,
                     terms: Sequence[CandidateTerms] | None, denominators: np.ndarray) -> np.ndarray:
    """``room_fit_error`` in the compiled kernel, pair by pair: each pair's lag and fit read
    its candidate's own ``CandidateTerms``, nothing stacked. Any thread."""
    kernel = _compiled
    if terms is None:
        terms = candidate_terms(candidate_blocks)
    frames = query_blocks.shape[1]
    queries = query_blocks.astype(DTYPE)
    query_onsets = _onset_strength(queries)
    candidate_onsets = _onset_strength(candidate_blocks.astype(DTYPE))
    # band-major, so that every loop over frames reads contiguous memory
    query_bands = np.ascontiguousarray(queries.transpose(0, 2, 1))
    power_bands = np.ascontiguousarray(_power(queries).transpose(0, 2, 1))
    order = _lag_order(frames)
    upper_i, upper_j = (np.ascontiguousarray(u, dtype=np.int64) for u in _upper())
    errors = np.empty(len(terms))
    for i, t in enumerate(terms):
        lag = kernel.coarse_lag(query_onsets[i], candidate_onsets[i], order, LAG_FLOOR)
        lags = np.arange(lag - FINE_LAG_FRAMES, lag + FINE_LAG_FRAMES + 1, dtype=np.int64)
        errors[i] = kernel.pair_error(query_bands[i], power_bands[i], t.design, t.total, t.head, t.tail,
                                      lags, upper_i, upper_j, DEAD_TERM, NNLS_SWEEPS,
                                      float(frontend.LOG_SCALE), float(_LN_10_NORM), float(denominators[i]))
    return errors


def warm_up() -> None:
    """Use the compiled fit in this process from now on: compile it (or load it from
    numba's cache beside ``models.room_fit_kernel``) now, on a tiny pair, so that the first
    re-ranking does not wait for it: about 2 s the first time on a machine, 0.4 s after.
    For a process that re-ranks many times (the re-ranking process). Any thread."""
    global _compiled
    from . import room_fit_kernel
    _compiled = room_fit_kernel
    block = np.zeros((1, MIN_OVERLAP_FRAMES, 2), dtype=DTYPE)
    block[0, 0] = 1.0
    room_fit_error(block, block)


def room_fit_term(errors: np.ndarray) -> np.ndarray:
    """``-ln(error)``: what the room fit adds to a re-ranker score per unit of its weight."""
    return -np.log(np.asarray(errors) + RESIDUAL_FLOOR)


def room_fit_bonus(query_blocks: np.ndarray, candidate_blocks: np.ndarray, weight: float,
                   terms: Sequence[CandidateTerms] | None = None) -> np.ndarray:
    """What the room fit adds to a re-ranker score, row by row: ``weight * -ln(error)``
    (``terms`` as for ``room_fit_error``). Any thread."""
    return float(weight) * room_fit_term(room_fit_error(query_blocks, candidate_blocks, terms))
