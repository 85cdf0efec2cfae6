"""The graph region of index format 4 (app.hnsw_state) against real hnswlib graphs: it
answers as the graph it was written from, and a damaged or hostile region is refused with
GraphStateError before hnswlib follows a single link (no crash, no read out of bounds)."""

from __future__ import annotations

import io
import json
import struct

import hnswlib
import numpy as np
import pytest

from app.hnsw_state import GraphStateError, StreamedGraph, read_graph

DIM, M, EF_CONSTRUCTION = 16, 8, 40


def graph_of(tmp_path, n: int, *, deleted=()) -> tuple[hnswlib.Index, bytes]:
    """A real graph of ``n`` vectors (capacity to spare, as a live index has) and its region."""
    rng = np.random.default_rng(n)
    graph = hnswlib.Index(space="cosine", dim=DIM)
    graph.init_index(max_elements=n + 50, M=M, ef_construction=EF_CONSTRUCTION)
    graph.set_num_threads(1)        # the same graph on every run: damage lands where it did
    if n:
        graph.add_items(rng.normal(size=(n, DIM)).astype(np.float32), np.arange(n) * 5 + 2)
    for label in deleted:
        graph.mark_deleted(label)
    stream_path = tmp_path / f"graph{n}.bin"
    graph.save_index(str(stream_path))
    out = io.BytesIO()
    with open(stream_path, "rb") as stream:
        streamed = StreamedGraph(stream, space="cosine", ef=50)
        streamed.write(out.write, 0)
    region = out.getvalue()
    assert len(region) == streamed.region_bytes
    return graph, region


def load(region: bytes, n: int) -> hnswlib.Index:
    graph, _, _ = read_graph(io.BytesIO(region).readinto, len(region), 0, space="cosine",
                          dim=DIM, M=M, ef_construction=EF_CONSTRUCTION, count=n)
    return graph


def parts(region: bytes) -> tuple[dict, int]:
    """The region's numbers and where its arrays begin."""
    (length,) = struct.unpack("<I", region[:4])
    return json.loads(region[4:4 + length]), 4 + length


@pytest.mark.parametrize("n", [0, 1, 300])
def test_a_graph_read_back_answers_as_the_graph_it_was_written_from(tmp_path, n):
    original, region = graph_of(tmp_path, n, deleted=[7] if n > 10 else [])
    loaded = load(region, n)
    assert loaded.element_count == n
    assert sorted(loaded.get_ids_list()) == sorted(original.get_ids_list())
    if n:
        queries = np.random.default_rng(9).normal(size=(20, DIM)).astype(np.float32)
        k = min(10, n - (n > 10))
        original.set_ef(50)
        loaded.set_ef(50)
        assert np.array_equal(loaded.knn_query(queries, k=k)[0], original.knn_query(queries, k=k)[0])
        if n > 10:
            assert 7 not in set(loaded.knn_query(queries, k=k)[0].ravel().tolist())
        # the loaded graph takes new vectors like any other
        loaded.resize_index(n + 5)
        loaded.add_items(np.ones((1, DIM), np.float32), [10_000])
        assert loaded.knn_query(np.ones((1, DIM), np.float32), k=1)[0][0, 0] == 10_000


def _level0_link(region: bytes, n: int, element: int, slot: int) -> int:
    numbers, at = parts(region)
    return at + element * numbers["size_data_per_element"] + 4 + 4 * slot


def _with(region: bytes, position: int, value: bytes) -> bytes:
    return region[:position] + value + region[position + len(value):]


