"""Hostile audio files and names: refused with a reason, never a crash, a hang or a
machine's worth of memory (decoder, scanner, search with its re-ranking, CLI output)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main
from app.decode import DecodeError, probe, read_mono
from app.library import Library
from app.scanner import Scanner, walk_audio_files
from bench.harness import mutants
from tests import badfiles
from bench.harness.mutants import scan_twice_capped
from tests.test_scanner import write_hits


def write_rate_bomb(directory: Path, name: str = "bomb.wav", rate: int = 1) -> Path:
    """A 400 kB WAV whose header declares a sample rate of ``rate`` Hz."""
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(badfiles._riff_wav(1, bytes(400_000), sample_rate=rate))
    return path


def write_float_wav(directory: Path, name: str, bad_value: float) -> Path:
    audio = badfiles.tone(44100, 0.6)
    audio[1000] = bad_value
    path = Path(directory) / name
    sf.write(path, audio, 44100, subtype="FLOAT")
    return path


def _patched(source: Path, target: Path, patch) -> Path:
    data = bytearray(source.read_bytes())
    patch(data)
    target.write_bytes(bytes(data))
    return target


def _code(path) -> str:
    with pytest.raises(DecodeError) as info:
        probe(path)
        read_mono(path, 44100)
    return info.value.code


# -- the decoder -----------------------------------------------------------------------------


def test_implausible_headers_are_refused_before_decoding(tmp_path):
    assert _code(write_rate_bomb(tmp_path, "one_hz.wav")) == "implausible_rate"
    assert _code(write_rate_bomb(tmp_path, "ten_hz.wav", rate=10)) == "implausible_rate"

    aiff = badfiles.write_aiff(tmp_path)
    comm = aiff.read_bytes().find(b"COMM")
    two_hz = _patched(aiff, tmp_path / "two_hz.aiff",
                      lambda d: d.__setitem__(slice(comm + 16, comm + 26), mutants._ext80(2)))
    assert _code(two_hz) == "implausible_rate"

    flac = badfiles.write_flac(tmp_path)
    for rate in (1, 2, 10):
        bomb = _patched(flac, tmp_path / f"rate{rate}.flac",
                        lambda d: mutants._set_bits(d, 18, 8, 44, 20, rate))
        assert _code(bomb) == "implausible_rate"
    endless = _patched(flac, tmp_path / "endless.flac",
                       lambda d: mutants._set_bits(d, 18, 8, 0, 36, (1 << 36) - 1))
    assert _code(endless) == "implausible_length"

    wide = tmp_path / "wide.wav"
    wide.write_bytes(badfiles._riff_wav(1, bytes(100 * 2 * 50), channels=100))
    assert _code(wide) == "implausible_channels"


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e12])
def test_non_finite_or_absurd_samples_are_refused(tmp_path, value):
    path = write_float_wav(tmp_path, "bad.wav", value)
    with pytest.raises(DecodeError, match="frame 1000") as info:
        read_mono(path, 44100)
    assert info.value.code == "bad_samples"


def test_messages_say_what_is_wrong(tmp_path):
    mp3 = badfiles.write_mp3(tmp_path)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3.read_bytes()[:300])
    with pytest.raises(DecodeError) as info:
        read_mono(cut, 44100)
    assert "pipe" not in str(info.value) and "MP3" in str(info.value)

    vorbis = badfiles.write_vorbis_in_wav(tmp_path)
    damaged = _patched(vorbis, tmp_path / "damaged.ogg",
                       lambda d: d.__setitem__(slice(200, 260), bytes(60)))
    with pytest.raises(DecodeError) as info:
        read_mono(damaged, 44100)
    assert "object at 0x" not in str(info.value) and "_Window" not in str(info.value)

    (tmp_path / "lib").mkdir()
    os.symlink("/dev/zero", tmp_path / "lib" / "zero.wav")
    os.symlink(tmp_path / "nowhere.wav", tmp_path / "lib" / "dangling.wav")
    problems: list[str] = []
    assert list(walk_audio_files(str(tmp_path / "lib"), problems)) == []
    assert any("link into /dev not followed" in p and "zero.wav" in p for p in problems)
    assert any(p.startswith("broken link") and "dangling.wav" in p for p in problems)
    assert not any(p.startswith("broken link") and "zero.wav" in p for p in problems)


# -- scanning and searching ------------------------------------------------------------------


def test_refused_files_keep_their_reason_and_are_not_decoded_again(tmp_path, isolated_library_dir):
    root = tmp_path / "samples"
    write_hits(root, 2)
    write_rate_bomb(root)
    write_float_wav(root, "nan.wav", np.nan)
    result = scan_twice_capped(root, isolated_library_dir)
    first, second = result["reports"]
    assert first["indexed"] == 2
    assert first["skipped"] == {"implausible_rate": 1, "bad_samples": 1}
    assert result["reasons"] == {"implausible_rate": 1, "bad_samples": 1}
    assert second["unchanged"] == 4 and second["analysed"] == 0


def test_search_answers_when_candidates_changed_after_the_scan(tmp_path, isolated_library_dir,
                                                              capsys, monkeypatch):
    root = tmp_path / "samples"
    hits = write_hits(root, 5)
    with Library(isolated_library_dir) as library:
        assert Scanner(library, workers=1).scan([str(root)]).indexed == 5
    # two files change behind the catalog's back: NaN samples and a 1 Hz header
    write_float_wav(root, hits[3].name, np.nan)
    write_rate_bomb(root, hits[4].name)
    with Library(isolated_library_dir) as library:
        results = library.search_file(hits[0], k=5)
    assert len(results) == 5 and Path(results[0].file.path) == hits[0]
    changed = {r.file.path: r for r in results if r.file.path in (str(hits[3]), str(hits[4]))}
    assert len(changed) == 2 and all(r.cosine is None for r in changed.values())

    # bad queries among good ones: one line each, the good ones still answered
    bad_query = write_float_wav(tmp_path, "query nan.wav", np.inf)
    bomb_query = write_rate_bomb(tmp_path, "query bomb.wav")
    capsys.readouterr()
    status = main(["search", str(hits[1]), str(bad_query), str(bomb_query), str(hits[2]),
                   "-k", "2", "--json"])
    captured = capsys.readouterr()
    assert status == 1
    answers = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert [a["query"] for a in answers] == [str(hits[1]), str(hits[2])]
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2
    assert "query nan.wav" in errors[0] and "bad_samples" in errors[0]
    assert "query bomb.wav" in errors[1] and "implausible_rate" in errors[1]


def test_paths_with_rich_markup_print_as_they_are(tmp_path, isolated_library_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping inside table cells
    root = tmp_path / "lib [/] :fire:" / "[kick] 808"
    hits = write_hits(root, 3)
    snare = hits[0].rename(root / "[snare] tight.wav")
    fire = hits[1].rename(root / ":fire: hit [bold]x.wav")
    ansi = hits[2].rename(root / "red \x1b[31mx\x1b]0;title\x07.wav")
    capsys.readouterr()
    assert main(["index", str(root.parent), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert str(root.parent) in out

    assert main(["search", str(snare), "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert f"Closest to {snare}" in out
    for path in (snare, fire):
        assert str(path) in out
    assert "\N{FIRE}" not in out
    # control characters in a name are shown, not sent to the terminal
    assert "\x1b" not in out and "\x07" not in out
    assert str(ansi).replace("\x1b", "\\x1b").replace("\x07", "\\x07") in out


# -- fuzzing ---------------------------------------------------------------------------------


def test_fuzzed_real_files_decode_and_scan_without_crash_hang_or_runaway_memory(tmp_path,
                                                                             isolated_library_dir):
    seeds = mutants.seed_files(tmp_path / "seeds")
    if len(seeds) < 4:
        pytest.skip("Debian sample packages are missing; `make test` installs them")
    paths = mutants.make_mutants(seeds, 300, tmp_path / "mutants", seed=23)

    decoded = mutants.decode_all(paths, memory_cap=2 << 30, timeout_s=30.0)
    outcomes = decoded["results"]
    bad = {p: o for p, o in outcomes.items() if o[0] in ("traceback", "hang")}
    assert not bad, bad
    assert len(outcomes) == len(paths)
    assert sum(o[0] == "handled" for o in outcomes.values()) > 50   # the damage did reach the decoder
    assert decoded["peak_rss"] < 512 << 20

    result = scan_twice_capped(tmp_path / "mutants", isolated_library_dir)
    first, second = result["reports"]
    assert first["seen"] == len(paths)
    assert "analysis_failed" not in result["reasons"], result["reasons"]
    handled = sum(o[0] == "handled" for o in outcomes.values())
    assert sum(result["reasons"].values()) >= handled
    assert second["analysed"] == 0 and second["unchanged"] == len(paths)
    assert result["peak_rss"] < 2 << 30
