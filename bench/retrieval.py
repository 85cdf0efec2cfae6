"""Retrieval benchmark on the Debian samples: category precision and re-identification.

Library: every audio file of hydrogen-drumkits(-effects), sonic-pi-samples and
lmms-common (see ``bench/labels.py``), byte-identical duplicates kept once,
undecodable files skipped with a count. Each file is decoded to mono 44.1 kHz
and embedded as one or more vectors.

Measures, for every model in the same run:

- Category precision@10: leave-one-out over the labelled files; each file is queried
  with its own clean vectors, itself and its level twins (below) excluded, and P@10
  is the share of the 10 best files with the same strict (then coarse) category.
  Unlabelled files take no part. Micro = mean over files; macro = mean over
  categories of the per-category mean.
- Re-identification recall@1/@10: ``--queries`` files (fixed seed) are damaged
  (``bench/damage.py``) and searched among all library files; R@k = share whose
  own file ranks in the top k (ties count against the query). Level twins (files
  whose audio is the same up to a gain factor, e.g. velocity layers made by scaling
  one recording; see :func:`level_twins`) count as the same file. The 2 s excerpt
  condition draws its queries from files longer than 4 s.

A file's score for a query is the best cosine over query vectors x file vectors,
by exact brute force in numpy (this measures the encoder, not the index).

Models: ``scout`` (the shipped encoder), ``scout-rerank`` (the app's query path: the
same, then the shipped re-ranker, ``models/reranker.py``, re-orders each query's best
10 files; its query time includes the re-ranking), ``aisfx`` (the default ``models.encoder.Encoder()``, static int8),
``aisfx-no-trim`` (the same with ``trim_leading_silence=False`` for library and
queries), ``aisfx-fp32`` (the same pre-processing on the float ONNX export,
``--fp32-model``, default ``/tmp/aisfx_fp32.onnx`` as written by
``models/export_aisfx.py``; used only when the file exists) and ``mfcc``:
librosa MFCC at 44.1 kHz (n_mfcc=20, n_fft=2048, hop_length=512, n_mels=128,
Slaney mel, ``power_to_db`` with ``ref=1.0``, DCT-II ortho), no trimming; per file the
mean and the standard deviation of each coefficient over frames (40 values);
each of the 40 dimensions standardised by the mean and standard deviation over
the clean library files; then L2-normalised. One vector per file.

Clean library embeddings are cached per model in ``bench/cache/`` (keyed by path,
size and mtime). Run: ``.venv/bin/python bench/retrieval.py [--limit N]
[--queries 300] [--seed 0] [--models scout-rerank,scout,aisfx,aisfx-no-trim,aisfx-fp32,mfcc]``. Writes
``bench/results/retrieval.json`` (or ``--out``) and prints a table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import warnings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import damage  # noqa: E402
from bench.labels import debian_labels, list_audio_files  # noqa: E402
from models.level_twins import TWIN_CORRELATION, level_twin_groups  # noqa: E402

SAMPLE_RATE = 44100
CACHE_DIR = REPO / "bench" / "cache"
DEFAULT_OUT = REPO / "bench" / "results" / "retrieval.json"
DEFAULT_MODELS = ("scout-rerank", "scout", "aisfx", "aisfx-no-trim", "aisfx-fp32", "mfcc")
ALL_MODELS = DEFAULT_MODELS
DEFAULT_FP32_MODEL = Path("/tmp/aisfx_fp32.onnx")
CACHE_VERSION = 1
TOP_K = 10
RERANK_K = 10               # files the re-ranker re-orders (app.rerank.RERANK_K)
SCORING = ("file score = max cosine over query vectors x file vectors; exact brute force; ties "
           "rank against the query; a level twin (same audio up to gain, correlation >= "
           f"{TWIN_CORRELATION}) counts as the file")


# ---------------------------------------------------------------- decoding


class SkipFile(Exception):
    """A library file that cannot be used; ``code`` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


