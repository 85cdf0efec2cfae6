"""``samplescout detect`` on a track built here from real Debian samples: a Sonic Pi loop
played two semitones up, another at 0.9 speed and a Hydrogen snare, each mixed 6 dB under
other real audio, are found at their places (±0.5 s) and speeds."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import soxr

from app.cli import main
from app.library import Library
from app.scanner import Scanner
from tests.conftest import HYDROGEN, LMMS, SONIC_PI, require

RATE = 44100
LIBRARY = ["loop_amen", "loop_breakbeat", "loop_compus", "loop_mehackit1", "loop_perc1",
           "loop_industrial", "bd_haus", "bd_808", "drum_snare_hard", "elec_bell", "ambi_piano",
           "guit_em9", "perc_bell", "bass_hit_c", "drum_cymbal_open", "elec_blip"]
SNARE = HYDROGEN / "The Black Pearl 1.0" / "PearlSnare-Hard.wav"
BACKGROUND = ["loop_garzul", "loop_mika", "loop_safari"]   # not in the library
SHOTS_UNDER_DB = 8.0   # how far the one-shots lie under the LMMS parts


def _mono(path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    return mono if rate == RATE else soxr.resample(mono, rate, RATE)


def _at_speed(audio: np.ndarray, speed: float) -> np.ndarray:
    """Played ``speed`` times faster (pitch and tempo together), as a sampler does."""
    return soxr.resample(audio, RATE * speed, RATE)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


def build_track(path) -> dict[str, tuple[float, float]]:
    """Writes the track; returns {library name: (start_s, speed)}."""
    background = np.concatenate([_mono(SONIC_PI / f"{n}.flac") for n in BACKGROUND])[:24 * RATE]
    track = background / _rms(background) * 0.1
    placed = {"loop_amen": (3.0, 2 ** (2 / 12)), "loop_breakbeat": (10.0, 0.9),
              SNARE.stem: (17.0, 1.0)}
    for name, (start, speed) in placed.items():
        source = SNARE if name == SNARE.stem else SONIC_PI / f"{name}.flac"
        part = _at_speed(_mono(source), speed)
        gain = 0.1 * 10 ** (-6 / 20) / _rms(part[:int(0.5 * RATE)] if name == SNARE.stem else part)
        at = int(start * RATE)
        track[at:at + part.size] += part * gain
    track *= 0.5 / np.max(np.abs(track))
    sf.write(path, track, RATE, subtype="PCM_16")
    return placed


@pytest.fixture
def library(tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    require(SNARE.parent, "hydrogen-drumkits")
    root = tmp_path / "samples"
    root.mkdir()
    for name in LIBRARY:
        shutil.copyfile(SONIC_PI / f"{name}.flac", root / f"{name}.flac")
    shutil.copyfile(SNARE, root / SNARE.name)
    shutil.copyfile(SNARE.parent / "PearlSnare-Soft.wav", root / "PearlSnare-Soft.wav")
    library_dir = tmp_path / "lib"
    with Library(library_dir) as lib:
        Scanner(lib, workers=1).scan([str(root)])
    return library_dir, root


def test_detect_finds_pitched_stretched_and_mixed_samples_at_their_place(library, tmp_path, capsys):
    library_dir, root = library
    track = tmp_path / "track.wav"
    placed = build_track(track)
    assert main(["detect", "--json", "--library-dir", str(library_dir), str(track)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["track"] == str(track)
    found = {d["path"]: d for d in result["detections"][:10]}
    for name, (start, speed) in placed.items():
        path = str(next(root.glob(f"{name}.*")))
        assert path in found, (name, list(found))
        detection = found[path]
        starts = [o["start_s"] for o in detection["occurrences"]]
        assert min(abs(s - start) for s in starts) <= 0.5, (name, starts)
        if speed != 1.0:
            assert detection["tempo_ratio"] == pytest.approx(speed, abs=0.03), name
            assert detection["pitch_semitones"] == pytest.approx(12 * np.log2(speed), abs=0.6), name


def test_repeats_of_one_sample_are_one_entry_with_every_occurrence(library, tmp_path, capsys):
    library_dir, root = library
    amen = _mono(SONIC_PI / "loop_amen.flac")
    background = np.tile(_mono(SONIC_PI / "loop_garzul.flac"), 2)[:16 * RATE] * 0.2
    track = background.copy()
    for start in (1.0, 6.0, 11.0):
        at = int(start * RATE)
        track[at:at + amen.size] += amen * 0.5
    path = tmp_path / "repeats.wav"
    sf.write(path, track / np.max(np.abs(track)) * 0.5, RATE, subtype="PCM_16")
    assert main(["detect", "--json", "--library-dir", str(library_dir), str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    entries = [d for d in result["detections"] if d["path"].endswith("loop_amen.flac")]
    assert len(entries) == 1
    starts = sorted(o["start_s"] for o in entries[0]["occurrences"] if o["score"] >= 0.8)
    assert len(starts) == 3 and np.allclose(starts, [1.0, 6.0, 11.0], atol=0.5), starts


def _lmms_background(seconds: float) -> np.ndarray:
    """Four LMMS parts (two beats, two bass loops; none in the library) at equal power."""
    names = ["beats/house_loop01.ogg", "beats/909beat01.ogg", "bassloops/briff01.ogg",
             "bassloops/techno_bass01.ogg"]
    track = np.zeros(int(seconds * RATE), np.float32)
    for name in names:
        part = _mono(LMMS / name)
        part = np.tile(part, int(np.ceil(track.size / part.size)))[:track.size]
        track += part / _rms(part) * 0.05
    return track


def test_loops_pitched_and_stretched_under_a_dense_mix_are_found_at_their_start(library, tmp_path, capsys):
    """Two loops, one 2 semitones up and one at 1.1 tempo, each 6 dB under four other real
    parts (two beats, two bass loops): both among the first 10, each with an occurrence
    within 0.5 s of where it was placed. Ranking by raw similarity lost them under such a
    mix (every drum loop of the library scores high against every block of it)."""
    require(LMMS / "beats", "lmms-common")
    library_dir, root = library
    track = _lmms_background(24.0)
    placed = {"loop_compus": (3.3, 2 ** (2 / 12)), "loop_perc1": (13.7, 1.1)}
    for name, (start, speed) in placed.items():
        part = _at_speed(_mono(SONIC_PI / f"{name}.flac"), speed)
        at = int(start * RATE)
        track[at:at + part.size] += part * (0.1 * 10 ** (-6 / 20) / _rms(part))
    path = tmp_path / "mix.wav"
    sf.write(path, track * (0.5 / np.max(np.abs(track))), RATE, subtype="PCM_16")
    assert main(["detect", "--json", "-n", "10", "--library-dir", str(library_dir), str(path)]) == 0
    found = {d["path"]: d for d in json.loads(capsys.readouterr().out)["detections"]}
    for name, (start, speed) in placed.items():
        entry = found.get(str(root / f"{name}.flac"))
        assert entry is not None, (name, [os.path.basename(p) for p in found])
        starts = [o["start_s"] for o in entry["occurrences"]]
        assert min(abs(s - start) for s in starts) <= 0.5, (name, starts)
        assert entry["tempo_ratio"] == pytest.approx(speed, abs=0.03), name


def test_distinct_places_keep_the_best_hit_of_each_place_in_order_up_to_the_limit():
    from app.detect import MERGE_SECONDS, distinct_places
    anchors = [5.0, 5.3, -0.2, 9.0, 5.0 + MERGE_SECONDS * 1.01, 0.4, 12.0]
    # -0.2 counts as 0.0; 0.4 lies within MERGE_SECONDS of it; 5.3 of 5.0
    assert distinct_places(anchors) == [5.0, 0.0, 9.0, 5.0 + MERGE_SECONDS * 1.01, 12.0]
    assert distinct_places(anchors, limit=2) == [5.0, 0.0]
    assert distinct_places([]) == []


def test_detection_on_threads_equals_detection_on_one(library, tmp_path):
    """The stages' threads change the time only: the same detections, places and scores
    with one worker and with three."""
    from app import detect
    library_dir, _ = library
    track = tmp_path / "track.wav"
    build_track(track)
    with Library(library_dir) as lib:
        one = [d.as_dict() for d in detect.detect(lib, track, workers=1)]
        three = [d.as_dict() for d in detect.detect(lib, track, workers=3)]
    assert one and one == three


def test_detection_runs_on_worker_threads_and_on_fewer_while_a_live_session_runs(library, tmp_path,
                                                                                  monkeypatch):
    """The heavy stages use the cores; while a live session runs in the process they keep
    to the scan's share (app.priority.scan_workers), so the audio keeps its headroom. The
    threads are seen by recording which thread reads each candidate sound (the real reader
    runs)."""
    import threading

    from app import detect
    from app.priority import live_session, scan_workers
    library_dir, _ = library
    track = tmp_path / "track.wav"
    build_track(track)
    names: list[str] = []
    read_sound = detect._sound

    def recorded(row, solo=False):
        names.append(threading.current_thread().name)
        return read_sound(row, solo)
    monkeypatch.setattr(detect, "_sound", recorded)
    cores = os.cpu_count() or 1
    with Library(library_dir) as lib:
        assert detect.default_workers() == cores
        detect.detect(lib, track, workers=2)
        assert names and all(n.startswith("detect") for n in names), set(names)
        names.clear()
        with live_session():
            assert detect.default_workers() == scan_workers(cores)
            if cores >= 2:
                assert detect.default_workers() < cores
            detect.detect(lib, track)
        if scan_workers(cores) == 1:        # one thread: the calling one
            assert set(names) == {threading.current_thread().name}


def test_one_shots_played_once_under_a_repeating_mix_are_found_at_their_place(library, tmp_path, capsys):
    """Three one-shots, pitched up, down and not at all, each 8 dB under the four LMMS parts
    (over its first 0.5 s): each among the first 10 within 0.5 s of where it was played.
    They are found in the track's foreground (``app.foreground``): the parts repeat, the
    one-shots do not. Without the foreground the open cymbal is not found."""
    require(LMMS / "beats", "lmms-common")
    library_dir, root = library
    track = _lmms_background(24.0)
    placed = {"elec_bell": (4.2, 2 ** (1 / 12)), "drum_cymbal_open": (11.6, 2 ** (-2 / 12)),
              SNARE.stem: (18.3, 1.0)}
    for name, (start, speed) in placed.items():
        part = _at_speed(_mono(SNARE if name == SNARE.stem else SONIC_PI / f"{name}.flac"), speed)
        part = part[:int(1.5 * RATE)]
        at = int(start * RATE)
        track[at:at + part.size] += part * (0.1 * 10 ** (-SHOTS_UNDER_DB / 20) / _rms(part[:int(0.5 * RATE)]))
    path = tmp_path / "shots.wav"
    sf.write(path, track * (0.5 / np.max(np.abs(track))), RATE, subtype="PCM_16")
    assert main(["detect", "--json", "--library-dir", str(library_dir), str(path)]) == 0
    found = {d["path"]: d for d in json.loads(capsys.readouterr().out)["detections"][:10]}
    for name, (start, _) in placed.items():
        path = str(next(root.glob(f"{name}.*")))
        assert path in found, (name, [os.path.basename(p) for p in found])
        starts = [o["start_s"] for o in found[path]["occurrences"]]
        assert min(abs(s - start) for s in starts) <= 0.5, (name, starts)


COLOMBO = HYDROGEN / "ColomboAcousticDrumkit"
HATS_LIBRARY = ["hihat-closed-1", "hihat-closed-4", "hihat-closed-6", "hihat-open-1",
                "hihat-semi-open-1", "hihat-semi-open-2", "crash16i__ride2", "tom-hi-1", "stick-rim-9"]


def test_hats_and_cymbals_are_fitted_on_their_high_band_and_snares_and_kicks_on_the_full_band():
    """Which band the foreground lane fits a sound on (``band_of``): hats and cymbals 4 kHz
    up, a dull electronic hat 2 kHz up, drums with their body lower down on all of it."""
    require(COLOMBO, "hydrogen-drumkits")
    from app.detect_fit import HIGH_BANDS, band_of

    def band(path):
        found = band_of(_mono(path)[:RATE // 2], RATE)
        return None if found is None else found.cutoff_hz

    top = HIGH_BANDS[0].cutoff_hz
    assert all(band(COLOMBO / f"{n}.flac") == top for n in ("hihat-closed-1", "hihat-open-1", "hihat-semi-open-2"))
    assert band(SONIC_PI / "drum_cymbal_closed.flac") == top
    assert band(HYDROGEN / "HardElectro1" / "PowR_HH_2.flac") == HIGH_BANDS[1].cutoff_hz
    assert all(band(p) is None for p in (SONIC_PI / "bd_haus.flac", SONIC_PI / "drum_snare_hard.flac",
                                         SNARE, COLOMBO / "tom-hi-1.flac"))


def test_hats_under_a_dense_mix_are_found_at_their_place_among_the_kits_other_hats(tmp_path, capsys):
    """Two hats of one kit, one at 1.1 speed and one a semitone down, each 6 dB under four
    LMMS parts, against a library holding the kit's other hats and cymbals: both found at
    their place and speed, above every other hat. At the full fit's 11 kHz a hat keeps
    little but noise under the mix's bass and drums; without its high band (4-11 kHz) the
    half-open hat was not among the first 10."""
    require(COLOMBO, "hydrogen-drumkits")
    require(LMMS / "beats", "lmms-common")
    root = tmp_path / "samples"
    root.mkdir()
    for name in HATS_LIBRARY:
        shutil.copyfile(COLOMBO / f"{name}.flac", root / f"{name}.flac")
    for name in ("drum_cymbal_closed", "drum_cymbal_pedal", "drum_snare_hard", "bd_haus", "loop_amen"):
        shutil.copyfile(SONIC_PI / f"{name}.flac", root / f"{name}.flac")
    library_dir = tmp_path / "lib"
    with Library(library_dir) as lib:
        Scanner(lib, workers=1).scan([str(root)])
    track = _lmms_background(24.0)
    placed = {"hihat-semi-open-2": (5.3, 1.1), "hihat-closed-6": (15.2, 2 ** (-1 / 12))}
    for name, (start, speed) in placed.items():
        part = _at_speed(_mono(COLOMBO / f"{name}.flac"), speed)
        at = int(start * RATE)
        track[at:at + part.size] += part * (0.1 * 10 ** (-6 / 20) / _rms(part[:int(0.5 * RATE)]))
    path = tmp_path / "hats.wav"
    sf.write(path, track * (0.5 / np.max(np.abs(track))), RATE, subtype="PCM_16")
    assert main(["detect", "--json", "-n", "10", "--library-dir", str(library_dir), str(path)]) == 0
    detections = json.loads(capsys.readouterr().out)["detections"]
    names = [os.path.basename(d["path"]).rsplit(".", 1)[0] for d in detections]
    for name, (start, speed) in placed.items():
        assert name in names, (name, names)
        entry = detections[names.index(name)]
        assert min(abs(o["start_s"] - start) for o in entry["occurrences"]) <= 0.5, (name, entry)
        assert entry["tempo_ratio"] == pytest.approx(speed, abs=0.03), name
        others = [n for n in names if n.startswith("hihat") and n not in placed]
        assert all(names.index(name) < names.index(o) for o in others), (name, names)


def test_a_loop_of_repeating_bars_is_placed_at_its_start_not_a_bar_early():
    """A loop of four equal two-second bars (Sonic Pi's loop_mika) fits a track a bar early
    almost as well as at its start, and embedding hits often put it there. The full fit
    tries the sound's own repeat lags (``repeat_lags``) either side of the screen's place
    and keeps the best: the loop placed at 5 s is found at 5 s when the screen put it at 3."""
    from app.catalog import FileRow
    from app.detect import Candidate, Hit, verify
    from app.detect_fit import Fit, TrackView, at_speed, repeat_lags
    from app.dup_verify import VERIFY_RATE
    loop = soxr.resample(_mono(SONIC_PI / "loop_mika.flac"), RATE, VERIFY_RATE).astype(np.float64)
    assert any(abs(lag - 2.0) < 0.05 for lag in repeat_lags(loop, VERIFY_RATE))
    assert repeat_lags(soxr.resample(_mono(SONIC_PI / "bd_haus.flac"), RATE, VERIFY_RATE), VERIFY_RATE) == []
    rng = np.random.default_rng(3)
    track = 0.05 * rng.standard_normal(20 * VERIFY_RATE)
    at = 5 * VERIFY_RATE
    track[at:at + loop.size] += loop
    row = FileRow(1, str(SONIC_PI / "loop_mika.flac"), 0, 0, None, loop.size / VERIFY_RATE, VERIFY_RATE, 1,
                  "loop", "indexed", None, None, None)
    candidate = Candidate(row, [Hit(1, 3.0, 0.9, 5.0, 1.0)], [3.0])
    early = Fit(0.5, 3.0, 10.0, 1.0)
    detection = verify(candidate, [early], lambda ratio: at_speed(loop, VERIFY_RATE, ratio),
                       TrackView.of(track, VERIFY_RATE))
    assert detection.verified
    assert min(abs(o.start_s - 5.0) for o in detection.occurrences) < 0.05, detection.occurrences
