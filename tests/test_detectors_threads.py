"""The tempo, key and root-note detectors are pure (concurrent calls give the serial results)
and take stereo input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from models.key import estimate_key
from models.pitch import estimate_root
from models.spectrum import as_mono
from models.tempo import estimate_tempo
from tests.synth_audio import chord_loop, drum_groove, tone


def test_concurrent_calls_match_serial_results_and_leave_the_input_alone():
    jobs = [(estimate_tempo, drum_groove(bpm, 2, 22050), 22050) for bpm in (96.0, 124.0, 141.0)]
    jobs += [(estimate_key, chord_loop(tonic, mode, 22050), 22050) for tonic, mode in ((2, "major"), (7, "minor"))]
    jobs += [(estimate_root, tone(midi, 1.5, 44100), 44100) for midi in (38, 57, 76)]
    copies = [audio.copy() for _, audio, _ in jobs]
    serial = [function(audio, rate) for function, audio, rate in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda job: job[0](job[1], job[2]), jobs * 3))
    assert concurrent == serial * 3
    assert all(np.array_equal(audio, copy) for (_, audio, _), copy in zip(jobs, copies))


def test_stereo_input_is_mixed_down():
    left, right = tone(60, 1.5, 44100), tone(64, 1.5, 44100, harmonics=2)
    stereo = np.stack([left, right], axis=1)
    assert np.allclose(as_mono(stereo), 0.5 * (left + right))
    groove = drum_groove(120.0, 2, 44100)
    assert estimate_tempo(np.stack([groove, groove], axis=1), 44100).bpm == 120.0