def read_audio(path: Path) -> np.ndarray:
    """Mono float32 at 44.1 kHz through the app's decoder (soundfile + soxr if absent)."""
    try:
        from app.decode import DecodeError, read_mono
    except ImportError:
        return _read_audio_soundfile(path)
    try:
        audio = read_mono(path, SAMPLE_RATE)
    except DecodeError as exc:
        raise SkipFile(exc.code, str(exc)) from None
    if audio.size == 0:
        raise SkipFile("empty", "no samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _read_audio_soundfile(path: Path) -> np.ndarray:
    import soundfile as sf
    import soxr
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports every failure as a RuntimeError
        raise SkipFile("unreadable", str(exc)) from None
    audio = audio.mean(axis=1)
    if audio.size == 0:
        raise SkipFile("empty", "no samples")
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)


# ---------------------------------------------------------------- models


class Model:
    """Turns mono 44.1 kHz audio into L2-normalised vectors ``(n, dim)``.

    ``raw`` may return un-normalised features; ``fit`` sees the raw features of the
    clean library and ``finish`` maps raw features to final vectors.
    """

    name = ""
    model_id = ""

    def raw(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, library_raw: list[np.ndarray]) -> None:
        pass

    def finish(self, raw: np.ndarray) -> np.ndarray:
        return raw

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """Final vectors of one clip (``raw`` then ``finish``; empty if it gave none)."""
        raw = self.raw(audio)
        return self.finish(raw) if raw.size else raw

    def config(self) -> dict:
        return {}

    def cache_key(self) -> tuple[str, str]:
        """(name, id) the clean library vectors are cached under."""
        return self.name, self.model_id


class EncoderModel(Model):
    def __init__(self, name: str, trim_leading_silence: bool = True,
                 model_path: Path | None = None):
        from models.encoder import Encoder
        self.encoder = Encoder(model_path, threads=1)
        self.name = name
        self.trim = trim_leading_silence
        self.model_id = f"{self.encoder.model_id}" + ("" if trim_leading_silence else "+no-trim")
        if model_path is not None and Path(model_path).parent != _shipped_model("aisfx").parent:
            self.model_id += f"@{Path(model_path).name}"

    def raw(self, audio):
        vectors = self.encoder.embed_clip(audio, trim_leading_silence=self.trim)
        return np.asarray(vectors, dtype=np.float32).reshape(-1, self.encoder.dim)

    def config(self):
        return {"encoder_model_id": self.encoder.model_id, "dim": int(self.encoder.dim),
                "model_file": self.encoder.model_path.name,
                "trim_leading_silence": self.trim, "threads": 1}


class RerankedEncoderModel(EncoderModel):
    """``scout-rerank``: the app's whole query path. The encoder ranks the library, then
    ``models.reranker.rerank_order`` re-orders its best ``RERANK_K`` files, each scored on
    its best (query block, file block) pair; the re-ordered files take over the set of
    scores they had, best first. Library blocks are decoded again for the candidates
    (and kept); the clean library vectors are the encoder's own (shared cache)."""

    def __init__(self, name: str, model_path: Path, reranker_path: Path | None = None):
        from models.reranker import Reranker
        super().__init__(name, trim_leading_silence=True, model_path=model_path)
        self.encoder_model_id = self.model_id
        self.reranker = Reranker(reranker_path, threads=1)
        self.model_id += f"+{self.reranker.model_id}"
        if self.reranker.room_fit_weight > 0:
            self.model_id += f"+room-fit-{self.reranker.room_fit_weight:g}"
        if self.reranker.coherence_weight > 0:
            self.model_id += f"+coherence-{self.reranker.coherence_weight:g}"
        self._blocks: dict[Path, object] = {}
        self._query: tuple | None = None    # (audio, its models.reranker.clip_candidate)

    def cache_key(self):
        return "scout", self.encoder_model_id

    def config(self):
        return super().config() | {"reranker_model_id": self.reranker.model_id,
                                   "room_fit_weight": self.reranker.room_fit_weight,
                                   "coherence_weight": self.reranker.coherence_weight,
                                   "reranker_file": self.reranker.model_path.name, "rerank_k": RERANK_K}

    def _candidate(self, path: Path):
        from models.reranker import clip_candidate
        if path not in self._blocks:
            self._blocks[path] = clip_candidate(self.encoder, read_audio(path))
        return self._blocks[path]

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """The query's vectors (the same as ``embed_clip``'s); its blocks are kept for ``rerank``."""
        from models.reranker import clip_candidate
        self._query = (audio, clip_candidate(self.encoder, audio, trim_leading_silence=self.trim))
        return self._query[1].vectors

    def rerank(self, audio: np.ndarray, query: np.ndarray, scores: np.ndarray,
               files: list[LibraryFile]) -> np.ndarray:
        """``scores`` after re-ranking the best ``RERANK_K`` files for ``query`` (the vectors
        ``embed(audio)`` returned)."""
        from models.reranker import rerank_order, take_over_scores
        if self._query is None or self._query[0] is not audio:
            self.embed(audio)
        clip = self._query[1]
        top = np.argsort(-scores, kind="stable")[:RERANK_K]
        top = top[np.isfinite(scores[top])]
        if not len(clip.blocks) or len(top) < 2:
            return scores
        order, reranked = rerank_order(self.reranker, clip.blocks, query,
                                       [self._candidate(files[int(i)].path) for i in top], clip.signals)
        out = scores.copy()
        out[top] = take_over_scores(scores[top], order, reranked)
        return out


