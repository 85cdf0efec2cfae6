"""Audio encoder: ONNX session, block embedding and streaming embedding of clips.

Input audio is mono float at ``MODEL_SAMPLE_RATE`` (resample before). The
pre-processing recipe is implemented (and documented in full) in ``models.preprocess``:

- leading silence is dropped until the 1 ms level reaches -60 dBFS (5 ms kept before);
  tails are never trimmed;
- one block per 100 mel frames (hop 1024 samples, ~2.3 s) with a 50-frame hop;
- per block, the power mel is scaled so that the block's sample peak sits at -40 dBFS,
  then ``log10(1e4*x + 1) / 9.4578``; blocks peaking below -80 dBFS give nothing;
- clips shorter than ``MIN_FRAMES`` frames are zero-padded (audio) to 8 frames; a
  block with fewer than 100 frames is padded with 0.0; the last partial block is
  emitted only if it covers frames that no full block covered.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

import numpy as np

from engine.errors import SampleScoutError

from . import frontend, preprocess
from .onnx_session import cpu_session_options
from .preprocess import (BLOCK_FRAMES, HOP_FRAMES, MIN_FRAMES, MODEL_SAMPLE_RATE,  # noqa: F401
                         BlockAssembler, LogMelBlock)

__all__ = [
    "MODEL_SAMPLE_RATE", "BLOCK_FRAMES", "HOP_FRAMES", "MIN_FRAMES",
    "Encoder", "StreamingEmbedder", "Embedding", "EncoderError", "default_model_path",
    "SHIPPED_MODELS", "DEFAULT_MODEL", "MODEL_ENV",
]

# Shipped encoders by short name. "scout" (trained here, see MODEL_CARD.md) is the
# default: more robust to live capture than its aisfx teacher and ~10x cheaper.
SHIPPED_MODELS = {"scout": "scout_int8.onnx", "aisfx": "aisfx_int8.onnx"}
DEFAULT_MODEL = "scout"
MODEL_ENV = "SAMPLESCOUT_MODEL"  # a shipped name or a path to an ONNX file


class EncoderError(SampleScoutError):
    """The encoder model cannot be used (missing, unreadable or unexpected file)."""


def default_model_path() -> pathlib.Path:
    """The model to use: ``$SAMPLESCOUT_MODEL`` (a shipped name or a file path), else
    the shipped default. Any thread; worker processes inherit the choice."""
    choice = os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    if choice in SHIPPED_MODELS:
        return pathlib.Path(__file__).resolve().parent / SHIPPED_MODELS[choice]
    return pathlib.Path(choice).expanduser()


@dataclass(frozen=True)
class Embedding:
    """One block's embedding.

    ``start_frame``: first mel frame of the block (frame ``k`` starts at trimmed sample
    ``k * hop_length``). ``start_sample``: where the block starts in the original input,
    before leading silence was trimmed. ``vector``: ``(dim,)`` float32, unit L2 norm.
    """
    start_frame: int
    start_sample: int
    vector: np.ndarray


class Encoder:
    """Loads an ONNX encoder and embeds log-mel blocks or audio.

    Thread safety: ``embed_blocks`` and ``embed_clip`` may be called concurrently from
    any number of threads (onnxruntime sessions allow concurrent ``run``). Each
    ``StreamingEmbedder`` returned by ``stream()`` holds its own state and must be
    used by one thread at a time; several of them may share one Encoder.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, threads: int = 1, *,
                 arena: bool = False):
        """``arena``: keep onnxruntime's memory arena (``models.onnx_session``)."""
        import onnxruntime as ort

        path = pathlib.Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise EncoderError(f"encoder model file not found: {path}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        options = cpu_session_options(threads, arena=arena)
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EncoderError(f"encoder model file is not a usable ONNX model: {path} ({exc})") from exc
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise EncoderError(f"encoder model {path} must have one input and an output")
        in_shape = inputs[0].shape
        out_shape = outputs[0].shape
        if (len(in_shape) != 3 or in_shape[1:] != [BLOCK_FRAMES, frontend.N_MELS]
                or len(out_shape) != 2 or not isinstance(out_shape[1], int)):
            raise EncoderError(
                f"encoder model {path} has input {in_shape} and output {out_shape};"
                f" expected (batch, {BLOCK_FRAMES}, {frontend.N_MELS}) -> (batch, dim)")
        self._session = session
        self._input_name = inputs[0].name
        self._output_name = outputs[0].name
        self.model_path = path
        self.dim: int = int(out_shape[1])
        meta = session.get_modelmeta().custom_metadata_map
        #: the network's own id (ONNX metadata)
        self.network_id: str = meta.get("model_id") or path.stem
        #: what made a vector: the network and the pre-processing recipe version; vectors
        #: of two different ids are never compared (the catalog re-embeds instead)
        self.model_id: str = f"{self.network_id}/r{preprocess.RECIPE_VERSION}"

    def embed_blocks(self, log_mel_blocks: np.ndarray) -> np.ndarray:
        """``(n, 100, 96)`` normalised log-mel -> ``(n, dim)`` float32 unit-norm rows. Any thread."""
        blocks = np.asarray(log_mel_blocks, dtype=np.float32)
        if blocks.ndim != 3 or blocks.shape[1:] != (BLOCK_FRAMES, frontend.N_MELS):
            raise ValueError(
                f"expected log-mel blocks of shape (n, {BLOCK_FRAMES}, {frontend.N_MELS}), got {blocks.shape}")
        if blocks.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        raw = self._session.run([self._output_name], {self._input_name: np.ascontiguousarray(blocks)})[0]
        raw = raw.astype(np.float32, copy=False)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return (raw / np.maximum(norms, 1e-12)).astype(np.float32)

    def stream(self, *, trim_leading_silence: bool = True) -> "StreamingEmbedder":
        """A new streaming embedder for one clip or one live signal."""
        return StreamingEmbedder(self, trim_leading_silence=trim_leading_silence)

    def embed_clip(self, audio: np.ndarray, *, trim_leading_silence: bool = True) -> np.ndarray:
        """Whole mono clip at MODEL_SAMPLE_RATE -> ``(n_blocks, dim)``; may be ``(0, dim)``.

        Same result as ``stream().push(audio) + flush()``. Any thread.
        """
        streamer = self.stream(trim_leading_silence=trim_leading_silence)
        embeddings = streamer.push(audio) + streamer.flush()
        if not embeddings:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([e.vector for e in embeddings])


class StreamingEmbedder:
    """Embeds a signal pushed in chunks of any size; one thread at a time.

    Blocks are embedded as soon as their last frame is complete. After ``flush`` the
    embedder is ready for a new signal.
    """

    def __init__(self, encoder: Encoder, *, trim_leading_silence: bool = True):
        self._encoder = encoder
        self._assembler = BlockAssembler(trim_leading_silence=trim_leading_silence)

    def _embed(self, blocks: list[LogMelBlock]) -> list[Embedding]:
        if not blocks:
            return []
        vectors = self._encoder.embed_blocks(np.stack([b.log_mel for b in blocks]))
        return [Embedding(b.start_frame, b.start_sample, v) for b, v in zip(blocks, vectors)]

    def push(self, audio: np.ndarray) -> list[Embedding]:
        """Add mono samples at MODEL_SAMPLE_RATE; return the embeddings of blocks now complete."""
        return self._embed(self._assembler.push(audio))

    def flush(self) -> list[Embedding]:
        """End of signal: embeddings of the remaining blocks (the zero-padded last one, if any)."""
        return self._embed(self._assembler.flush())
