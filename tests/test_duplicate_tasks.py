"""``app.duplicate_tasks`` on the real library of ``tests.test_duplicates`` (Sonic Pi copies
and a Hydrogen kit): a cancelled check keeps what it checked and the next one goes on from
there; the trash refuses a file outside the library and moves nothing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from app.duplicate_tasks import DuplicateTasks, FindCancelled
from app.library import LibraryError
from tests.test_duplicates import library_with_copies  # noqa: F401 - fixture

pytestmark = pytest.mark.samples


def test_a_cancelled_check_goes_on_where_it_stopped(library_with_copies):  # noqa: F811
    library_dir, _root, copies = library_with_copies
    tasks = DuplicateTasks(library_dir)
    seen = []

    def progress(done, total, _path):
        seen.append((done, total))
        tasks.cancel()            # stop after the first file

    with pytest.raises(FindCancelled):
        tasks.find(progress)
    total = seen[0][1]
    assert seen == [(0, total)] and total > 2
    findings = tasks.find()
    assert findings.report.checked == total - 1
    assert any(copies["original"] in {f.path for f in g.files} for g in findings.groups)


def test_the_trash_refuses_a_file_outside_the_library(library_with_copies, tmp_path,  # noqa: F811
                                                       monkeypatch):
    library_dir, _root, copies = library_with_copies
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    stranger = tmp_path / "stranger.wav"
    sf.write(stranger, np.zeros(100, np.float32), 44100)
    with pytest.raises(LibraryError):
        DuplicateTasks(library_dir).trash([copies["ogg"], stranger])
    assert stranger.exists() and os.path.exists(copies["ogg"])
    assert not (tmp_path / "data" / "Trash" / "files").exists()
