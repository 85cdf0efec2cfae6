"""The audio engine's façade: `AudioEngine`, the app's handle on a duplex PortAudio stream
whose callback fills the capture ring, updates the meters and mixes preview voices.

Design (chosen by bench/engine.py): the stream runs in an audio process of its own
(`isolation="process"`). A Python callback must take the GIL; in the app process any busy
Python thread (UI, matcher) holds it for milliseconds and the 64-frame callback misses its
deadline. The audio process (engine.audio_process) runs nothing else but its callback, the
MIDI input thread, a control loop and the chain control thread (engine.monitor). The capture
ring, meters, playheads and a preview command ring live in one shared memory block
(engine.shared_block), so the app reads them without a round trip; everything else travels as
typed messages over a pipe (engine.messages).

The same process also gives reconnection: PortAudio's JACK backend aborts the process when a
stream is closed after the server went away, so the supervisor thread in the app simply starts
a fresh audio process (retrying every `retry_interval` s) and the app lives on.
`isolation="thread"` runs the same code in the app process (for comparison; no reconnect).

Monitoring and chains (engine.monitor): the app sends a chain's *description* (the preset
document of `chain_presets.chain_to_dict`); a control thread in the audio process builds its
own Chain from it and swaps it in whole. With monitoring on, the output is
input -> input chain -> output, mixed with the previews (which run through the preview chain
live, on the preview bus). The capture ring always keeps the RAW input: the app's analysis
applies its own input Chain to ring audio. Real-time cost: pedalboard allocates its output
arrays on every call, so with monitoring on (or a preview chain set) the callback is no
longer allocation-free; bench/engine.py measures what that costs.

Latency: on JACK the stream asks PortAudio for the server's own period (block size
"unspecified"); a fixed block size makes PortAudio's buffer adapter add one more block of
output latency. `StreamConfig.block_size` is then the JACK period the server runs at.

Threads: `AudioEngine` methods may be called from any app thread; `status()`, `meters()`,
`playheads()` and `ring` reads are polling-safe. Messages from the audio process are handled
on the engine's supervisor thread.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing import shared_memory
from typing import Callable

import numpy as np

from engine.errors import SampleScoutError

from .audio_process import audio_main
from .messages import (AttachSample, BuildChain, ChainDone, ChainRequest, Failed, LearnMidi, Lost,
                       MidiReceived, PutSample, SampleReady, SetChainBypass, SetChainParameter,
                       SetMidiMap, SetSlots, Started, Stop, ToAudio)
from .meters import Meters, MeterReading
from .monitor import CHAIN_NAMES, check_chain_name, finite_number, member_index
from .previews import OP_CHOKE, OP_PLAY, OP_STOP, OP_STOP_ALL, SampleCache
from .shared_block import (CMD_READ, CMD_SLOTS, CMD_WRITTEN, DURATION_SLOTS, PARAM_MONITORING,
                           PARAM_VOLUME, SharedBlock)

__all__ = ["StreamConfig", "AudioEngine", "EngineStatus", "EngineError"]

MAX_BLOCK = 1024                 # largest block_size a config may ask for
MAX_SAMPLES = 4096               # samples loaded at once (PreviewMixer.samples)


class EngineError(SampleScoutError, RuntimeError):
    """A clear, one-line engine error for the user."""


@dataclass
class StreamConfig:
    hostapi: str | None = None          # host API name substring, e.g. "JACK", "ALSA", "ASIO"
    device: str | int | None = None     # device name substring or index
    input_channels: int = 2
    output_channels: int = 2
    sample_rate: int = 48000
    block_size: int = 64                # 64..1024
    voices: int = 16
    ring_seconds: float = 30.0
    isolation: str = "process"          # "process" (kept) or "thread"
    midi_api: str | None = None         # None: no MIDI; "auto", "jack", "alsa", "coremidi", "winmm"
    midi_port: str | int | None = None  # None: virtual port "Sample Scout In"
    retry_interval: float = 1.0
    vst3_paths: tuple = ()              # extra VST3 folders chain plugins may be loaded from
    vst3_cache_dir: str | None = None   # plugin scan cache (default: the user cache dir)

    def validate(self) -> None:
        if not 64 <= self.block_size <= MAX_BLOCK:
            raise EngineError(f"block_size must be 64..{MAX_BLOCK}, not {self.block_size}")
        if self.input_channels < 1 or self.output_channels < 1:
            raise EngineError("input_channels and output_channels must be >= 1")
        if self.voices < 16:
            raise EngineError("voices must be >= 16")
        if self.isolation not in ("process", "thread"):
            raise EngineError("isolation must be 'process' or 'thread'")


@dataclass
class EngineStatus:
    state: str          # "starting", "running", "waiting" (no device / lost, retrying), "stopped"
    message: str        # one line for the user
    device: str = ""
    restarts: int = 0
    midi: str = ""      # MIDI port in use or why there is none
    input_latency: float | None = None    # seconds, as the audio process's stream reports them
    output_latency: float | None = None


def _split_latency(latency, cfg) -> tuple[float | None, float | None]:
    """sounddevice reports (input, output) for a duplex stream, one float otherwise."""
    if isinstance(latency, (tuple, list)) and len(latency) == 2:
        return float(latency[0]), float(latency[1])
    if isinstance(latency, (int, float)):
        if cfg.input_channels and not cfg.output_channels:
            return float(latency), None
        if cfg.output_channels and not cfg.input_channels:
            return None, float(latency)
    return None, None


class ChainWaiter:
    """A chain request waiting for the audio process's `ChainDone`."""

    __slots__ = ("chain", "error", "_done")

    def __init__(self, chain: str | None):
        self.chain = chain              # the chain a BuildChain (re)builds; None for edits
        self.error: str | None = None   # the audio process's answer: None or why it failed
        self._done = threading.Event()

    def resolve(self, error: str | None) -> None:
        """Supervisor thread: the answer arrived."""
        self.error = error
        self._done.set()

    def release(self) -> None:
        """Supervisor thread: the audio process ended; the next one gets the chains on start."""
        self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)


