"""Tempo- and key-matched preview: a sample rendered to the session's tempo and key.

A loop is time-stretched to the session tempo (Rubber Band through ``pedalboard.time_stretch``)
and a tonal sample is pitch-shifted to the session key: a tonal loop by the smallest move of
its key's tonic to the session key's tonic (to the relative key's tonic when the modes
differ, so C major under a session in A minor stays put), a tonal one-shot by the smallest
move of its root note to the session tonic. Drums and atonal sounds are never pitched. A
sample whose tempo (or key) is unknown or not trusted keeps it, and the plan says why; with
nothing to change the original plays.

Rendering is progressive (``render_blocks``): a short first block, then blocks that double
in length, each rendered with a little context on both sides and joined by a short
crossfade, so the first sound needs only the first block while the rest renders faster than
it plays. The whole render is the same whether it is taken block by block or at once.

Renders are kept on disk (``MatchedCache``, in the app's cache dir) named after the source
with the new tempo and key in the name ("loop_amen (128 BPM, Am).wav"), one folder per
source content hash and rate, least recently used evicted above a size bound.

No Qt, no engine: pure functions and small classes; any thread may call them (a
``MatchedCache`` serialises its own writes).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.errors import SampleScoutError

MIN_TEMPO_CONFIDENCE = 0.3
MIN_KEY_CONFIDENCE = 0.3
MIN_ROOT_CONFIDENCE = 0.3
MIN_BPM, MAX_BPM = 40.0, 300.0
MAX_STRETCH = 2.0            # a bigger tempo change plays the loop at half or double time
FIRST_BLOCK_S = 0.25         # the first block: what must render before the first sound
CONTEXT_S = 0.1              # input rendered past each block's edges, then dropped
CROSSFADE_S = 0.005
CACHE_FOLDER = "matched"
CACHE_MAX_BYTES = 512 * 1024 * 1024
KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
DRUM_TAGS = frozenset({"kick", "snare", "clap", "closed hat", "open hat", "cymbal", "tom",
                       "percussion", "drum loop"})


class MatchError(SampleScoutError):
    """A session tempo or key that cannot be used (one line for the user)."""


@dataclass(frozen=True)
class Target:
    """The session's tempo and key; either may be None (not matched)."""
    bpm: float | None = None
    key: str | None = None          # "Am", "F#", "Bb minor" ...

    def __post_init__(self):
        if self.bpm is not None and not MIN_BPM <= float(self.bpm) <= MAX_BPM:
            raise MatchError(f"session tempo must be {MIN_BPM:.0f}-{MAX_BPM:.0f} BPM, not {self.bpm}")
        if self.key:
            parse_key(self.key)

    @property
    def tonic_mode(self) -> tuple[int, str] | None:
        return parse_key(self.key) if self.key else None

    @property
    def key_label(self) -> str:
        tm = self.tonic_mode
        return "" if tm is None else key_label(*tm)


def parse_key(text: str) -> tuple[int, str]:
    """"Am", "F# major", "Bb minor" -> (tonic 0-11, 'major'|'minor'); MatchError otherwise."""
    from models.key import parse_key as parse
    try:
        return parse(text)
    except ValueError as exc:
        raise MatchError(str(exc)) from None


def key_label(tonic: int, mode: str) -> str:
    return KEY_NAMES[tonic % 12] + ("m" if mode == "minor" else "")


@dataclass(frozen=True)
class SourceInfo:
    """What the matcher needs to know about a sample (None: unknown or abstained)."""
    kind: str | None = None                  # 'loop' or 'one-shot'
    tempo_bpm: float | None = None
    tempo_confidence: float | None = None
    key_tonic: int | None = None
    key_mode: str | None = None
    key_confidence: float | None = None
    root_midi: int | None = None
    root_confidence: float | None = None
    tags: tuple[str, ...] = ()
    content_hash: str | None = None
    origin: str = ""                         # 'catalog' or 'detected'

    @property
    def drums(self) -> bool:
        return bool(self.tags) and self.tags[0] in DRUM_TAGS

    @property
    def key_text(self) -> str:
        return "" if self.key_tonic is None else key_label(self.key_tonic, self.key_mode or "major")


