"""Audio and MIDI device listing in a child process (``samplescout devices --json``).

PortAudio and rtmidi open clients of the audio server when they enumerate devices
(a JACK client, for instance), and PortAudio's JACK backend aborts the whole process
at exit if that server went away meanwhile. The window's process therefore never
initialises them: it asks a short-lived child instead. Any thread but the GUI thread
(it waits for the child).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.audio_types import NO_DEVICE, AudioDevice, DeviceReport, NoAudioDevice

REPO = Path(__file__).resolve().parent.parent


def probe_devices(timeout: float = 20.0) -> DeviceReport:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run([sys.executable, "-m", "app.cli", "devices", "--json"],
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return DeviceReport(errors=[f"listing audio devices took more than {timeout:g} s"])
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return DeviceReport(errors=[f"could not list audio devices: {tail[0]}"])
    data = json.loads(lines[-1])
    fields = AudioDevice.__dataclass_fields__
    audio = [AudioDevice(**{k: v for k, v in d.items() if k in fields}) for d in data.get("audio", [])]
    return DeviceReport(audio=audio, midi=data.get("midi", {}), errors=data.get("errors", []))


def check_device(report: DeviceReport, hostapi: str | None, device: str | None,
                 input_channels: int, output_channels: int) -> AudioDevice:
    """The device a stream with these settings would open; NoAudioDevice (one line) if none."""
    if not report.audio:
        raise NoAudioDevice(report.errors[0] if report.errors else NO_DEVICE)
    found = [d for d in report.audio
             if (not hostapi or hostapi.lower() in d.hostapi.lower())
             and (not device or device.lower() in d.name.lower())
             and d.max_input_channels >= input_channels and d.max_output_channels >= output_channels]
    if not found:
        raise NoAudioDevice(f"no audio device matches device={device or 'default'!r} host API="
                            f"{hostapi or 'any'!r} with {input_channels} in / {output_channels} out")
    return found[0]
