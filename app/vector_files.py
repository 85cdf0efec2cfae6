"""Which file each vector of the index belongs to, held as sorted arrays.

A loaded index of a million vectors keeps its vector -> file mapping as a base of sorted int64
arrays (32 bytes a vector with the by-file order) instead of Python dicts and sets (about 200
bytes a vector): ``bench/million.py`` saw 180 MB of dict for 1.5 million vectors, and another
300 MB of per-file sets on the first insert. Vectors added or moved to another file later go
to a small overlay, folded into the base once it grows. Deleted vectors stay mapped (hnswlib
keeps their nodes) and are listed in a set.

Not thread-safe: ``app.index.VectorIndex`` calls it under its own read/write lock.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# The overlay is folded into the base arrays when it holds more than this share of the base
# (and at least FOLD_MIN entries): a scan adding files one batch at a time pays an
# occasional sort instead of a dict that grows with the library.
FOLD_SHARE = 0.125
FOLD_MIN = 4096

# Ids are found by a table of positions indexed by vector id when they are dense enough (the
# largest id at most this many times their count, as a catalog's row ids are): one memory
# access per id where a binary search over a million ids takes twenty, each a likely cache
# miss.
DENSE_ID_SPREAD = 4

# A summary of a set of vector ids, (count, sum, sum of squares modulo a prime), that a catalog
# computes in SQL over a covering index and an index from its arrays: a million ids in 0.2 s
# where reading them out of SQLite took 0.8-1.2 s. Ids are never reused and each new one is
# larger than every older one, so two sets of one count that differ have different sums
# unless ids were also lost in between; then the squares have to balance as well (two ids
# swapped for two others cannot balance both).
ID_MODULUS = 2147483647
ID_SUMMARY_SQL = (f"count(*), coalesce(sum(id), 0), "
                  f"coalesce(sum((id % {ID_MODULUS}) * (id % {ID_MODULUS}) % {ID_MODULUS}), 0)")


class IdPositions:
    """Where each of a fixed array of ascending, unique vector ids sits in it: through a
    table indexed by id when the ids are dense enough (DENSE_ID_SPREAD), else by binary
    search. Immutable; any thread."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self._table = None
        if 0 < len(ids) < 2**31 and int(ids[-1]) < DENSE_ID_SPREAD * len(ids) + 65_536:
            self._table = np.full(int(ids[-1]) + 1, -1, np.int32)
            self._table[ids] = np.arange(len(ids), dtype=np.int32)

    @property
    def tabled(self) -> bool:
        return self._table is not None

    def of(self, wanted: np.ndarray) -> np.ndarray:
        """Positions (int64) of the 1-D int64 ids ``wanted``, -1 for ids not held."""
        at = np.full(len(wanted), -1, np.int64)
        if self._table is not None:
            inside = (wanted >= 0) & (wanted < len(self._table))
            at[inside] = self._table[wanted[inside]]
        elif len(self.ids):
            guess = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
            found = self.ids[guess] == wanted
            at[found] = guess[found]
        return at


def id_summary(vector_ids: np.ndarray) -> tuple[int, int, int]:
    """(count, sum, sum of squares modulo ID_MODULUS) of vector ids, as ID_SUMMARY_SQL."""
    ids = np.asarray(vector_ids, dtype=np.int64)
    reduced = ids % ID_MODULUS
    return len(ids), int(ids.sum()), int((reduced * reduced % ID_MODULUS).sum())