class AudioEngine:
    """The app's handle on the audio engine. Any app thread."""

    def __init__(self, config: StreamConfig, sample_cache: SampleCache | None = None):
        config.validate()
        self.config = config
        self.cache = sample_cache or SampleCache(config.sample_rate, config.output_channels)
        self._thread_mode = config.isolation == "thread"
        self._sh = SharedBlock(config, create=not self._thread_mode, in_process=self._thread_mode)
        self.ring = self._sh.capture_ring()
        self._meters = Meters(config.input_channels, MAX_BLOCK, config.sample_rate,
                              levels=self._sh["levels"], counters=self._sh["counters"])
        self._status = EngineStatus("stopped", "engine not started")
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._samples: list[tuple[np.ndarray, shared_memory.SharedMemory | None]] = []
        self._sample_index: dict[str, int] = {}
        self._slots = [-1] * 17
        self._midi_map = None
        self._handlers: dict[str, Callable[[], None]] = {}
        self._learned = threading.Event()
        self._learning: str | None = None
        self._acks: dict[int, threading.Event] = {}
        self._conn = None
        self._child = None
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._next_vid = 1
        self.restarts = 0
        self.midi_events = 0
        self.last_midi: list | None = None
        self._midi_listeners: tuple[Callable[[list, str | None], None], ...] = ()
        # Chain descriptions as last set (with later parameter/bypass edits folded in), so a
        # fresh audio process gets them again after a reconnect.
        self._chain_specs: dict[str, dict | None] = {name: None for name in CHAIN_NAMES}
        self._chain_ids: dict[str, list[str]] = {name: [] for name in CHAIN_NAMES}
        self._chain_gen: dict[str, int] = {name: 0 for name in CHAIN_NAMES}
        self._chain_waits: dict[int, ChainWaiter] = {}
        self._tokens = iter(range(1, 1 << 62))
        self.chain_errors: dict[str, str | None] = {name: None for name in CHAIN_NAMES}

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._supervisor is not None:
            return
        self._stop.clear()
        self._status = EngineStatus("starting", "opening audio device")
        self._supervisor = threading.Thread(target=self._supervise, name="audio-supervisor", daemon=True)
        self._supervisor.start()

    def wait_running(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._status.state == "running":
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        self._stop.set()
        self._send(Stop())
        if self._supervisor is not None:
            self._supervisor.join(10)
            self._supervisor = None
        self._status = EngineStatus("stopped", "engine stopped", restarts=self.restarts)

    def close(self) -> None:
        self.stop()
        for _, seg in self._samples:
            if seg is not None:
                seg.close()
                seg.unlink()
        self._samples = []
        self.ring = None
        self._meters = None
        self._sh.close(unlink=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- supervisor thread ----------------------------------------------------------------

    def _supervise(self) -> None:
        first = True
        while not self._stop.is_set():
            if not first:
                self.restarts += 1
            first = False
            parent, child_end = mp.Pipe()
            if self._thread_mode:
                child = threading.Thread(target=audio_main, args=(self.config, None, child_end, self._sh, False),
                                         daemon=True, name="audio-stream")
            else:
                child = mp.get_context("spawn").Process(target=audio_main,
                                                        args=(self.config, self._sh.name, child_end),
                                                        daemon=True, name="samplescout-audio")
            child.start()
            self._child = child
            self._conn = parent
            self._run_child(parent, child)
            self._conn = None
            for waiter in list(self._chain_waits.values()):
                waiter.release()
            self._chain_waits.clear()
            child.join(2)
            if not self._thread_mode and child.is_alive():
                child.kill()
                child.join(2)
            if self._status.state == "running":
                self._status = EngineStatus("waiting", "audio stream ended; reopening",
                                            restarts=self.restarts)
            if self._thread_mode and self._status.state != "waiting":
                break
            self._stop.wait(self.config.retry_interval)

    def _run_child(self, conn, child) -> None:
        while not self._stop.is_set():
            try:
                if not conn.poll(0.1):
                    if not child.is_alive():
                        return
                    continue
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if self.REPLY_HANDLERS[type(msg)](self, msg):
                return

    # One handler per message from the audio process; True means that process is ending.

    def _on_started(self, msg: Started) -> bool:
        lat_in, lat_out = _split_latency(msg.latency, self.config)
        self._status = EngineStatus("running", f"running on {msg.device}", device=msg.device,
                                    restarts=self.restarts, midi=msg.midi,
                                    input_latency=lat_in, output_latency=lat_out)
        self._resend_state()
        return False

    def _on_failed(self, msg: Failed) -> bool:
        self._status = EngineStatus("waiting", msg.message + "; retrying", restarts=self.restarts)
        return True

    def _on_lost(self, msg: Lost) -> bool:
        self._status = EngineStatus("waiting", msg.message + "; reconnecting", restarts=self.restarts)
        return False

    def _on_sample_ready(self, msg: SampleReady) -> bool:
        ev = self._acks.pop(msg.index, None)
        if ev is not None:
            ev.set()
        return False

    def _on_midi_received(self, msg: MidiReceived) -> bool:
        self._on_midi(list(msg.message), msg.action)
        return False

    def _on_chain_done(self, msg: ChainDone) -> bool:
        waiter = self._chain_waits.pop(msg.token, None)
        if waiter is not None:
            if waiter.chain is not None and msg.error is not None:
                self.chain_errors[waiter.chain] = msg.error
            waiter.resolve(msg.error)
        return False

    REPLY_HANDLERS = {Started: _on_started, Failed: _on_failed, Lost: _on_lost,
                       SampleReady: _on_sample_ready, MidiReceived: _on_midi_received,
                       ChainDone: _on_chain_done}

    def _resend_state(self) -> None:
        with self._lock:
            samples = list(self._samples)
        for index, (arr, seg) in enumerate(samples):
            self._send(self._sample_message(index, arr, seg))
        self._send(SetSlots(tuple(self._slots)))
        if self._midi_map is not None:
            self._send(SetMidiMap(self._midi_map.to_json()))
        for name in CHAIN_NAMES:
            with self._lock:
                spec, gen = self._chain_specs[name], self._chain_gen[name]
            if spec is not None:
                self._chain_request(BuildChain(name, gen, spec), name, wait=None)

    def _on_midi(self, message: list, action: str | None) -> None:
        self.midi_events += 1
        self.last_midi = message
        for listener in self._midi_listeners:
            try:
                listener(list(message), action)
            except Exception:  # noqa: BLE001 — a bad listener must not stop MIDI handling
                pass
        if self._learning is not None and action == self._learning and self._midi_map is not None:
            from .midi import parse_message
            kind, number, _ = parse_message(message)
            self._midi_map.bind(kind, number, self._learning)
            self._learning = None
            self._learned.set()
            return
        if action and not action.startswith("audition_slot_") and action != "stop_all":
            handler = self._handlers.get(action)
            if handler is not None:
                handler()

    def _send(self, msg: ToAudio) -> None:
        conn = self._conn
        if conn is not None:
            with self._send_lock:
                try:
                    conn.send(msg)
                except (OSError, BrokenPipeError):
                    pass

    # ---- status, meters, capture ----------------------------------------------------------

    def status(self) -> EngineStatus:
        return self._status

    def meters(self) -> MeterReading:
        return self._meters.read()

    def callback_durations(self) -> np.ndarray:
        """Most recent callback durations in ns (up to 65536)."""
        n = int(self._sh["dur_head"][0])
        d = self._sh["durations"]
        return d[:min(n, DURATION_SLOTS)].copy()

    # ---- samples and previews -------------------------------------------------------------

    def load_sample(self, path, timeout: float = 5.0) -> int:
        """Decode (cached), hand to the audio side, return a sample index. App thread."""
        key = os.fspath(path)
        with self._lock:
            if key in self._sample_index:
                return self._sample_index[key]
        audio = self.cache.load(key)
        return self.add_sample(audio, key, timeout)

    def add_sample(self, audio: np.ndarray, key: str | None = None, timeout: float = 5.0) -> int:
        """Hand an already rendered float32 (frames, output_channels) array to the audio side."""
        audio = np.ascontiguousarray(audio, np.float32)
        if audio.ndim != 2 or audio.shape[1] != self.config.output_channels:
            raise EngineError(f"sample must be (frames, {self.config.output_channels}) float32")
        seg = None
        if not self._thread_mode:
            seg = shared_memory.SharedMemory(create=True, size=max(1, audio.nbytes))
            view = np.ndarray(audio.shape, np.float32, buffer=seg.buf)
            view[:] = audio
            audio = view
        with self._lock:
            index = len(self._samples)
            if index >= MAX_SAMPLES:
                raise EngineError(f"too many samples loaded ({MAX_SAMPLES})")
            self._samples.append((audio, seg))
            if key is not None:
                self._sample_index[key] = index
            ev = self._acks[index] = threading.Event()
        self._send(self._sample_message(index, audio, seg))
        if self._conn is not None:
            ev.wait(timeout)
        return index

    def reserve_sample(self, frames: int, timeout: float = 5.0,
                       wait: bool = True) -> tuple[int, np.ndarray]:
        """A silent sample of ``frames`` frames the audio side reads in place, and a writable
        view of it: frames written into the view after ``play`` are heard when the playhead
        gets there (a progressive render streams into it this way; what is not written yet
        plays as silence). Shared memory in both isolation modes. ``wait=False`` returns
        before the audio side has it: call ``wait_sample`` before ``play``. App thread."""
        shape = (max(1, int(frames)), self.config.output_channels)
        seg = shared_memory.SharedMemory(create=True, size=shape[0] * shape[1] * 4)
        view = np.ndarray(shape, np.float32, buffer=seg.buf)
        view[:] = 0.0
        with self._lock:
            index = len(self._samples)
            if index >= MAX_SAMPLES:
                seg.close()
                seg.unlink()
                raise EngineError(f"too many samples loaded ({MAX_SAMPLES})")
            self._samples.append((view, seg))
            ev = self._acks[index] = threading.Event()
        self._send(AttachSample(index, seg.name, shape))
        if wait and self._conn is not None:
            ev.wait(timeout)
        return index, view

    def wait_sample(self, index: int, timeout: float = 5.0) -> bool:
        """Wait until the audio side holds sample ``index``; False after ``timeout``. App thread."""
        with self._lock:
            ev = self._acks.get(index)
        return ev is None or self._conn is None or ev.wait(timeout)

    @staticmethod
    def _sample_message(index: int, audio: np.ndarray, seg) -> AttachSample | PutSample:
        if seg is None:
            return PutSample(index, audio)
        return AttachSample(index, seg.name, tuple(audio.shape))

    def sample_index(self, path) -> int | None:
        """The index `load_sample(path)` gave, or None if that file is not loaded. Any thread."""
        with self._lock:
            return self._sample_index.get(os.fspath(path))

    def _command(self, op: int, a: float = 0, b: float = 0, c: float = 0, d: float = 0) -> None:
        with self._lock:
            head = self._sh["cmd_head"]
            written = int(head[CMD_WRITTEN])
            if written - int(head[CMD_READ]) >= CMD_SLOTS and self._status.state == "running":
                raise EngineError("preview command queue full")
            self._sh["cmd"][written % CMD_SLOTS] = (op, a, b, c, d)
            head[CMD_WRITTEN] = written + 1  # publish after the slot is complete

    def play(self, sample_index: int, gain: float = 1.0, choke_group: int = 0) -> int:
        """Start a preview voice; returns its voice id (for stop and playheads)."""
        if not 0 <= sample_index < len(self._samples):
            raise EngineError(f"no sample with index {sample_index}")
        with self._lock:
            vid = self._next_vid
            self._next_vid += 1
        self._command(OP_PLAY, vid, sample_index, gain, choke_group)
        return vid

    def stop_voice(self, voice_id: int) -> None:
        self._command(OP_STOP, voice_id)

    def stop_all(self) -> None:
        self._command(OP_STOP_ALL)

    def choke(self, group: int) -> None:
        self._command(OP_CHOKE, group)

    def set_volume(self, volume: float) -> None:
        self._sh["params"][PARAM_VOLUME] = max(0.0, float(volume))

    def playheads(self) -> dict[int, int]:
        """voice id -> frames played so far, for the voices sounding now."""
        ids = self._sh["voice_ids"].copy()
        pos = self._sh["positions"].copy()
        return {int(v): int(p) for v, p in zip(ids, pos) if v > 0}

    # ---- monitoring and plugin chains -----------------------------------------------------

    def set_monitoring(self, on: bool) -> None:
        """Live monitoring: input -> input chain -> output, mixed with the previews. Any thread.
        The capture ring keeps the raw input either way."""
        self._sh["params"][PARAM_MONITORING] = 1.0 if on else 0.0

    @property
    def monitoring(self) -> bool:
        return bool(self._sh["params"][PARAM_MONITORING] != 0.0)

    def set_input_chain(self, spec: dict | None, member_ids: list[str] | None = None,
                        timeout: float = 60.0) -> list[str]:
        """Run monitoring through the chain described by `spec` (a `chain_presets.chain_to_dict`
        document, VST3 state included; None or no members: dry). App thread.

        The spec is validated here with the preset parser (PresetError subclasses on bad input,
        plugin paths only inside the allowed VST3 folders), then built by the audio process off
        its audio thread and swapped in whole. `member_ids` names the members in spec order (for
        example the ids of the app's own Chain); default "0", "1", ... Returns those ids.
        Waits up to `timeout` s for the audio process; EngineError if it could not build the
        chain (monitoring then runs dry). The app keeps its own Chain for analysis: the
        capture ring holds raw input."""
        return self._set_chain("input", spec, member_ids, timeout)

    def set_preview_chain(self, spec: dict | None, member_ids: list[str] | None = None,
                          timeout: float = 60.0) -> list[str]:
        """Like `set_input_chain`, for the chain that the preview voices play through (applied
        live to the preview mix, so tails ring out). Use it instead of, not together with,
        `SampleCache(render=...)`, or previews are processed twice."""
        return self._set_chain("preview", spec, member_ids, timeout)

    def chain_spec(self, chain: str) -> dict | None:
        """The description the audio process runs for `chain`, edits included (a copy)."""
        check_chain_name(chain)
        with self._lock:
            return copy.deepcopy(self._chain_specs[chain])

    def set_chain_parameter(self, chain: str, member_id: str | int, name: str, value: float,
                            timeout: float = 2.0) -> None:
        """Set one parameter of a running chain member (in its own units). App thread.
        Built-in ranges are checked here, VST3 ranges in the audio process; EngineError if
        refused."""
        spec, index = self._chain_member(chain, member_id)
        try:
            value = finite_number(value)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        entry = spec["members"][index]
        if entry.get("type") == "builtin":
            from .plugins import PluginError, check_builtin_value
            try:
                value = check_builtin_value(entry.get("effect", ""), name, value)
            except PluginError as exc:
                raise EngineError(str(exc)) from None
        self._chain_edit(chain, index, lambda gen: SetChainParameter(chain, gen, index, str(name), value),
                         timeout, lambda e: e.setdefault("params", {}).__setitem__(str(name), value))

    def set_chain_bypass(self, chain: str, member_id: str | int, bypassed: bool, timeout: float = 2.0) -> None:
        """Bypass or re-enable one member of a running chain. App thread."""
        spec, index = self._chain_member(chain, member_id)
        self._chain_edit(chain, index, lambda gen: SetChainBypass(chain, gen, index, bool(bypassed)),
                         timeout, lambda e: e.__setitem__("bypass", bool(bypassed)))

    def _chain_member(self, chain: str, member_id) -> tuple[dict, int]:
        try:
            check_chain_name(chain)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        with self._lock:
            spec = self._chain_specs[chain]
            ids = list(self._chain_ids[chain])
        if spec is None:
            raise EngineError(f"no {chain} chain is set")
        try:
            return spec, member_index(ids, member_id)
        except ValueError as exc:
            raise EngineError(f"{chain} chain: {exc}") from None

    def _chain_edit(self, chain: str, index: int, request: Callable[[int], ChainRequest],
                    timeout: float, fold: Callable[[dict], None]) -> None:
        """Fold an edit into the kept description of member `index`, then send
        `request(generation)` for the chain the audio process runs now."""
        with self._lock:
            gen = self._chain_gen[chain]
            fold(self._chain_specs[chain]["members"][index])
        error = self._chain_request(request(gen), None, wait=timeout)
        if error is not None:
            raise EngineError(f"{chain} chain: {error}")

    def _set_chain(self, chain: str, spec: dict | None, member_ids, timeout: float) -> list[str]:
        check_chain_name(chain)
        if spec is not None:
            from .chain_presets import parse_preset
            from .plugins import resolve_roots
            spec = copy.deepcopy(spec)
            parse_preset(spec, resolve_roots(self.config.vst3_paths))
            n = len(spec["members"])
        else:
            n = 0
        ids = [str(i) for i in range(n)] if member_ids is None else [str(m) for m in member_ids]
        if len(ids) != n or len(set(ids)) != n:
            raise EngineError(f"member_ids must name each of the {n} members once")
        with self._lock:
            self._chain_gen[chain] += 1
            gen = self._chain_gen[chain]
            self._chain_specs[chain] = spec
            self._chain_ids[chain] = ids
            self.chain_errors[chain] = None
        error = self._chain_request(BuildChain(chain, gen, spec), chain, wait=timeout)
        if error is not None:
            raise EngineError(f"{chain} chain not loaded: {error}")
        return ids

    def _chain_request(self, request: ChainRequest, chain: str | None, wait: float | None) -> str | None:
        """Send one chain request to the audio process; with `wait`, block for its outcome
        (None when there is no audio process right now: it gets the chain when it starts).
        `chain` names the chain a BuildChain sets, so a failure lands in `chain_errors`."""
        token = next(self._tokens)
        waiter = ChainWaiter(chain)
        self._chain_waits[token] = waiter
        if self._conn is None:
            self._chain_waits.pop(token, None)
            return None
        self._send(replace(request, token=token))
        if wait is None:
            return None
        if not waiter.wait(wait):
            self._chain_waits.pop(token, None)
            if self._conn is None:
                return None
            return f"no answer from the audio process within {wait:g} s"
        return waiter.error

    # ---- MIDI -----------------------------------------------------------------------------

    def set_slot(self, slot: int, sample_index: int | None) -> None:
        """Which sample a pad (audition slot 1..16) plays. The app sets this per page."""
        if not 1 <= slot <= 16:
            raise EngineError("slot must be 1..16")
        self._slots[slot] = -1 if sample_index is None else int(sample_index)
        self._send(SetSlots(tuple(self._slots)))

    def slot_sample(self, slot: int) -> int | None:
        """The sample index pad `slot` (1..16) plays, or None. Any thread."""
        if not 1 <= slot <= 16:
            raise EngineError("slot must be 1..16")
        index = self._slots[slot]
        return None if index < 0 else index

    def set_midi_map(self, midi_map) -> None:
        self._midi_map = midi_map
        self._send(SetMidiMap(midi_map.to_json()))

    def on_midi_message(self, callback: Callable[[list, str | None], None]) -> Callable[[], None]:
        """Call ``callback(message, action)`` for every incoming MIDI message (the raw bytes as a
        list of ints, and the action the map bound it to or None), also while MIDI learn runs.
        Runs on the engine's message thread: keep it short. Returns a function that removes
        the subscription. Any thread."""
        with self._lock:
            self._midi_listeners = (*self._midi_listeners, callback)

        def remove() -> None:
            with self._lock:
                self._midi_listeners = tuple(c for c in self._midi_listeners if c is not callback)
        return remove

    def on_action(self, action: str, handler: Callable[[], None]) -> None:
        """Register what capture_lookup / page_next / page_prev do (called on a non-audio thread)."""
        self._handlers[action] = handler

    def midi_learn(self, action: str, timeout: float) -> bool:
        """Bind the next note or CC to `action`; True if one arrived in time."""
        if self._midi_map is None:
            from .midi import MidiMap
            self._midi_map = MidiMap()
        self._learned.clear()
        self._learning = action
        self._send(LearnMidi(action))
        ok = self._learned.wait(timeout)
        if ok:
            self._send(SetMidiMap(self._midi_map.to_json()))
        return ok
