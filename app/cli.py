"""The ``samplescout`` command.

``samplescout`` alone opens the desktop app; subcommands work in a terminal:
``index``, ``search``, ``library``, ``listen``, ``plugins``, ``devices``,
``doctor``, ``duplicates``, ``detect``, ``find``, ``collection``, ``favourite``. Every subcommand accepts ``--library-dir DIR`` and ``--vst3-path DIR``
(before or after its name). Errors print one line and exit non-zero. Runs on
the main thread.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import re
import signal
import sys
from typing import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from app.cli_map import add_map_parser, cmd_map
from app.paths import display_path
from engine.errors import SampleScoutError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(SampleScoutError):
    """A user-facing failure: printed as one line, exit status 1."""


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {9: "\\t", 10: "\\n", 13: "\\r"}


def printable(text) -> str:
    """``text`` (a path, a name) with control characters shown as escapes, so a file name
    cannot move the cursor, recolour or retitle the terminal. Any thread."""
    return display_path(str(text)).translate(_CONTROL)


def shown(text) -> str:
    """``printable(text)`` with rich markup escaped: for tables and markup strings."""
    return escape(printable(text))


GLOBAL_OPTIONS_NOTE = ("global options (--library-dir, --model, --vst3-path) may come before or "
                       "after the command: see `samplescout --help`")


class Parser(argparse.ArgumentParser):
    """An argument parser whose "invalid choice" error names the closest choice
    (`serch` → `search`)."""

    def error(self, message: str):
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if found:
            choices = re.findall(r"'([^']*)'", found.group(2))
            close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean '{close[0]}'?"
        super().error(message)


def _common_options(hidden: bool = False) -> argparse.ArgumentParser:
    """The global options; ``hidden``: accepted but left out of the help (subcommands)."""
    def helped(text: str) -> str:
        return argparse.SUPPRESS if hidden else text

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--library-dir", metavar="DIR", default=argparse.SUPPRESS,
        help=helped("where the catalog and index live (default: $SAMPLESCOUT_LIBRARY_DIR, "
                   "else the user data dir)"))
    common.add_argument(
        "--model", metavar="NAME|FILE", default=argparse.SUPPRESS,
        help=helped("encoder: 'scout' (default), 'aisfx', or an ONNX file (also $SAMPLESCOUT_MODEL); "
                   "changing it re-embeds the library on the next scan"))
    common.add_argument(
        "--catalog", metavar="ADDRESS", default=argparse.SUPPRESS,
        help="a shared catalogue, postgresql://user@host/db (password in ~/.pgpass), used by "
             "index, search and library and remembered by index; 'local' for this machine's "
             "own (the default; also $SAMPLESCOUT_CATALOG)")
    common.add_argument(
        "--vst3-path", metavar="DIR", action="append", default=argparse.SUPPRESS,
        help=helped("extra folder of VST3 plugins, besides the standard ones (repeatable; "
                   "also $SAMPLESCOUT_VST3_PATH)"))
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(hidden=True)   # subcommands accept them; `--help` lists them once
    parser = Parser(
        prog="samplescout", parents=[_common_options()],
        description="Finds the samples in your library that sound like what you play.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("index", parents=[common], help="scan sample folders into the library")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="folders to scan (default: the library's folders)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--share", metavar="NAME", default=None,
                   help="with a shared catalogue: the folders given are the share NAME, as every "
                        "machine that mounts it calls it (one NAS at different paths is one library)")
    p.add_argument("--remove", action="store_true",
                   help="forget the given folders instead of scanning them")
    p.add_argument("--relink", action="store_true",
                   help="OLD NEW: the library folder OLD is now at NEW (moved, renamed, its drive "
                        "mounted elsewhere); its files keep their analysis, tags and collections")

    p = sub.add_parser("watch", parents=[common],
                       help="keep the library up to date with its folders (Ctrl-C stops)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")

    p = sub.add_parser("search", parents=[common], help="find the samples closest to audio files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    p.add_argument("--depth", type=int, default=None, metavar="N",
                   help="how many of the index's best files the re-ranker reads side by side "
                        "with the query (default 48, which finds sounds buried under other "
                        "music more often than 10, at about three times the time)")
    p.add_argument("--closest-only", action="store_true",
                   help="list every answer by closeness alone (by default the answers after "
                        "the first are the closest sounds of the query's kind: snares for a "
                        "snare)")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    _filter_options(p)

    p = sub.add_parser("info", parents=[common],
                       help="what the library knows about files: kind, tags, tempo, key, root")
    p.add_argument("files", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per file")

    p = sub.add_parser("tag", parents=[common], help="add or remove tags of a file (yours win)")
    p.add_argument("file", metavar="PATH")
    p.add_argument("--add", action="append", default=[], metavar="TAG")
    p.add_argument("--remove", action="append", default=[], metavar="TAG")

    p = sub.add_parser("library", parents=[common], help="library statistics, files and skipped files")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="list every skipped file")
    p.add_argument("--files", action="store_true", help="list the indexed files")
    p.add_argument("--kind", choices=["one-shot", "loop"], default=None,
                   help="with --files: only one-shots or only loops")
    p.add_argument("--folder", metavar="DIR", default=None,
                   help="with --files: only files inside this folder")
    p.add_argument("--name", metavar="TEXT", default=None,
                   help="with --files: only files whose name contains TEXT (any case)")

    p = sub.add_parser("listen", parents=[common],
                       help="listen to an audio input and suggest matching samples live")
    p.add_argument("--device", default=None, help="input device name substring or index")
    p.add_argument("--hostapi", default=None, help="host API name substring (JACK, ALSA, ...)")
    p.add_argument("--profile", default="drums", help="match profile name or JSON file (default drums)")
    p.add_argument("--mode", choices=["one-shot", "rolling"], default=None,
                   help="override the profile's mode")
    p.add_argument("--channels", type=int, default=1, help="input channels (default 1)")
    p.add_argument("--sample-rate", type=int, default=48000)
    p.add_argument("--block-size", type=int, default=256)
    p.add_argument("--midi", default=None, metavar="API",
                   help="MIDI input API for pads and capture (auto, jack, alsa, ...)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="one JSON line per suggestion update")
    _filter_options(p)

    p = sub.add_parser("plugins", parents=[common],
                       help="scan VST3 folders (out of process) and list usable plugins")
    p.add_argument("--rescan", action="store_true", help="probe again, ignoring cached results")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds a plugin may take to load before it is skipped (default 30)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("devices", parents=[common], help="audio devices per host API and MIDI ports")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("doctor", parents=[common],
                       help="what is installed, which audio and MIDI APIs work, where data lives")
    p.add_argument("--json", action="store_true")

    _add_duplicates_parser(sub, common)
    _add_detect_parser(sub, common)
    from app import cli_browse
    cli_browse.add_parsers(sub, common)      # find, collection, favourite
    _add_preview_match_parser(sub, common)
    add_map_parser(sub, common)
    for command in sub.choices.values():
        command.epilog = command.epilog or GLOBAL_OPTIONS_NOTE
    return parser


def _filter_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (every one given must hold)")
    g.add_argument("--tag", action="append", default=[], metavar="TAG",
                   help="only files with this tag; repeat: kick, snare is either, kick, house "
                        "both (one of each facet: type, genre, mood); synonyms work (BD, hh)")
    g.add_argument("--kind", choices=["one-shot", "loop"], default=None)
    g.add_argument("--bpm", default=None, metavar="LO-HI", help="tempo range, e.g. 118-122")
    g.add_argument("--key", default=None, help="key, e.g. Am, F#, Bb major")
    g.add_argument("--folder", default=None, metavar="DIR", help="only files inside DIR")


def search_filter(args):
    """The ``SearchFilter`` of the filter options, or None when none is given."""
    from app.query import SearchFilter

    tempo = None
    if args.bpm:
        low, sep, high = args.bpm.partition("-")
        try:
            tempo = (float(low), float(high if sep else low))
        except ValueError:
            raise CliError(f"--bpm wants LO-HI, e.g. 118-122, not {args.bpm!r}") from None
    if not (args.tag or args.kind or tempo or args.key or args.folder):
        return None
    return SearchFilter(kind=args.kind, folder=args.folder, tags=tuple(args.tag),
                        key=args.key, tempo=tempo)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    library_dir = getattr(args, "library_dir", None)
    if getattr(args, "model", None):
        from models.encoder import MODEL_ENV
        os.environ[MODEL_ENV] = args.model  # worker processes and the window inherit it
    # paths are shown as they are: no emoji codes (":fire:") and, below, escaped markup
    out = Console(highlight=False, soft_wrap=True, emoji=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
    try:
        if args.command is None:
            return _run_gui(library_dir)
        if args.command == "map":
            return cmd_map(args, library_dir, out, err)
        handler = {"index": cmd_index, "search": cmd_search, "library": cmd_library,
                   "listen": cmd_listen, "devices": cmd_devices, "plugins": cmd_plugins,
                   "doctor": cmd_doctor, "info": cmd_info, "tag": cmd_tag,
                   "duplicates": cmd_duplicates, "detect": cmd_detect,
                   "watch": cmd_watch, "preview-match": cmd_preview_match}.get(args.command)
        if handler is None:
            from app.cli_browse import HANDLERS
            handler = HANDLERS[args.command]
        return handler(args, library_dir, out, err)
    except KeyboardInterrupt:
        err.print("samplescout: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 — the one place that turns errors into a line
        exc = _explain(exc, library_dir)
        if isinstance(exc, _user_error_types()):
            err.print(f"samplescout: error: {printable(exc)}", markup=False)
            return EXIT_ERROR
        raise


def _explain(exc: Exception, library_dir: str | None) -> Exception:
    """A full disk and SQLite's own errors, as one line that says what to do."""
    import errno
    import sqlite3

    from app.catalog import CatalogError, explain_database_error
    from app.paths import CATALOG_FILENAME, library_dir as resolve

    directory = resolve(library_dir)
    # SQLite's own result code (the exception's cause when the catalog wrapped it) decides,
    # never the message's text.
    sqlite_exc = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
    code = getattr(sqlite_exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else None
    full = (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        primary == sqlite3.SQLITE_FULL or (primary == sqlite3.SQLITE_IOERR and _nearly_full(directory)))
    if full:
        return CliError(f"no space left on the disk ({exc}): what was finished is saved in the "
                        f"catalog; free some space and run the same command again")
    damaged = primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    if isinstance(exc, sqlite3.DatabaseError) or (isinstance(exc, CatalogError) and damaged):
        return explain_database_error(directory / CATALOG_FILENAME, sqlite_exc)
    return exc


def _nearly_full(directory) -> bool:
    try:
        info = os.statvfs(directory)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < (1 << 20)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Errors printed as one line: every error of the family, and the OS's (a missing file,
    a full disk); anything else is a bug and keeps its traceback."""
    return (SampleScoutError, OSError)


def _run_gui(library_dir: str | None) -> int:
    if (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        raise CliError("no display for the desktop window (neither DISPLAY nor WAYLAND_DISPLAY "
                       "is set); in a terminal use `samplescout listen` or `samplescout search`")
    from app.library_tasks import open_early
    open_early(library_dir)     # the index loads while the window's modules are imported
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

    address = getattr(args, "catalog", None)
    with Library(library_dir, catalog=address) as library:
        if address is not None:
            from app.library import remember_catalog_address
            remember_catalog_address(library.directory, address)
        library.check_writable()
        if args.share:
            if not args.paths:
                raise CliError("--share names the folders given: samplescout index FOLDER --share NAME")
            for path in args.paths:
                library.map_share(os.path.abspath(os.path.expanduser(path)), args.share)
        if args.relink:
            args.paths = [_relink(library, args.paths, out)]
        if args.remove:
            if not args.paths:
                raise CliError("--remove needs the folders to forget")
            known = library.catalog.roots()
            roots = [os.path.abspath(os.path.expanduser(path)) for path in args.paths]
            unknown = [root for root in roots if root not in known]
            if unknown:
                raise CliError(f"{printable(unknown[0])} is not a library folder (the library's "
                               f"folders: {printable(', '.join(known)) or 'none'})")
            with library.writer_lock():
                for root in roots:
                    removed = library.remove_folder(root)
                    out.print(f"Forgot {printable(root)} ({removed} files).", markup=False)
            return EXIT_OK
        library.catalog.check()  # never write into a damaged catalog
        roots = args.paths or library.catalog.roots()
        if not roots:
            raise CliError("no folders given and the library has none yet: "
                           "samplescout index FOLDER")
        files = [p for p in args.paths if os.path.exists(p) and not os.path.isdir(p)]
        if files:
            raise CliError(f"{printable(files[0])} is a file: index scans folders "
                           f"(`samplescout index {printable(os.path.dirname(os.path.abspath(files[0])))}`); "
                           "to find samples like it: `samplescout search FILE`")
        missing = [p for p in args.paths if not os.path.exists(p)]
        if missing and len(missing) == len(args.paths):
            raise CliError(f"folder not found: {printable(missing[0])}")
        progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>6.1f} files/s"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=True,
            disable=not err.is_terminal)
        task = progress.add_task("Scanning", total=None, rate=0.0)

        def on_progress(p):
            rate = p.done / p.elapsed_s if p.elapsed_s > 0 else 0.0
            description = "Analysing sounds" if p.phase == "analyse" else "Scanning"
            progress.update(task, completed=p.done, total=p.total, rate=rate,
                            description=description)

        scanner = Scanner(library, workers=args.workers, progress=on_progress)
        with progress, _ctrl_c_cancels(scanner):
            try:
                report = scanner.scan(roots)
                interrupted = report.interrupted
            except KeyboardInterrupt:       # a second Ctrl-C: stop without waiting
                interrupted = True
        if interrupted:
            err.print("Scan interrupted: finished files are saved; "
                      "run the same command again to resume.")
            return EXIT_INTERRUPTED
        _print_scan_report(report, library.catalog.stats(), out)
        for problem in library.problems:
            err.print(f"samplescout: warning: {display_path(problem)}", markup=False)
        return EXIT_OK


def _relink(library, paths: list[str], out: Console) -> str:
    """``index --relink OLD NEW``: move the library folder; returns NEW (scanned next, which
    brings it up to date and back online)."""
    if len(paths) != 2:
        raise CliError("--relink takes the folder's old path and its new one: "
                       "samplescout index --relink OLD NEW")
    if library.shared:
        raise CliError("a shared catalogue knows folders by share name: "
                       "samplescout index FOLDER --share NAME")
    from app.folder_identity import read_marker
    old, new = (os.path.abspath(os.path.expanduser(p)) for p in paths)
    row = library.catalog.root_row(old)
    marker = read_marker(new) if os.path.isdir(new) else None
    if row is not None and row.folder_id and marker and marker != row.folder_id:
        raise CliError(f"{printable(new)} is another library folder (its marker file says so), "
                       f"not {printable(old)}: nothing relinked")
    moved = library.relink_folder(old, new)
    out.print(f"Relinked {printable(old)} -> {printable(new)}: {moved} files keep their "
              "analysis, tags and collections.", markup=False)
    return new


# -- watch -----------------------------------------------------------------

WATCH_WORDS = {"indexed": "added", "skipped": "skipped", "duplicate": "added (a copy)",
               "relinked": "moved here", "touched": "touched", "removed": "removed"}


def cmd_watch(args, library_dir, out: Console, err: Console) -> int:
    """Watch the library's folders in the foreground; every change is one line."""
    import math
    import time

    from app.paths import library_dir as resolve
    from app.watcher import FolderWatcher

    from app.library import Library

    directory = resolve(library_dir)
    with Library(directory, catalog=getattr(args, "catalog", None)) as library:
        roots = library.catalog.roots()
    if not roots:
        raise CliError("the library has no folders yet: samplescout index FOLDER")

    def on_change(report) -> None:
        for what, path in report.changes:
            out.print(f"{WATCH_WORDS.get(what, what):<14} {printable(path)}", markup=False)
        for old, new in report.folders_relinked:
            out.print(f"relinked       {printable(old)} -> {printable(new)}", markup=False)
        for problem in report.problems:
            err.print(f"samplescout: {printable(problem)}", markup=False)

    def on_notice(text: str) -> None:
        err.print(f"samplescout: {printable(text)}", markup=False)

    watcher = FolderWatcher(directory, on_change=on_change, on_notice=on_notice,
                            workers=max(1, args.workers))
    watcher.start()
    try:
        watcher.ready.wait(30)
        how = ("watched" if watcher.mode == "watching"
               else f"rescanned every {watcher.poll_s:g} s")
        out.print(f"{len(roots)} library folders {how} (Ctrl-C stops).", markup=False)
        # a short wait in a loop, not one long wait: a Ctrl-C the kernel hands to another
        # thread (the observer's, a pool's) interrupts the main thread only when it wakes
        deadline = math.inf if args.seconds is None else time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
    out.print("Stopped watching.", markup=False)
    return EXIT_OK


