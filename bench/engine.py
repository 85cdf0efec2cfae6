"""Engine benchmark on a real JACK dummy server: callback duration, xruns and MIDI note -> first
preview sample latency (measured by a JACK peer on the JACK frame clock), under load.

Designs:
- process: the kept design (Python callback in an audio process of its own, engine.stream)
- process+builtin / process+zamcomp: the same with live monitoring on, through a chain of
           built-in effects (HighpassFilter, Compressor, Gain) or through Debian's ZamComp VST3,
           processed inside the callback (the input port gets silence, so MIDI onsets stay clean)
- thread:  the same Python callback inside the app process (rejected)
- rtmixer: rtmixer's C callback in the app process, capture drained from its C ring and previews
           started with play_buffer from the rtmidi thread (rejected: no fades/choke/volume, and
           PortAudio aborts the process when its JACK server goes away)

Load in the app process while measuring: an encoder-like thread (log-mel-ish FFT + matmul on
the newest 2.3 s of captured audio, in a loop) and a busy pure-Python thread like a UI.

xruns are counted three ways: what PortAudio reported to the engine (any xrun of the JACK
graph), jackd's "client = PortAudio was not finished" (our callback was late) and jackd's
"JackTimedDriver::Process XRun" (the dummy driver's own timer woke late: machine load, no
client involved). The load average of the (shared) machine is stored with each row.

    .venv/bin/python bench/engine.py --seconds 60 [--keep-previous]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.harness.jack_server import JackServer, start_peer  # noqa: E402

SAMPLE_RATE = 48000
NOTE = 36


class Load:
    def __init__(self, read_latest):
        self.read_latest = read_latest
        self.stop = threading.Event()
        self.encoder_blocks = 0
        self.ui_loops = 0

    def encoder(self):
        w = np.random.default_rng(0).standard_normal((1025, 96)).astype(np.float32)
        proj = np.random.default_rng(1).standard_normal((96 * 100, 512)).astype(np.float32) * 0.01
        while not self.stop.is_set():
            x = self.read_latest(int(2.3 * SAMPLE_RATE))
            frames = np.lib.stride_tricks.sliding_window_view(x, 2048)[::1024][:100]
            spec = np.abs(np.fft.rfft(frames * np.hanning(2048), axis=1)) ** 2
            mel = np.log10(1e4 * spec @ w + 1)
            _ = mel.reshape(-1)[: proj.shape[0]] @ proj[: mel.size]
            self.encoder_blocks += 1

    def ui(self):
        d = {}
        while not self.stop.is_set():
            for i in range(2000):
                d[i % 97] = str(i)
            self.ui_loops += 1

    def start(self):
        self.threads = [threading.Thread(target=self.encoder, daemon=True),
                        threading.Thread(target=self.ui, daemon=True)]
        for t in self.threads:
            t.start()

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)


MONITOR_CHAINS = {
    "builtin": [{"type": "builtin", "effect": "HighpassFilter", "params": {"cutoff_frequency_hz": 80.0}},
                {"type": "builtin", "effect": "Compressor", "params": {"threshold_db": -20.0, "ratio": 4.0}},
                {"type": "builtin", "effect": "Gain", "params": {"gain_db": 3.0}}],
    "zamcomp": [{"type": "vst3", "path": "/usr/lib/vst3/ZamComp.vst3", "params": {"threshold_db": -30.0}}],
}


def run_engine(design, server, block, seconds):
    from engine.midi import MidiMap
    from engine.stream import AudioEngine, StreamConfig
    isolation, _, monitor = design.partition("+")
    eng = AudioEngine(StreamConfig(hostapi="JACK", input_channels=1, output_channels=1, block_size=block,
                                   isolation=isolation, midi_api="jack"))
    eng.start()
    if not eng.wait_running(20):
        raise RuntimeError(eng.status().message)
    if monitor:
        eng.set_input_chain({"format": "samplescout-chain", "version": 1, "name": monitor,
                             "members": MONITOR_CHAINS[monitor]})
        eng.set_monitoring(True)
        time.sleep(0.5)
    click = np.full((2400, 1), 0.3, np.float32)
    idx = eng.add_sample(click)
    eng.set_midi_map(MidiMap.default_16_pads())
    eng.set_slot(1, idx)
    load = Load(lambda n: eng.ring.read_latest(n)[1][:, 0])
    result = measure(server, seconds, load, lambda: eng.meters().xruns)
    result["callback_ns"] = eng.callback_durations()[-int(seconds * SAMPLE_RATE / block):]
    eng.close()
    return result


def run_rtmixer(server, block, seconds):
    import rtmixer
    import sounddevice as sd

    from engine.devices import find_device
    from engine.midi import open_midi_input
    from engine.ring import CaptureRing
    dev = find_device("JACK", None, 1, 1)
    mixer = rtmixer.MixerAndRecorder(device=dev.index, samplerate=SAMPLE_RATE, blocksize=block,
                                     channels=1, latency="low")
    c_ring = rtmixer.RingBuffer(4, 1 << 17)
    ring = CaptureRing.for_seconds(1, SAMPLE_RATE, 30, max_write_frames=1 << 16)
    click = np.full(2400, 0.3, np.float32)
    stop = threading.Event()

    def drain():
        while not stop.is_set():
            n = c_ring.read_available
            if n:
                buf = np.frombuffer(c_ring.read(n), np.float32).reshape(-1, 1)
                ring.write(buf)
            time.sleep(0.005)

    midi = open_midi_input("jack", None)
    lock = threading.Lock()

    def on_midi(msg):
        if msg[0] & 0xF0 == 0x90 and msg[2] > 0:
            with lock:
                mixer.play_buffer(click, channels=1)

    midi.set_callback(on_midi)
    with mixer:
        mixer.record_ringbuffer(c_ring)
        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        start_stats = mixer.fetch_and_reset_stats()
        mixer.wait(start_stats)
        load = Load(lambda n: ring.read_latest(n)[1][:, 0])
        result = measure(server, seconds, load, lambda: 0)
        action = mixer.fetch_and_reset_stats()
        mixer.wait(action)
        st = action.stats
        result["engine_xruns"] = int(st.input_overflows + st.input_underflows + st.output_overflows
                                     + st.output_underflows)
        stop.set()
        midi.close()
    result["callback_ns"] = np.array([])
    return result


def measure(server, seconds, load, xruns):
    repeats = max(1, int((seconds - 1.0) / 0.25))
    rec = start_peer(server, "record", "PortAudio:out_", seconds + 0.5, NOTE, 0.5, repeats, 0.25)
    before_log = jackd_xruns(server)
    before = xruns()
    load.start()
    rec.go()
    info = rec.result(timeout=seconds + 30)
    load.end()
    after_log = jackd_xruns(server)
    lat = [f for f in info["note_to_sound_frames"] if f is not None]
    return {"engine_xruns": xruns() - before, "jackd_xruns": after_log[0] - before_log[0],
            "jackd_client_late": after_log[1] - before_log[1],
            "jackd_driver_late": after_log[2] - before_log[2],
            "loadavg_1min": os.getloadavg()[0],
            "notes": len(info["note_frames"]), "notes_heard": len(lat),
            "midi_to_sound_frames": lat, "encoder_blocks": load.encoder_blocks, "ui_loops": load.ui_loops}


def jackd_xruns(server):
    """(all xrun lines, our client late, dummy driver's timer late) in jackd's log so far."""
    lines = [l for l in server.log().splitlines() if "xrun" in l.lower()]
    ours = sum("client = PortAudio" in l for l in lines)
    driver = sum("JackTimedDriver" in l for l in lines)
    return len(lines), ours, driver


def summarize(design, block, r):
    cb = np.asarray(r.pop("callback_ns"), dtype=np.float64) / 1e6
    lat = np.asarray(r.pop("midi_to_sound_frames"), dtype=np.float64) / SAMPLE_RATE * 1e3
    row = {"design": design, "block_size": block, **r,
           "callback_ms_p50": float(np.percentile(cb, 50)) if cb.size else None,
           "callback_ms_p99": float(np.percentile(cb, 99)) if cb.size else None,
           "callback_ms_max": float(cb.max()) if cb.size else None,
           "midi_to_sound_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
           "midi_to_sound_ms_p99": float(np.percentile(lat, 99)) if lat.size else None,
           "block_ms": block / SAMPLE_RATE * 1e3}
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--blocks", default="64,128,256")
    ap.add_argument("--designs", default="process,thread,rtmixer")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "engine.json"))
    ap.add_argument("--keep-previous", action="store_true",
                    help="store the rows of the existing results file under 'previous'")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # one run in a fresh process: PortAudio aborts when its JACK server goes away
        design, block = args.one.split(":")
        block = int(block)
        server = JackServer(period=block).start()
        try:
            r = run_rtmixer(server, block, args.seconds) if design == "rtmixer" else \
                run_engine(design, server, block, args.seconds)
            row = summarize(design, block, r)
            row["realtime"] = server.realtime
            print("ROW " + json.dumps(row), flush=True)
        finally:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
            sys.stdout.flush()
            server.stop()
            os._exit(0)
    import subprocess
    rows = []
    for block in [int(b) for b in args.blocks.split(",")]:
        for design in args.designs.split(","):
            proc = subprocess.run([sys.executable, __file__, "--seconds", str(args.seconds), "--one",
                                   f"{design}:{block}"], capture_output=True, text=True,
                                  timeout=args.seconds + 120)
            got = [l[4:] for l in proc.stdout.splitlines() if l.startswith("ROW ")]
            if not got:
                print(f"{design} {block}: failed: {proc.stderr[-800:]}", file=sys.stderr)
                continue
            rows.append(json.loads(got[0]))
            print(got[0], flush=True)
    out = {"seconds_per_run": args.seconds, "sample_rate": SAMPLE_RATE, "cpus": os.cpu_count(), "rows": rows}
    if args.keep_previous and os.path.exists(args.out):
        with open(args.out) as f:
            old = json.load(f)
        out["previous"] = {k: v for k, v in old.items() if k != "previous"}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    fmt = "{:<16} {:>5} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9} {:>9} {:>6} {:>5}"
    print(fmt.format("design", "block", "cb p50", "cb p99", "cb max", "xruns", "jackd", "ours",
                     "midi p50", "midi p99", "heard", "load"))
    for r in rows:
        f = lambda v: "-" if v is None else f"{v:.3f}"
        print(fmt.format(r["design"], r["block_size"], f(r["callback_ms_p50"]), f(r["callback_ms_p99"]),
                         f(r["callback_ms_max"]), r["engine_xruns"], r["jackd_xruns"],
                         r["jackd_client_late"], f(r["midi_to_sound_ms_p50"]), f(r["midi_to_sound_ms_p99"]),
                         f"{r['notes_heard']}/{r['notes']}", f"{r['loadavg_1min']:.1f}"))


if __name__ == "__main__":
    main()
