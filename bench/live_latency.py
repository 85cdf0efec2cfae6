"""Benchmark of progressive live answers through a real JACK server (dummy backend), as a
user sees them on stdout: `samplescout listen --json` runs as its own process and every
line it prints is stamped on arrival (time.monotonic(), shared by the processes).

A JACK peer plays library one-shots; a hit's time is when the peer handed its first sample
to the server, from the peer's clock of the signal (a loaded dummy server runs slower than
real time, so the first sample's time plus the hit's offset drifts behind by up to hundreds
of ms over a 30 s signal; such hits used to count as unanswered). Each update carries the
monotonic time at which its onset's device frame reached the capture ring
(``onset_time``), which pairs it with a hit; ``onset_offsets_ms`` says how far apart they
were.

Reported:
- onset -> first suggestion on stdout (the attack answer), p50/p95, hits 1.6 s apart;
- end of window -> final update published (the matcher's own figure, re-ranked or not),
  p50/p95, where it went (each stage of the finals' traces: waiting for the worker,
  embedding, index search, re-ranking with the re-ranking process's own stages, merging),
  and stdout arrival of the final minus the hit;
- dense playing: a kick/hat/snare loop in eighths at 120, 150 and 170 BPM, R@1 per hit
  (each hit's final answer names its file first; a hit with no final answer is a miss).

    .venv/bin/python bench/live_latency.py                 # ~2 min on a small library
    .venv/bin/python bench/live_latency.py --hits 12 --loops 2
    .venv/bin/python bench/live_latency.py --dense-only --tempos 170 --loops 16 --out ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.decode import read_mono  # noqa: E402
from bench.harness.jack_server import JackServer  # noqa: E402
from bench.harness.live_peer import start_live_peer  # noqa: E402
from bench.harness.live_support import build_library, played_files, sequence  # noqa: E402

SR = 48000
LOOP = ["bd_haus", "drum_cymbal_closed", "sn_dolf", "bd_tek", "elec_tick", "sn_dub",
        "bd_haus", "drum_cymbal_closed"]
PAIR_S = 0.05        # an update belongs to the hit whose time is this close to its onset


class Listener:
    """`samplescout listen --json` on the server; lines stamped on arrival."""

    def __init__(self, server: JackServer, library_dir: Path, block_size: int):
        # this checkout's code, whichever checkout the environment was installed from
        env = server.env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--library-dir", str(library_dir), "listen",
             "--hostapi", "JACK", "--profile", "drums", "--block-size", str(block_size), "--json"],
            stdout=subprocess.PIPE, stderr=self.stderr, env=env, text=True, cwd=str(ROOT))
        self.lines: list[tuple[float, dict]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            t = time.monotonic()
            try:
                self.lines.append((t, json.loads(line)))
            except ValueError:
                pass

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_port(server: JackServer, pattern: str, timeout: float = 60.0) -> bool:
    """Wait for an input port of the app's client (named "samplescout" or "PortAudio")."""
    suffix = pattern.split(":", 1)[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["jack_lsp"], env=server.env(), capture_output=True, text=True).stdout
        if any(":" + suffix in line and not line.startswith("system:") for line in out.splitlines()):
            return True
        time.sleep(0.2)
    return False


def play(server, signal: np.ndarray, tmp: Path, name: str, samples: list[int]) -> list[float]:
    """Play ``signal``; the monotonic time at which each of ``samples`` was handed to the
    server, from the peer's clock of the signal (``jack_server.play_signal``). A hit's time
    is not the start's plus its offset at the nominal rate: a loaded dummy server runs
    slower than real time, and the hits of a 30 s signal drift hundreds of ms behind it."""
    path = tmp / f"{name}.npy"
    np.save(path, signal)
    peer = start_live_peer(server, "play", path, "PortAudio:in_")
    peer.go()
    result = peer.result(timeout=len(signal) / SR + 60)
    clock = np.asarray(result["clock"], dtype=float)
    at, when = clock[:, 0], clock[:, 1]
    # past the clock's last entry: its time plus the nominal rate
    return [float(np.interp(s, at, when)) if s <= at[-1] else float(when[-1] + (s - at[-1]) / SR)
            for s in samples]


