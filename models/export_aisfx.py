"""Export the aisfx embedding network to ONNX and quantise it to static int8 (QDQ).

Build-time only (needs torch, onnx, onnxruntime, soundfile, soxr and the ``aisfx``
package, installed without its pinned dependencies); the app never imports this.
Reproduce the shipped model with:

    python3 -m venv .venv-train
    .venv-train/bin/pip install torch==2.13.0 onnx onnxruntime numpy soundfile soxr tqdm
    .venv-train/bin/pip install --no-deps aisfx==0.1.2
    apt-get install frozen-bubble-data          # calibration sounds
    .venv-train/bin/python models/export_aisfx.py --out models/

Writes ``aisfx_int8.onnx`` into ``--out`` and the float model to ``--fp32-out``
(default ``/tmp/aisfx_fp32.onnx``, too large to keep in the repository).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from models import frontend, preprocess  # noqa: E402

MODEL_ID_INT8 = "aisfx-int8-1"
MODEL_ID_FP32 = "aisfx-fp32-1"
CALIBRATION_DIR = pathlib.Path("/usr/share/games/frozen-bubble/snd")
MAX_BLOCKS_PER_FILE = 24
INPUT_NAME = "log_mel"
OUTPUT_NAME = "embedding"


def load_torch_model():
    """The aisfx CrossNet (EmbeddingNet('max', 3, 1, 64)) with its shipped weights, in eval mode."""
    import torch
    import aisfx
    from aisfx.models.cnn2d import CrossNet, EmbeddingNet

    checkpoint = pathlib.Path(aisfx.__file__).parent / "models" / "checkpoint.pth"
    try:
        weights, ds_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:
        # the checkpoint is a plain (state_dict, dict) tuple from the installed package
        weights, ds_dict = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = CrossNet(EmbeddingNet("max", 3, 1, 64), ds_dict, "cpu")
    model.load_state_dict(weights)
    model.eval()
    return model


def export_fp32(path: pathlib.Path) -> None:
    import onnx
    import torch

    crossnet = load_torch_model()

    class Embedding(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, log_mel):
            return self.net.get_embedding(log_mel)

    wrapper = Embedding(crossnet).eval()
    example = torch.rand(2, preprocess.BLOCK_FRAMES, frontend.N_MELS)
    with torch.no_grad():
        torch.onnx.export(
            wrapper, (example,), str(path), dynamo=False, opset_version=17,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
        expected = wrapper(example).numpy()
    model = onnx.load(str(path))
    _set_metadata(model, MODEL_ID_FP32)
    onnx.save(model, str(path))

    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {INPUT_NAME: example.numpy()})[0]
    err = float(np.max(np.abs(got - expected)))
    print(f"fp32 export {path}: max |onnx - torch| = {err:.2e}")
    if err > 1e-3:
        raise SystemExit("ONNX export does not match torch")


def _set_metadata(model, model_id: str) -> None:
    entries = {
        "model_id": model_id,
        "source": "aisfx 0.1.2 (Alison B. Ma, Alexander Lerch; ISMIR 2022), EmbeddingNet of X-Sequential-CE",
        "license": "weights CC BY 4.0, code MIT",
        "input": "log_mel (batch, 100, 96) float32: aisfx-normalised log10(1e4*mel+1)/9.4578",
        "output": "embedding (batch, 512) float32, not normalised",
    }
    del model.metadata_props[:]
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def _load_audio(path: pathlib.Path) -> np.ndarray:
    import soundfile as sf
    import soxr

    audio, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sample_rate != frontend.SAMPLE_RATE:
        audio = soxr.resample(audio, sample_rate, frontend.SAMPLE_RATE)
    return audio.astype(np.float32)


def _generated_audio(rng: np.random.Generator) -> list[np.ndarray]:
    """Synthetic one-shots and textures: noise bursts, decaying tones, clicks, sweeps."""
    sr = frontend.SAMPLE_RATE
    t = np.arange(int(1.5 * sr)) / sr
    clips = []
    for _ in range(6):
        decay = np.exp(-t * rng.uniform(2, 30))
        clips.append(rng.standard_normal(t.size) * decay * rng.uniform(0.05, 1.0))
        freq = rng.uniform(40, 4000)
        clips.append(np.sin(2 * np.pi * freq * t) * decay * rng.uniform(0.05, 1.0))
    clicks = np.zeros(3 * sr)
    clicks[rng.integers(0, clicks.size, 12)] = 0.8
    clips.append(clicks)
    sweep_t = np.arange(3 * sr) / sr
    clips.append(0.3 * np.sin(2 * np.pi * (50 * sweep_t + 2000 * sweep_t ** 2)))
    return [c.astype(np.float32) for c in clips]


def calibration_blocks(seed: int = 0) -> np.ndarray:
    """Encoder inputs from the calibration audio, prepared by the runtime recipe."""
    rng = np.random.default_rng(seed)
    clips = []
    files = sorted(CALIBRATION_DIR.glob("*.ogg"))
    if not files:
        raise SystemExit(f"no calibration sounds in {CALIBRATION_DIR}: apt-get install frozen-bubble-data")
    for path in files:
        clips.append(_load_audio(path))
    clips += _generated_audio(rng)
    blocks = []
    for audio in clips:
        clip = [b.log_mel for b in preprocess.clip_blocks(audio)]
        if len(clip) > MAX_BLOCKS_PER_FILE:
            pick = rng.choice(len(clip), MAX_BLOCKS_PER_FILE, replace=False)
            clip = [clip[i] for i in sorted(pick)]
        blocks += clip
    print(f"calibration: {len(files)} files from {CALIBRATION_DIR} + {len(clips) - len(files)} generated clips"
          f" -> {len(blocks)} blocks")
    return np.stack(blocks).astype(np.float32)


def quantise(fp32_path: pathlib.Path, int8_path: pathlib.Path, blocks: np.ndarray, percentile: float) -> None:
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter([{INPUT_NAME: blocks[i:i + 1]} for i in range(blocks.shape[0])])

        def get_next(self):
            return next(self._items, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = pathlib.Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(
            str(prepared), str(int8_path), Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": percentile},
        )
    model = onnx.load(str(int8_path))
    _set_metadata(model, MODEL_ID_INT8)
    onnx.save(model, str(int8_path))
    print(f"int8 model {int8_path}: {int8_path.stat().st_size / 1e6:.1f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, default=REPO_ROOT / "models")
    parser.add_argument("--fp32-out", type=pathlib.Path, default=pathlib.Path("/tmp/aisfx_fp32.onnx"))
    parser.add_argument("--percentile", type=float, default=99.999)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    export_fp32(args.fp32_out)
    quantise(args.fp32_out, args.out / "aisfx_int8.onnx", calibration_blocks(), args.percentile)


if __name__ == "__main__":
    main()