@contextlib.contextmanager
def _ctrl_c_cancels(scanner):
    """While scanning: the first Ctrl-C asks the scanner to stop after the files in flight
    (a flag, so no exception can be lost on the way); a second one interrupts at once.
    Main thread only (signal handlers are installed there)."""
    def first(signum, frame):
        scanner.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # Plain write: a signal handler must not re-enter rich's console.
        sys.stderr.write(f"Stopping: finishing the {scanner.files_in_flight()} files in flight "
                         "(Ctrl-C again to stop at once)\n")
        sys.stderr.flush()

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_scan_report(report, stats: dict, out: Console) -> None:
    table = Table(title="Scan summary", show_header=False, box=None, pad_edge=False)
    table.add_column(justify="left")
    table.add_column(justify="right", overflow="fold")   # folders whole, never cut
    rows = [
        ("folders", ", ".join(map(display_path, report.roots)) or "-"),
        ("audio files found", report.seen),
        ("unchanged (skipped)", report.unchanged),
        ("analysed and indexed", report.indexed),
        ("moved or renamed (relinked)", report.relinked),
        ("duplicates (analysis reused)", report.duplicates),
        ("removed (gone from disk)", report.removed),
        ("left to another machine", report.claimed_elsewhere),
        ("tagged again (new analysis)", report.sounds_analysed),
        ("skipped with a reason", sum(report.skipped.values())),
        ("time", f"{report.elapsed_s:.1f} s"),
        ("speed", f"{report.files_per_s:.1f} files/s, {report.mb_per_s:.1f} MB/s"),
        ("library", f"{stats['indexed']} indexed ({stats['one_shots']} one-shots, "
                    f"{stats['loops']} loops), {stats['skipped']} skipped"),
    ]
    for name, value in rows:
        table.add_row(name, shown(str(value)))
    out.print(table)
    for code, count in sorted(report.skipped.items()):
        out.print(f"  skipped {count:>4} × {code}")
    for path, code, message in report.skipped_files[:20]:
        out.print(f"  {printable(path)}: {message}", markup=False)
    if len(report.skipped_files) > 20:
        out.print(f"  … {len(report.skipped_files) - 20} more: `samplescout library --all`")
    for problem in report.problems:
        out.print(f"  warning: {printable(problem)}", markup=False)
    if report.interrupted:
        out.print("Scan stopped early: run it again to resume.")


