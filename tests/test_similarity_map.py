"""The similarity map over a real catalog of Sonic Pi one-shots: a full layout is stored,
keeps the neighbourhoods of the vector space far better than chance, a newly scanned file is
placed near its neighbours without moving anyone, and `samplescout map --json` prints it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import SONIC_PI, require

pytestmark = pytest.mark.samples

STEMS = ["bd_808", "bd_boom", "bd_fat", "bd_haus", "bd_klub", "bd_pure", "bd_tek", "bd_zum",
         "sn_dolf", "sn_dub", "sn_generic", "sn_zome", "drum_snare_hard", "drum_snare_soft",
         "drum_cymbal_closed", "drum_cymbal_open", "drum_cymbal_pedal", "drum_cymbal_soft",
         "drum_splash_hard", "drum_splash_soft", "tabla_ghe1", "tabla_ghe2", "tabla_ke1",
         "tabla_na", "tabla_te1", "tabla_tun1", "elec_blip", "elec_ping", "elec_beep", "bass_hit_c"]
LATE = "bd_gas"   # a kick scanned after the layout was made


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """(library_dir, samples root) with STEMS scanned."""
    require(SONIC_PI, "sonic-pi-samples")
    from app.library import Library
    from app.scanner import Scanner
    base = tmp_path_factory.mktemp("map-library")
    root = base / "samples"
    root.mkdir()
    for stem in STEMS:
        shutil.copy(SONIC_PI / f"{stem}.flac", root)
    with Library(base / "library") as library:
        assert Scanner(library, workers=1).scan([root]).indexed == len(STEMS)
    return base / "library", root


def trust(vectors, points) -> float:
    from sklearn.manifold import trustworthiness
    return trustworthiness(vectors, points, n_neighbors=10, metric="cosine")


def test_layout_is_stored_and_a_new_file_is_placed_without_moving_the_others(scanned, tmp_path):
    from app.catalog import Catalog
    from app.library import Library
    from app.scanner import Scanner
    from app.similarity_map import MapTasks, file_vectors
    source_dir, source_root = scanned
    library_dir = tmp_path / "library"
    shutil.copytree(source_dir, library_dir)     # this test adds a file: its own catalog
    tasks = MapTasks(library_dir)
    progress = []
    try:
        report = tasks.update(progress=progress.append)
        assert report.rebuilt and report.reason == "no layout yet" and report.files == len(STEMS)
        assert {p.stage for p in progress} >= {"vectors", "layout", "storing"}
        first = tasks.points()
        assert len(first) == len(STEMS) and np.isfinite(first.points).all()
        assert set(first.tags) - {""}, "points carry their top tag for the colours"
        again = tasks.update()
        assert (again.rebuilt, again.placed, again.reason) == (False, 0, "up to date")
    finally:
        tasks.close()

    with Catalog(library_dir / "catalog.sqlite3") as catalog:
        ids, stored = catalog.map_positions()
        assert len(ids) == len(STEMS)
        with Library(library_dir) as library:
            file_ids, vectors = file_vectors(library.catalog, library.encoder.model_id,
                                             library.encoder.dim)
        assert np.array_equal(ids, file_ids)
        # neighbourhoods kept: far above random points (about 0.5 here)
        rng = np.random.default_rng(0)
        random_trust = trust(vectors, rng.normal(size=(len(ids), 2)))
        assert trust(vectors, stored) > 0.85 > random_trust + 0.2

    shutil.copy(SONIC_PI / f"{LATE}.flac", source_root)
    try:
        with Library(library_dir) as library:
            assert Scanner(library, workers=1).scan([source_root]).indexed == 1
    finally:
        (source_root / f"{LATE}.flac").unlink()
    tasks = MapTasks(library_dir)
    try:
        report = tasks.update()
        assert (report.rebuilt, report.placed) == (False, 1)
        after = tasks.points()
    finally:
        tasks.close()
    old = np.isin(after.file_ids, first.file_ids)
    assert np.array_equal(after.file_ids[old], first.file_ids)
    assert np.array_equal(after.points[old], first.points), "existing points moved"
    new = int(np.flatnonzero(~old)[0])
    assert after.paths[new].endswith(f"{LATE}.flac")
    # placed beside the file it sounds most like, much closer than points are on average
    with Library(library_dir) as library:
        file_ids, vectors = file_vectors(library.catalog, library.encoder.model_id,
                                         library.encoder.dim)
    row = {int(f): i for i, f in enumerate(file_ids)}
    sims = vectors[[row[int(f)] for f in first.file_ids]] @ vectors[row[int(after.file_ids[new])]]
    nearest_in_sound = int(np.argmax(sims))
    gap = np.linalg.norm(after.points[new] - first.points[nearest_in_sound])
    spread = np.mean(np.linalg.norm(first.points[:, None] - first.points[None], axis=2))
    assert gap < 0.25 * spread, (gap, spread)


def test_cli_map_prints_every_point_as_json_and_rebuilds_when_asked(scanned, tmp_path, capsys):
    from app.cli import main
    source_dir, _ = scanned
    library_dir = tmp_path / "library"
    shutil.copytree(source_dir, library_dir)
    assert main(["--library-dir", str(library_dir), "map", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == len(STEMS)
    assert {"path", "x", "y", "tag"} <= set(lines[0])
    assert {line["path"].rsplit("/", 1)[1] for line in lines} == {f"{s}.flac" for s in STEMS}
    assert main(["--library-dir", str(library_dir), "map", "--rebuild"]) == 0
    assert "laid out again (asked)" in capsys.readouterr().err


def test_an_empty_library_says_so(tmp_path, capsys):
    from app.cli import main
    assert main(["--library-dir", str(tmp_path / "empty"), "map"]) == 1
    assert "no indexed samples" in capsys.readouterr().err
