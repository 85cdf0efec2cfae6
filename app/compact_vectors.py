"""The compact form of a large vector index: a projection to a few dimensions for the graph,
and the full vectors as float16 rows for re-scoring the graph's candidates.

``Projection`` is an uncentred PCA: the top ``GRAPH_DIM`` eigenvectors of the second-moment
matrix of unit catalog vectors. Cosine similarity of unit vectors is a dot product, so the
directions that keep most of the vectors' energy keep most of their dot products; the graph
only has to put the right files among its candidates, the exact rows rank them.

``ExactRows`` holds one unit float16 row per vector id: a sorted base (after a load, rows of
the index file read on demand by ``FileRows``, so a million rows cost no RAM) and an in-RAM
array that grows with the vectors added since. A base read from a file comes with its
``RowSketch``: an int8 copy in RAM (a quarter of the float16 rows' size) that ranks a search's
candidates without reading them, so only the few that lead are read from the file. No class
here locks: ``app.index.VectorIndex`` calls them under its own read/write lock.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from app.vector_files import IdPositions

GRAPH_DIM = 64
FIT_ROWS = 50_000
ROW_DTYPE = np.dtype("<f2")
CODE_DTYPE = np.dtype("i1")
SCALE_DTYPE = np.dtype("<f4")
_SKETCH_CHUNK = 65_536       # rows quantised at once (bounds the float32 scratch to 64 MB)
_MATRIX_DTYPE = np.dtype("<f4")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as float32 (the caller has rejected all-zero rows)."""
    rows = np.asarray(vectors, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class Projection:
    """A linear map from ``dim`` to ``graph_dim`` dimensions followed by L2 normalisation.
    Immutable once made; any thread."""

    def __init__(self, matrix: np.ndarray) -> None:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[0] >= matrix.shape[1]:
            raise ValueError(f"a projection matrix is (graph_dim, dim) with graph_dim < dim, "
                             f"got {matrix.shape}")
        if not np.isfinite(matrix).all():
            raise ValueError("projection matrix contains NaN or infinity")
        self.matrix = matrix
        self.graph_dim, self.dim = matrix.shape

    @classmethod
    def fit(cls, vectors: np.ndarray, graph_dim: int = GRAPH_DIM, *, max_rows: int = FIT_ROWS,
            seed: int = 0) -> "Projection":
        """Uncentred PCA of (up to ``max_rows`` randomly chosen) rows of ``vectors``."""
        rows = np.asarray(vectors)
        if rows.ndim != 2 or len(rows) == 0:
            raise ValueError("fitting a projection needs a non-empty (n, dim) array")
        if len(rows) > max_rows:
            chosen = np.random.default_rng(seed).choice(len(rows), size=max_rows, replace=False)
            rows = rows[np.sort(chosen)]
        rows = unit_rows(rows).astype(np.float64)
        moments = rows.T @ rows / len(rows)
        _, eigenvectors = np.linalg.eigh(moments)            # ascending eigenvalues
        return cls(eigenvectors[:, ::-1][:, :graph_dim].T)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) -> (n, graph_dim) unit float32 rows. A vector with no energy in the kept
        directions (never seen in practice) maps to the first direction, not to zeros."""
        projected = np.asarray(vectors, dtype=np.float32) @ self.matrix.T
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        empty = norms[:, 0] < 1e-12
        if empty.any():
            projected[empty] = 0.0
            projected[empty, 0] = 1.0
            norms[empty] = 1.0
        return projected / norms

    def to_bytes(self) -> bytes:
        return self.matrix.astype(_MATRIX_DTYPE).tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes, graph_dim: int, dim: int) -> "Projection":
        if len(raw) != graph_dim * dim * _MATRIX_DTYPE.itemsize:
            raise ValueError(f"{len(raw)} bytes do not hold a {graph_dim}x{dim} projection")
        return cls(np.frombuffer(raw, dtype=_MATRIX_DTYPE).reshape(graph_dim, dim))

    @staticmethod
    def byte_size(graph_dim: int, dim: int) -> int:
        return graph_dim * dim * _MATRIX_DTYPE.itemsize


class FileRows:
    """``count`` float16 rows of ``dim`` values stored at ``offset`` of an open file, read with
    ``pread`` when asked for. Not a memory map: the kernel maps the page cache in large folios,
    so at a million vectors a few hundred searches made a map of the rows count 780 MB of the
    process's resident memory (bench/million.py); reading only the rows a search needs costs
    about 2 us a row. Keeps its own descriptor, so a replaced index file stays readable. Any
    thread (pread has no shared file position; where the system has no pread, reads take
    turns)."""

    def __init__(self, file, offset: int, count: int, dim: int) -> None:
        self._file = open(os.dup(file.fileno()), "rb", buffering=0)
        self._seek_lock = threading.Lock()
        if hasattr(os, "preadv"):          # Linux, the BSDs: straight into the rows
            self._read_into = self._preadv
        elif hasattr(os, "pread"):         # macOS
            self._read_into = self._pread
        else:                              # Windows: one shared file position
            self._read_into = self._seek_and_read
        self._offset, self._count, self.dim = int(offset), int(count), int(dim)
        self._row_bytes = self.dim * ROW_DTYPE.itemsize

    def __len__(self) -> int:
        return self._count

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The rows at ``positions`` (each in range), in that order; a run of consecutive
        positions is one read."""
        at = np.asarray(positions, dtype=np.int64).ravel()
        out = np.empty((len(at), self.dim), ROW_DTYPE)
        if len(at) == 0:
            return out
        view = memoryview(out).cast("B")
        breaks = np.flatnonzero(np.diff(at) != 1) + 1
        starts = np.concatenate(([0], breaks)).tolist()
        stops = np.concatenate((breaks, [len(at)])).tolist()
        first = at[starts].tolist()
        size, read_into = self._row_bytes, self._read_into
        for start, stop, position in zip(starts, stops, first):
            want = (stop - start) * size
            got = read_into(view[start * size:stop * size], self._offset + position * size)
            if got != want:
                raise OSError(f"index file ended inside its exact rows ({got} of {want} bytes "
                              f"at row {position})")
        return out

    def read_bytes_into(self, buffer: memoryview, at: int) -> int:
        """The rows' bytes from byte ``at`` of their region on (and past them, what the file
        holds next) into ``buffer``; the bytes read (fewer at the file's end). For reading
        and checking whole regions (``app.region_check``)."""
        return self._read_into(buffer, self._offset + int(at))

    def _preadv(self, buffer: memoryview, offset: int) -> int:
        return os.preadv(self._file.fileno(), [buffer], offset)

    def _pread(self, buffer: memoryview, offset: int) -> int:
        data = os.pread(self._file.fileno(), len(buffer), offset)
        buffer[:len(data)] = data
        return len(data)

    def _seek_and_read(self, buffer: memoryview, offset: int) -> int:
        with self._seek_lock:
            self._file.seek(offset)
            return self._file.readinto(buffer) or 0


