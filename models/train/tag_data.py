"""Labelled sounds for the tagger, from Debian packages, each clip naming its package.

Labels: Hydrogen kits' ``drumkit.xml`` instrument names, Sonic Pi's file name prefixes,
LMMS's sample folders, and fluidsynth renders of three General MIDI banks (FluidR3 GM,
csound's sf_GMbank, the OPL3 FM bank: drum keys, program families at notes in each
instrument's range, rendered loops) and of the AVL acoustic drum kits (each key's piece,
named by its samples). Packages in
``sources.RESERVED_PACKAGES`` are never read. Runs in the training process only.
"""

from __future__ import annotations

import pathlib
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from models.tag_vocabulary import DRUM_TAGS, tags_in_text
from models.train.sources import RESERVED_PACKAGES, trim_tail

HYDROGEN = pathlib.Path("/usr/share/hydrogen/data/drumkits")
SONIC_PI = pathlib.Path("/usr/share/sonic-pi/samples")
LMMS = pathlib.Path("/usr/share/lmms/samples")
LAYERS_PER_INSTRUMENT = 6


@dataclass
class LabelledClip:
    package: str
    name: str
    tag: str
    loop: bool
    path: pathlib.Path | None = None      # a file to decode, or
    audio: np.ndarray | None = None       # rendered audio at 44.1 kHz


def _owner(path: pathlib.Path) -> str:
    result = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True)
    return result.stdout.split(":")[0].strip() if result.returncode == 0 else "unknown"


def _refuse_reserved(package: str) -> None:
    if package in RESERVED_PACKAGES:
        raise RuntimeError(f"{package} is reserved for evaluation")


def hydrogen_clips() -> list[LabelledClip]:
    """Layers of each kit instrument whose name says what it is."""
    clips = []
    for xml in sorted(HYDROGEN.glob("*/drumkit.xml")):
        package = _owner(xml.parent)
        _refuse_reserved(package)
        root = ET.parse(xml).getroot()
        for instrument in root.iter():
            if instrument.tag.split("}")[-1] != "instrument":
                continue
            name = next((c.text or "" for c in instrument if c.tag.split("}")[-1] == "name"), "")
            files = [c.text for c in instrument.iter() if c.tag.split("}")[-1] == "filename" and c.text]
            tag = _hydrogen_tag(name, xml.parent.name)
            if tag is None:
                continue
            per_instrument = 2 if tag == "pad/keys" else LAYERS_PER_INSTRUMENT
            for filename in files[:per_instrument]:
                path = xml.parent / filename
                if path.is_file():
                    clips.append(LabelledClip(package, f"{xml.parent.name}/{filename}", tag, False, path))
    return clips


def _hydrogen_tag(name: str, kit: str) -> str | None:
    if "GuitarStrums" in kit:
        return "pad/keys"          # strummed guitar chords
    lowered = name.lower()
    if "stick" in lowered and "side" not in lowered:
        return None                # drum sticks clicked together: no class of ours
    found = [t for t in tags_in_text(name) if t in DRUM_TAGS]
    return found[0] if len(found) == 1 else None


