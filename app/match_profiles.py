"""Match profiles: how the live matcher listens (presets in ``presets/match/*.json``).

A profile file is a JSON object::

    {
      "format": "samplescout-match-profile", "version": 1,
      "name": "drums", "description": "...",
      "mode": "one-shot" | "rolling",
      "window_seconds": 1.0,        one-shot: analysis window from each onset; rolling: length
      "hop_seconds": 0.5,           rolling: a window every hop
      "pre_roll_seconds": 0.01,     one-shot: audio kept before the onset
      "cut_at_next_onset": true,    one-shot: a window ends where the next hit starts
      "gate_db": -50,               no onsets/queries below this level (dBFS)
      "onset_sensitivity": 0.6,     0..1, 1 = most sensitive
      "min_onset_gap_seconds": 0.05,
      "capture_seconds": 0.5,       capture: the span looked up (at least 3.5 s: its last hit above the gate)
      "k": 10,                      files asked from the index per query
      "hysteresis": {"margin": 0.02, "new_weight": 0.8, "decay": 0.6,
                     "max_age_seconds": 8.0, "min_score": 0.3, "display": 16}
    }

Every key is required except ``description``, ``hop_seconds`` (rolling needs it),
``pre_roll_seconds``, ``cut_at_next_onset``, ``min_onset_gap_seconds`` and ``capture_seconds``
(default: ``window_seconds`` + 0.5); unknown keys are
errors, so a typo never passes silently. Any thread may call these functions.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from app.onsets import OnsetParams, sensitivity_to_delta
from engine.errors import SampleScoutError
from engine.json_file import JsonFileError, read_json_file
from presets import shipped_dir

FORMAT = "samplescout-match-profile"
MODES = ("one-shot", "rolling")
PRESET_DIR = shipped_dir("match")
MAX_PRESET_BYTES = 64 * 1024


class ProfileError(SampleScoutError, ValueError):
    """A match profile is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Hysteresis:
    margin: float = 0.02          # score a challenger needs above an entry ranked before it
    new_weight: float = 0.8       # weight of a new score against an entry's running score
    decay: float = 0.6            # factor per update for entries a query did not return
    max_age_seconds: float = 8.0  # entries not returned for this long leave the list
    min_score: float = 0.3        # entries below this running score leave the list
    display: int = 16             # suggestions published per update


@dataclass(frozen=True)
class MatchProfile:
    name: str
    mode: str
    window_seconds: float
    gate_db: float
    onset_sensitivity: float
    k: int
    hysteresis: Hysteresis = field(default_factory=Hysteresis)
    hop_seconds: float = 0.5
    pre_roll_seconds: float = 0.01
    cut_at_next_onset: bool = True
    min_onset_gap_seconds: float = 0.05
    capture_seconds: float | None = None
    description: str = ""

    @property
    def capture_span(self) -> float:
        """Seconds the profile asks a capture to look back (the matcher looks back at least
        ``app.matcher.CAPTURE_LOOKBACK_SECONDS``; the last hit above the gate in them)."""
        return self.capture_seconds if self.capture_seconds is not None else self.window_seconds + 0.5

    def onset_params(self) -> OnsetParams:
        """The onset detector's settings for this profile (any thread)."""
        return OnsetParams(gate_db=self.gate_db, delta_db=sensitivity_to_delta(self.onset_sensitivity),
                           min_gap_s=self.min_onset_gap_seconds)

    def with_mode(self, mode: str) -> "MatchProfile":
        if mode not in MODES:
            raise ProfileError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        return replace(self, mode=mode)

    def to_json(self) -> dict:
        data = {"format": FORMAT, "version": 1}
        data.update(asdict(self))
        if data["capture_seconds"] is None:
            del data["capture_seconds"]
        return data


_NUMBERS = {
    # key: (min, max) inclusive
    "window_seconds": (0.1, 10.0),
    "hop_seconds": (0.05, 10.0),
    "pre_roll_seconds": (0.0, 0.5),
    "gate_db": (-120.0, 0.0),
    "onset_sensitivity": (0.0, 1.0),
    "min_onset_gap_seconds": (0.0, 2.0),
    "capture_seconds": (0.05, 20.0),
}
_HYST_NUMBERS = {
    "margin": (0.0, 1.0),
    "new_weight": (0.0, 1.0),
    "decay": (0.0, 1.0),
    "max_age_seconds": (0.0, 3600.0),
    "min_score": (-1.0, 1.0),
}
_REQUIRED = {"format", "version", "name", "mode", "window_seconds", "gate_db",
             "onset_sensitivity", "k", "hysteresis"}
