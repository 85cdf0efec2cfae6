"""The library browser's query: search, filter, sort and count the whole catalog.

A ``BrowseSnapshot`` holds every indexed file of the catalog as columns (numpy arrays for
kind, tempo, key, length, loudness, favourite and a tag bit set; lists for names, paths
and tags) plus an inverted index from word to rows, so one query answers in a few
milliseconds at 100,000 files: every filter is a boolean mask, text terms are prefix
look-ups in the sorted word list, facets are ``bincount`` over the matching rows, and
each column's sort order is computed once and then filtered.

Text search (``BrowseQuery.text``): words separated by spaces, every one must match.
A word matches a file whose name or folder holds a word starting with it, or whose tags
include the tag the thesaurus reads in it ("bd" finds kicks, "hh" closed hats; two words
that name one tag, "open hat", count as one). ``-word`` excludes files whose name or
folder holds such a word, and files with its tag unless a searched word names that tag
too ("snare -rim" keeps the snares and drops the rim shots).

The snapshot is built from the catalog (``build_snapshot``: on the thread that owns the
catalog, a few seconds at 100,000 files) and queried without it. Threads: build on the
catalog's thread; afterwards one thread at a time may query and update a snapshot
(the window's GUI thread).
"""

from __future__ import annotations

import bisect
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np

from app.catalog import py_path
from app.query import ALWAYS_COUNTED_TAGS, FILTER_MIN_CONFIDENCE, KINDS, counts_for_filter, parse_key
from app.thesaurus import UnknownTagError, normalise
from engine.errors import SampleScoutError
from models.tag_vocabulary import ALL_TAGS, canonical, tags_by_facet

COLUMNS = ("name", "folder", "tags", "kind", "tempo", "key", "length", "loudness", "favourite")
FACETS = ("tags", "kind", "key", "tempo", "length", "folder")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# facet buckets: (label, low inclusive, high exclusive)
TEMPO_BUCKETS = (("< 80", 0.0, 80.0), ("80–99", 80.0, 100.0), ("100–119", 100.0, 120.0),
                 ("120–139", 120.0, 140.0), ("140–159", 140.0, 160.0), ("160+", 160.0, math.inf))
LENGTH_BUCKETS = (("< 0.5 s", 0.0, 0.5), ("0.5–1 s", 0.5, 1.0), ("1–2 s", 1.0, 2.0),
                  ("2–5 s", 2.0, 5.0), ("5–15 s", 5.0, 15.0), ("15 s+", 15.0, math.inf))
