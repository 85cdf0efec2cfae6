"""Strummed-chord events for the training data: order, spacing and ringing of the strings."""

import numpy as np

from models.train.midi_render import CHORD_SHAPES, strum_events


def _note_ons(events):
    return sorted((t, m[1], m[2]) for t, m in events if m[0] & 0xF0 == 0x90)


def _note_offs(events):
    return {m[1]: t for t, m in events if m[0] & 0xF0 == 0x80}


def test_a_down_stroke_plays_every_string_low_to_high_within_the_spread():
    events = strum_events(45, "major", "down", 90, 0.02, 2.0, np.random.default_rng(0))
    ons = _note_ons(events)
    assert [p for _, p, _ in ons] == [45 + s for s in CHORD_SHAPES["major"]]
    gaps = np.diff([t for t, _, _ in ons])
    assert np.all(gaps >= 0.7 * 0.02 - 1e-9) and np.all(gaps <= 1.3 * 0.02 + 1e-9)
    assert all(abs(v - 90) <= 6 for _, _, v in ons)
    # every string rings until the chord's end, however late it was struck
    assert np.allclose(list(_note_offs(events).values()), 2.0)


def test_an_up_stroke_plays_the_top_four_strings_high_to_low_and_softer():
    events = strum_events(45, "minor", "up", 90, 0.02, 2.0, np.random.default_rng(0))
    ons = _note_ons(events)
    top_four = [45 + s for s in CHORD_SHAPES["minor"]][::-1][:4]
    assert [p for _, p, _ in ons] == top_four
    assert all(abs(v - 75) <= 6 for _, _, v in ons)


def test_velocities_stay_in_the_midi_range():
    events = strum_events(40, "sus4", "down", 127, 0.01, 1.0, np.random.default_rng(3))
    assert all(1 <= v <= 127 for _, _, v in _note_ons(events))
    events = strum_events(40, "sus4", "up", 5, 0.01, 1.0, np.random.default_rng(3))
    assert all(1 <= v <= 127 for _, _, v in _note_ons(events))
