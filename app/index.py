"""Vector index of the sample library: HNSW (hnswlib) over one embedding per embedded block.

Every vector has a ``vector_id`` (its hnswlib label) and belongs to one file of the catalog
(``file_id``). A search ranks files by the best cosine similarity over all their vectors and
all query blocks. The catalog keeps every vector, so this index is a rebuildable cache: a file
that does not match the current model, dimension or catalog generation, or that is truncated or
corrupt, raises :class:`IndexFormatError` on load and the caller rebuilds from the catalog.

File layout (little-endian)::

    magic      8 bytes  b"SSCVIDX\\n"
    hlen       uint32   length of the header
    header     hlen bytes of UTF-8 JSON: format_version, model_id, dim, count, generation,
               n_stored, space, M, ef_construction, ef_search, mapping_bytes, hnsw_bytes,
               payload_crc32 (CRC-32 of everything after the header); format 2 adds
               graph_dim, projection_bytes, exact_bytes; format 3 sketch_bytes
    mapping    int64[n_stored] vector ids (ascending in format 2), int64[n_stored] file ids,
               uint8[n_stored] deleted flags
    projection float32[graph_dim, dim] (format 2, compact only)
    exact      float16[n_stored, dim] unit rows in the mapping's order (format 2, compact only)
    sketch     int8[n_stored, dim] codes then float32[n_stored] scales of the exact rows
               (format 3, compact only)
    hnsw       the bytes of hnswlib's save_index (formats 1-3)

Format 4 orders the regions projection, hnsw, mapping, exact, sketch and stores the graph
as its plain arrays (``app.hnsw_state``: loaded without hnswlib's ``load_index``, about
twice as fast), read first so that its load's brief second copy meets nothing else of size
(the sketch comes last). Its header may also hold exact_crc32, the CRC-32 of the exact rows
alone: a load then checks every other region at once (the rows' CRC standing in for them in
payload_crc32) and the rows on a thread of their own once the index is in use
(``app.region_check``); rows found damaged are never saved again, searches rank by the
sketch alone, and the next load of that file rebuilds it (a note beside it says so). With
sketch_crc32 too, the sketch is mapped instead of read (a million vectors load about 0.5 s
sooner) and checked with the rows.

Compact form: from COMPACT_FROM_VECTORS vectors on, the graph holds each vector projected to
GRAPH_DIM dimensions (app.compact_vectors) and a search re-scores COMPACT_OVERSAMPLE times as
many graph candidates: all of them by the rows' int8 sketch held in RAM, the few that lead by
the exact float16 rows, which a loaded index reads from its file as a search needs them. A
million vectors load in a fraction of the time and memory of a full-width graph.
Format 1 files (always full width), format 2 files (no sketch: it is made while loading)
and format 3 files still load; ``needs_resave`` tells the caller to save them again.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import hnswlib
import numpy as np

from app.compact_vectors import (
    CODE_DTYPE, GRAPH_DIM, SCALE_DTYPE, ExactRows, FileRows, Projection, RowSketch, unit_rows,
)
from app.hnsw_state import (READ_CHUNK_BYTES, GraphStateError, StreamedGraph, read_checked,
                             read_graph)
from app.region_check import RegionCheck, crc32_combine
from app.vector_files import VectorFiles
from engine.errors import SampleScoutError

MAGIC = b"SSCVIDX\n"
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
SPACE = "cosine"

# From this many vectors on a library's index is compact (bench/compact_index.py: at 200k
# real-like vectors the compact graph keeps recall@10 while loading and searching faster).
COMPACT_FROM_VECTORS = 300_000
# A compact search re-scores this many times the candidates a full-width search would read
# (bench/million.py at 1.5 million vectors: recall@10 of files against an exhaustive search
# 0.83 with 4, 0.92 with 6, 0.96 with 8; 1-block search p99 1.9, 2.4 and 2.6 ms)...
COMPACT_OVERSAMPLE = 8
# ...by their sketch, then reads the exact rows of this many times k that lead.
EXACT_LEAD_PER_K = 1
# A query of b > 2 blocks asks the graph for MULTI_BLOCK_SHARE / sqrt(b - 1) of the
# candidates a block alone would (a 10-block query: recall@10 0.90 where all of them give 0.93, p99 2.0
# where they take 2.8 ms).
MULTI_BLOCK_SHARE = 1.5
# A query of this many blocks or more is searched in two halves at once, one on the caller's
# thread and one on a helper thread (hnswlib releases the GIL; in bench/million.py's
# 1.5-million-vector graph an 8-block query's graph search takes 1.3 ms instead of 2.0).
SPLIT_FROM_BLOCKS = 2

# Chosen with bench/query.py (see bench/results/query.json): at 100k vectors of dim 512 these
# keep a single-block query well under 1 ms p99 with recall@10 >= 0.98.
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 64


def compact_for(count: int, dim: int) -> bool:
    """Whether an index of ``count`` vectors of ``dim`` dimensions should be compact."""
    return count >= COMPACT_FROM_VECTORS and dim > GRAPH_DIM


def ef_search_for(count: int) -> int:
    """ef_search that keeps recall@10 >= 0.98 as the index grows (bench/query.py:
    ef 64 gives 0.996 at 100k but 0.94 at 1M, where ef 128 gives 0.989)."""
    if count <= 300_000:
        return DEFAULT_EF_SEARCH
    if count <= 2_000_000:
        return 128
    return 256

# Vectors are inserted in chunks under the write lock so a live query waits for one chunk at
# most, not for a whole scan batch.
_ADD_CHUNK = 256
_COPY_CHUNK = 1 << 20
log = logging.getLogger(__name__)
# The exact rows' check after load waits this long: the window's start-up comes first.
ROWS_CHECK_DELAY_S = 2.0
# Cosine distance below which two stored vectors count as the same: float32 rounding puts a
# vector up to ~1e-6 away from itself.
_SAME_VECTOR_DISTANCE = 1e-5
_MAX_HEADER_BYTES = 1 << 20


class IndexFormatError(SampleScoutError):
    """The index file does not fit the current model/dimension/generation, or is damaged."""


@dataclass(frozen=True)
class Hit:
    file_id: int
    score: float
    vector_id: int


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class VectorIndex:
    """HNSW index of file vectors, searched by cosine similarity.

    Thread safety: every public method may be called from any thread. ``search``,
    ``self_recall``, ``save``, ``__len__`` and the read-only properties take a shared lock and
    run concurrently with each other (hnswlib's knn_query and get_items are safe alongside
    other queries and save_index only reads).
    ``add``, ``remove_files`` and setting ``ef_search`` take the exclusive lock, because hnswlib
    is not safe to mutate while it is being queried; ``add`` releases the lock between chunks
    of 256 vectors so that live queries keep flowing during a long scan. Set ``generation``
    before calling ``save`` from the thread that owns the catalog state it describes.
    Given a ``projection`` the index is compact (module docstring): the graph holds the
    projected vectors, the exact rows re-score its candidates.
    """

    def __init__(
        self,
        dim: int,
        model_id: str,
        capacity: int = 1024,
        *,
        ef_search: int = DEFAULT_EF_SEARCH,
        M: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        add_threads: int = 1,
        projection: Projection | None = None,
    ) -> None:
        if int(dim) <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("model_id must be a non-empty string")
        if int(M) < 2 or int(ef_construction) < 1 or int(ef_search) < 1:
            raise ValueError(
                f"bad HNSW parameters: M={M}, ef_construction={ef_construction}, ef_search={ef_search}"
            )
        if projection is not None and projection.dim != int(dim):
            raise ValueError(f"projection takes {projection.dim} dimensions, the index has {dim}")
        self._setup(dim, model_id, ef_search, M, ef_construction, add_threads, projection)
        if projection is not None:
            self._exact = ExactRows(self.dim)
        self._hnsw.init_index(
            max_elements=max(1, int(capacity)), ef_construction=self.ef_construction, M=self.M
        )
        self._hnsw.set_ef(self._ef_search)

    def _setup(
        self, dim: int, model_id: str, ef_search: int, M: int, ef_construction: int,
        add_threads: int, projection: Projection | None = None,
    ) -> None:
        self.dim = int(dim)
        self.projection = projection
        self.graph_dim = self.dim if projection is None else projection.graph_dim
        self._exact: ExactRows | None = None   # the full rows of a compact index
        self._rows_check: RegionCheck | None = None   # of exact rows read from the file
        self._sketch_load: RegionCheck | None = None  # of their sketch, read after the load
        self.model_id = model_id
        self.generation = ""
        self.M = int(M)
        self.ef_construction = int(ef_construction)
        self.add_threads = int(add_threads)
        self._ef_search = int(ef_search)
        self._lock = _ReadWriteLock()
        self.saved_format = FORMAT_VERSION   # the format of the file it was loaded from
        self.needs_resave = False    # that file is of an older format or lacks the sketch's CRC
        self._hnsw = hnswlib.Index(space=SPACE, dim=self.graph_dim)
        self._vector_files = VectorFiles()   # vector_id -> file_id, live and deleted

    # ----- construction -------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        dim: int,
        model_id: str,
        vector_ids: np.ndarray,
        file_ids: np.ndarray,
        vectors: np.ndarray,
        *,
        ef_search: int = DEFAULT_EF_SEARCH,
        M: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        num_threads: int = -1,
        generation: str = "",
        projection: Projection | None = None,
    ) -> "VectorIndex":
        """A new index holding the given vectors (any thread; the result is not shared yet).
        Compact with ``projection``, or with one fitted to these vectors when there are at
        least COMPACT_FROM_VECTORS of them."""
        if projection is None and compact_for(len(vector_ids), int(dim)):
            projection = Projection.fit(np.asarray(vectors))
        index = cls(
            dim,
            model_id,
            capacity=max(1, len(vector_ids)),
            ef_search=ef_search,
            M=M,
            ef_construction=ef_construction,
            add_threads=num_threads,
            projection=projection,
        )
        index.generation = generation
        vids, fids, vecs = index._check_batch(vector_ids, file_ids, vectors)
        if len(vids):
            # Nobody else holds the new index: one call, no chunking, all threads.
            index._insert(vids, fids, vecs, num_threads)
            index._vector_files.fold()
        return index

    # ----- properties ---------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock.read():
            return self._vector_files.live_count

    @property
    def capacity(self) -> int:
        with self._lock.read():
            return self._hnsw.get_max_elements()

    @property
    def deleted_fraction(self) -> float:
        """Share of stored vectors that are marked deleted but still occupy the graph."""
        with self._lock.read():
            stored = len(self._vector_files)
            return self._vector_files.deleted_count / stored if stored else 0.0

    @property
    def compact(self) -> bool:
        return self.projection is not None

    @property
    def sketched(self) -> bool:
        """Whether a compact index ranks its candidates by the rows' int8 sketch (a loaded
        one's is read on a thread after the load; until then, by the exact rows)."""
        return self._exact is not None and self._exact.sketched

    def exact_rows_damage(self, wait: bool = False) -> str | None:
        """What the checks of a loaded compact index's exact rows and their sketch found
        wrong (then searches rank by the sketch alone, or by the rows where the sketch is
        the damaged part, and the file must be rebuilt); None while they run, when the
        regions are intact or unchecked. ``wait``: finish the checks first. Any thread."""
        for check in (self._sketch_load, self._rows_check):
            damage = None if check is None else (check.result() if wait else check.damage)
            if damage is not None:
                return damage
        return None

    def needs_rebuild(self, threshold: float = 0.2) -> bool:
        """Over ``threshold`` of the graph deleted, or large enough to be compact but not."""
        if not self.compact and compact_for(len(self), self.dim):
            return True
        return self.deleted_fraction > threshold

    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if int(value) < 1:
            raise ValueError(f"ef_search must be >= 1, got {value}")
        with self._lock.write():
            self._ef_search = int(value)
            self._hnsw.set_ef(self._ef_search)

    def vector_files(self) -> dict[int, int]:
        """vector_id -> file_id of every live vector (for repairs against the catalog)."""
        with self._lock.read():
            vids, fids = self._vector_files.live_arrays()
        return dict(zip(vids.tolist(), fids.tolist()))

    def live_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(vector_ids, file_ids) of every live vector, by ascending vector id, as arrays (a
        repair against the catalog compares them without a dict of millions of entries)."""
        with self._lock.read():
            return self._vector_files.live_arrays()

    def file_ids(self) -> set[int]:
        """The files that have at least one live vector."""
        with self._lock.read():
            return self._vector_files.live_files()

    # ----- writing ------------------------------------------------------------------------

    def add(self, vector_ids: np.ndarray, file_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors (or replace the vector of an existing vector_id); grows capacity.

        Vectors need not be normalised (cosine space normalises them), but must be finite
        and non-zero. Takes the exclusive lock one chunk at a time.
        """
        vids, fids, vecs = self._check_batch(vector_ids, file_ids, vectors)
        for start in range(0, len(vids), _ADD_CHUNK):
            stop = start + _ADD_CHUNK
            with self._lock.write():
                self._insert(vids[start:stop], fids[start:stop], vecs[start:stop], self.add_threads)

    def remove_files(self, file_ids: Iterable[int]) -> int:
        """Hide every vector of these files from searches; returns how many vectors were hidden."""
        removed = 0
        with self._lock.write():
            for file_id in file_ids:
                for vector_id in self._vector_files.live_of_file(file_id):
                    self._hnsw.mark_deleted(vector_id)
                    self._vector_files.delete(vector_id)
                    removed += 1
        return removed

    def _check_batch(
        self, vector_ids: np.ndarray, file_ids: np.ndarray, vectors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        vids = np.asarray(vector_ids)
        fids = np.asarray(file_ids)
        vecs = np.asarray(vectors)
        if vecs.ndim == 1:
            vecs = vecs.reshape(1, -1)
        if vids.ndim != 1 or fids.ndim != 1 or vecs.ndim != 2:
            raise ValueError("vector_ids and file_ids must be 1-D, vectors 2-D (n, dim)")
        if not (len(vids) == len(fids) == len(vecs)):
            raise ValueError(
                f"length mismatch: {len(vids)} vector_ids, {len(fids)} file_ids, {len(vecs)} vectors"
            )
        if vecs.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vecs.shape[1]}, the index expects {self.dim}")
        if len(vids) == 0:
            return vids.astype(np.int64), fids.astype(np.int64), vecs.astype(np.float32)
        if not np.issubdtype(vids.dtype, np.integer) or not np.issubdtype(fids.dtype, np.integer):
            raise ValueError("vector_ids and file_ids must be integers")
        if vids.min() < 0:
            raise ValueError("vector_ids must be >= 0")
        if len(np.unique(vids)) != len(vids):
            raise ValueError("vector_ids repeat within one batch")
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if not np.isfinite(vecs).all():
            raise ValueError("vectors contain NaN or infinity")
        zero = np.flatnonzero(np.einsum("ij,ij->i", vecs, vecs) == 0.0)
        if len(zero):
            raise ValueError(f"vector_id {int(vids[zero[0]])} is an all-zero vector")
        return vids.astype(np.int64), fids.astype(np.int64), vecs

    def _insert(self, vids: np.ndarray, fids: np.ndarray, vecs: np.ndarray, threads: int) -> None:
        """Caller holds the write lock (or owns the index alone)."""
        new = int(np.count_nonzero(self._vector_files.files_of(vids) < 0))
        needed = len(self._vector_files) + new
        capacity = self._hnsw.get_max_elements()
        if needed > capacity:
            self._hnsw.resize_index(max(needed, capacity + capacity // 2, capacity + 1024))
        if self._exact is not None:
            self._exact.put(vids, vecs)
            self._hnsw.add_items(self.projection.apply(vecs), vids, num_threads=threads)
        else:
            self._hnsw.add_items(vecs, vids, num_threads=threads)
        for vector_id, file_id in zip(vids.tolist(), fids.tolist()):
            self._vector_files.assign(vector_id, file_id)

    # ----- searching ----------------------------------------------------------------------

    def search(
        self, query: np.ndarray, k: int = 10, *, exclude_file_ids: Iterable[int] = ()
    ) -> list[Hit]:
        """The k best files for one query vector (dim,) or several query blocks (m, dim).

        A file scores the best cosine similarity over all query blocks and all its vectors.
        Returns fewer than k hits only when fewer files are live; an empty index gives [].
        All-zero query rows (silence) are ignored. Any thread; runs alongside other searches.
        """
        q = np.asarray(query, dtype=np.float32)
        if q.ndim == 1:
            q = q.reshape(1, -1)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"query must have shape ({self.dim},) or (m, {self.dim}), got {np.shape(query)}")
        if not np.isfinite(q).all():
            raise ValueError("query contains NaN or infinity")
        q = q[np.einsum("ij,ij->i", q, q) > 0.0]
        if k <= 0 or len(q) == 0:
            return []
        excluded = {int(f) for f in exclude_file_ids}
        with self._lock.read():
            live = self._vector_files.live_count
            if live == 0:
                return []
            excluded_vectors = sum(len(self._vector_files.live_of_file(f)) for f in excluded)
            keep = k * 4 + 16 + excluded_vectors      # rows ranked into files
            n_ask = keep                                  # graph candidates per block
            if self._exact is not None:
                q = unit_rows(q)
                graph_q = self.projection.apply(q)
                # a file's best block decides: many blocks share the candidates between them
                n_ask = int(keep * COMPACT_OVERSAMPLE
                            * min(1.0, MULTI_BLOCK_SHARE / np.sqrt(max(1, len(q) - 1))))
            while True:
                n_ask = min(live, n_ask)
                if self._exact is None:
                    labels, distances = self._in_halves(
                        lambda rows: self._knn(rows, n_ask), q)
                else:
                    labels, distances = self._rescored(q, *self._in_halves(
                        lambda graph_rows, rows: self._sketch_scored(graph_rows, rows, n_ask),
                        graph_q, q), keep, EXACT_LEAD_PER_K * k + 8)
                best = self._best_per_file(labels, distances, excluded)
                if len(best[0]) >= k or n_ask >= live:
                    break
                n_ask, keep = n_ask * 2, keep * 2
        return [Hit(file_id=f, score=s, vector_id=v)
                for f, s, v in zip(*(column[:k].tolist() for column in best))]

    def self_recall(self, sample: int = 256, seed: int = 0) -> float:
        """Share of a random sample of live vectors that a k=1 query for their own stored
        vector answers with themselves, at the current ef_search.

        Below 1.0 means the graph has nodes that searches cannot reach (HNSW can strand them,
        e.g. in tight clusters of near-duplicates). An exact duplicate answering first also
        counts as found, since no query can tell the two apart. An empty index gives 1.0.
        Any thread; takes the shared lock, so it runs alongside searches.
        """
        if int(sample) < 1:
            raise ValueError(f"sample must be >= 1, got {sample}")
        with self._lock.read():
            live = self._vector_files.live_arrays()[0]
            if len(live) == 0:
                return 1.0
            rng = np.random.default_rng(seed)
            chosen = rng.choice(live, size=min(int(sample), len(live)), replace=False)
            stored = np.asarray(self._hnsw.get_items(chosen.tolist()), dtype=np.float32)
            found = 0
            for vector_id, vector in zip(chosen.tolist(), stored):
                labels, distances = self._knn(vector.reshape(1, -1), 1)
                if labels.size and (
                    int(labels[0, 0]) == vector_id or distances[0, 0] <= _SAME_VECTOR_DISTANCE
                ):
                    found += 1
        return found / len(chosen)

    def _sketch_scored(self, graph_q: np.ndarray, q: np.ndarray,
                       n_ask: int) -> tuple[np.ndarray, np.ndarray]:
        """(candidates, scores), each (b, n): the graph's ``n_ask`` candidates of each
        projected block ``graph_q[b]``, scored against the unit block ``q[b]`` by the sketch
        when there is one (by the exact rows otherwise)."""
        candidates = self._knn(graph_q, n_ask)[0].astype(np.int64)
        if candidates.size == 0:
            return candidates, np.empty(candidates.shape, np.float32)
        return candidates, self._exact.block_scores(candidates, q)

    def _rescored(self, q: np.ndarray, candidates: np.ndarray, scores: np.ndarray, keep: int,
                  lead: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``keep`` best of the graph's candidates (``_sketch_scored``) by cosine
        distance to the unit query blocks ``q``; the ``lead`` best of them scored again by
        their exact rows against every block (the ones a caller shows; the others'
        distances are within a few thousandths). A vector found by two blocks may appear
        twice."""
        if candidates.size == 0:
            return candidates.ravel(), np.empty(0, np.float32)
        scores = scores.ravel()
        candidates = candidates.ravel()
        if len(candidates) > keep:
            best = np.argpartition(-scores, keep - 1)[:keep]
            candidates, scores = candidates[best], scores[best]
        if (self._exact.sketched or len(q) > 1) and self.exact_rows_damage() is None:
            first = (np.argpartition(-scores, lead - 1)[:lead] if len(scores) > lead
                     else np.arange(len(scores)))
            exact = self._exact.rows(candidates[first]).astype(np.float32)
            scores[first] = (exact @ q.T).max(axis=1)
        return candidates, 1.0 - scores

    def _in_halves(self, work: Callable[..., tuple[np.ndarray, np.ndarray]],
                   *blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``work(*blocks)``, two arrays of one row per query block; for
        ``SPLIT_FROM_BLOCKS`` blocks or more, on the two halves of the blocks at once (the
        second on a helper thread: hnswlib and numpy release the GIL). The caller holds the
        read lock for both halves."""
        if len(blocks[0]) < SPLIT_FROM_BLOCKS or (os.cpu_count() or 1) < 2:
            return work(*blocks)
        half = len(blocks[0]) // 2
        second = _search_helper().submit(work, *(b[half:] for b in blocks))
        first = work(*(b[:half] for b in blocks))
        rest = second.result()
        # a half may have found fewer; rows are nearest first, so cutting keeps the best
        width = min(first[0].shape[1], rest[0].shape[1])
        return (np.vstack([first[0][:, :width], rest[0][:, :width]]),
                np.vstack([first[1][:, :width], rest[1][:, :width]]))

    def _knn(self, q: np.ndarray, n_ask: int) -> tuple[np.ndarray, np.ndarray]:
        # hnswlib raises when it finds fewer than n_ask live neighbours (possible with many
        # deleted vectors); ask for fewer until it answers.
        while True:
            try:
                return self._hnsw.knn_query(q, k=n_ask, num_threads=1)
            except RuntimeError:
                if n_ask == 1:
                    return np.empty((len(q), 0), np.uint64), np.empty((len(q), 0), np.float32)
                n_ask = max(1, n_ask // 2)

    def _best_per_file(
        self, labels: np.ndarray, distances: np.ndarray, excluded: set[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(file_ids, scores, vector_ids): each file once, at its best vector, best first."""
        vector_ids = np.asarray(labels).astype(np.int64).ravel()
        file_ids = self._vector_files.files_of(vector_ids)
        # float rounding can push an exact match past 1
        scores = np.minimum(1.0, 1.0 - np.asarray(distances, np.float64).ravel())
        keep = file_ids >= 0
        if excluded:
            keep &= ~np.isin(file_ids, np.fromiter(excluded, np.int64, len(excluded)))
        vector_ids, file_ids, scores = vector_ids[keep], file_ids[keep], scores[keep]
        order = np.lexsort((vector_ids, -scores))          # best first, ties by vector id
        _, first = np.unique(file_ids[order], return_index=True)
        best = order[np.sort(first)]
        return file_ids[best], scores[best], vector_ids[best]

    # ----- persistence --------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the index atomically (temp file in the same folder, fsync, rename).

        Takes the shared lock while it reads the index (a compact index's exact rows are
        written under it): searches continue while saving, writers wait.
        """
        path = Path(path)
        damage = self.exact_rows_damage(wait=True)
        if damage is not None:      # never copy damaged rows into a file with a good checksum
            raise IndexFormatError(f"{damage}; rebuild the index from the catalog")
        folder = path.parent
        folder.mkdir(parents=True, exist_ok=True)
        out_tmp = _temp_path(folder, path.name, ".tmp")
        try:
            with open(out_tmp, "wb") as out:
                with self._lock.read():
                    # hnswlib ignores its write errors: its stream goes to memory where the
                    # system allows, so that a full disk fails on this file's own writes
                    with _graph_file(path) as (stream, stream_path):
                        self._hnsw.save_index(stream_path)
                        stream.seek(0)
                        try:
                            graph = StreamedGraph(stream, space=SPACE, ef=self._ef_search)
                        except GraphStateError as exc:
                            # only the temp-file fallback can be cut short, by a full disk
                            full = shutil.disk_usage(folder).free < (1 << 20)
                            raise OSError(errno.ENOSPC if full else errno.EIO,
                                          f"hnswlib wrote a graph this index cannot read: {exc}") from exc
                        header, header_at, crc = self._write_head(out, graph.region_bytes)
                        crc = graph.write(out.write, crc)
                    vids, crc = self._write_mapping(out, crc)
                    crc, exact_crc, sketch_crc = self._write_rows(out, vids, crc)
                # Same length as the placeholders: 8 hex digits.
                header["payload_crc32"] = f"{crc & 0xFFFFFFFF:08x}"
                if "exact_crc32" in header:
                    header["exact_crc32"] = f"{exact_crc & 0xFFFFFFFF:08x}"
                    header["sketch_crc32"] = f"{sketch_crc & 0xFFFFFFFF:08x}"
                out.seek(header_at)
                out.write(json.dumps(header).encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(out_tmp, path)
            _damage_marker(path).unlink(missing_ok=True)
            _fsync_folder(folder)
        finally:
            try:
                out_tmp.unlink()
            except FileNotFoundError:
                pass

    def _write_head(self, out, hnsw_bytes: int) -> tuple[dict, int, int]:
        """Header (with a placeholder checksum) and projection; returns the header, where
        it lies and the CRC-32 so far. Caller holds the read lock."""
        n, live = len(self._vector_files), self._vector_files.live_count
        projection = b"" if self.projection is None else self.projection.to_bytes()
        header = {
            "format_version": FORMAT_VERSION,
            "model_id": self.model_id,
            "dim": self.dim,
            "count": int(live),
            "generation": self.generation,
            "n_stored": int(n),
            "space": SPACE,
            "M": self.M,
            "ef_construction": self.ef_construction,
            "ef_search": self._ef_search,
            "mapping_bytes": 17 * int(n),
            "hnsw_bytes": int(hnsw_bytes),
            "graph_dim": self.graph_dim,
            "projection_bytes": len(projection),
            "exact_bytes": 0 if self._exact is None else ExactRows.byte_size(n, self.dim),
            "sketch_bytes": 0 if self._exact is None else RowSketch.byte_size(n, self.dim),
            "payload_crc32": "00000000",
        }
        if header["exact_bytes"]:
            header["exact_crc32"] = "00000000"      # the exact rows' own, checked after load
            header["sketch_crc32"] = "00000000"     # the sketch's own, likewise
        header_bytes = json.dumps(header).encode("utf-8")
        out.write(MAGIC + struct.pack("<I", len(header_bytes)))
        header_at = out.tell()
        out.write(header_bytes)
        out.write(projection)
        return header, header_at, zlib.crc32(projection)

    def _write_mapping(self, out, crc: int) -> tuple[np.ndarray, int]:
        """Vector ids, file ids and deleted flags; returns the vector ids in the file's
        order and the CRC-32 so far. Caller holds the read lock."""
        vids, fids, dead = self._vector_files.arrays()
        vids = vids.astype("<i8")
        for part in (vids.tobytes(), fids.astype("<i8").tobytes(), dead.astype(np.uint8).tobytes()):
            crc = zlib.crc32(part, crc)
            out.write(part)
        return vids, crc

    def _write_rows(self, out, vids: np.ndarray, crc: int) -> tuple[int, int, int]:
        """A compact index's exact rows and their sketch, in the order of ``vids``; returns
        the CRC-32 so far, the exact rows' own and the sketch's own. Caller holds the read
        lock."""
        n = len(vids)
        exact_crc = sketch_crc = 0
        if self._exact is not None:
            step = max(1, _COPY_CHUNK * 8 // (2 * self.dim))
            for at in range(0, n, step):
                rows = self._exact.rows(vids[at:at + step]).tobytes()
                crc = zlib.crc32(rows, crc)
                exact_crc = zlib.crc32(rows, exact_crc)
                out.write(rows)
            scales = np.empty(n, SCALE_DTYPE)
            for at in range(0, n, step):
                codes, scales[at:at + step] = self._exact.sketch(vids[at:at + step])
                raw = codes.tobytes()
                crc, sketch_crc = zlib.crc32(raw, crc), zlib.crc32(raw, sketch_crc)
                out.write(raw)
            raw = scales.tobytes()
            crc, sketch_crc = zlib.crc32(raw, crc), zlib.crc32(raw, sketch_crc)
            out.write(raw)
        return crc, exact_crc, sketch_crc

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        dim: int,
        model_id: str,
        generation: str | None = None,
        add_threads: int = 1,
    ) -> "VectorIndex":
        """Read an index written by :meth:`save` (any thread; the result is not shared yet).

        Raises IndexFormatError when the file is not an index, has another format version,
        model, dimension or (when given) generation, or is truncated or corrupt.
        FileNotFoundError passes through unchanged.
        """
        path = Path(path)
        with open(path, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            header = _read_header(src, path)
            if header["model_id"] != model_id:
                raise IndexFormatError(
                    f"{path}: built for model {header['model_id']!r}, current model is {model_id!r}"
                )
            if header["dim"] != dim:
                raise IndexFormatError(f"{path}: dimension {header['dim']}, expected {dim}")
            if generation is not None and header["generation"] != generation:
                raise IndexFormatError(
                    f"{path}: catalog generation {header['generation']!r}, expected {generation!r}"
                )
            if header["space"] != SPACE:
                raise IndexFormatError(f"{path}: space {header['space']!r}, expected {SPACE!r}")
            n, graph_dim = header["n_stored"], header["graph_dim"]
            if header["mapping_bytes"] != 17 * n:
                raise IndexFormatError(f"{path}: mapping size does not match {n} vectors")
            _check_compact_sizes(header, path)
            expected = (src.tell() + header["mapping_bytes"] + header["projection_bytes"]
                        + header["exact_bytes"] + header["sketch_bytes"] + header["hnsw_bytes"])
            if size != expected:
                kind = "truncated" if size < expected else "has trailing bytes"
                raise IndexFormatError(f"{path}: file {kind} ({size} bytes, expected {expected})")
            current = header["format_version"] >= 4
            identity = _identity(src)
            if current:
                _check_not_marked_damaged(identity, path)
                # projection, graph, mapping, rows: the graph's load and its brief second
                # copy come before anything else of size is held (the sketch last)
                raw_projection = src.read(header["projection_bytes"])
                crc = zlib.crc32(raw_projection)
                try:
                    graph, labels, crc = read_graph(
                        src.readinto, header["hnsw_bytes"], crc, space=SPACE, dim=graph_dim,
                        M=header["M"], ef_construction=header["ef_construction"], count=n)
                except GraphStateError as exc:
                    raise IndexFormatError(f"{path}: {exc}") from exc
                mapping = src.read(header["mapping_bytes"])
                crc = zlib.crc32(mapping, crc)
            else:
                mapping = src.read(header["mapping_bytes"])
                raw_projection = src.read(header["projection_bytes"])
                crc = zlib.crc32(raw_projection, zlib.crc32(mapping))
            vids = np.frombuffer(mapping, dtype="<i8", count=n, offset=0)
            fids = np.frombuffer(mapping, dtype="<i8", count=n, offset=8 * n)
            deleted = np.frombuffer(mapping, dtype=np.uint8, count=n, offset=16 * n)
            projection = None
            if graph_dim != dim:
                if n > 1 and not bool(np.all(vids[1:] > vids[:-1])):
                    raise IndexFormatError(f"{path}: exact rows' vector ids not ascending")
                try:
                    projection = Projection.from_bytes(raw_projection, graph_dim, dim)
                except ValueError as exc:
                    raise IndexFormatError(f"{path}: bad projection: {exc}") from exc
            index = cls.__new__(cls)
            index._setup(dim, model_id, header["ef_search"], header["M"],
                         header["ef_construction"], add_threads, projection)
            index.saved_format = header["format_version"]
            index.needs_resave = (header["format_version"] < FORMAT_VERSION
                                  or bool(header["sketch_bytes"]) and "sketch_crc32" not in header)
            exact_at = src.tell()
            # the exact rows' own CRC stands in for them now (and the sketch's for the
            # sketch); they are read and checked on threads of their own once the index is
            # in use (app.region_check): the sketch at once, the rows a little later
            exact_crc = (int(header["exact_crc32"], 16) if current and header["sketch_bytes"]
                         and "exact_crc32" in header else None)
            sketch_crc = (int(header["sketch_crc32"], 16) if exact_crc is not None
                          and "sketch_crc32" in header else None)
            sketch, crc = _read_rows_region(src, crc, header, n, dim, exact_crc, sketch_crc)
            if current:
                _check_crc(crc, header, path)
                index._hnsw = graph
                if exact_crc is not None and header["exact_bytes"]:
                    rows = FileRows(src, exact_at, n, dim)
                    index._rows_check = RegionCheck(
                        rows.read_bytes_into, header["exact_bytes"], exact_crc,
                        what=f"{path}: the exact rows", delay_s=ROWS_CHECK_DELAY_S,
                        on_damage=lambda message: _mark_damaged(path, identity, message))
            else:
                labels = None
                with _graph_file(path) as (out, graph_path):
                    crc = _copy_graph(src, out, crc, header["hnsw_bytes"])
                    out.flush()
                    _check_crc(crc, header, path)
                    try:
                        index._hnsw.load_index(graph_path, max_elements=0)
                    except (RuntimeError, ValueError, MemoryError) as exc:
                        raise IndexFormatError(f"{path}: hnswlib cannot read the graph: {exc}") from exc
            if projection is not None:
                index._exact = ExactRows.on_file(src, exact_at, vids.copy(), dim, sketch)
                if sketch_crc is not None:
                    index._sketch_load = _load_sketch_later(
                        index._exact, rows, header["exact_bytes"], n, dim, sketch_crc,
                        what=f"{path}: the rows' sketch",
                        on_damage=lambda message: _mark_damaged(path, identity, message))
        index._hnsw.set_ef(index._ef_search)
        index.generation = header["generation"]
        if index._hnsw.element_count != n or index._hnsw.dim != graph_dim:
            raise IndexFormatError(f"{path}: graph holds {index._hnsw.element_count} vectors, header says {n}")
        order = np.argsort(vids, kind="stable")     # format 1 files need not be sorted
        vids, fids, dead = vids[order], fids[order], deleted[order].astype(bool)
        if labels is None:       # hnswlib's own file: ask the graph (a list of every label)
            labels = np.asarray(index._hnsw.get_ids_list(), dtype=np.int64)
        if not np.array_equal(np.sort(labels.astype(np.int64)), vids):
            raise IndexFormatError(f"{path}: graph labels do not match the vector-to-file mapping")
        # a compact index's exact rows have these ids' positions already: one table, not two
        shared = None if index._exact is None else index._exact.base_positions
        try:
            index._vector_files = VectorFiles(vids, fids, vids[dead].tolist(), positions=shared)
        except ValueError as exc:
            raise IndexFormatError(f"{path}: bad vector-to-file mapping: {exc}") from exc
        return index


_helper_lock = threading.Lock()
_helper: ThreadPoolExecutor | None = None


def _search_helper() -> ThreadPoolExecutor:
    """The process's one helper thread for the second half of a split search (made on
    first use). Any thread."""
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-search")
        return _helper


def _load_sketch_later(exact: ExactRows, rows: FileRows, exact_bytes: int, n: int, dim: int,
                       expected: int, *, what: str,
                       on_damage: Callable[[str], None]) -> RegionCheck:
    """Read and check the sketch stored after the exact rows on a thread of its own, then
    hand it to ``exact``; until then searches score candidates by their exact rows (a
    million vectors: the load is about half a second shorter). Load's thread."""
    codes = np.empty((n, dim), CODE_DTYPE)
    scales = np.empty(n, SCALE_DTYPE)
    region = np.empty(codes.nbytes + scales.nbytes, np.uint8)
    codes, scales = (region[:codes.nbytes].view(CODE_DTYPE).reshape(n, dim),
                     region[codes.nbytes:].view(SCALE_DTYPE))
    return RegionCheck(lambda view, at: rows.read_bytes_into(view, exact_bytes + at),
                       len(region), expected, what=what, on_damage=on_damage,
                       into=memoryview(region), on_intact=lambda: exact.attach_sketch(
                           RowSketch(codes, scales)))


def _read_rows_region(src, crc: int, header: dict, n: int, dim: int,
                      exact_crc: int | None = None,
                      sketch_crc: int | None = None) -> tuple[RowSketch | None, int]:
    """Check a compact index's exact rows (left on disk) and read or make their sketch;
    returns the sketch (None for a full-width index, and when it is left for later) and the
    running CRC-32. With the rows' own ``exact_crc`` they are skipped here: that CRC stands
    in for them; likewise ``sketch_crc`` for the sketch, which is then left unread."""
    if header["sketch_bytes"]:
        if exact_crc is None:
            crc = _crc_of_region(src, crc, header["exact_bytes"])
        else:
            src.seek(header["exact_bytes"], os.SEEK_CUR)
            crc = crc32_combine(crc, exact_crc, header["exact_bytes"])
        if sketch_crc is not None:      # read on a thread of its own (``load``)
            src.seek(header["sketch_bytes"], os.SEEK_CUR)
            return None, crc32_combine(crc, sketch_crc, header["sketch_bytes"])
        codes, scales, crc = _read_sketch(src, crc, n, dim)
        return RowSketch(codes, scales), crc
    if header["exact_bytes"]:      # format 2: sketch the rows while checking them
        return _sketch_of_region(src, crc, n, dim)
    return None, crc


def _identity(src) -> str:
    """The open index file as one line: device, inode, size and time of change."""
    info = os.fstat(src.fileno())
    return f"{info.st_dev} {info.st_ino} {info.st_size} {info.st_mtime_ns}"


def _damage_marker(path: Path) -> Path:
    return path.with_name(path.name + ".damaged")


def _mark_damaged(path: Path, identity: str, message: str) -> None:
    """The check after load found the exact rows damaged: note it beside the file, so that
    the next load of this same file rebuilds the index at once (a save replaces the file
    and removes the note). Best effort: a read-only folder keeps no note. Check thread."""
    marker = _damage_marker(path)
    try:
        temp = _temp_path(path.parent, marker.name, ".tmp")
        temp.write_text(f"{identity}\n{message}\n", encoding="utf-8")
        os.replace(temp, marker)
    except OSError as exc:
        log.warning("could not note the damaged index beside it: %s", exc)


def _check_not_marked_damaged(identity: str, path: Path) -> None:
    """IndexFormatError when an earlier load's check found this very file (``identity``,
    ``_identity``) damaged."""
    try:
        marked, _, message = _damage_marker(path).read_text(encoding="utf-8").partition("\n")
    except (OSError, UnicodeDecodeError):
        return
    if marked == identity:
        raise IndexFormatError(message.strip() or f"{path}: found damaged by an earlier check")


def _check_crc(crc: int, header: dict, path: Path) -> None:
    if f"{crc & 0xFFFFFFFF:08x}" != header["payload_crc32"]:
        raise IndexFormatError(f"{path}: checksum mismatch, the file is corrupt")


def _read_header(src, path: Path) -> dict:
    magic = src.read(len(MAGIC))
    if magic != MAGIC:
        raise IndexFormatError(f"{path}: not a Sample Scout vector index (bad magic bytes)")
    raw_len = src.read(4)
    if len(raw_len) != 4:
        raise IndexFormatError(f"{path}: truncated header")
    (header_len,) = struct.unpack("<I", raw_len)
    if header_len > _MAX_HEADER_BYTES:
        raise IndexFormatError(f"{path}: header length {header_len} is implausible, file corrupt")
    raw = src.read(header_len)
    if len(raw) != header_len:
        raise IndexFormatError(f"{path}: truncated header")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFormatError(f"{path}: header is not valid JSON, file corrupt") from exc
    if not isinstance(header, dict):
        raise IndexFormatError(f"{path}: header is not a JSON object")
    version = header.get("format_version")
    if version not in READABLE_VERSIONS:
        raise IndexFormatError(f"{path}: format version {version!r}, expected {FORMAT_VERSION}")
    if version == 1:   # always full width, nothing between the mapping and the graph
        header.update(graph_dim=header.get("dim"), projection_bytes=0, exact_bytes=0)
    if version in (1, 2):
        header.update(sketch_bytes=0)
    types = {
        "format_version": int, "model_id": str, "dim": int, "count": int, "generation": str,
        "n_stored": int, "space": str, "M": int, "ef_construction": int, "ef_search": int,
        "mapping_bytes": int, "hnsw_bytes": int, "payload_crc32": str,
        "graph_dim": int, "projection_bytes": int, "exact_bytes": int, "sketch_bytes": int,
    }
    for key, kind in types.items():
        if not isinstance(header.get(key), kind):
            raise IndexFormatError(f"{path}: header field {key!r} missing or of the wrong type")
    for key in ("n_stored", "mapping_bytes", "hnsw_bytes", "M", "ef_construction", "ef_search",
                "graph_dim", "projection_bytes", "exact_bytes", "sketch_bytes"):
        if header[key] < 0 or (key in ("M", "ef_construction", "ef_search", "graph_dim")
                               and header[key] < 1):
            raise IndexFormatError(f"{path}: header field {key!r} out of range")
    for field in ("exact_crc32", "sketch_crc32"):   # format 4 files written since they were added
        value = header.get(field)
        if value is not None and not (isinstance(value, str) and len(value) == 8
                                      and all(c in "0123456789abcdef" for c in value)):
            raise IndexFormatError(f"{path}: header field {field!r} is not a CRC-32")
    return header


def _check_compact_sizes(header: dict, path: Path) -> None:
    """A full-width index has no projection and no exact rows; a compact one has both, of
    the sizes its dimensions and vector count give."""
    n, dim, graph_dim = header["n_stored"], header["dim"], header["graph_dim"]
    if graph_dim == dim:
        wanted = (0, 0, 0)
    elif graph_dim < dim:
        sketch = RowSketch.byte_size(n, dim) if header["format_version"] >= 3 else 0
        wanted = (Projection.byte_size(graph_dim, dim), ExactRows.byte_size(n, dim), sketch)
    else:
        raise IndexFormatError(f"{path}: graph dimension {graph_dim} exceeds {dim}")
    if (header["projection_bytes"], header["exact_bytes"], header["sketch_bytes"]) != wanted:
        raise IndexFormatError(f"{path}: projection or exact rows do not match {n} vectors "
                               f"of {dim} dimensions in a {graph_dim}-dimension graph")


def _crc_of_region(src, crc: int, count: int) -> int:
    """The running CRC-32 over the next ``count`` bytes of ``src``, read into one reused
    buffer (no mapping, so the checked pages never count as this process's memory)."""
    buffer = memoryview(bytearray(min(count, READ_CHUNK_BYTES)))
    left = count
    while left:
        step = min(left, len(buffer))
        crc = _read_exactly(src, buffer[:step], crc)
        left -= step
    return crc


def _read_exactly(src, view: memoryview, crc: int) -> int:
    """Fill ``view`` (bytes) from ``src`` and return the running CRC-32 over it."""
    try:
        return read_checked(src.readinto, view, crc)
    except EOFError as exc:
        raise IndexFormatError("index file truncated while checking it") from exc


def _read_sketch(src, crc: int, n: int, dim: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The sketch's codes and scales read straight into their arrays, and the running
    CRC-32 over them."""
    codes = np.empty((n, dim), CODE_DTYPE)
    scales = np.empty(n, SCALE_DTYPE)
    for array in (codes, scales):
        crc = _read_exactly(src, memoryview(array.reshape(-1)).cast("B"), crc)
    return codes, scales, crc


def _sketch_of_region(src, crc: int, n: int, dim: int) -> tuple[RowSketch, int]:
    """The sketch of the next ``n`` float16 rows of ``src`` (a format 2 file) and the running
    CRC-32 over their bytes."""
    codes = np.empty((n, dim), CODE_DTYPE)
    scales = np.empty(n, SCALE_DTYPE)
    step = max(1, 8 * _COPY_CHUNK // (2 * dim))
    rows = np.empty((step, dim), "<f2")
    view = memoryview(rows.reshape(-1)).cast("B")
    for at in range(0, n, step):
        count = min(step, n - at)
        crc = _read_exactly(src, view[:count * dim * 2], crc)
        codes[at:at + count], scales[at:at + count] = RowSketch.quantise(rows[:count])
    return RowSketch(codes, scales), crc


def _copy_payload(src, out, crc: int) -> int:
    """Copy src to out in chunks and return the running CRC-32 over the copied bytes."""
    while True:
        chunk = src.read(_COPY_CHUNK)
        if not chunk:
            return crc
        crc = zlib.crc32(chunk, crc)
        out.write(chunk)


def _copy_graph(src, out, crc: int, count: int) -> int:
    """Copy the next ``count`` bytes of ``src`` to ``out`` (both at their positions) and
    return the running CRC-32 over them. The kernel copies them (``os.sendfile``) and the
    CRC reads them through one reused buffer: a gigabyte-sized graph is neither written
    through Python buffers nor mapped into this process. Plain chunked copying where that
    fails."""
    start, crc_before = src.tell(), crc
    if count and hasattr(os, "sendfile"):
        try:
            crc = _crc_of_region(src, crc, count)
            out.flush()
            done = 0
            while done < count:
                sent = os.sendfile(out.fileno(), src.fileno(), start + done, count - done)
                if sent <= 0:
                    break
                done += sent
            if done == count:
                src.seek(start + count)
                return crc
            out.seek(0)
            out.truncate()
        except (OSError, ValueError):
            out.seek(0)
            out.truncate()
        src.seek(start)
    return _copy_payload(src, out, crc_before)


@contextmanager
def _graph_file(path: Path) -> Iterator[tuple[object, str]]:
    """A scratch file for hnswlib's graph stream, which it only reads from and writes to a
    path: an in-memory file where the system has them (Linux), so that loading needs no
    disk space (a search works on a full disk), else a temp file beside the index."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        try:
            fd = os.memfd_create("samplescout-index", os.MFD_CLOEXEC)
        except OSError:
            fd = -1
        if fd >= 0:
            with open(fd, "w+b") as out:
                yield out, f"/proc/self/fd/{fd}"
            return
    tmp = _temp_path(path.parent, path.name, ".load.tmp")
    try:
        with open(tmp, "wb") as out:
            yield out, str(tmp)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


def _temp_path(folder: Path, name: str, suffix: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
    os.close(fd)
    return Path(tmp)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename durable on POSIX; directories cannot be opened this way on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
