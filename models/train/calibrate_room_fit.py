"""Calibrate the room fit's weight in the re-ranker's score and write it into the ONNX file.

The re-ranker's score for a candidate is the network's score plus ``w * -ln(room fit
error)`` (``models.room_fit``). ``w`` is chosen here, on the training pool's held-out
items (never on a benchmark): every held-out damaged view is a query, its candidates are
its own clean block and the 9 nearest clean blocks of other clips by the encoder's cosine
(the lists the re-ranker was trained and evaluated on). The weight is the one that makes
the own block most likely under a softmax over each list (the listwise likelihood the
network was trained for): ``a * network + b * fit_term`` is fitted on a grid and the
weight is ``b / a``, since only the ratio changes an order. The share of queries whose own
block scores strictly highest is reported for a range of weights too. The weight is
written into the re-ranker file's metadata as ``room_fit_weight`` (the file is otherwise
unchanged) and the tables into a JSON report.

Needs only the app's packages plus ``onnx`` (numpy, onnxruntime): the encoder and
re-ranker are the ONNX files, so the weight fits exactly what ships.

Run: ``python -m models.train.calibrate_room_fit --work-dir DIR [--reranker FILE]
[--views 16] [--report bench/results/room_fit_calibration.json]``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from models.encoder import Encoder  # noqa: E402
from models.reranker import Reranker, default_reranker_path  # noqa: E402
from models.room_fit import room_fit_error, room_fit_term  # noqa: E402
from models.train.batches import nearest_in_other_groups  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)     # reported
SCALES = np.arange(0.5, 1.5001, 0.05)                              # likelihood fit: a
FIT_SCALES = np.arange(0.0, 4.0001, 0.05)                          # and b
CANDIDATES = 10


def first_rate(scores: np.ndarray) -> float:
    """Share of rows whose column 0 (the own block) is strictly the highest."""
    return float(np.mean(scores[:, 0] > scores[:, 1:].max(axis=1)))


def list_loss(scores: np.ndarray) -> float:
    """Mean negative log-likelihood of column 0 under a softmax over each row."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[:, 0]))


def likeliest_weight(network: np.ndarray, fit_term: np.ndarray) -> tuple[float, float]:
    """``(b / a, loss)`` for the ``a, b`` on the grid that minimise ``list_loss(a*network + b*fit)``."""
    loss, a, b = min((list_loss(a * network + b * fit_term), a, b) for a in SCALES for b in FIT_SCALES)
    return round(float(b / a), 3), round(loss, 4)


def set_weight(model_path: pathlib.Path, weight: float) -> None:
    """Write ``room_fit_weight`` into the ONNX file's metadata, in place (atomically)."""
    import onnx
    model = onnx.load(str(model_path))
    for prop in list(model.metadata_props):
        if prop.key == "room_fit_weight":
            model.metadata_props.remove(prop)
    prop = model.metadata_props.add()
    prop.key, prop.value = "room_fit_weight", f"{weight:g}"
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
                        help="damaged views per held-out item (16, all of them, for the shipped weight)")
    parser.add_argument("--report", type=pathlib.Path, default=REPO / "bench/results/room_fit_calibration.json")
    parser.add_argument("--dry-run", action="store_true", help="report only, leave the file alone")
    parser.add_argument("--save-lists", type=pathlib.Path, default=None,
                        help="also save the lists' scores (npz) for study")
    args = parser.parse_args(argv)
    started = time.time()
    reranker_path = args.reranker or default_reranker_path()
    reranker = Reranker(reranker_path, threads=1)
    encoder = Encoder(args.encoder, threads=2)

    with np.load(args.work_dir / "pool.npz", mmap_mode="r") as data:
        held = np.flatnonzero(data["held_out"])
        clips = np.asarray(data["clip"])
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
    print(f"{len(query_blocks)} held-out queries, candidates mined in {time.time() - started:.0f} s",
          flush=True)

    network = np.empty((len(query_blocks), CANDIDATES))
    errors = np.empty((len(query_blocks), CANDIDATES))
    cosines = np.empty((len(query_blocks), CANDIDATES))
    for i, (block, item) in enumerate(zip(query_blocks, query_items)):
        cand = np.concatenate([[item], negatives[i]])
        pairs_q = np.repeat(block[None], CANDIDATES, axis=0)
        network[i] = reranker.score(pairs_q, clean[cand])
        errors[i] = room_fit_error(pairs_q, clean[cand])
        cosines[i] = clean_vectors[cand] @ query_vectors[i]
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(query_blocks)} queries, {time.time() - started:.0f} s", flush=True)

    if args.save_lists:
        np.savez(args.save_lists, network=network, errors=errors, cosines=cosines, items=query_items)
    fit_term = room_fit_term(errors)
    table = {f"{w:g}": round(first_rate(network + w * fit_term), 4) for w in WEIGHTS}
    best, loss = likeliest_weight(network, fit_term)
    report = {
        "benchmark": "room_fit_calibration",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "reranker_model_id": reranker.model_id,
        "encoder_model_id": encoder.model_id,
        "queries": int(len(query_blocks)),
        "held_out_items": int(len(held)),
        "views_per_item": int(len(view_idx)),
        "first_rate": {"encoder_cosine": round(first_rate(cosines), 4),
                       "room_fit_alone": round(first_rate(fit_term), 4),
                       "network_plus_weight_x_fit": table,
                       "at_chosen_weight": round(first_rate(network + best * fit_term), 4)},
        "list_loss": {"network": round(list_loss(network), 4), "at_chosen_weight": loss},
        "chosen_weight": best,
        "seconds": round(time.time() - started, 1),
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'weight':>8} {'own block first':>16}")
    for w in WEIGHTS:
        print(f"{w:>8g} {table[f'{w:g}']:>16.4f}")
    print(f"encoder cosine alone {report['first_rate']['encoder_cosine']:.4f}, "
          f"room fit alone {report['first_rate']['room_fit_alone']:.4f}")
    print(f"likeliest weight {best:g}: own block first {report['first_rate']['at_chosen_weight']:.4f}, "
          f"list loss {report['list_loss']['network']:.4f} -> {loss:.4f}")
    if not args.dry_run:
        set_weight(reranker_path, best)
        print(f"wrote room_fit_weight={best:g} into {reranker_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
