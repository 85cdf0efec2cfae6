"""Train the re-ranker: a pair model that re-orders the encoder's top candidates.

The encoder compares one pooled vector per block, and pooling over time throws away how
a sound unfolds: the twelve takes of one strummed chord pool to nearly the same vector
once a room has smeared them. The re-ranker looks at the query block and one candidate's
clean block together, position by position (time x mel band), so it can check whether the
query is that candidate seen through damage.

Model: the student's frozen conv trunk maps both blocks to ``(128, 12, 12)`` feature maps;
a small head reads ``[q, c, q*c, |q-c|]`` per position (1x1 then two 3x3 convolutions),
pools max and mean over positions and adds a learned multiple of the encoder's own cosine.
Loss: listwise softmax over ``--candidates`` candidates per query (its own clean block and
the encoder's nearest other clips for that damaged view), so it learns exactly the
decisions retrieval leaves to it.

Data: the pool of ``prepare.py`` and the stage-2 student (``--student``). The trunk's maps
are computed once (about 4 GB in float16 for 6,000 items x 17 blocks).

Run: ``python -m models.train.rerank --work-dir DIR [--student DIR/student_hn.pt]``.
Writes ``DIR/reranker.pt``; ``export.py --reranker`` makes the ONNX file.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from models.train.batches import nearest_in_other_groups  # noqa: E402
from models.train.student import Student, load_student  # noqa: E402

SEED = 11


class PairHead(nn.Module):
    """Score of (query map, candidate map, encoder cosine): higher = more likely the same file."""

    def __init__(self, channels: int = 128, width: int = 64):
        super().__init__()
        self.mix = nn.Sequential(
            nn.Conv2d(4 * channels, width, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.out = nn.Linear(2 * width, 1)
        self.cosine_weight = nn.Parameter(torch.tensor(10.0))

    def forward(self, q: torch.Tensor, c: torch.Tensor, cosine: torch.Tensor) -> torch.Tensor:
        """``q``, ``c``: ``(n, ch, t, f)`` maps of n pairs; ``cosine``: ``(n,)``. Returns ``(n,)``."""
        x = self.mix(torch.cat([q, c, q * c, (q - c).abs()], dim=1))
        pooled = torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3))], dim=1)
        return self.out(pooled).squeeze(1) + self.cosine_weight * cosine


class PairModel(nn.Module):
    """What training changes: ``tail`` (a trainable copy of the trunk's last layers, or
    nothing) turns the frozen trunk's cached maps into pair maps; ``head`` scores pairs."""

    def __init__(self, tail: nn.Module, head: PairHead):
        super().__init__()
        self.tail, self.head = tail, head

    def train(self, mode: bool = True):
        super().train(mode)
        self.tail.eval()          # batch norm keeps the encoder's statistics
        return self


