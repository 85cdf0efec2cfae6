"""Writers for good, odd and broken audio files, for decoder and scanner tests.

Each `write_*` function writes one file into `directory` (created if needed)
and returns its path. Good files hold decaying tone bursts with a little
noise, never silence (except `write_silent_wav`, which is valid audio that is
all zeros). `make_bad_library` builds all of them in one folder tree and says
which error code `app.decode` should give for each (None: decodes).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

TONE_HZ = 1000.0


def tone(sample_rate: int, seconds: float, channels: int = 1, freq: float = TONE_HZ,
         amplitude: float = 0.5, seed: int = 0) -> np.ndarray:
    """A decaying sine burst plus faint noise, shape (frames, channels), float64."""
    n = int(round(sample_rate * seconds))
    t = np.arange(n) / sample_rate
    envelope = np.exp(-t * 2.0)
    rng = np.random.default_rng(seed)
    out = np.empty((n, channels))
    for c in range(channels):
        out[:, c] = amplitude * envelope * np.sin(2 * np.pi * freq * t + c * 0.3)
        out[:, c] += 0.002 * rng.standard_normal(n)
    return out


def steady_tone(sample_rate: int, seconds: float, channels: int = 1, freq: float = TONE_HZ,
                amplitude: float = 0.5) -> np.ndarray:
    """A constant-amplitude sine, shape (frames, channels); for amplitude checks."""
    n = int(round(sample_rate * seconds))
    t = np.arange(n) / sample_rate
    mono = amplitude * np.sin(2 * np.pi * freq * t)
    return np.repeat(mono[:, None], channels, axis=1)


def _dir(directory) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write(directory, name: str, data: np.ndarray, sample_rate: int, **kwargs) -> Path:
    path = _dir(directory) / name
    sf.write(path, data, sample_rate, **kwargs)
    return path


# ------------------------------------------------------------------ good files


def write_pcm16(directory) -> Path:
    return _write(directory, "pcm16.wav", tone(44100, 1.0), 44100, subtype="PCM_16")


def write_pcm8(directory) -> Path:
    """8-bit unsigned PCM WAV holding a steady 0.5-amplitude sine."""
    return _write(directory, "pcm8.wav", steady_tone(22050, 0.5), 22050, subtype="PCM_U8")


def write_pcm24(directory) -> Path:
    return _write(directory, "pcm24.wav", steady_tone(48000, 0.5), 48000, subtype="PCM_24")


def write_pcm32(directory) -> Path:
    return _write(directory, "pcm32.wav", steady_tone(48000, 0.5), 48000, subtype="PCM_32")


def write_float32(directory) -> Path:
    return _write(directory, "float32.wav", steady_tone(44100, 0.5), 44100, subtype="FLOAT")


def write_float64(directory) -> Path:
    return _write(directory, "float64.wav", steady_tone(44100, 0.5), 44100, subtype="DOUBLE")


def write_8k(directory) -> Path:
    return _write(directory, "rate8k.wav", steady_tone(8000, 1.0), 8000, subtype="PCM_16")


def write_192k(directory) -> Path:
    return _write(directory, "rate192k.wav", steady_tone(192000, 1.0), 192000, subtype="PCM_24")


def write_6ch(directory) -> Path:
    """Six channels: channel c holds a constant (c + 1) / 10, so the mean is 0.35."""
    n = 24000
    data = np.tile((np.arange(6) + 1) / 10.0, (n, 1))
    return _write(directory, "six_channels.wav", data, 48000, subtype="FLOAT")


def write_stereo_opposed(directory) -> Path:
    """Stereo with the right channel the negated left: mixes down to zeros."""
    left = tone(44100, 0.5)[:, 0]
    return _write(directory, "stereo_opposed.wav", np.stack([left, -left], axis=1), 44100,
                  subtype="FLOAT")


def write_aiff(directory) -> Path:
    return _write(directory, "tone.aiff", tone(44100, 1.0, channels=2), 44100,
                  format="AIFF", subtype="PCM_16")


def write_flac(directory) -> Path:
    return _write(directory, "tone.flac", tone(48000, 1.0, channels=2), 48000, subtype="PCM_24")


def write_ogg(directory) -> Path:
    return _write(directory, "tone.ogg", tone(44100, 1.0), 44100, format="OGG", subtype="VORBIS")


def write_mp3(directory) -> Path:
    return _write(directory, "tone.mp3", tone(44100, 1.0), 44100, format="MP3",
                  subtype="MPEG_LAYER_III")


def write_unicode_name(directory) -> Path:
    d = _dir(directory) / "Échantillons ünïcødé"
    return _write(d, "kick 木 drüm ✓.wav", tone(44100, 0.3), 44100, subtype="PCM_16")


def write_silent_wav(directory) -> Path:
    """Valid audio that is all zeros: decodes; deciding it is silent is the scanner's job."""
    return _write(directory, "silent.wav", np.zeros((22050, 1)), 44100, subtype="PCM_16")