_SONIC_PI = {
    "bd": "kick", "sn": "snare", "tabla": "percussion", "perc": "percussion", "vinyl": "fx",
    "glitch": "fx", "mehackit": "fx", "misc": "fx", "bass": "bass", "guit": "lead",
}
_SONIC_PI_NAMES = {
    "ambi_choir": "vocal", "ambi_dark_woosh": "fx", "ambi_swoosh": "fx", "ambi_lunar_land": "fx",
    "ambi_piano": "pad/keys", "ambi_drone": "pad/keys", "ambi_glass_hum": "pad/keys",
    "ambi_glass_rub": "pad/keys", "ambi_haunted_hum": "pad/keys", "ambi_sauna": "pad/keys",
    "ambi_soft_buzz": "pad/keys", "guit_em9": "pad/keys", "glitch_bass_g": "bass",
    "perc_snap": "clap", "perc_snap2": "clap", "perc_swash": "cymbal", "perc_swoosh": "fx",
    "perc_impact1": "fx", "perc_impact2": "fx", "perc_door": "fx",
    "drum_bass_hard": "kick", "drum_bass_soft": "kick", "drum_heavy_kick": "kick",
    "drum_cowbell": "percussion", "drum_cymbal_closed": "closed hat",
    "drum_cymbal_pedal": "closed hat", "drum_cymbal_open": "open hat", "drum_cymbal_hard": "cymbal",
    "drum_cymbal_soft": "cymbal", "drum_splash_hard": "cymbal", "drum_splash_soft": "cymbal",
    "drum_snare_hard": "snare", "drum_snare_soft": "snare", "elec_cymbal": "cymbal",
    "elec_filt_snare": "snare", "elec_hi_snare": "snare", "elec_lo_snare": "snare",
    "elec_mid_snare": "snare", "elec_snare": "snare", "elec_fuzz_tom": "tom",
    "elec_hollow_kick": "kick", "elec_soft_kick": "kick", "elec_triangle": "percussion",
    "elec_wood": "percussion", "elec_tick": "percussion", "elec_bell": "percussion",
    "elec_chime": "percussion", "elec_beep": "fx", "elec_blip": "fx", "elec_blip2": "fx",
    "elec_blup": "fx", "elec_bong": "fx", "elec_flip": "fx", "elec_ping": "fx", "elec_plip": "fx",
    "elec_pop": "fx", "elec_twang": "fx", "elec_twip": "fx",
    "loop_amen": "drum loop", "loop_amen_full": "drum loop", "loop_breakbeat": "drum loop",
    "loop_compus": "drum loop", "loop_industrial": "drum loop", "loop_safari": "drum loop",
    "loop_tabla": "drum loop", "loop_perc1": "drum loop", "loop_perc2": "drum loop",
    "loop_mika": "melodic loop", "loop_garzul": "melodic loop", "loop_drone_g_97": "melodic loop",
    "loop_electric": "melodic loop", "loop_mehackit1": "melodic loop",
    "loop_mehackit2": "melodic loop", "loop_weirdo": "melodic loop", "loop_3d_printer": "full mix",
}
for _stem in [f"drum_tom_{h}_{s}" for h in ("hi", "mid", "lo") for s in ("hard", "soft")]:
    _SONIC_PI_NAMES[_stem] = "tom"


def sonic_pi_clips() -> list[LabelledClip]:
    clips = []
    for path in sorted(SONIC_PI.glob("*.flac")):
        package = _owner(path)
        _refuse_reserved(package)
        stem = path.stem
        tag = _SONIC_PI_NAMES.get(stem) or _SONIC_PI.get(stem.split("_")[0])
        if tag is None or tag == "full mix":
            continue
        clips.append(LabelledClip(package, path.name, tag, stem.startswith("loop_"), path))
    return clips


_LMMS_FOLDERS = {"basses": "bass", "bassloops": "bass loop", "beats": "drum loop",
                 "effects": "fx", "latin": None, "stringsnpads": "pad/keys"}
_LMMS_NAMES = {
    "beats/rave_hihat01": "drum loop", "latin/latin_guitar01": "melodic loop",
    "latin/latin_guitar02": "melodic loop", "latin/latin_guitar03": "melodic loop",
    "latin/latin_brass01": "melodic loop", "stringsnpads/bell_choir01": "vocal",
    "stringsnpads/bell_choir02": "vocal", "stringsnpads/rave_choir01": "vocal",
    "stringsnpads/chorus01": "vocal", "stringsnpads/chorus02": "vocal",
    "instruments/bassslap01": "bass", "instruments/bassslap02": "bass",
    "instruments/cello01": "lead", "instruments/trumpet01": "lead", "instruments/flute01": "lead",
    "instruments/violin_fingered01": "lead", "instruments/violin_double_stop01": "lead",
    "instruments/violin_pizzicato01": "lead", "instruments/steel_guitar01": "lead",
    "instruments/steel_guitar_medium_distorted01": "lead",
    "instruments/steel_guitar_slight_distorted01": "lead",
    "instruments/steel_guitar_heavy_distorted01": "lead",
    "drums/zap01": "fx", "drums/zap02": "fx", "drums/zap03": "fx", "drums/nasty_bass01": "bass",
    "drums/clav01": "percussion", "drums/clav02": "percussion",
    "misc/applause01": "fx", "misc/breath01": "vocal", "misc/raving_crowd01": "fx",
    "misc/metronome01": "percussion", "misc/metronome02": "percussion", "misc/hit01": "fx",
    "misc/hit02": "fx", "misc/electric_ping01": "fx", "misc/buzz!": "fx",
    "misc/bass!": "bass", "misc/snaph01": "clap",
}


