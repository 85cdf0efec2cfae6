"""The one query path: audio at the model rate -> query windows -> ranked library files.

Search by file (``samplescout search``, a file dropped on the window) and the live matcher
both call ``embed_query`` and ``rank_files``, so the same audio gives the same answer
whichever way it arrives. With a re-ranker (``app.rerank``), ``rank_files`` re-orders the
index's best few files by reading them side by side with the query.

Threads: ``embed_query`` may run on any thread (the encoder allows concurrent runs);
``rank_files`` runs on the thread that owns ``catalog`` (``index.search`` itself is
thread-safe).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.catalog import Catalog, FileRow
from app.index import VectorIndex
from app.rerank import FileReranker
from models.encoder import MODEL_SAMPLE_RATE, Encoder
from models.reranker import clip_candidate

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
    # after re-ranking: the file's own cosine; ``score`` is then the cosine of its rank
    cosine: float | None = None

    def as_dict(self) -> dict:
        out = {
            "rank": self.rank, "path": self.file.path, "score": round(self.score, 6),
            "offset_s": round(self.offset_s, 3), "kind": self.file.kind,
            "duration_s": self.file.duration, "exists": self.exists,
        }
        if self.cosine is not None:
            out["cosine"] = round(self.cosine, 6)
        return out


@dataclass(frozen=True)
class Query:
    """Query windows: log-mel ``blocks`` (m, 100, 96), the encoder's ``vectors`` (m, dim)
    and each block's audio for the re-ranker's coherence term (``signals``, see
    ``models.coherence``)."""
    blocks: np.ndarray
    vectors: np.ndarray
    signals: Sequence[np.ndarray] = ()

    def __len__(self) -> int:
        return len(self.vectors)


def embed_query(encoder: Encoder, audio_44k: np.ndarray) -> Query:
    """Mono float audio at MODEL_SAMPLE_RATE -> query windows (empty if silent).

    Leading silence is trimmed, tails kept, at most MAX_QUERY_SECONDS used. The windows
    are the encoder's own (``embed_clip`` blocks the audio the same way).
    """
    audio = np.asarray(audio_44k, dtype=np.float32).reshape(-1)
    limit = int(MAX_QUERY_SECONDS * MODEL_SAMPLE_RATE)
    if audio.size > limit:
        audio = audio[:limit]
    clip = clip_candidate(encoder, audio)
    return Query(clip.blocks, clip.vectors, clip.signals)


def rank_files(index: VectorIndex, catalog: Catalog, query: Query | np.ndarray, k: int,
               reranker: FileReranker | None = None) -> list[SearchResult]:
    """The k best library files for ``query`` (or bare window vectors (m, dim)), with
    catalog rows; re-ranked when a ``reranker`` is given and the query has its blocks.

    Vectors whose file is no longer in the catalog are dropped (fewer than k results).
    """
    vectors = query.vectors if isinstance(query, Query) else query
    if len(vectors) == 0:
        return []
    wanted = k
    if reranker is not None:
        k = max(k, reranker.k)
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
    if reranker is not None and isinstance(query, Query):
        results = reranker.rerank(results, query.blocks, query.vectors, query.signals or None)
    return results[:wanted]
