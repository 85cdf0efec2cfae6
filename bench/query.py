"""Benchmark of the vector index: build time, memory, query latency and recall@10.

By default the vectors are real: the shipped encoder's vectors of the Debian sample packages
(hydrogen-drumkits and -effects, sonic-pi-samples, lmms-common), made here by scanning them into
a library under bench/cache/, then replicated with small gaussian noise beyond the real ones.
With --synthetic they are clustered synthetic embeddings at the encoder's dimension (category
centres, files around them, windows around files). Queries are half noisy copies of indexed windows (a live take of a library
sound) and half fresh draws (a sound that is not in the library). Recall@10 is measured against
exact brute force (numpy dot products): per vector for raw hnswlib kNN (a bare hnswlib graph
built here with the same space, M and ef_construction on the same vectors: the cost of the graph
search alone), per file for VectorIndex.search, which ranks files by their best window.

    .venv/bin/python bench/query.py                       # 10k and 100k, sweep at 100k
    .venv/bin/python bench/query.py --sizes 10000,100000,1000000
    .venv/bin/python bench/query.py --synthetic

Latency is measured one query at a time on one hnswlib thread (num_threads=1), as in live use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import hnswlib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.index import (  # noqa: E402
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EF_SEARCH,
    DEFAULT_M,
    SPACE,
    VectorIndex,
)
from bench.harness.memory import process_memory_kb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

WINDOWS_PER_FILE = 4
K = 10
TARGET_P99_MS = 1.0
TARGET_RECALL = 0.98


def rss_bytes() -> int:
    return process_memory_kb().get("VmRSS", 0) * 1024


def normalise(rows: np.ndarray) -> np.ndarray:
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def noise(rng: np.random.Generator, n: int, dim: int, scale: float) -> np.ndarray:
    # Per-coordinate sigma scale/sqrt(dim): the noise vector has norm about `scale`.
    return rng.standard_normal((n, dim), dtype=np.float32) * np.float32(scale / np.sqrt(dim))


class Generator:
    """Clustered synthetic embeddings or noisy replicas of real ones."""

    def __init__(self, n: int, dim: int, rng: np.random.Generator, real: np.ndarray | None):
        self.rng = rng
        self.dim = dim
        self.real = real
        n_files = n // WINDOWS_PER_FILE
        if real is None:
            self.centres = normalise(rng.standard_normal((max(16, n_files // 100), dim), dtype=np.float32))
        else:
            self.centres = real

    def files(self, n_files: int) -> np.ndarray:
        """One vector per file: a category centre (or real embedding) plus noise."""
        out = np.empty((n_files, self.dim), np.float32)
        for start in range(0, n_files, 50_000):
            m = min(50_000, n_files - start)
            if self.real is None:
                picks = self.rng.integers(len(self.centres), size=m)
                out[start : start + m] = normalise(self.centres[picks] + noise(self.rng, m, self.dim, 1.0))
            else:
                # The real embeddings first, then replicas with small noise.
                idx = np.arange(start, start + m)
                picks = np.where(idx < len(self.real), idx % len(self.real), self.rng.integers(len(self.real), size=m))
                scale = np.where(idx < len(self.real), 0.0, 0.25).astype(np.float32)[:, None]
                out[start : start + m] = normalise(self.real[picks] + scale * noise(self.rng, m, self.dim, 1.0))
        return out

    def windows(self, files: np.ndarray) -> np.ndarray:
        """WINDOWS_PER_FILE vectors per file: the file vector plus smaller noise."""
        n = len(files) * WINDOWS_PER_FILE
        out = np.empty((n, self.dim), np.float32)
        for start in range(0, n, 200_000):
            stop = min(n, start + 200_000)
            base = files[np.arange(start, stop) // WINDOWS_PER_FILE]
            out[start:stop] = normalise(base + noise(self.rng, stop - start, self.dim, 0.45))
        return out


def make_dataset(n: int, dim: int, n_queries: int, seed: int, real: np.ndarray | None):
    rng = np.random.default_rng(seed)
    gen = Generator(n, dim, rng, real)
    n_files = n // WINDOWS_PER_FILE
    files = gen.files(n_files)
    vectors = gen.windows(files)
    n_near = n_queries // 2
    picks = rng.integers(len(vectors), size=n_near)
    near = normalise(vectors[picks] + noise(rng, n_near, dim, 0.35))
    fresh = gen.windows(gen.files(n_queries - n_near))[:: WINDOWS_PER_FILE]
    fresh = fresh[: n_queries - n_near]
    queries = np.ascontiguousarray(np.concatenate([near, fresh]))
    file_ids = np.arange(len(vectors), dtype=np.int64) // WINDOWS_PER_FILE
    return vectors, file_ids, queries


def real_vectors() -> tuple[np.ndarray, str]:
    """The shipped encoder's vectors of the Debian sample packages (scanned once into a library
    under bench/cache/, re-scanned when the files or the model change) and the model id."""
    from app.library import Library
    from app.scanner import Scanner
    from bench.labels import DEBIAN_ROOTS
    roots = [str(r) for r in DEBIAN_ROOTS if r.is_dir()]
    if not roots:
        raise SystemExit("no Debian sample package found: apt-get install sonic-pi-samples hydrogen-drumkits lmms-common")
    with Library(ROOT / "bench" / "cache" / "query-real" / "library-data") as library:
        Scanner(library, workers=2).scan(roots)
        model_id, dim = library.encoder.model_id, library.encoder.dim
        vectors = np.concatenate([v for _, _, v in library.catalog.iter_vectors(model_id, dim=dim)])
    return np.ascontiguousarray(vectors, dtype=np.float32), model_id


def bare_graph(vectors: np.ndarray, M: int, ef_construction: int, threads: int) -> hnswlib.Index:
    """A bare hnswlib graph like the one VectorIndex builds (same space and parameters)."""
    graph = hnswlib.Index(space=SPACE, dim=vectors.shape[1])
    graph.init_index(max_elements=len(vectors), ef_construction=ef_construction, M=M)
    graph.add_items(vectors, np.arange(len(vectors)), num_threads=threads)
    return graph


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k vector ids and top-k file ids (file = best of its windows) by brute force."""
    n_q = len(queries)
    best_v = np.full((n_q, 0), -1, np.int64)
    best_vs = np.full((n_q, 0), -np.inf, np.float32)
    best_f = np.full((n_q, 0), -1, np.int64)
    best_fs = np.full((n_q, 0), -np.inf, np.float32)
    chunk = 100_000 - 100_000 % WINDOWS_PER_FILE
    for start in range(0, len(vectors), chunk):
        scores = queries @ vectors[start : start + chunk].T
        ids = np.argpartition(-scores, k, axis=1)[:, :k] if scores.shape[1] > k else np.tile(np.arange(scores.shape[1]), (n_q, 1))
        best_v = np.concatenate([best_v, ids + start], axis=1)
        best_vs = np.concatenate([best_vs, np.take_along_axis(scores, ids, axis=1)], axis=1)
        per_file = scores.reshape(n_q, -1, WINDOWS_PER_FILE).max(axis=2)
        fids = np.argpartition(-per_file, k, axis=1)[:, :k] if per_file.shape[1] > k else np.tile(np.arange(per_file.shape[1]), (n_q, 1))
        best_f = np.concatenate([best_f, fids + start // WINDOWS_PER_FILE], axis=1)
        best_fs = np.concatenate([best_fs, np.take_along_axis(per_file, fids, axis=1)], axis=1)
        order_v = np.argsort(-best_vs, axis=1)[:, :k]
        best_v = np.take_along_axis(best_v, order_v, axis=1)
        best_vs = np.take_along_axis(best_vs, order_v, axis=1)
        order_f = np.argsort(-best_fs, axis=1)[:, :k]
        best_f = np.take_along_axis(best_f, order_f, axis=1)
        best_fs = np.take_along_axis(best_fs, order_f, axis=1)
    return best_v, best_f


def percentiles_ms(samples_ns: list[int]) -> dict:
    arr = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 4),
        "p99_ms": round(float(np.percentile(arr, 99)), 4),
        "mean_ms": round(float(arr.mean()), 4),
    }