def onset_updates(lines, since: float) -> list[tuple[float, dict]]:
    """The listener's onset updates (arrival time, line) since ``since``, in order."""
    return [(t, d) for t, d in lines if t >= since and d.get("reason") == "onset"
            and d.get("onset_time") is not None]


def per_hit(lines, hit_times: list[float], since: float):
    """For each hit: (first update (t, line), final update (t, line)) paired by onset_time."""
    out = []
    updates = onset_updates(lines, since)
    for h in hit_times:
        mine = [(t, d) for t, d in updates if abs(d["onset_time"] - h) < PAIR_S]
        finals = [(t, d) for t, d in mine if d.get("stage") == "final"]
        out.append((mine[0] if mine else None, finals[0] if finals else None))
    return out


def onset_offsets_ms(lines, hit_times: list[float], since: float) -> list[float | None]:
    """For each hit: the onset_time of the nearest onset update within half a second, less
    the hit's scheduled time (ms; None when there is none). A hit unpaired by ``per_hit``
    whose offset is past PAIR_S was answered, but later than its schedule: the peer's
    playback or the server lost time, which shifts every later hit alike."""
    onsets = sorted({d["onset_time"] for _, d in onset_updates(lines, since)})
    out: list[float | None] = []
    for h in hit_times:
        near = [o - h for o in onsets if abs(o - h) < 0.5]
        out.append(round(1000 * min(near, key=abs), 1) if near else None)
    return out


def pct(values, q):
    return round(float(np.percentile(values, q)), 1) if values else None


