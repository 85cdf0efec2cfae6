"""The one query path: audio at the model rate -> a ``Query`` -> ranked library files.

Live one-shot and rolling windows, captures, a file dropped on the window and
``samplescout search`` all go through ``embed_query`` and ``search``, so the same audio
gives the same answer whichever way it arrives. With a re-ranker (``app.rerank``),
``search`` re-orders the index's best few files by reading them side by side with the
query. A ``SearchFilter`` narrows the files a search may return (kind, folder, tags, key,
tempo range); tags, key and tempo come from the catalog's sound analysis. A search by
example may ask for its answers after the first to be the same kind of sound as the query
(``kind_of``, ``app.similar_kind``).

Threads: ``embed_query`` may run on any thread (the encoder allows concurrent runs);
``search`` runs on the thread that owns ``catalog`` (``index.search`` itself is
thread-safe).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from app import similar_kind
from app.catalog import Catalog, FileRow, SoundInfo, TagRow
from app.index import VectorIndex
from app.rerank import FileReranker
from app.thesaurus import UnknownTagError, normalise
from engine.errors import SampleScoutError
from models.encoder import MODEL_SAMPLE_RATE, Encoder
from models.key import parse_key as detector_parse_key
from models.reranker import Clip, clip_candidate
from models.tag_vocabulary import GENRE_TAGS, MOOD_TAGS, facet_of, tags_by_facet

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
    tags: tuple[TagRow, ...] = ()          # the tags that stand for the file, best first
    sound: SoundInfo | None = None         # tempo, key, root... (None: not analysed)

    def as_dict(self) -> dict:
        out = {
            "rank": self.rank, "path": self.file.path, "score": round(self.score, 6),
            "offset_s": round(self.offset_s, 3), "kind": self.file.kind,
            "duration_s": self.file.duration, "exists": self.exists,
            "tags": [tag_dict(t) for t in self.tags],
            "bpm": self.sound.tempo_bpm if self.sound else None,
            "key": self.sound.key_label if self.sound else None,
        }
        if self.cosine is not None:
            out["cosine"] = round(self.cosine, 6)
        if self.where is not None:
            out["where"] = self.where
        return out


def counts_for_filter(tag: TagRow) -> bool:
    """Whether a stored tag counts for tag filters (see FILTER_MIN_CONFIDENCE). Any thread."""
    return (tag.source != "audio" or tag.confidence >= FILTER_MIN_CONFIDENCE
            or tag.tag in ALWAYS_COUNTED_TAGS)


def tag_dict(tag: TagRow) -> dict:
    return {"tag": tag.tag, "source": tag.source, "confidence": round(tag.confidence, 3)}


def note_name(midi: int) -> str:
    """MIDI note number -> "A3" (middle C = C4)."""
    return f"{_NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def describe(row: FileRow, sound: SoundInfo | None, tags: list[TagRow],
             found: list[TagRow] = ()) -> dict:
    """Everything known about one catalogued file, as the JSON of ``samplescout info``:
    ``tags`` (one per tag, the source that stands for it; type tags first), ``genre`` and
    ``mood`` (those of ``tags`` in each facet) and ``found`` (every source's finding, the
    user's removals left out)."""
    s = sound
    return {
        "path": row.path, "status": row.status, "kind": row.kind, "duration_s": row.duration,
        "sample_rate": row.sample_rate, "channels": row.channels,
        "tags": [tag_dict(t) for t in tags],
        "genre": [tag_dict(t) for t in tags if facet_of(t.tag) == "genre"],
        "mood": [tag_dict(t) for t in tags if facet_of(t.tag) == "mood"],
        "found": [tag_dict(t) for t in found],
        "tempo": None if s is None or s.tempo_bpm is None else
        {"bpm": s.tempo_bpm, "confidence": s.tempo_confidence},
        "key": None if s is None or s.key_label is None else
        {"label": s.key_label, "tonic": s.key_tonic, "mode": s.key_mode, "confidence": s.key_confidence},
        "root": None if s is None or s.root_midi is None else
        {"midi": s.root_midi, "note": note_name(s.root_midi), "tuning_cents": s.tuning_cents,
         "confidence": s.root_confidence},
        "loudness_db": s.loudness_db if s else None,
        "loop_probability": s.loop_probability if s else None,
        "name_conflict": s.name_conflict if s else None,
        "analysis_model": s.analysis_model if s else None,
        "error": row.error,
    }


Query = Clip
"""Query windows (``models.reranker.Clip``): log-mel ``blocks`` (m, 100, 96), the
encoder's ``vectors`` (m, dim), each block's audio for the re-ranker's coherence term
(``signals``) and the query's model-rate ``audio``. The same type holds a library file's
blocks when the re-ranker reads it."""

KINDS = ("one-shot", "loop")


# An audio tag counts for a tag filter from this confidence on (name and user tags always;
# genre and mood tags too: models.genre_mood stores them only past their own thresholds).
FILTER_MIN_CONFIDENCE = 0.35
ALWAYS_COUNTED_TAGS = GENRE_TAGS + MOOD_TAGS
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class SearchFilterError(SampleScoutError, ValueError):
    """A filter this version cannot apply (an unknown kind, tag or key, a bad tempo range)."""


def parse_key(text: str) -> tuple[int, str]:
    """"Am", "A minor", "F#", "Bb major" -> (tonic 0-11, 'major' | 'minor') through the key
    detector's own parser. Raises SearchFilterError."""
    try:
        tonic, mode = detector_parse_key(text)
    except ValueError as exc:
        raise SearchFilterError(f"not a key: {text!r} ({exc}); write it like Am, F# minor or Bb") from None
    return int(tonic), mode


@dataclass(frozen=True)
class SearchFilter:
    """Which library files a search may return; a field left at None (or empty) does not
    narrow. ``kind``: 'one-shot' or 'loop'. ``folder``: only files inside this folder.
    ``tags``: synonyms normalised by the thesaurus; a file needs one of the tags of each
    facet named (type, genre, mood: ``snare, clap`` is either, ``snare, house`` both).
    ``key``: tonal files in this key ("Am"). ``tempo``: (low, high) bpm, inclusive.
    Files whose key or tempo is unknown do not pass a key or tempo filter."""
    kind: str | None = None
    folder: str | None = None
    tags: tuple[str, ...] = ()
    key: str | None = None
    tempo: tuple[float, float] | None = None

    def __post_init__(self):
        if self.kind is not None and self.kind not in KINDS:
            raise SearchFilterError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.folder is not None:
            object.__setattr__(self, "folder", os.path.abspath(os.path.expanduser(self.folder)))
        try:
            object.__setattr__(self, "tags", tuple(dict.fromkeys(normalise(t) for t in self.tags)))
        except UnknownTagError as exc:
            raise SearchFilterError(str(exc)) from exc
        object.__setattr__(self, "_facets", tags_by_facet(self.tags))
        if self.key is not None:
            object.__setattr__(self, "_key", parse_key(self.key))
        if self.tempo is not None:
            low, high = (float(v) for v in self.tempo)
            if not (0 < low <= high):
                raise SearchFilterError(f"tempo range must be LOW-HIGH bpm with 0 < LOW <= HIGH, "
                                        f"not {self.tempo!r}")
            object.__setattr__(self, "tempo", (low, high))

    @property
    def narrows(self) -> bool:
        return (self.kind is not None or self.folder is not None or self.needs_analysis)

    @property
    def needs_analysis(self) -> bool:
        """Whether ``accepts`` needs the files' sound analysis and tags."""
        return bool(self.tags) or self.key is not None or self.tempo is not None

    def accepts(self, row: FileRow, sound: SoundInfo | None = None,
                tags: list[TagRow] | None = None) -> bool:
        if self.kind is not None and row.kind != self.kind:
            return False
        if self.folder is not None:
            inside = self.folder.rstrip(os.sep) + os.sep
            if not row.path.startswith(inside):
                return False
        if self.tags:
            have = {t.tag for t in tags or () if counts_for_filter(t)}
            for wanted in self._facets:
                if not have.intersection(wanted):
                    return False
        if self.key is not None:
            if sound is None or (sound.key_tonic, sound.key_mode) != self._key:
                return False
        if self.tempo is not None:
            if sound is None or sound.tempo_bpm is None:
                return False
            if not self.tempo[0] <= sound.tempo_bpm <= self.tempo[1]:
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


FILE_RERANK_DEPTH = 48   # a search by file (a sound the user chose) re-ranks this deep by
                         # default: deeper finds a sound buried under other music more often


def search(index: VectorIndex, catalog: Catalog, query: Query | np.ndarray, k: int, *,
           reranker: FileReranker | None = None,
           filter: SearchFilter | None = None,
           rerank_depth: int | None = None, timings: dict | None = None,
           unranked: Callable[[list[SearchResult]], None] | None = None,
           kind_of: Mapping[str, float] | None = None) -> list[SearchResult]:
    """The k best library files for ``query`` (or bare window vectors (m, dim)) that
    ``filter`` accepts, with catalog rows; re-ranked when a ``reranker`` is given and the
    query has its blocks. ``rerank_depth``: how many of the index's best files the
    re-ranker reads (its own ``k`` when None); deeper finds a sound buried under other
    music more often, at the cost of reading more files.

    Vectors whose file is no longer in the catalog are dropped (fewer than k results).
    ``timings``: the milliseconds of the index and catalog ("search") and of the re-ranking
    ("rerank", and the re-ranker's own stages) are added to it. ``unranked``: called with
    the first k in the index's order just before the re-ranker runs (only when it runs), so
    that a caller can show them while it works; the re-ranked list replaces them.
    ``kind_of``: the query's type tags (``app.similar_kind.QueryKind``); when given, the
    answers after the first are the most similar files of the same kind
    (``app.similar_kind``), chosen among ``POOL_FACTOR`` times as many as asked for.
    """
    started = time.perf_counter()
    vectors = query.vectors if isinstance(query, Clip) else query
    if len(vectors) == 0:
        return []
    wanted = k
    if kind_of:
        k = max(k, wanted * similar_kind.POOL_FACTOR)
    if reranker is not None:
        k = max(k, rerank_depth or reranker.k)
    narrows = filter is not None and filter.narrows
    ask = k
    while True:
        hits = index.search(vectors, ask)
        rows = catalog.files_by_id(h.file_id for h in hits)
        if narrows:
            sounds = tags = {}
            if filter.needs_analysis:
                sounds, tags = catalog.sounds(rows), catalog.tags(rows)
            hits = [h for h in hits if h.file_id in rows and filter.accepts(
                rows[h.file_id], sounds.get(h.file_id), tags.get(h.file_id))]
        # the index answers best files first: ask for more until enough pass the filter
        if not narrows or len(hits) >= k or ask >= len(index):
            break
        ask = min(len(index), ask * 4)
    hits = hits[:k]
    starts = catalog.window_starts(h.vector_id for h in hits)
    kept = [h.file_id for h in hits if h.file_id in rows]
    all_sounds, all_tags = catalog.sounds(kept), catalog.tags(kept)
    results = []
    for hit in hits:
        row = rows.get(hit.file_id)
        if row is None:
            continue
        exists = os.path.exists(row.path)
        results.append(SearchResult(
            rank=len(results) + 1, file=row, score=float(hit.score),
            offset_s=starts.get(hit.vector_id, 0) / MODEL_SAMPLE_RATE,
            exists=exists, where=None if exists else catalog.where(row),
            tags=tuple(all_tags.get(row.id, ())), sound=all_sounds.get(row.id)))
    searched = time.perf_counter()
    _add_ms(timings, "search", started, searched)
    if reranker is not None and isinstance(query, Clip):
        if unranked is not None:
            unranked(results[:wanted])
        results = reranker.rerank(results, query.blocks, query.vectors, query.signals or None,
                                  depth=rerank_depth, timings=timings)
        _add_ms(timings, "rerank", searched, time.perf_counter())
    if kind_of:
        results = by_kind(results[:wanted * similar_kind.POOL_FACTOR], kind_of)
    return results[:wanted]


def by_kind(results: list[SearchResult], kind_of: Mapping[str, float]) -> list[SearchResult]:
    """``results`` (best first) in ``app.similar_kind``'s order for a query whose type tags
    are ``kind_of``: the first stays, the rest by the score of their rank and tag agreement.
    As after the re-ranker, ``score`` is the score of the rank (lists, the window's
    included, are shown in score order) and ``cosine`` stays as the re-ranker left it (each
    file's own; None: not read). Unchanged when the first answer is not close
    (``similar_kind.applies``). Any thread."""
    if not results or not similar_kind.applies(
            results[0].score if results[0].cosine is None else results[0].cosine):
        return results
    agreements = [similar_kind.tag_agreement(kind_of, {
        t.tag: t.confidence for t in r.tags if facet_of(t.tag) == "type"}) for r in results]
    # the score of each rank, so that the re-ranker's order stands where the tags agree
    scores = [r.score for r in results]
    order = similar_kind.kind_order(scores, agreements)
    return [replace(results[i], rank=rank, score=scores[rank - 1])
            for rank, i in enumerate(order, start=1)]


def _add_ms(timings: dict | None, stage: str, start: float, end: float) -> None:
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + (end - start) * 1e3
