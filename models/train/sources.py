"""Training audio from Debian packages, read straight from where the packages install it.

Every source names its Debian package; :data:`FORBIDDEN_PACKAGES` (the retrieval
benchmark's sample sets and the packages reserved for independent evaluation) are never
read: :func:`check_not_forbidden` refuses any path that one of them installed.
Runs in the data-preparation process only.
"""

from __future__ import annotations

import io
import pathlib
import struct
import subprocess
import zipfile
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from models.level_twins import TWIN_CORRELATION, group_ids
from models.level_twins import level_twin_groups as _twin_groups

SAMPLE_RATE = 44100

FORBIDDEN_PACKAGES = (
    "hydrogen-drumkits", "hydrogen-drumkits-effects", "sonic-pi-samples", "lmms-common",
    "freepats", "timgm6mb-soundfont", "neverball-data", "neverball-common", "warzone2100-data",
    "sound-theme-freedesktop", "musescore-general-soundfont",
)
# Packages reserved for independent evaluation: no model here is trained or tuned on them
# (the tagger trains on the retrieval benchmark's sets above, never on these).
RESERVED_PACKAGES = (
    "freepats", "timgm6mb-soundfont", "warzone2100-data", "sound-theme-freedesktop",
    "neverball-data", "neverball-common", "musescore-general-soundfont",
)

PACKAGES = {
    "fluid-soundfont-gm": "MIT",
    "avldrums.lv2-soundfont": "CC-BY-SA-3.0 (AVL Drumkits, Glen MacArthur)",
    "hedgewars-data": "GPL-2 (sounds and music; some files under other free licences, see the package copyright)",
    "openarena-data": "GPL-2",
    "freedoom": "BSD-3-clause",
    "wesnoth-1.16-music": "GPL-2+",
    "frozen-bubble-data": "GPL-2",
}

LONG_SECONDS = 20.0
EXCERPT_SECONDS = 8.0


@dataclass
class Clip:
    package: str
    name: str
    audio: np.ndarray          # mono float32, 44.1 kHz


def _installed_files(package: str) -> set[str]:
    result = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    return set(result.stdout.split()) if result.returncode == 0 else set()


_forbidden: set[str] | None = None


def check_not_forbidden(path: pathlib.Path) -> None:
    global _forbidden
    if _forbidden is None:
        _forbidden = set()
        for package in FORBIDDEN_PACKAGES:
            _forbidden |= _installed_files(package)
    resolved = str(pathlib.Path(path).resolve())
    if str(path) in _forbidden or resolved in _forbidden:
        raise RuntimeError(f"{path} belongs to a package reserved for evaluation")


def _to_mono_44k(audio: np.ndarray, rate: int) -> np.ndarray:
    audio = audio.mean(axis=1) if audio.ndim == 2 else audio
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio.astype(np.float32), rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _read(source, rng: np.random.Generator, long_excerpts: int) -> list[np.ndarray]:
    """Decode one file; long files give ``long_excerpts`` random 8 s excerpts instead."""
    try:
        audio, rate = sf.read(source, dtype="float32", always_2d=True)
    except Exception:
        return []
    audio = _to_mono_44k(audio, rate)
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        return []
    if audio.size <= LONG_SECONDS * SAMPLE_RATE:
        return [audio]
    n = int(EXCERPT_SECONDS * SAMPLE_RATE)
    starts = np.sort(rng.integers(0, audio.size - n, size=long_excerpts))
    return [audio[s:s + n].copy() for s in starts]


def _package_files(package: str, suffixes: tuple[str, ...]) -> list[pathlib.Path]:
    files = sorted(p for p in _installed_files(package) if p.lower().endswith(suffixes))
    if not files:
        raise RuntimeError(f"Debian package {package} is not installed (apt-get install {package})")
    return [pathlib.Path(p) for p in files]