# -- search ----------------------------------------------------------------

SEARCH_COLUMNS_WIDTH = 80   # rank, score, kind, tags, bpm, key and length columns, with borders
ELLIPSIS = "…"


def path_width(console: Console, other_columns: int) -> int | None:
    """Room for a path column on a terminal; None (whole paths) when the output is not one."""
    if not console.is_terminal:
        return None
    return max(24, console.width - other_columns)


def print_at(console: Console, renderable, width: int) -> None:
    """Print at ``width`` columns, wider than the console's if need be (output to a file)."""
    saved = console.width
    console.width = width
    try:
        console.print(renderable)
    finally:
        console.width = saved


def table_width(console: Console, width: int | None, names: list[str]) -> int:
    """The width to print a table of paths at: the terminal's, or wide enough for whole paths."""
    if width is not None:
        return console.width
    return max(console.width, SEARCH_COLUMNS_WIDTH + max(map(len, names), default=0) + 10)


def elide_path(path: str, width: int | None) -> str:
    """``path`` whole if it fits in ``width`` characters (or width is None), else with its
    middle folders replaced by '…': the start and the file name stay whole."""
    path = str(path)
    if width is None or len(path) <= width:
        return path
    head, name = os.path.split(path)
    room = width - len(name) - len(ELLIPSIS) - 1
    if room < 1:
        return ELLIPSIS + name[-(width - 1):] if width > 1 else name
    return f"{head[:room]}{ELLIPSIS}{os.sep}{name}"


