"""Category labels for the Debian sample sets used by the retrieval benchmark.

Every audio file gets a *strict* category (the fine label, e.g. ``kick``, ``hihat``)
and a *coarse* family (e.g. ``drum``, ``cymbal``), or ``None`` when no rule applies.
Unlabelled files stay in the library as candidates for re-identification but take
no part in category precision.

Sources and rules
-----------------
Hydrogen kits (``/usr/share/hydrogen/data/drumkits/<kit>/drumkit.xml``,
packages ``hydrogen-drumkits`` and ``hydrogen-drumkits-effects``):
    each ``<instrument>``'s ``<name>`` labels every ``<filename>`` of its layers.
    The name is normalised (see :func:`normalise_name`: lower case, a parenthesised
    model description such as ``(Tama Superstar 22")`` dropped, a leading note
    such as ``c#3 -`` dropped, punctuation to spaces, camel case split) and run
    through :data:`KEYWORD_RULES` in a drum context. The kit
    ``belofilms_GuitarStrums`` is all guitar chords: every file is ``guitar``.
    Names like ``Sample: beats_08-37.flac`` or ``17`` match nothing: unlabelled.
    A file used by two instruments with different categories is unlabelled.

Sonic Pi (``/usr/share/sonic-pi/samples``, package ``sonic-pi-samples``):
    by filename prefix (:data:`SONIC_PI_PREFIXES`). ``bd_`` kick, ``sn_`` snare;
    ``drum_``, ``elec_`` and ``perc_`` run the rest of the name through the keyword
    rules (drum context) and fall back to a prefix default (``drum_`` none,
    ``elec_`` ``blip``, ``perc_`` ``percussion``); ``loop_`` loop, ``ambi_``
    ambient, ``bass_`` bass, ``guit_`` guitar, ``tabla_`` hand_drum, ``vinyl_``
    vinyl, ``glitch_`` glitch, ``misc_`` and ``mehackit_`` fx.

LMMS (``/usr/share/lmms/samples``, package ``lmms-common``):
    by the first folder (:data:`LMMS_FOLDERS`); in ``drums/`` the filename runs
    through the keyword rules (drum context), e.g. ``bassdrum03`` kick,
    ``sidestick01`` rim, ``clav01`` wood, ``zap01`` fx; an unmatched drum is
    unlabelled. ``drumsynth/`` holds synth patches (``.ds``), not audio.

Keyword rules (first match wins, matched on whole words or word prefixes of the
normalised name):
    kick: kick, bd, bassdrum, "bass drum", and "bass" in a drum context;
    snare: snare, sn (before rim, so a snare rimshot is a snare);
    rim: rim, stick, sidestick, "side stick";
    hihat: hh, hihat, "hi hat", hat, chh, ohh, and Sonic Pi's "cymbal closed /
    open / pedal" (hi-hats there);
    tom: tom, floortom;  cymbal: crash, ride, splash, china, cymbal, swash;
    clap: clap;  snap: snap, fingersnap;  shaker: shaker, maraca, tambourine;
    bell: cowbell, agogo, bell, triangle;  wood: clave, clav, woodblock, wood;
    hand_drum: conga, bongo, djembe, cajon, tabla, sangban, dununba, kenkeni;
    fx: zap, fx, whistle, impact, swoosh, door, till.

Coarse families (:data:`COARSE`): drum = kick snare tom rim; cymbal = hihat
cymbal; percussion = clap snap shaker bell wood hand_drum percussion; tonal = bass
guitar instrument pad ambient synth waveform; loop = loop bass_loop; fx = fx blip
glitch vinyl.

Pure functions; any thread may call them.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

HYDROGEN_ROOT = Path("/usr/share/hydrogen/data/drumkits")
SONIC_PI_ROOT = Path("/usr/share/sonic-pi/samples")
LMMS_ROOT = Path("/usr/share/lmms/samples")
DEBIAN_ROOTS = (HYDROGEN_ROOT, SONIC_PI_ROOT, LMMS_ROOT)

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3"})

# (category, patterns); a pattern matches a normalised word that equals it or,
# when it ends with "*", starts with it. Multi-word patterns match consecutive words.
KEYWORD_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kick", ("kick*", "bd", "bassdrum*", "bass drum")),
    ("snare", ("snare*", "sn")),
    ("rim", ("rim*", "stick*", "sidestick*", "side stick")),
    ("hihat", ("hh*", "hihat*", "hi hat", "hat", "hats", "chh*", "ohh*",
               "cymbal closed", "cymbal open", "cymbal pedal")),
    ("tom", ("tom", "toms", "tomhi*", "tomlow*", "tommid*", "floortom*")),
    ("cymbal", ("crash*", "ride*", "splash*", "china*", "cymbal*", "swash*")),
    ("clap", ("clap*", "handclap*")),
    ("snap", ("snap*", "snaph*", "fingersnap*")),
    ("shaker", ("shaker*", "maraca*", "tambourine*")),
    ("bell", ("cowbell*", "agogo*", "bell", "bells", "triangle*")),
    ("wood", ("clave*", "clav*", "woodblock*", "wood*")),
    ("hand_drum", ("conga*", "bongo*", "djembe*", "cajon*", "tabla*", "sangban*",
                   "dununba*", "kenkeni*")),
    ("fx", ("zap*", "fx", "whistle*", "impact*", "swoosh*", "door*", "till*")),
)

# In a drum context a bare "bass" is the bass drum (Sonic Pi ``drum_bass_hard``,
# LMMS ``drums/nasty_bass01``, Hydrogen ``c3 - bass drum 1``).
DRUM_CONTEXT_BASS = "kick"

SONIC_PI_PREFIXES: dict[str, str | None] = {
    "bd": "kick",
    "sn": "snare",
    "drum": None,  # keyword rules on the rest of the name, else unlabelled
    "elec": "blip",
    "perc": "percussion",
    "loop": "loop",
    "ambi": "ambient",
    "bass": "bass",
    "guit": "guitar",
    "tabla": "hand_drum",
    "vinyl": "vinyl",
    "glitch": "glitch",
    "misc": "fx",
    "mehackit": "fx",
}
# Prefixes whose names go through the keyword rules before the prefix default.
SONIC_PI_KEYWORD_PREFIXES = frozenset({"drum", "elec", "perc"})

LMMS_FOLDERS: dict[str, str | None] = {
    "drums": None,  # keyword rules on the filename
    "basses": "bass",
    "bassloops": "bass_loop",
    "beats": "loop",
    "effects": "fx",
    "instruments": "instrument",
    "latin": "instrument",
    "misc": "fx",
    "shapes": "synth",
    "stringsnpads": "pad",
    "waveforms": "waveform",
}

HYDROGEN_KIT_CATEGORY: dict[str, str] = {
    "belofilms_GuitarStrums": "guitar",
}

COARSE: dict[str, str] = {
    "kick": "drum", "snare": "drum", "tom": "drum", "rim": "drum",
    "hihat": "cymbal", "cymbal": "cymbal",
    "clap": "percussion", "snap": "percussion", "shaker": "percussion",
    "bell": "percussion", "wood": "percussion", "hand_drum": "percussion",
    "percussion": "percussion",
    "bass": "tonal", "guitar": "tonal", "instrument": "tonal", "pad": "tonal",
    "ambient": "tonal", "synth": "tonal", "waveform": "tonal",
    "loop": "loop", "bass_loop": "loop",
    "fx": "fx", "blip": "fx", "glitch": "fx", "vinyl": "fx",
}


@dataclass(frozen=True)
class Label:
    """A file's labels: ``strict`` (fine category) and ``coarse`` (family)."""

    source: str  # "hydrogen", "sonic-pi", "lmms" or "other"
    strict: str | None
    coarse: str | None


