"""The ONNX encoder: API, pre-processing rules and streaming parity on real samples."""

import pathlib

import numpy as np
import pytest

from app.decode import read_mono
from models import encoder as enc
from models import preprocess
from tests.shipped import SCOUT_MODEL_ID
from tests.conftest import missing_part

SONIC_PI = pathlib.Path("/usr/share/sonic-pi/samples")
HYDROGEN = pathlib.Path("/usr/share/hydrogen/data/drumkits")
SR = enc.MODEL_SAMPLE_RATE
AISFX = pathlib.Path(enc.__file__).parent / enc.SHIPPED_MODELS["aisfx"]
CHUNK_SIZES = [1, 7, 256, 512, 1000, 4410, 44100]


@pytest.fixture(scope="module")
def encoder():
    return enc.Encoder(AISFX)


def _sample(kind: str) -> np.ndarray:
    if kind == "loop":
        path = SONIC_PI / "loop_amen.flac"
    else:
        hits = sorted(HYDROGEN.glob("*/*snare*.wav")) + sorted(HYDROGEN.glob("*/*.flac"))
        path = hits[0] if hits else pathlib.Path("/nonexistent")
    if not path.is_file():
        missing_part(f"Debian sample file missing: {path}")
    return read_mono(path, SR)


def _streamed(encoder, audio, chunk, **kwargs):
    streamer = encoder.stream(**kwargs)
    out = []
    for i in range(0, audio.size, chunk):
        out += streamer.push(audio[i:i + chunk])
    return out + streamer.flush()


def test_model_identity(encoder):
    assert encoder.network_id == "aisfx-int8-1"
    assert encoder.model_id == f"aisfx-int8-1/r{preprocess.RECIPE_VERSION}"
    assert encoder.dim == 512
    assert enc.default_model_path().is_file()


def test_model_choice_default_name_and_path(monkeypatch, tmp_path):
    monkeypatch.delenv(enc.MODEL_ENV, raising=False)
    assert enc.Encoder().network_id == SCOUT_MODEL_ID
    monkeypatch.setenv(enc.MODEL_ENV, "aisfx")
    assert enc.Encoder().network_id == "aisfx-int8-1"
    monkeypatch.setenv(enc.MODEL_ENV, str(AISFX))
    assert enc.default_model_path() == AISFX
    monkeypatch.setenv(enc.MODEL_ENV, str(tmp_path / "nope.onnx"))
    with pytest.raises(enc.EncoderError, match="not found"):
        enc.Encoder()
    assert (enc.BLOCK_FRAMES, enc.HOP_FRAMES, enc.MIN_FRAMES, enc.MODEL_SAMPLE_RATE) == (100, 50, 8, 44100)


def test_embed_blocks_unit_norm_and_batch_independent(encoder):
    rng = np.random.default_rng(0)
    blocks = rng.uniform(0.0, 0.8, (3, 100, 96)).astype(np.float32)
    out = encoder.embed_blocks(blocks)
    assert out.shape == (3, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    one = encoder.embed_blocks(blocks[1:2])
    np.testing.assert_allclose(one[0], out[1], atol=1e-5)
    assert encoder.embed_blocks(np.zeros((0, 100, 96), np.float32)).shape == (0, 512)
    with pytest.raises(ValueError, match="100, 96"):
        encoder.embed_blocks(np.zeros((1, 50, 96), np.float32))


@pytest.mark.samples
@pytest.mark.parametrize("kind", ["loop", "hit"])
def test_streaming_equals_embed_clip(encoder, kind):
    audio = _sample(kind)
    # leading silence exercises the gate and the start_sample bookkeeping
    audio = np.concatenate([np.zeros(3000, np.float32), audio])
    whole = encoder.embed_clip(audio)
    assert whole.shape[0] >= 1
    reference = _streamed(encoder, audio, audio.size)
    assert len(reference) == whole.shape[0]
    for chunk in CHUNK_SIZES:
        streamed = _streamed(encoder, audio, chunk)
        assert [(e.start_frame, e.start_sample) for e in streamed] == \
            [(e.start_frame, e.start_sample) for e in reference], chunk
        got = np.stack([e.vector for e in streamed])
        np.testing.assert_allclose(got, whole, atol=1e-5, err_msg=f"chunk size {chunk}")
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)
    # the gate dropped most of the 3000 zeros, keeping 5 ms before the onset
    assert 0 < reference[0].start_sample <= 3000
    assert reference[0].start_frame == 0


