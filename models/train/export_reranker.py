"""Export the re-ranker (``rerank.py``) to ONNX, static int8 like the encoder, with metadata.

Inputs ``query`` and ``candidate``, both ``(k, 100, 96)`` float32 log-mel blocks of the
shared pre-processing recipe; output ``score`` ``(k,)``: row ``i`` scores candidate block
``i`` as the clean original of query block ``i`` (higher = more likely). The contract of
``models.reranker.Reranker``. Prints how often the int8 file picks the same best candidate
as torch and its cost for ten pairs on one thread.

Run: ``python -m models.train.export_reranker --work-dir DIR [--reranker reranker.pt]
[--out models/scout_rerank_int8.onnx]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import pathlib
import sys
import tempfile
import time

import numpy as np
import torch

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from models.preprocess import RECIPE_VERSION  # noqa: E402
from models.train.export import LICENSE, MODEL_ID as ENCODER_ID, session  # noqa: E402
from models.train.rerank import PairHead, PairModel, Reranker  # noqa: E402
from models.train.student import load_student  # noqa: E402

MODEL_ID = "scout-rerank-int8-2"
SOURCE = (f"Sample Scout re-ranker: the conv trunk of {ENCODER_ID} (frozen) and a pair head trained "
          "on the same training pool to pick a damaged block's clean original among the encoder's "
          "nearest candidates")


def set_metadata(model, model_id: str) -> None:
    del model.metadata_props[:]
    for key, value in {"model_id": model_id, "source": SOURCE, "license": LICENSE,
                       "encoder": ENCODER_ID,
                       "input": "query, candidate: (k, 100, 96) float32 log-mel, models.preprocess "
                                f"recipe version {RECIPE_VERSION}",
                       "output": "score (k,) float32, higher = candidate i is query i's original"}.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def load(work_dir: pathlib.Path, names: list[str]) -> Reranker:
    """The trained pair models ``names`` (files in ``work_dir``) on their shared trunk."""
    pairs, student_path, split = [], None, None
    for name in names:
        saved = torch.load(work_dir / name, weights_only=False)
        if student_path is None:
            student_path = saved["student"]
            student = load_student(student_path)
            split = saved.get("split", len(student.features))
        if saved["student"] != student_path or saved.get("split", len(student.features)) != split:
            raise SystemExit(f"{name} was trained on another trunk or split than {names[0]}")
        pair = PairModel(copy.deepcopy(student.features[split:]), PairHead(student.widths[-1], saved["width"]))
        if "pair" in saved:
            pair.load_state_dict(saved["pair"])
        else:                                   # a head-only run, before the trunk could be tuned
            pair.head.load_state_dict(saved["head"])
        pairs.append(pair)
    model = Reranker(student, pairs, split)
    model.eval()
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=pathlib.Path, required=True)
    parser.add_argument("--reranker", default="reranker.pt",
                        help="trained pair model(s) in the work dir, comma-separated: scores are averaged")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "models" / "scout_rerank_int8.onnx")
    parser.add_argument("--calibration-pairs", type=int, default=128)
    args = parser.parse_args(argv)
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    torch.set_num_threads(1)
    model = load(args.work_dir, args.reranker.split(","))
    fp32_path = args.work_dir / "scout_rerank_fp32.onnx"
    example = torch.zeros(2, 100, 96)
    torch.onnx.export(model, (example, example), str(fp32_path), input_names=["query", "candidate"],
                      output_names=["score"], opset_version=17, dynamo=False,
                      dynamic_axes={"query": {0: "k"}, "candidate": {0: "k"}, "score": {0: "k"}})

    with np.load(args.work_dir / "pool.npz") as data:
        clean, views, held = data["clean"], data["views"], data["held_out"]
    rng = np.random.default_rng(5)
    train_idx, held_idx = np.flatnonzero(~held), np.flatnonzero(held)
    # calibration: damaged views against their own clean block and against another item's
    pick = rng.choice(train_idx, size=args.calibration_pairs, replace=False)
    other = rng.choice(train_idx, size=args.calibration_pairs, replace=False)
    queries = views[pick, rng.integers(0, views.shape[1], len(pick))].astype(np.float32)
    cands = np.where((np.arange(len(pick)) % 2 == 0)[:, None, None], clean[pick], clean[other]).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter({"query": queries[i:i + 1], "candidate": cands[i:i + 1]} for i in range(len(pick)))

        def get_next(self):
            return next(self._items, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = pathlib.Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(str(prepared), str(args.out), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": 99.999})
    for path, model_id in ((args.out, MODEL_ID), (fp32_path, MODEL_ID.replace("int8", "fp32"))):
        proto = onnx.load(str(path))
        set_metadata(proto, model_id)
        onnx.save(proto, str(path))

    # agreement on held-out items: each damaged view against its own block and 9 others
    n = min(100, len(held_idx))
    q_items = held_idx[:n]
    results = {}
    sessions = {"fp32": session(fp32_path), "int8": session(args.out)}
    picks = {name: [] for name in sessions}
    torch_picks = []
    for item in q_items:
        others = rng.choice(held_idx[held_idx != item], size=9, replace=False)
        cand = clean[np.concatenate([[item], others])].astype(np.float32)
        query = np.repeat(views[item, 1][None].astype(np.float32), 10, axis=0)
        with torch.no_grad():
            torch_picks.append(int(model(torch.from_numpy(query), torch.from_numpy(cand)).argmax()))
        for name, s in sessions.items():
            picks[name].append(int(s.run(None, {"query": query, "candidate": cand})[0].argmax()))
    for name, s in sessions.items():
        query = np.repeat(views[q_items[0], 1][None].astype(np.float32), 10, axis=0)
        cand = clean[held_idx[:10]].astype(np.float32)
        for _ in range(5):
            s.run(None, {"query": query, "candidate": cand})
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            s.run(None, {"query": query, "candidate": cand})
            times.append(time.perf_counter() - t0)
        path = args.out if name == "int8" else fp32_path
        results[name] = {"same_pick_as_torch": round(float(np.mean(np.array(picks[name]) == torch_picks)), 3),
                         "own_block_first": round(float(np.mean(np.array(picks[name]) == 0)), 3),
                         "ms_per_10_pairs_1_thread": round(float(np.median(times)) * 1e3, 2),
                         "bytes": path.stat().st_size}
    results["torch_own_block_first"] = round(float(np.mean(np.array(torch_picks) == 0)), 3)
    print(json.dumps(results, indent=1))
    (args.work_dir / "export_reranker.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
