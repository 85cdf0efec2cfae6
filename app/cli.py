"""The ``samplescout`` command.

``samplescout`` alone opens the desktop app; subcommands work in a terminal:
``index``, ``search``, ``library``, ``listen``, ``plugins``, ``devices``,
``doctor``. Every subcommand accepts ``--library-dir DIR`` and ``--vst3-path DIR``
(before or after its name). Errors print one line and exit non-zero. Runs on
the main thread.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from typing import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

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


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--library-dir", metavar="DIR", default=argparse.SUPPRESS,
        help="where the catalog and index live (default: $SAMPLESCOUT_LIBRARY_DIR, "
             "else the user data dir)")
    common.add_argument(
        "--model", metavar="NAME|FILE", default=argparse.SUPPRESS,
        help="encoder: 'scout' (default), 'aisfx', or an ONNX file (also $SAMPLESCOUT_MODEL); "
             "changing it re-embeds the library on the next scan")
    common.add_argument(
        "--catalog", metavar="ADDRESS", default=argparse.SUPPRESS,
        help="a shared catalogue, postgresql://user@host/db (password in ~/.pgpass), used by "
             "index, search and library and remembered by index; 'local' for this machine's "
             "own (the default; also $SAMPLESCOUT_CATALOG)")
    common.add_argument(
        "--vst3-path", metavar="DIR", action="append", default=argparse.SUPPRESS,
        help="extra folder of VST3 plugins, besides the standard ones (repeatable; "
             "also $SAMPLESCOUT_VST3_PATH)")
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
    p.add_argument("--share", metavar="NAME", default=None,
                   help="with a shared catalogue: the folders given are the share NAME, as every "
                        "machine that mounts it calls it (one NAS at different paths is one library)")
    p.add_argument("--remove", action="store_true",
                   help="forget the given folders instead of scanning them")

    p = sub.add_parser("search", parents=[common], help="find the samples closest to audio files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    p.add_argument("--json", action="store_true", help="one JSON object per query")

    p = sub.add_parser("library", parents=[common], help="library statistics and skipped files")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="list every skipped file")

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
    return parser


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
        handler = {"index": cmd_index, "search": cmd_search, "library": cmd_library,
                   "listen": cmd_listen, "devices": cmd_devices, "plugins": cmd_plugins,
                   "doctor": cmd_doctor}[args.command]
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
        if args.remove:
            if not args.paths:
                raise CliError("--remove needs the folders to forget")
            with library.writer_lock():
                for path in args.paths:
                    root = os.path.abspath(os.path.expanduser(path))
                    removed = library.remove_folder(root)
                    out.print(f"Forgot {printable(root)} ({removed} files).", markup=False)
            return EXIT_OK
        library.catalog.check()  # never write into a damaged catalog
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
    table.add_column(justify="right")
    rows = [
        ("folders", ", ".join(map(display_path, report.roots)) or "-"),
        ("audio files found", report.seen),
        ("unchanged (skipped)", report.unchanged),
        ("analysed and indexed", report.indexed),
        ("moved or renamed (relinked)", report.relinked),
        ("duplicates (analysis reused)", report.duplicates),
        ("removed (gone from disk)", report.removed),
        ("left to another machine", report.claimed_elsewhere),
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

def cmd_search(args, library_dir, out: Console, err: Console) -> int:
    from app.decode import DecodeError
    from app.library import EmptyLibraryError, Library, LibraryError

    if args.k < 1:
        raise CliError("-k must be at least 1")
    status = EXIT_OK
    with Library(library_dir, catalog=getattr(args, "catalog", None)) as library:
        if library.stale_note:
            err.print(f"samplescout: warning: {printable(library.stale_note)}", markup=False)
        for path in args.files:
            try:
                results = library.search_file(path, k=args.k)
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
            table.add_column("length", justify="right")
            table.add_column("sample")
            for r in results:
                name = display_path(r.file.path)
                if not r.exists:
                    name += f" ({r.where})" if r.where else " (missing)"
                table.add_row(str(r.rank), f"{r.score:.3f}", r.file.kind or "",
                              f"{r.file.duration or 0:.2f} s", shown(name))
            out.print(table)
        for problem in library.problems:
            err.print(f"samplescout: warning: {display_path(problem)}", markup=False)
        library.sync_cache()   # keep the offline copy of a shared catalogue current
    return status


# -- library ---------------------------------------------------------------

def cmd_library(args, library_dir, out: Console, err: Console) -> int:
    from app.library import Library, catalog_address
    from app.paths import library_dir as resolve

    directory = resolve(library_dir)
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
        out.print(f"Folders: {printable(', '.join(stats['roots'])) or '(none)'}", markup=False)
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


# -- listen ----------------------------------------------------------------

def cmd_listen(args, library_dir, out: Console, err: Console) -> int:
    import threading
    import time

    from app.match_profiles import get_profile
    from app.session import Session
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
    session = Session(library_dir, config, profile, mode=args.mode)
    with quiet_native_stderr():
        session.start()
    stop = threading.Event()
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    print_lock = threading.Lock()
    try:
        if args.json:
            def emit(update):
                line = json.dumps({
                    "seq": update.seq, "reason": update.reason, "mode": update.mode,
                    "stage": update.stage, "onset_time": update.onset_time,
                    "onset_frame": update.onset_frame, "level_db": round(update.level_db, 2),
                    "latency_ms": round(update.latency_ms, 2),
                    "results": [{"rank": s.rank, "path": s.path, "score": round(s.score, 6)}
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


def _listen_live_view(session, out: Console, stop, deadline) -> None:
    """Rich live table; a number + Enter plays that suggestion, 'c' captures, 'q' quits."""
    import threading
    import time

    from rich.live import Live

    shown: list = []

    def read_keys():
        for line in sys.stdin:
            text = line.strip().lower()
            if text in ("q", "quit"):
                break
            if text == "c":
                session.capture()
            elif text.isdigit() and 1 <= int(text) <= len(shown):
                try:
                    session.audition(shown[int(text) - 1])
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
        table.add_column("sample")
        shown[:] = list(update.suggestions) if update else []
        for s in shown:
            table.add_row(str(s.rank), f"{s.score:.3f}", s.kind or "", f"{s.duration_s or 0:.2f} s",
                          shown(s.name if s.exists else f"{s.name} (missing)"))
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


if __name__ == "__main__":
    sys.exit(main())
