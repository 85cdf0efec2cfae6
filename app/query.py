"""The one query path: audio at the model rate -> a ``Query`` -> ranked library files.

Live one-shot and rolling windows, captures, a file dropped on the window and
``samplescout search`` all go through ``embed_query`` and ``search``, so the same audio
gives the same answer whichever way it arrives. With a re-ranker (``app.rerank``),
``search`` re-orders the index's best few files by reading them side by side with the
query. A ``SearchFilter`` narrows the files a search may return (kind and folder today;
tags, key and tempo are named for the analysis still to come and refused until then).

Threads: ``embed_query`` may run on any thread (the encoder allows concurrent runs);
``search`` runs on the thread that owns ``catalog`` (``index.search`` itself is
thread-safe).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from app.catalog import Catalog, FileRow
from app.index import VectorIndex
from app.rerank import FileReranker
from engine.errors import SampleScoutError
from models.encoder import MODEL_SAMPLE_RATE, Encoder
from models.reranker import Clip, clip_candidate

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
    # a file not reachable here: which machine has it (a shared catalogue)
    where: str | None = None

    def as_dict(self) -> dict:
        out = {
            "rank": self.rank, "path": self.file.path, "score": round(self.score, 6),
            "offset_s": round(self.offset_s, 3), "kind": self.file.kind,
            "duration_s": self.file.duration, "exists": self.exists,
        }
        if self.cosine is not None:
            out["cosine"] = round(self.cosine, 6)
        if self.where is not None:
            out["where"] = self.where
        return out


Query = Clip
"""Query windows (``models.reranker.Clip``): log-mel ``blocks`` (m, 100, 96), the
encoder's ``vectors`` (m, dim), each block's audio for the re-ranker's coherence term
(``signals``) and the query's model-rate ``audio``. The same type holds a library file's
blocks when the re-ranker reads it."""

KINDS = ("one-shot", "loop")


class SearchFilterError(SampleScoutError, ValueError):
    """A filter this version cannot apply (an unknown kind, a criterion not analysed yet)."""


@dataclass(frozen=True)
class SearchFilter:
    """Which library files a search may return; a field left at None (or empty) does not
    narrow. ``kind``: 'one-shot' or 'loop'. ``folder``: only files inside this folder.
    ``tags``, ``key`` and ``tempo`` (bpm range) wait for the analysis that will fill them
    and are refused until then."""
    kind: str | None = None
    folder: str | None = None
    tags: tuple[str, ...] = ()
    key: str | None = None
    tempo: tuple[float, float] | None = None

    def __post_init__(self):
        if self.kind is not None and self.kind not in KINDS:
            raise SearchFilterError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        for name in ("tags", "key", "tempo"):
            if getattr(self, name):
                raise SearchFilterError(f"filtering by {name} is not available yet")
        if self.folder is not None:
            object.__setattr__(self, "folder", os.path.abspath(os.path.expanduser(self.folder)))

    @property
    def narrows(self) -> bool:
        return self.kind is not None or self.folder is not None

    def accepts(self, row: FileRow) -> bool:
        if self.kind is not None and row.kind != self.kind:
            return False
        if self.folder is not None:
            inside = self.folder.rstrip(os.sep) + os.sep
            if not row.path.startswith(inside):
                return False
        return True


def embed_query(encoder: Encoder, audio_44k: np.ndarray) -> Query:
    """Mono float audio at MODEL_SAMPLE_RATE -> query windows (empty if silent).

    Leading silence is trimmed, tails kept, at most MAX_QUERY_SECONDS used. The windows
    are the encoder's own (``embed_clip`` blocks the audio the same way).
    """
    audio = np.asarray(audio_44k, dtype=np.float32).reshape(-1)
    limit = int(MAX_QUERY_SECONDS * MODEL_SAMPLE_RATE)
    if audio.size > limit:
        audio = audio[:limit]
    return clip_candidate(encoder, audio)


def search(index: VectorIndex, catalog: Catalog, query: Query | np.ndarray, k: int, *,
           reranker: FileReranker | None = None,
           filter: SearchFilter | None = None) -> list[SearchResult]:
    """The k best library files for ``query`` (or bare window vectors (m, dim)) that
    ``filter`` accepts, with catalog rows; re-ranked when a ``reranker`` is given and the
    query has its blocks.

    Vectors whose file is no longer in the catalog are dropped (fewer than k results).
    """
    vectors = query.vectors if isinstance(query, Clip) else query
    if len(vectors) == 0:
        return []
    wanted = k
    if reranker is not None:
        k = max(k, reranker.k)
    narrows = filter is not None and filter.narrows
    ask = k
    while True:
        hits = index.search(vectors, ask)
        rows = catalog.files_by_id(h.file_id for h in hits)
        if narrows:
            hits = [h for h in hits if h.file_id in rows and filter.accepts(rows[h.file_id])]
        # the index answers best files first: ask for more until enough pass the filter
        if not narrows or len(hits) >= k or ask >= len(index):
            break
        ask = min(len(index), ask * 4)
    hits = hits[:k]
    starts = catalog.window_starts(h.vector_id for h in hits)
    results = []
    for hit in hits:
        row = rows.get(hit.file_id)
        if row is None:
            continue
        exists = os.path.exists(row.path)
        results.append(SearchResult(
            rank=len(results) + 1, file=row, score=float(hit.score),
            offset_s=starts.get(hit.vector_id, 0) / MODEL_SAMPLE_RATE,
            exists=exists, where=None if exists else catalog.where(row)))
    if reranker is not None and isinstance(query, Clip):
        results = reranker.rerank(results, query.blocks, query.vectors, query.signals or None)
    return results[:wanted]