def measure(index: VectorIndex, hnsw: hnswlib.Index, queries: np.ndarray, true_v: np.ndarray,
            true_f: np.ndarray, ef: int) -> dict:
    index.ef_search = ef
    hnsw.set_ef(ef)  # the bare graph: the cost of the graph search alone
    for q in queries[:50]:  # warm caches
        hnsw.knn_query(q, k=K, num_threads=1)
    knn_ns, hits = [], 0
    for q, truth in zip(queries, true_v):
        t0 = time.perf_counter_ns()
        labels, _ = hnsw.knn_query(q, k=K, num_threads=1)
        knn_ns.append(time.perf_counter_ns() - t0)
        hits += len(np.intersect1d(labels[0].astype(np.int64), truth))
    knn_recall = hits / true_v.size

    search_ns, file_hits = [], 0
    for q, truth in zip(queries, true_f):
        t0 = time.perf_counter_ns()
        result = index.search(q, k=K)
        search_ns.append(time.perf_counter_ns() - t0)
        file_hits += len(set(h.file_id for h in result) & set(truth.tolist()))
    file_recall = file_hits / true_f.size

    rng = np.random.default_rng(1)
    windows_ns = []
    for i in range(min(300, len(queries))):
        take = rng.integers(len(queries), size=4)
        t0 = time.perf_counter_ns()
        index.search(queries[take], k=K)
        windows_ns.append(time.perf_counter_ns() - t0)

    t0 = time.perf_counter()
    hnsw.knn_query(queries, k=K, num_threads=2)
    batch_qps = len(queries) / (time.perf_counter() - t0)
    return {
        "ef_search": ef,
        "knn_recall_at_10": round(knn_recall, 4),
        "knn_latency": percentiles_ms(knn_ns),
        "search_file_recall_at_10": round(file_recall, 4),
        "search_latency": percentiles_ms(search_ns),
        "search_4_windows_latency": percentiles_ms(windows_ns),
        "batch_qps_2_threads": round(batch_qps),
    }


