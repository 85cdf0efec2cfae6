"""The live host: the window's ``Host`` interface over ``app.session.Session``.

The session (audio engine in its own process, live matcher, MIDI capture and pads) is built
and started on a control thread, so a missing audio device never holds up the window: the
status bar says what is wrong and the host retries every few seconds, while search by
example keeps working through the library-only path inherited from ``NullHost``.

Two worker threads keep the GUI thread free:

* ``session-control``: open/close/rebuild the session, captures, searches, index reloads;
* ``session-preview``: decoding samples for audition (and the pads), then ``engine.play``.

Both effect chains are edited in the window on the app's own ``Chain`` objects (the input
chain also feeds the matcher) and sent whole to the audio process after an edit, where the
input chain runs the monitoring path and the preview chain the preview mix.

Matcher updates arrive on the matcher's thread and are re-emitted as the ``suggestions``
signal (Qt queues them to the window). Everything polled by the window (levels, input tail,
onsets, playheads, status) reads shared memory or plain attributes and returns at once.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Iterable

import numpy as np

from engine.midi import MidiMap

from .host import AudioSettings, HostStatus, LevelReading, NullHost, SILENCE_DB

RETRY_SECONDS = 3.0
START_TIMEOUT = 10.0


def _db(x: float) -> float:
    return 20 * math.log10(x) if x > 1e-6 else SILENCE_DB


class SessionHost(NullHost):
    """See the module docstring. Public methods: GUI thread."""

    def __init__(self, library_dir, audio: AudioSettings, *, midi_api: str = "auto",
                 parent=None):
        super().__init__(library_dir, sample_rate=audio.sample_rate, parent=parent)
        self.audio = audio
        self.midi_api = midi_api
        self.session = None
        self._state = HostStatus("starting", "opening the audio device")
        self._control: queue.Queue = queue.Queue()
        self._preview: queue.Queue = queue.Queue()
        self._voices: dict[int, tuple[int | None, float]] = {}   # token -> (engine voice, started)
        self._next_token = 1
        self._chains_pending = threading.Event()
        self._closing = threading.Event()
        self._threads = [threading.Thread(target=self._control_loop, name="session-control",
                                          daemon=True),
                         threading.Thread(target=self._preview_loop, name="session-preview",
                                          daemon=True)]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for t in self._threads:
            t.start()
        self._control.put(("open",))

    def close(self) -> None:
        self._closing.set()
        self._control.put(("quit",))
        self._preview.put(("quit",))
        for t in self._threads:
            if t.is_alive():
                t.join(15)
        super().close()

    def _stream_config(self):
        from engine.stream import StreamConfig
        a = self.audio
        return StreamConfig(hostapi=a.hostapi or None, device=a.device or None,
                            input_channels=a.input_channels, output_channels=2,
                            sample_rate=a.sample_rate, block_size=a.block_size,
                            midi_api=self.midi_api, midi_port=self._midi_port or None)

    def _open(self) -> bool:
        from app.session import Session
        config = self._stream_config()
        self._state = HostStatus("starting", "opening the audio device")
        try:
            # Cheap check first: without a device there is no point building the session
            # (encoder, index, audio process) only to tear it down again.
            from engine.devices import NoAudioDevice
            from .device_probe import check_device, probe_devices
            check_device(probe_devices(), config.hostapi, config.device, config.input_channels,
                         config.output_channels)
        except NoAudioDevice as exc:
            self._state = HostStatus("waiting", f"{exc} (retrying)")
            return False
        except Exception as exc:  # noqa: BLE001
            self._state = HostStatus("waiting", f"audio unavailable: {exc} (retrying)")
            return False
        try:
            self.input_chain.set_format(config.sample_rate, config.input_channels)
            self.preview_chain.set_format(config.sample_rate, config.output_channels)
            session = Session(self.library_dir, config, self.profile, mode=self.mode,
                              midi_map=self._midi_map)
            # The window's chain editors edit these chains: the session uses them, not its own.
            session.input_chain = self.input_chain
            session.matcher.input_chain = self.input_chain
            session.preview_chain = self.preview_chain
            session.engine.cache.render = None    # the engine runs the preview chain live
            session.matcher.subscribe(self.suggestions.emit)
            # Every message, also during MIDI learn; Qt queues the signal to the GUI thread.
            session.engine.on_midi_message(lambda message, _action: self.midi_received.emit(message))
            session.start(timeout=START_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - one line in the status bar, retried
            message = str(exc).strip() or type(exc).__name__
            self._state = HostStatus("waiting", f"{message} (retrying)")
            return False
        self.session = session
        try:
            self._push_chains()
        except Exception as exc:  # noqa: BLE001 - audio runs dry, the user is told
            self.error.emit(f"effect chains not applied: {exc}")
        self._state = HostStatus("running", "listening")
        self.info.emit(f"Listening on {session.engine.status().device}")
        return True

    def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                session.close()
            except Exception as exc:  # noqa: BLE001
                self.error.emit(f"audio engine did not close cleanly: {exc}")

    def _control_loop(self) -> None:
        retry_at: float | None = None
        while True:
            timeout = None if retry_at is None else max(0.0, retry_at - time.monotonic())
            try:
                job = self._control.get(timeout=timeout)
            except queue.Empty:
                job = ("open",)
            kind = job[0]
            if kind == "quit":
                self._close_session()
                return
            try:
                if kind == "open":
                    self._close_session()
                    retry_at = None if self._open() else time.monotonic() + RETRY_SECONDS
                elif kind == "capture":
                    if self.session is None:
                        self.error.emit("nothing to capture: the audio input is not running")
                    elif self.session.capture() is None:
                        self.info.emit("Nothing heard in the last seconds (below the gate)")
                elif kind == "search":
                    self.session.matcher.search_file(job[1], k=self.k)
                elif kind == "chains":
                    time.sleep(0.15)        # one rebuild for a burst of slider moves
                    self._chains_pending.clear()
                    self._push_chains()
                elif kind == "reload":
                    self._reload_matcher_index()
            except Exception as exc:  # noqa: BLE001 - user-facing line
                self.error.emit(str(exc))

    def _reload_matcher_index(self) -> None:
        session = self.session
        if session is None:
            return
        from app.library import Library
        with Library(self.library_dir, encoder=session.matcher.encoder) as library:
            session.matcher.set_index(library.index)

    # -- polled by the window -------------------------------------------------------------------

    def status(self) -> HostStatus:
        base = super().status()
        session = self.session
        if session is None:
            return HostStatus(self._state.state, self._state.message,
                              library_files=base.library_files, index_state=base.index_state)
        engine = session.engine
        es = engine.status()
        meters = engine.meters()
        known = [x for x in (es.input_latency, es.output_latency) if x is not None]
        return HostStatus(es.state, es.message, device=es.device, xruns=meters.xruns,
                          latency_ms=1000.0 * sum(known) if known else None,
                          input_latency_ms=1000.0 * es.input_latency if es.input_latency is not None else None,
                          output_latency_ms=1000.0 * es.output_latency if es.output_latency is not None else None,
                          midi=es.midi, library_files=base.library_files,
                          index_state=f"{len(session.matcher.index)} vectors",
                          pad_page=session.pad_page())

    def levels(self) -> LevelReading:
        session = self.session
        if session is None:
            return super().levels()
        m = session.engine.meters()
        return LevelReading(tuple(_db(p) for p in m.peak), tuple(_db(r) for r in m.rms))

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    def input_tail(self, frames: int) -> tuple[int, np.ndarray]:
        session = self.session
        ring = session.engine.ring if session is not None else None
        if ring is None:
            return super().input_tail(frames)
        try:
            start, block = ring.read_latest(frames)
        except Exception:  # noqa: BLE001 - overrun while copying: show silence this frame
            return 0, np.zeros(frames, np.float32)
        return start + frames, block.mean(axis=1)

    def recent_onsets(self) -> list[int]:
        session = self.session
        return session.matcher.recent_onsets() if session is not None else []

    def playhead(self, voice_id: int) -> float | None:
        entry = self._voices.get(voice_id)
        session = self.session
        if entry is None or session is None:
            return None
        voice, started = entry
        if voice is None:            # still loading
            return 0.0
        frames = session.engine.playheads().get(voice)
        if frames is None:
            # Not in the mixer yet (the command waits for the next block) or already finished.
            if time.monotonic() - started < 0.15:
                return 0.0
            self._voices.pop(voice_id, None)
            return None
        return frames / self.audio.sample_rate

    # -- requests ------------------------------------------------------------------------------------

    def capture(self) -> None:
        self._record("capture")
        self._control.put(("capture",))

    def request_search(self, path: str) -> None:
        if self.session is None:
            super().request_search(path)
            return
        self._record("request_search", path)
        self._control.put(("search", path))

    def set_mode(self, mode: str) -> None:
        super().set_mode(mode)
        if self.session is not None:
            try:
                self.session.matcher.set_mode(mode)
            except Exception as exc:  # noqa: BLE001
                self.error.emit(str(exc))

    def set_profile(self, profile: str) -> None:
        super().set_profile(profile)
        if self.session is not None:
            from app.match_profiles import get_profile
            try:
                self.session.matcher.set_profile(get_profile(profile).with_mode(self.mode))
            except Exception as exc:  # noqa: BLE001
                self.error.emit(str(exc))

    def audition(self, suggestion) -> int | None:
        self._record("audition", suggestion.path)
        if self.session is None:
            self.error.emit("cannot play: the audio output is not running")
            return None
        token = self._next_token
        self._next_token += 1
        self._voices = {token: (None, time.monotonic())}   # the playhead follows the newest
        self._preview.put(("audition", token, suggestion.path))
        return token

    def stop_all(self) -> None:
        self._record("stop_all")
        self._voices.clear()
        if self.session is not None:
            self.session.stop_all()

    def set_volume(self, volume: float) -> None:
        super().set_volume(volume)
        if self.session is not None:
            self.session.engine.set_volume(volume)

    def set_slots(self, suggestions: Iterable) -> None:
        super().set_slots(suggestions)
        self._preview.put(("slots", tuple(self._slots)))

    def reload_library(self) -> None:
        super().reload_library()
        self._control.put(("reload",))

    def chains_changed(self) -> None:
        if not self._chains_pending.is_set():
            self._chains_pending.set()
            self._control.put(("chains",))

    def set_monitoring(self, on: bool) -> None:
        super().set_monitoring(on)
        if self.session is not None:
            self.session.engine.set_monitoring(on)

    def _preview_loop(self) -> None:
        while True:
            job = self._preview.get()
            if job[0] == "quit":
                return
            session = self.session
            if session is None:
                continue
            try:
                if job[0] == "audition":
                    _, token, path = job
                    index = session.engine.load_sample(path)
                    voice = session.engine.play(index)
                    if token in self._voices:
                        self._voices[token] = (voice, time.monotonic())
                elif job[0] == "slots":
                    session.fill_slots(job[1])
            except Exception as exc:  # noqa: BLE001
                self._voices.clear()
                self.error.emit(str(exc))

    def _push_chains(self) -> None:
        """Send both chains to the audio process (monitoring and the live preview mix)."""
        session = self.session
        if session is None:
            return
        from engine.chain_presets import chain_to_dict
        engine = session.engine
        for chain, send in ((self.input_chain, engine.set_input_chain),
                            (self.preview_chain, engine.set_preview_chain)):
            members = chain.members()
            send(chain_to_dict(chain) if members else None, [m.id for m in members] or None)
        engine.set_monitoring(self.monitoring)

    # -- MIDI and settings ------------------------------------------------------------------------------

    def set_midi_map(self, midi_map: MidiMap) -> None:
        super().set_midi_map(midi_map)
        if self.session is not None and not self.midi_learning:
            self.session.midi_map = midi_map
            self.session.engine.set_midi_map(midi_map)

    def set_midi_learning(self, on: bool) -> None:
        super().set_midi_learning(on)
        if self.session is not None:
            # While learning the engine gets an empty map, so pads do not fire.
            self.session.engine.set_midi_map(MidiMap(name="learning") if on else self._midi_map)

    def set_midi_port(self, port: str) -> None:
        super().set_midi_port(port)
        self._control.put(("open",))

    def apply_audio_settings(self, settings: AudioSettings) -> None:
        super().apply_audio_settings(settings)
        self.audio = settings
        self._control.put(("open",))