FOLDER_FACET_SIZE = 30
FOLDER_WORD_LEVELS = 3      # folder names searched: the file's folder and two above it
_PREFIX_CACHE = 64          # masks of recent prefixes (100 kB each at 100,000 files)
_ALNUM = re.compile(r"[a-z0-9]+")
_RUNS = re.compile(r"[a-z]+|[0-9]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


class BrowseError(SampleScoutError, ValueError):
    """A browse query that cannot be answered (unknown tag, key, column or collection)."""


@dataclass(frozen=True)
class BrowseQuery:
    """What the browser shows. Fields left at None or empty do not narrow.

    ``tags``: one of each facet named (type, genre, mood; synonyms work). ``tempo`` and
    ``length``: (low, high), inclusive, bpm and seconds. ``folder``: only files inside it.
    ``collection``: its id or name.
    ``sort``: one of ``COLUMNS``; ``limit``: at most this many rows (the total still counts
    all). ``facets``: also count the facets (a little more work)."""
    text: str = ""
    kind: str | None = None
    tags: tuple[str, ...] = ()
    key: str | None = None
    tempo: tuple[float, float] | None = None
    length: tuple[float, float] | None = None
    folder: str | None = None
    favourites: bool = False
    collection: int | str | None = None
    sort: str = "name"
    descending: bool = False
    limit: int | None = None
    facets: bool = True

    def __post_init__(self):
        if self.kind is not None and self.kind not in KINDS:
            raise BrowseError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        try:
            object.__setattr__(self, "tags", tuple(dict.fromkeys(normalise(t) for t in self.tags)))
        except UnknownTagError as exc:
            raise BrowseError(str(exc)) from None
        if self.sort not in COLUMNS:
            raise BrowseError(f"cannot sort by {self.sort!r}; columns: {', '.join(COLUMNS)}")
        for name in ("tempo", "length"):
            span = getattr(self, name)
            if span is not None:
                low, high = (float(v) for v in span)
                if not (0 <= low <= high):
                    raise BrowseError(f"{name} range must be LOW-HIGH with 0 <= LOW <= HIGH, "
                                      f"not {span!r}")
                object.__setattr__(self, name, (low, high))
        if self.folder is not None:
            object.__setattr__(self, "folder", os.path.abspath(os.path.expanduser(self.folder)))
        if self.limit is not None and self.limit < 0:
            raise BrowseError("limit must be 0 or more")


@dataclass
class BrowseResult:
    """Snapshot rows in display order (``rows``, at most the query's limit), how many
    matched (``total``), and the facets: {facet: [(value, label, count), ...]}."""
    rows: np.ndarray
    total: int
    facets: dict[str, list[tuple[object, str, int]]] = field(default_factory=dict)
    elapsed_ms: float = 0.0


def _key_code(tonic: int | None, mode: str | None) -> int:
    if tonic is None or mode not in ("major", "minor"):
        return -1
    return int(tonic) * 2 + (mode == "minor")


def key_label(code: int) -> str:
    """24 key codes (tonic * 2 + minor) -> "C", "Am"."""
    return NOTE_NAMES[code // 2] + ("m" if code % 2 else "")


def _words(text: str) -> set[str]:
    """The words a name or folder is found by: lower-case alphanumeric runs, their letter
    and digit runs, camelCase parts ("BigKick01" -> bigkick01, big, kick01, kick, 01)."""
    lowered = text.lower()
    runs = _ALNUM.findall(lowered)
    found = set(runs)
    for run in runs:
        if not (run.isalpha() or run.isdigit()):
            found.update(_RUNS.findall(run))
    if _CAMEL.search(text):
        for run in _ALNUM.findall(_CAMEL.sub(" ", text).lower()):
            found.add(run)
            found.update(_RUNS.findall(run))
    return found


def _bucket_codes(values: np.ndarray, buckets) -> np.ndarray:
    edges = np.array([b[1] for b in buckets[1:]], dtype=np.float64)
    codes = np.searchsorted(edges, values, side="right").astype(np.int8)
    codes[np.isnan(values)] = -1
    return codes


class BrowseSnapshot:
    """Every indexed file as columns; see the module docstring. Built by ``build_snapshot``
    (or directly from columns, as the benchmark and tests may); queried with ``query``."""

    def __init__(self, *, file_ids, paths, tags, kinds, tempo, keys, durations, loudness,
                 favourites=(), collections=None, roots=()):
        n = len(file_ids)
        self.version = 0        # bumped by every update, so a view knows to ask again
        self.file_ids = np.asarray(file_ids, dtype=np.int64)
        self.paths: list[str] = list(paths)
        self.names: list[str] = [os.path.basename(p) for p in self.paths]
        folder_of = [p.rpartition(os.sep)[0] for p in self.paths]
        self.folders: list[str] = sorted(set(folder_of))
        code_of = {f: i for i, f in enumerate(self.folders)}
        self.folder_code = np.fromiter((code_of[f] for f in folder_of), dtype=np.int32, count=n)
        self.roots = sorted((os.fspath(r).rstrip("/\\") for r in roots), key=len, reverse=True)
        self.folder_labels = [self._folder_label(f) for f in self.folders]
        self.kind_code = np.fromiter(((KINDS.index(k) + 1 if k in KINDS else 0) for k in kinds),
                                     dtype=np.int8, count=n)
        self.tempo = np.asarray([np.nan if t is None else t for t in tempo], dtype=np.float64)
        self.key_code = np.asarray([_key_code(*k) if k else -1 for k in keys], dtype=np.int8)
        self.duration = np.asarray([np.nan if d is None else d for d in durations], dtype=np.float64)
        self.loudness = np.asarray([np.nan if v is None else v for v in loudness], dtype=np.float64)
        self.row_of = {int(fid): i for i, fid in enumerate(self.file_ids)}
        self._row_of_path: dict[str, int] | None = None
        self.favourite = np.zeros(n, dtype=bool)
        self._set_rows(self.favourite, favourites, True)
        self.tag_bit = {tag: i for i, tag in enumerate(ALL_TAGS)}
        self.row_tags: list[tuple[str, ...]] = [()] * n
        self.tag_bits = np.zeros(n, dtype=np.uint64)
        for row, row_tags in enumerate(tags):
            self._store_tags(row, row_tags)
        self.tempo_bucket = _bucket_codes(self.tempo, TEMPO_BUCKETS)
        self.length_bucket = _bucket_codes(self.duration, LENGTH_BUCKETS)
        self.collections: dict[int, tuple[str, np.ndarray]] = {}
        for cid, (name, ids) in (collections or {}).items():
            self.set_collection(cid, name, ids)
        self._build_words()
        self._orders: dict[tuple[str, bool], np.ndarray] = {}
        self._prefix_cache: dict[str, np.ndarray] = {}
        for column in COLUMNS:          # sorting per keystroke is then one filtered copy
            for descending in (False, True):
                self.order(column, descending)

    def __len__(self) -> int:
        return len(self.file_ids)

    # -- building --------------------------------------------------------------------------

    def _folder_label(self, folder: str) -> str:
        for root in self.roots:
            if folder == root or folder.startswith(root + os.sep):
                base = os.path.basename(root) or root
                rest = folder[len(root):].lstrip(os.sep)
                return os.path.join(base, rest) if rest else base
        return folder

    def _build_words(self) -> None:
        """Two inverted indexes: name words -> rows, folder words -> folder codes (a
        folder's words are shared by all its files, so they are matched per folder)."""
        postings: dict[str, list[int]] = {}
        for row, name in enumerate(self.names):
            for word in _words(name.rpartition(".")[0] or name):
                postings.setdefault(word, []).append(row)
        self.vocabulary = sorted(postings)
        self.postings = [np.asarray(postings[w], dtype=np.int32) for w in self.vocabulary]
        folder_postings: dict[str, list[int]] = {}
        for code, label in enumerate(self.folder_labels):
            parts = PurePath(label).parts[-FOLDER_WORD_LEVELS:]
            for word in set().union(set(), *(_words(p) for p in parts)):
                folder_postings.setdefault(word, []).append(code)
        self.folder_vocabulary = sorted(folder_postings)
        self.folder_postings = [np.asarray(folder_postings[w], dtype=np.int32)
                                for w in self.folder_vocabulary]

    def _set_rows(self, column: np.ndarray, file_ids, value) -> list[int]:
        rows = [self.row_of[int(f)] for f in file_ids if int(f) in self.row_of]
        column[rows] = value
        return rows

    def _store_tags(self, row: int, row_tags) -> None:
        names = tuple(t for t in dict.fromkeys(row_tags) if t in self.tag_bit)
        self.row_tags[row] = names
        bits = 0
        for t in names:
            bits |= 1 << self.tag_bit[t]
        self.tag_bits[row] = bits

    # -- updates (the owner's thread) --------------------------------------------------------

    def set_favourite(self, file_ids, favourite: bool) -> None:
        self._set_rows(self.favourite, file_ids, favourite)
        self._changed("favourite")

    def set_tags(self, file_id: int, tags) -> None:
        """The tags that now stand for one file (after the user edited them)."""
        row = self.row_of.get(int(file_id))
        if row is not None:
            self._store_tags(row, tags)
            self._changed("tags")

    def set_collection(self, collection_id: int, name: str, file_ids) -> None:
        mask = np.zeros(len(self), dtype=bool)
        self._set_rows(mask, file_ids, True)
        self.collections[int(collection_id)] = (name, mask)
        self.version += 1

    def drop_collection(self, collection_id: int) -> None:
        self.collections.pop(int(collection_id), None)
        self.version += 1

    def _changed(self, column: str) -> None:
        for key in [k for k in self._orders if k[0] == column]:
            del self._orders[key]
        self.version += 1

    # -- reading ---------------------------------------------------------------------------

    def row_index(self, file_id: int) -> int | None:
        return self.row_of.get(int(file_id))

    def row_of_path(self, path: str) -> int | None:
        if self._row_of_path is None:
            self._row_of_path = {p: i for i, p in enumerate(self.paths)}
        return self._row_of_path.get(path)

    def collection_id(self, name_or_id: int | str) -> int:
        """A collection of this snapshot by id or name (any case); BrowseError when unknown."""
        if isinstance(name_or_id, int) and name_or_id in self.collections:
            return name_or_id
        wanted = " ".join(str(name_or_id).split()).casefold()
        for cid, (name, _) in self.collections.items():
            if name.casefold() == wanted:
                return cid
        raise BrowseError(f"no collection named {name_or_id!r}")

    def folder_label(self, row: int) -> str:
        return self.folder_labels[self.folder_code[row]]

    def key_text(self, row: int) -> str | None:
        code = int(self.key_code[row])
        return None if code < 0 else key_label(code)

    def kind_text(self, row: int) -> str | None:
        code = int(self.kind_code[row])
        return KINDS[code - 1] if code else None

    def row_dict(self, row: int) -> dict:
        """One row as JSON (``samplescout find --json``)."""
        def number(v):
            return None if math.isnan(v) else round(float(v), 3)
        return {"file_id": int(self.file_ids[row]), "path": self.paths[row],
                "name": self.names[row], "folder": self.folders[self.folder_code[row]],
                "tags": list(self.row_tags[row]), "kind": self.kind_text(row),
                "bpm": number(self.tempo[row]), "key": self.key_text(row),
                "duration_s": number(self.duration[row]),
                "loudness_db": number(self.loudness[row]),
                "favourite": bool(self.favourite[row])}

    # -- querying --------------------------------------------------------------------------

    def order(self, column: str, descending: bool = False) -> np.ndarray:
        """All rows sorted by a column, equal values in catalog order and unknown values
        last either way (favourites first when ascending); cached until the column changes."""
        cached = self._orders.get((column, descending))
        if cached is not None:
            return cached
        n = len(self)
        if column == "favourite":
            rank = (~self.favourite).astype(np.int64)
            unknown = np.zeros(n, dtype=bool)
        elif column in ("tempo", "length", "loudness"):
            values = {"tempo": self.tempo, "length": self.duration, "loudness": self.loudness}[column]
            unknown = np.isnan(values)
            rank = np.where(unknown, 0.0, values)
        else:
            if column == "name":
                keys = [s.casefold() for s in self.names]
            elif column == "folder":
                keys = [self.folder_labels[c].casefold() for c in self.folder_code]
            elif column == "tags":
                keys = [", ".join(t) for t in self.row_tags]
            elif column == "kind":
                keys = [self.kind_text(i) or "" for i in range(n)]
            else:
                keys = [self.key_text(i) or "" for i in range(n)]
            values = np.asarray(keys, dtype=str) if n else np.zeros(0, dtype=str)
            unknown = values == ""
            rank = np.unique(values, return_inverse=True)[1].reshape(-1) if n else np.zeros(0, np.int64)
        order = np.argsort(-rank if descending else rank, kind="stable")
        order = np.concatenate([order[~unknown[order]], order[unknown[order]]]).astype(np.int32)
        self._orders[(column, descending)] = order
        return order

    def _prefix_rows(self, prefix: str) -> np.ndarray:
        """Boolean mask of the rows whose name or folder holds a word starting with
        ``prefix``."""
        cached = self._prefix_cache.get(prefix)
        if cached is not None:
            return cached
        mask = np.zeros(len(self), dtype=bool)
        names = _prefix_hits(self.vocabulary, self.postings, prefix)
        if names is not None:
            mask[names] = True
        folders = _prefix_hits(self.folder_vocabulary, self.folder_postings, prefix)
        if folders is not None:
            inside = np.zeros(len(self.folders), dtype=bool)
            inside[folders] = True
            mask |= inside[self.folder_code]
        if len(self._prefix_cache) >= _PREFIX_CACHE:
            self._prefix_cache.pop(next(iter(self._prefix_cache)))
        self._prefix_cache[prefix] = mask
        return mask

    def _word_mask(self, term: str) -> np.ndarray:
        """Rows whose name or folder holds, for every word of ``term``, a word starting
        with it."""
        mask = None
        for word in _ALNUM.findall(term.lower()):
            rows = self._prefix_rows(word)
            mask = rows if mask is None else mask & rows
        return mask if mask is not None else np.ones(len(self), dtype=bool)

    def _tag_mask(self, tags) -> np.ndarray:
        """One of the tags of each facet named (as ``app.query.SearchFilter``)."""
        mask = np.ones(len(self.tag_bits), dtype=bool)
        for facet in tags_by_facet(tags):
            bits = sum(1 << self.tag_bit[t] for t in facet)
            mask &= (self.tag_bits & np.uint64(bits)) != 0
        return mask

    def text_mask(self, text: str) -> np.ndarray | None:
        """Rows the search text accepts (see the module docstring); None: no text."""
        included, excluded = parse_text(text)
        if not included and not excluded:
            return None
        mask = np.ones(len(self), dtype=bool)
        searched_tags = {tag for _, tag in included if tag is not None}
        for term, tag in included:
            term_mask = self._word_mask(term)
            if tag is not None:
                term_mask = term_mask | self._tag_mask([tag])
            mask &= term_mask
        for term, tag in excluded:
            drop = self._word_mask(term) if _ALNUM.search(term.lower()) else np.zeros(len(self), bool)
            if tag is not None and tag not in searched_tags:
                drop = drop | self._tag_mask([tag])
            mask &= ~drop
        return mask

    def _filter_masks(self, q: BrowseQuery) -> dict[str, np.ndarray]:
        masks: dict[str, np.ndarray] = {}
        text = self.text_mask(q.text)
        if text is not None:
            masks["text"] = text
        if q.kind is not None:
            masks["kind"] = self.kind_code == KINDS.index(q.kind) + 1
        if q.tags:
            masks["tags"] = self._tag_mask(q.tags)
        if q.key is not None:
            try:
                tonic, mode = parse_key(q.key)
            except SampleScoutError as exc:
                raise BrowseError(str(exc)) from None
            masks["key"] = self.key_code == _key_code(tonic, mode)
        if q.tempo is not None:
            with np.errstate(invalid="ignore"):
                masks["tempo"] = (self.tempo >= q.tempo[0]) & (self.tempo <= q.tempo[1])
        if q.length is not None:
            with np.errstate(invalid="ignore"):
                masks["length"] = (self.duration >= q.length[0]) & (self.duration <= q.length[1])
        if q.folder is not None:
            inside = q.folder.rstrip(os.sep) + os.sep
            codes = np.fromiter(((f + os.sep).startswith(inside) for f in self.folders),
                                dtype=bool, count=len(self.folders))
            masks["folder"] = codes[self.folder_code] if len(self.folders) else np.zeros(0, bool)
        if q.favourites:
            masks["favourites"] = self.favourite
        if q.collection is not None:
            masks["collection"] = self.collections[self.collection_id(q.collection)][1]
        return masks

    def query(self, q: BrowseQuery) -> BrowseResult:
        """The rows ``q`` accepts, sorted, with facet counts. Each facet counts the rows
        every other filter accepts (so a chosen kind still shows the other kinds' counts)."""
        t0 = time.perf_counter()
        masks = self._filter_masks(q)
        n = len(self)
        mask = _all(masks.values(), n)
        order = self.order(q.sort, q.descending)
        rows = order[mask[order]]
        total = len(rows)
        if q.limit is not None:
            rows = rows[:q.limit]
        facets = self._facets(masks, n) if q.facets else {}
        return BrowseResult(rows=rows, total=total, facets=facets,
                            elapsed_ms=(time.perf_counter() - t0) * 1e3)

    def _facets(self, masks: dict[str, np.ndarray], n: int) -> dict:
        def without(name: str) -> np.ndarray:
            return _all((m for k, m in masks.items() if k != name), n)

        out: dict[str, list] = {}
        bits = self.tag_bits[without("tags")]
        counts = [(tag, int(np.count_nonzero(bits & np.uint64(1 << i))))
                  for tag, i in self.tag_bit.items()]
        out["tags"] = [(t, t, c) for t, c in sorted(counts, key=lambda tc: -tc[1]) if c]
        kinds = np.bincount(self.kind_code[without("kind")], minlength=len(KINDS) + 1)
        out["kind"] = [(k, k, int(kinds[i + 1])) for i, k in enumerate(KINDS) if kinds[i + 1]]
        keys = self.key_code[without("key")]
        keys = np.bincount(keys[keys >= 0], minlength=24)
        out["key"] = [(key_label(c), key_label(c), int(keys[c]))
                      for c in np.argsort(-keys, kind="stable") if keys[c]]
        for name, codes, buckets in (("tempo", self.tempo_bucket, TEMPO_BUCKETS),
                                     ("length", self.length_bucket, LENGTH_BUCKETS)):
            sel = codes[without(name)]
            counts = np.bincount(sel[sel >= 0], minlength=len(buckets))
            out[name] = [((low, high), label, int(counts[i]))
                         for i, (label, low, high) in enumerate(buckets) if counts[i]]
        folders = np.bincount(self.folder_code[without("folder")], minlength=len(self.folders))
        top = np.argsort(-folders, kind="stable")[:FOLDER_FACET_SIZE]
        out["folder"] = [(self.folders[c], self.folder_labels[c], int(folders[c]))
                         for c in top if folders[c]]
        return out


def _prefix_hits(vocabulary: list[str], postings: list[np.ndarray], prefix: str):
    """The postings of every word starting with ``prefix``, joined (None: no word)."""
    lo = bisect.bisect_left(vocabulary, prefix)
    hi = bisect.bisect_left(vocabulary, prefix + "\U0010ffff", lo)
    if hi == lo:
        return None
    return postings[lo] if hi - lo == 1 else np.concatenate(postings[lo:hi])


def _all(masks, n: int) -> np.ndarray:
    result = None
    for m in masks:
        result = m.copy() if result is None else np.logical_and(result, m, out=result)
    return result if result is not None else np.ones(n, dtype=bool)


def parse_text(text: str) -> tuple[list[tuple[str, str | None]], list[tuple[str, str | None]]]:
    """Search text -> (included terms, excluded terms), each (term, the thesaurus's tag
    for it or None). Two adjacent words that the thesaurus reads as one tag ("open hat")
    become one term. Any thread."""
    included: list[tuple[str, str | None]] = []
    excluded: list[tuple[str, str | None]] = []
    words = text.split()
    i = 0
    while i < len(words):
        word = words[i]
        target = included
        if word.startswith("-"):
            word, target = word[1:], excluded
            if not word:
                i += 1
                continue
        pair_tag = None
        if i + 1 < len(words) and not words[i + 1].startswith("-"):
            pair = f"{word} {words[i + 1]}"
            pair_tag = canonical(pair)
        if pair_tag is not None:
            target.append((pair, pair_tag))
            i += 2
            continue
        target.append((word, canonical(word)))
        i += 1
    return included, excluded


def build_snapshot(catalog) -> BrowseSnapshot:
    """Every indexed file of ``catalog`` with its tags, sound analysis, favourite mark and
    collections. On the catalog's thread."""
    if hasattr(catalog, "browse_columns"):
        columns = catalog.browse_columns(FILTER_MIN_CONFIDENCE, ALWAYS_COUNTED_TAGS)
        columns["paths"] = [py_path(p) for p in columns["paths"]]
    elif hasattr(catalog, "indexed_files"):     # a catalog without bulk reads: file by file
        columns = _columns_by_file(catalog)
    else:
        raise BrowseError("this library's shared catalogue cannot be browsed yet: the browser "
                          "reads a machine's own catalog")
    favourites = catalog.favourites() if hasattr(catalog, "favourites") else set()
    collections = {}
    if hasattr(catalog, "collections"):
        collections = {c.id: (c.name, catalog.collection_file_ids(c.id))
                       for c in catalog.collections()}
    return BrowseSnapshot(**columns, favourites=favourites, collections=collections,
                          roots=catalog.roots())


def _columns_by_file(catalog) -> dict:
    rows = catalog.indexed_files()
    ids = [r.id for r in rows]
    tags = catalog.tags(ids)
    sounds = catalog.sounds(ids)

    def sound(file_id, name):
        s = sounds.get(file_id)
        return None if s is None else getattr(s, name)

    return {"file_ids": ids, "paths": [r.path for r in rows], "kinds": [r.kind for r in rows],
            "durations": [r.duration for r in rows],
            "tags": [[t.tag for t in tags.get(i, ()) if counts_for_filter(t)] for i in ids],
            "tempo": [sound(i, "tempo_bpm") for i in ids],
            "keys": [(sound(i, "key_tonic"), sound(i, "key_mode")) for i in ids],
            "loudness": [sound(i, "loudness_db") for i in ids]}


def bucket_range(value: tuple[float, float]) -> tuple[float, float]:
    """A facet bucket's (low, high) with high exclusive -> the inclusive range a
    ``BrowseQuery`` filters by, so the filter returns what the facet counted. Any thread."""
    low, high = value
    return float(low), float(np.nextafter(high, -np.inf)) if math.isfinite(high) else math.inf


def parse_range(text: str, what: str) -> tuple[float, float]:
    """"118-122" or "120" -> (low, high); BrowseError otherwise. Any thread."""
    low, sep, high = str(text).partition("-")
    try:
        span = (float(low), float(high if sep else low))
    except ValueError:
        raise BrowseError(f"{what} wants LO-HI, e.g. 118-122, not {text!r}") from None
    if span[0] > span[1] or span[0] < 0:
        raise BrowseError(f"{what} wants LO-HI with 0 <= LO <= HI, not {text!r}")
    return span
