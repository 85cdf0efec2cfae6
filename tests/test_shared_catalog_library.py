"""The librarian's data in the shared catalogue, on a real PostgreSQL 18 + pgvector server
(``bench.harness.pg_server``): two machines mounting one share at two paths see each
other's tags (found by the scan and the user's edits), sound analysis, favourites,
collections and duplicate groups; collections behave as in the local SQLite catalog; a
catalogue made by the previous schema version is upgraded with its data kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from app.catalog import Catalog, FileAnalysis, SoundInfo, TagRow
from app.catalog_collections import CollectionError
from app.library import Library
from app.scanner import Scanner
from tests.conftest import SONIC_PI

pytestmark = pytest.mark.samples

DRUMS = ("bd_808.flac", "sn_dub.flac", "drum_cymbal_closed.flac", "bd_haus.flac")


@pytest.fixture(scope="module")
def server():
    from bench.harness.pg_server import PgServer
    pg = PgServer()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture(scope="module")
def studio(server, tmp_path_factory):
    """A share of four drum one-shots and an exact copy of one, scanned (and checked for
    duplicates) by machine A at /…/a/Drums; machine B mounts it at /…/b/Drums."""
    if not SONIC_PI.exists():
        pytest.skip("Debian package sonic-pi-samples is not installed; `make test` installs it")
    root = tmp_path_factory.mktemp("studio")
    nas = root / "nas" / "Drums"
    nas.mkdir(parents=True)
    for name in DRUMS:
        shutil.copy2(SONIC_PI / name, nas / name)
    shutil.copy2(SONIC_PI / "bd_808.flac", nas / "kick copy.flac")
    mounts = {}
    for machine in ("a", "b"):
        mounts[machine] = root / machine / "Drums"
        mounts[machine].parent.mkdir()
        mounts[machine].symlink_to(nas, target_is_directory=True)
    address = server.create_database("studio")
    from app import duplicates
    with Library(root / "lib-a", catalog=address) as library:
        library.map_share(mounts["a"], "nas-drums")
        report = Scanner(library, workers=1).scan([mounts["a"]])
        assert report.files_analysed + report.duplicates == len(DRUMS) + 1
        duplicates.update(library)
    with Library(root / "lib-b", catalog=address) as library:
        library.map_share(mounts["b"], "nas-drums")
    return {"address": address, "root": root, **mounts}


def machine(studio, name: str) -> Library:
    return Library(studio["root"] / f"lib-{name}", catalog=studio["address"])


def test_every_machine_sees_the_analysis_and_tags_of_a_file_another_machine_scanned(studio):
    with machine(studio, "b") as library:
        row = library.file_row(studio["b"] / "bd_808.flac")
        assert row.path == str(studio["b"] / "bd_808.flac")
        sound = library.catalog.sounds([row.id])[row.id]
        assert sound.analysis_model == library.sound_model_id
        assert sound.loudness_db is not None
        tags = library.catalog.tags([row.id])[row.id]
        assert ("kick", "name") in {(t.tag, t.source) for t in tags}
        described = library.describe(studio["b"] / "sn_dub.flac")
        assert "snare" in str(described)
        # the scan analysed every file's sound: nothing is left for B to back-fill
        assert library.catalog.files_to_analyse(library.sound_model_id, str(studio["b"])) == []


def test_a_users_tag_edits_on_one_machine_stand_on_the_other(studio):
    with machine(studio, "a") as library:
        library.add_tag(studio["a"] / "bd_808.flac", "percussion")
        library.remove_tag(studio["a"] / "sn_dub.flac", "snare")
    with machine(studio, "b") as library:
        kick = library.file_row(studio["b"] / "bd_808.flac")
        snare = library.file_row(studio["b"] / "sn_dub.flac")
        tags = library.catalog.tags([kick.id, snare.id])
        assert tags[kick.id][0].tag == "percussion" and tags[kick.id][0].source == "user"
        assert "snare" not in {t.tag for t in tags.get(snare.id, [])}
        # a new analysis of the file (B scans it again) keeps the user's word
        name_tags = (TagRow("snare", "name", 0.9),)
        library.catalog.set_sound(snare.id, SoundInfo("other-model"), name_tags)
        assert "snare" not in {t.tag for t in library.catalog.tags([snare.id]).get(snare.id, [])}
        library.add_tag(studio["b"] / "sn_dub.flac", "snare")   # B puts it back
    with machine(studio, "a") as library:
        snare = library.file_row(studio["a"] / "sn_dub.flac")
        assert "snare" in {t.tag for t in library.catalog.tags([snare.id])[snare.id]}


def test_favourites_and_collections_made_on_one_machine_are_on_the_other(studio):
    with machine(studio, "a") as library:
        catalog = library.catalog
        kick = library.file_row(studio["a"] / "bd_808.flac").id
        hat = library.file_row(studio["a"] / "drum_cymbal_closed.flac").id
        assert catalog.set_favourite([kick]) == 1
        crate = catalog.create_collection("  Boom   bap ")
        assert catalog.add_to_collection(crate, [hat, kick, hat]) == 2
    with machine(studio, "b") as library:
        catalog = library.catalog
        kick_b = library.file_row(studio["b"] / "bd_808.flac").id
        assert catalog.favourites() == {kick_b}
        [row] = catalog.collections()
        assert (row.name, row.size) == ("Boom bap", 2)
        assert catalog.collection_id("BOOM BAP") == row.id
        files = catalog.files_by_id(catalog.collection_file_ids(row.id))
        assert sorted(Path(f.path).name for f in files.values()) == [
            "bd_808.flac", "drum_cymbal_closed.flac"]
        assert all(f.path.startswith(str(studio["b"])) for f in files.values())
        with pytest.raises(CollectionError, match="already a collection"):
            catalog.create_collection("boom BAP")
        catalog.remove_from_collection(row.id, [kick_b])
        catalog.set_favourite([kick_b], False)
    with machine(studio, "a") as library:
        assert library.catalog.favourites() == set()
        assert library.catalog.collections()[0].size == 1


def test_duplicate_groups_found_by_one_machine_are_on_the_other(studio):
    from app import duplicates
    with machine(studio, "b") as library:
        found = duplicates.groups(library)
        assert library.catalog.duplicate_unchecked() == []       # A checked every file
    names = [sorted(Path(f.path).name for f in g.files) for g in found]
    assert ["bd_808.flac", "kick copy.flac"] in names
    assert all(f.path.startswith(str(studio["b"])) for g in found for f in g.files)


def test_the_offline_copy_keeps_tags_and_the_users_edits(studio):
    from app.paths import CATALOG_FILENAME
    from app.pg_store import redacted
    from app.shared_cache import cache_dir_for
    with machine(studio, "a") as library:
        library.add_tag(studio["a"] / "bd_haus.flac", "tom")
        library.sync_cache()
    cache = cache_dir_for(studio["root"] / "lib-a", redacted(studio["address"]))
    with Catalog(cache / CATALOG_FILENAME) as copy:
        row = copy.file_by_path(str(studio["a"] / "bd_haus.flac"))
        assert "tom" in {t.tag for t in copy.tags([row.id])[row.id]}
        assert copy.sounds([row.id])[row.id].loudness_db is not None


def collection_story(catalog, file_ids: list[int]) -> list:
    """One sequence of collection and favourite calls; what each answered."""
    seen: list = []
    first = catalog.create_collection("Kicks")
    second = catalog.collection_id("snares", create=True)
    seen.append(catalog.collection_id("KICKS") == first)
    seen.append(catalog.add_to_collection(first, [file_ids[1], file_ids[0], 10 ** 9]))
    seen.append(catalog.add_to_collection(first, file_ids))
    seen.append(catalog.add_to_collection(second, file_ids[:1]))
    seen.append([file_ids.index(i) for i in catalog.collection_file_ids(first)])
    seen.append({file_ids.index(f): [c == first for c in cs]
                 for f, cs in catalog.collections_of(file_ids).items()})
    for bad in (lambda: catalog.rename_collection(second, "kicks"),
                lambda: catalog.create_collection("   "),
                lambda: catalog.collection_id("hats"),
                lambda: catalog.add_to_collection(10 ** 9, file_ids),
                lambda: catalog.rename_collection(10 ** 9, "x")):
        with pytest.raises(CollectionError) as caught:
            bad()
        seen.append(str(caught.value))
    catalog.rename_collection(second, "Snares & rims")
    seen.append(catalog.remove_from_collection(first, file_ids[:2]))
    seen.append([(c.name, c.size) for c in catalog.collections()])
    catalog.delete_collection(first)
    seen.append([c.name for c in catalog.collections()])
    seen.append(catalog.set_favourite(file_ids + [10 ** 9]))
    seen.append(catalog.set_favourite(file_ids[:1]))
    seen.append(catalog.set_favourite(file_ids[:2], False))
    seen.append(sorted(file_ids.index(f) for f in catalog.favourites()))
    return seen


def analysis(path: str, seed: int) -> FileAnalysis:
    vectors = np.random.default_rng(seed).normal(size=(2, 8)).astype(np.float32)
    return FileAnalysis(path=path, size=1, mtime_ns=1, content_hash=f"h{seed}", status="indexed",
                        model_id="m", start_samples=(0, 100), vectors=vectors,
                        sound=SoundInfo("s1", tempo_bpm=120.0 + seed),
                        tags=(TagRow("kick", "audio", 0.5 + seed / 10, "t1"),))


def test_collections_answer_as_the_local_catalog_does(server, tmp_path):
    from app.pg_store import PgCatalog
    paths = [str(tmp_path / "share" / f"{n}.wav") for n in range(3)]
    with Catalog(tmp_path / "local.sqlite3") as local:
        local_ids = [local.store(analysis(p, n))[0] for n, p in enumerate(paths)]
        expected = collection_story(local, local_ids)
    with PgCatalog(server.create_database("contract"), "machine-1") as shared:
        shared.map_share(str(tmp_path / "share"), "share")
        shared_ids = [shared.store(analysis(p, n))[0] for n, p in enumerate(paths)]
        assert collection_story(shared, shared_ids) == expected
        assert shared.sounds(shared_ids)[shared_ids[2]].tempo_bpm == 122.0
        assert shared.tags(shared_ids)[shared_ids[0]] == [TagRow("kick", "audio", 0.5, "t1")]


def test_a_catalogue_of_the_previous_schema_is_upgraded_with_its_data(server, tmp_path, monkeypatch):
    from app import pg_store
    from app.pg_store import PgCatalog, PgSchemaError
    address = server.create_database("upgrade")
    share = str(tmp_path / "share")
    with monkeypatch.context() as old_app:          # the app as it was at schema 1
        old_app.setattr(pg_store, "SCHEMA_VERSION", 1)
        with PgCatalog(address, "old-machine") as old:
            old.map_share(share, "share")
    with server.connect("upgrade") as conn:          # ...and the rows it wrote
        assert conn.execute("SELECT to_regclass('tags')").fetchone()[0] is None
        file_id, = conn.execute(
            "INSERT INTO files (share_id, rel_path, size, mtime_ns, content_hash, status, "
            "model_id, scanned_by) VALUES ('share', 'kick.wav', 1, 1, 'h1', 'indexed', 'm', "
            "'old-machine') RETURNING id").fetchone()
        vector_ids = [conn.execute(
            "INSERT INTO vectors (file_id, model_id, start_sample, embedding) "
            "VALUES (%s, 'm', %s, %s::vector) RETURNING id",
            (file_id, start, str([0.5] * 8))).fetchone()[0] for start in (0, 100)]
    with PgCatalog(address, "new-machine") as new:
        with server.connect("upgrade") as conn:
            assert conn.execute("SELECT value FROM scout_meta WHERE key = 'schema_version'"
                                ).fetchone()[0] == "2"
        row = new.file(file_id)
        assert row.content_hash == "h1" and row.path == "[share]/kick.wav"
        assert new.file_vectors(file_id)[0].tolist() == vector_ids
        new.set_user_tag(file_id, "808", removed=False)
        assert [t.tag for t in new.tags([file_id])[file_id]] == ["808"]
    # the old app may no longer write to the upgraded catalogue: refused, not corrupted
    with monkeypatch.context() as old_app:
        old_app.setattr(pg_store, "SCHEMA_VERSION", 1)
        with pytest.raises(PgSchemaError, match="newer than this version"):
            PgCatalog(address, "old-machine")