@pytest.mark.samples
def test_long_clip_block_layout(encoder):
    audio = _sample("loop")
    audio = np.concatenate([audio, audio, audio])   # ~5.3 s -> 229 frames after trimming
    embeddings = _streamed(encoder, audio, 4096)
    starts = [e.start_frame for e in embeddings]
    n_samples = audio.size - embeddings[0].start_sample
    n_frames = 1 + n_samples // 1024
    full = list(range(0, n_frames - 100 + 1, 50))
    expected = full + ([full[-1] + 50] if full[-1] + 100 < n_frames else [])
    assert starts == expected
    for e in embeddings:
        assert e.start_sample == embeddings[0].start_sample + e.start_frame * 1024


def test_very_short_clip_gives_one_sane_vector(encoder):
    rng = np.random.default_rng(3)
    click = (0.5 * rng.standard_normal(int(0.003 * SR))).astype(np.float32)   # 3 ms
    out = encoder.embed_clip(click)
    assert out.shape == (1, 512)
    assert np.all(np.isfinite(out))
    assert abs(np.linalg.norm(out[0]) - 1.0) < 1e-5
    # padded to MIN_FRAMES real frames: the block has 8 frames of data, then zeros
    (block,) = preprocess.clip_blocks(click)
    assert np.all(block.log_mel[preprocess.MIN_FRAMES:] == 0.0)
    assert block.log_mel[0].max() > 0.0


def test_silence_gives_no_embedding(encoder):
    silence = np.zeros(3 * SR, np.float32)
    assert encoder.embed_clip(silence).shape == (0, 512)
    assert encoder.embed_clip(silence, trim_leading_silence=False).shape == (0, 512)
    hiss = (1e-6 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    assert encoder.embed_clip(hiss, trim_leading_silence=False).shape == (0, 512)
    assert encoder.embed_clip(np.zeros(0, np.float32)).shape == (0, 512)


def test_level_normalisation_makes_gain_irrelevant(encoder):
    rng = np.random.default_rng(5)
    t = np.arange(SR) / SR
    tone = (np.sin(2 * np.pi * 220 * t) * np.exp(-4 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    loud = encoder.embed_clip(0.9 * tone)
    quiet = encoder.embed_clip(0.02 * tone)
    assert loud.shape == quiet.shape == (1, 512)
    assert float(loud[0] @ quiet[0]) > 0.999
    # below the -60 dBFS level gate (peak about -65 dBFS): gated relative to its own level
    very_quiet = encoder.embed_clip(np.float32(10 ** (-65 / 20)) * tone)
    assert very_quiet.shape == (1, 512)
    assert float(loud[0] @ very_quiet[0]) > 0.99


def test_bad_audio_is_rejected(encoder):
    with pytest.raises(ValueError, match="mono"):
        encoder.embed_clip(np.zeros((1000, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        encoder.embed_clip(np.full(1000, np.nan, np.float32))
    with pytest.raises(ValueError, match="floating"):
        encoder.embed_clip(np.zeros(1000, np.int16))


def test_missing_model_file(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(enc.EncoderError, match="not found"):
        enc.Encoder(missing)


def test_corrupt_model_file(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(enc.default_model_path().read_bytes()[:5000])
    with pytest.raises(enc.EncoderError, match="not a usable ONNX model"):
        enc.Encoder(broken)
    text = tmp_path / "text.onnx"
    text.write_text("hello")
    with pytest.raises(enc.EncoderError, match=str(text.name)):
        enc.Encoder(text)
