"""The labelled audio of ``bench/understanding.py``, rendered with fluidsynth from FluidR3 GM.

Three sets, all from a fixed seed, labels known by construction:

- ``tempo``: drum grooves (rock, hip-hop, house, breakbeat patterns on the GM kits) and
  bass + chord loops at 70-180 BPM, 1, 2 or 4 bars of 4/4. Each pattern is rendered
  twice in a row and the second pass is cut out exactly, so the loop is a whole number
  of bars long and starts with the previous pass's tails, like a loop cut from a song.
  Half the items get a tempo in their name (``groove_<bpm>bpm``), half a neutral name.
  One-shots (single drum hits and notes, < 1.5 s) check abstention.
- ``key``: four-bar progressions that establish their key (I-IV-V-I, I-vi-IV-V;
  i-iv-V-i, i-VI-iv-V with the raised leading tone) in all 24 keys, each key in four
  styles: chords + bass (half with a melody), a full mix (chords, bass, melody and a
  drum groove), a melody alone (chord tones on the beats) and a bass line alone;
  chords on piano, electric piano, strings, organ, guitar and pad programs; plus drum
  grooves, which should be abstained on.
- ``root``: single notes (piano, electric piano, fingered and synth bass, strings,
  square and saw leads, guitar) with a random pitch bend of -45..+45 cents (the GM
  default bend range is +-2 semitones), each with an unbent twin (same note and
  velocity): the SoundFont's samples have tunings of their own (FluidR3's saw lead
  reads about +7 cents unbent, high piano notes are stretched sharp), so the tuning
  error is reported both against the nominal pitch and as the error of the measured
  bend (bent minus unbent); plus drum hits, which should be abstained on.

The WAVs (16-bit, 44.1 kHz) and ``labels.json`` are written once to
``bench/cache/understanding/`` (git-ignored) and reused while ``RECIPE`` is unchanged.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import soundfile as sf

from models.train.midi_render import (DRUM_CHANNEL, SAMPLE_RATE, note, program_change,
                                      render)

RECIPE = 4
CACHE = pathlib.Path(__file__).resolve().parent / "cache" / "understanding"
KITS = (0, 8, 16, 24, 25, 32)
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
KEY_PROGRAMS = (0, 4, 48, 16, 24, 89)
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
ROOT_PROGRAMS = {0: (36, 96), 4: (40, 88), 33: (28, 55), 38: (28, 60), 48: (40, 84),
                 80: (48, 90), 81: (40, 84), 24: (40, 80)}


def _groove(rng, style: str, bpm: float, bars: int, start: float, kit: int) -> list:
    step = 60.0 / bpm / 4
    events = program_change(DRUM_CHANNEL, kit, max(0.0, start - 0.01))
    kicks = {"rock": {0, 8}, "hiphop": {0, 7, 10}, "house": {0, 4, 8, 12}, "break": {0, 10}}[style]
    snares = {4, 12}
    for s in range(16 * bars):
        t = start + s * step
        pos = s % 16
        hit = lambda key, lo, hi, length=0.08: events.extend(  # noqa: E731
            note(DRUM_CHANNEL, key, int(rng.integers(lo, hi)), t, length))
        if pos in kicks or (style == "rock" and pos == 10 and rng.random() < 0.5):
            hit(36, 95, 127)
        if pos in snares:
            hit(39 if style == "house" else 38, 90, 127)
        elif style == "break" and pos in (7, 15) and rng.random() < 0.6:
            hit(38, 40, 70)
        if style == "house":
            if pos % 4 == 2:
                hit(46, 70, 100, 0.1)
            elif rng.random() < 0.5:
                hit(42, 30, 60, 0.03)
        elif style == "hiphop":
            hit(42, 45 + 40 * (pos % 2 == 0), 60 + 40 * (pos % 2 == 0), 0.03)
        elif pos % 2 == 0:
            hit(51 if style == "break" else 42, 60, 100, 0.05)
    return events


def _bass_chords(rng, bpm: float, bars: int, start: float, tonic: int) -> list:
    beat = 60.0 / bpm
    program = int(rng.choice((33, 38, 81)))
    at = max(0.0, start - 0.01)
    events = program_change(0, program, at) + program_change(1, 4, at)    # bass, electric piano
    degrees = (0, 5, 3, 4)       # I vi IV V in scale steps
    for bar in range(bars):
        degree = degrees[bar % 4]
        root = 36 + tonic + _MAJOR[degree]
        for eighth in range(8):
            if eighth in (0, 3, 4, 6) or rng.random() < 0.3:
                events += note(0, root + (12 if eighth == 6 else 0), 100,
                               start + (bar * 4 + eighth / 2) * beat, beat * 0.4)
        for b in (0, 2):
            chord = [60 + tonic + 12 * ((degree + i) // 7) + _MAJOR[(degree + i) % 7] for i in (0, 2, 4)]
            for pitch in chord:
                events += note(1, pitch, 80, start + (bar * 4 + b + 0.5) * beat, beat * 0.5)
    return events


def _tempo_items(rng) -> list[dict]:
    items = []
    for k in range(60):
        kind = "drums" if k < 40 else "bass_chords"
        style = ("rock", "hiphop", "house", "break")[k % 4]
        low = 110.0 if style == "house" and kind == "drums" else 70.0
        bpm = float(np.round(rng.uniform(low, 180.0), 1))
        bars = int(rng.choice((1, 2, 4)))
        named = k % 2 == 0
        items.append({"set": "tempo", "kind": kind, "style": style if kind == "drums" else "bass",
                      "bpm": bpm, "bars": bars, "kit": int(rng.choice(KITS)),
                      "tonic": int(rng.integers(0, 12)),
                      "name": f"groove_{bpm:g}bpm" if named else f"loop{k:02d}"})
    return items


def _render_tempo(rng, items: list[dict]) -> list[np.ndarray]:
    events, spans, t = [], [], 0.5
    for item in items:
        length = item["bars"] * 4 * 60.0 / item["bpm"]
        for rep in range(2):
            start = t + rep * length
            if item["kind"] == "drums":
                events += _groove(rng, item["style"], item["bpm"], item["bars"], start, item["kit"])
            else:
                events += _bass_chords(rng, item["bpm"], item["bars"], start, item["tonic"])
        spans.append((t + length, length))
        t += 2 * length + 1.5
    audio = render(events, t + 0.5)
    return [audio[int(round(s * SAMPLE_RATE)): int(round(s * SAMPLE_RATE)) + int(round(n * SAMPLE_RATE))]
            for s, n in spans]


_HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)
_PROGRESSIONS = {"major": ((0, 3, 4, 0), (0, 5, 3, 4)), "minor": ((0, 3, 4, 0), (0, 5, 3, 4))}


KEY_STYLES = ("chords", "chords+melody", "full mix", "melody", "bass")


def _key_events(rng, tonic: int, mode: str, style: str, progression: int, start: float,
                bpm: float) -> tuple[list, float]:
    """Four bars in ``style``: chords (channel 0), bass (1), melody (2), drums (9)."""
    scale = _MAJOR if mode == "major" else _HARMONIC_MINOR
    beat = 60.0 / bpm
    program = int(KEY_PROGRAMS[(tonic + progression) % len(KEY_PROGRAMS)])
    lead = int(rng.choice((73, 80, 81, 65, 56)))     # flute, square, saw, sax, trumpet
    bass = int(rng.choice((33, 38, 39)))
    at = max(0.0, start - 0.01)
    events = program_change(0, program, at) + program_change(1, bass, at) + program_change(2, lead, at)
    base = 48 + tonic if tonic < 6 else 36 + tonic

    def pitch(degree: int, octave: int = 0) -> int:
        return base + 12 * (octave + degree // 7) + scale[degree % 7]

    chords = style in ("chords", "chords+melody", "full mix")
    has_bass = style in ("chords", "chords+melody", "full mix", "bass")
    melody = style in ("chords+melody", "full mix", "melody")
    for bar, degree in enumerate(_PROGRESSIONS[mode][progression]):
        t0 = start + bar * 4 * beat
        if chords:
            for d in (degree, degree + 2, degree + 4):
                events += note(0, pitch(d, 1), 75, t0, 4 * beat * 0.95)
        if has_bass:
            low = pitch(degree, -1) - (12 if base >= 48 else 0)
            for b in range(4):
                step = (0, 0, 12, 7)[b] if style == "bass" else 0
                events += note(1, low + step, 95, t0 + b * beat, beat * 0.8)
        if melody:    # chord tones on the beats, scale steps between
            for b in range(8):
                d = degree + int(rng.choice((0, 2, 4)) if b % 2 == 0 else rng.choice((1, 3, 5, 0, 2)))
                events += note(2, pitch(d, 2), 85, t0 + b * beat / 2, beat * 0.45)
    if style == "full mix":
        events += _groove(rng, ("rock", "hiphop", "house", "break")[tonic % 4], bpm, 4, start, int(rng.choice(KITS)))
    return events, 16 * beat


def _render_key(rng) -> tuple[list[dict], list[np.ndarray]]:
    items, events, spans, t = [], [], [], 0.5
    for tonic in range(12):
        for mode in ("major", "minor"):
            styles = (KEY_STYLES[int(rng.integers(0, 2))],) + KEY_STYLES[2:]
            for style in styles:
                progression = int(rng.integers(0, 2))
                bpm = float(np.round(rng.uniform(80, 130), 1))
                ev, length = _key_events(rng, tonic, mode, style, progression, t, bpm)
                events += ev
                spans.append((t, length))
                items.append({"set": "key", "tonic": tonic, "mode": mode, "style": style, "bpm": bpm,
                              "name": f"{style.replace(' ', '_')}_{NAMES[tonic]}{'m' if mode == 'minor' else ''}"})
                t += length + 2.0
    for k in range(12):   # drum grooves: atonal
        bpm = float(np.round(rng.uniform(80, 160), 1))
        events += _groove(rng, ("rock", "hiphop", "house", "break")[k % 4], bpm, 2, t, int(rng.choice(KITS)))
        length = 8 * 60.0 / bpm
        spans.append((t, length))
        items.append({"set": "key", "tonic": None, "mode": "", "style": "drums", "name": f"drums{k}", "bpm": bpm})
        t += length + 1.5
    audio = render(events, t + 0.5)
    return items, [audio[int(s * SAMPLE_RATE): int((s + n) * SAMPLE_RATE)] for s, n in spans]


def _render_root(rng) -> tuple[list[dict], list[np.ndarray]]:
    items, events, t = [], [], 0.5
    slot = 3.0
    for program, (low, high) in ROOT_PROGRAMS.items():
        for _ in range(8):
            midi = int(rng.integers(low, high + 1))
            velocity = int(rng.integers(70, 120))
            bent = float(np.round(rng.uniform(-45, 45), 1))
            for cents in (bent, 0.0):     # the unbent twin measures the SoundFont's own tuning
                bend = int(round(8192 + cents / 200.0 * 8192))
                events += program_change(0, program, t - 0.02)
                events += [(t - 0.01, bytes([0xE0, bend & 0x7F, bend >> 7]))]
                events += note(0, midi, velocity, t, 2.0)
                items.append({"set": "root", "program": program, "midi": midi, "cents": cents,
                              "twin": cents == 0.0, "name": f"gm{program:03d}_{midi}{'' if cents else '_unbent'}"})
                t += slot
    for key in (36, 38, 42, 46, 49, 39, 51, 70):    # kick, snare, hats, crash, clap, ride, maracas
        events += note(DRUM_CHANNEL, key, 110, t, 0.2)
        items.append({"set": "root", "program": None, "midi": None, "cents": 0.0, "twin": False,
                      "name": f"drum{key}"})
        t += slot
    audio = render(events + [(t, bytes([0xE0, 0, 64]))], t + 0.5)
    clips = [audio[int((0.5 + k * slot) * SAMPLE_RATE): int((0.5 + k * slot + 2.5) * SAMPLE_RATE)]
             for k in range(len(items))]
    return items, clips


def _one_shots(rng) -> tuple[list[dict], list[np.ndarray]]:
    events, items, t = [], [], 0.5
    for k, key in enumerate((36, 38, 42, 49, 39, 45)):
        events += note(DRUM_CHANNEL, key, 110, t, 0.2)
        items.append({"set": "tempo", "kind": "one-shot", "bpm": None, "name": f"hit{k}", "dur": 0.8})
        t += 2.0
    for k, midi in enumerate((48, 60, 67)):
        events += program_change(0, (0, 33, 81)[k], t - 0.02) + note(0, midi, 100, t, 0.9)
        items.append({"set": "tempo", "kind": "one-shot", "bpm": None, "name": f"note{k}", "dur": 1.2})
        t += 2.0
    audio = render(events, t + 0.5)
    clips = [audio[int((0.5 + 2.0 * k) * SAMPLE_RATE): int((0.5 + 2.0 * k + item["dur"]) * SAMPLE_RATE)]
             for k, item in enumerate(items)]
    return items, clips


def load(seed: int = 17) -> list[tuple[dict, np.ndarray]]:
    """All labelled items with 44.1 kHz mono float32 audio, rendered once and cached."""
    labels = CACHE / "labels.json"
    if labels.is_file():
        saved = json.loads(labels.read_text())
        if saved.get("recipe") == RECIPE and saved.get("seed") == seed:
            return [(item, sf.read(str(CACHE / item["file"]), dtype="float32")[0]) for item in saved["items"]]
    rng = np.random.default_rng(seed)
    tempo = _tempo_items(rng)
    pairs = list(zip(tempo, _render_tempo(rng, tempo)))
    for items, clips in (_one_shots(rng), _render_key(rng), _render_root(rng)):
        pairs += list(zip(items, clips))
    CACHE.mkdir(parents=True, exist_ok=True)
    for k, (item, audio) in enumerate(pairs):
        item["file"] = f"{k:03d}_{item['set']}.wav"
        sf.write(str(CACHE / item["file"]), audio, SAMPLE_RATE, subtype="PCM_16")
    labels.write_text(json.dumps({"recipe": RECIPE, "seed": seed, "items": [i for i, _ in pairs]}, indent=1))
    return load(seed)
