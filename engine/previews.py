"""Sample previews: a decoded/resampled sample cache and the voice mixer run by the audio callback.

Threads:
- `SampleCache.load` runs on any non-audio thread (it decodes files and allocates).
- `PreviewMixer.mix` runs only on the audio thread.
- `PreviewMixer.post` may be called from any thread: it appends one tuple to a
  `collections.deque`; the audio thread takes commands with `popleft`. In CPython both are
  single C calls that complete under the GIL, so neither side can see a half-written command
  and no lock is needed (the audio thread holds the GIL anyway while it runs Python). The
  command tuple is built by the sender, so the audio thread allocates nothing for it.
"""

from __future__ import annotations

import collections
import itertools
import os
import threading

import numpy as np

from engine.errors import SampleScoutError

__all__ = ["SampleCache", "SampleLoadError", "PreviewMixer", "OP_PLAY", "OP_STOP", "OP_STOP_ALL",
           "OP_CHOKE"]

OP_PLAY, OP_STOP, OP_STOP_ALL, OP_CHOKE = 1, 2, 3, 4


class SampleLoadError(SampleScoutError):
    """A sample file could not be decoded; the message names the file and the reason."""


class SampleCache:
    """Decoded samples as float32 (frames, channels) at the device rate, cached by path.

    `render` is an optional hook (e.g. a preview plugin chain's `process`) applied once when a
    sample is loaded, so effects on previews cost nothing in the audio callback.
    """

    def __init__(self, sample_rate: int, channels: int, max_items: int = 256,
                 render=None):
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.max_items = max_items
        self.render = render
        self._items: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """Return the cached array for `path`, decoding and resampling on a miss."""
        key = os.fspath(path)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        audio = self.decode(key)
        with self._lock:
            self._items[key] = audio
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return audio

    def decode(self, path: str) -> np.ndarray:
        import soundfile
        import soxr
        try:
            data, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile raises several types for broken files
            raise SampleLoadError(f"cannot decode {path}: {exc}") from None
        if data.shape[0] == 0:
            raise SampleLoadError(f"{path} holds no audio frames")
        if rate != self.sample_rate:
            data = soxr.resample(data, rate, self.sample_rate, quality="HQ").astype(np.float32)
        data = fit_channels(data, self.channels)
        if self.render is not None:
            data = np.asarray(self.render(data), dtype=np.float32)
        return np.ascontiguousarray(data, dtype=np.float32)


def fit_channels(data: np.ndarray, channels: int) -> np.ndarray:
    """Mono to all channels, more channels down-mixed by averaging, stereo kept."""
    have = data.shape[1]
    if have == channels:
        return data
    if have == 1:
        return np.repeat(data, channels, axis=1)
    if channels == 1:
        return data.mean(axis=1, keepdims=True)
    out = np.zeros((data.shape[0], channels), np.float32)
    n = min(have, channels)
    out[:, :n] = data[:, :n]
    return out


