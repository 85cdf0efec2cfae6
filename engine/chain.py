"""Effect chains: built-in pedalboard effects and VST3 plugins in series.

A Chain holds an immutable ChainSnapshot (members in order plus the set of
bypassed member ids). Control threads (UI, MIDI learn, preset loading)
build a new snapshot off the processing thread and publish it with one
reference assignment; ``Chain.process`` reads that reference once per block.
Parameter values are set on the live plugin objects (they are numbers the
plugins read per block), so a slider move does not rebuild anything.

Output does not depend on the block size: every member is primed once with
a block of ``max_block_size`` zero frames (pedalboard then never re-prepares,
which would reset its state, and it knows the channel layout even for
one-frame blocks), and longer blocks are split.

Thread rules: ``process`` runs on one processing thread at a time (the
matcher thread, a preview renderer or the monitoring path). Every other
method is for control threads and may be called while ``process`` runs.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pedalboard

from engine import plugins
from engine.plugins import ParameterInfo, PluginError, PluginScanner
from engine.errors import SampleScoutError

DEFAULT_MAX_BLOCK_SIZE = 8192

_ids = itertools.count(1)


class ChainError(SampleScoutError):
    """An invalid chain operation (unknown member, bad index, bad value); message is user-facing."""


@dataclass(eq=False)
class ChainMember:
    """One processor in a chain. Its identity (id) survives snapshot swaps; its plugin keeps its state."""

    kind: str  # "builtin" or "vst3"
    effect: str  # built-in effect name, or the VST3 plugin's name
    plugin: pedalboard.Plugin
    channels: tuple[int, ...] = ()  # channel counts the plugin accepts; () means any
    path: str = ""  # VST3 bundle path
    id: str = field(default_factory=lambda: f"m{next(_ids)}")
    # Set by control threads when a VST3 parameter changes; cleared by process().
    state_dirty: bool = False
    _plugin_channels: int = 0

    def prepare(self, sample_rate: float, channels: int, max_block_size: int) -> None:
        """Prime the plugin for this format (control thread, before the member is published)."""
        if not self.channels or channels in self.channels:
            pc = channels
        elif 2 in self.channels and channels != 1:
            pc = 2
        else:
            pc = self.channels[0]
        self.plugin(np.zeros((pc, max_block_size), np.float32), sample_rate, reset=True)
        self._plugin_channels = pc

    def run(self, x: np.ndarray, sample_rate: float) -> np.ndarray:
        """Process channels-first audio, adapting the channel count to the plugin (processing thread)."""
        c = x.shape[0]
        pc = self._plugin_channels
        if pc == c:
            y = self._call(x, sample_rate)
        elif pc == 1:
            y = np.repeat(self._call(x.mean(axis=0, keepdims=True), sample_rate), c, axis=0)
        else:
            mono = x.mean(axis=0, keepdims=True)
            y = self._call(np.repeat(mono, pc, axis=0), sample_rate)
            y = np.repeat(y.mean(axis=0, keepdims=True), c, axis=0)
        self.state_dirty = False
        return y

    def _call(self, x: np.ndarray, sample_rate: float) -> np.ndarray:
        return self.plugin(x, sample_rate, reset=False)

    @property
    def layout(self) -> str:
        return plugins.layout_name(self.channels) if self.channels else "any"


@dataclass(frozen=True)
class ChainSnapshot:
    """What the processing thread sees: members in order and the ids that are bypassed."""

    members: tuple[ChainMember, ...] = ()
    bypassed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MemberInfo:
    """A chain member as the UI lists it."""

    id: str
    kind: str
    effect: str
    path: str
    bypassed: bool
    layout: str


class Chain:
    """A chain of effects with lock-free reads for the processing thread."""

    def __init__(
        self,
        name: str = "input",
        sample_rate: float = 48000,
        channels: int = 2,
        max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
        scanner: PluginScanner | None = None,
    ) -> None:
        if channels < 1:
            raise ChainError("a chain needs at least one channel")
        if max_block_size < 1:
            raise ChainError("max_block_size must be positive")
        self.name = name
        self.sample_rate = float(sample_rate)
        self.channels = int(channels)
        self.max_block_size = int(max_block_size)
        self.scanner = scanner
        self._snapshot = ChainSnapshot()
        self._edit_lock = threading.Lock()  # serialises control threads only
        self._last_process = 0.0

    # -- processing thread -------------------------------------------------

    @property
    def snapshot(self) -> ChainSnapshot:
        return self._snapshot

    def process(self, block: np.ndarray, sample_rate: float | None = None) -> np.ndarray:
        """Run one block of float32 audio [frames, channels] through the chain; returns the same shape.

        Processing thread only. A sample rate other than the chain's makes
        pedalboard re-prepare its plugins (state is lost); call set_format first.
        """
        snap = self._snapshot  # the one read of the shared reference for this block
        if block.ndim == 1:
            block = block[:, None]
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ChainError(f"expected audio shaped [frames, {self.channels}], got {list(block.shape)}")
        sr = self.sample_rate if sample_rate is None else float(sample_rate)
        active = [m for m in snap.members if m.id not in snap.bypassed]
        self._last_process = time.monotonic()
        if not active or block.shape[0] == 0:
            return np.array(block, dtype=np.float32, copy=True)
        x = np.ascontiguousarray(block.T, dtype=np.float32)
        step = self.max_block_size
        if x.shape[1] <= step:
            for m in active:
                x = m.run(x, sr)
        else:
            parts = []
            for start in range(0, x.shape[1], step):
                part = x[:, start : start + step]
                for m in active:
                    part = m.run(part, sr)
                parts.append(part)
            x = np.concatenate(parts, axis=1)
        return np.ascontiguousarray(x.T)

    # -- control threads ---------------------------------------------------

    def _publish(self, members: Iterable[ChainMember], bypassed: Iterable[str]) -> None:
        members = tuple(members)
        ids = {m.id for m in members}
        self._snapshot = ChainSnapshot(members, frozenset(b for b in bypassed if b in ids))

    def _find(self, member_id: str) -> ChainMember:
        for m in self._snapshot.members:
            if m.id == member_id:
                return m
        raise ChainError(f"no member {member_id!r} in the {self.name} chain")

    def _index(self, index: int | None, length: int) -> int:
        if index is None:
            return length
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= length:
            raise ChainError(f"position {index!r} is outside 0..{length}")
        return index

    def add_member(self, member: ChainMember, index: int | None = None, bypassed: bool = False) -> str:
        """Prime a member for this chain's format and insert it (at the end by default)."""
        member.prepare(self.sample_rate, self.channels, self.max_block_size)
        with self._edit_lock:
            snap = self._snapshot
            members = list(snap.members)
            if any(m.id == member.id for m in members):
                raise ChainError(f"member {member.id} is already in the chain")
            members.insert(self._index(index, len(members)), member)
            by = set(snap.bypassed) | ({member.id} if bypassed else set())
            self._publish(members, by)
        return member.id

    def add_effect(self, effect: str, params: dict | None = None, index: int | None = None) -> str:
        """Add a built-in effect; returns its member id."""
        try:
            plugin = plugins.create_builtin(effect, params)
        except PluginError as exc:
            raise ChainError(str(exc)) from None
        return self.add_member(ChainMember("builtin", effect, plugin), index)

    def add_vst3(self, path: str, index: int | None = None, state: bytes | None = None) -> str:
        """Probe (out of process, cached), load and add a VST3 effect; returns its member id."""
        if self.scanner is None:
            raise ChainError("this chain has no plugin scanner; VST3 plugins cannot be added")
        plugin, info = plugins.load_vst3(path, self.scanner)
        member = ChainMember("vst3", info.name, plugin, tuple(info.channels), info.path)
        if state is not None:
            set_raw_state(member, state)
        return self.add_member(member, index)

    def remove(self, member_id: str) -> None:
        """Take a member out; its plugin is freed once the processing thread drops the old snapshot."""
        with self._edit_lock:
            snap = self._snapshot
            self._find(member_id)
            self._publish([m for m in snap.members if m.id != member_id], snap.bypassed - {member_id})

    def move(self, member_id: str, index: int) -> None:
        """Move a member to a new position (0 = first)."""
        with self._edit_lock:
            snap = self._snapshot
            member = self._find(member_id)
            members = [m for m in snap.members if m.id != member_id]
            members.insert(self._index(index, len(members)), member)
            self._publish(members, snap.bypassed)

    def set_bypass(self, member_id: str, bypassed: bool) -> None:
        with self._edit_lock:
            snap = self._snapshot
            self._find(member_id)
            by = set(snap.bypassed)
            (by.add if bypassed else by.discard)(member_id)
            self._publish(snap.members, by)

    def clear(self) -> None:
        with self._edit_lock:
            self._publish((), ())

    def replace(self, members: Iterable[ChainMember], bypassed: Iterable[str] = ()) -> None:
        """Swap in a whole new member list (e.g. from a preset); members are primed first."""
        members = list(members)
        for m in members:
            m.prepare(self.sample_rate, self.channels, self.max_block_size)
        with self._edit_lock:
            self._publish(members, bypassed)

    def set_format(self, sample_rate: float, channels: int | None = None) -> None:
        """Re-prime every member for a new sample rate / channel count (plugins lose their tails)."""
        with self._edit_lock:
            self.sample_rate = float(sample_rate)
            if channels is not None:
                self.channels = int(channels)
            for m in self._snapshot.members:
                m.prepare(self.sample_rate, self.channels, self.max_block_size)

    def members(self) -> list[MemberInfo]:
        snap = self._snapshot
        return [MemberInfo(m.id, m.kind, m.effect, m.path, m.id in snap.bypassed, m.layout) for m in snap.members]

    def member(self, member_id: str) -> ChainMember:
        return self._find(member_id)

    def is_bypassed(self, member_id: str) -> bool:
        self._find(member_id)
        return member_id in self._snapshot.bypassed

    def parameters(self, member_id: str) -> list[ParameterInfo]:
        """Name, range, default, current value and units of each parameter of a member."""
        m = self._find(member_id)
        if m.kind == "builtin":
            return plugins.builtin_parameters(m.effect, m.plugin)
        return plugins.vst3_parameters(m.plugin)

    def get_parameter(self, member_id: str, name: str) -> float:
        m = self._find(member_id)
        for p in self.parameters(member_id):
            if p.name == name:
                return float(getattr(m.plugin, name))
        raise ChainError(f"{m.effect} has no parameter {name!r}")

    def set_parameter(self, member_id: str, name: str, value: float) -> None:
        """Set one parameter (in its own units) after checking its range."""
        m = self._find(member_id)
        set_member_parameter(m, name, value)


