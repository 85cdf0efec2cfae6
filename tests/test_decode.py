"""Tests for app.decode against real files: generated ones and Debian's sample packages."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))

import badfiles  # noqa: E402
from app.decode import (  # noqa: E402
    SUPPORTED_EXTENSIONS,
    AudioInfo,
    DecodeError,
    iter_mono,
    probe,
    read_mono,
)
from tests.conftest import missing_part

SR = 44100
HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
SONIC_PI = Path("/usr/share/sonic-pi/samples")
LMMS = Path("/usr/share/lmms/samples")
# Files in lmms-common that are RIFF/WAVE with format tag 0x674F (Ogg Vorbis inside), named .ogg.
LMMS_VORBIS_IN_WAV = {
    "effects/scratch01.ogg": 22050,
    "effects/wind_chimes01.ogg": 132300,
    "drums/kick04.ogg": 28051,
    "misc/hit01.ogg": 110250,
    "instruments/harpsichord01.ogg": 132300,
}


def peak_hz(x: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sample_rate / len(x))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return badfiles.make_bad_library(tmp_path_factory.mktemp("library"))


def test_supported_extensions():
    assert SUPPORTED_EXTENSIONS == frozenset(
        {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".mp3"}
    )


LIBRARY_CASES = [
    "pcm16", "pcm8", "pcm24", "pcm32", "float32", "float64", "rate8k", "rate192k",
    "six_channels", "aiff", "flac", "ogg", "mp3", "unicode_name", "vorbis_in_wav", "silent",
    "zero_length", "text_as_wav", "random_as_flac", "midi", "m4a", "wma_in_wav",
    "truncated_wav", "truncated_aiff", "truncated_flac", "truncated_ogg", "corrupt_flac",
    "bad_fmt_wav", "no_audio_wav",
]


def test_case_list_matches_the_library(library):
    assert sorted(LIBRARY_CASES) == sorted(library)


@pytest.mark.parametrize("name", LIBRARY_CASES)
def test_library_case_gives_expected_result(library, name):
    path, expected = library[name]
    if expected is None:
        info = probe(path)
        audio = read_mono(path, SR)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) - info.duration * SR) <= 2
        assert np.all(np.isfinite(audio))
    else:
        with pytest.raises(DecodeError) as caught:
            read_mono(path, SR)
        assert caught.value.code == expected
        assert str(caught.value).startswith(expected + ": ")
        assert "\n" not in str(caught.value)
        assert str(path) not in str(caught.value)


def test_library_covers_every_code(library):
    codes = {code for _, code in library.values()}
    assert codes >= {"empty", "not_audio", "unsupported_format", "unsupported_codec",
                     "truncated", "corrupt", "no_audio", None}


def test_probe_agrees_with_read_for_every_bad_case(library):
    for name, (path, expected) in library.items():
        if expected is None:
            continue
        # Header problems must already show in the cheap probe, except decode failures.
        if expected == "corrupt" and name == "corrupt_flac":
            probe(path)
            continue
        with pytest.raises(DecodeError) as caught:
            probe(path)
        assert caught.value.code == expected, name


def test_truncated_wav_message_names_the_counts(tmp_path):
    path = badfiles.write_truncated_wav(tmp_path)
    with pytest.raises(DecodeError) as caught:
        probe(path)
    assert str(caught.value) == "truncated: header declares 88200 frames, file holds 41000"


def test_libsndfile_alone_would_accept_the_truncated_wav(tmp_path):
    # Why the chunk walk exists: libsndfile opens the short file without complaint.
    path = badfiles.write_truncated_wav(tmp_path)
    assert sf.info(str(path)).frames == 41000


def test_flac_cut_inside_its_last_frame_is_truncated(tmp_path):
    path = badfiles.write_flac(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[:-40])
    with pytest.raises(DecodeError) as caught:
        read_mono(path, SR)
    assert caught.value.code == "truncated"


def test_unknown_wav_codec_is_named(tmp_path):
    path = badfiles.write_unknown_codec_wav(tmp_path)
    with pytest.raises(DecodeError) as caught:
        probe(path)
    assert caught.value.code == "unsupported_codec"
    assert "Windows Media Audio" in str(caught.value) and "0x0161" in str(caught.value)


def test_vorbis_tag_without_ogg_stream_is_unsupported_codec(tmp_path):
    path = badfiles.write_vorbis_in_wav(tmp_path, "vorbis_mode2.wav")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"OggS")
    raw[at:at + 4] = b"xxxx"
    path.write_bytes(bytes(raw))
    with pytest.raises(DecodeError) as caught:
        probe(path)
    assert caught.value.code == "unsupported_codec"
    assert "Ogg Vorbis" in str(caught.value) and "0x674F" in str(caught.value)


def test_vorbis_in_wav_decodes_like_the_plain_ogg(tmp_path):
    wrapped = badfiles.write_vorbis_in_wav(tmp_path)
    plain = badfiles.write_ogg(tmp_path / "plain")  # same signal, same encoder settings
    info = probe(wrapped)
    assert (info.format, info.subtype, info.channels, info.frames) == ("WAV", "VORBIS", 1, SR)
    a, b = read_mono(wrapped, SR), read_mono(plain, SR)
    assert len(a) == len(b)
    assert np.max(np.abs(a - b)) < 1e-4


def _probe_code_as_nobody(path: Path) -> str:
    """probe() in a forked child that dropped root, so permissions apply; returns the code."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        result = "crashed"
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                probe(path)
                result = "ok"
            except DecodeError as exc:
                result = exc.code
        finally:
            os.write(write_end, result.encode())
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as f:
        return f.read().decode()


