"""The compact index form (app.compact_vectors, app.index formats 2-4) against real hnswlib,
vectors of the shipped encoder for real Debian samples, real files and a real SQLite catalog."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import app.index as index_module
import zlib

from app.compact_vectors import ExactRows, FileRows, Projection, RowSketch
from app.decode import read_mono
from app.hnsw_state import read_graph
from app.index import IndexFormatError, VectorIndex
from app.region_check import crc32_combine
from app.library import Library
from models.encoder import MODEL_SAMPLE_RATE, Encoder
from tests.conftest import SONIC_PI, require
from tests.test_library_index import store_files

MODEL = "test-encoder-v1"
NOISE = 0.25            # as bench/million_library.py moves its copies of real vectors
COPIES_PER_FILE = 2     # vectors per file


@pytest.fixture(scope="module")
def real_vectors() -> np.ndarray:
    """One vector per block of 40 Sonic Pi samples, from the shipped encoder."""
    folder = require(SONIC_PI, "sonic-pi-samples")
    encoder = Encoder(threads=1)
    rows = []
    for path in sorted(folder.glob("*.flac"))[:40]:
        rows.extend(encoder.embed_clip(read_mono(path, MODEL_SAMPLE_RATE, max_seconds=5)))
    vectors = np.asarray(rows, dtype=np.float32)
    assert len(vectors) >= 40 and vectors.shape[1] == encoder.dim
    return vectors


def moved(rng: np.random.Generator, base: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct real-like vectors: real ones moved by a little gaussian noise."""
    picked = base[rng.integers(0, len(base), n)]
    rows = picked + rng.standard_normal(picked.shape).astype(np.float32) * NOISE / np.sqrt(
        base.shape[1])
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def real_like(real_vectors):
    """4,000 vectors, two a file, around the real ones; 60 queries around them too."""
    rng = np.random.default_rng(3)
    vectors = moved(rng, real_vectors, 4000)
    vector_ids = np.arange(len(vectors), dtype=np.int64) * 3 + 7     # sparse, like a catalog's
    file_ids = np.arange(len(vectors), dtype=np.int64) // COPIES_PER_FILE + 1
    return vector_ids, file_ids, vectors, moved(rng, real_vectors, 60)


@pytest.fixture(scope="module")
def compact(real_like) -> VectorIndex:
    vector_ids, file_ids, vectors, _ = real_like
    index = VectorIndex.build(vectors.shape[1], MODEL, vector_ids, file_ids, vectors,
                              num_threads=1, projection=Projection.fit(vectors))
    assert index.compact and index.graph_dim == 64
    return index


def exact_top_files(vectors, file_ids, query, k):
    scores = vectors @ (query / np.linalg.norm(query))
    best: dict[int, float] = {}
    for i in np.argsort(-scores):
        best.setdefault(int(file_ids[i]), float(scores[i]))
        if len(best) == k:
            break
    return list(best)


def file_regions(path: Path) -> tuple[bytes, dict, dict[str, tuple[int, int]]]:
    """(file bytes, header, {region: (offset, length)}) of a saved index file, in the
    order its format lays them out (the graph right after the projection from format 4)."""
    data = path.read_bytes()
    (hlen,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12:12 + hlen])
    names = ["projection", "hnsw", "mapping", "exact", "sketch"]
    if header["format_version"] < 4:
        names = ["mapping", "projection", "exact", "sketch", "hnsw"]
    regions, at = {}, 12 + hlen
    for name in names:
        regions[name] = (at, header.get(f"{name}_bytes", 0))
        at += regions[name][1]
    assert at == len(data)
    return data, header, regions


def exact_region(path: Path) -> tuple[int, int]:
    """(offset, length) of the exact rows in a saved index file."""
    return file_regions(path)[2]["exact"]


def sketch_region(path: Path) -> tuple[int, int]:
    """(offset, length) of the sketch (int8 codes, then scales) in a saved index file."""
    return file_regions(path)[2]["sketch"]


def graph_region(path: Path) -> tuple[int, int]:
    return file_regions(path)[2]["hnsw"]


def rewrite(path: Path, header: dict, payload: bytes) -> None:
    header["payload_crc32"] = f"{zlib.crc32(payload) & 0xFFFFFFFF:08x}"
    text = json.dumps(header).encode()
    rewritten = path.with_suffix(".older")
    rewritten.write_bytes(b"SSCVIDX\n" + struct.pack("<I", len(text)) + text + payload)
    os.replace(rewritten, path)    # as a save does: an index loaded before keeps its file


