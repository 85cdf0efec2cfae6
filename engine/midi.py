"""MIDI input (python-rtmidi) and MIDI learn maps.

`open_midi_input` picks the rtmidi API explicitly (JACK, ALSA, CoreMIDI, WinMM): a plain
`rtmidi.MidiIn()` raises where ALSA has no sequencer (no /dev/snd), so every API is tried in
turn and the failure becomes one clear `MidiUnavailable` message.

`MidiMap` maps a note or CC number (any channel) to an action. Its `handle` runs on rtmidi's
callback thread: audition actions go straight to a preview function (no round trip through the
UI); the other actions call handlers the app registers.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Callable

from engine.errors import SampleScoutError
from presets import shipped_dir

__all__ = ["ACTIONS", "MidiMap", "MidiMapError", "MidiInput", "MidiUnavailable", "open_midi_input",
           "list_midi_ports", "API_NAMES", "DEFAULT_MAP_PATH", "parse_message"]

SLOT_ACTIONS = [f"audition_slot_{i}" for i in range(1, 17)]
ACTIONS = ["capture_lookup", *SLOT_ACTIONS, "page_next", "page_prev", "stop_all"]
PRESET_DIR = str(shipped_dir("midi"))
DEFAULT_MAP_PATH = os.path.join(PRESET_DIR, "default_16_pads.json")
FORMAT = "samplescout-midi-map"

API_NAMES = {"jack": "API_UNIX_JACK", "alsa": "API_LINUX_ALSA", "coremidi": "API_MACOSX_CORE",
             "winmm": "API_WINDOWS_MM"}


class MidiMapError(SampleScoutError, ValueError):
    """A MIDI map preset is malformed; the message says what and where."""


class MidiUnavailable(SampleScoutError, RuntimeError):
    """No MIDI input could be opened; the message is one line for the user."""


def parse_message(message) -> tuple[str, int, int] | None:
    """('note', number, velocity) for note-on with velocity > 0, ('cc', number, value) for CC,
    ('note_off', number, 0) for note-off; None for anything else."""
    if not message:
        return None
    status = message[0] & 0xF0
    if status == 0x90 and len(message) >= 3:
        return ("note", message[1], message[2]) if message[2] > 0 else ("note_off", message[1], 0)
    if status == 0x80 and len(message) >= 3:
        return ("note_off", message[1], 0)
    if status == 0xB0 and len(message) >= 3:
        return ("cc", message[1], message[2])
    return None


class MidiMap:
    """Bindings ('note'|'cc', number) -> action name. Thread-safe enough for one writer (the
    UI/app thread, which replaces the dict whole) and one reader (the MIDI callback thread)."""

    def __init__(self, bindings: dict[tuple[str, int], str] | None = None, name: str = "custom"):
        self.name = name
        self._bindings: dict[tuple[str, int], str] = dict(bindings or {})
        self._learning: str | None = None
        self._learned = threading.Event()
        self.handlers: dict[str, Callable[[], None]] = {}
        self.audition: Callable[[int, int], None] | None = None  # (slot 1..16, velocity)

    # ---- editing (app thread) ------------------------------------------------------------

    def bind(self, kind: str, number: int, action: str) -> None:
        if kind not in ("note", "cc"):
            raise MidiMapError(f"kind must be 'note' or 'cc', not {kind!r}")
        if not 0 <= int(number) <= 127:
            raise MidiMapError(f"MIDI number {number} outside 0..127")
        if action not in ACTIONS:
            raise MidiMapError(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}")
        new = {k: v for k, v in self._bindings.items() if k != (kind, int(number))}
        new[(kind, int(number))] = action
        self._bindings = new

    def unbind(self, kind: str, number: int) -> None:
        self._bindings = {k: v for k, v in self._bindings.items() if k != (kind, int(number))}

    @property
    def bindings(self) -> dict[tuple[str, int], str]:
        return dict(self._bindings)

    def learn(self, action: str) -> None:
        """The next note-on or CC received binds to `action`."""
        if action not in ACTIONS:
            raise MidiMapError(f"unknown action {action!r}")
        self._learned.clear()
        self._learning = action

    def wait_learned(self, timeout: float) -> bool:
        return self._learned.wait(timeout)

    # ---- MIDI callback thread ------------------------------------------------------------

    def action_for(self, message) -> str | None:
        parsed = parse_message(message)
        if parsed is None or parsed[0] == "note_off":
            return None
        kind, number, value = parsed
        if kind == "cc" and value == 0:
            return None
        return self._bindings.get((kind, number))

    def handle(self, message) -> str | None:
        """Learn or dispatch one message; returns the action run (or learned)."""
        parsed = parse_message(message)
        if parsed is None or parsed[0] == "note_off" or (parsed[0] == "cc" and parsed[2] == 0):
            return None
        learning = self._learning
        if learning is not None:
            self._learning = None
            self.bind(parsed[0], parsed[1], learning)
            self._learned.set()
            return learning
        action = self._bindings.get((parsed[0], parsed[1]))
        if action is None:
            return None
        if action.startswith("audition_slot_"):
            if self.audition is not None:
                self.audition(int(action.rsplit("_", 1)[1]), parsed[2])
        else:
            handler = self.handlers.get(action)
            if handler is not None:
                handler()
        return action

    # ---- presets -------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": 1, "name": self.name,
                "bindings": [{"kind": k, "number": n, "action": a}
                             for (k, n), a in sorted(self._bindings.items())]}

    @classmethod
    def from_json(cls, data, source: str = "preset") -> "MidiMap":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise MidiMapError(f"{source}: not a Sample Scout MIDI map (missing format {FORMAT!r})")
        if data.get("version") != 1:
            raise MidiMapError(f"{source}: unsupported version {data.get('version')!r}")
        rows = data.get("bindings")
        if not isinstance(rows, list):
            raise MidiMapError(f"{source}: 'bindings' must be a list")
        m = cls(name=str(data.get("name", "custom")))
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("number"), int):
                raise MidiMapError(f"{source}: binding {i} must have kind, integer number and action")
            try:
                m.bind(row.get("kind"), row["number"], row.get("action"))
            except MidiMapError as exc:
                raise MidiMapError(f"{source}: binding {i}: {exc}") from None
        return m

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MidiMap":
        try:
            with open(path) as f:
                data = json.load(f)
        except OSError as exc:
            raise MidiMapError(f"cannot read MIDI map {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise MidiMapError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        return cls.from_json(data, source=os.fspath(path))

    @classmethod
    def default_16_pads(cls) -> "MidiMap":
        return cls({("note", 36 + i): f"audition_slot_{i + 1}" for i in range(16)}, name="16 pads")


def _platform_apis() -> list[str]:
    if sys.platform.startswith("linux"):
        return ["jack", "alsa"]
    if sys.platform == "darwin":
        return ["coremidi", "jack"]
    if sys.platform.startswith("win"):
        return ["winmm"]
    return ["jack", "alsa"]


def _compiled_apis() -> set[str]:
    import rtmidi
    have = set(rtmidi.get_compiled_api())
    return {name for name, const in API_NAMES.items() if getattr(rtmidi, const, None) in have}


def _new_midi_in(api: str, client_name: str):
    import rtmidi
    midi_in = rtmidi.MidiIn(getattr(rtmidi, API_NAMES[api]), name=client_name)
    midi_in.get_port_count()  # JACK connects lazily: fail here, not later
    return midi_in


class MidiInput:
    """An open MIDI input. The callback runs on rtmidi's thread with (message bytes list)."""

    def __init__(self, midi_in, api: str, port_name: str):
        self._in = midi_in
        self.api = api
        self.port_name = port_name

    def set_callback(self, callback: Callable[[list], None]) -> None:
        self._in.set_callback(lambda event, _data: callback(event[0]))

    def close(self) -> None:
        try:
            self._in.cancel_callback()
            self._in.close_port()
        finally:
            self._in.delete()


