"""Tempo, key and root-note detectors (models/tempo.py, key.py, pitch.py) on labelled audio.

Labelled set: ``bench/understanding_set.py`` (FluidR3 GM renders through fluidsynth,
labels known by construction; cached under ``bench/cache/understanding/``). Every
second item is resampled to 22.05 kHz (soxr) before analysis, as the scan passes
audio at 22.05 or 44.1 kHz. Tempo items are analysed twice: with a neutral name and
with their own file name (half carry ``<bpm>bpm``).

Real loops (Debian ``sonic-pi-samples`` ``loop_*``, ``lmms-common`` ``beats`` and
``bassloops``) have no published tempi. A loop is labelled only when its length makes a
whole number of 4/4 bars (1-16) at a near-integer tempo (within 0.15 BPM) in 60-200
BPM; that label is known up to an octave, so the row reports octave-insensitive
agreement (Acc2) and the commit rate. None of these packages is reserved for
independent evaluation; nothing here reads a reserved package.

Real one-shots: the Sonic Pi samples whose names end in their note (``bass_*_c``,
``bass_dnb_f``, ``glitch_bass_g``, ``guit_e_*``) give a pitch-class check (no octave).

Scores: tempo Acc1 (within 4 %) where the detector commits, and its commit rate; key
MIREX weighted score (1 same key, 0.5 fifth, 0.3 relative, 0.2 parallel) where it
commits, and abstention on drum grooves; root note exact where it commits, tuning
error (cents) on exact notes against the nominal pitch and as the error of the measured
bend (bent minus unbent twin, at one rate), abstention on drum hits; CPU milliseconds per
item (process time, mean over the set's items).

Usage: ``.venv/bin/python bench/understanding.py [--out bench/results/understanding.json]``
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np
import soundfile as sf
import soxr

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import understanding_set  # noqa: E402
from models.key import estimate_key  # noqa: E402
from models.pitch import estimate_root  # noqa: E402
from models.tempo import estimate_tempo  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "understanding.json"
REAL_LOOPS = (sorted(pathlib.Path("/usr/share/sonic-pi/samples").glob("loop_*.flac"))
              + sorted(pathlib.Path("/usr/share/lmms/samples/beats").glob("*.ogg"))
              + sorted(pathlib.Path("/usr/share/lmms/samples/bassloops").glob("*.ogg")))


def mirex(tonic: int, mode: str, got_tonic: int, got_mode: str) -> float:
    if (tonic, mode) == (got_tonic, got_mode):
        return 1.0
    step = (got_tonic - tonic) % 12
    if mode == got_mode and step in (5, 7):
        return 0.5
    if (mode, got_mode, step) in (("major", "minor", 9), ("minor", "major", 3)):
        return 0.3
    return 0.2 if step == 0 else 0.0


def _timed(function, *args, **kwargs):
    """Result and CPU milliseconds (process time: wall time on two shared cores is noise)."""
    start = time.process_time()
    result = function(*args, **kwargs)
    return result, 1000.0 * (time.process_time() - start)


def _rate(items, pairs: bool = False):
    """Every second item (pair of items) at 22.05 kHz."""
    for k, (item, audio) in enumerate(items):
        if (k // 2 if pairs else k) % 2:
            yield item, soxr.resample(audio, understanding_set.SAMPLE_RATE, 22050), 22050
        else:
            yield item, audio, understanding_set.SAMPLE_RATE


def tempo_rows(items) -> list[dict]:
    rows = []
    for item, audio, rate in _rate(items):
        plain, ms = _timed(estimate_tempo, audio, rate)
        named, _ = _timed(estimate_tempo, audio, rate, name=item["name"] + ".wav")
        rows.append({"name": item["name"], "kind": item["kind"], "bpm": item["bpm"], "rate": rate,
                     "seconds": round(audio.size / rate, 3), "got": plain.bpm,
                     "confidence": round(plain.confidence, 3), "got_named": named.bpm, "ms": round(ms, 1)})
    return rows


def tempo_summary(rows: list[dict], key: str) -> dict:
    loops = [r for r in rows if r["bpm"] is not None]
    committed = [r for r in loops if r[key] is not None]
    correct = [r for r in committed if abs(r[key] - r["bpm"]) <= 0.04 * r["bpm"]]
    shots = [r for r in rows if r["bpm"] is None]
    return {"loops": len(loops), "commit_rate": round(len(committed) / len(loops), 3),
            "acc1_committed": round(len(correct) / max(1, len(committed)), 3),
            "acc1_all_loops": round(len(correct) / len(loops), 3),
            "one_shots_abstained": f"{sum(r[key] is None for r in shots)}/{len(shots)}"}


def real_loop_rows() -> list[dict]:
    rows = []
    for path in REAL_LOOPS:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        seconds = audio.size / rate
        labels = [240.0 * bars / seconds for bars in (1, 2, 4, 8, 16)]
        labels = [t for t in labels if 60.0 <= t <= 200.0 and abs(t - round(t)) <= 0.15]
        if not labels:
            continue
        result, ms = _timed(estimate_tempo, audio, rate, name=path.name)
        got = result.bpm
        agree = got is not None and any(abs(got * f - labels[0]) <= 0.04 * labels[0] for f in (0.5, 1, 2))
        rows.append({"file": f"{path.parent.name}/{path.name}", "length_tempo": round(labels[0], 2),
                     "got": got, "confidence": round(result.confidence, 3), "acc2": agree,
                     "ms": round(ms, 1)})
    return rows


# Sonic Pi one-shots whose name ends in their note (pitch class only: the names carry no octave)
REAL_NOTES = {"bass_dnb_f": 5, "bass_drop_c": 0, "bass_hard_c": 0, "bass_hit_c": 0, "bass_thick_c": 0,
              "bass_trance_c": 0, "bass_voxy_c": 0, "bass_voxy_hit_c": 0, "bass_woodsy_c": 0,
              "glitch_bass_g": 7, "guit_e_fifths": 4, "guit_e_slide": 4}


def real_note_rows() -> list[dict]:
    rows = []
    for name, pitch_class in REAL_NOTES.items():
        path = pathlib.Path("/usr/share/sonic-pi/samples") / f"{name}.flac"
        if not path.is_file():
            continue
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        result, ms = _timed(estimate_root, audio.mean(axis=1), rate)
        rows.append({"file": path.name, "pitch_class": pitch_class, "got": result.note_name(),
                     "right": None if result.midi is None else result.midi % 12 == pitch_class,
                     "cents": result.cents, "ms": round(ms, 2)})
    return rows


def key_rows(items) -> list[dict]:
    rows = []
    for item, audio, rate in _rate(items):
        result, ms = _timed(estimate_key, audio, rate)
        rows.append({"name": item["name"], "style": item["style"], "tonic": item["tonic"],
                     "mode": item["mode"], "rate": rate,
                     "got": result.label(), "confidence": round(result.confidence, 3),
                     "score": (None if result.tonic is None or item["tonic"] is None
                               else mirex(item["tonic"], item["mode"], result.tonic, result.mode)),
                     "abstained": result.tonic is None, "ms": round(ms, 1)})
    return rows


def root_rows(items) -> list[dict]:
    rows = []
    for item, audio, rate in _rate(items, pairs=True):
        result, ms = _timed(estimate_root, audio, rate)
        rows.append({"name": item["name"], "midi": item["midi"], "cents": item["cents"],
                     "twin": item["twin"], "rate": rate,
                     "got": result.midi, "got_cents": result.cents,
                     "confidence": round(result.confidence, 3), "ms": round(ms, 2)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    items = understanding_set.load()
    by_set = {name: [(i, a) for i, a in items if i["set"] == name] for name in ("tempo", "key", "root")}

    tempo = tempo_rows(by_set["tempo"])
    real = real_loop_rows()
    keys = key_rows(by_set["key"])
    roots = root_rows(by_set["root"])
    real_notes = real_note_rows()

    tonal = [r for r in keys if r["tonic"] is not None]
    scored = [r["score"] for r in tonal if r["score"] is not None]
    notes = [r for r in roots if r["midi"] is not None]
    committed_notes = [r for r in notes if r["got"] is not None]
    exact = [r for r in committed_notes if r["got"] == r["midi"]]
    errors = np.array([abs(r["got_cents"] - r["cents"]) for r in exact])
    # bend error: (bent - unbent) measured against the bend, SoundFont tuning cancelled
    bend_errors = []
    for bent, twin in zip(roots, roots[1:]):
        if (twin["twin"] and not bent["twin"] and bent["midi"] is not None and bent["got"] is not None
                and twin["got"] is not None):
            measured = 100 * (bent["got"] - twin["got"]) + bent["got_cents"] - twin["got_cents"]
            bend_errors.append(abs(measured - bent["cents"]))
    summary = {
        "tempo_neutral_names": tempo_summary(tempo, "got"),
        "tempo_with_names": tempo_summary(tempo, "got_named"),
        "tempo_real_loops": {"loops": len(real),
                             "commit_rate": round(float(np.mean([r["got"] is not None for r in real])), 3),
                             "acc2_committed": round(float(np.mean([r["acc2"] for r in real
                                                                    if r["got"] is not None])), 3)},
        "key": {"tonal_loops": len(tonal), "commit_rate": round(len(scored) / len(tonal), 3),
                "mirex_committed": round(float(np.mean(scored)), 3) if scored else None,
                "mirex_all_abstain_as_0": round(float(np.sum(scored) / len(tonal)), 3),
                "drum_grooves_abstained": f"{sum(r['abstained'] for r in keys if r['tonic'] is None)}"
                                          f"/{sum(r['tonic'] is None for r in keys)}"},
        "key_by_style": {style: round(float(np.mean([r["score"] for r in tonal if r["style"] == style
                                                     and r["score"] is not None] or [np.nan])), 3)
                         for style in sorted({r["style"] for r in tonal})},
        "key_commit_by_style": {style: round(float(np.mean([r["score"] is not None for r in tonal
                                                            if r["style"] == style])), 3)
                                for style in sorted({r["style"] for r in tonal})},
        "root": {"notes": len(notes), "commit_rate": round(len(committed_notes) / len(notes), 3),
                 "exact_committed": round(len(exact) / max(1, len(committed_notes)), 3),
                 "cents_error_median": round(float(np.median(errors)), 1),
                 "cents_error_p95": round(float(np.percentile(errors, 95)), 1),
                 "bend_error_median": round(float(np.median(bend_errors)), 1),
                 "bend_error_p95": round(float(np.percentile(bend_errors, 95)), 1),
                 "bend_pairs": len(bend_errors),
                 "drum_hits_abstained": f"{sum(r['got'] is None for r in roots if r['midi'] is None)}"
                                        f"/{sum(r['midi'] is None for r in roots)}"},
        "root_real_named": {"files": len(real_notes),
                            "commit_rate": round(float(np.mean([r["right"] is not None
                                                                for r in real_notes])), 3),
                            "pitch_class_right_committed": round(float(np.mean(
                                [r["right"] for r in real_notes if r["right"] is not None])), 3)},
        "cpu_ms_per_item": {"tempo": round(float(np.mean([r["ms"] for r in tempo + real])), 1),
                        "key": round(float(np.mean([r["ms"] for r in keys])), 1),
                        "root": round(float(np.mean([r["ms"] for r in roots])), 2)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "tempo": tempo, "tempo_real_loops": real,
                                    "key": keys, "root": roots, "root_real_named": real_notes},
                                   indent=1) + "\n")
    print(f"{'measure':42s} value")
    for group, values in summary.items():
        for name, value in values.items():
            print(f"{group + '.' + name:42s} {value}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
