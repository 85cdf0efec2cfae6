"""A library of a million samples for bench/million.py, built once and kept in a cache dir.

Shaped like a real library: the Debian sample packages are scanned with the shipped encoder
(real rows, vectors, tags and sound analyses), then each real file is repeated in many
"packs" under new names, its vectors moved by small gaussian noise (so every copy is a
distinct but plausible sound with the same number of vectors as its original: about 1.5 per
file, one-shots one, loops several), its tags and sound analysis copied. The catalog is
written with bulk SQLite inserts; the tree on disk holds one empty file per row, stamped
with the row's size and mtime, so a re-scan of it is an unchanged re-scan.

    cache/debian/   the real library (catalog + index) of the Debian packages
    cache/lib-N/    the N-file library: catalog.sqlite3 and index.hnsw
    cache/tree-N/   the N files (empty) the catalog describes
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.catalog import Catalog  # noqa: E402
from app.index import DEFAULT_EF_CONSTRUCTION, VectorIndex, ef_search_for  # noqa: E402
from app.library import Library  # noqa: E402
from app.paths import CATALOG_FILENAME, INDEX_FILENAME  # noqa: E402
from app.scanner import Scanner  # noqa: E402

DEBIAN_SETS = ["/usr/share/hydrogen/data/drumkits", "/usr/share/hydrogen/data/drumkits-effects",
               "/usr/share/sonic-pi/samples", "/usr/share/lmms/samples"]
NOISE = 0.25          # norm of the noise added to a real vector (as bench/query.py)
CHUNK = 20_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def debian_library(cache: Path, workers: int = 2) -> Path:
    """The real library of the Debian sample packages, scanned with the shipped models: the
    first time in full, later a re-scan that redoes what a changed model made."""
    folder = cache / "debian"
    folder.mkdir(parents=True, exist_ok=True)
    log("scanning the Debian sample packages with the shipped models")
    with Library(folder) as library:
        report = Scanner(library, workers=workers).scan(
            [f for f in DEBIAN_SETS if os.path.isdir(f)])
    log(f"  {report.indexed} indexed in {report.elapsed_s:.0f} s")
    return folder


def current_models() -> dict:
    """The encoder's and the sound analysis' model ids of this tree."""
    with tempfile.TemporaryDirectory() as empty, Library(Path(empty)) as library:
        return {"model_id": library.encoder.model_id, "sound_model": library.sound_model_id}


def _real_rows(db: sqlite3.Connection, model_id: str):
    files = db.execute(
        "SELECT id, path, duration, sample_rate, channels, kind FROM files "
        "WHERE status = 'indexed' ORDER BY path").fetchall()
    vectors: dict[int, list[tuple[int, bytes]]] = {}
    for file_id, start, blob in db.execute(
            "SELECT file_id, start_sample, vector FROM vectors WHERE model_id = ? ORDER BY id",
            (model_id,)):
        vectors.setdefault(file_id, []).append((start, blob))
    tags: dict[int, list[tuple]] = {}
    for row in db.execute("SELECT file_id, tag, source, confidence, model_id FROM tags "
                          "WHERE source != 'user'"):
        tags.setdefault(row[0], []).append(row[1:])
    sounds = {row[0]: row[1:] for row in db.execute(
        "SELECT file_id, analysis_model, loop_probability, tempo_bpm, tempo_confidence, key_tonic, "
        "key_mode, key_label, key_confidence, root_midi, tuning_cents, root_confidence, "
        "loudness_db, name_conflict FROM sounds")}
    files = [f for f in files if f[0] in vectors]
    return files, vectors, tags, sounds


def _common_root(paths: list[str]) -> str:
    return os.path.commonpath(paths)


def tree_plan(files: list, base: str, tree: Path, n_files: int) -> list[tuple]:
    """(real row, path in the tree) of every file, in path order (file id = position + 1):
    real file i of pack p is ``tree/packPPPP/<its folder>/<its stem>_PPPP<ext>``."""
    plan = []
    for i in range(n_files):
        pack, real_i = divmod(i, len(files))
        real_row = files[real_i]
        folder, name = os.path.split(os.path.relpath(real_row[1], base))
        stem, ext = os.path.splitext(name)
        plan.append((real_row, os.path.join(str(tree), f"pack{pack:04d}", folder,
                                            f"{stem}_{pack:04d}{ext}")))
    plan.sort(key=lambda p: p[1])
    return plan


def make_tree(plan: list[tuple]) -> set[str]:
    """Hard-link each real file at its place in the tree; returns the folders made."""
    made_dirs: set[str] = set()
    for real_row, path in plan:
        folder = os.path.dirname(path)
        if folder not in made_dirs:
            os.makedirs(folder, exist_ok=True)
            made_dirs.add(folder)
        if os.path.lexists(path):
            os.unlink(path)
        os.link(real_row[1], path)
    return made_dirs


def million_library(cache: Path, n_files: int, seed: int = 0,
                    ef_construction: int = DEFAULT_EF_CONSTRUCTION) -> dict:
    """Build (once) the catalog, index and tree of ``n_files`` files; returns its facts.
    Each stage is kept when done (``stages-N.json``), so an interrupted build resumes."""
    facts_path = cache / f"million-{n_files}.json"
    stages_path = cache / f"stages-{n_files}.json"
    models = current_models()
    for built in (facts_path, stages_path):
        # rows made by other models would send the re-scan into re-analysing every file
        if built.exists() and {k: json.loads(built.read_text()).get(k) for k in models} != models:
            log(f"{built.name}: made by other models than {models}, building again")
            facts_path.unlink(missing_ok=True)
            stages_path.unlink(missing_ok=True)
    if facts_path.exists():
        return json.loads(facts_path.read_text())
    facts = json.loads(stages_path.read_text()) if stages_path.exists() else {}
    lib_dir, tree = cache / f"lib-{n_files}", cache / f"tree-{n_files}"
    if "catalog" not in facts:
        facts.update(_catalog_and_tree(cache, n_files, seed, lib_dir, tree))
        stages_path.write_text(json.dumps(facts, indent=2) + "\n")
    facts.update(_index(lib_dir, facts, ef_construction))
    facts_path.write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def _catalog_and_tree(cache: Path, n_files: int, seed: int, lib_dir: Path, tree: Path) -> dict:
    real_dir = debian_library(cache)
    for leftover in (lib_dir / CATALOG_FILENAME, lib_dir / INDEX_FILENAME):
        leftover.unlink(missing_ok=True)
    lib_dir.mkdir(parents=True, exist_ok=True)
    with Library(real_dir) as real:
        model_id, dim = real.encoder.model_id, real.encoder.dim
        sound_model = real.sound_model_id
    Catalog(lib_dir / CATALOG_FILENAME).close()      # the schema, by the app's migrations
    src = sqlite3.connect(f"file:{real_dir / CATALOG_FILENAME}?mode=ro", uri=True)
    files, vectors, tags, sounds = _real_rows(src, model_id)
    src.close()
    base = _common_root([f[1] for f in files])
    rng = np.random.default_rng(seed)
    packs = -(-n_files // len(files))
    log(f"{len(files)} real files, {sum(len(v) for v in vectors.values())} real vectors; "
        f"{packs} packs -> {n_files} files")

    t0 = time.perf_counter()
    plan = tree_plan(files, base, tree, n_files)
    made_dirs = make_tree(plan)
    stats = {real_row[0]: os.stat(real_row[1]) for real_row in files}
    tree_s = time.perf_counter() - t0
    log(f"tree: {n_files} hard links in {len(made_dirs)} folders, {tree_s:.0f} s")

    # the catalog, bulk inserts in one transaction
    t0 = time.perf_counter()
    db = sqlite3.connect(lib_dir / CATALOG_FILENAME, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-400000")
    db.execute("BEGIN")
    db.execute("INSERT OR IGNORE INTO roots (path, added_at) VALUES (?, ?)", (str(tree), time.time()))
    now = time.time()
    vector_id = 0
    for start in range(0, n_files, CHUNK):
        chunk = plan[start:start + CHUNK]
        file_rows, vector_rows, tag_rows, sound_rows = [], [], [], []
        base_vecs = np.stack([np.frombuffer(blob, "<f4") for r, _ in chunk for _, blob in vectors[r[0]]])
        moved = base_vecs + rng.standard_normal(base_vecs.shape, dtype=np.float32) * np.float32(NOISE / np.sqrt(dim))
        moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        moved = moved.astype("<f4")
        v = 0
        for j, (real_row, path) in enumerate(chunk):
            file_id = start + j + 1
            real_id, _, duration, sample_rate, channels, kind = real_row
            st = stats[real_id]
            file_rows.append((file_id, path, st.st_size, st.st_mtime_ns, f"{file_id:040x}",
                              duration, sample_rate, channels, kind, "indexed", model_id, now))
            for start_sample, _ in vectors[real_id]:
                vector_id += 1
                vector_rows.append((vector_id, file_id, model_id, start_sample, moved[v].tobytes()))
                v += 1
            for tag, source, confidence, tag_model in tags.get(real_id, ()):
                tag_rows.append((file_id, tag, source, confidence, tag_model))
            sound = sounds.get(real_id)
            if sound is not None:
                sound_rows.append((file_id, sound_model, *sound[1:], now))
        db.executemany(
            "INSERT INTO files (id, path, size, mtime_ns, content_hash, duration, sample_rate, "
            "channels, kind, status, model_id, scanned_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            file_rows)
        db.executemany("INSERT INTO vectors (id, file_id, model_id, start_sample, vector) "
                       "VALUES (?,?,?,?,?)", vector_rows)
        db.executemany("INSERT INTO tags (file_id, tag, source, confidence, model_id) "
                       "VALUES (?,?,?,?,?)", tag_rows)
        db.executemany(
            "INSERT INTO sounds (file_id, analysis_model, loop_probability, tempo_bpm, "
            "tempo_confidence, key_tonic, key_mode, key_label, key_confidence, root_midi, "
            "tuning_cents, root_confidence, loudness_db, name_conflict, analysed_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", sound_rows)
    db.execute("UPDATE meta SET value = '1' WHERE key = 'generation'")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    catalog_s = time.perf_counter() - t0
    log(f"catalog: {n_files} files, {vector_id} vectors in {catalog_s:.0f} s, "
        f"{(lib_dir / CATALOG_FILENAME).stat().st_size / 1e9:.2f} GB")
    return {
        "files": n_files, "vectors": int(vector_id), "real_files": len(files),
        "real_vectors": int(sum(len(v) for v in vectors.values())),
        "vectors_per_file": round(vector_id / n_files, 3), "noise": NOISE, "dim": dim,
        "model_id": model_id, "sound_model": sound_model, "tree_folders": len(made_dirs),
        "build_seconds": {"tree": round(tree_s, 1), "catalog": round(catalog_s, 1)},
        "catalog": str(lib_dir / CATALOG_FILENAME),
        "catalog_gb": round((lib_dir / CATALOG_FILENAME).stat().st_size / 1e9, 3),
        "tree": str(tree), "library": str(lib_dir),
    }


def _index(lib_dir: Path, facts: dict, ef_construction: int) -> dict:
    """The index of every vector of the catalog, built with the app's M on all threads and
    saved with the catalog's generation, as ``Library`` would load it."""
    with Catalog(lib_dir / CATALOG_FILENAME) as catalog:
        generation = catalog.generation
        t0 = time.perf_counter()
        parts = list(catalog.iter_vectors(facts["model_id"], dim=facts["dim"], batch=50_000))
    vids = np.concatenate([p[0] for p in parts])
    fids = np.concatenate([p[1] for p in parts])
    vecs = np.concatenate([p[2] for p in parts])
    del parts
    read_s = time.perf_counter() - t0
    log(f"index: {len(vids)} vectors read in {read_s:.0f} s; building with "
        f"ef_construction {ef_construction}")
    t0 = time.perf_counter()
    index = VectorIndex.build(facts["dim"], facts["model_id"], vids, fids, vecs,
                              ef_search=ef_search_for(len(vids)), ef_construction=ef_construction,
                              num_threads=-1, generation=generation)
    build_s = time.perf_counter() - t0
    log(f"index: {len(vids)} vectors in {build_s:.0f} s ({len(vids) / build_s:.0f} vectors/s)")
    index.save(lib_dir / INDEX_FILENAME)
    return {"index_build_s": round(build_s, 1), "index_ef_construction": ef_construction,
            "index_M": index.M, "index_build_vectors_per_s": round(len(vids) / build_s),
            "index_build_threads": os.cpu_count(),
            "index_gb": round((lib_dir / INDEX_FILENAME).stat().st_size / 1e9, 3)}


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--ef-construction", type=int, default=DEFAULT_EF_CONSTRUCTION,
                        help="the index's build effort (the app's default unless the machine "
                             "is too slow to build a million vectors with it; said in the facts)")
    args = parser.parse_args()
    print(json.dumps(million_library(args.cache, args.files,
                                     ef_construction=args.ef_construction), indent=2))
