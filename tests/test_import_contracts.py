"""The layers as import contracts (`.importlinter`), checked by import-linter's `lint-imports`.

Each contract is kept by the tree as it is, and breaks when one forbidden import is added
to a copy of the tree.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / ".importlinter"

# ui still imports engine types directly (chains, MIDI maps, devices, the stream config);
# the contract is written and checked, and passes once those come through app.
PENDING = {"ui-through-app": "ui still imports engine directly (chain, midi, devices, stream)"}

# One forbidden import per contract: (file to append it to, the import, the edge reported).
INJECTED = {
    "base": ("engine/errors.py", "import engine.ring", "engine.errors -> engine.ring"),
    "engine": ("engine/ring.py", "import app.paths", "engine.ring -> app.paths"),
    "models": ("models/frontend.py", "import engine.ring", "models.frontend -> engine.ring"),
    # app.cli may start the window; no other app module may import ui.
    "app": ("app/paths.py", "import ui.main_window", "app.paths -> ui.main_window"),
    "bench": ("bench/query.py", "import tests.shipped", "bench.query -> tests.shipped"),
    "ui-through-app": ("ui/widgets.py", "import engine.ring", "ui.widgets -> engine.ring"),
}


def _config() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    return parser


def _contract_ids() -> list[str]:
    prefix = "importlinter:contract:"
    return [s[len(prefix):] for s in _config().sections() if s.startswith(prefix)]


def _root_packages() -> list[str]:
    return _config()["importlinter"]["root_packages"].split()


def lint(root: Path, *contracts: str) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "lint-imports is not installed in the venv (pip install -e '.[test]')"
    args = [exe, "--no-cache", "--no-logo", str(root / ".importlinter")]
    for contract in contracts:
        args += ["--contract", contract]
    # lint-imports finds the packages on the path it starts in.
    return subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120)


def test_every_contract_has_a_mutation():
    assert sorted(_contract_ids()) == sorted(INJECTED)


@pytest.mark.parametrize("contract", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=PENDING[c])) if c in PENDING else c
    for c in INJECTED])
def test_the_tree_keeps_the_contract(contract):
    result = lint(REPO, contract)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout and "BROKEN" not in result.stdout


@pytest.mark.parametrize("contract", list(INJECTED))
def test_a_forbidden_import_breaks_the_contract(contract, tmp_path):
    for package in _root_packages():
        shutil.copytree(REPO / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.onnx", "*.json", "results"))
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    target, line, edge = INJECTED[contract]
    with open(tmp_path / target, "a", encoding="utf-8") as f:
        f.write(f"\n{line}  # injected by the test\n")
    result = lint(tmp_path, contract)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and edge in result.stdout, result.stdout
