"""Train the tag head (``models/tagger.onnx``) over the shipped encoder's vectors.

    .venv/bin/python -m models.train.tagger [--refresh]

Features (``models.tagger.features``): the mean and first of a file's encoder vectors and
the descriptors of ``models/descriptors.py``, computed here from the same model-rate audio
the scan sees, of each labelled clip and of three training views of it (``augmented``:
through a room, a saturating drive, another pitch; ``TRAIN_WITH_VIEWS``). The head: standardise -> one hidden layer (ReLU) -> softmax over the tags,
and a sigmoid loop-or-one-shot output, trained with numpy (Adam, class-balanced, seeded)
and written as a small ONNX graph with the ``onnx`` package. Labelled clips come from
``models/train/tag_data.py``; ``bench/tagging.py`` measures it on held-out packages.
Runs in the training process only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import pathlib
import time

import numpy as np

from models.descriptors import DESCRIPTOR_NAMES, describe_whole
from models.encoder import MODEL_SAMPLE_RATE, Encoder
from models.tagger import TAGGER_PATH, features
from models.train import tag_data

CACHE = pathlib.Path(__file__).resolve().parents[2] / "bench" / "cache" / "tagger_features.npz"
HIDDEN = 64
EPOCHS = 400
DECAY = 3e-2
DROPOUT = 0.1
SEED = 20261204


def clip_audio(clip: tag_data.LabelledClip) -> np.ndarray:
    if clip.audio is not None:
        return np.asarray(clip.audio, dtype=np.float32)
    import soundfile as sf
    from models.train.sources import _to_mono_44k

    audio, rate = sf.read(clip.path, dtype="float32", always_2d=True)
    audio = _to_mono_44k(audio, rate)
    return audio[: int(60 * MODEL_SAMPLE_RATE)]


def feature_row(audio: np.ndarray, encoder: Encoder) -> np.ndarray | None:
    """A clip's model input (``models.tagger.features``) from its model-rate mono audio, as
    the scan computes it; None when the audio is not finite or holds nothing to embed."""
    if not np.all(np.isfinite(audio)):
        return None
    vectors = encoder.embed_clip(audio, trim_leading_silence=True)
    if len(vectors) == 0:
        return None
    return features(vectors, describe_whole(audio, MODEL_SAMPLE_RATE))


def extract(clips, encoder: Encoder, log=print) -> dict:
    """Feature rows, labels, loop flags, packages and names of the clips that embed."""
    rows, keep = [], []
    started = time.monotonic()
    for i, clip in enumerate(clips):
        try:
            audio = clip_audio(clip)
        except Exception as exc:  # noqa: BLE001 — a broken file is left out, and said so
            log(f"  skipped {clip.name}: {exc}")
            continue
        row = feature_row(audio, encoder)
        if row is None:
            continue
        rows.append(row)
        keep.append(clip)
        if i % 500 == 0:
            log(f"  {i}/{len(clips)} clips, {time.monotonic() - started:.0f} s")
    return {
        "x": np.stack(rows).astype(np.float32),
        "tag": np.array([c.tag for c in keep]),
        "loop": np.array([c.loop for c in keep]),
        "package": np.array([c.package for c in keep]),
        "name": np.array([c.name for c in keep]),
        "duration": np.array([(c.audio.size / MODEL_SAMPLE_RATE) if c.audio is not None else -1.0
                              for c in keep]),
        "path": np.array([str(c.path) if c.path is not None else "" for c in keep]),
        "encoder_id": np.array(encoder.model_id),
    }


# Training views of each clip, for a head that tags a drum through a room, a distortion or
# another pitch as it tags it dry: each clip once through each kind, with random settings.
# (Own code and ranges; bench/tagging.py's damage is bench/damage.py's.)
AUGMENT_KINDS = ("room", "drive", "pitch")
AUGMENT_SEED = 20261207
AUGMENT_CACHE = CACHE.with_name("tagger_features_augmented.npz")
# Whether the shipped head learns from those views beside the dry clips (bench/tagging.py
# --train-views dry|augmented compares the two on held-out packages).
TRAIN_WITH_VIEWS = True


def augmented(audio: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One training view of a clip (model-rate mono): ``room``, a decaying noise tail of
    RT60 0.2-1.2 s after the direct sound at a direct-to-reverberant ratio of -6 to +12 dB;
    ``drive``, tanh saturation with 3-20 dB of drive; ``pitch``, played 1-7 semitones up or
    down as a sampler plays it (resampled). Peak kept."""
    import soxr
    from scipy import signal

    audio = np.asarray(audio, dtype=np.float64)
    peak = max(float(np.max(np.abs(audio))), 1e-9) if audio.size else 1.0
    if kind == "room":
        rt60 = float(rng.uniform(0.2, 1.2))
        n = int(rt60 * MODEL_SAMPLE_RATE)
        t = np.arange(n) / MODEL_SAMPLE_RATE
        tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
        tail[: int(0.002 * MODEL_SAMPLE_RATE)] = 0.0               # reflections come later
        drr_db = float(rng.uniform(-6.0, 12.0))
        tail *= 10 ** (-drr_db / 20) / max(float(np.sqrt(np.sum(tail ** 2))), 1e-9)
        tail[0] = 1.0
        out = signal.fftconvolve(audio, tail)[: audio.size + n // 2]
    elif kind == "drive":
        drive = 10 ** (float(rng.uniform(3.0, 20.0)) / 20)
        out = np.tanh(drive * audio / peak)
    elif kind == "pitch":
        semitones = float(rng.uniform(1.0, 7.0)) * (1 if rng.random() < 0.5 else -1)
        out = soxr.resample(audio.astype(np.float32), MODEL_SAMPLE_RATE * 2 ** (semitones / 12),
                            MODEL_SAMPLE_RATE).astype(np.float64)
    else:
        raise ValueError(f"unknown training view: {kind}")
    top = float(np.max(np.abs(out))) if out.size else 0.0
    return (out * (peak / top) if top > 0 else out).astype(np.float32)


def extract_augmented(clips, encoder: Encoder, log=print) -> dict:
    """Feature rows of each clip's ``AUGMENT_KINDS`` views (clips that do not decode or embed
    are left out), with the clip's labels and which view each row is."""
    rows, keep, kinds = [], [], []
    started = time.monotonic()
    for i, clip in enumerate(clips):
        try:
            audio = clip_audio(clip)
        except Exception:  # noqa: BLE001 — a broken file is left out (extract says so)
            continue
        for k, kind in enumerate(AUGMENT_KINDS):
            rng = np.random.default_rng([AUGMENT_SEED, i, k])
            row = feature_row(augmented(audio, kind, rng), encoder)
            if row is None:
                continue
            rows.append(row)
            keep.append(clip)
            kinds.append(kind)
        if i % 500 == 0:
            log(f"  {i}/{len(clips)} clips' views, {time.monotonic() - started:.0f} s")
    return {"x": np.stack(rows).astype(np.float32),
            "tag": np.array([c.tag for c in keep]),
            "loop": np.array([c.loop for c in keep]),
            "package": np.array([c.package for c in keep]),
            "view": np.array(kinds),
            "encoder_id": np.array(encoder.model_id)}


def load_augmented_features(refresh: bool = False, log=print) -> dict:
    """``extract_augmented`` of the labelled clips, cached like ``load_features``."""
    import inspect
    recipe = hashlib.sha256(json.dumps([recipe_id(), inspect.getsource(augmented),
                                        list(AUGMENT_KINDS), AUGMENT_SEED]).encode()
                            ).hexdigest()[:16]
    return _cached(AUGMENT_CACHE, recipe, extract_augmented, refresh, log)


def _cached(path: pathlib.Path, recipe: str, make, refresh: bool, log) -> dict:
    """``make(clips, encoder, log=)`` of the labelled clips, kept in ``path`` and made again
    when the encoder or ``recipe`` changed (or on ``refresh``)."""
    encoder = Encoder(threads=2)
    if path.exists() and not refresh:
        data = dict(np.load(path, allow_pickle=False))
        if (str(data["encoder_id"]) == encoder.model_id
                and str(data.get("recipe_id", "")) == recipe):
            return data
        log(f"cached tag features ({path.name}) are stale (another encoder or clip recipe): "
            "extracting again")
    data = make(tag_data.all_clips(log=log), encoder, log=log)
    data["recipe_id"] = np.array(recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    return data


def recipe_id() -> str:
    """What the cached features were made by besides the encoder: the sources of the
    labelled clips, their rendering, the descriptors and the feature layout. A change to
    any of them (a label moved, a clip left out) makes the cache stale."""
    from models import descriptors, tagger as shipped_tagger
    from models.train import midi_render
    digest = hashlib.sha256()
    for module in (tag_data, midi_render, descriptors, shipped_tagger):
        digest.update(pathlib.Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def load_features(refresh: bool = False, log=print) -> dict:
    """``extract`` of the labelled clips, cached in ``CACHE``."""
    return _cached(CACHE, recipe_id(), extract, refresh, log)


class Head:
    """The trained head's parameters (numpy), with predict and ONNX export."""

    def __init__(self, labels, mean, std, w1, b1, w2, b2, w3, b3):
        self.labels = list(labels)
        self.mean, self.std = mean, std
        self.w1, self.b1, self.w2, self.b2, self.w3, self.b3 = w1, b1, w2, b2, w3, b3

    def forward(self, x):
        h = np.maximum((x - self.mean) / self.std @ self.w1 + self.b1, 0)
        logits = h @ self.w2 + self.b2
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True), 1 / (1 + np.exp(-(h @ self.w3 + self.b3)[:, 0]))


def fit(x: np.ndarray, tags: np.ndarray, loops: np.ndarray, *, seed: int = SEED,
        epochs: int = EPOCHS, hidden: int = HIDDEN, decay: float = DECAY,
        dropout: float = DROPOUT) -> Head:
    """Full-batch Adam on class-balanced cross-entropy + loop BCE, L2 on weights."""
    rng = np.random.default_rng(seed)
    labels = sorted(set(tags.tolist()))
    y = np.array([labels.index(t) for t in tags])
    n, d = x.shape
    c = len(labels)
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-3
    z = (x - mean) / std
    counts = np.bincount(y, minlength=c).astype(np.float64)
    weight = (n / (c * counts))[y]
    loop_weight = np.where(loops, n / (2 * max(loops.sum(), 1)), n / (2 * max((~loops).sum(), 1)))
    params = [rng.normal(0, math.sqrt(2 / d), (d, hidden)), np.zeros(hidden),
              rng.normal(0, math.sqrt(1 / hidden), (hidden, c)), np.zeros(c),
              rng.normal(0, math.sqrt(1 / hidden), (hidden, 1)), np.zeros(1)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(c)[y]
    lr = 3e-3
    for step in range(1, epochs + 1):
        w1, b1, w2, b2, w3, b3 = params
        keep = rng.random((n, d)) > dropout                  # input dropout
        zin = z * keep / (1 - dropout)
        pre = zin @ w1 + b1
        h = np.maximum(pre, 0)
        logits = h @ w2 + b2
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        q = 1 / (1 + np.exp(-(h @ w3 + b3)[:, 0]))
        g_logits = (p - onehot) * weight[:, None] / n
        g_loop = ((q - loops) * loop_weight / n)[:, None]
        g_h = g_logits @ w2.T + g_loop @ w3.T
        g_pre = g_h * (pre > 0)
        grads = [zin.T @ g_pre + decay * w1, g_pre.sum(0), h.T @ g_logits + decay * w2,
                 g_logits.sum(0), h.T @ g_loop + decay * w3, g_loop.sum(0)]
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] = params[i] - lr * (m[i] / (1 - 0.9 ** step)) / (np.sqrt(v[i] / (1 - 0.999 ** step)) + 1e-8)
    return Head(labels, mean, std, *params)


def export(head: Head, path: pathlib.Path, encoder_id: str) -> str:
    """Write the head as ONNX (float16-free, opset 13); returns its model id."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def init(name, array):
        return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)

    d = head.w1.shape[0]
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["z"]),
        helper.make_node("Gemm", ["z", "w1", "b1"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["h"]),
        helper.make_node("Gemm", ["h", "w2", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["tag_probs"], axis=1),
        helper.make_node("Gemm", ["h", "w3", "b3"], ["loop_logit"]),
        helper.make_node("Sigmoid", ["loop_logit"], ["loop_prob"]),
    ]
    graph = helper.make_graph(
        nodes, "samplescout_tagger",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", d])],
        [helper.make_tensor_value_info("tag_probs", TensorProto.FLOAT, ["n", len(head.labels)]),
         helper.make_tensor_value_info("loop_prob", TensorProto.FLOAT, ["n", 1])],
        [init("mean", head.mean), init("std", head.std), init("w1", head.w1), init("b1", head.b1),
         init("w2", head.w2), init("b2", head.b2), init("w3", head.w3), init("b3", head.b3)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="samplescout-train-tagger")
    model.ir_version = 8
    digest = hashlib.sha256(b"".join(np.asarray(a, np.float32).tobytes() for a in (
        head.w1, head.w2, head.w3))).hexdigest()[:8]
    model_id = f"tagger-1-{digest}"
    for key, value in (("labels", json.dumps(head.labels)), ("model_id", model_id),
                       ("encoder_id", encoder_id), ("descriptors", json.dumps(list(DESCRIPTOR_NAMES)))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return model_id


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refresh", action="store_true", help="re-extract the features")
    parser.add_argument("--out", type=pathlib.Path, default=TAGGER_PATH)
    parser.add_argument("--no-write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.no_write:
        print("the encoder was written elsewhere: the tag head reads the shipped one, not trained")
        return
    data = load_features(args.refresh)
    x, tags, loops = data["x"], data["tag"], data["loop"]
    if TRAIN_WITH_VIEWS:
        views = load_augmented_features(args.refresh)
        x, tags, loops = (np.concatenate([x, views["x"]]), np.concatenate([tags, views["tag"]]),
                          np.concatenate([loops, views["loop"]]))
    head = fit(x, tags, loops)
    model_id = export(head, args.out, str(data["encoder_id"]))
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB), {model_id}, "
          f"{len(data['x'])} clips ({len(x)} rows with their views), labels {head.labels}")


if __name__ == "__main__":
    main()
