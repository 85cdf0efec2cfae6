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
