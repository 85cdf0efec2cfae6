"""Benchmark of live matching through a real JACK server (dummy backend).

A library of Debian samples (Sonic Pi and Hydrogen kits) is scanned, then padded to the
target index size with distractor files whose vectors are real library vectors plus gaussian
noise shaped like the spread of the real vectors (their own principal directions and
variances, scaled by PAD_SPREAD), and stored in the catalog like real rows. Isotropic noise
(the first recipe: norm 0.45 in all 512 directions) made an index that HNSW could not
navigate: only about a quarter of its vectors, real ones included, came back for their own
query even at ef 400, and four played files could never be found. The benchmark now checks
that every real vector finds itself (``index_self_recall``) before it measures anything. A JACK peer plays short library one-shots into the app's input,
1.6 s apart, clean and damaged (-12 dB and continuous white noise at -60 dBFS RMS); the app
runs the real Session (engine in its own process, LiveMatcher, drums profile).

A capture answers at once from what has been heard; when that cut the hit short, a
'capture-full' update follows once the whole window is in (the pads take it):
'top1_after_full_window' is the rate of that final answer.

Reported: re-identification recall@1/@10 (the first onset update inside each played file's
slot), latency from the end of the analysis window to the update being published
(p50/p95), and from a MIDI capture note (sent by a peer with python-rtmidi over JACK) to the
capture update (p50/p95; monotonic clock shared by the processes) in two ways of playing:
'spaced' (hits 1.6 s apart, the note 0.3 s after each) and 'playing' (hits 0.4 s apart, the
note 0.25 s after each, so live analyses of the next hits run while captures are asked).
'capture_pick' is offline: how often the capture rule (strongest onset in the last N
seconds) picks the hit played just before the note, for several N, spacings and delays.

    .venv/bin/python bench/live.py                 # 100k vectors, 24 files
    .venv/bin/python bench/live.py --size 10000 --files 12
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.catalog import Catalog, FileAnalysis  # noqa: E402
from app.index import VectorIndex  # noqa: E402
from app.paths import CATALOG_FILENAME  # noqa: E402

SPACING_S = 1.6
PAD_SPREAD = 0.7
WINDOWS_PER_PAD_FILE = 4


def build(cache: Path, size: int, seed: int) -> tuple[Path, list[Path]]:
    from app.library import Library
    from app.scanner import Scanner
    from bench.harness.live_support import SONIC_PI, HYDROGEN
    lib_dir = cache / f"live-{size}-shaped" / "library-data"
    src = cache / f"live-{size}-shaped" / "samples"
    src.mkdir(parents=True, exist_ok=True)
    sources = sorted(SONIC_PI.glob("*.flac"))
    for kit in ("BJA_Pacific", "HardElectro1", "ColomboAcousticDrumkit", "Millo-Drums_v.1"):
        sources += sorted(p for p in (HYDROGEN / kit).iterdir() if p.suffix.lower() in (".wav", ".flac", ".aiff"))
    linked = []
    for s in sources:
        d = src / f"{s.parent.name}__{s.name}"
        if not d.exists():
            os.symlink(s, d)
        linked.append(d)
    with Library(lib_dir) as library:
        Scanner(library, workers=2).scan([str(src)])
        model_id, dim = library.encoder.model_id, library.encoder.dim
        have = library.catalog.vector_count(model_id)
        if have < size:
            rng = np.random.default_rng(seed)
            real = np.concatenate([v for _, _, v in library.catalog.iter_vectors(model_id, dim=dim)])
            _, spread, directions = np.linalg.svd(real - real.mean(axis=0), full_matrices=False)
            spread = (spread / np.sqrt(len(real))).astype(np.float32)
            n_files = (size - have + WINDOWS_PER_PAD_FILE - 1) // WINDOWS_PER_PAD_FILE
            with library.catalog.transaction():
                for i in range(n_files):
                    base = real[rng.integers(len(real), size=WINDOWS_PER_PAD_FILE)]
                    z = rng.standard_normal((WINDOWS_PER_PAD_FILE, len(spread))).astype(np.float32)
                    vecs = base + np.float32(PAD_SPREAD) * ((z * spread) @ directions)
                    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                    library.catalog.store(FileAnalysis(
                        path=f"/nonexistent/pad/{i:06d}.wav", size=1, mtime_ns=0, content_hash=f"pad{i}",
                        status="indexed", duration=1.0, sample_rate=44100, channels=1, kind="one-shot",
                        model_id=model_id, start_samples=tuple(range(0, WINDOWS_PER_PAD_FILE * 1000, 1000)),
                        vectors=vecs))
    return lib_dir, linked


def build_index(lib_dir: Path) -> VectorIndex:
    from models.encoder import Encoder
    enc = Encoder()
    with Catalog(lib_dir / CATALOG_FILENAME) as catalog:
        parts = list(catalog.iter_vectors(enc.model_id, dim=enc.dim))
    ids = np.concatenate([p[0] for p in parts])
    fids = np.concatenate([p[1] for p in parts])
    vecs = np.concatenate([p[2] for p in parts])
    return VectorIndex.build(enc.dim, enc.model_id, ids, fids, vecs, num_threads=2)


def self_recall(index: VectorIndex, lib_dir: Path, real_files: set[int]) -> tuple[float, float]:
    """(fraction of the real library's vectors whose own file comes first, median score of
    the best distractor for them): a navigable index with crowded neighbourhoods."""
    from models.encoder import Encoder
    enc = Encoder()
    with Catalog(lib_dir / CATALOG_FILENAME) as catalog:
        parts = list(catalog.iter_vectors(enc.model_id, dim=enc.dim))
    fids = np.concatenate([p[1] for p in parts])
    vecs = np.concatenate([p[2] for p in parts])
    keep = np.isin(fids, list(real_files))
    found, rival = 0, []
    for f, v in zip(fids[keep], vecs[keep]):
        hits = index.search(v, 10)
        found += bool(hits) and hits[0].file_id == f
        rival += [h.score for h in hits if h.file_id not in real_files][:1]
    return found / max(1, int(keep.sum())), float(np.median(rival)) if rival else 0.0


def capture_pick_table(files: list[Path]) -> dict:
    """Offline: fraction of capture notes whose chosen onset is the last hit played, by capture
    span N, spacing between hits and delay from the hit to the note (drums onset settings)."""
    from app.match_profiles import get_profile
    from app.onsets import detect_onsets
    from models.encoder import MODEL_SAMPLE_RATE as sr
    from bench.harness.live_support import sequence
    params = get_profile("drums").onset_params()
    rng = np.random.default_rng(0)
    table = {}
    for spacing in (0.25, 0.4, 0.6, 1.0):
        order = [files[i] for i in rng.permutation(len(files))]
        signal, starts = sequence(order, sr, spacing)
        onsets = detect_onsets(signal, sr, params)
        for delay in (0.1, 0.2, 0.3):
            if delay >= spacing:
                continue
            for span in (0.25, 0.35, 0.5, 0.75, 1.0, 1.5):
                ok = 0
                for s in starts:
                    t = s + int(delay * sr)
                    inside = [o for o in onsets if t - int(span * sr) <= o.sample < t]
                    if inside:
                        best = max(inside, key=lambda o: (o.strength, o.sample))
                        ok += abs(best.sample - s) < 0.05 * sr
                table.setdefault(f"span {span} s", {})[f"spacing {spacing} s, delay {delay} s"] = round(ok / len(starts), 3)
    return table


def pct(values, q):
    return float(np.percentile(values, q)) if len(values) else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--captures", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "live.json"))
    args = ap.parse_args()

    from app.match_profiles import get_profile
    from app.session import CAPTURE_NOTE, Session
    from engine.stream import StreamConfig
    from bench.harness.jack_server import JackServer
    from bench.harness.live_peer import start_live_peer
    from bench.harness.live_support import played_files, sequence

    t0 = time.perf_counter()
    lib_dir, linked = build(ROOT / "bench" / "cache", args.size, args.seed)
    index = build_index(lib_dir)
    setup_s = time.perf_counter() - t0
    print(f"library {lib_dir}: {len(index)} vectors, {len(index.file_ids())} files ({setup_s:.0f} s setup)")
    files = played_files(linked, args.files)
    with Catalog(lib_dir / CATALOG_FILENAME) as catalog:
        real_files = {catalog.file_by_path(str(p)).id for p in linked if catalog.file_by_path(str(p))}
    recall_self, rival = self_recall(index, lib_dir, real_files)
    print(f"index self-recall of the real vectors {recall_self:.3f}; best distractor median score {rival:.3f}")

    server = JackServer().start()
    tmp = ROOT / "bench" / "out"
    tmp.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    try:
        cfg = StreamConfig(hostapi="JACK", input_channels=1, output_channels=1, block_size=64, midi_api="jack")
        session = Session(lib_dir, cfg, "drums", index=index)
        session.start(timeout=30)
        matcher = session.matcher
        try:
            for name, kw in (("clean", {}), ("damaged", {"gain_db": -12.0, "noise_dbfs": -60.0})):
                signal, starts = sequence(files, 48000, SPACING_S, **kw)
                np.save(tmp / "live_signal.npy", signal)
                updates = []
                matcher.subscribe(updates.append)
                peer = start_live_peer(server, "play", tmp / "live_signal.npy", "PortAudio:in_")
                before = session.engine.ring.end_frame
                n_lat = len(matcher.latencies())
                peer.go()
                time.sleep(2.0)  # locate the signal in the ring while it is still held
                end = session.engine.ring.end_frame
                tape = session.engine.ring.read(before, end - before)[:, 0]
                offset = before + int(np.flatnonzero(tape)[0]) - int(np.flatnonzero(signal)[0])
                peer.result(timeout=len(signal) / 48000 + 30)
                time.sleep(1.5)
                matcher.unsubscribe(updates.append)
                ranks = []
                for path, s in zip(files, starts):
                    lo, hi = offset + s - 2048, offset + s + int((SPACING_S - 0.3) * 48000)
                    hits = [u for u in updates if u.reason == "onset" and u.onset_frame is not None
                            and lo <= u.onset_frame < hi]
                    paths = [x.path for x in hits[0].suggestions] if hits else []
                    ranks.append(paths.index(str(path)) + 1 if str(path) in paths else None)
                lat = matcher.latencies()[n_lat:]
                results[name] = {
                    "recall_at_1": sum(r == 1 for r in ranks) / len(ranks),
                    "recall_at_10": sum(r is not None and r <= 10 for r in ranks) / len(ranks),
                    "ranks": ranks, "updates": len(updates),
                    "latency_ms": {"p50": pct(lat, 50), "p95": pct(lat, 95), "max": max(lat) if lat else None,
                                   "n": len(lat)},
                }
            # MIDI capture note -> capture update published
            n = args.captures
            capture_files = files[:n]
            times = []
            on_capture = (lambda u: times.append((time.monotonic(), u))
                          if u.reason in ("capture", "capture-full") else None)
            matcher.subscribe(on_capture)
            for name, spacing, delay in (("spaced", SPACING_S, 0.3), ("playing", 0.4, 0.25)):
                times.clear()
                signal, starts = sequence(capture_files, 48000, spacing)
                np.save(tmp / "live_signal.npy", signal)
                delays = ",".join(f"{(s + int(delay * 48000)) / 48000:.3f}" for s in starts)
                sender = start_live_peer(server, "note", "Sample Scout", CAPTURE_NOTE, delays)
                player = start_live_peer(server, "play", tmp / "live_signal.npy", "PortAudio:in_")
                player.go()
                sender.go()
                player.result(timeout=len(signal) / 48000 + 30)
                sent = sender.result()["sent"]
                time.sleep(1.0)
                cap_lat, cap_ok, cap_top10, full_ok, detail = [], 0, 0, 0, []
                for i, (t_sent, path) in enumerate(zip(sent, capture_files)):
                    t_next = sent[i + 1] if i + 1 < len(sent) else float("inf")
                    after = [(t, u) for t, u in times if t_sent <= t < t_next and u.reason == "capture"]
                    # the pads' final answer: the full-window update of this capture, if one came
                    final = [u for t, u in times if t_sent <= t < t_next + 1.5 and u.reason == "capture-full"
                             and after and u.onset_frame == after[0][1].onset_frame]
                    last = final[0] if final else (after[0][1] if after else None)
                    full_ok += bool(last and last.suggestions) and last.suggestions[0].path == str(path)
                    if after:
                        t, u = after[0]
                        cap_lat.append((t - t_sent) * 1000)
                        paths = [x.path for x in u.suggestions]
                        cap_ok += bool(paths) and paths[0] == str(path)
                        cap_top10 += str(path) in paths[:10]
                        detail.append({"file": path.name, "rank": paths.index(str(path)) + 1 if str(path) in paths else None,
                                       "top": Path(paths[0]).name if paths else None,
                                       "onset_found": u.onset_frame is not None,
                                       "full_window_top": Path(final[0].suggestions[0].path).name
                                       if final and final[0].suggestions else None})
                    else:
                        detail.append({"file": path.name, "rank": None, "top": None, "published": False})
                results[f"midi_capture_{name}"] = {
                    "spacing_s": spacing, "note_after_hit_s": delay,
                    "latency_ms": {"p50": pct(cap_lat, 50), "p95": pct(cap_lat, 95),
                                   "max": max(cap_lat) if cap_lat else None, "n": len(cap_lat)},
                    "top1_is_last_hit": cap_ok / n, "top10_has_last_hit": cap_top10 / n, "notes": n,
                    "top1_after_full_window": full_ok / n,
                    "captures": detail,
                }
            matcher.unsubscribe(on_capture)
            stats = matcher.stats()
        finally:
            session.close()
    finally:
        server.stop()

    report = {
        "benchmark": "live", "index_vectors": len(index), "index_files": len(index.file_ids()),
        "padding": f"real vectors + gaussian noise in their principal directions x {PAD_SPREAD}",
        "index_self_recall": recall_self, "best_distractor_median_score": rival,
        "played_files": [str(Path(os.path.realpath(p)).relative_to("/usr/share")) for p in files],
        "damage": "gain -12 dB + continuous white noise -60 dBFS RMS",
        "profile": "drums (one-shot, 1.0 s window)", "jack": "dummy 48 kHz, 64 frames",
        "capture_span_s": get_profile("drums").capture_span, "capture_pick": capture_pick_table(files),
        "encoder_threads": 1, "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "load_avg_at_end": os.getloadavg(), "matcher_stats": {k: v for k, v in stats.items()
                                                              if not isinstance(v, float) or np.isfinite(v)},
        **results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'condition':<16}{'R@1':>6}{'R@10':>7}{'p50 ms':>9}{'p95 ms':>9}{'R@1 full':>10}")
    for name in ("clean", "damaged"):
        r = results[name]
        print(f"{name:<16}{r['recall_at_1']:>6.2f}{r['recall_at_10']:>7.2f}"
              f"{r['latency_ms']['p50']:>9.1f}{r['latency_ms']['p95']:>9.1f}")
    for name in ("spaced", "playing"):
        c = results[f"midi_capture_{name}"]
        print(f"{'capture ' + name:<16}{c['top1_is_last_hit']:>6.2f}{c['top10_has_last_hit']:>7.2f}"
              f"{c['latency_ms']['p50']:>9.1f}{c['latency_ms']['p95']:>9.1f}{c['top1_after_full_window']:>10.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
