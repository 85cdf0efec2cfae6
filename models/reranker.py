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
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from engine.errors import SampleScoutError

from . import frontend, preprocess
from .coherence import BlockSignals, coherence_term, peak_coherences, spectrum
from .onnx_session import cpu_session_options
from .preprocess import clip_blocks
from .room_fit import CandidateTerms, candidate_terms, room_fit_bonus

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

    def __init__(self, model_path: str | os.PathLike | None = None, threads: int = 1, *,
                 split: bool = False, arena: bool = False):
        """``split=True``: cut the network into trunk and head on first use (see ``splits``;
        it imports ``onnx``, about a second of this process's GIL once, so the re-ranking
        process does it, not the window's); else the whole network scores each pair.
        ``arena``: keep onnxruntime's memory arena (``models.onnx_session``)."""
        import onnxruntime as ort

        path = pathlib.Path(model_path) if model_path is not None else default_reranker_path()
        if not path.is_file():
            raise RerankerError(f"re-ranker model file not found: {path}")
        options = cpu_session_options(threads, portable=False, arena=arena)
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
        self._options = options
        self._split: _SplitNetwork | None = None
        self._split_tried = not split
        self._split_lock = threading.Lock()

    @property
    def splits(self) -> bool:
        """True when blocks can be read one at a time (``block_features``) and pairs scored
        from those (``score_features``); else only ``score`` works. The cut is made on
        first use (a fraction of a second). Any thread."""
        with self._split_lock:
            if not self._split_tried:
                self._split_tried = True
                self._split = split_network(self.model_path, self._options)
        return self._split is not None

    def block_features(self, blocks: np.ndarray, role: str) -> np.ndarray:
        """The network's reading of each block ``(n, 100, 96)`` alone (its trunk) as a
        ``role`` 'query' or 'candidate' block, which ``score_features`` pairs up: a
        candidate's is made once and kept. Any thread."""
        b = np.ascontiguousarray(blocks, dtype=np.float32)
        if b.ndim != 3 or b.shape[1:] != BLOCK_SHAPE:
            raise ValueError(f"expected a (n, {BLOCK_SHAPE[0]}, {BLOCK_SHAPE[1]}) array, got {b.shape}")
        if not self.splits:
            raise RerankerError(f"{self.model_path}: this network cannot read blocks one at a time")
        if role not in ("query", "candidate"):
            raise ValueError(f"role must be 'query' or 'candidate', not {role!r}")
        return self._split.features(b, role)

    def score_features(self, query_features: np.ndarray, candidate_features: np.ndarray) -> np.ndarray:
        """``score`` from ``block_features`` of the pairs' rows: the same scores. Any thread."""
        if len(query_features) != len(candidate_features):
            raise ValueError(f"expected as many query as candidate rows, got {len(query_features)} "
                             f"and {len(candidate_features)}")
        if len(query_features) == 0:
            return np.zeros(0, dtype=np.float32)
        if not self.splits:
            raise RerankerError(f"{self.model_path}: this network cannot score blocks read one at a time")
        return self._split.score(np.asarray(query_features), np.asarray(candidate_features))

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


class _SplitNetwork:
    """The re-ranker network cut where both blocks of a pair have been read by the shared
    trunk and the head compares them: the trunk runs once per block (a candidate's reading
    is kept with it), the head once per pair. The cut is made from the model file at load
    (``onnx``) and checked against the whole network on one pair; any difference, and the
    whole network is used instead."""

    def __init__(self, trunk, head, features_name: str, batch_name: str):
        self._trunk, self._head = trunk, head
        self._features_name, self._batch_name = features_name, batch_name
        self._empty = np.zeros((0,) + BLOCK_SHAPE, np.float32)

    def features(self, blocks: np.ndarray, role: str) -> np.ndarray:
        # the two inputs are quantized at scales of their own: a block is read in its role
        feeds = {"query": self._empty, "candidate": self._empty, role: blocks}
        return self._trunk.run(None, feeds)[0]

    def score(self, query_features: np.ndarray, candidate_features: np.ndarray) -> np.ndarray:
        stacked = np.ascontiguousarray(np.concatenate([query_features, candidate_features]), dtype=np.float32)
        out = self._head.run(None, {self._features_name: stacked,
                                    self._batch_name: np.array([len(query_features)], np.int64)})[0]
        return out.astype(np.float32).reshape(-1)


