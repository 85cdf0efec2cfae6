"""Matched preview: click to first sound, cold and warm, and render speed.

The real engine runs on a JACK dummy server (48 kHz, 64-frame periods, stereo out); each
"click" is ``MatchedAuditions.play`` (what the window's preview thread runs). Two moments
are stamped on the monotonic clock after the click:

* handed: ``play`` returned (the first block is in the engine's sample and the play command
  is queued);
* output: the engine's playhead for the voice is past 0 (the audio callback mixed the voice
  into the output buffer).

Sources are real Debian audio: Sonic Pi's ``loop_amen_full`` (4 bars at 140 BPM) cut to 1
and 2 bars and doubled to 8 bars, matched to 128 BPM; LMMS's latin_guitar03 (a tonal loop,
stretched and shifted); its piano01 and cello01 one-shots shifted to the key of E. Cold: a fresh copy of the file (never decoded) and an empty render
cache; warm-disk: the render is in the disk cache but not loaded in the engine; warm: it was
played before (loaded). Also the whole render's time per second of output, and the blocks
that finished after the playhead reached them (a gap heard). Render speed is seconds of
work per second of output, for previews (Rubber Band R2) and files (R3).

    nice -n 5 .venv/bin/python bench/matched_preview.py [--repeats 5]

Writes bench/results/matched_preview.json and prints a table. Goal: first sound < 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.matched_audition import MatchedAuditions  # noqa: E402
from app.matched_preview import (MatchedCache, SourceInfo, Target, detect_source, plan_match,  # noqa: E402
                                 render)
from bench.harness.jack_server import JackServer  # noqa: E402

SONIC_PI = Path("/usr/share/sonic-pi/samples")
LMMS = Path("/usr/share/lmms/samples")
GOAL_MS = 100.0
TARGET = Target(bpm=128.0, key="E")


def sources(work: Path) -> list[tuple[str, Path, SourceInfo]]:
    """(label, file, analysis) of the benchmark's sounds, written under ``work``."""
    amen = SONIC_PI / "loop_amen_full.flac"
    audio, rate = sf.read(amen, dtype="float32", always_2d=True)
    info = detect_source(amen)
    bar = audio.shape[0] // 4
    out = []
    for bars, part in ((1, audio[:bar]), (2, audio[:2 * bar]), (4, audio),
                       (8, np.concatenate([audio, audio]))):
        path = work / f"amen_{bars}bar.wav"
        sf.write(path, part, rate, subtype="PCM_16")
        out.append((f"loop {bars} bar{'s' if bars > 1 else ''}", path, info))
    guitar = LMMS / "latin" / "latin_guitar03.ogg"     # a tonal loop: 119 BPM, A minor
    out.append(("tonal loop latin_guitar03", guitar, detect_source(guitar)))
    for name in ("piano01", "cello01"):
        path = LMMS / "instruments" / f"{name}.ogg"
        out.append((f"one-shot {name}", path, detect_source(path)))
    return out


def wait_output(engine, voice: int, timeout: float = 2.0) -> float | None:
    """Monotonic time when the voice's playhead first moved, None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.playheads().get(voice, 0) > 0:
            return time.monotonic()
        time.sleep(0.0002)
    return None


def click(auditions, engine, path: Path, source: SourceInfo) -> dict:
    engine.stop_all()
    t0 = time.monotonic()
    started = auditions.play(str(path), TARGET, source)
    handed = time.monotonic()
    heard = wait_output(engine, started.voice)
    return {"how": started.how, "handed_ms": 1000 * (handed - t0),
            "output_ms": None if heard is None else 1000 * (heard - t0)}


def summary(values: list[float]) -> dict:
    v = np.array([x for x in values if x is not None], float)
    if v.size == 0:
        return {"median": None, "p90": None, "max": None, "n": 0}
    return {"median": round(float(np.median(v)), 2), "p90": round(float(np.percentile(v, 90)), 2),
            "max": round(float(v.max()), 2), "n": int(v.size)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "matched_preview.json")
    args = parser.parse_args()
    from engine.stream import AudioEngine, StreamConfig

    work = Path(tempfile.mkdtemp(prefix="matched-bench-"))
    server = JackServer().start()
    engine = AudioEngine(StreamConfig(hostapi="JACK", input_channels=1, output_channels=2,
                                      block_size=64))
    results = {"target": {"bpm": TARGET.bpm, "key": TARGET.key}, "repeats": args.repeats,
               "machine": platform.machine(), "cpus": os.cpu_count(), "goal_ms": GOAL_MS,
               "sounds": {}}
    try:
        engine.start()
        if not engine.wait_running(20):
            raise SystemExit(f"engine did not start: {engine.status().message}")
        for label, path, source in sources(work):
            plan = plan_match(source, TARGET)
            rows = {"cold": [], "warm_disk": [], "warm": []}
            late = 0
            for i in range(args.repeats):
                copy = work / f"{i}_{label.replace(' ', '_')}{path.suffix}"
                shutil.copyfile(path, copy)           # never decoded: a cold click
                cache = MatchedCache(work / f"cache_{label.replace(' ', '_')}_{i}")
                auditions = MatchedAuditions(engine, cache=cache)
                rows["cold"].append(click(auditions, engine, copy, source))
                auditions.wait_idle(60)
                late += auditions.late_blocks
                auditions.close()
                fresh = MatchedAuditions(engine, cache=cache)     # on disk, not loaded
                rows["warm_disk"].append(click(fresh, engine, copy, source))
                rows["warm"].append(click(fresh, engine, copy, source))
                fresh.close()
            audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
            t = time.perf_counter()
            out = render(audio, file_rate, plan)                        # files: R3
            render_s = time.perf_counter() - t
            t = time.perf_counter()
            render(audio, file_rate, plan, high_quality=False)          # previews: R2
            render_fast_s = time.perf_counter() - t
            entry = {"seconds": round(audio.shape[0] / file_rate, 3),
                     "plan": {"stretch": round(plan.stretch, 4), "semitones": plan.semitones,
                              "kept": plan.reason},
                     "render_s_per_s": round(render_s / (out.shape[0] / file_rate), 4),
                     "render_fast_s_per_s": round(render_fast_s / (out.shape[0] / file_rate), 4),
                     "late_blocks": late,
                     "how": {k: sorted({r["how"] for r in v}) for k, v in rows.items()}}
            for k, v in rows.items():
                entry[k] = {"handed_ms": summary([r["handed_ms"] for r in v]),
                            "output_ms": summary([r["output_ms"] for r in v])}
            results["sounds"][label] = entry
    finally:
        engine.close()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    results["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    head = (f"{'sound':26} {'s':>5} {'cold hand':>9} {'cold out':>9} {'disk out':>9} "
            f"{'warm out':>9} {'R2 /s':>7} {'R3 /s':>7} {'late':>5}")
    print(head)
    print("-" * len(head))
    for label, e in results["sounds"].items():
        print(f"{label:26} {e['seconds']:5.2f} {e['cold']['handed_ms']['median']:9.1f} "
              f"{e['cold']['output_ms']['median']:9.1f} {e['warm_disk']['output_ms']['median']:9.1f} "
              f"{e['warm']['output_ms']['median']:9.1f} {e['render_fast_s_per_s']:7.3f} "
              f"{e['render_s_per_s']:7.3f} {e['late_blocks']:5d}")
    print(f"(medians in ms of {args.repeats} clicks; goal: first sound < {GOAL_MS:.0f} ms; "
          f"load average {results['load_average_at_end'][0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
