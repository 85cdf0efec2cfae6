"""The audio side of the engine: the callback's state (`AudioCore`) and the process around it
(`AudioProcess`: stream, MIDI input, chain control thread and a control loop that handles the
app's messages, one handler per message type).

In process mode this runs in an audio process of its own (`audio_main` is its entry point); in
thread mode the same code runs on a thread of the app. See `engine.stream` for why.

Threads in the audio process: the PortAudio callback (`AudioCore.callback`), rtmidi's MIDI
thread (`AudioProcess._on_midi_input`, `AudioCore.audition`), the chain control thread
(`monitor.ChainHost`) and the control loop (everything else here).
"""

from __future__ import annotations

import collections
import gc
import os
import select
import sys
import threading
import time
from multiprocessing import shared_memory
from typing import Callable

import numpy as np

from .messages import (AttachSample, BuildChain, ChainDone, ChainRequest, Failed, LearnMidi, Lost,
                       MidiReceived, PutSample, SampleReady, SetChainBypass, SetChainParameter,
                       SetMidiMap, SetSlots, Started, Stop, ToApp)
from .meters import CALLBACKS, Meters, xrun_bits
from .monitor import ChainHost, route_monitor
from .previews import OP_PLAY, OP_STOP_ALL, PreviewMixer
from .shared_block import (CMD_READ, CMD_SLOTS, CMD_WRITTEN, DURATION_SLOTS, MAX_CALLBACK_FRAMES,
                           PARAM_CHAIN_ERRORS, PARAM_MONITORING, PARAM_VOLUME, SharedBlock)

__all__ = ["AudioCore", "AudioProcess", "audio_main", "BASE_VOICE_ID"]

BASE_VOICE_ID = 1 << 40  # voice ids made inside the audio process (MIDI) start here
SLOTS = 16               # audition slots a MIDI pad can play
# A clean shut-down (stream, chains, plugins) takes well under a second; past this the
# process ends anyway (see AudioProcess.run).
SHUT_DOWN_LIMIT_S = 5.0


class AudioCore:
    """State used by the audio callback (inside the audio process or thread)."""

    def __init__(self, cfg, sh: SharedBlock):
        self.cfg = cfg
        self.sh = sh
        self.ring = sh.capture_ring()
        self.meters = Meters(cfg.input_channels, MAX_CALLBACK_FRAMES, cfg.sample_rate,
                             levels=sh["levels"], counters=sh["counters"])
        self.mixer = PreviewMixer(cfg.output_channels, MAX_CALLBACK_FRAMES, cfg.voices, cfg.sample_rate,
                                  positions=sh["positions"], voice_ids=sh["voice_ids"],
                                  first_voice_id=BASE_VOICE_ID)
        self.cmd = sh["cmd"]
        self.cmd_head = sh["cmd_head"]
        self.params = sh["params"]
        self.durations = sh["durations"]
        self.dur_head = sh["dur_head"]
        self.slots: list[int] = [-1] * (SLOTS + 1)  # audition slot 1..16 -> sample index
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
        """Audio thread: allocates no buffers and takes no lock (DESIGN.md's real-time rules)."""
        t0 = time.perf_counter_ns()
        if frames > MAX_CALLBACK_FRAMES:  # a host period larger than any buffer here
            outdata.fill(0.0)
            return
        self.ring.write(indata)  # always the raw input
        self.meters.update(indata, xrun_bits(status))
        head = self.cmd_head
        written = int(head[CMD_WRITTEN])
        read = int(head[CMD_READ])
        if read < written:
            mixer = self.mixer
            while read < written:
                c = self.cmd[read % CMD_SLOTS]
                mixer.apply((int(c[0]), int(c[1]), int(c[2]), float(c[3]), int(c[4])))
                read += 1
            head[CMD_READ] = read
        params = self.params
        self.mixer.volume = float(params[PARAM_VOLUME])
        outdata.fill(0.0)
        if params[PARAM_MONITORING] != 0.0:
            chain = self.input_chain
            try:
                route_monitor(indata if chain is None else chain.process(indata), outdata)
            except Exception:  # a failing plugin is dropped, never the stream
                self.input_chain = None
                params[PARAM_CHAIN_ERRORS] += 1
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
                params[PARAM_CHAIN_ERRORS] += 1
                outdata += bus
        d = int(self.dur_head[0])
        self.durations[d % DURATION_SLOTS] = time.perf_counter_ns() - t0
        self.dur_head[0] = d + 1

    def audition(self, slot: int, velocity: int) -> None:
        """MIDI thread: straight into the mixer's command deque; the next callback starts the
        voice at its first frame."""
        index = self.slots[slot] if 1 <= slot <= SLOTS else -1
        if index >= 0:
            self.mixer.post((OP_PLAY, self.mixer.new_voice_id(), index, 1.0, 0))


