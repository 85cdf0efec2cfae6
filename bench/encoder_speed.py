"""Encoder speed and int8/fp32 agreement.

Measures, on one thread: ONNX inference per 100-frame block for the fp32 model
(``/tmp/aisfx_fp32.onnx``, made by ``models/export_aisfx.py``; skipped if absent) and
the shipped int8 model, the numpy front-end per block, and the cosine between fp32
and int8 embeddings of the same blocks from ~50 Debian sample files.

    .venv/bin/python bench/encoder_speed.py [--fp32 PATH] [--files 50]

Writes bench/results/encoder_speed.json and prints a table.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fp32", type=pathlib.Path, default=pathlib.Path("/tmp/aisfx_fp32.onnx"))
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()

    files = sample_files(args.files)
    blocks, file_of_block, clips = [], [], []
    for path in files:
        audio = load(path)
        if audio is None:
            continue
        clips.append(audio)
        for block in preprocess.clip_blocks(audio):
            blocks.append(block.log_mel)
            file_of_block.append(str(path))
    blocks = np.stack(blocks)

    int8 = enc.Encoder(threads=1)
    results = {
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                    "onnxruntime": __import__("onnxruntime").__version__},
        "files": len(clips), "blocks": int(blocks.shape[0]),
        "int8": {"model_id": int8.model_id, "ms_per_block_1_thread": time_per_block(int8, blocks, args.repeats)},
        "frontend_ms_per_block": _stats([t for c in clips[:10] for t in frontend_times(c)]),
    }
    int8_2 = enc.Encoder(threads=2)
    results["int8"]["ms_per_block_2_threads"] = time_per_block(int8_2, blocks, args.repeats)
    v8 = int8.embed_blocks(blocks)
    if args.fp32.is_file():
        fp32 = enc.Encoder(args.fp32, threads=1)
        results["fp32"] = {"model_id": fp32.model_id,
                           "ms_per_block_1_thread": time_per_block(fp32, blocks, args.repeats)}
        v32 = fp32.embed_blocks(blocks)
        cos = np.sum(v8 * v32, axis=1)
        # does int8 keep each block's nearest fp32 neighbour among the other blocks?
        sims32, sims8 = v32 @ v32.T, v8 @ v8.T
        np.fill_diagonal(sims32, -2)
        np.fill_diagonal(sims8, -2)
        same_nn = float(np.mean(np.argmax(sims32, axis=1) == np.argmax(sims8, axis=1)))
        results["agreement"] = {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                                "cosine_p01": float(np.percentile(cos, 1)), "same_nearest_block": same_nn}
    else:
        results["fp32"] = None
        results["agreement"] = None

    out = ROOT / "bench" / "results" / "encoder_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")

    print(f"{results['files']} files, {results['blocks']} blocks")
    print(f"{'what':<34}{'min':>10}{'median':>10}")

    def row(name, stats):
        print(f"{name:<34}{stats['min']:>10.2f}{stats['median']:>10.2f}")

    row("int8 ms/block (1 thread)", results["int8"]["ms_per_block_1_thread"])
    row("int8 ms/block (2 threads)", results["int8"]["ms_per_block_2_threads"])
    if results["fp32"]:
        row("fp32 ms/block (1 thread)", results["fp32"]["ms_per_block_1_thread"])
        a = results["agreement"]
        print(f"{'cosine int8 vs fp32 (mean / min)':<34}{a['cosine_mean']:>10.4f}{a['cosine_min']:>10.4f}")
        print(f"{'same nearest block':<34}{a['same_nearest_block']:>10.3f}")
    row("front-end ms/block (100 frames)", results["frontend_ms_per_block"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
