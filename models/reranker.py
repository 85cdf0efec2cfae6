"""The re-ranker: re-orders the encoder's best few library files for one query.

The encoder pools each block into one vector, which loses how a sound unfolds in time;
near twins (takes of one strummed chord, one drum hit played twice) end up ranked by
noise once a room has smeared them. The re-ranker (``models/scout_rerank_int8.onnx``,
trained by ``models.train.rerank``) reads a query block and a candidate's clean block
together and scores how likely the candidate is the query's original.

Which blocks are compared: for each candidate, the (query block, candidate block) pair
with the highest encoder cosine, i.e. the pair the index matched on.

A candidate's score is the network's plus two terms whose weights the file's metadata
carries (``models/train/calibrate_scores.py`` fits them; an absent key is 0):

- ``room_fit_weight`` times how well the query is explained as the candidate heard through
  a room (``models.room_fit``): the network compares pooled maps at 186 ms, the room fit
  checks each band's timing at the front-end's 23 ms frame;
- ``coherence_weight`` times the log of the two blocks' waveform coherence
  (``models.coherence``): whether the query is this very recording, not another take.
  It needs both blocks' audio; when any scored candidate lacks it, the term is left out
  for all of them, so that the candidates stay comparable.

Thread safety: ``Reranker.score`` and ``rerank_order`` may be called from any thread
(onnxruntime sessions allow concurrent ``run``).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import SampleScoutError

from . import frontend, preprocess
from .coherence import BlockSignals, coherence_term, peak_coherence, spectrum
from .preprocess import clip_blocks
from .room_fit import room_fit_bonus

BLOCK_SHAPE = (preprocess.BLOCK_FRAMES, frontend.N_MELS)


class RerankerError(SampleScoutError):
    """The re-ranker file is missing or is not a re-ranker."""


def default_reranker_path() -> pathlib.Path:
    override = os.environ.get("SAMPLESCOUT_RERANKER")
    if override:
        return pathlib.Path(override)
    return pathlib.Path(__file__).resolve().parent / "scout_rerank_int8.onnx"


class Reranker:
    """Loads the ONNX re-ranker; ``encoder_id`` says which encoder's trunk it was trained on."""

    def __init__(self, model_path: str | os.PathLike | None = None, threads: int = 1):
        import onnxruntime as ort

        path = pathlib.Path(model_path) if model_path is not None else default_reranker_path()
        if not path.is_file():
            raise RerankerError(f"re-ranker model file not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RerankerError(f"re-ranker model file is not a usable ONNX model: {path} ({exc})") from exc
        names = sorted(i.name for i in session.get_inputs())
        if names != ["candidate", "query"] or len(session.get_outputs()) != 1:
            raise RerankerError(f"{path} is not a re-ranker: inputs {names}, expected candidate and query")
        self._session = session
        self.model_path = path
        meta = session.get_modelmeta().custom_metadata_map
        self.model_id: str = meta.get("model_id") or path.stem
        self.encoder_id: str = meta.get("encoder", "")
        # written by models/train/calibrate_scores.py; 0 (absent) leaves a term out
        self.room_fit_weight = _weight(path, meta, "room_fit_weight")
        self.coherence_weight = _weight(path, meta, "coherence_weight")

    def score(self, query_blocks: np.ndarray, candidate_blocks: np.ndarray) -> np.ndarray:
        """Row ``i`` of ``query_blocks`` against row ``i`` of ``candidate_blocks`` (both
        ``(k, 100, 96)`` log-mel) -> ``(k,)`` float32 scores, higher = more likely the same
        file. Any thread."""
        q = np.ascontiguousarray(query_blocks, dtype=np.float32)
        c = np.ascontiguousarray(candidate_blocks, dtype=np.float32)
        if q.shape != c.shape or q.ndim != 3 or q.shape[1:] != BLOCK_SHAPE:
            raise ValueError(f"expected two (k, {BLOCK_SHAPE[0]}, {BLOCK_SHAPE[1]}) arrays, "
                             f"got {q.shape} and {c.shape}")
        if q.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        return self._session.run(None, {"query": q, "candidate": c})[0].astype(np.float32).reshape(-1)


def _weight(path: pathlib.Path, meta: dict, key: str) -> float:
    """A score weight from the file's metadata: 0.0 if absent, else a finite number >= 0."""
    try:
        weight = float(meta.get(key, "0"))
    except ValueError as exc:
        raise RerankerError(f"{path}: {key} is not a number: {meta[key]!r}") from exc
    if not np.isfinite(weight) or weight < 0:
        raise RerankerError(f"{path}: {key} must be a finite number >= 0, got {weight}")
    return weight


@dataclass(frozen=True)
class Clip:
    """A clip as search and the re-ranker read it, a query or a library file: log-mel
    ``blocks`` ``(n, 100, 96)``, the encoder's unit ``vectors`` of them ``(n, dim)`` and,
    for the coherence term, each block's ``models.coherence.coherence_signal`` in
    ``signals`` (None when the audio is not at hand); ``audio`` is the model-rate mono
    clip it was made from, when kept. No rows for a silent clip. A library file's
    candidate needs only the block the index matched."""
    blocks: np.ndarray
    vectors: np.ndarray
    signals: Sequence[np.ndarray] | None = None
    audio: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.vectors)


