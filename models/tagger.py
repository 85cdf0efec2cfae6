"""Instrument / type tags and loop-or-one-shot by content, from a file's encoder vectors and
a few descriptors (``models/descriptors.py``).

The head is a small ONNX file (``tagger.onnx``, trained by ``models/train/tagger.py``) run
with onnxruntime: features -> ``tag_probs`` (one column per label) and ``loop_prob``. Its
labels and the encoder it was trained on travel in the file's metadata.

Threads: a ``Tagger`` may be used from one thread at a time (the scanner's worker processes
each hold their own).
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass

import numpy as np

from models.onnx_session import cpu_session_options
from models.descriptors import DESCRIPTOR_NAMES
from models.tag_vocabulary import LOOP_OF, LOOP_TAGS

TAGGER_PATH = pathlib.Path(__file__).resolve().parent / "tagger.onnx"
# Tags below this probability are not stored (the top one always is).
MIN_CONFIDENCE = 0.15
MAX_TAGS = 3


@dataclass(frozen=True)
class TagPrediction:
    kind: str                               # 'loop' or 'one-shot'
    loop_probability: float
    tags: tuple[tuple[str, float], ...]     # (canonical tag, confidence), best first


def features(vectors: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
    """One file's model input: mean and first of its window vectors, then descriptors."""
    vectors = np.asarray(vectors, dtype=np.float32)
    mean = vectors.mean(axis=0)
    mean = mean / max(float(np.linalg.norm(mean)), 1e-6)
    return np.concatenate([mean, vectors[0], np.asarray(descriptors, np.float32)]).astype(np.float32)


class Tagger:
    """The shipped (or given) tag head; see the module docstring on threads."""

    def __init__(self, path: str | os.PathLike | None = None):
        import onnxruntime as ort

        self.path = pathlib.Path(path) if path else TAGGER_PATH
        self._session = ort.InferenceSession(str(self.path), cpu_session_options(),
                                             providers=["CPUExecutionProvider"])
        meta = self._session.get_modelmeta().custom_metadata_map
        self.labels: tuple[str, ...] = tuple(json.loads(meta["labels"]))
        self.model_id: str = meta["model_id"]
        self.encoder_id: str = meta.get("encoder_id", "")
        if json.loads(meta["descriptors"]) != list(DESCRIPTOR_NAMES):
            raise ValueError(f"{self.path}: its descriptors differ from models.descriptors")
        self._loop_columns = np.array([label in LOOP_TAGS for label in self.labels])

    @classmethod
    def for_encoder(cls, encoder_id: str, path: str | os.PathLike | None = None) -> "Tagger | None":
        """The head when it loads and reads ``encoder_id``'s vectors; None otherwise (no head
        file, a broken one, or a head trained on another encoder's vectors)."""
        try:
            tagger = cls(path)
        except Exception:  # noqa: BLE001 — callers go on without tags
            return None
        return tagger if tagger.encoder_id == encoder_id else None

    def probabilities(self, feature_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, n_features) -> (tag_probs (n, labels), loop_prob (n,))."""
        tag_probs, loop_prob = self._session.run(
            None, {"features": np.asarray(feature_rows, dtype=np.float32)})
        return tag_probs, loop_prob.reshape(-1)

    def predict(self, vectors: np.ndarray, descriptors: np.ndarray) -> TagPrediction:
        tag_probs, loop_prob = self.probabilities(features(vectors, descriptors)[None])
        return self.decide(tag_probs[0], float(loop_prob[0]))

    def decide(self, tag_probs: np.ndarray, loop_probability: float) -> TagPrediction:
        """Kind from the loop head; tags from the columns of that kind, renormalised."""
        kind = "loop" if loop_probability >= 0.5 else "one-shot"
        mask = self._loop_columns if kind == "loop" else ~self._loop_columns
        probs = np.where(mask, tag_probs, 0.0)
        if kind == "loop" and probs.sum() < 0.2:
            # few loop examples of this family were seen: name it by its one-shot family
            best = self.labels[int(np.argmax(tag_probs))]
            return TagPrediction(kind, loop_probability,
                                 ((LOOP_OF.get(best, "full mix"), float(tag_probs.max())),))
        probs = probs / max(float(probs.sum()), 1e-9)
        order = np.argsort(-probs)
        tags = [(self.labels[i], float(probs[i])) for i in order[:MAX_TAGS]
                if probs[i] >= MIN_CONFIDENCE or i == order[0]]
        return TagPrediction(kind, loop_probability, tuple(tags))
