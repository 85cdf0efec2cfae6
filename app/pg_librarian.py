"""What the librarian keeps about each file in the shared catalogue (PostgreSQL schema 2):
tags with their source and the user's word on them, the sound analysis (tempo, key, root,
loudness), favourites, collections and duplicate groups.

The method names and behaviour are those of the local catalog (``app.catalog.Catalog`` and
``app.catalog_collections.CollectionsMixin``), so everything above the storage runs one
path. Every machine sees every file's tags, favourites and collections: they are kept by
file id, which a file keeps through re-analysis and moves on its share.

Threads: these are methods of :class:`app.pg_store.PgCatalog`, used by the thread that
opened it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable

from app.catalog import FileRow, SoundInfo, TagRow, standing_tags
from app.catalog_collections import CollectionError, CollectionRow, clean_collection_name

SOUND_FIELDS = tuple(f.name for f in dataclasses.fields(SoundInfo))

MIGRATION_2 = (
    # One row per (file, tag, source), as in the local catalog: 'audio' and 'name' rows are
    # rewritten by every analysis, 'user' rows only by a user (removed: hides the tag from
    # every source). set_by says which machine wrote a user's word.
    """CREATE TABLE tags (
           file_id BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
           tag TEXT NOT NULL,
           source TEXT NOT NULL CHECK (source IN ('audio', 'name', 'user')),
           confidence DOUBLE PRECISION NOT NULL,
           model_id TEXT,
           removed BOOLEAN NOT NULL DEFAULT false,
           set_by TEXT,
           PRIMARY KEY (file_id, tag, source))""",
    "CREATE INDEX tags_tag ON tags (tag)",
    """CREATE TABLE sounds (
           file_id BIGINT PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
           analysis_model TEXT NOT NULL,
           loop_probability DOUBLE PRECISION,
           tempo_bpm DOUBLE PRECISION,
           tempo_confidence DOUBLE PRECISION,
           key_tonic INTEGER CHECK (key_tonic BETWEEN 0 AND 11),
           key_mode TEXT,
           key_label TEXT,
           key_confidence DOUBLE PRECISION,
           root_midi INTEGER,
           tuning_cents DOUBLE PRECISION,
           root_confidence DOUBLE PRECISION,
           loudness_db DOUBLE PRECISION,
           name_conflict TEXT,
           analysed_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    "CREATE INDEX sounds_tempo ON sounds (tempo_bpm)",
    "CREATE INDEX sounds_model ON sounds (analysis_model)",
    """CREATE TABLE duplicate_checks (
           file_id BIGINT PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
           content_hash TEXT NOT NULL,
           pcm_hash TEXT,
           checked_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE duplicate_pairs (
           a BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
           b BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
           label TEXT NOT NULL CHECK (label IN ('exact', 'near', 'variant')),
           correlation DOUBLE PRECISION NOT NULL,
           offset_s DOUBLE PRECISION NOT NULL,
           ratio DOUBLE PRECISION NOT NULL,
           trimmed BOOLEAN NOT NULL,
           PRIMARY KEY (a, b),
           CHECK (a < b))""",
    "CREATE INDEX duplicate_pairs_b ON duplicate_pairs (b)",
    """CREATE TABLE favourites (
           file_id BIGINT PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
           added_by TEXT NOT NULL,
           added_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE collections (
           id BIGSERIAL PRIMARY KEY,
           name TEXT NOT NULL,
           created_by TEXT NOT NULL,
           created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    "CREATE UNIQUE INDEX collections_name ON collections (lower(name))",
    # a collection's order: when each file was added, then file id (as in the local catalog)
    """CREATE TABLE collection_items (
           collection_id BIGINT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
           file_id BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
           added_by TEXT NOT NULL,
           added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
           PRIMARY KEY (collection_id, file_id))""",
    "CREATE INDEX collection_items_file ON collection_items (file_id)",
    # bumped by every write of this module: the local copy is rewritten when it moved
    "CREATE SEQUENCE library_changes",
)


class PgLibrarianMixin:
    """Tags, sounds, favourites, collections and duplicates of ``PgCatalog`` (which supplies
    ``_q``, ``_rows``, ``_locate``, ``transaction`` and ``machine_id``)."""

    @property
    def changes(self) -> int:
        """Stamp of the tags, sounds, favourites, collections and duplicates; moves with
        every write to them."""
        last, called = self._q("SELECT last_value, is_called FROM library_changes").fetchone()
        return last if called else 0

    def _changed(self) -> None:
        self._q("SELECT nextval('library_changes')")

    # -- sounds and tags -------------------------------------------------------

    def set_sound(self, file_id: int, sound: SoundInfo | None, tags: Iterable[TagRow] = (),
                  *, replace_sources: tuple[str, ...] = ("audio", "name")) -> None:
        """Replace a file's analysis and its tags of ``replace_sources`` (never the user's).
        A None ``sound`` leaves the file unanalysed (its old analysis goes)."""
        tags = list(tags)
        if any(t.source == "user" for t in tags) or "user" in replace_sources:
            raise ValueError("user tags are written by add_user_tag / remove_user_tag only")
        file_id = int(file_id)
        with self.transaction():
            self._changed()
            self._q("DELETE FROM tags WHERE file_id = %s AND source = ANY(%s)",
                    (file_id, list(replace_sources)))
            if tags:
                self._q("INSERT INTO tags (file_id, tag, source, confidence, model_id) "
                        "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::float8[], %s::text[]) "
                        "ON CONFLICT (file_id, tag, source) DO UPDATE SET "
                        "confidence = excluded.confidence, model_id = excluded.model_id",
                        (file_id, [t.tag for t in tags], [t.source for t in tags],
                         [float(t.confidence) for t in tags], [t.model_id for t in tags]))
            if "audio" not in replace_sources:
                return
            self._q("DELETE FROM sounds WHERE file_id = %s", (file_id,))
            if sound is not None:
                columns = ", ".join(SOUND_FIELDS)
                marks = ", ".join(["%s"] * (len(SOUND_FIELDS) + 1))
                self._q(f"INSERT INTO sounds (file_id, {columns}) VALUES ({marks})",
                        (file_id, *(getattr(sound, f) for f in SOUND_FIELDS)))

    def set_name_conflict(self, file_id: int, conflict: str | None) -> None:
        self._changed()
        self._q("UPDATE sounds SET name_conflict = %s WHERE file_id = %s", (conflict, int(file_id)))

    def set_kind(self, file_id: int, kind: str) -> None:
        self._changed()
        self._q("UPDATE files SET kind = %s WHERE id = %s", (kind, int(file_id)))

    def set_user_tag(self, file_id: int, tag: str, *, removed: bool) -> None:
        """Record the user's word on one tag of one file: added, or removed (which hides the
        tag whatever source found it), for every machine. Survives every later analysis."""
        self._changed()
        self._q("INSERT INTO tags (file_id, tag, source, confidence, removed, set_by) "
                "VALUES (%s, %s, 'user', 1.0, %s, %s) ON CONFLICT (file_id, tag, source) "
                "DO UPDATE SET removed = excluded.removed, set_by = excluded.set_by",
                (int(file_id), tag, bool(removed), self.machine_id))

    def tag_rows(self, file_ids: Iterable[int]) -> dict[int, list[TagRow]]:
        """Every stored tag row (removals excluded) of these files, best first."""
        found: dict[int, list[TagRow]] = {}
        for file_id, tag, source, confidence, model_id in self._q(
                "SELECT file_id, tag, source, confidence, model_id FROM tags "
                "WHERE file_id = ANY(%s) AND NOT removed ORDER BY file_id, confidence DESC, tag",
                (_ids(file_ids),)):
            found.setdefault(file_id, []).append(TagRow(tag, source, confidence, model_id))
        return found

    def tags(self, file_ids: Iterable[int]) -> dict[int, list[TagRow]]:
        """The tags that stand for each file (``app.catalog.standing_tags``)."""
        ids = _ids(file_ids)
        removed: dict[int, set[str]] = {}
        for file_id, tag in self._q("SELECT file_id, tag FROM tags WHERE file_id = ANY(%s) "
                                    "AND source = 'user' AND removed", (ids,)):
            removed.setdefault(file_id, set()).add(tag)
        return standing_tags(self.tag_rows(ids), removed)

    def sounds(self, file_ids: Iterable[int]) -> dict[int, SoundInfo]:
        return {row[0]: SoundInfo(*row[1:]) for row in self._q(
            f"SELECT file_id, {', '.join(SOUND_FIELDS)} FROM sounds WHERE file_id = ANY(%s)",
            (_ids(file_ids),))}

    def user_tags(self, file_ids: Iterable[int]) -> dict[int, list[tuple[str, bool]]]:
        """The user's word on these files' tags: [(tag, removed)] per file (for the local
        copy, which replays them)."""
        found: dict[int, list[tuple[str, bool]]] = {}
        for file_id, tag, removed in self._q(
                "SELECT file_id, tag, removed FROM tags WHERE file_id = ANY(%s) AND source = 'user' "
                "ORDER BY file_id, tag", (_ids(file_ids),)):
            found.setdefault(file_id, []).append((tag, removed))
        return found

    def files_to_analyse(self, analysis_model: str, root: str | None = None) -> list[FileRow]:
        """Indexed files (under ``root``, a folder of this machine) with no sound analysis
        or one by another model."""
        where = ("WHERE status = 'indexed' AND NOT EXISTS (SELECT 1 FROM sounds s WHERE "
                 "s.file_id = files.id AND s.analysis_model = %s)")
        params: list = [analysis_model]
        if root is not None:
            located = self._locate(_norm_root(root))
            if located is None:
                return []
            share, rel = located
            where += " AND share_id = %s"
            params.append(share)
            if rel:
                prefix = rel.rstrip("/") + "/"
                where += " AND rel_path >= %s AND rel_path < %s"
                params += [prefix, prefix[:-1] + "0"]
        return self._rows(where + " ORDER BY share_id, rel_path", params)

    def indexed_files(self) -> list[FileRow]:
        """Every indexed file, ordered by share and path."""
        return self._rows("WHERE status = 'indexed' ORDER BY share_id, rel_path")

    # -- duplicates (app.duplicates) -------------------------------------------

    def duplicate_unchecked(self) -> list[FileRow]:
        """Indexed files whose content was not checked for duplicates yet (new or changed
        since the last check)."""
        return self._rows("WHERE status = 'indexed' AND NOT EXISTS (SELECT 1 FROM "
                          "duplicate_checks d WHERE d.file_id = files.id AND "
                          "d.content_hash IS NOT DISTINCT FROM files.content_hash) ORDER BY id")

    def duplicate_pcm_hashes(self, file_ids: Iterable[int]) -> dict[int, str]:
        """PCM hashes recorded by earlier checks (for files whose content is unchanged)."""
        return dict(self._q(
            "SELECT d.file_id, d.pcm_hash FROM duplicate_checks d JOIN files f "
            "ON f.id = d.file_id AND f.content_hash = d.content_hash "
            "WHERE d.file_id = ANY(%s) AND d.pcm_hash IS NOT NULL", (_ids(file_ids),)).fetchall())

    def record_duplicate_check(self, file_id: int, content_hash: str, pcm_hash: str | None,
                               pairs: Iterable[tuple[int, str, float, float, float, bool]]) -> None:
        """One file checked: its ``pairs`` (other file id, label, correlation, offset_s,
        ratio, trimmed), seen from this file, join the stored ones."""
        file_id = int(file_id)
        with self.transaction():
            self._changed()
            for other, label, corr, offset, ratio, trimmed in pairs:
                if other == file_id:
                    continue
                a, b = (file_id, int(other)) if file_id < other else (int(other), file_id)
                if a != file_id:   # stored from a's side: b sits at -offset, speed 1/ratio
                    offset, ratio = -offset, 1.0 / ratio
                self._q("INSERT INTO duplicate_pairs (a, b, label, correlation, offset_s, ratio, "
                        "trimmed) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (a, b) DO UPDATE SET "
                        "label = excluded.label, correlation = excluded.correlation, "
                        "offset_s = excluded.offset_s, ratio = excluded.ratio, "
                        "trimmed = excluded.trimmed",
                        (a, b, label, float(corr), float(offset), float(ratio), bool(trimmed)))
            self._q("INSERT INTO duplicate_checks (file_id, content_hash, pcm_hash) "
                    "VALUES (%s,%s,%s) ON CONFLICT (file_id) DO UPDATE SET "
                    "content_hash = excluded.content_hash, pcm_hash = excluded.pcm_hash, "
                    "checked_at = now()", (file_id, content_hash, pcm_hash))

    def forget_duplicate_pairs(self, file_ids: Iterable[int]) -> None:
        """Drop every stored pair that touches these files (their content changed)."""
        ids = _ids(file_ids)
        if ids:
            self._changed()
            self._q("DELETE FROM duplicate_pairs WHERE a = ANY(%s) OR b = ANY(%s)", (ids, ids))

    def duplicate_pairs(self) -> list[tuple[int, int, str, float, float, float, bool]]:
        """Every stored pair: (a, b, label, correlation, offset_s, ratio, trimmed), a < b."""
        return [tuple(r) for r in self._q(
            "SELECT a, b, label, correlation, offset_s, ratio, trimmed FROM duplicate_pairs "
            "ORDER BY a, b")]

    # -- favourites ---------------------------------------------------------------

    def set_favourite(self, file_ids: Iterable[int], favourite: bool = True) -> int:
        """Mark (or unmark) files as favourites; returns how many rows changed."""
        ids = _ids(file_ids)
        if not ids:
            return 0
        self._changed()
        if favourite:
            return self._q("INSERT INTO favourites (file_id, added_by) SELECT id, %s FROM files "
                           "WHERE id = ANY(%s) ON CONFLICT DO NOTHING",
                           (self.machine_id, ids)).rowcount
        return self._q("DELETE FROM favourites WHERE file_id = ANY(%s)", (ids,)).rowcount

    def favourites(self) -> set[int]:
        """Every favourite's file id."""
        return {row[0] for row in self._q("SELECT file_id FROM favourites")}

    # -- collections --------------------------------------------------------------

    def create_collection(self, name: str) -> int:
        """A new, empty collection; CollectionError when the name is taken (any case)."""
        name = clean_collection_name(name)
        self._changed()
        row = self._q("INSERT INTO collections (name, created_by) VALUES (%s, %s) "
                      "ON CONFLICT (lower(name)) DO NOTHING RETURNING id",
                      (name, self.machine_id)).fetchone()
        if row is None:
            raise CollectionError(f"there is already a collection named {name!r}")
        return row[0]

    def collection_id(self, name: str, *, create: bool = False) -> int:
        """The id of the collection called ``name`` (any case); made when ``create``."""
        name = clean_collection_name(name)
        row = self._q("SELECT id FROM collections WHERE lower(name) = lower(%s)", (name,)).fetchone()
        if row is not None:
            return row[0]
        if create:
            return self.create_collection(name)
        raise CollectionError(f"no collection named {name!r}")

    def rename_collection(self, collection_id: int, name: str) -> None:
        name = clean_collection_name(name)
        with self.transaction():
            self._changed()
            taken = self._q("SELECT 1 FROM collections WHERE lower(name) = lower(%s) AND id <> %s",
                            (name, int(collection_id))).fetchone()
            if taken:
                raise CollectionError(f"there is already a collection named {name!r}")
            if not self._q("UPDATE collections SET name = %s WHERE id = %s",
                           (name, int(collection_id))).rowcount:
                raise CollectionError(f"no collection with id {collection_id}")

    def delete_collection(self, collection_id: int) -> None:
        """Forget a collection (its files stay in the library)."""
        self._changed()
        self._q("DELETE FROM collections WHERE id = %s", (int(collection_id),))

    def collections(self) -> list[CollectionRow]:
        """Every collection with its size, by name."""
        return [CollectionRow(*row) for row in self._q(
            "SELECT c.id, c.name, count(i.file_id)::int, extract(epoch FROM c.created_at)::float8 "
            "FROM collections c LEFT JOIN collection_items i ON i.collection_id = c.id "
            "GROUP BY c.id ORDER BY lower(c.name)")]

    def add_to_collection(self, collection_id: int, file_ids: Iterable[int]) -> int:
        """Put files in a collection (those already there stay); returns how many were added."""
        ids = list(dict.fromkeys(_ids(file_ids)))
        with self.transaction():
            if self._q("SELECT 1 FROM collections WHERE id = %s",
                        (int(collection_id),)).fetchone() is None:
                raise CollectionError(f"no collection with id {collection_id}")
            if not ids:
                return 0
            self._changed()
            return self._q(
                "INSERT INTO collection_items (collection_id, file_id, added_by) "
                "SELECT %s, id, %s FROM files WHERE id = ANY(%s) ON CONFLICT DO NOTHING",
                (int(collection_id), self.machine_id, ids)).rowcount

    def remove_from_collection(self, collection_id: int, file_ids: Iterable[int]) -> int:
        self._changed()
        return self._q("DELETE FROM collection_items WHERE collection_id = %s AND file_id = ANY(%s)",
                       (int(collection_id), _ids(file_ids))).rowcount

    def collection_file_ids(self, collection_id: int) -> list[int]:
        """The files of a collection, in the order they were added."""
        return [row[0] for row in self._q(
            "SELECT file_id FROM collection_items WHERE collection_id = %s "
            "ORDER BY added_at, file_id", (int(collection_id),))]

    def collections_of(self, file_ids: Iterable[int]) -> dict[int, list[int]]:
        """For each of these files, the ids of the collections that hold it."""
        found: dict[int, list[int]] = {}
        for file_id, collection_id in self._q(
                "SELECT file_id, collection_id FROM collection_items WHERE file_id = ANY(%s) "
                "ORDER BY collection_id", (_ids(file_ids),)):
            found.setdefault(file_id, []).append(collection_id)
        return found


def _ids(file_ids: Iterable[int]) -> list[int]:
    return [int(i) for i in file_ids]


def _norm_root(path: str) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))
