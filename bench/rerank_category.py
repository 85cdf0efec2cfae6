"""Does re-ranking disturb the category neighbours? Precision at 1, 3 and 10 with and without it.

Re-ranking only re-orders the encoder's best 10 files, so category P@10 cannot change; what
can change is which of the 10 comes first. Same library, labels and leave-one-out rule as
the category part of ``bench/retrieval.py``: every usable labelled file is a query (clean,
as a producer auditions a library sound to find more like it), its own file and its level
twins are left out, and a neighbour counts when it has the query's strict label.
Micro and macro (over categories) averages.

    .venv/bin/python bench/rerank_category.py [--limit N]

Writes bench/results/rerank_category.json and prints a table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import retrieval  # noqa: E402

OUT = ROOT / "bench" / "results" / "rerank_category.json"
CUTS = (1, 3, 10)


def precision_table(hits: dict[str, list[np.ndarray]], labels: list[str]) -> dict:
    """``hits[order]``: per query, a boolean array over its 10 neighbours in that order."""
    out = {}
    for order, rows in hits.items():
        rows = np.array(rows)
        per_cut = {}
        for cut in CUTS:
            p = rows[:, :cut].mean(axis=1)
            by_cat = defaultdict(list)
            for label, value in zip(labels, p):
                by_cat[label].append(value)
            macro = np.mean([np.mean(v) for v in by_cat.values() if len(v) >= 2])
            per_cut[f"p_at_{cut}"] = {"micro": round(float(p.mean()), 4), "macro": round(float(macro), 4)}
        out[order] = per_cut
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    model = retrieval.build_model("scout-rerank", retrieval.DEFAULT_FP32_MODEL)
    files, _ = retrieval.collect_files(args.limit, args.seed)
    lib = retrieval.embed_library(files, [model], {})[model.name]
    usable = [i for i, f in enumerate(files) if f.skip is None and lib.starts[i + 1] > lib.starts[i] and f.strict]
    twins = retrieval.twin_map(retrieval.level_twins(files))
    hits: dict[str, list[np.ndarray]] = {"encoder": [], "reranked": []}
    labels = []
    usable_set = set(usable)
    for n, i in enumerate(usable):
        query = lib.vectors[lib.starts[i]:lib.starts[i + 1]]
        scores = retrieval.file_scores(query, lib, len(files))
        leave_out = [i, *twins.get(i, ())] + [j for j in range(len(files)) if j not in usable_set]
        scores[leave_out] = -np.inf
        encoder_top = np.argsort(-scores, kind="stable")[:retrieval.TOP_K]
        audio = retrieval.read_audio(files[i].path)
        reranked = model.rerank(audio, model.embed(audio), scores, files)
        reranked_top = np.argsort(-reranked, kind="stable")[:retrieval.TOP_K]
        label = files[i].strict
        labels.append(label)
        hits["encoder"].append(np.array([files[j].strict == label for j in encoder_top]))
        hits["reranked"].append(np.array([files[j].strict == label for j in reranked_top]))
        if (n + 1) % 200 == 0:
            print(f"  {n + 1}/{len(usable)} queries, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    result = {"benchmark": "rerank_category", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "model_id": model.model_id, "queries": len(usable), "labels": "strict",
              "precision": precision_table(hits, labels),
              "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"{'order':<10}" + "".join(f"{'P@' + str(c) + ' micro/macro':>22}" for c in CUTS))
    for order, cuts in result["precision"].items():
        print(f"{order:<10}" + "".join(f"{cuts[f'p_at_{c}']['micro']:>12.3f} / {cuts[f'p_at_{c}']['macro']:.3f}"
                                       for c in CUTS))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