def run(args: argparse.Namespace) -> dict:
    from models.encoder import Encoder
    real, model_id = None, Encoder().model_id
    if not args.synthetic:
        real, model_id = real_vectors()
        real = normalise(real)
    args.dim = real.shape[1] if real is not None else (args.dim or Encoder().dim)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "hnswlib": getattr(hnswlib, "__version__", "0.8.0"),
            "load_average_at_start": os.getloadavg(),
        },
        "data": "real" if real is not None else "synthetic-clustered",
        "encoder": model_id,
        "real_vectors": len(real) if real is not None else 0,
        "real_source": "shipped encoder on the Debian sample packages, replicated with noise 0.25 beyond them"
        if real is not None else None,
        "dim": args.dim,
        "k": K,
        "windows_per_file": WINDOWS_PER_FILE,
        "n_queries": args.queries,
        "query_threads": 1,
        "build_threads": args.build_threads,
        "ef_construction": args.ef_construction,
        "runs": [],
    }
    for n in args.sizes:
        t0 = time.perf_counter()
        vectors, file_ids, queries = make_dataset(n, args.dim, args.queries, args.seed, real)
        true_v, true_f = exact_top(vectors, queries, K)
        print(f"[{n}] data + exact top-10 in {time.perf_counter() - t0:.1f} s", flush=True)
        Ms = args.Ms if n == args.sweep_size else [DEFAULT_M]
        efs = args.efs if n == args.sweep_size else sorted({DEFAULT_EF_SEARCH, *args.efs})
        for M in Ms:
            rss0 = rss_bytes()
            t0 = time.perf_counter()
            index = VectorIndex.build(
                args.dim, "bench", np.arange(len(vectors)), file_ids, vectors,
                M=M, ef_construction=args.ef_construction, num_threads=args.build_threads,
            )
            build_s = time.perf_counter() - t0
            rss = rss_bytes() - rss0
            hnsw = bare_graph(vectors, M, args.ef_construction, args.build_threads)
            with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
                path = Path(tmp) / "bench.idx"
                t0 = time.perf_counter()
                index.save(path)
                save_s = time.perf_counter() - t0
                file_bytes = path.stat().st_size
                t0 = time.perf_counter()
                VectorIndex.load(path, dim=args.dim, model_id="bench")
                load_s = time.perf_counter() - t0
            run_info = {
                "n_vectors": n,
                "M": M,
                "build_s": round(build_s, 2),
                "build_vectors_per_s": round(n / build_s),
                "rss_growth_mb": round(rss / 2**20, 1),
                "hnsw_mb": round(hnsw.index_file_size() / 2**20, 1),
                "file_mb": round(file_bytes / 2**20, 1),
                "save_s": round(save_s, 2),
                "load_s": round(load_s, 2),
                "by_ef": [],
            }
            print(f"[{n} M={M}] build {build_s:.1f} s, +{rss / 2**20:.0f} MB RSS, save {save_s:.2f} s, load {load_s:.2f} s", flush=True)
            for ef in efs:
                m = measure(index, hnsw, queries, true_v, true_f, ef)
                run_info["by_ef"].append(m)
                print(
                    f"    ef={ef:<4} knn R@10 {m['knn_recall_at_10']:.4f} p50 {m['knn_latency']['p50_ms']:.3f} "
                    f"p99 {m['knn_latency']['p99_ms']:.3f} ms | search fileR@10 {m['search_file_recall_at_10']:.4f} "
                    f"p99 {m['search_latency']['p99_ms']:.3f} ms",
                    flush=True,
                )
            results["runs"].append(run_info)
            del index, hnsw
        del vectors
    results["choice"] = choose(results, args.sweep_size)
    return results


