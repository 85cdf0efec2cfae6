"""The library browser's query (app.browse) and `samplescout find / collection / favourite`,
against a real catalog: Debian's Hydrogen samples indexed by the real scanner."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.browse import COLUMNS, BrowseError, BrowseQuery, build_snapshot, parse_text
from app.catalog import Catalog
from app.cli import main
from app.paths import CATALOG_FILENAME
from tests.conftest import HYDROGEN, require

REPO = Path(__file__).parent.parent
ELECTRO = HYDROGEN / "HardElectro1"
ACOUSTIC = HYDROGEN / "ColomboAcousticDrumkit"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A library of 23 real drum samples in two folders (Electro, Acoustic), indexed once
    per module; tests copy it before changing it."""
    require(ELECTRO, "hydrogen-drumkits")
    base = tmp_path_factory.mktemp("browse")
    root = base / "samples"
    (root / "Electro").mkdir(parents=True)
    (root / "Acoustic").mkdir()
    for f in ELECTRO.glob("*.flac"):
        shutil.copy(f, root / "Electro" / f.name)
    for f in [*ACOUSTIC.glob("snare-opaque*.flac"), ACOUSTIC / "stick-rim-9.flac"]:
        shutil.copy(f, root / "Acoustic" / f.name)
    lib = base / "lib"
    assert main(["index", str(root), "--workers", "1", "--library-dir", str(lib)]) == 0
    return root, lib


@pytest.fixture
def library(indexed, tmp_path):
    """A copy of the indexed library (samples and catalog) this test may change; the
    catalog's paths are relinked by a rescan of the copied folder."""
    root, lib = indexed
    new_root, new_lib = tmp_path / "samples", tmp_path / "lib"
    shutil.copytree(root, new_root)
    shutil.copytree(lib, new_lib)
    with Catalog(new_lib / CATALOG_FILENAME) as catalog:
        for row in catalog.indexed_files() + catalog.skipped():
            moved = str(new_root / Path(row.path).relative_to(root))
            catalog.relink(row.id, moved, row.size, row.mtime_ns)
        catalog.remove_root(str(root))
        catalog.add_root(str(new_root))
    return new_root, new_lib


def snapshot_of(lib: Path):
    with Catalog(lib / CATALOG_FILENAME) as catalog:
        return build_snapshot(catalog)


def names(snapshot, result) -> list[str]:
    return [snapshot.names[r] for r in result.rows]


def test_text_search_reads_the_thesaurus_and_excludes(indexed):
    _, lib = indexed
    snap = snapshot_of(lib)
    assert len(snap) == 23
    kicks = {n for n, tags in zip(snap.names, snap.row_tags) if "kick" in tags}
    # "bd" is a kick: the name's BD and every file tagged kick
    found = set(names(snap, snap.query(BrowseQuery(text="bd"))))
    assert "PowR_BD_1.flac" in found and found == kicks | {"PowR_BD_1.flac"}
    # "hh" reads as closed hat: CHH_1 has no "hh" word of its own
    hats = set(names(snap, snap.query(BrowseQuery(text="hh"))))
    assert {"CHH_1.flac", "Hard_CHH_01.flac", "PowR_HH_1.flac"} <= hats
    assert not any("BD" in n or "snare" in n for n in hats)
    # exclusion by word: "snare -rim" keeps the plain snares, drops rimshots and the rim stick
    snares = names(snap, snap.query(BrowseQuery(text="snare -rim")))
    assert "snare-opaque-normal-mic-normal_shot2.flac" in snares
    assert not any("rim" in n for n in snares)
    with_rims = names(snap, snap.query(BrowseQuery(text="snare")))
    assert {"stick-rim-9.flac", "snare-opaque-normal-mic-rimshot2.flac"} <= set(with_rims)
    # prefixes answer per keystroke; a folder's name is searched too
    assert set(names(snap, snap.query(BrowseQuery(text="acou")))) == {
        n for n, f in zip(snap.names, snap.folder_code) if snap.folders[f].endswith("Acoustic")}
    assert snap.query(BrowseQuery(text="zzzz")).total == 0
    # two words naming one tag are one term
    assert parse_text("open hat -kick")[0] == [("open hat", "open hat")]
    assert parse_text("open hat -kick")[1] == [("kick", "kick")]
    excluded = names(snap, snap.query(BrowseQuery(text="-kick")))
    assert len(excluded) == 23 - len(kicks) and not kicks & set(excluded)


