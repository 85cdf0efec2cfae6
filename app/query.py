"""The one query path: audio at the model rate -> query windows -> ranked library files.

Search by file (``samplescout search``, a file dropped on the window) and the live matcher
both call ``embed_query`` and ``rank_files``, so the same audio gives the same answer
whichever way it arrives.

Threads: ``embed_query`` may run on any thread (the encoder allows concurrent runs);
``rank_files`` runs on the thread that owns ``catalog`` (``index.search`` itself is
thread-safe).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from app.catalog import Catalog, FileRow
from app.index import VectorIndex
from models.encoder import MODEL_SAMPLE_RATE, Encoder

# A query longer than this is cut: the best window of a long clip is found
# within its first minute in practice, and it bounds the work.
MAX_QUERY_SECONDS = 60.0


@dataclass(frozen=True)
class SearchResult:
    rank: int
    file: FileRow
    score: float          # cosine similarity of the best window pair, 1 = identical
    offset_s: float       # where the best-matching window starts in the library file
    exists: bool          # False when the file vanished since the last scan

    def as_dict(self) -> dict:
        return {
            "rank": self.rank, "path": self.file.path, "score": round(self.score, 6),
            "offset_s": round(self.offset_s, 3), "kind": self.file.kind,
            "duration_s": self.file.duration, "exists": self.exists,
        }


def embed_query(encoder: Encoder, audio_44k: np.ndarray) -> np.ndarray:
    """Mono float audio at MODEL_SAMPLE_RATE -> query windows ``(m, dim)``; ``(0, dim)`` if silent.

    Leading silence is trimmed, tails kept, at most MAX_QUERY_SECONDS used.
    """
    audio = np.asarray(audio_44k, dtype=np.float32).reshape(-1)
    limit = int(MAX_QUERY_SECONDS * MODEL_SAMPLE_RATE)
    if audio.size > limit:
        audio = audio[:limit]
    return encoder.embed_clip(audio, trim_leading_silence=True)


def rank_files(index: VectorIndex, catalog: Catalog, vectors: np.ndarray, k: int) -> list[SearchResult]:
    """The k best library files for query windows ``vectors`` (m, dim), with catalog rows.

    Vectors whose file is no longer in the catalog are dropped (fewer than k results).
    """
    if len(vectors) == 0:
        return []
    hits = index.search(vectors, k)
    rows = catalog.files_by_id(h.file_id for h in hits)
    starts = catalog.window_starts(h.vector_id for h in hits)
    results = []
    for hit in hits:
        row = rows.get(hit.file_id)
        if row is None:
            continue
        results.append(SearchResult(
            rank=len(results) + 1, file=row, score=float(hit.score),
            offset_s=starts.get(hit.vector_id, 0) / MODEL_SAMPLE_RATE,
            exists=os.path.exists(row.path)))
    return results