MAX_RERANK_DEPTH = 200      # each re-ranked file is read and decoded: bound the work


def cmd_search(args, library_dir, out: Console, err: Console) -> int:
    from app.decode import DecodeError
    from app.library import EmptyLibraryError, Library, LibraryError

    if args.k < 1:
        raise CliError("-k must be at least 1")
    if args.depth is not None and not 2 <= args.depth <= MAX_RERANK_DEPTH:
        raise CliError(f"--depth must be between 2 and {MAX_RERANK_DEPTH}")
    narrow = search_filter(args)
    status = EXIT_OK
    with Library(library_dir, catalog=getattr(args, "catalog", None)) as library:
        if library.stale_note:
            err.print(f"samplescout: warning: {printable(library.stale_note)}", markup=False)
        for path in args.files:
            if os.path.isdir(path):
                err.print(f"samplescout: error: {printable(path)} is a folder, not a sound file; "
                          f"to add it to the library: samplescout index {printable(path)}",
                          markup=False)
                status = EXIT_ERROR
                continue
            try:
                results = library.search_file(path, k=args.k, filter=narrow,
                                              rerank_depth=args.depth,
                                              by_kind=not args.closest_only)
            except (DecodeError, LibraryError, OSError) as exc:
                err.print(f"samplescout: error: {printable(path)}: {printable(exc)}", markup=False)
                status = EXIT_ERROR
                if isinstance(exc, EmptyLibraryError):
                    return status
                continue
            if args.json:
                answer = {"query": os.path.abspath(path), "results": [r.as_dict() for r in results]}
                if library.stale_note:
                    answer["stale"] = library.stale_note
                print(json.dumps(answer), flush=True)
                continue
            table = Table(title=f"Closest to {shown(path)}", title_justify="left")
            table.add_column("#", justify="right")
            table.add_column("score", justify="right")
            table.add_column("kind")
            table.add_column("tags")
            table.add_column("bpm", justify="right")
            table.add_column("key")
            table.add_column("length", justify="right")
            width = path_width(out, SEARCH_COLUMNS_WIDTH)
            table.add_column("sample", no_wrap=True)
            names = []
            for r in results:
                name = elide_path(r.file.path, width - (0 if r.exists else 10) if width else None)
                names.append(name)
                if not r.exists:
                    name += f" ({r.where})" if r.where else " (missing)"
                bpm = r.sound.tempo_bpm if r.sound else None
                table.add_row(str(r.rank), f"{r.score:.3f}", r.file.kind or "",
                              shown(", ".join(t.tag for t in r.tags[:2])),
                              f"{bpm:.0f}" if bpm else "", (r.sound.key_label if r.sound else None) or "",
                              f"{r.file.duration or 0:.2f} s", shown(name))
            print_at(out, table, table_width(out, width, names))
        for problem in library.problems:
            err.print(f"samplescout: warning: {display_path(problem)}", markup=False)
        library.sync_cache()   # keep the offline copy of a shared catalogue current
    return status


