"""Before a library folder is scanned: is it there, is it the same folder, did it move?

``settle_folder`` is what a scan asks first of every folder it is given:

* a folder that is gone (an unplugged drive, an unmounted share), or whose path now holds
  another folder (an empty mount point, another drive), is marked offline and NOT scanned:
  its files, tags, favourites and collections stay in the catalog until it is back, or
  until the user forgets it (``index --remove``); the scanner never purges it;
* a folder that is back is marked online again;
* a folder given at a new path whose marker (or volume id) is a known library folder that
  is offline or gone is that folder, moved: it is relinked to the new path (file ids,
  vectors, tags and collections kept; nothing is analysed again);
* the same folder seen through a second path (a bind mount, a link) is scanned once, at
  the path the library knows;
* a copy of a library folder (its marker copied along) gets a marker of its own.

Every folder that can be written gets a marker (``app.folder_identity``); the catalog
remembers its id and the volume's. The shared catalogue identifies folders by share names
instead (``index --share``): none of this runs there.

Threads: the thread that owns the ``Library`` (inside its writer lock, as a scan is).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from app.catalog_roots import RootRow
from app.folder_identity import read_marker, volume_id, write_marker
from app.paths import display_path

# Catalogued files looked for, to tell the folder from an empty mount point.
PRESENCE_SAMPLE = 20


@dataclass
class FolderState:
    path: str                          # where to scan it (after a relink, the new path)
    scan: bool                         # False: offline, or seen through another path
    notes: list[str] = field(default_factory=list)
    relinked_from: str | None = None   # the folder's old path, when it was relinked
    offline: bool = False
    back_online: bool = False          # it was offline until now


def settle_folder(library, path: str) -> FolderState:
    """Decide what a scan of the library folder ``path`` (absolute) does; see the module
    docstring. Marks offline / online, relinks, writes markers."""
    catalog = library.catalog
    known = catalog.root_row(path)
    if not os.path.isdir(path):
        if known is None:
            return FolderState(path, False, [f"folder not found: {display_path(path)}"])
        return _offline(catalog, path, "library folder not found: {path} (moved, unplugged "
                                       "or unmounted?)")
    marker, volume = read_marker(path), volume_id(path)
    state = FolderState(path, True)
    if known is None:
        for other in catalog.roots_with_identity(marker, volume):
            if other.path == path:
                continue
            if _same_directory(other.path, path):
                state.scan = False
                state.notes.append(f"{display_path(path)} is the library folder "
                                   f"{display_path(other.path)} seen through another path; "
                                   "it is scanned there")
                return state
            if _missing(catalog, other):
                moved = library.relink_folder(other.path, path)
                state.relinked_from = other.path
                state.notes.append(f"library folder {display_path(other.path)} found at "
                                   f"{display_path(path)}: relinked ({moved} files kept, "
                                   "nothing analysed again)")
                known = catalog.root_row(path)
                break
            if marker is not None and other.folder_id == marker:
                marker = write_marker(path)   # a copy of that folder: an identity of its own
    if known is None:
        catalog.add_root(path)
    elif not _is_that_folder(catalog, known, marker, volume):
        return _offline(catalog, path, "library folder not there: {path} holds another folder "
                                       "now (drive not mounted?)")
    if catalog.set_root_offline(path, False):
        state.back_online = True
        state.notes.append(f"library folder {display_path(path)} is back online")
    if marker is None or (known is not None and known.folder_id and marker != known.folder_id):
        marker = write_marker(path, known.folder_id if known is not None else None)
    catalog.set_root_identity(path, marker, volume)
    return state


def _offline(catalog, path: str, why: str) -> FolderState:
    catalog.set_root_offline(path, True)
    files = len(catalog.files_under(path))
    return FolderState(path, False, [
        f"{why.format(path=display_path(path))}; its {files} catalogued files are kept, with "
        "their tags and collections, while it is offline (`samplescout index --relink OLD NEW` "
        "if it moved, `samplescout index --remove` to forget it)"], offline=True)


def _same_directory(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _missing(catalog, root: RootRow) -> bool:
    """Is the library folder ``root`` not at its path any more?"""
    if root.offline or not os.path.isdir(root.path):
        return True
    return not _is_that_folder(catalog, root, read_marker(root.path), volume_id(root.path))


def _is_that_folder(catalog, root: RootRow, marker: str | None, volume: str | None) -> bool:
    """Does the directory at ``root.path`` (with this marker and volume id) hold that
    library folder? A different marker or volume is not enough on its own (a marker can
    be deleted, a drive re-formatted): the folder is another one only when none of its
    catalogued files is there either (an empty mount point, another drive)."""
    if root.folder_id is not None and marker is not None:
        if marker == root.folder_id:
            return True
    elif root.volume_id is not None and volume is not None:
        if volume == root.volume_id:
            return True
    elif marker is None and root.folder_id is None:
        return True   # nothing known to compare: the path is the folder (as before markers)
    rows = catalog.files_under(root.path)
    if not rows:
        return True   # nothing catalogued there: nothing to lose either way
    return any(os.path.exists(p) for p in itertools.islice(rows, PRESENCE_SAMPLE))
