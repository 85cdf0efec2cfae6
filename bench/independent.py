"""Independent re-identification benchmark on audio no model here was trained or tuned on.

``bench/retrieval.py`` helped choose the training recipe, so its numbers are
optimistic. This benchmark asks the same question (a damaged copy of a library file
must find its own file) on Debian packages reserved for evaluation
(``FORBIDDEN_PACKAGES`` in ``models/train/sources.py``), which no training run read
and no benchmark used while the recipe was tuned.

Library (fixed; ``--seed`` does not change it):

- ``sound-theme-freedesktop``: every ``.oga`` under ``/usr/share/sounds/freedesktop``.
- neverball: every ``.ogg`` under ``/usr/share/games/neverball`` (sounds and the
  background music). On Debian 12 these files are installed by ``neverball-common``,
  which ``neverball-data`` depends on (same source package); ``neverball-data`` itself
  holds the levels. ``FORBIDDEN_PACKAGES`` names only ``neverball-data``, but no
  training source reads either package.
- ``timgm6mb-soundfont``: single notes rendered from ``/usr/share/sounds/sf2/TimGM6mb.sf2``
  with the ``fluidsynth`` program, by this script (the MIDI writer of
  ``models/train/midi_render.py``, the same fluidsynth flags, but this SoundFont and
  never FluidR3): 3 notes of each of the 128 GM programs (pitch 36-84, velocity
  60-127, clip 1-3 s with the note held until 0.3 s before the end and a 10 ms fade)
  and 10 keys (35-81) of each of the 8 drum kits, from a fixed seed. Each clip's
  tail below -60 dB of its peak is dropped (so many drum hits are shorter than 1 s),
  silent renders are skipped, and each clip is normalised to a -3 dBFS peak, as
  sample packs usually are. TimGM6mb plays one sample for many drum keys across kits
  (and for some programs), so a render that correlates >= 0.95 (best lag within
  50 ms) with an earlier render of the same pitch or key is dropped: it would differ
  only by velocity and length, and finding "the other one" would not be an error.
  The 16-bit WAVs are written once to ``bench/cache/independent/`` (git-ignored) and
  reused while the SoundFont and the recipe are unchanged. Caveat: training rendered
  the same GM programs from FluidR3 in the same way, so these notes are new recordings
  of familiar instrument families, not a new kind of material.

Skipped: ``freepats`` (GUS ``.pat`` patches, which libsndfile cannot decode) and
``warzone2100-data`` (a 140 MB download for a benchmark).

Before anything is embedded, every library source must be a file installed by its
declared package and by no package that trained a model or fed ``bench/retrieval.py``
(:func:`check_library`); otherwise the run stops. Byte-identical files are kept once.

Scoring is ``bench/retrieval.py``'s (its ``file_scores``, ``rank_of``,
``level_twins``, ``choose``, ``embed_library``): a file's score is the best cosine
over query vectors x file vectors by exact brute force, ties count against the query,
and level twins (same audio up to gain) count as the file. Damage is
``bench/damage.py``'s nine conditions plus the 2 s excerpt, whose queries come from
files longer than 4 s (only the neverball music and one freedesktop sound, so that
row has few queries). Query choice and damage use seed
streams of their own, so no query here repeats one of ``bench/retrieval.py``'s
random draws.

Same-tag precision of the neighbours: each rendered TimGM6mb note carries the tag of its GM
program or drum key (``models.train.tag_data``'s ``gm_program_tag`` and ``gm_drum_tag``,
the labels the tag head learned from FluidR3 renders), and every labelled note asks for its
10 nearest labelled notes (itself and its level twins left out): P@10, micro and macro over
tags, per model; and the same share of what a tag's size lets a note reach,
``min(10, n - 1)``, since drum keys are few once TimGM6mb's shared samples are dropped
(``macro_of_reachable``). The ``scout`` model is also scored as the app orders a search by example
(``app.similar_kind``) for "similar" on a library file: the file itself first, then the
index's best 30 others by cosine plus agreement of the type tags that the shipped tag head
gives each note (the tags a scan stores). Nothing here chose the weight of that agreement.

Models: ``scout``, ``aisfx``, ``mfcc`` as in ``bench/retrieval.py`` (``--models``),
plus ``student`` for ``--student PATH`` (an ONNX encoder file, run exactly like
``bench/retrieval_student.py`` runs one; its cache key includes the file's hash).

Run: ``nice -n 15 .venv/bin/python bench/independent.py [--queries 200] [--seed 0]
[--models scout,aisfx,mfcc] [--student PATH] [--out bench/results/independent.json]``.
Writes JSON and prints a table (cells: R@1 / R@10).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import re  # noqa: E402

from app import similar_kind  # noqa: E402
from bench import damage, retrieval  # noqa: E402
from bench.retrieval import (  # noqa: E402
    SAMPLE_RATE, EncoderModel, LibraryFile, Model, best_lag_correlation, build_model, choose,
    embed_library, file_sha1, find_level_twins, rank_condition, recall_summary,
)

CACHE_DIR = REPO / "bench" / "cache" / "independent"
DEFAULT_OUT = REPO / "bench" / "results" / "independent.json"
DEFAULT_MODELS = ("scout", "aisfx", "mfcc")

FREEDESKTOP_ROOT = Path("/usr/share/sounds/freedesktop")
NEVERBALL_ROOT = Path("/usr/share/games/neverball")
SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")

# package name in the results -> (Debian packages that may own its files, root, suffixes)
FILE_SOURCES = {
    "sound-theme-freedesktop": (("sound-theme-freedesktop",), FREEDESKTOP_ROOT, (".oga",)),
    "neverball": (("neverball-data", "neverball-common"), NEVERBALL_ROOT, (".ogg",)),
}
SOUNDFONT_PACKAGE = "timgm6mb-soundfont"
EVAL_PACKAGES = ("sound-theme-freedesktop", "neverball-data", "neverball-common",
                 SOUNDFONT_PACKAGE)
# packages whose audio trained a model (models/train/sources.py) or fed bench/retrieval.py
RETRIEVAL_PACKAGES = ("hydrogen-drumkits", "hydrogen-drumkits-effects", "sonic-pi-samples",
                      "lmms-common")

# seed streams: bench/retrieval.py uses choose(..., 2) and (..., 3) and plain condition names
QUERY_STREAM = 102
EXCERPT_STREAM = 103
DAMAGE_TAG = "independent/"

# TimGM6mb renders (changing any of these re-renders)
RENDER_VERSION = 3
RENDER_SEED = 20260301
NOTES_PER_PROGRAM = 3
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40, 48)
KEYS_PER_KIT = 10
CLIP_SECONDS = (1.0, 3.0)
RELEASE_SECONDS = 0.3
FADE_SECONDS = 0.01
DRUM_HOLD_SECONDS = 0.3
TAIL_FLOOR_DB = -60.0
MIN_CLIP_SECONDS = 0.1
PEAK_DBFS = -3.0
# between-render correlations of one pitch or key fall either above 0.98 (the same
# sample) or below 0.9; see drop_near_duplicates
NEAR_DUPLICATE_CORRELATION = 0.95


def training_packages() -> tuple[str, ...]:
    from models.train import sources
    return tuple(sources.PACKAGES)


# ---------------------------------------------------------------- library sources


def installed_files(package: str) -> set[str]:
    """Paths ``dpkg -L`` lists for an installed package (empty when it is not installed)."""
    result = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    return set(result.stdout.splitlines()) if result.returncode == 0 else set()


def check_library(sources: list[tuple[str, Path]],
                  installed: Callable[[str], set[str]] = installed_files) -> None:
    """Refuse any source not installed by its declared package, or installed by a
    package that trained a model or feeds ``bench/retrieval.py``.

    ``sources`` holds (declared package, path); a path counts by its own name and by
    its resolved name. The declared package must be one of :data:`EVAL_PACKAGES`.
    """
    forbidden: dict[str, str] = {}
    for package in training_packages() + RETRIEVAL_PACKAGES:
        for p in installed(package):
            forbidden.setdefault(p, package)
    owned: dict[str, set[str]] = {}
    problems = []
    for package, path in sources:
        names = {str(path), str(Path(path).resolve())}
        if package not in EVAL_PACKAGES:
            problems.append(f"{path}: {package} is not a package reserved for evaluation")
            continue
        hit = sorted({forbidden[n] for n in names if n in forbidden})
        if hit:
            problems.append(f"{path}: installed by {', '.join(hit)}, which a model was "
                            "trained on or bench/retrieval.py uses")
            continue
        if package not in owned:
            owned[package] = installed(package)
        if not names & owned[package]:
            problems.append(f"{path}: not installed by {package}")
    if problems:
        raise RuntimeError("library refused:\n  " + "\n  ".join(problems[:20])
                           + (f"\n  ... {len(problems) - 20} more" if len(problems) > 20 else ""))


def package_files() -> dict[str, list[tuple[str, Path]]]:
    """Per result package, (owning Debian package, path) of each audio file it installed."""
    out = {}
    for name, (packages, root, suffixes) in FILE_SOURCES.items():
        found = []
        for package in packages:
            for p in sorted(installed_files(package)):
                path = Path(p)
                if path.suffix.lower() in suffixes and root in path.parents and path.is_file():
                    found.append((package, path))
        if not found:
            raise SystemExit(f"{name}: no audio under {root}; apt-get install "
                             + " ".join(packages))
        out[name] = found
    return out


# ---------------------------------------------------------------- TimGM6mb renders


def _render_spec() -> dict:
    return {"version": RENDER_VERSION, "seed": RENDER_SEED,
            "notes_per_program": NOTES_PER_PROGRAM, "drum_kits": list(DRUM_KITS),
            "keys_per_kit": KEYS_PER_KIT, "clip_seconds": list(CLIP_SECONDS),
            "release_seconds": RELEASE_SECONDS, "fade_seconds": FADE_SECONDS,
            "drum_hold_seconds": DRUM_HOLD_SECONDS, "tail_floor_db": TAIL_FLOOR_DB,
            "min_clip_seconds": MIN_CLIP_SECONDS, "peak_dbfs": PEAK_DBFS,
            "near_duplicate_correlation": NEAR_DUPLICATE_CORRELATION,
            "pitch": [36, 84], "velocity": [60, 127],
            "drum_velocity": [70, 127], "drum_keys": [35, 81], "subtype": "PCM_16",
            "fluidsynth": ["-g", "0.6", "reverb off", "chorus off"]}


def note_plan() -> list[dict]:
    """The fixed list of notes to render: one dict per clip (deterministic)."""
    rng = np.random.default_rng([RENDER_SEED, 1])
    plan = []
    for program in range(128):
        for k in range(NOTES_PER_PROGRAM):
            pitch = int(rng.integers(36, 85))
            velocity = int(rng.integers(60, 128))
            seconds = float(rng.uniform(*CLIP_SECONDS))
            plan.append({"name": f"gm{program:03d}-n{k}-p{pitch}-v{velocity}", "drum": False,
                         "program": program, "pitch": pitch, "velocity": velocity,
                         "seconds": seconds, "hold": seconds - RELEASE_SECONDS})
    for kit in DRUM_KITS:
        keys = sorted(rng.choice(np.arange(35, 82), size=KEYS_PER_KIT, replace=False).tolist())
        for key in keys:
            velocity = int(rng.integers(70, 128))
            seconds = float(rng.uniform(*CLIP_SECONDS))
            plan.append({"name": f"kit{kit:03d}-key{key}-v{velocity}", "drum": True,
                         "program": kit, "pitch": int(key), "velocity": velocity,
                         "seconds": seconds, "hold": DRUM_HOLD_SECONDS})
    return plan


def _fluidsynth(events, total_seconds: float, tmp: Path) -> np.ndarray:
    """Render MIDI events with TimGM6mb (flags as models/train/midi_render.render)."""
    import soundfile as sf
    from models.train import midi_render
    mid, wav = tmp / "notes.mid", tmp / "notes.wav"
    midi_render.write_midi(mid, events + [(total_seconds, bytes([0xB0, 121, 0]))])
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SAMPLE_RATE),
                    "-o", "synth.reverb.active=0", "-o", "synth.chorus.active=0",
                    "-o", "synth.cpu-cores=1",
                    "-F", str(wav), "-T", "wav", str(SOUNDFONT), str(mid)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, not {SAMPLE_RATE}")
    audio = audio.mean(axis=1)
    n = int(total_seconds * SAMPLE_RATE)
    return np.pad(audio, (0, max(0, n - audio.size)))[:n]


def _finish_clip(audio: np.ndarray) -> np.ndarray:
    from models.train.sources import trim_tail
    audio = np.asarray(audio, dtype=np.float32).copy()
    fade = min(audio.size, int(FADE_SECONDS * SAMPLE_RATE))
    if fade:
        audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return trim_tail(audio, TAIL_FLOOR_DB)


def drop_near_duplicates(folder: Path, groups: dict[tuple, list[str]]) -> dict[str, str]:
    """Delete renders that repeat an earlier render of the same pitch or drum key.

    TimGM6mb maps many drum keys of several kits, and some programs, to one sample;
    renders that differ only by velocity and length would be scored as errors that
    are not. In plan order, a clip whose best-lag correlation (within 50 ms) with a
    kept clip of its group reaches :data:`NEAR_DUPLICATE_CORRELATION` is deleted.
    Returns {dropped name: the kept name it repeats}.
    """
    import soundfile as sf
    max_lag = int(0.05 * SAMPLE_RATE)
    dropped = {}
    for names in groups.values():
        kept: list[tuple[str, np.ndarray]] = []
        for name in names:
            audio, _ = sf.read(str(folder / name), dtype="float64")
            match = next((k for k, other in kept if best_lag_correlation(
                audio, other, max_lag) >= NEAR_DUPLICATE_CORRELATION), None)
            if match is None:
                kept.append((name, audio))
            else:
                dropped[name] = match
                (folder / name).unlink()
    return dropped


def render_soundfont(log=None) -> tuple[Path, dict]:
    """Render :func:`note_plan` once into the cache; return (folder, manifest)."""
    import soundfile as sf
    from models.train import midi_render
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if shutil.which("fluidsynth") is None:
        raise SystemExit("fluidsynth is not installed (apt-get install fluidsynth)")
    if not SOUNDFONT.is_file():
        raise SystemExit(f"{SOUNDFONT} missing (apt-get install {SOUNDFONT_PACKAGE})")
    check_library([(SOUNDFONT_PACKAGE, SOUNDFONT)])
    font_sha1 = file_sha1(SOUNDFONT)
    spec = _render_spec()
    key = hashlib.sha1(json.dumps([font_sha1, spec], sort_keys=True).encode()).hexdigest()[:12]
    folder = CACHE_DIR / f"timgm6mb-{key}"
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if all((folder / n).is_file() for n in manifest["files"]):
            return folder, manifest
    t0 = time.perf_counter()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="timgm6mb-", dir=CACHE_DIR))
    plan = note_plan()
    slot = midi_render.SLOT_SECONDS
    lead = 0.05
    written, silent = [], []
    pitch_groups: dict[tuple[bool, int], list[str]] = {}
    groups: dict[tuple[bool, int], list[dict]] = {}
    for item in plan:
        groups.setdefault((item["drum"], item["program"]), []).append(item)
    with tempfile.TemporaryDirectory() as tmp:
        for (drum, program), items in groups.items():
            channel = midi_render.DRUM_CHANNEL if drum else 0
            events = list(midi_render.program_change(channel, program))
            for k, item in enumerate(items):
                events += midi_render.note(channel, item["pitch"], item["velocity"],
                                           k * slot + lead, item["hold"])
            audio = _fluidsynth(events, len(items) * slot + 0.5, Path(tmp))
            for k, item in enumerate(items):
                start = int(round((k * slot + lead) * SAMPLE_RATE))
                clip = _finish_clip(audio[start:start + int(item["seconds"] * SAMPLE_RATE)])
                if clip.size < MIN_CLIP_SECONDS * SAMPLE_RATE:
                    silent.append(item["name"])
                    continue
                clip = clip * (10 ** (PEAK_DBFS / 20) / float(np.max(np.abs(clip))))
                name = item["name"] + ".wav"
                sf.write(str(work / name), clip, SAMPLE_RATE, subtype="PCM_16")
                written.append(name)
                pitch_groups.setdefault((item["drum"], item["pitch"]), []).append(name)
    dropped = drop_near_duplicates(work, pitch_groups)
    written = [n for n in written if n not in dropped]
    manifest = {"soundfont": str(SOUNDFONT), "soundfont_sha1": font_sha1, "spec": spec,
                "planned": len(plan), "files": written, "silent_or_too_short": silent,
                "near_duplicates_dropped": dropped,
                "render_s": round(time.perf_counter() - t0, 2)}
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(work, folder)
    log(f"  rendered {len(written)} TimGM6mb notes ({len(silent)} silent, "
        f"{len(dropped)} near-duplicates dropped) "
        f"in {manifest['render_s']:.0f} s")
    return folder, manifest


def rendered_tag(name: str) -> str | None:
    """The tag of a rendered note by its file name (``gmPPP-...``: GM program PPP;
    ``kitKKK-keyNN-...``: drum key NN), None where no tag of ours fits."""
    from models.train.tag_data import gm_drum_tag, gm_program_tag
    if m := re.match(r"gm(\d{3})-", name):
        return gm_program_tag(int(m.group(1)))
    if m := re.match(r"kit\d{3}-key(\d+)-", name):
        return gm_drum_tag(int(m.group(1)))
    return None


# ---------------------------------------------------------------- library


@dataclass
class IndependentFile(LibraryFile):
    package: str = ""


def collect_library(log=None) -> tuple[list[IndependentFile], dict]:
    by_package = package_files()
    folder, manifest = render_soundfont(log)
    sources = [s for found in by_package.values() for s in found]
    check_library(sources)
    entries = [(name, path) for name, found in by_package.items() for _, path in found]
    entries += [(SOUNDFONT_PACKAGE, folder / n) for n in sorted(manifest["files"])]
    files, seen, duplicates = [], {}, []
    for package, path in entries:
        digest = file_sha1(path)
        if digest in seen:
            duplicates.append([str(path), str(seen[digest])])
            continue
        seen[digest] = path
        stat = path.stat()
        label = rendered_tag(path.name) if package == SOUNDFONT_PACKAGE else None
        files.append(IndependentFile(path, stat.st_size, stat.st_mtime_ns, digest, None, label,
                                     package=package))
    counts = {
        "files_found": {name: len(found) for name, found in by_package.items()}
        | {SOUNDFONT_PACKAGE: len(manifest["files"])},
        "owning_debian_packages": {name: sorted({p for p, _ in found})
                                   for name, found in by_package.items()}
        | {SOUNDFONT_PACKAGE: [SOUNDFONT_PACKAGE]},
        "soundfont_notes_planned": manifest["planned"],
        "soundfont_notes_silent": len(manifest["silent_or_too_short"]),
        "soundfont_near_duplicates_dropped": len(manifest["near_duplicates_dropped"]),
        "soundfont_render_dir": str(folder),
        "duplicates_dropped": len(duplicates),
        "duplicates": duplicates,
    }
    return files, counts


@contextlib.contextmanager
def _own_embedding_cache():
    """bench/retrieval.py's embedding cache, in a folder of this benchmark's own."""
    saved = retrieval.CACHE_DIR
    retrieval.CACHE_DIR = CACHE_DIR / "embeddings"
    try:
        yield
    finally:
        retrieval.CACHE_DIR = saved


def _prune_embedding_cache(models: list[Model], files: list[LibraryFile]) -> None:
    """Forget cached vectors of files no longer in the library (e.g. an older render)."""
    keep = {retrieval._file_key(f) for f in files}
    for m in models:
        cache = retrieval.load_cache(m)
        if set(cache) - keep:
            retrieval.save_cache(m, {k: v for k, v in cache.items() if k in keep})


def build_student(path: Path) -> Model:
    """An extra encoder column, as bench/retrieval_student.py builds one."""
    if not path.is_file():
        raise SystemExit(f"student: model file not found: {path}")
    model = EncoderModel("student", trim_leading_silence=True, model_path=path)
    model.model_id += f"#{hashlib.sha1(path.read_bytes()).hexdigest()[:10]}"
    return model


# ---------------------------------------------------------------- run


def stored_type_tags(files: list[IndependentFile], indices: list[int],
                     lib: retrieval.Embedded) -> dict[int, dict[str, float]]:
    """The type tags (tag -> confidence) the shipped tag head gives each of these files from
    its scout vectors and the descriptors of its audio, as a scan stores them."""
    from models.descriptors import describe_whole
    from models.tagger import Tagger
    tagger = Tagger()
    return {i: dict(tagger.predict(lib.vectors[lib.starts[i]:lib.starts[i + 1]], describe_whole(
        retrieval.read_audio(files[i].path), SAMPLE_RATE)).tags) for i in indices}


def same_tag_precision(lib: retrieval.Embedded, files: list[IndependentFile], usable: np.ndarray,
                       twins: dict[int, list[int]],
                       tags: dict[int, dict[str, float]] | None = None) -> dict:
    """Leave-one-out P@10 of the same tag among the labelled usable files (micro, and macro
    over tags with two files or more). With ``tags`` (each file's stored type tags), the
    neighbours are ordered as ``app.similar_kind`` orders a search by example."""
    idx = [i for i in range(len(files)) if usable[i] and files[i].coarse]
    labels = np.array([files[i].coarse for i in idx])
    k = min(retrieval.TOP_K, len(idx) - 1)
    pool = k * similar_kind.POOL_FACTOR
    precision = np.zeros(len(idx))
    position = {i: p for p, i in enumerate(idx)}
    sub = retrieval.Embedded(raw=[])
    blocks = [lib.vectors[lib.starts[i]:lib.starts[i + 1]] for i in idx]
    sub.vectors = np.concatenate(blocks)
    sub.starts = np.cumsum([0] + [len(b) for b in blocks])
    for p, i in enumerate(idx):
        scores = retrieval.file_scores(blocks[p], sub, len(idx)).astype(np.float64)
        scores[p] = -np.inf
        for j in twins.get(i, ()):
            if j in position:
                scores[position[j]] = -np.inf
        ranked = np.argsort(-scores, kind="stable")[:pool if tags is not None else k]
        if tags is not None:
            # "similar" on a library file: the file itself answers first (cosine 1), the
            # others follow in the kind order
            agreements = [0.0] + [similar_kind.tag_agreement(tags[i], tags[idx[r]])
                                  for r in ranked]
            order = similar_kind.kind_order([1.0] + scores[ranked].tolist(), agreements)
            ranked = ranked[[o - 1 for o in order[1:]]]
        precision[p] = float(np.mean(labels[ranked[:k]] == labels[p]))
    counts = Counter(labels.tolist())
    # a tag of n notes can fill at most n - 1 of a note's 10 neighbours
    reachable = np.array([min(k, counts[t] - 1) / k if counts[t] > 1 else 1.0 for t in labels])
    per_tag = {t: {"n": counts[t], "p_at_10": round(float(precision[labels == t].mean()), 4),
                   "of_reachable": round(float((precision / reachable)[labels == t].mean()), 4)}
               for t in sorted(counts)}
    macro = [t for t in per_tag if counts[t] >= 2]
    return {"n_queries": len(idx), "micro": round(float(precision.mean()), 4),
            "macro": round(float(np.mean([per_tag[t]["p_at_10"] for t in macro])), 4),
            "macro_of_reachable": round(float(np.mean([per_tag[t]["of_reachable"]
                                                       for t in macro])), 4),
            "macro_tags": len(macro), "per_tag": per_tag}


def run(args) -> dict:
    t_start = time.perf_counter()
    timing: dict = {}
    models = [build_model(name, retrieval.DEFAULT_FP32_MODEL) for name in args.models]
    if args.student is not None:
        models.append(build_student(args.student))
    t0 = time.perf_counter()
    files, counts = collect_library()
    timing["collect_and_render_s"] = round(time.perf_counter() - t0, 2)
    print(f"{len(files)} unique files ({counts['duplicates_dropped']} duplicates dropped); "
          f"models: {', '.join(m.model_id for m in models)}", file=sys.stderr)
    t0 = time.perf_counter()
    with _own_embedding_cache():
        library = embed_library(files, models, timing)
        _prune_embedding_cache(models, files)
    timing["library_total_s"] = round(time.perf_counter() - t0, 2)

    n_files = len(files)
    usable = np.array([f.skip is None and all(
        library[m.name].starts[i + 1] > library[m.name].starts[i] for m in models)
        for i, f in enumerate(files)])
    counts.update({
        "library_files": n_files,
        "library_files_per_package": dict(Counter(f.package for f in files)),
        "usable_files_per_package": dict(Counter(f.package for i, f in enumerate(files)
                                                 if usable[i])),
        "decode_failure_paths": [f"{f.path} ({f.skip})" for f in files if f.skip],
        "empty_embedding_paths": {
            m.name: [files[i].path.as_posix() for i in range(n_files) if files[i].skip is None
                     and library[m.name].starts[i + 1] == library[m.name].starts[i]]
            for m in models},
        "usable_files": int(usable.sum()),
        "library_vectors": {m.name: int(library[m.name].vectors.shape[0]) for m in models},
        "library_seconds_per_package": {
            p: round(sum(f.duration for f in files if f.package == p), 1)
            for p in sorted({f.package for f in files})},
    })

    twins = find_level_twins(files, counts, timing)

    usable_idx = [i for i in range(n_files) if usable[i]]
    query_sets = {c: choose(usable_idx, args.queries, args.seed, QUERY_STREAM)
                  for c in damage.CONDITIONS}
    long_idx = [i for i in usable_idx if files[i].duration > damage.EXCERPT_MIN_SECONDS]
    query_sets[damage.EXCERPT_CONDITION] = choose(long_idx, args.queries, args.seed,
                                                  EXCERPT_STREAM)
    counts["queries"] = {c: len(q) for c, q in query_sets.items()}
    counts["queries_per_package"] = {
        c: dict(Counter(files[i].package for i in q)) for c, q in query_sets.items()}
    counts["files_longer_than_excerpt_min"] = len(long_idx)

    results = {m.name: {"model_id": m.model_id, "config": m.config(), "reid": {}}
               for m in models}
    t0 = time.perf_counter()
    for m in models:
        results[m.name]["same_tag"] = same_tag_precision(library[m.name], files, usable, twins)
    if "scout" in library:
        labelled = [i for i in range(n_files) if usable[i] and files[i].coarse]
        tags = stored_type_tags(files, labelled, library["scout"])
        results["scout"]["same_tag_kind_order"] = same_tag_precision(
            library["scout"], files, usable, twins, tags)
        results["scout"]["same_tag_kind_order"]["weight"] = similar_kind.KIND_WEIGHT
        right = sum(files[i].coarse in list(tags[i])[:1] for i in labelled)
        results["scout"]["tag_head_top1_on_labelled"] = round(right / len(labelled), 4)
    timing["same_tag_s"] = round(time.perf_counter() - t0, 2)
    print("  same-tag P@10 macro: " + "  ".join(
        f"{name} {r['same_tag']['macro']}" for name, r in results.items())
        + (f"  scout kind order {results['scout']['same_tag_kind_order']['macro']}"
           if "same_tag_kind_order" in results.get("scout", {}) else ""),
        file=sys.stderr, flush=True)
    if getattr(args, "same_tag_only", False):
        return {"results": results, "counts": counts, "timing": timing}
    audio_cache: dict[int, np.ndarray] = {}
    timing["damage_s"] = {}
    timing["query_embed_s"] = {m.name: {} for m in models}
    t_queries = time.perf_counter()
    for condition, query_idx in query_sets.items():
        ranked = rank_condition(condition, query_idx, files, models, library, twins, args.seed,
                                audio_cache, rng_condition=DAMAGE_TAG + condition)
        timing["damage_s"][condition] = round(ranked.damage_s, 2)
        packages = [files[i].package for i in query_idx]
        for m in models:
            r = np.array(ranked.ranks[m.name])
            timing["query_embed_s"][m.name][condition] = round(ranked.embed_s[m.name], 2)
            entry = recall_summary(r)
            entry["median_rank"] = float(np.median(r)) if r.size else None
            entry["empty_queries"] = int(ranked.empty_queries[m.name])
            entry["per_package"] = {
                p: recall_summary([x for x, q in zip(r, packages) if q == p])
                for p in sorted(set(packages))}
            results[m.name]["reid"][condition] = entry
        summary = "  ".join(f"{m.name} R@1 {results[m.name]['reid'][condition]['r_at_1']}"
                            for m in models)
        print(f"  {condition}: {len(query_idx)} queries  {summary}", file=sys.stderr, flush=True)
    timing["queries_total_s"] = round(time.perf_counter() - t_queries, 2)
    for m in models:
        damaged_conditions = [results[m.name]["reid"][c] for c in damage.CONDITIONS
                              if results[m.name]["reid"][c]["n"]]
        results[m.name]["mean_over_damage_conditions"] = {
            k: round(float(np.mean([e[k] for e in damaged_conditions])), 4)
            for k in ("r_at_1", "r_at_10", "mrr")} if damaged_conditions else None
    timing["total_s"] = round(time.perf_counter() - t_start, 2)

    return {
        "benchmark": "independent",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "seed": args.seed, "queries": args.queries,
            "models": [m.name for m in models],
            "student": str(args.student) if args.student is not None else None,
            "sample_rate": SAMPLE_RATE,
            "packages": {"sound-theme-freedesktop": str(FREEDESKTOP_ROOT) + " (*.oga)",
                         "neverball": str(NEVERBALL_ROOT) + " (*.ogg; owned by "
                                      "neverball-common, a dependency of neverball-data)",
                         SOUNDFONT_PACKAGE: f"notes rendered from {SOUNDFONT} with fluidsynth"},
            "skipped_packages": {"freepats": "GUS .pat patches, not decodable by libsndfile",
                                 "warzone2100-data": "140 MB download"},
            "refused_packages": list(training_packages() + RETRIEVAL_PACKAGES),
            "render": _render_spec(),
            "seed_streams": {"queries": QUERY_STREAM, "excerpt_queries": EXCERPT_STREAM,
                             "damage": f"condition_rng(seed, '{DAMAGE_TAG}' + condition, item)"},
            "scoring": retrieval.SCORING,
            "damage": {c: damage.DESCRIPTIONS[c] for c in query_sets},
            "reverb": "synthetic RIR (bench/damage.py), not a room simulator",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "counts": counts,
        "results": results,
        "timing": timing,
    }


def format_table(report: dict) -> str:
    names = report["config"]["models"]
    results = report["results"]
    width = max(16, *(len(n) + 2 for n in names))
    lines = retrieval.reid_table_lines(report, width)
    cells = []
    for name in names:
        mean = results[name].get("mean_over_damage_conditions")
        cells.append("-" if not mean else f"{mean['r_at_1']:.2f} / {mean['r_at_10']:.2f}")
    lines.append(f"{'mean of the 9 damages':<28}" + "".join(f"{c:>{width}}" for c in cells))
    per = report["counts"]["usable_files_per_package"]
    lines.append("cells: R@1 / R@10; library: "
                 + ", ".join(f"{p} {n}" for p, n in sorted(per.items())))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help="comma-separated names as in bench/retrieval.py "
                             f"({', '.join(retrieval.ALL_MODELS)})")
    parser.add_argument("--student", type=Path, default=None,
                        help="an ONNX encoder file, scored as an extra column 'student'")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--same-tag-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.same_tag_only:          # a quick look at the neighbours; writes nothing
        run(args)
        return 0
    retrieval.write_report(run(args), args.out, format_table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