def test_unreadable_file(tmp_path):
    if os.geteuid() != 0:
        path = badfiles.write_pcm16(tmp_path)
        path.chmod(0)
        with pytest.raises(DecodeError) as caught:
            probe(path)
        assert caught.value.code == "unreadable"
        assert "permission denied" in str(caught.value)
        return
    # root reads anything: drop privileges in a child. The folder is open to all, the file
    # only to root, so the child fails on open() rather than on the path.
    folder = Path(tempfile.mkdtemp(prefix="decode-perm-"))
    try:
        folder.chmod(0o755)
        path = badfiles.write_pcm16(folder)
        path.chmod(0o644)
        assert _probe_code_as_nobody(path) == "ok"  # the child can read what it may read
        path.chmod(0o600)
        assert _probe_code_as_nobody(path) == "unreadable"
    finally:
        shutil.rmtree(folder)


def test_directory_and_missing_file_are_unreadable(tmp_path):
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    for path in (folder, tmp_path / "missing.wav"):
        with pytest.raises(DecodeError) as caught:
            probe(path)
        assert caught.value.code == "unreadable"


def test_decode_error_pickles_for_worker_processes():
    err = pickle.loads(pickle.dumps(DecodeError("truncated", "header declares 2 frames")))
    assert err.code == "truncated" and str(err) == "truncated: header declares 2 frames"


def test_audio_info_fields(library):
    info = probe(library["flac"][0])
    assert info == AudioInfo("FLAC", "PCM_24", 48000, 2, 48000, 1.0)


@pytest.mark.parametrize("name", ["pcm8", "pcm24", "pcm32", "float32", "float64"])
def test_formats_decode_to_the_right_amplitude(library, name):
    path, _ = library[name]
    info = probe(path)
    audio = read_mono(path, info.sample_rate)  # no resampling: compare with the written sine
    expected = badfiles.steady_tone(info.sample_rate, info.duration)[:, 0]
    assert len(audio) == len(expected)
    tolerance = {"pcm8": 1.0 / 64}.get(name, 1e-4)
    assert np.max(np.abs(audio - expected)) < tolerance
    assert abs(np.max(np.abs(audio)) - 0.5) < tolerance


