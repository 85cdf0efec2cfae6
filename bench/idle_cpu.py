"""What listening costs while nothing is played: CPU of `samplescout listen` and its
processes (the audio process, the re-ranking process) on a JACK dummy server whose input is
silence, by thread.

A 92-file library (``bench.harness.live_support``) is scanned into a temporary folder; the
listener runs the drums profile at 64 frames (48 kHz). After 5 s to settle, each thread's
user + system time is read from ``/proc`` before and after ``--seconds`` of silence.

    .venv/bin/python bench/idle_cpu.py [--seconds 20] [--rounds 2] [--out bench/results/idle_cpu.json]

Writes the JSON and prints a table: percent of one core, whole tree and busiest threads.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness.jack_server import JackServer  # noqa: E402
from bench.harness.memory import tree_pids  # noqa: E402
from bench.harness.live_support import build_library  # noqa: E402
from bench.live_latency import Listener, wait_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def thread_seconds(pid: int) -> dict[tuple[int, int, str], float]:
    """CPU seconds (user + system) of every thread of ``pid``'s tree, by (pid, tid, name)."""
    out = {}
    for p in tree_pids(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                stat = Path(f"/proc/{p}/task/{tid}/stat").read_text()
                name = Path(f"/proc/{p}/task/{tid}/comm").read_text().strip()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            out[(p, int(tid), name)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def measure(library_dir: Path, seconds: float) -> dict:
    server = JackServer(period=64).start()
    listener = None
    try:
        listener = Listener(server, library_dir, 64)
        if not wait_port(server, "PortAudio:in_"):
            raise SystemExit("samplescout listen did not open its JACK ports")
        time.sleep(5.0)
        before, t0 = thread_seconds(listener.proc.pid), time.monotonic()
        time.sleep(seconds)
        after, t1 = thread_seconds(listener.proc.pid), time.monotonic()
        span = t1 - t0
        threads = sorted(({"pid": k[0], "thread": k[2], "percent": round(100 * (v - before.get(k, 0.0)) / span, 2)}
                          for k, v in after.items()), key=lambda t: -t["percent"])
        return {"seconds": round(span, 2), "processes": len({k[0] for k in after}),
                "percent_of_one_core": round(sum(t["percent"] for t in threads), 2),
                "threads": [t for t in threads if t["percent"] >= 0.25]}
    finally:
        if listener is not None:
            listener.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "idle_cpu.json")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="idle-cpu-"))
    build_library(tmp / "library-data", tmp / "samples")
    rounds = [measure(tmp / "library-data", args.seconds) for _ in range(args.rounds)]
    result = {"bench": "idle_cpu", "machine": platform.machine(), "cpus": os.cpu_count(),
              "load_avg": list(os.getloadavg()), "block_size": 64, "sample_rate": 48000,
              "profile": "drums", "rounds": rounds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'round':>5} {'% of one core':>14}  busiest threads")
    for n, r in enumerate(rounds, 1):
        busiest = ", ".join(f"{t['thread']} {t['percent']:.1f}" for t in r["threads"][:3])
        print(f"{n:>5} {r['percent_of_one_core']:>14.1f}  {busiest}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