def split_network(path: pathlib.Path, options) -> _SplitNetwork | None:
    """The network of ``path`` as trunk + head (``_SplitNetwork``), or None where the file
    has no such cut or ``onnx`` is not installed. Any thread."""
    try:
        import onnx
        from onnx import utils as onnx_utils
    except ImportError:
        return None
    import onnxruntime as ort
    try:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
        cut = _find_cut(model.graph)
        if cut is None:
            return None
        features_name, batch_name = cut
        extractor = onnx_utils.Extractor(model)
        trunk = extractor.extract_model(["query", "candidate"], [features_name])
        head = extractor.extract_model([features_name, batch_name], ["score"])

        def session(part):
            return ort.InferenceSession(part.SerializeToString(), options, providers=["CPUExecutionProvider"])

        split = _SplitNetwork(session(trunk), session(head), features_name, batch_name)
        whole = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        q = rng.uniform(0, 1, (2,) + BLOCK_SHAPE).astype(np.float32)
        c = rng.uniform(0, 1, (2,) + BLOCK_SHAPE).astype(np.float32)
        want = whole.run(None, {"query": q, "candidate": c})[0].reshape(-1)
        got = split.score(split.features(q, "query"), split.features(c, "candidate"))
        if not np.allclose(got, want, rtol=1e-5, atol=1e-5):
            return None
        return split
    except Exception:  # noqa: BLE001 — an uncuttable network still scores whole
        return None


def _find_cut(graph) -> tuple[str, str] | None:
    """(trunk output, query batch size) of a siamese re-ranker: the first tensor that two
    Slice nodes split at a shared bound (the query rows, then the candidate rows)."""
    slices: dict[str, list] = {}
    for node in graph.node:
        if node.op_type == "Slice" and len(node.input) >= 3:
            slices.setdefault(node.input[0], []).append(node)
    for node in graph.node:
        for out in node.output:
            pair = slices.get(out, [])
            if len(pair) == 2:
                shared = set(pair[0].input[1:3]) & set(pair[1].input[1:3])
                if len(shared) == 1:
                    return out, shared.pop()
    return None


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
    # what the re-ranker derives from one block alone (its room-fit terms, coherence
    # spectrum, network reading), made on first use and kept with the clip: a candidate that
    # stays in the suggestions is scored again from the query's side only
    derived: dict = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.vectors)

    def derive(self, what: str, block: int, make):
        """``make()``, kept under (``what``, ``block``). Any thread (two threads asking at
        once both make it; the values are equal)."""
        key = (what, block)
        value = self.derived.get(key)
        if value is None:
            value = self.derived[key] = make()
        return value


Candidate = Clip   # the name the re-ranking code reads best with: a library file's clip


def clip_candidate(encoder, audio: np.ndarray, *, trim_leading_silence: bool = True) -> Clip:
    """A whole clip as the re-ranker reads it (a query or a library file): every block's
    log-mel, the ``encoder``'s vectors of them, their coherence signals (made on first
    use) and the audio; no rows for a silent clip. Any thread."""
    blocks = clip_blocks(audio, trim_leading_silence=trim_leading_silence)
    stacked = (np.stack([b.log_mel for b in blocks]).astype(np.float32) if blocks
               else np.zeros((0,) + BLOCK_SHAPE, np.float32))
    return Clip(stacked, encoder.embed_blocks(stacked), BlockSignals(audio, blocks), audio)


def candidate_network_features(reranker: Reranker, cand: Clip, block: int) -> np.ndarray:
    """The network's reading of ``cand``'s block ``block``, kept with the clip. Any thread."""
    return cand.derive(("network", reranker.model_id), block,
                       lambda: reranker.block_features(cand.blocks[block:block + 1], "candidate")[0])


def candidate_room_fit_terms(cand: Clip, block: int) -> CandidateTerms:
    """``models.room_fit.candidate_terms`` of ``cand``'s block ``block``, kept. Any thread."""
    return cand.derive("room_fit", block, lambda: candidate_terms(cand.blocks[block:block + 1])[0])


def candidate_spectrum(cand: Clip, block: int) -> np.ndarray:
    """The coherence ``spectrum`` of ``cand``'s block ``block``, kept. Any thread."""
    return cand.derive("spectrum", block, lambda: spectrum(cand.signals[block]))


def prepare_candidate(reranker: Reranker, cand: Clip | None) -> None:
    """Derive now what scoring ``cand`` needs of it alone (every block), so that a later
    ``rerank_order`` does only the query's share. Any thread."""
    if cand is None:
        return
    for block in range(len(cand.blocks)):
        if reranker.splits:
            candidate_network_features(reranker, cand, block)
        if reranker.room_fit_weight > 0:
            candidate_room_fit_terms(cand, block)
        if reranker.coherence_weight > 0 and cand.signals is not None:
            candidate_spectrum(cand, block)


