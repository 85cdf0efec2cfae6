"""Where Sample Scout keeps its data (catalog, index, caches, settings, user presets).

The library dir holds the SQLite catalog and the vector index. It is chosen, in
order, by the ``--library-dir`` option, the ``SAMPLESCOUT_LIBRARY_DIR``
environment variable, and the platform's user data dir. Any thread may call
these functions.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "samplescout"
LIBRARY_DIR_ENV = "SAMPLESCOUT_LIBRARY_DIR"

CATALOG_FILENAME = "catalog.sqlite3"
INDEX_FILENAME = "index.hnsw"
LOCK_FILENAME = "writer.lock"  # flock'ed by the one process that updates the library


def display_path(path: str | os.PathLike) -> str:
    """A path for people: bytes of a name that are not UTF-8 show as U+FFFD. Any thread."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "replace")


def library_dir(override: str | os.PathLike | None = None) -> Path:
    """The directory holding the catalog and index; created if missing."""
    if override:
        path = Path(override)
    elif os.environ.get(LIBRARY_DIR_ENV):
        path = Path(os.environ[LIBRARY_DIR_ENV])
    else:
        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """Per-user settings (``settings.json``) and the user's presets (not created here)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_presets_dir(kind: str) -> Path:
    """The user's own presets of one kind ('chains', 'midi'): beside the settings."""
    return config_dir() / "presets" / kind


def cache_dir() -> Path:
    """Per-user cache (plugin scan results, rendered previews)."""
    path = Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path
