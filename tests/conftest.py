"""Shared fixtures. Every test runs with its own library dir, so nothing touches
the user's real catalog; Qt runs offscreen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SONIC_PI = Path("/usr/share/sonic-pi/samples")
HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
LMMS = Path("/usr/share/lmms/samples")

pytest_plugins = ["tests.jack_fixtures"]


@pytest.fixture(autouse=True)
def isolated_library_dir(tmp_path, monkeypatch) -> Path:
    """A fresh library dir for each test, also via SAMPLESCOUT_LIBRARY_DIR."""
    directory = tmp_path / "library-data"
    monkeypatch.setenv("SAMPLESCOUT_LIBRARY_DIR", str(directory))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return directory


def require(path: Path, package: str) -> Path:
    if not path.exists():
        pytest.skip(f"Debian package {package} is not installed ({path} missing); "
                    "`make test` installs it")
    return path


@pytest.fixture
def sonic_pi_samples() -> Path:
    return require(SONIC_PI, "sonic-pi-samples")
