"""Audio file decoding for the library scanner and search-by-example.

Everything here is a pure function of a path, safe to call from any thread or
from scanner worker processes (DecodeError pickles). Files are never read
whole: `iter_mono` streams fixed-size blocks through libsndfile and a
streaming soxr resampler.

libsndfile trusts a WAV/AIFF header less than one might hope, so the
container checks in `app.containers` run before decoding starts.

WAV files whose fmt chunk holds format tag 0x674F ("Ogg Vorbis mode 1", as
written by the old Vorbis ACM codec; lmms-common ships five of them named
*.ogg) carry a complete Ogg Vorbis stream inside the data chunk. libsndfile
cannot open the WAV, but it decodes the embedded Ogg stream, so those files
are decoded through a window over the data chunk.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from app.containers import (
    ContainerError,
    check_aiff,
    check_ogg_tail,
    check_riff,
    flac_streaminfo,
    flac_tail,
    sniff,
)
from engine.errors import SampleScoutError
from engine.mixdown import mono_mix

SUPPORTED_EXTENSIONS = frozenset(
    {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".mp3"}
)

RESAMPLE_QUALITY = "HQ"

_HEAD_BYTES = 64
_TOLERANT_COUNT_FORMATS = frozenset({"MP3"})  # frame counts in MP3 headers may be estimates

# What a header may declare. Outside these a file is refused before decoding: a rate of
# 1 Hz would make the resampler turn each 65,536-frame chunk into 2.9 G samples.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768000
MAX_CHANNELS = 64
# Sample values beyond this (80 dB over full scale) are garbage, not loud audio: their
# squares overflow float32 in the front-end.
MAX_SAMPLE_VALUE = 1e4
# Bytes one sample of one channel needs at least, for uncompressed subtypes.
_PCM_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4,
              "DOUBLE": 8, "ULAW": 1, "ALAW": 1}
_COMPRESSED_FORMATS = frozenset({"FLAC", "OGG", "MP3"})  # their subtypes name the source's bits
# Compressed streams: a FLAC frame of digital silence holds up to 65,535 samples of each
# channel in about a dozen bytes; Vorbis and MP3 need far more.
_MAX_SAMPLES_PER_BYTE = 8192


class DecodeError(SampleScoutError):
    """A file that cannot be decoded; `code` says why in one machine-readable word.

    Codes: empty, not_audio, unsupported_format, unsupported_codec, corrupt,
    truncated, unreadable, no_audio, implausible_rate, implausible_channels,
    implausible_length (headers no real recording has), bad_samples (NaN, infinite
    or absurdly large sample values).
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self):
        return (type(self), (self.code, self.message))


@dataclass(frozen=True)
class AudioInfo:
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    duration: float  # seconds


@dataclass(frozen=True)
class _Plan:
    """What probing learned: the info and how to open the audio for decoding."""

    info: AudioInfo
    window: tuple[int, int] | None  # (offset, length) of an embedded stream, else None
    flac_stream: tuple[int, int, int, int] | None  # STREAMINFO block size, rate, channels, bits


def probe(path) -> AudioInfo:
    """Read the header and check it against the file; raise DecodeError if unusable.

    Cheap: reads the header, the chunk table and (for Ogg/FLAC) the file's tail.
    Any thread or process may call it.
    """
    return _examine(path).info


