"""The audio engine: a duplex PortAudio stream whose callback fills the capture ring, updates the
meters and mixes preview voices.

Design (chosen by bench/engine.py): the stream runs in an audio process of its own
(`isolation="process"`). A Python callback must take the GIL; in the app process any busy
Python thread (UI, matcher) holds it for milliseconds and the 64-frame callback misses its
deadline. The audio process runs nothing else but its callback, the MIDI input thread, an
idle control loop and the chain control thread (engine.monitor). The capture ring, meters, playheads and a command ring live in one shared
memory block, so the app reads them without a round trip.

The same process also gives reconnection: PortAudio's JACK backend aborts the process when a
stream is closed after the server went away, so the supervisor thread in the app simply starts
a fresh audio process (retrying every `retry_interval` s) and the app lives on.
`isolation="thread"` runs the same callback in the app process (for comparison; no reconnect).

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

Audio process hygiene (process mode): the cyclic garbage collector is disabled after setup
(its pauses would land in the callback), the shared block is paged in before the stream
starts, the process runs at raised priority where permitted, MIDI notes go straight from the
MIDI thread into the mixer's command deque, and the messages to the app are sent by the
control loop, not by the MIDI thread.

Threads: `AudioEngine` methods may be called from any app thread; `status()`, `meters()`,
`playheads()` and `ring` reads are polling-safe. The callback itself is `_Core.callback`.
"""

from __future__ import annotations

import collections
import copy
import gc
import multiprocessing as mp
import os
import select
import sys
import threading
import time
from dataclasses import dataclass, asdict
from multiprocessing import shared_memory
from typing import Callable

import numpy as np

from engine.errors import SampleScoutError

from .meters import Meters, MeterReading, N_COUNTERS
from .monitor import CHAIN_NAMES, ChainHost, check_chain_name, finite_number, member_index, route_monitor
from .previews import OP_CHOKE, OP_PLAY, OP_STOP, OP_STOP_ALL, PreviewMixer, SampleCache
from .ring import CaptureRing

__all__ = ["StreamConfig", "AudioEngine", "EngineStatus", "EngineError"]

CMD_SLOTS = 256
DURATION_SLOTS = 1 << 16
MAX_BLOCK = 1024                 # largest block_size a config may ask for
MAX_CALLBACK_FRAMES = 8192       # largest block a host may hand the callback (JACK's own period)
BASE_VOICE_ID = 1 << 40  # voice ids made inside the audio process (MIDI) start here


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


def _layout(cfg: StreamConfig) -> list[tuple[str, tuple, type]]:
    ring_frames = int(cfg.ring_seconds * cfg.sample_rate) + 2 * MAX_CALLBACK_FRAMES
    return [
        ("ring", (ring_frames, cfg.input_channels), np.float32),
        ("clock", (1,), np.int64),
        ("levels", (2, cfg.input_channels), np.float32),
        ("counters", (N_COUNTERS,), np.int64),
        ("positions", (cfg.voices,), np.int64),
        ("voice_ids", (cfg.voices,), np.int64),
        ("cmd", (CMD_SLOTS, 5), np.float64),
        ("cmd_head", (2,), np.int64),      # [written, read]
        ("params", (4,), np.float64),      # [preview volume, monitoring on, chain errors, -]
        ("durations", (DURATION_SLOTS,), np.int64),
        ("dur_head", (1,), np.int64),
    ]


class _Shared:
    """Named numpy views on one buffer (shared memory, or plain memory for thread mode)."""

    def __init__(self, cfg: StreamConfig, name: str | None = None, create: bool = False,
                 in_process: bool = False):
        specs = _layout(cfg)
        offsets, size = [], 0
        for _, shape, dtype in specs:
            size = (size + 63) // 64 * 64
            offsets.append(size)
            size += int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.shm = None
        if in_process:
            buf = memoryview(bytearray(size))
        else:
            self.shm = shared_memory.SharedMemory(name=name, create=create, size=size if create else 0)
            buf = self.shm.buf
        self.name = self.shm.name if self.shm else None
        self.arrays = {}
        for (key, shape, dtype), off in zip(specs, offsets):
            count = int(np.prod(shape))
            self.arrays[key] = np.frombuffer(buf, dtype=dtype, count=count, offset=off).reshape(shape)
        if create or in_process:
            self.arrays["params"][0] = 1.0

    def __getitem__(self, key):
        return self.arrays[key]

    def close(self, unlink: bool = False) -> None:
        self.arrays = {}
        if self.shm is not None:
            try:
                self.shm.close()
            except BufferError:
                pass  # a reader still holds a view; the OS frees it at exit
            if unlink:
                try:
                    self.shm.unlink()
                except FileNotFoundError:
                    pass