class Reranker(nn.Module):
    """Trunk + pair models, as exported: row ``i`` of ``query`` is scored against row ``i`` of
    ``candidate`` (both ``(k, 100, 96)`` log-mel blocks); returns ``(k,)`` scores, the mean
    over the pair models (separately trained heads agree more than any one of them is
    right). The encoder's own layers give the cosine; layers from ``split`` on are each
    pair model's."""

    def __init__(self, student: Student, pairs: list[PairModel], split: int):
        super().__init__()
        self.student, self.pairs, self.split = student, nn.ModuleList(pairs), split

    def forward(self, query: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        k = query.shape[0]
        shared = self.student.features[:self.split](torch.cat([query, candidate]).unsqueeze(1))
        maps = self.student.features[self.split:](shared)
        pooled = torch.cat([maps.amax(dim=2), maps.mean(dim=2)], dim=1).flatten(1)
        z = F.normalize(self.student.head(pooled), dim=1)
        cosine = (z[:k] * z[k:]).sum(dim=1)
        scores = []
        for pair in self.pairs:
            pair_maps = pair.tail(shared)
            scores.append(pair.head(pair_maps[:k], pair_maps[k:], cosine))
        return torch.stack(scores).mean(dim=0)


def trunk_maps(student: Student, blocks: np.ndarray, split: int,
               batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Maps after the trunk's first ``split`` layers (float16) and unit embeddings (float32)
    of float16 log-mel ``blocks``."""
    maps, vecs = [], []
    with torch.no_grad():
        for i in range(0, len(blocks), batch):
            x = torch.from_numpy(blocks[i:i + batch].astype(np.float32))
            shared = student.features[:split](x.unsqueeze(1))
            m = student.features[split:](shared)
            pooled = torch.cat([m.amax(dim=2), m.mean(dim=2)], dim=1).flatten(1)
            maps.append(shared.half().numpy())
            vecs.append(F.normalize(student.head(pooled), dim=1).numpy())
    return np.concatenate(maps), np.concatenate(vecs)


def candidate_lists(items: np.ndarray, view_vecs: np.ndarray, clean_vecs: np.ndarray, clip: np.ndarray,
                    allowed: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """For every damaged view of ``items``, the ``k - 1`` nearest clean items of other clips
    among ``allowed``, best first (by the encoder's cosine). Returns ``(len(items), views, k-1)``."""
    n_views = view_vecs.shape[1]
    flat = view_vecs[items].reshape(-1, view_vecs.shape[-1])
    nearest = nearest_in_other_groups(flat, np.repeat(clip[items], n_views), clean_vecs[allowed], clip[allowed],
                                      k - 1, chunk)
    return allowed[nearest].reshape(len(items), n_views, k - 1)


def listwise_batch(pair: PairModel, view_maps, clean_maps, view_vecs, clean_vecs, items, views, negs):
    """Scores ``(b, k)`` of each query against [own clean block] + its negatives."""
    b, k = len(items), negs.shape[1] + 1
    cand = np.concatenate([items[:, None], negs], axis=1)
    q = pair.tail(torch.from_numpy(view_maps[items, views].astype(np.float32)))
    c = pair.tail(torch.from_numpy(clean_maps[cand.ravel()].astype(np.float32)))
    qv = torch.from_numpy(view_vecs[items, views])
    cv = torch.from_numpy(clean_vecs[cand.ravel()]).view(b, k, -1)
    cosine = (cv * qv[:, None, :]).sum(dim=2).ravel()
    qe = q[:, None].expand(b, k, *q.shape[1:]).reshape(b * k, *q.shape[1:])
    return pair.head(qe, c, cosine).view(b, k), cosine.view(b, k)


def evaluate(pair, view_maps, clean_maps, view_vecs, clean_vecs, items, negs, views) -> dict:
    """Held-out queries: how often the own block is first, by the encoder's cosine alone and
    after re-ranking (both among the same candidates)."""
    pair.eval()
    enc_hits, rr_hits = [], []
    with torch.no_grad():
        for v in views:
            for lo in range(0, len(items), 64):
                it = items[lo:lo + 64]
                scores, cosine = listwise_batch(pair, view_maps, clean_maps, view_vecs, clean_vecs, it,
                                                np.full(len(it), v), negs[it, v])
                enc_hits.append((cosine.argmax(dim=1) == 0).numpy())
                rr_hits.append((scores.argmax(dim=1) == 0).numpy())
    pair.train()
    return {"encoder_r1": round(float(np.concatenate(enc_hits).mean()), 4),
            "reranked_r1": round(float(np.concatenate(rr_hits).mean()), 4)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=pathlib.Path, required=True)
    parser.add_argument("--student", type=pathlib.Path, default=None,
                        help="stage-2 weights (default: WORK_DIR/student_hn.pt)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--out", default="reranker.pt", help="file name in WORK_DIR")
    parser.add_argument("--tune-from", type=int, default=None,
                        help="index in the trunk's layers from which a copy is trained with the head "
                             "(default: none, the trunk stays frozen)")
    parser.add_argument("--eval-views", type=int, default=16, help="held-out views scored per evaluation")
    parser.add_argument("--seed", type=int, default=SEED, help="initialisation and batch stream")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    student_path = args.student or args.work_dir / "student_hn.pt"
    student = load_student(student_path)
    split = len(student.features) if args.tune_from is None else args.tune_from

    with np.load(args.work_dir / "pool.npz") as data:
        pool = {k: data[k] for k in ("clip", "held_out")}
    cache = args.work_dir / ("rerank_maps" if split == len(student.features) else f"rerank_maps_{split}")
    names = ("clean_maps", "clean_vecs", "view_maps", "view_vecs")
    if not all((cache / f"{n}.npy").exists() for n in names):
        # the trunk is frozen: its maps are computed once and reused by every run
        with np.load(args.work_dir / "pool.npz") as data:
            clean, views = data["clean"], data["views"]
        n_items, n_views = views.shape[:2]
        clean_maps, clean_vecs = trunk_maps(student, clean, split)
        view_maps, view_vecs = trunk_maps(student, views.reshape(-1, *views.shape[2:]), split)
        del views
        arrays = dict(clean_maps=clean_maps, clean_vecs=clean_vecs,
                      view_maps=view_maps.reshape(n_items, n_views, *view_maps.shape[1:]),
                      view_vecs=view_vecs.reshape(n_items, n_views, -1))
        cache.mkdir(exist_ok=True)
        for n in names:
            np.save(cache / f"{n}.tmp.npy", arrays[n])
            (cache / f"{n}.tmp.npy").replace(cache / f"{n}.npy")
        (cache / "student.txt").write_text(str(student_path))
        del arrays
    elif (cache / "student.txt").read_text() != str(student_path):
        raise SystemExit(f"{cache} holds the maps of another student; delete it")
    clean_maps, clean_vecs, view_maps, view_vecs = (np.load(cache / f"{n}.npy") for n in names)
    n_items, n_views = view_vecs.shape[:2]
    print(f"maps of {n_items} items x {n_views + 1} blocks ready in {time.time() - started:.0f} s", flush=True)

    train_idx = np.flatnonzero(~pool["held_out"])
    held_idx = np.flatnonzero(pool["held_out"])
    # training queries compete with training items only; held-out ones with everything
    negs = np.zeros((n_items, n_views, args.candidates - 1), dtype=np.int64)
    negs[train_idx] = candidate_lists(train_idx, view_vecs, clean_vecs, pool["clip"], train_idx,
                                      args.candidates)
    negs[held_idx] = candidate_lists(held_idx, view_vecs, clean_vecs, pool["clip"], np.arange(n_items),
                                     args.candidates)
    print(f"candidates mined in {time.time() - started:.0f} s", flush=True)

    tail = copy.deepcopy(student.features[split:])
    for param in tail.parameters():
        param.requires_grad_(True)
    pair = PairModel(tail, PairHead(student.widths[-1], args.width))
    optimiser = torch.optim.AdamW([p for p in pair.parameters() if p.requires_grad], lr=args.lr,
                                  weight_decay=1e-4)
    eval_views = np.linspace(0, n_views, args.eval_views, endpoint=False).astype(int)
    log = []
    entry = {"step": 0, "held_out": evaluate(pair, view_maps, clean_maps, view_vecs, clean_vecs, held_idx, negs,
                                             eval_views)}
    print(json.dumps(entry), flush=True)
    log.append(entry)
    for step in range(1, args.steps + 1):
        rng = np.random.default_rng([args.seed, step])
        items = rng.choice(train_idx, size=args.batch, replace=False)
        views = rng.integers(0, n_views, size=args.batch)
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group in optimiser.param_groups:
            group["lr"] = lr
        scores, _ = listwise_batch(pair, view_maps, clean_maps, view_vecs, clean_vecs, items, views,
                                   negs[items, views])
        loss = F.cross_entropy(scores, torch.zeros(args.batch, dtype=torch.long))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 50 == 0:
            entry = {"step": step, "loss": round(loss.item(), 4), "elapsed_s": round(time.time() - started)}
            if step % args.eval_every == 0 or step == args.steps:
                entry["held_out"] = evaluate(pair, view_maps, clean_maps, view_vecs, clean_vecs, held_idx, negs,
                                             eval_views)
            log.append(entry)
            print(json.dumps(entry), flush=True)
    out = args.work_dir / args.out
    torch.save({"pair": pair.state_dict(), "width": args.width, "split": split, "student": str(student_path),
                "candidates": args.candidates, "log": log}, out)
    print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
