"""The wheel carries what an installed app needs besides code: the shipped presets."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from presets import KINDS, shipped_dir

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_every_preset(tmp_path):
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for folder in REPO.iterdir():
        if (folder / "__init__.py").is_file() and any(fnmatch.fnmatch(folder.name, p) for p in patterns):
            shutil.copytree(folder, src / folder.name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.onnx", "train"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("samplescout-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    shipped = {f"presets/{kind}/{p.name}" for kind in KINDS for p in shipped_dir(kind).glob("*.json")}
    assert len(shipped) >= 8 and shipped <= names, sorted(shipped - names)
    assert {"presets/__init__.py", "engine/errors.py", "app/cli.py"} <= names
