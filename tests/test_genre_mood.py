"""Genre and mood tags of loops and longer files (musicnn's MSD tagger as ONNX), on real
Sonic Pi loops and one-shots scanned into a real SQLite catalog: the numpy front end, the
shipped model, the stored tags in ``info --json``, tag filters, the user's edits surviving
a new analysis model, and no genre for short one-shots."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import soxr

from app import cli
from app.catalog import SoundInfo
from app.library import Library
from app.query import SearchFilter
from app.scanner import Scanner
from models import music_frontend
from models.genre_mood import (GENRE_THRESHOLD, MODEL_PATH, MOOD_THRESHOLD, GenreMoodTagger,
                               wanted)
from models.tag_vocabulary import GENRE_TAGS, MOOD_TAGS
from tests.conftest import SONIC_PI, require

pytestmark = pytest.mark.samples

LOOPS = ("loop_amen", "loop_garzul", "loop_compus")
ONE_SHOTS = ("bd_808", "sn_dolf")


def _mono_16k(name: str) -> np.ndarray:
    audio, rate = sf.read(require(SONIC_PI, "sonic-pi-samples") / f"{name}.flac",
                          dtype="float32", always_2d=True)
    return soxr.resample(audio.mean(axis=1), rate, music_frontend.SAMPLE_RATE).astype(np.float32)


def test_the_front_end_gives_musicnn_log_mel_frames_and_patches():
    audio = _mono_16k("loop_garzul")
    frames = music_frontend.log_mel(audio)
    assert frames.shape == (1 + audio.size // music_frontend.HOP_LENGTH, 96)
    assert frames.dtype == np.float32 and np.isfinite(frames).all()
    assert frames.min() >= 0 and 1.0 < frames.max() < 8.9      # below the float16 ceiling
    assert np.all(music_frontend.log_mel(np.zeros(4000, np.float32)) == 0)
    patches = music_frontend.patches(audio, max_patches=3)
    assert patches.shape == (min(3, len(frames) // 187), 187, 96)
    assert np.array_equal(patches[0], frames[:187])               # the first starts at 0
    period = 64                                                  # frames: about 1 s
    short = music_frontend.patches(audio[:period * music_frontend.HOP_LENGTH])
    assert short.shape == (1, 187, 96)                           # repeated to fill a patch
    assert np.allclose(short[0, 10 + period * 2], short[0, 10], atol=1e-3)
    assert music_frontend.patches(np.zeros(0, np.float32)).shape == (0, 187, 96)


def test_the_shipped_model_loads_and_gives_50_probabilities():
    assert MODEL_PATH.stat().st_size < 1_200_000
    tagger = GenreMoodTagger()
    assert len(tagger.labels) == 50 and tagger.model_id.startswith("musicnn-msd-")
    patches = music_frontend.patches(_mono_16k("loop_amen"))
    probs = tagger.label_probabilities(patches)
    assert probs.shape == (len(patches), 50)
    assert np.all((probs >= 0) & (probs <= 1))
    merged = tagger.tag_probabilities(probs.mean(axis=0))
    assert set(merged) == set(GENRE_TAGS + MOOD_TAGS)
    found = tagger.tag(_mono_16k("loop_garzul"), music_frontend.SAMPLE_RATE)
    assert found.genres and all(p >= GENRE_THRESHOLD for _, p in found.genres)
    assert all(p >= MOOD_THRESHOLD for _, p in found.moods) and len(found.genres) <= 2
    assert wanted("loop", 1.5) and not wanted("one-shot", 5.0) and wanted("one-shot", 45.0)
    assert not wanted("loop", 0.5)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """Sonic Pi loops and one-shots under neutral names (only the audio can tell), scanned."""
    require(SONIC_PI, "sonic-pi-samples")
    base = tmp_path_factory.mktemp("genre")
    root = base / "samples"
    root.mkdir()
    paths = {}
    for n, name in enumerate(LOOPS + ONE_SHOTS):
        paths[name] = root / f"take{n:02d}.flac"
        shutil.copy(SONIC_PI / f"{name}.flac", paths[name])
    library_dir = base / "lib"
    with Library(library_dir) as library:
        report = Scanner(library, workers=1).scan([str(root)])
    assert report.indexed == len(paths)
    return library_dir, root, paths


def _info(path, library_dir, capsys) -> dict:
    capsys.readouterr()
    assert cli.main(["info", str(path), "--json", "--library-dir", str(library_dir)]) == 0
    return json.loads(capsys.readouterr().out)


def test_loops_get_stored_genre_tags_shown_by_info_and_usable_as_filters(scanned, capsys):
    library_dir, root, paths = scanned
    infos = {name: _info(paths[name], library_dir, capsys) for name in LOOPS + ONE_SHOTS}
    tagged = [name for name in LOOPS if infos[name]["genre"]]
    assert len(tagged) >= 2, {n: infos[n]["genre"] for n in LOOPS}
    for name in tagged:
        info = infos[name]
        assert info["kind"] == "loop"
        assert all(g["tag"] in GENRE_TAGS and g["source"] == "audio"
                   and g["confidence"] >= GENRE_THRESHOLD for g in info["genre"])
        assert all(m["tag"] in MOOD_TAGS for m in info["mood"])
        assert info["tags"][0]["tag"] not in GENRE_TAGS + MOOD_TAGS   # the type tag leads
        assert "musicnn-msd-" in info["analysis_model"]
    for name in ONE_SHOTS:                                          # short one-shots: none
        assert infos[name]["genre"] == [] and infos[name]["mood"] == [], infos[name]["tags"]
    genre = infos[tagged[0]]["genre"][0]["tag"]
    with Library(library_dir) as library:
        found = library.search_file(paths[tagged[0]], k=10, filter=SearchFilter(tags=(genre,)))
        rows = library.catalog.tag_rows([library.file_row(paths[tagged[0]]).id])
    assert found and {r.file.path for r in found} <= {str(paths[n]) for n in tagged}
    assert str(paths[tagged[0]]) in {r.file.path for r in found}
    assert any(r.tag == genre and r.model_id.startswith("musicnn-msd-") for r in next(iter(rows.values())))
    capsys.readouterr()
    assert cli.main(["info", str(paths[tagged[0]]), "--library-dir", str(library_dir)]) == 0
    assert f"genre     {genre} (audio" in capsys.readouterr().out


def test_a_users_genre_edits_survive_a_new_analysis_model(scanned, tmp_path, capsys):
    library_dir, root, paths = scanned
    copy_dir = tmp_path / "lib"
    shutil.copytree(library_dir, copy_dir)
    loop = paths["loop_garzul"]
    before = _info(loop, copy_dir, capsys)
    heard = before["genre"][0]["tag"]
    with Library(copy_dir) as library:
        assert library.add_tag(loop, "Hip Hop") == "hip-hop"
        assert library.remove_tag(loop, heard) == heard
        file_id = library.file_row(loop).id
        # an older genre model's analysis: the next scan redoes it, never the user's words
        library.store_sound(file_id, "loop", SoundInfo(analysis_model="tagger-old+musicnn-msd-int8-0"), [])
        report = Scanner(library, workers=1).scan([str(root)])
        assert report.sounds_analysed == 1
        found = library.catalog.tag_rows([file_id])[file_id]
    after = _info(loop, copy_dir, capsys)
    assert after["analysis_model"] == before["analysis_model"]
    assert {"tag": "hip-hop", "source": "user", "confidence": 1.0} in after["genre"]
    assert heard not in {g["tag"] for g in after["genre"]}
    assert any(t.tag == heard and t.source == "audio" for t in found)   # heard again, still hidden


def test_the_browser_and_suggestion_rows_show_genres_after_the_type(scanned):
    from app.browse import BrowseQuery, build_snapshot
    from app.suggestions import Suggestion

    library_dir, root, paths = scanned
    with Library(library_dir) as library:
        snapshot = build_snapshot(library.catalog)
        loop_info = library.describe(paths["loop_garzul"])
    genre = loop_info["genre"][0]["tag"]
    result = snapshot.query(BrowseQuery(tags=(genre,), facets=True))
    shown = {snapshot.paths[r] for r in result.rows}
    assert str(paths["loop_garzul"]) in shown
    assert not shown & {str(paths[n]) for n in ONE_SHOTS}
    assert dict((v, c) for v, _, c in result.facets["tags"])[genre] == result.total
    row = snapshot.row_tags[snapshot.row_of[int(snapshot.file_ids[result.rows[0]])]]
    assert genre in row and row.index(genre) > 0               # after the type tag
    suggestion = Suggestion(rank=1, file_id=1, path="/x/loop.wav", name="loop.wav", score=0.9,
                            kind="loop", duration_s=4.0, offset_s=0.0, exists=True,
                            tags=tuple(t["tag"] for t in loop_info["tags"]), bpm=120.0)
    text = suggestion.describe_sound()
    assert text.startswith(loop_info["tags"][0]["tag"]) and genre in text and "120 bpm" in text
