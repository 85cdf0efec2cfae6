"""The tag head on packages it was not trained on: leave one Debian package out, train on
the others (``models.train.tagger.fit``, same recipe as the shipped head), predict the one
left out. Reports macro-F1 per held-out package and pooled, a confusion matrix, drum-class
top-1 accuracy, and loop-vs-one-shot accuracy of the content head against the name/decay
rule (``app.analysis.classify_kind``). Writes bench/results/tagging.json.

    .venv/bin/python bench/tagging.py

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
from models.train.tagger import fit, load_features  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "tagging.json"


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


def main() -> None:
    data = load_features()
    x, tags, loops, packages = data["x"], data["tag"], data["loop"], data["package"]
    paths, names = data["path"], data["name"]
    d0 = x.shape[1] - len(DESCRIPTOR_NAMES)
    truth, predicted, loop_truth, loop_head, loop_rule, held = [], [], [], [], [], []
    per_package = {}
    for package in sorted(set(packages.tolist())):
        test = packages == package
        head = fit(x[~test], tags[~test], loops[~test])
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
    lt = np.array(loop_truth)
    result = {
        "method": "leave one package out: train on the other packages, predict the held-out one",
        "clips": len(truth),
        "per_package": per_package,
        "pooled_macro_f1": round(pooled, 4),
        "classes": classes,
        "drum_top1_accuracy": round(drum_accuracy, 4),
        "drum_classes": [c for c in DRUM_TAGS if c != "percussion"],
        "loop_accuracy": {"content_head": round(float(np.mean(np.array(loop_head) == lt)), 4),
                          "name_decay_rule": round(float(np.mean(np.array(loop_rule) == lt)), 4),
                          "loops": int(lt.sum()), "one_shots": int((~lt).sum())},
        "confusion": confusion,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"pooled macro-F1 {pooled:.3f} over {len(classes)} classes; drum top-1 {drum_accuracy:.3f}")
    print(f"loop accuracy: head {result['loop_accuracy']['content_head']:.3f}, "
          f"rule {result['loop_accuracy']['name_decay_rule']:.3f}")
    width = max(len(c) for c in classes)
    print(" " * (width + 1) + " ".join(f"{c[:5]:>5}" for c in classes))
    for t in classes:
        print(f"{t:>{width}} " + " ".join(f"{confusion[t][p]:>5}" for p in classes))


if __name__ == "__main__":
    main()
