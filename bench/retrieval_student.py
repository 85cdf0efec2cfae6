"""Run ``bench/retrieval.py`` with the student encoder as an extra model, in the same run.

Adds the models ``scout`` (``--student``, default ``models/scout_int8.onnx``),
``scout-rerank`` (the same encoder, then the re-ranker ``--reranker``, default
``models/scout_rerank_int8.onnx``) and optionally ``scout-fp32`` (``--student-fp32``) to
the benchmark's own ``aisfx`` and ``mfcc``; everything else (library, damage, queries,
scoring) is the benchmark's code.
The student goes through exactly the runtime path: ``models.encoder.Encoder`` with the
shared pre-processing recipe. The cache key includes the model file's hash, so a
retrained model is never scored with stale library vectors.

Run (app venv, no torch needed):
``.venv/bin/python -m bench.retrieval_student [--student PATH] [--queries 300]
[--reranker PATH] [--out bench/results/retrieval_student.json]
[--models scout-rerank,scout,aisfx,mfcc]``.
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import retrieval  # noqa: E402


def _file_hash(path: pathlib.Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:10]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=True)
    parser.add_argument("--student", type=pathlib.Path, default=REPO / "models" / "scout_int8.onnx")
    parser.add_argument("--student-fp32", type=pathlib.Path, default=None)
    parser.add_argument("--reranker", type=pathlib.Path, default=REPO / "models" / "scout_rerank_int8.onnx")
    parser.add_argument("--models", default=None)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "bench" / "results" / "retrieval_student.json")
    args, rest = parser.parse_known_args(argv)
    extra = {"scout": args.student}
    if args.student_fp32 is not None:
        extra["scout-fp32"] = args.student_fp32
    for name, path in list(extra.items()) + [("scout-rerank", args.reranker)]:
        if not path.is_file():
            raise SystemExit(f"{name}: model file not found: {path}")
    original = retrieval.build_model

    def build_model(name, fp32_path):
        if name == "scout-rerank":
            model = retrieval.RerankedEncoderModel(name, args.student, args.reranker)
            model.encoder_model_id += f"#{_file_hash(args.student)}"
            model.model_id = f"{model.encoder_model_id}+{model.reranker.model_id}#{_file_hash(args.reranker)}"
            return model
        if name in extra:
            model = retrieval.EncoderModel(name, trim_leading_silence=True, model_path=extra[name])
            model.model_id += f"#{_file_hash(extra[name])}"
            return model
        return original(name, fp32_path)

    retrieval.build_model = build_model
    retrieval.ALL_MODELS = ("scout-rerank",) + tuple(extra) + tuple(retrieval.ALL_MODELS)
    models = args.models or ",".join(["scout-rerank"] + list(extra) + ["aisfx", "mfcc"])
    return retrieval.main(["--models", models, "--out", str(args.out)] + rest)


if __name__ == "__main__":
    raise SystemExit(main())
