"""The room fit's per-pair work compiled (numba): every (pair, lag, band) least-squares fit,
its log-scale misfit and the error, in one pass that makes no temporary arrays.

``models.room_fit`` prepares the inputs (the coarse lags, the candidates' design rows and
their edge sums) and calls ``fit_errors``; the model and the error are described there.
The log-scale misfit in float32 (as the query's log-mel), the rest in float64. What
compiling saves over whole-array numpy is the temporaries (the fitted value of every cell
at every lag written, logged and read back) and the overhead of many calls on arrays of a
few thousand cells: ten pairs take about 3 ms here, 9-12 ms as array operations
(``models.room_fit_arrays``, what a process that never asked for this runs). The compiled
code releases the GIL, so a room fit running beside the re-ranker's network and coherence threads does not hold them
up. Fast-math allows reordering sums (so vectorised reductions), not ignoring NaN.

Compiled on first use and cached beside this file (``cache=True``); ``warm_up`` does it
ahead of the first re-ranking. Any thread.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(nogil=True, cache=True, error_model="numpy",
            fastmath={"reassoc", "contract", "arcp", "nsz"})
def _fit_errors(query, query_power, design, total, head_edge, tail_edge, lags, upper_i,
                upper_j, dead_term, sweeps, log_scale, ln_10_norm, denominators):
    k, bands, frames = query.shape
    n_features = design.shape[2]
    n_products = upper_i.shape[0]
    n_lags = lags.shape[1]
    n = n_lags * bands
    errors = np.empty(k)
    gram = np.empty((n_features, n_features))
    live = np.empty(n_features, dtype=np.bool_)
    # one pair's problems, every (lag, band) side by side (last axis, lag-major): each
    # coordinate step runs over all of them at once, independent chains the CPU overlaps
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
    for i in range(k):
        everything = 0.0
        for f in range(bands):
            for t in range(frames):
                everything += float(query[i, f, t]) * float(query[i, f, t])
        for s in range(n_lags):
            lag = lags[i, s]
            reached = 0.0                 # candidate frames [first, stop) meet query frames + lag
            for f in range(bands):
                for t in range(max(0, -lag), min(frames, frames - lag)):
                    reached += float(query[i, f, t + lag]) * float(query[i, f, t + lag])
            # query frames the candidate does not reach count as unexplained, so a lag
            # cannot win by leaving only a quiet tail to explain
            squared[s] = max(everything - reached, 0.0)
        # each band's design rows are read for every lag while they are in cache
        for f in range(bands):
            for s in range(n_lags):
                lag = lags[i, s]
                first, stop = max(0, -lag), min(frames, frames - lag)
                c = s * bands + f
                for p in range(n_products):
                    value = total[i, f, p] - head_edge[i, s, f, p] - tail_edge[i, s, f, p]
                    gram[upper_i[p], upper_j[p]] = value
                    gram[upper_j[p], upper_i[p]] = value
                # A term whose energy lies wholly in the edge this lag leaves out (a click)
                # keeps, after the subtraction above, only rounding, even below zero: it
                # takes no part in the fit rather than a square root of noise
                for j in range(n_features):
                    energy = gram[j, j]
                    live[j] = energy > dead_term * total[i, f, diagonal_product[j]]
                    norms[j, c] = math.sqrt(max(energy, 0.0)) if live[j] else 1.0
                for a in range(n_features):
                    for b in range(n_features):
                        if live[a] and live[b]:
                            rows[a, b, c] = gram[a, b] / (norms[a, c] * norms[b, c])
                        else:
                            rows[a, b, c] = 0.0
                    acc = 0.0
                    if live[a]:
                        row, seen = design[i, f, a, first:stop], query_power[i, f, first + lag:stop + lag]
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
                lag = lags[i, s]
                first, stop = max(0, -lag), min(frames, frames - lag)
                c = s * bands + f
                for t in range(first, stop):
                    fitted[t] = 0.0
                for j in range(n_features):
                    w = weights[j, c] / norms[j, c]
                    if w != 0.0:
                        for t in range(first, stop):
                            fitted[t] += float(design[i, f, j, t]) * w
                miss_sum = np.float32(0.0)
                seen = query[i, f, first + lag:stop + lag]
                for t in range(stop - first):
                    miss = np.log(np.float32(max(fitted[first + t], 0.0) * log_scale + 1.0)) * inverse_ln \
                        - seen[t]
                    miss_sum += miss * miss
                squared[s] += float(miss_sum)
        best = np.inf
        for s in range(n_lags):
            best = min(best, squared[s] / denominators[i])
        errors[i] = best
    return errors


def fit_errors(query: np.ndarray, query_power: np.ndarray, design: np.ndarray, total: np.ndarray,
               head_edge: np.ndarray, tail_edge: np.ndarray, lags: np.ndarray, upper: tuple,
               *, dead_term: float, sweeps: int, log_scale: float, ln_10_norm: float,
               denominators: np.ndarray) -> np.ndarray:
    """``(k,)`` errors of the best fit over each row's ``lags`` (``(k, S)``): ``query`` and
    ``query_power`` ``(k, T, F)`` (log-mel and power), ``design`` ``(k, F, J, T)``, the
    design products' sums over all frames ``total`` ``(k, F, P)`` and over the edges each
    lag leaves out, ``head_edge`` and ``tail_edge`` ``(k, S, F, P)``, ``upper`` the
    products' (row, column) indices, ``denominators`` ``(k,)`` the error's scale per row.
    Any thread; releases the GIL."""
    # band-major, so that every loop over frames reads contiguous memory
    return _fit_errors(np.ascontiguousarray(np.swapaxes(query, 1, 2), dtype=np.float32),
                       np.ascontiguousarray(np.swapaxes(query_power, 1, 2), dtype=np.float32),
                       np.ascontiguousarray(design),
                       np.ascontiguousarray(total, dtype=np.float64),
                       np.ascontiguousarray(head_edge, dtype=np.float64),
                       np.ascontiguousarray(tail_edge, dtype=np.float64),
                       np.ascontiguousarray(lags, dtype=np.int64),
                       np.ascontiguousarray(upper[0], dtype=np.int64),
                       np.ascontiguousarray(upper[1], dtype=np.int64),
                       float(dead_term), int(sweeps), float(log_scale), float(ln_10_norm),
                       np.ascontiguousarray(denominators, dtype=np.float64))
