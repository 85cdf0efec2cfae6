"""Tests of app.index against real hnswlib and real files in tmp_path."""

from __future__ import annotations

import errno
import threading

import numpy as np
import pytest

import app.index as index_module
from app.index import DEFAULT_EF_CONSTRUCTION, DEFAULT_M, Hit, IndexFormatError, VectorIndex

DIM = 64
MODEL = "test-encoder-v1"


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def random_unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    return unit(rng.normal(size=(n, dim)))


@pytest.fixture
def library() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2,000 random unit vectors, 4 windows per file (500 files)."""
    rng = np.random.default_rng(7)
    vectors = random_unit(rng, 2000)
    vector_ids = np.arange(2000, dtype=np.int64) + 10_000  # labels need not start at 0
    file_ids = np.arange(2000, dtype=np.int64) // 4 + 1
    return vector_ids, file_ids, vectors


@pytest.fixture
def built(library) -> VectorIndex:
    vector_ids, file_ids, vectors = library
    return VectorIndex.build(DIM, MODEL, vector_ids, file_ids, vectors, num_threads=1)


def test_self_recall_every_vector_finds_its_own_file_first(library, built):
    vector_ids, file_ids, vectors = library
    misses = []
    for vector_id, file_id, vector in zip(vector_ids, file_ids, vectors):
        top = built.search(vector, k=1)[0]
        if top.file_id != file_id or top.vector_id != vector_id:
            misses.append(int(vector_id))
        assert top.score == pytest.approx(1.0, abs=1e-5)
    assert misses == []
    assert len(built) == 2000


def test_search_groups_by_file_and_reports_the_best_window():
    rng = np.random.default_rng(1)
    query = random_unit(rng, 1)[0]
    other = random_unit(rng, 1)[0]
    close = unit(query + 0.3 * other)
    far = unit(query + 3.0 * other)
    medium = unit(query + 0.8 * other)
    index = VectorIndex(DIM, MODEL)
    # file 1: a far window and a close one; file 2: one medium window; plus unrelated files.
    index.add(np.array([1, 2]), np.array([1, 1]), np.stack([far, close]))
    index.add(np.array([3]), np.array([2]), medium[None])
    index.add(np.arange(100, 140), np.arange(100, 140) // 2, random_unit(rng, 40))

    hits = index.search(query, k=5)

    assert all(isinstance(hit, Hit) for hit in hits)
    assert hits[0] == Hit(file_id=1, score=pytest.approx(float(close @ query), abs=1e-5), vector_id=2)
    assert hits[1].file_id == 2 and hits[1].vector_id == 3
    assert len({hit.file_id for hit in hits}) == len(hits) == 5
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_several_query_windows_rank_files_by_their_best_window():
    rng = np.random.default_rng(2)
    vectors = random_unit(rng, 30)
    index = VectorIndex(DIM, MODEL)
    index.add(np.arange(30), np.arange(30) // 3, vectors)  # 10 files of 3 windows
    # window 0 is close to vector 4 (file 1), window 1 is exactly vector 25 (file 8).
    windows = np.stack([unit(vectors[4] + 0.5 * random_unit(rng, 1)[0]), vectors[25]])

    hits = index.search(windows, k=3)

    assert hits[0].file_id == 8 and hits[0].vector_id == 25
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[1].file_id == 1 and hits[1].vector_id == 4
    assert hits[1].score == pytest.approx(float(windows[0] @ vectors[4]), abs=1e-5)


def test_a_query_of_many_blocks_searched_in_two_halves_answers_as_one_search(
        built, monkeypatch):
    rng = np.random.default_rng(11)
    blocks = random_unit(rng, 7)
    searched_on = set()
    knn_rows = VectorIndex._knn

    def noting_thread(self, q, n_ask):
        searched_on.add(threading.current_thread().name)
        return knn_rows(self, q, n_ask)

    monkeypatch.setattr(VectorIndex, "_knn", noting_thread)
    monkeypatch.setattr(index_module, "SPLIT_FROM_BLOCKS", 10_000)
    one_search = built.search(blocks, k=12)
    assert searched_on == {threading.current_thread().name}

    monkeypatch.setattr(index_module, "SPLIT_FROM_BLOCKS", 2)
    two_halves = built.search(blocks, k=12)

    assert two_halves == one_search
    assert any(name.startswith("index-search") for name in searched_on)


def test_k_distinct_files_even_when_one_file_owns_all_nearest_vectors():
    rng = np.random.default_rng(3)
    centres = random_unit(rng, 50)
    # 50 files of 40 tight windows: the 56 nearest vectors of a centre span only two files.
    vectors = unit(np.repeat(centres, 40, axis=0) + 0.02 * rng.normal(size=(2000, DIM)))
    file_ids = np.repeat(np.arange(50), 40)
    index = VectorIndex.build(DIM, MODEL, np.arange(2000), file_ids, vectors, num_threads=1)

    hits = index.search(centres[0], k=10)

    assert len(hits) == 10
    assert len({hit.file_id for hit in hits}) == 10
    assert hits[0].file_id == 0
    everything = index.search(centres[0], k=500)
    assert sorted(hit.file_id for hit in everything) == list(range(50))


def test_empty_and_tiny_index_never_raise():
    index = VectorIndex(DIM, MODEL)
    query = random_unit(np.random.default_rng(4), 1)[0]
    assert index.search(query, k=10) == []
    assert len(index) == 0
    assert index.deleted_fraction == 0.0
    assert not index.needs_rebuild()

    index.add(np.array([5]), np.array([9]), query[None])
    assert [hit.file_id for hit in index.search(query, k=10)] == [9]
    index.remove_files([9])
    assert index.search(query, k=10) == []
    assert index.search(np.zeros(DIM, np.float32)) == []  # silence: nothing to match


def test_remove_files_hides_them_and_counts_deleted_vectors(library, built):
    vector_ids, file_ids, vectors = library
    gone = list(range(1, 126))  # 125 of 500 files = 500 of 2000 vectors

    assert built.remove_files(gone) == 500
    assert built.remove_files(gone) == 0  # already gone
    assert built.remove_files([999_999]) == 0  # unknown file

    assert len(built) == 1500
    assert built.deleted_fraction == pytest.approx(0.25)
    assert built.needs_rebuild(threshold=0.2)
    assert not built.needs_rebuild(threshold=0.3)
    for vector in vectors[:500:7]:
        assert all(hit.file_id > 125 for hit in built.search(vector, k=10))
    assert built.file_ids() == set(range(126, 501))


def test_adding_a_removed_vector_again_brings_it_back(library, built):
    vector_ids, file_ids, vectors = library
    built.remove_files([1])
    built.add(vector_ids[:1], np.array([777]), vectors[:1])
    top = built.search(vectors[0], k=1)[0]
    assert (top.file_id, top.vector_id) == (777, int(vector_ids[0]))
    assert len(built) == 1997
    assert built.deleted_fraction == pytest.approx(3 / 2000)


def test_exclude_file_ids(library, built):
    vector_ids, file_ids, vectors = library
    hits = built.search(vectors[0], k=10, exclude_file_ids=[1, 2])
    assert len(hits) == 10
    assert {1, 2}.isdisjoint(hit.file_id for hit in hits)


def test_save_load_round_trip_gives_identical_results(tmp_path, library, built):
    vector_ids, file_ids, vectors = library
    built.remove_files([3, 4])
    built.generation = "catalog-42"
    built.ef_search = 80
    path = tmp_path / "library.idx"

    built.save(path)
    loaded = VectorIndex.load(path, dim=DIM, model_id=MODEL, generation="catalog-42")

    assert loaded.generation == "catalog-42"
    assert loaded.ef_search == 80
    assert len(loaded) == len(built) == 1992
    assert loaded.deleted_fraction == built.deleted_fraction
    rng = np.random.default_rng(5)
    queries = list(vectors[::40]) + list(random_unit(rng, 20))
    for query in queries:
        assert loaded.search(query, k=10) == built.search(query, k=10)
    # the loaded index keeps working: removing and adding after the load
    assert loaded.remove_files([5]) == 4
    loaded.add(np.array([1]), np.array([99_999]), random_unit(rng, 1))
    assert len(loaded) == 1989
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library.idx"]


def test_load_without_generation_check_reads_any_generation(tmp_path, built):
    built.generation = "g1"
    built.save(tmp_path / "a.idx")
    assert VectorIndex.load(tmp_path / "a.idx", dim=DIM, model_id=MODEL).generation == "g1"


@pytest.fixture
def saved(tmp_path, built):
    built.generation = "g7"
    path = tmp_path / "library.idx"
    built.save(path)
    return path


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": DIM, "model_id": "other-encoder"}, "model"),
        ({"dim": DIM * 2, "model_id": MODEL}, "dimension"),
        ({"dim": DIM, "model_id": MODEL, "generation": "g8"}, "generation"),
    ],
)
def test_load_rejects_a_mismatch(saved, kwargs, message):
    with pytest.raises(IndexFormatError, match=message):
        VectorIndex.load(saved, **kwargs)


@pytest.mark.parametrize("keep", [0.5, 0.999, 10])
def test_load_rejects_a_truncated_file(saved, keep):
    data = saved.read_bytes()
    cut = int(len(data) * keep) if keep < 1 else keep
    saved.write_bytes(data[:cut])
    with pytest.raises(IndexFormatError, match="truncated"):
        VectorIndex.load(saved, dim=DIM, model_id=MODEL)


def test_load_rejects_garbage(tmp_path):
    path = tmp_path / "garbage.idx"
    path.write_bytes(np.random.default_rng(6).bytes(50_000))
    with pytest.raises(IndexFormatError, match="magic"):
        VectorIndex.load(path, dim=DIM, model_id=MODEL)
    path.write_bytes(b"")
    with pytest.raises(IndexFormatError, match="magic"):
        VectorIndex.load(path, dim=DIM, model_id=MODEL)


def test_load_rejects_a_damaged_header(saved):
    data = bytearray(saved.read_bytes())
    start = len(index_module.MAGIC) + 4
    data[start : start + 5] = b"#####"
    saved.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="JSON"):
        VectorIndex.load(saved, dim=DIM, model_id=MODEL)


@pytest.mark.parametrize("where", [0.3, 0.9])
def test_load_rejects_a_flipped_byte_in_the_payload(saved, where):
    data = bytearray(saved.read_bytes())
    position = int(len(data) * where)
    data[position] ^= 0x5A
    saved.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum"):
        VectorIndex.load(saved, dim=DIM, model_id=MODEL)


def test_load_of_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "none.idx", dim=DIM, model_id=MODEL)


def test_save_is_atomic_when_the_disk_fails_mid_write(tmp_path, monkeypatch, library, built):
    vector_ids, file_ids, vectors = library
    path = tmp_path / "library.idx"
    built.generation = "before"
    built.save(path)
    before = path.read_bytes()

    def write_half_then_fail(graph, write, crc):
        # Simulates a full disk: part of the graph is written, then the write fails.
        write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(index_module.StreamedGraph, "write", write_half_then_fail)
    built.remove_files(range(1, 200))
    built.generation = "after"
    with pytest.raises(OSError, match="No space"):
        built.save(path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library.idx"]  # no temp files left
    survivor = VectorIndex.load(path, dim=DIM, model_id=MODEL, generation="before")
    assert len(survivor) == 2000
    assert survivor.search(vectors[0], k=1)[0].file_id == file_ids[0]


def test_capacity_grows_past_the_initial_size():
    rng = np.random.default_rng(8)
    vectors = random_unit(rng, 300)
    index = VectorIndex(DIM, MODEL, capacity=8)
    for start in range(0, 300, 37):
        ids = np.arange(start, min(start + 37, 300))
        index.add(ids, ids // 3, vectors[ids])
    assert index.capacity >= 300
    assert len(index) == 300
    for vector_id in range(0, 300, 11):
        top = index.search(vectors[vector_id], k=1)[0]
        assert top.vector_id == vector_id


def test_adding_an_existing_vector_id_replaces_its_vector_and_file():
    rng = np.random.default_rng(9)
    a, b = random_unit(rng, 2)
    index = VectorIndex(DIM, MODEL)
    index.add(np.array([1, 2]), np.array([10, 10]), np.stack([a, random_unit(rng, 1)[0]]))
    index.add(np.array([1]), np.array([20]), b[None])
    assert len(index) == 2
    top = index.search(b, k=1)[0]
    assert (top.file_id, top.vector_id) == (20, 1)
    assert index.remove_files([10]) == 1  # vector 1 no longer belongs to file 10


def test_bad_input_raises_value_error():
    index = VectorIndex(DIM, MODEL)
    rng = np.random.default_rng(10)
    with pytest.raises(ValueError, match="dimension"):
        index.add(np.array([1]), np.array([1]), random_unit(rng, 1, DIM + 1))
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.array([1]), np.array([1]), np.full((1, DIM), np.nan, np.float32))
    with pytest.raises(ValueError, match="zero"):
        index.add(np.array([1]), np.array([1]), np.zeros((1, DIM), np.float32))
    with pytest.raises(ValueError, match="length"):
        index.add(np.array([1, 2]), np.array([1]), random_unit(rng, 2))
    with pytest.raises(ValueError, match=">= 0"):
        index.add(np.array([-1]), np.array([1]), random_unit(rng, 1))
    with pytest.raises(ValueError, match="shape"):
        index.search(random_unit(rng, 1, DIM + 3)[0])
    assert len(index) == 0


def test_float16_vectors_from_the_catalog_are_accepted():
    rng = np.random.default_rng(11)
    vectors = random_unit(rng, 50)
    index = VectorIndex(DIM, MODEL)
    index.add(np.arange(50), np.arange(50), vectors.astype(np.float16))
    assert index.search(vectors[17], k=1)[0].file_id == 17


def test_concurrent_searches_while_one_thread_adds():
    rng = np.random.default_rng(12)
    vectors = random_unit(rng, 3000)
    file_ids = np.arange(3000) // 3
    index = VectorIndex.build(DIM, MODEL, np.arange(1000), file_ids[:1000], vectors[:1000])
    queries = random_unit(rng, 64)
    errors: list[BaseException] = []
    bad_results: list[list[Hit]] = []
    searches = [0]
    writer_done = threading.Event()

    def writer() -> None:
        try:
            for start in range(1000, 3000, 100):
                ids = np.arange(start, start + 100)
                index.add(ids, file_ids[ids], vectors[ids])
                if start % 500 == 0:
                    index.remove_files([int(file_ids[start - 900])])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            writer_done.set()

    def reader(offset: int) -> None:
        try:
            i = offset
            while not writer_done.is_set():
                hits = index.search(queries[i % len(queries)], k=10)
                i += 1
                searches[0] += 1
                ids = [hit.file_id for hit in hits]
                scores = [hit.score for hit in hits]
                if (
                    len(hits) != 10
                    or len(set(ids)) != 10
                    or scores != sorted(scores, reverse=True)
                    or not all(-1.0 <= s <= 1.0 for s in scores)
                    or not all(0 <= f < 1000 for f in ids)
                ):
                    bad_results.append(hits)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader, args=(n * 16,)) for n in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert bad_results == []
    assert searches[0] > 0
    removed_vectors = 3 * 4
    assert len(index) == 3000 - removed_vectors
    top = index.search(vectors[2999], k=1)[0]
    assert (top.file_id, top.vector_id) == (file_ids[2999], 2999)


def test_vector_files_lists_live_vectors_only(library, built):
    vector_ids, file_ids, vectors = library
    built.remove_files([1])
    mapping = built.vector_files()
    assert len(mapping) == 1996
    assert int(vector_ids[0]) not in mapping
    assert mapping[int(vector_ids[4])] == int(file_ids[4])


def tight_cluster(rng: np.random.Generator, n: int, dim: int = DIM, spread: float = 0.05) -> np.ndarray:
    """n near-duplicates of one vector: the layout in which HNSW strands nodes."""
    return unit(rng.normal(size=dim) + spread * rng.normal(size=(n, dim)))


def test_self_recall_of_a_normal_index_is_complete(built):
    assert built.self_recall() == 1.0
    assert built.self_recall(sample=5000, seed=3) == 1.0  # more than stored: all of them
    assert VectorIndex(DIM, MODEL).self_recall() == 1.0


def test_self_recall_counts_an_exact_duplicate_answering_first_as_found(library):
    vector_ids, file_ids, vectors = library
    twice = VectorIndex.build(
        DIM, MODEL, np.concatenate([vector_ids, vector_ids + 100_000]),
        np.concatenate([file_ids, file_ids + 1000]), np.concatenate([vectors, vectors]),
        num_threads=1,
    )
    assert twice.self_recall(sample=1000) == 1.0


def test_self_recall_samples_live_vectors_only(built):
    built.remove_files(range(1, 500))  # every file but the last (vector ids 11996..11999)
    assert len(built) == 4
    assert built.self_recall() == 1.0
    built.remove_files([500])
    assert built.self_recall() == 1.0


def test_self_recall_detects_nodes_a_sparse_graph_strands():
    vectors = tight_cluster(np.random.default_rng(11), 2000)
    ids = np.arange(2000, dtype=np.int64)

    def recall(M: int, ef_construction: int) -> float:
        index = VectorIndex.build(DIM, MODEL, ids, ids // 4, vectors, M=M,
                                  ef_construction=ef_construction, num_threads=1)
        return index.self_recall(sample=500)

    sparse, dense = recall(2, 1), recall(DEFAULT_M, DEFAULT_EF_CONSTRUCTION)
    assert sparse < 0.9
    assert dense > sparse
    with pytest.raises(ValueError, match="sample"):
        VectorIndex(DIM, MODEL).self_recall(sample=0)