def write_long(directory, seconds: float = 660.0, sample_rate: int = 8000) -> Path:
    """A long mono 8 kHz file written in chunks (never held whole in memory)."""
    path = _dir(directory) / "long.wav"
    block = sample_rate * 10
    remaining = int(round(seconds * sample_rate))
    t = np.arange(block) / sample_rate
    burst = (0.5 * np.exp(-t) * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    with sf.SoundFile(path, "w", sample_rate, 1, subtype="PCM_16") as f:
        while remaining > 0:
            n = min(block, remaining)
            f.write(burst[:n])
            remaining -= n
    return path


def write_vorbis_in_wav(directory, name: str = "vorbis_in_wav.ogg") -> Path:
    """An Ogg Vorbis stream wrapped in RIFF/WAVE with format tag 0x674F.

    Built like the lmms-common files: an 18+8-byte fmt chunk, a fact chunk with
    the frame count, and the whole Ogg stream as the data chunk. Named .ogg by
    default, as those are.
    """
    d = _dir(directory)
    sample_rate, seconds = 44100, 1.0
    data = tone(sample_rate, seconds)
    tmp = d / (name + ".tmp.ogg")
    sf.write(tmp, data, sample_rate, format="OGG", subtype="VORBIS")
    ogg = tmp.read_bytes()
    tmp.unlink()
    frames = len(data)
    fmt = struct.pack("<HHIIHHH", 0x674F, 1, sample_rate, 9000, 1, 16, 8) + bytes(8)
    fact = struct.pack("<I", frames)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<I", len(fact)) + fact
            + b"data" + struct.pack("<I", len(ogg)) + ogg + (b"\0" if len(ogg) & 1 else b""))
    path = d / name
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


# ------------------------------------------------------------------ bad files


def _riff_wav(fmt_tag: int, payload: bytes, channels: int = 1, sample_rate: int = 44100,
              bits: int = 16, declared_data: int | None = None) -> bytes:
    block_align = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, sample_rate, sample_rate * block_align,
                      block_align, bits)
    size = len(payload) if declared_data is None else declared_data
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", size) + payload)
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + size) + body


def write_zero_length(directory) -> Path:
    path = _dir(directory) / "zero_length.wav"
    path.write_bytes(b"")
    return path


def write_text_as_wav(directory) -> Path:
    path = _dir(directory) / "readme_not_audio.wav"
    path.write_text("These are not the samples you are looking for.\n" * 20)
    return path


def write_random_as_flac(directory) -> Path:
    path = _dir(directory) / "random_bytes.flac"
    path.write_bytes(b"\x00\x01" + np.random.default_rng(3).bytes(4000))
    return path


def write_truncated_wav(directory) -> Path:
    """Header declares 88200 frames (2 s of 16-bit mono at 44.1 kHz); file holds 41000."""
    pcm = (tone(44100, 41000 / 44100)[:, 0] * 32767).astype("<i2").tobytes()
    path = _dir(directory) / "truncated.wav"
    path.write_bytes(_riff_wav(1, pcm, declared_data=88200 * 2))
    return path


def write_truncated_aiff(directory) -> Path:
    """An AIFF cut to 60 % of its length: the SSND chunk declares more than the file holds."""
    path = _write(directory, "truncated.aiff", tone(44100, 1.0), 44100, format="AIFF",
                  subtype="PCM_16")
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.6)])
    return path


