"""Audio file decoding for the library scanner and search-by-example.

Everything here is a pure function of a path, safe to call from any thread or
from scanner worker processes (DecodeError pickles). Files are never read
whole: `iter_mono` streams fixed-size blocks through libsndfile and a
streaming soxr resampler.

libsndfile trusts a WAV/AIFF header less than one might hope: it silently
shortens a file whose data chunk declares more bytes than the file holds. The
chunk walkers below catch that case (and a few others libsndfile does not
report) before decoding starts.

WAV files whose fmt chunk holds format tag 0x674F ("Ogg Vorbis mode 1", as
written by the old Vorbis ACM codec; lmms-common ships five of them named
*.ogg) carry a complete Ogg Vorbis stream inside the data chunk. libsndfile
cannot open the WAV, but it decodes the embedded Ogg stream, so those files
are decoded through a window over the data chunk.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

SUPPORTED_EXTENSIONS = frozenset(
    {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".mp3"}
)

RESAMPLE_QUALITY = "HQ"

_HEAD_BYTES = 64
# An Ogg page is at most 27 + 255 + 255 * 255 bytes.
_OGG_MAX_PAGE = 65307
_FLAC_TAIL_BYTES = 1 << 17

# Format tags libsndfile decodes inside a WAV container.
_LIBSNDFILE_WAV_TAGS = frozenset(
    {0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031, 0x0040, 0x0055, 0x0050, 0xFFFE}
)
_VORBIS_WAV_TAGS = frozenset({0x674F, 0x6750, 0x6751, 0x676F, 0x6770, 0x6771})
_WAV_CODEC_NAMES = {
    0x0000: "an unknown codec",
    0x0002: "Microsoft ADPCM audio",
    0x0006: "A-law audio",
    0x0007: "mu-law audio",
    0x0011: "IMA ADPCM audio",
    0x0031: "GSM 6.10 audio",
    0x0050: "MPEG-1 Layer I/II audio",
    0x0055: "MPEG Layer III (MP3) audio",
    0x0092: "Dolby AC-3 (S/PDIF) audio",
    0x00FF: "AAC audio",
    0x0160: "Windows Media Audio",
    0x0161: "Windows Media Audio",
    0x0162: "Windows Media Audio Professional",
    0x0163: "Windows Media Audio Lossless",
    0x1610: "MPEG-4 AAC audio",
    0x2000: "Dolby AC-3 audio",
    0x2001: "DTS audio",
    0xF1AC: "FLAC audio",
}

_TOLERANT_COUNT_FORMATS = frozenset({"MP3"})  # frame counts in MP3 headers may be estimates


class DecodeError(Exception):
    """A file that cannot be decoded; `code` says why in one machine-readable word.

    Codes: empty, not_audio, unsupported_format, unsupported_codec, corrupt,
    truncated, unreadable, no_audio.
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


def read_mono(path, sample_rate: int, *, max_seconds: float | None = None) -> np.ndarray:
    """Decode a whole file (or its first `max_seconds`) to one float32 mono array."""
    limit = None if max_seconds is None else max(0, int(round(max_seconds * sample_rate)))
    parts: list[np.ndarray] = []
    have = 0
    if limit == 0:
        _examine(path)
        return np.zeros(0, dtype=np.float32)
    stream = iter_mono(path, sample_rate)
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
            if got.shape[1] == 1:
                mono = got[:, 0].copy()
            else:
                mono = got.mean(axis=1, dtype=np.float32)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=False)
            if len(mono):
                yield mono
    _check_decoded_count(path, plan, decoded)
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yield tail


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
        tail = _flac_tail(path, plan.flac_stream, check_complete=True)
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
                self.sound = sf.SoundFile(path)
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
            kind = _sniff(head)
            if kind is None:
                raise DecodeError(
                    "not_audio", f"no recognised audio header (file starts with {_show(head)})"
                )
            window = None
            if kind == "WAV":
                window = _check_riff(f, size)
            elif kind == "AIFF":
                _check_aiff(f, size)
            elif kind == "OGG":
                _check_ogg_tail(f, 0, size)
    except OSError as exc:
        raise _os_error(exc) from None

    flac_stream = _flac_streaminfo(head) if kind == "FLAC" else None
    try:
        opened = _OpenSound(path, window)
    except sf.LibsndfileError as exc:
        raise DecodeError("corrupt", f"{_libsndfile_reason(exc)}") from None
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
    info = AudioInfo(fmt, subtype, int(sample_rate), int(channels), int(frames),
                     frames / float(sample_rate))
    if kind == "FLAC" and flac_stream is not None:
        tail = _flac_tail(path, flac_stream, check_complete=False)
        if tail is not None and tail[0] < frames:
            raise DecodeError(
                "truncated",
                f"header declares {frames} frames, file holds about {tail[0]}",
            )
    return _Plan(info, window, flac_stream)