def as_format_3(path: Path) -> None:
    """Rewrite a saved index as format 3 wrote it: the graph last, as hnswlib's own
    save_index stream."""
    data, header, regions = file_regions(path)
    if header["format_version"] == 3:
        return
    at, length = regions["hnsw"]
    graph, _, _ = read_graph(io.BytesIO(data[at:at + length]).readinto, length, 0, space="cosine",
                          dim=header["graph_dim"], M=header["M"],
                          ef_construction=header["ef_construction"], count=header["n_stored"])
    stream = path.with_suffix(".stream")
    graph.save_index(str(stream))
    hnsw = stream.read_bytes()
    stream.unlink()
    payload = b"".join(data[o:o + n] for o, n in (regions[r] for r in ("mapping", "projection", "exact", "sketch")))
    header.update(format_version=3, hnsw_bytes=len(hnsw))
    rewrite(path, header, payload + hnsw)


def as_format_2(path: Path) -> None:
    """Rewrite a saved compact index as format 2 wrote it: no sketch region, no sketch_bytes."""
    as_format_3(path)
    data, header, regions = file_regions(path)
    start, length = regions["sketch"]
    payload = data[regions["mapping"][0]:start] + data[start + length:]
    del header["sketch_bytes"]
    header.update(format_version=2)
    rewrite(path, header, payload)


def test_compact_search_agrees_with_exact_search(real_like, compact):
    vector_ids, file_ids, vectors, queries = real_like
    found = []
    for query in queries:
        truth = exact_top_files(vectors, file_ids, query, 10)
        hits = compact.search(query, k=10)
        assert len(hits) == 10 and len({h.file_id for h in hits}) == 10
        found.append(len({h.file_id for h in hits} & set(truth)) / 10)
        # scores are the exact cosine of the reported vector (float16 rows)
        for hit in hits[:3]:
            row = vectors[np.flatnonzero(vector_ids == hit.vector_id)[0]]
            assert hit.score == pytest.approx(float(row @ query / np.linalg.norm(query)), abs=2e-3)
    assert np.mean(found) >= 0.95


def test_compact_index_finds_each_vector_itself(real_like, compact):
    vector_ids, file_ids, vectors, _ = real_like
    for i in range(0, len(vectors), 97):
        top = compact.search(vectors[i], k=1)[0]
        assert top.file_id == file_ids[i]
        assert top.score == pytest.approx(1.0, abs=2e-3)
    assert compact.self_recall() >= 0.99


def test_save_load_round_trip_of_a_compact_index(tmp_path, real_like, compact):
    vector_ids, file_ids, vectors, queries = real_like
    path = tmp_path / "library.idx"
    compact.generation = "g1"
    compact.save(path)
    header_len = struct.unpack("<I", path.read_bytes()[8:12])[0]
    header = json.loads(path.read_bytes()[12:12 + header_len])
    assert (header["format_version"], header["graph_dim"]) == (4, 64)
    assert header["exact_bytes"] == len(vectors) * vectors.shape[1] * 2
    assert header["sketch_bytes"] == len(vectors) * (vectors.shape[1] + 4)

    loaded = VectorIndex.load(path, dim=vectors.shape[1], model_id=MODEL, generation="g1")

    assert loaded.compact and len(loaded) == len(vectors)
    for query in queries[:20]:
        before = compact.search(query, k=10)
        after = loaded.search(query, k=10)
        assert [h.file_id for h in after] == [h.file_id for h in before]
        assert [h.score for h in after] == pytest.approx([h.score for h in before], abs=1e-6)

    # vectors added after the load join the ones read from the file and survive the next save
    extra = moved(np.random.default_rng(9), vectors, 3)
    loaded.add(np.array([1, 2, 4]), np.array([90_001, 90_001, 90_002]), extra)
    loaded.remove_files([int(file_ids[0])])
    assert loaded.search(extra[2], k=1)[0].file_id == 90_002
    loaded.save(path)
    again = VectorIndex.load(path, dim=vectors.shape[1], model_id=MODEL)
    assert again.search(extra[0], k=1)[0].file_id == 90_001
    assert int(file_ids[0]) not in {h.file_id for h in again.search(vectors[0], k=10)}
    assert len(again) == len(vectors) + 3 - COPIES_PER_FILE


