"""The presets that ship with Sample Scout, as JSON package data.

`chains/` (plugin chains), `match/` (match profiles) and `midi/` (MIDI maps). Found through
`importlib.resources`, so an installed wheel has them as well as a checkout. Imports
nothing of the project; any thread may call `shipped_dir`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["KINDS", "shipped_dir"]

KINDS = ("chains", "match", "midi")


def shipped_dir(kind: str) -> Path:
    """The folder of shipped presets of one kind (``chains``, ``match`` or ``midi``)."""
    if kind not in KINDS:
        raise ValueError(f"no shipped presets of kind {kind!r}")
    # A package installed from a wheel or a checkout lies on disk: its files are a Path.
    return Path(str(resources.files(__name__) / kind))
