"""Labels of the Debian sample sets and the benchmark's damage functions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import damage  # noqa: E402
from bench.labels import (  # noqa: E402
    HYDROGEN_ROOT, LMMS_ROOT, SONIC_PI_ROOT, category_from_name, debian_labels,
    hydrogen_kit_labels, list_audio_files, lmms_label, normalise_name, sonic_pi_label,
)
from tests.conftest import missing_part

SR = damage.SAMPLE_RATE


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("name, words", [
    ('Kick (Tama Superstar 22")', ["kick"]),
    ("c#3 - bass drum 1", ["bass", "drum"]),
    ("HiHatClosed-0", ["hi", "hat", "closed"]),
    ("Djembe1 Slap", ["djembe", "slap"]),
    ("17", []),
])
def test_normalise_name(name, words):
    assert normalise_name(name) == words


@pytest.mark.parametrize("name, category", [
    ("BassDrum", "kick"),
    ("c3 - bass drum 1", "kick"),
    ("Pearl Snare Rimshot", "snare"),
    ("Pearl Side Stick", "rim"),
    ("Rim Click (Pearl Free Floating Maple 14x3.5)", "rim"),
    ("Hi-Hat Semiopen (Paiste Alpha Metal edge 14\")", "hihat"),
    ("Closed HH", "hihat"),
    ("VariBreaks Hat 1 Cl", "hihat"),
    ("tomhi2", "tom"),
    ("Floor Tom", "tom"),
    ("Crash/Ride Bell (Paiste Rude Crash/Ride 18\")", "cymbal"),
    ("Zildjian Splash Choke", "cymbal"),
    ("Hand Clap", "clap"),
    ("Finger Snaps", "snap"),
    ("Tambourine Pedal (Pearl PTM-10GH)", "shaker"),
    ("Kenkeni1 Bell Mute", "bell"),
    ("Sangban1 Head Hit", "hand_drum"),
    ("Woodblock Lo", "wood"),
    ("Sample: beats_08-37.flac", None),
    ("WaterglassHi", None),
])
def test_category_from_instrument_name(name, category):
    assert category_from_name(name, drum_context=True) == category


def test_bass_is_a_kick_only_in_a_drum_context():
    assert category_from_name("nasty_bass01", drum_context=True) == "kick"
    assert category_from_name("nasty_bass01", drum_context=False) is None


@pytest.mark.parametrize("filename, strict, coarse", [
    ("bd_808.flac", "kick", "drum"),
    ("sn_dub.flac", "snare", "drum"),
    ("drum_bass_hard.flac", "kick", "drum"),
    ("drum_cymbal_closed.flac", "hihat", "cymbal"),
    ("drum_splash_soft.flac", "cymbal", "cymbal"),
    ("drum_roll.flac", None, None),
    ("elec_hollow_kick.flac", "kick", "drum"),
    ("elec_blip2.flac", "blip", "fx"),
    ("perc_snap.flac", "snap", "percussion"),
    ("perc_door.flac", "fx", "fx"),
    ("loop_amen.flac", "loop", "loop"),
    ("tabla_ghe3.flac", "hand_drum", "percussion"),
    ("ambi_drone.flac", "ambient", "tonal"),
    ("README.flac", None, None),
])
def test_sonic_pi_prefixes(filename, strict, coarse):
    label = sonic_pi_label(SONIC_PI_ROOT / filename)
    assert (label.strict, label.coarse) == (strict, coarse)


@pytest.mark.parametrize("relative, strict", [
    ("drums/bassdrum03.ogg", "kick"),
    ("drums/sidestick01.ogg", "rim"),
    ("drums/snare_rim01.ogg", "snare"),
    ("drums/hihat_foot_pedal01.ogg", "hihat"),
    ("drums/clav01.ogg", "wood"),
    ("basses/bass01.ogg", "bass"),
    ("bassloops/tb303_01.ogg", "bass_loop"),
    ("stringsnpads/strings01.ogg", "pad"),
    ("unknownfolder/x.ogg", None),
])
def test_lmms_folders(relative, strict):
    assert lmms_label(LMMS_ROOT / relative).strict == strict


def test_hydrogen_kit_from_a_written_drumkit_xml(tmp_path):
    kit = tmp_path / "MyKit"
    kit.mkdir()
    (kit / "drumkit.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit"><name>MyKit</name>'
        "<instrumentList>"
        "<instrument><name>Kick (Big 22\")</name><layer><filename>k.wav</filename></layer>"
        "<layer><filename>k2.wav</filename></layer></instrument>"
        "<instrument><name>Tom Hi</name><layer><filename>t.wav</filename></layer></instrument>"
        "<instrument><name>Tom Mid</name><layer><filename>t.wav</filename></layer></instrument>"
        "<instrument><name>Snare</name><layer><filename>shared.wav</filename></layer></instrument>"
        "<instrument><name>Closed HH</name><layer><filename>shared.wav</filename></layer>"
        "</instrument>"
        "<instrument><name>17</name><layer><filename>x.wav</filename></layer></instrument>"
        "</instrumentList></drumkit_info>"
    )
    labels = hydrogen_kit_labels(kit)
    assert labels[kit / "k.wav"].strict == "kick"
    assert labels[kit / "k2.wav"].coarse == "drum"
    assert labels[kit / "t.wav"].strict == "tom"      # two instruments, same category
    assert labels[kit / "shared.wav"].strict is None  # two instruments, conflicting
    assert labels[kit / "x.wav"].strict is None


@pytest.mark.samples
def test_debian_sets_are_mostly_labelled():
    if not (HYDROGEN_ROOT.is_dir() and SONIC_PI_ROOT.is_dir() and LMMS_ROOT.is_dir()):
        missing_part("Debian sample packages are not installed")
    files = list_audio_files()
    labels = debian_labels(files)
    assert len(files) > 1400
    labelled = [label for label in labels.values() if label.strict]
    assert len(labelled) / len(files) > 0.85
    strict = {label.strict for label in labelled}
    assert {"kick", "snare", "hihat", "tom", "cymbal", "clap", "guitar", "loop"} <= strict
    by_name = {path.name: label.strict for path, label in labels.items()}
    assert by_name["bd_808.flac"] == "kick"
    assert by_name["kick01.ogg"] == "kick"


# ---------------------------------------------------------------- damage


def _tone(seconds=1.0, freq=440.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-3 * t)).astype(np.float32)


@pytest.mark.parametrize("condition", damage.CONDITIONS + (damage.EXCERPT_CONDITION,))
def test_conditions_are_deterministic_float32_and_change_the_audio(condition):
    audio = _tone(5.0)
    first = damage.apply_condition(condition, audio, damage.condition_rng(7, condition, 3))
    again = damage.apply_condition(condition, audio, damage.condition_rng(7, condition, 3))
    assert first.dtype == np.float32
    assert np.array_equal(first, again)
    assert np.all(np.isfinite(first))
    n = min(first.size, audio.size)
    assert first.size != audio.size or not np.allclose(first[:n], audio[:n], atol=1e-4)


def test_different_items_get_different_noise():
    audio = _tone()
    a = damage.apply_condition("white_noise", audio, damage.condition_rng(0, "white_noise", 1))
    b = damage.apply_condition("white_noise", audio, damage.condition_rng(0, "white_noise", 2))
    assert not np.allclose(a, b)


def test_gain_is_minus_12_db():
    audio = _tone()
    out = damage.gain(audio)
    ratio_db = 10 * np.log10(damage.mean_power(out) / damage.mean_power(audio))
    assert ratio_db == pytest.approx(-12.0, abs=0.01)


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_noise_is_added_at_the_requested_snr(colour):
    audio = _tone(2.0)
    out = damage.add_noise(audio, 20.0, np.random.default_rng(0), colour)
    noise = out.astype(np.float64) - audio
    snr = 10 * np.log10(damage.mean_power(audio) / damage.mean_power(noise))
    assert snr == pytest.approx(20.0, abs=0.1)


def test_pink_noise_has_a_one_over_f_spectrum():
    noise = damage.pink_noise(1 << 16, np.random.default_rng(0))
    power = np.abs(np.fft.rfft(noise)) ** 2
    bins = np.arange(10, 30000)
    slope = np.polyfit(np.log10(bins), np.log10(power[bins]), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)


def test_room_impulse_response_decays_in_about_04_s_with_0_db_drr():
    for seed in range(3):
        rir = damage.room_impulse_response(np.random.default_rng(seed))
        energy = np.cumsum(rir[::-1] ** 2)[::-1]
        decay_db = 10 * np.log10(energy / energy[0])
        t5, t35 = np.argmax(decay_db < -5), np.argmax(decay_db < -35)
        t30 = 2 * (t35 - t5) / SR
        assert 0.3 < t30 < 0.5
        direct = int(0.002 * SR)
        drr = 10 * np.log10(np.sum(rir[:direct] ** 2) / np.sum(rir[direct:] ** 2))
        assert drr == pytest.approx(0.0, abs=0.5)


def test_reverb_keeps_the_peak_and_adds_the_tail():
    audio = _tone(0.5)
    out = damage.room_reverb(audio, np.random.default_rng(0))
    assert out.size == audio.size + int(round(damage.REVERB_RT60 * SR))
    assert np.max(np.abs(out)) == pytest.approx(np.max(np.abs(audio)), rel=1e-5)


def test_lowpass_removes_high_frequencies_and_keeps_low_ones():
    low, high = _tone(1.0, 1000.0), _tone(1.0, 14000.0)
    assert damage.mean_power(damage.lowpass(low)) == pytest.approx(damage.mean_power(low), rel=0.05)
    assert damage.mean_power(damage.lowpass(high)) < 1e-4 * damage.mean_power(high)


def test_round_trip_keeps_length_and_content():
    audio = _tone(1.0, 1000.0)
    out = damage.round_trip(audio)
    assert out.size == audio.size
    assert np.max(np.abs(out[1000:-1000] - audio[1000:-1000])) < 1e-2


def test_lead_silence_prepends_30_to_80_ms_of_zeros():
    audio = _tone(0.2) + 0.1
    for item in range(20):
        out = damage.lead_silence(audio, damage.condition_rng(0, "lead_silence", item))
        pad = out.size - audio.size
        assert int(0.030 * SR) <= pad <= int(0.080 * SR) + 1
        assert not np.any(out[:pad])
        assert np.array_equal(out[pad:], audio)


def test_excerpt_is_a_two_second_slice():
    audio = np.arange(10 * SR, dtype=np.float32)
    out = damage.excerpt(audio, np.random.default_rng(0))
    assert out.size == 2 * SR
    assert np.array_equal(out, audio[int(out[0]):int(out[0]) + out.size])


def test_light_combo_noise_level_ignores_the_padding():
    audio = _tone(1.0)
    out = damage.apply_condition("light_combo", audio, damage.condition_rng(0, "light_combo", 0))
    pad = out.size - audio.size
    padding_power = damage.mean_power(out[:pad])
    signal_power = damage.mean_power(damage.gain(audio))
    assert 10 * np.log10(signal_power / padding_power) == pytest.approx(20.0, abs=1.5)


def test_unknown_condition_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown damage condition"):
        damage.apply_condition("chorus", _tone(), np.random.default_rng(0))


# ---------------------------------------------------------------- benchmark scoring


def _toy_library(blocks):
    from bench.retrieval import Embedded
    vectors = np.concatenate(blocks).astype(np.float32)
    starts = np.cumsum([0] + [b.shape[0] for b in blocks]).astype(np.int64)
    return Embedded([], vectors, starts)


def test_file_score_is_the_best_window_pair():
    from bench.retrieval import file_scores
    e = np.eye(4, dtype=np.float32)
    lib = _toy_library([e[[0, 1]], e[[2]], np.zeros((0, 4), np.float32), e[[3]]])
    scores = file_scores(e[[1, 2]] * 0.5 + e[[3, 3]] * 0.1, lib, 4)
    assert scores[0] == pytest.approx(0.5) and scores[1] == pytest.approx(0.5)
    assert scores[2] == -np.inf
    assert scores[3] == pytest.approx(0.1)


def test_rank_counts_ties_against_the_query_and_accepts_level_twins():
    from bench.retrieval import rank_of
    scores = np.array([0.9, 0.9, 0.95, 0.1])
    assert rank_of(scores, 0) == 3                     # the tie and the better file first
    assert rank_of(scores, 0, twins=[2]) == 1          # its twin is the best file
    assert rank_of(np.array([-np.inf, 0.2]), 0) == 3   # no vectors: never found


def test_level_twins_group_gain_copies_only(tmp_path):
    import soundfile as sf
    from bench.retrieval import LibraryFile, level_twins
    rng = np.random.default_rng(0)
    base = (0.3 * rng.standard_normal(4410)).astype(np.float32)
    other = (0.3 * rng.standard_normal(4410)).astype(np.float32)
    clips = {"a.wav": base, "b.wav": 0.25 * base, "c.wav": other, "d.wav": base[:4000]}
    files = []
    for name, audio in clips.items():
        path = tmp_path / name
        sf.write(path, audio, SR, subtype="FLOAT")
        files.append(LibraryFile(path, 0, 0, name, None, None, n_samples=audio.size))
    assert level_twins(files) == [[0, 1]]


def test_category_precision_on_a_toy_library():
    from bench.retrieval import LibraryFile, category_precision
    rng = np.random.default_rng(0)
    centres = {"kick": rng.standard_normal(8), "snare": rng.standard_normal(8)}
    blocks, files = [], []
    for i, category in enumerate(["kick"] * 12 + ["snare"] * 3):
        v = centres[category] + 0.01 * rng.standard_normal(8)
        blocks.append((v / np.linalg.norm(v))[None, :])
        files.append(LibraryFile(Path(f"{i}.wav"), 0, 0, str(i), category, "drum"))
    lib = _toy_library(blocks)
    usable = np.ones(len(files), dtype=bool)
    result = category_precision(lib, files, usable, "strict", twins={})
    assert result["per_category"]["kick"]["p_at_10"] == pytest.approx(1.0)
    # a snare has only 2 other snares: its 10 neighbours hold at most 2 of them
    assert result["per_category"]["snare"]["p_at_10"] == pytest.approx(0.2)
    assert result["macro"] == pytest.approx(0.6)
    assert result["micro"] == pytest.approx((12 * 1.0 + 3 * 0.2) / 15)
    # with its twins excluded, kick 0 loses two same-category neighbours
    twin_result = category_precision(lib, files, usable, "strict", twins={0: [1, 2]})
    assert twin_result["micro"] < result["micro"]