def test_a_loaded_index_reads_its_exact_rows_without_mapping_its_file(tmp_path, real_like,
                                                                       compact):
    """A map of the rows counted as the process's memory (the kernel maps whole large
    folios): a loaded index reads the rows a search needs and maps nothing of its file."""
    _, _, vectors, queries = real_like
    path = tmp_path / "library.idx"
    compact.save(path)
    loaded = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    for query in queries:
        loaded.search(query, k=10)
    mapped = [line for line in Path("/proc/self/maps").read_text().splitlines()
              if line.endswith(str(path))]
    assert mapped == []
    assert [h.file_id for h in loaded.search(queries[0], k=10)] == \
        [h.file_id for h in compact.search(queries[0], k=10)]


def test_an_index_file_cut_short_after_loading_fails_a_search_with_a_clear_error(tmp_path,
                                                                                 real_like,
                                                                                 compact):
    """Cut in place under a loaded index (another program, a full disk): a search raises
    OSError naming the cause, where a memory map would have killed the process (SIGBUS)."""
    _, _, _, queries = real_like
    path = tmp_path / "library.idx"
    compact.save(path)
    loaded = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    start, _ = exact_region(path)
    with open(path, "r+b") as cut:
        cut.truncate(start + 512)
    with pytest.raises(OSError, match="ended inside its exact rows"):
        for query in queries:
            loaded.search(query, k=10)


def test_a_loaded_index_ranks_candidates_by_its_sketch_and_reads_only_the_leading_rows(
        tmp_path, monkeypatch, real_like, compact):
    """Reading a row from the file costs a system call; the int8 sketch in RAM ranks the
    graph's candidates and only the rows that lead are read, their scores exact."""
    vector_ids, _, vectors, queries = real_like
    path = tmp_path / "library.idx"
    compact.save(path)
    loaded = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    assert loaded.exact_rows_damage(wait=True) is None and loaded.sketched   # read, checked
    read = []
    take = FileRows.take
    monkeypatch.setattr(FileRows, "take", lambda self, at: read.append(len(at)) or take(self, at))
    for query in queries[:20]:
        hits = loaded.search(query, k=10)
        assert [h.file_id for h in hits] == [h.file_id for h in compact.search(query, k=10)]
        for hit in hits:
            row = vectors[np.flatnonzero(vector_ids == hit.vector_id)[0]]
            assert hit.score == pytest.approx(float(row @ query / np.linalg.norm(query)), abs=2e-3)
    assert len(read) == 20 and max(read) <= index_module.EXACT_LEAD_PER_K * 10 + 8


def test_a_compact_search_of_many_blocks_in_two_halves_answers_as_one_search(
        tmp_path, monkeypatch, real_like, compact):
    """Each half of the blocks gets its own graph candidates and sketch scores on its own
    thread; merged, the answer is the one search's."""
    _, _, _, queries = real_like
    path = tmp_path / "library.idx"
    compact.save(path)
    loaded = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    assert loaded.exact_rows_damage(wait=True) is None and loaded.sketched
    threads = set()
    block_scores = ExactRows.block_scores
    monkeypatch.setattr(ExactRows, "block_scores", lambda self, ids, q: threads.add(
        threading.current_thread().name) or block_scores(self, ids, q))
    for blocks in (queries[:2], queries[10:17]):
        monkeypatch.setattr(index_module, "SPLIT_FROM_BLOCKS", 10_000)
        one_search = loaded.search(blocks, k=10)
        monkeypatch.setattr(index_module, "SPLIT_FROM_BLOCKS", 2)
        assert loaded.search(blocks, k=10) == one_search
    assert any(name.startswith("index-search") for name in threads)


def test_a_sketch_scores_real_vectors_within_a_few_thousandths(real_like):
    _, _, vectors, queries = real_like
    codes, scales = RowSketch.quantise(vectors.astype(np.float16))
    sketch = RowSketch(codes, scales)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = (vectors.astype(np.float16).astype(np.float32) @ q[:3].T).max(axis=1)
    approx = sketch.scores(np.arange(len(vectors)), q[:3].astype(np.float32))
    error = np.abs(approx - exact)
    assert error.max() < 3e-3 and error.mean() < 5e-4


def test_a_format_2_file_loads_with_a_sketch_made_from_its_rows(tmp_path, real_like, compact):
    _, _, _, queries = real_like
    path = tmp_path / "library.idx"
    compact.save(path)
    current = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    as_format_2(path)

    older = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)

    assert (current.saved_format, older.saved_format) == (4, 2)
    for query in queries[:20]:
        assert [(h.file_id, h.score) for h in older.search(query, k=10)] == \
            [(h.file_id, h.score) for h in current.search(query, k=10)]