def normalise_name(name: str) -> list[str]:
    """Words of an instrument or file name: lower case, no model description or note.

    ``'Kick (Tama Superstar 22")'`` -> ``['kick']``; ``'c#3 - bass drum 1'`` ->
    ``['bass', 'drum']``; ``'HiHatClosed-0'`` -> ``['hi', 'hat', 'closed']``;
    ``'EE_Kick_Lite_1'`` -> ``['ee', 'kick', 'lite']``. Pure numbers are dropped.
    """
    text = re.sub(r"\([^)]*\)", " ", name or "")
    text = re.sub(r"^\s*[a-g]#?\d\s*-\s*", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)  # camel case
    text = re.sub(r"[^A-Za-z0-9]+", " ", text).lower()
    words = []
    for word in text.split():
        word = word.rstrip("0123456789") if not word.isdigit() else ""
        if word:
            words.append(word)
    return words


def _pattern_matches(pattern: str, words: list[str]) -> bool:
    parts = pattern.split()
    for start in range(len(words) - len(parts) + 1):
        if all(_word_matches(p, w) for p, w in zip(parts, words[start:start + len(parts)])):
            return True
    return False


def _word_matches(pattern: str, word: str) -> bool:
    if pattern.endswith("*"):
        return word.startswith(pattern[:-1])
    return word == pattern


