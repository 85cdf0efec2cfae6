"""JACK peer for the live-matching tests and benchmark: plays a prepared signal into the app.

`python bench/harness/live_peer.py play SIGNAL.npy TARGET` plays a float32 mono signal (at the JACK
rate) into every input port matching TARGET after the parent writes "go"; it reports the
JACK frame of its first sample, the monotonic time at which it started and the signal's
clock (``jack_server.play_signal``), as one JSON line.
`python bench/harness/live_peer.py note PORT NOTE DELAYS` sends a note-on/off over JACK MIDI
(python-rtmidi) to the first port containing PORT, once per delay (seconds after "go"), and
reports the monotonic time of each note-on.
"""

from __future__ import annotations

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from jack_server import Peer, play_signal, start_peer  # noqa: E402


def start_live_peer(server, mode: str, *args, timeout: float = 15.0) -> Peer:
    return start_peer(server, mode, *args, timeout=timeout, script=os.path.abspath(__file__))


def _play(path: str, target: str, wait_s: str = "10") -> None:
    import numpy as np
    signal = np.load(path).astype(np.float32)
    played = play_signal("peer_live_play", signal, target, wait_s=float(wait_s))
    print(json.dumps({"start_frame": played["start_frame"], "start_time": played["start_time"],
                      "frames": len(signal), "clock": played["clock"]}), flush=True)


def _note(port_pattern: str, note: str, delays: str) -> None:
    import rtmidi
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="peer_live_midi")
    deadline = time.monotonic() + 10
    idx = None
    while idx is None and time.monotonic() < deadline:
        idx = next((i for i, n in enumerate(out.get_ports()) if port_pattern in n), None)
        if idx is None:
            time.sleep(0.1)
    if idx is None:
        raise SystemExit(f"no MIDI port containing {port_pattern!r}")
    out.open_port(idx)
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.monotonic()
    sent = []
    for delay in [float(d) for d in delays.split(",")]:
        while time.monotonic() < t0 + delay:
            time.sleep(0.001)
        sent.append(time.monotonic())
        out.send_message([0x90, int(note), 110])
        time.sleep(0.05)
        out.send_message([0x80, int(note), 0])
    time.sleep(0.2)
    out.close_port()
    print(json.dumps({"sent": sent}), flush=True)


if __name__ == "__main__":
    {"play": _play, "note": _note}[sys.argv[1]](*sys.argv[2:])