@pytest.mark.parametrize("where", [0.0, 0.5, 0.999])
def test_a_corrupt_sketch_is_found_after_load_never_used_and_never_saved_again(
        tmp_path, real_like, compact, where):
    """The sketch is read after the load, on a thread: a damaged one is never attached, so
    searches score every candidate by its exact row, and the file is rebuilt."""
    _, _, _, queries = real_like
    path = tmp_path / "library.idx"
    compact.save(path)
    intact = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    start, length = sketch_region(path)
    data = bytearray(path.read_bytes())
    data[start + int(length * where)] ^= 0x21
    path.write_bytes(bytes(data))

    damaged = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    assert "sketch fail their checksum" in damaged.exact_rows_damage(wait=True)
    assert damaged.sketched is False
    for query in queries[:10]:
        assert [h.file_id for h in damaged.search(query, k=10)] == \
            [h.file_id for h in intact.search(query, k=10)]
    with pytest.raises(IndexFormatError, match="rebuild"):
        damaged.save(tmp_path / "copy.idx")
    with pytest.raises(IndexFormatError, match="sketch fail their checksum"):
        VectorIndex.load(path, dim=compact.dim, model_id=MODEL)


def test_a_search_before_the_sketch_is_read_scores_by_the_exact_rows(
        tmp_path, monkeypatch, real_like, compact):
    """Until its sketch is read (a thread of the load's) a loaded index answers from the
    exact rows, with the same files; then the sketch ranks the candidates."""
    _, _, _, queries = real_like
    path = tmp_path / "library.idx"
    compact.save(path)
    held = threading.Event()
    attach = ExactRows.attach_sketch
    monkeypatch.setattr(ExactRows, "attach_sketch",
                        lambda self, sketch: held.wait(30) and attach(self, sketch))
    loaded = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    assert loaded.sketched is False
    before = [[h.file_id for h in loaded.search(query, k=10)] for query in queries[:10]]
    held.set()
    assert loaded.exact_rows_damage(wait=True) is None and loaded.sketched is True
    assert before == [[h.file_id for h in compact.search(query, k=10)] for query in queries[:10]]


def test_a_wrong_crc_for_the_exact_rows_is_a_format_error_at_load(tmp_path, compact):
    path = tmp_path / "library.idx"
    compact.save(path)
    data = path.read_bytes()
    (hlen,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12:12 + hlen])
    wrong = f"{int(header['exact_crc32'], 16) ^ 1:08x}"
    text = data[12:12 + hlen].replace(header["exact_crc32"].encode(), wrong.encode())
    path.write_bytes(data[:12] + text + data[12 + hlen:])
    with pytest.raises(IndexFormatError, match="checksum"):
        VectorIndex.load(path, dim=compact.dim, model_id=MODEL)


@pytest.mark.parametrize("where", [0.0, 0.5, 0.999])
def test_corrupt_exact_rows_are_found_after_load_and_never_saved_again(
        tmp_path, real_like, compact, where):
    _, _, _, queries = real_like
    path = tmp_path / "library.idx"
    compact.save(path)
    intact = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    assert intact.exact_rows_damage(wait=True) is None
    start, length = exact_region(path)
    data = bytearray(path.read_bytes())
    data[start + int(length * where)] ^= 0x21
    path.write_bytes(bytes(data))

    damaged = VectorIndex.load(path, dim=compact.dim, model_id=MODEL)   # the rows wait
    assert "exact rows fail their checksum" in damaged.exact_rows_damage(wait=True)
    # searches go on, ranked by the sketch alone (checked at load), as the intact one's are
    for query in queries[:10]:
        got = [h.file_id for h in damaged.search(query, k=10)]
        assert len(got) == 10 and len(set(got) & {h.file_id for h in intact.search(query, k=10)}) >= 8
    with pytest.raises(IndexFormatError, match="rebuild"):
        damaged.save(tmp_path / "copy.idx")
    assert not (tmp_path / "copy.idx").exists()
    # the note beside the file makes the next load of this same file rebuild at once...
    with pytest.raises(IndexFormatError, match="exact rows fail their checksum"):
        VectorIndex.load(path, dim=compact.dim, model_id=MODEL)
    # ...until a save replaces it
    intact.save(path)
    assert not path.with_name(path.name + ".damaged").exists()
    assert VectorIndex.load(path, dim=compact.dim, model_id=MODEL).exact_rows_damage(wait=True) is None


