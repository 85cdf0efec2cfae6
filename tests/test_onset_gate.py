"""The onset gate of the pre-processing recipe: level gate plus the noise lead-in rule."""

import pathlib

import numpy as np
import pytest

from app.decode import read_mono
from models import preprocess
from models.preprocess import GATE_LOOKAHEAD, GATE_PRE_ROLL, GATE_QUIET_KEEP, GATE_WINDOW, OnsetGate
from tests.conftest import missing_part

SR = preprocess.MODEL_SAMPLE_RATE
HYDROGEN = pathlib.Path("/usr/share/hydrogen/data/drumkits")
CHUNK_SIZES = [1, 7, 44, 441, 1000, 8820, 8821, 44100]


def _gate_offset(audio: np.ndarray, chunk: int | None = None) -> tuple[int, np.ndarray]:
    gate = OnsetGate()
    chunk = chunk or audio.size
    passed = [gate.push(audio[i:i + chunk]) for i in range(0, audio.size, chunk)]
    passed.append(gate.finish())
    return gate.offset, np.concatenate(passed)


def _hit(rng: np.random.Generator, seconds: float = 0.4) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    return (0.5 * np.exp(-t / 0.05) * (np.sin(2 * np.pi * 180 * t) + 0.3 * rng.standard_normal(n)))


def _noise(rng: np.random.Generator, seconds: float, dbfs: float) -> np.ndarray:
    return rng.standard_normal(int(seconds * SR)) * 10 ** (dbfs / 20)


def test_digital_silence_lead_is_trimmed_to_the_pre_roll():
    rng = np.random.default_rng(1)
    audio = np.concatenate([np.zeros(3000), _hit(rng)])
    offset, passed = _gate_offset(audio)
    # the start is the first 1 ms window within 30 dB of the loudest: a few samples in
    assert 3000 - GATE_PRE_ROLL <= offset <= 3000 - GATE_PRE_ROLL + GATE_WINDOW
    np.testing.assert_array_equal(passed, audio[offset:])


@pytest.mark.parametrize("lead_ms", [30, 80, 150])
def test_noise_lead_in_moves_the_onset_to_the_sound(lead_ms):
    rng = np.random.default_rng(lead_ms)
    lead = int(lead_ms * SR / 1000)
    audio = np.concatenate([_noise(rng, lead_ms / 1000, -45.0), _hit(rng)])
    audio[lead:] += _noise(rng, audio.size / SR, -45.0)[: audio.size - lead]
    offset, passed = _gate_offset(audio)
    # the level gate alone would open within the first millisecond of noise
    assert lead - GATE_PRE_ROLL <= offset <= lead - GATE_PRE_ROLL + 44
    np.testing.assert_array_equal(passed, audio[offset:])


def test_steady_noise_without_a_rise_keeps_the_level_onset():
    rng = np.random.default_rng(3)
    audio = _noise(rng, 1.0, -40.0)
    offset, _ = _gate_offset(audio)
    assert offset == 0


