"""xruns of the app's audio engine against a C JACK client, side by side in the same run.

For each period (64 and 128 frames) two JACK dummy servers run at once: on one, the app as
the window runs it (``app.session.Session``: the engine in its own audio process, the live
matcher, and a scan started in the same process, so it runs with the app's lowered priority:
fewer workers while a session runs, workers at nice 10 and idle-class-like I/O priority,
``app.priority``); on the other, Debian's ``jack_simple_client`` (C, jackd2's example
clients). Both are measured idle, then while the app scans the Debian sample packages
(~1,450 files) into a fresh library. Each server's xruns are counted twice: by an observer
client on it (JACK-Client's xrun callback, in a process of its own) and from jackd's own
log lines. Target: the app's count <= the C client's + 10 %.

    .venv/bin/python bench/xruns.py [--idle 30] [--periods 64,128]

Run it at normal priority: the audio parts are what is measured (the scan lowers its own).
Writes bench/results/xruns.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.harness.jack_server import JackServer  # noqa: E402

RESULTS = HERE / "results" / "xruns.json"
DEBIAN_SETS = ["/usr/share/hydrogen/data/drumkits", "/usr/share/hydrogen/data/drumkits-effects",
               "/usr/share/sonic-pi/samples", "/usr/share/lmms/samples"]
C_CLIENT = "jack_simple_client"


# -- the processes -------------------------------------------------------------------------

def observer_main() -> None:
    """A JACK client with no audio: counts the server's xrun notifications; prints the count
    for every line read on stdin."""
    import jack
    client = jack.Client("xrun-observer", no_start_server=True)
    count = [0]

    def on_xrun(_delay):
        count[0] += 1
    client.set_xrun_callback(on_xrun)
    client.activate()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        print(count[0], flush=True)
    client.deactivate()
    client.close()


def app_main(library_dir: str, period: int) -> None:
    """The app as the window runs it: a Session on the JACK server, and on 'scan' a scan of
    the Debian sample packages into its library, in this process (stdin commands)."""
    from app.library_tasks import LibraryTasks
    from app.session import Session
    from engine.stream import StreamConfig
    config = StreamConfig(hostapi="JACK", input_channels=1, output_channels=2,
                          sample_rate=48000, block_size=period)
    session = Session(library_dir, config, "drums")
    session.start(timeout=20)
    tasks = LibraryTasks(library_dir)

    def callbacks() -> dict:
        """The engine's latest callback durations (its own ring, up to 65,536), in µs."""
        import numpy as np
        d = np.asarray(session.engine.callback_durations(), dtype=np.float64) / 1e3
        if not len(d):
            return {}
        return {"n": int(len(d)), "p50_us": round(float(np.percentile(d, 50)), 1),
                "p99_us": round(float(np.percentile(d, 99)), 1),
                "max_us": round(float(d.max()), 1)}
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "scan":
            started = time.perf_counter()
            report = tasks.scan([f for f in DEBIAN_SETS if os.path.isdir(f)])
            print(json.dumps({"scan_s": round(time.perf_counter() - started, 2),
                              "files": report.seen, "analysed": report.files_analysed,
                              "engine_xruns": session.status().xruns,
                              "callbacks": callbacks()}), flush=True)
        elif command == "status":
            print(json.dumps({"engine_xruns": session.status().xruns,
                              "callbacks": callbacks()}), flush=True)
        elif command == "quit":
            break
    tasks.close()
    session.close()


class Line:
    """A helper process that answers one line per command."""

    def __init__(self, args: list[str], env: dict, timeout: float = 60.0):
        self.proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.ask(None, timeout, expect="ready")

    def ask(self, command: str | None, timeout: float = 600.0, expect: str | None = None) -> str:
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        if not line or (expect is not None and line != expect):
            raise RuntimeError(f"{self.proc.args[:3]}: answered {line!r}")
        return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


def jackd_xruns(server: JackServer) -> int:
    """xrun events in jackd's log (one per 'XRun' line of the engine, or any xrun line)."""
    lines = server.log().lower().splitlines()
    return sum(1 for line in lines if "xrun" in line)