def write_truncated_flac(directory) -> Path:
    path = _write(directory, "truncated.flac", tone(44100, 3.0), 44100, subtype="PCM_16")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def write_truncated_ogg(directory) -> Path:
    path = _write(directory, "truncated.ogg", tone(44100, 3.0), 44100, format="OGG",
                  subtype="VORBIS")
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.6)])
    return path


def write_corrupt_flac(directory) -> Path:
    """A FLAC whose middle 20 % is overwritten with random bytes; header and tail intact."""
    path = _write(directory, "corrupt.flac", tone(44100, 3.0), 44100, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    a, b = int(len(raw) * 0.4), int(len(raw) * 0.6)
    raw[a:b] = np.random.default_rng(1).bytes(b - a)
    path.write_bytes(bytes(raw))
    return path


def write_bad_fmt_wav(directory) -> Path:
    """A RIFF/WAVE header whose fmt chunk declares 0 channels."""
    path = _dir(directory) / "bad_fmt.wav"
    path.write_bytes(_riff_wav(1, bytes(2000), channels=0))
    return path


def write_no_audio_wav(directory) -> Path:
    """A well-formed WAV with an empty data chunk."""
    path = _dir(directory) / "no_frames.wav"
    path.write_bytes(_riff_wav(1, b""))
    return path


def write_unknown_codec_wav(directory) -> Path:
    """A RIFF/WAVE file tagged Windows Media Audio (0x0161), which libsndfile can't decode."""
    path = _dir(directory) / "wma_in_wav.wav"
    path.write_bytes(_riff_wav(0x0161, np.random.default_rng(2).bytes(3000)))
    return path


def write_unsupported(directory, name: str = "groove.mid") -> Path:
    """A file whose extension is not one we read (default a small MIDI file)."""
    path = _dir(directory) / name
    if name.endswith(".mid"):
        track = bytes([0x00, 0x90, 0x3C, 0x64, 0x60, 0x80, 0x3C, 0x00, 0x00, 0xFF, 0x2F, 0x00])
        path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96)
                         + b"MTrk" + struct.pack(">I", len(track)) + track)
    else:
        path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    return path


def make_bad_library(directory) -> dict[str, tuple[Path, str | None]]:
    """Build every case in one folder tree: name -> (path, expected DecodeError code or None)."""
    root = _dir(directory)
    good, odd, bad = root / "good", root / "odd", root / "bad"
    return {
        "pcm16": (write_pcm16(good), None),
        "pcm8": (write_pcm8(good), None),
        "pcm24": (write_pcm24(good), None),
        "pcm32": (write_pcm32(good), None),
        "float32": (write_float32(good), None),
        "float64": (write_float64(good), None),
        "rate8k": (write_8k(good), None),
        "rate192k": (write_192k(good), None),
        "six_channels": (write_6ch(good), None),
        "aiff": (write_aiff(good), None),
        "flac": (write_flac(good), None),
        "ogg": (write_ogg(good), None),
        "mp3": (write_mp3(good), None),
        "unicode_name": (write_unicode_name(good), None),
        "vorbis_in_wav": (write_vorbis_in_wav(odd), None),
        "silent": (write_silent_wav(odd), None),
        "zero_length": (write_zero_length(bad), "empty"),
        "text_as_wav": (write_text_as_wav(bad), "not_audio"),
        "random_as_flac": (write_random_as_flac(bad), "not_audio"),
        "midi": (write_unsupported(bad, "groove.mid"), "unsupported_format"),
        "m4a": (write_unsupported(bad, "song.m4a"), "unsupported_format"),
        "wma_in_wav": (write_unknown_codec_wav(bad), "unsupported_codec"),
        "truncated_wav": (write_truncated_wav(bad), "truncated"),
        "truncated_aiff": (write_truncated_aiff(bad), "truncated"),
        "truncated_flac": (write_truncated_flac(bad), "truncated"),
        "truncated_ogg": (write_truncated_ogg(bad), "truncated"),
        "corrupt_flac": (write_corrupt_flac(bad), "corrupt"),
        "bad_fmt_wav": (write_bad_fmt_wav(bad), "corrupt"),
        "no_audio_wav": (write_no_audio_wav(bad), "no_audio"),
    }


def file_size(path) -> int:
    return os.path.getsize(path)