class MfccModel(Model):
    N_MFCC = 20
    N_FFT = 2048
    HOP_LENGTH = 512
    N_MELS = 128

    def __init__(self):
        import librosa
        self._librosa = librosa
        self.name = "mfcc"
        self.model_id = (f"mfcc{self.N_MFCC}-meanstd-nfft{self.N_FFT}-hop{self.HOP_LENGTH}"
                         f"-mels{self.N_MELS}-librosa{librosa.__version__}")
        self.mean = None
        self.std = None

    def raw(self, audio):
        with warnings.catch_warnings():
            # clips shorter than n_fft are zero-padded by librosa; that is the recipe
            warnings.simplefilter("ignore", UserWarning)
            mfcc = self._mfcc(audio)
        return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)])[None, :].astype(np.float32)

    def _mfcc(self, audio):
        return self._librosa.feature.mfcc(y=np.asarray(audio, dtype=np.float32), sr=SAMPLE_RATE,
                                          n_mfcc=self.N_MFCC, n_fft=self.N_FFT,
                                           hop_length=self.HOP_LENGTH, n_mels=self.N_MELS)

    def fit(self, library_raw):
        stacked = np.concatenate([r for r in library_raw if r.size], axis=0).astype(np.float64)
        self.mean = stacked.mean(axis=0)
        self.std = np.maximum(stacked.std(axis=0), 1e-9)

    def finish(self, raw):
        if raw.size == 0:
            return raw
        z = (raw.astype(np.float64) - self.mean) / self.std
        return _l2(z).astype(np.float32)

    def config(self):
        return {"n_mfcc": self.N_MFCC, "n_fft": self.N_FFT, "hop_length": self.HOP_LENGTH,
                "n_mels": self.N_MELS, "summary": "mean+std over frames (40-d)",
                "standardised_on": "clean library files", "trim_leading_silence": False}


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _shipped_model(name: str) -> Path:
    """The shipped ONNX file of an encoder, whatever the app's current default is."""
    import models.encoder as encoder_module
    return Path(encoder_module.__file__).parent / encoder_module.SHIPPED_MODELS[name]


def build_model(name: str, fp32_path: Path) -> Model:
    if name in ("scout", "aisfx"):
        return EncoderModel(name, trim_leading_silence=True, model_path=_shipped_model(name))
    if name == "scout-rerank":
        return RerankedEncoderModel(name, _shipped_model("scout"))
    if name == "aisfx-no-trim":
        return EncoderModel("aisfx-no-trim", trim_leading_silence=False,
                            model_path=_shipped_model("aisfx"))
    if name == "aisfx-fp32":
        if not fp32_path.is_file():
            raise SystemExit(f"aisfx-fp32: no float model at {fp32_path} (models/export_aisfx.py "
                             "writes it; pass --fp32-model PATH)")
        return EncoderModel("aisfx-fp32", trim_leading_silence=True, model_path=fp32_path)
    if name == "mfcc":
        return MfccModel()
    raise SystemExit(f"unknown model {name!r} (choose from {', '.join(ALL_MODELS)})")


