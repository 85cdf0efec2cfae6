"""Benchmark of the similarity map: layout quality and time, placing new samples, hover picking.

* real: the shipped encoder's vectors of the Debian sample packages (hydrogen-drumkits,
  sonic-pi-samples, lmms-common; scanned with the real scanner into bench/cache/map-real/),
  one vector per file as the map uses. Trustworthiness at k = 10 (sklearn, cosine distance
  in the vector space, every file) of the full openTSNE layout; of a layout made without
  10 % of the files which are then placed by ``app.similarity_map.place``; of random points
  (the floor). With --umap also UMAP's, for the choice of library.
* synthetic: N points shaped like the real ones (LABELLED SYNTHETIC: real file vectors
  drawn at random plus small gaussian noise, normalised), laid out on two cores
  (n_jobs=2); trustworthiness on a random subsample of 5,000 points (sklearn's is
  quadratic in memory); then 1,000 new points placed into that layout.
* hover: the map panel's picking (``ui.map_panel.PointPicker``: a cKDTree over the points)
  at N points: time from a cursor position to the file to play, per hover. With --jack,
  also hover-to-sound through the real window host on a JACK dummy server: from the mouse
  move over a point to the preview voice's first played frame (the host's playhead).

    nice -n 5 .venv/bin/python bench/map.py                  # real + synthetic 100k + hover
    nice -n 5 .venv/bin/python bench/map.py --parts real --umap
    nice -n 5 .venv/bin/python bench/map.py --parts hover --jack

Writes bench/results/map.json (parts not run keep their last figures) and prints a table.
Goals: trustworthiness@10 >= 0.90; hover to sound <= 50 ms.
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

from app.similarity_map import file_vectors, layout, place  # noqa: E402

OUT = ROOT / "bench" / "results" / "map.json"
GOAL_TRUST = 0.90
GOAL_HOVER_MS = 50.0
SUBSAMPLE = 5000


def trust(vectors: np.ndarray, points: np.ndarray, k: int = 10) -> float:
    from sklearn.manifold import trustworthiness
    return float(trustworthiness(vectors, points, n_neighbors=k, metric="cosine"))


def real_library() -> Path:
    from app.library import Library
    from app.scanner import Scanner
    from bench.labels import DEBIAN_ROOTS
    roots = [str(r) for r in DEBIAN_ROOTS if r.is_dir()]
    if not roots:
        raise SystemExit("no Debian sample package found: apt-get install sonic-pi-samples "
                         "hydrogen-drumkits lmms-common")
    directory = ROOT / "bench" / "cache" / "map-real" / "library-data"
    with Library(directory) as library:
        Scanner(library, workers=2).scan(roots)
    return directory


def real_vectors() -> tuple[np.ndarray, np.ndarray, str]:
    from app.library import Library
    with Library(real_library()) as library:
        ids, vectors = file_vectors(library.catalog, library.encoder.model_id, library.encoder.dim)
        return ids, vectors, library.encoder.model_id


def part_real(args, vectors: np.ndarray) -> dict:
    n = len(vectors)
    t0 = time.perf_counter()
    points = layout(vectors, n_jobs=2)
    seconds = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    held = rng.random(n) < 0.10
    base = layout(vectors[~held], n_jobs=2)
    t0 = time.perf_counter()
    placed = place(vectors[held], vectors[~held], base)
    place_s = time.perf_counter() - t0
    combined = np.zeros((n, 2))
    combined[~held], combined[held] = base, placed
    out = {"files": n, "layout_s": round(seconds, 2),
           "trustworthiness_10": round(trust(vectors, points), 4),
           "placed_files": int(held.sum()), "place_s": round(place_s, 4),
           "trustworthiness_10_with_placed": round(trust(vectors, combined), 4),
           "trustworthiness_10_random": round(trust(vectors, rng.normal(size=(n, 2))), 4)}
    if args.umap:
        import umap
        for label in ("umap_cold", "umap_warm"):
            t0 = time.perf_counter()
            fitted = umap.UMAP(n_neighbors=15, metric="cosine", n_jobs=2).fit_transform(vectors)
            out[f"{label}_s"] = round(time.perf_counter() - t0, 2)
        out["umap_trustworthiness_10"] = round(trust(vectors, fitted), 4)
    return out


def synthetic(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Real file vectors drawn at random plus small noise, normalised (labelled synthetic)."""
    rng = np.random.default_rng(seed)
    base = real[rng.integers(len(real), size=n)]
    noisy = base + rng.normal(scale=0.3 / np.sqrt(real.shape[1]), size=base.shape)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def part_synthetic(args, real: np.ndarray) -> dict:
    vectors = synthetic(real, args.size, seed=1)
    stages: dict[str, float] = {}
    t0 = time.perf_counter()

    def progress(stage, done, total):
        stages.setdefault(stage, time.perf_counter() - t0)

    points = layout(vectors, n_jobs=2, progress=progress)
    seconds = time.perf_counter() - t0
    rng = np.random.default_rng(2)
    sub = rng.choice(len(vectors), size=min(SUBSAMPLE, len(vectors)), replace=False)
    new = synthetic(real, args.new, seed=3)
    t0 = time.perf_counter()
    placed = place(new, vectors, points)
    place_s = time.perf_counter() - t0
    return {"data": "synthetic: real file vectors + gaussian noise (norm ~0.3), normalised",
            "points": len(vectors), "n_jobs": 2, "layout_s": round(seconds, 1),
            "neighbours_s": round(stages.get("layout", 0.0), 1),
            "trustworthiness_10_subsample": round(trust(vectors[sub], points[sub]), 4),
            "subsample": len(sub), "new_points": len(new), "place_s": round(place_s, 3),
            "placed_finite": bool(np.isfinite(placed).all())}