@dataclass(frozen=True)
class MatchPlan:
    """How one sample is matched: ``stretch`` is pedalboard's stretch factor (output length =
    input length / stretch; 1: tempo kept), ``semitones`` the pitch shift; ``notes`` say what
    was kept and why."""
    stretch: float = 1.0
    semitones: int = 0
    bpm: float | None = None        # the tempo it plays at (None: its own, unchanged)
    key: str = ""                   # the key (or note) it plays in after the shift, "" kept
    notes: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return abs(self.stretch - 1.0) > 1e-6 or self.semitones != 0

    @property
    def reason(self) -> str:
        """One line: what was kept and why ('' when everything matched)."""
        return "; ".join(self.notes)

    def suffix(self) -> str:
        """"128 BPM, Am", "128 BPM", "Am": what changed, for the file name."""
        parts = []
        if abs(self.stretch - 1.0) > 1e-6 and self.bpm is not None:
            parts.append(f"{self.bpm:g} BPM")
        if self.semitones and self.key:
            parts.append(self.key)
        return ", ".join(parts)

    def output_frames(self, input_frames: int) -> int:
        return int(round(input_frames / self.stretch))


def plan_match(source: SourceInfo, target: Target) -> MatchPlan:
    """The stretch and shift that bring ``source`` to ``target`` (see the module docstring)."""
    notes: list[str] = []
    stretch, bpm = 1.0, None
    loop = source.kind == "loop"
    if target.bpm is not None and loop:
        if source.tempo_bpm is None:
            notes.append("tempo kept: the loop's tempo is unknown")
        elif (source.tempo_confidence or 0.0) < MIN_TEMPO_CONFIDENCE:
            notes.append(f"tempo kept: the loop's tempo ({source.tempo_bpm:.0f} BPM) is uncertain")
        else:
            tempo = float(target.bpm)
            stretch = tempo / float(source.tempo_bpm)
            if stretch > MAX_STRETCH or stretch < 1.0 / MAX_STRETCH:
                fold = 2.0 ** round(math.log2(stretch))
                stretch /= fold
                notes.append("half time" if fold > 1 else "double time")
            bpm = round(tempo, 2)
            if abs(stretch - 1.0) < 1e-4:
                stretch = 1.0
    elif target.bpm is not None and source.kind != "one-shot":
        notes.append("tempo kept: not known to be a loop")
    semitones, key = 0, ""
    wanted = target.tonic_mode
    if wanted is not None:
        if source.drums:
            notes.append("pitch kept: drums")
        elif loop or source.key_tonic is not None:
            if source.key_tonic is None:
                notes.append("pitch kept: the loop's key is unknown (atonal or drums)")
            elif (source.key_confidence or 0.0) < MIN_KEY_CONFIDENCE:
                notes.append(f"pitch kept: the loop's key ({source.key_text}) is uncertain")
            else:
                mode = source.key_mode or "major"
                tonic = wanted[0]
                if mode != wanted[1]:        # the relative key in the loop's own mode
                    tonic = (tonic + (3 if wanted[1] == "minor" else -3)) % 12
                semitones = smallest_move(source.key_tonic, tonic)
                key = key_label(tonic, mode)
        elif source.root_midi is None:
            notes.append("pitch kept: no root note (atonal)")
        elif (source.root_confidence or 0.0) < MIN_ROOT_CONFIDENCE:
            notes.append("pitch kept: the root note is uncertain")
        else:
            semitones = smallest_move(source.root_midi % 12, wanted[0])
            key = key_label(*wanted)
    return MatchPlan(stretch=stretch, semitones=semitones, bpm=bpm, key=key, notes=tuple(notes))


def smallest_move(from_pc: int, to_pc: int) -> int:
    """Semitones from one pitch class to another, the shorter way (-5..+6; a tritone goes up)."""
    move = (to_pc - from_pc) % 12
    return move - 12 if move > 6 else move


# ---- rendering -----------------------------------------------------------------------------

def block_edges(output_frames: int, sample_rate: int, first_s: float = FIRST_BLOCK_S) -> list[int]:
    """Output frames where the progressive blocks start and end: a short first block, then
    each block twice the one before (each renders while the one before plays)."""
    edges = [0]
    size = max(1, int(first_s * sample_rate))
    while edges[-1] < output_frames:
        edges.append(min(output_frames, edges[-1] + size))
        size *= 2
    return edges


