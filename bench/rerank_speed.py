"""What the re-ranker adds to one search, through the app's own query path.

A library of the Sonic Pi samples is scanned into a temporary catalog and index (real
SQLite, real hnswlib). Queries are library files through a synthetic room
(``bench/damage.py``, RT60 0.4 s). For each query, timed separately on one thread:
``embed_query`` (blocking + encoder), ``search`` (reported as "rank_files") without the re-ranker (index search +
catalog rows), and the re-ranking of the best 10 files, cold (every candidate's block
decoded from its file) and warm (the candidates' blocks cached with what they give alone,
as for a sound that keeps sounding during live play, or files a hit's early answer
prepared), with the warm one's stages; warm again without the coherence term (``models.coherence``)
and with the network alone (no room fit, ``models.room_fit``, either), so each term's
share shows. Also the re-identification rate with and without re-ranking.

    .venv/bin/python bench/rerank_speed.py [--queries 60]

Writes bench/results/rerank_speed.json and prints a table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.decode import read_mono  # noqa: E402
from app.library import Library  # noqa: E402
from app.query import embed_query, search  # noqa: E402
from app.rerank import FileReranker, candidate_keys  # noqa: E402
from app.scanner import Scanner  # noqa: E402
from models import room_fit  # noqa: E402
from models.reranker import Reranker  # noqa: E402
from bench import damage  # noqa: E402
from models.encoder import MODEL_SAMPLE_RATE as SR  # noqa: E402

SONIC_PI = Path("/usr/share/sonic-pi/samples")
OUT = ROOT / "bench" / "results" / "rerank_speed.json"


def summary(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.median(a)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2),
            "mean_ms": round(float(a.mean()), 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-split", dest="split", action="store_false",
                        help="the whole network per pair, as an in-process search runs it")
    args = parser.parse_args(argv)
    if not SONIC_PI.is_dir():
        raise SystemExit(f"{SONIC_PI} is missing: apt-get install sonic-pi-samples")
    with tempfile.TemporaryDirectory() as tmp, Library(Path(tmp) / "lib") as library:
        t0 = time.perf_counter()
        report = Scanner(library, workers=2).scan([str(SONIC_PI)])
        scan_s = time.perf_counter() - t0
        shipped = reranker = FileReranker.for_encoder(library.encoder)
        if shipped is None:
            raise SystemExit("the shipped re-ranker does not belong to the shipped encoder")
        if args.split:
            # as the live matcher's re-ranking process runs it (app/rerank_worker.py)
            shipped = reranker = FileReranker(Reranker(shipped.reranker.model_path, split=True),
                                              library.encoder, k=shipped.k)
            room_fit.warm_up()          # that process's room fit is the compiled one
        files = sorted(SONIC_PI.glob("*.flac"))
        rng = np.random.default_rng(0)
        picks = [files[i] for i in rng.choice(len(files), size=min(args.queries, len(files)), replace=False)]
        times = {"embed_query": [], "rank_files": [], "rerank_cold": [], "rerank_warm": [],
                 "warm_no_coherence": [], "warm_network_only": []}
        model = reranker.reranker
        weights = {"room_fit_weight": model.room_fit_weight, "coherence_weight": model.coherence_weight}
        hits = {"index": 0, "reranked": 0}
        stage_ms: dict[str, list[float]] = {}     # a warm re-ranking's stages
        index, catalog = library.index, library.catalog
        for n, path in enumerate(picks):
            audio = damage.room_reverb(read_mono(path, SR), damage.condition_rng(0, "room_reverb", n))
            t0 = time.perf_counter()
            query = embed_query(library.encoder, audio)
            times["embed_query"].append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            plain = search(index, catalog, query, reranker.k)
            times["rank_files"].append((time.perf_counter() - t0) * 1e3)
            reranker = FileReranker(model, library.encoder, k=shipped.k)  # cold: an empty block cache
            t0 = time.perf_counter()
            reranked = reranker.rerank(plain, query.blocks, query.vectors, query.signals)
            times["rerank_cold"].append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            reranker.rerank(plain, query.blocks, query.vectors, query.signals)
            times["rerank_warm"].append((time.perf_counter() - t0) * 1e3)
            stages: dict = {}
            reranker.order(candidate_keys(plain[:reranker.k]), query.blocks, query.vectors, query.signals,
                           timings=stages)
            for stage, ms in stages.items():
                stage_ms.setdefault(stage, []).append(ms)
            model.coherence_weight = 0.0
            t0 = time.perf_counter()
            reranker.rerank(plain, query.blocks, query.vectors, query.signals)
            times["warm_no_coherence"].append((time.perf_counter() - t0) * 1e3)
            model.room_fit_weight = 0.0
            t0 = time.perf_counter()
            reranker.rerank(plain, query.blocks, query.vectors, query.signals)
            times["warm_network_only"].append((time.perf_counter() - t0) * 1e3)
            model.room_fit_weight, model.coherence_weight = weights["room_fit_weight"], weights["coherence_weight"]
            hits["index"] += bool(plain) and Path(plain[0].file.path).name == path.name
            hits["reranked"] += bool(reranked) and Path(reranked[0].file.path).name == path.name
    result = {
        "benchmark": "rerank_speed",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "library": {"root": str(SONIC_PI), "indexed": report.indexed, "scan_s": round(scan_s, 1)},
        "reranker": model.model_id, **weights, "network_cut": model.splits,
        "encoder": library.encoder.model_id,
        "rerank_k": reranker.k, "queries": len(picks), "damage": damage.DESCRIPTIONS["room_reverb"],
        "ms": {name: summary(v) for name, v in times.items()},
        "warm_stages_ms": {name: summary(v) for name, v in stage_ms.items()},
        "top1": {name: round(v / len(picks), 3) for name, v in hits.items()},
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "load_average_at_start": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"{'step':<20}{'p50 ms':>10}{'p95 ms':>10}")
    for name, s in result["ms"].items():
        print(f"{name:<20}{s['p50_ms']:>10.2f}{s['p95_ms']:>10.2f}")
    print("warm re-ranking by stage (p50 ms): " + ", ".join(
        f"{name} {s['p50_ms']:.2f}" for name, s in result["warm_stages_ms"].items()))
    print(f"top-1 under a room: index {result['top1']['index']:.3f}, re-ranked {result['top1']['reranked']:.3f} "
          f"({len(picks)} queries, {report.indexed} files)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