# ---------------------------------------------------------------- library


@dataclass
class LibraryFile:
    path: Path
    size: int
    mtime_ns: int
    sha1: str
    strict: str | None
    coarse: str | None
    n_samples: int = 0
    skip: str | None = None

    @property
    def duration(self) -> float:
        return self.n_samples / SAMPLE_RATE


@dataclass
class Embedded:
    """Per-model library vectors: ``vectors[starts[i]:starts[i+1]]`` belong to file ``i``."""
    raw: list[np.ndarray]
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))
    starts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))


def file_sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def collect_files(limit: int | None, seed: int) -> tuple[list[LibraryFile], dict]:
    paths = list_audio_files()
    counts = {"files_found": len(paths)}
    if limit is not None and limit < len(paths):
        order = np.random.default_rng([seed, 1]).permutation(len(paths))[:limit]
        paths = sorted(paths[i] for i in order)
    labels = debian_labels(paths)
    files, seen, duplicates = [], {}, []
    for path in paths:
        stat = path.stat()
        digest = file_sha1(path)
        if digest in seen:
            duplicates.append([str(path), str(seen[digest])])
            continue
        seen[digest] = path
        label = labels[path]
        files.append(LibraryFile(path, stat.st_size, stat.st_mtime_ns, digest,
                                 label.strict, label.coarse))
    counts["files_considered"] = len(paths)
    counts["duplicates_dropped"] = len(duplicates)
    counts["duplicates"] = duplicates
    return files, counts


def _cache_path(model: Model) -> Path:
    name, model_id = model.cache_key()
    key = hashlib.sha1(f"{CACHE_VERSION}:{model_id}".encode()).hexdigest()[:12]
    return CACHE_DIR / f"{name}-{key}.npz"


def _file_key(f: LibraryFile) -> str:
    return f"{f.path}|{f.size}|{f.mtime_ns}"


def load_cache(model: Model) -> dict[str, np.ndarray]:
    path = _cache_path(model)
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model_id"]) != model.model_id:
                return {}
            keys, starts, raw = data["keys"], data["starts"], data["raw"]
            return {str(k): raw[starts[i]:starts[i + 1]] for i, k in enumerate(keys)}
    except (OSError, KeyError, ValueError):
        return {}


def save_cache(model: Model, entries: dict[str, np.ndarray]) -> None:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    keys = sorted(entries)
    arrays = [entries[k] for k in keys]
    dim = next((a.shape[1] for a in arrays if a.ndim == 2 and a.shape[1]), 1)
    arrays = [a.reshape(-1, dim) for a in arrays]
    starts = np.cumsum([0] + [a.shape[0] for a in arrays]).astype(np.int64)
    raw = np.concatenate(arrays, axis=0) if arrays else np.zeros((0, dim), np.float32)
    tmp = _cache_path(model).with_suffix(".tmp.npz")
    np.savez(tmp, model_id=np.array(model.model_id), keys=np.array(keys), starts=starts, raw=raw)
    os.replace(tmp, _cache_path(model))


