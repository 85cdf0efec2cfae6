"""Matched auditions on the engine: sound soon after the click, the render streamed in.

``MatchedAuditions.play`` plans a file's match (``app.matched_preview``) and starts it the
fastest way there is:

* ``loaded``: this render is already in the engine (played before): play it;
* ``cached``: the render is in the disk cache: load the wav, play it;
* ``streamed``: render the first block (~0.25 s of sound) into a sample the engine reads in
  place (``AudioEngine.reserve_sample``), play it, and render the rest on the render thread
  into the same sample ahead of the playhead; the whole render then goes to the disk cache
  (as a preview-quality render, see PREVIEW_HIGH_QUALITY) and stays loaded;
* ``original``: nothing to change (or nothing known): the file itself plays, and the plan
  says why.

A newer matched audition cancels a render still streaming (its voice stops: the rest of
that sample would be silence).

Threads: ``play`` from one app thread at a time (the host's preview thread); the render
thread is this object's own; ``close`` from the owner's thread.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from app.matched_preview import (CONTEXT_S, CROSSFADE_S, FIRST_BLOCK_S, MatchedCache, MatchPlan,
                                 SourceInfo, Target, content_hash, plan_match, render_blocks,
                                 source_info)

SOURCE_MEMO = 512     # analyses remembered by (path, size, mtime)
# Previews stream from Rubber Band's faster engine (R2): its blocks render several times
# faster than R3's, so the first sound comes sooner and the rest stays ahead of the
# playhead on a busy machine; drags and `preview-match` render with R3 (bench/matched_preview.py).
PREVIEW_HIGH_QUALITY = False


@dataclass(frozen=True)
class MatchedAudition:
    """What ``play`` started: the engine voice, the plan, how (see module docstring), and the
    seconds from the call to the moment the audio was handed to the engine."""
    voice: int
    plan: MatchPlan
    how: str                  # 'loaded' | 'cached' | 'streamed' | 'original'
    handed_s: float
    render_path: str | None   # the cached render (None until a streamed one is complete)
    sample_index: int


class MatchedAuditions:
    """See the module docstring."""

    def __init__(self, engine, library_dir=None, cache: MatchedCache | None = None):
        self.engine = engine
        self.library_dir = library_dir
        self.cache = cache or MatchedCache.default()
        self._sources: dict[tuple, tuple[SourceInfo, str]] = {}
        self._loaded: dict[str, int] = {}          # render path -> engine sample index
        self._decoded: set[str] = set()            # sources the engine's sample cache holds
        self._lock = threading.Lock()
        self._generation = 0
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._render_loop, name="matched-render", daemon=True)
        self._thread.start()
        self.completed = 0          # streamed renders finished and cached
        self.cancelled = 0
        self.late_blocks = 0        # blocks finished after the playhead reached them
        self._idle = threading.Event()
        self._idle.set()

    def close(self) -> None:
        with self._lock:
            self._generation += 1
        self._jobs.put(None)
        self._thread.join(10)

    def source(self, path: str, given: SourceInfo | None = None) -> tuple[SourceInfo, str]:
        """(analysis, content hash) of a file, remembered while it is unchanged."""
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        found = self._sources.get(key)
        if found is None or given is not None:
            info = given or source_info(path, self.library_dir)
            found = (info, info.content_hash or content_hash(path))
            if len(self._sources) >= SOURCE_MEMO:
                self._sources.clear()
            self._sources[key] = found
        return found

    def play(self, path: str, target: Target, source: SourceInfo | None = None) -> MatchedAudition:
        """Start ``path`` matched to ``target`` (see the module docstring)."""
        t0 = time.perf_counter()
        with self._lock:
            self._generation += 1
        info, digest = self.source(path, source)
        plan = plan_match(info, target)
        if not plan.changes:
            index = self.engine.load_sample(path)
            voice = self.engine.play(index)
            return MatchedAudition(voice, plan, "original", time.perf_counter() - t0, None, index)
        rate = self.engine.config.sample_rate
        out = self.cache.path_for(path, digest, plan, rate, high_quality=PREVIEW_HIGH_QUALITY)
        key = os.fspath(out)
        index = self._loaded.get(key)
        if index is not None and out.exists():
            self.cache.get(out)
            voice = self.engine.play(index)
            return MatchedAudition(voice, plan, "loaded", time.perf_counter() - t0, key, index)
        if self.cache.get(out) is not None:
            index = self.engine.load_sample(key)
            self._loaded[key] = index
            voice = self.engine.play(index)
            return MatchedAudition(voice, plan, "cached", time.perf_counter() - t0, key, index)
        audio, finish = self._source_audio(path, plan)
        # the audio side attaches the sample while the first block renders into it
        index, view = self.engine.reserve_sample(plan.output_frames(audio.shape[0]), wait=False)
        blocks = render_blocks(audio, rate, plan, view, high_quality=PREVIEW_HIGH_QUALITY)
        first = next(blocks)
        self.engine.wait_sample(index)
        voice = self.engine.play(index)
        handed = time.perf_counter() - t0
        with self._lock:
            generation = self._generation
        self._idle.clear()
        self._jobs.put((generation, finish, blocks, first, voice, index, view, out, time.monotonic()))
        return MatchedAudition(voice, plan, "streamed", handed, None, index)

    def _source_audio(self, path: str, plan: MatchPlan):
        """(audio at the engine's rate, None) for a file decoded before; else (a buffer of the
        file's length holding only the head the first block needs, a function that decodes
        the whole file into it), so a long loop's first sound does not wait for its decode."""
        if path in self._decoded:
            return self.engine.cache.load(path), None
        import soundfile as sf
        import soxr

        from engine.previews import fit_channels
        rate, channels = self.engine.config.sample_rate, self.engine.config.output_channels
        info = sf.info(path)
        total = int(round(info.frames * rate / info.samplerate))
        head = int((FIRST_BLOCK_S + CROSSFADE_S) * rate * plan.stretch) + 2 * int(CONTEXT_S * rate)
        margin = 2048                                   # resampler edge past what is used
        file_frames = int(math.ceil((head + margin) * info.samplerate / rate))
        if file_frames >= info.frames:
            self._decoded.add(path)
            return self.engine.cache.load(path), None
        data, file_rate = sf.read(path, frames=file_frames, dtype="float32", always_2d=True)
        if file_rate != rate:
            data = soxr.resample(data, file_rate, rate, quality="HQ")
        audio = np.zeros((total, channels), np.float32)
        n = min(total, data.shape[0] - margin)
        audio[:n] = fit_channels(np.asarray(data[:n], np.float32), channels)

        def finish() -> None:
            whole = self.engine.cache.load(path)
            m = min(total, whole.shape[0])
            audio[:m] = whole[:m]
            self._decoded.add(path)

        return audio, finish

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once no streamed render is in progress (tests, benchmarks)."""
        return self._idle.wait(timeout)

    def loaded_render(self, path: str) -> int | None:
        """The engine sample index holding the finished render at ``path``, if any."""
        return self._loaded.get(os.fspath(path))

    def _render_loop(self) -> None:
        rate = self.engine.config.sample_rate
        while True:
            job = self._jobs.get()
            if job is None:
                self._idle.set()
                return
            generation, finish, blocks, written, voice, index, view, out, started = job
            try:
                if finish is not None:
                    finish()
                done = True
                for ready in blocks:
                    if self._generation != generation:
                        done = False
                        break
                    if (time.monotonic() - started) * rate > written:
                        self.late_blocks += 1       # the playhead was in this block already
                    written = ready
                if not done or self._generation != generation:
                    self.cancelled += 1
                    self.engine.stop_voice(voice)
                else:
                    self.cache.put(out, np.array(view), rate)
                    self._loaded[os.fspath(out)] = index
                    self.completed += 1
            except Exception as exc:  # noqa: BLE001 — a failed render must not end the thread
                import sys
                print(f"samplescout: matched render of {out.name} failed: {exc}", file=sys.stderr)
            finally:
                if self._jobs.empty():
                    self._idle.set()
