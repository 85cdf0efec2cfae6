"""Train the student encoder on the pool written by ``prepare.py``; resumable.

Loss per batch of ``B`` items (clean block ``c_i``, one damaged view ``d_i``, teacher
vector ``t_i`` of the clean block; ``z`` = the student's L2-normalised embedding):

1. robust + semantic contrastive term: softmax over ``z(d_i) . z(c_j) / tau`` must match
   a target that puts ``1 - alpha`` on the item's own clean block and spreads ``alpha``
   over the other items by the teacher's similarity (``softmax(t_i . t_j / tau_t)``);
   symmetric (clean -> damaged too). Items cut from the same clip are not negatives.
2. relational distillation: on clean blocks, the student's similarity distribution
   over the other items matches the teacher's (KL divergence).
3. direct distillation: a linear projection of the student embedding (training only) has
   cosine 1 with the teacher vector, for the clean block and for the damaged view.

Checkpoints every ``--checkpoint-every`` steps to ``work/checkpoint.pt``; batches are
drawn from a generator seeded by (seed, step), so a resumed run sees the same data.
Run: ``python -m models.train.train --work-dir DIR [--steps 1700]``. One torch thread.
"""

from __future__ import annotations

import argparse
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

from models.train.batches import draw_batch, training_neighbours  # noqa: E402
from models.train.student import DEFAULT_WIDTHS, Student  # noqa: E402

SEED = 7


class Trainer(nn.Module):
    def __init__(self, dim: int, teacher_dim: int, widths: tuple[int, ...] = DEFAULT_WIDTHS):
        super().__init__()
        self.student = Student(dim, widths)
        self.to_teacher = nn.Linear(dim, teacher_dim)


def soft_contrastive(z_query, z_key, targets_soft, alpha, tau, same_clip):
    logits = z_query @ z_key.T / tau
    logits = logits.masked_fill(same_clip, -1e4)
    target = (1 - alpha) * torch.eye(len(z_query)) + alpha * targets_soft
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def teacher_neighbours(t, tau_t, same_clip):
    """Row-stochastic teacher similarity over the other items (diagonal and same clip excluded)."""
    sims = t @ t.T / tau_t
    sims = sims.masked_fill(same_clip | torch.eye(len(t), dtype=torch.bool), -1e4)
    return F.softmax(sims, dim=1)


def student_vectors(model: Student, blocks: np.ndarray, batch: int = 256) -> np.ndarray:
    """The student's unit vectors of ``blocks`` (float16 log-mel), in eval mode."""
    model.eval()
    with torch.no_grad():
        out = [F.normalize(model(torch.from_numpy(blocks[i:i + batch].astype(np.float32))), dim=1).numpy()
               for i in range(0, len(blocks), batch)]
    model.train()
    return np.concatenate(out)