def embed_library(files: list[LibraryFile], models: list[Model],
                  timing: dict) -> dict[str, Embedded]:
    """Decode every file once and embed it with each model (from the cache when possible)."""
    caches = {m.name: load_cache(m) for m in models}
    fresh = {m.name: 0 for m in models}
    embed_seconds = {m.name: 0.0 for m in models}
    raw = {m.name: [] for m in models}
    decode_seconds = 0.0
    started = time.perf_counter()
    for i, f in enumerate(files):
        key = _file_key(f)
        # decoded even on a cache hit: length and decodability are needed
        audio = None
        t0 = time.perf_counter()
        try:
            audio = read_audio(f.path)
        except SkipFile as exc:
            f.skip = f"decode:{exc.code}"
        decode_seconds += time.perf_counter() - t0
        if audio is not None:
            f.n_samples = int(audio.size)
        for m in models:
            if audio is None:
                raw[m.name].append(np.zeros((0, 0), np.float32))
                continue
            if key not in caches[m.name]:
                t0 = time.perf_counter()
                caches[m.name][key] = m.raw(audio)
                embed_seconds[m.name] += time.perf_counter() - t0
                fresh[m.name] += 1
            raw[m.name].append(caches[m.name][key])
        if (i + 1) % 100 == 0 or i + 1 == len(files):
            print(f"  library {i + 1}/{len(files)} files, {time.perf_counter() - started:.0f} s",
                  file=sys.stderr, flush=True)
    for m in models:
        if fresh[m.name]:
            save_cache(m, caches[m.name])
    timing["library_decode_s"] = round(decode_seconds, 2)
    out = {}
    for m in models:
        m.fit([r for r in raw[m.name] if r.size])
        final = [m.finish(r) if r.size else r for r in raw[m.name]]
        dim = next((v.shape[1] for v in final if v.size), 1)
        final = [v.reshape(-1, dim) for v in final]
        starts = np.cumsum([0] + [v.shape[0] for v in final]).astype(np.int64)
        vectors = np.concatenate(final, axis=0).astype(np.float32)
        out[m.name] = Embedded(raw[m.name], vectors, starts)
        timing.setdefault("library_embed_s", {})[m.name] = round(embed_seconds[m.name], 2)
        timing.setdefault("library_files_embedded_fresh", {})[m.name] = fresh[m.name]
    return out


# ---------------------------------------------------------------- scoring


def file_scores(query: np.ndarray, lib: Embedded, n_files: int) -> np.ndarray:
    """Best cosine per library file (``-inf`` for files with no vectors)."""
    scores = np.full(n_files, -np.inf, dtype=np.float32)
    if query.size == 0 or lib.vectors.shape[0] == 0:
        return scores
    best = (query @ lib.vectors.T).max(axis=0)
    has = np.diff(lib.starts) > 0
    scores[has] = np.maximum.reduceat(best, lib.starts[:-1][has])
    return scores


def recall_summary(ranks) -> dict:
    """``n``, R@1, R@10 and MRR of 1-based ranks (None when there are none)."""
    r = np.asarray(ranks, dtype=np.float64)
    if not r.size:
        return {"n": 0, "r_at_1": None, "r_at_10": None, "mrr": None}
    return {"n": int(r.size), "r_at_1": round(float(np.mean(r <= 1)), 4),
            "r_at_10": round(float(np.mean(r <= 10)), 4),
            "mrr": round(float(np.mean(1.0 / r)), 4)}


@dataclass
class ConditionRanks:
    """What :func:`rank_condition` measured for one damage condition."""
    ranks: dict[str, list[int]]          # per model, the rank of each query's own file
    empty_queries: Counter               # per model, queries that gave no vector
    damage_s: float
    embed_s: Counter                     # per model, seconds spent embedding (and re-ranking) queries


def rank_condition(condition: str, query_idx: list[int], files: list[LibraryFile],
                   models: list[Model], library: dict[str, Embedded], twins: dict[int, list[int]],
                   seed: int, audio_cache: dict[int, np.ndarray], rng_condition: str | None = None,
                   observe: Callable[[int, str, np.ndarray, int], None] | None = None) -> ConditionRanks:
    """Damage each query file, embed it with every model and rank its own file (or a level
    twin) among the library. The damage generator is seeded by ``(seed, rng_condition or
    condition, item)``; ``observe(item, model name, file scores, rank)`` sees every query."""
    out = ConditionRanks({m.name: [] for m in models}, Counter(), 0.0, Counter())
    for item in query_idx:
        if item not in audio_cache:
            audio_cache[item] = read_audio(files[item].path)
        t1 = time.perf_counter()
        rng = damage.condition_rng(seed, rng_condition or condition, item)
        damaged = damage.apply_condition(condition, audio_cache[item], rng)
        out.damage_s += time.perf_counter() - t1
        for m in models:
            t1 = time.perf_counter()
            query = m.embed(damaged)
            out.embed_s[m.name] += time.perf_counter() - t1
            if query.size == 0:
                out.empty_queries[m.name] += 1
            scores = file_scores(query, library[m.name], len(files))
            if isinstance(m, RerankedEncoderModel):
                t1 = time.perf_counter()
                scores = m.rerank(damaged, query, scores, files)
                out.embed_s[m.name] += time.perf_counter() - t1
            rank = rank_of(scores, item, twins.get(item, ()))
            out.ranks[m.name].append(rank)
            if observe is not None:
                observe(item, m.name, scores, rank)
    return out


