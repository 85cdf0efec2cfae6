"""Which files win when re-identification misses: the near-twin diagnosis behind the model card.

Replays one condition of ``bench/retrieval.py`` (same files, damage, seeds and scoring)
for one model and, for every query whose own file is not first, records the winning
file, whether it sits in the same folder (the same kit), the cosine between the two
files' clean vectors, the peak of their normalised waveform cross-correlation over the
first second (1.0: the same recording; about 0.5 and more: the same drum, another hit),
and the score margin by which the winner beat the right file.

    .venv/bin/python bench/misses.py [--condition room_reverb] [--model scout] [--queries 300]

Writes bench/results/misses_CONDITION.json (misses_CONDITION_MODEL.json for a model other
than scout, e.g. ``--model scout-rerank``, the app's search with the re-ranker) and prints
a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
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
    return retrieval.best_lag_correlation(a[:n], b[:n], max(n - 1, 0)) if n else 0.0


def misses_by_folder(query_folders: list[str], miss_folders: list[str]) -> dict[str, dict]:
    """Misses and queries per folder, for folders with at least one miss, most misses first:
    a kit full of takes of one sound shows up as one row."""
    queries = Counter(query_folders)
    missed = Counter(miss_folders)
    return {folder: {"misses": n, "queries": queries[folder]}
            for folder, n in sorted(missed.items(), key=lambda kv: (-kv[1], kv[0]))}


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
    usable = [i for i, f in enumerate(files)
              if f.skip is None and library.starts[i + 1] > library.starts[i]]
    twins = retrieval.twin_map(retrieval.level_twins(files))

    def vectors(i: int) -> np.ndarray:
        return library.vectors[library.starts[i]:library.starts[i + 1]]

    misses = []

    def record_miss(item: int, _model: str, scores: np.ndarray, rank: int) -> None:
        if rank == 1:
            return
        winner = int(np.argmax(scores))
        misses.append({
            "file": files[item].path.as_posix(), "winner": files[winner].path.as_posix(), "rank": rank,
            "same_folder": files[item].path.parent == files[winner].path.parent,
            "clean_cosine": round(float((vectors(item) @ vectors(winner).T).max()), 4),
            "waveform_match": round(waveform_match(audio_cache[item],
                                                   retrieval.read_audio(files[winner].path)), 4),
            "score_margin": round(float(scores[winner] - scores[item]), 4),
        })

    query_idx = retrieval.choose(usable, args.queries, args.seed, 2)
    audio_cache: dict[int, np.ndarray] = {}
    retrieval.rank_condition(args.condition, query_idx, files, [model], {model.name: library}, twins,
                             args.seed, audio_cache, observe=record_miss)

    summary = {
        "queries": len(query_idx), "misses": len(misses),
        "winner_in_same_folder": sum(m["same_folder"] for m in misses),
        "clean_cosine_at_least_0.9": sum(m["clean_cosine"] >= 0.9 for m in misses),
        "clean_cosine_at_least_0.95": sum(m["clean_cosine"] >= 0.95 for m in misses),
        "waveform_match_at_least_0.5": sum(m["waveform_match"] >= 0.5 for m in misses),
        "waveform_match_at_least_0.9": sum(m["waveform_match"] >= 0.9 for m in misses),
        "median_score_margin": float(np.median([m["score_margin"] for m in misses])) if misses else None,
        "by_folder": misses_by_folder([files[i].path.parent.as_posix() for i in query_idx],
                                      [Path(m["file"]).parent.as_posix() for m in misses]),
    }
    report = {"benchmark": "misses", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "condition": args.condition, "model_id": model.model_id, "seed": args.seed,
              "summary": summary, "misses": misses,
              "seconds": round(time.perf_counter() - started, 1)}
    suffix = "" if args.model == "scout" else f"_{args.model.replace('-', '_')}"
    out = ROOT / "bench" / "results" / f"misses_{args.condition}{suffix}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{model.model_id}, {args.condition}: {len(misses)} misses in {len(query_idx)} queries")
    for key, value in summary.items():
        if key not in ("queries", "misses", "by_folder"):
            print(f"  {key:<32}{value}")
    for folder, row in list(summary["by_folder"].items())[:5]:
        print(f"  {row['misses']:>3} of {row['queries']:>3} queries in {folder}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