def _ring_view(cfg: StreamConfig, sh: _Shared) -> CaptureRing:
    ring = CaptureRing.__new__(CaptureRing)
    ring.channels = cfg.input_channels
    ring.capacity = sh["ring"].shape[0]
    ring.max_write_frames = MAX_CALLBACK_FRAMES
    ring._data = sh["ring"]
    ring._clock = sh["clock"]
    return ring


def _host_block_size(cfg: StreamConfig, dev) -> int:
    """Block size asked of PortAudio: JACK's own period on JACK (no adapter latency)."""
    return 0 if "jack" in str(getattr(dev, "hostapi", "")).lower() else cfg.block_size


class _Core:
    """State used by the audio callback (inside the audio process or thread)."""

    def __init__(self, cfg: StreamConfig, sh: _Shared):
        self.cfg = cfg
        self.sh = sh
        self.ring = _ring_view(cfg, sh)
        self.meters = Meters(cfg.input_channels, MAX_CALLBACK_FRAMES, cfg.sample_rate,
                             levels=sh["levels"], counters=sh["counters"])
        self.mixer = PreviewMixer(cfg.output_channels, MAX_CALLBACK_FRAMES, cfg.voices, cfg.sample_rate,
                                  positions=sh["positions"], voice_ids=sh["voice_ids"])
        self.mixer._ids = iter(range(BASE_VOICE_ID, 1 << 62))
        self.cmd = sh["cmd"]
        self.cmd_head = sh["cmd_head"]
        self.params = sh["params"]
        self.durations = sh["durations"]
        self.dur_head = sh["dur_head"]
        self.slots = [-1] * 17  # audition slot 1..16 -> sample index
        self.midi_gain = 1.0
        self.monitor: Callable[[np.ndarray], np.ndarray] | None = None  # extra monitor hook
        # Published by the chain control thread with one reference assignment each.
        self.input_chain = None
        self.preview_chain = None
        self._preview_bus = np.zeros((MAX_CALLBACK_FRAMES, cfg.output_channels), np.float32)

    def publish_chain(self, name: str, chain) -> None:
        """Chain control thread: swap a ready chain (or None) in whole."""
        if name == "input":
            self.input_chain = chain
        else:
            self.preview_chain = chain

    def callback(self, indata, outdata, frames, time_info, status):
        t0 = time.perf_counter_ns()
        if frames > MAX_CALLBACK_FRAMES:  # a host period larger than any buffer here
            outdata.fill(0.0)
            return
        self.ring.write(indata)  # always the raw input
        self.meters.update(indata, status._flags)
        head = self.cmd_head
        written = int(head[0])
        read = int(head[1])
        if read < written:
            mixer = self.mixer
            while read < written:
                c = self.cmd[read % CMD_SLOTS]
                mixer.apply((int(c[0]), int(c[1]), int(c[2]), float(c[3]), int(c[4])))
                read += 1
            head[1] = read
        params = self.params
        self.mixer.volume = float(params[0])
        outdata.fill(0.0)
        if params[1] != 0.0:
            chain = self.input_chain
            try:
                route_monitor(indata if chain is None else chain.process(indata), outdata)
            except Exception:  # a failing plugin is dropped, never the stream
                self.input_chain = None
                params[2] += 1
        monitor = self.monitor
        if monitor is not None:
            outdata += monitor(indata)
        chain = self.preview_chain
        if chain is None:
            self.mixer.mix(outdata)
        else:
            bus = self._preview_bus[:frames]
            bus.fill(0.0)
            self.mixer.mix(bus)
            try:
                outdata += chain.process(bus)
            except Exception:
                self.preview_chain = None
                params[2] += 1
                outdata += bus
        d = int(self.dur_head[0])
        self.durations[d % DURATION_SLOTS] = time.perf_counter_ns() - t0
        self.dur_head[0] = d + 1

    def audition(self, slot: int, velocity: int) -> None:
        """MIDI thread: straight into the mixer's command deque; the next callback starts the
        voice at its first frame."""
        index = self.slots[slot] if 1 <= slot <= 16 else -1
        if index >= 0:
            self.mixer.post((OP_PLAY, self.mixer.new_voice_id(), index, self.midi_gain, 0))


