"""How long ``samplescout duplicates`` takes on a real library, and what that says for
100,000 files.

The library is ``bench/detect.py``'s: every Sonic Pi sample, every Hydrogen kit and the
LMMS samples (about 1,430 real Debian files, scanned once into ``--library-dir``). Each run
checks a fresh copy of it from scratch (every file new), with one worker (the calling
thread) and with the cores' worth of worker processes, and reports candidate pairs, pairs
found, seconds and milliseconds per file. The 100,000-file figure is a projection: this
library's seconds per file times 100,000 (a denser library has more candidates per file, up
to ``app.duplicates.CANDIDATES_PER_FILE``, and takes longer).

    nice -n 10 .venv/bin/python bench/duplicates_speed.py [--library-dir /tmp/detect-bench-lib]
        [--workers 1 2] [--out bench/results/duplicates_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import duplicates  # noqa: E402
from app.library import Library  # noqa: E402
from bench.detect import open_library  # noqa: E402

PROJECTED_FILES = 100_000


def one_run(library_dir: Path, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="samplescout-dupspeed-") as tmp:
        copy = Path(tmp) / "lib"
        shutil.copytree(library_dir, copy, ignore=shutil.ignore_patterns("writer.lock"))
        with Library(copy) as library:
            report = duplicates.update(library, workers=workers)
            groups = duplicates.groups(library)
    per_file = report.elapsed_s / max(1, report.checked)
    return {"workers": workers, "checked": report.checked, "candidates": report.candidates,
            "pairs": report.pairs, "groups": len(groups), "seconds": round(report.elapsed_s, 1),
            "ms_per_file": round(1e3 * per_file, 1),
            "projected_minutes_100k": round(per_file * PROJECTED_FILES / 60.0, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library-dir", default=os.path.join(tempfile.gettempdir(), "detect-bench-lib"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default="bench/results/duplicates_speed.json")
    args = parser.parse_args()
    library_dir = Path(args.library_dir)
    open_library(library_dir).close()          # scans the Debian folders the first time
    runs = [one_run(library_dir, w) for w in args.workers]
    result = {"library_dir": str(library_dir), "cpus": os.cpu_count(), "machine": platform.machine(),
              "load_average": os.getloadavg()[0], "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'workers':>7} {'files':>6} {'pairs tried':>11} {'found':>6} {'groups':>6} "
          f"{'seconds':>8} {'ms/file':>8} {'100k (min)':>10}")
    for r in runs:
        print(f"{r['workers']:7d} {r['checked']:6d} {r['candidates']:11d} {r['pairs']:6d} {r['groups']:6d} "
              f"{r['seconds']:8.1f} {r['ms_per_file']:8.1f} {r['projected_minutes_100k']:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
