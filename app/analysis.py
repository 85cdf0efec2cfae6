"""Analysis of one library file: content hash, decode, embed, classify.

These functions run in the scanner's worker processes (one encoder per
process, one ONNX thread each), so they only take and return plain picklable
values. ``init_worker`` must run first in each worker.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import signal
from dataclasses import dataclass

import numpy as np

from app.catalog import FileAnalysis, SoundInfo, TagRow
from app.decode import DecodeError, iter_mono, probe
from app.sound_analysis import ANALYSIS_SECONDS, SoundAnalyser
from models.encoder import MODEL_SAMPLE_RATE, Encoder, EncoderError

HASH_CHUNK_BYTES = 1 << 20
SILENCE_PEAK = 10 ** (-90 / 20)  # below -90 dBFS a file counts as silent

# The one-shot / loop rule (documented in the README):
#  - a file at least LOOP_MIN_NAMED_S long whose name or folder says "loop" is a loop;
#  - a file at least LOOP_MIN_S long that does not decay (the RMS of its last
#    quarter is within LOOP_SUSTAIN_DB of the RMS of the whole file) is a loop;
#  - everything else is a one-shot.
LOOP_MIN_NAMED_S = 1.0
LOOP_MIN_S = 4.0
LOOP_SUSTAIN_DB = 10.0
_LOOP_WORD = re.compile(r"(^|[^a-z])loops?([^a-z]|$)")


@dataclass(frozen=True)
class KnownContent:
    """The file's bytes match a file already in the catalog: no need to decode."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str


def content_hash(path: str | os.PathLike) -> str:
    """BLAKE2b-128 of the file's bytes, as hex. Any thread."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def named_loop(path: str, duration: float) -> bool:
    """The rule's first clause: at least LOOP_MIN_NAMED_S long and "loop(s)" as a word in
    the name or a folder. The producer's own naming: it wins over the content head too.
    Any thread."""
    return duration >= LOOP_MIN_NAMED_S and bool(_LOOP_WORD.search(path.lower()))


def classify_kind(path: str, duration: float, rms_all: float, rms_last_quarter: float) -> str:
    """'loop' or 'one-shot' by the rule above (the fallback when no content head runs).
    Any thread."""
    if named_loop(path, duration):
        return "loop"
    if duration >= LOOP_MIN_S and rms_all > 0:
        drop_db = 20 * math.log10(max(rms_last_quarter, 1e-12) / rms_all)
        if drop_db >= -LOOP_SUSTAIN_DB:
            return "loop"
    return "one-shot"


_encoder: Encoder | None = None
_sounds: SoundAnalyser | None = None
_known_hashes: frozenset[str] = frozenset()


def init_worker(model_path: str | None, known_hashes: frozenset[str]) -> None:
    """Worker-process initialiser: load the encoder and the sound analyser once, ignore
    Ctrl-C (the parent decides when to stop and lets running files finish)."""
    global _encoder, _sounds, _known_hashes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _encoder = Encoder(model_path, threads=1)
    _sounds = SoundAnalyser(_encoder.model_id)
    _known_hashes = known_hashes


@dataclass(frozen=True)
class SoundResult:
    """The back-fill's answer for one file: its kind, sound analysis and tags, or an error."""

    file_id: int
    kind: str | None
    sound: SoundInfo | None
    tags: tuple[TagRow, ...] = ()
    error: str | None = None


def analyse_sound_in_worker(file_id: int, path: str, vectors: np.ndarray) -> SoundResult:
    """Worker entry point of the back-fill: decode a catalogued file again and analyse what
    it is (its vectors come from the catalog). Never raises for bad input."""
    assert _sounds is not None, "init_worker was not called"
    try:
        info = probe(path)
        expected = info.frames * MODEL_SAMPLE_RATE / info.sample_rate
        reading = _Reading(int(expected * 0.75))
        for chunk in iter_mono(path, MODEL_SAMPLE_RATE):
            reading.add(chunk)
    except (DecodeError, MemoryError) as exc:
        return SoundResult(file_id, None, None, error=str(exc))
    if reading.position == 0:
        return SoundResult(file_id, None, None, error="no audio")
    rule = classify_kind(path, info.duration, *reading.levels())
    kind, sound, tags = _sounds.analyse(path, reading.head(), MODEL_SAMPLE_RATE, info.duration,
                                        reading.decay_db(), vectors, rule)
    return SoundResult(file_id, kind, sound, tags)


