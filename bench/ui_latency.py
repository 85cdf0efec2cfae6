"""Event-loop latency of the desktop window: idle, during a library scan, during live matching.

A precise QTimer asks for a tick every 10 ms; each tick's lateness (actual interval minus
10 ms) is how long the GUI thread was busy elsewhere, i.e. how late a click, a key or a
repaint would be handled. The window is the real ``MainWindow`` (offscreen platform) with
all its timers (meters, scope, status) running.

* idle: library-only host, nothing happening;
* scan: the Library panel scans the Sonic Pi and LMMS samples (worker QThread + scanner
  processes) — measured until the scan ends or ``--scan-seconds`` pass;
* live: ``SessionHost`` on a JACK dummy server while a JACK peer plays a sequence of
  Sonic Pi hits into the input (matcher updates, meters, scope, thumbnails). Also what the
  producer waits: from each hit (its frame reaching the capture ring) to its update applied
  by the window on the GUI thread, by stage (attack, refined, final); the repaint follows
  in the same turn of the event loop.

    .venv/bin/python bench/ui_latency.py [--seconds 20] [--scan-seconds 40]

Writes bench/results/ui_latency.json and prints a table. Goal: p99 < 50 ms.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QElapsedTimer, Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

TICK_MS = 10
SONIC_PI = Path("/usr/share/sonic-pi/samples")
LMMS = Path("/usr/share/lmms/samples")
GOAL_P99_MS = 50.0


class LatenessProbe:
    """Records how late each 10 ms tick of a precise timer fires (GUI thread)."""

    def __init__(self):
        self.lateness: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.last = None

    def start(self):
        self.lateness.clear()
        self.clock.start()
        self.last = self.clock.nsecsElapsed()
        self.timer.start()

    def stop(self):
        self.timer.stop()

    def _tick(self):
        now = self.clock.nsecsElapsed()
        self.lateness.append(max(0.0, (now - self.last) / 1e6 - TICK_MS))
        self.last = now


def summary(lateness: list[float], seconds: float, **extra) -> dict:
    a = np.asarray(lateness, dtype=np.float64)
    out = {"ticks": int(a.size), "seconds": round(seconds, 2)}
    if a.size:
        out.update(p50_ms=round(float(np.percentile(a, 50)), 2),
                   p99_ms=round(float(np.percentile(a, 99)), 2),
                   max_ms=round(float(a.max()), 2),
                   over_50ms=int((a > 50).sum()))
    out.update(extra)
    return out


def run_for(app: QApplication, seconds: float, until=None) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        app.processEvents()
        if until is not None and until():
            break
        time.sleep(0.001)
    return time.monotonic() - start


def make_window(host, config_dir: Path):
    from ui import theme
    from ui.main_window import MainWindow
    from ui.settings import SettingsStore
    theme.apply(QApplication.instance())
    win = MainWindow(host, SettingsStore(config_dir), scan_plugins=False)
    win.show()
    return win


def bench_idle(app, tmp: Path, seconds: float) -> dict:
    from ui.host import AudioSettings
    from ui.session_host import SessionHost
    host = SessionHost(tmp / "idle-lib", AudioSettings(), live=False)
    win = make_window(host, tmp / "cfg-idle")
    run_for(app, 1.0)
    probe = LatenessProbe()
    probe.start()
    took = run_for(app, seconds)
    probe.stop()
    win.close()
    host.close()
    return summary(probe.lateness, took)


def bench_scan(app, tmp: Path, seconds: float, workers: int) -> dict:
    from ui.host import AudioSettings
    from ui.session_host import SessionHost
    src = tmp / "scan-src"
    count = 0
    for base in (SONIC_PI, LMMS):
        if not base.is_dir():
            continue
        for f in base.rglob("*"):
            if f.suffix.lower() in (".flac", ".wav", ".ogg") and f.is_file():
                dest = src / base.name / f.relative_to(base)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(f, dest)
                count += 1
    host = SessionHost(tmp / "scan-lib", AudioSettings(), live=False)
    win = make_window(host, tmp / "cfg-scan")
    panel = win.library_panel
    run_for(app, 1.0)
    done = []
    panel.scan_done.connect(lambda: done.append(1))
    progress = []
    panel.jobs.progress.connect(lambda d, t, c: progress.append(d))
    probe = LatenessProbe()
    probe.start()
    panel.add_folder(str(src))
    took = run_for(app, seconds, until=lambda: bool(done))
    probe.stop()
    finished = bool(done)
    if not finished:
        panel.cancel()
        run_for(app, 60, until=lambda: bool(done))
    win.close()
    host.close()
    return summary(probe.lateness, took, files=count, files_done=max(progress or [0]),
                   scan_finished=finished, workers=workers)


def bench_live(app, tmp: Path, seconds: float) -> dict:
    from app.decode import read_mono
    from app.library import Library
    from app.scanner import Scanner
    from bench.harness.jack_server import JackServer
    from bench.harness.live_peer import start_live_peer
    from ui.host import AudioSettings
    from ui.session_host import SessionHost

    stems = ["bd_haus", "bd_808", "bd_boom", "sn_dolf", "sn_dub", "elec_snare", "drum_cymbal_closed",
             "elec_tick", "perc_bell", "tabla_na", "elec_blip", "drum_tom_mid_hard"]
    src = tmp / "live-src"
    src.mkdir()
    for s in stems:
        shutil.copy(SONIC_PI / f"{s}.flac", src)
    library_dir = tmp / "live-lib"
    with Library(library_dir) as library:
        Scanner(library, workers=1).scan([src])
    server = JackServer().start()
    host = None
    win = None
    try:
        host = SessionHost(library_dir, AudioSettings(hostapi="JACK", block_size=64))
        win = make_window(host, tmp / "cfg-live")
        host.start()
        run_for(app, 20, until=lambda: host.session is not None)
        if host.session is None:
            return {"error": host.status().message}
        sr = server.sample_rate
        hits = [read_mono(SONIC_PI / f"{s}.flac", sr)[: int(0.6 * sr)] for s in stems]
        spacing = int(0.5 * sr)
        parts = []
        total = 0
        i = 0
        while total < (seconds + 2) * sr:
            h = hits[i % len(hits)]
            parts.append(np.concatenate([h, np.zeros(max(0, spacing - len(h)), np.float32)]))
            total += len(parts[-1])
            i += 1
        np.save(tmp / "live.npy", np.concatenate(parts).astype(np.float32))
        updates = []
        shown: dict[str, list[float]] = {}

        def applied(update) -> None:
            # connected after the window's own slot, so on the GUI thread once the window
            # has applied the update: the hit (its frame reaching the capture ring) -> shown
            updates.append(update.latency_ms)
            since = update.since_onset_ms()
            if since is not None:
                shown.setdefault(update.stage, []).append(since)
        host.suggestions.connect(applied)
        peer = start_live_peer(server, "play", tmp / "live.npy", "PortAudio.*:in_")
        probe = LatenessProbe()
        probe.start()
        peer.go()
        took = run_for(app, seconds)
        probe.stop()
        peer.stop()
        onset_to_shown = {stage: {"n": len(v), "p50": round(float(np.percentile(v, 50)), 1),
                                  "p95": round(float(np.percentile(v, 95)), 1)}
                          for stage, v in sorted(shown.items()) if v}
        return summary(probe.lateness, took, hits_played=i, suggestion_updates=len(updates),
                       xruns=host.status().xruns, onset_to_shown_ms=onset_to_shown)
    finally:
        if win is not None:
            win.close()
        if host is not None:
            host.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--scan-seconds", type=float, default=40.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--only", choices=["idle", "scan", "live"], action="append")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ui_latency.json")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="ssc-cache-"))
    results = {"tick_ms": TICK_MS, "goal_p99_ms": GOAL_P99_MS, "machine": platform.machine(),
               "cpus": os.cpu_count(), "platform": QApplication.platformName(), "scenarios": {}}
    wanted = args.only or ["idle", "scan", "live"]
    with tempfile.TemporaryDirectory(prefix="ssc-ui-bench-") as d:
        tmp = Path(d)
        os.environ["SAMPLESCOUT_LIBRARY_DIR"] = str(tmp / "default-lib")
        for name in wanted:
            try:
                if name == "idle":
                    r = bench_idle(app, tmp, min(args.seconds, 10))
                elif name == "scan":
                    r = bench_scan(app, tmp, args.scan_seconds, args.workers or os.cpu_count() or 1)
                else:
                    r = bench_live(app, tmp, args.seconds)
            except Exception as exc:  # noqa: BLE001 - a scenario that cannot run is reported
                r = {"error": f"{type(exc).__name__}: {exc}"}
            results["scenarios"][name] = r
    results["load_average_at_end"] = os.getloadavg()
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'scenario':<8} {'ticks':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'>50ms':>6}  notes")
    for name, r in results["scenarios"].items():
        if "error" in r:
            print(f"{name:<8} error: {r['error']}")
            continue
        notes = {k: v for k, v in r.items() if k not in ("ticks", "p50_ms", "p99_ms", "max_ms",
                                                         "over_50ms", "seconds")}
        print(f"{name:<8} {r['ticks']:>6} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['max_ms']:>7.2f} "
              f"{r['over_50ms']:>6}  {notes}")
    print(f"goal: p99 < {GOAL_P99_MS:.0f} ms  ->  {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