# -- info and tag ----------------------------------------------------------

def cmd_info(args, library_dir, out: Console, err: Console) -> int:
    from app.library import Library, LibraryError

    status = EXIT_OK
    with Library(library_dir) as library:
        for path in args.files:
            try:
                info = library.describe(path)
            except LibraryError as exc:
                err.print(f"samplescout: error: {exc}", markup=False)
                status = EXIT_ERROR
                continue
            if args.json:
                print(json.dumps(info), flush=True)
                continue
            out.print(_info_text(info), markup=False)
    return status


def _info_text(info: dict) -> str:
    lines = [info["path"]]
    if info["status"] != "indexed":
        return f"{info['path']}\n  skipped: {info['error']}"
    lines.append(f"  kind      {info['kind']}, {info['duration_s'] or 0:.2f} s, "
                 f"{info['sample_rate']} Hz, {info['channels']} ch")
    def sources(tag: str) -> str:
        return ", ".join(f"{f['source']} {f['confidence']:.2f}" for f in info["found"] if f["tag"] == tag)

    facets = {t["tag"] for t in info["genre"] + info["mood"]}
    tags = "; ".join(f"{t['tag']} ({sources(t['tag'])})" for t in info["tags"] if t["tag"] not in facets)
    lines.append(f"  tags      {tags or '(none)'}")
    for facet in ("genre", "mood"):
        if info[facet]:
            found = "; ".join(f"{t['tag']} ({sources(t['tag'])})" for t in info[facet])
            lines.append(f"  {facet:<9} {found}")
    if info["name_conflict"]:
        lines.append(f"  warning   the name says {info['name_conflict']}, the sound says otherwise")
    if info["tempo"]:
        lines.append(f"  tempo     {info['tempo']['bpm']:.1f} bpm ({info['tempo']['confidence']:.2f})")
    if info["key"]:
        lines.append(f"  key       {info['key']['label']} ({info['key']['confidence']:.2f})")
    if info["root"]:
        root = info["root"]
        lines.append(f"  root      {root['note']} {root['tuning_cents']:+.0f} cents ({root['confidence']:.2f})")
    if info["loudness_db"] is not None:
        lines.append(f"  loudness  {info['loudness_db']:.1f} dB")
    if info["analysis_model"] is None:
        lines.append("  (not analysed yet: `samplescout index` does it)")
    return "\n".join(lines)


def cmd_tag(args, library_dir, out: Console, err: Console) -> int:
    from app.library import Library

    if not args.add and not args.remove:
        raise CliError("say what to do: --add TAG and/or --remove TAG")
    with Library(library_dir) as library:
        for tag in args.add:
            out.print(f"added {library.add_tag(args.file, tag)}", markup=False)
        for tag in args.remove:
            out.print(f"removed {library.remove_tag(args.file, tag)}", markup=False)
        tags = library.describe(args.file)["tags"]
    out.print(f"{args.file}: {', '.join(t['tag'] for t in tags) or '(no tags)'}", markup=False)
    return EXIT_OK


# -- library ---------------------------------------------------------------

