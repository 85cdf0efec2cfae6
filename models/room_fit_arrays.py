"""The room fit's per-pair work as whole-array numpy: the same fits and errors as the
compiled ``models.room_fit_kernel`` (to a few 1e-7 relative), for a process that has not
loaded numba.

Loading numba and the compiled fit costs about 0.6 s and 100 MB of resident memory, paid
back only by a process that re-ranks many times: the re-ranking process asks for the
compiled fit (``models.room_fit.warm_up``); a one-off search (the command line, a search
by example in the window while no session runs) uses this. Ten pairs take 9-12 ms here
against about 5 ms compiled.

``fit_errors`` fits every pair at once; ``models.room_fit`` prepares its arguments.
Any thread.
"""

from __future__ import annotations

import numpy as np


def fit_errors(query: np.ndarray, query_power: np.ndarray, design: np.ndarray, total: np.ndarray,
               head_edge: np.ndarray, tail_edge: np.ndarray, lags: np.ndarray, upper: tuple,
               *, dead_term: float, sweeps: int, log_scale: float, ln_10_norm: float,
               denominators: np.ndarray) -> np.ndarray:
    """``(k,)`` errors of the best fit over each row's ``lags`` (``(k, S)``); the arguments
    of ``models.room_fit_kernel.pair_error`` stacked row by row, with each lag's edge sums
    taken: ``query`` and ``query_power`` ``(k, T, F)``, ``design`` ``(k, F, J, T)``,
    ``total`` ``(k, F, P)``, ``head_edge`` and ``tail_edge`` ``(k, S, F, P)``. Any thread."""
    k, frames, bands = query.shape
    n_lags = lags.shape[1]
    n_features = design.shape[2]
    dtype = design.dtype
    source = np.arange(frames)[None, None, :] + lags[:, :, None]                   # (k, S, T)
    shared = ((source >= 0) & (source < frames)).astype(dtype)
    take = (np.arange(k)[:, None, None], np.clip(source, 0, frames - 1))
    mask = shared[:, :, :, None]
    observed = (query.astype(dtype)[take] * mask).transpose(0, 3, 2, 1)           # (k, F, T, S)
    observed_power = np.ascontiguousarray((query_power.astype(dtype)[take] * mask)
                                          .transpose(0, 3, 2, 1))

    # one least-squares problem per (row, band, lag): the Gram matrix over shared frames only
    sums = (total[:, None] - head_edge - tail_edge).astype(dtype).transpose(0, 2, 3, 1)  # (k, F, P, S)
    gram = np.empty((k, bands, n_lags, n_features, n_features), dtype=dtype)
    gram[..., upper[0], upper[1]] = sums.transpose(0, 1, 3, 2)
    gram[..., upper[1], upper[0]] = sums.transpose(0, 1, 3, 2)
    # a term whose energy lies wholly in the edge a lag leaves out (a click) keeps only
    # rounding after the subtraction above: it takes no part in the fit
    energy = np.einsum("kfsjj->kfsj", gram)                                        # (k, F, S, J)
    live = energy > dead_term * total[:, :, None, upper[0] == upper[1]]
    norms = np.where(live, np.sqrt(np.maximum(energy, 0)), dtype.type(1.0))
    gram *= live[..., :, None] & live[..., None, :]
    gram /= norms[..., :, None] * norms[..., None, :]
    target = (design @ observed_power).transpose(0, 1, 3, 2) * live / norms         # (k, F, S, J)
    n = k * bands * n_lags
    weights = _nonnegative_least_squares(gram.reshape(n, n_features, n_features),
                                         target.reshape(n, n_features), sweeps)
    weights = (weights.reshape(k, bands, n_lags, n_features) / norms).transpose(0, 1, 3, 2)
    fitted = design.transpose(0, 1, 3, 2) @ weights                                 # (k, F, T, S)
    # query frames the candidate does not reach count as unexplained
    reached = (observed.astype(np.float64) ** 2).sum(axis=(1, 2))
    everything = (query.astype(np.float64) ** 2).sum(axis=(1, 2))
    unreached = np.maximum(everything[:, None] - reached, 0.0)
    misfit = _log_in_place(fitted, log_scale, ln_10_norm)                          # (k, F, T, S)
    misfit -= observed
    misfit *= misfit
    per_frame = misfit.sum(axis=1) * shared.transpose(0, 2, 1)                    # (k, T, S)
    squared = per_frame.sum(axis=1, dtype=np.float64) + unreached
    return (squared / np.asarray(denominators, np.float64)[:, None]).min(axis=1)


def _log_in_place(power: np.ndarray, log_scale: float, ln_10_norm: float) -> np.ndarray:
    """The front-end's log compression written over ``power`` and returned (no temporaries
    of the fit's largest array)."""
    dtype = power.dtype.type
    np.maximum(power, 0, out=power)
    power *= dtype(log_scale)
    power += dtype(1.0)
    np.log(power, out=power)
    power /= dtype(ln_10_norm)
    return power


def _nonnegative_least_squares(gram: np.ndarray, target: np.ndarray, sweeps: int) -> np.ndarray:
    """``argmin_w 0.5 w'Gw - b'w`` subject to ``w >= 0`` for a batch of unit-diagonal
    ``G (n, J, J)`` and ``b (n, J)``: cyclic coordinate descent, each step exact for its
    weight, run on the whole batch at once (rows laid out feature-major, so each step reads
    contiguous memory). A dead term's row is zero and its weight stays 0."""
    n_features = gram.shape[1]
    rows = [np.ascontiguousarray(gram[:, j].T) for j in range(n_features)]          # (J, n) each
    goal = np.ascontiguousarray(target.T)                                           # (J, n)
    w = np.zeros_like(goal)
    step = np.empty_like(goal[0])
    for _ in range(sweeps):
        for j in range(n_features):
            np.einsum("kn,kn->n", rows[j], w, out=step)
            np.subtract(goal[j], step, out=step)
            step += w[j]
            np.maximum(step, 0.0, out=w[j])
    return w.T
