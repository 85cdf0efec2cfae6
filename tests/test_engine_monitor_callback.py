"""The audio callback (`AudioCore.callback`) run directly on preallocated buffers: what it allocates,
and what the monitor and preview-chain paths put in the output. No audio device needed."""

import math
import os
import tracemalloc

import numpy as np
import pytest
from sounddevice import CallbackFlags as Status

import engine
from engine.audio_process import BASE_VOICE_ID, AudioCore
from engine.chain import Chain
from engine.monitor import route_monitor
from engine.previews import OP_PLAY, OP_STOP
from engine.shared_block import SharedBlock
from engine.stream import StreamConfig


def make_core(channels=2):
    cfg = StreamConfig(input_channels=channels, output_channels=channels, isolation="thread")
    sh = SharedBlock(cfg, in_process=True)
    core = AudioCore(cfg, sh)
    core.mixer.samples[0] = np.full((48000 * 10, channels), 0.1, np.float32)
    return core, sh


ENGINE_FILES = os.path.join(os.path.dirname(os.path.abspath(engine.__file__)), "*")


def engine_traces(snapshot):
    """Allocations made by the engine package's own code (not by a checkout folder that happens
    to be named "engine")."""
    return snapshot.filter_traces([tracemalloc.Filter(True, ENGINE_FILES)])


def transient_and_net(frames, calls=200):
    """(largest transient allocation above the start, net traced growth in engine/ code) over
    `calls` callbacks of `frames` frames, after warm-up, with four voices sounding."""
    core, sh = make_core()
    for i in range(4):
        sh["cmd"][i] = (OP_PLAY, i + 1, 0, 1.0, 0)
    sh["cmd_head"][0] = 4
    indata = np.random.default_rng(0).standard_normal((frames, 2)).astype(np.float32)
    outdata = np.zeros((frames, 2), np.float32)
    status = Status()
    for _ in range(50):
        core.callback(indata, outdata, frames, None, status)
    tracemalloc.start()
    try:
        core.callback(indata, outdata, frames, None, status)
        before = engine_traces(tracemalloc.take_snapshot())
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(calls):
            core.callback(indata, outdata, frames, None, status)
        _, peak = tracemalloc.get_traced_memory()
        after = engine_traces(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    net = sum(s.size_diff for s in after.compare_to(before, "lineno"))
    assert core.mixer.playheads(), "voices should still be sounding"
    return peak - start, net


def test_callback_keeps_nothing_and_allocates_no_audio_buffers():
    small_peak, small_net = transient_and_net(64)
    big_peak, big_net = transient_and_net(1024)
    # Nothing survives a call: the callback retains no memory, however many calls.
    assert small_net == 0 and big_net == 0
    # One (1024, 2) float32 buffer would be 8 KiB; what is left are a few short-lived Python
    # objects (array views, ints), the same whatever the block size.
    assert big_peak < 4096
    assert abs(big_peak - small_peak) < 1024


def test_stream_status_flags_count_as_xruns():
    core, _ = make_core(channels=1)
    block = np.zeros((64, 1), np.float32)
    out = np.zeros((64, 1), np.float32)
    flags = Status()
    core.callback(block, out, 64, None, flags)
    flags.output_underflow = True
    core.callback(block, out, 64, None, flags)
    flags.output_underflow = False
    flags.input_overflow = True
    core.callback(block, out, 64, None, flags)
    reading = core.meters.read()
    assert (reading.callbacks, reading.xruns) == (3, 2)
    assert (reading.output_underflows, reading.input_overflows) == (1, 1)
    assert reading.input_underflows == reading.output_overflows == 0


def test_app_and_midi_voice_ids_never_clash():
    """The app numbers its voices from 1, the audio process's MIDI pads from BASE_VOICE_ID: the
    app stopping its voice 1 leaves a pad's voice sounding."""
    core, sh = make_core(channels=1)
    core.slots[1] = 0
    sh["cmd"][0] = (OP_PLAY, 1, 0, 1.0, 0)    # the app's first voice
    sh["cmd_head"][0] = 1
    core.audition(1, 100)                     # a pad, from the MIDI thread
    block, out = np.zeros((64, 1), np.float32), np.zeros((64, 1), np.float32)
    core.callback(block, out, 64, None, Status())
    assert len(core.mixer.playheads()) == 2
    sh["cmd"][1] = (OP_STOP, 1, 0, 0, 0)
    sh["cmd_head"][0] = 2
    for _ in range(10):                       # well past the 5 ms fade-out
        core.callback(block, out, 64, None, Status())
    assert list(core.mixer.playheads()) == [BASE_VOICE_ID]


def test_monitor_path_runs_the_published_chain_and_ring_keeps_raw_input():
    core, sh = make_core(channels=1)
    chain = Chain("input", 48000, 1, 8192)
    chain.add_effect("Gain", {"gain_db": 20 * math.log10(0.5)})
    core.publish_chain("input", chain)
    indata = np.random.default_rng(1).uniform(-0.8, 0.8, (64, 1)).astype(np.float32)
    out = np.ones((64, 1), np.float32)
    core.callback(indata, out, 64, None, Status())
    assert not out.any()  # monitoring is off by default
    sh["params"][1] = 1.0
    core.callback(indata, out, 64, None, Status())
    np.testing.assert_allclose(out, 0.5 * indata, atol=1e-7)
    np.testing.assert_array_equal(core.ring.read(64, 64), indata)  # raw, not halved
    core.publish_chain("input", None)
    core.callback(indata, out, 64, None, Status())
    np.testing.assert_array_equal(out, indata)  # no chain: dry monitoring


def test_preview_chain_processes_the_preview_mix():
    core, sh = make_core(channels=1)
    chain = Chain("preview", 48000, 1, 8192)
    chain.add_effect("Gain", {"gain_db": 20 * math.log10(0.25)})
    core.publish_chain("preview", chain)
    core.mixer.post((OP_PLAY, 1, 0, 1.0, 0))
    out = np.zeros((256, 1), np.float32)
    core.callback(np.zeros((256, 1), np.float32), out, 256, None, Status())
    assert out[-1, 0] == pytest.approx(0.025)  # 0.1 * 0.25 after the fade-in


def test_route_monitor_maps_channels():
    mono = np.full((8, 1), 0.5, np.float32)
    stereo_out = np.zeros((8, 2), np.float32)
    route_monitor(mono, stereo_out)
    assert np.all(stereo_out == 0.5)
    stereo = np.stack([np.full(8, 0.2), np.full(8, 0.6)], axis=1).astype(np.float32)
    mono_out = np.zeros((8, 1), np.float32)
    route_monitor(stereo, mono_out)
    assert np.allclose(mono_out, 0.4)
    four_out = np.zeros((8, 4), np.float32)
    route_monitor(stereo, four_out)
    assert np.allclose(four_out[:, :2], stereo) and not four_out[:, 2:].any()