def set_member_parameter(member: ChainMember, name: str, value: object) -> None:
    """Validate and apply one parameter value on a member (control thread)."""
    if member.kind == "builtin":
        try:
            v = plugins.check_builtin_value(member.effect, name, value)
        except PluginError as exc:
            raise ChainError(str(exc)) from None
        setattr(member.plugin, name, v)
        return
    specs = {p.name: p for p in plugins.vst3_parameters(member.plugin)}
    if name not in specs:
        raise ChainError(f"{member.effect} has no settable parameter {name!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ChainError(f"{member.effect}.{name} must be a number, got {type(value).__name__}")
    spec = specs[name]
    v = float(value)
    if not spec.min <= v <= spec.max:
        raise ChainError(f"{member.effect}.{name} = {v} is outside {spec.min}..{spec.max} {spec.units}".rstrip())
    try:
        setattr(member.plugin, name, bool(v >= 0.5) if spec.is_boolean else v)
    except Exception as exc:  # noqa: BLE001 - plugin-side refusal becomes a clear error
        raise ChainError(f"{member.effect} refused {name} = {v}: {exc}") from None
    member.state_dirty = True


def set_raw_state(member: ChainMember, state: bytes) -> None:
    """Restore a VST3 member's state blob (control thread)."""
    try:
        member.plugin.raw_state = state
    except Exception as exc:  # noqa: BLE001
        raise ChainError(f"{member.effect} rejected the saved state: {exc}") from None
    member.state_dirty = True


def current_raw_state(chain: Chain, member: ChainMember, wait_seconds: float = 0.5) -> bytes:
    """A VST3 member's state including its latest parameter changes (control thread).

    A parameter change reaches raw_state only after the plugin processed a
    block. If the chain is being processed, wait for the next block;
    if it is idle, push one silent frame through the plugin ourselves.
    """
    if member.state_dirty and time.monotonic() - chain._last_process < 0.25:
        deadline = time.monotonic() + wait_seconds
        while member.state_dirty and time.monotonic() < deadline:
            time.sleep(0.005)
    if member.state_dirty:
        pc = member._plugin_channels or 1
        member.plugin(np.zeros((pc, 1), np.float32), chain.sample_rate, reset=False)
        member.state_dirty = False
    return bytes(member.plugin.raw_state)
