"""The typed protocol between the app (AudioEngine) and the audio process: every message type has
a handler on its receiving side, messages cross a real pipe intact, the chain control thread
answers each request type, and MIDI learn and map swaps make the round trip through a real audio
process on a JACK dummy server."""

import math
import multiprocessing as mp
import queue
import threading
import time

import numpy as np
import pytest

from engine.audio_process import AudioProcess
from engine.messages import (AttachSample, BuildChain, ChainDone, ChainRequest, Failed, LearnMidi, Lost,
                             MidiReceived, PutSample, SampleReady, SetChainBypass, SetChainParameter,
                             SetMidiMap, SetSlots, Started, Stop, ToApp, ToAudio, message_types)
from engine.midi import MidiMap
from engine.monitor import ChainHost
from engine.stream import AudioEngine
from bench.harness.jack_server import start_peer, tape_path
from tests.jack_fixtures import start_engine

GAIN = {"format": "samplescout-chain", "version": 1, "name": "gain",
        "members": [{"type": "builtin", "effect": "Gain", "params": {"gain_db": 0.0}}]}

EXAMPLES = [
    Stop(), AttachSample(3, "psm_abc", (480, 2)), PutSample(1, np.ones((4, 1), np.float32)),
    SetSlots((-1, 4, -1)), SetMidiMap(MidiMap.default_16_pads().to_json()), LearnMidi("page_next"),
    BuildChain("input", 2, GAIN, token=7), SetChainParameter("preview", 1, 0, "gain_db", -6.0, token=8),
    SetChainBypass("input", 3, 0, True, token=9),
    Started("JACK: system", "MIDI jack: Sample Scout In", (0.0, 0.00133)), Failed("no device"),
    Lost("gone"), SampleReady(3), MidiReceived((0x90, 36, 100), "audition_slot_1"), ChainDone(7, None),
]


def test_every_message_type_has_a_handler_on_its_receiving_side():
    to_audio = message_types(ToAudio)
    assert ChainRequest not in to_audio and BuildChain in to_audio  # leaves only, bases left out
    assert set(AudioProcess.HANDLERS) == to_audio
    assert set(ChainHost.HANDLERS) == message_types(ChainRequest)
    assert set(AudioEngine.REPLY_HANDLERS) == message_types(ToApp)


def test_messages_cross_a_real_pipe_unchanged():
    assert {type(m) for m in EXAMPLES} == message_types(ToAudio) | message_types(ToApp)
    a, b = mp.Pipe()
    try:
        for msg in EXAMPLES:
            a.send(msg)
            got = b.recv()
            assert type(got) is type(msg) and got == msg
        sent = PutSample(2, np.arange(6, dtype=np.float32).reshape(3, 2))
        a.send(sent)
        np.testing.assert_array_equal(b.recv().audio, sent.audio)
        assert BuildChain("input", 1, None).token == 0  # the engine sets the token when it sends
    finally:
        a.close()
        b.close()


def test_chain_host_answers_each_request_type_and_refuses_stale_or_bad_edits():
    published, replies = {}, queue.Queue()
    host = ChainHost(48000, {"input": 1, "preview": 1}, 8192, published.__setitem__,
                     lambda token, error: replies.put((token, error)))

    def answer(request):
        host.submit(request)
        token, error = replies.get(timeout=30)
        assert token == request.token
        return error

    try:
        assert answer(BuildChain("input", 1, GAIN, token=1)) is None
        chain = published["input"]
        x = np.full((64, 1), 0.8, np.float32)
        np.testing.assert_allclose(chain.process(x), x, atol=1e-6)
        assert answer(SetChainParameter("input", 1, 0, "gain_db", 20 * math.log10(0.5), token=2)) is None
        np.testing.assert_allclose(chain.process(x), 0.4, atol=1e-6)
        assert answer(SetChainBypass("input", 1, 0, True, token=3)) is None
        np.testing.assert_allclose(chain.process(x), x, atol=1e-6)
        # An edit for an older description, a member that is not there, a value out of range.
        assert "changed" in answer(SetChainBypass("input", 0, 0, False, token=4))
        assert "no member 5" in answer(SetChainParameter("input", 1, 5, "gain_db", 0.0, token=5))
        assert "gain_db" in answer(SetChainParameter("input", 1, 0, "gain_db", 999.0, token=6))
        assert "changed" in answer(SetChainParameter("preview", 1, 0, "gain_db", 0.0, token=7))
        assert answer(BuildChain("input", 2, None, token=8)) is None
        assert published["input"] is None
    finally:
        host.close()


def wait_until(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.jack
def test_midi_learn_and_map_swap_round_trip_through_the_audio_process(jack_server):
    eng = start_engine(midi_api="jack")
    try:
        idx = eng.add_sample(np.full((2400, 1), 0.3, np.float32))
        eng.set_slot(2, idx)
        midi_map = MidiMap()
        eng.set_midi_map(midi_map)
        assert eng.slot_sample(2) == idx and eng.slot_sample(1) is None
        first, second = [], []
        eng.on_midi_message(lambda message, action: first.append((message, action)))
        remove = eng.on_midi_message(lambda message, action: second.append((message, action)))
        # No map yet: note 60 does nothing until learned. Every note after the learned one plays
        # pad 2 from inside the audio process.
        rec = start_peer(jack_server, "record", "PortAudio:out_", 2.0)
        sender = start_peer(jack_server, "rtmidi-send", "Sample Scout", 60, 4)
        learned = []
        learner = threading.Thread(target=lambda: learned.append(eng.midi_learn("audition_slot_2", 15)))
        learner.start()
        rec.go()
        sender.go()
        sender.result()
        learner.join(20)
        rec.result()
        assert learned == [True]
        y = np.load(tape_path(jack_server.name))
        loud = y > 0.29
        hits = np.flatnonzero(loud[1:] & ~loud[:-1])
        note_ons = [a for m, a in first if m == [0x90, 60, 110]]
        assert 1 <= len(hits) == len(note_ons) - note_ons.index("audition_slot_2") - 1, (hits, first)
        assert midi_map.bindings == {("note", 60): "audition_slot_2"}  # learned on the app side too
        # A new map replaces the audio process's bindings whole: note 60 is unbound now. The
        # sample added afterwards is answered only once the map before it was handled.
        eng.set_midi_map(MidiMap({("note", 61): "audition_slot_2"}))
        eng.add_sample(np.zeros((16, 1), np.float32))
        remove()
        before = len(first), len(second)
        sender = start_peer(jack_server, "rtmidi-send", "Sample Scout", 60, 1)
        sender.go()
        sender.result()
        assert wait_until(lambda: len(first) >= before[0] + 2), first
        assert first[before[0]] == ([0x90, 60, 110], None)
        assert len(second) == before[1]  # a removed listener hears nothing more
    finally:
        eng.close()
