"""The catalog read in bulk for the library browser (``app.browse``).

One pass over each table instead of per-file look-ups, so a snapshot of 100,000 files is
read in about a second. Threads: these are methods of :class:`app.catalog.Catalog`, used
by the thread that opened the catalog, like every other method of it.
"""

from __future__ import annotations

import sqlite3



class BrowseColumnsMixin:
    """Bulk reads for the browser; mixed into Catalog, which supplies ``_db``."""

    _db: sqlite3.Connection

    def browse_columns(self, min_audio_confidence: float, always_counted: tuple[str, ...] = ()) -> dict:
        """Every indexed file, ordered by path, as columns: ``file_ids``, ``paths`` (as
        stored: text, or bytes for names that are not UTF-8), ``kinds``, ``durations``,
        ``tags`` (per file, the tags that stand for it: the user's first, then by
        confidence; an audio tag only from ``min_audio_confidence`` on, or whatever its
        confidence when it is one of ``always_counted``), ``tempo``,
        ``keys`` ((tonic, mode) or None), ``loudness``."""
        rows = self._db.execute(
            "SELECT id, path, kind, duration FROM files WHERE status = 'indexed' "
            "ORDER BY path").fetchall()
        ids = [r[0] for r in rows]
        position = {file_id: i for i, file_id in enumerate(ids)}
        n = len(ids)
        tags: list[tuple[str, ...]] = [()] * n
        always = ",".join("?" * len(always_counted)) or "NULL"
        # one row per file: its standing tags, the user's first, then by confidence
        for file_id, joined in self._db.execute(
                "SELECT file_id, group_concat(tag, char(31)) FROM ("
                "  SELECT t.file_id, t.tag, MIN(t.source = 'user') AS mine,"
                "         MAX(t.confidence) AS sure FROM tags t"
                "  WHERE t.removed = 0 AND (t.source != 'audio' OR t.confidence >= ?"
                f"    OR t.tag IN ({always}))"
                "    AND NOT EXISTS (SELECT 1 FROM tags r WHERE r.file_id = t.file_id"
                "                    AND r.tag = t.tag AND r.source = 'user' AND r.removed = 1)"
                f"  GROUP BY t.file_id, t.tag ORDER BY t.file_id, t.tag IN ({always}), mine DESC,"
                "  sure DESC, t.tag)"
                " GROUP BY file_id", (float(min_audio_confidence), *always_counted, *always_counted)):
            i = position.get(file_id)
            if i is not None:
                tags[i] = tuple(joined.split("\x1f"))
        tempo: list = [None] * n
        keys: list = [None] * n
        loudness: list = [None] * n
        for file_id, bpm, tonic, mode, loud in self._db.execute(
                "SELECT file_id, tempo_bpm, key_tonic, key_mode, loudness_db FROM sounds"):
            i = position.get(file_id)
            if i is not None:
                tempo[i] = bpm
                keys[i] = None if tonic is None else (tonic, mode)
                loudness[i] = loud
        return {"file_ids": ids, "paths": [r[1] for r in rows], "kinds": [r[2] for r in rows],
                "durations": [r[3] for r in rows], "tags": tags, "tempo": tempo, "keys": keys,
                "loudness": loudness}
