"""Encoder speed and int8/fp32 agreement, for every shipped model.

Measures ONNX inference per 100-frame block for each shipped int8 model (scout and
aisfx) on one and two threads, the numpy front-end per block, and — where the float
model a shipped file was quantised from is on disk — the float model's cost and the
cosine between its embeddings and the int8 ones on blocks of ~50 Debian sample files.
Float models are not shipped: ``/tmp/aisfx_fp32.onnx`` comes from
``models/export_aisfx.py``, ``$TRAIN_WORK/scout_fp32.onnx`` from ``make train-model``.

    .venv/bin/python bench/encoder_speed.py [--fp32 scout=PATH] [--fp32 aisfx=PATH] [--files 50]

Writes bench/results/encoder_speed.json and prints a table; compare models by their
ratio within one run (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time

import numpy as np
import soundfile as sf
import soxr

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import encoder as enc  # noqa: E402
from models import frontend, preprocess  # noqa: E402

SAMPLE_DIRS = [pathlib.Path("/usr/share/hydrogen"), pathlib.Path("/usr/share/sonic-pi/samples"),
               pathlib.Path("/usr/share/lmms/samples")]
AUDIO_EXT = {".wav", ".flac", ".ogg", ".aiff", ".aif"}


def sample_files(n: int) -> list[pathlib.Path]:
    files = sorted(p for d in SAMPLE_DIRS if d.exists() for p in d.rglob("*") if p.suffix.lower() in AUDIO_EXT)
    if not files:
        raise SystemExit("no Debian sample files found")
    step = max(1, len(files) // n)
    return files[::step][:n]


def load(path: pathlib.Path) -> np.ndarray | None:
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:
        return None
    audio = audio.mean(axis=1)
    if sr != enc.MODEL_SAMPLE_RATE:
        audio = soxr.resample(audio, sr, enc.MODEL_SAMPLE_RATE).astype(np.float32)
    return audio


def _stats(times: list[float]) -> dict:
    # the build machine is shared: the minimum shows the uncontended cost
    ms = np.asarray(times) * 1e3
    return {"min": float(ms.min()), "median": float(np.median(ms))}


def time_per_block(encoder: enc.Encoder, blocks: np.ndarray, repeats: int) -> dict:
    encoder.embed_blocks(blocks[:1])
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        encoder.embed_blocks(blocks[i % len(blocks)][None])
        times.append(time.perf_counter() - t0)
    return _stats(times)


def frontend_times(audio: np.ndarray, repeats: int = 20) -> list[float]:
    n = (preprocess.BLOCK_FRAMES - 1) * frontend.HOP_LENGTH   # 100 frames of audio
    clip = audio[:n] if audio.size >= n else np.resize(audio, n)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frontend.log_compress(frontend.power_mel(clip))
        times.append(time.perf_counter() - t0)
    return times


def measure_model(name: str, fp32_path: pathlib.Path | None, blocks: np.ndarray, repeats: int) -> dict:
    int8 = enc.Encoder(ROOT / "models" / enc.SHIPPED_MODELS[name], threads=1)
    result = {"model_id": int8.model_id,
              "int8_ms_per_block_1_thread": time_per_block(int8, blocks, repeats),
              "int8_ms_per_block_2_threads": time_per_block(
                  enc.Encoder(ROOT / "models" / enc.SHIPPED_MODELS[name], threads=2), blocks, repeats),
              "fp32": None, "agreement": None}
    if fp32_path is None or not fp32_path.is_file():
        return result
    fp32 = enc.Encoder(fp32_path, threads=1)
    result["fp32"] = {"model_id": fp32.model_id, "path": str(fp32_path),
                      "ms_per_block_1_thread": time_per_block(fp32, blocks, repeats)}
    v8, v32 = int8.embed_blocks(blocks), fp32.embed_blocks(blocks)
    cos = np.sum(v8 * v32, axis=1)
    # does int8 keep each block's nearest fp32 neighbour among the other blocks?
    sims32, sims8 = v32 @ v32.T, v8 @ v8.T
    np.fill_diagonal(sims32, -2)
    np.fill_diagonal(sims8, -2)
    same_nn = float(np.mean(np.argmax(sims32, axis=1) == np.argmax(sims8, axis=1)))
    result["agreement"] = {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                           "cosine_p01": float(np.percentile(cos, 1)), "same_nearest_block": same_nn}
    return result


def parse_fp32(pairs: list[str]) -> dict[str, pathlib.Path]:
    paths = {"aisfx": pathlib.Path("/tmp/aisfx_fp32.onnx")}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or name not in enc.SHIPPED_MODELS:
            raise SystemExit(f"--fp32 wants NAME=PATH with NAME one of {sorted(enc.SHIPPED_MODELS)}: {pair!r}")
        paths[name] = pathlib.Path(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fp32", action="append", default=[], metavar="NAME=PATH",
                        help="float model a shipped int8 model was made from")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "results" / "encoder_speed.json")
    args = parser.parse_args()
    fp32_paths = parse_fp32(args.fp32)

    files = sample_files(args.files)
    blocks, clips = [], []
    for path in files:
        audio = load(path)
        if audio is None:
            continue
        clips.append(audio)
        blocks.extend(block.log_mel for block in preprocess.clip_blocks(audio))
    blocks = np.stack(blocks)

    results = {
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                    "onnxruntime": __import__("onnxruntime").__version__},
        "files": len(clips), "blocks": int(blocks.shape[0]),
        "models": {name: measure_model(name, fp32_paths.get(name), blocks, args.repeats)
                   for name in enc.SHIPPED_MODELS},
        "frontend_ms_per_block": _stats([t for c in clips[:10] for t in frontend_times(c)]),
    }
    results["load_average_at_end"] = __import__("os").getloadavg()
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")

    print(f"{results['files']} files, {results['blocks']} blocks")
    print(f"{'what':<44}{'min':>10}{'median':>10}")

    def row(label, stats):
        print(f"{label:<44}{stats['min']:>10.2f}{stats['median']:>10.2f}")

    for name, m in results["models"].items():
        row(f"{m['model_id']} int8 ms/block (1 thread)", m["int8_ms_per_block_1_thread"])
        row(f"{m['model_id']} int8 ms/block (2 threads)", m["int8_ms_per_block_2_threads"])
        if m["fp32"]:
            row(f"{m['fp32']['model_id']} fp32 ms/block (1 thread)", m["fp32"]["ms_per_block_1_thread"])
            a = m["agreement"]
            print(f"{name + ' cosine int8 vs fp32 (mean / min)':<44}{a['cosine_mean']:>10.4f}{a['cosine_min']:>10.4f}")
            print(f"{name + ' same nearest block':<44}{a['same_nearest_block']:>10.3f}")
        else:
            print(f"{name}: no float model given (--fp32 {name}=PATH): agreement not measured")
    row("front-end ms/block (100 frames)", results["frontend_ms_per_block"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
