"""The index's vector -> file mapping as arrays with an overlay (app/vector_files.py)."""

import sqlite3

import numpy as np
import pytest

from app import vector_files
from app.vector_files import ID_SUMMARY_SQL, VectorFiles, id_summary


def loaded() -> VectorFiles:
    # vectors 10..15: file 1 holds 10, 11; file 2 holds 12, 13, 14; file 3 holds 15 (deleted)
    return VectorFiles(np.array([10, 11, 12, 13, 14, 15]), np.array([1, 1, 2, 2, 2, 3]),
                       deleted=[15])


def test_a_loaded_mapping_answers_lookups_and_counts():
    files = loaded()
    assert len(files) == 6 and files.live_count == 5 and files.deleted_count == 1
    assert files.file_of(12) == 2 and files.file_of(15) == 3 and files.file_of(99) is None
    assert 15 in files and 9 not in files
    assert files.files_of(np.array([[14, 9], [10, 15]], np.uint64)).tolist() == [2, -1, 1, 3]
    assert files.live_of_file(2) == {12, 13, 14}
    assert files.live_of_file(3) == set()
    assert files.live_files() == {1, 2}


def test_moves_additions_and_deletions_win_over_the_base():
    files = loaded()
    files.assign(13, 1)          # moved from file 2 to file 1
    files.assign(20, 2)          # new
    files.assign(15, 4)          # a deleted vector added again comes back live, elsewhere
    files.delete(10)
    assert len(files) == 7 and files.live_count == 6
    assert files.file_of(13) == 1 and files.files_of(np.array([13, 20, 15])).tolist() == [1, 2, 4]
    assert files.live_of_file(1) == {11, 13}
    assert files.live_of_file(2) == {12, 14, 20}
    assert files.live_of_file(3) == set() and files.live_of_file(4) == {15}
    ids, owners, dead = files.arrays()
    assert ids.tolist() == [10, 11, 12, 13, 14, 15, 20]
    assert owners.tolist() == [1, 1, 2, 1, 2, 4, 2]
    assert dead.tolist() == [True, False, False, False, False, False, False]
    assert files.live_by_file() == {1: {11, 13}, 2: {12, 14, 20}, 4: {15}}


def test_folding_the_overlay_keeps_every_answer(monkeypatch):
    monkeypatch.setattr(vector_files, "FOLD_MIN", 3)
    files = loaded()
    before = None
    for vector_id, file_id in ((13, 1), (20, 2), (21, 5)):
        files.assign(vector_id, file_id)
        if before is None:
            before = files.arrays()
    files.assign(22, 5)          # the fourth overlay entry passes FOLD_MIN: folded
    ids, owners, dead = files.arrays()
    assert ids.tolist() == [10, 11, 12, 13, 14, 15, 20, 21, 22]
    assert owners.tolist() == [1, 1, 2, 1, 2, 3, 2, 5, 5]
    assert dead.tolist() == [False] * 5 + [True] + [False] * 3
    assert files.live_of_file(5) == {21, 22} and files.live_of_file(2) == {12, 14, 20}
    assert len(files) == 9 and files.live_count == 8
    files.assign(13, 2)          # moving a folded vector again
    assert files.live_of_file(1) == {10, 11} and files.live_of_file(2) == {12, 13, 14, 20}


def test_a_mapping_that_is_not_ascending_is_refused():
    with pytest.raises(ValueError, match="ascending"):
        VectorFiles(np.array([3, 2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="one length"):
        VectorFiles(np.array([1, 2]), np.array([1]))


def test_the_id_summary_of_sqlite_and_of_numpy_agree_and_tell_sets_apart(tmp_path):
    ids = np.concatenate([np.arange(1, 5000), [10**9, 3 * 10**12]]).astype(np.int64)
    db = sqlite3.connect(tmp_path / "ids.sqlite3")
    db.execute("CREATE TABLE vectors (id INTEGER PRIMARY KEY, model_id TEXT)")
    db.executemany("INSERT INTO vectors VALUES (?, 'm')", ((int(i),) for i in ids))
    db.commit()
    summary = db.execute(f"SELECT {ID_SUMMARY_SQL} FROM vectors WHERE model_id = 'm'").fetchone()
    assert tuple(int(x) for x in summary) == id_summary(ids)
    empty = db.execute(f"SELECT {ID_SUMMARY_SQL} FROM vectors WHERE model_id = 'x'").fetchone()
    assert tuple(int(x) for x in empty) == id_summary(np.empty(0, np.int64)) == (0, 0, 0)
    # one id lost and one gained that balance the plain sum: the hash sum tells them apart
    lost, gained = [4999, 10**9], [5000, 10**9 - 1]
    swapped = np.sort(np.concatenate([ids[~np.isin(ids, lost)], gained]))
    assert len(swapped) == len(ids) and swapped.sum() == ids.sum()
    assert id_summary(swapped) != id_summary(ids)


@pytest.mark.parametrize("spread", [1, 3, 1000])
def test_lookups_agree_whether_ids_are_dense_enough_for_a_table_or_not(spread):
    """Dense ids (a catalog's row ids) are found through a table of positions, sparse ones
    by binary search: both give the same files, -1 for ids never stored, ids past the end
    and negative ones included."""
    rng = np.random.default_rng(spread)
    ids = np.sort(rng.choice(200_000 * spread, size=200_000, replace=False)).astype(np.int64)
    owners = rng.integers(1, 5000, len(ids))
    mapping = VectorFiles(ids, owners)
    assert (not vector_files.IdPositions(ids).tabled) == (spread == 1000)
    asked = np.concatenate([rng.choice(ids, 500), rng.integers(-5, ids[-1] + 100, 500),
                            [ids[-1] + 1, 10**12, -1]])
    at = np.searchsorted(ids, asked).clip(0, len(ids) - 1)
    expected = np.where(ids[at] == asked, owners[at], -1)
    assert mapping.files_of(asked).tolist() == expected.tolist()