def category_from_words(words: list[str], drum_context: bool) -> str | None:
    """Strict category from normalised words by :data:`KEYWORD_RULES`, or ``None``."""
    for category, patterns in KEYWORD_RULES:
        if any(_pattern_matches(p, words) for p in patterns):
            return category
    if drum_context and "bass" in words:
        return DRUM_CONTEXT_BASS
    return None


def category_from_name(name: str, drum_context: bool = True) -> str | None:
    """Strict category of a free-form instrument or file name."""
    return category_from_words(normalise_name(name), drum_context)


def _label(source: str, strict: str | None) -> Label:
    return Label(source, strict, COARSE.get(strict) if strict else None)


def _xml_children(element: ET.Element, tag: str) -> list[ET.Element]:
    return [child for child in element.iter() if child.tag.rsplit("}", 1)[-1] == tag]


def _xml_text(element: ET.Element, tag: str) -> str | None:
    for child in element:
        if child.tag.rsplit("}", 1)[-1] == tag:
            return child.text
    return None


def hydrogen_kit_labels(kit_dir: Path) -> dict[Path, Label]:
    """Labels of a Hydrogen kit's sample files from its ``drumkit.xml``.

    Files named by several instruments with different categories are unlabelled.
    Raises ``FileNotFoundError`` / ``ET.ParseError`` for a missing or broken XML file.
    """
    kit_dir = Path(kit_dir)
    root = ET.parse(kit_dir / "drumkit.xml").getroot()
    kit_category = HYDROGEN_KIT_CATEGORY.get(kit_dir.name)
    found: dict[Path, set[str | None]] = {}
    for instrument in _xml_children(root, "instrument"):
        name = _xml_text(instrument, "name") or ""
        category = kit_category or category_from_name(name, drum_context=True)
        for filename in _xml_children(instrument, "filename"):
            if filename.text:
                found.setdefault(kit_dir / filename.text.strip(), set()).add(category)
    labels = {}
    for path, categories in found.items():
        strict = next(iter(categories)) if len(categories) == 1 else None
        labels[path] = _label("hydrogen", strict)
    return labels


def sonic_pi_label(path: Path) -> Label:
    """Label of a Sonic Pi sample from its filename prefix."""
    stem = Path(path).stem.lower()
    prefix, _, rest = stem.partition("_")
    if prefix not in SONIC_PI_PREFIXES:
        return _label("sonic-pi", None)
    strict = None
    if prefix in SONIC_PI_KEYWORD_PREFIXES:
        strict = category_from_name(rest, drum_context=True)
    if strict is None:
        strict = SONIC_PI_PREFIXES[prefix]
    return _label("sonic-pi", strict)


def lmms_label(path: Path, root: Path = LMMS_ROOT) -> Label:
    """Label of an LMMS sample from its folder (and name, inside ``drums/``)."""
    relative = Path(path).relative_to(root)
    folder = relative.parts[0] if len(relative.parts) > 1 else ""
    if folder == "drums":
        return _label("lmms", category_from_name(Path(path).stem, drum_context=True))
    return _label("lmms", LMMS_FOLDERS.get(folder))


def list_audio_files(roots=DEBIAN_ROOTS) -> list[Path]:
    """Audio files under ``roots`` (by extension), sorted, symlinks not followed."""
    files = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for dirpath, _dirnames, filenames in os.walk(root):
            for filename in filenames:
                if os.path.splitext(filename)[1].lower() in AUDIO_EXTENSIONS:
                    files.append(Path(dirpath) / filename)
    return sorted(files)


def debian_labels(files: list[Path]) -> dict[Path, Label]:
    """Labels for every file in ``files``; files outside the three sets are unlabelled."""
    kit_labels: dict[Path, dict[Path, Label]] = {}
    labels = {}
    for path in files:
        path = Path(path)
        if HYDROGEN_ROOT in path.parents:
            kit_dir = HYDROGEN_ROOT / path.relative_to(HYDROGEN_ROOT).parts[0]
            if kit_dir not in kit_labels:
                try:
                    kit_labels[kit_dir] = hydrogen_kit_labels(kit_dir)
                except (OSError, ET.ParseError):
                    kit_labels[kit_dir] = {}
            labels[path] = kit_labels[kit_dir].get(path, _label("hydrogen", None))
        elif SONIC_PI_ROOT in path.parents:
            labels[path] = sonic_pi_label(path)
        elif LMMS_ROOT in path.parents:
            labels[path] = lmms_label(path)
        else:
            labels[path] = _label("other", None)
    return labels
