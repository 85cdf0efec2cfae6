"""Near-duplicate groups: one sound stored more than once, under other names or formats.

``update(library)`` checks the files that are new or changed since their last check (a scan
that stores a file gives it a new content hash or a new row, which is what marks it): each
one's nearest files in the index above ``CANDIDATE_COSINE`` are candidates, and each
candidate pair is verified on the audio (``app.dup_verify``): *exact* (same decoded
samples), *near* (one recording through a codec, a resampler, another bit depth, a trim,
a fade, a gain or a mono fold) or *variant* (played faster or slower: pitched or
stretched by resampling). Pairs are stored in the catalog; ``groups(library)`` joins them
into groups.

Files that one Hydrogen kit (``drumkit.xml``) declares as its parts never pair: a kit's
velocity layers are often one recording at several gains, which no audio test can tell
from a gain-changed copy, and the kit needs every one of them.

``move_to_trash`` moves files to the freedesktop trash (``$XDG_DATA_HOME/Trash``) and the
library forgets them; it never unlinks.

Threads: the thread that owns the ``Library``.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import OrderedDict, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from app.catalog import FileRow
from app.decode import DecodeError, read_native_mono
from app.dup_verify import VERIFY_RATE, Checked, Verdict, pcm_hash, prepare, verify
from app.library import Library
from app.lifeline import init_background_worker
from app.priority import scan_workers
from engine.errors import SampleScoutError

CANDIDATE_COSINE = 0.75   # nearest files below this cosine are not verified
CANDIDATES_PER_FILE = 10
# prepared audio kept for the candidates to come, in bytes: a file's candidates are often
# checked again as other files' candidates, and decoding was a sixth of a check's time
# with 64 files kept (each Debian file decoded three times on average)
DECODED_BYTES = 192 << 20
PROCESS_MIN_FILES = 32    # fewer files are verified on the calling thread (a pool takes ~1 s to start)
ROWS_IN_FLIGHT = 3        # files handed to each verifying process ahead of their turn


class TrashError(SampleScoutError):
    """A file could not be moved to the trash (it stays where it was)."""


@dataclass
class UpdateReport:
    checked: int = 0           # files checked in this run
    candidates: int = 0        # candidate pairs verified
    pairs: int = 0             # pairs found
    failed: list[str] = field(default_factory=list)   # files that could not be decoded
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Pair:
    a: FileRow
    b: FileRow
    label: str
    correlation: float
    offset_s: float
    ratio: float
    trimmed: bool

    def as_dict(self) -> dict:
        return {"a": self.a.path, "b": self.b.path, "label": self.label,
                "correlation": round(self.correlation, 4), "offset_s": round(self.offset_s, 3),
                "ratio": round(self.ratio, 5),
                "semitones": round(float(12.0 * np.log2(self.ratio)), 3),
                "trimmed": self.trimmed}


@dataclass(frozen=True)
class Group:
    files: tuple[FileRow, ...]
    pairs: tuple[Pair, ...]

    def as_dict(self) -> dict:
        return {"files": [{"path": f.path, "duration_s": f.duration, "sample_rate": f.sample_rate,
                           "channels": f.channels, "kind": f.kind, "size": f.size,
                           "exists": os.path.exists(f.path)} for f in self.files],
                "pairs": [p.as_dict() for p in self.pairs]}


# -- kits ----------------------------------------------------------------------

class KitManifests:
    """Which kit manifest (``drumkit.xml`` beside the file) declares a file, if any."""

    def __init__(self) -> None:
        self._by_folder: dict[str, frozenset[str]] = {}

    def kit_of(self, path: str) -> str | None:
        folder = os.path.dirname(path)
        declared = self._by_folder.get(folder)
        if declared is None:
            declared = self._by_folder[folder] = _declared_files(folder)
        return folder if os.path.basename(path) in declared else None


def _declared_files(folder: str) -> frozenset[str]:
    manifest = os.path.join(folder, "drumkit.xml")
    try:
        if not os.path.isfile(manifest) or os.path.getsize(manifest) > 4 << 20:
            return frozenset()
        with open(manifest, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        root = ET.fromstring(re.sub(r'\sxmlns="[^"]*"', "", text, count=1))
    except (OSError, ET.ParseError):
        return frozenset()
    return frozenset(os.path.basename(el.text.strip()) for el in root.iter("filename")
                     if el.text and el.text.strip())


# -- checking ---------------------------------------------------------------------

class _Decoded:
    """Prepared audio (at most ``DECODED_BYTES``, least recently used first out) and PCM
    hashes of the files seen."""

    def __init__(self, known_hashes: dict[int, str]):
        self._audio: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0
        self.hashes = dict(known_hashes)

    def get(self, row: FileRow) -> np.ndarray:
        if row.id in self._audio:
            self._audio.move_to_end(row.id)
            return self._audio[row.id]
        native, info = read_native_mono(row.path)
        self.hashes[row.id] = pcm_hash(native, info.sample_rate) + f":{info.channels}"
        audio = prepare(native, info.sample_rate)
        self._audio[row.id] = audio
        self._bytes += audio.nbytes
        while self._bytes > DECODED_BYTES and len(self._audio) > 1:
            self._bytes -= self._audio.popitem(last=False)[1].nbytes
        return audio

    def hash_of(self, row: FileRow) -> str:
        if row.id not in self.hashes:
            self.get(row)
        return self.hashes[row.id]


def update(library: Library, *, progress: Callable[[int, int, str], None] | None = None,
           workers: int | None = None) -> UpdateReport:
    """Check every new or changed indexed file against its nearest files; store the pairs.
    ``workers``: processes that verify pairs (the cores, fewer while a live session runs:
    ``app.priority.scan_workers``; the result does not depend on it). Fewer than
    ``PROCESS_MIN_FILES`` files to check, or one worker, are verified on this thread."""
    started = time.monotonic()
    report = UpdateReport()
    todo = library.catalog.duplicate_unchecked()
    library.forget_duplicate_pairs(row.id for row in todo)
    workers = scan_workers(os.cpu_count() or 1) if workers is None else max(1, int(workers))
    if workers > 1 and len(todo) >= PROCESS_MIN_FILES:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=init_background_worker,
                                 initargs=(os.getpid(),)) as pool:
            _check(library, todo, pool, workers * ROWS_IN_FLIGHT, report, progress)
    else:
        _check(library, todo, None, 0, report, progress)
    if progress is not None:
        progress(len(todo), len(todo), "")
    report.elapsed_s = time.monotonic() - started
    return report


def verify_all(mine: np.ndarray, others: list[tuple[int, np.ndarray, bool]]) -> list[tuple]:
    """The stored pairs of one checked file (prepared audio ``mine``) among its candidates
    ``(file id, prepared audio, same PCM hash)``. Any process or thread."""
    out = []
    checked = Checked(mine)
    for other_id, theirs, same in others:
        verdict = verify(checked, theirs, same_samples=same)
        if verdict is not None:
            out.append(_stored(other_id, verdict))
    return out


@dataclass
class _Checking:
    row: FileRow
    pcm_hash: str
    pairs: Future


def _check(library: Library, todo: list[FileRow], pool: ProcessPoolExecutor | None,
           in_flight: int, report: UpdateReport,
           progress: Callable[[int, int, str], None] | None) -> None:
    """``update``'s loop: decoding and the catalog on this thread; each file's candidate
    pairs verified in ``pool`` (at most ``in_flight`` files at a time) or here when None.
    Results are stored in the order of ``todo``."""
    catalog, index = library.catalog, library.index
    kits = KitManifests()
    decoded = _Decoded({})
    verified: set[tuple[int, int]] = set()
    pending: deque[_Checking] = deque()

    def store(done: _Checking) -> None:
        pairs = done.pairs.result()
        library.record_duplicate_check(done.row.id, done.row.content_hash or "", done.pcm_hash, pairs)
        report.checked += 1
        report.pairs += len(pairs)

    for n, row in enumerate(todo):
        if progress is not None:
            progress(n, len(todo), row.path)
        _, vectors = catalog.file_vectors(row.id)
        hits = index.search(vectors, CANDIDATES_PER_FILE, exclude_file_ids=[row.id]) if len(vectors) else []
        others = catalog.files_by_id(h.file_id for h in hits if h.score >= CANDIDATE_COSINE)
        decoded.hashes.update(catalog.duplicate_pcm_hashes([row.id, *others]))
        try:
            mine = decoded.get(row)
        except (DecodeError, OSError) as exc:
            report.failed.append(f"{row.path}: {exc}")
            library.record_duplicate_check(row.id, row.content_hash or "", None, [])
            continue
        jobs = []
        for other in others.values():
            key = (min(row.id, other.id), max(row.id, other.id))
            if key in verified:
                continue
            verified.add(key)
            kit = kits.kit_of(row.path)
            if kit is not None and kit == kits.kit_of(other.path):
                continue
            try:
                theirs = decoded.get(other)
                same = decoded.hash_of(row) == decoded.hash_of(other)
            except (DecodeError, OSError):
                continue
            jobs.append((other.id, theirs, same))
        report.candidates += len(jobs)
        checking = _Checking(row, decoded.hash_of(row), Future())
        if pool is None or not jobs:
            checking.pairs.set_result(verify_all(mine, jobs) if jobs else [])
        else:
            checking.pairs = pool.submit(verify_all, mine, jobs)
        pending.append(checking)
        while pending and (len(pending) > in_flight or pending[0].pairs.done()):
            store(pending.popleft())
    while pending:
        store(pending.popleft())


def _stored(other_id: int, verdict: Verdict) -> tuple:
    # the verdict places ``other`` (b) against the checked file (a)
    return (other_id, verdict.label, verdict.correlation, verdict.offset_s, verdict.ratio,
            verdict.trimmed)


def groups(library: Library) -> list[Group]:
    """The stored pairs joined into groups (largest first), files in path order."""
    stored = library.catalog.duplicate_pairs()
    parent: dict[int, int] = {}

    def find(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b, *_ in stored:
        parent[find(a)] = find(b)
    rows = library.catalog.files_by_id(parent)
    members: dict[int, list[int]] = {}
    for i in parent:
        members.setdefault(find(i), []).append(i)
    edges: dict[int, list[Pair]] = {}
    for a, b, label, corr, offset, ratio, trimmed in stored:
        if a in rows and b in rows:
            edges.setdefault(find(a), []).append(Pair(rows[a], rows[b], label, corr, offset, ratio, trimmed))
    out = []
    for root, ids in members.items():
        files = tuple(sorted((rows[i] for i in ids if i in rows), key=lambda r: r.path))
        if len(files) > 1:
            out.append(Group(files, tuple(edges.get(root, ()))))
    out.sort(key=lambda g: (-len(g.files), g.files[0].path))
    return out


# -- the trash ------------------------------------------------------------------------

def trash_dir() -> Path:
    """The user's freedesktop trash: ``$XDG_DATA_HOME/Trash`` (``~/.local/share/Trash``)."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "Trash"