def test_facets_count_what_the_other_filters_leave(indexed):
    root, lib = indexed
    snap = snapshot_of(lib)
    result = snap.query(BrowseQuery())
    tags = {value: count for value, _, count in result.facets["tags"]}
    for tag, count in tags.items():
        assert count == sum(tag in t for t in snap.row_tags)
    assert {label: count for _, label, count in result.facets["folder"]} == {
        "samples/Electro": 16, "samples/Acoustic": 7}
    assert result.facets["kind"] == [("one-shot", "one-shot", 23)]
    assert sum(c for _, _, c in result.facets["length"]) == 23
    # a chosen tag narrows the rows and the other facets, not its own facet
    kicks = snap.query(BrowseQuery(tags=("BD",)))
    assert kicks.total == tags["kick"]
    assert {v: c for v, _, c in kicks.facets["tags"]} == tags
    assert sum(c for _, _, c in kicks.facets["folder"]) == kicks.total
    # a folder facet's value filters to it
    acoustic = next(v for v, label, _ in result.facets["folder"] if label.endswith("Acoustic"))
    inside = snap.query(BrowseQuery(folder=acoustic))
    assert inside.total == 7 and all(snap.paths[r].startswith(str(root / "Acoustic")) for r in inside.rows)
    # length buckets filter like their facet's range
    low, high = result.facets["length"][0][0]
    short = snap.query(BrowseQuery(length=(low, min(high, 1e9))))
    assert short.total == result.facets["length"][0][2]
    with pytest.raises(BrowseError, match="unknown tag"):
        BrowseQuery(tags=("banjo",))
    with pytest.raises(BrowseError, match="not a key"):
        snap.query(BrowseQuery(key="H#"))