def spec_mask(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    x = x.clone()
    for i in range(x.shape[0]):
        if rng.random() < 0.3:
            f0, width = int(rng.integers(0, 90)), int(rng.integers(1, 9))
            x[i, :, f0:f0 + width] = 0
        if rng.random() < 0.2:
            t0, width = int(rng.integers(0, 95)), int(rng.integers(1, 12))
            x[i, t0:t0 + width, :] = 0
    return x


def evaluate(model: Student, pool, idx: np.ndarray) -> dict:
    """Held-out items: R@1 of each damaged view among all held-out clean blocks; teacher agreement."""
    zc = torch.from_numpy(student_vectors(model, pool["clean"][idx]))
    hits = []
    for v in range(pool["views"].shape[1]):
        zd = torch.from_numpy(student_vectors(model, pool["views"][idx, v]))
        hits.append((zd @ zc.T).argmax(dim=1).numpy() == np.arange(len(idx)))
    t = F.normalize(torch.from_numpy(pool["teacher"][idx]), dim=1)
    ts, ss = t @ t.T, zc @ zc.T
    ts.fill_diagonal_(-2)
    ss.fill_diagonal_(-2)
    k = 10
    tn = ts.topk(k, dim=1).indices.numpy()
    sn = ss.topk(k, dim=1).indices.numpy()
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(tn, sn)])
    return {"r1_views": [round(float(h.mean()), 3) for h in hits], "knn10_overlap": round(float(overlap), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=pathlib.Path, required=True)
    parser.add_argument("--steps", type=int, default=1700)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--tau", type=float, default=0.07)
    parser.add_argument("--tau-teacher", type=float, default=0.03)
    parser.add_argument("--alpha", type=float, default=0.3)
    parser.add_argument("--w-relational", type=float, default=0.5)
    parser.add_argument("--w-distill", type=float, default=1.0)
    parser.add_argument("--hard-fraction", type=float, default=0.0,
                        help="share of each batch drawn as groups of teacher neighbours")
    parser.add_argument("--hard-k", type=int, default=8, help="neighbours a group is drawn from")
    parser.add_argument("--hard-space", choices=("teacher", "student"), default="teacher",
                        help="whose clean vectors define the neighbours: the teacher's (fixed) or the "
                             "student's own (mined again every --remine-every steps)")
    parser.add_argument("--remine-every", type=int, default=250)
    parser.add_argument("--widths", default=",".join(map(str, DEFAULT_WIDTHS)),
                        help="channels of the five conv layers (ignored with --init: taken from it)")
    parser.add_argument("--init", type=pathlib.Path, default=None,
                        help="start from this run's final weights (student.pt of an earlier stage)")
    parser.add_argument("--name", default="",
                        help="stage name: files are checkpoint{name}.pt and student{name}.pt")
    parser.add_argument("--views-used", type=int, default=0,
                        help="train on the pool's first N damaged views only (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--eval-every", type=int, default=100)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)

    with np.load(args.work_dir / "pool.npz") as data:
        pool = {k: data[k] for k in ("clean", "views", "teacher", "clip", "held_out")}
    teacher_all = F.normalize(torch.from_numpy(pool["teacher"]), dim=1)
    train_idx = np.flatnonzero(~pool["held_out"])
    held_idx = np.flatnonzero(pool["held_out"])
    if args.views_used:
        pool["views"] = pool["views"][:, :args.views_used]
    n_views = pool["views"].shape[1]
    print(f"pool: {len(train_idx)} training items, {len(held_idx)} held out, {n_views} views", flush=True)

    knn = None
    mine_student = args.hard_fraction > 0 and args.hard_space == "student"
    if args.hard_fraction > 0 and not mine_student:
        knn = training_neighbours(teacher_all.numpy(), pool["clip"], train_idx, args.hard_k)
    widths = tuple(int(w) for w in args.widths.split(","))
    init = torch.load(args.init, weights_only=False) if args.init is not None else None
    if init is not None:
        widths = tuple(init.get("widths", DEFAULT_WIDTHS))
    model = Trainer(args.dim, pool["teacher"].shape[1], widths)
    if init is not None:
        model.load_state_dict(init["trainer"] if "trainer" in init else init["model"])
        print(f"initialised from {args.init}", flush=True)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warmup = 30

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    ckpt_path = args.work_dir / f"checkpoint{args.name}.pt"
    step = 0
    log = []
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, log = state["step"], state["log"]
        print(f"resumed at step {step}", flush=True)

    def save():
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                    "log": log, "args": vars(args) | {"work_dir": str(args.work_dir)}}, tmp)
        tmp.replace(ckpt_path)

    started = time.time()
    model.train()
    while step < args.steps:
        # stage 1 keeps its original stream; later stages get their own
        rng = np.random.default_rng([SEED, step] + ([sum(map(ord, args.name))] if args.name else []))
        if mine_student and (knn is None or step % args.remine_every == 0):
            own = student_vectors(model.student, pool["clean"])
            knn = training_neighbours(own, pool["clip"], train_idx, args.hard_k)
        idx = draw_batch(rng, train_idx, knn, args.batch, args.hard_fraction)
        # one query in nine is the clean block itself, however many views the pool holds
        use_clean = rng.random(args.batch) < 1 / 9
        view_pick = rng.integers(0, n_views, size=args.batch)
        clean = torch.from_numpy(pool["clean"][idx].astype(np.float32))
        views = np.where(use_clean[:, None, None], pool["clean"][idx], pool["views"][idx, view_pick])
        damaged = spec_mask(torch.from_numpy(views.astype(np.float32)), rng)
        clips = torch.from_numpy(pool["clip"][idx])
        same_clip = (clips[:, None] == clips[None, :]) & ~torch.eye(args.batch, dtype=torch.bool)
        t = teacher_all[idx]

        for group in optimiser.param_groups:
            group["lr"] = lr_at(step)
        s = model.student(torch.cat([clean, damaged]))
        z = F.normalize(s, dim=1)
        zc, zd = z[:args.batch], z[args.batch:]
        soft = teacher_neighbours(t, args.tau_teacher, same_clip)
        loss_con = 0.5 * (soft_contrastive(zd, zc, soft, args.alpha, args.tau, same_clip)
                          + soft_contrastive(zc, zd, soft, args.alpha, args.tau, same_clip))
        student_sims = (zc @ zc.T / args.tau).masked_fill(
            same_clip | torch.eye(args.batch, dtype=torch.bool), -1e4)
        loss_rel = F.kl_div(F.log_softmax(student_sims, dim=1), soft, reduction="batchmean")
        proj = F.normalize(model.to_teacher(s), dim=1)
        loss_dist = (1 - (proj * torch.cat([t, t])).sum(dim=1)).mean()
        loss = loss_con + args.w_relational * loss_rel + args.w_distill * loss_dist
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        if step % 10 == 0:
            entry = {"step": step, "loss": round(loss.item(), 4), "con": round(loss_con.item(), 4),
                     "rel": round(loss_rel.item(), 4), "dist": round(loss_dist.item(), 4),
                     "lr": round(lr_at(step), 6), "elapsed_s": round(time.time() - started, 1)}
            if step % args.eval_every == 0 or step == args.steps:
                entry["held_out"] = evaluate(model.student, pool, held_idx)
            log.append(entry)
            print(json.dumps(entry), flush=True)
        if step % args.checkpoint_every == 0 or step == args.steps:
            save()
    out = args.work_dir / f"student{args.name}.pt"
    torch.save({"student": model.student.state_dict(), "trainer": model.state_dict(), "dim": args.dim,
                "widths": model.student.widths, "log": log}, out)
    print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