def iter_mono(path, sample_rate: int, *, chunk_frames: int = 65536) -> Iterator[np.ndarray]:
    """Yield float32 mono chunks of the file resampled to `sample_rate`.

    Channels are mixed down by mean. Memory stays bounded by `chunk_frames`
    whatever the file length. Raises DecodeError before the first chunk for
    header problems and mid-stream for decode failures. Any thread or process
    may call it.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if chunk_frames <= 0:
        raise ValueError(f"chunk_frames must be positive, got {chunk_frames}")
    plan = _examine(path)
    yield from _stream(os.fspath(path), plan, sample_rate, chunk_frames)


def read_native_mono(path) -> tuple[np.ndarray, AudioInfo]:
    """The whole file as float32 mono at its own rate, and what its header says (one
    examination of the file where ``probe`` then ``read_mono`` make two). Any thread."""
    plan = _examine(path)
    return _read(_stream(os.fspath(path), plan, plan.info.sample_rate, 65536), None), plan.info


def read_mono(path, sample_rate: int, *, max_seconds: float | None = None) -> np.ndarray:
    """Decode a whole file (or its first `max_seconds`) to one float32 mono array."""
    limit = None if max_seconds is None else max(0, int(round(max_seconds * sample_rate)))
    if limit == 0:
        _examine(path)
        return np.zeros(0, dtype=np.float32)
    return _read(iter_mono(path, sample_rate), limit)


def _read(stream: Iterator[np.ndarray], limit: int | None) -> np.ndarray:
    """The chunks of ``stream`` joined (its first ``limit`` samples when given)."""
    parts: list[np.ndarray] = []
    have = 0
    try:
        for chunk in stream:
            parts.append(chunk)
            have += len(chunk)
            if limit is not None and have >= limit:
                break
    finally:
        stream.close()
    if not parts:
        return np.zeros(0, dtype=np.float32)
    out = np.concatenate(parts)
    return out if limit is None else out[:limit]


# ---------------------------------------------------------------- streaming


def _stream(path: str, plan: _Plan, sample_rate: int, chunk_frames: int) -> Iterator[np.ndarray]:
    info = plan.info
    resampler = None
    if info.sample_rate != sample_rate:
        resampler = soxr.ResampleStream(
            info.sample_rate, sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
        )
    decoded = 0
    # a short file never needs a large block (the count may be an estimate: reads loop)
    chunk_frames = min(chunk_frames, max(4096, info.frames))
    with _open_sound(path, plan) as sound:
        block = np.empty((chunk_frames, sound.channels), dtype=np.float32)
        while True:
            try:
                got = sound.read(chunk_frames, dtype="float32", always_2d=True, out=block)
            except sf.LibsndfileError as exc:
                raise _mid_stream_error(path, plan, decoded, exc) from None
            except OSError as exc:
                raise DecodeError("unreadable", f"read failed: {exc.strerror or exc}") from None
            n = len(got)
            if n == 0:
                break
            decoded += n
            mono = mono_mix(got)
            _check_samples(mono, decoded - n)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=False)
            if len(mono):
                yield mono
    _check_decoded_count(path, plan, decoded)
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yield tail


def _check_samples(mono: np.ndarray, first_frame: int) -> None:
    peak = np.max(np.abs(mono))
    if peak <= MAX_SAMPLE_VALUE:  # False for NaN too
        return
    bad = int(np.argmax(~(np.abs(mono) <= MAX_SAMPLE_VALUE)))
    value = float(mono[bad])
    what = "not a number" if np.isnan(value) else (
        "infinite" if np.isinf(value) else f"{value:.3g}, far outside full scale")
    raise DecodeError("bad_samples", f"sample at frame {first_frame + bad} is {what}")


def _check_decoded_count(path: str, plan: _Plan, decoded: int) -> None:
    declared = plan.info.frames
    if decoded >= declared:
        return
    if plan.info.format in _TOLERANT_COUNT_FORMATS:
        # MP3 lengths come from a Xing/Info header or a bitrate estimate.
        if declared - decoded <= max(2 * 1152, declared // 50):
            return
    raise DecodeError(
        "truncated", f"header declares {declared} frames, file holds {decoded}"
    )


def _mid_stream_error(path: str, plan: _Plan, decoded: int, exc: Exception) -> DecodeError:
    reason = _libsndfile_reason(exc)
    if plan.info.format == "FLAC" and plan.flac_stream is not None:
        tail = flac_tail(path, plan.flac_stream, check_complete=True)
        if tail is not None:
            end_sample, complete = tail
            if end_sample < plan.info.frames or not complete:
                return DecodeError(
                    "truncated",
                    f"header declares {plan.info.frames} frames, file ends inside the frame "
                    f"that would end at {end_sample} ({reason})",
                )
    return DecodeError(
        "corrupt",
        f"decoding failed in the block after frame {decoded} of {plan.info.frames}: {reason}",
    )


class _Window(io.RawIOBase):
    """A read-only, seekable view of `length` bytes at `offset` of a file."""

    def __init__(self, path: str, offset: int, length: int):
        super().__init__()
        self._file = open(path, "rb")
        self._offset = offset
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = min(max(0, base + pos), self._length)
        return self._pos

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        self._file.seek(self._offset + self._pos)
        got = self._file.readinto(memoryview(buffer)[:want])
        self._pos += got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


class _OpenSound:
    """Context manager holding a SoundFile (and the window under it, if any)."""

    def __init__(self, path: str, plan_window: tuple[int, int] | None):
        self._window = None
        try:
            if plan_window is None:
                # Bytes: soundfile encodes a str path strictly, which fails on a name
                # that is not valid UTF-8 (os.fsencode gives back its real bytes).
                self.sound = sf.SoundFile(os.fsencode(path))
            else:
                self._window = _Window(path, *plan_window)
                self.sound = sf.SoundFile(self._window)
        except BaseException:
            if self._window is not None:
                self._window.close()
            raise

    def __enter__(self) -> sf.SoundFile:
        return self.sound

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sound.close()
        if self._window is not None:
            self._window.close()


def _open_sound(path: str, plan: _Plan) -> _OpenSound:
    try:
        return _OpenSound(path, plan.window)
    except sf.LibsndfileError as exc:
        raise DecodeError("corrupt", _libsndfile_reason(exc)) from None
    except OSError as exc:
        raise _os_error(exc) from None


# ---------------------------------------------------------------- probing


def _examine(path) -> _Plan:
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = ext or "(no extension)"
        raise DecodeError(
            "unsupported_format",
            f"'{shown}' files are not read (supported: wav, aiff, flac, ogg, mp3)",
        )
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _os_error(exc) from None
    if not os.path.isfile(path):
        raise DecodeError("unreadable", "not a regular file")
    size = st.st_size
    if size == 0:
        raise DecodeError("empty", "file is zero bytes long")
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
            kind = sniff(head)
            if kind is None:
                raise DecodeError(
                    "not_audio", f"no recognised audio header (file starts with {_show(head)})"
                )
            window = None
            if kind == "WAV":
                window = check_riff(f, size)
            elif kind == "AIFF":
                check_aiff(f, size)
            elif kind == "OGG":
                check_ogg_tail(f, 0, size)
    except ContainerError as exc:
        raise DecodeError(exc.code, exc.message) from None
    except OSError as exc:
        raise _os_error(exc) from None

    flac_stream = flac_streaminfo(head) if kind == "FLAC" else None
    try:
        opened = _OpenSound(path, window)
    except sf.LibsndfileError as exc:
        raise DecodeError("corrupt", _open_failure(kind, exc)) from None
    except OSError as exc:
        raise _os_error(exc) from None
    with opened as sound:
        if window is None:
            fmt, subtype = sound.format, sound.subtype
        else:
            fmt, subtype = "WAV", sound.subtype
        sample_rate, channels, frames = sound.samplerate, sound.channels, sound.frames
    if sample_rate <= 0 or channels <= 0:
        raise DecodeError("corrupt", f"header gives {sample_rate} Hz, {channels} channels")
    if frames <= 0:
        raise DecodeError("no_audio", "header is valid but the file holds 0 frames")
    _check_plausible(fmt, subtype, sample_rate, channels, frames, size)
    info = AudioInfo(fmt, subtype, int(sample_rate), int(channels), int(frames),
                     frames / float(sample_rate))
    if kind == "FLAC" and flac_stream is not None:
        tail = flac_tail(path, flac_stream, check_complete=False)
        if tail is not None and tail[0] < frames:
            raise DecodeError(
                "truncated",
                f"header declares {frames} frames, file holds about {tail[0]}",
            )
    return _Plan(info, window, flac_stream)


def _check_plausible(fmt: str, subtype: str, sample_rate: int, channels: int, frames: int,
                     size: int) -> None:
    """Refuse headers no real recording has, before anything is allocated for them."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise DecodeError(
            "implausible_rate",
            f"header declares a sample rate of {sample_rate} Hz "
            f"(accepted: {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz)")
    if channels > MAX_CHANNELS:
        raise DecodeError(
            "implausible_channels",
            f"header declares {channels} channels (at most {MAX_CHANNELS} are read)")
    samples = frames * channels
    pcm_bytes = None if fmt in _COMPRESSED_FORMATS else _PCM_BYTES.get(subtype)
    if pcm_bytes is not None:
        if samples * pcm_bytes > size:
            raise DecodeError(
                "implausible_length",
                f"header declares {frames} frames of {channels} x {subtype}, "
                f"more than a {size}-byte file can hold")
    elif samples > size * _MAX_SAMPLES_PER_BYTE:
        raise DecodeError(
            "implausible_length",
            f"header declares {frames} frames of {channels} channels, "
            f"more than a {size}-byte {fmt} file can hold")


