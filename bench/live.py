"""Benchmark of live matching through a real JACK server (dummy backend).

Two indexes, two questions:

* **Recognition, on real files only.** Every audio file of the Debian sample packages the
  benchmarks may use (hydrogen-drumkits, hydrogen-drumkits-effects, sonic-pi-samples,
  lmms-common; the game-audio packages of the Makefile's TRAIN_PACKAGES that install audio
  files are added when present) is scanned into one library, and the index holds only their
  vectors. A JACK peer plays short library one-shots into the app's input, 1.6 s apart,
  clean and through a room and a microphone: each hit through the synthetic room of
  ``bench/damage.py`` (RT60 0.4 s, direct-to-reverberant 0 dB), an 8 kHz lowpass (order 6),
  then continuous white noise at NOISE_DBFS RMS over the whole take (room and mic noise
  floor). Gain is not damage here: the matcher normalises each block, so it cancels.
  A played file's level twin (the same recording at another level, ``models.level_twins``)
  or an exact copy elsewhere in the library counts as found; ``recall_at_1_strict`` does not.
  The live figure depends on the machine keeping up (a loaded machine skips input frames:
  see ``matcher_stats``), so the same takes are also searched offline ('offline_clean',
  'offline_room_mic'): each hit's analysis window cut where it starts and searched through
  the library's searcher, the query path the matcher calls.
* **Latency, on a padded index.** The same library padded to ``--size`` vectors with
  distractor files whose vectors are real vectors plus gaussian noise in their principal
  directions (x PAD_SPREAD). Those distractors score far below a real match, so the padded
  index is for latency only: no recognition figure is taken from it.

Reported per index: latency from the end of the analysis window to the update being
published (p50/p95), and from a MIDI capture note (sent by a peer with python-rtmidi over
JACK) to the capture update (p50/p95; monotonic clock shared by the processes). On the real
index, captures are played two ways: 'spaced' (hits 1.6 s apart, the note 0.3 s after each)
and 'playing' (hits 0.4 s apart, the note 0.25 s after each, so live analyses of the next
hits run while captures are asked), with how often the capture's top-1 is the hit played
just before the note ('top1_after_full_window': the answer after the 'capture-full' update
that follows when the capture cut the hit short). 'capture_pick' is offline: how often the
capture rule (strongest onset in the last N seconds) picks that hit, for several N, spacings
and delays.

    .venv/bin/python bench/live.py                 # 40 files, latency at 100k vectors
    .venv/bin/python bench/live.py --size 10000 --files 12
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.catalog import Catalog, FileAnalysis  # noqa: E402
from app.index import VectorIndex  # noqa: E402
from app.paths import CATALOG_FILENAME  # noqa: E402
from bench import damage  # noqa: E402
from bench.labels import DEBIAN_ROOTS  # noqa: E402

SPACING_S = 1.6
PAD_SPREAD = 0.7
WINDOWS_PER_PAD_FILE = 4
PAD_PREFIX = "/nonexistent/pad/"
NOISE_DBFS = -45.0
MAX_PLAYED_SECONDS = 1.2
DEVICE_RATE = 48000
DAMAGE = (f"per hit: synthetic room (RT60 {damage.REVERB_RT60} s, DRR 0 dB), lowpass "
          f"{damage.LOWPASS_HZ:.0f} Hz order {damage.LOWPASS_ORDER}; then continuous white noise "
          f"{NOISE_DBFS:.0f} dBFS RMS over the take")


def game_audio_roots() -> list[Path]:
    """Folders holding audio files of the installed packages named in the Makefile's
    TRAIN_PACKAGES (game audio and soundfonts); a soundfont (.sf2) is not a sample file."""
    import re
    import subprocess
    from bench.labels import AUDIO_EXTENSIONS
    match = re.search(r"^TRAIN_PACKAGES\s*:=\s*((?:.*\\\n)*.*)$", (ROOT / "Makefile").read_text(), re.M)
    packages = match.group(1).replace("\\\n", " ").split() if match else []
    folders = set()
    for package in packages:
        listing = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True).stdout
        folders |= {Path(f).parent for f in listing.splitlines()
                    if os.path.splitext(f)[1].lower() in AUDIO_EXTENSIONS and os.path.isfile(f)}
    # keep the outermost folders only
    return sorted(f for f in folders if not any(p in folders for p in f.parents))


def library_roots() -> list[Path]:
    return [r for r in DEBIAN_ROOTS if r.is_dir()] + game_audio_roots()


def build(cache: Path, size: int, seed: int) -> Path:
    """Scan the real roots into one library and store the latency pads beside them."""
    from app.library import Library
    from app.scanner import Scanner
    lib_dir = cache / f"live-real-padded-{size}" / "library-data"
    with Library(lib_dir) as library:
        Scanner(library, workers=2).scan([str(r) for r in library_roots()])
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
                        path=f"{PAD_PREFIX}{i:06d}.wav", size=1, mtime_ns=0, content_hash=f"pad{i}",
                        status="indexed", duration=1.0, sample_rate=44100, channels=1, kind="one-shot",
                        model_id=model_id, start_samples=tuple(range(0, WINDOWS_PER_PAD_FILE * 1000, 1000)),
                        vectors=vecs))
    return lib_dir


def real_rows(lib_dir: Path) -> dict:
    """path -> FileRow of the library's real (indexed) files."""
    with Catalog(lib_dir / CATALOG_FILENAME) as catalog:
        rows = {}
        for root in library_roots():
            rows.update(catalog.files_under(root))
    return {p: r for p, r in rows.items() if r.status == "indexed"}


