"""Detection for a window: the same work as ``samplescout detect``, as jobs, plus a slice
of the track to audition.

``DetectTasks`` opens a ``Library`` for each ``detect`` and closes it after, so a run sees
the library as it is now. ``write_slice`` only decodes the track.
``write_slice`` writes a WAV under the app's cache dir (``detect-slices``): the host
auditions files, so the spot in the track becomes one.

Threads: a worker thread (any one thread per call; ``detect`` blocks for seconds).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from app import detect as detection
from app.decode import iter_mono
from app.detect import Detection
from app.paths import cache_dir

SLICE_SAMPLE_RATE = 44100
SLICE_FOLDER = "detect-slices"


@dataclass(frozen=True)
class TrackDetections:
    """What one ``detect`` found in a track."""
    track: str
    detections: tuple[Detection, ...]


class DetectTasks:
    """Detection jobs of one library dir (see the module docstring)."""

    def __init__(self, library_dir: str | os.PathLike):
        self.library_dir = Path(library_dir)

    def detect(self, track: str | os.PathLike, *, limit: int = 20,
               progress: Callable[[int, int], None] | None = None) -> TrackDetections:
        """The library samples heard in ``track`` (best first); ``progress(done, total)``
        from the calling thread. Raises DecodeError/OSError for
        an unreadable track and LibraryError for an empty library."""
        from app.library import Library, LibraryError
        track = os.path.abspath(os.fspath(track))
        with Library(self.library_dir) as library:
            if len(library.index) == 0:
                raise LibraryError("the library is empty: add a folder of samples first")
            found = detection.detect(library, track, limit=limit, progress=progress)
        return TrackDetections(track, tuple(found))

    def write_slice(self, track: str | os.PathLike, start_s: float, end_s: float) -> Path:
        """A mono WAV of the track from ``start_s`` to ``end_s`` in the cache dir (made
        once per track, span and track version); its path."""
        track = os.path.abspath(os.fspath(track))
        start_s, end_s = max(0.0, float(start_s)), float(end_s)
        if end_s <= start_s:
            raise ValueError(f"empty slice {start_s:.3f}–{end_s:.3f} s")
        stat = os.stat(track)
        key = hashlib.blake2b(f"{track}:{stat.st_size}:{stat.st_mtime_ns}".encode(),
                              digest_size=8).hexdigest()
        folder = cache_dir() / SLICE_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{Path(track).stem}-{key}-{int(start_s * 1000)}-{int(end_s * 1000)}.wav"
        if target.is_file():
            return target
        first, last = int(start_s * SLICE_SAMPLE_RATE), int(end_s * SLICE_SAMPLE_RATE)
        parts, at = [], 0
        for chunk in iter_mono(track, SLICE_SAMPLE_RATE):
            lo, hi = max(first - at, 0), min(last - at, chunk.size)
            if hi > lo:
                parts.append(chunk[lo:hi])
            at += chunk.size
            if at >= last:
                break
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if audio.size == 0:
            raise ValueError(f"the track ends before {start_s:.2f} s")
        partial = target.with_suffix(".part.wav")
        sf.write(partial, audio, SLICE_SAMPLE_RATE, subtype="PCM_16")
        os.replace(partial, target)
        return target
