"""Calibrate the weights of the re-ranker's score terms and write them into the ONNX file.

The re-ranker's score for a candidate is

    network + room_fit_weight * ln(1 / room fit error) + coherence_weight * ln(coherence)

(``models.reranker``, ``models.room_fit``, ``models.coherence``). The two weights are
chosen here, on the training pool's held-out items (never on a benchmark): every held-out
damaged view is a query, its candidates are its own clean block and the 9 nearest clean
blocks of other clips by the encoder's cosine (the lists the re-ranker was trained and
evaluated on). The weights are the ones that make the own block most likely under a
softmax over each list (the listwise likelihood the network was trained for):
``a * network + b * fit + c * coherence`` is fitted by Newton's method (the loss is convex
in ``a, b, c``) and the weights are ``b / a`` and ``c / a``, since only the ratios change
an order. Resampling the held-out items gives their spread. Both weights are written into
the re-ranker file's metadata (the file is otherwise unchanged) and the tables into a
JSON report.

The coherence term reads waveforms, and the pool keeps only log-mel blocks, so the
held-out views are made again from the Debian packages with the pool's own generators
(``prepare.item_views``); each one is checked against the pool's log-mel block before it
is used. Needs the training environment (``.venv-train``: pyroomacoustics and pedalboard
make the views) and the training audio.

Run: ``python -m models.train.calibrate_scores --work-dir DIR [--reranker FILE]
[--views 16] [--report bench/results/score_calibration.json] [--dry-run]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from models.coherence import coherence_signal, coherence_term, peak_coherence, spectrum  # noqa: E402
from models.encoder import Encoder  # noqa: E402
from models.preprocess import block_span  # noqa: E402
from models.reranker import Reranker, default_reranker_path  # noqa: E402
from models.room_fit import room_fit_error, room_fit_term  # noqa: E402
from models.train import augment, prepare, sources  # noqa: E402
from models.train.batches import nearest_in_other_groups  # noqa: E402

CANDIDATES = 10
TERMS = ("network", "room_fit", "coherence")
BOOTSTRAPS = 20
VIEW_TOLERANCE = 2e-3     # a remade view's log-mel against the pool's float16 copy


def first_rate(scores: np.ndarray) -> float:
    """Share of rows whose column 0 (the own block) is strictly the highest."""
    return float(np.mean(scores[:, 0] > scores[:, 1:].max(axis=1)))


def list_loss(scores: np.ndarray) -> float:
    """Mean negative log-likelihood of column 0 under a softmax over each row."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[:, 0]))


def likeliest_scales(features: np.ndarray, iterations: int = 50) -> np.ndarray:
    """The ``w`` minimising ``list_loss(features @ w)`` for ``features`` (lists, candidates,
    terms), by Newton's method (the loss is convex in ``w``)."""
    w = np.zeros(features.shape[2])
    w[0] = 1.0
    for _ in range(iterations):
        scores = features @ w
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        mean = np.einsum("lk,lkt->lt", p, features)
        grad = (mean - features[:, 0]).mean(axis=0)
        second = np.einsum("lk,lkt,lku->tu", p, features, features) / len(features)
        hessian = second - mean.T @ mean / len(features) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, grad)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return w


def weights_of(scales: np.ndarray) -> dict[str, float]:
    """Each extra term's weight relative to the network's scale."""
    return {f"{name}_weight": round(float(max(scales[t] / scales[0], 0.0)), 3)
            for t, name in enumerate(TERMS) if t}


# what the view workers read; set in the parent before the workers fork
_shared: dict = {}


def _item_coherence(job: tuple[int, list[int]]) -> tuple[np.ndarray, float]:
    """For held-out pool item ``job[0]``: the coherence of each of its views (rows) with
    each of that view's candidates (pool items, ``_shared['lists']``), and the largest
    log-mel difference between a remade view and the pool's."""
    item, rows = job
    clips, starts, pool_views = _shared["clips"], _shared["starts"], _shared["pool_views"]
    view_idx, lists = _shared["view_idx"], _shared["lists"]
    clip, start = starts[item]
    audio = clips[clip].audio
    wanted = set(view_idx.tolist())
    out = np.zeros((len(rows), CANDIDATES))
    worst = 0.0
    made = {}
    for v, damaged in enumerate(prepare.item_views(audio, clip, start, _shared["rirs"], _shared["beds"],
                                                   int(view_idx.max()) + 1)):
        if v in wanted:
            made[v] = damaged
    for r, row in enumerate(rows):
        v = int(view_idx[r])
        block = prepare.first_block_of(made[v])
        if block is None:         # the pool used the clean block for a silent view
            block, damaged = _clean_block(item)
        else:
            damaged = made[v]
        worst = max(worst, float(np.abs(block.log_mel - pool_views[row]).max()))
        query = spectrum(coherence_signal(damaged[block_span(block.start_sample)]))
        for k, cand in enumerate(lists[row]):
            out[r, k] = peak_coherence(query, spectrum(_clean_signal(int(cand))))
    return out, worst


