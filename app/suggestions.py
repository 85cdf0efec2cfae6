"""Suggestions published by the matcher, and the hysteresis that keeps the list steady.

``SuggestionMerger`` merges the ranked results of successive queries into one list:

- an entry the new query returned gets ``new_weight*new + (1-new_weight)*old`` (a new entry
  starts at its score); entries it did not return are multiplied by ``decay``;
- entries below ``min_score``, or not returned for ``max_age_seconds``, leave the list;
- ranks change only when an entry scores more than ``margin`` above the entry ranked just
  before it (new entries start below the incumbents and climb by the same rule), so small
  score wobbles never reorder the list;
- except for a new sound (``update(..., new_sound=True)``: each hit in one-shot mode): its
  files take its own scores and rank by them, so a hit's answer is its own even when the hit
  before it was a near twin (a kick after another kick).

Threads: a ``SuggestionMerger`` is used under its owner's lock; the dataclasses are immutable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.match_profiles import Hysteresis
from app.query import SearchResult
from models.tag_vocabulary import facet_of


@dataclass(frozen=True)
class Suggestion:
    rank: int
    file_id: int
    path: str
    name: str
    score: float
    kind: str | None
    duration_s: float | None
    offset_s: float
    exists: bool
    tags: tuple[str, ...] = ()    # the tags that stand for the file, best first
    bpm: float | None = None
    key: str | None = None        # "Am"

    @classmethod
    def from_result(cls, result: SearchResult, rank: int | None = None, score: float | None = None) -> "Suggestion":
        row = result.file
        sound = result.sound
        return cls(rank=result.rank if rank is None else rank, file_id=row.id, path=row.path,
                   name=row.name, score=float(result.score if score is None else score),
                   kind=row.kind, duration_s=row.duration, offset_s=float(result.offset_s),
                   exists=bool(result.exists), tags=tuple(t.tag for t in result.tags),
                   bpm=sound.tempo_bpm if sound else None, key=sound.key_label if sound else None)

    def describe_sound(self) -> str:
        """"kick", "drum loop · 120 bpm", "melodic loop, house, chill · 96 bpm · Am": what
        the sound is (two type tags, the first genre and the first mood), empty when nothing
        is known."""
        by_facet: dict[str, list[str]] = {}
        for tag in self.tags:
            by_facet.setdefault(facet_of(tag), []).append(tag)
        shown = by_facet.get("type", [])[:2] + by_facet.get("genre", [])[:1] + by_facet.get("mood", [])[:1]
        parts = [", ".join(shown)] if shown else []
        if self.bpm:
            parts.append(f"{self.bpm:.0f} bpm")
        if self.key:
            parts.append(self.key)
        return " · ".join(parts)

    def as_dict(self) -> dict:
        return {"rank": self.rank, "file_id": self.file_id, "path": self.path, "name": self.name,
                "score": round(self.score, 6), "kind": self.kind, "duration_s": self.duration_s,
                "offset_s": round(self.offset_s, 3), "exists": self.exists,
                "tags": list(self.tags), "bpm": self.bpm, "key": self.key}


@dataclass(frozen=True)
class SuggestionUpdate:
    seq: int
    onset_frame: int | None     # device frame of the onset (one-shot, capture), else None
    mode: str
    suggestions: tuple[Suggestion, ...]
    level_db: float             # peak level of the analysed audio, dBFS
    reason: str                 # 'onset' | 'rolling' | 'capture' | 'capture-full' | 'file'
    latency_ms: float           # end of the analysis window (or the request) -> published
    # 'attack' (the first ~0.1 s of a hit), 'refined' (more of it), 'final' (the whole
    # analysis window, or up to the next onset or the decay): an onset's updates in order.
    # A dropped file's answer: 'index' (the index's order, while the re-ranker works), then
    # 'final'
    stage: str = "final"
    # time.monotonic() when the onset's device frame reached the capture ring (one-shot);
    # now - onset_time is what the producer waited since the hit
    onset_time: float | None = None
    # where a live update's latency_ms went: (stage, ms) in order ("wait" from the window's
    # end to its analysis, "embed", "search", "rerank" with the re-ranker's own stages,
    # "merge"); empty for captures and files
    trace: tuple[tuple[str, float], ...] = ()

    def since_onset_ms(self, now: float | None = None) -> float | None:
        """Milliseconds from the onset to ``now`` (default: time.monotonic()); None without
        an onset. Any thread."""
        if self.onset_time is None:
            return None
        return ((time.monotonic() if now is None else now) - self.onset_time) * 1000.0

    def as_dict(self) -> dict:
        return {"seq": self.seq, "onset_frame": self.onset_frame, "mode": self.mode,
                "reason": self.reason, "stage": self.stage, "level_db": round(self.level_db, 2),
                "latency_ms": round(self.latency_ms, 3),
                "onset_time": None if self.onset_time is None else round(self.onset_time, 6),
                "trace": {stage: round(ms, 2) for stage, ms in self.trace},
                "suggestions": [s.as_dict() for s in self.suggestions]}


class _Entry:
    __slots__ = ("result", "score", "last_seen")

    def __init__(self, result: SearchResult, score: float, last_seen: float):
        self.result = result
        self.score = score
        self.last_seen = last_seen


class SuggestionMerger:
    """Merges ranked query results with hysteresis (see module docstring)."""

    def __init__(self, hysteresis: Hysteresis):
        self.hysteresis = hysteresis
        self.reset()

    def reset(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._order: list[int] = []

    def snapshot(self) -> tuple:
        """The merged state as it is now, for ``restore`` (a hit's later stages replace its
        earlier ones instead of counting as more queries)."""
        return ({f: _Entry(e.result, e.score, e.last_seen) for f, e in self._entries.items()},
                list(self._order))

    def restore(self, state: tuple) -> None:
        entries, order = state
        self._entries = {f: _Entry(e.result, e.score, e.last_seen) for f, e in entries.items()}
        self._order = list(order)

    def update(self, results: list[SearchResult], now: float, *, new_sound: bool = False) -> tuple[Suggestion, ...]:
        """Merge one query's ranked ``results``. ``new_sound``: they answer a sound of its own
        (a hit in one-shot mode), not another look at the same one: the files it returned
        take its scores as they are and the list is ranked by score without the margin,
        so the hit's own best leads even over a near twin an earlier hit put first (the
        others decay below as usual)."""
        h = self.hysteresis
        returned = {r.file.id: r for r in results}
        for file_id, entry in self._entries.items():
            if file_id not in returned:
                entry.score *= h.decay
        newcomers = []
        for file_id, result in returned.items():
            entry = self._entries.get(file_id)
            if entry is None:
                self._entries[file_id] = _Entry(result, float(result.score), now)
                newcomers.append(file_id)
            else:
                entry.score = (float(result.score) if new_sound else
                               h.new_weight * float(result.score) + (1.0 - h.new_weight) * entry.score)
                entry.result = result
                entry.last_seen = now
        for file_id in [f for f, e in self._entries.items()
                        if e.score < h.min_score or now - e.last_seen > h.max_age_seconds]:
            del self._entries[file_id]
        newcomers.sort(key=lambda f: -self._entries[f].score if f in self._entries else 0.0)
        order = [f for f in self._order if f in self._entries]
        order += [f for f in newcomers if f in self._entries]
        score = {f: self._entries[f].score for f in order}
        if new_sound:
            order.sort(key=lambda f: -score[f])        # stable: ties keep their places
        # Swap neighbours only when the lower one wins by more than the margin; each swap
        # removes one such inversion, so this ends.
        swapped = True
        while swapped:
            swapped = False
            for i in range(len(order) - 1):
                if score[order[i + 1]] > score[order[i]] + h.margin:
                    order[i], order[i + 1] = order[i + 1], order[i]
                    swapped = True
        self._order = order
        return self.suggestions()

    def suggestions(self, limit: int | None = None) -> tuple[Suggestion, ...]:
        """The merged list, best first: ``limit`` entries (default: the profile's display)."""
        shown = self._order[:self.hysteresis.display if limit is None else limit]
        return tuple(Suggestion.from_result(self._entries[f].result, rank=i + 1,
                                            score=self._entries[f].score)
                     for i, f in enumerate(shown))


def ranked(results: list[SearchResult], display: int) -> tuple[Suggestion, ...]:
    """Plain ranked suggestions (no hysteresis): captures and dropped files."""
    return tuple(Suggestion.from_result(r, rank=i + 1) for i, r in enumerate(results[:display]))
