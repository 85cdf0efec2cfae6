"""The window's side of progressive answers: a hit's refinements reorder the suggestion list
in place (no reset, no emptied list, the selection follows its file), the match line shows
the time since the hit, the xrun counter explains itself and resets, and a capture's
"looking up" line is replaced by its answer."""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

from tests.test_ui import sample_library, show_matches_for, window  # noqa: F401 (fixtures)

pytestmark = pytest.mark.samples


def test_refinements_reorder_rows_in_place_and_show_time_since_the_hit(qtbot, window, sample_library):  # noqa: F811
    _, _, paths = sample_library
    show_matches_for(qtbot, window, paths["sn_dolf"])
    model, view = window.model, window.view
    base = window.last_update
    rows = list(base.suggestions)
    assert len(rows) >= 4
    events = []
    model.modelReset.connect(lambda: events.append("reset"))
    model.rowsRemoved.connect(lambda *a: events.append("removed"))
    model.layoutChanged.connect(lambda *a: events.append(("layout", model.rowCount())))
    view.selectRow(1)
    chosen = model.suggestion(1).file_id
    hit = time.monotonic() - 0.08            # the hit, 80 ms before the attack's answer
    stages = [("attack", rows), ("refined", rows[::-1]), ("final", rows[1:] + rows[:1])]
    for seq, (stage, order) in enumerate(stages, start=base.seq + 1):
        # a refinement re-scores the rows; the list shows them best first
        order = [dataclasses.replace(s, score=0.99 - 0.01 * i) for i, s in enumerate(order)]
        update = dataclasses.replace(base, seq=seq, reason="onset", mode="one-shot", onset_frame=4800,
                                     stage=stage, onset_time=hit, suggestions=tuple(order))
        window.host.suggestions.emit(update)
        assert [s.file_id for s in model.suggestions()] == [s.file_id for s in order]
        # the selection follows its file to the new row
        assert model.suggestion(view.currentIndex().row()).file_id == chosen
        assert f"({stage})" in window.match_info.text()
    assert "reset" not in events and "removed" not in events, events
    assert all(count == len(rows) for kind, count in [e for e in events if isinstance(e, tuple)])
    waited = int(re.search(r"(\d+) ms after the hit", window.match_info.text()).group(1))
    assert waited >= 80


def test_xrun_counter_says_what_it_counts_and_resets(qtbot, window):  # noqa: F811
    assert "dropout" in window.status_xruns.toolTip().lower()
    window.status_xruns.click()
    assert ("reset_xruns", ()) in window.host.calls


def test_a_silent_capture_does_not_leave_looking_up_on_screen(qtbot, window):  # noqa: F811
    window.capture()
    assert "Looking up" in window.match_info.text()
    window.host.info.emit("Nothing heard in the last seconds (below the gate)")
    assert window.match_info.text().startswith("Nothing heard")
