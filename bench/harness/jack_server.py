"""A real JACK server (dummy backend) for tests and benchmarks, plus JACK peers in subprocesses.

`JackServer` starts `jackd -R -P 70 -d dummy -r 48000 -p 64` under a unique server name
(exported as JACK_DEFAULT_SERVER, so PortAudio, python-rtmidi and JACK-Client in this process
and in peers all talk to it), falls back to no realtime scheduling if -R is refused, waits until
it accepts clients, and stops it afterwards.

Peers run in their own process (so they never compete with the engine for the GIL):
`python bench/harness/jack_server.py <mode> ...` — see `_peer_main`. `start_peer()` launches one and
waits for its "ready" line; results come back as one JSON line on stdout.
"""

from __future__ import annotations

import json
import glob
import os
import shutil
import subprocess
import sys
import time
import uuid


HERE = os.path.dirname(os.path.abspath(__file__))


def _die_with_parent() -> None:
    """In the child before exec: a jackd whose test process was killed stops too (Linux)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class JackUnavailable(RuntimeError):
    pass


class JackServer:
    def __init__(self, sample_rate: int = 48000, period: int = 64, name: str | None = None):
        self.sample_rate = sample_rate
        self.period = period
        self.name = name or f"ssc{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.proc: subprocess.Popen | None = None
        self.realtime = False
        self.log_path = os.path.join("/tmp", f"jackd_{self.name}.log")
        self.peers: list[Peer] = []   # started by start_peer; stopped with the server

    def env(self) -> dict:
        env = dict(os.environ)
        env["JACK_DEFAULT_SERVER"] = self.name
        env["JACK_NO_AUDIO_RESERVATION"] = "1"
        return env

    def start(self, timeout: float = 10.0) -> "JackServer":
        jackd = shutil.which("jackd")
        if jackd is None:
            raise JackUnavailable("jackd not found (Debian package jackd2)")
        self._saved_env = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER",
                                                          "JACK_NO_AUDIO_RESERVATION")}
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        os.environ["JACK_NO_AUDIO_RESERVATION"] = "1"
        base = ["-d", "dummy", "-r", str(self.sample_rate), "-p", str(self.period)]
        for realtime in (True, False):
            args = [jackd, "-n", self.name] + (["-R", "-P", "70"] if realtime else ["-r"]) + base
            log = open(self.log_path, "w")
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                         preexec_fn=_die_with_parent)
            log.close()
            if self._wait_ready(timeout):
                self.realtime = realtime
                return self
            self._kill()
        log = self.log()
        self._remove_files()
        raise JackUnavailable(f"jackd did not start: {log[-2000:]}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            probe = subprocess.run(
                [sys.executable, "-c",
                 "import jack; c = jack.Client('probe', no_start_server=True); c.close()"],
                env=self.env(), capture_output=True, timeout=timeout)
            if probe.returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def _kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        """Stop its peers and jackd, restore the environment, delete the log and any tape."""
        for peer in self.peers:
            peer.stop()
        self.peers.clear()
        self._kill()
        self._remove_files()
        for key, value in getattr(self, "_saved_env", {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _remove_files(self) -> None:
        # jackd leaves one semaphore file per client in /dev/shm when it is killed; the
        # server's name is unique to this object, so these are ours alone
        semaphores = glob.glob(os.path.join("/dev/shm", f"jack_sem.*_{glob.escape(self.name)}_*"))
        for path in (self.log_path, tape_path(self.name), *semaphores):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def log(self) -> str:
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def xrun_count(self) -> int:
        """xruns jackd itself reported in its log."""
        return self.log().lower().count("xrun")


class Peer:
    """A JACK-Client peer process. Reads 'ready' then, at the end, one JSON result line."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def go(self) -> None:
        """Tell the peer to start playing / recording / sending."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def go_and_wait_recording(self, timeout: float = 20.0) -> None:
        """A 'record' peer: go, and return once its first block is on tape (so whatever the
        test plays next is recorded from its start)."""
        self.go()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == "recording":
                return
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"record peer did not start recording in {timeout} s")

    def result(self, timeout: float = 30.0) -> dict:
        out, err = self.proc.communicate(timeout=timeout)
        lines = [l for l in out.splitlines() if l.startswith("{")]
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(f"peer failed ({self.proc.returncode}): {err[-2000:]}")
        return json.loads(lines[-1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.communicate(timeout=5)   # reaps it and closes its pipes
        except (ValueError, subprocess.TimeoutExpired):
            pass


def tape_path(server_name: str) -> str:
    """Where a 'record' peer leaves its recording (numpy .npy)."""
    return os.path.join("/tmp", f"peer_tape_{server_name}.npy")


def start_peer(server: JackServer, mode: str, *args: str, timeout: float = 15.0,
               script: str | None = None) -> Peer:
    """Start `python SCRIPT mode args...` (default: this file) and wait until it prints 'ready'."""
    script = script or os.path.join(HERE, "jack_server.py")
    proc = subprocess.Popen([sys.executable, script, mode, *map(str, args)],
                            env=server.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peer = Peer(proc)
    server.peers.append(peer)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "ready":
            return peer
        if not line and proc.poll() is not None:
            raise RuntimeError(f"peer {mode} exited: {proc.stderr.read()[-2000:]}")
    peer.stop()
    raise RuntimeError(f"peer {mode} not ready in {timeout} s")


# ---- peer processes ----------------------------------------------------------------------

def burst(seed: int, frames: int):
    """Deterministic float32 noise burst, never exactly zero, so its edges are visible."""
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.9, frames) * rng.choice([-1.0, 1.0], frames)
    return x.astype(np.float32)


def engine_port_pattern(pattern: str) -> str:
    """JACK port regex for the engine's ports. The audio process names its client
    "samplescout" (engine.devices.JACK_CLIENT_NAME), an engine run as a thread keeps
    PortAudio's "PortAudio"; a second client of the same name is "PortAudio-01" and so on.
    So "PortAudio:in_" matches "samplescout:in_1" and "PortAudio-01:in_1" alike."""
    if pattern.startswith("PortAudio:"):
        return "(PortAudio|samplescout)(-[0-9]+)?:" + pattern[len("PortAudio:"):]
    if pattern.startswith("PortAudio"):
        return "(PortAudio|samplescout)" + pattern[len("PortAudio"):]
    return pattern


def _connect_all(client, ours, pattern, is_input):
    """Connect `ours` to every port of the other side whose name matches pattern."""
    found = client.get_ports(engine_port_pattern(pattern), is_audio=None, is_input=is_input)
    for p in found:
        if is_input:
            client.connect(ours, p)
        else:
            client.connect(p, ours)
    return [p.name for p in found]


def _wait_for_ports(client, pattern, is_input, is_midi=False, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = client.get_ports(engine_port_pattern(pattern), is_input=is_input, is_midi=is_midi,
                                 is_audio=not is_midi)
        if ports:
            return ports
        time.sleep(0.05)
    raise RuntimeError(f"no JACK port matching {pattern!r}")


CLOCK_CYCLES = 16     # a played signal's clock: one (sample, time) every this many cycles


def play_signal(client_name: str, signal, target: str, wait_s: float = 10.0) -> dict:
    """Peer side: connect an output port to every input port matching `target`, print
    'ready', wait for the test's go line on stdin, play `signal` once.
    Returns the JACK frame and monotonic time of its first sample, the ports used, and
    `clock`: (sample of the signal, monotonic time) at the start of every CLOCK_CYCLES-th
    cycle, so that a sample's time is known even when the server runs slower than real
    time (a loaded dummy server does: its frames then fall behind the wall clock)."""
    import threading
    import jack
    client = jack.Client(client_name, no_start_server=True)
    out = client.outports.register("out")
    state = {"pos": -1, "start_frame": None, "start_time": None, "clock": []}
    done = threading.Event()

    @client.set_process_callback
    def process(n):
        buf = out.get_array()
        if state["pos"] < 0:
            buf[:] = 0
            return
        if state["start_frame"] is None:
            state["start_frame"] = client.last_frame_time
            state["start_time"] = time.monotonic()
        p = state["pos"]
        if p % (CLOCK_CYCLES * n) == 0:
            state["clock"].append((p, time.monotonic()))
        chunk = signal[p:p + n]
        buf[:len(chunk)] = chunk
        buf[len(chunk):] = 0
        state["pos"] = p + n
        if p + n >= len(signal):
            done.set()

    client.activate()
    ports = _wait_for_ports(client, target, is_input=True, timeout=wait_s)
    port_names = [port.name for port in ports]
    for port in ports:
        client.connect(out, port)
    time.sleep(0.3)
    print("ready", flush=True)
    sys.stdin.readline()  # the test says when to go
    state["pos"] = 0
    done.wait(len(signal) / client.samplerate + 30)
    client.deactivate()
    client.close()
    return {"start_frame": state["start_frame"], "start_time": state["start_time"],
            "ports": port_names, "clock": state["clock"]}


def _peer_play(target: str, seed: str, frames: str, gap: str):
    """Play burst A, then `gap` frames later burst B, into every input port matching `target`.
    Reports the JACK frame at which each burst started."""
    import numpy as np
    frames, gap = int(frames), int(gap)
    a, b = burst(int(seed), frames), burst(int(seed) + 1, frames)
    signal = np.zeros(frames + gap + frames + 48000, np.float32)
    signal[:frames] = a
    signal[gap:gap + frames] = b
    played = play_signal("peer_play", signal, target)
    print(json.dumps({"start_frame": played["start_frame"], "start_time": played["start_time"],
                      "gap": gap, "frames": frames, "ports": played["ports"]}), flush=True)


def _peer_record(source: str, seconds: str, midi_note: str = "-1", midi_at: str = "0.5",
                 repeats: str = "1", spacing: str = "0.25"):
    """Record every output port matching `source` (summed) for `seconds`.
    If midi_note >= 0, also send note-on/off through a JACK MIDI port connected to every MIDI
    input port whose name contains 'Sample Scout', first at `midi_at` s, `repeats` times.
    Reports the JACK frame of each note-on and the first non-silent frame after each."""
    import threading

    import jack
    import numpy as np
    seconds = float(seconds)
    note = int(midi_note)
    client = jack.Client("peer_rec", no_start_server=True)
    server_gone = threading.Event()
    client.set_shutdown_callback(lambda status, reason: server_gone.set())
    inp = client.inports.register("in")
    midi_out = client.midi_outports.register("midi_out") if note >= 0 else None
    sr = client.samplerate
    total = int(seconds * sr)
    tape = np.zeros(total + 8192, np.float32)
    state = {"pos": -1, "t0": None}
    note_frames = [int((float(midi_at) + i * float(spacing)) * sr) for i in range(int(repeats))]
    sent = []

    @client.set_process_callback
    def process(n):
        if midi_out is not None:
            midi_out.clear_buffer()
        if state["pos"] < 0 or state["pos"] >= total:
            return
        if state["t0"] is None:
            state["t0"] = client.last_frame_time
        p = state["pos"]
        tape[p:p + n] = inp.get_array()
        if midi_out is not None:
            for k, f in enumerate(note_frames):
                if p <= f < p + n:
                    midi_out.write_midi_event(f - p, bytes([0x90, note, 100]))
                    sent.append(f)
                off = f + int(0.1 * sr)
                if p <= off < p + n:
                    midi_out.write_midi_event(off - p, bytes([0x80, note, 0]))
        state["pos"] = p + n

    client.activate()
    ports = _wait_for_ports(client, source, is_input=False)
    port_names = [p.name for p in ports]
    for p in ports:
        client.connect(p, inp)
    if midi_out is not None:
        for p in _wait_for_ports(client, "Sample Scout", is_input=True, is_midi=True):
            client.connect(midi_out, p)
    time.sleep(0.2)
    print("ready", flush=True)
    sys.stdin.readline()
    state["pos"] = 0
    # Its server dying ends the recording; so does twice its length plus 10 s of wall time.
    deadline = time.monotonic() + 2 * seconds + 10
    while state["pos"] <= 0 and not server_gone.is_set() and time.monotonic() < deadline:
        server_gone.wait(0.005)
    print("recording", flush=True)
    while state["pos"] < total and not server_gone.is_set() and time.monotonic() < deadline:
        server_gone.wait(0.05)
    if server_gone.is_set() or state["pos"] < total:
        print(f"recording stopped at frame {max(state['pos'], 0)} of {total}: "
              + ("the JACK server went away" if server_gone.is_set() else "no JACK cycles"),
              file=sys.stderr, flush=True)
        os._exit(3)
    client.deactivate()
    client.close()
    y = tape[:total]
    np.save(tape_path(os.environ.get("JACK_DEFAULT_SERVER", "default")), y)
    onsets = []
    for f in sent:
        nz = np.flatnonzero(np.abs(y[f:f + int(float(spacing) * sr)]) > 0)
        onsets.append(int(nz[0]) if len(nz) else None)
    print(json.dumps({"t0": state["t0"], "sample_rate": sr, "note_frames": sent,
                      "note_to_sound_frames": onsets, "ports": port_names}), flush=True)


def _peer_rtmidi_send(port_pattern: str, note: str, count: str = "1"):
    """Send note-on/off with python-rtmidi over JACK to the first port containing port_pattern."""
    import rtmidi
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="peer_rtmidi")
    deadline = time.monotonic() + 10
    idx = None
    while idx is None and time.monotonic() < deadline:
        names = out.get_ports()
        idx = next((i for i, n in enumerate(names) if port_pattern in n), None)
        if idx is None:
            time.sleep(0.1)
    if idx is None:
        raise SystemExit(f"no MIDI port containing {port_pattern!r}: {out.get_ports()}")
    out.open_port(idx)
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(int(count)):
        out.send_message([0x90, int(note), 110])
        time.sleep(0.1)
        out.send_message([0x80, int(note), 0])
        time.sleep(0.1)
    time.sleep(0.2)
    out.close_port()
    print(json.dumps({"sent": int(count)}), flush=True)


def _peer_main(argv):
    modes = {"play": _peer_play, "record": _peer_record, "rtmidi-send": _peer_rtmidi_send}
    modes[argv[0]](*argv[1:])


if __name__ == "__main__":
    _peer_main(sys.argv[1:])
