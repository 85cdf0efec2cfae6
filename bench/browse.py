"""Keystroke-to-results latency of the library browser at 100,000 samples.

Builds a synthetic catalog (a real SQLite file through ``Catalog.store``: realistic pack,
folder and file names, name and audio tags, tempo, key, length, loudness, favourites and
a few collections; rows only, no audio) under bench/cache/, then:

* times ``app.browse.build_snapshot`` (what the window does once, and again after each
  library change);
* types each query of ``QUERIES`` one character at a time and times every keystroke's
  ``BrowseSnapshot.query`` with facets (every matching row sorted, facet counts), as the
  browser does per keystroke; also a few filter and sort changes;
* types the same in the window's browser panel (offscreen Qt, ``SessionHost`` without
  audio): query, table reset, facet lists and a full repaint per keystroke.

    nice -n 5 .venv/bin/python bench/browse.py [--files 100000] [--rounds 3]

Writes bench/results/browse.json and prints a table. Goal: p95 and max <= 50 ms per
keystroke on two cores. Each figure is wall time and, beside it, the CPU time of the
measuring thread: on a machine shared with other work the wall time grows with the load
(recorded in the JSON), the CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.browse import BrowseQuery, build_snapshot  # noqa: E402
from app.catalog import Catalog, FileAnalysis, SoundInfo, TagRow  # noqa: E402
from app.thesaurus import name_tags  # noqa: E402

GOAL_MS = 50.0
QUERIES = ("kick", "snare -rim", "hh 808", "drum loop 120", "bd", "open hat", "vocal chop",
           "pad am", "deep house bass -sub", "zzz")
ROOT = "/media/producer/Samples"

_PACK_WORDS = ("Deep", "House", "Techno", "Trap", "Lofi", "Analog", "Vintage", "Urban", "Future",
               "Garage", "Dusty", "Cinematic", "Essential", "Modular", "Tape", "Organic", "Club",
               "Neo", "Soul", "Dub", "Acid", "Jungle", "Drill", "Afro", "Latin")
_ONE_SHOTS = (("Kicks", "kick", ("Kick", "BD", "Kick Hard", "808 Kick", "Kick Sub")),
              ("Snares", "snare", ("Snare", "SD", "Snare Rim", "Rimshot", "Snare Tight")),
              ("Claps", "clap", ("Clap", "Clap Layered", "Snap")),
              ("Hats", "closed hat", ("HH Closed", "Hat", "CHH", "Hihat")),
              ("Hats", "open hat", ("OHH", "Hat Open", "Open Hat")),
              ("Cymbals", "cymbal", ("Crash", "Ride", "Cym")),
              ("Percussion", "percussion", ("Shaker", "Conga", "Perc", "Cowbell", "Tamb")),
              ("Bass", "bass", ("Bass", "Sub Bass", "Reese", "808 Bass")),
              ("Synths", "lead", ("Lead", "Pluck", "Stab", "Arp")),
              ("Keys", "pad/keys", ("Pad", "Piano Chord", "Rhodes", "Organ")),
              ("Vocals", "vocal", ("Vocal Chop", "Vox", "Shout", "Choir")),
              ("FX", "fx", ("Riser", "Impact", "Sweep", "Noise", "Downlifter")))
_LOOPS = (("Drum Loops", "drum loop", ("Drum Loop", "Beat", "Top Loop", "Break")),
          ("Bass Loops", "bass loop", ("Bass Loop", "Bassline")),
          ("Music Loops", "melodic loop", ("Synth Loop", "Chord Loop", "Piano Loop", "Guitar Loop")),
          ("Vocal Loops", "vocal loop", ("Vocal Loop", "Vox Loop")))
_KEYS = [(t, m) for t in range(12) for m in ("major", "minor")]
_NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def synthetic_rows(n: int, seed: int = 0):
    """``n`` FileAnalysis rows of a plausible producer's library."""
    rng = random.Random(seed)
    packs = sorted({f"{rng.choice(_PACK_WORDS)} {rng.choice(_PACK_WORDS)} Vol {rng.randint(1, 9)}"
                    for _ in range(400)})
    for i in range(n):
        pack = rng.choice(packs)
        initials = "".join(w[0] for w in pack.split()[:2]).upper()
        loop = rng.random() < 0.3
        folder, tag, words = rng.choice(_LOOPS if loop else _ONE_SHOTS)
        word = rng.choice(words)
        sound = SoundInfo(analysis_model="bench", loudness_db=rng.uniform(-30, -1))
        name = f"{initials} {word} {i % 997:03d}"
        if loop:
            bpm = rng.choice((85, 90, 95, 100, 110, 120, 122, 124, 126, 128, 140, 150, 170, 174))
            tonic, mode = rng.choice(_KEYS)
            key = _NOTES[tonic] + ("m" if mode == "minor" else "")
            name = f"{initials} {word} {bpm}bpm {key} {i % 97:02d}"
            sound = SoundInfo(analysis_model="bench", tempo_bpm=float(bpm), tempo_confidence=0.9,
                              key_tonic=tonic, key_mode=mode, key_label=key, key_confidence=0.8,
                              loudness_db=rng.uniform(-20, -3))
            duration = 60.0 / bpm * rng.choice((4, 8, 16))
        elif tag in ("lead", "pad/keys", "bass") and rng.random() < 0.7:
            tonic, mode = rng.choice(_KEYS)
            sound = SoundInfo(analysis_model="bench", key_tonic=tonic, key_mode=mode,
                              key_label=_NOTES[tonic] + ("m" if mode == "minor" else ""),
                              key_confidence=0.7, loudness_db=rng.uniform(-25, -3))
            duration = rng.uniform(0.5, 6.0)
        else:
            duration = rng.uniform(0.08, 2.5)
        path = f"{ROOT}/{pack}/{folder}/{name}.wav"
        tags = name_tags(path) + (TagRow(tag, "audio", rng.uniform(0.4, 0.99), "bench"),)
        yield FileAnalysis(path=path, size=44 + int(duration * 88200), mtime_ns=i,
                           content_hash=f"h{i}", status="indexed", duration=duration,
                           sample_rate=44100, channels=2, kind="loop" if loop else "one-shot",
                           model_id="bench", sound=sound, tags=tags)


