import json

import numpy as np
import pytest

from engine.meters import Meters
from engine.midi import MidiMap, MidiMapError, DEFAULT_MAP_PATH
from engine.previews import OP_PLAY, OP_STOP, PreviewMixer, SampleCache, SampleLoadError


def run(mixer, blocks, frames=64, channels=1):
    out = []
    for _ in range(blocks):
        buf = np.zeros((frames, channels), np.float32)
        mixer.mix(buf)
        out.append(buf)
    return np.concatenate(out)


def test_voice_starts_next_block_with_fade_and_choke_fades_out():
    mixer = PreviewMixer(channels=1, max_block=64, voices=16, sample_rate=48000)
    mixer.samples[0] = np.full((48000, 1), 0.5, np.float32)
    a = mixer.play(0, choke_group=1)
    y = run(mixer, 4)[:, 0]
    assert y[0] > 0 and y[0] < 0.05  # ramped in, not a step to 0.5
    assert np.all(np.diff(y[:48]) > 0) and y[100] == pytest.approx(0.5)
    assert mixer.playheads()[a] == 256
    mixer.play(0, gain=0.0, choke_group=1)  # same choke group: the first voice fades out
    y = run(mixer, 8)[:, 0]
    assert np.all(np.diff(y) <= 1e-7) and y[-1] == 0  # monotonic ramp down, then silence
    assert a not in mixer.playheads()


def test_sixteen_voices_mix_and_stop_is_smooth():
    mixer = PreviewMixer(channels=2, max_block=128, voices=16, sample_rate=48000)
    mixer.samples[1] = np.full((9600, 2), 0.01, np.float32)
    ids = [mixer.play(1) for _ in range(16)]
    y = run(mixer, 2, frames=128, channels=2)
    assert y[-1, 0] == pytest.approx(0.16, rel=1e-5)
    for v in ids:
        mixer.post((OP_STOP, v))
    y = run(mixer, 4, frames=128, channels=2)
    assert np.max(np.abs(np.diff(y[:, 0]))) < 0.01 and y[-1, 0] == 0


def test_volume_change_ramps_over_one_block():
    mixer = PreviewMixer(channels=1, max_block=64, voices=16)
    mixer.samples[0] = np.ones((48000, 1), np.float32)
    mixer.post((OP_PLAY, 5, 0, 1.0, 0))
    run(mixer, 2)
    mixer.volume = 0.0
    y = run(mixer, 2)[:, 0]
    assert y[0] > 0.9 and y[63] < 0.05 and np.all(y[64:] == 0)


def test_sample_cache_resamples_real_file(tmp_path):
    import soundfile
    path = tmp_path / "tone.wav"
    soundfile.write(path, np.sin(np.linspace(0, 100, 22050)).astype(np.float32), 22050)
    cache = SampleCache(sample_rate=48000, channels=2)
    audio = cache.load(path)
    assert audio.dtype == np.float32 and audio.shape == (48000, 2)
    assert cache.load(path) is audio
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEnope")
    with pytest.raises(SampleLoadError, match="bad.wav"):
        cache.load(bad)


def test_meters_peak_rms_and_xruns():
    meters = Meters(channels=2, max_block=256, sample_rate=48000)
    x = np.zeros((256, 2), np.float32)
    x[:, 0] = 0.5
    x[10, 1] = -0.8
    for _ in range(800):
        meters.update(x, status_bits=0)
    meters.update(x, status_bits=2 | 4)
    r = meters.read()
    assert r.peak[0] == pytest.approx(0.5, rel=1e-3) and r.peak[1] > 0.5
    assert r.rms[0] == pytest.approx(0.5, rel=0.01) and r.rms[1] < 0.1
    assert r.input_overflows == 1 and r.output_underflows == 1 and r.xruns == 2


def test_meters_report_the_frames_of_the_last_callback():
    """What the window shows as the block size the server really runs: read in one piece,
    where frames over callbacks (two counters read apart) once gave 60 for 64."""
    meters = Meters(channels=1, max_block=256, sample_rate=48000)
    assert meters.read().block_frames == 0 and meters.read().callbacks == 0
    for frames in (256, 64, 64):
        meters.update(np.zeros((frames, 1), np.float32))
    reading = meters.read()
    assert reading.callbacks == 3 and reading.block_frames == 64


def test_default_map_and_learn_and_round_trip(tmp_path):
    m = MidiMap.load(DEFAULT_MAP_PATH)
    played = []
    m.audition = lambda slot, vel: played.append(slot)
    assert m.handle([0x99, 36, 100]) == "audition_slot_1"
    assert m.handle([0x90, 51, 100]) == "audition_slot_16"
    assert m.handle([0x80, 51, 0]) is None
    assert played == [1, 16]
    hits = []
    m.handlers["capture_lookup"] = lambda: hits.append(1)
    m.learn("capture_lookup")
    assert m.handle([0xB0, 64, 127]) == "capture_lookup"  # learned, not run
    m.handle([0xB0, 64, 127])
    assert hits == [1]
    path = tmp_path / "map.json"
    m.save(path)
    assert MidiMap.load(path).bindings == m.bindings


@pytest.mark.parametrize("data, message", [
    ({"format": "x"}, "not a Sample Scout MIDI map"),
    ({"format": "samplescout-midi-map", "version": 1, "bindings": [{"kind": "note", "number": 300,
                                                                  "action": "stop_all"}]}, "0..127"),
    ({"format": "samplescout-midi-map", "version": 1, "bindings": [{"kind": "note", "number": 1,
                                                                  "action": "rm -rf"}]}, "unknown action"),
])
def test_bad_map_gives_clear_error(tmp_path, data, message):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MidiMapError, match=message):
        MidiMap.load(path)
