"""The library browser's requests for a window, run on the library thread.

The window's browser (``ui.browser_panel``) asks for a ``BrowseSnapshot`` of the catalog
and changes favourites and collections through this class; each request is a job on the
host's ``app.library_tasks.LibraryThread`` (which owns the ``Library`` and its catalog),
and its answer comes back through ``then`` on that thread. Errors (an unknown or taken
collection name) reach the thread's ``on_error`` as one line. Public methods: any thread.
"""

from __future__ import annotations

from typing import Callable, Iterable

from app.browse import build_snapshot

Then = Callable[[object], None] | None


class BrowseTasks:
    """Browser jobs on one ``LibraryThread`` (see the module docstring)."""

    def __init__(self, thread):
        self._thread = thread

    def _run(self, work: Callable, then: Then) -> None:
        def job(library):
            result = work(library.catalog)
            if then is not None:
                then(result)
        self._thread.run(job)

    def snapshot(self, then: Callable) -> None:
        """``then(BrowseSnapshot)`` of the whole catalog."""
        self._run(build_snapshot, then)

    def set_favourite(self, file_ids: Iterable[int], favourite: bool, then: Then = None) -> None:
        ids = [int(i) for i in file_ids]
        self._run(lambda catalog: catalog.set_favourite(ids, favourite), then)

    def collections(self, then: Callable) -> None:
        """``then([CollectionRow, ...])``, by name."""
        self._run(lambda catalog: catalog.collections(), then)

    def create_collection(self, name: str, then: Then = None) -> None:
        """``then(collection id)`` of the new collection."""
        self._run(lambda catalog: catalog.create_collection(name), then)

    def rename_collection(self, collection_id: int, name: str, then: Then = None) -> None:
        self._run(lambda catalog: catalog.rename_collection(collection_id, name), then)

    def delete_collection(self, collection_id: int, then: Then = None) -> None:
        self._run(lambda catalog: catalog.delete_collection(collection_id), then)

    def add_to_collection(self, collection_id: int, file_ids: Iterable[int], then: Then = None) -> None:
        """``then(the collection's file ids)`` after adding."""
        ids = [int(i) for i in file_ids]

        def work(catalog):
            catalog.add_to_collection(collection_id, ids)
            return catalog.collection_file_ids(collection_id)
        self._run(work, then)

    def remove_from_collection(self, collection_id: int, file_ids: Iterable[int],
                               then: Then = None) -> None:
        """``then(the collection's file ids)`` after removing."""
        ids = [int(i) for i in file_ids]

        def work(catalog):
            catalog.remove_from_collection(collection_id, ids)
            return catalog.collection_file_ids(collection_id)
        self._run(work, then)
