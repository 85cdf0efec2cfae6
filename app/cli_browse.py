"""``samplescout find``, ``collection`` and ``favourite``: the library browser in a terminal.

``find`` answers through the same snapshot and query as the window's browser
(``app.browse``); ``collection`` and ``favourite`` write the catalog's favourites and
collections (``app.catalog_collections``), which are kept by file id through rescans,
moves and model changes. Runs on the main thread.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil

from rich.console import Console
from rich.table import Table

from app.browse import COLUMNS, BrowseError, BrowseQuery, build_snapshot, parse_range
from app.cli import EXIT_OK, CliError, printable, shown


def add_parsers(sub, common) -> None:
    p = sub.add_parser("find", parents=[common],
                       help="search, filter and sort the whole library by name, folder and tag")
    p.add_argument("query", nargs="*", metavar="WORD",
                   help="words that must match a name, folder or tag (synonyms work: bd, hh); "
                        "-WORD excludes (quote it: \"snare -rim\")")
    p.add_argument("--tag", action="append", default=[], metavar="TAG",
                   help="only files with this tag (repeat: any of them)")
    p.add_argument("--kind", choices=["one-shot", "loop"], default=None)
    p.add_argument("--bpm", default=None, metavar="LO-HI", help="tempo range, e.g. 118-122")
    p.add_argument("--length", default=None, metavar="LO-HI", help="length range in seconds, e.g. 0-1")
    p.add_argument("--key", default=None, help="key, e.g. Am, F#, Bb major")
    p.add_argument("--folder", default=None, metavar="DIR", help="only files inside DIR")
    p.add_argument("--favourites", action="store_true", help="only favourites")
    p.add_argument("--collection", default=None, metavar="NAME", help="only files of this collection")
    p.add_argument("--sort", choices=COLUMNS, default="name", help="column to sort by (default name)")
    p.add_argument("--desc", action="store_true", help="sort descending")
    p.add_argument("--limit", type=int, default=50, help="rows to show (default 50; 0: all)")
    p.add_argument("--json", action="store_true", help="one JSON object: total, rows (and facets)")
    p.add_argument("--facets", action="store_true",
                   help="also count tags, kinds, keys, tempo and length ranges, folders")

    p = sub.add_parser("collection", parents=[common],
                       help="named collections of library files: list, create, add, show, export")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("list", parents=[common], help="every collection and its size")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("create", parents=[common], help="a new, empty collection")
    a.add_argument("name", metavar="NAME")
    a = actions.add_parser("rename", parents=[common], help="rename a collection")
    a.add_argument("name", metavar="NAME")
    a.add_argument("new_name", metavar="NEW_NAME")
    a = actions.add_parser("delete", parents=[common], help="forget a collection (its files stay)")
    a.add_argument("name", metavar="NAME")
    for verb, text in (("add", "put library files (or every file of a folder) in a collection"),
                       ("remove", "take files out of a collection")):
        a = actions.add_parser(verb, parents=[common], help=text)
        a.add_argument("name", metavar="NAME")
        a.add_argument("paths", nargs="+", metavar="PATH")
        if verb == "add":
            a.add_argument("--create", action="store_true", help="make the collection if it is new")
    a = actions.add_parser("show", parents=[common], help="the files of a collection, in the order they were added")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("export", parents=[common], help="the paths of a collection's files (or copies of them)")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--to", metavar="DIR", default=None,
                   help="copy the files into DIR (existing files there are left alone)")
    a.add_argument("--link", action="store_true", help="with --to: symbolic links, not copies")
    a.add_argument("--json", action="store_true")

    p = sub.add_parser("favourite", parents=[common], help="mark library files as favourites")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files (or folders: all their files)")
    p.add_argument("--remove", action="store_true", help="unmark them instead")


HANDLERS = {}


def _handler(name):
    def register(fn):
        HANDLERS[name] = fn
        return fn
    return register


@contextlib.contextmanager
def open_catalog(args, library_dir, err: Console):
    """The library's catalog (local, or the shared catalogue the library uses)."""
    from app.catalog import Catalog
    from app.library import Library, catalog_address
    from app.paths import CATALOG_FILENAME, library_dir as resolve

    directory = resolve(library_dir)
    address = catalog_address(directory, getattr(args, "catalog", None))
    if address is None:
        with Catalog(directory / CATALOG_FILENAME) as catalog:
            yield catalog
        return
    with Library(directory, catalog=address) as library:
        if library.stale_note:
            err.print(f"samplescout: warning: {printable(library.stale_note)}", markup=False)
        yield library.catalog