# ---------------------------------------------------------------- messages


def _open_failure(kind: str, exc: Exception) -> str:
    reason = _libsndfile_reason(exc)
    if "possibly a pipe" in reason:
        # libsndfile's words when its MPEG decoder finds no whole frame; the file was
        # checked to be a regular file above.
        return f"no decodable {kind} audio found: the stream is damaged or cut short"
    return reason


def _libsndfile_reason(exc: Exception) -> str:
    # libsndfile's own message, without the "Error opening <file>: " prefix that names
    # the path, or the repr of a window object
    error_string = getattr(exc, "error_string", None)
    if isinstance(error_string, str) and error_string.strip():
        text = error_string
        if text.strip().startswith("Error : "):
            text = text.strip()[len("Error : "):]
        return text.strip().rstrip(".") or "libsndfile reported an error"
    text = str(exc)
    # "Error opening '/path': reason" -> "reason"; keep paths out of the message.
    if text.startswith("Error opening ") and "': " in text:
        text = text.split("': ", 1)[1]
    text = text.strip()
    if text.startswith("Error : "):
        text = text[len("Error : "):]
    return text.rstrip(".") or "libsndfile reported an error"


def _os_error(exc: OSError) -> DecodeError:
    if isinstance(exc, PermissionError):
        return DecodeError("unreadable", "permission denied")
    if isinstance(exc, FileNotFoundError):
        return DecodeError("unreadable", "file not found")
    if isinstance(exc, IsADirectoryError):
        return DecodeError("unreadable", "not a regular file")
    return DecodeError("unreadable", f"I/O error: {exc.strerror or exc}")


def _show(head: bytes) -> str:
    text = head[:12].decode("latin-1")
    shown = "".join(c if c.isprintable() and ord(c) < 127 else "." for c in text)
    return repr(shown)
