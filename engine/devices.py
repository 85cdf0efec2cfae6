"""Audio devices per host API and MIDI ports, as data plus one-line errors (for `samplescout devices`).

Call from a non-audio thread. PortAudio enumerates devices once when it initialises; pass
`rescan=True` to re-initialise it (only when no stream of this process is open).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import SampleScoutError

__all__ = ["AudioDevice", "DeviceReport", "JACK_CLIENT_NAME", "NoAudioDevice", "list_devices",
           "find_device", "describe", "name_jack_client"]


class NoAudioDevice(SampleScoutError, RuntimeError):
    """No (matching) audio device; the message is one line for the user."""


@dataclass
class AudioDevice:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float


@dataclass
class DeviceReport:
    audio: list[AudioDevice] = field(default_factory=list)
    midi: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def by_hostapi(self) -> dict[str, list[AudioDevice]]:
        out: dict[str, list[AudioDevice]] = {}
        for d in self.audio:
            out.setdefault(d.hostapi, []).append(d)
        return out


JACK_CLIENT_NAME = "samplescout"   # the audio process's JACK client: never offered as a device
_client_name = JACK_CLIENT_NAME.encode()   # PortAudio keeps the pointer


def name_jack_client() -> None:
    """Make PortAudio's JACK client of this process ``JACK_CLIENT_NAME`` (not "PortAudio"),
    so device listings can leave the app itself out. Re-initialises PortAudio: call before
    any stream of this process opens (the audio process does, first thing)."""
    try:
        import ctypes

        import sounddevice as sd
        set_name = getattr(ctypes.CDLL(sd._libname), "PaJack_SetClientName", None)
    except (OSError, ImportError):
        return
    if set_name is not None:
        set_name(ctypes.c_char_p(_client_name))
        sd._terminate()
        sd._initialize()


def _is_own_client(device: "AudioDevice") -> bool:
    return "jack" in device.hostapi.lower() and device.name == JACK_CLIENT_NAME


NO_DEVICE = ("no audio device found: no audio server or interface is available "
             "(start JACK, e.g. `jackd -d dummy -r 48000 -p 64`, or connect an interface)")


def _audio(rescan: bool) -> list[AudioDevice]:
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise NoAudioDevice(f"audio unavailable: PortAudio could not be loaded ({exc})") from None
    if rescan:
        sd._terminate()
        sd._initialize()
    apis = sd.query_hostapis()
    devices = [AudioDevice(i, d["name"], apis[d["hostapi"]]["name"], d["max_input_channels"],
                           d["max_output_channels"], d["default_samplerate"])
               for i, d in enumerate(sd.query_devices())]
    return [d for d in devices if not _is_own_client(d)]


def list_devices(rescan: bool = False, midi: bool = True) -> DeviceReport:
    report = DeviceReport()
    try:
        report.audio = _audio(rescan)
        if not report.audio:
            report.errors.append(NO_DEVICE)
    except NoAudioDevice as exc:
        report.errors.append(str(exc))
    if midi:
        from .midi import list_midi_ports
        report.midi, midi_errors = list_midi_ports()
        if not any(report.midi.values()):
            report.errors.extend(midi_errors)
    return report


def find_device(hostapi: str | None = None, device: str | int | None = None,
                input_channels: int = 1, output_channels: int = 1) -> AudioDevice:
    """The first device matching a host API name substring and a device name substring (or
    index) with enough channels. Raises NoAudioDevice with one line."""
    devices = _audio(rescan=False)
    if not devices:
        raise NoAudioDevice(NO_DEVICE)
    candidates = devices
    if hostapi:
        candidates = [d for d in candidates if hostapi.lower() in d.hostapi.lower()]
        if not candidates:
            apis = sorted({d.hostapi for d in devices})
            raise NoAudioDevice(f"no audio device on host API {hostapi!r} (available: {', '.join(apis)})")
    if isinstance(device, int):
        candidates = [d for d in candidates if d.index == device]
    elif device:
        candidates = [d for d in candidates if device.lower() in d.name.lower()]
    candidates = [d for d in candidates if d.max_input_channels >= input_channels
                  and d.max_output_channels >= output_channels]
    if not candidates:
        raise NoAudioDevice(f"no audio device matches device={device!r} host API={hostapi!r} with "
                            f"{input_channels} in / {output_channels} out channels")
    if not hostapi:  # prefer an audio server over raw hardware when both exist
        candidates.sort(key=lambda d: 0 if "jack" in d.hostapi.lower() else 1)
    return candidates[0]


def describe(report: DeviceReport) -> list[str]:
    """Plain lines for a terminal."""
    lines = []
    for api, devs in report.by_hostapi().items():
        lines.append(f"{api}:")
        for d in devs:
            lines.append(f"  [{d.index}] {d.name}  in {d.max_input_channels} / out {d.max_output_channels}"
                         f"  {d.default_sample_rate:.0f} Hz")
    for api, ports in report.midi.items():
        lines.append(f"MIDI ({api}): " + (", ".join(ports) if ports else "no input ports"))
    lines.extend(report.errors)
    return lines
