"""Search by example lists the same kind of sound after a close first answer
(``app.similar_kind``): the order itself, when it stays out, and on a real library of Sonic Pi drums and sounds, through
``Library.search_file`` (as ``samplescout search``), the CLI and the live matcher's search by
file (the window's drop and "similar")."""

from __future__ import annotations

import json
import os

import pytest

from app import similar_kind
from app.catalog import FileRow, TagRow
from app.cli import main
from app.library import Library
from app.match_profiles import get_profile
from app.matcher import LiveMatcher
from app.query import SearchResult, by_kind
from app.scanner import Scanner
from app.similar_kind import kind_order, tag_agreement
from engine.ring import CaptureRing
from tests.conftest import SONIC_PI, require


def test_agreement_is_the_sum_of_shared_confidences():
    assert tag_agreement({"snare": 0.8, "clap": 0.2}, {"snare": 0.5, "tom": 0.5}) == pytest.approx(0.4)
    assert tag_agreement({"snare": 1.0}, {"kick": 1.0}) == 0.0
    assert tag_agreement({}, {"kick": 1.0}) == 0.0


def test_the_first_answer_keeps_its_place_and_agreement_lifts_the_rest():
    cosines = [0.95, 0.90, 0.88, 0.87]
    agreements = [0.0, 0.0, 0.0, 1.0]
    assert kind_order(cosines, agreements, weight=0.25) == [0, 3, 1, 2]
    # the first stays first even when another agrees and the first does not
    assert kind_order([0.9, 0.89], [0.0, 1.0], weight=0.25)[0] == 0
    # without agreement the cosine order is kept, ties by position
    assert kind_order([0.9, 0.8, 0.8], [0.0, 0.0, 0.0], weight=0.25) == [0, 1, 2]
    assert kind_order([], []) == []
    with pytest.raises(ValueError):
        kind_order([0.9], [])


def row(file_id: int, cosine: float, tag: str) -> SearchResult:
    file = FileRow(file_id, f"/s/{file_id}.wav", 1, 1, None, 0.5, 44100, 1, "one-shot",
                   "indexed", None, None, None)
    return SearchResult(rank=file_id, file=file, score=cosine, offset_s=0.0, exists=True,
                        tags=(TagRow(tag, "audio", 0.9),))


def test_a_list_whose_first_answer_is_far_keeps_its_closeness_order():
    """Under other music a query's tags describe the mixture and its own file may be any of
    the first ten: the kind order stays out of it."""
    close = [row(1, 0.97, "snare"), row(2, 0.80, "kick"), row(3, 0.79, "snare")]
    ordered = by_kind(close, {"snare": 1.0})
    assert [r.file.id for r in ordered] == [1, 3, 2]
    assert [r.rank for r in ordered] == [1, 2, 3]
    assert [r.score for r in ordered] == [0.97, 0.80, 0.79]       # the score of each rank
    assert all(r.cosine is None for r in ordered)                 # none was re-ranked
    far = [row(1, 0.80, "snare"), row(2, 0.78, "kick"), row(3, 0.77, "snare")]
    assert [r.file.id for r in by_kind(far, {"snare": 1.0})] == [1, 2, 3]


DRUMS = ["drum_snare_hard", "drum_snare_soft", "sn_dolf", "sn_dub", "sn_zome", "sn_generic",
         "elec_snare", "elec_hi_snare", "elec_lo_snare", "elec_mid_snare", "elec_filt_snare",
         "bd_808", "bd_boom", "bd_gas", "bd_pure", "bd_klub", "bd_fat", "bd_haus",
         "drum_cymbal_closed", "drum_cymbal_open", "drum_cymbal_pedal", "drum_cymbal_soft",
         "drum_tom_hi_hard", "drum_tom_lo_hard", "elec_fuzz_tom", "elec_twip", "elec_blip",
         "tabla_re", "tabla_dhec", "tabla_te_m", "perc_impact2", "elec_bong", "drum_roll"]