def _needs_collections(catalog) -> None:
    if not hasattr(catalog, "create_collection"):
        raise CliError("favourites and collections are kept in this machine's own catalog; "
                       "this library uses a shared catalogue that has none yet")


def file_ids(catalog, paths) -> list[int]:
    """The catalogued files named by ``paths`` (a folder names every file inside it);
    CliError naming the first path that is not in the library (nothing is changed)."""
    found: list[int] = []
    for given in paths:
        path = os.path.abspath(os.path.expanduser(given))
        if os.path.isdir(path):
            rows = [r for r in catalog.files_under(path).values() if r.status == "indexed"]
            if not rows:
                raise CliError(f"{printable(given)}: no library files in this folder")
            found += [r.id for r in sorted(rows, key=lambda r: r.path)]
            continue
        row = catalog.file_by_path(path)
        if row is None and os.path.realpath(path) != path:
            row = catalog.file_by_path(os.path.realpath(path))
        if row is None:
            raise CliError(f"{printable(given)}: not in the library "
                           "(add its folder with `samplescout index`)")
        found.append(row.id)
    return list(dict.fromkeys(found))


def _facet_json(facets: dict) -> dict:
    def value(v):
        if isinstance(v, tuple):
            return [None if math.isinf(x) else x for x in v]
        return v
    return {name: [{"value": value(v), "label": label, "count": count}
                   for v, label, count in items] for name, items in facets.items()}


def _number(v, fmt: str) -> str:
    return "" if v is None else format(v, fmt)


