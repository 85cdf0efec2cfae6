"""Which files win when re-identification misses: the near-twin diagnosis behind the model card.

Replays one condition of ``bench/retrieval.py`` (same files, damage, seeds and scoring)
for one model and, for every query whose own file is not first, records the winning
file, whether it sits in the same folder (the same kit), the cosine between the two
files' clean vectors, the peak of their normalised waveform cross-correlation over the
first second (1.0: the same recording; about 0.5 and more: the same drum, another hit),
and the score margin by which the winner beat the right file.

    .venv/bin/python bench/misses.py [--condition room_reverb] [--model scout] [--queries 300]

Writes bench/results/misses_CONDITION.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import damage  # noqa: E402
import retrieval  # noqa: E402


def waveform_match(a: np.ndarray, b: np.ndarray, seconds: float = 1.0) -> float:
    """Peak normalised cross-correlation of the first ``seconds`` of two clips (any lag)."""
    n = min(a.size, b.size, int(seconds * damage.SAMPLE_RATE))
    if n == 0:
        return 0.0
    x, y = a[:n].astype(np.float64), b[:n].astype(np.float64)
    x /= np.linalg.norm(x) or 1.0
    y /= np.linalg.norm(y) or 1.0
    spectrum = np.fft.rfft(x, 2 * n) * np.conj(np.fft.rfft(y, 2 * n))
    return float(np.abs(np.fft.irfft(spectrum, 2 * n)).max())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--condition", default="room_reverb", choices=damage.CONDITIONS)
    parser.add_argument("--model", default="scout")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    model = retrieval.build_model(args.model, retrieval.DEFAULT_FP32_MODEL)
    files, _ = retrieval.collect_files(None, args.seed)
    library = retrieval.embed_library(files, [model], {})[model.name]
    n_files = len(files)
    usable = [i for i, f in enumerate(files)
              if f.skip is None and library.starts[i + 1] > library.starts[i]]
    twins = {i: [j for j in g if j != i] for g in retrieval.level_twins(files) for i in g}

    def vectors(i: int) -> np.ndarray:
        return library.vectors[library.starts[i]:library.starts[i + 1]]

    misses = []
    query_idx = retrieval.choose(usable, args.queries, args.seed, 2)
    for item in query_idx:
        clean = retrieval.read_audio(files[item].path)
        damaged = damage.apply_condition(args.condition, clean,
                                         damage.condition_rng(args.seed, args.condition, item))
        query = model.raw(damaged)
        query = model.finish(query) if query.size else query
        scores = retrieval.file_scores(query, library, n_files)
        rank = retrieval.rank_of(scores, item, twins.get(item, ()))
        if rank == 1:
            continue
        winner = int(np.argmax(scores))
        misses.append({
            "file": files[item].path.as_posix(), "winner": files[winner].path.as_posix(), "rank": rank,
            "same_folder": files[item].path.parent == files[winner].path.parent,
            "clean_cosine": round(float((vectors(item) @ vectors(winner).T).max()), 4),
            "waveform_match": round(waveform_match(clean, retrieval.read_audio(files[winner].path)), 4),
            "score_margin": round(float(scores[winner] - scores[item]), 4),
        })

    summary = {
        "queries": len(query_idx), "misses": len(misses),
        "winner_in_same_folder": sum(m["same_folder"] for m in misses),
        "clean_cosine_at_least_0.9": sum(m["clean_cosine"] >= 0.9 for m in misses),
        "clean_cosine_at_least_0.95": sum(m["clean_cosine"] >= 0.95 for m in misses),
        "waveform_match_at_least_0.5": sum(m["waveform_match"] >= 0.5 for m in misses),
        "waveform_match_at_least_0.9": sum(m["waveform_match"] >= 0.9 for m in misses),
        "median_score_margin": float(np.median([m["score_margin"] for m in misses])) if misses else None,
    }
    report = {"benchmark": "misses", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "condition": args.condition, "model_id": model.model_id, "seed": args.seed,
              "summary": summary, "misses": misses,
              "seconds": round(time.perf_counter() - started, 1)}
    out = ROOT / "bench" / "results" / f"misses_{args.condition}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{model.model_id}, {args.condition}: {len(misses)} misses in {len(query_idx)} queries")
    for key, value in summary.items():
        if key not in ("queries", "misses"):
            print(f"  {key:<32}{value}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
