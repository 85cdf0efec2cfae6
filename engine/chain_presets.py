"""Chain presets: JSON files describing a chain's members, checked by hand.

Format (``presets/chains/*.json``)::

    {"format": "samplescout-chain", "version": 1, "name": "mic cleanup",
     "members": [
        {"type": "builtin", "effect": "HighpassFilter", "bypass": false,
         "params": {"cutoff_frequency_hz": 90.0}},
        {"type": "vst3", "path": "/usr/lib/vst3/ZamComp.vst3", "name": "ZamComp",
         "bypass": false, "state": "<base64 of raw_state>", "params": {"ratio": 4.0}}
     ]}

Loading never unpickles or evaluates anything: the file is size-limited JSON,
every field is type-checked, effect names must be known, parameter values in
range, VST3 state base64 within STATE_LIMIT bytes, and plugin paths must lie
inside the allowed VST3 folders. Every problem raises a PresetError subclass
whose message says what is wrong and where.

Control threads only.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from engine import plugins
from engine.chain import Chain, ChainError, ChainMember, current_raw_state, set_member_parameter, set_raw_state
from engine.plugins import PluginError, PluginPathError
from engine.errors import SampleScoutError
from presets import shipped_dir

PRESET_FORMAT = "samplescout-chain"
PRESET_VERSION = 1
FILE_LIMIT = 4 * 1024 * 1024  # bytes of JSON
STATE_LIMIT = 1024 * 1024  # bytes of decoded plugin state
MAX_MEMBERS = 64
SHIPPED_DIR = shipped_dir("chains")


class PresetError(SampleScoutError, ValueError):
    """A chain preset cannot be read or applied; the message is user-facing."""


class PresetSyntaxError(PresetError):
    """Not valid JSON (or not UTF-8, or too large to be a preset)."""


class PresetSchemaError(PresetError):
    """Valid JSON, wrong shape: missing field, wrong type, unknown key."""


class UnknownEffectError(PresetError):
    """A built-in effect name the app does not know."""


class ParameterRangeError(PresetError):
    """A parameter that does not exist or a value outside its range."""


class PresetPathError(PresetError):
    """A plugin path outside the allowed VST3 folders, or not a VST3 bundle."""


class StateTooLargeError(PresetError):
    """A plugin state blob over STATE_LIMIT bytes."""


class PresetPluginError(PresetError):
    """A VST3 plugin in the preset could not be probed or loaded."""


@dataclass
class MemberSpec:
    """One validated preset entry."""

    type: str
    effect: str = ""
    path: str = ""
    bypass: bool = False
    params: dict[str, float] = field(default_factory=dict)
    state: bytes | None = None


@dataclass
class ChainPreset:
    name: str
    members: list[MemberSpec]


# ---------------------------------------------------------------------------
# Reading and validating


def _where(i: int | None, key: str = "") -> str:
    base = "preset" if i is None else f"member {i}"
    return f"{base}: {key}" if key else base


def _expect(value: Any, kind: type | tuple, where: str) -> Any:
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float, (int, float)))
    if not ok:
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise PresetSchemaError(f"{where} must be {names}, got {type(value).__name__}")
    return value


def _check_keys(obj: dict, allowed: set[str], required: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise PresetSchemaError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    missing = required - set(obj)
    if missing:
        raise PresetSchemaError(f"{where}: missing field(s) {', '.join(sorted(missing))}")


def _params(obj: Any, i: int) -> dict[str, float]:
    _expect(obj, dict, _where(i, "params"))
    out = {}
    for name, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PresetSchemaError(f"{_where(i, 'params.' + name)} must be a number, got {type(value).__name__}")
        if not math.isfinite(float(value)):
            raise ParameterRangeError(f"{_where(i, 'params.' + name)} is not a finite number")
        out[name] = float(value)
    return out


def _decode_state(text: Any, i: int) -> bytes:
    _expect(text, str, _where(i, "state"))
    if len(text) > (STATE_LIMIT * 4) // 3 + 8:
        raise StateTooLargeError(f"{_where(i, 'state')} is larger than {STATE_LIMIT} bytes")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise PresetSchemaError(f"{_where(i, 'state')} is not valid base64") from None
    if len(data) > STATE_LIMIT:
        raise StateTooLargeError(f"{_where(i, 'state')} is larger than {STATE_LIMIT} bytes")
    return data


def parse_preset(data: Any, allowed_roots: Iterable[Path] = ()) -> ChainPreset:
    """Validate a decoded JSON document; raise a PresetError subclass on the first problem."""
    roots = list(allowed_roots)
    _expect(data, dict, "preset")
    _check_keys(data, {"format", "version", "name", "members"}, {"format", "version", "members"}, "preset")
    if data["format"] != PRESET_FORMAT:
        raise PresetSchemaError(f"preset: format must be {PRESET_FORMAT!r}, got {data['format']!r}")
    _expect(data["version"], int, _where(None, "version"))
    if data["version"] != PRESET_VERSION:
        raise PresetSchemaError(f"preset: version {data['version']} is not supported (this app reads {PRESET_VERSION})")
    name = _expect(data.get("name", ""), str, _where(None, "name"))
    members_raw = _expect(data["members"], list, _where(None, "members"))
    if len(members_raw) > MAX_MEMBERS:
        raise PresetSchemaError(f"preset: more than {MAX_MEMBERS} members")
    members = []
    for i, m in enumerate(members_raw):
        _expect(m, dict, _where(i))
        kind = _expect(m.get("type"), str, _where(i, "type"))
        bypass = _expect(m.get("bypass", False), bool, _where(i, "bypass"))
        params = _params(m.get("params", {}), i)
        if kind == "builtin":
            _check_keys(m, {"type", "effect", "bypass", "params"}, {"type", "effect"}, _where(i))
            effect = _expect(m["effect"], str, _where(i, "effect"))
            if effect not in plugins.BUILTIN_EFFECTS:
                raise UnknownEffectError(
                    f"{_where(i)}: unknown effect {effect!r}; known: {', '.join(plugins.BUILTIN_EFFECTS)}"
                )
            for pname, value in params.items():
                try:
                    plugins.check_builtin_value(effect, pname, value)
                except PluginError as exc:
                    raise ParameterRangeError(f"{_where(i)}: {exc}") from None
            members.append(MemberSpec("builtin", effect=effect, bypass=bypass, params=params))
        elif kind == "vst3":
            _check_keys(m, {"type", "path", "name", "bypass", "params", "state"}, {"type", "path"}, _where(i))
            path = _expect(m["path"], str, _where(i, "path"))
            _expect(m.get("name", ""), str, _where(i, "name"))
            try:
                resolved = plugins.check_plugin_path(path, roots)
            except PluginPathError as exc:
                raise PresetPathError(f"{_where(i)}: {exc}") from None
            state = _decode_state(m["state"], i) if "state" in m else None
            members.append(MemberSpec("vst3", path=str(resolved), bypass=bypass, params=params, state=state))
        else:
            raise PresetSchemaError(f"{_where(i, 'type')} must be 'builtin' or 'vst3', got {kind!r}")
    return ChainPreset(name, members)


def read_preset(path: str | os.PathLike, allowed_roots: Iterable[Path] = ()) -> ChainPreset:
    """Read and validate a preset file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            raw = f.read(FILE_LIMIT + 1)
    except OSError as exc:
        raise PresetError(f"cannot read preset {p}: {exc.strerror or exc}") from None
    if len(raw) > FILE_LIMIT:
        raise PresetSyntaxError(f"{p.name}: larger than {FILE_LIMIT} bytes, not a chain preset")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise PresetSyntaxError(f"{p.name}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PresetSyntaxError(f"{p.name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise PresetSyntaxError(f"{p.name}: JSON nested too deeply") from None
    try:
        return parse_preset(data, allowed_roots)
    except PresetError as exc:
        raise type(exc)(f"{p.name}: {exc}") from None


def _reject_constant(name: str) -> None:
    raise json.JSONDecodeError(f"{name} is not allowed", name, 0)


# ---------------------------------------------------------------------------
# Building chains from presets and presets from chains


def build_members(preset: ChainPreset, chain: Chain) -> tuple[list[ChainMember], list[str]]:
    """Create (and load) the members of a preset; nothing is published to the chain yet."""
    members, bypassed = [], []
    for i, spec in enumerate(preset.members):
        try:
            if spec.type == "builtin":
                m = ChainMember("builtin", spec.effect, plugins.create_builtin(spec.effect, spec.params))
            else:
                if chain.scanner is None:
                    raise PresetPluginError(f"{_where(i)}: VST3 plugins need a plugin scanner")
                try:
                    plugin, info = plugins.load_vst3(spec.path, chain.scanner)
                except PluginPathError as exc:
                    raise PresetPathError(f"{_where(i)}: {exc}") from None
                except PluginError as exc:
                    raise PresetPluginError(f"{_where(i)}: {exc}") from None
                m = ChainMember("vst3", info.name, plugin, tuple(info.channels), info.path)
                if spec.state is not None:
                    set_raw_state(m, spec.state)
                for pname, value in spec.params.items():
                    set_member_parameter(m, pname, value)
        except ChainError as exc:
            raise ParameterRangeError(f"{_where(i)}: {exc}") from None
        members.append(m)
        if spec.bypass:
            bypassed.append(m.id)
    return members, bypassed


def load_chain_preset(chain: Chain, path: str | os.PathLike) -> ChainPreset:
    """Replace the chain's members with those of a preset file (all or nothing)."""
    roots = chain.scanner.roots() if chain.scanner is not None else []
    preset = read_preset(path, roots)
    members, bypassed = build_members(preset, chain)
    chain.replace(members, bypassed)
    return preset


def chain_to_dict(chain: Chain, name: str = "") -> dict:
    """The preset document for a chain's current members (VST3 state flushed first)."""
    snap = chain.snapshot
    members = []
    for m in snap.members:
        entry: dict[str, Any] = {"type": m.kind, "bypass": m.id in snap.bypassed}
        if m.kind == "builtin":
            entry["effect"] = m.effect
            entry["params"] = {p.name: p.value for p in plugins.builtin_parameters(m.effect, m.plugin)}
        else:
            entry["path"] = m.path
            entry["name"] = m.effect
            state = current_raw_state(chain, m)
            if len(state) > STATE_LIMIT:
                raise StateTooLargeError(f"{m.effect}: state of {len(state)} bytes is over {STATE_LIMIT}")
            entry["state"] = base64.b64encode(state).decode("ascii")
        members.append(entry)
    return {"format": PRESET_FORMAT, "version": PRESET_VERSION, "name": name or chain.name, "members": members}


def save_chain_preset(chain: Chain, path: str | os.PathLike, name: str = "") -> Path:
    """Write the chain as a preset file (atomically); returns the path."""
    p = Path(path)
    doc = chain_to_dict(chain, name or p.stem)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return p


def shipped_presets() -> list[Path]:
    """The chain presets that come with the app."""
    return sorted(SHIPPED_DIR.glob("*.json"))
