"""A local, read-only copy of a shared catalogue: rows, vectors, tags and sound analysis in
a SQLite catalog and its hnswlib index, kept in the library dir. When the server cannot be
reached, searches run on it and say that it is stale (as of ``saved_at``).

Written after each scan and whenever a search finds the server's vectors changed. Thread:
the one that owns the shared ``Library``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from app.catalog import Catalog
from app.paths import CATALOG_FILENAME
from engine.json_file import JsonFileError, read_json_file

STATE_FILENAME = "state.json"
STATE_MAX_BYTES = 64 * 1024   # a few keys; anything larger is not a state file of ours


def cache_dir_for(library_dir: Path, address_label: str) -> Path:
    """Where the copy of the catalogue at ``address_label`` (no password) lives."""
    digest = hashlib.sha1(address_label.encode()).hexdigest()[:16]
    return Path(library_dir) / "shared-cache" / digest


def read_state(cache: Path) -> dict | None:
    """{generation, saved_at, catalog} of the copy, None when there is none."""
    try:
        state = read_json_file(cache / STATE_FILENAME, max_bytes=STATE_MAX_BYTES)
    except JsonFileError:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("saved_at"), (int, float)):
        return None
    return state if (cache / CATALOG_FILENAME).exists() else None


def write_cache(cache: Path, source, model_id: str, generation: str, label: str,
                build_index) -> None:
    """Replace the copy at ``cache`` with every row of ``source`` (a ``PgCatalog``);
    ``build_index(folder)`` builds and saves the hnswlib index of the new catalog there."""
    fresh = cache.with_name(cache.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    with Catalog(fresh / CATALOG_FILENAME) as local:
        with local.transaction():
            for analysis in source.export(model_id):
                local.store(analysis)
            for path, tag, removed in source.export_user_tags():
                row = local.file_by_path(path)
                if row is not None:
                    local.set_user_tag(row.id, tag, removed=removed)
    build_index(fresh)
    (fresh / STATE_FILENAME).write_text(json.dumps(
        {"generation": generation, "saved_at": time.time(), "catalog": label}), encoding="utf-8")
    old = cache.with_name(cache.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if cache.exists():
        os.replace(cache, old)
    os.replace(fresh, cache)
    shutil.rmtree(old, ignore_errors=True)