def build_indexes(lib_dir: Path, real_ids: set[int]) -> tuple[VectorIndex, VectorIndex]:
    """(index of the real files' vectors only, index of every vector, pads included)."""
    from models.encoder import Encoder
    enc = Encoder()
    with Catalog(lib_dir / CATALOG_FILENAME) as catalog:
        parts = list(catalog.iter_vectors(enc.model_id, dim=enc.dim))
    ids = np.concatenate([p[0] for p in parts])
    fids = np.concatenate([p[1] for p in parts])
    vecs = np.concatenate([p[2] for p in parts])
    keep = np.isin(fids, list(real_ids))
    real = VectorIndex.build(enc.dim, enc.model_id, ids[keep], fids[keep], vecs[keep], num_threads=2)
    padded = VectorIndex.build(enc.dim, enc.model_id, ids, fids, vecs, num_threads=2)
    return real, padded


def self_recall(index: VectorIndex, lib_dir: Path, real_ids: set[int]) -> tuple[float, float]:
    """(fraction of the real vectors whose own file comes first, median score of the best
    distractor for them): the padded index must stay navigable."""
    from models.encoder import Encoder
    enc = Encoder()
    with Catalog(lib_dir / CATALOG_FILENAME) as catalog:
        parts = list(catalog.iter_vectors(enc.model_id, dim=enc.dim))
    fids = np.concatenate([p[1] for p in parts])
    vecs = np.concatenate([p[2] for p in parts])
    keep = np.isin(fids, list(real_ids))
    found, rival = 0, []
    for f, v in zip(fids[keep], vecs[keep]):
        hits = index.search(v, 10)
        found += bool(hits) and hits[0].file_id == f
        rival += [h.score for h in hits if h.file_id not in real_ids][:1]
    return found / max(1, int(keep.sum())), float(np.median(rival)) if rival else 0.0


