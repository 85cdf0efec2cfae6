"""The tag thesaurus: one canonical tag for the many ways a name says it.

"BD", "Kick", "kik" and "bassdrum" are all ``kick``; "HH", "hihat" and "CHH" are
``closed hat``. Used for tags read from file and folder names, for the user's tag edits and
for tag filters, so every source and every query speaks the same words. The vocabulary
itself lives in ``models/tag_vocabulary.py`` (the tagger's labels are the same words).
Any thread.
"""

from __future__ import annotations

from pathlib import PurePath

from app.catalog import TagRow
from engine.errors import SampleScoutError
from models.tag_vocabulary import (CANONICAL_TAGS, DRUM_TAGS, GENRE_TAGS, MOOD_TAGS, canonical,
                                   tags_in_text)

__all__ = ["CANONICAL_TAGS", "GENRE_TAGS", "MOOD_TAGS", "TAG_MENUS", "normalise", "name_tags",
           "name_conflict", "UnknownTagError"]

# How tag menus group the vocabulary: the type tags, then a submenu per facet.
TAG_MENUS = (("", CANONICAL_TAGS), ("Genre", GENRE_TAGS), ("Mood", MOOD_TAGS))

FILE_NAME_CONFIDENCE = 0.9
FOLDER_CONFIDENCE = 0.6
FOLDER_LEVELS = 2          # the file's folder and the one above it
# An audio tag at least this sure, that no name tag agrees with, flags the file.
CONFLICT_CONFIDENCE = 0.8


class UnknownTagError(SampleScoutError, ValueError):
    """A word the thesaurus does not know."""


def normalise(word: str) -> str:
    """The canonical tag for ``word`` ("BD" -> "kick"); raises UnknownTagError."""
    tag = canonical(word)
    if tag is None:
        raise UnknownTagError(
            f"unknown tag {word!r}; known tags: {', '.join(CANONICAL_TAGS)} (and their synonyms); "
            f"genres: {', '.join(GENRE_TAGS)}; moods: {', '.join(MOOD_TAGS)}")
    return tag


def name_tags(path: str) -> tuple[TagRow, ...]:
    """Tags that a file's name (sure) and its folders' names (less sure) speak of."""
    pure = PurePath(path)
    found: dict[str, float] = {}
    for tag in tags_in_text(pure.stem):
        found.setdefault(tag, FILE_NAME_CONFIDENCE)
    for folder in list(pure.parents)[:FOLDER_LEVELS]:
        for tag in tags_in_text(folder.name):
            found.setdefault(tag, FOLDER_CONFIDENCE)
    return tuple(TagRow(tag, "name", confidence) for tag, confidence in found.items())


def _family(tag: str) -> str:
    return "drums" if tag in DRUM_TAGS or tag == "drum loop" else tag


def name_conflict(names: tuple[TagRow, ...], audio: tuple[TagRow, ...]) -> str | None:
    """The file name's tag when a confident audio tag says otherwise, else None.

    Only the file name's own tags count (a folder called "Drums" holds many kinds), and a
    name that agrees with any audio tag is no conflict.
    """
    own = [t.tag for t in names if t.confidence >= FILE_NAME_CONFIDENCE]
    if not own or not audio:
        return None
    top = max(audio, key=lambda t: t.confidence)
    if top.confidence < CONFLICT_CONFIDENCE:
        return None
    audio_tags = {t.tag for t in audio}
    if any(tag in audio_tags for tag in own):
        return None
    if top.tag in ("percussion", "fx") and _family(own[0]) == "drums":
        return None          # "other percussion" and fx are too broad to contradict a drum name
    return own[0]
