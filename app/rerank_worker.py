"""The re-ranking in a process of its own, so that the window's process keeps its GIL.

``RerankWorker`` has the face ``app.query.search`` needs of a re-ranker (``k``,
``reranker``, ``rerank``) and hands the work to a child process that holds its own
``FileReranker`` (encoder, network, the cache of decoded candidate blocks). The live
matcher also tells it, from a hit's early answers, which files the final answer will
re-rank (``prepare``): the child decodes them and derives what scoring them needs of them
alone while the hit still sounds, so that the final re-ranking does only the query's share.

Messages go over one pipe, in order, except that the child reads ahead one file at a time
between them, so a re-ranking never waits behind a whole read-ahead. It answers each
re-ranking with the order, the scores, which files could be read and each stage's
milliseconds, with "queued" (from the request's sending to the child taking it up: the
pipe, and the one file it may be reading ahead) and "total" (the child's work on it). If
the child is gone (killed, crashed), the re-ranking runs in this process (the same answer,
only slower) and the worker says so in ``stats``.

Threads: every method may be called from any thread (one lock around the pipe); ``close``
from the owner. The child dies with its parent (``app.lifeline``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time

import numpy as np

from app.rerank import FileReranker, add_stages, apply_order, candidate_keys

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 10.0   # a re-ranking takes well under a second; past this the child is stuck
TERM_THREADS = 2         # the room fit and the coherence, beside the network


class RerankWorker:
    """See the module docstring. ``local``: the in-process ``FileReranker`` it stands for
    (its models' files are loaded again in the child; it answers when the child cannot)."""

    def __init__(self, local: FileReranker):
        self.local = local
        self.k = local.k
        self.reranker = local.reranker
        self._lock = threading.Lock()
        self._alive = True
        self._stats = {"reranked": 0, "prepared": 0, "fallbacks": 0, "before_ready": 0, "last_ms": {}}
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, name="samplescout-rerank", daemon=True,
                                 args=(child, os.getpid(), str(local.reranker.model_path),
                                       str(local.encoder.model_path), local.k))
        self._proc.start()
        child.close()
        self._ready = threading.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> bool:
        """Block until the child has loaded its models (True), or it failed or ``timeout``
        passed (False, and re-ranking runs here from now on). Any thread."""
        with self._lock:
            if self._ready_now(timeout):
                return True
            self._lost("did not start")
            return False

    def _ready_now(self, timeout: float = 0.0) -> bool:
        """Under the lock: has the child said it is ready (waiting up to ``timeout``)?"""
        if self._ready.is_set() or not self._alive:
            return self._alive
        try:
            if self._conn.poll(timeout):
                if self._conn.recv() == ("ready",):
                    self._ready.set()
                    return True
                self._lost("it did not greet")
        except (EOFError, OSError) as exc:
            self._lost(f"{type(exc).__name__}: {exc}")
        return False

    def rerank(self, results: list, query_blocks: np.ndarray, query_vectors: np.ndarray,
               query_signals=None, depth: int | None = None, timings: dict | None = None) -> list:
        """As ``FileReranker.rerank``, in the child; here while the child is still loading
        or gone. ``timings`` as there, with the child's "rerank_queued" and "rerank_total"
        (see the module docstring). Any thread."""
        depth = depth or self.k
        head = results[:depth]
        if len(head) < 2 or len(query_blocks) == 0:
            return results
        signals = _portable_signals(query_signals)
        with self._lock:
            if self._ready_now():
                try:
                    self._conn.send(("order", candidate_keys(head), np.asarray(query_blocks, np.float32),
                                     np.asarray(query_vectors, np.float32), signals, time.monotonic()))
                    if not self._conn.poll(REPLY_TIMEOUT_S):
                        raise OSError(f"no answer in {REPLY_TIMEOUT_S:.0f} s")
                    reply = self._conn.recv()
                except (EOFError, OSError, ValueError) as exc:
                    self._lost(f"{type(exc).__name__}: {exc}")
                else:
                    if reply[0] == "order":
                        _, order, reranked, readable, stages = reply
                        self._stats["reranked"] += 1
                        self._stats["last_ms"] = stages
                        add_stages(timings, stages)
                        return apply_order(results, depth, order, reranked, readable)
                    log.warning("re-ranking worker failed: %s", reply[1])
            self._stats["fallbacks" if not self._alive or self._ready.is_set() else "before_ready"] += 1
        return self.local.rerank(results, query_blocks, query_vectors, query_signals, depth=depth,
                                 timings=timings)

    def prepare(self, results: list) -> None:
        """Have the child read the first ``k`` of ``results`` (a hit's early answer) before
        the final answer asks to re-rank them; returns at once. Any thread."""
        head = results[:self.k]
        if len(head) < 2:
            return
        with self._lock:
            if not self._alive:
                return
            try:
                self._conn.send(("prepare", candidate_keys(head)))
                self._stats["prepared"] += 1
            except (OSError, ValueError) as exc:
                self._lost(f"{type(exc).__name__}: {exc}")

    def stats(self) -> dict:
        """Re-rankings done in the child, prepares sent, re-rankings done here because the
        child was gone (fallbacks) or still loading (before_ready), and the last
        re-ranking's milliseconds per stage (in the child). Any thread."""
        with self._lock:
            return {**self._stats, "alive": self._alive, "last_ms": dict(self._stats["last_ms"])}

    def close(self) -> None:
        """Stop the child and reap it. The owner's thread; safe to call twice."""
        with self._lock:
            if self._alive:
                try:
                    self._conn.send(("quit",))
                except (OSError, ValueError):
                    pass
            self._alive = False
        self._proc.join(CLOSE_TIMEOUT_S)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(CLOSE_TIMEOUT_S)
        self._conn.close()

    def _lost(self, why: str) -> None:
        """Under the lock: the child is gone; re-rank here from now on."""
        if self._alive:
            log.warning("re-ranking worker lost (%s): re-ranking in this process", why)
        self._alive = False
        if self._proc.is_alive():
            self._proc.kill()


