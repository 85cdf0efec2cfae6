"""How much tag agreement should weigh in a search by example's kind order
(``app.similar_kind.KIND_WEIGHT``), on ``bench/retrieval.py``'s labelled Debian packages
(hydrogen-drumkits, hydrogen-drumkits-effects, sonic-pi-samples, lmms-common), never on the
independent set: same-category P@10 of each labelled file's neighbours, macro and micro over
its coarse and its strict categories, by cosine alone and in the kind order at several
weights. The tag head was trained on these packages, so its tags are better here than on
unseen sounds and the gains flatter it; the figure that counts is ``bench/independent.py``'s.

    nice -n 5 .venv/bin/python bench/kind_weight.py

Writes bench/results/kind_weight.json and prints a table.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import similar_kind  # noqa: E402
from bench import retrieval  # noqa: E402
from bench.independent import same_tag_precision, stored_type_tags  # noqa: E402

WEIGHTS = (0.05, 0.1, 0.25, 0.5, 1.0)
RESULTS = Path(__file__).resolve().parent / "results" / "kind_weight.json"


def main() -> int:
    files, counts = retrieval.collect_files(None, 0)
    model = retrieval.build_model("scout", retrieval.DEFAULT_FP32_MODEL)
    timing: dict = {}
    lib = retrieval.embed_library(files, [model], timing)["scout"]
    usable = np.array([f.skip is None and lib.starts[i + 1] > lib.starts[i]
                       for i, f in enumerate(files)])
    twins = retrieval.find_level_twins(files, counts, timing)
    labelled = [i for i in range(len(files)) if usable[i] and files[i].coarse]
    tags = stored_type_tags(files, labelled, lib)
    shipped = similar_kind.KIND_WEIGHT
    out = {"bench": "kind_weight", "shipped_weight": shipped, "labels": {}}
    for attr in ("coarse", "strict"):
        relabelled = [retrieval.LibraryFile(f.path, f.size, f.mtime_ns, f.sha1, None,
                                            getattr(f, attr), f.n_samples, f.skip)
                      for f in files]
        rows = {"cosine": same_tag_precision(lib, relabelled, usable, twins)}
        try:
            for weight in WEIGHTS:
                similar_kind.KIND_WEIGHT = weight
                rows[f"kind_{weight:g}"] = same_tag_precision(lib, relabelled, usable, twins, tags)
        finally:
            similar_kind.KIND_WEIGHT = shipped
        out["labels"][attr] = {name: {k: r[k] for k in ("n_queries", "macro", "micro")}
                               for name, r in rows.items()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'order':<14}" + "".join(f"{a + ' macro':>16}{a + ' micro':>16}" for a in out["labels"]))
    for name in out["labels"]["coarse"]:
        print(f"{name:<14}" + "".join(f"{out['labels'][a][name]['macro']:>16.4f}"
                                      f"{out['labels'][a][name]['micro']:>16.4f}"
                                      for a in out["labels"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
