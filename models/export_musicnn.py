"""Export musicnn's Million Song Dataset tagger (MSD_musicnn) to ONNX with 8-bit weights.

Build-time only: needs tensorflow-cpu, tf2onnx, onnx, onnxruntime and the ``musicnn``
package (installed without its pinned dependencies); the app never imports tensorflow.
``make export-musicnn`` builds the venv and runs:

    .venv-musicnn/bin/python models/export_musicnn.py --out models/

The graph is musicnn's own (``musicnn.models.define_model``) with batch normalisation in
inference mode, restored from the checkpoint inside the package. Input ``log_mel``:
(batch, 187, 96) float32 patches of ``models.music_frontend``; output ``tag_probs``:
(batch, 50) sigmoid probabilities in ``musicnn.configuration.MSD_LABELS`` order. Writes
``musicnn_msd_int8.onnx`` (int8 weights, see ``quantise``) into ``--out`` and the float model to
``--fp32-out`` (default ``/tmp/musicnn_msd_fp32.onnx``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from models import music_frontend  # noqa: E402

MODEL_ID = "musicnn-msd-int8-1"
MODEL_NAME = "MSD_musicnn"
INPUT_NAME = "log_mel"
OUTPUT_NAME = "tag_probs"
OUT_FILE = "musicnn_msd_int8.onnx"
# Checked after export: real patches from these folders, not used to tune anything.
CHECK_DIRS = (pathlib.Path("/usr/share/sonic-pi/samples"), pathlib.Path("/usr/share/lmms/samples"))


def frozen_graph():
    """(GraphDef with constants for every variable, labels) of MSD_musicnn, and a function
    that runs the TF graph on patches (n, 187, 96)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import musicnn
    from musicnn import configuration, models

    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(
                tf.float32, [None, music_frontend.PATCH_FRAMES, music_frontend.N_MELS], name=INPUT_NAME)
            # a constant False: batch normalisation uses its moving averages
            logits = models.define_model(x, False, MODEL_NAME, len(configuration.MSD_LABELS))[0]
        tf.identity(tf.nn.sigmoid(logits), name=OUTPUT_NAME)
        session = tf.compat.v1.Session(graph=graph)
        saver = tf.compat.v1.train.Saver()
        checkpoint = pathlib.Path(musicnn.__file__).parent / MODEL_NAME
        saver.restore(session, str(checkpoint) + "/")
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), [OUTPUT_NAME])

    def run_tf(patches: np.ndarray) -> np.ndarray:
        return session.run(f"{OUTPUT_NAME}:0", {f"model/{INPUT_NAME}:0": patches})

    return frozen, list(configuration.MSD_LABELS), run_tf


def to_onnx(frozen, path: pathlib.Path) -> None:
    import onnx
    import tf2onnx

    model, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=[f"model/{INPUT_NAME}:0"], output_names=[f"{OUTPUT_NAME}:0"],
        opset=17)
    renames = {f"model/{INPUT_NAME}:0": INPUT_NAME, f"{OUTPUT_NAME}:0": OUTPUT_NAME}
    for value in list(model.graph.input) + list(model.graph.output):
        value.name = renames.get(value.name, value.name)
    for node in model.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def quantise(fp32: pathlib.Path, out: pathlib.Path, labels: list[str]) -> None:
    """8-bit weights, float arithmetic: every Conv and MatMul weight becomes int8 with one
    scale per output channel (symmetric), read through a DequantizeLinear node. onnxruntime's
    dynamic quantisation (ConvInteger) made the same file but ran 3x slower than float on
    this model; here onnxruntime runs its float kernels and the file stays ~0.8 MB."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32))
    initializers = {i.name: i for i in model.graph.initializer}
    dequantise = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MatMul") or node.input[1] not in initializers:
            continue
        name = node.input[1]
        weight = numpy_helper.to_array(initializers[name]).astype(np.float32)
        axis = 0 if node.op_type == "Conv" else 1       # the output channels
        others = tuple(i for i in range(weight.ndim) if i != axis)
        scale = np.maximum(np.abs(weight).max(axis=others), 1e-12) / 127.0
        shape = [1] * weight.ndim
        shape[axis] = -1
        q = np.clip(np.round(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
        model.graph.initializer.remove(initializers[name])
        model.graph.initializer.extend([
            numpy_helper.from_array(q, f"{name}_int8"),
            numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
            numpy_helper.from_array(np.zeros(scale.size, np.int8), f"{name}_zero")])
        dequantise.append(helper.make_node(
            "DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"], [name],
            axis=axis, name=f"{name}_dequantise"))
    nodes = dequantise + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    meta = {
        "model_id": MODEL_ID,
        "labels": json.dumps(labels),
        "source": "musicnn 0.1.0 (PyPI), MSD_musicnn checkpoint, J. Pons and X. Serra",
        "license": "ISC",
        "input": f"{INPUT_NAME}: (batch, {music_frontend.PATCH_FRAMES}, {music_frontend.N_MELS}) "
                 f"float32, log10(10000 * mel + 1) at {music_frontend.SAMPLE_RATE} Hz",
        "output": f"{OUTPUT_NAME}: (batch, {len(labels)}) sigmoid probabilities",
        "sample_rate": str(music_frontend.SAMPLE_RATE),
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


def check_patches(limit: int = 40) -> np.ndarray:
    """Log-mel patches of real Debian files (loops first) for the after-export check."""
    import soundfile
    import soxr

    files = [p for d in CHECK_DIRS if d.exists() for p in sorted(d.rglob("*"))
             if p.suffix.lower() in (".wav", ".flac", ".ogg")]
    files.sort(key=lambda p: ("loop" not in p.name, str(p)))
    patches = []
    for path in files:
        try:
            audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except Exception:  # noqa: BLE001 — a broken file is no check material
            continue
        audio = soxr.resample(audio.mean(axis=1), rate, music_frontend.SAMPLE_RATE)
        if audio.size < music_frontend.SAMPLE_RATE:
            continue
        patches.extend(music_frontend.patches(audio, max_patches=1))
        if len(patches) >= limit:
            break
    rng = np.random.default_rng(0)
    patches.append(rng.uniform(0, 3, (music_frontend.PATCH_FRAMES, music_frontend.N_MELS)))
    return np.stack(patches).astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "models"))
    parser.add_argument("--fp32-out", default="/tmp/musicnn_msd_fp32.onnx")
    args = parser.parse_args(argv)
    import onnxruntime as ort

    frozen, labels, run_tf = frozen_graph()
    fp32 = pathlib.Path(args.fp32_out)
    to_onnx(frozen, fp32)
    out = pathlib.Path(args.out) / OUT_FILE
    quantise(fp32, out, labels)

    patches = check_patches()
    expected = run_tf(patches)
    for name, path in (("fp32", fp32), ("int8", out)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run([OUTPUT_NAME], {INPUT_NAME: patches})[0]
        top1 = float(np.mean(got.argmax(1) == expected.argmax(1)))
        print(f"{name}: {path.stat().st_size / 1e6:.2f} MB, max |p - p_tf| "
              f"{np.abs(got - expected).max():.4f}, corr {np.corrcoef(got.ravel(), expected.ravel())[0, 1]:.4f}, "
              f"top-1 agreement {top1:.3f} over {len(patches)} patches")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