def _sniff(head: bytes) -> str | None:
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
        return "WAV"
    if len(head) >= 12 and head[:4] in (b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "RF64"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:3] == b"ID3":
        return "MP3"  # an ID3v2 tag; libsndfile sorts out what follows it
    if _is_mpeg_frame_header(head[:4]):
        return "MP3"
    return None


def _is_mpeg_frame_header(b: bytes) -> bool:
    if len(b) < 4 or b[0] != 0xFF or (b[1] & 0xE0) != 0xE0:
        return False
    version = (b[1] >> 3) & 3
    layer = (b[1] >> 1) & 3
    bitrate = b[2] >> 4
    rate = (b[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate != 15 and rate != 3


def _chunks(f, size: int, u32: str) -> Iterator[tuple[bytes, int, int]]:
    """(id, declared size, body offset) of each chunk of a RIFF or IFF file after its
    12-byte header, with ``f`` positioned at the body. Chunks are padded to even sizes."""
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return
        (chunk_size,) = struct.unpack(u32, header[4:])
        body = pos + 8
        yield header[:4], chunk_size, body
        pos = body + chunk_size + (chunk_size & 1)


def _check_riff(f, size: int) -> tuple[int, int] | None:
    """Walk a RIFF/WAVE chunk table. Returns a window for an embedded Ogg stream."""
    f.seek(0)
    big_endian = f.read(4) == b"RIFX"
    u32 = ">I" if big_endian else "<I"
    fmt_tag = None
    block_align = 0
    data = None  # (offset, declared, held)
    for chunk_id, chunk_size, body in _chunks(f, size, u32):
        if chunk_id == b"fmt ":
            fmt = f.read(min(chunk_size, 40))
            if len(fmt) < 16:
                raise DecodeError("corrupt", "WAV 'fmt ' chunk is too short")
            h = ">" if big_endian else "<"
            fmt_tag, _ch, _rate, _bps, block_align, _bits = struct.unpack(h + "HHIIHH", fmt[:16])
            if fmt_tag == 0xFFFE and len(fmt) >= 26:
                (fmt_tag,) = struct.unpack(h + "H", fmt[24:26])  # first bytes of SubFormat GUID
        elif chunk_id == b"data":
            held = size - body
            data = (body, chunk_size, held)
            if chunk_size > held and chunk_size != 0xFFFFFFFF:
                # 0xFFFFFFFF is a recorder's "length unknown" placeholder; read to EOF.
                raise DecodeError("truncated", _short_message(chunk_size, held, block_align))
            if fmt_tag is not None:
                break
    if fmt_tag is None:
        raise DecodeError("corrupt", "WAV file has no 'fmt ' chunk")
    if data is None:
        raise DecodeError("corrupt", "WAV file has no 'data' chunk")
    if fmt_tag in _VORBIS_WAV_TAGS:
        offset, declared, held = data
        length = min(declared, held)
        f.seek(offset)
        if f.read(4) != b"OggS":
            raise DecodeError(
                "unsupported_codec",
                f"WAV container holds Ogg Vorbis audio (format tag 0x{fmt_tag:04X}) "
                "without a plain Ogg stream",
            )
        _check_ogg_tail(f, offset, offset + length)
        return (offset, length)
    if fmt_tag not in _LIBSNDFILE_WAV_TAGS:
        name = _WAV_CODEC_NAMES.get(fmt_tag, "audio in an unknown codec")
        raise DecodeError(
            "unsupported_codec", f"WAV container holds {name} (format tag 0x{fmt_tag:04X})"
        )
    return None


def _check_aiff(f, size: int) -> None:
    f.seek(8)
    form_type = f.read(4)
    comm = None  # (channels, frames, bits, compression)
    ssnd_held = None
    for chunk_id, chunk_size, body in _chunks(f, size, ">I"):
        if chunk_id == b"COMM":
            raw = f.read(min(chunk_size, 22))
            if len(raw) < 18:
                raise DecodeError("corrupt", "AIFF 'COMM' chunk is too short")
            channels, frames, bits = struct.unpack(">hIh", raw[:8])
            compression = raw[18:22] if form_type == b"AIFC" else b"NONE"
            comm = (channels, frames, bits, compression)
        elif chunk_id == b"SSND":
            held = size - body
            if chunk_size > held:
                frame_bytes = _aiff_frame_bytes(comm)
                raise DecodeError("truncated", _short_message(chunk_size - 8, held - 8, frame_bytes))
            ssnd_held = chunk_size - 8
    if comm is None:
        raise DecodeError("corrupt", "AIFF file has no 'COMM' chunk")
    frame_bytes = _aiff_frame_bytes(comm)
    if ssnd_held is not None and frame_bytes:
        declared = comm[1]
        held_frames = max(0, ssnd_held) // frame_bytes
        if declared > held_frames:
            raise DecodeError(
                "truncated", f"header declares {declared} frames, file holds {held_frames}"
            )


def _aiff_frame_bytes(comm) -> int:
    if comm is None:
        return 0
    channels, _frames, bits, compression = comm
    if compression not in (b"NONE", b"twos", b"sowt", b"raw ", b"in24", b"in32", b"fl32",
                           b"fl64", b"FL32", b"FL64"):
        return 0
    if compression in (b"fl64", b"FL64"):
        bits = 64
    return max(0, channels) * ((max(0, bits) + 7) // 8)


def _short_message(declared: int, held: int, block_align: int) -> str:
    if block_align > 0:
        return (f"header declares {declared // block_align} frames, "
                f"file holds {max(0, held) // block_align}")
    return f"data chunk declares {declared} bytes, file holds {max(0, held)}"


def _check_ogg_tail(f, start: int, end: int) -> None:
    """Raise `truncated` if the last Ogg page in [start, end) runs past `end`."""
    tail_start = max(start, end - _OGG_MAX_PAGE - 64)
    f.seek(tail_start)
    tail = f.read(end - tail_start)
    at = tail.rfind(b"OggS\x00")
    if at < 0:
        if end - start > _OGG_MAX_PAGE:
            raise DecodeError("corrupt", "no Ogg page found at the end of the stream")
        return
    page = tail[at:]
    if len(page) < 27 or len(page) < 27 + page[26]:
        raise DecodeError("truncated", "the last Ogg page is cut off")
    segments = page[26]
    page_len = 27 + segments + sum(page[27:27 + segments])
    if page_len > len(page):
        raise DecodeError(
            "truncated",
            f"the last Ogg page is cut off ({len(page)} of {page_len} bytes present)",
        )


def _flac_streaminfo(head: bytes) -> tuple[int, int, int, int] | None:
    """(block size of fixed-blocksize streams, sample rate, channels, bits) from STREAMINFO."""
    if head[:4] != b"fLaC" or len(head) < 26 or (head[4] & 0x7F) != 0:
        return None
    block_size = struct.unpack(">H", head[8:10])[0]
    packed = int.from_bytes(head[18:26], "big")
    sample_rate = packed >> 44
    channels = ((packed >> 41) & 7) + 1
    bits = ((packed >> 36) & 31) + 1
    return block_size, sample_rate, channels, bits


def _flac_tail(path: str, stream, check_complete: bool) -> tuple[int, bool] | None:
    """Find the file's last FLAC frame: (sample it would end at, whether it is whole)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, io.SEEK_END)
            size = f.tell()
            start = max(0, size - _FLAC_TAIL_BYTES)
            f.seek(start)
            tail = f.read()
    except OSError:
        return None
    at = len(tail)
    while True:
        at = tail.rfind(b"\xff", 0, at)
        if at < 0:
            return None
        parsed = _parse_flac_frame_header(tail, at, stream)
        if parsed is not None:
            first_sample, samples = parsed
            frame = tail[at:]
            complete = True
            if check_complete:
                complete = len(frame) >= 4 and _crc16(frame[:-2]) == struct.unpack(">H", frame[-2:])[0]
            return first_sample + samples, complete


_FLAC_RATE_CODES = {1: 88200, 2: 176400, 3: 192000, 4: 8000, 5: 16000, 6: 22050, 7: 24000,
                    8: 32000, 9: 44100, 10: 48000, 11: 96000}
_FLAC_BITS_CODES = {1: 8, 2: 12, 4: 16, 5: 20, 6: 24, 7: 32}


def _parse_flac_frame_header(buf: bytes, at: int, stream) -> tuple[int, int] | None:
    """(first sample, samples) of a frame header at `at` that fits the stream, else None.

    Every field is checked against STREAMINFO and the header CRC-8 so that a
    stray 0xFFF8 inside compressed data is not taken for a frame.
    """
    fixed_block, rate, channels, bits = stream
    if at + 6 > len(buf) or buf[at + 1] not in (0xF8, 0xF9):
        return None
    variable = buf[at + 1] == 0xF9
    bs_code, sr_code = buf[at + 2] >> 4, buf[at + 2] & 0xF
    ch_code, ss_code = buf[at + 3] >> 4, (buf[at + 3] >> 1) & 7
    if bs_code == 0 or sr_code == 15 or buf[at + 3] & 1:
        return None
    if not (ch_code == channels - 1 or (channels == 2 and 8 <= ch_code <= 10)):
        return None
    if ss_code != 0 and _FLAC_BITS_CODES.get(ss_code) != bits:
        return None
    if sr_code in _FLAC_RATE_CODES and _FLAC_RATE_CODES[sr_code] != rate:
        return None
    i = at + 4
    first = buf[i]
    if first < 0x80:
        n_extra, number = 0, first
    elif first >= 0xC0 and first < 0xFE:
        n_extra = 1
        while first & (0x80 >> (n_extra + 1)):
            n_extra += 1
        number = first & (0x3F >> n_extra)
    else:
        return None
    if i + 1 + n_extra > len(buf):
        return None
    for b in buf[i + 1:i + 1 + n_extra]:
        if b & 0xC0 != 0x80:
            return None
        number = (number << 6) | (b & 0x3F)
    i += 1 + n_extra
    if bs_code == 6:
        if i + 1 > len(buf):
            return None
        samples = buf[i] + 1
        i += 1
    elif bs_code == 7:
        if i + 2 > len(buf):
            return None
        samples = struct.unpack(">H", buf[i:i + 2])[0] + 1
        i += 2
    elif bs_code == 1:
        samples = 192
    elif bs_code <= 5:
        samples = 576 << (bs_code - 2)
    else:
        samples = 256 << (bs_code - 8)
    i += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if i + 1 > len(buf) or _crc8(buf[at:i]) != buf[i]:
        return None
    if not variable and samples > fixed_block:
        return None
    first_sample = number if variable else number * fixed_block
    return first_sample, samples


def _make_crc_table(poly: int, width: int) -> list[int]:
    top = 1 << (width - 1)
    mask = (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & top else (crc << 1)
        table.append(crc & mask)
    return table


_CRC8_TABLE = _make_crc_table(0x07, 8)
_CRC16_TABLE = _make_crc_table(0x8005, 16)


def _crc8(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = _CRC8_TABLE[crc ^ b]
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[(crc >> 8) ^ b]
    return crc


# ---------------------------------------------------------------- messages


def _libsndfile_reason(exc: Exception) -> str:
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