def played_files(rows: dict, count: int) -> list[Path]:
    """Short one-shots spread over the whole library (decaying hits that fit a drum window)."""
    short = sorted(Path(p) for p, r in rows.items()
                   if r.kind == "one-shot" and r.duration and 0.05 < r.duration < MAX_PLAYED_SECONDS
                   and "roll" not in Path(p).name.lower() and "empty" not in Path(p).name.lower())
    step = max(1, len(short) // count)
    return short[::step][:count]


def same_recordings(played: list[Path], rows: dict) -> dict[str, set[str]]:
    """For each played file, the library files that are the same recording: exact copies
    (content hash) and level twins (same length, lag-0 correlation >= TWIN_CORRELATION)."""
    import soundfile as sf
    from app.decode import read_mono
    from models.level_twins import level_twin_groups
    info = {}
    for p in rows:
        try:
            i = sf.info(p)
            info[p] = (i.frames, i.samplerate)
        except RuntimeError:
            continue
    out = {}
    for path in played:
        p = str(path)
        same = {q for q, r in rows.items() if r.content_hash == rows[p].content_hash}
        peers = [p] + [q for q in info if q != p and info.get(p) and info[q] == info[p]]
        if len(peers) > 1:
            for g in level_twin_groups([info[q][0] for q in peers], lambda i: read_mono(peers[i], 44100)):
                if 0 in g:
                    same |= {peers[i] for i in g}
        out[p] = same | {p}
    return out


def room_and_mic(audio: np.ndarray, i: int) -> np.ndarray:
    wet = damage.room_reverb(audio, damage.condition_rng(0, "live_room", i), sample_rate=DEVICE_RATE)
    return damage.lowpass(wet, sample_rate=DEVICE_RATE)


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


def latency(values) -> dict:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "max": max(values) if values else None,
            "n": len(values)}


def play_take(session, server, tmp: Path, files: list[Path], same: dict | None, **kw) -> dict:
    """Play the files into the input; the first onset update in each file's slot is its answer."""
    from bench.harness.live_peer import start_live_peer
    from bench.harness.live_support import sequence
    matcher = session.matcher
    signal, starts = sequence(files, DEVICE_RATE, SPACING_S, **kw)
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
    peer.result(timeout=len(signal) / DEVICE_RATE + 30)
    time.sleep(1.5)
    matcher.unsubscribe(updates.append)
    out = {"updates": len(updates), "latency_ms": latency(matcher.latencies()[n_lat:])}
    if same is None:
        return out
    ranks, strict = [], []
    for path, s in zip(files, starts):
        lo, hi = offset + s - 2048, offset + s + int((SPACING_S - 0.3) * DEVICE_RATE)
        hits = [u for u in updates if u.reason == "onset" and u.onset_frame is not None
                and lo <= u.onset_frame < hi]
        paths = [x.path for x in hits[0].suggestions] if hits else []
        ok = [i + 1 for i, p in enumerate(paths) if p in same[str(path)]]
        ranks.append(ok[0] if ok else None)
        strict.append(paths.index(str(path)) + 1 if str(path) in paths else None)
    return {"recall_at_1": sum(r == 1 for r in ranks) / len(ranks),
            "recall_at_10": sum(r is not None and r <= 10 for r in ranks) / len(ranks),
            "recall_at_1_strict": sum(r == 1 for r in strict) / len(strict),
            "ranks": ranks, "ranks_strict": strict, **out}


def offline_take(lib_dir: Path, index: VectorIndex, files: list[Path], same: dict, **kw) -> dict:
    """The same take, each hit's analysis window cut where it starts (the drums profile's
    pre-roll and window) and searched through the library's searcher, the query path the
    matcher calls: recognition alone, whatever the machine's load does to the live run."""
    import soxr
    from app.library import Library
    from app.match_profiles import get_profile
    from app.query import embed_query
    from bench.harness.live_support import sequence
    from models.encoder import MODEL_SAMPLE_RATE
    profile = get_profile("drums")
    signal, starts = sequence(files, DEVICE_RATE, SPACING_S, **kw)
    pre, length = int(profile.pre_roll_seconds * DEVICE_RATE), int(profile.window_seconds * DEVICE_RATE)
    ranks = []
    with Library(lib_dir) as library:
        searcher = library.searcher(index)
        for path, s in zip(files, starts):
            window = soxr.resample(signal[s - pre:s + length], DEVICE_RATE, MODEL_SAMPLE_RATE)
            results = searcher.search(embed_query(library.encoder, window), 10)
            ok = [r.rank for r in results if r.file.path in same[str(path)]]
            ranks.append(ok[0] if ok else None)
    return {"recall_at_1": sum(r == 1 for r in ranks) / len(ranks),
            "recall_at_10": sum(r is not None and r <= 10 for r in ranks) / len(ranks), "ranks": ranks}


