"""Render notes of SoundFonts (General MIDI banks, the AVL drum kits) to audio with the fluidsynth program.

A minimal Standard MIDI File writer (format 0) builds one file per program; fluidsynth
renders it offline to a 44.1 kHz WAV, which is cut into one clip per note event.
Runs in the data-preparation process only.
"""

from __future__ import annotations

import pathlib
import shutil
import struct
import subprocess
import tempfile

import numpy as np
import soundfile as sf

SOUNDFONT = pathlib.Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
# Glen MacArthur's AVL drum kits (Debian avldrums.lv2-soundfont): acoustic kits recorded
# at many velocities, one preset each with the pieces on GM drum keys 36-61.
AVL_KITS = (pathlib.Path("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"),
            pathlib.Path("/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2"))
AVL_KEYS = tuple(range(36, 62))
# Two more General MIDI banks, each its own package and its own sound: csound's small
# sampled bank and an OPL3 FM-synthesis bank (the tagger's labelled data; bench/tagging.py
# holds each package out in turn).
CSOUND_GM = pathlib.Path("/usr/share/sounds/sf2/sf_GMbank.sf2")
OPL3_GM = pathlib.Path("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2")
PACKAGE_OF = {SOUNDFONT: "fluid-soundfont-gm", CSOUND_GM: "csound-soundfont",
              OPL3_GM: "opl3-soundfont", **{kit: "avldrums.lv2-soundfont" for kit in AVL_KITS}}
SAMPLE_RATE = 44100
TICKS_PER_BEAT = 480
TEMPO_US = 500_000        # 120 bpm: one beat = 0.5 s, so one tick = 1/960 s
SLOT_SECONDS = 4.0        # each event gets its own 4 s slot, cut out afterwards
DRUM_CHANNEL = 9


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _seconds_to_ticks(seconds: float) -> int:
    return int(round(seconds * TICKS_PER_BEAT * 1e6 / TEMPO_US))


def write_midi(path: pathlib.Path, events: list[tuple[float, bytes]]) -> None:
    """Write a format-0 SMF; ``events`` are (time in seconds, raw channel message)."""
    track = bytearray(b"\x00\xff\x51\x03" + TEMPO_US.to_bytes(3, "big"))
    last = 0
    for time, message in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90)):
        tick = _seconds_to_ticks(time)
        track += _varlen(tick - last) + message
        last = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def render(events: list[tuple[float, bytes]], total_seconds: float,
           soundfont: pathlib.Path = SOUNDFONT) -> np.ndarray:
    """Render MIDI events with ``soundfont``; mono float32 at 44.1 kHz, ``total_seconds`` long."""
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed (apt-get install fluidsynth)")
    if not soundfont.is_file():
        package = PACKAGE_OF.get(soundfont, "the package that holds it")
        raise RuntimeError(f"{soundfont} missing (apt-get install {package})")
    with tempfile.TemporaryDirectory() as tmp:
        mid = pathlib.Path(tmp) / "notes.mid"
        wav = pathlib.Path(tmp) / "notes.wav"
        # a silent controller event at the end keeps the render long enough for release tails
        write_midi(mid, events + [(total_seconds, bytes([0xB0, 121, 0]))])
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SAMPLE_RATE),
                        "-o", "synth.reverb.active=0", "-o", "synth.chorus.active=0",
                        "-F", str(wav), "-T", "wav", str(soundfont), str(mid)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    assert rate == SAMPLE_RATE
    audio = audio.mean(axis=1)
    n = int(total_seconds * SAMPLE_RATE)
    return np.pad(audio, (0, max(0, n - audio.size)))[:n]


def note(channel: int, pitch: int, velocity: int, start: float, length: float):
    return [(start, bytes([0x90 | channel, pitch, velocity])),
            (start + length, bytes([0x80 | channel, pitch, 0]))]


def program_change(channel: int, program: int, time: float = 0.0):
    """Program change; on the drum channel fluidsynth takes the program from bank 128 (kits)."""
    return [(time, bytes([0xC0 | channel, program]))]


def render_slots(setup, slots: list[list[tuple[float, bytes]]],
                 soundfont: pathlib.Path = SOUNDFONT) -> list[np.ndarray]:
    """Render each slot's events (times relative to the slot) in its own 4 s slot; one clip each."""
    events = list(setup)
    for k, slot in enumerate(slots):
        events += [(k * SLOT_SECONDS + 0.05 + t, m) for t, m in slot]
    audio = render(events, len(slots) * SLOT_SECONDS + 0.5, soundfont)
    n = int(SLOT_SECONDS * SAMPLE_RATE)
    return [audio[k * n:(k + 1) * n] for k in range(len(slots))]


