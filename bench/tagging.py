"""The tag head on packages it was not trained on: leave one Debian package out, train on
the others (``models.train.tagger.fit``, same recipe as the shipped head), predict the one
left out. Reports macro-F1 per held-out package and pooled, a confusion matrix, drum-class
top-1 accuracy, and loop-vs-one-shot accuracy of the content head against the name/decay
rule (``app.analysis.classify_kind``). Writes bench/results/tagging.json.

Drum classes are also tagged through damage (``--damaged``): each held-out drum clip through
a synthetic room (``bench/damage.py``, RT60 0.4 s), a saturating distortion (tanh, 12 dB
of drive), and played 5 semitones up and down as a sampler plays it (resampled: shorter
and longer), embedded and described again and tagged by the head that did not see its
package.

    .venv/bin/python bench/tagging.py [--damaged]

Features are cached by ``models/train/tagger.py`` (bench/cache/tagger_features.npz).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.analysis import classify_kind  # noqa: E402
from models.descriptors import DESCRIPTOR_NAMES  # noqa: E402
from models.tag_vocabulary import DRUM_TAGS, LOOP_TAGS  # noqa: E402
from models.train.tagger import (  # noqa: E402
    AUGMENT_KINDS, TRAIN_WITH_VIEWS, fit, load_augmented_features, load_features,
)

RESULTS = Path(__file__).resolve().parent / "results" / "tagging.json"


# Pooled figures over sets of held-out packages: the packages of sample files as a library
# holds them (no General MIDI render among them), and the five packages the head was
# first measured on (for comparison with runs before the other banks were added).
PACKAGE_SETS = {
    "sample_files": ("hydrogen-drumkits", "hydrogen-drumkits-effects", "sonic-pi-samples",
                     "lmms-common"),
    "first_five": ("hydrogen-drumkits", "hydrogen-drumkits-effects", "sonic-pi-samples",
                   "lmms-common", "fluid-soundfont-gm"),
}


def macro_f1(truth: list[str], predicted: list[str], classes: list[str]) -> float:
    scores = []
    for c in classes:
        tp = sum(t == c and p == c for t, p in zip(truth, predicted))
        fp = sum(t != c and p == c for t, p in zip(truth, predicted))
        fn = sum(t == c and p != c for t, p in zip(truth, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores)) if scores else float("nan")


def decide(labels: list[str], probs: np.ndarray, loop_prob: float) -> str:
    """The runtime's decision (models.tagger.Tagger.decide): the kind's columns only."""
    loop_columns = np.array([label in LOOP_TAGS for label in labels])
    mask = loop_columns if loop_prob >= 0.5 else ~loop_columns
    return labels[int(np.argmax(np.where(mask, probs, -1)))]


DAMAGES = ("reverb", "distortion", "up_5_semitones", "down_5_semitones")
DRIVE_DB = 12.0


def damaged(kind: str, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One drum clip (model-rate mono) through one of ``DAMAGES``."""
    import soxr

    from bench import damage
    from models.encoder import MODEL_SAMPLE_RATE
    if kind == "reverb":
        return damage.room_reverb(audio, rng)
    if kind == "distortion":
        drive = 10 ** (DRIVE_DB / 20)
        peak = max(float(np.max(np.abs(audio))), 1e-9)
        return (np.tanh(drive * audio / peak) / np.tanh(drive) * peak).astype(np.float32)
    semitones = 5 if kind == "up_5_semitones" else -5
    ratio = 2 ** (semitones / 12)
    # a sampler plays the recording faster (higher and shorter) or slower
    return soxr.resample(audio, MODEL_SAMPLE_RATE * ratio, MODEL_SAMPLE_RATE).astype(np.float32)