def _clean_block(item: int):
    clip, start = _shared["starts"][item]
    segment = augment.clean_segment(_shared["clips"][clip].audio, start)
    return prepare.first_block_of(segment), segment


def _clean_signal(item: int) -> np.ndarray:
    cache = _shared.setdefault("signal_cache", {})
    if item not in cache:
        block, segment = _clean_block(item)
        cache[item] = coherence_signal(segment[block_span(block.start_sample)])
    return cache[item]


def coherence_lists(pool_names: np.ndarray, held: np.ndarray, view_idx: np.ndarray, lists: np.ndarray,
                    pool_views: np.ndarray, workers: int) -> np.ndarray:
    """``(queries, CANDIDATES)`` coherences of the held-out lists, views made again."""
    print("reading training audio from Debian packages", flush=True)
    clips = sources.all_clips(prepare.SEED, log=lambda *_: None)
    rirs, beds, _ = prepare.damage_bank(clips)
    by_name = {f"{c.package}:{c.name}": i for i, c in enumerate(clips)}
    starts = {}
    for item in set(held.tolist()) | set(lists.reshape(-1).tolist()):
        name, start = str(pool_names[item]).rsplit("@", 1)
        if name not in by_name:
            raise SystemExit(f"pool item {pool_names[item]} is not in the training audio any more: "
                             "the pool was built from other packages; rebuild it")
        starts[item] = (by_name[name], int(start))
    jobs = [(int(item), list(range(h * len(view_idx), (h + 1) * len(view_idx)))) for h, item in enumerate(held)]
    _shared.update(clips=clips, rirs=rirs, beds=beds, starts=starts, pool_views=pool_views,
                   view_idx=view_idx, lists=lists)
    out = np.zeros(lists.shape)
    worst = 0.0
    with multiprocessing.get_context("fork").Pool(max(1, workers)) as pool:
        for n, ((_, rows), (values, diff)) in enumerate(zip(jobs, pool.imap(_item_coherence, jobs, chunksize=4))):
            out[rows] = values
            worst = max(worst, diff)
            if (n + 1) % 50 == 0:
                print(f"  coherence: {n + 1}/{len(jobs)} held-out items", flush=True)
    _shared.clear()
    if worst > VIEW_TOLERANCE:
        raise SystemExit(f"remade views differ from the pool's by {worst:.4f} in log-mel: the pool was "
                         "built by another recipe or other audio; rebuild it")
    print(f"  remade views match the pool (largest log-mel difference {worst:.1e})", flush=True)
    return out


