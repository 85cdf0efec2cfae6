"""Shared pieces of the live-matching tests and benchmark: a small real library and played sequences."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.decode import read_mono

SONIC_PI = Path("/usr/share/sonic-pi/samples")
HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
LMMS = Path("/usr/share/lmms/samples")


def library_sources() -> list[Path]:
    """About 90 real one-shots: Sonic Pi drums/electro/percussion and one Hydrogen kit."""
    files = []
    for prefix in ("drum_", "bd_", "elec_", "perc_", "sn_"):
        files += sorted(SONIC_PI.glob(f"{prefix}*.flac"))
    files += sorted(p for p in (HYDROGEN / "BJA_Pacific").iterdir() if p.suffix == ".aiff")[:20]
    return files


def build_library(library_dir: Path, source_dir: Path) -> list[Path]:
    """Link the sources into `source_dir`, scan them into a library; return the linked files."""
    from app.library import Library
    from app.scanner import Scanner
    source_dir.mkdir(parents=True, exist_ok=True)
    linked = []
    for src in library_sources():
        dst = source_dir / src.name
        if not dst.exists():
            os.symlink(src, dst)
        linked.append(dst)
    with Library(library_dir) as library:
        report = Scanner(library, workers=2).scan([str(source_dir)])
        assert report.indexed >= 60, report
    return linked


def played_files(linked: list[Path], count: int, max_seconds: float = 1.2) -> list[Path]:
    """Short one-shots spread over the library (decaying hits that fit a drum window)."""
    short = [p for p in linked if len(read_mono(p, 44100)) < max_seconds * 44100 and "roll" not in p.name]
    step = max(1, len(short) // count)
    return short[::step][:count]


def sequence(files: list[Path], sample_rate: int, spacing_s: float, *, gain_db: float = 0.0,
             noise_dbfs: float | None = None, seed: int = 0, lead_s: float = 0.5,
             damage=None) -> tuple[np.ndarray, list[int]]:
    """The files one after another, `spacing_s` apart, at `sample_rate`; returns the signal and
    where each file starts. Damage: `damage(audio, index)` on each file (a room, a mic), then
    a gain and continuous white noise at a fixed RMS level."""
    spacing = int(spacing_s * sample_rate)
    lead = int(lead_s * sample_rate)
    signal = np.zeros(lead + spacing * len(files) + sample_rate, np.float32)
    starts = []
    for i, path in enumerate(files):
        audio = read_mono(path, sample_rate)
        if damage is not None:
            audio = damage(audio, i)
        audio = audio[:spacing - sample_rate // 10]
        start = lead + i * spacing
        signal[start:start + len(audio)] += audio * np.float32(10 ** (gain_db / 20))
        starts.append(start)
    if noise_dbfs is not None:
        rng = np.random.default_rng(seed)
        signal += rng.standard_normal(len(signal)).astype(np.float32) * np.float32(10 ** (noise_dbfs / 20))
    return np.clip(signal, -1, 1), starts
