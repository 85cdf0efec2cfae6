"""Similar sounds of the same kind.

A search by example answers first with the closest file, most often the sound itself. The
rest of the list is what a producer gets when the very sound is not in the library, and
there a snare should bring snares. So after the first answer the list is ordered by each
candidate's cosine plus ``KIND_WEIGHT`` times how far its type tags agree with the query's
(:func:`tag_agreement`), among the index's best ``POOL_FACTOR`` times as many files as shown.
The first answer keeps its place, so re-identification at 1 is untouched; and the order
applies only when that first answer is close to the query (:func:`applies`).

The query's own type tags come from the shipped tag head (``QueryKind``), as a scan gives a
library file its audio tags; a candidate's are the tags that stand for it in the catalog
(the user's and the name's included).
"""

from __future__ import annotations

import threading
from typing import Mapping, Sequence

import numpy as np

# How much a full tag agreement (both sure of one tag) weighs against cosine. Chosen on
# bench/retrieval.py's labelled packages (see README, "Similar sounds"), never on the
# independent set that reports it.
KIND_WEIGHT = 0.25
# The kind order reads this many times the files it shows from the index.
POOL_FACTOR = 3
# ...and applies when the first answer's cosine reaches this. Below it the query may be a
# sound buried under other music or badly damaged: its tags describe the mixture, and its
# own file may be any of the first ten (bench/robust_search.py, 50 Sonic Pi sounds 8 dB under
# music: every first answer under 0.81; R@10 0.68 in closeness order, 0.62 in kind order
# without this bound). "Similar" on a library file always has it: the file itself is first.
CLOSE_FIRST_COSINE = 0.85


def applies(first_cosine: float) -> bool:
    """Whether a list whose first answer has this cosine is ordered by kind after it."""
    return first_cosine >= CLOSE_FIRST_COSINE


def tag_agreement(query: Mapping[str, float], candidate: Mapping[str, float]) -> float:
    """Sum over tags of the product of the two confidences (0: nothing shared; 1: both sure
    of the same one tag). Confidences are 0-1; tags missing from one side count 0."""
    return float(sum(p * candidate.get(tag, 0.0) for tag, p in query.items()))


def kind_order(cosines: Sequence[float], agreements: Sequence[float],
               weight: float | None = None) -> list[int]:
    """Indices of candidates given best cosine first: the first stays first, the others by
    cosine + ``weight`` (default ``KIND_WEIGHT``) * agreement, best first (ties keep the
    cosine order)."""
    weight = KIND_WEIGHT if weight is None else weight
    if len(cosines) != len(agreements):
        raise ValueError("one agreement per cosine")
    if not cosines:
        return []
    rest = sorted(range(1, len(cosines)),
                  key=lambda i: (-(cosines[i] + weight * agreements[i]), i))
    return [0] + rest


class QueryKind:
    """The tag head run on queries: loaded on first use, one query at a time. Any thread."""

    def __init__(self, encoder_id: str, tagger_path: str | None = None) -> None:
        self._encoder_id = encoder_id
        self._tagger_path = tagger_path
        self._tagger = None
        self._loaded = False
        self._lock = threading.Lock()

    def of(self, query) -> dict[str, float]:
        """The type tags (tag -> confidence) of a query (``app.query.Query``, at the model
        rate), as a scan would store them for a file of its audio; empty without a tag head
        for this encoder, or for bare window vectors (no audio)."""
        from models.descriptors import describe_whole
        from models.encoder import MODEL_SAMPLE_RATE
        vectors, audio = getattr(query, "vectors", ()), getattr(query, "audio", None)
        if audio is None or len(vectors) == 0 or np.asarray(audio).size == 0:
            return {}
        descriptors = describe_whole(np.asarray(audio, dtype=np.float32), MODEL_SAMPLE_RATE)
        with self._lock:
            if not self._loaded:
                from models.tagger import Tagger
                self._tagger = Tagger.for_encoder(self._encoder_id, self._tagger_path)
                self._loaded = True
            if self._tagger is None:
                return {}
            return dict(self._tagger.predict(vectors, descriptors).tags)