_OPTIONAL = {"description", "hop_seconds", "pre_roll_seconds", "cut_at_next_onset",
             "min_onset_gap_seconds", "capture_seconds"}


def _number(source: str, key: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{source}: {key!r} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ProfileError(f"{source}: {key!r} must be between {lo:g} and {hi:g}, got {value!r}")
    return float(value)


def _integer(source: str, key: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{source}: {key!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ProfileError(f"{source}: {key!r} must be between {lo} and {hi}, got {value}")
    return value


def profile_from_json(data, source: str = "profile") -> MatchProfile:
    """Validate a parsed JSON value; ProfileError names the first problem."""
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a match profile must be a JSON object")
    if data.get("format") != FORMAT:
        raise ProfileError(f"{source}: not a Sample Scout match profile (missing format {FORMAT!r})")
    if data.get("version") != 1:
        raise ProfileError(f"{source}: unsupported version {data.get('version')!r} (expected 1)")
    missing = sorted(_REQUIRED - data.keys())
    if missing:
        raise ProfileError(f"{source}: missing key {missing[0]!r}")
    unknown = sorted(data.keys() - _REQUIRED - _OPTIONAL)
    if unknown:
        raise ProfileError(f"{source}: unknown key {unknown[0]!r}")
    name = data["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise ProfileError(f"{source}: 'name' must be a non-empty string of at most 64 characters")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{source}: 'description' must be a string")
    mode = data["mode"]
    if mode not in MODES:
        raise ProfileError(f"{source}: 'mode' must be one of {', '.join(MODES)}, got {mode!r}")
    values = {key: _number(source, key, data[key], *_NUMBERS[key])
              for key in _NUMBERS if key in data}
    if mode == "rolling" and "hop_seconds" not in data:
        raise ProfileError(f"{source}: a rolling profile needs 'hop_seconds'")
    cut = data.get("cut_at_next_onset", True)
    if not isinstance(cut, bool):
        raise ProfileError(f"{source}: 'cut_at_next_onset' must be true or false")
    k = _integer(source, "k", data["k"], 1, 100)
    hyst = data["hysteresis"]
    if not isinstance(hyst, dict):
        raise ProfileError(f"{source}: 'hysteresis' must be an object")
    unknown = sorted(hyst.keys() - _HYST_NUMBERS.keys() - {"display"})
    if unknown:
        raise ProfileError(f"{source}: unknown key 'hysteresis.{unknown[0]}'")
    h = {key: _number(source, f"hysteresis.{key}", hyst[key], *_HYST_NUMBERS[key])
         for key in _HYST_NUMBERS if key in hyst}
    if "display" in hyst:
        h["display"] = _integer(source, "hysteresis.display", hyst["display"], 1, 100)
    return MatchProfile(name=name.strip(), mode=mode, k=k, hysteresis=Hysteresis(**h),
                        cut_at_next_onset=cut, description=description, **values)


def load_profile(path: str | os.PathLike) -> MatchProfile:
    """Read and validate one profile file."""
    path = Path(path)
    try:
        data = read_json_file(path, max_bytes=MAX_PRESET_BYTES)
    except JsonFileError as exc:
        if exc.code == "not_found":
            raise ProfileError(f"match profile not found: {path}") from None
        if exc.code == "unreadable":
            raise ProfileError(f"cannot read match profile {path}: {exc.problem}") from None
        raise ProfileError(str(exc)) from None
    return profile_from_json(data, source=str(path))


def profile_names(preset_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the shipped profiles (file stems), sorted."""
    folder = Path(preset_dir) if preset_dir else PRESET_DIR
    return sorted(p.stem for p in folder.glob("*.json"))


def get_profile(name_or_path: str | os.PathLike, preset_dir: str | os.PathLike | None = None) -> MatchProfile:
    """A shipped profile by name (``drums``), or a profile file by path."""
    text = os.fspath(name_or_path)
    if text.endswith(".json") or os.sep in text:
        return load_profile(text)
    folder = Path(preset_dir) if preset_dir else PRESET_DIR
    if not text.replace("_", "").replace("-", "").isalnum():
        raise ProfileError(f"bad profile name {text!r}")
    path = folder / f"{text}.json"
    if not path.exists():
        raise ProfileError(f"no match profile named {text!r} (available: {', '.join(profile_names(folder))})")
    return load_profile(path)
