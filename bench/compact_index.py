"""Full-width vs compact index on real-like vectors: recall@10, search latency, load time,
resident memory and file size.

The vectors are shaped like a real library's, as bench/million_library.py makes them: the
shipped encoder's vectors of the Debian sample packages (scanned once under ``--cache``),
each real file repeated in packs with its vectors moved by small gaussian noise (about 1.5
vectors a file). Both indexes hold the same vectors with the same M and ef_construction; the
full one is what ``VectorIndex.build`` made before (256-d graph), the compact one has a 64-d
graph over an uncentred PCA and re-scores its candidates with the float16 exact rows.

Queries are fresh noisy copies of real vectors (a take of a library sound, one block each).
Recall@10 is per file against exact brute force over all vectors (a file scores its best
vector), at the app's ef_search for the size. Latency is one query at a time on one hnswlib
thread, on the index loaded from its file (as the app searches it). Load time and resident
memory are measured in a fresh process per index.

    nice -n 10 .venv/bin/python bench/compact_index.py --cache /tmp/million-cache --vectors 200000

Writes bench/results/compact_index.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import app.index as index_module  # noqa: E402
from app.compact_vectors import Projection  # noqa: E402
from app.index import VectorIndex, ef_search_for  # noqa: E402
from app.paths import CATALOG_FILENAME  # noqa: E402
from bench.harness.memory import process_memory_kb  # noqa: E402
from bench.million_library import NOISE, _real_rows, debian_library  # noqa: E402

RESULTS = HERE / "results" / "compact_index.json"
K = 10
MODEL = "bench-compact"


def real_like(cache: Path, n_vectors: int, seed: int = 0):
    """(vector_ids, file_ids, vectors, real vectors) of about ``n_vectors`` vectors."""
    from app.library import Library
    real_dir = debian_library(cache)
    with Library(real_dir) as real:
        model_id = real.encoder.model_id
    db = sqlite3.connect(f"file:{real_dir / CATALOG_FILENAME}?mode=ro", uri=True)
    files, vectors, _, _ = _real_rows(db, model_id)
    db.close()
    per_file = [np.stack([np.frombuffer(blob, "<f4") for _, blob in vectors[f[0]]]) for f in files]
    rng = np.random.default_rng(seed)
    rows, fids = [], []
    file_id, count = 0, 0
    while count < n_vectors:
        for base in per_file:
            file_id += 1
            rows.append(base)
            fids.extend([file_id] * len(base))
            count += len(base)
            if count >= n_vectors:
                break
    base = np.concatenate(rows)
    dim = base.shape[1]
    noise = np.float32(NOISE / np.sqrt(dim))
    out = base + rng.standard_normal(base.shape, dtype=np.float32) * noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    real = np.concatenate(per_file)
    return np.arange(1, len(out) + 1, dtype=np.int64), np.asarray(fids, np.int64), \
        out.astype(np.float32), real


def queries_from(real: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picked = real[rng.integers(0, len(real), n)]
    out = picked + rng.standard_normal(picked.shape, dtype=np.float32) * np.float32(
        NOISE / np.sqrt(real.shape[1]))
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def exact_files(vectors: np.ndarray, file_ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    scores = vectors @ query
    top = np.argpartition(-scores, 400)[:400]
    best: dict[int, float] = {}
    for i in top[np.argsort(-scores[top])]:
        best.setdefault(int(file_ids[i]), float(scores[i]))
        if len(best) == k:
            break
    return list(best)


def measure_search(index: VectorIndex, queries: np.ndarray, truth: list[list[int]],
                   repeats: int) -> dict:
    found, times = [], []
    for query, want in zip(queries, truth):
        hits = index.search(query, k=K)
        found.append(len({h.file_id for h in hits} & set(want)) / K)
    for _ in range(repeats):
        for query in queries:
            t = time.perf_counter()
            index.search(query, k=K)
            times.append((time.perf_counter() - t) * 1e3)
    return {"recall_at_10": round(float(np.mean(found)), 4),
            "search_p50_ms": round(float(np.percentile(times, 50)), 3),
            "search_p99_ms": round(float(np.percentile(times, 99)), 3),
            "searches": len(times)}


def load_main(path: str, dim: int) -> None:
    """In a fresh process: load the index, search once, report time and memory."""
    before = process_memory_kb()
    t = time.perf_counter()
    index = VectorIndex.load(path, dim=dim, model_id=MODEL)
    load_s = time.perf_counter() - t
    index.search(np.ones(dim, np.float32), k=K)
    after = process_memory_kb()
    print("RESULT " + json.dumps({
        "load_s": round(load_s, 3), "compact": index.compact,
        "rss_added_gb": round((after["VmRSS"] - before["VmRSS"]) / 1024**2, 3),
        "hwm_gb": round(after["VmHWM"] / 1024**2, 3)}), flush=True)


def measure_load(path: Path, dim: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--load", str(path), str(dim)],
                         capture_output=True, text=True, timeout=900)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"load failed: {out.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/million-cache"))
    parser.add_argument("--vectors", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--oversample", default="2,4,8",
                        help="compact re-scoring depths to compare (COMPACT_OVERSAMPLE)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--load", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        return load_main(args.load[0], int(args.load[1]))

    vids, fids, vectors, real = real_like(args.cache, args.vectors)
    dim = vectors.shape[1]
    queries = queries_from(real, args.queries)
    truth = [exact_files(vectors, fids, q, K) for q in queries]
    ef = ef_search_for(len(vids))
    result = {"vectors": len(vids), "files": int(fids.max()), "dim": dim, "noise": NOISE,
              "queries": len(queries), "ef_search": ef, "ef_construction": args.ef_construction,
              "M": index_module.DEFAULT_M, "graph_dim": None, "cpu_count": os.cpu_count(),
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
              "niceness": os.nice(0), "indexes": {}}
    folder = Path(tempfile.mkdtemp(prefix="compact-index-bench-"))
    try:
        for form in ("full", "compact"):
            t = time.perf_counter()
            projection = Projection.fit(vectors) if form == "compact" else None
            index = VectorIndex.build(dim, MODEL, vids, fids, vectors, ef_search=ef,
                                      ef_construction=args.ef_construction, num_threads=-1,
                                      projection=projection)
            build_s = time.perf_counter() - t
            path = folder / f"{form}.idx"
            index.save(path)
            row = {"build_s": round(build_s, 1), "file_gb": round(path.stat().st_size / 1e9, 3),
                   "graph_dim": index.graph_dim, "self_recall": index.self_recall()}
            del index   # searched as the app searches it: loaded from its file
            index = VectorIndex.load(path, dim=dim, model_id=MODEL)
            if form == "compact":
                result["graph_dim"] = index.graph_dim
                default = index_module.COMPACT_OVERSAMPLE
                row["oversample"] = {}
                for depth in [int(x) for x in args.oversample.split(",")]:
                    index_module.COMPACT_OVERSAMPLE = depth
                    row["oversample"][str(depth)] = measure_search(index, queries, truth,
                                                                   args.repeats)
                index_module.COMPACT_OVERSAMPLE = default
                row.update(row["oversample"][str(default)])
                row["oversample_default"] = default
            else:
                row.update(measure_search(index, queries, truth, args.repeats))
            del index
            row.update(measure_load(path, dim))
            result["indexes"][form] = row
            print(form, json.dumps(row), flush=True)
            path.unlink()
    finally:
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{result['vectors']} vectors of {dim} dims in {result['files']} files, "
          f"ef_search {ef}, ef_construction {args.ef_construction}\n")
    cols = ("recall_at_10", "search_p50_ms", "search_p99_ms", "load_s", "rss_added_gb",
            "file_gb", "build_s")
    print(f"{'index':<10}" + "".join(f"{c:>15}" for c in cols))
    for form, row in result["indexes"].items():
        print(f"{form:<10}" + "".join(f"{row[c]:>15}" for c in cols))
    for depth, row in result["indexes"]["compact"]["oversample"].items():
        print(f"compact, oversample {depth}: recall@10 {row['recall_at_10']}, "
              f"p50 {row['search_p50_ms']} ms, p99 {row['search_p99_ms']} ms")


if __name__ == "__main__":
    main()
