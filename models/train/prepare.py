"""Build the training pool: clean log-mel blocks, damaged views and the teacher's vectors.

For every training item (one block position in one clip of :mod:`models.train.sources`)
the pool holds the clean block, ``--views`` damaged views (:mod:`models.train.augment`)
made into blocks by the runtime recipe (``models.preprocess.clip_blocks``, leading trim
on), and the aisfx teacher's vector of the clean block (``models/aisfx_int8.onnx``).
Writes ``pool.npz`` into the work directory.

Views are made by ``--workers`` processes. Each item draws its views from its own
generator, seeded by (seed, clip, start), so the pool is the same for any number of
workers.

Run: ``python -m models.train.prepare --work-dir DIR [--views 16] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from models.preprocess import clip_blocks  # noqa: E402
from models.train import augment, sources  # noqa: E402

SEED = 20261124
MAX_ITEMS_PER_CLIP = 4
ITEM_HOP = int(2.32 * augment.SAMPLE_RATE)
HOLDOUT_SHARE = 0.04
RIRS = 300                 # simulated rooms the views draw from
CHUNK_ITEMS = 40


def item_starts(n_samples: int) -> list[int]:
    if n_samples <= augment.BLOCK_SAMPLES + augment.SAMPLE_RATE // 2:
        return [0]
    last = n_samples - int(1.5 * augment.SAMPLE_RATE)
    return list(range(0, last, ITEM_HOP))[:MAX_ITEMS_PER_CLIP]


def first_block(audio: np.ndarray) -> np.ndarray | None:
    block = first_block_of(audio)
    return block.log_mel if block is not None else None


def first_block_of(audio: np.ndarray):
    """The first ``LogMelBlock`` the runtime recipe makes of ``audio`` (None if silent)."""
    if audio.size == 0:
        return None
    blocks = clip_blocks(np.asarray(audio, dtype=np.float32))
    return blocks[0] if blocks else None


# what the view workers read; set in the parent before the workers fork
_shared: dict = {}


def damage_bank(clips: list) -> tuple[list[np.ndarray], list[np.ndarray], np.random.Generator]:
    """The rooms and noise beds every view draws from, and the generator that goes on to
    pick the held-out clips. The order of these draws is part of the pool's recipe: the
    calibration (``calibrate_scores.py``) calls this to make the same views again."""
    rng = np.random.default_rng(SEED)
    rirs = augment.make_rir_bank(np.random.default_rng([SEED, 7]), RIRS)
    bed_pool = [c.audio for c in clips if c.audio.size > 3 * augment.SAMPLE_RATE]
    beds = [bed_pool[i] for i in rng.choice(len(bed_pool), size=min(120, len(bed_pool)), replace=False)]
    return rirs, beds, rng


def item_views(audio: np.ndarray, clip: int, start: int, rirs: list[np.ndarray], beds: list[np.ndarray],
               n_views: int):
    """The damaged waveforms of the item at ``start`` in clip number ``clip``, in the pool's
    order (each item has its own generator, so any subset can be made again)."""
    rng = np.random.default_rng([SEED, clip, start])
    for v in range(n_views):
        yield augment.damage_view(audio, start, rng, rirs, beds, 0.5 if v == 0 else 1.0)


def _make_items(chunk: list[tuple[int, int]]) -> list[tuple[int, int, np.ndarray, np.ndarray] | None]:
    """Clean block and damaged views of each (clip, start) in ``chunk``; None for silence."""
    clips, rirs, beds, n_views = _shared["clips"], _shared["rirs"], _shared["beds"], _shared["views"]
    out = []
    for ci, start in chunk:
        audio = clips[ci].audio
        block = first_block(augment.clean_segment(audio, start))
        if block is None:
            out.append(None)
            continue
        made = []
        for damaged in item_views(audio, ci, start, rirs, beds, n_views):
            view = first_block(damaged)
            made.append(view if view is not None else block)
        out.append((ci, start, block.astype(np.float16), np.stack(made).astype(np.float16)))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=pathlib.Path, required=True)
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--teacher", type=pathlib.Path, default=REPO / "models" / "aisfx_int8.onnx")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    out = args.work_dir / "pool.npz"
    if out.exists():
        print(f"{out} exists; delete it to rebuild")
        return 0
    t0 = time.time()
    print("reading training audio from Debian packages", flush=True)
    clips = sources.all_clips(SEED)
    rirs, beds, rng = damage_bank(clips)
    print(f"{len(clips)} clips, {len(rirs)} rooms, {len(beds)} noise beds ({time.time() - t0:.0f} s)", flush=True)

    # level twins share one group: never negatives of each other, never split by the hold-out
    group = sources.level_twin_groups(clips)
    print(f"{len(clips) - len(set(group.tolist()))} clips are level twins of another "
          f"({time.time() - t0:.0f} s)", flush=True)
    held_out_group = rng.random(len(clips)) < HOLDOUT_SHARE

    wanted = [(ci, start) for ci, clip in enumerate(clips) for start in item_starts(clip.audio.size)]
    chunks = [wanted[i:i + CHUNK_ITEMS] for i in range(0, len(wanted), CHUNK_ITEMS)]
    _shared.update(clips=clips, rirs=rirs, beds=beds, views=args.views)
    clean, views, clip_index, names = [], [], [], []
    with multiprocessing.get_context("fork").Pool(max(1, args.workers)) as workers:
        for k, done in enumerate(workers.imap(_make_items, chunks)):
            for item in done:
                if item is None:
                    continue
                ci, start, block, item_views = item
                clean.append(block)
                views.append(item_views)
                clip_index.append(group[ci])
                names.append(f"{clips[ci].package}:{clips[ci].name}@{start}")
            if (k + 1) % 25 == 0 or k + 1 == len(chunks):
                print(f"  {min(len(wanted), (k + 1) * CHUNK_ITEMS)}/{len(wanted)} items, "
                      f"{time.time() - t0:.0f} s", flush=True)
    _shared.clear()

    from models.encoder import Encoder
    teacher = Encoder(args.teacher, threads=1)
    clean_arr = np.stack(clean)
    teacher_vecs = np.concatenate([teacher.embed_blocks(clean_arr[i:i + 64].astype(np.float32))
                                   for i in range(0, len(clean_arr), 64)])
    clip_index = np.array(clip_index, dtype=np.int32)
    np.savez(args.work_dir / "pool.tmp.npz", clean=clean_arr, views=np.stack(views),
             teacher=teacher_vecs.astype(np.float32), clip=clip_index,
             held_out=held_out_group[clip_index], names=np.array(names))
    (args.work_dir / "pool.tmp.npz").replace(out)
    packages = {}
    for ci in clip_index:
        packages[clips[ci].package] = packages.get(clips[ci].package, 0) + 1
    summary = {"clips": len(clips), "items": len(clean), "views_per_item": args.views,
               "workers": args.workers, "items_per_package": packages, "teacher": teacher.model_id,
               "held_out_items": int(held_out_group[clip_index].sum()),
               "seconds": round(time.time() - t0, 1)}
    (args.work_dir / "pool.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