def choose(results: dict, sweep_size: int) -> dict | None:
    """Smallest M, then smallest ef, meeting p99 <= 1 ms (search) and kNN recall@10 >= 0.98."""
    candidates = []
    for run_info in results["runs"]:
        if run_info["n_vectors"] != sweep_size:
            continue
        for m in run_info["by_ef"]:
            ok = m["search_latency"]["p99_ms"] <= TARGET_P99_MS and m["knn_recall_at_10"] >= TARGET_RECALL
            if ok:
                candidates.append((run_info["M"], m["ef_search"], m))
    if not candidates:
        return None
    M, ef, m = min(candidates, key=lambda c: (c[0], c[1]))
    return {
        "n_vectors": sweep_size, "M": M, "ef_search": ef,
        "knn_recall_at_10": m["knn_recall_at_10"], "search_p99_ms": m["search_latency"]["p99_ms"],
        "rule": f"smallest M, then smallest ef with search p99 <= {TARGET_P99_MS} ms and kNN recall@10 >= {TARGET_RECALL}",
    }


def print_table(results: dict) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text fallback
        Console = Table = None
    header = ["n", "M", "ef", "build s", "RSS MB", "kNN R@10", "kNN p50", "kNN p99",
              "file R@10", "search p50", "search p99", "4-win p99", "qps x2"]
    rows = []
    for r in results["runs"]:
        for m in r["by_ef"]:
            rows.append([
                f"{r['n_vectors']:,}", str(r["M"]), str(m["ef_search"]), f"{r['build_s']:.1f}",
                f"{r['rss_growth_mb']:.0f}", f"{m['knn_recall_at_10']:.4f}",
                f"{m['knn_latency']['p50_ms']:.3f}", f"{m['knn_latency']['p99_ms']:.3f}",
                f"{m['search_file_recall_at_10']:.4f}", f"{m['search_latency']['p50_ms']:.3f}",
                f"{m['search_latency']['p99_ms']:.3f}", f"{m['search_4_windows_latency']['p99_ms']:.3f}",
                str(m["batch_qps_2_threads"]),
            ])
    title = f"Vector index, dim {results['dim']}, {results['data']} data, latencies in ms (1 query thread)"
    if Table is not None:
        table = Table(title=title)
        for h in header:
            table.add_column(h, justify="right")
        for row in rows:
            table.add_row(*row)
        Console(width=max(150, Console().width)).print(table)
    else:
        print(title)
        print(" | ".join(header))
        for row in rows:
            print(" | ".join(row))
    print("choice:", json.dumps(results["choice"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    parser.add_argument("--sizes", type=ints, default=[10_000, 100_000], help="comma-separated vector counts")
    parser.add_argument("--sweep-size", type=int, default=100_000, help="size at which M and ef are swept")
    parser.add_argument("--Ms", type=ints, default=[16, 32])
    parser.add_argument("--efs", type=ints, default=[16, 32, 64, 128, 256])
    parser.add_argument("--ef-construction", type=int, default=DEFAULT_EF_CONSTRUCTION)
    parser.add_argument("--build-threads", type=int, default=-1, help="hnswlib threads for the build (-1: all)")
    parser.add_argument("--dim", type=int, default=None, help="with --synthetic (default: the encoder's)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--synthetic", action="store_true", help="clustered synthetic vectors, not real ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", default=None, help="folder for the save/load timing file")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "query.json"))
    args = parser.parse_args()
    results = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
