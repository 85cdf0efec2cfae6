"""Duplicate groups for a window: the same work as ``samplescout duplicates``, as jobs.

``DuplicateTasks`` opens a ``Library`` for each job and closes it after, so every run sees
the catalog and index as they are now (after scans and removals elsewhere) and no catalog
connection outlives its thread. ``find`` checks what is new or changed and returns the
stored groups (``app.duplicates.update`` then ``groups``); ``trash`` moves files to the
freedesktop trash with ``app.duplicates.move_to_trash``, the function the CLI's
``--trash`` uses, under the library's writer lock. Asking the user first is the caller's
job.

Threads: a worker thread (any one thread per call; each call blocks for seconds or more).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from app import duplicates
from app.duplicates import Group, UpdateReport
from engine.errors import SampleScoutError

# a trash from the window waits this long for the folder watcher (or a scan) to finish
WRITER_WAIT_S = 30.0


class FindCancelled(SampleScoutError):
    """``cancel`` stopped a ``find``; the files checked before it keep their pairs."""


@dataclass(frozen=True)
class DuplicateFindings:
    """What one ``find`` learnt: the check's report and every stored group."""
    report: UpdateReport
    groups: tuple[Group, ...]


class DuplicateTasks:
    """Duplicate jobs of one library dir (see the module docstring)."""

    def __init__(self, library_dir: str | os.PathLike):
        self.library_dir = Path(library_dir)
        self._cancel = threading.Event()

    def _open(self):
        from app.library import Library
        return Library(self.library_dir)

    def find(self, progress: Callable[[int, int, str], None] | None = None) -> DuplicateFindings:
        """Check the new or changed files, then return all groups (largest first);
        ``progress(done, total, path)`` from the calling thread. ``cancel`` stops it after
        the file in hand (FindCancelled); the files checked so far keep their pairs."""
        self._cancel.clear()

        def checked(done: int, total: int, path: str) -> None:
            if self._cancel.is_set():
                raise FindCancelled(f"stopped after {done} of {total} files; "
                                    "the next check goes on from there")
            if progress is not None:
                progress(done, total, path)

        with self._open() as library:
            report = duplicates.update(library, progress=checked)
            return DuplicateFindings(report, tuple(duplicates.groups(library)))

    def cancel(self) -> None:
        """Stop a running ``find`` after the file in hand. Any thread."""
        self._cancel.set()

    def trash(self, paths: Iterable[str | os.PathLike]) -> list[Path]:
        """Move library files to the trash (never unlinked) and forget them; where each
        landed. Raises ``duplicates.TrashError`` for a file that cannot be moved (those
        before it are moved) and ``LibraryError`` for a path outside the library."""
        from app.library import LibraryError
        wanted = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
        with self._open() as library:
            unknown = [p for p in wanted if library.catalog.file_by_path(p) is None]
            if unknown:
                raise LibraryError(f"not in the library, left alone: {unknown[0]}")
            with library.writer_lock(wait_s=WRITER_WAIT_S):
                return duplicates.move_to_trash(library, wanted)

    def trash_dir(self) -> Path:
        """Where ``trash`` moves files (``$XDG_DATA_HOME/Trash``)."""
        return duplicates.trash_dir()