def test_a_hit_that_starts_at_once_is_not_moved_to_a_later_louder_part():
    rng = np.random.default_rng(4)
    hit = _hit(rng)
    later = np.zeros_like(hit)
    later[4000:4000 + hit.size // 2] = 4 * hit[: hit.size // 2]    # +12 dB, 90 ms later
    audio = np.concatenate([np.zeros(500), hit + later])
    offset, _ = _gate_offset(audio)
    assert 500 - GATE_PRE_ROLL <= offset <= 500 - GATE_PRE_ROLL + GATE_WINDOW


@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_streamed_gate_equals_one_push(chunk):
    rng = np.random.default_rng(5)
    audio = np.concatenate([np.zeros(700), _noise(rng, 0.06, -50.0), _hit(rng)])
    whole_offset, whole = _gate_offset(audio)
    offset, passed = _gate_offset(audio, chunk)
    assert offset == whole_offset
    np.testing.assert_array_equal(passed, whole)


@pytest.mark.parametrize("chunk", [1, 100, 3000])
def test_clip_shorter_than_the_look_ahead_is_decided_at_the_end(chunk):
    rng = np.random.default_rng(6)
    audio = np.concatenate([_noise(rng, 0.03, -50.0), _hit(rng, 0.05)])
    assert audio.size < GATE_LOOKAHEAD
    offset, passed = _gate_offset(audio, chunk)
    assert abs(offset - (int(0.03 * SR) - GATE_PRE_ROLL)) <= 44
    assert passed.size == audio.size - offset
    blocks = preprocess.clip_blocks(audio.astype(np.float32))
    assert len(blocks) == 1 and blocks[0].start_sample == offset


def test_silence_never_opens():
    gate = OnsetGate()
    assert gate.push(np.zeros(50_000)).size == 0
    assert gate.finish().size == 0
    assert not gate.is_open


def test_noise_below_the_silence_floor_gives_nothing():
    rng = np.random.default_rng(8)
    offset, passed = _gate_offset(np.clip(_noise(rng, 1.0, -100.0), -1e-4, 1e-4))
    assert passed.size == 0


@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_quiet_hit_starts_where_the_same_hit_starts_at_normal_level(chunk):
    """A hit that never reaches -60 dBFS (here its loudest 1 ms is at about -66 dBFS) is gated
    relative to its own level: same start, same blocks as at normal level, streamed or not."""
    rng = np.random.default_rng(9)
    loud = np.concatenate([np.zeros(4000), _hit(rng, 0.6)])
    quiet = loud * 10 ** (-60 / 20)
    assert np.max(np.convolve(quiet ** 2, np.ones(GATE_WINDOW) / GATE_WINDOW)) < 1e-6   # below -60 dBFS
    loud_offset, _ = _gate_offset(loud)
    quiet_offset, passed = _gate_offset(quiet, chunk)
    assert passed.size > 0 and quiet_offset == loud_offset
    np.testing.assert_array_equal(passed, quiet[quiet_offset:])
    loud_blocks = preprocess.clip_blocks(loud.astype(np.float32))
    quiet_blocks = preprocess.clip_blocks(quiet.astype(np.float32))
    assert len(quiet_blocks) == len(loud_blocks) >= 1
    np.testing.assert_allclose(quiet_blocks[0].log_mel, loud_blocks[0].log_mel, atol=1e-4)


def test_quiet_clip_keeps_its_first_thirty_seconds_only():
    rng = np.random.default_rng(10)
    quiet = _noise(rng, 31.0, -75.0)
    gate = OnsetGate()
    for i in range(0, quiet.size, 44100):
        assert gate.push(quiet[i:i + 44100]).size == 0
    passed = gate.finish()
    assert gate.is_open and passed.size == GATE_QUIET_KEEP - gate.offset
    np.testing.assert_array_equal(passed, quiet[gate.offset:GATE_QUIET_KEEP])


def test_a_quiet_start_before_a_loud_sound_is_not_kept():
    rng = np.random.default_rng(11)
    audio = np.concatenate([_noise(rng, 2.0, -75.0), _hit(rng)])
    offset, passed = _gate_offset(audio, 4410)
    assert offset >= 2 * SR - GATE_PRE_ROLL - GATE_WINDOW
    np.testing.assert_array_equal(passed, audio[offset:])


@pytest.mark.samples
def test_real_snare_under_room_tone_is_aligned_with_its_clean_self():
    hits = sorted(HYDROGEN.glob("*/*nare*.wav")) + sorted(HYDROGEN.glob("*/*nare*.flac"))
    if not hits:
        missing_part("hydrogen-drumkits not installed")
    clean = read_mono(hits[0], SR).astype(np.float64)
    clean_offset, _ = _gate_offset(clean)
    rng = np.random.default_rng(7)
    lead = int(0.05 * SR)
    noise_db = 10 * np.log10(np.mean(clean ** 2)) - 25.0
    noisy = np.concatenate([np.zeros(lead), clean]) + _noise(rng, (lead + clean.size) / SR, noise_db)[: lead + clean.size]
    noisy_offset, _ = _gate_offset(noisy)
    # within one frame hop (1024 samples) of the clean start, not at the noise start
    assert abs((noisy_offset - lead) - clean_offset) < 1024


def _soft_start_strum(rng: np.random.Generator) -> np.ndarray:
    """A steady soft start (-27 dB) that builds to picks about 15 dB louder: the borderline case."""
    n = int(0.6 * SR)
    t = np.arange(n) / SR
    body = 0.045 * np.sin(2 * np.pi * 196 * t) * (1 + 0.1 * rng.standard_normal(n))
    picks = np.zeros(n)
    for k, at in enumerate((0.035, 0.06, 0.09)):
        i = int(at * SR)
        picks[i:] += (0.25 + 0.05 * k) * np.exp(-(t[i:] - at) / 0.08) * np.sin(2 * np.pi * 247 * (t[i:] - at))
    return body + picks


@pytest.mark.parametrize("case", ["hit", "noise_lead", "soft_start", "ghost_note"])
def test_the_start_does_not_depend_on_gain(case):
    rng = np.random.default_rng(11)
    if case == "hit":
        audio = np.concatenate([np.zeros(900), _hit(rng)])
    elif case == "noise_lead":
        audio = np.concatenate([_noise(rng, 0.05, -45.0), _hit(rng)])
    elif case == "soft_start":
        audio = np.concatenate([np.zeros(300), _soft_start_strum(rng)])
    else:
        ghost = 0.1 * _hit(rng, 0.08)
        audio = np.concatenate([np.zeros(300), ghost, _hit(rng)])
    offsets = {db: _gate_offset(audio * 10 ** (db / 20))[0] for db in (0, -6, -12, -20)}
    assert len(set(offsets.values())) == 1, offsets


def _hydrogen_hits(per_format: int):
    """(path, mono float64 audio) of the first Hydrogen FLAC and WAV files that hold sound."""
    files = sorted(HYDROGEN.glob("*/*.flac"))[:per_format] + sorted(HYDROGEN.glob("*/*.wav"))[:per_format]
    if not files:
        missing_part("hydrogen-drumkits not installed")
    for path in files:
        clean = read_mono(path, SR).astype(np.float64)
        if np.any(clean):
            yield path, clean


@pytest.mark.samples
def test_real_samples_start_at_the_same_place_at_minus_12_db():
    moved, checked = [], 0
    for path, clean in _hydrogen_hits(60):
        checked += 1
        shift = abs(_gate_offset(clean)[0] - _gate_offset(clean * 10 ** (-12 / 20))[0])
        # a few samples move with the -60 dBFS gate; half a frame hop (512) would change the blocks
        if shift >= 512:
            moved.append((path.name, shift))
    assert checked > 50
    assert not moved, moved


@pytest.mark.samples
def test_real_samples_below_the_level_gate_start_where_they_start_at_full_level():
    """Real Hydrogen hits turned down until no 1 ms reaches -60 dBFS (loudest 1 ms at -66 dBFS)
    still give blocks, starting within half a frame hop of the full-level start."""
    moved, checked = [], 0
    for path, clean in _hydrogen_hits(40):
        loudest = np.max(np.convolve(clean ** 2, np.ones(GATE_WINDOW) / GATE_WINDOW, mode="valid"))
        quiet = clean * np.sqrt(10 ** (-66 / 10) / loudest)
        offset, passed = _gate_offset(quiet, 4410)
        assert passed.size > 0, path.name
        checked += 1
        shift = abs(offset - _gate_offset(clean)[0])
        if shift >= 512:
            moved.append((path.name, shift))
    assert checked > 50
    assert not moved, moved
