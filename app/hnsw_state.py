"""An hnswlib graph stored as its plain arrays, and loaded from them without ``load_index``.

hnswlib's ``load_index`` reads its own stream element by element and checks the file's
length once per element (a seek each): 1-3 s for 1.5M vectors, holding the GIL. Its pickle
state is the same graph as five flat arrays and a few numbers; this module writes that state
into an index file's graph region and builds an ``hnswlib.Index`` from it with
``__setstate__``, which copies the arrays in a few hundred milliseconds.

``__setstate__`` trusts its arrays (it copies by their sizes and follows every link), so
``read_graph`` checks everything it hands over against the layout hnswlib 0.8 uses: sizes
from the numbers, every level, every label, every link inside the graph. A damaged or hostile
region is a ``GraphStateError``, never a crash or a read out of bounds.

Region layout (little-endian)::

    slen    uint32  length of the numbers
    numbers slen bytes of UTF-8 JSON: the state's scalars (hnswlib's names)
    data_level0             int8[n * size_data_per_element]
    element_levels          int32[n]
    label_lookup_external   uint64[n]
    label_lookup_internal   uint32[n]
    link_lists              int8[sum(element_levels) * size_links_per_element]

``StreamedGraph`` converts the stream of hnswlib's ``save_index`` into this region with
bounded memory (the level-0 rows are copied in chunks; only the link lists of the upper
levels, about 1 % of the graph at M = 16, are held at once).

Threads: any thread; a ``read_graph`` result is not shared yet.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Callable

import hnswlib
import numpy as np

from engine.errors import SampleScoutError

SERIAL_VERSION = 1            # hnswlib's own ``ser_version`` that this layout mirrors
MAX_LEVEL = 64                # hnswlib's levels grow as log(n)/log(M): far below this
_MAX_NUMBERS_BYTES = 1 << 16
_ARRAYS = (("data_level0", "i1"), ("element_levels", "<i4"), ("label_lookup_external", "<u8"),
           ("label_lookup_internal", "<u4"), ("link_lists", "i1"))
# hnswlib's save_index header: offsetLevel0_, max_elements_, cur_element_count,
# size_data_per_element_, label_offset_, offsetData_ (size_t), maxlevel_ (int),
# enterpoint_node_ (uint32), maxM_, maxM0_, M_ (size_t), mult_ (double), ef_construction_
_STREAM_HEADER = struct.Struct("<6QiI3QdQ")
_NO_NODE = 0xFFFFFFFF
_CHUNK = 8 << 20
# A loading thread gives up the GIL for each read and each CRC and then waits for it behind
# the GUI thread (up to the 5 ms switch interval): few large chunks, not many small ones.
READ_CHUNK_BYTES = 64 << 20
_INTS = ("ser_version", "dim", "num_threads", "seed", "offset_level0", "max_elements",
         "cur_element_count", "size_data_per_element", "label_offset", "offset_data",
         "max_level", "enterpoint_node", "max_M", "max_M0", "M", "ef_construction", "ef",
         "size_links_per_element")
_BOOLS = ("index_inited", "ep_added", "normalize", "has_deletions")


class GraphStateError(SampleScoutError):
    """The graph region does not hold a graph this module can hand to hnswlib."""


class StreamedGraph:
    """hnswlib's ``save_index`` stream (an open binary file) seen as this module's region:
    ``region_bytes`` is known before ``write`` copies it. Reads the stream's header and its
    link lists (the small part) on creation."""

    def __init__(self, stream, *, space: str, ef: int):
        self._stream = stream
        raw = stream.read(_STREAM_HEADER.size)
        if len(raw) != _STREAM_HEADER.size:
            raise GraphStateError("hnswlib's graph stream is truncated")
        (offset_level0, _, n, size, label_offset, offset_data, max_level, entry, max_m, max_m0,
         m, mult, ef_construction) = _STREAM_HEADER.unpack(raw)
        self.n, self.size = n, size
        self._level0_at = stream.tell()
        stream.seek(n * size, 1)
        self._levels, self._links = _link_lists(stream.read(), n, 4 * max_m + 4)
        self._label_offset = label_offset
        self.numbers = {
            "ser_version": SERIAL_VERSION, "space": space, "dim": (size - offset_data - 8) // 4,
            "index_inited": True, "ep_added": n > 0, "normalize": space == "cosine",
            "num_threads": 1, "seed": 100, "offset_level0": offset_level0, "max_elements": n,
            "cur_element_count": n, "size_data_per_element": size, "label_offset": label_offset,
            "offset_data": offset_data, "max_level": max_level, "enterpoint_node": entry,
            "max_M": max_m, "max_M0": max_m0, "M": m, "mult": mult,
            "ef_construction": ef_construction, "ef": int(ef), "has_deletions": True,
            "size_links_per_element": 4 * max_m + 4,
        }
        self._encoded = json.dumps(self.numbers).encode("utf-8")
        self.region_bytes = 4 + len(self._encoded) + n * size + 16 * n + len(self._links)

    def write(self, write: Callable[[bytes], object], crc: int) -> int:
        """Write the region through ``write``; returns the running CRC-32."""
        def put(part) -> None:
            nonlocal crc
            view = memoryview(part).cast("B")
            crc = zlib.crc32(view, crc)
            write(view)

        put(struct.pack("<I", len(self._encoded)))
        put(self._encoded)
        self._stream.seek(self._level0_at)
        labels = np.empty(self.n, "<u8")
        rows_per_chunk = max(1, _CHUNK // max(1, self.size))
        for at in range(0, self.n, rows_per_chunk):
            count = min(rows_per_chunk, self.n - at)
            chunk = _exactly(self._stream, count * self.size)
            rows = np.frombuffer(chunk, np.uint8).reshape(count, self.size)
            labels[at:at + count] = rows[:, self._label_offset:self._label_offset + 8].copy().view("<u8")[:, 0]
            put(chunk)
        put(self._levels.astype("<i4"))
        put(labels)
        put(np.arange(self.n, dtype="<u4"))
        put(self._links)
        return crc


def _link_lists(section: bytes, n: int, per_level: int) -> tuple[np.ndarray, bytes]:
    """Levels and concatenated upper-level link lists of the stream's last part: for each
    element a uint32 byte length, then that many bytes. Every length is a whole number of
    words, so the section is a word array; runs of zero words are elements with no upper
    level and are skipped at once (only the few elements that have one cost a step)."""
    if len(section) % 4:
        raise GraphStateError("hnswlib's link lists are not whole words")
    words = np.frombuffer(section, "<u4")
    nonzero = np.flatnonzero(words)
    levels = np.zeros(n, np.int32)
    lists = []
    word, element = 0, 0
    while element < n:
        k = int(np.searchsorted(nonzero, word))
        at = int(nonzero[k]) if k < len(nonzero) else len(words)
        if element + (at - word) >= n:      # the elements left have no upper level
            word, element = word + (n - element), n
            break
        element += at - word                # empty elements before the next listed one
        if at >= len(words):
            raise GraphStateError("hnswlib's link lists are truncated")
        length = int(words[at])
        if length % per_level or at + 1 + length // 4 > len(words):
            raise GraphStateError("hnswlib's link list size is not whole levels")
        levels[element] = length // per_level
        lists.append(section[4 * (at + 1):4 * (at + 1) + length])
        word, element = at + 1 + length // 4, element + 1
    if word != len(words):
        raise GraphStateError("hnswlib's link lists do not match the element count")
    return levels, b"".join(lists)


def _exactly(stream, count: int) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise GraphStateError("hnswlib's graph stream is truncated")
    return data


def read_graph(read_into: Callable[[memoryview], int], region_bytes: int, crc: int, *,
               space: str, dim: int, M: int, ef_construction: int, count: int
               ) -> tuple[hnswlib.Index, np.ndarray, int]:
    """Read a region written by ``StreamedGraph.write`` (``region_bytes`` long) through
    ``read_into`` (fills a buffer, returns the bytes read), check it, and return the graph,
    its vectors' labels (uint64, in no particular order) and the running CRC-32. ``space``, ``dim``, ``M``, ``ef_construction`` and ``count``
    are what the index file's header says the graph must be."""
    head = bytearray(4)
    crc = _fill(read_into, memoryview(head), crc)
    (length,) = struct.unpack("<I", head)
    if length > min(_MAX_NUMBERS_BYTES, region_bytes - 4):
        raise GraphStateError(f"graph numbers of {length} bytes: region corrupt")
    raw = bytearray(length)
    crc = _fill(read_into, memoryview(raw), crc)
    try:
        numbers = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GraphStateError("graph numbers are not valid JSON") from exc
    sizes = _check_numbers(numbers, space=space, dim=dim, M=M, ef_construction=ef_construction,
                           count=count)
    fixed = sum(size for name, size in sizes.items() if name != "link_lists")
    links_bytes = region_bytes - 4 - length - fixed
    if links_bytes < 0 or links_bytes % int(numbers["size_links_per_element"]):
        raise GraphStateError(f"graph region of {region_bytes} bytes does not fit {count} vectors")
    sizes["link_lists"] = links_bytes
    arrays = {}
    for name, dtype in _ARRAYS:
        array = np.empty(sizes[name] // np.dtype(dtype).itemsize, dtype=dtype)
        crc = _fill(read_into, memoryview(array).cast("B"), crc)
        arrays[name] = array
    _check_arrays(numbers, arrays)
    state = dict(numbers)
    state.update(arrays)
    graph = hnswlib.Index.__new__(hnswlib.Index)
    try:
        graph.__setstate__((state,))
    except (RuntimeError, ValueError, TypeError, MemoryError) as exc:
        raise GraphStateError(f"hnswlib refused the graph: {exc}") from exc
    graph.set_num_threads(os.cpu_count() or 1)      # as a new hnswlib.Index would have
    return graph, arrays["label_lookup_external"], crc


def read_checked(read_into: Callable[[memoryview], int], view: memoryview, crc: int) -> int:
    """Fill ``view`` (bytes) through ``read_into`` (a file's ``readinto``) and return the
    running CRC-32 over it; EOFError when the source ends first. Shared with ``app.index``."""
    at = 0
    while at < len(view):
        got = read_into(view[at:at + READ_CHUNK_BYTES])
        if not got:
            raise EOFError("file ended before the region did")
        crc = zlib.crc32(view[at:at + got], crc)
        at += got
    return crc


def _fill(read_into: Callable[[memoryview], int], view: memoryview, crc: int) -> int:
    try:
        return read_checked(read_into, view, crc)
    except EOFError as exc:
        raise GraphStateError("graph region truncated") from exc


def _check_numbers(numbers, *, space: str, dim: int, M: int, ef_construction: int,
                   count: int) -> dict[str, int]:
    """The fixed arrays' byte sizes, once the numbers agree with each other, with the index
    header and with hnswlib's layout."""
    if not isinstance(numbers, dict):
        raise GraphStateError("graph numbers are not a JSON object")
    for key in _INTS:
        if type(numbers.get(key)) is not int or (numbers[key] < 0 and key != "max_level"):
            raise GraphStateError(f"graph number {key!r} missing or out of range")
    for key in _BOOLS:
        if type(numbers.get(key)) is not bool:
            raise GraphStateError(f"graph flag {key!r} missing")
    if not isinstance(numbers.get("mult"), float) or not isinstance(numbers.get("space"), str):
        raise GraphStateError("graph numbers 'mult' or 'space' missing")
    n = count
    links0 = 4 * (2 * M) + 4
    wanted = {
        "ser_version": SERIAL_VERSION, "space": space, "dim": dim, "index_inited": True,
        "max_elements": n, "cur_element_count": n, "M": M, "max_M": M, "max_M0": 2 * M,
        "ef_construction": ef_construction, "offset_level0": 0, "offset_data": links0,
        "label_offset": links0 + 4 * dim, "size_data_per_element": links0 + 4 * dim + 8,
        "size_links_per_element": 4 * M + 4, "normalize": space == "cosine",
    }
    for key, value in wanted.items():
        if numbers[key] != value:
            raise GraphStateError(f"graph number {key!r} is {numbers[key]!r}, expected {value!r}")
    if M < 2 or numbers["mult"] != 1.0 / math.log(1.0 * M):
        raise GraphStateError("graph number 'mult' does not match M")
    if n and not (0 <= numbers["max_level"] <= MAX_LEVEL and numbers["enterpoint_node"] < n):
        raise GraphStateError("graph entry point or top level out of range")
    if not n and (numbers["max_level"], numbers["enterpoint_node"]) != (-1, _NO_NODE):
        raise GraphStateError("empty graph with an entry point")
    if numbers["ep_added"] != (n > 0):
        raise GraphStateError("graph entry point flag does not match its size")
    return {"data_level0": n * numbers["size_data_per_element"], "element_levels": 4 * n,
            "label_lookup_external": 8 * n, "label_lookup_internal": 4 * n}


def _check_arrays(numbers: dict, arrays: dict[str, np.ndarray]) -> None:
    """Levels, labels and every link within the graph (what ``__setstate__`` would follow)."""
    n, M = numbers["cur_element_count"], numbers["M"]
    levels = arrays["element_levels"]
    if n and (levels.min() < 0 or int(levels.max()) != numbers["max_level"]):
        raise GraphStateError("graph levels out of range")
    # a search starts at the entry point on the top level and reads its link list there
    if n and int(levels[numbers["enterpoint_node"]]) != numbers["max_level"]:
        raise GraphStateError("graph entry point is not on the top level")
    per_level = numbers["size_links_per_element"]
    if int(levels.sum(dtype=np.int64)) * per_level != arrays["link_lists"].size:
        raise GraphStateError("graph link lists do not match the levels")
    internal = arrays["label_lookup_internal"]
    if n and (internal.max() >= n or np.bincount(internal, minlength=n).max() != 1):
        raise GraphStateError("graph label table is not one entry per vector")
    size = numbers["size_data_per_element"]
    level0 = arrays["data_level0"]
    labels = np.ndarray((n,), "<u8", level0, numbers["label_offset"], (size,)) if n else np.zeros(0, "<u8")
    if not np.array_equal(labels[internal], arrays["label_lookup_external"]):
        raise GraphStateError("graph labels do not match its label table")
    # every field is 4-byte aligned (the sizes are multiples of 4): word views, no copies
    if n:
        _check_links(np.ndarray((n, 1 + 2 * M), "<u4", level0, 0, (size, 4)), 2 * M, n, "level 0")
    upper = arrays["link_lists"]
    if upper.size:
        _check_links(upper.view("<u4").reshape(-1, 1 + M), M, n, "upper levels",
                     levels=levels, row_levels=_upper_row_levels(levels))


def _upper_row_levels(levels: np.ndarray) -> np.ndarray:
    """The level of each upper link list row: the elements with a level above 0 in order,
    each with one row per level, 1 first."""
    counts = levels[levels > 0].astype(np.int64)
    starts = np.cumsum(counts) - counts
    rows = np.arange(int(counts.sum()), dtype=np.int64)
    return (rows - np.repeat(starts, counts) + 1).astype(np.int32)


def _check_links(words: np.ndarray, width: int, n: int, where: str, *,
                 levels: np.ndarray | None = None, row_levels: np.ndarray | None = None) -> None:
    """``words`` (k, 1 + width) uint32: a uint16 count and two flag bytes, then ``width``
    ids; the first ``count`` ids of each row must name vectors of the graph and, with
    ``row_levels``, vectors that reach the row's level (hnswlib reads their link list on it)."""
    step = 1 << 20
    slots = np.arange(width, dtype=np.uint32)[None, :]
    for at in range(0, len(words), step):
        part = words[at:at + step]
        counts = part[:, 0] & 0xFFFF
        if counts.size and counts.max() > width:
            raise GraphStateError(f"graph link count out of range ({where})")
        ids = part[:, 1:]
        # the slots past a row's count hold what they held before (ids of this graph, or
        # zeros): when no slot at all names a vector past the graph, one pass settles it,
        # and only otherwise are the used slots told apart
        beyond = bool(ids.size) and ids.max() >= n
        if not beyond and row_levels is None:
            continue
        used = slots < counts[:, None]
        if beyond and np.any((ids >= n) & used):
            raise GraphStateError(f"graph link out of range ({where})")
        if row_levels is not None:
            ids = ids[used]
            need = np.broadcast_to(row_levels[at:at + step, None], used.shape)[used]
            if np.any(levels[ids] < need):
                raise GraphStateError(f"graph link to a vector below its level ({where})")