def test_a_truncated_exact_region_is_a_format_error(tmp_path, compact):
    path = tmp_path / "library.idx"
    compact.save(path)
    start, length = exact_region(path)
    path.write_bytes(path.read_bytes()[:start + length // 2])
    with pytest.raises(IndexFormatError, match="truncated"):
        VectorIndex.load(path, dim=compact.dim, model_id=MODEL)


def test_a_header_whose_sizes_do_not_fit_a_compact_graph_is_a_format_error(tmp_path, compact):
    path = tmp_path / "library.idx"
    compact.save(path)
    data = path.read_bytes()
    (hlen,) = struct.unpack("<I", data[8:12])
    text = data[12:12 + hlen].replace(b'"graph_dim": 64', b'"graph_dim": 32')
    path.write_bytes(data[:12] + text + data[12 + hlen:])
    with pytest.raises(IndexFormatError, match="projection or exact rows"):
        VectorIndex.load(path, dim=compact.dim, model_id=MODEL)


def test_a_format_1_file_still_loads(tmp_path, real_like):
    vector_ids, file_ids, vectors, queries = real_like
    full = VectorIndex.build(vectors.shape[1], MODEL, vector_ids[:600], file_ids[:600],
                             vectors[:600], num_threads=1)
    path = tmp_path / "library.idx"
    full.save(path)
    as_format_3(path)        # hnswlib's own stream of the graph, as format 1 held it
    data = path.read_bytes()
    (hlen,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12:12 + hlen])
    assert (header["projection_bytes"], header["exact_bytes"]) == (0, 0)
    # A format 1 file: the same payload under a header without the format 2 fields.
    for key in ("graph_dim", "projection_bytes", "exact_bytes"):
        del header[key]
    header["format_version"] = 1
    old = json.dumps(header).encode()
    path.write_bytes(data[:8] + struct.pack("<I", len(old)) + old + data[12 + hlen:])

    loaded = VectorIndex.load(path, dim=vectors.shape[1], model_id=MODEL)

    assert not loaded.compact and len(loaded) == 600
    for query in queries[:10]:
        assert [h.file_id for h in loaded.search(query, k=5)] == [
            h.file_id for h in full.search(query, k=5)]


def test_exact_rows_added_later_win_over_the_base():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(5, 8)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    rows = ExactRows(8, np.array([2, 4, 6, 8, 10]), base.astype(np.float16))
    newer = rng.normal(size=(2, 8)).astype(np.float32)
    rows.put(np.array([4, 11]), newer)
    got = rows.rows(np.array([11, 2, 4])).astype(np.float32)
    unit = newer / np.linalg.norm(newer, axis=1, keepdims=True)
    assert np.allclose(got, [unit[1], base[0], unit[0]], atol=2e-3)
    assert len(rows) == 6
    with pytest.raises(KeyError):
        rows.rows(np.array([3]))


def test_a_library_rebuild_turns_compact_past_the_threshold(monkeypatch, isolated_library_dir,
                                                           real_vectors):
    monkeypatch.setattr(index_module, "COMPACT_FROM_VECTORS", 1000)
    with Library(isolated_library_dir) as library:
        model_id, dim = library.encoder.model_id, library.encoder.dim
        vectors = moved(np.random.default_rng(4), real_vectors, 1200)
        store_files(library, vectors)
        ids, file_ids, stored = next(library.catalog.iter_vectors(model_id, dim=dim, batch=2000))
        full = VectorIndex(dim, model_id, capacity=2000)
        full.add(ids[:900], file_ids[:900], stored[:900])
        assert not full.needs_rebuild()
        full.add(ids[900:], file_ids[900:], stored[900:])
        assert full.needs_rebuild()          # large enough to be compact, and it is not

        index = library.index                # no index file yet: built from the catalog

        assert "built from the catalog" in library.index_note
        assert index.compact and len(index) == 1200 and not index.needs_rebuild()
        assert library.index_self_recall >= 0.99
    with Library(isolated_library_dir) as reopened:
        index = reopened.index
        assert reopened.index_note == "loaded" and index.compact
        top = index.search(vectors[1000], k=1)[0]
        assert top.file_id == int(file_ids[1000]) and top.score == pytest.approx(1.0, abs=2e-3)
    # a file of the previous format loads, and is saved again in the current one
    as_format_2(reopened.index_path)
    with Library(isolated_library_dir) as upgraded:
        assert upgraded.index.saved_format == 2
        assert "saved again as 4" in upgraded.index_note
    with Library(isolated_library_dir) as reopened:
        assert reopened.index.saved_format == 4 and reopened.index_note == "loaded"
    as_format_3(reopened.index_path)
    with Library(isolated_library_dir) as upgraded:
        assert upgraded.index.saved_format == 3
        assert "loaded (format 3, saved again as 4)" == upgraded.index_note
        top = upgraded.index.search(vectors[1000], k=1)[0]
        assert top.file_id == int(file_ids[1000])
    with Library(isolated_library_dir) as reopened:
        assert reopened.index.saved_format == 4 and reopened.index_note == "loaded"
    # a format 4 file from before the sketch had its own checksum reads its sketch at load
    data = reopened.index_path.read_bytes()
    (hlen,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12:12 + hlen])
    del header["sketch_crc32"]
    text = json.dumps(header).encode()
    reopened.index_path.write_bytes(data[:8] + struct.pack("<I", len(text)) + text + data[12 + hlen:])
    with Library(isolated_library_dir) as upgraded:
        assert upgraded.index.sketched and upgraded.index.needs_resave
        assert upgraded.index_note == "loaded (saved again with its sketch's own checksum)"
    with Library(isolated_library_dir) as reopened:
        assert not reopened.index.needs_resave and reopened.index_note == "loaded"
        assert reopened.index.exact_rows_damage(wait=True) is None and reopened.index.sketched


