"""The messages the app process (`AudioEngine`) and the audio process exchange over their pipe.

Each message is a frozen dataclass; a receiver looks its handler up by the message's type (a
table per receiver, checked complete by the tests). Bulk data never travels here: audio
samples go through shared memory segments, levels and playheads through the shared block.

- `ToAudio`: app -> audio process (control loop).
- `ChainRequest` (a `ToAudio`): handed on to the chain control thread (`monitor.ChainHost`),
  answered with one `ChainDone` carrying the request's token.
- `ToApp`: audio process -> app (supervisor thread).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ToAudio", "Stop", "AttachSample", "PutSample", "SetSlots", "SetMidiMap", "LearnMidi",
           "ChainRequest", "BuildChain", "SetChainParameter", "SetChainBypass",
           "ToApp", "Started", "Failed", "Lost", "SampleReady", "MidiReceived", "ChainDone",
           "message_types"]


def message_types(base: type) -> set[type]:
    """Every concrete message class under `base` (the classes a receiver must handle)."""
    found, todo = set(), [base]
    while todo:
        cls = todo.pop()
        subs = cls.__subclasses__()
        if not subs and cls is not base:
            found.add(cls)
        todo.extend(subs)
    return found


# ---- app -> audio process ------------------------------------------------------------------

@dataclass(frozen=True)
class ToAudio:
    """Base of the messages the audio process handles."""


@dataclass(frozen=True)
class Stop(ToAudio):
    """Close the stream and end the audio process."""


@dataclass(frozen=True)
class AttachSample(ToAudio):
    """Process mode: sample `index` is a float32 array of `shape` in shared memory `shm_name`."""
    index: int
    shm_name: str
    shape: tuple[int, int]


@dataclass(frozen=True)
class PutSample(ToAudio):
    """Thread mode: sample `index` is `audio` itself (same process, no copy)."""
    index: int
    audio: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class SetSlots(ToAudio):
    """Sample index per audition slot (index 1..16; -1 = empty) that MIDI pads play."""
    slots: tuple[int, ...]


@dataclass(frozen=True)
class SetMidiMap(ToAudio):
    """Bindings of the audio process's MIDI map, as `MidiMap.to_json` writes them."""
    document: dict


@dataclass(frozen=True)
class LearnMidi(ToAudio):
    """Bind the next note or CC to `action`."""
    action: str


@dataclass(frozen=True)
class ChainRequest(ToAudio):
    """Base of the requests for the chain control thread. `generation` is the chain's version
    as the app numbers it (edits of an older one are refused); `token` pairs the answer."""
    chain: str
    generation: int
    token: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class BuildChain(ChainRequest):
    """Build the chain `spec` describes (`chain_presets.chain_to_dict`; None: dry) and swap it in."""
    spec: dict | None


@dataclass(frozen=True)
class SetChainParameter(ChainRequest):
    """Set parameter `name` of member `index` of the running chain."""
    index: int
    name: str
    value: float


@dataclass(frozen=True)
class SetChainBypass(ChainRequest):
    """Bypass or re-enable member `index` of the running chain."""
    index: int
    bypassed: bool


# ---- audio process -> app ------------------------------------------------------------------

@dataclass(frozen=True)
class ToApp:
    """Base of the messages the app's supervisor thread handles."""


@dataclass(frozen=True)
class Started(ToApp):
    """The stream runs. `latency` is sounddevice's `Stream.latency` (a float or an (in, out) pair)."""
    device: str
    midi: str
    latency: object = None


@dataclass(frozen=True)
class Failed(ToApp):
    """The stream could not be opened or started; the audio process ends."""
    message: str


@dataclass(frozen=True)
class Lost(ToApp):
    """The device stopped calling back; the audio process ends."""
    message: str


@dataclass(frozen=True)
class SampleReady(ToApp):
    """Sample `index` is in the mixer."""
    index: int


@dataclass(frozen=True)
class MidiReceived(ToApp):
    """An incoming MIDI message and the action the audio process's map ran or learned (or None)."""
    message: tuple[int, ...]
    action: str | None


@dataclass(frozen=True)
class ChainDone(ToApp):
    """Outcome of the chain request with `token`: None, or why it failed."""
    token: int
    error: str | None
