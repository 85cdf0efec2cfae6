"""How long ``samplescout detect`` takes for a 3-minute track against a large library.

The track is ``bench/detect.py``'s long track (six loops and six one-shots of the Debian
library, each at ±1–2 semitones or 0.9/1.1 speed, 6 dB under four LMMS parts). It is
detected against ``bench/detect.py``'s library of about 1,430 Debian files and against
``bench/million_library.py``'s library of ``--files`` files (built there once; its packs
hard-link the Debian files under new names, so every candidate the screen and the fit
read is real audio), one after the other in the same run, with the stage times of each.

Timing only: in the large library each Debian sound is present hundreds of times under
other names with slightly moved vectors, so the hit rates against it say nothing about a
real library (they are left out).

    nice -n 10 .venv/bin/python bench/detect_scale.py [--cache /tmp/million-cache]
        [--files 1000000] [--seed 0] [--out bench/results/detect_scale.json]
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
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import detect  # noqa: E402
from app.library import Library  # noqa: E402
from bench.detect import LONG_TRACK_SECONDS, RATE, build_track, open_library, pools  # noqa: E402
from bench.harness.memory import process_memory_kb  # noqa: E402

TARGET_S = 20.0


def timed_detect(library: Library, track: Path) -> dict:
    trace = detect.DetectTrace()
    began = time.monotonic()
    found = detect.detect(library, track, limit=10, trace=trace)
    seconds = time.monotonic() - began
    return {"files": len(library.index.file_ids()), "vectors": len(library.index),
            "seconds": round(seconds, 2), "stages": dict(trace.seconds),
            "detections": len(found), "vm_hwm_gb_after": round(process_memory_kb()["VmHWM"] / 1024**2, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "million-cache")
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--library-dir", default=os.path.join(tempfile.gettempdir(), "detect-bench-lib"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/detect_scale.json")
    args = parser.parse_args()
    large_dir = args.cache / f"lib-{args.files}"
    if not (large_dir / "catalog.sqlite3").exists():
        print(f"no library of {args.files} files in {args.cache}: build it with "
              f"bench/million_library.py --cache {args.cache} --files {args.files}")
        return 2
    rng = np.random.default_rng(args.seed)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="samplescout-detect-scale-") as tmp:
        track = Path(tmp) / "long.wav"
        with open_library(Path(args.library_dir)) as small:
            loops, shots = pools(small)
            audio, placed = build_track(LONG_TRACK_SECONDS, loops, shots, rng, 6, 6)
            sf.write(track, audio, RATE, subtype="PCM_16")
            runs["debian"] = timed_detect(small, track)
        print(f"Debian library: {runs['debian']['seconds']:.1f} s", flush=True)
        began = time.monotonic()
        with Library(large_dir) as large:
            opened_s = time.monotonic() - began
            runs["large"] = timed_detect(large, track)
            runs["large"]["library_open_s"] = round(opened_s, 2)
        print(f"{args.files} files: {runs['large']['seconds']:.1f} s", flush=True)
    result = {"bench": "detect_scale", "args": {k: str(v) for k, v in vars(args).items()},
              "track_seconds": LONG_TRACK_SECONDS, "placed": len(placed),
              "cpus": os.cpu_count(), "machine": platform.machine(),
              "load_average": os.getloadavg(), "target_s": TARGET_S, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    stages = sorted({s for r in runs.values() for s in r["stages"]},
                    key=lambda s: list(runs["large"]["stages"]).index(s) if s in runs["large"]["stages"] else 99)
    print(f"{'library':>10} {'files':>9} {'vectors':>9} {'seconds':>8}  " + " ".join(f"{s:>12}" for s in stages))
    for name, r in runs.items():
        print(f"{name:>10} {r['files']:9d} {r['vectors']:9d} {r['seconds']:8.1f}  "
              + " ".join(f"{r['stages'].get(s, 0.0):12.2f}" for s in stages))
    print(f"target: a 3-minute track in {TARGET_S:.0f} s or less "
          f"({'met' if runs['large']['seconds'] <= TARGET_S else 'not met'} at {args.files} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
