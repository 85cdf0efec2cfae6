"""The ``samplescout`` command.

``samplescout`` alone opens the desktop app; subcommands work in a terminal:
``index``, ``search``, ``library``, ``devices``, ``doctor``. Every subcommand accepts
``--library-dir DIR`` (before or after its name). Errors print one line and
exit non-zero. Runs on the main thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--library-dir", metavar="DIR", default=argparse.SUPPRESS,
        help="where the catalog and index live (default: $SAMPLESCOUT_LIBRARY_DIR, "
             "else the user data dir)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="samplescout", parents=[common],
        description="Finds the samples in your library that sound like what you play.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", parents=[common], help="scan sample folders into the library")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="folders to scan (default: the library's folders)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--remove", action="store_true",
                   help="forget the given folders instead of scanning them")

    p = sub.add_parser("search", parents=[common], help="find the samples closest to audio files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    p.add_argument("--json", action="store_true", help="one JSON object per query")

    p = sub.add_parser("library", parents=[common], help="library statistics and skipped files")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="list every skipped file")

    p = sub.add_parser("devices", parents=[common], help="audio devices per host API and MIDI ports")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("doctor", parents=[common],
                       help="what is installed, which audio and MIDI APIs work, where data lives")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    library_dir = getattr(args, "library_dir", None)
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        if args.command is None:
            return _run_gui(library_dir)
        handler = {"index": cmd_index, "search": cmd_search, "library": cmd_library,
                   "devices": cmd_devices, "doctor": cmd_doctor}[args.command]
        return handler(args, library_dir, out, err)
    except KeyboardInterrupt:
        err.print("samplescout: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 — the one place that turns errors into a line
        known = _user_error_types()
        if isinstance(exc, known):
            err.print(f"samplescout: error: {exc}", markup=False)
            return EXIT_ERROR
        raise


def _user_error_types() -> tuple[type[BaseException], ...]:
    from app.catalog import CatalogError
    from app.decode import DecodeError
    from app.library import LibraryError
    from models.encoder import EncoderError
    return (CliError, CatalogError, DecodeError, LibraryError, EncoderError, OSError)


def _run_gui(library_dir: str | None) -> int:
    try:
        from ui.main_window import run  # the desktop app, when installed
    except ImportError:
        print("samplescout: the desktop window is not available in this build; "
              "use a subcommand (see `samplescout --help`).", file=sys.stderr)
        build_parser().print_help()
        return EXIT_USAGE
    return run(library_dir)


# -- index -----------------------------------------------------------------

def cmd_index(args, library_dir, out: Console, err: Console) -> int:
    from app.library import Library
    from app.scanner import Scanner

    with Library(library_dir) as library:
        if args.remove:
            if not args.paths:
                raise CliError("--remove needs the folders to forget")
            for path in args.paths:
                root = os.path.abspath(os.path.expanduser(path))
                rows = library.catalog.files_under(root)
                library.index.remove_files(row.id for row in rows.values())
                removed = library.catalog.remove_root(root)
                out.print(f"Forgot {root} ({removed} files).")
            library.save_index()
            return EXIT_OK
        roots = args.paths or library.catalog.roots()
        if not roots:
            raise CliError("no folders given and the library has none yet: "
                           "samplescout index FOLDER")
        missing = [p for p in args.paths if not os.path.exists(p)]
        if missing and len(missing) == len(args.paths):
            raise CliError(f"folder not found: {missing[0]}")
        progress = Progress(
            TextColumn("[bold]Scanning"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>6.1f} files/s"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=True,
            disable=not err.is_terminal)
        task = progress.add_task("scan", total=None, rate=0.0)

        def on_progress(p):
            rate = p.done / p.elapsed_s if p.elapsed_s > 0 else 0.0
            progress.update(task, completed=p.done, total=p.total, rate=rate)

        scanner = Scanner(library, workers=args.workers, progress=on_progress)
        with progress:
            try:
                report = scanner.scan(roots)
            except KeyboardInterrupt:
                err.print("Scan interrupted: finished files are saved; "
                          "run the same command again to resume.")
                return EXIT_INTERRUPTED
        _print_scan_report(report, library.catalog.stats(), out)
        return EXIT_OK


def _print_scan_report(report, stats: dict, out: Console) -> None:
    table = Table(title="Scan summary", show_header=False, box=None, pad_edge=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    rows = [
        ("folders", ", ".join(report.roots) or "-"),
        ("audio files found", report.seen),
        ("unchanged (skipped)", report.unchanged),
        ("analysed and indexed", report.indexed),
        ("moved or renamed (relinked)", report.relinked),
        ("duplicates (analysis reused)", report.duplicates),
        ("removed (gone from disk)", report.removed),
        ("skipped with a reason", sum(report.skipped.values())),
        ("time", f"{report.elapsed_s:.1f} s"),
        ("speed", f"{report.files_per_s:.1f} files/s, {report.mb_per_s:.1f} MB/s"),
        ("library", f"{stats['indexed']} indexed ({stats['one_shots']} one-shots, "
                    f"{stats['loops']} loops), {stats['skipped']} skipped"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    out.print(table)
    for code, count in sorted(report.skipped.items()):
        out.print(f"  skipped {count:>4} × {code}")
    for path, code, message in report.skipped_files[:20]:
        out.print(f"  {path}: {message}", markup=False)
    if len(report.skipped_files) > 20:
        out.print(f"  … {len(report.skipped_files) - 20} more: `samplescout library --all`")
    for problem in report.problems:
        out.print(f"  warning: {problem}", markup=False)
    if report.interrupted:
        out.print("Scan stopped early: run it again to resume.")


# -- search ----------------------------------------------------------------

def cmd_search(args, library_dir, out: Console, err: Console) -> int:
    from app.decode import DecodeError
    from app.library import Library, LibraryError

    if args.k < 1:
        raise CliError("-k must be at least 1")
    status = EXIT_OK
    with Library(library_dir) as library:
        for path in args.files:
            try:
                results = library.search_file(path, k=args.k)
            except (DecodeError, LibraryError, OSError) as exc:
                err.print(f"samplescout: error: {path}: {exc}", markup=False)
                status = EXIT_ERROR
                if isinstance(exc, LibraryError) and "empty" in str(exc):
                    return status
                continue
            if args.json:
                print(json.dumps({"query": os.path.abspath(path),
                                  "results": [r.as_dict() for r in results]}), flush=True)
                continue
            table = Table(title=f"Closest to {path}", title_justify="left")
            table.add_column("#", justify="right")
            table.add_column("score", justify="right")
            table.add_column("kind")
            table.add_column("length", justify="right")
            table.add_column("sample")
            for r in results:
                name = r.file.path if r.exists else f"{r.file.path} (missing)"
                table.add_row(str(r.rank), f"{r.score:.3f}", r.file.kind or "",
                              f"{r.file.duration or 0:.2f} s", name)
            out.print(table)
    return status


# -- library ---------------------------------------------------------------

def cmd_library(args, library_dir, out: Console, err: Console) -> int:
    from app.catalog import Catalog
    from app.paths import CATALOG_FILENAME, library_dir as resolve

    directory = resolve(library_dir)
    with Catalog(directory / CATALOG_FILENAME) as catalog:
        stats = catalog.stats()
        skipped = catalog.skipped(None if args.all else 50)
        if args.json:
            stats["skipped_files"] = [
                {"path": r.path, "reason": r.error_code, "message": r.error} for r in skipped]
            stats["library_dir"] = str(directory)
            print(json.dumps(stats))
            return EXIT_OK
        out.print(f"Library: {directory}", markup=False)
        out.print(f"Folders: {', '.join(stats['roots']) or '(none)'}", markup=False)
        out.print(f"Files: {stats['indexed']} indexed ({stats['one_shots']} one-shots, "
                  f"{stats['loops']} loops, {stats['total_duration_s'] / 60:.1f} min of audio), "
                  f"{stats['skipped']} skipped")
        for model, count in stats["vectors_by_model"].items():
            out.print(f"Vectors: {count} from model {model}", markup=False)
        for code, count in sorted(stats["skipped_by_reason"].items()):
            out.print(f"  skipped {count:>4} × {code}")
        for row in skipped:
            out.print(f"  {row.path}: {row.error}", markup=False)
        if not args.all and stats["skipped"] > len(skipped):
            out.print(f"  … {stats['skipped'] - len(skipped)} more (--all)")
    return EXIT_OK


# -- devices ---------------------------------------------------------------

def cmd_devices(args, library_dir, out: Console, err: Console) -> int:
    from dataclasses import asdict

    from app.stderr_guard import quiet_native_stderr
    from engine.devices import describe, list_devices

    with quiet_native_stderr():
        report = list_devices()
    if args.json:
        print(json.dumps({"audio": [asdict(d) for d in report.audio], "midi": report.midi,
                          "errors": report.errors}))
    else:
        for line in describe(report):
            out.print(line, markup=False)
    return EXIT_OK if report.audio else EXIT_ERROR


# -- doctor ----------------------------------------------------------------

def cmd_doctor(args, library_dir, out: Console, err: Console) -> int:
    from app.doctor import run_checks

    checks = run_checks(library_dir)
    if args.json:
        print(json.dumps([c.as_dict() for c in checks]))
        return EXIT_OK
    table = Table(show_header=True, box=None)
    table.add_column("check")
    table.add_column("")
    table.add_column("details")
    for check in checks:
        mark = "[green]ok[/]" if check.ok else "[red]no[/]"
        table.add_row(check.name, mark, check.detail.replace("[", "\\["))
    out.print(table)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
