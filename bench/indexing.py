"""Scan speed on Debian's sample packages: cold scan files/s and MB/s, and the
time of a re-scan with nothing changed. Writes bench/results/indexing.json.

    .venv/bin/python bench/indexing.py [--workers N] [FOLDER ...]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.library import Library  # noqa: E402
from app.scanner import Scanner  # noqa: E402

DEBIAN_SETS = ["/usr/share/hydrogen/data/drumkits", "/usr/share/sonic-pi/samples",
               "/usr/share/lmms/samples"]
RESULTS = Path(__file__).resolve().parent / "results" / "indexing.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folders", nargs="*", default=DEBIAN_SETS)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    folders = [f for f in args.folders if os.path.isdir(f)]
    with tempfile.TemporaryDirectory(prefix="samplescout-bench-") as library_dir:
        with Library(library_dir) as library:
            cold = Scanner(library, workers=args.workers).scan(folders)
            started = time.perf_counter()
            warm = Scanner(library, workers=args.workers).scan(folders)
            rescan_s = time.perf_counter() - started
            stats = library.catalog.stats()
    result = {
        "folders": folders,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "cold": {
            "files_found": cold.seen, "files_analysed": cold.files_analysed,
            "indexed": cold.indexed, "skipped": dict(cold.skipped),
            "seconds": round(cold.elapsed_s, 2), "files_per_s": round(cold.files_per_s, 1),
            "mb_per_s": round(cold.mb_per_s, 2), "mb": round(cold.bytes_analysed / 1e6, 1),
        },
        "unchanged_rescan": {"seconds": round(rescan_s, 3), "unchanged": warm.unchanged,
                             "analysed": warm.files_analysed},
        "library": {k: stats[k] for k in ("indexed", "skipped", "one_shots", "loops")},
        "vectors": stats["vectors_by_model"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'measure':<32}{'value':>14}")
    rows = [("files found", cold.seen), ("indexed / skipped", f"{cold.indexed} / {sum(cold.skipped.values())}"),
            ("cold scan (s)", f"{cold.elapsed_s:.1f}"), ("cold files/s", f"{cold.files_per_s:.1f}"),
            ("cold MB/s", f"{cold.mb_per_s:.2f}"), ("unchanged re-scan (s)", f"{rescan_s:.2f}")]
    for name, value in rows:
        print(f"{name:<32}{value!s:>14}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