def lmms_clips() -> list[LabelledClip]:
    clips = []
    for path in sorted(LMMS.glob("*/*.ogg")):
        folder = path.parent.name
        key = f"{folder}/{path.stem}"
        tag = _LMMS_NAMES.get(key)
        if tag is None and folder in ("instruments",):
            tag = "pad/keys"        # pianos, organs, harpsichord, e-piano chords
        if tag is None and folder == "drums":
            found = tags_in_text(path.stem)
            tag = found[0] if found and found[0] in DRUM_TAGS else None
        if tag is None:
            tag = _LMMS_FOLDERS.get(folder)
        if tag is None:
            continue
        package = _owner(path)
        _refuse_reserved(package)
        loop = folder in ("bassloops", "beats", "latin")
        clips.append(LabelledClip(package, key, tag, loop, path))
    return clips


def gm_program_tag(program: int) -> str | None:
    """The tag of a General MIDI program's sound (None where none of ours fits)."""
    if program < 8 or 16 <= program < 24 or 88 <= program < 96 or 48 <= program < 52:
        return "pad/keys"           # pianos, organs, synth pads, string ensembles
    if 8 <= program < 16:
        return "percussion" if program in (11, 12, 13) else "pad/keys"   # mallets / bells
    if 32 <= program < 40 or program == 43:
        return "bass"
    if 52 <= program < 55 or program == 85:
        return "vocal"              # choir, voice oohs, synth voice, voice lead
    if program in (55, 119) or 120 <= program < 128:
        return "fx"                 # orchestra hit, reverse cymbal, sound effects
    if 96 <= program < 104:
        return None                 # "synth effects" (rain, soundtrack, crystal, atmosphere,
                                    # brightness, goblins, echoes, sci-fi): as often pads and
                                    # bells as effects
    if program == 117:
        return "tom"                # melodic tom
    if 112 <= program < 119:
        return "percussion"
    if program in (44, 45, 46, 47):
        return None                 # tremolo / pizzicato strings, harp, timpani: ambiguous
    return "lead"                   # guitars, solo strings, brass, reeds, pipes, synth leads, ethnic


def gm_pitch_range(program: int) -> tuple[int, int]:
    """MIDI notes ``[low, high)`` a General MIDI program is rendered at: where the instrument
    plays, so that a note's sound fits its label (a bass program at C6 is no bass sound, a
    flute at C2 is a stretched sample no library holds)."""
    if 32 <= program < 40 or program == 43:
        return 28, 56               # basses: E1 to G3
    if program in (42, 57, 58, 67, 70):
        return 36, 69               # cello, trombone, tuba, baritone sax, bassoon
    if 68 <= program < 80:
        return 60, 92               # oboe, English horn, clarinet, flutes and pipes
    if gm_program_tag(program) == "lead":
        return 48, 85               # guitars, violin, viola, brass, saxes, synth leads, ethnic
    return 36, 85


def gm_drum_tag(key: int) -> str | None:
    if key in (35, 36):
        return "kick"
    if key in (37, 38, 40):
        return "snare"
    if key == 39:
        return "clap"
    if key in (41, 43, 45, 47, 48, 50):
        return "tom"
    if key in (42, 44):
        return "closed hat"
    if key == 46:
        return "open hat"
    if key in (71, 72):
        return None                 # whistles: no class of ours
    if key in (49, 51, 52, 53, 55, 57, 59):
        return "cymbal"
    if 54 <= key <= 81:
        return "percussion"
    return None


def _drum_key(name: str) -> int:
    """The MIDI key of a ``midi_render`` drum clip's name (``...-key38-v100``)."""
    return int(name.split("-key")[1].split("-")[0])


def gm_bank_clips(rng: np.random.Generator, soundfont, kits: tuple[int, ...]) -> list[LabelledClip]:
    """Renders of a General MIDI bank: program notes, the drum keys of its ``kits`` (the
    orchestral one left out), drum loops, and bass and melodic phrases as loops."""
    from models.train import midi_render as mr

    package = _owner(soundfont)
    _refuse_reserved(package)
    clips = []
    for name, audio in mr.melodic_clips(rng, notes_per_program=3, pitch_range=gm_pitch_range,
                                        soundfont=soundfont):
        tag = gm_program_tag(int(name[2:5]))
        if tag is not None:
            clips.append(LabelledClip(package, name, tag, False, audio=trim_tail(audio)))
    for name, audio in mr.drum_clips(rng, soundfont, kits):
        kit, key = int(name[3:5]), _drum_key(name)
        tag = gm_drum_tag(key)
        if tag is not None and kit != 48 and (key % 2 == 0 or tag != "percussion"):
            clips.append(LabelledClip(package, name, tag, False, audio=trim_tail(audio)))
    for name, audio in mr.drum_loops(rng, count=60, soundfont=soundfont, kits=kits):
        clips.append(LabelledClip(package, name, "drum loop", True, audio=trim_tail(audio)))
    clips += _phrase_loops(rng, package, soundfont)
    return clips


