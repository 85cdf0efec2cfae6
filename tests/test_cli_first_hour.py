"""What a new user meets in a terminal: typos, a folder where a file is expected (and back),
paths printed whole, the library's files, where things live, devices without the app itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import elide_path, main
from tests.jack_fixtures import jack_server  # noqa: F401  (fixture)
from tests.test_scanner import write_hits

ROOT = Path(__file__).parent.parent


def samplescout(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "app.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "80", **(env or {})})


@pytest.fixture
def deep_library(tmp_path, isolated_library_dir):
    """Five hits in a folder deep enough that their paths are longer than a terminal."""
    root = tmp_path / "samples" / ("a-very-long-folder-name-for-a-sample-pack" * 2) / "Kicks"
    paths = write_hits(root, 5)
    assert main(["index", str(root), "--workers", "1"]) == 0
    return root, paths


def test_a_mistyped_subcommand_suggests_the_right_one():
    result = samplescout("serch", "kick.wav")
    assert result.returncode == 2
    assert "did you mean 'search'?" in result.stderr
    assert "did you mean" in samplescout("libary").stderr


def test_each_subcommand_help_leaves_the_global_options_to_the_main_help():
    search_help = samplescout("search", "--help").stdout
    assert "--library-dir DIR" not in search_help and "--vst3-path DIR" not in search_help
    assert "where the catalog and index live" not in search_help
    assert "samplescout --help" in search_help          # says where they are
    assert "where the catalog and index live" in samplescout("--help").stdout
    # ...and they are still accepted after the subcommand
    assert main(["library", "--library-dir", os.environ["SAMPLESCOUT_LIBRARY_DIR"], "--json"]) == 0


def test_search_of_a_folder_says_it_is_a_folder(deep_library, capsys):
    root, _ = deep_library
    capsys.readouterr()
    assert main(["search", str(root)]) == 1
    err = capsys.readouterr().err
    assert "is a folder, not a sound file" in err and f"samplescout index {root}" in err
    assert "unsupported_format" not in err


def test_index_of_a_file_says_it_wants_a_folder(deep_library, capsys):
    _, paths = deep_library
    capsys.readouterr()
    assert main(["index", str(paths[0])]) == 1
    err = capsys.readouterr().err
    assert "is a file: index scans folders" in err and "not found" not in err


def test_removing_a_folder_that_is_not_in_the_library_says_so(deep_library, tmp_path, capsys):
    root, _ = deep_library
    other = tmp_path / "elsewhere"
    other.mkdir()
    capsys.readouterr()
    assert main(["index", "--remove", str(other)]) == 1
    err = capsys.readouterr().err
    assert "is not a library folder" in err and str(root) in err
    assert main(["library", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["indexed"] == 5     # nothing was forgotten


def test_search_prints_paths_whole_when_not_on_a_terminal(deep_library):
    _, paths = deep_library
    assert len(str(paths[0])) > 120
    result = samplescout("search", paths[2], "-k", "3")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "one-shot" in line]
    assert len(rows) == 3
    for row in rows:                     # whole, though the console is 80 columns wide
        assert any(f" {p} " in row for p in paths), row


def test_on_a_terminal_paths_are_elided_in_the_middle_keeping_the_name():
    path = "/home/me/Samples/" + "Pack " * 20 + "/Kicks/kick_long_name_07.wav"
    shown = elide_path(path, 60)
    assert len(shown) == 60 and shown.endswith("/kick_long_name_07.wav")
    assert shown.startswith("/home/me/Samples/") and "…" in shown
    assert elide_path("/a/b.wav", 60) == "/a/b.wav"


def test_library_lists_its_files_with_filters_and_as_json(deep_library, capsys):
    root, paths = deep_library
    capsys.readouterr()
    assert main(["library", "--files"]) == 0
    out = capsys.readouterr().out
    assert all(str(p) in out for p in paths) and "5 files" in out
    assert main(["library", "--files", "--name", "HIT_0_003", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["files"]
    assert [f["path"] for f in listed] == [str(paths[3])] and listed[0]["kind"] == "one-shot"
    assert main(["library", "--files", "--kind", "loop", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == []
    assert main(["library", "--files", "--folder", str(root.parent), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["files"]) == 5


def test_doctor_says_where_settings_presets_and_cache_live(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = samplescout("doctor", "--json", "--library-dir", tmp_path / "lib", env=env)
    assert result.returncode == 0, result.stderr
    checks = {c["name"]: c["detail"] for c in json.loads(result.stdout)}
    assert str(tmp_path / "config" / "samplescout" / "settings.json") in checks["settings"]
    assert str(tmp_path / "config" / "samplescout" / "presets") in checks["presets"]
    assert "shipped: " in checks["presets"]
    assert str(tmp_path / "cache" / "samplescout") in checks["cache"]


@pytest.mark.jack
def test_devices_leave_out_the_apps_own_jack_client(jack_server):  # noqa: F811
    from tests.jack_fixtures import start_engine
    engine = start_engine()
    try:
        result = samplescout("devices", "--json", env=jack_server.env())
    finally:
        engine.close()
    names = [d["name"] for d in json.loads(result.stdout)["audio"]]
    assert names == ["system"], names


@pytest.mark.jack
def test_listen_with_a_wrong_device_lists_the_devices(jack_server, tmp_path):  # noqa: F811
    result = samplescout("listen", "--device", "Focusrite", "--json", "--seconds", "1",
                         env=jack_server.env())
    assert result.returncode == 1
    assert "Focusrite" in result.stderr and "the audio devices are:" in result.stderr
    assert "[0] system  in 2 / out 2" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.jack
def test_listen_on_an_empty_library_says_to_index_first(jack_server):  # noqa: F811
    result = samplescout("listen", "--hostapi", "JACK", "--json", "--seconds", "0.5",
                         env=jack_server.env())
    assert result.returncode == 0, result.stderr
    assert "the library is empty" in result.stderr and "samplescout index FOLDER" in result.stderr
