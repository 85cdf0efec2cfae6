"""The tag vocabulary: canonical instrument / type, genre and mood tags and the words that
name them.

Pure data and a tokeniser, shared by the tagger's training labels (``models/train``) and
the app's thesaurus (``app/thesaurus.py``), so a name-derived tag and an audio tag of the
same sound are the same string. Any thread.
"""

from __future__ import annotations

import re

ONE_SHOT_TAGS = ("kick", "snare", "clap", "closed hat", "open hat", "cymbal", "tom",
                 "percussion", "bass", "lead", "pad/keys", "vocal", "fx")
LOOP_TAGS = ("drum loop", "bass loop", "melodic loop", "vocal loop", "full mix")
CANONICAL_TAGS = ONE_SHOT_TAGS + LOOP_TAGS
# Genre and mood facets of loops and longer files (``models/genre_mood.py``). They are not
# read from file names (a "House" folder says little about a kick), only heard or given.
GENRE_TAGS = ("rock", "indie", "pop", "electronic", "dance", "house", "hip-hop", "rnb", "soul",
              "funk", "jazz", "blues", "folk", "country", "metal", "punk", "ambient",
              "experimental", "easy listening")
MOOD_TAGS = ("chill", "mellow", "beautiful", "happy", "sad", "party", "sexy", "catchy")
ALL_TAGS = CANONICAL_TAGS + GENRE_TAGS + MOOD_TAGS
DRUM_TAGS = ("kick", "snare", "clap", "closed hat", "open hat", "cymbal", "tom", "percussion")

# The loop tag a one-shot family turns into when the sound is a loop.
LOOP_OF = {**{tag: "drum loop" for tag in DRUM_TAGS}, "bass": "bass loop", "lead": "melodic loop",
           "pad/keys": "melodic loop", "vocal": "vocal loop", "fx": "full mix"}

# Words (lower case, one token or two joined by a space) -> canonical tag. A file or folder
# name is split into tokens; single tokens and adjacent pairs are looked up.
SYNONYMS: dict[str, str] = {}


def _add(tag: str, *words: str) -> None:
    for word in words:
        SYNONYMS[word] = tag


_add("kick", "kick", "kicks", "kik", "kck", "bd", "bassdrum", "bass drum", "kickdrum",
     "kick drum", "808 kick", "bombo")
_add("snare", "snare", "snares", "sd", "snr", "sn", "rimshot", "rim", "sidestick",
     "side stick", "stick", "snare drum")
_add("clap", "clap", "claps", "handclap", "hand clap", "clp", "cp", "snap", "snaps",
     "finger snap", "fingersnap")
_add("closed hat", "hh", "hihat", "hi hat", "hat", "hats", "chh", "ch", "closed hat",
     "closed hh", "closed hihat", "hat closed", "hihat closed", "hh closed", "pedal hh",
     "hat pedal", "hh pedal", "pedal hat", "hihat foot", "hh c", "cymbal closed", "cymbal pedal")
_add("open hat", "ohh", "oh", "open hat", "open hh", "open hihat", "hat open", "hihat open",
     "hh open", "hihat opened", "hat semi", "cymbal open")
_add("cymbal", "cymbal", "cymbals", "crash", "crashes", "ride", "rides", "splash", "china",
     "cym", "cy", "cr", "rd", "bell ride", "ride bell", "swish")
_add("tom", "tom", "toms", "tomtom", "floor tom", "tom floor", "hitom", "lotom", "midtom",
     "tom hi", "tom low", "tom mid", "tom lo")
_add("percussion", "perc", "percussion", "shaker", "shakers", "tambourine", "tamb", "cowbell",
     "conga", "congas", "bongo", "bongos", "clave", "claves", "woodblock", "wood", "block",
     "maraca", "maracas", "guiro", "cabasa", "agogo", "timbale", "timbales", "triangle",
     "tabla", "djembe", "vibraslap", "clav", "metronome", "cuica", "whistle")
_add("bass", "bass", "basses", "sub", "subbass", "sub bass", "808 bass", "reese", "bassline",
     "bassslap", "slap bass", "acid", "tb303", "303")
_add("lead", "lead", "leads", "synth", "synths", "pluck", "plucks", "arp", "guitar", "guit",
     "gtr", "trumpet", "brass", "flute", "violin", "sax", "horn", "lead synth", "stab")