@pytest.mark.parametrize("name,rate", [("rate8k", 8000), ("rate192k", 192000)])
def test_resampled_sine_keeps_its_pitch(library, name, rate):
    path, _ = library[name]
    assert probe(path).sample_rate == rate
    audio = read_mono(path, SR)
    assert abs(len(audio) - SR) <= 2
    assert abs(peak_hz(audio, SR) - 1000.0) < 2.0
    middle = audio[SR // 4: 3 * SR // 4]
    assert abs(np.sqrt(np.mean(middle ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_six_channels_mix_down_by_mean(library):
    path, _ = library["six_channels"]
    assert probe(path).channels == 6
    audio = read_mono(path, 48000)
    np.testing.assert_allclose(audio, 0.35, atol=1e-6)


def test_opposed_stereo_mixes_to_silence(tmp_path):
    audio = read_mono(badfiles.write_stereo_opposed(tmp_path), SR)
    assert np.max(np.abs(audio)) < 1e-6


@pytest.mark.parametrize("name", ["aiff", "flac", "ogg", "mp3"])
def test_compressed_and_aiff_formats_hold_the_tone(library, name):
    path, _ = library[name]
    audio = read_mono(path, SR)
    assert abs(peak_hz(audio, SR) - 1000.0) < 2.0
    assert 0.4 < np.max(np.abs(audio)) < 0.6


def test_silent_file_decodes_to_zeros(library):
    audio = read_mono(library["silent"][0], SR)
    assert len(audio) == 22050 and not np.any(audio)


def test_unicode_path(library):
    path, _ = library["unicode_name"]
    assert "木" in str(path) and " " in str(path)
    assert probe(path).frames == int(0.3 * SR)


@pytest.mark.parametrize("name", ["rate8k", "rate192k", "six_channels", "flac", "mp3"])
@pytest.mark.parametrize("chunk_frames", [1, 1000, 4097])
def test_chunk_size_does_not_change_output(library, name, chunk_frames):
    path, _ = library[name]
    if chunk_frames == 1 and probe(path).frames > 50000:
        chunk_frames = 7  # one-frame reads of a long file would only cost time
    reference = read_mono(path, SR)
    streamed = np.concatenate(list(iter_mono(path, SR, chunk_frames=chunk_frames)))
    assert len(streamed) == len(reference)
    assert np.max(np.abs(streamed - reference)) < 1e-5


@pytest.mark.parametrize("name", ["rate8k", "rate192k", "flac"])
def test_stream_matches_one_shot_soxr(library, name):
    path, _ = library[name]
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    one_shot = soxr.resample(data.mean(axis=1), rate, SR, quality="HQ")
    streamed = np.concatenate(list(iter_mono(path, SR, chunk_frames=1000)))
    assert abs(len(streamed) - len(one_shot)) <= 1
    n = min(len(streamed), len(one_shot))
    assert np.max(np.abs(streamed[:n] - one_shot[:n])) < 1e-3


def test_read_mono_max_seconds(library):
    path, _ = library["rate8k"]
    full = read_mono(path, SR)
    head = read_mono(path, SR, max_seconds=0.25)
    assert len(head) == int(0.25 * SR)
    np.testing.assert_allclose(head, full[: len(head)], atol=1e-6)
    assert len(read_mono(path, SR, max_seconds=0)) == 0
    assert len(read_mono(path, SR, max_seconds=100)) == len(full)


def test_mid_stream_failure_raises_after_good_chunks(library):
    path, _ = library["corrupt_flac"]
    chunks = []
    with pytest.raises(DecodeError) as caught:
        for chunk in iter_mono(path, 44100, chunk_frames=1024):
            chunks.append(chunk)
    assert caught.value.code == "corrupt"
    assert len(chunks) > 10  # the intact first 40 % came out before the failure


def test_long_file_streams_in_bounded_memory(tmp_path):
    seconds, rate = 660, 8000
    path = badfiles.write_long(tmp_path, seconds=seconds, sample_rate=rate)
    info = probe(path)
    assert info.duration == pytest.approx(seconds)
    out_rate = 16000
    decoded_bytes = seconds * out_rate * 4
    total = 0
    energy = 0.0
    tracemalloc.start()
    try:
        for chunk in iter_mono(path, out_rate):
            total += len(chunk)
            energy += float(np.dot(chunk, chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert abs(total - seconds * out_rate) <= 2
    assert energy > 0
    assert peak < decoded_bytes / 20, f"peak {peak} bytes for {decoded_bytes} decoded"


# ------------------------------------------------------------ Debian samples


def _debian_files(root: Path, limit: int) -> list[Path]:
    if not root.is_dir():
        return []
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUPPORTED_EXTENSIONS)
    step = max(1, len(found) // limit)
    return found[::step][:limit]


@pytest.mark.parametrize("root,package", [
    (HYDROGEN, "hydrogen-drumkits"),
    (SONIC_PI, "sonic-pi-samples"),
    (LMMS, "lmms-common"),
])
def test_debian_samples_decode(root, package):
    files = _debian_files(root, 12)
    if not files:
        missing_part(f"Debian package {package} is not installed ({root} missing)")
    for path in files:
        info = probe(path)
        audio = read_mono(path, SR)
        assert abs(len(audio) - info.duration * SR) <= 2, path
        assert np.max(np.abs(audio)) > 1e-4, path


def test_hydrogen_aiff_named_wav_decodes():
    path = HYDROGEN / "Audiophob" / "25671__walter-odington__garage-city-snare-snappy.wav"
    if not path.exists():
        missing_part("Debian package hydrogen-drumkits is not installed")
    assert path.read_bytes()[:4] == b"FORM"
    assert probe(path).format == "AIFF"
    assert np.max(np.abs(read_mono(path, SR))) > 0.1


@pytest.mark.parametrize("relative,frames", sorted(LMMS_VORBIS_IN_WAV.items()))
def test_lmms_vorbis_in_wav_files_decode(relative, frames):
    path = LMMS / relative
    if not path.exists():
        missing_part("Debian package lmms-common is not installed")
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[20:22] == b"\x4f\x67"  # format tag 0x674F
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(path))  # libsndfile alone refuses them
    info = probe(path)
    assert (info.format, info.subtype, info.frames) == ("WAV", "VORBIS", frames)
    audio = read_mono(path, SR)
    assert len(audio) == frames and np.max(np.abs(audio)) > 0.5


@pytest.mark.parametrize("channels", [1, 2, 3, 6, 8, 10])
def test_channels_mix_down_to_their_float32_mean(tmp_path, channels):
    from app.decode import read_mono, read_native_mono
    rng = np.random.default_rng(channels)
    frames = (rng.standard_normal((70_000, channels)) * rng.uniform(0.01, 0.3, channels)).astype(np.float32)
    path = tmp_path / f"{channels}ch.wav"
    sf.write(path, frames, 32000, subtype="FLOAT")
    stored = sf.read(str(path), dtype="float32", always_2d=True)[0]
    expected = stored.mean(axis=1, dtype=np.float32)
    assert np.array_equal(read_mono(path, 32000), expected)
    native, info = read_native_mono(path)
    assert np.array_equal(native, expected) and (info.sample_rate, info.channels) == (32000, channels)