def build_catalog(path: Path, n: int) -> float:
    """Write the synthetic catalog (once per size); returns the seconds it took."""
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    for stale in path.parent.glob(tmp.name + "*"):
        stale.unlink()
    with Catalog(tmp) as catalog:
        catalog.add_root(ROOT)
        with catalog.transaction():
            for row in synthetic_rows(n):
                catalog.store(row)
        rng = random.Random(1)
        ids = [int(i) for i in np.arange(1, n + 1)]
        catalog.set_favourite(rng.sample(ids, n // 50))
        for name in ("Track 1 drums", "Dark techno", "Keepers"):
            catalog.add_to_collection(catalog.create_collection(name), rng.sample(ids, 500))
    tmp.rename(path)
    return time.perf_counter() - t0


def percentiles(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "max_ms": round(float(a.max()), 3), "n": len(values)}


def run(n: int, rounds: int) -> dict:
    path = REPO / "bench" / "cache" / f"browse-{n}" / "catalog.sqlite3"
    made_s = None
    if not path.exists():
        made_s = build_catalog(path, n)
    with Catalog(path) as catalog:
        builds, build_cpu = [], []
        for _ in range(2):
            t0, c0 = time.perf_counter(), time.process_time()
            snapshot = build_snapshot(catalog)
            builds.append(time.perf_counter() - t0)
            build_cpu.append(time.process_time() - c0)
    per_query = {}
    everything: list[float] = []
    cpu: list[float] = []
    for text in QUERIES:
        times, totals = [], []
        for r in range(rounds):
            snapshot._prefix_cache.clear()      # each round types afresh
            for end in range(1, len(text) + 1):
                t0, c0 = time.perf_counter(), time.thread_time()
                result = snapshot.query(BrowseQuery(text=text[:end], facets=True))
                times.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.thread_time() - c0) * 1e3)
                totals.append(result.total)
        everything += times
        per_query[text] = {**percentiles(times), "results": totals[-1]}
    others = {
        "sort by tempo, descending": BrowseQuery(text="loop", sort="tempo", descending=True),
        "filters: loop 120-130 bpm Am": BrowseQuery(kind="loop", tempo=(120, 130), key="Am"),
        "tag facet click: kick, favourites": BrowseQuery(tags=("kick",), favourites=True),
        "collection": BrowseQuery(collection="Keepers", sort="length"),
        "everything, by folder": BrowseQuery(sort="folder"),
    }
    other_times = {}
    for label, q in others.items():
        first = None
        times = []
        for r in range(rounds * 5):
            t0 = time.perf_counter()
            result = snapshot.query(q)
            times.append((time.perf_counter() - t0) * 1e3)
            first = times[0] if first is None else first
        other_times[label] = {**percentiles(times), "first_ms": round(first, 3), "results": result.total}
    return {"files": n, "catalog_build_s": None if made_s is None else round(made_s, 1),
            "snapshot_build_s": [round(b, 3) for b in builds],
            "snapshot_build_cpu_s": [round(b, 3) for b in build_cpu],
            "words": len(snapshot.vocabulary), "folders": len(snapshot.folders),
            "keystrokes": percentiles(everything),
            "keystrokes_cpu": percentiles(cpu), "per_query": per_query, "other": other_times}


