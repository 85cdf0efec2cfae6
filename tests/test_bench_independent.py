"""bench/independent.py keeps training and retrieval-benchmark audio out of its library."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import independent

FAKE_INSTALLED = {
    "fluid-soundfont-gm": {"/usr/share/sounds/sf2/FluidR3_GM.sf2"},
    "hedgewars-data": {"/usr/share/games/hedgewars/Data/Sounds/shotgunfire.ogg"},
    "sonic-pi-samples": {"/usr/share/sonic-pi/samples/bd_haus.flac"},
    "sound-theme-freedesktop": {"/usr/share/sounds/freedesktop/stereo/bell.oga"},
    "timgm6mb-soundfont": {"/usr/share/sounds/sf2/TimGM6mb.sf2"},
}


def _installed(package: str) -> set[str]:
    return FAKE_INSTALLED.get(package, set())


def test_reserved_package_files_pass():
    independent.check_library(
        [("sound-theme-freedesktop", Path("/usr/share/sounds/freedesktop/stereo/bell.oga")),
         ("timgm6mb-soundfont", Path("/usr/share/sounds/sf2/TimGM6mb.sf2"))],
        installed=_installed)


@pytest.mark.parametrize("path", ["/usr/share/sounds/sf2/FluidR3_GM.sf2",
                                  "/usr/share/games/hedgewars/Data/Sounds/shotgunfire.ogg",
                                  "/usr/share/sonic-pi/samples/bd_haus.flac"])
def test_training_and_retrieval_files_are_refused(path):
    # even when declared as an evaluation package's file
    with pytest.raises(RuntimeError, match="library refused"):
        independent.check_library([("timgm6mb-soundfont", Path(path))], installed=_installed)


def test_files_must_belong_to_a_reserved_package():
    with pytest.raises(RuntimeError, match="not installed by sound-theme-freedesktop"):
        independent.check_library(
            [("sound-theme-freedesktop", Path("/usr/share/sounds/other/bell.oga"))],
            installed=_installed)
    with pytest.raises(RuntimeError, match="not a package reserved"):
        independent.check_library(
            [("hedgewars-data", Path("/usr/share/sounds/freedesktop/stereo/bell.oga"))],
            installed=_installed)


def test_note_plan_is_fixed():
    plan = independent.note_plan()
    assert plan == independent.note_plan()
    assert len(plan) == 128 * independent.NOTES_PER_PROGRAM + len(
        independent.DRUM_KITS) * independent.KEYS_PER_KIT
    assert all(1.0 <= p["seconds"] <= 3.0 for p in plan)


def test_near_duplicate_renders_are_dropped_in_plan_order(tmp_path):
    import numpy as np
    import soundfile as sf
    rng = np.random.default_rng(0)
    hit = rng.standard_normal(8000) * np.exp(-np.arange(8000) / 2000)
    clips = {"a.wav": 0.5 * hit, "b.wav": 0.3 * np.concatenate([np.zeros(300), hit]),
             "c.wav": 0.5 * rng.standard_normal(8000) * np.exp(-np.arange(8000) / 2000)}
    for name, audio in clips.items():
        sf.write(str(tmp_path / name), audio, 44100, subtype="PCM_16")
    dropped = independent.drop_near_duplicates(tmp_path, {("key", 36): list(clips)})
    assert dropped == {"b.wav": "a.wav"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "c.wav"]