class _Reading:
    """Running sums over a decoded file: energy of the whole and of its last quarter, peak,
    and its first ANALYSIS_SECONDS kept for the sound analysis."""

    def __init__(self, last_quarter_start: int):
        self.last_quarter_start = last_quarter_start
        self.position = 0
        self.peak = 0.0
        self.energy_all = 0.0
        self.energy_last = 0.0
        self._kept: list[np.ndarray] = []
        self._room = int(ANALYSIS_SECONDS * MODEL_SAMPLE_RATE)

    def add(self, chunk: np.ndarray) -> None:
        if not len(chunk):
            return
        squares = np.square(chunk, dtype=np.float64)
        self.energy_all += float(squares.sum())
        tail_from = max(0, self.last_quarter_start - self.position)
        if tail_from < len(chunk):
            self.energy_last += float(squares[tail_from:].sum())
        self.peak = max(self.peak, float(np.max(np.abs(chunk))))
        self.position += len(chunk)
        if self._room > 0:
            self._kept.append(chunk[:self._room])
            self._room -= len(self._kept[-1])

    def levels(self) -> tuple[float, float]:
        """(RMS of the whole, RMS of the last quarter)."""
        last_len = max(1, self.position - min(self.last_quarter_start, self.position))
        return (math.sqrt(self.energy_all / max(self.position, 1)),
                math.sqrt(self.energy_last / last_len))

    def decay_db(self) -> float:
        rms_all, rms_last = self.levels()
        return 20 * math.log10(max(rms_last, 1e-12) / max(rms_all, 1e-12))

    def head(self) -> np.ndarray:
        return np.concatenate(self._kept).astype(np.float32) if self._kept else np.zeros(0, np.float32)


def analyse_in_worker(path: str, size: int, mtime_ns: int, force: bool = False):
    """Worker entry point: ``KnownContent`` or a ``FileAnalysis``."""
    assert _encoder is not None, "init_worker was not called"
    try:
        digest = content_hash(path)
    except OSError as exc:
        return _skipped(path, size, mtime_ns, "", "unreadable",
                        f"unreadable: {exc.strerror or exc}")
    if not force and digest in _known_hashes:
        return KnownContent(path, size, mtime_ns, digest)
    return analyse(_encoder, path, size, mtime_ns, digest, _sounds)


def analyse(encoder: Encoder, path: str, size: int, mtime_ns: int, digest: str,
            sounds: SoundAnalyser | None = None) -> FileAnalysis:
    """Decode, embed and classify one file (and, with ``sounds``, tag it and find tempo,
    key and root); never raises for bad input. Any thread that owns ``encoder`` and
    ``sounds`` (or any thread, if the encoder is thread-safe)."""
    try:
        info = probe(path)
        expected = info.frames * MODEL_SAMPLE_RATE / info.sample_rate
        reading = _Reading(int(expected * 0.75))
        stream = encoder.stream(trim_leading_silence=True)
        embeddings = []
        for chunk in iter_mono(path, MODEL_SAMPLE_RATE):
            if not len(chunk):
                continue
            reading.add(chunk)
            embeddings.extend(stream.push(chunk))
        embeddings.extend(stream.flush())
    except DecodeError as exc:
        return _skipped(path, size, mtime_ns, digest, exc.code, str(exc))
    except EncoderError as exc:
        return _skipped(path, size, mtime_ns, digest, "analysis_failed", f"analysis failed: {exc}")
    except MemoryError:
        return _skipped(path, size, mtime_ns, digest, "analysis_failed", "analysis failed: out of memory")

    common = dict(duration=info.duration, sample_rate=info.sample_rate, channels=info.channels)
    position, peak = reading.position, reading.peak
    if position == 0:
        return _skipped(path, size, mtime_ns, digest, "no_audio", "no audio: the file holds 0 frames",
                        **common)
    if peak <= SILENCE_PEAK or not embeddings:
        level = "-inf" if peak <= 0 else f"{20 * math.log10(peak):.0f}"
        return _skipped(path, size, mtime_ns, digest, "silent",
                        f"silent: peak level {level} dBFS", **common)
    kind = classify_kind(path, info.duration, *reading.levels())
    vectors = np.stack([e.vector for e in embeddings]).astype(np.float32)
    sound, tags = None, ()
    if sounds is not None:
        kind, sound, tags = sounds.analyse(path, reading.head(), MODEL_SAMPLE_RATE, info.duration,
                                           reading.decay_db(), vectors, kind)
    return FileAnalysis(
        path=path, size=size, mtime_ns=mtime_ns, content_hash=digest, status="indexed",
        kind=kind, model_id=encoder.model_id,
        start_samples=tuple(e.start_sample for e in embeddings),
        vectors=vectors, sound=sound, tags=tags, **common)


def _skipped(path, size, mtime_ns, digest, code, message, **extra) -> FileAnalysis:
    return FileAnalysis(path=path, size=size, mtime_ns=mtime_ns, content_hash=digest or None,
                        status="skipped", error_code=code, error=message, **extra)