class RowSketch:
    """Rows of unit vectors as int8 codes with one float32 scale a row (code * scale is the
    row), held in RAM. The dot product of a unit query with a sketched row is within a few
    thousandths of the float16 row's (mean 3e-4 for the shipped encoder's vectors): close
    enough to choose which candidates lead, not to report their scores. Immutable once
    made; any thread."""

    def __init__(self, codes: np.ndarray, scales: np.ndarray) -> None:
        if codes.ndim != 2 or codes.dtype != CODE_DTYPE or scales.shape != (len(codes),):
            raise ValueError("a sketch is int8 codes (n, dim) and n scales")
        self.codes, self.scales = codes, scales.astype(np.float32, copy=False)
        self.dim = codes.shape[1]

    @staticmethod
    def byte_size(count: int, dim: int) -> int:
        return count * (dim * CODE_DTYPE.itemsize + SCALE_DTYPE.itemsize)

    @staticmethod
    def quantise(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(codes, scales) of rows (float16 or float32): each row's largest magnitude maps to
        127. Quantised ``_SKETCH_CHUNK`` rows at a time."""
        rows = np.asarray(rows)
        codes = np.empty(rows.shape, CODE_DTYPE)
        scales = np.empty(len(rows), np.float32)
        for at in range(0, len(rows), _SKETCH_CHUNK):
            chunk = rows[at:at + _SKETCH_CHUNK].astype(np.float32)
            top = np.abs(chunk).max(axis=1)
            top[top == 0.0] = 1.0
            chunk *= (127.0 / top)[:, None]
            np.rint(chunk, out=chunk)
            codes[at:at + len(chunk)] = chunk
            scales[at:at + len(chunk)] = top / 127.0
        return codes, scales

    def scores(self, positions: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Best dot product over the query rows ``q`` (m, dim) of the rows at ``positions``."""
        codes = self.codes[positions].astype(np.float32)
        return (codes @ q.T).max(axis=1) * self.scales[positions]


class ExactRows:
    """Unit float16 rows by vector id: a sorted base plus rows added later (which win)."""

    def __init__(self, dim: int, base_ids: np.ndarray | IdPositions | None = None,
                 base_rows: np.ndarray | FileRows | None = None,
                 base_sketch: RowSketch | None = None) -> None:
        self.dim = int(dim)
        if not isinstance(base_ids, IdPositions):
            base_ids = IdPositions(np.empty(0, np.int64) if base_ids is None else base_ids)
        self.base_positions = base_ids
        self._base_rows = np.empty((0, self.dim), ROW_DTYPE) if base_rows is None else base_rows
        if len(base_ids.ids) != len(self._base_rows):
            raise ValueError("base ids and base rows differ in length")
        if base_sketch is not None and len(base_sketch.codes) != len(base_ids.ids):
            raise ValueError("the base sketch and the base rows differ in length")
        self._base_sketch = base_sketch
        self._added_at: dict[int, int] = {}
        self._added = np.empty((0, self.dim), ROW_DTYPE)

    @classmethod
    def on_file(cls, file, offset: int, ids: np.ndarray | IdPositions, dim: int,
                sketch: RowSketch | None = None) -> "ExactRows":
        """The base rows of ``ids`` (ascending), stored at ``offset`` of an open file and read
        from it when a search asks for them (``FileRows``); ``sketch``, their int8 copy,
        ranks candidates without reading them."""
        if not isinstance(ids, IdPositions):
            ids = IdPositions(np.asarray(ids, dtype=np.int64))
        return cls(dim, ids, FileRows(file, offset, len(ids.ids), dim), sketch)

    def attach_sketch(self, sketch: RowSketch) -> None:
        """Give the base rows their sketch once it is read (``app.index``: after the load);
        searches use it from their next call. Any thread: the one change this class makes
        without its owner's lock, a single reference set once."""
        if len(sketch.codes) != len(self.base_positions.ids) or sketch.dim != self.dim:
            raise ValueError("the sketch does not fit the base rows")
        self._base_sketch = sketch

    @property
    def sketched(self) -> bool:
        """Whether ``scores`` answers the base rows from their sketch (not exactly)."""
        return self._base_sketch is not None

    @staticmethod
    def byte_size(count: int, dim: int) -> int:
        return count * dim * ROW_DTYPE.itemsize

    def put(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store (or replace) the rows of ``ids``; vectors need not be unit length."""
        rows = unit_rows(vectors).astype(ROW_DTYPE)
        used = len(self._added_at)
        fresh = [i for i in dict.fromkeys(ids.tolist()) if i not in self._added_at]
        need = used + len(fresh)
        if need > len(self._added):
            grown = np.empty((max(need, 2 * len(self._added), 1024), self.dim), ROW_DTYPE)
            grown[:used] = self._added[:used]
            self._added = grown
        for slot, vector_id in enumerate(fresh, start=used):
            self._added_at[vector_id] = slot
        slots = np.fromiter((self._added_at[i] for i in ids.tolist()), np.int64, count=len(ids))
        self._added[slots] = rows

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The float16 rows of ``ids`` (each must be stored), in that order."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((len(ids), self.dim), ROW_DTYPE)
        added, slots, in_base, at = self._locate(ids)
        out[added] = self._added[slots[added]]
        if len(at):
            base = self._base_rows
            out[in_base] = base[at] if isinstance(base, np.ndarray) else base.take(at)
        return out

    def scores(self, ids: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Best dot product of each row of ``ids`` with the unit query rows ``q`` (m, dim):
        from the sketch for base rows when there is one (``sketched``), else exact."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._base_sketch is None:
            return (self.rows(ids).astype(np.float32) @ q.T).max(axis=1)
        out = np.empty(len(ids), np.float32)
        added, slots, in_base, at = self._locate(ids)
        if added.any():
            out[added] = (self._added[slots[added]].astype(np.float32) @ q.T).max(axis=1)
        if len(at):
            out[in_base] = self._base_sketch.scores(at, q)
        return out

    def block_scores(self, ids: np.ndarray, q: np.ndarray) -> np.ndarray:
        """(b, n) dot products of the rows of ``ids`` (b, n) each with its own unit query
        block ``q[b]``, as ``scores`` computes them: from the sketch in one gather and one
        batched product when every id is a base row (the usual case), else block by block."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._base_sketch is not None and not self._added_at:
            _, _, _, at = self._locate(ids.ravel())
            codes = self._base_sketch.codes[at].reshape(*ids.shape, self.dim).astype(np.float32)
            dots = np.matmul(codes, q[:, :, None])[:, :, 0]
            return dots * self._base_sketch.scales[at].reshape(ids.shape)
        return np.stack([self.scores(ids[b], q[b:b + 1]) for b in range(len(ids))])

    def sketch(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(codes, scales) of the rows of ``ids``: the base sketch's where it has them,
        quantised from the rows otherwise (the same codes either way)."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._base_sketch is None:
            return RowSketch.quantise(self.rows(ids))
        codes = np.empty((len(ids), self.dim), CODE_DTYPE)
        scales = np.empty(len(ids), np.float32)
        added, slots, in_base, at = self._locate(ids)
        if added.any():
            codes[added], scales[added] = RowSketch.quantise(self._added[slots[added]])
        if len(at):
            codes[in_base] = self._base_sketch.codes[at]
            scales[in_base] = self._base_sketch.scales[at]
        return codes, scales

    def _locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(added mask, added slots, base mask, base positions) of ``ids``; KeyError when one
        is stored nowhere."""
        if self._added_at:
            slots = np.fromiter((self._added_at.get(i, -1) for i in ids.tolist()), np.int64,
                                count=len(ids))
        else:
            slots = np.full(len(ids), -1, np.int64)
        added = slots >= 0
        in_base = ~added
        wanted = ids[in_base]
        if len(wanted) == 0:
            return added, slots, in_base, np.empty(0, np.int64)
        at = self.base_positions.of(wanted)
        if bool((at < 0).any()):
            raise KeyError("a vector id has no exact row")
        return added, slots, in_base, at

    def __len__(self) -> int:
        added_only = len(self._added_at)
        base_ids = self.base_positions.ids
        if added_only and len(base_ids):
            added_ids = np.fromiter(self._added_at, np.int64, count=added_only)
            added_only -= int(np.isin(added_ids, base_ids, assume_unique=True).sum())
        return len(base_ids) + added_only