def find_level_twins(files: list[LibraryFile], counts: dict, timing: dict) -> dict[int, list[int]]:
    """:func:`level_twins` of the library, recorded in ``counts`` and ``timing``; for every
    file in a group, the other members."""
    t0 = time.perf_counter()
    groups = level_twins(files)
    timing["level_twins_s"] = round(time.perf_counter() - t0, 2)
    counts["level_twin_groups"] = len(groups)
    counts["files_in_level_twin_groups"] = sum(len(g) for g in groups)
    counts["level_twin_group_paths"] = [[files[i].path.as_posix() for i in g] for g in groups]
    return twin_map(groups)


def twin_map(groups: list[list[int]]) -> dict[int, list[int]]:
    """For every file in a level-twin group, the other members."""
    return {i: [j for j in g if j != i] for g in groups for i in g}


def best_lag_correlation(a: np.ndarray, b: np.ndarray, max_lag: int) -> float:
    """Largest normalised cross-correlation of two clips over lags up to ``max_lag``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0:
        return 0.0
    n = 1 << int(np.ceil(np.log2(a.size + b.size)))
    c = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    return float(max(c[:max_lag + 1].max(), c[-max_lag:].max()) / norm)


def rank_of(scores: np.ndarray, target: int, twins: list[int] | tuple = ()) -> int:
    """1-based rank of ``target`` or its best level twin; others scoring equal rank ahead."""
    group = [target, *twins]
    best = float(np.max(scores[group]))
    if not np.isfinite(best):
        return len(scores) + 1
    others = np.delete(scores, group)
    return 1 + int(np.count_nonzero(others >= best))


def level_twins(files: list[LibraryFile], threshold: float = TWIN_CORRELATION) -> list[list[int]]:
    """Groups of files whose decoded audio is the same up to a gain factor.

    Hydrogen kits often ship one recording scaled to several velocity layers, and
    the same sample under two names. A level-invariant encoder cannot tell them
    apart, so re-identification counts any member of the group as the right file.
    Same length at 44.1 kHz and whole-clip correlation >= ``threshold``
    (:func:`models.level_twins.level_twin_groups`, shared with training).
    """
    lengths = [f.n_samples if f.skip is None else 0 for f in files]
    return level_twin_groups(lengths, lambda i: read_audio(files[i].path), threshold)


def category_precision(lib: Embedded, files: list[LibraryFile], usable: np.ndarray,
                       attr: str, twins: dict[int, list[int]]) -> dict:
    """Leave-one-out P@10 over usable labelled files (micro and macro over categories).

    A query's own file and its level twins are left out of its candidates.
    """
    idx = np.array([i for i in range(len(files)) if usable[i] and getattr(files[i], attr)])
    if idx.size < 2:
        return {"n_queries": int(idx.size), "micro": None, "macro": None, "per_category": {}}
    labels = np.array([getattr(files[i], attr) for i in idx])
    blocks = [lib.vectors[lib.starts[i]:lib.starts[i + 1]] for i in idx]
    vectors = np.concatenate(blocks, axis=0)
    starts = np.cumsum([0] + [b.shape[0] for b in blocks])[:-1]
    sims = vectors @ vectors.T
    sims = np.maximum.reduceat(sims, starts, axis=0)
    sims = np.maximum.reduceat(sims, starts, axis=1)
    np.fill_diagonal(sims, -np.inf)
    position = {int(i): p for p, i in enumerate(idx)}
    for p, i in enumerate(idx):
        for j in twins.get(int(i), ()):
            if j in position:
                sims[p, position[j]] = -np.inf
    k = min(TOP_K, idx.size - 1)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    precision = (labels[top] == labels[:, None]).mean(axis=1)
    per_category = {}
    counts = Counter(labels.tolist())
    for category in sorted(counts):
        mask = labels == category
        per_category[category] = {"n": int(mask.sum()),
                                  "p_at_10": round(float(precision[mask].mean()), 4)}
    macro_cats = [c for c in per_category if counts[c] >= 2]
    n = idx.size
    chance = float(sum(c * (c - 1) for c in counts.values()) / (n * (n - 1)))
    return {
        "n_queries": int(n),
        "n_categories": len(counts),
        "micro": round(float(precision.mean()), 4),
        "macro": round(float(np.mean([per_category[c]["p_at_10"] for c in macro_cats])), 4),
        "macro_categories": len(macro_cats),
        "chance_micro": round(chance, 4),
        "per_category": per_category,
    }


# ---------------------------------------------------------------- run


def choose(indices: list[int], n: int, seed: int, stream: int) -> list[int]:
    if len(indices) <= n:
        return sorted(indices)
    rng = np.random.default_rng([seed, stream])
    return sorted(rng.choice(indices, size=n, replace=False).tolist())


def run(args) -> dict:
    t_start = time.perf_counter()
    timing: dict = {}
    models = [build_model(name, args.fp32_model) for name in args.models]
    files, counts = collect_files(args.limit, args.seed)
    print(f"{len(files)} unique files ({counts['duplicates_dropped']} duplicates dropped); "
          f"models: {', '.join(m.model_id for m in models)}", file=sys.stderr)
    t0 = time.perf_counter()
    library = embed_library(files, models, timing)
    timing["library_total_s"] = round(time.perf_counter() - t0, 2)

    n_files = len(files)
    empty = {m.name: [files[i].path.as_posix() for i in range(n_files)
                      if files[i].skip is None and library[m.name].starts[i + 1]
                      == library[m.name].starts[i]] for m in models}
    usable = np.array([f.skip is None and all(
        library[m.name].starts[i + 1] > library[m.name].starts[i] for m in models)
        for i, f in enumerate(files)])
    skipped = Counter(f.skip for f in files if f.skip)
    counts.update({
        "library_files": n_files,
        "decode_failures": dict(skipped),
        "decode_failure_paths": [f"{f.path} ({f.skip})" for f in files if f.skip],
        "empty_embedding": {k: len(v) for k, v in empty.items()},
        "empty_embedding_paths": empty,
        "usable_files": int(usable.sum()),
        "library_vectors": {m.name: int(library[m.name].vectors.shape[0]) for m in models},
        "labelled_strict": int(sum(1 for i, f in enumerate(files) if usable[i] and f.strict)),
        "labelled_coarse": int(sum(1 for i, f in enumerate(files) if usable[i] and f.coarse)),
    })

    twins = find_level_twins(files, counts, timing)

    results = {m.name: {"model_id": m.model_id, "config": m.config(), "category": {},
                        "reid": {}} for m in models}
    t0 = time.perf_counter()
    for m in models:
        for attr in ("strict", "coarse"):
            results[m.name]["category"][attr] = category_precision(library[m.name], files,
                                                                   usable, attr, twins)
    timing["category_s"] = round(time.perf_counter() - t0, 2)

    usable_idx = [i for i in range(n_files) if usable[i]]
    query_sets = {c: choose(usable_idx, args.queries, args.seed, 2) for c in damage.CONDITIONS}
    long_idx = [i for i in usable_idx if files[i].duration > damage.EXCERPT_MIN_SECONDS]
    query_sets[damage.EXCERPT_CONDITION] = choose(long_idx, args.queries, args.seed, 3)
    counts["queries"] = {c: len(q) for c, q in query_sets.items()}
    counts["files_longer_than_excerpt_min"] = len(long_idx)

    audio_cache: dict[int, np.ndarray] = {}
    timing["damage_s"] = {}
    timing["query_embed_s"] = {m.name: {} for m in models}
    for condition, query_idx in query_sets.items():
        ranked = rank_condition(condition, query_idx, files, models, library, twins, args.seed,
                                audio_cache)
        timing["damage_s"][condition] = round(ranked.damage_s, 2)
        for m in models:
            r = np.array(ranked.ranks[m.name])
            timing["query_embed_s"][m.name][condition] = round(ranked.embed_s[m.name], 2)
            entry = recall_summary(r)
            entry["median_rank"] = float(np.median(r)) if r.size else None
            entry["empty_queries"] = int(ranked.empty_queries[m.name])
            results[m.name]["reid"][condition] = entry
        summary = "  ".join(f"{m.name} R@1 {results[m.name]['reid'][condition]['r_at_1']}"
                            for m in models)
        print(f"  {condition}: {len(query_idx)} queries  {summary}", file=sys.stderr, flush=True)
    timing["total_s"] = round(time.perf_counter() - t_start, 2)

    return {
        "benchmark": "retrieval",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "seed": args.seed, "queries": args.queries, "limit": args.limit,
            "models": [m.name for m in models], "sample_rate": SAMPLE_RATE,
            "scoring": SCORING,
            "category": f"leave-one-out P@{TOP_K} (own file and its level twins excluded), "
                        "unlabelled files excluded",
            "damage": {c: damage.DESCRIPTIONS[c] for c in query_sets},
            "reverb": "synthetic RIR (bench/damage.py), not a room simulator",
            "roots": [str(p) for p in (Path("/usr/share/hydrogen/data/drumkits"),
                                       Path("/usr/share/sonic-pi/samples"),
                                       Path("/usr/share/lmms/samples"))],
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "counts": counts,
        "results": results,
        "timing": timing,
    }


ROW_ORDER = damage.CONDITIONS + (damage.EXCERPT_CONDITION,)


def reid_table_lines(report: dict, width: int) -> list[str]:
    """Header, rule and one R@1 / R@10 row per damage condition (shared with bench/independent.py)."""
    names = report["config"]["models"]
    results = report["results"]
    header = f"{'condition':<28}" + "".join(f"{n:>{width}}" for n in names)
    lines = [header, "-" * len(header)]
    for condition in ROW_ORDER:
        n = report["counts"]["queries"].get(condition, 0)
        cells = []
        for name in names:
            r = results[name]["reid"].get(condition)
            cells.append("-" if not r or r["r_at_1"] is None
                         else f"{r['r_at_1']:.2f} / {r['r_at_10']:.2f}")
        lines.append(f"{condition + f' ({n})':<28}" + "".join(f"{c:>{width}}" for c in cells))
    lines.append("-" * len(header))
    return lines


def format_table(report: dict) -> str:
    names = report["config"]["models"]
    results = report["results"]
    width = max(16, *(len(n) for n in names))
    lines = reid_table_lines(report, width)
    for attr in ("strict", "coarse"):
        cells = []
        for name in names:
            c = results[name]["category"][attr]
            cells.append("-" if c["micro"] is None else f"{c['micro']:.2f} / {c['macro']:.2f}")
        n = results[names[0]]["category"][attr]["n_queries"]
        lines.append(f"{f'P@10 {attr} ({n})':<28}" + "".join(f"{c:>{width}}" for c in cells))
    lines.append("re-identification cells: R@1 / R@10; category cells: micro / macro")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None,
                        help="use a random subset of N files (smoke test)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default=None,
                        help=f"comma-separated, from: {', '.join(ALL_MODELS)} (default: all; "
                             "aisfx-fp32 only when its file exists)")
    parser.add_argument("--fp32-model", type=Path, default=DEFAULT_FP32_MODEL,
                        help="float ONNX export of aisfx for the aisfx-fp32 column")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON output (default {DEFAULT_OUT.relative_to(REPO)}; "
                             "with --limit, bench/out/retrieval-limit.json)")
    args = parser.parse_args(argv)
    if args.models is None:
        args.models = [m for m in DEFAULT_MODELS
                       if m != "aisfx-fp32" or args.fp32_model.is_file()]
    else:
        args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.out is None:
        args.out = (DEFAULT_OUT if args.limit is None
                    else REPO / "bench" / "out" / "retrieval-limit.json")
    write_report(run(args), args.out, format_table)
    return 0


def write_report(report: dict, out: Path, format_table: Callable[[dict], str]) -> None:
    """Write a benchmark's JSON, then print its table and where it went."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(format_table(report))
    print(f"\nwrote {out}  ({report['timing']['total_s']:.0f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