@pytest.fixture(scope="module")
def drum_library(tmp_path_factory):
    require(SONIC_PI, "sonic-pi-samples")
    base = tmp_path_factory.mktemp("kind")
    folder = base / "samples"
    folder.mkdir()
    for name in DRUMS:
        os.symlink(SONIC_PI / f"{name}.flac", folder / f"{name}.flac")
    library_dir = base / "lib"
    with Library(library_dir) as library:
        report = Scanner(library, workers=1).scan([str(folder)])
        assert report.indexed == len(DRUMS)
    return library_dir, folder


def snare_count(results) -> int:
    """Answers after the first whose standing type tag is snare."""
    return sum(1 for r in results[1:] if r.tags and r.tags[0].tag == "snare")


@pytest.mark.samples
def test_a_snare_brings_snares_after_its_own_file(drum_library, monkeypatch):
    library_dir, folder = drum_library
    with Library(library_dir) as library:
        gains = []
        for name in ("elec_hi_snare", "drum_snare_hard", "sn_dolf"):
            query = folder / f"{name}.flac"
            closest = library.search_file(query, k=8, by_kind=False)
            with monkeypatch.context() as untagged:     # the same pool by cosine alone
                untagged.setattr(similar_kind, "KIND_WEIGHT", 0.0)
                by_cosine = library.search_file(query, k=8)
            kind = library.search_file(query, k=8)
            assert closest[0].file.path == kind[0].file.path == str(query)
            assert [r.rank for r in kind] == list(range(1, 9))
            scores = [r.score for r in kind]
            assert scores == sorted(scores, reverse=True)    # the score of each rank
            own = {r.file.path: r.cosine for r in library.search_file(query, k=24, by_kind=False)}
            assert all(r.cosine == own[r.file.path] for r in kind)
            assert {r.file.path for r in kind} <= {r.file.path for r in
                                                   library.search_file(query, k=24, by_kind=False)}
            assert snare_count(kind) >= max(snare_count(closest), snare_count(by_cosine))
            gains.append(snare_count(kind) - snare_count(by_cosine))
        # by cosine alone an electronic snare's neighbours hold hats, toms and tablas
        assert max(gains) >= 2


@pytest.mark.samples
def test_the_cli_orders_by_kind_unless_told_closest_only(drum_library, capsys):
    library_dir, folder = drum_library
    query = str(folder / "elec_hi_snare.flac")

    def answer(*extra):
        capsys.readouterr()
        assert main(["--library-dir", str(library_dir), "search", query, "-k", "8", "--json",
                     *extra]) == 0
        return json.loads(capsys.readouterr().out.splitlines()[-1])["results"]

    kind, closest = answer(), answer("--closest-only")
    assert kind[0]["path"] == closest[0]["path"] == query
    snares = [sum(1 for r in rows[1:] if r["tags"] and r["tags"][0]["tag"] == "snare")
              for rows in (kind, closest)]
    assert snares[0] > snares[1]


@pytest.mark.samples
def test_the_windows_search_by_file_orders_by_kind(drum_library):
    library_dir, folder = drum_library
    query = folder / "elec_hi_snare.flac"
    with Library(library_dir) as library:
        searcher = library.searcher()
        closest = library.search_file(query, k=8, by_kind=False)
    matcher = LiveMatcher(searcher, CaptureRing.for_seconds(1, 48000, 2, 1024), 48000,
                          profile=get_profile("drums"))
    shown = matcher.search_file(query, k=8).suggestions
    assert shown[0].path == str(query)
    closest_paths = [r.file.path for r in closest[1:]]
    assert [s.path for s in shown[1:]] != closest_paths
    snare_paths = {str(folder / f"{n}.flac") for n in DRUMS if "sn" in n}
    assert (sum(s.path in snare_paths for s in shown[1:])
            > sum(p in snare_paths for p in closest_paths))