def render_blocks(audio: np.ndarray, sample_rate: int, plan: MatchPlan, out: np.ndarray,
                  first_s: float = FIRST_BLOCK_S, high_quality: bool = True) -> Iterator[int]:
    """Render ``audio`` (frames, channels) float32 into ``out`` (plan.output_frames, channels)
    block by block; yields the frames of ``out`` that are final after each block.

    Each block renders its input span plus CONTEXT_S either side and keeps the output span it
    owns plus a crossfade into the next block. The pitch moves by resampling: Rubber Band
    stretches by ``stretch / r`` (r = 2^(semitones/12)), then soxr resamples by 1/r, which
    raises the pitch by r and brings the length to ``1/stretch`` (several times faster than
    Rubber Band's own pitch shifter, formants move with the pitch as a sampler's do).
    ``high_quality``: Rubber Band's finer R3 engine (files), else the faster R2 (previews).
    Any thread (not the audio callback)."""
    frames = audio.shape[0]
    total = out.shape[0]
    if total != plan.output_frames(frames):
        raise ValueError(f"output holds {total} frames, the plan makes {plan.output_frames(frames)}")
    if not plan.changes:
        out[:] = audio
        yield total
        return
    context = int(CONTEXT_S * sample_rate)
    fade = int(CROSSFADE_S * sample_rate)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)[:, None] if fade else None
    edges = block_edges(total, sample_rate, first_s)
    for a, b in zip(edges[:-1], edges[1:]):
        last = b == total
        keep_end = total if last else min(total, b + fade)
        i0 = max(0, int(math.floor(a * plan.stretch)) - context)
        i1 = min(frames, int(math.ceil(keep_end * plan.stretch)) + context)
        y = _stretch_and_shift(audio[i0:i1], sample_rate, plan, high_quality)
        offset = int(round(i0 / plan.stretch))      # output frame of y[0]
        segment = _slice_padded(y, a - offset, keep_end - offset)
        if a > 0 and ramp is not None:
            n = min(fade, segment.shape[0])
            out[a:a + n] = out[a:a + n] * (1.0 - ramp[:n]) + segment[:n] * ramp[:n]
            out[a + n:keep_end] = segment[n:]
        else:
            out[a:keep_end] = segment
        yield b


def _stretch_and_shift(x: np.ndarray, sample_rate: int, plan: MatchPlan,
                       high_quality: bool) -> np.ndarray:
    """(frames, channels) -> about frames/stretch frames, ``plan.semitones`` higher."""
    import pedalboard
    import soxr

    ratio = 2.0 ** (plan.semitones / 12.0)
    factor = plan.stretch / ratio
    y = x
    if abs(factor - 1.0) > 1e-9:
        y = pedalboard.time_stretch(np.ascontiguousarray(x.T), sample_rate, stretch_factor=factor,
                                    high_quality=high_quality).T
    if plan.semitones:
        y = soxr.resample(np.ascontiguousarray(y), sample_rate * ratio, sample_rate, quality="HQ")
    return np.asarray(y, np.float32)


def _slice_padded(y: np.ndarray, start: int, stop: int) -> np.ndarray:
    """y[start:stop] with zeros where the range falls outside y."""
    part = np.zeros((stop - start, y.shape[1]), np.float32)
    lo, hi = max(0, start), min(y.shape[0], stop)
    if hi > lo:
        part[lo - start:hi - start] = y[lo:hi]
    return part


