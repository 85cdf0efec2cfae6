"""The search filter of the one query path, on a real library of Sonic Pi samples in two
folders: by kind and by folder, through ``Library.search_file`` (as ``samplescout search``)
and through the live matcher (captures, live windows and dropped files share it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.library import Library
from app.matcher import LiveMatcher
from app.match_profiles import get_profile
from app.query import SearchFilter, SearchFilterError
from app.scanner import Scanner
from engine.ring import CaptureRing
from tests.conftest import SONIC_PI, require

pytestmark = pytest.mark.samples

KICKS = ["bd_808", "bd_boom", "bd_haus", "bd_klub", "drum_heavy_kick"]
OTHERS = ["sn_dolf", "elec_snare", "drum_snare_hard", "elec_bell", "loop_amen", "loop_compus",
          "loop_breakbeat"]


@pytest.fixture(scope="module")
def two_folders(tmp_path_factory):
    require(SONIC_PI, "sonic-pi-samples")
    base = tmp_path_factory.mktemp("filter")
    folders = {"kicks": base / "kicks", "others": base / "others"}
    for name, names in (("kicks", KICKS), ("others", OTHERS)):
        folders[name].mkdir()
        for n in names:
            os.symlink(SONIC_PI / f"{n}.flac", folders[name] / f"{n}.flac")
    library_dir = base / "lib"
    with Library(library_dir) as library:
        report = Scanner(library, workers=1).scan([str(f) for f in folders.values()])
        assert report.indexed == len(KICKS) + len(OTHERS)
    return library_dir, folders


def test_a_kind_filter_keeps_only_that_kind(two_folders):
    library_dir, folders = two_folders
    loop = folders["others"] / "loop_amen.flac"
    with Library(library_dir) as library:
        plain = library.search_file(loop, k=20)
        assert plain[0].file.path == str(loop)                 # itself first, unfiltered
        assert {r.file.kind for r in plain} == {"loop", "one-shot"}
        one_shots = library.search_file(loop, k=20, filter=SearchFilter(kind="one-shot"))
        loops = library.search_file(loop, k=20, filter=SearchFilter(kind="loop"))
    assert one_shots and {r.file.kind for r in one_shots} == {"one-shot"}
    assert len(one_shots) == len(KICKS) + len(OTHERS) - 3  # every one-shot, none dropped
    assert [r.rank for r in one_shots] == list(range(1, len(one_shots) + 1))
    assert {r.file.kind for r in loops} == {"loop"} and loops[0].file.path == str(loop)


def test_a_folder_filter_keeps_only_files_inside_it(two_folders):
    library_dir, folders = two_folders
    kick = folders["kicks"] / "bd_808.flac"
    with Library(library_dir) as library:
        assert library.search_file(kick, k=3)[0].file.path == str(kick)
        inside = library.search_file(kick, k=3, filter=SearchFilter(folder=str(folders["others"])))
        # a sibling folder whose name starts like the filter's is outside it
        near = library.search_file(kick, k=3, filter=SearchFilter(folder=str(folders["kicks"])[:-1]))
    assert len(inside) == 3
    assert all(Path(r.file.path).parent == folders["others"] for r in inside)
    assert near == []


def test_the_live_matcher_searches_through_its_filter(two_folders):
    library_dir, folders = two_folders
    kick = folders["kicks"] / "bd_808.flac"
    with Library(library_dir) as library:
        searcher = library.searcher()
    matcher = LiveMatcher(searcher, CaptureRing.for_seconds(1, 48000, 2, 1024), 48000,
                          profile=get_profile("drums"))
    assert matcher.search_file(kick).suggestions[0].path == str(kick)
    matcher.set_filter(SearchFilter(folder=str(folders["others"])))
    narrowed = matcher.search_file(kick).suggestions
    assert narrowed and all(Path(s.path).parent == folders["others"] for s in narrowed)
    matcher.set_filter(None)
    assert matcher.search_file(kick).suggestions[0].path == str(kick)


def test_bad_criteria_are_refused_not_ignored():
    for kwargs in ({"tags": ("spaceship",)}, {"key": "H minor"}, {"tempo": (130.0, 120.0)}):
        with pytest.raises(SearchFilterError):
            SearchFilter(**kwargs)
    with pytest.raises(SearchFilterError, match="kind must be"):
        SearchFilter(kind="drum")


def test_tags_of_one_facet_widen_and_of_two_facets_narrow(two_folders):
    """``--tag kick --tag snare``: either; ``--tag kick --tag house``: a kick tagged house
    (what the window's type and genre boxes mean together)."""
    library_dir, folders = two_folders
    query = folders["others"] / "sn_dolf.flac"
    tagged = [folders["kicks"] / "bd_808.flac", folders["others"] / "sn_dolf.flac"]
    with Library(library_dir) as library:
        for path in tagged:
            library.add_tag(path, "house")
        try:
            def found(*tags):
                return {Path(r.file.path).stem for r in
                        library.search_file(query, k=20, filter=SearchFilter(tags=tags))}
            kicks, snares = found("kick"), found("snare")
            assert "bd_808" in kicks and "sn_dolf" in snares and not kicks & snares
            assert found("kick", "snare") == kicks | snares
            assert found("house") == {"bd_808", "sn_dolf"}
            assert found("kick", "house") == {"bd_808"}
            assert found("snare", "house") == {"sn_dolf"}
        finally:
            for path in tagged:
                library.remove_tag(path, "house")