Candidate = Clip   # the name the re-ranking code reads best with: a library file's clip


def clip_candidate(encoder, audio: np.ndarray, *, trim_leading_silence: bool = True) -> Clip:
    """A whole clip as the re-ranker reads it (a query or a library file): every block's
    log-mel, the ``encoder``'s vectors of them, their coherence signals (made on first
    use) and the audio; no rows for a silent clip. Any thread."""
    blocks = clip_blocks(audio, trim_leading_silence=trim_leading_silence)
    stacked = (np.stack([b.log_mel for b in blocks]).astype(np.float32) if blocks
               else np.zeros((0,) + BLOCK_SHAPE, np.float32))
    return Clip(stacked, encoder.embed_blocks(stacked), BlockSignals(audio, blocks), audio)


def rerank_order(reranker: Reranker, query_blocks: np.ndarray, query_vectors: np.ndarray,
                 candidates: list[Clip | None],
                 query_signals: Sequence[np.ndarray] | None = None) -> tuple[list[int], np.ndarray]:
    """New order of ``candidates`` (indices, best first) and the re-ranker's score of each.

    Each candidate is scored on its best (query block, candidate block) pair by encoder
    cosine. ``query_signals`` (each query block's ``coherence_signal``) enable the
    coherence term. A candidate given as None (its file could not be read) keeps its place
    relative to the encoder's order behind every scored one and scores -inf. Any thread.
    """
    pairs_q, pairs_c, pair_index, scored = [], [], [], []
    for i, cand in enumerate(candidates):
        if cand is None or len(cand.blocks) == 0 or len(query_blocks) == 0:
            continue
        sims = np.asarray(query_vectors) @ np.asarray(cand.vectors).T
        qi, ci = np.unravel_index(int(np.argmax(sims)), sims.shape)
        pairs_q.append(query_blocks[qi])
        pairs_c.append(cand.blocks[ci])
        pair_index.append((int(qi), int(ci)))
        scored.append(i)
    scores = np.full(len(candidates), -np.inf, dtype=np.float32)
    if scored:
        pairs_q, pairs_c = np.stack(pairs_q), np.stack(pairs_c)
        scores[scored] = reranker.score(pairs_q, pairs_c)
        if reranker.room_fit_weight > 0:
            scores[scored] += room_fit_bonus(pairs_q, pairs_c, reranker.room_fit_weight).astype(np.float32)
        if reranker.coherence_weight > 0 and query_signals is not None \
                and all(candidates[i].signals is not None for i in scored):
            coherence = pair_coherence(query_signals, [candidates[i].signals for i in scored], pair_index)
            scores[scored] += (reranker.coherence_weight * coherence_term(coherence)).astype(np.float32)
    # a stable sort keeps the encoder's order among ties and unscored candidates
    order = sorted(range(len(candidates)), key=lambda i: -scores[i])
    return order, scores


def pair_coherence(query_signals: Sequence[np.ndarray], candidate_signals: list[Sequence[np.ndarray]],
                   pairs: list[tuple[int, int]]) -> np.ndarray:
    """``peak_coherence`` of each (query block, block of candidate ``k``) pair in ``pairs``;
    each query block's spectrum is computed once. Any thread."""
    query_spectra: dict[int, np.ndarray] = {}
    out = np.zeros(len(pairs))
    for k, (qi, ci) in enumerate(pairs):
        if qi not in query_spectra:
            query_spectra[qi] = spectrum(query_signals[qi])
        out[k] = peak_coherence(query_spectra[qi], spectrum(candidate_signals[k][ci]))
    return out


def take_over_scores(index_scores: np.ndarray, order: list[int], reranked: np.ndarray) -> np.ndarray:
    """The candidates' scores after re-ranking: the scored ones (finite ``reranked``) take
    over the set of their own index scores, best first, in the re-ranked ``order``; the
    others keep theirs. The scale (cosine) stays, so thresholds and hysteresis built on it
    keep working. Any thread."""
    index_scores = np.asarray(index_scores, dtype=np.float32)
    scored = [i for i in order if np.isfinite(reranked[i])]
    out = index_scores.copy()
    out[scored] = np.sort(index_scores[scored])[::-1]
    return out
