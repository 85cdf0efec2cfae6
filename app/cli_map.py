"""`samplescout map`: lay the library out as a similarity map (or place new samples in it)
and print every point. Thread: the CLI's main thread."""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

STAGES = {"vectors": "reading vectors", "neighbours": "finding neighbours",
          "layout": "laying out", "placing": "placing new samples", "storing": "storing"}


def add_map_parser(sub, common) -> None:
    p = sub.add_parser("map", parents=[common],
                       help="the similarity map: every sample as a 2-D point near those it "
                            "sounds like (new samples are placed without moving the others)")
    p.add_argument("--rebuild", action="store_true",
                   help="lay the whole map out again instead of placing new samples")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line and point: path, x, y, tag")


def cmd_map(args, library_dir, out: Console, err: Console) -> int:
    from app.similarity_map import MapTasks

    tasks = MapTasks(library_dir)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as bar:
            task = bar.add_task("reading vectors", total=None)

            def progress(p) -> None:
                bar.update(task, description=STAGES.get(p.stage, p.stage), completed=p.done,
                           total=p.total or None)

            report = tasks.update(rebuild=args.rebuild, progress=progress)
        points = tasks.points()
    finally:
        tasks.close()
    if args.json:
        for path, (x, y), tag in zip(points.paths, points.points.tolist(), points.tags):
            print(json.dumps({"path": path, "x": round(x, 4), "y": round(y, 4), "tag": tag}))
        return 0
    done = "laid out again" if report.rebuilt else "updated"
    err.print(f"map {done} ({report.reason}): {report.files} samples, {report.placed} placed "
              f"now, {report.seconds:.1f} s; layout {report.layout_id}", markup=False)
    tags: dict[str, int] = {}
    for tag in points.tags:
        tags[tag or "(untagged)"] = tags.get(tag or "(untagged)", 0) + 1
    for tag, count in sorted(tags.items(), key=lambda item: -item[1])[:12]:
        out.print(f"{count:7d}  {tag}", markup=False)
    out.print("`samplescout map --json` prints every point; the window's Map tab shows it.")
    return 0