def tune_audio_process(sh: SharedBlock) -> None:
    """Audio process only, before the stream starts: raised priority (inherited by the threads
    started later; JACK's own threads run realtime anyway), a short GIL switch interval so a
    thread holding the GIL yields quickly to the callback, and every page of the shared block
    faulted in now rather than by the callback. Failures (no permission) are ignored."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -11)
    except (OSError, AttributeError):
        pass
    sys.setswitchinterval(0.0005)
    sh.touch_pages()


def freeze_garbage_collector() -> None:
    """Audio process only, after setup: no cyclic collection pauses can land in the callback.
    Plain reference counting still frees everything that is not in a cycle; the few cycles made
    by later chain rebuilds stay allocated (a small, bounded leak per rebuild)."""
    gc.collect()
    gc.freeze()
    gc.disable()


def host_block_size(cfg, dev) -> int:
    """Block size asked of PortAudio: JACK's own period on JACK (no adapter latency)."""
    return 0 if "jack" in str(getattr(dev, "hostapi", "")).lower() else cfg.block_size


def _exit_after(seconds: float, code: int) -> None:
    """End this process ``seconds`` from now unless it has ended by then. Control thread."""
    guard = threading.Timer(seconds, os._exit, args=(code,))
    guard.daemon = True
    guard.start()


def audio_main(cfg, shm_name: str | None, conn, shared: SharedBlock | None = None,
               exit_on_loss: bool = True) -> None:
    """Entry point of the audio process (or thread, with `shared` given). Talks to the app
    through `conn`, one end of a `multiprocessing.Pipe`."""
    AudioProcess(cfg, conn, shared or SharedBlock(cfg, name=shm_name), isolated=shared is None,
                 exit_on_loss=exit_on_loss).run()