def measure_period(period: int, idle_s: float) -> dict:
    app_server = JackServer(period=period).start()
    c_server = JackServer(period=period).start()
    helpers: list = []
    c_proc = None
    library_dir = tempfile.mkdtemp(prefix="samplescout-xruns-")
    try:
        me = [sys.executable, str(Path(__file__).resolve())]
        observers = {}
        for name, server in (("app", app_server), ("c", c_server)):
            observers[name] = Line(me + ["--observer"], server.env())
            helpers.append(observers[name])
        c_proc = subprocess.Popen([shutil.which(C_CLIENT)], env=c_server.env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        app = Line(me + ["--app", library_dir, str(period)], app_server.env(), timeout=120)
        helpers.append(app)
        time.sleep(1.0)     # both settled before counting

        def counts() -> dict:
            return {"app": {"observer": int(observers["app"].ask("count")),
                            "jackd_log": jackd_xruns(app_server)},
                    "c": {"observer": int(observers["c"].ask("count")),
                          "jackd_log": jackd_xruns(c_server)}}

        def diff(after, before):
            return {k: {m: after[k][m] - before[k][m] for m in after[k]} for k in after}

        start = counts()
        load_idle = os.getloadavg()[0]
        time.sleep(idle_s)
        idle_end = counts()
        idle_status = json.loads(app.ask("status"))
        scan = json.loads(app.ask("scan"))
        scan_end = counts()
        return {
            "period": period, "realtime": app_server.realtime and c_server.realtime,
            "idle": {"seconds": idle_s, "load_average_1min": round(load_idle, 2),
                     "app_callbacks": idle_status["callbacks"], **diff(idle_end, start)},
            "scan": {"seconds": scan["scan_s"], "files": scan["files"],
                     "analysed": scan["analysed"],
                     "load_average_1min": round(os.getloadavg()[0], 2),
                     "app_callbacks": scan["callbacks"], **diff(scan_end, idle_end)},
            "engine_own_counter": scan["engine_xruns"],
        }
    finally:
        for helper in reversed(helpers):
            helper.stop()
        if c_proc is not None:
            c_proc.terminate()
            c_proc.wait(10)
        c_server.stop()             # the reverse of starting: the environment is restored
        app_server.stop()
        shutil.rmtree(library_dir, ignore_errors=True)


def verdict(app: int, c: int) -> bool:
    return app <= c * 1.10 or app <= c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--periods", default="64,128")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--observer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--app", nargs=2, metavar=("LIBRARY", "PERIOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.observer:
        return observer_main()
    if args.app:
        return app_main(args.app[0], int(args.app[1]))
    runs = []
    for period in (int(p) for p in args.periods.split(",")):
        runs.append(measure_period(period, args.idle))
        print(json.dumps(runs[-1]), flush=True)
    rows = []
    for run in runs:
        for phase in ("idle", "scan"):
            figures = run[phase]
            app, c = figures["app"]["observer"], figures["c"]["observer"]
            rows.append({"period": run["period"], "phase": phase,
                         "seconds": figures["seconds"], "app_xruns": app, "c_xruns": c,
                         "app_jackd_log": figures["app"]["jackd_log"],
                         "c_jackd_log": figures["c"]["jackd_log"],
                         "load_average_1min": figures["load_average_1min"],
                         "met": verdict(app, c)})
    result = {
        "what": "xruns of the app (Session as the window runs it, scan in the same process) "
                "and of jack_simple_client, each on its own JACK dummy server, side by side",
        "target": "app xruns <= C client's + 10 %",
        "cpu_count": os.cpu_count(), "rows": rows, "runs": runs,
        "input": "silence (the dummy backend's capture ports)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'period':>6} {'phase':<5} {'s':>6} {'app':>6} {'C':>6} {'app log':>8} {'C log':>6} "
          f"{'load':>5}  met")
    for r in rows:
        print(f"{r['period']:>6} {r['phase']:<5} {r['seconds']:>6.1f} {r['app_xruns']:>6} "
              f"{r['c_xruns']:>6} {r['app_jackd_log']:>8} {r['c_jackd_log']:>6} "
              f"{r['load_average_1min']:>5.2f}  {'yes' if r['met'] else 'NO'}")


if __name__ == "__main__":
    main()