def render(audio: np.ndarray, sample_rate: int, plan: MatchPlan,
           high_quality: bool = True) -> np.ndarray:
    """The whole matched render of ``audio`` (frames, channels) at once. Any thread."""
    audio = np.ascontiguousarray(audio, np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    out = np.zeros((plan.output_frames(audio.shape[0]), audio.shape[1]), np.float32)
    for _ in render_blocks(audio, sample_rate, plan, out, high_quality=high_quality):
        pass
    return out


# ---- what a sample is -------------------------------------------------------------------------

def content_hash(path: str | os.PathLike) -> str:
    """A short hash of the file's bytes (renders of the same content are shared)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_from_catalog(catalog, path: str | os.PathLike) -> SourceInfo | None:
    """The library's analysis of ``path`` (``Catalog.sounds`` and tags), None when the file
    is not in the library. The catalog's thread."""
    row = catalog.file_by_path(os.fspath(path))
    if row is None:
        return None
    sound = catalog.sounds([row.id]).get(row.id)
    tags = tuple(t.tag for t in catalog.tags([row.id]).get(row.id, []))
    if sound is None:
        return SourceInfo(kind=row.kind, tags=tags, content_hash=row.content_hash, origin="catalog")
    return SourceInfo(kind=row.kind, tempo_bpm=sound.tempo_bpm,
                      tempo_confidence=sound.tempo_confidence, key_tonic=sound.key_tonic,
                      key_mode=sound.key_mode, key_confidence=sound.key_confidence,
                      root_midi=sound.root_midi, root_confidence=sound.root_confidence,
                      tags=tags, content_hash=row.content_hash, origin="catalog")


def detect_source(path: str | os.PathLike, analysis_rate: int = 22050) -> SourceInfo:
    """Run the tempo, key and root detectors on a file that is not in the library: a loop
    when a tempo is found, else a one-shot. Raises DecodeError for an unreadable file."""
    from app.decode import read_mono
    from app.thesaurus import name_tags
    from models import key as key_model
    from models import pitch, tempo

    path = os.fspath(path)
    audio = read_mono(path, analysis_rate, max_seconds=30.0)
    tags = tuple(t.tag for t in name_tags(path))
    estimate = tempo.estimate_tempo(audio, analysis_rate, name=path)
    drums = bool(tags) and tags[0] in DRUM_TAGS
    from app.analysis import named_loop
    loop = estimate.bpm is not None or named_loop(path, audio.size / analysis_rate)
    fields: dict = {}
    if loop and not drums:
        k = key_model.estimate_key(audio, analysis_rate)
        if k.tonic is not None:
            fields = dict(key_tonic=k.tonic, key_mode=k.mode, key_confidence=k.confidence)
    elif not drums:
        root = pitch.estimate_root(audio, analysis_rate)
        if root.midi is not None:
            fields = dict(root_midi=root.midi, root_confidence=root.confidence)
    if estimate.bpm is not None:
        fields.update(tempo_bpm=float(estimate.bpm), tempo_confidence=float(estimate.confidence))
    return SourceInfo(kind="loop" if loop else "one-shot", tags=tags, origin="detected", **fields)


def source_info(path: str | os.PathLike, library_dir: str | os.PathLike | None = None) -> SourceInfo:
    """The catalog's analysis when ``path`` is in the library at ``library_dir``, else the
    detectors'. Any thread (opens its own catalog connection)."""
    if library_dir is not None:
        from app.catalog import Catalog
        from app.paths import CATALOG_FILENAME
        catalog_path = Path(library_dir) / CATALOG_FILENAME
        if catalog_path.exists():
            with Catalog(catalog_path) as catalog:
                found = source_from_catalog(catalog, path)
            if found is not None:
                return found
    return detect_source(path)


# ---- the cache of renders ---------------------------------------------------------------------------

def matched_name(source: str | os.PathLike, plan: MatchPlan) -> str:
    """"loop_amen (128 BPM, Am).wav": the source's name with what changed."""
    stem = Path(source).stem
    suffix = re.sub(r"[^\w\-.,# ]+", "_", plan.suffix())
    return f"{stem} ({suffix}).wav" if suffix else f"{stem}.wav"


@dataclass
class MatchedCache:
    """Renders on disk, named by ``matched_name`` in a folder per (content hash, rate), least
    recently used removed above ``max_bytes``. Any thread."""
    directory: Path
    max_bytes: int = CACHE_MAX_BYTES
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def default(cls) -> "MatchedCache":
        from app.paths import cache_dir
        return cls(cache_dir() / CACHE_FOLDER)

    def path_for(self, source: str | os.PathLike, digest: str, plan: MatchPlan,
                 sample_rate: int, high_quality: bool = True) -> Path:
        # the plan's exact figures and the quality are in the folder name, so two renders
        # never share a file
        detail = f"{plan.stretch:.6f}_{plan.semitones:+d}_{'hq' if high_quality else 'fast'}"
        return self.directory / f"{digest[:20]}_{sample_rate}_{detail}" / matched_name(source, plan)

    def get(self, path: Path) -> Path | None:
        """``path`` when it was rendered before (and marks it used), else None."""
        try:
            _touch(path)
        except OSError:
            return None
        return path

    def put(self, path: Path, audio: np.ndarray, sample_rate: int) -> Path:
        """Write a render atomically, then evict beyond the size bound (never ``path``)."""
        import soundfile as sf
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp.wav")
        sf.write(tmp, audio, sample_rate, subtype="FLOAT")
        os.replace(tmp, path)
        _touch(path)
        self.evict(keep=path)
        return path

    def size(self) -> int:
        return sum(f.stat().st_size for f in self.directory.glob("*/*.wav"))

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove the least recently used renders until the cache fits; the removed paths."""
        with self._lock:
            files = []
            for f in self.directory.glob("*/*.wav"):
                try:
                    st = f.stat()
                except OSError:
                    continue
                files.append((st.st_mtime_ns, st.st_size, f))
            total = sum(size for _, size, _ in files)
            removed = []
            for _, size, f in sorted(files, key=lambda item: item[0]):
                if total <= self.max_bytes:
                    break
                if keep is not None and f == keep:
                    continue
                try:
                    f.unlink()
                    removed.append(f)
                    total -= size
                    if not any(f.parent.iterdir()):
                        f.parent.rmdir()
                except OSError:
                    continue
            return removed


def _touch(path: Path) -> None:
    """Mark a render used now (the fine clock: the file system's own ticks are coarse)."""
    import time
    now = time.time_ns()
    os.utime(path, ns=(now, now))


def render_file(path: str | os.PathLike, target: Target, *, library_dir=None,
                sample_rate: int | None = None, cache: MatchedCache | None = None,
                source: SourceInfo | None = None) -> tuple[Path | None, MatchPlan]:
    """The matched render of a file as a wav in the cache (reused when there), and its plan;
    (None, plan) when nothing changes (the plan's notes say why). ``sample_rate``: the
    render's rate (the file's own when None). Any thread but the audio callback."""
    import soundfile as sf
    import soxr

    path = os.fspath(path)
    source = source or source_info(path, library_dir)
    plan = plan_match(source, target)
    if not plan.changes:
        return None, plan
    from app.decode import probe
    rate = int(sample_rate or probe(path).sample_rate)
    cache = cache or MatchedCache.default()
    out = cache.path_for(path, source.content_hash or content_hash(path), plan, rate)
    if cache.get(out) is not None:
        return out, plan
    data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    if file_rate != rate:
        data = soxr.resample(data, file_rate, rate, quality="HQ").astype(np.float32)
    return cache.put(out, render(data, rate, plan), rate), plan


class Prerenderer:
    """Renders one file's match in the background (the newest request wins), so that the
    drag that often follows an audition finds its render in the cache. ``render`` is the
    drag's own call: it waits for a background render of the same match instead of doing
    the work twice. Any thread; the work runs on this object's daemon thread."""

    def __init__(self, library_dir=None, cache: MatchedCache | None = None):
        self.library_dir = library_dir
        self.cache = cache
        self._cond = threading.Condition()
        self._wanted: tuple[str, Target] | None = None
        self._busy: tuple[str, Target] | None = None
        self.done = 0
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="matched-prerender", daemon=True)
        self._thread.start()

    def prepare(self, path: str | os.PathLike, target: Target) -> None:
        """Render ``path`` matched to ``target`` soon (replacing a request not started)."""
        with self._cond:
            self._wanted = (os.fspath(path), target)
            self._cond.notify_all()

    def render(self, path: str | os.PathLike, target: Target) -> tuple[Path | None, MatchPlan]:
        """``render_file`` for ``path`` and ``target``, after a background render of the same."""
        key = (os.fspath(path), target)
        with self._cond:
            if self._wanted == key:
                self._wanted = None          # done here, now
            while self._busy == key:
                self._cond.wait()
        return render_file(key[0], target, library_dir=self.library_dir, cache=self.cache)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._wanted is None and self._busy is None, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted is not None)
                self._busy, self._wanted = self._wanted, None
            try:
                render_file(self._busy[0], self._busy[1], library_dir=self.library_dir,
                            cache=self.cache)
                self.done += 1
            except Exception as exc:  # noqa: BLE001 - the drag will render (and say why) itself
                self.errors = (self.errors + [f"{self._busy[0]}: {exc}"])[-8:]
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()