def _tune_audio_process(sh: _Shared) -> None:
    """Audio process only, before the stream starts: raised priority (inherited by the threads
    started later; JACK's own threads run realtime anyway), a short GIL switch interval so a
    thread holding the GIL yields quickly to the callback, and every page of the shared block
    faulted in now rather than by the callback. Failures (no permission) are ignored."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -11)
    except (OSError, AttributeError):
        pass
    sys.setswitchinterval(0.0005)
    if sh.shm is not None:
        pages = np.frombuffer(sh.shm.buf, np.uint8)[::4096]
        int(pages.sum(dtype=np.int64))
        del pages


def _freeze_garbage_collector() -> None:
    """Audio process only, after setup: no cyclic collection pauses can land in the callback.
    Plain reference counting still frees everything that is not in a cycle; the few cycles made
    by later chain rebuilds stay allocated (a small, bounded leak per rebuild)."""
    gc.collect()
    gc.freeze()
    gc.disable()


def _audio_main(cfg_dict: dict, shm_name: str | None, conn, shared: _Shared | None = None,
                exit_on_loss: bool = True) -> None:
    """Body of the audio process (or thread). Talks to the app through `conn`."""
    import sounddevice as sd

    from .devices import NoAudioDevice, find_device
    from .midi import MidiMap, MidiUnavailable, open_midi_input

    cfg = StreamConfig(**cfg_dict)
    sh = shared or _Shared(cfg, name=shm_name)
    isolated = shared is None
    if isolated:
        _tune_audio_process(sh)
    core = _Core(cfg, sh)
    send_lock = threading.Lock()

    def send(msg):
        with send_lock:
            try:
                conn.send(msg)
            except (BrokenPipeError, OSError):
                pass

    try:
        dev = find_device(cfg.hostapi, cfg.device, cfg.input_channels, cfg.output_channels)
        stream = sd.Stream(device=dev.index, samplerate=cfg.sample_rate, blocksize=_host_block_size(cfg, dev),
                           channels=(cfg.input_channels, cfg.output_channels), dtype="float32",
                           latency="low", callback=core.callback)
    except NoAudioDevice as exc:
        send(("error", str(exc)))
        return
    except Exception as exc:
        send(("error", f"cannot open audio device: {str(exc).strip() or type(exc).__name__}"))
        return

    chains = ChainHost(cfg.sample_rate, {"input": cfg.input_channels, "preview": cfg.output_channels},
                       MAX_CALLBACK_FRAMES, core.publish_chain,
                       lambda token, error: send(("chain_ack", token, error)),
                       vst3_paths=cfg.vst3_paths, vst3_cache_dir=cfg.vst3_cache_dir)
    midi_map = MidiMap()
    midi_map.audition = core.audition
    midi_map.handlers["stop_all"] = lambda: core.mixer.post((OP_STOP_ALL,))
    midi_in = None
    midi_msg = ""
    midi_seen: collections.deque = collections.deque(maxlen=1024)  # for the app, sent by the loop
    # The MIDI callback wakes the control loop (one byte down a pipe) so a message reaches the
    # app at once rather than at the loop's next 50 ms poll.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    if cfg.midi_api:
        try:
            midi_in = open_midi_input(cfg.midi_api, cfg.midi_port)
            midi_msg = f"MIDI {midi_in.api}: {midi_in.port_name}"

            def on_midi(message):
                midi_seen.append((message, midi_map.handle(message)))
                try:
                    os.write(wake_w, b"m")
                except OSError:     # pipe full: the loop is awake already
                    pass

            midi_in.set_callback(on_midi)
        except MidiUnavailable as exc:
            midi_msg = str(exc)
    if isolated:
        _freeze_garbage_collector()  # before the callback runs: a full collection holds the GIL
    try:
        stream.start()
    except Exception as exc:
        send(("error", f"cannot start audio stream: {str(exc).strip() or type(exc).__name__}"))
        if midi_in is not None:
            midi_in.close()
        chains.close()
        os.close(wake_r)
        os.close(wake_w)
        return
    send(("started", f"{dev.hostapi}: {dev.name}", midi_msg, stream.latency))

    attached = {}
    last_count, last_change = -1, time.monotonic()
    stall_limit = max(0.5, 40 * cfg.block_size / cfg.sample_rate)
    while True:
        while midi_seen:
            message, action = midi_seen.popleft()
            send(("midi", list(message), action))
        ready = select.select([conn, wake_r], [], [], 0.05)[0]
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except OSError:
                pass
            while midi_seen:
                message, action = midi_seen.popleft()
                send(("midi", list(message), action))
        if conn in ready:
            try:
                msg = conn.recv()
            except EOFError:
                break
            kind = msg[0]
            if kind == "stop":
                break
            if kind == "sample":
                _, index, name, shape = msg
                if name is None:
                    core.mixer.samples[index] = shape  # thread mode: the array itself
                else:
                    seg = shared_memory.SharedMemory(name=name)
                    attached[index] = seg
                    core.mixer.samples[index] = np.ndarray(shape, np.float32, buffer=seg.buf)
                send(("ack", index))
            elif kind == "slots":
                core.slots = list(msg[1])
            elif kind == "midi_map":
                new = MidiMap.from_json(msg[1])
                midi_map._bindings = new._bindings
            elif kind == "learn":
                midi_map.learn(msg[1])
            elif kind == "midi_gain":
                core.midi_gain = float(msg[1])
            elif kind == "chains":
                chains.submit(msg[1])
        count = int(sh["counters"][4])
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        elif now - last_change > stall_limit:
            send(("lost", "audio device stopped responding (audio server gone?)"))
            if exit_on_loss:
                # PortAudio's JACK backend asserts when closing a stream of a dead server.
                os._exit(4)
            chains.close()
            if midi_in is not None:
                midi_in.close()
            os.close(wake_r)
            os.close(wake_w)
            return
    if midi_in is not None:
        midi_in.close()
    os.close(wake_r)
    os.close(wake_w)
    stream.stop()
    stream.close()
    chains.close()
    core.mixer.samples = [None] * len(core.mixer.samples)
    for seg in attached.values():
        try:
            seg.close()
        except BufferError:
            pass


class AudioEngine:
    """The app's handle on the audio engine. Any app thread."""

    def __init__(self, config: StreamConfig, sample_cache: SampleCache | None = None):
        config.validate()
        self.config = config
        self.cache = sample_cache or SampleCache(config.sample_rate, config.output_channels)
        self._thread_mode = config.isolation == "thread"
        self._sh = _Shared(config, create=not self._thread_mode, in_process=self._thread_mode)
        self.ring = _ring_view(config, self._sh)
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
        self._chain_waits: dict[int, list] = {}
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
        conn = self._conn
        if conn is not None:
            try:
                conn.send(("stop",))
            except (OSError, BrokenPipeError):
                pass
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

    def _supervise(self) -> None:
        cfg = asdict(self.config)
        first = True
        while not self._stop.is_set():
            if not first:
                self.restarts += 1
            first = False
            parent, child_end = mp.Pipe()
            if self._thread_mode:
                child = threading.Thread(target=_audio_main, args=(cfg, None, child_end, self._sh, False),
                                         daemon=True, name="audio-stream")
            else:
                child = mp.get_context("spawn").Process(target=_audio_main, args=(cfg, self._sh.name, child_end),
                                                        daemon=True, name="samplescout-audio")
            child.start()
            self._child = child
            self._conn = parent
            self._run_child(parent, child)
            self._conn = None
            for waiter in list(self._chain_waits.values()):
                waiter[0].set()  # the next audio process gets the chains again on start
            self._chain_waits.clear()
            if self._thread_mode:
                child.join(2)
            else:
                child.join(2)
                if child.is_alive():
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
            kind = msg[0]
            if kind == "started":
                lat_in, lat_out = _split_latency(msg[3] if len(msg) > 3 else None, self.config)
                self._status = EngineStatus("running", f"running on {msg[1]}", device=msg[1],
                                            restarts=self.restarts, midi=msg[2],
                                            input_latency=lat_in, output_latency=lat_out)
                self._resend_state(conn)
            elif kind == "error":
                self._status = EngineStatus("waiting", msg[1] + "; retrying", restarts=self.restarts)
                return
            elif kind == "lost":
                self._status = EngineStatus("waiting", msg[1] + "; reconnecting", restarts=self.restarts)
            elif kind == "ack":
                ev = self._acks.pop(msg[1], None)
                if ev is not None:
                    ev.set()
            elif kind == "midi":
                self._on_midi(msg[1], msg[2])
            elif kind == "chain_ack":
                waiter = self._chain_waits.pop(msg[1], None)
                if waiter is not None:
                    waiter[1] = msg[2]
                    if waiter[2] is not None and msg[2] is not None:
                        self.chain_errors[waiter[2]] = msg[2]
                    waiter[0].set()

    def _resend_state(self, conn) -> None:
        with self._lock:
            samples = list(self._samples)
        for index, (arr, seg) in enumerate(samples):
            self._send(("sample", index, seg.name if seg else None, arr if seg is None else arr.shape))
        self._send(("slots", list(self._slots)))
        if self._midi_map is not None:
            self._send(("midi_map", self._midi_map.to_json()))
        for name in CHAIN_NAMES:
            with self._lock:
                spec, gen = self._chain_specs[name], self._chain_gen[name]
            if spec is not None:
                self._chain_request(("chain", name, gen, spec), name, wait=None)

    def _on_midi(self, message, action) -> None:
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

    def _send(self, msg) -> None:
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
            if index >= 4096:
                raise EngineError("too many samples loaded (4096)")
            self._samples.append((audio, seg))
            if key is not None:
                self._sample_index[key] = index
            ev = self._acks[index] = threading.Event()
        self._send(("sample", index, seg.name if seg else None, audio.shape if seg else audio))
        if self._conn is not None:
            ev.wait(timeout)
        return index

    def _command(self, op: int, a: float = 0, b: float = 0, c: float = 0, d: float = 0) -> None:
        with self._lock:
            head = self._sh["cmd_head"]
            written = int(head[0])
            if written - int(head[1]) >= CMD_SLOTS and self._status.state == "running":
                raise EngineError("preview command queue full")
            self._sh["cmd"][written % CMD_SLOTS] = (op, a, b, c, d)
            head[0] = written + 1  # publish after the slot is complete

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
        self._sh["params"][0] = max(0.0, float(volume))

    def playheads(self) -> dict[int, int]:
        """voice id -> frames played so far, for the voices sounding now."""
        ids = self._sh["voice_ids"].copy()
        pos = self._sh["positions"].copy()
        return {int(v): int(p) for v, p in zip(ids, pos) if v > 0}

    # ---- monitoring and plugin chains -----------------------------------------------------

    def set_monitoring(self, on: bool) -> None:
        """Live monitoring: input -> input chain -> output, mixed with the previews. Any thread.
        The capture ring keeps the raw input either way."""
        self._sh["params"][1] = 1.0 if on else 0.0

    @property
    def monitoring(self) -> bool:
        return bool(self._sh["params"][1] != 0.0)

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
        self._chain_edit(chain, index, ("param", chain, None, index, str(name), value), timeout,
                         lambda e: e.setdefault("params", {}).__setitem__(str(name), value))

    def set_chain_bypass(self, chain: str, member_id: str | int, bypassed: bool, timeout: float = 2.0) -> None:
        """Bypass or re-enable one member of a running chain. App thread."""
        spec, index = self._chain_member(chain, member_id)
        self._chain_edit(chain, index, ("bypass", chain, None, index, bool(bypassed)), timeout,
                         lambda e: e.__setitem__("bypass", bool(bypassed)))

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

    def _chain_edit(self, chain: str, index: int, request: tuple, timeout: float, fold) -> None:
        with self._lock:
            gen = self._chain_gen[chain]
            fold(self._chain_specs[chain]["members"][index])
        request = request[:2] + (gen,) + request[3:]
        error = self._chain_request(request, None, wait=timeout)
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
        error = self._chain_request(("chain", chain, gen, spec), chain, wait=timeout)
        if error is not None:
            raise EngineError(f"{chain} chain not loaded: {error}")
        return ids

    def _chain_request(self, request: tuple, chain: str | None, wait: float | None) -> str | None:
        """Send one chain request to the audio process; with `wait`, block for its outcome
        (None when there is no audio process right now: it gets the chain when it starts)."""
        token = next(self._tokens)
        waiter = [threading.Event(), None, chain]
        self._chain_waits[token] = waiter
        if self._conn is None:
            self._chain_waits.pop(token, None)
            return None
        self._send(("chains", request + (token,)))
        if wait is None:
            return None
        if not waiter[0].wait(wait):
            self._chain_waits.pop(token, None)
            if self._conn is None:
                return None
            return f"no answer from the audio process within {wait:g} s"
        return waiter[1]

    # ---- MIDI -----------------------------------------------------------------------------

    def set_slot(self, slot: int, sample_index: int | None) -> None:
        """Which sample a pad (audition slot 1..16) plays. The app sets this per page."""
        if not 1 <= slot <= 16:
            raise EngineError("slot must be 1..16")
        self._slots[slot] = -1 if sample_index is None else int(sample_index)
        self._send(("slots", list(self._slots)))

    def set_midi_map(self, midi_map) -> None:
        self._midi_map = midi_map
        self._send(("midi_map", midi_map.to_json()))

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
        self._send(("learn", action))
        ok = self._learned.wait(timeout)
        if ok:
            self._send(("midi_map", self._midi_map.to_json()))
        return ok