def trim_tail(audio: np.ndarray, floor_db: float = -60.0) -> np.ndarray:
    """Drop the trailing part quieter than ``floor_db`` below the clip peak (rendered notes)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak == 0:
        return audio[:0]
    loud = np.flatnonzero(np.abs(audio) >= peak * 10 ** (floor_db / 20))
    return audio[:loud[-1] + 1 + 2048]


def soundfont_clips(rng: np.random.Generator) -> list[Clip]:
    from . import midi_render
    check_not_forbidden(midi_render.SOUNDFONT)
    clips = []
    for name, audio in (midi_render.melodic_clips(rng) + midi_render.drum_clips(rng)
                        + midi_render.drum_loops(rng)):
        audio = trim_tail(audio)
        if audio.size > 2048:
            clips.append(Clip("fluid-soundfont-gm", name, audio))
    return clips


def avl_drum_clips(rng: np.random.Generator) -> list[Clip]:
    from . import midi_render
    clips = []
    for soundfont in midi_render.AVL_KITS:
        check_not_forbidden(soundfont)
    for name, audio in midi_render.avl_drum_clips(rng):
        audio = trim_tail(audio)
        if audio.size > 2048:
            clips.append(Clip("avldrums.lv2-soundfont", name, audio))
    return clips


def hedgewars_clips(rng: np.random.Generator) -> list[Clip]:
    voices = {"Default", "Pirate", "Robot", "Singer"}
    clips = []
    for path in _package_files("hedgewars-data", (".ogg",)):
        folder = path.parent.name
        if path.parent.parent.name.lower() == "voices" and folder not in voices:
            continue
        check_not_forbidden(path)
        for k, audio in enumerate(_read(str(path), rng, long_excerpts=10)):
            clips.append(Clip("hedgewars-data", f"{folder}/{path.stem}#{k}", audio))
    return clips


def openarena_clips(rng: np.random.Generator) -> list[Clip]:
    clips = []
    for pk3 in _package_files("openarena-data", (".pk3",)):
        check_not_forbidden(pk3)
        with zipfile.ZipFile(pk3) as archive:
            for info in archive.infolist():
                name = info.filename
                if not name.lower().endswith((".wav", ".ogg")) or "/voices/" in name.lower():
                    continue
                for k, audio in enumerate(_read(io.BytesIO(archive.read(info)), rng, long_excerpts=6)):
                    clips.append(Clip("openarena-data", f"{name}#{k}", audio))
    return clips


def freedoom_clips(rng: np.random.Generator) -> list[Clip]:
    """DMX sound lumps (``DS*``) of freedoom2.wad: 8-bit unsigned PCM with a small header."""
    path = pathlib.Path("/usr/share/games/doom/freedoom2.wad")
    if not path.is_file():
        raise RuntimeError("freedoom is not installed (apt-get install freedoom)")
    check_not_forbidden(path)
    data = path.read_bytes()
    _, count, directory = struct.unpack("<4sii", data[:12])
    clips = []
    for i in range(count):
        pos, size, raw_name = struct.unpack("<ii8s", data[directory + 16 * i:directory + 16 * i + 16])
        name = raw_name.rstrip(b"\0").decode("ascii", "replace")
        if not name.startswith("DS") or size < 8:
            continue
        fmt, rate, n = struct.unpack("<HHI", data[pos:pos + 8])
        if fmt != 3 or n <= 32 or 8 + n > size:
            continue
        pcm = np.frombuffer(data[pos + 8 + 16:pos + 8 + n - 16], dtype=np.uint8)
        audio = (pcm.astype(np.float32) - 128.0) / 128.0
        clips.append(Clip("freedoom", name, _to_mono_44k(audio, rate)))
    return clips


def music_clips(rng: np.random.Generator) -> list[Clip]:
    clips = []
    for package in ("wesnoth-1.16-music", "frozen-bubble-data"):
        for path in _package_files(package, (".ogg",)):
            check_not_forbidden(path)
            for k, audio in enumerate(_read(str(path), rng, long_excerpts=8)):
                clips.append(Clip(package, f"{path.stem}#{k}", audio))
    return clips


def level_twin_groups(clips: list[Clip], min_correlation: float = TWIN_CORRELATION) -> np.ndarray:
    """For every clip, the lowest index of the clips that are the same audio up to gain.

    Such twins (a file copied into two folders, a velocity layer that only changes level)
    must not be treated as different sounds by the contrastive loss. Whole clips are
    compared (:func:`models.level_twins.level_twin_groups`, shared with the benchmark).
    """
    groups = _twin_groups([c.audio.size for c in clips], lambda i: clips[i].audio, min_correlation)
    return group_ids(len(clips), groups)


def all_clips(seed: int = 20261124, log=print) -> list[Clip]:
    clips = []
    for i, reader in enumerate((soundfont_clips, hedgewars_clips, openarena_clips,
                                freedoom_clips, music_clips, avl_drum_clips)):
        got = reader(np.random.default_rng([seed, i]))
        log(f"  {reader.__name__}: {len(got)} clips, "
            f"{sum(c.audio.size for c in got) / SAMPLE_RATE / 60:.1f} min")
        clips += got
    return clips