def test_a_library_whose_exact_rows_are_found_damaged_rebuilds_them_from_the_catalog(
        monkeypatch, isolated_library_dir, real_vectors):
    monkeypatch.setattr(index_module, "COMPACT_FROM_VECTORS", 1000)
    with Library(isolated_library_dir) as library:
        vectors = moved(np.random.default_rng(5), real_vectors, 1100)
        store_files(library, vectors)
        assert library.index.compact
    start, length = exact_region(library.index_path)
    data = bytearray(library.index_path.read_bytes())
    data[start + length // 3] ^= 0x40
    library.index_path.write_bytes(bytes(data))

    with Library(isolated_library_dir) as damaged:
        index = damaged.index
        assert damaged.index_note == "loaded"             # found after load, not during it
        assert index.exact_rows_damage(wait=True) is not None
        assert damaged.save_index()                        # rebuilt, not copied
        assert any("rebuilt from the catalog" in p for p in damaged.problems)
    with Library(isolated_library_dir) as reopened:
        assert reopened.index.exact_rows_damage(wait=True) is None
        assert reopened.index_note == "loaded"
        assert reopened.index.search(vectors[700], k=1)[0].score == pytest.approx(1.0, abs=2e-3)
    # found by a reader that could not save: the next open rebuilds at once
    data = bytearray(library.index_path.read_bytes())
    data[start + length // 2] ^= 0x40
    library.index_path.write_bytes(bytes(data))
    with Library(isolated_library_dir) as reader:
        assert reader.index.exact_rows_damage(wait=True) is not None
    with Library(isolated_library_dir) as next_open:
        assert next_open.index.exact_rows_damage(wait=True) is None
        assert "rebuilt from the catalog" in next_open.index_note
        assert "exact rows fail their checksum" in next_open.index_note


@pytest.mark.parametrize("without", [(), ("preadv",), ("preadv", "pread")])
def test_rows_read_from_a_file_are_the_stored_rows_with_each_way_of_reading(tmp_path,
                                                                             monkeypatch,
                                                                             without):
    """preadv (Linux), pread (macOS), a shared position under a lock (Windows)."""
    for name in without:
        monkeypatch.delattr(os, name, raising=False)
    stored = np.random.default_rng(4).standard_normal((50, 8)).astype(np.float16)
    path = tmp_path / "rows.bin"
    path.write_bytes(b"head" + stored.tobytes())
    with open(path, "rb") as src:
        rows = ExactRows.on_file(src, 4, np.arange(10, 60), 8)
    wanted = np.array([12, 13, 14, 40, 11, 59, 10])       # runs and single rows, any order
    assert np.array_equal(rows.rows(wanted), stored[wanted - 10])
    with pytest.raises(KeyError):
        rows.rows(np.array([60]))


@pytest.mark.parametrize("sizes", [(0, 1), (3, 0), (1000, 12345), (7, 1 << 20), (1 << 16, 3)])
def test_crc32_combine_equals_the_crc_of_the_joined_bytes(sizes):
    rng = np.random.default_rng(sum(sizes))
    first, second = (rng.integers(0, 256, size, dtype=np.uint8).tobytes() for size in sizes)
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == \
        zlib.crc32(first + second)
