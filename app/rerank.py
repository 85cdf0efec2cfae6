"""Second stage of a search: the re-ranker re-orders the index's best few files.

The index finds candidates by the encoder's pooled vectors; ``models.reranker`` then reads
the query block and each candidate's matched block side by side and re-orders the first
``RERANK_K`` files (the rest keep their order behind them). The matched block of a library
file is decoded again from the file (up to that block only, through the same streaming
recipe as indexing) and kept in a small cache with its audio at the coherence term's rate
and, once scored or prepared (``prepare``), what the re-ranker derives from it alone (its
network reading, room-fit terms, coherence spectrum: about 1.5 MB a block), so a sound
that stays in the suggestions costs one decode and later searches only the query's share.
The live matcher runs one in a process of its own (``app.rerank_worker``).

The scores: each re-ranked result keeps its own cosine in ``cosine``; ``score`` (what the
list is sorted and merged by) becomes the cosine of the same rank before re-ranking, so
the scale, thresholds and hysteresis of the suggestion list are unchanged.

A file that cannot be read any more is not dropped here: it stays behind the re-ranked
ones with its own score.

Threads: a ``FileReranker`` may be used from any thread; its cache has its own lock.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import Executor

import numpy as np

from app.decode import DecodeError, iter_mono, read_mono
from models.coherence import coherence_signal
from models.encoder import MODEL_SAMPLE_RATE, Encoder
from models.frontend import HOP_LENGTH
from models.preprocess import BLOCK_FRAMES, BlockAssembler, block_span
from models.reranker import (Candidate, Reranker, RerankerError, prepare_candidate, rerank_order,
                             take_over_scores)

log = logging.getLogger(__name__)

RERANK_K = 10
# A cached block keeps what scoring it needs of it alone (about 1.5 MB with its room-fit
# products and coherence spectrum, ``models.reranker.prepare_candidate``). Live re-ranking
# keeps CACHE_BLOCKS (a played sound meets the same candidates hit after hit); the window's
# searches by example keep BY_EXAMPLE_CACHE_BLOCKS: one meets 40-80 blocks, which a large
# cache would keep resident in the window's process (+85 MB at a million files,
# bench/million.py).
CACHE_BLOCKS = 96
BY_EXAMPLE_CACHE_BLOCKS = 16


class FileReranker:
    """Re-ranks search results whose candidates are library files on disk."""

    def __init__(self, reranker: Reranker, encoder: Encoder, k: int = RERANK_K,
                 cache_blocks: int = CACHE_BLOCKS, executor: Executor | None = None):
        """``executor``: the score's room-fit and coherence terms run on it beside the
        network (``models.reranker.rerank_order``); the re-ranking process gives one."""
        self.reranker = reranker
        self.executor = executor
        self.encoder = encoder
        self.k = int(k)
        self._cache: collections.OrderedDict[tuple, Candidate | None] = collections.OrderedDict()
        self._cache_blocks = int(cache_blocks)
        self._lock = threading.Lock()

    @classmethod
    def for_encoder(cls, encoder: Encoder, model_path=None,
                    cache_blocks: int = CACHE_BLOCKS) -> "FileReranker | None":
        """The shipped re-ranker if it was trained for ``encoder``'s network, else None
        (search then stops at the index's order). Any thread."""
        try:
            reranker = Reranker(model_path)
        except RerankerError as exc:
            log.warning("searching without re-ranking: %s", exc)
            return None
        if reranker.encoder_id and reranker.encoder_id != encoder.network_id:
            log.info("re-ranker %s belongs to encoder %s, not %s: searching without it",
                     reranker.model_id, reranker.encoder_id, encoder.network_id)
            return None
        return cls(reranker, encoder, cache_blocks=cache_blocks)

    def rerank(self, results: list, query_blocks: np.ndarray, query_vectors: np.ndarray,
               query_signals=None, depth: int | None = None, timings: dict | None = None) -> list:
        """``results`` (``app.query.SearchResult``, best first) with the first ``k`` (or
        ``depth``) re-ordered; ranks renumbered. ``query_signals`` (``Query.signals``) add the
        coherence term. ``timings``: each stage's milliseconds are added to it, named
        "rerank_<stage>". Any thread."""
        depth = depth or self.k
        head = results[:depth]
        if len(head) < 2 or len(query_blocks) == 0:
            return results
        stages: dict | None = {} if timings is not None else None
        order, reranked, readable = self.order(candidate_keys(head), query_blocks, query_vectors,
                                               query_signals, stages)
        add_stages(timings, stages)
        return apply_order(results, depth, order, reranked, readable)

    def order(self, keys: list[tuple[str, float]], query_blocks: np.ndarray, query_vectors: np.ndarray,
              query_signals=None, timings: dict | None = None) -> tuple[list[int], np.ndarray, list[bool]]:
        """The re-ranked order of the files ``keys`` ((path, offset_s) of the matched block,
        best first by the index), the re-ranker's score of each and whether each could be
        read. ``timings``: each stage's milliseconds are added to it. Any thread."""
        t0 = time.perf_counter()
        candidates = [self.candidate(path, offset_s) for path, offset_s in keys]
        if timings is not None:
            timings["candidates"] = timings.get("candidates", 0.0) + (time.perf_counter() - t0) * 1e3
        order, reranked = rerank_order(self.reranker, query_blocks, query_vectors, candidates, query_signals,
                                       timings=timings, executor=self.executor)
        return order, reranked, [c is not None for c in candidates]

    def prepare(self, keys: list[tuple[str, float]]) -> None:
        """Read the files ``keys`` and derive what scoring them needs of them alone, ahead of a
        re-ranking that will ask for them (``models.reranker.prepare_candidate``). Any thread."""
        for path, offset_s in keys:
            prepare_candidate(self.reranker, self.candidate(path, offset_s))

    def candidate(self, path: str, offset_s: float) -> Candidate | None:
        """The block of ``path`` the index matched at ``offset_s`` as the re-ranker reads it,
        from the cache or decoded; None if the file cannot be read. Any thread."""
        start = int(round(offset_s * MODEL_SAMPLE_RATE))
        try:
            stat = os.stat(path)
        except OSError:
            return None
        key = (path, stat.st_size, stat.st_mtime_ns, start)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        cand = None
        try:
            matched = matched_block(path, start)
            if matched is not None:
                log_mel, audio = matched
                # embedded again rather than read from the catalog: when the file changed since
                # the scan, the block is the nearest one and the stored vector would not be its own
                cand = Candidate(log_mel[None], self.encoder.embed_blocks(log_mel[None]),
                                 (coherence_signal(audio),))
        except (OSError, MemoryError, ValueError) as exc:
            # whatever the file holds now, the search answers: it keeps its place
            log.warning("re-ranking skips %s: %s: %s", path, type(exc).__name__, exc)
            cand = None
        with self._lock:
            self._cache[key] = cand
            while len(self._cache) > self._cache_blocks:
                self._cache.popitem(last=False)
        return cand


def add_stages(timings: dict | None, stages: dict | None) -> None:
    """Add a re-ranking's stage milliseconds (``FileReranker.order``'s) to ``timings`` as
    "rerank_<stage>". Any thread."""
    if timings is None or not stages:
        return
    for stage, ms in stages.items():
        key = f"rerank_{stage}"
        timings[key] = timings.get(key, 0.0) + float(ms)


def candidate_keys(results: list) -> list[tuple[str, float]]:
    """(path, offset_s) of each search result's matched block: what names a candidate."""
    return [(r.file.path, float(r.offset_s)) for r in results]


def apply_order(results: list, k: int, order: list[int], reranked: np.ndarray, readable: list[bool]) -> list:
    """``results`` with its first ``k`` in the re-ranked ``order`` (``FileReranker.order``);
    scores taken over (``take_over_scores``), ranks renumbered. Any thread."""
    head, tail = results[:k], results[k:]
    scores = take_over_scores([r.score for r in head], order, reranked)
    out = [dataclasses.replace(head[i], score=float(scores[i]),
                               cosine=head[i].score if readable[i] else None)
           for i in order]
    out.sort(key=lambda r: -r.score)           # unreadable ones keep their own place by score
    out += tail
    return [dataclasses.replace(r, rank=n + 1) for n, r in enumerate(out)]


def matched_block(path, start_sample: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The log-mel block of ``path`` that starts at ``start_sample`` (model rate, as the
    catalog stores it), decoded and blocked exactly as indexing did, and the samples it
    covers; the nearest block if none starts there (the file changed); None if the file
    cannot be decoded. Decodes only up to that block. Any thread."""
    assembler = BlockAssembler(trim_leading_silence=True)
    recent = _RecentSamples(2 * BLOCK_FRAMES * HOP_LENGTH)
    best = None

    def nearer(block) -> bool:
        return best is None or abs(block.start_sample - start_sample) < abs(best.start_sample - start_sample)

    def chosen():
        span = block_span(best.start_sample)
        samples = recent.span(span)
        if samples is None:
            # a quiet clip: the onset gate held its blocks back until the end of the file
            samples = read_mono(path, MODEL_SAMPLE_RATE, max_seconds=span.stop / MODEL_SAMPLE_RATE)[span]
        return best.log_mel, samples

    # only the chosen block's samples are copied, at the end: it is this block or the one
    # before, both still in ``recent`` unless the onset gate held them back
    try:
        for chunk in iter_mono(path, MODEL_SAMPLE_RATE):
            recent.push(chunk)
            for block in assembler.push(chunk):
                if nearer(block):
                    best = block
                if block.start_sample >= start_sample:
                    return chosen()
        for block in assembler.flush():
            if nearer(block):
                best = block
        return None if best is None else chosen()
    except DecodeError as exc:
        log.info("re-ranking skips %s: %s", path, exc)
        return None


class _RecentSamples:
    """The latest samples of a stream (the last chunk and ``capacity`` before it),
    addressed by their position in the stream."""

    def __init__(self, capacity: int):
        self._buffer = np.zeros(0, dtype=np.float32)
        self._start = 0               # stream position of self._buffer[0]
        self._capacity = int(capacity)

    def push(self, chunk: np.ndarray) -> None:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self._buffer = np.concatenate([self._buffer, chunk])
        # a block completed by this chunk may start up to ``capacity`` before the chunk
        # (a chunk resampled from a low rate can be longer than a block)
        drop = self._buffer.size - self._capacity - chunk.size
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._start += drop

    def span(self, where: slice) -> np.ndarray | None:
        """A copy of the samples at stream positions ``where`` (up to the stream's end so
        far); None if the first of them is no longer held."""
        if where.start < self._start:
            return None
        return self._buffer[where.start - self._start:max(where.stop - self._start, 0)].copy()