class PreviewMixer:
    """Voices mixed into the output buffer by the audio callback.

    A command posted during block k sounds from the first frame of block k+1: at most one block
    of added latency. Starting ramps in over `fade_in` frames, stopping (stop, choke, steal)
    ramps out over `fade_out` frames, volume changes ramp across one block.

    `positions` and `voice_ids` may be arrays in shared memory (the playhead readers' view).
    """

    def __init__(self, channels: int, max_block: int, voices: int = 16, sample_rate: int = 48000,
                 fade_in_ms: float = 1.0, fade_out_ms: float = 5.0,
                 positions: np.ndarray | None = None, voice_ids: np.ndarray | None = None):
        self.channels = channels
        self.max_block = max_block
        self.voices = voices
        self.commands: collections.deque = collections.deque()
        self.samples: list = [None] * 4096  # sample index -> float32 array; set off the audio thread
        self.volume = 1.0  # target preview volume; a float assignment is atomic
        self._volume_now = 1.0
        self.fade_in = max(1, int(sample_rate * fade_in_ms / 1000))
        self.fade_out = max(1, int(sample_rate * fade_out_ms / 1000))
        self._ramp_in = (np.arange(1, self.fade_in + 1, dtype=np.float32) / self.fade_in)
        self._ramp_out = (np.arange(self.fade_out - 1, -1, -1, dtype=np.float32) / self.fade_out)
        self._unit = np.arange(max_block, dtype=np.float32) / max_block
        self._gain_line = np.zeros(max_block, np.float32)
        self._scratch = np.zeros((max_block, channels), np.float32)
        self._bus = np.zeros((max_block, channels), np.float32)
        # Per-voice state in plain lists of Python numbers, touched only by the audio thread.
        self._buf: list = [None] * voices
        self._gain = [0.0] * voices
        self._group = [0] * voices
        self._age = [0] * voices
        self._fading_out = [-1] * voices  # frames already faded out, -1 = not stopping
        self._serial = 0
        self.positions = positions if positions is not None else np.zeros(voices, np.int64)
        self.voice_ids = voice_ids if voice_ids is not None else np.zeros(voices, np.int64)
        self._ids = itertools.count(1)

    # ---- any thread -----------------------------------------------------------------------

    def new_voice_id(self) -> int:
        return next(self._ids)

    def post(self, command: tuple) -> None:
        """Queue a command tuple: (OP_PLAY, voice_id, sample_index, gain, choke_group),
        (OP_STOP, voice_id), (OP_STOP_ALL,), (OP_CHOKE, group)."""
        self.commands.append(command)

    def play(self, sample_index: int, gain: float = 1.0, choke_group: int = 0) -> int:
        vid = self.new_voice_id()
        self.commands.append((OP_PLAY, vid, sample_index, gain, choke_group))
        return vid

    def playheads(self) -> dict[int, int]:
        """voice id -> frames played, for voices sounding now."""
        ids = self.voice_ids.copy()
        pos = self.positions.copy()
        return {int(v): int(p) for v, p in zip(ids, pos) if v > 0}

    # ---- audio thread ---------------------------------------------------------------------

    def apply(self, command) -> None:
        op = command[0]
        if op == OP_PLAY:
            _, vid, index, gain, group = command
            buf = self.samples[index] if 0 <= index < len(self.samples) else None
            if buf is None:
                return
            if group:
                self._choke(group)
            slot = self._free_slot()
            self._buf[slot] = buf
            self._gain[slot] = float(gain)
            self._group[slot] = group
            self._serial += 1
            self._age[slot] = self._serial
            self._fading_out[slot] = -1
            self.positions[slot] = 0
            self.voice_ids[slot] = vid
        elif op == OP_STOP:
            for v in range(self.voices):
                if self.voice_ids[v] == command[1] and self._buf[v] is not None:
                    self._start_fade_out(v)
        elif op == OP_STOP_ALL:
            for v in range(self.voices):
                if self._buf[v] is not None:
                    self._start_fade_out(v)
        elif op == OP_CHOKE:
            self._choke(command[1])

    def _choke(self, group: int) -> None:
        for v in range(self.voices):
            if self._buf[v] is not None and self._group[v] == group:
                self._start_fade_out(v)

    def _start_fade_out(self, v: int) -> None:
        if self._fading_out[v] < 0:
            self._fading_out[v] = 0

    def _free_slot(self) -> int:
        oldest, oldest_age = 0, None
        for v in range(self.voices):
            if self._buf[v] is None:
                return v
            if oldest_age is None or self._age[v] < oldest_age:
                oldest, oldest_age = v, self._age[v]
        # All voices busy: the oldest is replaced (its tail is cut; with 16+ voices this is rare).
        return oldest

    def mix(self, out: np.ndarray) -> None:
        """Add all voices into `out` (frames, channels). Audio thread only."""
        commands = self.commands
        while commands:
            self.apply(commands.popleft())
        frames = out.shape[0]
        bus = self._bus[:frames]
        bus.fill(0.0)
        active = False
        for v in range(self.voices):
            buf = self._buf[v]
            if buf is None:
                continue
            active = True
            pos = int(self.positions[v])
            n = min(frames, buf.shape[0] - pos)
            fo = self._fading_out[v]
            if fo >= 0:
                n = min(n, self.fade_out - fo)
            scratch = self._scratch[:n]
            np.multiply(buf[pos:pos + n], self._gain[v], out=scratch)
            if pos < self.fade_in:
                k = min(n, self.fade_in - pos)
                scratch[:k] *= self._ramp_in[pos:pos + k, None]
            if fo >= 0:
                scratch *= self._ramp_out[fo:fo + n, None]
                self._fading_out[v] = fo + n
            bus[:n] += scratch
            pos += n
            self.positions[v] = pos
            if pos >= buf.shape[0] or (fo >= 0 and self._fading_out[v] >= self.fade_out):
                self._buf[v] = None
                self.voice_ids[v] = 0
                self.positions[v] = 0
        target = self.volume
        if not active:
            self._volume_now = target
            return
        now = self._volume_now
        if now == target:
            if now != 1.0:
                bus *= now
        else:
            line = self._gain_line[:frames]
            np.multiply(self._unit[:frames], (target - now) * self.max_block / frames, out=line)
            line += now
            bus *= line[:, None]
            self._volume_now = target
        out += bus

