"""This machine's id in a shared catalogue: stable, kept in the library dir (the user data
dir by default) as ``machine-id``. Any thread."""

from __future__ import annotations

import os
import re
import socket
import uuid
from pathlib import Path

MACHINE_ID_FILENAME = "machine-id"


def machine_id(directory: str | os.PathLike) -> str:
    """The id stored in ``directory``, created on first use as ``<hostname>-<random>``."""
    path = Path(directory) / MACHINE_ID_FILENAME
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "machine"
    new = f"{host}-{uuid.uuid4().hex[:8]}"
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(new + "\n", encoding="utf-8")
    try:
        os.link(temp, path)       # first writer wins; a concurrent one reads its id
    except FileExistsError:
        pass
    finally:
        temp.unlink()
    return path.read_text(encoding="utf-8").strip()