def test_hostile_regions_are_refused_before_hnswlib_reads_them(tmp_path):
    n = 300
    _, region = graph_of(tmp_path, n)
    numbers, at = parts(region)
    size = numbers["size_data_per_element"]
    levels_at = at + n * size
    levels = np.frombuffer(region[levels_at:levels_at + 4 * n], "<i4")
    upper = int(np.flatnonzero(levels > 0)[0])
    links_at = levels_at + 16 * n
    hostile = {
        "a level-0 link past the graph": _with(region, _level0_link(region, n, 3, 0), struct.pack("<I", n + 5)),
        "a level-0 count past its width": _with(region, at + 3 * size, struct.pack("<H", 2 * M + 1)),
        "an upper link past the graph": _with(region, links_at + 4, struct.pack("<I", 2**31)),
        "a level changed": _with(region, levels_at + 4 * upper, struct.pack("<i", 3)),
        "a negative level": _with(region, levels_at + 4 * upper, struct.pack("<i", -1)),
        "an upper link to a vector below its level": _with(
            region, links_at + 4, struct.pack("<I", int(np.flatnonzero(levels == 0)[0]))),
        "two labels on one vector": _with(region, levels_at + 12 * n, struct.pack("<I", 1)),
        "a label that is not the stored one": _with(region, levels_at + 4 * n, struct.pack("<Q", 99_999)),
        "numbers longer than the region": struct.pack("<I", 1 << 30) + region[4:],
        "numbers that are not JSON": _with(region, 4, b"\xff"),
        "truncated": region[:len(region) // 2],
    }
    for key, value in (("size_data_per_element", size + 4), ("max_elements", n + 1),
                       ("M", M + 1), ("enterpoint_node", n), ("mult", 0.5), ("dim", 3),
                       ("enterpoint_node", int(np.flatnonzero(levels < levels.max())[0]))):
        changed = dict(numbers, **{key: value})
        text = json.dumps(changed).encode()
        hostile[f"numbers: {key} {value}"] = struct.pack("<I", len(text)) + text + region[at:]
    for what, bad in hostile.items():
        with pytest.raises(GraphStateError):
            load(bad, n)
            pytest.fail(what)


def test_only_the_links_a_row_counts_must_lie_in_the_graph(tmp_path):
    """A slot past a row's link count is never followed (hnswlib leaves there whatever it
    held), so a value past the graph there loads, and the same value in a counted slot is
    refused: the check's one-pass shortcut must not decide either way on its own."""
    n = 300
    original, region = graph_of(tmp_path, n)
    numbers, at = parts(region)
    size = numbers["size_data_per_element"]
    counts = [struct.unpack_from("<H", region, at + e * size)[0] for e in range(n)]
    element = next(e for e, c in enumerate(counts) if c < 2 * M)
    count = counts[element]
    leftover = _with(region, _level0_link(region, n, element, count), struct.pack("<I", n + 5))
    queries = np.random.default_rng(3).normal(size=(10, DIM)).astype(np.float32)
    original.set_ef(50)
    loaded = load(leftover, n)
    loaded.set_ef(50)
    assert np.array_equal(loaded.knn_query(queries, k=5)[0], original.knn_query(queries, k=5)[0])
    counted = _with(region, _level0_link(region, n, element, count - 1), struct.pack("<I", n + 5))
    with pytest.raises(GraphStateError):
        load(counted, n)


def test_random_damage_is_refused_or_gives_a_graph_never_a_crash(tmp_path):
    """Bytes flipped anywhere: either GraphStateError, or a graph whose searches return
    vectors of the graph (a flip in a vector's numbers leaves a valid graph)."""
    n = 200
    _, region = graph_of(tmp_path, n)
    rng = np.random.default_rng(1)
    refused = 0
    labels = set((np.arange(n) * 5 + 2).tolist())
    query = rng.normal(size=(3, DIM)).astype(np.float32)
    for position in rng.integers(0, len(region), 3000):
        bad = bytearray(region)
        bad[position] ^= 1 << int(rng.integers(0, 8))
        try:
            graph = load(bytes(bad), n)
        except GraphStateError:
            refused += 1
            continue
        found = graph.knn_query(query, k=5)[0]
        assert set(found.ravel().tolist()) <= labels
        graph.resize_index(n + 2)       # and it takes new vectors (links are repaired)
        graph.add_items(np.ones((2, DIM), np.float32), [10**6, 10**6 + 1])
    assert refused > 0