def _rows_table(snapshot, rows, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name, width in (("", 1), ("name", 16), ("tags", 10), ("kind", 8), ("bpm", 3),
                        ("key", 3), ("length", 6), ("dB", 5), ("folder", 10)):
        table.add_column(name, justify="right" if name in ("bpm", "length", "dB") else "left",
                         no_wrap=True, overflow="ellipsis", min_width=width)
    for row in rows:
        d = snapshot.row_dict(int(row))
        table.add_row("★" if d["favourite"] else "", shown(d["name"]), ", ".join(d["tags"]),
                      d["kind"] or "", _number(d["bpm"], ".0f"), d["key"] or "",
                      _number(d["duration_s"], ".2f"), _number(d["loudness_db"], ".1f"),
                      shown(snapshot.folder_label(int(row))))
    return table


@_handler("find")
def cmd_find(args, library_dir, out: Console, err: Console) -> int:
    if args.limit < 0:
        raise CliError("--limit must be 0 (all) or more")
    try:
        query = BrowseQuery(
            text=" ".join(args.query), kind=args.kind, tags=tuple(args.tag), key=args.key,
            tempo=parse_range(args.bpm, "--bpm") if args.bpm else None,
            length=parse_range(args.length, "--length") if args.length else None,
            folder=args.folder, favourites=args.favourites, collection=args.collection,
            sort=args.sort, descending=args.desc, limit=args.limit or None, facets=args.facets)
        with open_catalog(args, library_dir, err) as catalog:
            snapshot = build_snapshot(catalog)
        result = snapshot.query(query)
    except BrowseError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        answer = {"total": result.total, "rows": [snapshot.row_dict(int(r)) for r in result.rows]}
        if args.facets:
            answer["facets"] = _facet_json(result.facets)
        print(json.dumps(answer), flush=True)
        return EXIT_OK
    if result.total:
        out.print(_rows_table(snapshot, result.rows, f"{result.total} of {len(snapshot)} files"
                              f" (showing {len(result.rows)})"))
    else:
        out.print(f"No files match (the library has {len(snapshot)}).", markup=False)
    if args.facets:
        for name, items in result.facets.items():
            text = ", ".join(f"{label} {count}" for _, label, count in items[:12])
            out.print(f"{name:>7}: {text or '—'}", markup=False)
    return EXIT_OK


@_handler("favourite")
def cmd_favourite(args, library_dir, out: Console, err: Console) -> int:
    with open_catalog(args, library_dir, err) as catalog:
        _needs_collections(catalog)
        ids = file_ids(catalog, args.paths)
        changed = catalog.set_favourite(ids, not args.remove)
        total = len(catalog.favourites())
    verb = "unmarked" if args.remove else "marked"
    out.print(f"{verb} {changed} of {len(ids)} file(s); {total} favourite(s) in the library",
              markup=False)
    return EXIT_OK


@_handler("collection")
def cmd_collection(args, library_dir, out: Console, err: Console) -> int:
    with open_catalog(args, library_dir, err) as catalog:
        _needs_collections(catalog)
        return _COLLECTION_ACTIONS[args.action](catalog, args, out)


def _list(catalog, args, out: Console) -> int:
    found = catalog.collections()
    if args.json:
        print(json.dumps({"collections": [{"id": c.id, "name": c.name, "size": c.size,
                                           "created_at": c.created_at} for c in found]}))
        return EXIT_OK
    for c in found:
        out.print(f"{c.size:>6}  {printable(c.name)}", markup=False)
    if not found:
        out.print("No collections yet: `samplescout collection create NAME`.", markup=False)
    return EXIT_OK


def _create(catalog, args, out: Console) -> int:
    catalog.create_collection(args.name)
    out.print(f"created {printable(' '.join(args.name.split()))}", markup=False)
    return EXIT_OK


def _rename(catalog, args, out: Console) -> int:
    catalog.rename_collection(catalog.collection_id(args.name), args.new_name)
    out.print(f"renamed {printable(args.name)} to {printable(' '.join(args.new_name.split()))}",
              markup=False)
    return EXIT_OK


def _delete(catalog, args, out: Console) -> int:
    cid = catalog.collection_id(args.name)
    size = len(catalog.collection_file_ids(cid))
    catalog.delete_collection(cid)
    out.print(f"deleted {printable(args.name)} ({size} file(s) stay in the library)", markup=False)
    return EXIT_OK


def _add(catalog, args, out: Console) -> int:
    ids = file_ids(catalog, args.paths)
    cid = catalog.collection_id(args.name, create=args.create)
    added = catalog.add_to_collection(cid, ids)
    out.print(f"added {added} file(s) to {printable(args.name)} "
              f"({len(catalog.collection_file_ids(cid))} in it)", markup=False)
    return EXIT_OK


def _remove(catalog, args, out: Console) -> int:
    cid = catalog.collection_id(args.name)
    removed = catalog.remove_from_collection(cid, file_ids(catalog, args.paths))
    out.print(f"removed {removed} file(s) from {printable(args.name)}", markup=False)
    return EXIT_OK


def _show(catalog, args, out: Console) -> int:
    cid = catalog.collection_id(args.name)
    snapshot = build_snapshot(catalog)
    rows = [r for r in (snapshot.row_index(f) for f in catalog.collection_file_ids(cid))
            if r is not None]
    name = next(c.name for c in catalog.collections() if c.id == cid)
    if args.json:
        print(json.dumps({"collection": name, "rows": [snapshot.row_dict(r) for r in rows]}))
        return EXIT_OK
    out.print(_rows_table(snapshot, rows, f"{shown(name)}: {len(rows)} file(s)"))
    return EXIT_OK


def _export(catalog, args, out: Console) -> int:
    cid = catalog.collection_id(args.name)
    paths = [row.path for row in (catalog.files_by_id([f]).get(f)
                                  for f in catalog.collection_file_ids(cid)) if row is not None]
    if args.link and not args.to:
        raise CliError("--link goes with --to DIR")
    written, skipped = [], []
    if args.to:
        target = os.path.abspath(os.path.expanduser(args.to))
        os.makedirs(target, exist_ok=True)
        for path in paths:
            dest = os.path.join(target, os.path.basename(path))
            if os.path.lexists(dest) or not os.path.exists(path):
                skipped.append(path)
                continue
            if args.link:
                os.symlink(path, dest)
            else:
                shutil.copy2(path, dest)
            written.append(dest)
    if args.json:
        answer = {"collection": args.name, "paths": paths}
        if args.to:
            answer.update({"written": written, "skipped": skipped})
        print(json.dumps(answer))
        return EXIT_OK
    if not args.to:
        for path in paths:
            out.print(printable(path), markup=False)
        return EXIT_OK
    out.print(f"{'linked' if args.link else 'copied'} {len(written)} file(s) into "
              f"{printable(args.to)}", markup=False)
    for path in skipped:
        out.print(f"  left out (missing, or its name is taken there): {printable(path)}",
                  markup=False)
    return EXIT_OK


_COLLECTION_ACTIONS = {"list": _list, "create": _create, "rename": _rename, "delete": _delete,
                       "add": _add, "remove": _remove, "show": _show, "export": _export}

