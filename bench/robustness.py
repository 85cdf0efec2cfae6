"""Fault and fuzz campaign against files, names and presets. Writes bench/results/robustness.json
and prints a table: cases, handled with a clear error, tracebacks, hangs, memory peak, data lost.

    .venv/bin/python bench/robustness.py [--mutants 3000] [--queries 150]

Campaigns (each in child processes under an address-space cap, each case with a deadline):
- decode: mutants of real Debian samples (every format, several seeds each) through
  ``probe`` and ``iter_mono``;
- scan: the same mutants scanned twice by the real scanner; lost = files indexed by the
  first scan that the second no longer has, re-decoded = refused files decoded again;
- search: ``samplescout search --json`` with mutants as queries (one CLI run per batch);
- names: files named with rich markup, emoji codes, escapes and shell characters, indexed
  and searched through the CLI (handled = printed exactly as named);
- presets: hostile chain presets, MIDI maps and match profiles through each loader.
Library-side faults (non-UTF-8 names, unreadable folders, links, concurrent runs, kill -9,
damaged catalogs, a full disk) are not covered here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.cli import printable  # noqa: E402
from bench.harness import mutants  # noqa: E402
from bench.harness.live_support import HYDROGEN, LMMS, SONIC_PI  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "robustness.json"
DECODE_CAP = 2 << 30
CLI_CAP = 3 << 30
SEEDS_PER_FORMAT = 3

HOSTILE_NAMES = [
    "[kick] 808", "[snare] tight", "[bold red]loud", "[b]x[i]", ":fire: hit",
    ":thumbs_up::fire:", "trailing backslash \\", "\x1b[31mred\x1b[0m", "$(touch pwned)",
    "`id`", "%s%n%x", "-k 5", "--json", "tab\there", "new\nline", "emoji 🥁 kit",
    "rtl \u202eevaw.kcik", "zero\u200bwidth", "quote ' and \"", "a" * 200,
]


def seeds(scratch: Path) -> dict[str, Path]:
    """A few small real files per format, and the test suite's seeds (MP3 written here)."""
    found = mutants.seed_files(scratch)
    for ext in ("wav", "flac", "aiff", "ogg"):
        pool = sorted(p for base in (HYDROGEN, SONIC_PI, LMMS) if base.exists()
                      for p in base.rglob(f"*.{ext}") if p.stat().st_size < 150_000)
        step = max(1, len(pool) // SEEDS_PER_FORMAT)
        for i, path in enumerate(pool[::step][:SEEDS_PER_FORMAT]):
            found[f"{ext}{i}"] = path
    return found


def _capped(memory_cap: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))
    return limit