# The pieces of the AVL kits by key (both kits share one layout; the sample names say
# what each is: 37 a side stick, 44 a pedal hat, 46 a half-open hat, 50/52/58 choked
# cymbals, 60 a china, 61 maracas). 48 is a hi-hat swish, no class of ours.
AVL_KEY_TAGS = {36: "kick", 37: "snare", 38: "snare", 39: "clap", 40: "snare", 41: "tom",
                42: "closed hat", 43: "tom", 44: "closed hat", 45: "tom", 46: "open hat",
                47: "tom", 49: "cymbal", 50: "cymbal", 51: "cymbal", 52: "cymbal",
                53: "cymbal", 54: "percussion", 55: "cymbal", 56: "percussion",
                57: "cymbal", 58: "cymbal", 59: "cymbal", 60: "cymbal", 61: "percussion"}


def avl_clips(rng: np.random.Generator) -> list[LabelledClip]:
    """The AVL acoustic kits (avldrums.lv2-soundfont): each piece at six of its velocity
    layers (every other one of ``midi_render.avl_drum_clips``), tagged by ``AVL_KEY_TAGS``."""
    from models.train import midi_render as mr

    package = _owner(mr.AVL_KITS[0])
    _refuse_reserved(package)
    clips = []
    for n, (name, audio) in enumerate(mr.avl_drum_clips(rng)):
        tag = AVL_KEY_TAGS.get(_drum_key(name))
        if tag is not None and n % 2 == 0:
            clips.append(LabelledClip(package, name, tag, False, audio=trim_tail(audio)))
    return clips


def _phrase_loops(rng: np.random.Generator, package: str, soundfont,
                  count: int = 60) -> list[LabelledClip]:
    """Two-bar phrases of bass or melodic programs at 80-160 bpm on ``soundfont``, rendered
    one per slot."""
    from models.train import midi_render as mr

    clips = []
    slot = 8.0
    for start in range(0, count, 10):
        events, names = [], []
        for k in range(10):
            bass = (start + k) % 2 == 0
            program = int(rng.choice([33, 34, 35, 38, 39]) if bass else
                          rng.choice([0, 4, 16, 24, 25, 27, 56, 65, 73, 80, 81, 90]))
            bpm = float(rng.uniform(80, 160))
            step = 60.0 / bpm / 2
            base = k * slot + 0.02
            channel = k % 8
            events += mr.program_change(channel, program, base)
            root = int(rng.integers(36, 48) if bass else rng.integers(55, 72))
            scale = [0, 2, 3, 5, 7, 8, 10, 12]
            t = base + 0.01
            while t < base + slot - 0.6:
                pitch = root + int(rng.choice(scale))
                length = step * float(rng.choice([0.5, 0.9, 1.8]))
                events += mr.note(channel, pitch, int(rng.integers(70, 120)), t, length)
                t += step * int(rng.choice([1, 1, 2]))
            names.append((f"phrase{start + k:03d}-gm{program:03d}", "bass loop" if bass else "melodic loop"))
        audio = mr.render(events, 10 * slot + 0.5, soundfont)
        n = int(slot * mr.SAMPLE_RATE)
        for k, (name, tag) in enumerate(names):
            clips.append(LabelledClip(package, name, tag, True, audio=audio[k * n:(k + 1) * n]))
    return clips


# the drum kits each bank holds (another kit number plays its standard kit)
CSOUND_KITS = (0, 16, 24, 25, 40)
OPL3_KITS = (0,)


def all_clips(seed: int = 20261204, log=print) -> list[LabelledClip]:
    rng = np.random.default_rng(seed)
    from models.train import midi_render as mr
    clips = (hydrogen_clips() + sonic_pi_clips() + lmms_clips()
             + gm_bank_clips(rng, mr.SOUNDFONT, mr.DRUM_KITS))
    # later packages draw from streams of their own, so adding one leaves the others' clips
    clips += avl_clips(np.random.default_rng([seed, 1]))
    clips += gm_bank_clips(np.random.default_rng([seed, 2]), mr.CSOUND_GM, CSOUND_KITS)
    clips += gm_bank_clips(np.random.default_rng([seed, 3]), mr.OPL3_GM, OPL3_KITS)
    counts: dict[str, int] = {}
    for clip in clips:
        counts[clip.package] = counts.get(clip.package, 0) + 1
    log(f"{len(clips)} labelled clips: {counts}")
    return clips
