"""The shipped re-ranker (models/scout_rerank_int8.onnx) and the search's second stage
(app.rerank) against real Sonic Pi samples, a real SQLite catalog and hnswlib index."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from app.decode import read_mono
from app.library import Library
from app.rerank import RERANK_K, FileReranker, matched_block
from app.scanner import Scanner
from models.encoder import MODEL_SAMPLE_RATE as SR
from models.encoder import Encoder
from models.preprocess import block_span, clip_blocks
from models.reranker import Candidate, Reranker, RerankerError, rerank_order
from tests.shipped import RERANKER_MODEL_ID, SCOUT_MODEL_ID

MODELS = Path(__file__).resolve().parents[1] / "models"
DRUMS = ("drum_snare_hard", "drum_snare_soft", "drum_tom_hi_hard", "drum_tom_mid_hard",
         "drum_tom_lo_hard", "drum_bass_hard", "drum_cymbal_closed", "drum_cymbal_open",
         "elec_snare", "elec_hi_snare", "elec_mid_snare", "elec_lo_snare")


@pytest.fixture(scope="module")
def reranker() -> Reranker:
    return Reranker()


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder()


def room(audio: np.ndarray, seed: int, rt60: float = 0.5) -> np.ndarray:
    """A plain synthetic room (exponentially decaying noise tail, direct path 1)."""
    rng = np.random.default_rng(seed)
    n = int(1.2 * rt60 * SR)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / (rt60 * SR))
    tail *= np.sqrt(1.0 / np.sum(tail ** 2))           # as much energy as the direct path
    rir = np.concatenate([[1.0], np.zeros(int(0.01 * SR)), tail])
    wet = signal.fftconvolve(audio, rir)
    return (wet * np.max(np.abs(audio)) / np.max(np.abs(wet))).astype(np.float32)


def blocks_of(audio: np.ndarray) -> np.ndarray:
    return np.stack([b.log_mel for b in clip_blocks(audio)]).astype(np.float32)


def test_the_shipped_reranker_belongs_to_the_shipped_encoder(reranker, encoder):
    assert reranker.model_id == RERANKER_MODEL_ID
    assert reranker.encoder_id == SCOUT_MODEL_ID == encoder.network_id
    assert FileReranker.for_encoder(encoder) is not None


def test_a_reranker_for_another_encoder_is_not_used(encoder):
    aisfx = Encoder(MODELS / "aisfx_int8.onnx")
    assert FileReranker.for_encoder(aisfx) is None
    assert FileReranker.for_encoder(encoder) is not None


def test_bad_reranker_files_give_specific_errors(tmp_path):
    with pytest.raises(RerankerError, match="not found"):
        Reranker(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(RerankerError, match="not a usable ONNX model"):
        Reranker(junk)
    with pytest.raises(RerankerError, match="is not a re-ranker"):
        Reranker(MODELS / "scout_int8.onnx")


def test_score_checks_its_shapes(reranker):
    with pytest.raises(ValueError, match="expected two"):
        reranker.score(np.zeros((2, 100, 96)), np.zeros((3, 100, 96)))
    assert reranker.score(np.zeros((0, 100, 96)), np.zeros((0, 100, 96))).shape == (0,)


def test_each_drum_through_a_room_scores_its_own_clean_take_highest(reranker, sonic_pi_samples):
    """Twelve drums, several of them takes of one drum (hard/soft, four electric snares)."""
    clean = {name: blocks_of(read_mono(sonic_pi_samples / f"{name}.flac", SR))[0] for name in DRUMS}
    names = list(clean)
    stacked = np.stack([clean[n] for n in names])
    for i, name in enumerate(names):
        query = blocks_of(room(read_mono(sonic_pi_samples / f"{name}.flac", SR), seed=i))[0]
        scores = reranker.score(np.repeat(query[None], len(names), axis=0), stacked)
        assert names[int(np.argmax(scores))] == name, dict(zip(names, np.round(scores, 2)))


def test_rerank_order_scores_the_best_block_pair_and_puts_unreadable_files_last(reranker, encoder,
                                                                                sonic_pi_samples):
    snare = read_mono(sonic_pi_samples / "drum_snare_hard.flac", SR)
    tom = read_mono(sonic_pi_samples / "drum_tom_lo_hard.flac", SR)
    query_blocks = blocks_of(room(snare, seed=3))
    query_vectors = encoder.embed_blocks(query_blocks)
    snare_block, tom_block = blocks_of(snare)[:1], blocks_of(tom)[:1]
    # one candidate holds the tom's block first and the snare's second: its best pair is the snare's
    both = np.concatenate([tom_block, snare_block])
    candidates = [Candidate(tom_block, encoder.embed_blocks(tom_block)), None,
                  Candidate(both, encoder.embed_blocks(both)),
                  Candidate(snare_block, encoder.embed_blocks(snare_block))]
    order, scores = rerank_order(reranker, query_blocks, query_vectors, candidates)
    assert sorted(order) == [0, 1, 2, 3]
    assert order[-1] == 1 and scores[1] == -np.inf
    assert scores[2] == pytest.approx(scores[3], abs=1e-5)
    assert scores[3] > scores[0]
    assert set(order[:2]) == {2, 3}


@pytest.mark.parametrize("file_rate, seconds, gain", [(SR, 6.5, 1.0), (8000, 40.0, 1.0), (SR, 12.0, 1e-3)])
def test_matched_block_is_the_block_indexing_made(tmp_path, file_rate, seconds, gain):
    # At 8 kHz, one decoded chunk (65,536 frames) becomes 361 k samples at the model rate,
    # longer than a block. At -70 dBFS the onset gate holds every block back to the end of
    # the file. Either way the block's samples must all be there.
    rng = np.random.default_rng(2)
    t = np.arange(int(seconds * file_rate)) / file_rate
    audio = gain * np.concatenate([np.zeros(int(0.3 * file_rate)),
                                   0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * t))
                                   + 0.01 * rng.standard_normal(t.size)])
    path = tmp_path / "sweep.wav"
    sf.write(path, audio.astype(np.float32), file_rate)
    decoded = read_mono(path, SR)
    blocks = clip_blocks(decoded)
    assert len(blocks) >= 4
    for block in blocks:
        log_mel, samples = matched_block(path, block.start_sample)
        np.testing.assert_array_equal(log_mel, block.log_mel)
        # with the samples it covers, for the coherence term: the last block ends with the file
        np.testing.assert_array_equal(samples, decoded[block_span(block.start_sample)])
        assert samples.size == min(101 * 1024, decoded.size - block.start_sample + 1024)
    # a start no block has (the file changed since the scan): the nearest block
    np.testing.assert_array_equal(matched_block(path, blocks[1].start_sample + 300)[0], blocks[1].log_mel)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert matched_block(broken, 0) is None


def test_search_reranks_the_index_order_and_survives_a_deleted_candidate(tmp_path, isolated_library_dir,
                                                                        sonic_pi_samples):
    source = tmp_path / "samples"
    source.mkdir()
    for name in DRUMS:
        shutil.copy(sonic_pi_samples / f"{name}.flac", source / f"{name}.flac")
    query_path = tmp_path / "query.wav"
    sf.write(query_path, room(read_mono(source / "elec_mid_snare.flac", SR), seed=9), SR)
    with Library(isolated_library_dir) as library:
        report = Scanner(library, workers=1).scan([str(source)])
        assert report.indexed == len(DRUMS)
        assert library.reranker is not None
        query = library.embed_file(query_path)
        plain = library.search_vectors(query.vectors, k=len(DRUMS))   # bare vectors: index order
        # the re-ranker's own order (a search by file then orders by kind: test_similar_kind)
        results = library.search_file(query_path, k=len(DRUMS), by_kind=False)

        # The index alone already ranks this query's own file first, so first place proves
        # nothing about the second stage (test_rerank_gain.py has queries that it sets right):
        # here it must re-order the head, and keep the own file first.
        assert [r.file.path for r in results[:RERANK_K]] != [r.file.path for r in plain[:RERANK_K]]
        assert Path(results[0].file.path).name == "elec_mid_snare.flac"
        assert [r.rank for r in results] == list(range(1, len(results) + 1))
        assert [r.score for r in results] == sorted((r.score for r in plain), reverse=True)
        assert all(r.cosine is not None for r in results[:RERANK_K])
        assert {r.file.path for r in results} == {r.file.path for r in plain}
        assert all(p.cosine is None for p in plain)

        # a candidate deleted since the scan is kept (marked missing), not an error, and it
        # keeps its place: the rank its own cosine gives it among the re-ranked scores, which
        # is its rank in the index's order
        plain_rank = next(r.rank for r in plain if Path(r.file.path).name == "elec_lo_snare.flac")
        assert 1 < plain_rank < RERANK_K          # inside the re-ranked head, not first
        os.remove(source / "elec_lo_snare.flac")
        again = library.search_file(query_path, k=len(DRUMS), by_kind=False)
        gone = [r for r in again if Path(r.file.path).name == "elec_lo_snare.flac"]
        assert len(again) == len(results) and len(gone) == 1
        assert not gone[0].exists and gone[0].cosine is None
        assert gone[0].rank == plain_rank, [(r.rank, Path(r.file.path).name) for r in again]


def test_the_live_matcher_searches_through_the_reranker(tmp_path, isolated_library_dir, sonic_pi_samples):
    """The matcher's query path (search by file, captures, live windows share it) gives the
    re-ranked order of Library.search_file, not the index's own order."""
    from app.match_profiles import get_profile
    from app.matcher import LiveMatcher
    from engine.ring import CaptureRing

    source = tmp_path / "samples"
    source.mkdir()
    for name in DRUMS:
        shutil.copy(sonic_pi_samples / f"{name}.flac", source / f"{name}.flac")
    with Library(isolated_library_dir) as library:
        Scanner(library, workers=1).scan([str(source)])
    orders = []
    for name in DRUMS:                    # a query whose re-ranked order differs from the index's
        query_path = tmp_path / f"{name}-room.wav"
        sf.write(query_path, room(read_mono(source / f"{name}.flac", SR), seed=4), SR)
        with Library(isolated_library_dir) as library:
            plain = [r.file.path for r in library.search_vectors(library.embed_file(query_path).vectors, k=10)]
            reranked = [r.file.path for r in library.search_file(query_path, k=10)]
        if plain != reranked:
            orders.append((query_path, reranked))
            break
    assert orders, "re-ranking changed no order among the twelve drums"
    query_path, reranked = orders[0]

    ring = CaptureRing.for_seconds(1, SR, 4, 1024)
    matcher = LiveMatcher(isolated_library_dir, ring, SR, profile=get_profile("drums"))
    assert matcher.reranker is not None
    update = matcher.search_file(query_path, k=10)
    assert [s.path for s in update.suggestions] == reranked


