"""Export the trained student to ONNX (float) and to static int8 QDQ, with metadata.

Input ``log_mel`` ``(batch, 100, 96)`` float32 -> output ``embedding`` ``(batch, dim)``,
the contract ``models.encoder.Encoder`` expects. Quantisation: onnxruntime
``quantize_static``, QDQ, uint8 activations, int8 per-channel weights, percentile
calibration on blocks of the training pool (clean blocks and damaged views).
Prints the int8/float agreement and the per-block cost on one thread.

Run: ``python -m models.train.export --work-dir DIR --out models/scout_int8.onnx``.
"""

from __future__ import annotations

import argparse
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
from models.onnx_session import cpu_session_options  # noqa: E402
from models.train.student import Student  # noqa: E402

MODEL_ID = "scout-int8-5"
MODEL_ID_FP32 = "scout-fp32-5"
SOURCE = ("Sample Scout student encoder, trained from scratch on audio of Debian packages "
          "(fluid-soundfont-gm, hedgewars-data, openarena-data, freedoom, wesnoth-1.16-music, "
          "frozen-bubble-data) with contrastive learning and distillation from aisfx-int8-1")
LICENSE = ("weights: CC BY 4.0 (distilled from the aisfx weights by A.B. Ma and A. Lerch, CC BY 4.0); "
           "see models/MODEL_CARD.md")


def set_metadata(model, model_id: str, dim: int) -> None:
    del model.metadata_props[:]
    for key, value in {"model_id": model_id, "source": SOURCE, "license": LICENSE,
                       "input": "log_mel (batch, 100, 96) float32, models.preprocess recipe "
                                f"version {RECIPE_VERSION}",
                       "output": f"embedding (batch, {dim}) float32, not normalised"}.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def export_fp32(student: Student, path: pathlib.Path) -> None:
    import onnx
    student.eval()
    example = torch.zeros(1, 100, 96)
    torch.onnx.export(student, (example,), str(path), input_names=["log_mel"], output_names=["embedding"],
                      dynamic_axes={"log_mel": {0: "batch"}, "embedding": {0: "batch"}},
                      opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    set_metadata(model, MODEL_ID_FP32, student.dim)
    onnx.save(model, str(path))


def quantise(fp32_path: pathlib.Path, int8_path: pathlib.Path, blocks: np.ndarray, dim: int,
             percentile: float = 99.999) -> None:
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter(blocks[i:i + 1] for i in range(len(blocks)))

        def get_next(self):
            item = next(self._items, None)
            return None if item is None else {"log_mel": item}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = pathlib.Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(str(prepared), str(int8_path), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": percentile})
    model = onnx.load(str(int8_path))
    set_metadata(model, MODEL_ID, dim)
    onnx.save(model, str(int8_path))


def session(path: pathlib.Path):
    import onnxruntime as ort
    return ort.InferenceSession(str(path), cpu_session_options(), providers=["CPUExecutionProvider"])


def per_block_ms(path: pathlib.Path, block: np.ndarray, repeats: int = 200) -> dict:
    s = session(path)
    x = block[None].astype(np.float32)
    for _ in range(10):
        s.run(None, {"log_mel": x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        s.run(None, {"log_mel": x})
        times.append(time.perf_counter() - t0)
    return {"min": round(min(times) * 1e3, 3), "median": round(float(np.median(times)) * 1e3, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "models" / "scout_int8.onnx")
    parser.add_argument("--calibration-blocks", type=int, default=256)
    parser.add_argument("--student", default="student_hn.pt",
                        help="finished weights in the work dir (student.pt: stage 1 only)")
    parser.add_argument("--from-checkpoint", default=None, metavar="NAME",
                        help="export this training checkpoint (e.g. checkpoint_hn.pt) instead")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.from_checkpoint:
        state = torch.load(args.work_dir / args.from_checkpoint, weights_only=False)
        weights = {k[len("student."):]: v for k, v in state["model"].items() if k.startswith("student.")}
        # the conv weights (out, in, 3, 3) say how wide the network was
        widths = tuple(int(w.shape[0]) for w in weights.values() if w.ndim == 4)
        state = {"dim": state["args"]["dim"], "widths": widths, "student": weights}
    else:
        state = torch.load(args.work_dir / args.student, weights_only=False)
    student = Student(state["dim"], tuple(state["widths"]))
    student.load_state_dict(state["student"])
    student.eval()
    fp32_path = args.out.with_name(args.out.stem.replace("int8", "fp32") + ".onnx")
    if fp32_path == args.out:
        fp32_path = args.out.with_suffix(".fp32.onnx")
    fp32_path = args.work_dir / fp32_path.name
    export_fp32(student, fp32_path)

    with np.load(args.work_dir / "pool.npz") as data:
        clean, views, held = data["clean"], data["views"], data["held_out"]
    rng = np.random.default_rng(11)
    train_idx = np.flatnonzero(~held)
    pick = rng.choice(train_idx, size=args.calibration_blocks, replace=False)
    half = args.calibration_blocks // 2
    calib = np.concatenate([clean[pick[:half]], views[pick[half:], rng.integers(0, views.shape[1], len(pick) - half)]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    quantise(fp32_path, args.out, calib.astype(np.float32), state["dim"])

    test = np.concatenate([clean[held][:100], views[held][:100, 1]]).astype(np.float32)
    with torch.no_grad():
        reference = student(torch.from_numpy(test)).numpy()
    results = {}
    for name, path in (("fp32", fp32_path), ("int8", args.out)):
        out = session(path).run(None, {"log_mel": test})[0]
        cos = (out * reference).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(reference, axis=1)
        results[name] = {"cosine_to_torch_mean": round(float(cos.mean()), 5),
                         "cosine_to_torch_min": round(float(cos.min()), 5),
                         "ms_per_block_1_thread": per_block_ms(path, test[0]),
                         "bytes": path.stat().st_size}
    print(json.dumps(results, indent=1))
    (args.work_dir / "export.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
