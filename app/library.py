"""A sample library: its catalog, its vector index and the encoder that fills them.

``Library`` ties the three together: it opens (and repairs or rebuilds) the
index from the catalog, saves it with the catalog's generation stamp, and
answers searches by example.

It is the one writer of both: ``store``, ``store_copy``, ``touch``, ``relink``,
``remove`` and ``remove_folder`` change the catalog and the index together, so no
caller can leave one behind the other (``record_duplicate_check`` and ``forget_duplicate_pairs``
write the catalog's duplicate pairs). Readers elsewhere (the live matcher) get a
``Searcher`` from ``searcher()``: the index and a read-only view of the catalog.

Threads: a ``Library`` belongs to the thread that opened it (it holds a SQLite
connection); a ``Searcher`` may be used from any thread (one catalog connection per
thread); ``VectorIndex.search`` itself may be called from any thread.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterable

import numpy as np

from app.catalog import Catalog, FileAnalysis, FileRow
from app.decode import read_mono
from app.index import (
    DEFAULT_EF_CONSTRUCTION, DEFAULT_M, IndexFormatError, VectorIndex, ef_search_for,
)
from app.paths import CATALOG_FILENAME, INDEX_FILENAME, library_dir
from app.query import MAX_QUERY_SECONDS, Query, SearchFilter, SearchResult, embed_query, search
from app.rerank import FileReranker
from models.encoder import MODEL_SAMPLE_RATE, Encoder
from engine.errors import SampleScoutError

__all__ = ["Library", "LibraryError", "EmptyLibraryError", "Searcher", "SearchFilter", "SearchResult",
           "MAX_QUERY_SECONDS"]

# Share of sampled vectors that must find themselves in a fresh index before it is accepted
# without trying a denser graph.
SELF_RECALL_FLOOR = 0.99


class LibraryError(SampleScoutError):
    """A one-line, user-facing problem with the library (empty, unreadable query...)."""


class EmptyLibraryError(LibraryError):
    """The library holds no vectors yet: no query can find anything."""


class Library:
    """Catalog + index + encoder of one library dir (see module docstring on threads)."""

    def __init__(self, directory: str | os.PathLike | None = None, *,
                 model_path: str | os.PathLike | None = None, encoder: Encoder | None = None):
        self.directory = library_dir(directory)
        self.catalog = Catalog(self.directory / CATALOG_FILENAME)
        self.encoder = encoder or Encoder(model_path, threads=1)
        self.model_path = model_path
        self._index: VectorIndex | None = None
        self.index_note = ""  # how the index was obtained, for `doctor` and the status bar
        self.index_self_recall: float | None = None  # measured by the last rebuild_index
        self._reranker: FileReranker | None | bool = False   # False: not loaded yet

    @property
    def index_path(self) -> Path:
        return self.directory / INDEX_FILENAME

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- index lifecycle -----------------------------------------------------

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = self._open_index()
            self._index.ef_search = ef_search_for(len(self._index))
        return self._index

    def _open_index(self) -> VectorIndex:
        model_id, dim = self.encoder.model_id, self.encoder.dim
        try:
            index = VectorIndex.load(self.index_path, dim=dim, model_id=model_id)
        except FileNotFoundError:
            self.index_note = "built from the catalog (no index file yet)"
            return self.rebuild_index(save=self.catalog.vector_count(model_id) > 0)
        except IndexFormatError as exc:
            self.index_note = f"rebuilt from the catalog ({exc})"
            return self.rebuild_index()
        if index.generation == self.catalog.generation:
            self.index_note = "loaded"
            return index
        repaired = self._repair(index)
        self.index_note = f"repaired from the catalog ({repaired} vectors changed since it was saved)"
        if index.needs_rebuild():
            return self.rebuild_index()
        self._index = index
        self.save_index()
        return index

    def _repair(self, index: VectorIndex) -> int:
        """Bring an index saved at an older catalog state up to date.

        Vector ids are never reused, so the difference of id sets says exactly
        what to drop and what to add.
        """
        model_id, dim = self.encoder.model_id, self.encoder.dim
        in_index = index.vector_files()
        in_catalog = set(self.catalog.vector_ids(model_id).tolist())
        stale_files = {in_index[v] for v in in_index.keys() - in_catalog}
        index.remove_files(stale_files)
        wanted = (in_catalog - in_index.keys())
        for file_id in stale_files:
            wanted.update(self.catalog.file_vectors(file_id)[0].tolist())
        for ids, file_ids, vectors in self.catalog.iter_vectors(model_id, dim=dim, ids=wanted):
            index.add(ids, file_ids, vectors)
        return len(wanted) + len(stale_files)

    def rebuild_index(self, *, save: bool = True, M: int = DEFAULT_M,
                      ef_construction: int = DEFAULT_EF_CONSTRUCTION) -> VectorIndex:
        """A fresh index from every vector of the current model in the catalog.

        HNSW can leave some vectors unreachable by any query; when the self-recall of the new
        graph is below SELF_RECALL_FLOOR it is built once more with doubled M and
        ef_construction, and the better of the two is kept. The figure lands in
        ``index_self_recall``.
        """
        index = self._build_index(M, ef_construction)
        recall = index.self_recall()
        if recall < SELF_RECALL_FLOOR:
            denser = self._build_index(2 * M, 2 * ef_construction)
            denser_recall = denser.self_recall()
            if denser_recall > recall:
                index, recall = denser, denser_recall
        self.index_self_recall = recall
        self._index = index
        if save:
            self.save_index()
        return index

    def _build_index(self, M: int, ef_construction: int) -> VectorIndex:
        model_id, dim = self.encoder.model_id, self.encoder.dim
        count = self.catalog.vector_count(model_id)
        index = VectorIndex(dim, model_id, capacity=max(1024, count), ef_search=ef_search_for(count),
                            M=M, ef_construction=ef_construction)
        for ids, file_ids, vectors in self.catalog.iter_vectors(model_id, dim=dim):
            index.add(ids, file_ids, vectors)
        return index

    def save_index(self) -> None:
        index = self.index
        if index.needs_rebuild():
            index = self.rebuild_index(save=False)
        index.generation = self.catalog.generation
        index.ef_search = ef_search_for(len(index))
        index.save(self.index_path)

    # -- writes: catalog and index together ----------------------------------

    def store(self, analysis: FileAnalysis) -> int:
        """Store one file's analysis (replacing what its path held before); its vectors
        join the index when it was indexed. Returns the file id."""
        index = self.index
        with self.catalog.transaction():
            previous = self.catalog.file_by_path(analysis.path)
            if previous is not None:
                index.remove_files([previous.id])
            file_id, vector_ids = self.catalog.store(analysis)
        if analysis.status == "indexed":
            index.add(vector_ids, [file_id] * len(vector_ids), analysis.vectors)
        return file_id

    def store_copy(self, source: FileRow, path: str, size: int, mtime_ns: int) -> int:
        """A file with the same content as ``source``: a new row sharing its analysis
        (replacing what ``path`` held before). Returns the file id."""
        index = self.index
        with self.catalog.transaction():
            previous = self.catalog.file_by_path(path)
            if previous is not None:
                index.remove_files([previous.id])
            file_id, vector_ids = self.catalog.copy_file(source.id, path, size, mtime_ns)
            if source.status == "indexed":
                _, vectors = self.catalog.file_vectors(file_id)
                index.add(vector_ids, [file_id] * len(vector_ids), vectors)
        return file_id

    def touch(self, file_id: int, size: int, mtime_ns: int) -> None:
        """Same content, new stat: the vectors stay."""
        self.catalog.touch(file_id, size, mtime_ns)

    def relink(self, file_id: int, path: str, size: int, mtime_ns: int) -> None:
        """A catalogued file was moved to ``path``: it keeps its row and vectors; a row
        that ``path`` held before (other content) leaves the catalog and the index."""
        with self.catalog.transaction():
            previous = self.catalog.file_by_path(path)
            if previous is not None and previous.id != file_id:
                self.remove([previous.id])
            self.catalog.relink(file_id, path, size, mtime_ns)

    def remove(self, file_ids: Iterable[int]) -> int:
        """Forget these files: their rows and their vectors. Returns how many."""
        ids = [int(i) for i in file_ids]
        if ids:
            self.index.remove_files(ids)
            self.catalog.delete_files(ids)
        return len(ids)

    def record_duplicate_check(self, file_id: int, content_hash: str, pcm_hash: str | None,
                               pairs) -> None:
        """One file checked for duplicates (``app.duplicates``): its pairs are stored. The
        index does not change."""
        self.catalog.record_duplicate_check(file_id, content_hash, pcm_hash, pairs)

    def forget_duplicate_pairs(self, file_ids: Iterable[int]) -> None:
        """Files about to be checked again lose the pairs they had."""
        self.catalog.forget_duplicate_pairs(file_ids)

    def remove_folder(self, root: str | os.PathLike) -> int:
        """Forget a library folder and every file under it, and save the index. Returns
        the files removed."""
        root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        self.index.remove_files(row.id for row in self.catalog.files_under(root).values())
        removed = self.catalog.remove_root(root)
        self.save_index()
        return removed

    # -- search ----------------------------------------------------------------

    def searcher(self, index: VectorIndex | None = None) -> "Searcher":
        """A read-only searcher over this library's index as loaded now (or over ``index``,
        one built from this catalog), for any thread."""
        return Searcher(self.directory, self.index if index is None else index, self.encoder,
                        self.reranker)

    @property
    def reranker(self) -> FileReranker | None:
        """The search's second stage (loaded on first use); None when the shipped re-ranker
        does not belong to this library's encoder."""
        if self._reranker is False:
            self._reranker = FileReranker.for_encoder(self.encoder)
        return self._reranker

    def search_vectors(self, query: Query | np.ndarray, k: int = 10, *,
                       filter: SearchFilter | None = None) -> list[SearchResult]:
        """Rank library files against ``query`` (or bare window vectors (m, dim), which skip
        the re-ranker: it needs the windows' audio)."""
        return search(self.index, self.catalog, query, k, reranker=self.reranker, filter=filter)

    def embed_file(self, path: str | os.PathLike) -> Query:
        """Query windows of an audio file; raises DecodeError or LibraryError."""
        audio = read_mono(path, MODEL_SAMPLE_RATE, max_seconds=MAX_QUERY_SECONDS)
        query = embed_query(self.encoder, audio)
        if len(query) == 0:
            raise LibraryError(f"{path}: the query is silent, nothing to search for")
        return query

    def search_file(self, path: str | os.PathLike, k: int = 10, *,
                    filter: SearchFilter | None = None) -> list[SearchResult]:
        if self.catalog.vector_count(self.encoder.model_id) == 0:
            others = self.catalog.files_of_other_models(self.encoder.model_id)
            if others:
                names = ", ".join(sorted(others))
                raise LibraryError(
                    f"the library was analysed by another model ({names}), not by "
                    f"{self.encoder.model_id}: re-analyse it with `samplescout index` (the app "
                    "does this by itself when it opens)")
            raise EmptyLibraryError(
                "the library is empty: add samples with `samplescout index FOLDER` first")
        return self.search_vectors(self.embed_file(path), k, filter=filter)


class Searcher:
    """Read-only search over a library: an index and the catalog's rows, nothing that
    writes. Any thread (each thread reads the catalog through a connection of its own)."""

    def __init__(self, directory: Path, index: VectorIndex, encoder: Encoder,
                 reranker: FileReranker | None):
        self.directory = Path(directory)
        self.index = index
        self.encoder = encoder
        self.reranker = reranker
        self._local = threading.local()

    def _catalog(self) -> Catalog:
        catalog = getattr(self._local, "catalog", None)
        if catalog is None:
            catalog = self._local.catalog = Catalog(self.directory / CATALOG_FILENAME)
        return catalog

    def search(self, query: Query, k: int, *, filter: SearchFilter | None = None) -> list[SearchResult]:
        """The one search (``app.query.search``) on this library. Any thread."""
        return search(self.index, self._catalog(), query, k, reranker=self.reranker, filter=filter)

    def with_index(self, index: VectorIndex) -> "Searcher":
        """The same library searched through another index (after a rescan)."""
        return Searcher(self.directory, index, self.encoder, self.reranker)

    def __len__(self) -> int:
        return len(self.index)