def _cli(args: list[str], env: dict, timeout: float) -> tuple[subprocess.CompletedProcess | None, float]:
    """Run the CLI capped; (result or None on timeout, peak RSS of the child in bytes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    try:
        done = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout,
                              preexec_fn=_capped(CLI_CAP))
    except subprocess.TimeoutExpired:
        done = None
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) * 1024
    return done, peak


def row(name, cases, handled, ok, tracebacks, hangs, peak, lost, **extra) -> dict:
    return dict(campaign=name, cases=cases, handled=handled, ok=ok, tracebacks=tracebacks,
                hangs=hangs, memory_peak_mb=round(peak / 1e6, 1), data_lost=lost, **extra)


def decode_campaign(paths: list[Path]) -> tuple[dict, dict]:
    started = time.monotonic()
    decoded = mutants.decode_all(paths, DECODE_CAP, timeout_s=30.0)
    outcomes = decoded["results"]
    count = lambda kind: sum(o[0] == kind for o in outcomes.values())  # noqa: E731
    failures = {p: o for p, o in outcomes.items() if o[0] in ("traceback", "hang")}
    codes: dict[str, int] = {}
    for outcome, detail in outcomes.values():
        if outcome == "handled":
            codes[detail] = codes.get(detail, 0) + 1
    return row("fuzzed audio: decode", len(paths), count("handled"), count("ok"),
               count("traceback"), count("hang"), decoded["peak_rss"], 0,
               seconds=round(time.monotonic() - started, 1), reasons=codes,
               failures=dict(list(failures.items())[:20])), outcomes


def scan_campaign(folder: Path, library_dir: Path, count: int) -> dict:
    started = time.monotonic()
    try:
        result = mutants.scan_twice_capped(folder, library_dir, timeout=900.0,
                                           memory_cap=mutants.SCAN_MEMORY_CAP)
    except subprocess.TimeoutExpired:
        return row("fuzzed audio: scan twice", count, 0, 0, 0, 1, 0, None)
    except AssertionError as exc:
        return row("fuzzed audio: scan twice", count, 0, 0, 1, 0, 0, None, error=str(exc)[-2000:])
    first, second = result["reports"]
    crashed = result["reasons"].get("analysis_failed", 0)
    skipped = sum(result["reasons"].values())
    return row("fuzzed audio: scan twice", count, skipped - crashed, first["indexed"], crashed, 0,
               result["peak_rss"], max(0, first["indexed"] - result["indexed"]),
               re_decoded=second["analysed"], reasons=result["reasons"],
               seconds=round(time.monotonic() - started, 1))


def search_campaign(queries: list[Path], env: dict) -> dict:
    started = time.monotonic()
    answered = errors = tracebacks = hangs = 0
    peak = 0
    batch = 50
    for i in range(0, len(queries), batch):
        part = [str(q) for q in queries[i:i + batch]]
        done, used = _cli(["search", *part, "-k", "3", "--json"], env, timeout=600.0)
        peak = max(peak, used)
        if done is None:
            hangs += 1
            continue
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        answered += len(lines)
        err_lines = [line for line in done.stderr.splitlines() if line.startswith("samplescout: error:")]
        errors += len(err_lines)
        if "Traceback" in done.stderr or len(lines) + len(err_lines) != len(part):
            tracebacks += 1
    return row("fuzzed audio: search queries", len(queries), errors, answered, tracebacks, hangs,
               peak, 0, seconds=round(time.monotonic() - started, 1))


def names_campaign(work: Path, env: dict) -> dict:
    import numpy as np
    import soundfile as sf

    started = time.monotonic()
    folder = work / "names [/] :fire:"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    paths = []
    for i, name in enumerate(HOSTILE_NAMES):
        t = np.arange(22050) / 44100
        audio = 0.5 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t) * np.exp(-t * rng.uniform(5, 30))
        path = folder / f"{name}.wav"
        sf.write(path, audio.astype(np.float32), 44100, subtype="PCM_16")
        paths.append(path)
    wide = dict(env, COLUMNS="1000")
    done, peak = _cli(["index", str(folder), "--workers", "2"], wide, timeout=600.0)
    tracebacks = hangs = handled = 0
    if done is None:
        hangs += 1
    elif done.returncode != 0 or "Traceback" in done.stderr or str(folder) not in done.stdout:
        tracebacks += 1
    for path in paths:
        done, used = _cli(["search", str(path), "-k", "1"], wide, timeout=300.0)
        peak = max(peak, used)
        if done is None:
            hangs += 1
        elif done.returncode != 0 or "Traceback" in done.stderr:
            tracebacks += 1
        elif printable(str(path)) in done.stdout:
            handled += 1
    return row("hostile names: index + search", len(paths), handled, 0, tracebacks, hangs, peak, 0,
               printed_wrong=len(paths) - handled - tracebacks - hangs,
               seconds=round(time.monotonic() - started, 1))


_LOADERS = {
    "chain preset": "from engine.chain_presets import read_preset as load, PresetError as Error",
    "MIDI map": "from engine.midi import MidiMap, MidiMapError as Error; load = MidiMap.load",
    "match profile": "from app.match_profiles import load_profile as load, ProfileError as Error",
}


def hostile_presets(work: Path) -> dict[str, Path]:
    folder = work / "presets"
    folder.mkdir()
    cases: dict[str, bytes | None] = {
        "60k-deep nesting": b"[" * 60_000 + b"]" * 60_000,
        "1k-deep objects": b'{"a":' * 1000 + b"1" + b"}" * 1000,
        "400-digit int": b'{"a": ' + b"9" * 400 + b"}",
        "5000-digit int": b'{"a": ' + b"1" * 5000 + b"}",
        "5000-digit float": b'{"a": 0.' + b"1" * 5000 + b"}",
        "1e400": b'{"a": 1e400}', "-1e400": b'{"a": -1e400}', "NaN": b'{"a": NaN}',
        "Infinity": b'{"a": Infinity}', "latin-1": b'{"name": "caf\xe9"}',
        "UTF-16": '{"a": 1}'.encode("utf-16"), "binary": bytes(range(256)),
        "empty": b"", "truncated": b'{"format": ', "2M bindings": None, "100 MB sparse": None,
        "4 MB string": b'{"name": "' + b"x" * (4 << 20) + b'"}',
        "wide list": b"[" + b"0," * 200_000 + b"0]",
    }
    paths = {}
    for name, content in cases.items():
        path = folder / (name.replace(" ", "_") + ".json")
        if name == "2M bindings":
            row_ = b'{"kind": "note", "number": 36, "action": "stop_all"},'
            path.write_bytes(b'{"format": "samplescout-midi-map", "version": 1, "bindings": ['
                             + row_ * 2_000_000 + b'{"kind": "note", "number": 37, "action": "stop_all"}]}')
        elif name == "100 MB sparse":
            with open(path, "wb") as f:
                f.truncate(100_000_000)
        else:
            path.write_bytes(content)
        paths[name] = path
    zero = folder / "dev_zero.json"
    zero.symlink_to("/dev/zero")
    paths["link to /dev/zero"] = zero
    fifo = folder / "fifo.json"
    os.mkfifo(fifo)
    paths["FIFO"] = fifo
    (folder / "folder.json").mkdir()
    paths["folder"] = folder / "folder.json"
    return paths


def presets_campaign(work: Path) -> dict:
    started = time.monotonic()
    paths = hostile_presets(work)
    handled = tracebacks = hangs = 0
    peak = 0
    failures = []
    for loader, imports in _LOADERS.items():
        for case, path in paths.items():
            code = (f"{imports}\ntry:\n    load({str(path)!r})\n    print('LOADED')\n"
                    "except Error as exc:\n    print('HANDLED', exc)\n")
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            try:
                done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                      text=True, timeout=30, preexec_fn=_capped(DECODE_CAP))
            except subprocess.TimeoutExpired:
                hangs += 1
                failures.append(f"{loader} / {case}: hang")
                continue
            peak = max(peak, before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
            if done.returncode == 0 and done.stdout.startswith("HANDLED"):
                handled += 1
            else:
                tracebacks += 1
                failures.append(f"{loader} / {case}: {(done.stdout + done.stderr).strip()[-300:]}")
    return row("hostile presets (3 loaders)", len(paths) * len(_LOADERS), handled, 0, tracebacks,
               hangs, peak * 1024, 0, failures=failures, seconds=round(time.monotonic() - started, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutants", type=int, default=3000)
    parser.add_argument("--queries", type=int, default=150, help="mutants used as search queries")
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args()
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="robustness-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, SAMPLESCOUT_LIBRARY_DIR=str(work / "library"),
                   XDG_CACHE_HOME=str(work / "cache"))
        seed_paths = seeds(work / "seeds")
        paths = mutants.make_mutants(seed_paths, args.mutants, work / "mutants", seed=args.seed)
        decode_row, outcomes = decode_campaign(paths)
        rows.append(decode_row)
        print(f"decode: {decode_row['seconds']} s", flush=True)
        rows.append(scan_campaign(work / "mutants", work / "library", len(paths)))
        print(f"scan: {rows[-1].get('seconds')} s", flush=True)
        step = max(1, len(paths) // max(1, args.queries))
        rows.append(search_campaign(paths[::step][:args.queries], env))
        print(f"search: {rows[-1]['seconds']} s", flush=True)
        rows.append(names_campaign(work, dict(env, SAMPLESCOUT_LIBRARY_DIR=str(work / "names-library"))))
        print(f"names: {rows[-1]['seconds']} s", flush=True)
        rows.append(presets_campaign(work))
    result = {
        "benchmark": "robustness",
        "command": "bench/robustness.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "seeds": {name: str(path) for name, path in sorted(seed_paths.items())},
        "mutations": list(mutants.MUTATIONS),
        "caps_bytes": {"decode": DECODE_CAP, "scan": mutants.SCAN_MEMORY_CAP, "cli": CLI_CAP},
        "not_covered": "library-side faults: non-UTF-8 names, unreadable folders, folder links, "
                       "concurrent runs, kill -9, damaged catalogs, full disk",
        "seconds": round(time.monotonic() - started, 1),
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    header = f"{'campaign':34} {'cases':>6} {'handled':>8} {'ok':>6} {'tracebk':>8} {'hangs':>6} {'mem MB':>8} {'lost':>5}"
    print(header)
    print("-" * len(header))
    for r in rows:
        lost = "-" if r["data_lost"] is None else r["data_lost"]
        print(f"{r['campaign']:34} {r['cases']:>6} {r['handled']:>8} {r['ok']:>6} {r['tracebacks']:>8} "
              f"{r['hangs']:>6} {r['memory_peak_mb']:>8} {lost:>5}")
    print(f"written to {RESULTS} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
