"""Container checks that run before libsndfile opens a file.

libsndfile trusts a WAV/AIFF header less than one might hope: it silently
shortens a file whose data chunk declares more bytes than the file holds. The
chunk walkers here catch that case (and a few others libsndfile does not
report): sniffing a file's header, walking RIFF/WAVE and AIFF chunk tables,
checking the last Ogg page, and finding the last FLAC frame.

Everything here is pure: functions of the bytes given, an open file or a path,
with no state, so any thread or process may call them. Problems are raised as
ContainerError, which `app.decode` turns into a DecodeError with the same code
and message.
"""

from __future__ import annotations

import io
import struct
from typing import Iterator

from engine.errors import SampleScoutError

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


class ContainerError(SampleScoutError):
    """A container that fails a check; `code` is one of DecodeError's codes."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# ---------------------------------------------------------------- sniffing


def sniff(head: bytes) -> str | None:
    """The container a file starts with: WAV, RF64, AIFF, FLAC, OGG or MP3; else None."""
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


# ---------------------------------------------------------------- RIFF and AIFF


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


def check_riff(f, size: int) -> tuple[int, int] | None:
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
                raise ContainerError("corrupt", "WAV 'fmt ' chunk is too short")
            h = ">" if big_endian else "<"
            fmt_tag, _ch, _rate, _bps, block_align, _bits = struct.unpack(h + "HHIIHH", fmt[:16])
            if fmt_tag == 0xFFFE and len(fmt) >= 26:
                (fmt_tag,) = struct.unpack(h + "H", fmt[24:26])  # first bytes of SubFormat GUID
        elif chunk_id == b"data":
            held = size - body
            data = (body, chunk_size, held)
            if chunk_size > held and chunk_size != 0xFFFFFFFF:
                # 0xFFFFFFFF is a recorder's "length unknown" placeholder; read to EOF.
                raise ContainerError("truncated", _short_message(chunk_size, held, block_align))
            if fmt_tag is not None:
                break
    if fmt_tag is None:
        raise ContainerError("corrupt", "WAV file has no 'fmt ' chunk")
    if data is None:
        raise ContainerError("corrupt", "WAV file has no 'data' chunk")
    if fmt_tag in _VORBIS_WAV_TAGS:
        offset, declared, held = data
        length = min(declared, held)
        f.seek(offset)
        if f.read(4) != b"OggS":
            raise ContainerError(
                "unsupported_codec",
                f"WAV container holds Ogg Vorbis audio (format tag 0x{fmt_tag:04X}) "
                "without a plain Ogg stream",
            )
        check_ogg_tail(f, offset, offset + length)
        return (offset, length)
    if fmt_tag not in _LIBSNDFILE_WAV_TAGS:
        name = _WAV_CODEC_NAMES.get(fmt_tag, "audio in an unknown codec")
        raise ContainerError(
            "unsupported_codec", f"WAV container holds {name} (format tag 0x{fmt_tag:04X})"
        )
    return None


def check_aiff(f, size: int) -> None:
    """Walk an AIFF/AIFC chunk table; raise if the sound data is cut short."""
    f.seek(8)
    form_type = f.read(4)
    comm = None  # (channels, frames, bits, compression)
    ssnd_held = None
    for chunk_id, chunk_size, body in _chunks(f, size, ">I"):
        if chunk_id == b"COMM":
            raw = f.read(min(chunk_size, 22))
            if len(raw) < 18:
                raise ContainerError("corrupt", "AIFF 'COMM' chunk is too short")
            channels, frames, bits = struct.unpack(">hIh", raw[:8])
            compression = raw[18:22] if form_type == b"AIFC" else b"NONE"
            comm = (channels, frames, bits, compression)
        elif chunk_id == b"SSND":
            held = size - body
            if chunk_size > held:
                frame_bytes = _aiff_frame_bytes(comm)
                raise ContainerError(
                    "truncated", _short_message(chunk_size - 8, held - 8, frame_bytes)
                )
            ssnd_held = chunk_size - 8
    if comm is None:
        raise ContainerError("corrupt", "AIFF file has no 'COMM' chunk")
    frame_bytes = _aiff_frame_bytes(comm)
    if ssnd_held is not None and frame_bytes:
        declared = comm[1]
        held_frames = max(0, ssnd_held) // frame_bytes
        if declared > held_frames:
            raise ContainerError(
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


# ---------------------------------------------------------------- Ogg


def check_ogg_tail(f, start: int, end: int) -> None:
    """Raise `truncated` if the last Ogg page in [start, end) runs past `end`."""
    tail_start = max(start, end - _OGG_MAX_PAGE - 64)
    f.seek(tail_start)
    tail = f.read(end - tail_start)
    at = tail.rfind(b"OggS\x00")
    if at < 0:
        if end - start > _OGG_MAX_PAGE:
            raise ContainerError("corrupt", "no Ogg page found at the end of the stream")
        return
    page = tail[at:]
    if len(page) < 27 or len(page) < 27 + page[26]:
        raise ContainerError("truncated", "the last Ogg page is cut off")
    segments = page[26]
    page_len = 27 + segments + sum(page[27:27 + segments])
    if page_len > len(page):
        raise ContainerError(
            "truncated",
            f"the last Ogg page is cut off ({len(page)} of {page_len} bytes present)",
        )


# ---------------------------------------------------------------- FLAC


def flac_streaminfo(head: bytes) -> tuple[int, int, int, int] | None:
    """(block size of fixed-blocksize streams, sample rate, channels, bits) from STREAMINFO."""
    if head[:4] != b"fLaC" or len(head) < 26 or (head[4] & 0x7F) != 0:
        return None
    block_size = struct.unpack(">H", head[8:10])[0]
    packed = int.from_bytes(head[18:26], "big")
    sample_rate = packed >> 44
    channels = ((packed >> 41) & 7) + 1
    bits = ((packed >> 36) & 31) + 1
    return block_size, sample_rate, channels, bits


def flac_tail(path: str, stream, check_complete: bool) -> tuple[int, bool] | None:
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
