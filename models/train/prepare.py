"""Build the training pool: clean log-mel blocks, damaged views and the teacher's vectors.

For every training item (one block position in one clip of :mod:`models.train.sources`)
the pool holds the clean block, ``--views`` damaged views (:mod:`models.train.augment`)
made into blocks by the runtime recipe (``models.preprocess.clip_blocks``, leading trim
on), and the aisfx teacher's vector of the clean block (``models/aisfx_int8.onnx``).
Writes ``pool.npz`` into the work directory; single process.

Run: ``python -m models.train.prepare --work-dir DIR [--views 8]``.
"""

from __future__ import annotations

import argparse
import json
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


def item_starts(n_samples: int) -> list[int]:
    if n_samples <= augment.BLOCK_SAMPLES + augment.SAMPLE_RATE // 2:
        return [0]
    last = n_samples - int(1.5 * augment.SAMPLE_RATE)
    return list(range(0, last, ITEM_HOP))[:MAX_ITEMS_PER_CLIP]


def first_block(audio: np.ndarray) -> np.ndarray | None:
    if audio.size == 0:
        return None
    blocks = clip_blocks(np.asarray(audio, dtype=np.float32))
    return blocks[0].log_mel if blocks else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=pathlib.Path, required=True)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--rirs", type=int, default=300)
    parser.add_argument("--teacher", type=pathlib.Path, default=REPO / "models" / "aisfx_int8.onnx")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    out = args.work_dir / "pool.npz"
    if out.exists():
        print(f"{out} exists; delete it to rebuild")
        return 0
    t0 = time.time()
    rng = np.random.default_rng(SEED)
    print("reading training audio from Debian packages", flush=True)
    clips = sources.all_clips(SEED)
    rirs = augment.make_rir_bank(np.random.default_rng([SEED, 7]), args.rirs)
    bed_pool = [c.audio for c in clips if c.audio.size > 3 * augment.SAMPLE_RATE]
    beds = [bed_pool[i] for i in rng.choice(len(bed_pool), size=min(120, len(bed_pool)), replace=False)]
    print(f"{len(clips)} clips, {len(rirs)} rooms, {len(beds)} noise beds ({time.time() - t0:.0f} s)", flush=True)

    # level twins share one group: never negatives of each other, never split by the hold-out
    group = sources.level_twin_groups(clips)
    print(f"{len(clips) - len(set(group.tolist()))} clips are level twins of another", flush=True)
    held_out_clip = rng.random(len(clips)) < HOLDOUT_SHARE
    clean, views, clip_index, names = [], [], [], []
    for ci, clip in enumerate(clips):
        for start in item_starts(clip.audio.size):
            block = first_block(augment.clean_segment(clip.audio, start))
            if block is None:
                continue
            item_views = []
            for v in range(args.views):
                strength = 0.5 if v == 0 else 1.0
                damaged = augment.damage_view(clip.audio, start, rng, rirs, beds, strength)
                view = first_block(damaged)
                item_views.append(view if view is not None else block)
            clean.append(block.astype(np.float16))
            views.append(np.stack(item_views).astype(np.float16))
            clip_index.append(group[ci])
            names.append(f"{clip.package}:{clip.name}@{start}")
        if (ci + 1) % 200 == 0:
            print(f"  {ci + 1}/{len(clips)} clips, {len(clean)} items, {time.time() - t0:.0f} s", flush=True)

    from models.encoder import Encoder
    teacher = Encoder(args.teacher, threads=1)
    clean_arr = np.stack(clean)
    teacher_vecs = np.concatenate([teacher.embed_blocks(clean_arr[i:i + 64].astype(np.float32))
                                   for i in range(0, len(clean_arr), 64)])
    clip_index = np.array(clip_index, dtype=np.int32)
    np.savez(args.work_dir / "pool.tmp.npz", clean=clean_arr, views=np.stack(views),
             teacher=teacher_vecs.astype(np.float32), clip=clip_index,
             held_out=held_out_clip[clip_index], names=np.array(names))
    (args.work_dir / "pool.tmp.npz").replace(out)
    packages = {}
    for ci in clip_index:
        packages[clips[ci].package] = packages.get(clips[ci].package, 0) + 1
    summary = {"clips": len(clips), "items": len(clean), "views_per_item": args.views,
               "items_per_package": packages, "teacher": teacher.model_id,
               "held_out_items": int(held_out_clip[clip_index].sum()),
               "seconds": round(time.time() - t0, 1)}
    (args.work_dir / "pool.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
