"""What a sound is, on real Debian samples through real scans into real SQLite catalogs:
tags by name (thesaurus) and by content (the shipped tag head), the user's edits surviving
rescans, content changes, moves and new analysis models, the back-fill after the schema 2
migration, tag / key / tempo filters on the one query path, and ``info`` / ``tag`` on the
command line."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PyQt6.QtCore import Qt

from app import cli
from app.catalog import SCHEMA_VERSION, Catalog, SoundInfo
from app.library import Library, LibraryError
from app.paths import CATALOG_FILENAME
from app.query import SearchFilter, SearchFilterError
from app.scanner import Scanner
from app.thesaurus import UnknownTagError, name_tags, normalise
from models.tag_vocabulary import CANONICAL_TAGS
from models.tagger import TAGGER_PATH, Tagger
from tests.conftest import SONIC_PI, require

pytestmark = pytest.mark.samples

# name -> what the sound is (Sonic Pi's prefixes); renamed to neutral names below so only
# the audio can tell
KNOWN = {"bd_808": "kick", "bd_haus": "kick", "drum_heavy_kick": "kick", "sn_dolf": "snare",
         "drum_snare_hard": "snare", "drum_cymbal_closed": "closed hat", "loop_amen": "drum loop",
         "loop_breakbeat": "drum loop", "bass_hard_c": "bass", "ambi_choir": "vocal"}


def test_the_thesaurus_makes_one_tag_of_many_names():
    for word in ("BD", "kick", "bassdrum", "kik", "Kick Drum"):
        assert normalise(word) == "kick", word
    for word, tag in (("sd", "snare"), ("SNR", "snare"), ("hh", "closed hat"),
                      ("hihat", "closed hat"), ("chh", "closed hat"), ("OHH", "open hat"),
                      ("crash", "cymbal"), ("ride", "cymbal"), ("vox", "vocal")):
        assert normalise(word) == tag, word
    with pytest.raises(UnknownTagError):
        normalise("spaceship")
    tags = {t.tag: t.confidence for t in name_tags("/lib/Snares/Kik_hard-03.wav")}
    assert tags == {"kick": 0.9, "snare": 0.6}             # the file's name is surer than its folder
    assert [t.tag for t in name_tags("/lib/x/hihat_open_02.wav")] == ["open hat"]
    assert name_tags("/lib/x/take 7.wav") == ()


def test_the_shipped_tag_head_is_small_and_speaks_the_vocabulary():
    tagger = Tagger()
    assert TAGGER_PATH.stat().st_size < 300_000
    assert set(tagger.labels) <= set(CANONICAL_TAGS) and len(tagger.labels) >= 12
    assert tagger.model_id.startswith("tagger-")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """Real copies of Sonic Pi samples under neutral names, scanned into a real library."""
    require(SONIC_PI, "sonic-pi-samples")
    base = tmp_path_factory.mktemp("tags")
    root = base / "samples"
    (root / "a").mkdir(parents=True)
    for n, name in enumerate(KNOWN):
        shutil.copy(SONIC_PI / f"{name}.flac", root / "a" / f"take{n:02d}.flac")
    library_dir = base / "lib"
    with Library(library_dir) as library:
        report = Scanner(library, workers=1).scan([str(root)])
    assert report.indexed == len(KNOWN)
    return library_dir, root


def _take(root: Path, name: str) -> Path:
    return root / "a" / f"take{list(KNOWN).index(name):02d}.flac"


def test_a_scan_tags_files_by_their_sound(scanned):
    library_dir, root = scanned
    with Library(library_dir) as library:
        found = {name: library.describe(_take(root, name)) for name in KNOWN}
    for name, info in found.items():
        assert info["analysis_model"] and info["analysis_model"].startswith("tagger-"), name
        assert all(t["source"] == "audio" for t in info["tags"]), name   # neutral names say nothing
    right = [name for name, info in found.items() if info["tags"] and info["tags"][0]["tag"] == KNOWN[name]]
    assert len(right) >= 8, {n: found[n]["tags"][:1] for n in KNOWN}
    assert found["loop_amen"]["kind"] == "loop" and found["bd_808"]["kind"] == "one-shot"
    assert found["bd_808"]["loudness_db"] < 0


def test_tag_filters_narrow_search_results(scanned):
    library_dir, root = scanned
    query = _take(root, "bd_808")
    with Library(library_dir) as library:
        plain = library.search_file(query, k=20)
        kicks = library.search_file(query, k=20, filter=SearchFilter(tags=("BD",)))
        tags = library.catalog.tags(r.file.id for r in plain)
    assert len(plain) == len(KNOWN)
    assert kicks and len(kicks) < len(plain)
    for result in kicks:
        assert "kick" in {t.tag for t in tags[result.file.id]}
    assert {r.file.path for r in kicks} >= {str(_take(root, "bd_808"))}
    assert all(t["tag"] for t in plain[0].as_dict()["tags"])
    with pytest.raises(SearchFilterError):
        SearchFilter(tags=("spaceship",))
    with pytest.raises(SearchFilterError):
        SearchFilter(key="H minor")


def test_key_and_tempo_filters_read_the_sound_analysis(scanned):
    library_dir, root = scanned
    loop = _take(root, "loop_breakbeat")
    with Library(library_dir) as library:
        row = library.file_row(loop)
        old = library.catalog.sounds([row.id])[row.id]
        tags = library.catalog.tag_rows([row.id])[row.id]
        library.store_sound(row.id, "loop", SoundInfo(
            analysis_model=old.analysis_model, tempo_bpm=120.5, tempo_confidence=0.9,
            key_tonic=9, key_mode="minor", key_label="Am", key_confidence=0.8), tags)
        try:
            in_range = library.search_file(loop, k=20, filter=SearchFilter(tempo=(118, 122)))
            out_of_range = library.search_file(loop, k=20, filter=SearchFilter(tempo=(90, 100)))
            in_key = library.search_file(loop, k=20, filter=SearchFilter(key="A minor"))
            other_key = library.search_file(loop, k=20, filter=SearchFilter(key="C"))
            described = library.describe(loop)
        finally:
            library.store_sound(row.id, "loop", old, tags)
    assert [r.file.path for r in in_range] == [str(loop)]
    assert [r.file.path for r in in_key] == [str(loop)]
    assert in_range[0].as_dict()["bpm"] == 120.5 and in_range[0].as_dict()["key"] == "Am"
    assert out_of_range == [] and other_key == []
    assert described["tempo"] == {"bpm": 120.5, "confidence": 0.9}
    assert described["key"]["label"] == "Am"


def _wav_copy(source: Path, target: Path, gain: float = 1.0) -> None:
    audio, rate = sf.read(source, dtype="float32")
    sf.write(target, audio * gain, rate, subtype="PCM_16")


def test_the_users_tags_win_and_survive_rescans_changes_moves_and_new_models(tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    root = tmp_path / "samples"
    (root / "kicks").mkdir(parents=True)
    (root / "moved").mkdir()
    target = root / "kicks" / "thing.wav"
    _wav_copy(SONIC_PI / "bd_haus.flac", target)
    _wav_copy(SONIC_PI / "sn_dolf.flac", root / "kicks" / "other.wav")
    with Library(tmp_path / "lib") as library:
        Scanner(library, workers=1).scan([str(root)])
        first = library.describe(target)
        assert "kick" in {t["tag"] for t in first["tags"]}       # the folder's name, at least
        assert library.add_tag(target, "chh") == "closed hat"
        assert library.remove_tag(target, "BD") == "kick"

        def tags_of(path):
            return {t["tag"]: t["source"] for t in library.describe(path)["tags"]}

        assert tags_of(target).get("closed hat") == "user" and "kick" not in tags_of(target)
        # a rescan with nothing changed, then with new content at the same path
        Scanner(library, workers=1).scan([str(root)])
        _wav_copy(SONIC_PI / "bd_haus.flac", target, gain=0.5)
        report = Scanner(library, workers=1).scan([str(root)])
        assert report.indexed == 1
        assert tags_of(target).get("closed hat") == "user" and "kick" not in tags_of(target)
        file_id = library.file_row(target).id
        # a move: same row, the user's tags kept, the name's tags follow the new name
        moved = root / "moved" / "snare thing.wav"
        os.rename(target, moved)
        report = Scanner(library, workers=1).scan([str(root)])
        assert report.relinked == 1 and library.file_row(moved).id == file_id
        assert tags_of(moved).get("closed hat") == "user" and tags_of(moved).get("snare") == "name"
        assert "kick" not in tags_of(moved)
        assert library.describe(moved)["name_conflict"] == "snare"    # the sound is a kick
        # a new analysis model redoes the audio tags, never the user's
        library.store_sound(file_id, "one-shot", SoundInfo(analysis_model="older-model"), [])
        report = Scanner(library, workers=1).scan([str(root)])
        assert report.sounds_analysed == 1
        assert library.describe(moved)["analysis_model"] == library.sound_model_id
        assert tags_of(moved).get("closed hat") == "user" and "kick" not in tags_of(moved)
        assert library.describe(moved)["name_conflict"] == "snare"
        with pytest.raises(LibraryError):
            library.add_tag(tmp_path / "nowhere.wav", "kick")


def test_a_library_from_schema_1_is_migrated_and_back_filled_with_progress(tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    root = tmp_path / "samples"
    root.mkdir()
    for name in ("bd_808", "sn_dolf", "loop_amen"):
        shutil.copy(SONIC_PI / f"{name}.flac", root / f"{name}.flac")
    library_dir = tmp_path / "lib"
    with Library(library_dir) as library:
        Scanner(library, workers=1).scan([str(root)])
    # back to schema 1, which had none of the later tables
    raw = sqlite3.connect(library_dir / CATALOG_FILENAME)
    raw.executescript("DROP TABLE tags; DROP TABLE sounds; DROP TABLE duplicate_pairs; "
                      "DROP TABLE duplicate_checks; DROP TABLE favourites; "
                      "DROP TABLE collection_items; DROP TABLE collections; "
                      "DROP TABLE map_positions; ALTER TABLE roots DROP COLUMN folder_id; "
                      "ALTER TABLE roots DROP COLUMN volume_id; "
                      "ALTER TABLE roots DROP COLUMN offline_since; PRAGMA user_version = 1;")
    raw.close()
    with Catalog(library_dir / CATALOG_FILENAME) as catalog:
        assert catalog.schema_version == SCHEMA_VERSION
        assert catalog.stats()["indexed"] == 3                 # rows and vectors kept
        assert len(catalog.files_to_analyse("any")) == 3
    phases = []
    with Library(library_dir) as library:
        report = Scanner(library, workers=1, progress=phases.append).scan([str(root)])
        assert report.unchanged == 3 and report.indexed == 0   # no file embedded again
        assert report.sounds_analysed == 3
        assert library.catalog.files_to_analyse(library.sound_model_id) == []
        assert library.describe(root / "bd_808.flac")["tags"][0]["tag"] == "kick"
    back_fill = [p for p in phases if p.phase == "analyse"]
    assert back_fill and back_fill[-1].done == back_fill[-1].total == 3


def test_info_and_tag_on_the_command_line(scanned, tmp_path, capsys):
    library_dir, root = scanned
    path = _take(root, "sn_dolf")
    copy_dir = tmp_path / "lib"
    shutil.copytree(library_dir, copy_dir)
    assert cli.main(["tag", str(path), "--add", "SD", "--add", "vox", "--remove", "hh",
                     "--library-dir", str(copy_dir)]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(path), "--json", "--library-dir", str(copy_dir)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) >= {"path", "kind", "duration_s", "tags", "tempo", "key", "root",
                         "loudness_db", "name_conflict", "analysis_model"}
    assert info["path"] == str(path) and info["kind"] == "one-shot"
    by_tag = {t["tag"]: t for t in info["tags"]}
    assert by_tag["snare"]["source"] == "user" and by_tag["vocal"]["source"] == "user"
    assert all(set(t) == {"tag", "source", "confidence"} for t in info["tags"])
    assert cli.main(["info", str(path), "--library-dir", str(copy_dir)]) == 0
    assert "snare (user 1.00" in capsys.readouterr().out
    assert {f["source"] for f in info["found"]} >= {"user"}
    assert cli.main(["tag", str(path), "--add", "spaceship", "--library-dir", str(copy_dir)]) == 1
    assert "unknown tag" in capsys.readouterr().err
    assert cli.main(["search", str(path), "--tag", "vocal", "--json",
                     "--library-dir", str(copy_dir)]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["path"] for r in results] == [str(path)] or all(
        "vocal" in {t["tag"] for t in r["tags"]} for r in results)
    assert cli.main(["search", str(path), "--bpm", "fast", "--library-dir", str(copy_dir)]) == 1


def test_search_and_listen_share_the_filter_options():
    parser = cli.build_parser()
    listen = cli.search_filter(parser.parse_args(["listen", "--tag", "BD", "--kind", "one-shot"]))
    search = cli.search_filter(parser.parse_args(
        ["search", "x.wav", "--bpm", "118-122", "--key", "Am", "--folder", "/tmp"]))
    assert listen == SearchFilter(tags=("kick",), kind="one-shot")
    assert search.tempo == (118.0, 122.0) and search.key == "Am" and search.folder == "/tmp"
    assert cli.search_filter(parser.parse_args(["listen"])) is None


def test_live_suggestions_carry_tags_through_a_tag_filter_into_the_window_model(scanned, qtbot):
    from app.match_profiles import get_profile
    from app.matcher import LiveMatcher
    from engine.ring import CaptureRing
    from ui.models import SuggestionModel

    library_dir, root = scanned
    with Library(library_dir) as library:
        searcher = library.searcher()
    matcher = LiveMatcher(searcher, CaptureRing.for_seconds(1, 48000, 2, 1024), 48000,
                          profile=get_profile("drums"))
    everything = matcher.search_file(_take(root, "bd_808")).suggestions
    matcher.set_filter(SearchFilter(tags=("kick",)))
    kicks = matcher.search_file(_take(root, "bd_808")).suggestions
    assert kicks and len(kicks) < len(everything)
    assert all("kick" in s.tags for s in kicks)
    model = SuggestionModel()
    model.set_suggestions(list(kicks))
    assert model.headerData(model.COL_CATEGORY, Qt.Orientation.Horizontal) == "Type"
    assert "kick" in model.data(model.index(0, model.COL_CATEGORY))
