"""What a ``Library`` needs from its storage: a catalog of files and vectors, and a
nearest-neighbour search over those vectors.

Two implementations exist:

- the default, local one: ``app.catalog.Catalog`` (one SQLite file) and
  ``app.index.VectorIndex`` (an hnswlib graph rebuilt from the catalog), needing no server;
- a shared one on PostgreSQL + pgvector (``app.pg_store``), selected by a
  ``postgresql://`` catalog address, for several machines working on one library.

Everything above the storage (``Library``, ``Scanner``, ``app.query.search`` and its
re-ranker) talks to these two protocols only. Threads: as each implementation says; both
are used by the thread that opened them, except ``VectorSearch.search``.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Protocol, runtime_checkable

import numpy as np

from app.catalog import FileAnalysis, FileRow, FileStamp
from app.index import Hit
from engine.errors import SampleScoutError

__all__ = ["CatalogStore", "VectorSearch", "StorageUnavailable", "Hit", "is_shared_address"]


class StorageUnavailable(SampleScoutError):
    """The shared catalogue cannot be reached (server down, network cut). The work done so
    far is committed; what was in flight is retried or reported."""


def is_shared_address(address: str | None) -> bool:
    """True for a PostgreSQL address (``postgresql://`` or ``postgres://``)."""
    return bool(address) and address.split("://", 1)[0] in ("postgresql", "postgres")


@runtime_checkable
class CatalogStore(Protocol):
    """Files (one row each, indexed or skipped with a reason), their vectors, the library
    folders. ``FileRow.path`` is always a path on this machine, or, for a file this machine
    cannot reach, a label that ``where`` explains."""

    @property
    def generation(self) -> str:
        """Stamp of the vector set; changes whenever vectors are added or removed."""

    def close(self) -> None: ...
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    # folders
    def add_root(self, path: str) -> None: ...
    def remove_root(self, path: str) -> int: ...
    def roots(self) -> list[str]: ...

    # rows
    def files_under(self, root: str) -> dict[str, FileRow]: ...
    def file_stamps(self, root: str) -> dict[str, FileStamp]: ...
    def file(self, file_id: int) -> FileRow | None: ...
    def file_by_path(self, path: str) -> FileRow | None: ...
    def files_by_id(self, file_ids: Iterable[int]) -> dict[int, FileRow]: ...
    def rows_with_hash(self, content_hash: str) -> list[FileRow]: ...
    def known_hashes(self) -> set[str]: ...
    def skipped(self, limit: int | None = None) -> list[FileRow]: ...
    def stats(self) -> dict: ...
    def indexed_count(self) -> int:
        """How many files are indexed (what ``stats()['indexed']`` says, without its other
        totals, which take seconds at a million files)."""
    def where(self, row: FileRow) -> str | None:
        """For a row whose file is not reachable here: which machine has it (None if no
        other machine does, or the storage is local)."""
    def sounds(self, file_ids: Iterable[int]) -> dict: ...
    def tags(self, file_ids: Iterable[int]) -> dict: ...

    # vectors
    def vector_count(self, model_id: str | None = None) -> int: ...
    def files_of_other_models(self, model_id: str) -> dict[str, int]: ...
    def vector_ids(self, model_id: str) -> np.ndarray: ...
    def iter_vectors(self, model_id: str, *, dim: int, min_id: int = 0,
                     ids: Iterable[int] | None = None,
                     batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]: ...
    def window_starts(self, vector_ids: Iterable[int]) -> dict[int, int]: ...
    def file_vectors(self, file_id: int) -> tuple[np.ndarray, np.ndarray]: ...

    # writes
    def store(self, analysis: FileAnalysis) -> tuple[int, np.ndarray]: ...
    def copy_file(self, source_id: int, path: str, size: int,
                  mtime_ns: int) -> tuple[int, np.ndarray]: ...
    def relink(self, file_id: int, path: str, size: int, mtime_ns: int) -> None: ...
    def touch(self, file_id: int, size: int, mtime_ns: int) -> None: ...
    def delete_files(self, file_ids: Iterable[int]) -> None: ...


@runtime_checkable
class VectorSearch(Protocol):
    """Nearest neighbours of query vectors among the catalog's vectors of one model.

    ``search`` answers the k best files, each with its best (vector_id, score), where
    score = 1 - cosine distance. Any thread."""

    def search(self, query: np.ndarray, k: int = 10, *,
               exclude_file_ids: Iterable[int] = ()) -> list[Hit]: ...
    def __len__(self) -> int: ...