class AudioProcess:
    """The stream and everything that serves it; `run` returns when the app says Stop, the
    pipe closes or the device is lost. Control loop thread unless a method says otherwise."""

    def __init__(self, cfg, conn, sh: SharedBlock, isolated: bool, exit_on_loss: bool):
        self.cfg = cfg
        self.conn = conn
        self.sh = sh
        self.isolated = isolated
        self.exit_on_loss = exit_on_loss
        if isolated:
            tune_audio_process(sh)
        self.core = AudioCore(cfg, sh)
        self.running = True
        self.stream = None
        self.chains: ChainHost | None = None
        self.midi_map = None
        self.midi_in = None
        self.midi_status = ""
        self._send_lock = threading.Lock()
        self._attached: dict[int, shared_memory.SharedMemory] = {}
        self._midi_seen: collections.deque = collections.deque(maxlen=1024)  # sent by the loop
        self._wake_r = self._wake_w = -1

    def send(self, msg: ToApp) -> None:
        """Any thread of the audio process."""
        with self._send_lock:
            try:
                self.conn.send(msg)
            except (BrokenPipeError, OSError):
                pass

    # ---- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        import sounddevice as sd

        from .devices import NoAudioDevice, find_device, name_jack_client
        cfg = self.cfg
        try:
            if self.isolated:    # PortAudio is this process's alone: name its JACK client
                name_jack_client()
            dev = find_device(cfg.hostapi, cfg.device, cfg.input_channels, cfg.output_channels)
            self.stream = sd.Stream(device=dev.index, samplerate=cfg.sample_rate,
                                    blocksize=host_block_size(cfg, dev),
                                    channels=(cfg.input_channels, cfg.output_channels), dtype="float32",
                                    latency="low", callback=self.core.callback)
        except NoAudioDevice as exc:
            self.send(Failed(str(exc)))
            return
        except Exception as exc:
            self.send(Failed(f"cannot open audio device: {_one_line(exc)}"))
            return
        self.chains = ChainHost(cfg.sample_rate, {"input": cfg.input_channels, "preview": cfg.output_channels},
                                MAX_CALLBACK_FRAMES, self.core.publish_chain,
                                lambda token, error: self.send(ChainDone(token, error)),
                                vst3_paths=cfg.vst3_paths, vst3_cache_dir=cfg.vst3_cache_dir)
        self._open_midi()
        if self.isolated:
            freeze_garbage_collector()  # before the callback runs: a full collection holds the GIL
        try:
            self.stream.start()
        except Exception as exc:
            self.send(Failed(f"cannot start audio stream: {_one_line(exc)}"))
            self._shut_down(close_stream=False)
            return
        self.send(Started(f"{dev.hostapi}: {dev.name}", self.midi_status, self.stream.latency))
        lost = self._serve()
        if lost and self.exit_on_loss:
            # PortAudio's JACK backend asserts when closing a stream of a dead server.
            os._exit(4)
        if self.isolated:
            # ...and waits for ever when the server went away after the loop's last look
            # (the app killed with it): the process ends either way
            _exit_after(SHUT_DOWN_LIMIT_S, code=5)
        self._shut_down(close_stream=not lost)

    def _open_midi(self) -> None:
        from .midi import MidiMap, MidiUnavailable, open_midi_input
        self.midi_map = MidiMap()
        self.midi_map.audition = self.core.audition
        self.midi_map.handlers["stop_all"] = lambda: self.core.mixer.post((OP_STOP_ALL,))
        # The MIDI callback wakes the control loop (one byte down a pipe) so a message reaches the
        # app at once rather than at the loop's next 50 ms poll.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        if not self.cfg.midi_api:
            return
        try:
            self.midi_in = open_midi_input(self.cfg.midi_api, self.cfg.midi_port)
            self.midi_status = f"MIDI {self.midi_in.api}: {self.midi_in.port_name}"
            self.midi_in.set_callback(self._on_midi_input)
        except MidiUnavailable as exc:
            self.midi_status = str(exc)

    def _shut_down(self, close_stream: bool) -> None:
        """The one clean-up: MIDI, wake pipe, stream, chains, sample segments. A stream that never
        started or whose device was lost is left alone (closing one of a dead JACK server is
        what PortAudio cannot survive)."""
        if self.midi_in is not None:
            self.midi_in.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        if close_stream:
            self.stream.stop()
            self.stream.close()
        self.chains.close()
        self.core.mixer.samples = [None] * len(self.core.mixer.samples)
        for seg in self._attached.values():
            try:
                seg.close()
            except BufferError:
                pass
        self._attached.clear()

    def _serve(self) -> bool:
        """Handle the app's messages and forward MIDI until Stop or a closed pipe (False) or
        until the callbacks stop coming (True, after telling the app)."""
        counters = self.sh["counters"]
        last_count, last_change = -1, time.monotonic()
        stall_limit = max(0.5, 40 * self.cfg.block_size / self.cfg.sample_rate)
        while self.running:
            self._forward_midi()
            ready = select.select([self.conn, self._wake_r], [], [], 0.05)[0]
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
                self._forward_midi()
            if self.conn in ready:
                try:
                    msg = self.conn.recv()
                except EOFError:
                    return False
                self.HANDLERS[type(msg)](self, msg)
                if not self.running:
                    return False
            count = int(counters[CALLBACKS])
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            elif now - last_change > stall_limit:
                self.send(Lost("audio device stopped responding (audio server gone?)"))
                return True
        return False

    # ---- MIDI --------------------------------------------------------------------------------

    def _on_midi_input(self, message) -> None:
        """rtmidi's thread: act at once (pads play from here), leave the app's copy to the loop."""
        self._midi_seen.append((message, self.midi_map.handle(message)))
        try:
            os.write(self._wake_w, b"m")
        except OSError:     # pipe full: the loop is awake already
            pass

    def _forward_midi(self) -> None:
        seen = self._midi_seen
        while seen:
            message, action = seen.popleft()
            self.send(MidiReceived(tuple(message), action))

    # ---- one handler per message type ----------------------------------------------------------

    def _on_stop(self, msg: Stop) -> None:
        self.running = False

    def _on_attach_sample(self, msg: AttachSample) -> None:
        seg = shared_memory.SharedMemory(name=msg.shm_name)
        self._attached[msg.index] = seg
        self.core.mixer.samples[msg.index] = np.ndarray(msg.shape, np.float32, buffer=seg.buf)
        self.send(SampleReady(msg.index))

    def _on_put_sample(self, msg: PutSample) -> None:
        self.core.mixer.samples[msg.index] = msg.audio
        self.send(SampleReady(msg.index))

    def _on_set_slots(self, msg: SetSlots) -> None:
        self.core.slots = list(msg.slots)  # one reference swap; the MIDI thread reads it

    def _on_set_midi_map(self, msg: SetMidiMap) -> None:
        from .midi import MidiMap
        self.midi_map.set_bindings(MidiMap.from_json(msg.document).bindings)

    def _on_learn_midi(self, msg: LearnMidi) -> None:
        self.midi_map.learn(msg.action)

    def _on_chain_request(self, msg: ChainRequest) -> None:
        self.chains.submit(msg)

    HANDLERS = {Stop: _on_stop, AttachSample: _on_attach_sample, PutSample: _on_put_sample,
                SetSlots: _on_set_slots, SetMidiMap: _on_set_midi_map, LearnMidi: _on_learn_midi,
                BuildChain: _on_chain_request, SetChainParameter: _on_chain_request,
                SetChainBypass: _on_chain_request}


def _one_line(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__