def cmd_library(args, library_dir, out: Console, err: Console) -> int:
    from app.library import Library, catalog_address
    from app.paths import library_dir as resolve

    directory = resolve(library_dir)
    if not args.files and (args.kind or args.folder or args.name):
        raise CliError("--kind, --folder and --name choose files to list: add --files")
    address = catalog_address(directory, getattr(args, "catalog", None))
    if address is None:
        from app.catalog import Catalog
        from app.paths import CATALOG_FILENAME
        opened = Catalog(directory / CATALOG_FILENAME)
    else:
        opened = Library(directory, catalog=address)
        if opened.stale_note:
            err.print(f"samplescout: warning: {printable(opened.stale_note)}", markup=False)
    with opened:
        catalog = opened if address is None else opened.catalog
        if args.files:
            return _print_files(catalog, args, out)
        stats = catalog.stats()
        skipped = catalog.skipped(None if args.all else 50)
        if args.json:
            stats["skipped_files"] = [
                {"path": r.path, "reason": r.error_code, "message": r.error} for r in skipped]
            stats["library_dir"] = str(directory)
            print(json.dumps(stats))
            return EXIT_OK
        out.print(f"Library: {printable(directory)}", markup=False)
        if "catalog" in stats:
            out.print(f"Shared catalogue: {printable(stats['catalog'])} (machines: "
                      f"{printable(', '.join(stats['machines'])) or 'none yet'})", markup=False)
        offline = set(stats.get("offline_roots", ()))
        folders = [f"{root} (offline: files kept until it is back)" if root in offline else root
                   for root in stats["roots"]]
        out.print(f"Folders: {printable(', '.join(folders)) or '(none)'}", markup=False)
        out.print(f"Files: {stats['indexed']} indexed ({stats['one_shots']} one-shots, "
                  f"{stats['loops']} loops, {stats['total_duration_s'] / 60:.1f} min of audio), "
                  f"{stats['skipped']} skipped")
        from models.encoder import Encoder
        current = Encoder().model_id
        for model, count in stats["vectors_by_model"].items():
            note = "" if model == current else (
                f" — not the current model {current}: `samplescout index` re-embeds them")
            out.print(f"Vectors: {count} from model {model}{note}", markup=False)
        for code, count in sorted(stats["skipped_by_reason"].items()):
            out.print(f"  skipped {count:>4} × {code}")
        for row in skipped:
            out.print(f"  {printable(row.path)}: {printable(row.error)}", markup=False)
        if not args.all and stats["skipped"] > len(skipped):
            out.print(f"  … {stats['skipped'] - len(skipped)} more (--all)")
    return EXIT_OK


def _print_files(catalog, args, out: Console) -> int:
    """``library --files``: the indexed files the filters accept, one per line (or JSON)."""
    from app.query import SearchFilter

    accepts = SearchFilter(kind=args.kind, folder=args.folder).accepts
    needle = (args.name or "").lower()
    rows = [r for r in catalog.indexed_files() if accepts(r) and needle in r.name.lower()]
    if args.json:
        print(json.dumps({"files": [{"path": r.path, "kind": r.kind, "duration_s": r.duration,
                                     "sample_rate": r.sample_rate, "channels": r.channels}
                                    for r in rows]}))
        return EXIT_OK
    for r in rows:
        out.print(f"{r.kind or '':<8} {r.duration or 0:7.2f} s  {printable(r.path)}", markup=False)
    out.print(f"{len(rows)} files", markup=False)
    return EXIT_OK


# -- listen ----------------------------------------------------------------

def cmd_listen(args, library_dir, out: Console, err: Console) -> int:
    import threading
    import time

    from app.match_profiles import get_profile
    from app.session import Session, SessionError
    from app.stderr_guard import quiet_native_stderr
    from engine.stream import StreamConfig

    profile = get_profile(args.profile)
    if args.channels < 1:
        raise CliError("--channels must be at least 1")
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    config = StreamConfig(hostapi=args.hostapi, device=device, input_channels=args.channels,
                          output_channels=2, sample_rate=args.sample_rate,
                          block_size=args.block_size, midi_api=args.midi,
                          vst3_paths=tuple(vst3_paths(args)))
    narrow = search_filter(args)
    session = Session(library_dir, config, profile, mode=args.mode)
    if narrow is not None:
        session.set_filter(narrow)
    stop = threading.Event()
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    print_lock = threading.Lock()
    # a Ctrl-C while the session is still starting closes what has started, too
    try:
        try:
            with quiet_native_stderr():
                session.start()
        except SessionError as exc:
            if device is not None or args.hostapi:
                _list_devices_after(exc)
            raise
        if not session.index_size():
            err.print(EMPTY_LIBRARY_NOTE, markup=False)
        if args.json:
            def emit(update):
                line = json.dumps({
                    "seq": update.seq, "reason": update.reason, "mode": update.mode,
                    "stage": update.stage, "onset_time": update.onset_time,
                    "onset_frame": update.onset_frame, "level_db": round(update.level_db, 2),
                    "latency_ms": round(update.latency_ms, 2),
                    "trace": {stage: round(ms, 2) for stage, ms in update.trace},
                    "results": [{"rank": s.rank, "path": s.path, "score": round(s.score, 6),
                                 "tags": list(s.tags), "bpm": s.bpm, "key": s.key}
                                for s in update.suggestions]})
                with print_lock:
                    print(line, flush=True)
            session.subscribe(emit)
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.05)
        else:
            _listen_live_view(session, out, stop, deadline)
    finally:
        session.close()
    return EXIT_OK


def _list_devices_after(exc: Exception) -> None:
    """The audio device asked for (--device, --hostapi) did not open: the error, then the
    devices there are."""
    from app.stderr_guard import quiet_native_stderr
    from engine.devices import describe, list_devices

    with quiet_native_stderr():
        report = list_devices(midi=False)
    lines = [line for line in describe(report) if line not in report.errors]
    if lines:
        raise CliError(f"{exc}; the audio devices are:\n" + "\n".join(lines)) from None


EMPTY_LIBRARY_NOTE = ("samplescout: the library is empty, so nothing can be suggested: add your "
                      "samples with `samplescout index FOLDER`, then listen again")


