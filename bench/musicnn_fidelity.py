"""How faithfully the app's genre/mood path reproduces musicnn's own: for Debian files of
at least 3 s, musicnn's pipeline (librosa load and mel, the TensorFlow MSD_musicnn graph)
against the app's (app.decode at the encoder's rate, soxr to 16 kHz,
models/music_frontend.py, models/musicnn_msd_int8.onnx), on the same first patches (up to
MAX_PATCHES consecutive 3 s patches, mean probabilities). Reports the correlation of all
probabilities, top-1 agreement and top-3 overlap; writes bench/results/musicnn_fidelity.json.
Runs in the export venv (it needs tensorflow and musicnn):

    make export-musicnn        # once, builds .venv-musicnn
    .venv-musicnn/bin/python bench/musicnn_fidelity.py [--limit 150]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from app.decode import DecodeError, iter_mono, probe  # noqa: E402
from models import music_frontend  # noqa: E402
from models.encoder import MODEL_SAMPLE_RATE  # noqa: E402
from models.export_musicnn import frozen_graph  # noqa: E402
from models.genre_mood import GenreMoodTagger  # noqa: E402

RESULTS = HERE / "bench" / "results" / "musicnn_fidelity.json"
# train-split packages only (none of the reserved evaluation packages)
FOLDERS = (pathlib.Path("/usr/share/sonic-pi/samples"), pathlib.Path("/usr/share/lmms/samples"),
           pathlib.Path("/usr/share/hydrogen/data/drumkits"))
AUDIO = (".wav", ".flac", ".ogg", ".aif", ".aiff")
MAX_PATCHES = 3
MIN_SECONDS = 3.0


def files(limit: int) -> list[pathlib.Path]:
    """Files of at least MIN_SECONDS, longest first (loops and music before hits)."""
    found = []
    for folder in FOLDERS:
        for path in sorted(folder.rglob("*")) if folder.exists() else ():
            if path.suffix.lower() not in AUDIO:
                continue
            try:
                info = probe(str(path))
            except DecodeError:
                continue
            if info.duration >= MIN_SECONDS:
                found.append((info.duration, path))
    found.sort(key=lambda dp: (-dp[0], str(dp[1])))
    return [p for _, p in found[:limit]]


def app_patches(path: pathlib.Path) -> np.ndarray:
    audio = np.concatenate(list(iter_mono(str(path), MODEL_SAMPLE_RATE)))
    import soxr

    audio = soxr.resample(audio, MODEL_SAMPLE_RATE, music_frontend.SAMPLE_RATE).astype(np.float32)
    frames = music_frontend.log_mel(audio)
    n = min(MAX_PATCHES, len(frames) // music_frontend.PATCH_FRAMES)
    return np.stack([frames[i * 187:(i + 1) * 187] for i in range(n)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=150)
    args = parser.parse_args()
    from musicnn.extractor import batch_data

    _, labels, run_tf = frozen_graph()
    tagger = GenreMoodTagger()
    assert list(tagger.labels) == labels
    reference, ours, names = [], [], []
    started = time.perf_counter()
    for path in files(args.limit):
        try:
            theirs, _ = batch_data(str(path), music_frontend.PATCH_FRAMES, music_frontend.PATCH_FRAMES)
            mine = app_patches(path)
        except Exception as exc:  # noqa: BLE001 — a file either side cannot read is left out
            print(f"skipped {path}: {type(exc).__name__}: {exc}")
            continue
        n = min(len(mine), len(theirs), MAX_PATCHES)
        if n == 0:
            continue
        reference.append(run_tf(theirs[:n].astype(np.float32)).mean(axis=0))
        ours.append(tagger.label_probabilities(mine[:n]).mean(axis=0))
        names.append(str(path))
    reference, ours = np.array(reference), np.array(ours)
    top1 = float(np.mean(reference.argmax(1) == ours.argmax(1)))
    top3 = float(np.mean([len(set(np.argsort(-r)[:3]) & set(np.argsort(-o)[:3])) / 3
                          for r, o in zip(reference, ours)]))
    corr = float(np.corrcoef(reference.ravel(), ours.ravel())[0, 1])
    result = {
        "files": len(names), "max_patches": MAX_PATCHES, "min_seconds": MIN_SECONDS,
        "correlation": round(corr, 4), "top1_agreement": round(top1, 4),
        "top3_overlap": round(top3, 4),
        "max_abs_difference": round(float(np.abs(reference - ours).max()), 4),
        "mean_abs_difference": round(float(np.abs(reference - ours).mean()), 5),
        "model": tagger.model_id, "folders": [str(f) for f in FOLDERS],
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'files':>6} {'corr':>7} {'top-1':>6} {'top-3':>6} {'max |dp|':>9}")
    print(f"{len(names):>6} {corr:>7.4f} {top1:>6.3f} {top3:>6.3f} {result['max_abs_difference']:>9.4f}")


if __name__ == "__main__":
    main()