def open_midi_input(api: str = "auto", port: str | int | None = None, virtual: bool = True,
                    client_name: str = "Sample Scout") -> MidiInput:
    """Open a MIDI input port. `api`: 'auto', 'jack', 'alsa', 'coremidi', 'winmm'.
    `port`: an index or a substring of a port name; with port None and virtual True, opens a
    virtual port 'Sample Scout In' (not on WinMM). Raises MidiUnavailable with one line."""
    try:
        compiled = _compiled_apis()
    except ImportError:
        raise MidiUnavailable("MIDI unavailable: python-rtmidi is not installed") from None
    if api == "auto":
        tried = [a for a in _platform_apis() if a in compiled]
    elif api in API_NAMES:
        if api not in compiled:
            raise MidiUnavailable(f"MIDI API {api} is not compiled into python-rtmidi "
                                  f"(available: {', '.join(sorted(compiled)) or 'none'})")
        tried = [api]
    else:
        raise MidiUnavailable(f"unknown MIDI API {api!r}; use one of auto, {', '.join(API_NAMES)}")
    reasons = []
    for name in tried:
        try:
            midi_in = _new_midi_in(name, client_name)
        except Exception as exc:
            reasons.append(f"{name}: {str(exc).strip() or type(exc).__name__}")
            continue
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        ports = midi_in.get_ports()
        if port is None and virtual and name != "winmm":
            midi_in.open_virtual_port("Sample Scout In")
            return MidiInput(midi_in, name, "Sample Scout In")
        if port is None:
            if not ports:
                midi_in.delete()
                reasons.append(f"{name}: no MIDI input ports")
                continue
            index = 0
        elif isinstance(port, int):
            index = port
            if not 0 <= index < len(ports):
                midi_in.delete()
                raise MidiUnavailable(f"MIDI port {port} does not exist ({len(ports)} ports on {name})")
        else:
            index = next((i for i, p in enumerate(ports) if port in p), -1)
            if index < 0:
                midi_in.delete()
                reasons.append(f"{name}: no port matching {port!r}")
                continue
        midi_in.open_port(index, "Sample Scout In")
        return MidiInput(midi_in, name, ports[index])
    raise MidiUnavailable("no MIDI input available (" + "; ".join(reasons or ["no MIDI API"]) + ")")


def list_midi_ports() -> tuple[dict[str, list[str]], list[str]]:
    """({api: [input port names]}, [one-line errors]) for every API of this platform."""
    ports: dict[str, list[str]] = {}
    errors: list[str] = []
    try:
        compiled = _compiled_apis()
    except ImportError:
        return {}, ["MIDI unavailable: python-rtmidi is not installed"]
    for name in _platform_apis():
        if name not in compiled:
            continue
        try:
            midi_in = _new_midi_in(name, "Sample Scout probe")
        except Exception as exc:
            errors.append(f"MIDI {name}: unavailable ({str(exc).strip() or type(exc).__name__})")
            continue
        try:
            ports[name] = list(midi_in.get_ports())
        finally:
            midi_in.delete()
    return ports, errors
