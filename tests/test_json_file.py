"""Hostile preset files: every JSON loader refuses them with one clear error, quickly."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from app.match_profiles import ProfileError, get_profile, load_profile
from engine import chain_presets as cp
from engine.json_file import JsonFileError, read_json_file
from engine.midi import MAX_BINDINGS, MidiMap, MidiMapError

LOADERS = {
    "chain preset": (cp.read_preset, cp.PresetError),
    "MIDI map": (MidiMap.load, MidiMapError),
    "match profile": (load_profile, ProfileError),
}


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


HOSTILE = {
    "30k-deep nesting": (_deep(30_000).encode(), "nested more than"),
    "40-deep nesting": (_deep(40).encode(), "nested more than"),
    "400-digit integer": (b'{"a": ' + b"9" * 400 + b"}", "400 digits"),
    "5000-digit integer": (b'{"a": ' + b"1" * 5000 + b"}", "5000 digits"),
    "5000-digit fraction": (b'{"a": 0.' + b"1" * 5000 + b"}", "5002 characters"),
    "1e400": (b'{"a": 1e400}', "too large"),
    "NaN": (b'{"a": NaN}', "NaN is not allowed"),
    "not UTF-8": (b'{"name": "caf\xe9"}', "not UTF-8"),
    "binary": (b"\x80\x04\x95\x00\xff", "not UTF-8"),
    "not JSON": (b'{"format": ', "not valid JSON"),
}


def _call_with_deadline(fn, *args, timeout: float = 10.0):
    """Run fn(*args) in a thread; (finished, exception)."""
    outcome = {}

    def run():
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 — handed back to the test
            outcome["exc"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), outcome.get("exc")


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_hostile_json_is_one_clear_error(tmp_path, loader, case):
    load, error = LOADERS[loader]
    content, message = HOSTILE[case]
    path = tmp_path / "hostile.json"
    path.write_bytes(content)
    with pytest.raises(error, match=message) as info:
        load(path)
    assert "hostile.json" in str(info.value)


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_special_files_are_refused_before_reading(tmp_path, loader):
    load, error = LOADERS[loader]
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    started = time.monotonic()
    with pytest.raises(error, match=r"not a regular file \(a character device\)"):
        load(zero)
    assert time.monotonic() - started < 5.0

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    finished, exc = _call_with_deadline(load, fifo)
    if not finished:  # release the blocked reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert finished, f"{loader} hangs on a FIFO"
    assert isinstance(exc, error) and "FIFO" in str(exc)

    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(error, match="not a regular file"):
        load(folder)


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_100_mb_file_is_refused_by_its_size_before_reading(tmp_path, loader):
    load, error = LOADERS[loader]
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(100_000_000)  # sparse: costs no disk
    started = time.monotonic()
    with pytest.raises(error, match="larger than"):
        load(path)
    assert time.monotonic() - started < 1.0


def test_a_midi_map_with_more_bindings_than_notes_and_ccs_is_refused(tmp_path):
    rows = [{"kind": "note", "number": i % 128, "action": "stop_all"} for i in range(MAX_BINDINGS + 1)]
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"format": "samplescout-midi-map", "version": 1, "bindings": rows}))
    with pytest.raises(MidiMapError, match="bindings, more than"):
        MidiMap.load(path)


def test_item_count_and_depth_limits_count_the_whole_document(tmp_path):
    path = tmp_path / "wide.json"
    path.write_text(json.dumps([[0] * 10] * 20))
    assert len(read_json_file(path, max_bytes=1 << 20, max_items=221)) == 20
    with pytest.raises(JsonFileError, match="more than 220 values") as info:
        read_json_file(path, max_bytes=1 << 20, max_items=220)
    assert info.value.code == "too_many_items"
    path.write_text(_deep(32))
    assert isinstance(read_json_file(path, max_bytes=1 << 20), list)
    path.write_text(_deep(33))
    with pytest.raises(JsonFileError) as info:
        read_json_file(path, max_bytes=1 << 20)
    assert info.value.code == "too_deep"


def test_shipped_presets_still_load():
    for preset in cp.shipped_presets():
        cp.read_preset(preset)
    MidiMap.load(os.path.join(os.path.dirname(cp.SHIPPED_DIR), "midi", "default_16_pads.json"))
    assert get_profile("drums").name


def test_a_fifo_or_device_in_place_of_the_plugin_cache_is_probed_over(tmp_path):
    from engine.plugins import PluginScanner

    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    scanner = PluginScanner(cache_dir=cache_dir, include_standard=False)
    os.mkfifo(scanner.cache_file)
    finished, exc = _call_with_deadline(scanner.scan)
    if not finished:
        os.close(os.open(scanner.cache_file, os.O_WRONLY | os.O_NONBLOCK))
    assert finished and exc is None, exc
    assert scanner.cache_file.is_file()  # written anew
    scanner.cache_file.unlink()
    scanner.cache_file.symlink_to("/dev/zero")
    finished, exc = _call_with_deadline(scanner.scan)
    assert finished and exc is None, exc


def test_the_shared_catalogues_offline_state_goes_through_the_bounded_reader(tmp_path):
    """A FIFO, a bomb of nesting or a wrong shape where the offline copy's state file should
    be: no copy (never a hang or a traceback); a good one is read."""
    from app.paths import CATALOG_FILENAME
    from app.shared_cache import STATE_FILENAME, read_state
    (tmp_path / CATALOG_FILENAME).write_bytes(b"")
    state = tmp_path / STATE_FILENAME
    os.mkfifo(state)
    assert read_state(tmp_path) is None
    state.unlink()
    for bad in ("[" * 100_000, '{"saved_at": "yesterday"}', "[1, 2]"):
        state.write_text(bad)
        assert read_state(tmp_path) is None
    state.write_text('{"saved_at": 1.5, "generation": "g1"}')
    assert read_state(tmp_path) == {"saved_at": 1.5, "generation": "g1"}