def _portable_signals(query_signals):
    """What the child makes the query's coherence signals from: a ``BlockSignals``' recipe
    (audio and block starts, resampled there) or the signals themselves; None if absent."""
    if query_signals is None:
        return None
    recipe = getattr(query_signals, "recipe", None)
    if recipe is not None:
        return ("recipe",) + recipe()
    return ("signals", [np.asarray(s, np.float32) for s in query_signals])


def _prepare_one(local: FileReranker, key: tuple[str, float]) -> None:
    """The child: read one file ahead; a file that fails here fails again, and is reported,
    when a re-ranking asks for it."""
    try:
        local.prepare([key])
    except Exception:  # noqa: BLE001
        pass


def _serve(conn, parent_pid: int, reranker_path: str, encoder_path: str, k: int) -> None:
    """The child: load the models, then answer messages until 'quit' or the pipe closes."""
    from concurrent.futures import ThreadPoolExecutor

    from app.lifeline import die_with_parent
    from models import room_fit
    from models.coherence import BlockSignals
    from models.encoder import Encoder
    from models.reranker import Reranker

    die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group: the owner decides when this process ends
    # ("quit", the pipe closing or its own death), not the terminal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # onnxruntime's arenas kept: the live answer waits for this process (models.onnx_session)
    reranker = Reranker(reranker_path, split=True, arena=True)
    # the score's terms side by side: this process is the one working while the matcher
    # waits for its answer
    local = FileReranker(reranker, Encoder(encoder_path, arena=True), k=k,
                         executor=ThreadPoolExecutor(TERM_THREADS, thread_name_prefix="rerank-terms"))
    reranker.splits            # noqa: B018 — cut the network now, not during the first hit
    if reranker.room_fit_weight > 0:
        room_fit.warm_up()     # compiled (or loaded) now, not during the first hit
    conn.send(("ready",))
    # files to read ahead, one at a time between messages: a re-ranking asked for meanwhile
    # goes first (it reads what it needs itself), and a newer hit's files replace an older's
    ahead: list[tuple[str, float]] = []
    while True:
        try:
            if ahead and not conn.poll():
                _prepare_one(local, ahead.pop(0))
                continue
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "quit":
            return
        try:
            if message[0] == "prepare":
                ahead = list(message[1])
            elif message[0] == "order":
                _, keys, blocks, vectors, signals, sent = message
                # from the request's sending to here: the pipe, and a read-ahead of one file
                timings: dict = {"queued": (time.monotonic() - sent) * 1e3}
                t0 = time.perf_counter()
                if signals is not None and signals[0] == "recipe":
                    signals = BlockSignals.at(signals[1], signals[2])
                elif signals is not None:
                    signals = signals[1]
                order, reranked, readable = local.order(keys, blocks, vectors, signals, timings)
                timings["total"] = (time.perf_counter() - t0) * 1e3
                conn.send(("order", order, reranked, readable, timings))
        except Exception as exc:  # noqa: BLE001 — one bad request must not end the worker
            if message[0] == "order":
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