def damaged_drum_accuracy(heads: dict, data: dict) -> dict:
    """Top-1 of the drum classes through each of ``DAMAGES``, each clip tagged by the head
    trained without its package."""
    from models.encoder import Encoder
    from models.train.tag_data import all_clips
    from models.train.tagger import clip_audio, feature_row
    drum_classes = [c for c in DRUM_TAGS if c != "percussion"]
    rows = {(str(p), str(n), str(k)): i for i, (p, n, k) in
            enumerate(zip(data["package"], data["name"], data["path"]))}
    encoder = Encoder(threads=2)
    right = {kind: [] for kind in DAMAGES}
    per_class = {kind: {c: [] for c in drum_classes} for kind in DAMAGES}
    for n, clip in enumerate(c for c in all_clips(log=lambda _m: None) if c.tag in drum_classes):
        key = (clip.package, clip.name, str(clip.path) if clip.path is not None else "")
        if key not in rows:
            continue        # a clip that did not embed when the features were made
        audio = clip_audio(clip)
        head = heads[clip.package]
        for kind in DAMAGES:
            rng = np.random.default_rng([20261207, n, DAMAGES.index(kind)])
            row = feature_row(damaged(kind, audio, rng), encoder)
            ok = False
            if row is not None:
                probs, loop_prob = head.forward(row[None])
                ok = decide(head.labels, probs[0], loop_prob[0]) == clip.tag
            right[kind].append(ok)
            per_class[kind][clip.tag].append(ok)
    return {kind: {"clips": len(right[kind]),
                   "top1": round(float(np.mean(right[kind])), 4),
                   "per_class": {c: round(float(np.mean(v)), 4) for c, v in
                                 per_class[kind].items() if v}}
            for kind in DAMAGES}


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--damaged", action="store_true",
                        help="also tag the drum clips through reverb, distortion and +-5 st")
    parser.add_argument("--train-views", choices=("shipped", "dry", "augmented"),
                        default="shipped",
                        help="train each held-out head on the dry clips alone or with their "
                             "training views (models.train.tagger.AUGMENT_KINDS); default: "
                             "as the shipped head is trained (TRAIN_WITH_VIEWS)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with_views = (TRAIN_WITH_VIEWS if args.train_views == "shipped"
                  else args.train_views == "augmented")
    data = load_features()
    views = load_augmented_features() if with_views else None
    x, tags, loops, packages = data["x"], data["tag"], data["loop"], data["package"]
    paths, names = data["path"], data["name"]
    d0 = x.shape[1] - len(DESCRIPTOR_NAMES)
    truth, predicted, loop_truth, loop_head, loop_rule, held = [], [], [], [], [], []
    per_package = {}
    heads = {}
    for package in sorted(set(packages.tolist())):
        test = packages == package
        train_x, train_tags, train_loops = x[~test], tags[~test], loops[~test]
        if views is not None:
            other = views["package"] != package
            train_x = np.concatenate([train_x, views["x"][other]])
            train_tags = np.concatenate([train_tags, views["tag"][other]])
            train_loops = np.concatenate([train_loops, views["loop"][other]])
        head = heads[package] = fit(train_x, train_tags, train_loops)
        probs, loop_prob = head.forward(x[test])
        pred = [decide(head.labels, p, q) for p, q in zip(probs, loop_prob)]
        known = sorted(set(tags[test].tolist()))
        f1 = macro_f1(tags[test].tolist(), pred, known)
        unseen = sorted(set(known) - set(head.labels))
        per_package[package] = {"clips": int(test.sum()), "classes": known, "macro_f1": round(f1, 4),
                                "classes_unseen_in_training": unseen}
        print(f"{package:<28} {int(test.sum()):>5} clips  macro-F1 {f1:.3f}  classes {len(known)}")
        truth += tags[test].tolist()
        predicted += pred
        held += [package] * int(test.sum())
        for row, is_loop, q, path, name in zip(x[test], loops[test], loop_prob, paths[test], names[test]):
            duration = math.exp(float(row[d0]))
            decay = float(row[d0 + 1]) * 20
            rule = classify_kind(str(path), duration, 1.0, 10 ** (decay / 20))
            loop_truth.append(bool(is_loop))
            loop_head.append(bool(q >= 0.5))
            loop_rule.append(rule == "loop")
    classes = sorted(set(truth))
    confusion = {t: {p: 0 for p in classes} for t in classes}
    for t, p in zip(truth, predicted):
        confusion[t][p] = confusion[t].get(p, 0) + 1
    pooled = macro_f1(truth, predicted, classes)
    drums = [i for i, t in enumerate(truth) if t in DRUM_TAGS and t != "percussion"]
    drum_accuracy = float(np.mean([truth[i] == predicted[i] for i in drums]))
    subsets = {}
    drum_rows = set(drums)
    for label, members in PACKAGE_SETS.items():
        inside = [i for i, p in enumerate(held) if p in members]
        sub_truth, sub_pred = [truth[i] for i in inside], [predicted[i] for i in inside]
        sub_drums = [i for i in inside if i in drum_rows]
        subsets[label] = {
            "packages": sorted(set(held[i] for i in inside)), "clips": len(inside),
            "pooled_macro_f1": round(macro_f1(sub_truth, sub_pred, sorted(set(sub_truth))), 4),
            "drum_top1_accuracy": round(float(np.mean([truth[i] == predicted[i] for i in sub_drums])), 4),
            "drum_clips": len(sub_drums)}
    lt = np.array(loop_truth)
    result = {
        "method": "leave one package out: train on the other packages, predict the held-out one",
        "train_views": list(AUGMENT_KINDS) if with_views else [],
        "clips": len(truth),
        "per_package": per_package,
        "pooled_macro_f1": round(pooled, 4),
        "pooled_by_package_set": subsets,
        "classes": classes,
        "drum_top1_accuracy": round(drum_accuracy, 4),
        "drum_classes": [c for c in DRUM_TAGS if c != "percussion"],
        "loop_accuracy": {"content_head": round(float(np.mean(np.array(loop_head) == lt)), 4),
                          "name_decay_rule": round(float(np.mean(np.array(loop_rule) == lt)), 4),
                          "loops": int(lt.sum()), "one_shots": int((~lt).sum())},
        "confusion": confusion,
    }
    if args.damaged:
        result["drum_top1_damaged"] = damaged_drum_accuracy(heads, data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"pooled macro-F1 {pooled:.3f} over {len(classes)} classes; drum top-1 {drum_accuracy:.3f}")
    for label, r in subsets.items():
        print(f"  {label}: pooled macro-F1 {r['pooled_macro_f1']:.3f}, drum top-1 "
              f"{r['drum_top1_accuracy']:.3f} ({r['clips']} clips)")
    print(f"loop accuracy: head {result['loop_accuracy']['content_head']:.3f}, "
          f"rule {result['loop_accuracy']['name_decay_rule']:.3f}")
    for kind, r in result.get("drum_top1_damaged", {}).items():
        print(f"drum top-1 through {kind}: {r['top1']:.3f} ({r['clips']} clips)")
    width = max(len(c) for c in classes)
    print(" " * (width + 1) + " ".join(f"{c[:5]:>5}" for c in classes))
    for t in classes:
        print(f"{t:>{width}} " + " ".join(f"{confusion[t][p]:>5}" for p in classes))


if __name__ == "__main__":
    main()