def move_to_trash(library: Library, paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Move each file to the trash (with its ``.trashinfo``) and forget it in the library.

    Returns where each landed. A file on another file system than the trash is refused
    (TrashError) rather than copied and unlinked. The caller asks for confirmation first.
    """
    trash = trash_dir()
    files_dir, info_dir = trash / "files", trash / "info"
    files_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    info_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    landed = []
    for path in paths:
        source = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        if not source.is_file():
            raise TrashError(f"not a file: {source}")
        if os.stat(source).st_dev != os.stat(files_dir).st_dev:
            raise TrashError(f"{source} is on another file system than the trash ({trash})")
        name, info = _reserve_info(info_dir, source)
        target = files_dir / name
        try:
            os.rename(source, target)
        except OSError as exc:
            info.unlink(missing_ok=True)
            raise TrashError(f"cannot move {source} to the trash: {exc.strerror}") from exc
        row = library.catalog.file_by_path(str(source))
        if row is not None:
            library.remove([row.id])
        landed.append(target)
    library.save_index()
    return landed


def _reserve_info(info_dir: Path, source: Path) -> tuple[str, Path]:
    """A free name in the trash and its ``.trashinfo``, created exclusively (the spec's
    way to claim a name)."""
    stem, suffix = source.stem, source.suffix
    text = ("[Trash Info]\nPath=" + urllib.parse.quote(str(source)) +
            "\nDeletionDate=" + time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
    for n in range(10000):
        name = source.name if n == 0 else f"{stem}.{n}{suffix}"
        info = info_dir / f"{name}.trashinfo"
        try:
            fd = os.open(info, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if (info_dir.parent / "files" / name).exists():
            info.unlink()
            continue
        return name, info
    raise TrashError(f"no free name in the trash for {source.name}")
