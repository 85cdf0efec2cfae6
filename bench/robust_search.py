"""Everyday search under the damage a producer's query really has: pitched, cut short, or
heard under other music (issue "queries that survive pitch, tempo, excerpts and a mix").

Library: every Sonic Pi sample (``sonic-pi-samples``: drums, percussion, bass, ambient
pads, guitar, loops, tabla, vinyl, misc), scanned by the app's own scanner into a
temporary library. Queries go through the one query path (``Library.embed_file``'s
``embed_query`` and ``Library.search_vectors``, re-ranker included), exactly as
``samplescout search`` runs them, at each re-ranking depth of ``--depths`` (how many of
the index's best files the re-ranker reads: ``search --depth``; 10 is the default). A
query is right when its own file ranks first (R@1) or among the first ten (R@10).

Conditions (each from the file's own audio, seeded per file):
- ``pitch_up_1st`` / ``pitch_down_1st`` / ``pitch_up_2st`` / ``pitch_down_2st``: the file
  played 1 or 2 semitones higher or lower (resampled, so its length changes too, as a
  sampler does);
- ``excerpt_1s``: one second from a random place of a file longer than 2 s;
- ``under_music_8db``: the file mixed 8 dB (mean power over the file's length) below a
  stretch of other music: LMMS loops (``lmms-common``: a beat, a bass loop and a pad
  layered), which are not in the library.

The reserved evaluation packages are not read. Speech is not in the set: no Debian
sample package here holds any.

    nice -n 10 .venv/bin/python bench/robust_search.py [--depths 10,48] [--limit N] [--out ...]
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

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.decode import read_mono  # noqa: E402
from app.library import Library  # noqa: E402
from app.query import embed_query  # noqa: E402
from app.scanner import Scanner  # noqa: E402
from bench.damage import excerpt, mean_power  # noqa: E402
from models.encoder import MODEL_SAMPLE_RATE  # noqa: E402

SONIC_PI = Path("/usr/share/sonic-pi/samples")
LMMS = Path("/usr/share/lmms/samples")
BEDS = {"beats": "beats", "bass": "bassloops", "pad": "stringsnpads"}
EXCERPT_MIN_S = 2.0
UNDER_DB = 8.0
TARGETS = {"pitch_1st": 0.95, "excerpt_1s": 0.90, "under_music_8db": 0.60}


def pitched(audio: np.ndarray, semitones: float) -> np.ndarray:
    """``audio`` played ``semitones`` higher (shorter) or lower (longer), as a sampler does."""
    ratio = 2.0 ** (semitones / 12.0)
    out_rate = int(round(MODEL_SAMPLE_RATE / ratio))
    return soxr.resample(audio, MODEL_SAMPLE_RATE, out_rate, quality="HQ").astype(np.float32)


def music_bed(length: int, rng: np.random.Generator) -> np.ndarray:
    """``length`` samples of other music: a beat, a bass loop and a pad from LMMS, each
    looped to the length from a random start, at equal power."""
    bed = np.zeros(length, np.float32)
    for folder in BEDS.values():
        files = sorted((LMMS / folder).glob("*.ogg"))
        part = read_mono(files[int(rng.integers(len(files)))], MODEL_SAMPLE_RATE)
        part = np.tile(part, int(np.ceil((length + len(part)) / max(1, len(part)))))
        start = int(rng.integers(0, max(1, len(part) - length)))
        part = part[start:start + length]
        bed += part / np.sqrt(max(mean_power(part), 1e-12))
    return bed


def under_music(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    bed = music_bed(len(audio), rng)
    gain = np.sqrt(mean_power(audio) / max(mean_power(bed), 1e-12) * 10 ** (UNDER_DB / 10))
    mix = audio + gain * bed
    return (mix / max(1e-9, float(np.max(np.abs(mix)))) * 0.9).astype(np.float32)


def conditions(audio: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {"pitch_up_1st": pitched(audio, 1), "pitch_down_1st": pitched(audio, -1),
           "pitch_up_2st": pitched(audio, 2), "pitch_down_2st": pitched(audio, -2),
           "under_music_8db": under_music(audio, rng)}
    if len(audio) > EXCERPT_MIN_S * MODEL_SAMPLE_RATE:
        out["excerpt_1s"] = excerpt(audio, rng, seconds=1.0, sample_rate=MODEL_SAMPLE_RATE)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="files queried (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--depths", default="10,48", help="re-ranking depths, comma-separated")
    parser.add_argument("--by-kind", action="store_true",
                        help="answers after the first ordered by kind, as `samplescout search` "
                             "lists them (app.similar_kind); R@1 cannot change, R@10 can")
    parser.add_argument("--out", default=str(ROOT / "bench/results/robust_search.json"))
    args = parser.parse_args()
    sources = sorted(p for p in SONIC_PI.glob("*.flac"))
    depths = [int(d) for d in args.depths.split(",")]
    tally: dict[tuple[int, str], list[tuple[str, int | None]]] = {}
    search_ms: dict[int, list[float]] = {d: [] for d in depths}
    with tempfile.TemporaryDirectory(prefix="robust-search-") as tmp:
        library_dir = Path(tmp) / "library"
        folder = Path(tmp) / "samples"
        folder.mkdir()
        for src in sources:
            os.symlink(src, folder / src.name)
        t0 = time.perf_counter()
        with Library(library_dir) as library:
            report = Scanner(library, workers=2).scan([str(folder)])
            scan_s = time.perf_counter() - t0
            queried = sources[:args.limit] if args.limit else sources
            for item, src in enumerate(queried):
                path = str(folder / src.name)
                audio = read_mono(path, MODEL_SAMPLE_RATE)
                rng = np.random.default_rng([args.seed, item])
                for name, damaged in conditions(audio, rng).items():
                    started = time.perf_counter()
                    query = embed_query(library.encoder, damaged)
                    embed_ms = (time.perf_counter() - started) * 1e3
                    for depth in depths:
                        started = time.perf_counter()
                        results = (library.search_vectors(query, 10, rerank_depth=depth,
                                                          by_kind=args.by_kind)
                                   if len(query) else [])
                        # what a search costs the user: its embedding, then this depth's search
                        search_ms[depth].append(embed_ms + (time.perf_counter() - started) * 1e3)
                        paths = [r.file.path for r in results]
                        rank = paths.index(path) + 1 if path in paths else None
                        tally.setdefault((depth, name), []).append((src.name, rank))
    summary: dict[str, dict] = {}
    for (depth, name), rows in tally.items():
        ranks = [r for _, r in rows]
        summary.setdefault(f"depth_{depth}", {})[name] = {"queries": len(rows),
                         "r_at_1": round(sum(r == 1 for r in ranks) / len(rows), 4),
                         "r_at_10": round(sum(r is not None for r in ranks) / len(rows), 4),
                         "misses_at_1": [n for n, r in rows if r != 1][:40]}
    out = {"bench": "robust_search", "machine": platform.machine(), "cpus": os.cpu_count(),
           "load_avg": list(os.getloadavg()), "library_files": report.indexed,
           "skipped": sum(report.skipped.values()), "scan_s": round(scan_s, 1),
           "query_ms": {f"depth_{d}": {"p50": round(float(np.percentile(v, 50)), 1),
                                       "p95": round(float(np.percentile(v, 95)), 1)}
                        for d, v in search_ms.items()},
           "targets_r_at_1": TARGETS, "by_kind": args.by_kind, "by_depth": summary,
           "command": " ".join(["bench/robust_search.py"] + sys.argv[1:])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'depth':<8}{'condition':<18}{'n':>5}{'R@1':>8}{'R@10':>8}")
    for depth, rows in summary.items():
        for name, row in rows.items():
            print(f"{depth:<8}{name:<18}{row['queries']:>5}{row['r_at_1']:>8.3f}{row['r_at_10']:>8.3f}")
    print(f"library {report.indexed} files; query ms {out['query_ms']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