@pytest.mark.parametrize("column", COLUMNS)
def test_every_column_sorts_both_ways(indexed, column):
    _, lib = indexed
    snap = snapshot_of(lib)
    snap.set_favourite(snap.file_ids[:3], True)
    for descending in (False, True):
        rows = snap.query(BrowseQuery(sort=column, descending=descending)).rows
        assert sorted(rows.tolist()) == list(range(len(snap)))
        key = {"name": lambda r: snap.names[r].casefold(),
               "folder": lambda r: snap.folder_label(r).casefold(),
               "tags": lambda r: ", ".join(snap.row_tags[r]),
               "kind": lambda r: snap.kind_text(r) or "",
               "key": lambda r: snap.key_text(r) or "",
               "tempo": lambda r: snap.tempo[r], "length": lambda r: snap.duration[r],
               "loudness": lambda r: snap.loudness[r],
               "favourite": lambda r: not snap.favourite[r]}[column]
        values = [key(r) for r in rows]
        known = [v for v in values if v != "" and not (isinstance(v, float) and math.isnan(v))]
        assert known == sorted(known, reverse=descending)
        assert values[:len(known)] == known          # unknown values last either way
    if column == "length":
        assert snap.names[snap.query(BrowseQuery(sort="length", descending=True)).rows[0]] \
            .startswith("snare-opaque")


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def test_find_and_collections_from_the_terminal(library, capsys):
    root, lib = library
    at = ["--library-dir", str(lib)]
    acoustic = root / "Acoustic"
    kick = root / "Electro" / "PowR_BD_1.flac"
    assert main(["collection", "create", "Keepers", *at]) == 0
    assert main(["collection", "add", "keepers", str(acoustic), str(kick), *at]) == 0
    assert main(["favourite", str(kick), *at]) == 0
    # a path outside the library changes nothing
    assert main(["collection", "add", "Keepers", str(kick), "/no/such.wav", *at]) == 1
    assert "not in the library" in capsys.readouterr().err
    # a rewritten file (analysed again) and a moved folder (relinked) keep their places
    shutil.copy(ELECTRO / "HardHse_K_02.flac", kick)
    acoustic.rename(root / "Acoustic moved")
    assert main(["index", str(root), "--workers", "1", *at]) == 0
    capsys.readouterr()

    shown = _cli("collection", "show", "KEEPERS", "--json", *at)
    assert shown.returncode == 0, shown.stderr
    paths = [r["path"] for r in json.loads(shown.stdout)["rows"]]
    assert len(paths) == 8 and str(kick) in paths
    assert all("Acoustic moved" in p for p in paths if p != str(kick))
    found = _cli("find", "snare -rim", "--collection", "Keepers", "--facets", "--json",
                 "--sort", "length", "--desc", *at)
    assert found.returncode == 0, found.stderr
    answer = json.loads(found.stdout)
    assert answer["total"] == 3 and len(answer["rows"]) == 3
    assert [r["duration_s"] for r in answer["rows"]] == sorted(
        (r["duration_s"] for r in answer["rows"]), reverse=True)
    assert set(answer["rows"][0]) == {"file_id", "path", "name", "folder", "tags", "kind", "bpm",
                                      "key", "duration_s", "loudness_db", "favourite"}
    assert answer["facets"]["folder"] == [
        {"value": str(root / "Acoustic moved"), "label": "samples/Acoustic moved", "count": 3}]
    favourites = json.loads(_cli("find", "--favourites", "--json", *at).stdout)
    assert [r["path"] for r in favourites["rows"]] == [str(kick)]
    assert favourites["rows"][0]["favourite"] is True

    assert main(["collection", "export", "Keepers", "--to", str(root.parent / "out"), *at]) == 0
    assert sorted(os.listdir(root.parent / "out")) == sorted(Path(p).name for p in paths)
    assert main(["collection", "rename", "Keepers", "Best", *at]) == 0
    assert main(["collection", "list", "--json", *at]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["collections"]
    assert [(c["name"], c["size"]) for c in listed] == [("Best", 8)]
    assert main(["collection", "remove", "Best", str(kick), *at]) == 0
    assert main(["favourite", "--remove", str(kick), *at]) == 0
    assert main(["find", "--favourites", "--json", *at]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["total"] == 0
    assert main(["collection", "delete", "Best", *at]) == 0
    assert main(["collection", "show", "Best", *at]) == 1
    assert main(["find", "--tag", "banjo", *at]) == 1
    assert main(["find", "--bpm", "fast", *at]) == 1
    err = capsys.readouterr().err
    assert "no collection named 'Best'" in err and "unknown tag 'banjo'" in err
    assert "--bpm wants LO-HI" in err and "Traceback" not in err


def test_tags_of_one_facet_widen_and_of_two_facets_narrow(indexed):
    _, lib = indexed
    snap = snapshot_of(lib)
    kicks = {r for r, tags in enumerate(snap.row_tags) if "kick" in tags}
    snares = {r for r, tags in enumerate(snap.row_tags) if "snare" in tags}
    assert kicks and snares
    assert set(snap.query(BrowseQuery(tags=("kick", "snare"))).rows) == kicks | snares
    house_kick = min(kicks)
    snap.set_tags(snap.file_ids[house_kick], snap.row_tags[house_kick] + ("house",))
    assert set(snap.query(BrowseQuery(tags=("kick", "house"))).rows) == {house_kick}
    assert set(snap.query(BrowseQuery(tags=("snare", "house"))).rows) == set()
