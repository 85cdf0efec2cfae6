"""Genre and mood tags of loops and longer files, from musicnn's Million Song Dataset tagger.

``musicnn_msd_int8.onnx`` (``models/export_musicnn.py``) gives 50 Last.fm tag probabilities
for a 3 s log-mel patch (``models/music_frontend.py``). A file's probabilities are the mean
over up to MAX_PATCHES patches spread over its first READ_SECONDS; its MSD labels are
merged onto the vocabulary's genre and mood tags (``models.tag_vocabulary``: a tag takes
the largest probability of its labels), and at most MAX_GENRES genres from GENRE_THRESHOLD
and MAX_MOODS moods from MOOD_THRESHOLD are kept. One-shots shorter than MIN_FILE_SECONDS
get none: the model was trained on songs, not on single hits.

Threads: a ``GenreMoodTagger`` may be used from one thread at a time (each scanner worker
process holds its own).
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass

import numpy as np

from models.onnx_session import cpu_session_options
from models import music_frontend
from models.tag_vocabulary import GENRE_TAGS, MOOD_TAGS

MODEL_PATH = pathlib.Path(__file__).resolve().parent / "musicnn_msd_int8.onnx"
MIN_LOOP_SECONDS = 1.0
MIN_FILE_SECONDS = 30.0
READ_SECONDS = 30.0
MAX_PATCHES = 3
GENRE_THRESHOLD = 0.25
MOOD_THRESHOLD = 0.12
MAX_GENRES = 2
MAX_MOODS = 2

# musicnn's MSD labels -> genre / mood tags; the decade, vocalist and instrument labels
# ('80s', 'female vocalists', 'guitar', ...) are not used.
LABEL_TAGS = {
    "rock": "rock", "classic rock": "rock", "hard rock": "rock", "Progressive rock": "rock",
    "alternative": "indie", "indie": "indie", "alternative rock": "indie", "indie rock": "indie",
    "indie pop": "indie", "pop": "pop", "electronic": "electronic", "electronica": "electronic",
    "electro": "electronic", "dance": "dance", "House": "house", "Hip-Hop": "hip-hop",
    "rnb": "rnb", "soul": "soul", "funk": "funk", "jazz": "jazz", "blues": "blues",
    "folk": "folk", "country": "country", "metal": "metal", "heavy metal": "metal",
    "punk": "punk", "ambient": "ambient", "experimental": "experimental",
    "easy listening": "easy listening",
    "chill": "chill", "chillout": "chill", "Mellow": "mellow", "beautiful": "beautiful",
    "happy": "happy", "sad": "sad", "party": "party", "sexy": "sexy", "catchy": "catchy",
}


@dataclass(frozen=True)
class GenreMood:
    genres: tuple[tuple[str, float], ...]    # (tag, probability), best first
    moods: tuple[tuple[str, float], ...]


NONE = GenreMood((), ())


def wanted(kind: str | None, duration_s: float) -> bool:
    """Whether a file gets genre and mood tags: loops from MIN_LOOP_SECONDS, anything from
    MIN_FILE_SECONDS. Any thread."""
    return duration_s >= MIN_FILE_SECONDS or (kind == "loop" and duration_s >= MIN_LOOP_SECONDS)


class GenreMoodTagger:
    """The shipped (or given) musicnn tagger; see the module docstring on threads."""

    def __init__(self, path: str | os.PathLike | None = None):
        import onnxruntime as ort

        self.path = pathlib.Path(path) if path else MODEL_PATH
        self._session = ort.InferenceSession(str(self.path), cpu_session_options(),
                                             providers=["CPUExecutionProvider"])
        meta = self._session.get_modelmeta().custom_metadata_map
        self.labels: tuple[str, ...] = tuple(json.loads(meta["labels"]))
        self.model_id: str = meta["model_id"]
        if int(meta.get("sample_rate", music_frontend.SAMPLE_RATE)) != music_frontend.SAMPLE_RATE:
            raise ValueError(f"{self.path}: its sample rate differs from models.music_frontend")
        tags = GENRE_TAGS + MOOD_TAGS
        # (tags, labels) 0/1: which labels each tag merges
        self._merge = np.zeros((len(tags), len(self.labels)), dtype=bool)
        for column, label in enumerate(self.labels):
            if label in LABEL_TAGS:
                self._merge[tags.index(LABEL_TAGS[label]), column] = True
        self._tags = tags

    def label_probabilities(self, patches: np.ndarray) -> np.ndarray:
        """(n, PATCH_FRAMES, N_MELS) log-mel patches -> (n, labels) probabilities."""
        return self._session.run(None, {"log_mel": np.asarray(patches, dtype=np.float32)})[0]

    def file_probabilities(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mean label probabilities (labels,) of mono audio's first READ_SECONDS; zeros for
        empty audio."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)[:int(READ_SECONDS * sample_rate)]
        if sample_rate != music_frontend.SAMPLE_RATE and audio.size:
            import soxr

            audio = soxr.resample(audio, sample_rate, music_frontend.SAMPLE_RATE).astype(np.float32)
        patches = music_frontend.patches(audio, MAX_PATCHES)
        if not len(patches):
            return np.zeros(len(self.labels), dtype=np.float32)
        return self.label_probabilities(patches).mean(axis=0)

    def tag_probabilities(self, label_probs: np.ndarray) -> dict[str, float]:
        """Label probabilities -> each genre / mood tag's probability (its labels' largest)."""
        merged = np.where(self._merge, np.asarray(label_probs)[None, :], 0.0).max(axis=1)
        return {tag: float(p) for tag, p in zip(self._tags, merged)}

    def decide(self, label_probs: np.ndarray) -> GenreMood:
        probs = self.tag_probabilities(label_probs)

        def best(tags, threshold, most):
            ranked = sorted(((t, probs[t]) for t in tags), key=lambda tp: -tp[1])
            return tuple((t, round(p, 4)) for t, p in ranked[:most] if p >= threshold)

        return GenreMood(best(GENRE_TAGS, GENRE_THRESHOLD, MAX_GENRES),
                         best(MOOD_TAGS, MOOD_THRESHOLD, MAX_MOODS))

    def tag(self, audio: np.ndarray, sample_rate: int) -> GenreMood:
        """Genres and moods of mono audio at ``sample_rate`` (the caller decides, with
        ``wanted``, whether the file should have any)."""
        return self.decide(self.file_probabilities(audio, sample_rate))
