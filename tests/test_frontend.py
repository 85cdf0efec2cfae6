"""The numpy log-mel front-end against librosa, and streaming against offline."""

import pathlib

import librosa  # a test dependency: when missing the run fails, it does not skip
import numpy as np
import pytest
import soundfile as sf

from models import frontend
from tests.conftest import missing_part

SONIC_PI = pathlib.Path("/usr/share/sonic-pi/samples")
HYDROGEN = pathlib.Path("/usr/share/hydrogen/data/drumkits")
# normalised log-mel values lie in about [0, 1.2]
LIBROSA_TOLERANCE = 1e-4


def _load_mono_44k(path: pathlib.Path) -> np.ndarray:
    audio, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sample_rate != frontend.SAMPLE_RATE:
        import soxr
        audio = soxr.resample(audio, sample_rate, frontend.SAMPLE_RATE).astype(np.float32)
    return audio


def _real_files() -> list[pathlib.Path]:
    files = [SONIC_PI / "loop_amen.flac", SONIC_PI / "bd_haus.flac"]
    files += sorted(HYDROGEN.glob("*/*.flac"))[:1] + sorted(HYDROGEN.glob("*/*.wav"))[:1]
    return [f for f in files if f.is_file()]


def _signals() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    sr = frontend.SAMPLE_RATE
    t = np.arange(int(0.9 * sr)) / sr
    signals = [
        ("noise", (0.3 * rng.standard_normal(t.size)).astype(np.float32)),
        ("sine", (0.5 * np.sin(2 * np.pi * 441.0 * t)).astype(np.float32)),
        ("tiny", (1e-3 * rng.standard_normal(1500)).astype(np.float32)),
    ]
    return signals + [(p.name, _load_mono_44k(p)) for p in _real_files()]


def _librosa_log_mel(audio: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=audio, sr=44100, n_fft=2048, hop_length=1024, win_length=2048, window="hann",
        center=True, pad_mode="constant", power=2.0, n_mels=96, fmin=0.0, fmax=22050.0,
        htk=True, norm=1.0)
    return (np.log10(1e4 * mel + 1.0) / 9.457798957824707).T


def test_filterbank_matches_librosa_norm_1():
    ref = librosa.filters.mel(sr=44100, n_fft=2048, n_mels=96, fmin=0.0, fmax=22050.0, htk=True, norm=1.0)
    ours = frontend.mel_filterbank()
    assert ours.shape == ref.shape == (96, 1025)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)
    # norm=1.0 means every (non-empty) triangle sums to one
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("name,audio", _signals(), ids=lambda v: v if isinstance(v, str) else "")
def test_log_mel_matches_librosa(name, audio):
    ref = _librosa_log_mel(audio)
    ours = frontend.log_mel(audio)
    assert ours.shape == ref.shape == (1 + audio.size // 1024, 96)
    assert ours.dtype == np.float32
    assert float(np.max(np.abs(ours - ref))) <= LIBROSA_TOLERANCE
    assert ours.max() > 0.05          # the comparison saw real energy


@pytest.mark.samples
@pytest.mark.parametrize("chunk", [1, 7, 512, 1024, 4410, None])
def test_streaming_equals_offline(chunk):
    files = _real_files()
    if not files:
        missing_part("no Debian sample files installed")
    audio = _load_mono_44k(files[0])[:60000]
    offline = frontend.power_mel(audio)
    stream = frontend.StreamingMel()
    step = audio.size if chunk is None else chunk
    parts = [stream.push(audio[i:i + step]) for i in range(0, audio.size, step)]
    parts.append(stream.flush())
    streamed = np.concatenate(parts)
    assert streamed.shape == offline.shape
    np.testing.assert_allclose(streamed, offline, rtol=1e-6, atol=1e-12)


def test_streaming_frames_are_emitted_as_soon_as_complete():
    stream = frontend.StreamingMel()
    # frame 0 spans samples [-1024, 1024): complete after 1024 samples
    assert stream.push(np.zeros(1023)).shape[0] == 0
    assert stream.push(np.zeros(1)).shape[0] == 1
    assert stream.push(np.zeros(1024)).shape[0] == 1
    assert stream.flush().shape[0] == 1          # 2048 samples -> 3 frames in total
    # flush resets: a new signal starts from scratch
    assert stream.push(np.zeros(1024)).shape[0] == 1


def test_empty_and_bad_input():
    assert frontend.power_mel(np.zeros(0)).shape == (0, 96)
    assert frontend.StreamingMel().flush().shape == (0, 96)
    with pytest.raises(ValueError, match="mono"):
        frontend.power_mel(np.zeros((100, 2)))
    with pytest.raises(ValueError, match="mono"):
        frontend.StreamingMel().push(np.zeros((100, 2)))


def test_frames_give_the_same_rows_however_many_are_transformed_together():
    rng = np.random.default_rng(7)
    frames = rng.standard_normal((3 * frontend.ROWS_AT_ONCE + 5, frontend.N_FFT))
    together = frontend.frames_to_power_mel(frames)
    one_by_one = np.concatenate([frontend.frames_to_power_mel(frames[i:i + 1]) for i in range(len(frames))])
    assert together.shape == (len(frames), frontend.N_MELS)
    assert np.array_equal(together, one_by_one)
