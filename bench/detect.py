"""``samplescout detect`` on tracks rendered here from real Debian samples: how many of the
placed library samples are found, where, how fast, and at which stage the lost ones are lost.

Library (scanned in place by the app's own scanner; kept in ``--library-dir`` between
runs): every Sonic Pi sample (``sonic-pi-samples``), every Hydrogen kit
(``hydrogen-drumkits``) and every LMMS sample but the beats and bass loops the background
is made of (``lmms-common``): about 1,400 files. Placed one-shots come from Sonic Pi and the
Hydrogen kits of ``KITS`` (one recording per instrument, so a placed one-shot has no
gain-changed velocity layer in the library that no detector could tell from it).

Tracks (``--tracks``, 30 s each, seeded): four background parts from LMMS (``lmms-common``
beats and bass loops, not in the library) at equal power, and over them ``LOOPS`` library
loops (Sonic Pi ``loop_*``, 1-8.5 s) and ``ONESHOTS`` library one-shots (at most 1.5 s), each
played at a speed of ``SPEEDS`` (±1 or ±2 semitones, 0.9 or 1.1 tempo; resampled, as a
sampler plays it) and mixed 6 dB under the background (mean power over the loop, over the
first 0.5 s of a one-shot). A placed sample is *hit* when its file is among the first 10
detections and *placed* when one of that detection's occurrences starts within 0.5 s.

Loss breakdown (when ``app.detect`` fills a ``DetectTrace``): a missed sample was *never
hit* (no block of the track found the file among its nearest), *dropped by aggregation*
(hit, but not among the candidates the screen reads), *dropped by the screen* (not among
the files given the full waveform fit), or *dropped by the fit* (fitted, but not in the
first 10).

``--long-track``: also times one 3-minute track built the same way.

Reserved packages (freepats, timgm6mb-soundfont, warzone2100-data,
sound-theme-freedesktop, neverball-*, musescore-general-soundfont) are not read.

    nice -n 10 .venv/bin/python bench/detect.py [--tracks 12] [--seed 0] [--long-track]
        [--library-dir /tmp/detect-bench-lib] [--out bench/results/detect.json]
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
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import detect  # noqa: E402
from app.library import Library  # noqa: E402
from app.scanner import Scanner  # noqa: E402

SONIC_PI = Path("/usr/share/sonic-pi/samples")
HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
LMMS = Path("/usr/share/lmms/samples")
KITS = ["ElectricEmpireKit", "HardElectro1", "circAfrique v4", "Millo-Drums_v.1", "Audiophob",
        "ColomboAcousticDrumkit"]
SPEEDS = {"+1st": 2 ** (1 / 12), "-1st": 2 ** (-1 / 12), "+2st": 2 ** (2 / 12),
          "-2st": 2 ** (-2 / 12), "x0.9": 0.9, "x1.1": 1.1}
RATE = 44100
TRACK_SECONDS = 30.0
LONG_TRACK_SECONDS = 180.0
LOOPS = 2
ONESHOTS = 2
UNDER_DB = 6.0
BACKGROUND_RMS = 0.05       # each of the four background parts
BACKGROUND = ("beats", "bassloops")   # LMMS folders the background is drawn from
STAGES = ("never_hit", "dropped_by_aggregation", "dropped_by_screen", "dropped_by_fit")


def open_library(library_dir: Path) -> Library:
    library = Library(library_dir)
    if len(library.index) == 0:
        folders = [str(SONIC_PI), str(HYDROGEN)] + [
            str(p) for p in sorted(LMMS.iterdir()) if p.is_dir() and p.name not in BACKGROUND]
        began = time.monotonic()
        Scanner(library, workers=2).scan(folders)
        print(f"scanned {len(library.index)} vectors in {time.monotonic() - began:.0f} s")
    return library


def pools(library: Library) -> tuple[list[str], list[str]]:
    paths = sorted(os.fspath(p) for p in SONIC_PI.glob("*.flac")) + sorted(
        os.fspath(p) for k in KITS for p in (HYDROGEN / k).iterdir()
        if p.suffix.lower() in (".wav", ".flac"))
    indexed = {row.path for row in library.catalog.files_by_id(library.index.file_ids()).values()}
    paths = [p for p in paths if p in indexed]
    durations = {p: sf.info(p).duration for p in paths}
    loops = [p for p in paths if Path(p).name.startswith("loop_") and 1.0 <= durations[p] <= 8.5]
    shots = [p for p in paths if 0.05 <= durations[p] <= 1.5 and not Path(p).name.startswith("loop_")]
    return loops, shots


def _mono(path: str) -> np.ndarray:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(data.mean(axis=1), rate, RATE) if rate != RATE else data.mean(axis=1)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-9


def build_track(seconds: float, loops: list[str], shots: list[str], rng,
                n_loops: int, n_shots: int) -> tuple[np.ndarray, list[tuple[str, str, float, float]]]:
    """(track audio at RATE, [(kind, path, start_s, speed)])."""
    background = sorted(os.fspath(p) for p in LMMS.rglob("*.ogg")
                        if p.parent.name in BACKGROUND)
    track = np.zeros(int(seconds * RATE), np.float32)
    for b in rng.choice(len(background), 4, replace=False):
        part = _mono(background[b])
        part = np.tile(part, int(np.ceil(track.size / max(1, part.size))))[:track.size]
        track += part / _rms(part) * BACKGROUND_RMS
    placed = []
    slots = np.linspace(0.5, seconds - 9.0, n_loops + n_shots)
    rng.shuffle(slots)
    chosen = [("loop", str(p)) for p in rng.choice(loops, n_loops, replace=False)] + \
             [("one-shot", str(p)) for p in rng.choice(shots, n_shots, replace=False)]
    for (kind, src), slot in zip(chosen, slots):
        speed = SPEEDS[str(rng.choice(list(SPEEDS)))]
        part = soxr.resample(_mono(src), RATE * speed, RATE)
        start = float(slot + rng.uniform(0.0, 2.0))
        level = _rms(part[:int(0.5 * RATE)] if kind == "one-shot" else part)
        at = int(start * RATE)
        seg = part[:track.size - at] * (2 * BACKGROUND_RMS * 10 ** (-UNDER_DB / 20) / level)
        track[at:at + seg.size] += seg
        placed.append((kind, src, start, speed))
    track *= 0.5 / np.max(np.abs(track))
    return track, placed


def lost_at(trace, file_id: int | None) -> str:
    if trace is None or file_id is None:
        return "unknown"
    if file_id not in trace.hit_files:
        return "never_hit"
    if file_id not in trace.screened:
        return "dropped_by_aggregation"
    if file_id not in trace.fitted:
        return "dropped_by_screen"
    return "dropped_by_fit"


def run_track(library: Library, path: Path, placed, ids: dict[str, int]
              ) -> tuple[list[dict], float, dict[str, float]]:
    trace = detect.DetectTrace() if hasattr(detect, "DetectTrace") else None
    began = time.monotonic()
    found = detect.detect(library, path, limit=10, **({"trace": trace} if trace else {}))
    elapsed = time.monotonic() - began
    rows = []
    for kind, src, start, speed in placed:
        match = [d for d in found if d.file.path == src]
        hit = bool(match)
        starts = [o.start_s for d in match for o in d.occurrences]
        at = hit and min(abs(s - start) for s in starts) <= 0.5
        row = {"kind": kind, "file": Path(src).name, "start_s": round(start, 2),
               "speed": round(speed, 4), "hit": hit, "placed": bool(at),
               "rank": next((i + 1 for i, d in enumerate(found) if d.file.path == src), None),
               "found_starts": [round(s, 2) for s in starts]}
        if not hit:
            row["lost"] = lost_at(trace, ids.get(src))
        rows.append(row)
    return rows, elapsed, dict(trace.seconds) if trace is not None else {}


def summary(rows: list[dict]) -> dict:
    out = {}
    for kind in ("loop", "one-shot"):
        mine = [r for r in rows if r["kind"] == kind]
        lost = [r.get("lost") for r in mine if not r["hit"]]
        out[kind] = {"n": len(mine),
                     "hit_rate_at_10": round(float(np.mean([r["hit"] for r in mine])), 3),
                     "start_within_0.5s": round(float(np.mean([r["placed"] for r in mine])), 3),
                     "lost": {s: lost.count(s) for s in STAGES + ("unknown",) if lost.count(s)}}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long-track", action="store_true")
    parser.add_argument("--library-dir", default=os.path.join(tempfile.gettempdir(), "detect-bench-lib"))
    parser.add_argument("--out", default="bench/results/detect.json")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows, elapsed, stage_seconds = [], [], {}
    with open_library(Path(args.library_dir)) as library, \
            tempfile.TemporaryDirectory(prefix="samplescout-detect-") as tmp:
        loops, shots = pools(library)
        ids = {row.path: fid for fid, row in library.catalog.files_by_id(library.index.file_ids()).items()}
        for t in range(args.tracks):
            audio, placed = build_track(TRACK_SECONDS, loops, shots, rng, LOOPS, ONESHOTS)
            path = Path(tmp) / f"track{t}.wav"
            sf.write(path, audio, RATE, subtype="PCM_16")
            found, seconds, stages = run_track(library, path, placed, ids)
            rows += found
            elapsed.append(seconds)
            for stage, s in stages.items():
                stage_seconds.setdefault(stage, []).append(s)
            print(f"track {t}: {seconds:.1f} s  " + "  ".join(
                f"{r['file']}@{r['start_s']}x{r['speed']:.3f}:"
                f"{'placed' if r['placed'] else 'hit' if r['hit'] else r.get('lost', 'miss')}"
                for r in found), flush=True)
        long_s, long_stages = None, {}
        if args.long_track:
            audio, placed = build_track(LONG_TRACK_SECONDS, loops, shots, rng, 6, 6)
            path = Path(tmp) / "long.wav"
            sf.write(path, audio, RATE, subtype="PCM_16")
            _, long_s, long_stages = run_track(library, path, placed, ids)
        files = len(library.index.file_ids())
    result = {"args": vars(args), "library_files": files, "loops_pool": len(loops),
              "oneshots_pool": len(shots), "cpus": os.cpu_count(),
              "load_average": os.getloadavg()[0], "machine": platform.machine(),
              **summary(rows),
              "seconds_per_30s_track": round(float(np.mean(elapsed)), 2),
              "seconds_per_3min_track": round(long_s, 2) if long_s is not None else None,
              "stage_seconds_per_30s_track": {k: round(float(np.mean(v)), 3) for k, v in stage_seconds.items()},
              "stage_seconds_3min_track": long_stages,
              "placed": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"library: {files} files; {len(loops)} loops, {len(shots)} one-shots to place")
    print(f"{'kind':10} {'n':>4} {'hit@10':>7} {'start±0.5s':>11}  lost (stage: count)")
    for kind in ("loop", "one-shot"):
        s = result[kind]
        print(f"{kind:10} {s['n']:4d} {s['hit_rate_at_10']:7.3f} {s['start_within_0.5s']:11.3f}  "
              + ", ".join(f"{k}: {v}" for k, v in s["lost"].items()))
    print(f"time per 30 s track {result['seconds_per_30s_track']:.1f} s"
          + (f"; 3-minute track {long_s:.1f} s" if long_s is not None else "")
          + f" (load {result['load_average']:.1f})")
    if stage_seconds:
        print("per 30 s track, by stage: " + ", ".join(
            f"{k} {v:.2f} s" for k, v in result["stage_seconds_per_30s_track"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