def set_weights(model_path: pathlib.Path, weights: dict[str, float]) -> None:
    """Write ``weights`` into the ONNX file's metadata, in place (atomically)."""
    import onnx
    model = onnx.load(str(model_path))
    for prop in list(model.metadata_props):
        if prop.key in weights:
            model.metadata_props.remove(prop)
    for key, value in weights.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, f"{value:g}"
    tmp = model_path.with_suffix(".tmp.onnx")
    onnx.save(model, str(tmp))
    tmp.replace(model_path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=pathlib.Path, required=True, help="holds pool.npz")
    parser.add_argument("--reranker", type=pathlib.Path, default=None,
                        help="re-ranker ONNX file to calibrate and update (default: the shipped one)")
    parser.add_argument("--encoder", type=pathlib.Path, default=None, help="default: the shipped one")
    parser.add_argument("--views", type=int, default=16,
                        help="damaged views per held-out item (16, all of them, for the shipped weights)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--report", type=pathlib.Path, default=REPO / "bench/results/score_calibration.json")
    parser.add_argument("--dry-run", action="store_true", help="report only, leave the file alone")
    parser.add_argument("--save-lists", type=pathlib.Path, default=None,
                        help="also save the lists' terms (npz) for study")
    args = parser.parse_args(argv)
    started = time.time()
    reranker_path = args.reranker or default_reranker_path()
    reranker = Reranker(reranker_path, threads=1)
    encoder = Encoder(args.encoder, threads=2)

    with np.load(args.work_dir / "pool.npz", mmap_mode="r") as data:
        held = np.flatnonzero(data["held_out"])
        clips = np.asarray(data["clip"])
        names = np.asarray(data["names"])
        clean = np.asarray(data["clean"], dtype=np.float32)
        n_views = data["views"].shape[1]
        view_idx = np.linspace(0, n_views, args.views, endpoint=False).astype(int)
        views = np.asarray(data["views"][held][:, view_idx], dtype=np.float32)  # (H, V, T, F)
    clean_vectors = encoder.embed_blocks(clean)
    query_blocks = views.reshape(-1, *views.shape[2:])
    query_vectors = encoder.embed_blocks(query_blocks)
    query_items = np.repeat(held, len(view_idx))
    negatives = nearest_in_other_groups(query_vectors, clips[query_items], clean_vectors, clips,
                                        CANDIDATES - 1)
    lists = np.concatenate([query_items[:, None], negatives], axis=1)
    print(f"{len(query_blocks)} held-out queries, candidates mined in {time.time() - started:.0f} s",
          flush=True)

    network = np.empty((len(query_blocks), CANDIDATES))
    errors = np.empty((len(query_blocks), CANDIDATES))
    cosines = np.einsum("ld,lkd->lk", query_vectors, clean_vectors[lists])
    for i, block in enumerate(query_blocks):
        pairs_q = np.repeat(block[None], CANDIDATES, axis=0)
        network[i] = reranker.score(pairs_q, clean[lists[i]])
        errors[i] = room_fit_error(pairs_q, clean[lists[i]])
        if (i + 1) % 500 == 0:
            print(f"  network and room fit: {i + 1}/{len(query_blocks)} queries, "
                  f"{time.time() - started:.0f} s", flush=True)
    coherence = coherence_lists(names, held, view_idx, lists, query_blocks, args.workers)
    print(f"  coherence done, {time.time() - started:.0f} s", flush=True)

    if args.save_lists:
        np.savez(args.save_lists, network=network, errors=errors, coherence=coherence, cosines=cosines,
                 lists=lists)
    features = np.stack([network, room_fit_term(errors), coherence_term(coherence)], axis=2)
    scales = likeliest_scales(features)
    weights = weights_of(scales)
    fit_only = likeliest_scales(features[:, :, :2])
    chosen = features @ np.array([1.0, weights["room_fit_weight"], weights["coherence_weight"]])
    rng = np.random.default_rng(0)
    spread = {key: [] for key in weights}
    for _ in range(BOOTSTRAPS):
        picked = rng.choice(len(held), size=len(held))
        rows = (picked[:, None] * len(view_idx) + np.arange(len(view_idx))).reshape(-1)
        for key, value in weights_of(likeliest_scales(features[rows])).items():
            spread[key].append(value)
    report = {
        "benchmark": "score_calibration",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "reranker_model_id": reranker.model_id,
        "encoder_model_id": encoder.model_id,
        "queries": int(len(query_blocks)),
        "held_out_items": int(len(held)),
        "views_per_item": int(len(view_idx)),
        "first_rate": {"encoder_cosine": round(first_rate(cosines), 4),
                       "network": round(first_rate(network), 4),
                       "room_fit_alone": round(first_rate(features[:, :, 1]), 4),
                       "coherence_alone": round(first_rate(features[:, :, 2]), 4),
                       "network_and_room_fit": round(first_rate(features[:, :, :2] @ fit_only), 4),
                       "all_terms": round(first_rate(chosen), 4)},
        "list_loss": {"network": round(list_loss(network), 4),
                      "network_and_room_fit": round(list_loss(features[:, :, :2] @ fit_only), 4),
                      "all_terms": round(list_loss(features @ scales), 4)},
        "weights": weights,
        "room_fit_weight_without_coherence": round(float(fit_only[1] / fit_only[0]), 3),
        "bootstrap_5_95": {key: [round(float(np.percentile(v, 5)), 3), round(float(np.percentile(v, 95)), 3)]
                           for key, v in spread.items()},
        "coherence_percentiles_5_25_50_75_95": {
            "own_block": np.percentile(coherence[:, 0], [5, 25, 50, 75, 95]).round(3).tolist(),
            "best_other": np.percentile(coherence[:, 1:].max(axis=1), [5, 25, 50, 75, 95]).round(3).tolist()},
        "seconds": round(time.time() - started, 1),
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'scored by':<24}{'own block first':>16}{'list loss':>11}")
    for key in ("network", "network_and_room_fit", "all_terms"):
        print(f"{key:<24}{report['first_rate'][key]:>16.4f}{report['list_loss'][key]:>11.4f}")
    print(f"weights {weights} (bootstrap 5-95 %: {report['bootstrap_5_95']})")
    if not args.dry_run:
        set_weights(reranker_path, weights)
        print(f"wrote {weights} into {reranker_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
