"""The README's one-shot or loop rule, clause by clause, on generated files:

- at least 1 s and "loop" or "loops" as a word in the name or a folder: a loop, whatever the
  content head says (checked through a real scan);
- otherwise the content head decides; without it, at least 4 s and its last quarter within
  10 dB of the whole file's RMS is a loop, everything else a one-shot (the fallback rule,
  checked on the same audio's measured RMS).

Test names here avoid the word itself: pytest puts them in the temp folder's path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.analysis import classify_kind
from app.library import Library
from app.scanner import Scanner

SR = 44100


def _tone(seconds: float, seed: int) -> np.ndarray:
    """A few steady partials and some noise, at a constant level."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    audio = sum(rng.uniform(0.2, 1) * np.sin(2 * np.pi * rng.uniform(80, 3000) * t)
                for _ in range(4))
    return audio + 0.2 * rng.normal(size=len(t))


def decaying(seconds: float, seed: int) -> np.ndarray:
    """A hit: its last quarter sits far more than 10 dB under the whole file's RMS."""
    t = np.arange(int(seconds * SR)) / SR
    return _tone(seconds, seed) * np.exp(-t * 8 / seconds)


def stepped(seconds: float, drop_db: float, seed: int) -> np.ndarray:
    """Steady, with the last quarter scaled so that its RMS is ``drop_db`` under the RMS of
    the whole file (not under the first three quarters)."""
    audio = _tone(seconds, seed)
    # With the first 3/4 at level 1 and the last 1/4 at r: whole = sqrt(0.75 + 0.25 r^2),
    # and r / whole = g (the drop as a ratio) gives r^2 = 0.75 g^2 / (1 - 0.25 g^2).
    g2 = 10 ** (drop_db / 10)
    ratio = np.sqrt(0.75 * g2 / (1 - 0.25 * g2))
    audio[int(0.75 * len(audio)):] *= ratio
    return audio


CASES = {
    # relative path: (audio, kind the README promises)
    "Loops/hit_a.wav": (lambda: decaying(1.2, 1), "loop"),            # folder "Loops", >= 1 s
    "kit/drum_loop_b.wav": (lambda: decaying(1.2, 2), "loop"),        # name, >= 1 s
    "kit/LOOPS 120bpm.wav": (lambda: decaying(1.5, 3), "loop"),       # the plural, any case
    "kit/loop_short.wav": (lambda: decaying(0.8, 4), "one-shot"),     # named, but under 1 s
    "kit/bloop.wav": (lambda: decaying(1.5, 5), "one-shot"),          # not the word "loop"
    "kit/pad_steady.wav": (lambda: stepped(5.0, -9.0, 6), "loop"),    # >= 4 s, within 10 dB
    "kit/pad_fading.wav": (lambda: stepped(5.0, -11.0, 7), "one-shot"),  # >= 4 s, 11 dB down
    "kit/drone_short.wav": (lambda: stepped(3.5, 0.0, 8), "one-shot"),   # steady, under 4 s
    "kit/crash.wav": (lambda: decaying(6.0, 9), "one-shot"),          # long and decaying
}


@pytest.fixture(scope="module")
def scanned_kinds(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("kinds")
    root = base / "samples"
    for relative, (make, _) in CASES.items():
        audio = make()
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.5 * audio / np.max(np.abs(audio))).astype(np.float32), SR,
                 subtype="PCM_24")
    with Library(base / "library") as library:
        report = Scanner(library, workers=1).scan([root])
        assert report.indexed == len(CASES), report.skipped_files
        rows = library.catalog.files_under(root)
    return {str(Path(path).relative_to(root)): row.kind for path, row in rows.items()}


NAMED = [r for r in CASES if "loop" in r.lower()]


@pytest.mark.parametrize("relative", NAMED)
def test_a_name_that_says_loop_decides_in_a_real_scan(scanned_kinds, relative):
    assert scanned_kinds[relative] == CASES[relative][1]


@pytest.mark.parametrize("relative", [r for r in CASES if r not in NAMED])
def test_the_fallback_rule_follows_the_readme(relative):
    audio = CASES[relative][0]()
    rms_all = float(np.sqrt(np.mean(audio ** 2)))
    rms_tail = float(np.sqrt(np.mean(audio[int(0.75 * len(audio)):] ** 2)))
    assert classify_kind(relative, len(audio) / SR, rms_all, rms_tail) == CASES[relative][1]


def test_the_scan_gives_every_file_a_kind(scanned_kinds):
    assert set(scanned_kinds) == set(CASES)
    assert set(scanned_kinds.values()) <= {"loop", "one-shot"}


def test_the_stepped_files_drop_by_what_they_claim():
    """The two files either side of the 10 dB line really are 9 and 11 dB down."""
    for drop in (-9.0, -11.0):
        audio = stepped(5.0, drop, 0)
        tail = audio[int(0.75 * len(audio)):]
        measured = 20 * np.log10(np.sqrt(np.mean(tail ** 2)) / np.sqrt(np.mean(audio ** 2)))
        assert abs(measured - drop) < 0.3