def test_the_matched_block_cache_hits_evicts_the_oldest_and_sees_changed_files(
        tmp_path, isolated_library_dir, sonic_pi_samples, monkeypatch):
    """The cache of decoded candidate blocks (96 blocks in the app): a block asked again is
    not decoded again; past the bound the least recently used goes; a changed file is read
    again."""
    import app.rerank as rerank_module

    assert rerank_module.CACHE_BLOCKS == 96
    source = tmp_path / "samples"
    source.mkdir()
    names = DRUMS[:6]
    for name in names:
        shutil.copy(sonic_pi_samples / f"{name}.flac", source / f"{name}.flac")
    decoded = []
    real_matched_block = rerank_module.matched_block
    monkeypatch.setattr(rerank_module, "matched_block",
                        lambda path, start: decoded.append(Path(path).name) or real_matched_block(path, start))
    with Library(isolated_library_dir) as library:
        Scanner(library, workers=1).scan([str(source)])
        query = library.embed_file(source / "drum_snare_hard.flac")
        results = library.search_vectors(query.vectors, k=len(names))     # index order, 6 files
        assert len(results) == 6
        small = FileReranker(library.reranker.reranker, library.encoder, k=6, cache_blocks=4)

        def rerank(subset):
            decoded.clear()
            small.rerank(subset, query.blocks, query.vectors, query.signals)
            return sorted(decoded)

        name = lambda r: Path(r.file.path).name  # noqa: E731
        assert rerank(results) == sorted(map(name, results))          # cold: six decodes
        assert rerank(results[2:]) == []                                # the last four: hits
        # only four fit: the first two were evicted, and bringing them back evicts two more
        assert rerank(results[:2]) == sorted(map(name, results[:2]))
        assert rerank(results[4:]) == []                                # recently used: kept
        assert rerank(results[2:4]) == sorted(map(name, results[2:4]))  # least recent: gone
        # a file rewritten since it was cached is decoded again
        changed = results[4].file.path
        os.utime(changed, ns=(os.stat(changed).st_atime_ns, os.stat(changed).st_mtime_ns + 10**9))
        assert rerank(results[4:]) == [name(results[4])]