def rerank_order(reranker: Reranker, query_blocks: np.ndarray, query_vectors: np.ndarray,
                 candidates: list[Clip | None],
                 query_signals: Sequence[np.ndarray] | None = None,
                 timings: dict | None = None, executor: Executor | None = None) -> tuple[list[int], np.ndarray]:
    """New order of ``candidates`` (indices, best first) and the re-ranker's score of each.

    Each candidate is scored on its best (query block, candidate block) pair by encoder
    cosine. ``query_signals`` (each query block's ``coherence_signal``) enable the
    coherence term. A candidate given as None (its file could not be read) keeps its place
    relative to the encoder's order behind every scored one and scores -inf. What a
    candidate's block gives alone is kept with the candidate (``Clip.derive``).
    ``timings``: when given, each stage's milliseconds are added to it. ``executor``: the
    room fit and the coherence run on it while this thread runs the network (the same
    scores; each stage's milliseconds are then its own, side by side). Any thread.
    """
    clock = _Stages(timings)
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
    clock.lap("pairs")
    if not scored:
        return list(range(len(candidates))), scores
    pairs_q, pairs_c = np.stack(pairs_q), np.stack(pairs_c)
    chosen = [(candidates[i], ci) for i, (_, ci) in zip(scored, pair_index)]

    def network() -> np.ndarray:
        if reranker.splits:
            used = sorted({qi for qi, _ in pair_index})
            read = reranker.block_features(np.asarray(query_blocks)[used], "query")
            query_features = np.stack([read[used.index(qi)] for qi, _ in pair_index])
            cand_features = np.stack([candidate_network_features(reranker, c, ci) for c, ci in chosen])
            return reranker.score_features(query_features, cand_features)
        return reranker.score(pairs_q, pairs_c)

    def room_fit() -> np.ndarray:
        terms = [candidate_room_fit_terms(c, ci) for c, ci in chosen]
        return room_fit_bonus(pairs_q, pairs_c, reranker.room_fit_weight, terms).astype(np.float32)

    def coherence() -> np.ndarray:
        spectra = [candidate_spectrum(c, ci) for c, ci in chosen]
        values = pair_coherence(query_signals, spectra, pair_index)
        return (reranker.coherence_weight * coherence_term(values)).astype(np.float32)

    terms = [("network", network)]
    if reranker.room_fit_weight > 0:
        terms.append(("room_fit", room_fit))
    if reranker.coherence_weight > 0 and query_signals is not None \
            and all(c.signals is not None for c, _ in chosen):
        terms.append(("coherence", coherence))
    if executor is None:
        done = [_timed(work) for _, work in terms]
    else:
        later = [executor.submit(_timed, work) for _, work in terms[1:]]
        done = [_timed(terms[0][1])] + [f.result() for f in later]
    # added in one order whichever ran first: the same sums as one after the other
    scores[scored] = 0.0
    for (stage, _), (value, ms) in zip(terms, done):
        scores[scored] += value
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + ms
    # a stable sort keeps the encoder's order among ties and unscored candidates
    order = sorted(range(len(candidates)), key=lambda i: -scores[i])
    return order, scores


def _timed(work) -> tuple[np.ndarray, float]:
    """``work()`` and its milliseconds."""
    t0 = time.perf_counter()
    value = work()
    return value, (time.perf_counter() - t0) * 1e3


class _Stages:
    """Adds each stage's milliseconds to a dict (or does nothing without one)."""

    def __init__(self, into: dict | None):
        self._into = into
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        if self._into is not None:
            now = time.perf_counter()
            self._into[stage] = self._into.get(stage, 0.0) + (now - self._last) * 1e3
            self._last = now


def pair_coherence(query_signals: Sequence[np.ndarray], candidate_spectra: list[np.ndarray],
                   pairs: list[tuple[int, int]]) -> np.ndarray:
    """``peak_coherence`` of each (query block, candidate block) pair in ``pairs``, the
    candidate block's ``spectrum`` in ``candidate_spectra[k]``; each query block's
    spectrum is computed once and compared with all its candidates in one pass. Any thread."""
    out = np.zeros(len(pairs))
    for qi in sorted({qi for qi, _ in pairs}):
        rows = [k for k, (q, _) in enumerate(pairs) if q == qi]
        out[rows] = peak_coherences(spectrum(query_signals[qi]), np.stack([candidate_spectra[k] for k in rows]))
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