def stage_table(traces: list[dict]) -> dict:
    """p50/p95 of each stage of the final updates' traces (``SuggestionUpdate.trace``: wait,
    embed, search, rerank and the re-ranking process's own stages, merge), in the order
    the stages first appear."""
    stages = list(dict.fromkeys(stage for t in traces for stage in t))
    return {stage: {"p50": pct([t[stage] for t in traces if stage in t], 50),
                    "p95": pct([t[stage] for t in traces if stage in t], 95),
                    "n": sum(stage in t for t in traces)} for stage in stages}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hits", type=int, default=16)
    ap.add_argument("--loops", type=int, default=2, help="passes of the 8-hit loop per tempo")
    ap.add_argument("--block-size", type=int, default=64)
    ap.add_argument("--tempos", default="120,150,170", help="BPM of the dense loops, comma-separated")
    ap.add_argument("--dense-only", action="store_true", help="leave out the spaced hits")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "live_latency.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="live-latency-"))
    linked = build_library(tmp / "library-data", tmp / "samples")
    by_name = {p.name.split(".")[0]: p for p in linked}
    server = JackServer(period=args.block_size).start()
    listener = None
    try:
        listener = Listener(server, tmp / "library-data", args.block_size)
        if not wait_port(server, "PortAudio:in_"):
            listener.stderr.seek(0)
            raise SystemExit("samplescout listen did not open its JACK ports:\n"
                             + listener.stderr.read()[-2000:])
        time.sleep(2.0)          # the matcher's warm-up query
        # -- spaced hits: onset -> first answer, end of window -> final ------------------
        files = [] if args.dense_only else played_files(linked, args.hits)
        pairs, hit_times = [], []
        if files:
            signal, starts = sequence(files, SR, 1.6)
            since = time.monotonic()
            hit_times = play(server, signal, tmp, "spaced", starts)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and per_hit(listener.lines, hit_times[-1:], since)[0][1] is None:
                time.sleep(0.1)
            pairs = per_hit(listener.lines, hit_times, since)
        first_ms = [1000 * (f[0] - h) for (f, _), h in zip(pairs, hit_times) if f is not None]
        first_stage = [f[1]["stage"] for f, _ in pairs if f is not None]
        final_pub = [fin[1]["latency_ms"] for _, fin in pairs if fin is not None]
        final_since_hit = [1000 * (fin[0] - h) for (_, fin), h in zip(pairs, hit_times) if fin is not None]
        final_top1 = [fin[1]["results"][0]["path"] == str(p) if fin and fin[1]["results"] else False
                      for (_, fin), p in zip(pairs, files)]
        traces = [fin[1].get("trace") or {} for _, fin in pairs if fin is not None]
        spaced = {"hits": len(files), "answered": len(first_ms),
                  "first_answer_stage": {s: first_stage.count(s) for s in set(first_stage)},
                  "onset_to_first_stdout_ms": {"p50": pct(first_ms, 50), "p95": pct(first_ms, 95)},
                  "window_end_to_final_published_ms": {"p50": pct(final_pub, 50), "p95": pct(final_pub, 95)},
                  "onset_to_final_stdout_ms": {"p50": pct(final_since_hit, 50), "p95": pct(final_since_hit, 95)},
                  "final_top1": round(float(np.mean(final_top1)), 3) if final_top1 else None,
                  "final_reranked": sum("rerank" in t for t in traces),
                  "final_stages_ms": stage_table(traces),
                  "onset_offsets_ms": onset_offsets_ms(listener.lines, hit_times, since) if files else []}
        # -- dense loops -------------------------------------------------------------------
        dense = {}
        for bpm in [int(t) for t in args.tempos.split(",")]:
            step = 60.0 / bpm / 2
            names = LOOP * args.loops
            lead, n = int(0.5 * SR), int(step * SR)
            audio = [read_mono(by_name[x], SR) for x in names]
            sig = np.zeros(lead + n * len(names) + 2 * SR, np.float32)
            offs = []
            for i, a in enumerate(audio):
                s = lead + i * n
                sig[s:s + len(a)] += a[:len(sig) - s]
                offs.append(s)
            since = time.monotonic()
            times = play(server, np.clip(sig, -1, 1), tmp, f"loop{bpm}", offs)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and per_hit(listener.lines, times[-1:], since)[0][1] is None:
                time.sleep(0.1)
            got = per_hit(listener.lines, times, since)
            right = [fin is not None and fin[1]["results"] and
                     fin[1]["results"][0]["path"] == str(by_name[x]) for (_, fin), x in zip(got, names)]
            misses = [{"hit": i, "played": x,
                       "named": (Path(fin[1]["results"][0]["path"]).name.split(".")[0]
                                 if fin is not None and fin[1]["results"] else None)}
                      for i, ((_, fin), x, ok) in enumerate(zip(got, names, right)) if not ok]
            dense[str(bpm)] = {"hits": len(names), "step_s": round(step, 3),
                               "with_final": sum(fin is not None for _, fin in got),
                               "r_at_1": round(float(np.mean(right)), 3), "misses": misses}
            time.sleep(1.0)
    finally:
        if listener is not None:
            listener.close()
        server.stop()
    result = {"bench": "live_latency", "machine": platform.node(), "cpus": os.cpu_count(),
              "load_avg": os.getloadavg(), "block_size": args.block_size,
              "library_files": len(linked), "spaced": spaced, "dense": dense}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'measure':44s} {'p50':>8s} {'p95':>8s}")
    for key in ("onset_to_first_stdout_ms", "window_end_to_final_published_ms", "onset_to_final_stdout_ms"):
        print(f"{key:44s} {spaced[key]['p50']!s:>8s} {spaced[key]['p95']!s:>8s}")
    print(f"final updates, per stage ({spaced['final_reranked']} re-ranked):")
    for stage, row in spaced["final_stages_ms"].items():
        print(f"  {stage:42s} {row['p50']!s:>8s} {row['p95']!s:>8s}")
    print(f"spaced: {spaced['answered']}/{spaced['hits']} answered, final R@1 {spaced['final_top1']}, "
          f"first answers {spaced['first_answer_stage']}")
    late = [o for o in spaced["onset_offsets_ms"] if o is not None and abs(o) >= 1000 * PAIR_S]
    if late:
        print(f"  {len(late)} hits' onsets reported {min(late):.0f} to {max(late):.0f} ms from their "
              f"schedule (the playback lost time; they count as unanswered)")
    for bpm, d in dense.items():
        print(f"dense {bpm} BPM eighths ({d['step_s']} s): R@1 per hit {d['r_at_1']} "
              f"({d['with_final']}/{d['hits']} with a final answer)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
