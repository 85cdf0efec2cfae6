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

from app.catalog import FileAnalysis
from app.decode import DecodeError, iter_mono, probe
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


def classify_kind(path: str, duration: float, rms_all: float, rms_last_quarter: float) -> str:
    """'loop' or 'one-shot' by the rule above. Any thread."""
    lowered = path.lower()
    if duration >= LOOP_MIN_NAMED_S and _LOOP_WORD.search(lowered):
        return "loop"
    if duration >= LOOP_MIN_S and rms_all > 0:
        drop_db = 20 * math.log10(max(rms_last_quarter, 1e-12) / rms_all)
        if drop_db >= -LOOP_SUSTAIN_DB:
            return "loop"
    return "one-shot"


_encoder: Encoder | None = None
_known_hashes: frozenset[str] = frozenset()


def init_worker(model_path: str | None, known_hashes: frozenset[str]) -> None:
    """Worker-process initialiser: load the encoder once, ignore Ctrl-C
    (the parent decides when to stop and lets running files finish)."""
    global _encoder, _known_hashes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _encoder = Encoder(model_path, threads=1)
    _known_hashes = known_hashes


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
    return analyse(_encoder, path, size, mtime_ns, digest)


def analyse(encoder: Encoder, path: str, size: int, mtime_ns: int, digest: str) -> FileAnalysis:
    """Decode, embed and classify one file; never raises for bad input. Any thread
    that owns ``encoder`` (or any thread, if the encoder is thread-safe)."""
    try:
        info = probe(path)
        expected = info.frames * MODEL_SAMPLE_RATE / info.sample_rate
        last_quarter_start = int(expected * 0.75)
        stream = encoder.stream(trim_leading_silence=True)
        embeddings = []
        position = 0
        peak = 0.0
        energy_all = 0.0
        energy_last = 0.0
        for chunk in iter_mono(path, MODEL_SAMPLE_RATE):
            if not len(chunk):
                continue
            squares = np.square(chunk, dtype=np.float64)
            energy_all += float(squares.sum())
            tail_from = max(0, last_quarter_start - position)
            if tail_from < len(chunk):
                energy_last += float(squares[tail_from:].sum())
            peak = max(peak, float(np.max(np.abs(chunk))))
            position += len(chunk)
            embeddings.extend(stream.push(chunk))
        embeddings.extend(stream.flush())
    except DecodeError as exc:
        return _skipped(path, size, mtime_ns, digest, exc.code, str(exc))
    except EncoderError as exc:
        return _skipped(path, size, mtime_ns, digest, "analysis_failed", f"analysis failed: {exc}")
    except MemoryError:
        return _skipped(path, size, mtime_ns, digest, "analysis_failed", "analysis failed: out of memory")

    common = dict(duration=info.duration, sample_rate=info.sample_rate, channels=info.channels)
    if position == 0:
        return _skipped(path, size, mtime_ns, digest, "no_audio", "no audio: the file holds 0 frames",
                        **common)
    if peak <= SILENCE_PEAK or not embeddings:
        level = "-inf" if peak <= 0 else f"{20 * math.log10(peak):.0f}"
        return _skipped(path, size, mtime_ns, digest, "silent",
                        f"silent: peak level {level} dBFS", **common)
    last_len = max(1, position - min(last_quarter_start, position))
    kind = classify_kind(path, info.duration, math.sqrt(energy_all / position),
                         math.sqrt(energy_last / last_len))
    return FileAnalysis(
        path=path, size=size, mtime_ns=mtime_ns, content_hash=digest, status="indexed",
        kind=kind, model_id=encoder.model_id,
        start_samples=tuple(e.start_sample for e in embeddings),
        vectors=np.stack([e.vector for e in embeddings]).astype(np.float32),
        **common)


def _skipped(path, size, mtime_ns, digest, code, message, **extra) -> FileAnalysis:
    return FileAnalysis(path=path, size=size, mtime_ns=mtime_ns, content_hash=digest or None,
                        status="skipped", error_code=code, error=message, **extra)
