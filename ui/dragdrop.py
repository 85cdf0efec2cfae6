"""Drag and drop payloads: samples out as files, audio files in as queries, folders in
to add to the library.

A drag out carries ``text/uri-list`` (file URLs, percent-encoded by Qt) which
Qt also turns into the platform's own formats (CF_HDROP on Windows, file URLs
on macOS), plus the plain paths as text for apps that only read text. The
same builder serves the model's ``mimeData`` and the view's drag, so a test
of one is a test of the other. GUI thread.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
from PyQt6.QtCore import QMimeData, QUrl

from app.decode import SUPPORTED_EXTENSIONS

RENDER_FOLDER = "rendered"


def mime_for_files(paths: Iterable[str | os.PathLike]) -> QMimeData:
    """A drag payload for local files."""
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    mime.setText("\n".join(paths))
    # GNOME file managers paste/drop copies from this list as well.
    mime.setData("x-special/gnome-copied-files",
                 ("copy\n" + "\n".join(QUrl.fromLocalFile(p).toString() for p in paths)).encode())
    return mime


def audio_paths_from_mime(mime: QMimeData) -> list[str]:
    """Local audio files named by a drop (by extension; decoding errors come later)."""
    if not mime.hasUrls():
        return []
    out = []
    for url in mime.urls():
        if not url.isLocalFile():
            continue
        path = url.toLocalFile()
        if os.path.splitext(path)[1].lower() in SUPPORTED_EXTENSIONS and os.path.isfile(path):
            out.append(path)
    return out


def folder_paths_from_mime(mime: QMimeData) -> list[str]:
    """Local folders named by a drop, in the order given (files and remote URLs left out)."""
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls()
            if url.isLocalFile() and os.path.isdir(url.toLocalFile())]


def rendered_name(source: str | os.PathLike, chain_name: str = "fx") -> str:
    """File name of a sample rendered through a chain: named after the source."""
    stem = Path(source).stem
    safe = re.sub(r"[^\w\-. ]+", "_", chain_name).strip() or "fx"
    return f"{stem} ({safe}).wav"


def render_through_chain(source: str | os.PathLike, chain_doc: dict, out_dir: str | os.PathLike,
                         sample_rate: int = 48000, tail_s: float = 1.0, scanner=None) -> Path:
    """Render ``source`` through a fresh chain built from a preset document; returns the wav.

    A fresh chain (not the live one) so the render never races the preview path.
    Any thread but the audio thread.
    """
    import soundfile as sf

    from app.audio_types import Chain, build_members, parse_preset
    from app.decode import read_mono

    audio = read_mono(source, sample_rate, max_seconds=120.0)
    chain = Chain("render", sample_rate=sample_rate, channels=2, scanner=scanner)
    preset = parse_preset(chain_doc, scanner.roots() if scanner is not None else ())
    members, bypassed = build_members(preset, chain)
    chain.replace(members, bypassed)
    x = np.concatenate([audio, np.zeros(int(tail_s * sample_rate), np.float32)])
    y = chain.process(np.stack([x, x], axis=1), sample_rate)
    out_dir = Path(out_dir) / RENDER_FOLDER
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / rendered_name(source, chain_doc.get("name") or "fx")
    tmp = out.with_name(out.name + ".tmp.wav")
    sf.write(tmp, y, sample_rate, subtype="FLOAT")
    os.replace(tmp, out)
    return out
