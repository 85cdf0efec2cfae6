"""Watched folders and moved drives: how soon a change is in the catalog, and what a
relink of a big folder costs.

Pick-up latency: a library of ``--files`` Sonic Pi samples in a temp dir is scanned, then
the app's ``FolderWatcher`` (real inotify through watchdog) watches it while, ``--rounds``
times, a new sample is copied in, renamed and deleted; each is timed from the file
operation to the moment a reader of the catalog sees it (polled every 5 ms).

Relink: a catalog holding ``--rows`` file rows under one library folder (rows made
directly, no audio) is relinked to a new path with ``Library.relink_folder``: one
transaction, every row keeps its id.

Run: ``nice -n 5 .venv/bin/python bench/watch.py [--files 20] [--rounds 10]
[--rows 100000] [--out bench/results/watch.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.catalog import Catalog, FileAnalysis  # noqa: E402
from app.library import Library  # noqa: E402
from app.paths import CATALOG_FILENAME  # noqa: E402
from app.scanner import Scanner  # noqa: E402
from app.watcher import FolderWatcher  # noqa: E402

SONIC_PI = Path("/usr/share/sonic-pi/samples")
RESULTS = Path(__file__).resolve().parent / "results" / "watch.json"


def until(condition, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError("never picked up")
        time.sleep(0.005)
    return time.monotonic() - started


def summary(values: list[float]) -> dict:
    values = sorted(values)
    return {"median_s": round(statistics.median(values), 3),
            "p90_s": round(values[int(0.9 * (len(values) - 1))], 3),
            "max_s": round(values[-1], 3), "n": len(values)}


def pick_up(work: Path, files: int, rounds: int) -> dict:
    samples = sorted(SONIC_PI.glob("*.flac"))
    folder, lib = work / "samples", work / "lib"
    folder.mkdir()
    for path in samples[:files]:
        shutil.copy(path, folder)
    with Library(lib) as library:
        Scanner(library, workers=1).scan([str(folder)])
    catalog = Catalog(lib / CATALOG_FILENAME)
    catalog.set_read_only()
    watcher = FolderWatcher(lib)
    started = time.monotonic()
    watcher.start()
    watcher.ready.wait(60)
    ready_s = time.monotonic() - started
    times = {"copied_in": [], "renamed": [], "deleted": []}
    try:
        for i, source in enumerate(samples[files:files + rounds]):
            new, renamed = folder / f"new-{i}{source.suffix}", folder / f"renamed-{i}{source.suffix}"
            shutil.copy(source, new)
            times["copied_in"].append(until(lambda: catalog.file_by_path(str(new)) is not None))
            os.rename(new, renamed)
            times["renamed"].append(until(lambda: catalog.file_by_path(str(renamed)) is not None))
            os.remove(renamed)
            times["deleted"].append(until(lambda: catalog.file_by_path(str(renamed)) is None))
    finally:
        watcher.stop()
        catalog.close()
    return {"watcher_ready_s": round(ready_s, 3), "files": files,
            **{what: summary(values) for what, values in times.items()}}


def relink(work: Path, rows: int) -> dict:
    lib, old, new = work / "relink-lib", work / "old-drive", work / "new-drive"
    old.mkdir()
    new.mkdir()
    with Library(lib) as library:
        catalog = library.catalog
        catalog.add_root(str(old))
        with catalog.transaction():
            for i in range(rows):
                catalog.store(FileAnalysis(path=f"{old}/kit-{i // 100}/hit-{i}.wav", size=i,
                                           mtime_ns=i, content_hash=f"{i:032x}",
                                           status="skipped", error_code="no_audio"))
        started = time.monotonic()
        moved = library.relink_folder(old, new)
        seconds = time.monotonic() - started
    return {"rows": moved, "seconds": round(seconds, 3), "rows_per_s": round(moved / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="samplescout-watch-") as tmp:
        work = Path(tmp)
        result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                              "load_1min": round(os.getloadavg()[0], 2)},
                  "pick_up": pick_up(work, args.files, args.rounds),
                  "relink": relink(work, args.rows)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'change':<12} {'median s':>9} {'p90 s':>7} {'max s':>7}")
    for what in ("copied_in", "renamed", "deleted"):
        s = result["pick_up"][what]
        print(f"{what:<12} {s['median_s']:>9.3f} {s['p90_s']:>7.3f} {s['max_s']:>7.3f}")
    r = result["relink"]
    print(f"relink of {r['rows']:,} rows: {r['seconds']:.2f} s ({r['rows_per_s']:,} rows/s)")
    print(f"(watcher ready in {result['pick_up']['watcher_ready_s']:.2f} s; "
          f"load {result['machine']['load_1min']}) -> {args.out}")


if __name__ == "__main__":
    main()
