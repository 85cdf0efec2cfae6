"""Search by example in the window: from the drop to the answer on screen, with the kind
order (``app.similar_kind``, shipped) and without it, in one run.

The real ``MainWindow`` (offscreen platform) over a library-only ``SessionHost`` holding
every Sonic Pi sample; each query is a library file dropped on the window
(``MainWindow.dropEvent``). Timed on the GUI thread from the drop to the window applying
the index's first answer ("index") and the final, re-ranked (and kind-ordered) list
("final"); the repaint follows in the same turn of the event loop. The first drop, which
loads the tag head, the re-ranker and the room fit, is timed apart. The queries alternate
between the two settings (the closeness order is the shipped code with ``by_kind=False``
passed to ``Library.search_file``), so a loaded machine slows both alike.

    .venv/bin/python bench/similar_latency.py [--queries 40]

Writes bench/results/similar_latency.json and prints a table.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PyQt6.QtGui import QDropEvent  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from bench.ui_latency import make_window, run_for  # noqa: E402

SONIC_PI = Path("/usr/share/sonic-pi/samples")
RESULTS = REPO / "bench" / "results" / "similar_latency.json"


def drop(win, path: str) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    win.dropEvent(QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime,
                             Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from app.library import Library
    from app.scanner import Scanner
    from ui.host import AudioSettings
    from ui.session_host import SessionHost

    app = QApplication.instance() or QApplication([])
    sources = sorted(SONIC_PI.glob("*.flac"))
    with tempfile.TemporaryDirectory(prefix="similar-latency-") as tmp:
        library_dir = Path(tmp) / "library"
        with Library(library_dir) as library:
            Scanner(library, workers=2).scan([str(SONIC_PI)])
        host = SessionHost(library_dir, AudioSettings(), live=False)
        win = make_window(host, Path(tmp) / "config")
        seen: list[tuple[str, float]] = []
        host.suggestions.connect(lambda update: seen.append((update.stage, time.perf_counter())))
        closest_only = functools.partialmethod(Library.search_file, by_kind=False)
        shipped = Library.search_file
        times: dict[str, dict[str, list[float]]] = {"kind": {"index": [], "final": []},
                                                   "closest": {"index": [], "final": []}}
        step = max(1, len(sources) // args.queries)
        picked = sources[::step][:args.queries]
        first_drop: dict[str, float] = {}
        try:
            started = time.perf_counter()
            drop(win, str(picked[0]))          # the tag head, the re-ranker and caches load
            run_for(app, 30.0, until=lambda: any(s == "final" for s, _ in seen))
            first_drop = {stage: round((at - started) * 1e3, 1) for stage, at in seen}
            for n, path in enumerate(picked):
                for setting in (("kind", "closest") if n % 2 else ("closest", "kind")):
                    Library.search_file = shipped if setting == "kind" else closest_only
                    seen.clear()
                    started = time.perf_counter()
                    drop(win, str(path))
                    run_for(app, 30.0, until=lambda: any(s == "final" for s, _ in seen))
                    for stage, at in seen:
                        times[setting][stage].append((at - started) * 1e3)
        finally:
            Library.search_file = shipped
            win.close()
            host.close()
    out = {"bench": "similar_latency", "queries": len(picked), "library_files": len(sources),
           "cpus": os.cpu_count(), "load_average": list(os.getloadavg()),
           "ms": {setting: {stage: {"n": len(v), "p50": round(float(np.percentile(v, 50)), 1),
                                    "p95": round(float(np.percentile(v, 95)), 1)}
                            for stage, v in stages.items() if v}
                  for setting, stages in times.items()},
           # the window's first search by example, which loads what searching needs
           "first_drop_ms": first_drop,
           "command": " ".join(["bench/similar_latency.py"] + sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"first drop: {first_drop}")
    print(f"{'order':<10}{'stage':<8}{'n':>4}{'p50 ms':>9}{'p95 ms':>9}")
    for setting, stages in out["ms"].items():
        for stage, row in stages.items():
            print(f"{setting:<10}{stage:<8}{row['n']:>4}{row['p50']:>9}{row['p95']:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
