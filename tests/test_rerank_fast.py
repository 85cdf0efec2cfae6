"""The re-ranker's fast paths give the scores of the plain computation: the network cut
into trunk and head, what a candidate gives alone made once and kept with it
(``models.reranker.prepare_candidate``), and the re-ranking process
(``app.rerank_worker``), which is reaped when closed and stood in for when it dies. Real
Sonic Pi drums through a synthetic room, a real scanned library."""

from __future__ import annotations

import os
import shutil
import signal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.decode import read_mono
from app.library import Library
from app.query import embed_query
from app.rerank import FileReranker
from app.rerank_worker import RerankWorker
from app.scanner import Scanner
from models.encoder import MODEL_SAMPLE_RATE as SR
from models.reranker import Clip, Reranker, clip_candidate, prepare_candidate, rerank_order
from models.room_fit import candidate_terms, room_fit_error
from tests.conftest import SONIC_PI, require
from tests.test_reranker import DRUMS, room

pytestmark = pytest.mark.samples


@pytest.fixture(scope="module")
def drums(encoder_module):
    """Each drum's clean clip and the query a microphone in a room gives of it."""
    sonic_pi_samples = require(SONIC_PI, "sonic-pi-samples")
    clean = {name: clip_candidate(encoder_module, read_mono(sonic_pi_samples / f"{name}.flac", SR))
             for name in DRUMS}
    heard = {name: embed_query(encoder_module, room(read_mono(sonic_pi_samples / f"{name}.flac", SR), seed=n))
             for n, name in enumerate(DRUMS)}
    return clean, heard


@pytest.fixture(scope="module")
def encoder_module():
    from models.encoder import Encoder
    return Encoder()


def fresh(clip: Clip) -> Clip:
    """The same clip with nothing derived yet."""
    return Clip(clip.blocks, clip.vectors, clip.signals, clip.audio)


def test_the_cut_network_and_kept_candidate_terms_give_the_plain_scores(drums):
    clean, heard = drums
    whole = Reranker()
    cut = Reranker(split=True)
    assert cut.splits and not whole.splits
    for name in DRUMS[:4]:
        query = heard[name]
        plain_order, plain = rerank_order(whole, query.blocks, query.vectors,
                                          [fresh(clean[n]) for n in DRUMS], query.signals)
        kept = [fresh(clean[n]) for n in DRUMS]
        for cand in kept:
            prepare_candidate(cut, cand)
        assert all(cand.derived for cand in kept)
        timings: dict = {}
        fast_order, fast = rerank_order(cut, query.blocks, query.vectors, kept, query.signals, timings=timings)
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)
        assert fast_order == plain_order
        assert {"network", "room_fit", "coherence"} <= set(timings)
        # and again from what was kept: the same scores
        _, again = rerank_order(cut, query.blocks, query.vectors, kept, query.signals)
        np.testing.assert_array_equal(again, fast)


def test_the_terms_side_by_side_give_the_scores_of_one_after_the_other(drums):
    clean, heard = drums
    cut = Reranker(split=True)
    with ThreadPoolExecutor(2) as executor:
        for name in DRUMS[:4]:
            query = heard[name]
            kept = [fresh(clean[n]) for n in DRUMS]
            alone_order, alone = rerank_order(cut, query.blocks, query.vectors, kept, query.signals)
            timings: dict = {}
            side_order, side = rerank_order(cut, query.blocks, query.vectors, [fresh(c) for c in kept],
                                            query.signals, timings=timings, executor=executor)
            np.testing.assert_array_equal(side, alone)
            assert side_order == alone_order
            assert all(timings[stage] > 0 for stage in ("network", "room_fit", "coherence"))


def test_the_room_fit_from_kept_candidate_terms_is_the_same_fit(drums):
    clean, heard = drums
    q = np.stack([heard[n].blocks[0] for n in DRUMS])
    c = np.stack([clean[n].blocks[0] for n in DRUMS[::-1]])     # the right one and eleven others
    on_the_fly = room_fit_error(q, c)
    np.testing.assert_allclose(room_fit_error(q, c, candidate_terms(c)), on_the_fly, rtol=1e-5)
    with pytest.raises(ValueError, match="candidate terms"):
        room_fit_error(q, c, candidate_terms(c[:3]))


def test_the_rerank_process_answers_as_this_process_and_is_reaped(tmp_path, isolated_library_dir,
                                                                  sonic_pi_samples):
    source = tmp_path / "samples"
    source.mkdir()
    for name in DRUMS:
        shutil.copy(sonic_pi_samples / f"{name}.flac", source / f"{name}.flac")
    with Library(isolated_library_dir) as library:
        Scanner(library, workers=1).scan([str(source)])
        local = library.reranker
        assert isinstance(local, FileReranker)
        worker = RerankWorker(local)
        try:
            assert worker.wait_ready()
            for n, name in enumerate(DRUMS[:3]):
                query = embed_query(library.encoder, room(read_mono(source / f"{name}.flac", SR), seed=n))
                results = library.searcher().search(query, 10, rerank=False)
                worker.prepare(results)
                there = worker.rerank(results, query.blocks, query.vectors, query.signals)
                here = local.rerank(results, query.blocks, query.vectors, query.signals)
                assert [r.file.path for r in there] == [r.file.path for r in here]
                np.testing.assert_allclose([r.score for r in there], [r.score for r in here], rtol=1e-6)
            stats = worker.stats()
            assert stats["reranked"] == 3 and stats["prepared"] == 3 and stats["fallbacks"] == 0
            assert stats["last_ms"]["total"] > 0
            # the caller learns where a re-ranking's time went, the child's queueing too
            timings: dict = {}
            worker.rerank(results, query.blocks, query.vectors, query.signals, timings=timings)
            assert {"rerank_queued", "rerank_total", "rerank_room_fit"} <= set(timings)
            assert timings["rerank_total"] >= timings["rerank_room_fit"] > 0
            assert worker.stats()["reranked"] == 4
            # a deeper re-rank (search --depth) reads as many files there as here
            results = library.searcher().search(query, len(DRUMS), rerank=False)
            there = worker.rerank(results, query.blocks, query.vectors, query.signals,
                                  depth=len(DRUMS))
            here = local.rerank(results, query.blocks, query.vectors, query.signals,
                                depth=len(DRUMS))
            assert [r.file.path for r in there] == [r.file.path for r in here]
            assert sum(r.cosine is not None for r in there) == len(DRUMS) > worker.k
            # the process dies: this process answers, the same
            os.kill(worker.pid, signal.SIGKILL)
            after = worker.rerank(results, query.blocks, query.vectors, query.signals,
                                  depth=len(DRUMS))
            assert [r.file.path for r in after] == [r.file.path for r in here]
            assert worker.stats()["fallbacks"] == 1 and not worker.stats()["alive"]
        finally:
            worker.close()
        assert worker.pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(worker.pid, 0)       # reaped: no process, not even a zombie


def test_the_coherence_of_many_candidates_at_once_is_each_pair_s(drums):
    from models.coherence import peak_coherence, peak_coherences, spectrum
    clean, heard = drums
    query = spectrum(heard[DRUMS[0]].signals[0])
    spectra = np.stack([spectrum(clean[n].signals[0]) for n in DRUMS] + [np.zeros_like(query)])
    each = [peak_coherence(query, s) for s in spectra]
    np.testing.assert_allclose(peak_coherences(query, spectra), each, rtol=1e-6, atol=1e-9)
    assert each[-1] == 0.0 and each[0] > max(each[1:])      # silent: 0; its own take: the most