def run_window(n: int, rounds: int) -> dict:
    """The same typing in the window's browser panel (offscreen Qt, the real library host
    without audio): each keystroke's query, table reset, facet lists and a full repaint."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication

    from ui.browser_panel import BrowserPanel
    from ui.host import AudioSettings
    from ui.models import ThumbnailCache
    from ui.session_host import SessionHost

    app = QApplication.instance() or QApplication([])
    host = SessionHost(REPO / "bench" / "cache" / f"browse-{n}", AudioSettings(), live=False)
    host.start()
    try:
        panel = BrowserPanel(host, ThumbnailCache())
        panel.resize(1280, 800)
        t0 = time.perf_counter()
        panel.show()
        while panel.snapshot is None and time.perf_counter() - t0 < 300:
            app.processEvents()
            time.sleep(0.005)
        loaded_s = time.perf_counter() - t0
        times, cpu = [], []
        for text in QUERIES:
            for _ in range(rounds):
                panel.search.clear()
                panel.snapshot._prefix_cache.clear()
                for end in range(1, len(text) + 1):
                    t0, c0 = time.perf_counter(), time.thread_time()
                    panel.search.setText(text[:end])     # the query runs on textChanged
                    panel.repaint()
                    times.append((time.perf_counter() - t0) * 1e3)
                    cpu.append((time.thread_time() - c0) * 1e3)
        panel.close()
    finally:
        host.close()
    return {"snapshot_in_window_s": round(loaded_s, 3), "keystrokes": percentiles(times),
            "keystrokes_cpu": percentiles(cpu)}


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    for run_info in results["runs"]:
        load = results["machine"]
        table = Table(title=f"Browser at {run_info['files']:,} files: keystroke → results with "
                            f"facets (ms); snapshot build {run_info['snapshot_build_s']} s "
                            f"(CPU {run_info['snapshot_build_cpu_s']} s); "
                            f"load average {load['load_average_at_start'][0]:.1f} → "
                            f"{load.get('load_average_at_end', [0])[0]:.1f}")
        for h in ("query (typed char by char)", "results", "p50", "p95", "max"):
            table.add_column(h, justify="right" if h != "query (typed char by char)" else "left")
        for text, m in run_info["per_query"].items():
            table.add_row(repr(text), f"{m['results']:,}", f"{m['p50_ms']:.1f}", f"{m['p95_ms']:.1f}",
                          f"{m['max_ms']:.1f}")
        k, c = run_info["keystrokes"], run_info["keystrokes_cpu"]
        table.add_row("[b]all keystrokes[/b]", str(k["n"]), f"{k['p50_ms']:.1f}", f"{k['p95_ms']:.1f}",
                      f"{k['max_ms']:.1f}")
        table.add_row("  the same, CPU time of the thread", str(c["n"]), f"{c['p50_ms']:.1f}",
                      f"{c['p95_ms']:.1f}", f"{c['max_ms']:.1f}")
        for label, m in run_info["other"].items():
            table.add_row(label, f"{m['results']:,}", f"{m['p50_ms']:.1f}", f"{m['p95_ms']:.1f}",
                          f"{m['max_ms']:.1f} (first {m['first_ms']:.1f})")
        if "window" in run_info:
            w, c = run_info["window"]["keystrokes"], run_info["window"]["keystrokes_cpu"]
            table.add_row("[b]in the window[/b] (query + table + facets + repaint)", str(w["n"]),
                          f"{w['p50_ms']:.1f}", f"{w['p95_ms']:.1f}", f"{w['max_ms']:.1f}")
            table.add_row("  the same, CPU time of the GUI thread", str(c["n"]), f"{c['p50_ms']:.1f}",
                          f"{c['p95_ms']:.1f}", f"{c['max_ms']:.1f}")
        Console(width=120).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=lambda s: [int(x) for x in s.split(",")], default=[100_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-window", action="store_true", help="skip the window's measure")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "browse.json"))
    args = parser.parse_args()
    results = {"goal_ms": GOAL_MS, "machine": {"python": platform.python_version(),
                                                "cpus": os.cpu_count(),
                                                "load_average_at_start": os.getloadavg()},
               "runs": [run(n, args.rounds) for n in args.files]}
    if not args.no_window:
        for run_info in results["runs"]:
            run_info["window"] = run_window(run_info["files"], args.rounds)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=1))
    print_table(results)


if __name__ == "__main__":
    main()
