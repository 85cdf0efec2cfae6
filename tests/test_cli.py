"""The `samplescout` command: options, outputs and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from tests.test_scanner import write_hits
from tests.shipped import RERANKER_MODEL_ID, SCOUT_MODEL_ID

REPO = Path(__file__).parent.parent


@pytest.fixture
def small_library(tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    paths = write_hits(root, 5)
    assert main(["index", str(root), "--workers", "1"]) == 0
    return root, paths


def test_library_dir_is_accepted_before_and_after_the_subcommand(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["--library-dir", str(one), "library", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["library_dir"] == str(one)
    assert main(["library", "--library-dir", str(two), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["library_dir"] == str(two)


def test_environment_variable_chooses_the_library_dir(isolated_library_dir, capsys):
    assert main(["library", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["library_dir"] == str(isolated_library_dir)


def test_search_several_files_as_json(small_library, capsys):
    _, paths = small_library
    capsys.readouterr()
    assert main(["search", str(paths[0]), str(paths[3]), "-k", "3", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line, path in zip(lines, (paths[0], paths[3])):
        answer = json.loads(line)
        assert answer["query"] == str(path)
        assert len(answer["results"]) == 3
        assert answer["results"][0]["path"] == str(path)
        scores = [r["score"] for r in answer["results"]]
        assert scores == sorted(scores, reverse=True)


def test_search_table_and_library_summary(small_library, capsys):
    _, paths = small_library
    capsys.readouterr()
    assert main(["search", str(paths[1]), "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert paths[1].name in out and "score" in out
    assert main(["library"]) == 0
    assert "5 indexed" in capsys.readouterr().out


def test_errors_are_one_line_and_non_zero(tmp_path, small_library, capsys):
    capsys.readouterr()
    text = tmp_path / "notes.wav"
    text.write_text("hello")
    assert main(["search", str(text)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not_audio" in err[0] and "notes.wav" in err[0]

    assert main(["search", str(tmp_path / "nope.wav")]) == 1
    assert "nope.wav" in capsys.readouterr().err

    assert main(["index", str(tmp_path / "no-such-folder")]) == 1
    assert capsys.readouterr().err.strip().startswith("samplescout: error: folder not found")


def test_search_on_an_empty_library_says_what_to_do(tmp_path, capsys):
    query = write_hits(tmp_path / "q", 1)[0]
    assert main(["search", str(query)]) == 1
    err = capsys.readouterr().err
    assert "library is empty" in err and "samplescout index" in err


def test_remove_a_folder_from_the_library(small_library, capsys):
    root, paths = small_library
    assert main(["index", "--remove", str(root)]) == 0
    assert main(["library", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["files"] == 0 and stats["roots"] == []


def test_console_script_and_doctor_run_without_traceback(tmp_path):
    exe = shutil.which("samplescout", path=str(Path(sys.executable).parent))
    assert exe, "the samplescout console script is not installed in the venv"
    result = subprocess.run([exe, "doctor", "--json", "--library-dir", str(tmp_path / "lib")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["encoder model"]["ok"] and f"{SCOUT_MODEL_ID}/r" in checks["encoder model"]["detail"]
    assert checks["re-ranker model"]["ok"]
    assert f"{RERANKER_MODEL_ID} (for {SCOUT_MODEL_ID}), room fit weight " in checks["re-ranker model"]["detail"]
    assert ", coherence weight " in checks["re-ranker model"]["detail"]
    assert checks["library"]["ok"] and str(tmp_path / "lib") in checks["library"]["detail"]
    assert "Traceback" not in result.stderr
    # Audio may or may not have a device here; either way the answer is a sentence.
    assert checks["audio (PortAudio)"]["detail"]


def _devices(env=None):
    exe = shutil.which("samplescout", path=str(Path(sys.executable).parent))
    return subprocess.run([exe, "devices"], capture_output=True, text=True, timeout=60,
                          env=env)


def test_devices_without_an_audio_server_is_one_clear_line(monkeypatch):
    # A server name nobody runs: PortAudio's JACK backend finds nothing to talk to.
    env = {**os.environ, "JACK_DEFAULT_SERVER": "samplescout-nobody-home"}
    result = _devices(env)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].lower().startswith("no audio device found")
    assert "Traceback" not in result.stderr and result.stderr.strip() == ""


@pytest.mark.jack
def test_devices_lists_the_jack_server(jack_server):
    result = _devices(jack_server.env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "JACK Audio Connection Kit:" in result.stdout
    assert "MIDI (jack)" in result.stdout


def test_plugins_scans_an_extra_vst3_folder(tmp_path, capsys, zam_plugins):
    extra = tmp_path / "my-plugins"
    extra.mkdir()
    shutil.copytree("/usr/lib/vst3/ZamComp.vst3", extra / "ZamComp.vst3")
    assert main(["plugins", "--json", "--timeout", "5", "--vst3-path", str(extra)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert str(extra) in report["roots"] and "/usr/lib/vst3" in report["roots"]
    mine = [p for p in report["plugins"] if p["path"].startswith(str(extra))]
    assert len(mine) == 1 and mine[0]["ok"] and mine[0]["name"] == "ZamComp"
    verb = [p for p in report["plugins"] if p["path"].endswith("ZamVerb.vst3")]
    assert verb and not verb[0]["ok"] and verb[0]["timed_out"]  # hangs on load: reported, skipped


def test_the_window_without_a_display_is_one_clear_line(monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no display" in err and "samplescout listen" in err