_add("pad/keys", "pad", "pads", "keys", "key", "piano", "pno", "organ", "epiano", "e piano",
     "rhodes", "chord", "chords", "strings", "string", "harpsichord", "drone", "ambient",
     "ambi", "strum", "strums", "bell", "bells")
_add("vocal", "vocal", "vocals", "vox", "voice", "voices", "choir", "chorus", "acapella",
     "acappella", "vocal chop", "chant", "shout", "breath")
_add("fx", "fx", "sfx", "effect", "effects", "riser", "risers", "impact", "impacts", "noise",
     "foley", "sweep", "whoosh", "woosh", "swoosh", "zap", "glitch", "scratch", "vinyl",
     "downlifter", "uplifter", "boom", "explode", "explosion", "warp", "laser",
     "applause", "crowd", "robot", "blip", "beep")
_add("drum loop", "drum loop", "drumloop", "beat", "beats", "break", "breaks", "breakbeat",
     "amen", "groove", "drum loops", "top loop", "perc loop")
_add("bass loop", "bass loop", "bassloop", "bassloops", "bass loops")
_add("melodic loop", "melodic loop", "melody loop", "synth loop", "chord loop",
     "guitar loop", "piano loop", "music loop")
_add("vocal loop", "vocal loop", "vox loop", "vocal loops")
_add("full mix", "full mix", "fullmix", "full loop", "mix loop")
for _tag in CANONICAL_TAGS:
    SYNONYMS.setdefault(_tag, _tag)

# A user's words for genres and moods (``canonical``); they win over SYNONYMS there, so
# "ambient" typed by the user is the genre, while "ambi_drone.wav" still names a pad.
FACET_WORDS: dict[str, str] = {tag: tag for tag in GENRE_TAGS + MOOD_TAGS}
FACET_WORDS.update({"hip hop": "hip-hop", "hiphop": "hip-hop", "rap": "hip-hop",
                    "r b": "rnb", "r n b": "rnb", "chillout": "chill", "chill out": "chill",
                    "electronica": "electronic", "electro": "electronic", "alternative": "indie",
                    "heavy metal": "metal", "easy": "easy listening"})


def facet_of(tag: str) -> str:
    """'genre', 'mood' or 'type' (instrument, sound type and loop tags). Any thread."""
    if tag in GENRE_TAGS:
        return "genre"
    if tag in MOOD_TAGS:
        return "mood"
    return "type"


def tags_by_facet(tags) -> tuple[frozenset[str], ...]:
    """Canonical ``tags`` grouped by ``facet_of``, one set per facet named: a tag filter
    wants one tag of each set. Any thread."""
    facets: dict[str, set[str]] = {}
    for tag in tags:
        facets.setdefault(facet_of(tag), set()).add(tag)
    return tuple(frozenset(v) for v in facets.values())


_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_TRAILING_DIGITS = re.compile(r"^([a-z]+?)\d+$")


def tokens(text: str) -> list[str]:
    """Lower-case word tokens of a name: camelCase, separators and digit suffixes split."""
    out = []
    for raw in _SPLIT.split(_CAMEL.sub(" ", text).lower()):
        if not raw:
            continue
        match = _TRAILING_DIGITS.match(raw)
        if match and raw not in SYNONYMS:
            raw = match.group(1)
        out.append(raw)
    return out


def tags_in_text(text: str) -> list[str]:
    """Canonical tags a name speaks of, in order of appearance, without repeats; a pair of
    tokens ("hat open") wins over its single words."""
    words = tokens(text)
    found: list[str] = []
    i = 0
    while i < len(words):
        pair = f"{words[i]} {words[i + 1]}" if i + 1 < len(words) else None
        if pair is not None and pair in SYNONYMS:
            tag, i = SYNONYMS[pair], i + 2
        elif words[i] in SYNONYMS:
            tag, i = SYNONYMS[words[i]], i + 1
        else:
            i += 1
            continue
        if tag not in found:
            found.append(tag)
    return found


def canonical(word: str) -> str | None:
    """The canonical tag for a user's word ("BD", "hi-hat", "Kick", "Hip-Hop"), or None."""
    key = " ".join(tokens(word))
    for table in (FACET_WORDS, SYNONYMS):
        if key in table:
            return table[key]
    key = key.replace(" ", "")
    return FACET_WORDS.get(key) or SYNONYMS.get(key)
