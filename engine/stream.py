"""The audio engine: a duplex PortAudio stream whose callback fills the capture ring, updates the
meters and mixes preview voices.

Design (chosen by bench/engine.py): the stream runs in an audio process of its own
(`isolation="process"`). A Python callback must take the GIL; in the app process any busy
Python thread (UI, matcher) holds it for milliseconds and the 64-frame callback misses its
deadline. The audio process runs nothing else but its callback, the MIDI input thread and an
idle control loop. The capture ring, meters, playheads and a command ring live in one shared
memory block, so the app reads them without a round trip.

The same process also gives reconnection: PortAudio's JACK backend aborts the process when a
stream is closed after the server went away, so the supervisor thread in the app simply starts
a fresh audio process (retrying every `retry_interval` s) and the app lives on.
`isolation="thread"` runs the same callback in the app process (for comparison; no reconnect).

Threads: `AudioEngine` methods may be called from any app thread; `status()`, `meters()`,
`playheads()` and `ring` reads are polling-safe. The callback itself is `_Core.callback`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass, asdict
from multiprocessing import shared_memory
from typing import Callable

import numpy as np

from .meters import Meters, MeterReading, N_COUNTERS
from .previews import OP_CHOKE, OP_PLAY, OP_STOP, OP_STOP_ALL, PreviewMixer, SampleCache
from .ring import CaptureRing

__all__ = ["StreamConfig", "AudioEngine", "EngineStatus", "EngineError"]

CMD_SLOTS = 256
DURATION_SLOTS = 1 << 16
MAX_BLOCK = 1024
BASE_VOICE_ID = 1 << 40  # voice ids made inside the audio process (MIDI) start here


class EngineError(RuntimeError):
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


def _layout(cfg: StreamConfig) -> list[tuple[str, tuple, type]]:
    ring_frames = int(cfg.ring_seconds * cfg.sample_rate) + 2 * MAX_BLOCK
    return [
        ("ring", (ring_frames, cfg.input_channels), np.float32),
        ("clock", (1,), np.int64),
        ("levels", (2, cfg.input_channels), np.float32),
        ("counters", (N_COUNTERS,), np.int64),
        ("positions", (cfg.voices,), np.int64),
        ("voice_ids", (cfg.voices,), np.int64),
        ("cmd", (CMD_SLOTS, 5), np.float64),
        ("cmd_head", (2,), np.int64),      # [written, read]
        ("params", (4,), np.float64),      # [preview volume]
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
    ring.max_write_frames = MAX_BLOCK
    ring._data = sh["ring"]
    ring._clock = sh["clock"]
    return ring


class _Core:
    """State used by the audio callback (inside the audio process or thread)."""

    def __init__(self, cfg: StreamConfig, sh: _Shared):
        self.cfg = cfg
        self.sh = sh
        self.ring = _ring_view(cfg, sh)
        self.meters = Meters(cfg.input_channels, MAX_BLOCK, cfg.sample_rate,
                             levels=sh["levels"], counters=sh["counters"])
        self.mixer = PreviewMixer(cfg.output_channels, MAX_BLOCK, cfg.voices, cfg.sample_rate,
                                  positions=sh["positions"], voice_ids=sh["voice_ids"])
        self.mixer._ids = iter(range(BASE_VOICE_ID, 1 << 62))
        self.cmd = sh["cmd"]
        self.cmd_head = sh["cmd_head"]
        self.params = sh["params"]
        self.durations = sh["durations"]
        self.dur_head = sh["dur_head"]
        self.slots = [-1] * 17  # audition slot 1..16 -> sample index
        self.midi_gain = 1.0
        self.monitor: Callable[[np.ndarray], np.ndarray] | None = None

    def callback(self, indata, outdata, frames, time_info, status):
        t0 = time.perf_counter_ns()
        self.ring.write(indata)
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
        self.mixer.volume = float(self.params[0])
        outdata.fill(0.0)
        monitor = self.monitor
        if monitor is not None:
            outdata += monitor(indata)
        self.mixer.mix(outdata)
        d = int(self.dur_head[0])
        self.durations[d % DURATION_SLOTS] = time.perf_counter_ns() - t0
        self.dur_head[0] = d + 1

    def audition(self, slot: int, velocity: int) -> None:
        """MIDI thread: straight to the callback's command deque."""
        index = self.slots[slot] if 1 <= slot <= 16 else -1
        if index >= 0:
            self.mixer.post((OP_PLAY, self.mixer.new_voice_id(), index, self.midi_gain, 0))


def _audio_main(cfg_dict: dict, shm_name: str | None, conn, shared: _Shared | None = None,
                exit_on_loss: bool = True) -> None:
    """Body of the audio process (or thread). Talks to the app through `conn`."""
    import sounddevice as sd

    from .devices import NoAudioDevice, find_device
    from .midi import MidiMap, MidiUnavailable, open_midi_input

    cfg = StreamConfig(**cfg_dict)
    sh = shared or _Shared(cfg, name=shm_name)
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
        stream = sd.Stream(device=dev.index, samplerate=cfg.sample_rate, blocksize=cfg.block_size,
                           channels=(cfg.input_channels, cfg.output_channels), dtype="float32",
                           latency="low", callback=core.callback)
        stream.start()
    except NoAudioDevice as exc:
        send(("error", str(exc)))
        return
    except Exception as exc:
        send(("error", f"cannot open audio device: {str(exc).strip() or type(exc).__name__}"))
        return

    midi_map = MidiMap()
    midi_map.audition = core.audition
    midi_map.handlers["stop_all"] = lambda: core.mixer.post((OP_STOP_ALL,))
    midi_in = None
    midi_msg = ""
    if cfg.midi_api:
        try:
            midi_in = open_midi_input(cfg.midi_api, cfg.midi_port)
            midi_msg = f"MIDI {midi_in.api}: {midi_in.port_name}"

            def on_midi(message):
                action = midi_map.handle(message)
                send(("midi", list(message), action))

            midi_in.set_callback(on_midi)
        except MidiUnavailable as exc:
            midi_msg = str(exc)
    send(("started", f"{dev.hostapi}: {dev.name}", midi_msg, stream.latency))

    attached = {}
    last_count, last_change = -1, time.monotonic()
    stall_limit = max(0.5, 40 * cfg.block_size / cfg.sample_rate)
    try:
        while True:
            if conn.poll(0.05):
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
            count = int(sh["counters"][4])
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            elif now - last_change > stall_limit:
                send(("lost", "audio device stopped responding (audio server gone?)"))
                if exit_on_loss:
                    # PortAudio's JACK backend asserts when closing a stream of a dead server.
                    os._exit(4)
                return
    finally:
        pass
    if midi_in is not None:
        midi_in.close()
    stream.stop()
    stream.close()
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
                self._status = EngineStatus("running", f"running on {msg[1]}", device=msg[1],
                                            restarts=self.restarts, midi=msg[2])
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

    def _resend_state(self, conn) -> None:
        with self._lock:
            samples = list(self._samples)
        for index, (arr, seg) in enumerate(samples):
            self._send(("sample", index, seg.name if seg else None, arr if seg is None else arr.shape))
        self._send(("slots", list(self._slots)))
        if self._midi_map is not None:
            self._send(("midi_map", self._midi_map.to_json()))

    def _on_midi(self, message, action) -> None:
        self.midi_events += 1
        self.last_midi = message
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
