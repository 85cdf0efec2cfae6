"""The room fit's per-pair work compiled (numba): the coarse lag of a pair, then every
(lag, band) least-squares fit, its log-scale misfit and the error, in one pass that makes
no temporary arrays.

``models.room_fit`` prepares each pair's inputs (the query's onset strength, log-mel and
power; the candidate's ``CandidateTerms``, made once per block) and calls ``coarse_lag``
and ``pair_error`` for each pair; the model and the error are described there. Each pair
reads its candidate's own arrays, so nothing of the candidates is stacked or copied per
search. The log-scale misfit in float32 (as the query's log-mel), the rest in float64.
What compiling saves over whole-array numpy (``models.room_fit_arrays``, what a process
that never asked for this runs) is the temporaries (the fitted value of every cell at
every lag written, logged and read back; the full frame-by-frame correlation of the
coarse lag) and the overhead of many calls on arrays of a few thousand cells: ten pairs
take about 4 ms here, 9-12 ms as array operations. The compiled code releases the GIL,
so a room fit running beside the re-ranker's network and coherence threads does not hold
them up. Fast-math allows reordering sums (so vectorised reductions), not ignoring NaN.

Compiled on first use and cached beside this file (``cache=True``); ``models.room_fit``'s
``warm_up`` does it ahead of the first re-ranking. Any thread.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_FAST = {"reassoc", "contract", "arcp", "nsz"}


@numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=_FAST)
def coarse_lag(query_onsets, candidate_onsets, order, floor):
    """The lag (frames) by which the query trails the candidate, of those in ``order``
    (nearest first, so the smallest lag wins a tie): the best normalised correlation of
    the two blocks' onset strengths (``(T, F)`` float32 each) over the frames they share,
    ``floor`` added to its denominator. ``models.room_fit.coarse_lags`` for one pair."""
    frames, bands = query_onsets.shape
    query_energy = np.empty(frames)
    candidate_energy = np.empty(frames)
    for t in range(frames):
        qe = 0.0
        ce = 0.0
        for f in range(bands):
            qe += float(query_onsets[t, f]) * float(query_onsets[t, f])
            ce += float(candidate_onsets[t, f]) * float(candidate_onsets[t, f])
        query_energy[t] = qe
        candidate_energy[t] = ce
    best_lag = order[0]
    best = -np.inf
    for lag in order:
        num = 0.0
        qe = 0.0
        ce = 0.0
        # candidate frame t meets query frame t + lag
        for t in range(max(0, -lag), min(frames, frames - lag)):
            acc = np.float32(0.0)
            for f in range(bands):
                acc += query_onsets[t + lag, f] * candidate_onsets[t, f]
            num += float(acc)
            qe += query_energy[t + lag]
            ce += candidate_energy[t]
        value = num / (math.sqrt(qe * ce) + floor)
        if value > best:
            best = value
            best_lag = lag
    return best_lag


@numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=_FAST)
def pair_error(query, query_power, design, total, head, tail, lags, upper_i, upper_j,
               dead_term, sweeps, log_scale, ln_10_norm, denominator):
    """The error of the best fit over ``lags`` (``(S,)``) of one pair: ``query`` and
    ``query_power`` ``(F, T)`` float32 (log-mel and power, band-major), the candidate's
    ``design`` ``(F, J, T)``, its design products' sums over all frames ``total`` ``(F, P)``
    and over its first and last ``e`` frames ``head`` and ``tail`` ``(E + 1, F, P)``,
    ``upper_i``/``upper_j`` the products' (row, column) indices, ``denominator`` the error's
    scale."""
    bands, frames = query.shape
    n_features = design.shape[1]
    n_products = upper_i.shape[0]
    n_lags = lags.shape[0]
    n = n_lags * bands
    gram = np.empty((n_features, n_features))
    live = np.empty(n_features, dtype=np.bool_)
    # every (lag, band) problem side by side (last axis, lag-major): each coordinate step
    # runs over all of them at once, independent chains the CPU overlaps
    norms = np.empty((n_features, n))
    # the Gram matrix and target of the normalised design rows: a live row's diagonal is 1,
    # so a coordinate step needs no division; a dead row is all zero, its weight stays 0
    rows = np.empty((n_features, n_features, n))
    goal = np.empty((n_features, n))
    weights = np.empty((n_features, n))
    step = np.empty(n)
    fitted = np.empty(frames)
    squared = np.empty(n_lags)
    diagonal_product = np.empty(n_features, dtype=np.int64)
    inverse_ln = np.float32(1.0 / ln_10_norm)
    for p in range(n_products):
        if upper_i[p] == upper_j[p]:
            diagonal_product[upper_i[p]] = p
    everything = 0.0
    for f in range(bands):
        for t in range(frames):
            everything += float(query[f, t]) * float(query[f, t])
    for s in range(n_lags):
        lag = lags[s]
        reached = 0.0                 # candidate frames [first, stop) meet query frames + lag
        for f in range(bands):
            for t in range(max(0, -lag), min(frames, frames - lag)):
                reached += float(query[f, t + lag]) * float(query[f, t + lag])
        # query frames the candidate does not reach count as unexplained, so a lag
        # cannot win by leaving only a quiet tail to explain
        squared[s] = max(everything - reached, 0.0)
    # each band's design rows are read for every lag while they are in cache
    for f in range(bands):
        for s in range(n_lags):
            lag = lags[s]
            first, stop = max(0, -lag), min(frames, frames - lag)
            last = max(0, lag)
            c = s * bands + f
            for p in range(n_products):
                value = total[f, p] - head[first, f, p] - tail[last, f, p]
                gram[upper_i[p], upper_j[p]] = value
                gram[upper_j[p], upper_i[p]] = value
            # A term whose energy lies wholly in the edge this lag leaves out (a click)
            # keeps, after the subtraction above, only rounding, even below zero: it
            # takes no part in the fit rather than a square root of noise
            for j in range(n_features):
                energy = gram[j, j]
                live[j] = energy > dead_term * total[f, diagonal_product[j]]
                norms[j, c] = math.sqrt(max(energy, 0.0)) if live[j] else 1.0
            for a in range(n_features):
                for b in range(n_features):
                    if live[a] and live[b]:
                        rows[a, b, c] = gram[a, b] / (norms[a, c] * norms[b, c])
                    else:
                        rows[a, b, c] = 0.0
                acc = 0.0
                if live[a]:
                    row, seen = design[f, a, first:stop], query_power[f, first + lag:stop + lag]
                    for t in range(stop - first):
                        acc += row[t] * seen[t]
                goal[a, c] = acc / norms[a, c]
                weights[a, c] = 0.0
    # non-negative least squares by cyclic coordinate descent, each step exact
    for _ in range(sweeps):
        for j in range(n_features):
            for c in range(n):
                step[c] = goal[j, c] + weights[j, c]
            for m in range(n_features):
                for c in range(n):
                    step[c] -= rows[j, m, c] * weights[m, c]
            for c in range(n):
                weights[j, c] = max(0.0, step[c])
    for f in range(bands):
        for s in range(n_lags):
            lag = lags[s]
            first, stop = max(0, -lag), min(frames, frames - lag)
            c = s * bands + f
            for t in range(first, stop):
                fitted[t] = 0.0
            for j in range(n_features):
                w = weights[j, c] / norms[j, c]
                if w != 0.0:
                    for t in range(first, stop):
                        fitted[t] += float(design[f, j, t]) * w
            miss_sum = np.float32(0.0)
            seen = query[f, first + lag:stop + lag]
            for t in range(stop - first):
                miss = np.log(np.float32(max(fitted[first + t], 0.0) * log_scale + 1.0)) * inverse_ln \
                    - seen[t]
                miss_sum += miss * miss
            squared[s] += float(miss_sum)
    best = np.inf
    for s in range(n_lags):
        best = min(best, squared[s] / denominator)
    return best