def melodic_clips(rng: np.random.Generator, notes_per_program: int = 4,
                  pitch_range=None, soundfont: pathlib.Path = SOUNDFONT) -> list[tuple[str, np.ndarray]]:
    """Single notes of all 128 GM programs of ``soundfont`` at random pitches, lengths and
    velocities.

    ``pitch_range(program)`` gives the notes ``[low, high)`` a program is drawn from
    (default 36-84 for every program).

    Every note comes with a sister: the same program a semitone or two away, or at the
    same pitch 30-60 velocity steps apart. Sisters are the near twins a library is full
    of (one instrument's neighbouring samples) and teach the fine differences that
    damage blurs.
    """
    clips = []
    for program in range(128):
        slots, names = [], []
        low, high = pitch_range(program) if pitch_range else (36, 85)
        for _ in range(notes_per_program):
            pitch = int(rng.integers(low, high))
            length = float(rng.uniform(0.15, 2.0))
            velocity = int(rng.integers(60, 128))
            if rng.random() < 0.5:
                sister_pitch, sister_velocity = pitch + int(rng.choice([-2, -1, 1, 2])), velocity
            else:
                step = int(rng.integers(30, 61))
                sister_pitch = pitch
                sister_velocity = velocity - step if velocity - step >= 20 else min(127, velocity + step)
            for p, v in ((pitch, velocity), (sister_pitch, sister_velocity)):
                name = f"gm{program:03d}-p{p}-v{v}"
                if name not in names:
                    slots.append(note(0, p, v, 0.0, length))
                    names.append(name)
        for name, audio in zip(names, render_slots(program_change(0, program), slots, soundfont)):
            clips.append((name, audio))
    return clips


DRUM_KITS = (0, 8, 16, 24, 25, 32, 40, 48)   # standard, room, power, electronic, 808, jazz, brush, orchestra


VELOCITY_LAYERS = (40, 70, 100, 127)


def drum_clips(rng: np.random.Generator, soundfont: pathlib.Path = SOUNDFONT,
               kits: tuple[int, ...] = DRUM_KITS) -> list[tuple[str, np.ndarray]]:
    """Every GM percussion key (35-81) of ``kits`` of ``soundfont`` at four velocities, one
    hit per clip.

    Velocity layers of one drum are the commonest near twins in a sample library; the
    SoundFont's velocity layers and velocity-to-filter modulation make them differ in
    timbre, not only in level (level twins are grouped by ``sources.level_twin_groups``).
    """
    clips = []
    for kit in kits:
        keys = list(range(35, 82))
        hits = [(key, int(np.clip(v + rng.integers(-5, 6), 1, 127))) for key in keys for v in VELOCITY_LAYERS]
        slots = [note(DRUM_CHANNEL, key, velocity, 0.0, 0.3) for key, velocity in hits]
        setup = program_change(DRUM_CHANNEL, kit)
        for (key, velocity), audio in zip(hits, render_slots(setup, slots, soundfont)):
            clips.append((f"kit{kit:02d}-key{key}-v{velocity}", audio))
    return clips


AVL_VELOCITIES = tuple(int(v) for v in np.linspace(12, 124, 12))


def avl_drum_clips(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Every piece of both AVL kits at twelve velocities (±3), one hit per clip.

    The kits hold separate recordings per velocity layer, so neighbouring velocities are
    different takes of one drum: the near twins a real drum library is made of, which
    level-only velocity layers (most of FluidR3's) cannot teach.
    """
    clips = []
    for soundfont in AVL_KITS:
        hits = [(key, int(np.clip(v + rng.integers(-3, 4), 1, 127)))
                for key in AVL_KEYS for v in AVL_VELOCITIES]
        slots = [note(0, key, velocity, 0.0, 0.3) for key, velocity in hits]
        kit = soundfont.stem.removesuffix("_LV2")
        for (key, velocity), audio in zip(hits, render_slots([], slots, soundfont)):
            clips.append((f"{kit}-key{key}-v{velocity}", audio))
    return clips


def drum_loops(rng: np.random.Generator, count: int = 80, soundfont: pathlib.Path = SOUNDFONT,
               kits: tuple[int, ...] = DRUM_KITS) -> list[tuple[str, np.ndarray]]:
    """Random one- or two-bar drum patterns (kick, snare, hats, toms, cymbals) at 70-170 bpm
    on ``kits`` of ``soundfont``."""
    clips = []
    per_file = 10
    for start in range(0, count, per_file):
        events = []
        names = []
        slot_len = 8.0
        for k in range(per_file):
            kit = int(rng.choice(kits))
            bpm = float(rng.uniform(70, 170))
            step = 60.0 / bpm / 4
            steps = int(min(32, (slot_len - 0.5) // step))
            base = k * slot_len + 0.05
            events += program_change(DRUM_CHANNEL, kit, base)
            hat = int(rng.choice([42, 44, 46, 51, 70]))
            for s in range(steps):
                t = base + 0.01 + s * step
                if s % 4 == 0 and rng.random() < 0.85 or rng.random() < 0.08:
                    events += note(DRUM_CHANNEL, int(rng.choice([35, 36])), int(rng.integers(90, 128)), t, 0.1)
                if s % 8 == 4 and rng.random() < 0.9 or rng.random() < 0.05:
                    events += note(DRUM_CHANNEL, int(rng.choice([38, 40, 39])), int(rng.integers(80, 128)), t, 0.1)
                if rng.random() < 0.6:
                    events += note(DRUM_CHANNEL, hat, int(rng.integers(40, 110)), t, 0.05)
                if rng.random() < 0.04:
                    events += note(DRUM_CHANNEL, int(rng.choice([41, 43, 45, 47, 48, 50, 49, 57, 55])),
                                   int(rng.integers(70, 120)), t, 0.1)
            names.append(f"loop{start + k:03d}-kit{kit}-bpm{bpm:.0f}")
        audio = render(events, per_file * slot_len + 0.5, soundfont)
        n = int(slot_len * SAMPLE_RATE)
        for k, name in enumerate(names):
            clips.append((name, audio[k * n:(k + 1) * n]))
    return clips