def _listen_live_view(session, out: Console, stop, deadline) -> None:
    """Rich live table; a number + Enter plays that suggestion, 'c' captures, 'q' quits."""
    import threading
    import time

    from rich.live import Live

    listed: list = []   # the suggestions on screen, for their numbers

    def read_keys():
        for line in sys.stdin:
            text = line.strip().lower()
            if text in ("q", "quit"):
                break
            if text == "c":
                session.capture()
            elif text.isdigit() and 1 <= int(text) <= len(listed):
                try:
                    session.audition(listed[int(text) - 1])
                except Exception as exc:  # noqa: BLE001 — shown, never fatal
                    session.last_error = str(exc)
            elif text == "s":
                session.stop_all()
        stop.set()

    threading.Thread(target=read_keys, daemon=True, name="listen-keys").start()

    def render():
        meters = session.meters()
        levels = meters.peak_dbfs()
        peak = max(levels) if levels else -120.0
        update = session.latest()
        stats = session.stats()
        bars = int(max(0.0, min(1.0, (peak + 60.0) / 60.0)) * 30)
        table = Table(title=escape(f"input {peak:6.1f} dBFS [{'#' * bars}{'.' * (30 - bars)}]   "
                                   f"{session.profile.name} / {session.mode}   "
                                   f"queries {stats['queries']}  latency p50 "
                                   f"{(stats['latency_p50_ms'] or 0):.0f} ms"), title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("score", justify="right")
        table.add_column("kind")
        table.add_column("length", justify="right")
        table.add_column("sample", no_wrap=True)
        width = path_width(out, SEARCH_COLUMNS_WIDTH)
        listed[:] = list(update.suggestions) if update else []
        for s in listed:
            name = elide_path(s.path, width - (0 if s.exists else 10) if width else None)
            table.add_row(str(s.rank), f"{s.score:.3f}", s.kind or "", f"{s.duration_s or 0:.2f} s",
                          shown(name if s.exists else f"{name} (missing)"))
        table.caption = escape("type a number + Enter to play it, c + Enter to capture, s to stop, "
                               "q to quit" + (f"   {session.last_error}" if session.last_error else ""))
        return table

    with Live(render(), console=out, refresh_per_second=8, transient=False) as live:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.12)
            live.update(render())


# -- plugins ---------------------------------------------------------------

def vst3_paths(args) -> list[str]:
    """Extra VST3 folders from --vst3-path and $SAMPLESCOUT_VST3_PATH."""
    paths = list(getattr(args, "vst3_path", None) or [])
    paths += [p for p in os.environ.get("SAMPLESCOUT_VST3_PATH", "").split(os.pathsep) if p]
    return paths


def cmd_plugins(args, library_dir, out: Console, err: Console) -> int:
    from dataclasses import asdict

    from engine.plugins import PluginScanner

    if args.timeout <= 0:
        raise CliError("--timeout must be positive")
    scanner = PluginScanner(extra_paths=vst3_paths(args), timeout=args.timeout)
    err.print(f"Scanning VST3 folders ({', '.join(str(r) for r in scanner.roots()) or 'none'}); "
              "each plugin loads in a separate process…", markup=False)
    report = scanner.scan(rescan=args.rescan)
    if args.json:
        print(json.dumps({"roots": report.roots, "seconds": report.seconds,
                          "plugins": [asdict(r) for r in report.results]}))
        return EXIT_OK
    table = Table(title=f"VST3 plugins ({len(report.loaded)} usable, {len(report.failed)} skipped)",
                  title_justify="left")
    for column in ("plugin", "vendor", "channels", "parameters", "status"):
        table.add_column(column)
    for r in sorted(report.results, key=lambda r: (not r.ok, r.name or r.path)):
        status = (f"ok ({r.load_seconds:.2f} s)" if r.ok
                  else ("timed out: " if r.timed_out else "failed: ") + (r.error or "")[:60])
        table.add_row(shown(r.name or os.path.basename(r.path)), shown(r.vendor or ""), r.layout,
                      str(len(r.parameters)), shown(status))
    out.print(table)
    out.print(f"{report.from_cache} results from the cache; --rescan probes again.")
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


# -- duplicates ------------------------------------------------------------

def _add_duplicates_parser(sub, common) -> None:
    p = sub.add_parser("duplicates", parents=[common],
                       help="groups of one sound stored more than once; move chosen copies to the trash")
    p.add_argument("--json", action="store_true", help="one JSON object: the groups and their pairs")
    p.add_argument("--trash", nargs="+", metavar="PATH", default=None,
                   help="move these library files to the system trash (asks first)")
    p.add_argument("--yes", action="store_true", help="move to the trash without asking")