class VectorFiles:
    """vector_id -> file_id for every stored vector, live or deleted."""

    def __init__(self, vector_ids: np.ndarray | None = None, file_ids: np.ndarray | None = None,
                 deleted: Iterable[int] = (), positions: IdPositions | None = None) -> None:
        """``vector_ids`` ascending and unique, ``file_ids`` aligned with them; ``positions``,
        when another holder of these same ids has them already."""
        ids = np.empty(0, np.int64) if vector_ids is None else np.asarray(vector_ids, np.int64)
        files = np.empty(0, np.int64) if file_ids is None else np.asarray(file_ids, np.int64)
        if ids.shape != files.shape or ids.ndim != 1:
            raise ValueError("vector ids and file ids must be 1-D arrays of one length")
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise ValueError("vector ids must be ascending and unique")
        if positions is not None and not np.array_equal(positions.ids, ids):
            raise ValueError("the positions given are of other vector ids")
        self._set_base(ids, files, positions)
        self._overlay: dict[int, int] = {}          # vector_id -> file_id, wins over the base
        self._overlay_of: dict[int, set[int]] = {}  # file_id -> its vector ids in the overlay
        self._new = 0                               # overlay ids that the base lacks
        self._deleted: set[int] = {int(v) for v in deleted}

    def _set_base(self, ids: np.ndarray, files: np.ndarray,
                  positions: IdPositions | None = None) -> None:
        self._ids, self._files = ids, files
        self._positions = IdPositions(ids) if positions is None else positions
        self._by_file = np.argsort(files, kind="stable")
        self._file_keys = files[self._by_file]

    # -- size ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Stored vectors, deleted ones included."""
        return len(self._ids) + self._new

    @property
    def deleted_count(self) -> int:
        return len(self._deleted)

    @property
    def live_count(self) -> int:
        return len(self) - len(self._deleted)

    # -- lookups ------------------------------------------------------------------------------

    def file_of(self, vector_id: int) -> int | None:
        """The file of a stored vector (deleted or not), None when it was never stored."""
        file_id = int(self.files_of(np.array([int(vector_id)]))[0])
        return None if file_id < 0 else file_id

    def __contains__(self, vector_id: int) -> bool:
        return self.file_of(vector_id) is not None

    def files_of(self, vector_ids: np.ndarray) -> np.ndarray:
        """File ids of stored vector ids (any shape, flattened), -1 for ids never stored."""
        ids = np.asarray(vector_ids).astype(np.int64).ravel()
        out = np.full(len(ids), -1, np.int64)
        at = self._positions.of(ids)
        found = at >= 0
        out[found] = self._files[at[found]]
        if self._overlay:
            get = self._overlay.get
            for i, vector_id in enumerate(ids.tolist()):
                file_id = get(vector_id)
                if file_id is not None:
                    out[i] = file_id
        return out

    def live_of_file(self, file_id: int) -> set[int]:
        """The live vector ids of one file."""
        file_id = int(file_id)
        lo, hi = np.searchsorted(self._file_keys, [file_id, file_id + 1])
        base = self._ids[self._by_file[lo:hi]].tolist()
        out = {v for v in base if v not in self._overlay}
        out.update(self._overlay_of.get(file_id, ()))
        return out - self._deleted if self._deleted else out

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vector_ids ascending, file_ids, deleted flags as bool) of every stored vector."""
        ids, files = self._merged()
        if self._deleted:
            dead = np.isin(ids, np.fromiter(self._deleted, np.int64, len(self._deleted)))
        else:
            dead = np.zeros(len(ids), bool)
        return ids, files, dead

    def live_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(vector_ids ascending, file_ids) of every live vector."""
        ids, files, dead = self.arrays()
        return (ids[~dead], files[~dead]) if dead.any() else (ids, files)

    def live_files(self) -> set[int]:
        """The files that have at least one live vector."""
        _, files = self.live_arrays()
        return set(np.unique(files).tolist())

    def live_by_file(self) -> dict[int, set[int]]:
        """file_id -> live vector ids, for every file (a dict of the whole library: for
        repairs and tools, not for a search)."""
        ids, files = self.live_arrays()
        out: dict[int, set[int]] = {}
        for vector_id, file_id in zip(ids.tolist(), files.tolist()):
            out.setdefault(file_id, set()).add(vector_id)
        return out

    # -- changes ------------------------------------------------------------------------------

    def assign(self, vector_id: int, file_id: int) -> None:
        """Store (or move) a vector under a file; a deleted vector comes back live (hnswlib
        un-deletes a label added again)."""
        vector_id, file_id = int(vector_id), int(file_id)
        if vector_id in self._overlay:
            previous = self._overlay[vector_id]
            held = self._overlay_of.get(previous)
            if held is not None:
                held.discard(vector_id)
                if not held:
                    del self._overlay_of[previous]
        elif vector_id not in self:
            self._new += 1
        self._overlay[vector_id] = file_id
        self._overlay_of.setdefault(file_id, set()).add(vector_id)
        self._deleted.discard(vector_id)
        if len(self._overlay) > max(FOLD_MIN, FOLD_SHARE * len(self._ids)):
            self.fold()

    def delete(self, vector_id: int) -> None:
        self._deleted.add(int(vector_id))

    def fold(self) -> None:
        """Move the overlay into the base arrays."""
        if self._overlay:
            self._set_base(*self._merged())
            self._overlay, self._overlay_of, self._new = {}, {}, 0

    def _merged(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._overlay:
            return self._ids, self._files
        moved = np.fromiter(self._overlay.keys(), np.int64, len(self._overlay))
        moved_files = np.fromiter(self._overlay.values(), np.int64, len(self._overlay))
        keep = ~np.isin(self._ids, moved)
        ids = np.concatenate([self._ids[keep], moved])
        files = np.concatenate([self._files[keep], moved_files])
        order = np.argsort(ids, kind="stable")
        return ids[order], files[order]
