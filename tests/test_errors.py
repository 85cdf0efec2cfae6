"""One error family: every error class of the layers descends from SampleScoutError, the CLI
prints any of them as one line, and no decision reads a message's text."""

from __future__ import annotations

import ast
import builtins
import importlib
from pathlib import Path

import pytest

from app.cli import _user_error_types, main
from engine.errors import SampleScoutError
from tests.test_scanner import write_hits

REPO = Path(__file__).resolve().parent.parent
LAYERS = ("app", "engine", "models", "ui")


def _base_names(node: ast.ClassDef) -> list[str]:
    return [b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
            if isinstance(b, (ast.Name, ast.Attribute))]


def error_classes() -> dict[str, type]:
    """Every exception class defined in the layers, found in the source (class name -> class)."""
    defined = {}  # name -> (module, base names)
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    defined[node.name] = (module, _base_names(node))
    builtin = {name for name in dir(builtins)
               if isinstance(getattr(builtins, name), type)
               and issubclass(getattr(builtins, name), BaseException)}
    errors = set()
    while True:  # a class is an error if a base is a built-in exception or an error of ours
        grown = {name for name, (_, bases) in defined.items()
                 if any(b in builtin or b in errors or b == "SampleScoutError" for b in bases)}
        if grown == errors:
            break
        errors = grown
    return {name: getattr(importlib.import_module(defined[name][0]), name) for name in errors}


def test_every_error_class_descends_from_the_root():
    classes = error_classes()
    assert {"CliError", "DecodeError", "EngineError", "EncoderError", "PresetSyntaxError",
            "RingOverrun", "EmptyLibraryError"} <= set(classes)
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, SampleScoutError))
    assert not outside, f"not under SampleScoutError: {outside}"
    assert all(issubclass(cls, _user_error_types()) for cls in classes.values())


def test_errors_caught_as_built_ins_keep_that_base():
    classes = error_classes()
    for name in ("ProfileError", "PresetError", "MidiMapError"):
        assert issubclass(classes[name], ValueError), name
    for name in ("MidiUnavailable", "NoAudioDevice", "EngineError"):
        assert issubclass(classes[name], RuntimeError), name


def test_search_on_an_empty_library_stops_at_the_first_file(tmp_path, isolated_library_dir, capsys):
    from app.library import EmptyLibraryError, Library

    queries = write_hits(tmp_path / "q", 2)
    with Library(isolated_library_dir) as library, pytest.raises(EmptyLibraryError):
        library.search_file(queries[0])
    assert main(["search", str(queries[0]), str(queries[1])]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "library is empty" in err[0]
