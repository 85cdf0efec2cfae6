"""What the sound analysis (tags, kind, tempo, key, root, loudness) adds to a cold scan:
``bench/indexing.py`` of an older tree (``--base``, e.g. an export of the commit before
it) against this tree's, alternated, on the Debian sample folders. CPU seconds (user+sys
of the scan and its workers) are the figure that holds on a shared machine; wall seconds
are reported too. Writes bench/results/scan_cost.json.

    git archive <commit> | tar -x -C /tmp/base
    .venv/bin/python bench/scan_cost.py --base /tmp/base [--runs 2] [--workers 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
RESULTS = HERE / "bench" / "results" / "scan_cost.json"


def run(tree: Path, workers: int) -> tuple[float, float, float]:
    """(cpu s, wall s, the scan's own cold seconds) of one indexing benchmark run in ``tree``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = tree / "bench" / "results" / "indexing.json"
    saved = out.read_bytes() if out.exists() else None
    try:
        subprocess.run([sys.executable, "bench/indexing.py", "--workers", str(workers)],
                       cwd=tree, check=True, capture_output=True)
        cold = json.loads(out.read_text())["cold"]["seconds"]
    finally:
        if saved is not None:
            out.write_bytes(saved)     # the committed figure stays as it was
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, cold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON report (default {RESULTS})")
    args = parser.parse_args()
    figures: dict[str, list] = {"base": [], "this": []}
    for _ in range(args.runs):
        for name, tree in (("base", args.base), ("this", HERE)):
            figures[name].append(run(tree, args.workers))
            print(name, [round(v, 2) for v in figures[name][-1]], flush=True)
    cpu = {k: statistics.mean(r[0] for r in v) for k, v in figures.items()}
    cold = {k: statistics.median(r[2] for r in v) for k, v in figures.items()}
    result = {
        "runs": {k: [{"cpu_s": round(c, 2), "wall_s": round(w, 2), "cold_scan_s": s}
                     for c, w, s in v] for k, v in figures.items()},
        "cpu_ratio": round(cpu["this"] / cpu["base"], 3),
        "cold_scan_wall_ratio_median": round(cold["this"] / cold["base"], 3),
        "workers": args.workers, "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg()[0],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"CPU ratio {result['cpu_ratio']}, cold-scan wall ratio {result['cold_scan_wall_ratio_median']}")


if __name__ == "__main__":
    main()
