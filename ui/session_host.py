"""The live host: the window's ``Host`` interface over ``app.session.Session``.

The host adapts the session to Qt: session callbacks become signals, requests become
calls on the session's public methods, run off the GUI thread. It holds what must outlive
one session (the chains the window edits, the MIDI map, the mode, profile, volume and
monitoring) and hands it to each new session.

The session (audio engine in its own process, live matcher, MIDI capture and pads) is built
and started on a control thread, so a missing audio device never holds up the window: the
status bar says what is wrong and the host retries every few seconds, while search by
example keeps working through the library alone (``app.library_tasks.LibraryThread``).
With ``live=False`` it never opens the audio device (library search only).

Two worker threads keep the GUI thread free:

* ``session-control``: open/close/rebuild the session, captures, searches, index reloads,
  sending the chains;
* ``session-preview``: decoding samples for audition, then playing them.

Matcher updates arrive on the matcher's thread and are re-emitted as the ``suggestions``
signal (Qt queues them to the window). Which suggestions the pads play is the session's
policy (they follow every update). Everything polled by the window (levels, input tail,
onsets, playheads, status) reads shared memory or plain attributes and returns at once.
Nothing here grows with the number of updates.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import pyqtSignal

from app.audio_types import (Chain, MidiMap, NoAudioDevice, PluginScanner, StreamConfig,
                             vst3_paths_from_env)
from app.library_tasks import library_thread, search_failure
from app.match_profiles import MODES, profile_names

from .host import SILENCE_DB, AudioSettings, Host, HostStatus, LevelReading

RETRY_SECONDS = 3.0
START_TIMEOUT = 10.0
CHAIN_SETTLE_SECONDS = 0.15     # one rebuild for a burst of slider moves
INDEX_WAIT_SECONDS = 120.0      # for the library thread's index (a large one loads in seconds)


class SessionHost(Host):
    """See the module docstring. Public methods: GUI thread."""

    _library_opened = pyqtSignal()     # emitted on the library thread, handled on the GUI's

    def __init__(self, library_dir, audio: AudioSettings, *, midi_api: str = "auto",
                 live: bool = True, k: int = 16, plugin_scanner=None, parent=None):
        super().__init__(parent)
        from app.paths import library_dir as resolve
        self.library_dir = resolve(library_dir)
        self.audio = audio
        self.midi_api = midi_api
        self.live = live
        self.k = k
        self.mode = MODES[0]
        self.profile = profile_names()[0]
        self.volume = 1.0
        self.monitoring = False
        self.midi_learning = False
        from app.session import default_midi_map
        self._midi_map = default_midi_map()       # the pads and the capture note
        self._midi_port = ""
        # One scanner for both chains: VST3 plugins probed out of process, results cached.
        scanner = plugin_scanner if plugin_scanner is not None else PluginScanner(
            extra_paths=vst3_paths_from_env())
        self.input_chain = Chain("input", sample_rate=audio.sample_rate, scanner=scanner)
        self.preview_chain = Chain("preview", sample_rate=audio.sample_rate, scanner=scanner)
        self.session = None
        # Work waiting for the library's first open (``when_library_open``): the library
        # thread emits ``_library_opened``, Qt queues it to the GUI thread, which runs it.
        self._waiting_for_library: list[Callable[[], None]] | None = []
        self._library_opened.connect(self._run_waiting)
        self._library = library_thread(self.library_dir, self.error.emit)
        self._library.when_open(self._library_opened.emit)
        self._state = (HostStatus("starting", "opening the audio device") if live
                       else HostStatus("offline", "no audio device (library only)"))
        self._control: queue.Queue = queue.Queue()
        self._preview: queue.Queue = queue.Queue()
        self._voices: dict[int, tuple[int | None, float]] = {}   # token -> (engine voice, started)
        self._next_token = 1
        self._stretch: dict[int, float] = {}       # token -> stretch of a matched audition
        self._chains_pending = threading.Event()
        self._threads = [threading.Thread(target=self._control_loop, name="session-control",
                                          daemon=True),
                         threading.Thread(target=self._preview_loop, name="session-preview",
                                          daemon=True)]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for t in self._threads:
            t.start()
        if self.live:
            self._control.put(("open",))

    def when_library_open(self, then: Callable[[], None]) -> None:
        if self._waiting_for_library is None:
            then()
        else:
            self._waiting_for_library.append(then)

    def _run_waiting(self) -> None:
        waiting, self._waiting_for_library = self._waiting_for_library or [], None
        for then in waiting:
            then()

    def close(self) -> None:
        self._waiting_for_library = []       # what still waits never starts now
        self.stop_watching()
        self._control.put(("quit",))
        self._preview.put(("quit",))
        for t in self._threads:
            if t.is_alive():
                t.join(15)
        self._library.close()

    def _stream_config(self) -> StreamConfig:
        a = self.audio
        return StreamConfig(hostapi=a.hostapi or None, device=a.device or None,
                            input_channels=a.input_channels, output_channels=2,
                            sample_rate=a.sample_rate, block_size=a.block_size,
                            midi_api=self.midi_api, midi_port=self._midi_port or None,
                            vst3_paths=tuple(str(p) for p in self.input_chain.scanner.extra_paths))

    def _open(self) -> bool:
        from app.session import Session
        config = self._stream_config()
        self._state = HostStatus("starting", "opening the audio device")
        try:
            # Cheap check first: without a device there is no point building the session
            # (encoder, index, audio process) only to tear it down again.
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
            # The library thread's index: one copy in memory (a million-file library's
            # index is gigabytes); None (it could not open) lets the session load its own.
            index = self._library.index(timeout=INDEX_WAIT_SECONDS)
            session = Session(self.library_dir, config, self.profile, mode=self.mode,
                              midi_map=self._midi_map, input_chain=self.input_chain,
                              preview_chain=self.preview_chain, pads_follow="updates",
                              index=index)
            session.subscribe(self.suggestions.emit)
            session.set_filter(self.search_filter)
            # Every message, also during MIDI learn; Qt queues the signal to the GUI thread.
            session.on_midi_message(self.midi_received.emit)
            session.start(timeout=START_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - one line in the status bar, retried
            message = str(exc).strip() or type(exc).__name__
            self._state = HostStatus("waiting", f"{message} (retrying)")
            return False
        try:
            session.set_volume(self.volume)
            if self.midi_learning:
                session.set_midi_learning(True)
            session.set_monitoring(self.monitoring)
            session.send_chains()
        except Exception as exc:  # noqa: BLE001 - audio runs dry, the user is told
            self.error.emit(f"effect chains not applied: {exc}")
        self.session = session
        self._state = HostStatus("running", "listening")
        self.info.emit(f"Listening on {session.status().device}")
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
                    self._search(job[1])
                elif kind == "chains":
                    time.sleep(CHAIN_SETTLE_SECONDS)
                    self._chains_pending.clear()
                    if self.session is not None:
                        self.session.send_chains()
                elif kind == "reload" and self.session is not None:
                    self.session.reload_index(self._library.index(timeout=INDEX_WAIT_SECONDS))
            except Exception as exc:  # noqa: BLE001 - user-facing line
                self.error.emit(str(exc))

    # -- polled by the window -------------------------------------------------------------------

    def status(self) -> HostStatus:
        library = self._library
        session = self.session
        if session is None:
            return HostStatus(self._state.state, self._state.message,
                              library_files=library.files, index_state=library.index_state,
                              index_vectors=library.index_vectors)
        st = session.status()
        ins, outs = st.input_latency_s, st.output_latency_s
        known = [x for x in (ins, outs) if x is not None]
        return HostStatus(st.state, st.message, device=st.device, xruns=st.xruns,
                          latency_ms=1000.0 * sum(known) if known else None,
                          input_latency_ms=1000.0 * ins if ins is not None else None,
                          output_latency_ms=1000.0 * outs if outs is not None else None,
                          midi=st.midi, library_files=library.files,
                          index_state=f"{st.index_vectors} vectors",
                          index_vectors=st.index_vectors, pad_page=st.pad_page,
                          block_size=running_block_size(session))

    def levels(self) -> LevelReading:
        session = self.session
        if session is None:
            return LevelReading((SILENCE_DB, SILENCE_DB), (SILENCE_DB, SILENCE_DB))
        levels = session.levels()
        return LevelReading(levels.peak_db, levels.rms_db)

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    def input_tail(self, frames: int) -> tuple[int, np.ndarray]:
        session = self.session
        tail = session.input_tail(frames) if session is not None else None
        return tail if tail is not None else (0, np.zeros(frames, np.float32))

    def recent_onsets(self) -> list[int]:
        session = self.session
        return session.recent_onsets() if session is not None else []

    def engine_voices(self) -> list[int]:
        """The engine's voice ids of the previews this host started that the engine has
        taken (still loading ones are left out). GUI thread."""
        return [voice for voice, _ in self._voices.values() if voice is not None]

    def playhead(self, voice_id: int) -> float | None:
        entry = self._voices.get(voice_id)
        session = self.session
        if entry is None or session is None:
            return None
        voice, started = entry
        if voice is None:            # still loading
            return 0.0
        frames = session.playhead(voice)
        if frames is None:
            # Not in the mixer yet (the command waits for the next block) or already finished.
            if time.monotonic() - started < 0.15:
                return 0.0
            self._voices.pop(voice_id, None)
            return None
        return frames * self._stretch.get(voice_id, 1.0) / self.audio.sample_rate

    def slots(self) -> list:
        session = self.session
        return session.slots() if session is not None else []

    # -- requests ------------------------------------------------------------------------------------

    def reset_xruns(self) -> None:
        session = self.session
        if session is not None:
            session.reset_xruns()

    def capture(self) -> None:
        self._control.put(("capture",))

    def request_search(self, path: str) -> None:
        if self.session is None:
            self._library.search_file(path, self.k, self.suggestions.emit, self.search_filter,
                                      failed=lambda line: self.search_failed.emit(path, line))
            return
        self._control.put(("search", path))

    def _search(self, path: str) -> None:
        """Control thread: search by example through the session; a failure names the file."""
        try:
            self.session.search_file(path, k=self.k)
        except Exception as exc:  # noqa: BLE001 - one line for the user
            self.search_failed.emit(path, search_failure(path, exc))

    def edit_tag(self, path: str, tag: str, removed: bool) -> None:
        self._library.edit_tag(path, tag, removed, self.tags_changed.emit)

    def set_filter(self, search_filter) -> None:
        self.search_filter = search_filter
        if self.session is not None:
            try:
                self.session.set_filter(search_filter)
            except Exception as exc:  # noqa: BLE001
                self.error.emit(str(exc))

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if self.session is not None:
            try:
                self.session.set_mode(mode)
            except Exception as exc:  # noqa: BLE001
                self.error.emit(str(exc))

    def set_list_length(self, length: int) -> None:
        self.k = length

    def set_profile(self, profile: str) -> None:
        self.profile = profile
        if self.session is not None:
            try:
                self.session.set_profile(profile)
            except Exception as exc:  # noqa: BLE001
                self.error.emit(str(exc))

    def audition(self, suggestion, *, matched: bool = True) -> int | None:
        if self.session is None:
            self.error.emit("cannot play: the audio output is not running")
            return None
        token = self._next_token
        self._next_token += 1
        self._voices = {token: (None, time.monotonic())}   # the playhead follows the newest
        self._preview.put(("audition", token, suggestion.path, self.match_target if matched else None))
        return token

    def stop_all(self) -> None:
        self._voices.clear()
        if self.session is not None:
            self.session.stop_all()

    def set_volume(self, volume: float) -> None:
        self.volume = volume
        if self.session is not None:
            self.session.set_volume(volume)

    def collect(self, name: str, file_ids: list[int]) -> None:
        self._library.collect(name, file_ids, lambda collection, added: self.info.emit(
            f"{added} samples added to the collection {collection!r}"))

    def reload_library(self) -> None:
        self._library.reload(then=self.library_changed.emit)
        self._control.put(("reload",))
        self.folders_changed()

    def browse_tasks(self):
        from app.browse_tasks import BrowseTasks
        return BrowseTasks(self._library)

    def chains_changed(self) -> None:
        if not self._chains_pending.is_set():
            self._chains_pending.set()
            self._control.put(("chains",))

    def set_monitoring(self, on: bool) -> None:
        self.monitoring = on
        if self.session is not None:
            self.session.set_monitoring(on)

    def _preview_loop(self) -> None:
        while True:
            job = self._preview.get()
            if job[0] == "quit":
                return
            session = self.session
            if session is None:
                continue
            try:
                _, token, path, target = job
                voice = session.audition(path) if target is None else self._matched(session, path,
                                                                                     target, token)
                if token in self._voices:
                    self._voices[token] = (voice, time.monotonic())
            except Exception as exc:  # noqa: BLE001
                self._voices.clear()
                self.error.emit(str(exc))

    def _matched(self, session, path: str, target, token: int) -> int:
        """Preview thread: play ``path`` matched; say in the status bar what was kept."""
        started = session.audition_matched(path, target)
        self._stretch = {token: started.plan.stretch}   # the playhead reads in the file's time
        if started.plan.reason:
            self.info.emit(f"{Path(path).name}: {started.plan.reason}")
        return started.voice

    # -- MIDI and settings ------------------------------------------------------------------------------

    def midi_map(self) -> MidiMap:
        return self._midi_map

    def set_midi_map(self, midi_map: MidiMap) -> None:
        self._midi_map = midi_map
        self.midi_map_changed.emit()
        if self.session is not None:
            self.session.set_midi_map(midi_map)

    def set_midi_learning(self, on: bool) -> None:
        self.midi_learning = on
        if self.session is not None:
            self.session.set_midi_learning(on)

    def set_midi_port(self, port: str) -> None:
        self._midi_port = port
        if self.live:
            self._control.put(("open",))

    def on_midi_action(self, action: str, handler: Callable[[], None]) -> None:
        """MIDI actions are the session's (capture, pads, pages); nothing for the window."""

    def apply_audio_settings(self, settings: AudioSettings) -> None:
        self.audio = settings
        if self.live:
            self._control.put(("open",))


def running_block_size(session) -> int | None:
    """Frames per callback the server really runs (the engine's last callback); None before
    the first callbacks. Any thread."""
    return session.meters().block_frames or None