def cmd_duplicates(args, library_dir, out: Console, err: Console) -> int:
    from app import duplicates
    from app.library import Library

    with Library(library_dir) as library:
        if args.trash:
            return _trash(library, args, out, err)
        with Progress(TextColumn("checking for duplicates"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as bar:
            task = bar.add_task("check", total=None)
            report = duplicates.update(
                library, progress=lambda done, total, _path: bar.update(task, completed=done, total=total))
        found = duplicates.groups(library)
        for problem in report.failed:
            err.print(f"samplescout: warning: {printable(problem)}", markup=False)
        if args.json:
            print(json.dumps({"checked": report.checked, "candidates": report.candidates,
                              "elapsed_s": round(report.elapsed_s, 3),
                              "groups": [g.as_dict() for g in found]}), flush=True)
            return EXIT_OK
        if not found:
            out.print(f"No duplicates ({report.checked} files checked now).")
            return EXIT_OK
        for n, group in enumerate(found, 1):
            table = Table(title=f"Group {n}: {len(group.files)} files", title_justify="left")
            table.add_column("label")
            table.add_column("corr", justify="right")
            table.add_column("detail")
            table.add_column("a")
            table.add_column("b")
            for pair in group.pairs:
                detail = []
                if pair.trimmed:
                    detail.append("trimmed")
                if pair.label == "variant":
                    detail.append(f"{pair.as_dict()['semitones']:+.2f} st")
                table.add_row(pair.label, f"{pair.correlation:.3f}", ", ".join(detail),
                              shown(pair.a.path), shown(pair.b.path))
            out.print(table)
        out.print("Keep what you like; `samplescout duplicates --trash PATH...` moves the others "
                  "to the trash.")
    return EXIT_OK


def _trash(library, args, out: Console, err: Console) -> int:
    from app import duplicates

    paths = [os.path.abspath(os.path.expanduser(p)) for p in args.trash]
    unknown = [p for p in paths if library.catalog.file_by_path(p) is None]
    if unknown:
        raise CliError(f"not in the library, left alone: {printable(unknown[0])}")
    if not args.yes:
        for path in paths:
            out.print(f"  {shown(path)}")
        try:
            answer = input(f"Move {len(paths)} file(s) to the trash ({duplicates.trash_dir()})? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            out.print("Nothing moved.")
            return EXIT_ERROR
    landed = duplicates.move_to_trash(library, paths)
    for source, target in zip(paths, landed):
        out.print(f"trashed {shown(source)} -> {shown(target)}")
    return EXIT_OK


# -- detect ----------------------------------------------------------------

def _add_detect_parser(sub, common) -> None:
    p = sub.add_parser("detect", parents=[common],
                       help="which library samples a track uses, where, and at which pitch and tempo")
    p.add_argument("tracks", nargs="+", metavar="TRACK")
    p.add_argument("--json", action="store_true", help="one JSON object per track")
    p.add_argument("-n", type=int, default=20, help="at most this many samples per track (default 20)")


def cmd_detect(args, library_dir, out: Console, err: Console) -> int:
    from app import detect
    from app.decode import DecodeError
    from app.library import Library

    if args.n < 1:
        raise CliError("-n must be at least 1")
    status = EXIT_OK
    with Library(library_dir) as library:
        if len(library.index) == 0:
            raise CliError("the library is empty: add samples with `samplescout index FOLDER` first")
        for track in args.tracks:
            with Progress(TextColumn(f"detecting in {escape(os.path.basename(track))}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True,
                          disable=not err.is_terminal) as bar:
                task = bar.add_task("detect", total=len(detect.SPEED_RATIOS))
                try:
                    found = detect.detect(
                        library, track, limit=args.n,
                        progress=lambda done, total: bar.update(task, completed=done, total=total))
                except (DecodeError, OSError) as exc:
                    err.print(f"samplescout: error: {printable(track)}: {printable(exc)}", markup=False)
                    status = EXIT_ERROR
                    continue
            if args.json:
                print(json.dumps({"track": os.path.abspath(track),
                                  "detections": [d.as_dict() for d in found]}), flush=True)
                continue
            table = Table(title=f"Samples in {shown(track)}", title_justify="left")
            table.add_column("score", justify="right")
            table.add_column("pitch", justify="right")
            table.add_column("tempo", justify="right")
            table.add_column("at (s)")
            table.add_column("sample")
            for d in found:
                row = d.as_dict()
                at = ", ".join(f"{o['start_s']:.1f}–{o['end_s']:.1f}" for o in row["occurrences"])
                table.add_row(f"{d.score:.3f}", f"{row['pitch_semitones']:+.1f} st",
                              f"{row['tempo_ratio']:.2f}x", at, shown(d.file.path))
            out.print(table)
    return status


# -- preview-match ---------------------------------------------------------

def _add_preview_match_parser(sub, common) -> None:
    p = sub.add_parser("preview-match", parents=[common],
                       help="render a sample matched to a tempo and key (loops stretched, tonal "
                            "samples shifted), as the window's matched preview does")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--bpm", type=float, default=None, help="the session tempo, e.g. 128")
    p.add_argument("--key", default=None, help="the session key, e.g. Am, F#, Bb major")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="also copy the render here (it is always kept in the render cache)")
    p.add_argument("--json", action="store_true", help="one JSON object: the plan and the file")


def cmd_preview_match(args, library_dir, out: Console, err: Console) -> int:
    import shutil

    from app.matched_preview import Target, render_file, source_info

    if args.bpm is None and not args.key:
        raise CliError("give the session tempo (--bpm), key (--key) or both")
    if not os.path.isfile(args.file):
        raise CliError(f"no such file: {args.file}")
    target = Target(bpm=args.bpm, key=args.key)
    source = source_info(args.file, library_dir)
    rendered, plan = render_file(args.file, target, library_dir=library_dir, source=source)
    if rendered is not None and args.out:
        destination = args.out
        if os.path.isdir(destination):
            destination = os.path.join(destination, rendered.name)
        shutil.copyfile(rendered, destination)
        rendered = destination
    if args.json:
        print(json.dumps({"file": os.path.abspath(args.file), "rendered": os.fspath(rendered) if rendered else None,
                          "analysis": source.origin, "kind": source.kind,
                          "tempo_bpm": source.tempo_bpm, "key": source.key_text or None,
                          "root_midi": source.root_midi, "stretch": round(plan.stretch, 6),
                          "semitones": plan.semitones, "bpm": plan.bpm, "to_key": plan.key or None,
                          "kept": list(plan.notes)}), flush=True)
        return EXIT_OK
    changes = plan.suffix() or "nothing"
    out.print(f"{printable(args.file)}: {source.kind or 'sample'}"
              + (f", {source.tempo_bpm:g} BPM" if source.tempo_bpm else "")
              + (f", {source.key_text}" if source.key_text else "")
              + f" → {changes}", markup=False)
    if plan.reason:
        out.print(f"  kept: {plan.reason}", markup=False)
    out.print(f"  wrote {printable(rendered)}" if rendered else "  nothing to render: the file plays as it is",
              markup=False)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