def part_hover(args, real: np.ndarray) -> dict:
    from ui.map_panel import PointPicker
    rng = np.random.default_rng(4)
    points = rng.normal(scale=40, size=(args.size, 2)).astype(np.float32)
    t0 = time.perf_counter()
    picker = PointPicker(points)
    build_s = time.perf_counter() - t0
    cursors = points[rng.integers(len(points), size=2000)] + rng.normal(scale=0.05, size=(2000, 2))
    times = []
    for x, y in cursors:
        t0 = time.perf_counter()
        picker.pick(float(x), float(y), 0.5)
        times.append((time.perf_counter() - t0) * 1e3)
    out = {"points": len(points), "picker_build_ms": round(build_s * 1e3, 1),
           "pick_ms_p50": round(float(np.percentile(times, 50)), 4),
           "pick_ms_p99": round(float(np.percentile(times, 99)), 4)}
    if args.jack:
        out.update(hover_to_sound(args))
    return out


def hover_to_sound(args) -> dict:
    """Mouse move over a point of the real map panel, over a SessionHost on a JACK dummy
    server, until the host's playhead shows the preview playing."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication
    from bench.harness.jack_server import JackServer
    from ui.host import AudioSettings
    from ui.map_panel import MapPanel
    from ui.session_host import SessionHost
    app = QApplication.instance() or QApplication([])
    server = JackServer().start()
    os.environ.update(server.env())
    host = SessionHost(real_library(), AudioSettings(hostapi="JACK", block_size=64))
    host.start()
    panel = MapPanel(host)
    panel.resize(900, 700)
    panel.show()
    latencies: dict[str, list[float]] = {"cold": [], "cached": []}
    try:
        deadline = time.monotonic() + 600     # the first layout of the real set
        while (host.session is None or not panel.loaded()) and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        if host.session is None or not panel.loaded():
            raise SystemExit("the host or the map did not come up")
        rng = np.random.default_rng(5)
        rows = rng.choice(panel.point_count(), size=args.hovers, replace=False)
        # cold: each file decoded on its first hover; cached: the same files hovered again
        for label in ("cold", "cached"):
            for row in rows:
                panel.leave()
                host.stop_all()
                time.sleep(0.05)
                t0 = time.perf_counter()
                token = panel.hover_row(int(row))
                while time.perf_counter() - t0 < 2.0:
                    app.processEvents()
                    if token is not None and (host.playhead(token) or 0) > 0:
                        latencies[label].append((time.perf_counter() - t0) * 1e3)
                        break
                    time.sleep(0.0005)
                host.stop_all()
                time.sleep(0.05)
    finally:
        panel.close()
        host.close()
        server.stop()
    out = {"hovers": args.hovers, "loadavg_1min_during_hover": os.getloadavg()[0]}
    for label, values in latencies.items():
        suffix = "" if label == "cold" else "_cached"
        out[f"heard{suffix}"] = len(values)
        for name, value in (("p50", np.percentile(values, 50) if values else None),
                            ("p95", np.percentile(values, 95) if values else None),
                            ("max", np.max(values) if values else None)):
            out[f"hover_to_sound_ms_{name}{suffix}"] = None if value is None else round(float(value), 1)
    return out


def print_table(results: dict) -> None:
    print(f"{'measure':44s} {'value':>12s}  goal")
    real = results.get("real", {})
    syn = results.get("synthetic", {})
    hover = results.get("hover", {})
    rows = [
        (f"real: files", real.get("files"), ""),
        ("real: layout s (2 cores)", real.get("layout_s"), ""),
        ("real: trustworthiness@10 (all files)", real.get("trustworthiness_10"), f">= {GOAL_TRUST}"),
        ("real: trustworthiness@10, 10% placed", real.get("trustworthiness_10_with_placed"), f">= {GOAL_TRUST}"),
        ("real: trustworthiness@10, random points", real.get("trustworthiness_10_random"), "(floor)"),
        ("real: UMAP trustworthiness@10", real.get("umap_trustworthiness_10"), ""),
        ("real: UMAP s cold / warm", f"{real.get('umap_cold_s')} / {real.get('umap_warm_s')}"
         if "umap_cold_s" in real else None, ""),
        (f"synthetic: points", syn.get("points"), ""),
        ("synthetic: layout s (n_jobs=2)", syn.get("layout_s"), ""),
        ("synthetic: trustworthiness@10 (5k subsample)", syn.get("trustworthiness_10_subsample"), f">= {GOAL_TRUST}"),
        (f"synthetic: place {syn.get('new_points')} new points, s", syn.get("place_s"), ""),
        (f"hover: pick ms p99 at {hover.get('points')} points", hover.get("pick_ms_p99"), ""),
        ("hover: to sound ms p50, cold (JACK)", hover.get("hover_to_sound_ms_p50"), f"<= {GOAL_HOVER_MS}"),
        ("hover: to sound ms p95, cold (JACK)", hover.get("hover_to_sound_ms_p95"), f"<= {GOAL_HOVER_MS}"),
        ("hover: to sound ms p50, cached (JACK)", hover.get("hover_to_sound_ms_p50_cached"), f"<= {GOAL_HOVER_MS}"),
        ("hover: to sound ms p95, cached (JACK)", hover.get("hover_to_sound_ms_p95_cached"), f"<= {GOAL_HOVER_MS}"),
    ]
    for name, value, goal in rows:
        if value is not None:
            print(f"{name:44s} {str(value):>12s}  {goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="real,synthetic,hover")
    parser.add_argument("--size", type=int, default=100_000, help="points of the synthetic layout")
    parser.add_argument("--new", type=int, default=1000, help="new points placed into it")
    parser.add_argument("--umap", action="store_true", help="also measure UMAP on the real set")
    parser.add_argument("--jack", action="store_true", help="hover to sound on a JACK dummy server")
    parser.add_argument("--hovers", type=int, default=30)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results.update({"cpus": os.cpu_count(), "machine": platform.machine(),
                    "loadavg_1min_at_start": os.getloadavg()[0]})
    _, real, model_id = real_vectors()
    results["model_id"] = model_id
    parts = args.parts.split(",")
    if "real" in parts:
        previous = results.get("real", {})
        results["real"] = part_real(args, real)
        if not args.umap:    # UMAP's figures stand until measured again
            results["real"].update({k: v for k, v in previous.items() if k.startswith("umap")})
    if "synthetic" in parts:
        results["synthetic"] = part_synthetic(args, real)
    if "hover" in parts:
        results["hover"] = part_hover(args, real)
    results["loadavg_1min_at_end"] = os.getloadavg()[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


if __name__ == "__main__":
    main()