def capture_take(session, server, tmp: Path, files: list[Path], spacing: float, delay: float,
                 same: dict | None) -> dict:
    """MIDI capture notes after each hit; latency from note to capture update, and its answer."""
    from app.session import CAPTURE_NOTE
    from bench.harness.live_peer import start_live_peer
    from bench.harness.live_support import sequence
    matcher = session.matcher
    times = []
    on_capture = (lambda u: times.append((time.monotonic(), u))
                  if u.reason in ("capture", "capture-full") else None)
    matcher.subscribe(on_capture)
    signal, starts = sequence(files, DEVICE_RATE, spacing)
    np.save(tmp / "live_signal.npy", signal)
    delays = ",".join(f"{(s + int(delay * DEVICE_RATE)) / DEVICE_RATE:.3f}" for s in starts)
    sender = start_live_peer(server, "note", "Sample Scout", CAPTURE_NOTE, delays)
    player = start_live_peer(server, "play", tmp / "live_signal.npy", "PortAudio:in_")
    player.go()
    sender.go()
    player.result(timeout=len(signal) / DEVICE_RATE + 30)
    sent = sender.result()["sent"]
    time.sleep(1.0)
    matcher.unsubscribe(on_capture)
    n = len(files)
    cap_lat, cap_ok, cap_top10, full_ok, detail = [], 0, 0, 0, []
    for i, (t_sent, path) in enumerate(zip(sent, files)):
        t_next = sent[i + 1] if i + 1 < len(sent) else float("inf")
        after = [(t, u) for t, u in times if t_sent <= t < t_next and u.reason == "capture"]
        if not after:
            detail.append({"file": path.name, "rank": None, "top": None, "published": False})
            continue
        t, u = after[0]
        cap_lat.append((t - t_sent) * 1000)
        if same is None:
            continue
        # the pads' final answer: the full-window update of this capture, if one came
        final = [v for t2, v in times if t_sent <= t2 < t_next + 1.5 and v.reason == "capture-full"
                 and v.onset_frame == u.onset_frame]
        last = final[0] if final else u
        match = same[str(path)]
        full_ok += bool(last.suggestions) and last.suggestions[0].path in match
        paths = [x.path for x in u.suggestions]
        cap_ok += bool(paths) and paths[0] in match
        cap_top10 += any(p in match for p in paths[:10])
        detail.append({"file": path.name, "top": Path(paths[0]).name if paths else None,
                       "top_is_hit": bool(paths) and paths[0] in match,
                       "onset_found": u.onset_frame is not None,
                       "full_window_top": Path(final[0].suggestions[0].path).name
                       if final and final[0].suggestions else None})
    out = {"spacing_s": spacing, "note_after_hit_s": delay, "notes": n, "latency_ms": latency(cap_lat)}
    if same is not None:
        out.update(top1_is_last_hit=cap_ok / n, top10_has_last_hit=cap_top10 / n,
                   top1_after_full_window=full_ok / n, captures=detail)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=100_000, help="vectors in the padded (latency) index")
    ap.add_argument("--files", type=int, default=40, help="one-shots played per take")
    ap.add_argument("--captures", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "live.json"))
    args = ap.parse_args()

    from app.match_profiles import get_profile
    from app.session import Session
    from engine.stream import StreamConfig
    from bench.harness.jack_server import JackServer

    t0 = time.perf_counter()
    lib_dir = build(ROOT / "bench" / "cache", args.size, args.seed)
    rows = real_rows(lib_dir)
    real_ids = {r.id for r in rows.values()}
    real_index, padded_index = build_indexes(lib_dir, real_ids)
    files = played_files(rows, args.files)
    same = same_recordings(files, rows)
    setup_s = time.perf_counter() - t0
    print(f"library {lib_dir}: {len(rows)} real files, {len(real_index)} real vectors; "
          f"padded index {len(padded_index)} vectors ({setup_s:.0f} s setup)", flush=True)
    recall_self, rival = self_recall(padded_index, lib_dir, real_ids)
    print(f"padded index self-recall of the real vectors {recall_self:.3f}; "
          f"best distractor median score {rival:.3f}", flush=True)

    results: dict = {"recognition_real_files": {}, "latency_padded_index": {}}
    for name, kw in (("clean", {}), ("room_mic", {"damage": room_and_mic, "noise_dbfs": NOISE_DBFS})):
        results["recognition_real_files"][f"offline_{name}"] = r = offline_take(lib_dir, real_index, files, same, **kw)
        print(f"offline {name}: R@1 {r['recall_at_1']:.3f} R@10 {r['recall_at_10']:.3f}", flush=True)
    server = JackServer().start()
    cfg = StreamConfig(hostapi="JACK", input_channels=1, output_channels=1, block_size=64, midi_api="jack")
    try:
        with tempfile.TemporaryDirectory(prefix="live-bench-") as d:
            tmp = Path(d)
            for which, index in (("recognition_real_files", real_index), ("latency_padded_index", padded_index)):
                session = Session(lib_dir, cfg, "drums", index=index)
                session.start(timeout=30)
                part = results[which]
                real = which == "recognition_real_files"
                try:
                    part["clean"] = play_take(session, server, tmp, files, same if real else None)
                    if real:
                        part["room_mic"] = play_take(session, server, tmp, files, same,
                                                     damage=room_and_mic, noise_dbfs=NOISE_DBFS)
                    shapes = (("spaced", SPACING_S, 0.3), ("playing", 0.4, 0.25)) if real else (("spaced", SPACING_S, 0.3),)
                    for name, spacing, delay in shapes:
                        part[f"midi_capture_{name}"] = capture_take(
                            session, server, tmp, files[:args.captures], spacing, delay, same if real else None)
                    part["matcher_stats"] = {k: v for k, v in session.matcher.stats().items()
                                             if not isinstance(v, float) or np.isfinite(v)}
                finally:
                    session.close()
                print(f"{which} done", flush=True)
    finally:
        server.stop()

    rec, lat = results["recognition_real_files"], results["latency_padded_index"]
    rec.update(index_vectors=len(real_index), index_files=len(real_index.file_ids()),
               roots=[str(r) for r in library_roots()], damage_room_mic=DAMAGE,
               found_means="the played file, an exact copy or a level twin of it (strict: the file itself)")
    lat.update(index_vectors=len(padded_index), index_files=len(padded_index.file_ids()),
               use="latency only: its distractors score far below a real match, no recognition figure",
               padding=f"real vectors + gaussian noise in their principal directions x {PAD_SPREAD}",
               index_self_recall=recall_self, best_distractor_median_score=rival)
    report = {
        "benchmark": "live", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "played_files": [str(p.relative_to("/usr/share")) for p in files],
        "profile": "drums (one-shot, 1.0 s window)", "jack": f"dummy {DEVICE_RATE} Hz, 64 frames",
        "capture_span_s": get_profile("drums").capture_span, "capture_pick": capture_pick_table(files),
        "encoder_threads": 1, "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "load_avg_at_end": os.getloadavg(), **results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'index / take':<34}{'R@1':>6}{'R@10':>7}{'p50 ms':>9}{'p95 ms':>9}{'R@1 full':>10}")
    for which, part in results.items():
        for name, r in part.items():
            if not isinstance(r, dict) or "ranks" not in r and "latency_ms" not in r:
                continue
            r1 = r.get("recall_at_1", r.get("top1_is_last_hit"))
            r10 = r.get("recall_at_10", r.get("top10_has_last_hit"))
            full = r.get("top1_after_full_window")
            cells = "".join(f"{x:>{w}.2f}" if x is not None else f"{'-':>{w}}" for x, w in ((r1, 6), (r10, 7)))
            ms = r.get("latency_ms", {})
            full = f"{full:>10.2f}" if full is not None else f"{'-':>10}"
            print(f"{which.split('_')[0] + ' ' + name:<34}{cells}{ms.get('p50') or 0:>9.1f}{ms.get('p95') or 0:>9.1f}{full}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
