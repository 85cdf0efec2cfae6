"""What a sound is: tags (audio and name), loop or one-shot, genre and mood, tempo, key,
root, loudness.

Runs in the scanner's worker processes after a file is embedded (``app/analysis.py``), and
for the back-fill of files analysed before this existed (their vectors come from the
catalog). The tag head is ``models.tagger``; genre and mood tags of loops and long files
come from ``models.genre_mood`` (musicnn); tempo, key and root come from ``models.tempo``,
``models.key`` and ``models.pitch`` when those modules are present (fields stay None
otherwise, and the analysis id says which detectors ran, so adding one redoes the library).

Threads: a ``SoundAnalyser`` belongs to one thread (one per worker process).
"""

from __future__ import annotations

import importlib
import math
import sys

import numpy as np

from app.catalog import SoundInfo, TagRow
from app.thesaurus import name_conflict, name_tags
from models.descriptors import describe
from models.genre_mood import wanted
from models.tag_vocabulary import DRUM_TAGS

# The detectors read at most this much of a file (a loop's tempo and key are clear by then).
ANALYSIS_SECONDS = 30.0
TONAL_TAGS = frozenset({"bass", "lead", "pad/keys", "vocal"})
_GATE_BLOCK_S = 0.4


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def loudness_db(audio: np.ndarray, sample_rate: int) -> float | None:
    """Integrated loudness in dB (unweighted, gated like EBU R128: 400 ms blocks, absolute
    gate -70 dB, relative gate -10 dB). None for silence."""
    n = max(1, int(_GATE_BLOCK_S * sample_rate))
    blocks = audio[: audio.size - audio.size % n].reshape(-1, n) if audio.size >= n else audio[None]
    power = np.mean(np.square(blocks, dtype=np.float64), axis=1)
    power = power[power > 10 ** (-70 / 10)]
    if power.size == 0:
        return None
    power = power[power > power.mean() * 10 ** (-10 / 10)]
    return round(10 * math.log10(float(power.mean())), 2)


class SoundAnalyser:
    """The tag head and the detectors, loaded once (see module docstring on threads)."""

    def __init__(self, encoder_id: str, tagger_path: str | None = None,
                 genre_mood_path: str | None = None):
        from models.genre_mood import GenreMoodTagger
        from models.tagger import Tagger

        # without a head for this encoder the name rule and the detectors still run
        self.tagger: Tagger | None = Tagger.for_encoder(encoder_id, tagger_path)
        try:
            self.genre_mood: GenreMoodTagger | None = GenreMoodTagger(genre_mood_path)
        except Exception:  # noqa: BLE001 — no genre model: every other tag still comes
            self.genre_mood = None
        self.tempo = _optional("models.tempo")
        self.key = _optional("models.key")
        self.pitch = _optional("models.pitch")
        parts = [self.tagger.model_id if self.tagger else "no-tagger"]
        for label, module in (("tempo", self.tempo), ("key", self.key), ("pitch", self.pitch)):
            if module is not None:
                parts.append(f"{label}-{getattr(module, 'VERSION', 1)}")
        if self.genre_mood is not None:
            parts.append(self.genre_mood.model_id)
        self.model_id = "+".join(parts)

    def analyse(self, path: str, audio: np.ndarray, sample_rate: int, duration_s: float,
                decay_db: float, vectors: np.ndarray, rule_kind: str
                ) -> tuple[str, SoundInfo, tuple[TagRow, ...]]:
        """(kind, sound, tags) of one file from its first ANALYSIS_SECONDS of mono audio at
        ``sample_rate`` and its window vectors. ``rule_kind`` is the name/decay rule's kind,
        kept when there is no tag head."""
        try:
            return self._analyse(path, audio, sample_rate, duration_s, decay_db, vectors, rule_kind)
        except Exception as exc:  # noqa: BLE001 — a detector's bug must not cost the file its vectors
            sound = SoundInfo(analysis_model=self.model_id, name_conflict=None,
                              loudness_db=None)
            print(f"samplescout: sound analysis of {path} failed: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            return rule_kind, sound, name_tags(path)

    def _analyse(self, path, audio, sample_rate, duration_s, decay_db, vectors, rule_kind):
        names = name_tags(path)
        kind, audio_tags, loop_probability = rule_kind, (), None
        if self.tagger is not None and len(vectors):
            prediction = self.tagger.predict(vectors, describe(audio, sample_rate, duration_s, decay_db))
            kind, loop_probability = prediction.kind, round(prediction.loop_probability, 4)
            from app.analysis import named_loop  # analysis imports this module
            if named_loop(path, duration_s):
                kind = "loop"   # a name that says loop wins over the head
            audio_tags = tuple(TagRow(tag, "audio", round(conf, 4), self.tagger.model_id)
                               for tag, conf in prediction.tags)
        fields: dict = {}
        top = audio_tags[0].tag if audio_tags else next((t.tag for t in names), None)
        if kind == "loop" and self.tempo is not None:
            estimate = self.tempo.estimate_tempo(audio, sample_rate, name=path)
            if estimate.bpm is not None:
                fields.update(tempo_bpm=round(float(estimate.bpm), 2),
                              tempo_confidence=round(float(estimate.confidence), 3))
        if kind == "loop" and self.key is not None and top not in DRUM_TAGS and top != "drum loop":
            estimate = self.key.estimate_key(audio, sample_rate)
            if estimate.tonic is not None:
                fields.update(key_tonic=int(estimate.tonic), key_mode=estimate.mode,
                              key_label=estimate.label(),
                              key_confidence=round(float(estimate.confidence), 3))
        if kind == "one-shot" and self.pitch is not None and top in TONAL_TAGS:
            estimate = self.pitch.estimate_root(audio, sample_rate)
            if estimate.midi is not None:
                fields.update(root_midi=int(estimate.midi), tuning_cents=round(float(estimate.cents), 1),
                              root_confidence=round(float(estimate.confidence), 3))
        sound = SoundInfo(analysis_model=self.model_id, loop_probability=loop_probability,
                          loudness_db=loudness_db(audio, sample_rate),
                          name_conflict=name_conflict(names, audio_tags), **fields)
        return kind, sound, audio_tags + self._genre_mood_tags(kind, audio, sample_rate, duration_s) + names

    def _genre_mood_tags(self, kind, audio, sample_rate, duration_s) -> tuple[TagRow, ...]:
        if self.genre_mood is None or not wanted(kind, duration_s):
            return ()
        found = self.genre_mood.tag(audio, sample_rate)
        return tuple(TagRow(tag, "audio", confidence, self.genre_mood.model_id)
                     for tag, confidence in found.genres + found.moods)
